"""Step Functions helpers for the local runtime and the tests: the disposal workflow's input, starting executions
(also from a hand-over message), waiting for them, and reading an execution history as a timeline a person can
follow.

The disposal state machine (`infra/disposal.asl.json`, described in `docs/disposal-workflow.md`) polls its warning
item every `poll_s` seconds. Its history is mostly the same four states over and over (Wait, Tick, ReadWarning,
Decide), so `render_timeline` folds those into one "poll" line per run of polls that saw the same item, and shows
every other step (clock restarts, escalations, events handed to the app, the archive) on its own line.

Clients are plain boto3 clients (typed `Any`, as elsewhere in `local/`), pointed at moto or at AWS.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypedDict

__all__ = [
    "DISPOSAL_LEVELS",
    "Deadlines",
    "Step",
    "disposal_input",
    "execution_arn",
    "execution_history",
    "quiet_moto_asl_logging",
    "render_timeline",
    "start_disposal",
    "start_handover",
    "steps",
    "wait_for_end",
]

DISPOSAL_LEVELS: Final = ("red", "orange", "yellow", "blue")

POLL_STATES: Final = frozenset({"Wait", "Tick", "ReadWarning", "Decide"})
"""The disposal machine's polling loop; folded into one line per run of polls that read the same item."""

QUIET_STATES: Final = frozenset({"Start", "InitRun", "RestartClock", "ScheduleReminder", "SelectDeadlines"})
"""Bookkeeping states whose effect already shows on a neighbouring line."""

_END_EVENTS: Final = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}


class Deadlines(TypedDict):
    """One level's clock, in seconds from the (re)start of the warning's clock."""

    acknowledge_s: int
    verify_s: int
    clear_s: int
    reminder_s: int


def disposal_input(
    *,
    warning_id: str,
    level: str,
    sector: str,
    enterprise_id: str,
    area: str,
    deadlines: Mapping[str, Deadlines],
    poll_s: int,
    archive_ttl_s: int,
    started_at_s: int | None = None,
    max_polls: int = 2000,
) -> dict[str, Any]:
    """The input the disposal state machine expects (see docs/disposal-workflow.md for each field).

    `deadlines` must name all four levels: the machine switches to another level's deadlines when the engine
    changes the warning's level. `started_at_s` (epoch seconds, default now) is the base of the archive TTL.
    """
    missing = [name for name in DISPOSAL_LEVELS if name not in deadlines]
    if missing:
        raise ValueError(f"deadlines lack the levels {missing}")
    if level not in DISPOSAL_LEVELS:
        raise ValueError(f"unknown level {level!r}")
    if poll_s < 1 or max_polls < 1:
        raise ValueError("poll_s and max_polls must be positive")
    return {
        "warning_id": warning_id,
        "level": level,
        "sector": sector,
        "enterprise_id": enterprise_id,
        "area": area,
        "deadlines": {name: dict(deadlines[name]) for name in DISPOSAL_LEVELS},
        "poll_s": poll_s,
        "archive_ttl_s": archive_ttl_s,
        "started_at_s": int(time.time()) if started_at_s is None else started_at_s,
        "max_polls": max_polls,
    }


def quiet_moto_asl_logging() -> None:
    """Silence moto's ASL interpreter's per-component error log.

    moto 5.2.5 logs an ERROR with the whole component tree each time a path is missing, including every
    `"IsPresent": false` check that simply holds; the disposal machine makes several per poll. Real failures
    still show in the execution's status, error and history.
    """
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN an execution named `name` of this state machine has (Step Functions derives it the same way)."""
    prefix, _, machine = state_machine_arn.rpartition(":stateMachine:")
    if not prefix:
        raise ValueError(f"not a state machine ARN: {state_machine_arn}")
    return f"{prefix}:execution:{machine}:{name}"


def start_disposal(sfn: Any, state_machine_arn: str, execution_input: Mapping[str, Any]) -> str:
    """Start the warning's execution, named after the warning, and return its ARN.

    Starting again with the same name and input returns the same execution (Step Functions is idempotent there),
    so a retried ingest does not start a second one.
    """
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=str(execution_input["warning_id"]),
        input=json.dumps(execution_input, ensure_ascii=False),
    )
    return str(response["executionArn"])


def start_handover(sfn: Any, message_body: str | Mapping[str, Any]) -> str:
    """Do what the app's WorkflowEventQueue consumer must do with a `handover` message: start the next execution.

    The message names the state machine, the next execution (`<warning_id>-<generation>`) and its whole input
    (counters and clock included), so the warning's deadlines carry on where the previous execution stopped.
    """
    body = json.loads(message_body) if isinstance(message_body, str) else message_body
    if body.get("type") != "handover":
        raise ValueError(f"not a handover message: {body.get('type')!r}")
    response = sfn.start_execution(
        stateMachineArn=body["state_machine_arn"],
        name=body["name"],
        input=json.dumps(body["input"], ensure_ascii=False),
    )
    return str(response["executionArn"])


def wait_for_end(
    sfn: Any, execution_arn: str, timeout_s: float = 30.0, interval_s: float = 0.05
) -> dict[str, Any]:
    """Poll `describe_execution` until the execution is no longer RUNNING; return that description."""
    deadline = time.monotonic() + timeout_s
    while True:
        description: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{execution_arn} still RUNNING after {timeout_s} s")
        time.sleep(interval_s)


def execution_history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every history event of the execution, oldest first (all pages)."""
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**request)
        events.extend(page["events"])
        token = page.get("nextToken")
        if not token:
            return events
        request["nextToken"] = token


