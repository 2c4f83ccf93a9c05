"""Step Functions helpers for the local runtime and the tests: a disposal timer's input, starting one, waiting
for it, and reading an execution history as a timeline a person can follow.

A disposal timer (`infra/disposal.asl.json`, described in `docs/disposal-workflow.md`) sleeps until the warning's
next due time and sends one `due` message to the workflow queue: three states (SleepUntilDue, ReportDue, Reported).

Clients are plain boto3 clients (typed `Any`, as elsewhere in `local/`), pointed at moto or at AWS.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

__all__ = [
    "TIMER_STATES",
    "Step",
    "execution_arn",
    "execution_history",
    "quiet_moto_asl_logging",
    "render_timeline",
    "start_timer",
    "steps",
    "timer_input",
    "wait_for_end",
]

TIMER_STATES: Final = ("SleepUntilDue", "ReportDue", "Reported")
"""The disposal timer's three states (infra/disposal.asl.json)."""

_END_EVENTS: Final = {
    "ExecutionSucceeded": "SUCCEEDED",
    "ExecutionFailed": "FAILED",
    "ExecutionAborted": "ABORTED",
    "ExecutionTimedOut": "TIMED_OUT",
}


def timer_input(
    warning_id: str, due_version: int, due_at: float, now: float | None = None, due_kind: str = "acknowledge"
) -> dict[str, Any]:
    """A disposal timer's input (docs/disposal-workflow.md): sleep whole seconds (rounded down) until `due_at`."""
    now = time.time() if now is None else now
    return {
        "warning_id": warning_id,
        "due_version": due_version,
        "wait_s": max(0, math.floor(due_at - now)),
        "due_at": due_at,
        "due_kind": due_kind,
        "level": "red",
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


def start_timer(sfn: Any, state_machine_arn: str, name: str, execution_input: Mapping[str, Any]) -> str:
    """Start a disposal timer named `name` (`{warning_id}-{due_version}`) and return its ARN."""
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input, ensure_ascii=False)
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
        due_version = body.get("due_version") if isinstance(body, Mapping) else None
        what = f"due version {due_version}" if due_version is not None else str(body)
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
    if step.type == "Wait":
        return (
            "sleep",
            f"{step.name} ({(step.input or {}).get('wait_s') if isinstance(step.input, Mapping) else '?'} s)",
        )
    if step.type in {"Succeed", "Fail"}:
        return "end", step.name
    if step.type == "Choice":
        return None
    return step.type.lower(), step.name


def _timeline_lines(events: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    if not events:
        return
    t0: datetime = events[0]["timestamp"]

    def at(moment: datetime) -> float:
        return (moment - t0).total_seconds()

    started = events[0].get("executionStartedEventDetails")
    if started is not None:
        params = _loads(started.get("input")) or {}
        yield (
            f"{_offset(0.0):<24} {'start':<12} timer for warning {params.get('warning_id')} due version "
            f"{params.get('due_version')}: sleep {params.get('wait_s')} s until {params.get('due_at')}"
        )

    for step in steps(events):
        line = _describe(step)
        if line is None:
            continue
        label, text = line
        yield f"{_offset(at(step.entered)):<24} {label:<12} {text}"
        for failure in step.failures:
            yield f"{'':<24} {'  failed':<12} {failure[:160]}"

    last = events[-1]
    status = _END_EVENTS.get(str(last["type"]))
    if status is not None:
        details = last.get("executionFailedEventDetails") or last.get("executionAbortedEventDetails") or {}
        error = f"  {details.get('error')}: {details.get('cause')}" if details else ""
        yield f"{_offset(at(last['timestamp'])):<24} {status}{error}"


def render_timeline(sfn: Any, execution_arn: str) -> str:
    """The execution as lines `+offset  what  detail` (see the module docstring)."""
    description = sfn.describe_execution(executionArn=execution_arn)
    events = execution_history(sfn, execution_arn)
    machine = str(description["stateMachineArn"]).rsplit(":", 1)[-1]
    header = f"execution {description['name']} of {machine}: {description['status']}, {len(events)} history events"
    transitions = sum(1 for event in events if str(event["type"]).endswith("StateEntered"))
    return "\n".join([header, f"state transitions: {transitions}", *_timeline_lines(events)])