# --- the history as steps ----------------------------------------------------------------------------------------


@dataclass
class Step:
    """One state as it ran: entered, (for a Task) the request and the result, exited."""

    name: str
    type: str
    entered: datetime
    input: Any
    exited: datetime | None = None
    output: Any = None
    resource: str | None = None
    parameters: Any = None
    result: Any = None
    failures: list[str] = field(default_factory=list)


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def steps(events: Iterable[Mapping[str, Any]]) -> list[Step]:
    """Group history events into steps (top-level states only; this machine has no Parallel or Map)."""
    found: list[Step] = []
    current: Step | None = None
    for event in events:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            current = Step(
                name=details["name"],
                type=kind.removesuffix("StateEntered"),
                entered=event["timestamp"],
                input=_loads(details.get("input")),
            )
            found.append(current)
        elif current is None:
            continue
        elif kind == "TaskScheduled":
            details = event["taskScheduledEventDetails"]
            current.resource = f"{details['resourceType']}:{details['resource']}"
            current.parameters = _loads(details.get("parameters"))
        elif kind == "TaskSucceeded":
            current.result = _loads(event["taskSucceededEventDetails"].get("output"))
        elif kind in {"TaskFailed", "TaskTimedOut"}:
            details = event.get("taskFailedEventDetails") or event.get("taskTimedOutEventDetails") or {}
            current.failures.append(f"{details.get('error', kind)}: {details.get('cause', '')}".strip())
        elif kind.endswith("StateExited"):
            current.exited = event["timestamp"]
            current.output = _loads(event["stateExitedEventDetails"].get("output"))
    return found


# --- the timeline ------------------------------------------------------------------------------------------------


def _offset(seconds: float) -> str:
    if seconds < 60:
        return f"+{seconds:.3f}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"+{hours}h{minutes:02d}m{secs:02d}s"


def _attribute(message_attributes: Mapping[str, Any], name: str) -> str:
    value = message_attributes.get(name, {})
    text = str(value.get("StringValue", ""))
    if value.get("DataType") == "String.Array":
        try:
            return ", ".join(str(item) for item in json.loads(text))
        except ValueError:
            return text
    return text


def _item_snapshot(step: Step) -> str:
    item = (step.result or {}).get("Item") if isinstance(step.result, Mapping) else None
    if not item:
        return "item missing"
    status = item.get("status", {}).get("S", "?")
    level = item.get("level", {}).get("S", "?")
    seq = item.get("level_seq", {}).get("N", "?")
    return f"status={status} level={level} level_seq={seq}"


def _elapsed(step: Step) -> str:
    run = step.output.get("run") if isinstance(step.output, Mapping) else None
    return "" if not isinstance(run, Mapping) else f"clock {run.get('elapsed_s')} s"


def _describe(step: Step) -> tuple[str, str] | None:
    """(label, text) for a step worth a line of its own, or None to leave it out."""
    params = step.parameters if isinstance(step.parameters, Mapping) else {}
    if step.resource == "sns:publish":
        attributes = params.get("MessageAttributes", {})
        message = params.get("Message")
        detail = ""
        if isinstance(message, Mapping) and message.get("reason"):
            detail = f"{message['reason']}: clock {message.get('elapsed_s')} s"
            if message.get("type") == "escalation":
                detail += f", deadline {message.get('deadline_s')} s"
        return (
            "publish",
            f"{_attribute(attributes, 'change')} [{_attribute(attributes, 'level')}] "
            f"→ {_attribute(attributes, 'audience')}" + (f"  ({detail})" if detail else ""),
        )
    if step.resource == "sqs:sendMessage":
        body = params.get("MessageBody")
        queue = str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        if isinstance(body, Mapping):
            what = str(body.get("change") or body.get("type"))
            if body.get("type") == "handover":
                what += f" → next execution {body.get('name')}"
        else:
            what = str(body)
        return "hand to app", f"{what}  (queue {queue})"
    if step.resource == "dynamodb:updateItem":
        new = (step.result or {}).get("Attributes", {}) if isinstance(step.result, Mapping) else {}
        changed = ", ".join(f"{name}={next(iter(value.values()))}" for name, value in sorted(new.items()))
        expression = str(params.get("UpdateExpression", ""))
        removal = re.search(r"\bREMOVE\s+(.*?)\s*(?:\b(?:SET|ADD|DELETE)\b|$)", expression)
        removed = removal.group(1) if removal else ""
        return "update item", (changed or expression) + (f"; removed {removed}" if removed else "")
    if step.resource is not None:
        return "task", f"{step.resource}"
    if step.type == "Pass" and step.name.endswith("Deadlines") and isinstance(step.output, Mapping):
        clock = step.output.get("clock", {})
        limits = clock.get("limits", {})
        return (
            "clock",
            f"(re)started for {clock.get('level')} (level_seq {clock.get('seq')}): "
            f"acknowledge {limits.get('acknowledge_s')} s, verify {limits.get('verify_s')} s, "
            f"clear {limits.get('clear_s')} s, "
            + (f"reminder every {limits['reminder_s']} s" if limits.get("reminder_s") else "no reminders"),
        )
    if step.type in {"Succeed", "Fail"}:
        return "end", step.name
    if step.type == "Choice" or step.name in QUIET_STATES:
        return None
    return step.type.lower(), step.name


def _poll_line(start: float, end: float, count: int, snapshot: str, elapsed: str) -> str:
    polls = f"poll ×{count}"
    span = f"{_offset(start)}" if count == 1 else f"{_offset(start)} … {_offset(end).lstrip('+').strip()}"
    return f"{span:<24} {polls:<12} {snapshot}" + (f"  ({elapsed})" if elapsed else "")


def _timeline_lines(events: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    if not events:
        return
    t0: datetime = events[0]["timestamp"]

    def at(moment: datetime) -> float:
        return (moment - t0).total_seconds()

    started = events[0].get("executionStartedEventDetails")
    if started is not None:
        params = _loads(started.get("input")) or {}
        carried = " (handed over, counters carried)" if "run" in params else ""
        yield (
            f"{_offset(0.0):<24} {'start':<12} warning {params.get('warning_id')} {params.get('level')} "
            f"{params.get('sector')} enterprise {params.get('enterprise_id')} area {params.get('area')}; "
            f"poll every {params.get('poll_s')} s{carried}"
        )

    fold: dict[str, Any] | None = None
    for step in steps(events):
        if step.name in POLL_STATES:
            if step.name != "ReadWarning":
                continue
            snapshot = _item_snapshot(step)
            moment = at(step.entered)
            if fold is not None and fold["snapshot"] == snapshot:
                fold.update(end=moment, count=fold["count"] + 1, elapsed=_elapsed(step))
            else:
                if fold is not None:
                    yield _poll_line(**fold)
                fold = {
                    "start": moment,
                    "end": moment,
                    "count": 1,
                    "snapshot": snapshot,
                    "elapsed": _elapsed(step),
                }
            continue
        line = _describe(step)
        if line is None:
            continue
        if fold is not None:
            yield _poll_line(**fold)
            fold = None
        label, text = line
        yield f"{_offset(at(step.entered)):<24} {label:<12} {text}"
        for failure in step.failures:
            yield f"{'':<24} {'  failed':<12} {failure[:160]}"
    if fold is not None:
        yield _poll_line(**fold)

    last = events[-1]
    status = _END_EVENTS.get(str(last["type"]))
    if status is not None:
        details = last.get("executionFailedEventDetails") or last.get("executionAbortedEventDetails") or {}
        error = f"  {details.get('error')}: {details.get('cause')}" if details else ""
        yield f"{_offset(at(last['timestamp'])):<24} {status}{error}"


def render_timeline(sfn: Any, execution_arn: str) -> str:
    """The execution as lines `+offset  what  detail`, polling runs folded (see the module docstring)."""
    description = sfn.describe_execution(executionArn=execution_arn)
    events = execution_history(sfn, execution_arn)
    machine = str(description["stateMachineArn"]).rsplit(":", 1)[-1]
    header = f"execution {description['name']} of {machine}: {description['status']}, {len(events)} history events"
    transitions = sum(1 for event in events if str(event["type"]).endswith("StateEntered"))
    return "\n".join([header, f"state transitions: {transitions}", *_timeline_lines(events)])
