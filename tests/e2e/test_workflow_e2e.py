"""The closed loop end to end (issue 5): devices publish over MQTT, the engine raises warnings, one Step Functions
execution per warning runs the real ASL on moto in real time, and people act through the HTTP API.

Deadlines are seconds-scale (red 3/6/9 s, orange 8/30/60 s, yellow 30/60/90 s with a reminder every 2 s, blue
30/60/90 s; the machine polls every second). Red is short because its scenario waits for every tier; the others are
as long as the scenario that must act within them needs on a busy machine (the test's own requests are slow there
too), since an action that comes late is rightly escalated. The scenarios run at the same time on different tower
cranes, one thread each, started by one module fixture; each test then checks what its scenario saw. Times of
escalations are the machine's own (`at` = `$$.State.EnteredTime`), not when a queue happened to be read. The
machine's clock counts waited seconds (docs/disposal-workflow.md §4.2), so under load it runs behind real time: an
escalation is never early, and its `elapsed_s` is exactly the deadline, but it may come a few seconds late by the
wall clock.

A busy machine makes every step slower, so nothing here decides an outcome by the wall clock: the scenarios wait on
conditions (bounded by `WAIT_S`, generous), hold a warning "for a while" until the machine itself has polled past
the point the test is about (its own clock, from the execution history), and check what happened in order (the
machine's history, the messages' state entry times), never within a tight window of the wall clock.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any, TypeVar

import pytest
import requests

from chalicelib.adapters.audit_store import AuditedWarningStore
from chalicelib.adapters.dynamo import DynamoWarningStore
from chalicelib.bootstrap import container, reset
from chalicelib.domain.levels import Sector
from chalicelib.domain.warnings import WarningRecord
from local.aws import reset_moto
from local.fleet import Fleet, Incident, SimMessage
from local.runtime import LocalPlatform, start
from local.sfn import Step, execution_arn, execution_history, render_timeline, steps
from local.users import DUTY_USER, bearer, enterprise_user
from local.waiting import wait_until

pytestmark = pytest.mark.e2e

POLL_S = 1
DEADLINES = {
    "red": {"acknowledge_s": 3, "verify_s": 6, "clear_s": 9, "reminder_s": 0},
    "orange": {"acknowledge_s": 8, "verify_s": 30, "clear_s": 60, "reminder_s": 0},
    "yellow": {"acknowledge_s": 30, "verify_s": 60, "clear_s": 90, "reminder_s": 2},
    "blue": {"acknowledge_s": 30, "verify_s": 60, "clear_s": 90, "reminder_s": 0},
}
SWEEP_GRACE_S = 2.0
POLICY = {"deadlines": DEADLINES, "workflow": {"poll_s": POLL_S, "sweep_grace_s": SWEEP_GRACE_S}}

# One tower crane per scenario, each on its own site (unit), so no combination rule touches another scenario.
# Crane load, % of rated (DOMAIN.md §2.4): blue 80-90, yellow 90-100, orange 100-110, red >= 110; normal < 78.
ORANGE_IN_TIME = "CS01-TC1"
YELLOW_ON_REQUEST = "CS02-TC1"
RED_NEVER_ACKNOWLEDGED = "CS03-TC1"
BLUE_RAISED_TO_RED = "CS04-TC1"
LOST_START = "CS05-TC1"
ABORTED = "CS06-TC1"
LOAD = {"blue": 85.0, "yellow": 95.0, "orange": 104.0, "red": 113.0}
LATE_READING = "FR06-B1-WP"  # fire water static pressure, minimum 0.07 MPa: yellow below it, red below 0.01
PRESSURE = {"yellow": 0.064, "red": 0.005}

AUDIENCE_QUEUES = ("EnterpriseQueue", "DutyQueue", "RegulatorQueue", "AreaQueue", "EmergencyQueue")
ESCALATIONS = ("escalation_tier1", "escalation_tier2", "escalation_tier3")
WAIT_S = 90.0  # the bound of every wait on a condition: generous, a busy machine is slow, not wrong
SCENARIO_TIMEOUT_S = 900.0  # a whole scenario (its waits are bounded one by one)
TIER_SMS = {1: "超时未签收", 2: "超时未核实反馈", 3: "超时未消警"}  # chalicelib/services/workflow.py texts

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = WAIT_S, interval: float = 0.1) -> T:
    """Poll until `probe` returns something truthy; fail after `timeout` seconds."""
    return wait_until(probe, timeout_s=timeout, what=what, interval_s=interval)


# --- what people were told: the audience queues, drained in the background ---------------------------------------


@dataclass(frozen=True)
class Told:
    queue: str
    body: dict[str, Any]
    attributes: dict[str, str]

    @property
    def warning_id(self) -> str:
        change = self.body.get("change")
        if isinstance(change, Mapping):  # a warning change from the ingest (its body nests the change)
            return str(change.get("warning_id"))
        return str(self.body.get("warning_id"))

    @property
    def change(self) -> str:
        return self.attributes.get("change", "")

    @property
    def at(self) -> float:
        """When the machine published it (epoch seconds)."""
        return datetime.fromisoformat(str(self.body["at"])).timestamp()


class Outbox:
    """Every message of the five audience queues (SNS subscriptions with raw delivery), kept by a drain thread."""

    def __init__(self, sqs: Any, urls: Mapping[str, str]) -> None:
        self._sqs = sqs
        self._urls = dict(urls)
        self._told: list[Told] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _drain(self) -> None:
        while not self._stop.wait(0.1):
            for queue, url in self._urls.items():
                try:
                    self._drain_queue(queue, url)
                except Exception as exc:  # the server may be going away at teardown
                    if not self._stop.is_set():
                        print(f"outbox: {queue}: {type(exc).__name__}: {exc}")

    def _drain_queue(self, queue: str, url: str) -> None:
        while batch := self._sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", []):
            told = [
                Told(
                    queue,
                    json.loads(message["Body"]),
                    {name: str(value.get("StringValue")) for name, value in message["MessageAttributes"].items()},
                )
                for message in batch
            ]
            with self._lock:
                self._told.extend(told)
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    def of(
        self, warning_id: str, queue: str | None = None, change: str | None = None, execution: str | None = None
    ) -> list[Told]:
        """What was told about the warning (in one queue, of one change, published by one execution)."""
        with self._lock:
            told = list(self._told)
        return [
            m
            for m in told
            if m.warning_id == warning_id
            and queue in (None, m.queue)
            and change in (None, m.change)
            and execution in (None, m.body.get("execution"))
        ]

    def wait_for(
        self, warning_id: str, queue: str, change: str, timeout: float = WAIT_S, execution: str | None = None
    ) -> Told:
        found = eventually(
            lambda: self.of(warning_id, queue, change, execution),
            f"{change} for {warning_id} in {queue}" + (f" from {execution}" if execution else ""),
            timeout,
        )
        return found[0]


# --- people: the HTTP API -------------------------------------------------------------------------------------


class Api:
    def __init__(self, url: str, users: list[str]) -> None:
        self._url = url
        self._headers = {user: bearer(user) for user in users}  # log everyone in before the clocks start

    def call(self, user: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = f"{self._url}{path}"
        response = requests.request(method, url, headers=self._headers[user], json=body, timeout=30)
        return response.status_code, response.json()

    def act(self, user: str, warning_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """One action that must succeed; the warning as it is afterwards."""
        status, answer = self.call(user, "POST", f"/warnings/{warning_id}/actions", body)
        assert status == 200, (body, status, answer)
        result: dict[str, Any] = answer
        return result

    def warning(self, warning_id: str) -> dict[str, Any]:
        """GET /warnings/{id} as the duty centre: {"warning", "timeline", ...}."""
        status, answer = self.call(DUTY_USER, "GET", f"/warnings/{warning_id}")
        assert status == 200, answer
        result: dict[str, Any] = answer
        return result

    def on_wall(self, warning_id: str) -> bool:
        status, page = self.call(DUTY_USER, "GET", "/wall?sector=construction&limit=100")
        assert status == 200, page
        return any(item["warning_id"] == warning_id for item in page["items"])


def escalate_events(detail: Mapping[str, Any]) -> list[str]:
    """The tiers of the `escalate` entries of a warning's timeline, in order."""
    return [entry["reason"] for entry in detail["timeline"] if entry["type"] == "escalate"]


# --- the world the scenarios share -------------------------------------------------------------------------------


class LosingStarter:
    """Loses the workflow start of some devices' warnings: the ingest wrote the warning, then crashed (or the
    start call was lost) before the execution started."""

    def __init__(self, inner: Any, devices: set[str]) -> None:
        self._inner = inner
        self._devices = devices
        self.lost: list[str] = []

    def track(self, record: WarningRecord) -> None:
        if record.device_id in self._devices:
            self.lost.append(record.warning_id)
            return
        self._inner.track(record)


@dataclass
class World:
    platform: LocalPlatform
    api: Api
    outbox: Outbox
    sfn: Any
    sqs: Any
    state_machine_arn: str
    workflow_queue_url: str

    def fleet(self, device_id: str, *loads: tuple[int, int, float]) -> Fleet:
        """The crane reports load `pct` for `count` steps from `start` (start, count, pct); normal otherwise."""
        incidents = tuple(Incident(device_id, start, count, {"load_pct": pct}) for start, count, pct in loads)
        return Fleet(self.platform.registry, incidents=incidents)

    def publish(
        self, device_id: str, fleet: Fleet, steps_: range, spacing_s: float = 0.2, measured: float | None = None
    ) -> float:
        """The device's reports for `steps_`, time-stamped `spacing_s` apart and ending now (or at `measured`);
        the time before publishing."""
        reg = self.platform.registry.by_device[device_id]
        before = time.time()
        end = before if measured is None else measured
        last = len(steps_) - 1
        messages: list[SimMessage] = [
            fleet.report(reg, step, end - spacing_s * (last - index)) for index, step in enumerate(steps_)
        ]
        publisher = self.platform.publisher()
        try:
            for message in messages:
                publisher.publish(message.topic, message.payload)
            assert publisher.wait_all_published(timeout=WAIT_S)
        finally:
            publisher.close()
        return before

    def warning_of(self, device_id: str) -> WarningRecord:
        def in_dynamodb() -> WarningRecord | None:
            return next((w for w in DynamoWarningStore.scan_all() if w.device_id == device_id), None)

        return eventually(in_dynamodb, f"a warning of {device_id}")

    def executions(self, warning_id: str) -> list[dict[str, Any]]:
        """Every execution that followed the warning: its own name, hand-overs (`-<n>`), repairs (`-r<time>`)."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {"stateMachineArn": self.state_machine_arn, "maxResults": 1000}
        while True:
            page = self.sfn.list_executions(**request)
            found += [
                e for e in page["executions"] if e["name"] == warning_id or e["name"].startswith(f"{warning_id}-")
            ]
            if not page.get("nextToken"):
                return sorted(found, key=lambda e: e["startDate"])
            request["nextToken"] = page["nextToken"]

    def execution_status(self, name: str) -> str | None:
        try:
            described = self.sfn.describe_execution(executionArn=execution_arn(self.state_machine_arn, name))
        except self.sfn.exceptions.ExecutionDoesNotExist:
            return None
        return str(described["status"])

    def abort(self, name: str) -> None:
        """Stop the execution (a crash). moto drops a stop that comes before the interpreter has started running
        the program (the status already says RUNNING), so wait until it polls and stop until it is stopped."""
        self.wait_status(name, "RUNNING")
        eventually(lambda: any(s.name == "Wait" for s in self.machine_steps(name)), f"{name} polling")
        deadline = time.monotonic() + WAIT_S
        while self.execution_status(name) == "RUNNING":
            assert time.monotonic() < deadline, f"{name} not stopped"
            arn = execution_arn(self.state_machine_arn, name)
            self.sfn.stop_execution(executionArn=arn, error="Test.Crash", cause="fault injected by the e2e test")
            time.sleep(0.5)
        assert self.execution_status(name) == "ABORTED"

    def running(self, warning_id: str) -> list[str]:
        return [e["name"] for e in self.executions(warning_id) if e["status"] == "RUNNING"]

    def wait_status(self, name: str, status: str, timeout: float = WAIT_S) -> None:
        eventually(lambda: self.execution_status(name) == status, f"{name} {status}", timeout)

    def sms_about(self, warning_id: str, text: str = "") -> list[tuple[str, str]]:
        """SMS sent so far that name the warning (and contain `text`)."""
        for _ in range(5):
            try:  # moto's server thread may add one while we copy
                return [(p, t) for p, t in self.platform.sms_messages() if warning_id in t and text in t]
            except RuntimeError:
                time.sleep(0.05)
        raise AssertionError("could not read moto's SMS log")

    def send_workflow_message(self, body: Mapping[str, Any]) -> None:
        """A message to WorkflowEventQueue exactly as the machine sends it (body and attributes)."""
        self.sqs.send_message(
            QueueUrl=self.workflow_queue_url,
            MessageBody=json.dumps(body, ensure_ascii=False),
            MessageAttributes={
                "type": {"DataType": "String", "StringValue": str(body["type"])},
                "change": {"DataType": "String", "StringValue": str(body["change"])},
            },
        )

    def workflow_queue_drained(self) -> None:
        """Wait until the app has consumed WorkflowEventQueue (nothing visible nor in flight, twice in a row)."""

        def empty() -> bool:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=self.workflow_queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            return all(value == "0" for value in attributes.values())

        def stays_empty() -> bool:
            if not empty():
                return False
            time.sleep(0.3)
            return empty()

        eventually(stays_empty, "WorkflowEventQueue drained")

    def machine_steps(self, execution_name: str) -> list[Step]:
        return steps(execution_history(self.sfn, execution_arn(self.state_machine_arn, execution_name)))

    def machine_message(self, execution_name: str, state: str) -> dict[str, Any]:
        """The body the machine sent to WorkflowEventQueue from `state` (its TaskScheduled parameters)."""
        step = next(s for s in self.machine_steps(execution_name) if s.name == state)
        body: dict[str, Any] = step.parameters["MessageBody"]
        return body

    def machine_clock(self, execution_name: str, state: str) -> int:
        """The machine's own clock (seconds waited since the execution started) when it first entered `state`."""
        step = next(s for s in self.machine_steps(execution_name) if s.name == state)
        return int(step.input["run"]["waited_s"])

    def machine_reads(self, execution_name: str) -> list[tuple[int, str]]:
        """(the machine's clock, the status it read) of every poll of the warning so far, in order."""
        return [
            (int(step.input["run"]["waited_s"]), str(step.result["Item"]["status"]["S"]))
            for step in self.machine_steps(execution_name)
            if step.name == "ReadWarning" and step.result
        ]

    def statuses_read_before(self, execution_name: str, state: str) -> list[str]:
        """For each entry into `state`, the status the machine had read at its latest poll before it."""
        read = ""
        before: list[str] = []
        for step in self.machine_steps(execution_name):
            if step.name == "ReadWarning" and step.result:
                read = str(step.result["Item"]["status"]["S"])
            elif step.name == state:
                before.append(read)
        return before

    def hold(self, warning_id: str, status: str, *, reads: int, past_clock: int = 0) -> Held:
        """Leave the warning alone while its machine polls: until the machine has read `status` `reads` times, the
        last of them with its own clock at `past_clock` or later. Meanwhile, note the statuses the API and Step
        Functions show. The machine's progress, not the wall clock, ends the hold: a slow machine holds longer."""
        shown, executions = set(), set()

        def machine_has_read_it() -> tuple[int] | None:
            shown.add(self.api.warning(warning_id)["warning"]["status"])
            executions.add(self.execution_status(warning_id))
            clocks = [clock for clock, read in self.machine_reads(warning_id) if read == status]
            return (clocks[-1],) if len(clocks) >= reads and clocks[-1] >= past_clock else None

        (clock,) = eventually(machine_has_read_it, f"{warning_id} read {reads}x as {status}", interval=0.3)
        return Held(shown, {s for s in executions if s}, clock)

    def machine_clock_when_read(self, execution_name: str, status: str) -> int:
        """The machine's clock at the first poll that read the warning with a status other than `status`."""
        for step in self.machine_steps(execution_name):
            if step.name == "ReadWarning" and step.result["Item"]["status"]["S"] != status:
                return int(step.input["run"]["waited_s"])
        raise AssertionError(f"{execution_name} never read a status other than {status}")


@dataclass(frozen=True)
class Held:
    """What a hold saw: the warning's statuses through the API, its execution's statuses, and the machine's clock
    at the last poll of the hold."""

    statuses: set[str]
    execution_statuses: set[str]
    until_clock: int


def act_enterprise(world: World, record: WarningRecord, body: dict[str, Any]) -> dict[str, Any]:
    return world.api.act(enterprise_user(record.enterprise_id), record.warning_id, body)


def dispose(world: World, record: WarningRecord, outcome: str = "real") -> None:
    """The enterprise acknowledges, verifies on site and starts disposal."""
    act_enterprise(world, record, {"type": "acknowledge"})
    act_enterprise(world, record, {"type": "verify", "outcome": outcome})
    if outcome == "real":
        act_enterprise(world, record, {"type": "start_disposal", "note": "已停止吊装,卸载减重"})


def reading_normal(world: World, record: WarningRecord) -> bool:
    return bool(world.api.warning(record.warning_id)["warning"]["reading_normal"])


def archived(world: World, record: WarningRecord) -> dict[str, Any]:
    """Wait for the execution to succeed; the warning as the API then shows it."""
    world.wait_status(record.warning_id, "SUCCEEDED")
    return world.api.warning(record.warning_id)


# --- the scenarios -----------------------------------------------------------------------------------------------


@dataclass
class InTime:
    """Orange, acknowledged at once, disposed, clear requested (held for the duty centre), confirmed."""

    record: WarningRecord
    acknowledged_at_clock: int
    status_after_request: str
    held_statuses: set[str]
    held_execution_statuses: set[str]
    held_until_clock: int  # the machine's clock at its last poll before the duty centre confirmed
    enterprise_confirm_status: int
    final: dict[str, Any]
    on_wall_before: bool
    on_wall_after: bool
    told: list[Told]
    execution_status: str | None


def orange_acknowledged_in_time(world: World) -> InTime:
    fleet = world.fleet(ORANGE_IN_TIME, (0, 2, LOAD["orange"]))
    world.publish(ORANGE_IN_TIME, fleet, range(2))
    record = world.warning_of(ORANGE_IN_TIME)
    act_enterprise(world, record, {"type": "acknowledge"})
    act_enterprise(world, record, {"type": "verify", "outcome": "real"})
    act_enterprise(world, record, {"type": "start_disposal", "note": "已停止吊装,卸载减重"})
    world.publish(ORANGE_IN_TIME, fleet, range(2, 4))  # back to normal
    eventually(lambda: reading_normal(world, record), "the orange crane's reading normal again")
    on_wall_before = world.api.on_wall(record.warning_id)
    request = {"type": "request_clear", "reason": "disposed", "text": "已卸载至额定载荷以内,恢复正常"}
    after_request = act_enterprise(world, record, request)
    status, _ = world.api.call(
        enterprise_user(record.enterprise_id),
        "POST",
        f"/warnings/{record.warning_id}/actions",
        {"type": "confirm_closure"},
    )
    # the duty centre has not confirmed yet: hold the clear request for two polls of the machine, and until the
    # machine's own clock is past the acknowledge deadline
    past_deadline = DEADLINES["orange"]["acknowledge_s"] + 2 * POLL_S
    held = world.hold(record.warning_id, "clear_requested", reads=2, past_clock=past_deadline)
    world.api.act(DUTY_USER, record.warning_id, {"type": "confirm_closure", "note": "视频核实已恢复"})
    final = archived(world, record)
    return InTime(
        record=record,
        acknowledged_at_clock=world.machine_clock_when_read(record.warning_id, "raised"),
        status_after_request=after_request["status"],
        held_statuses=held.statuses,
        held_execution_statuses=held.execution_statuses,
        held_until_clock=held.until_clock,
        enterprise_confirm_status=status,
        final=final,
        on_wall_before=on_wall_before,
        on_wall_after=world.api.on_wall(record.warning_id),
        told=world.outbox.of(record.warning_id),
        execution_status=world.execution_status(record.warning_id),
    )


@dataclass
class OnRequest:
    """Yellow: reminders until acknowledged, disposed, reading normal again, closed by the enterprise's own
    request."""

    record: WarningRecord
    acknowledged_at_clock: int
    reminders_before_ack: list[Told]
    statuses_read_before_reminders: list[str]  # what the machine had read at its last poll before each reminder
    status_after_request: str
    final: dict[str, Any]
    on_wall_after: bool
    told: list[Told]
    execution_status: str | None


def yellow_closes_on_request(world: World) -> OnRequest:
    fleet = world.fleet(YELLOW_ON_REQUEST, (0, 2, LOAD["yellow"]))
    world.publish(YELLOW_ON_REQUEST, fleet, range(2))
    record = world.warning_of(YELLOW_ON_REQUEST)
    eventually(
        lambda: len(world.outbox.of(record.warning_id, "EnterpriseQueue", "reminder")) >= 2,
        "two reminders to the enterprise",
    )
    before_ack = world.outbox.of(record.warning_id, "EnterpriseQueue", "reminder")
    act_enterprise(world, record, {"type": "acknowledge"})
    act_enterprise(world, record, {"type": "verify", "outcome": "real"})
    act_enterprise(world, record, {"type": "start_disposal", "note": "大风停止作业"})
    world.publish(YELLOW_ON_REQUEST, fleet, range(2, 4))  # normal again
    eventually(lambda: reading_normal(world, record), "the yellow crane's reading normal again")
    after_request = act_enterprise(
        world, record, {"type": "request_clear", "reason": "disposed", "text": "风速已恢复正常,恢复作业"}
    )
    final = archived(world, record)
    return OnRequest(
        record=record,
        acknowledged_at_clock=world.machine_clock_when_read(record.warning_id, "raised"),
        reminders_before_ack=before_ack,
        statuses_read_before_reminders=world.statuses_read_before(record.warning_id, "Remind"),
        status_after_request=after_request["status"],
        final=final,
        on_wall_after=world.api.on_wall(record.warning_id),
        told=world.outbox.of(record.warning_id),
        execution_status=world.execution_status(record.warning_id),
    )


@dataclass
class NeverAcknowledged:
    """Red, nobody acknowledges: tiers 1, 2, 3; then a late disposal closed by the duty centre."""

    record: WarningRecord
    raised_at: float
    tiers_seen: list[int]
    tier_messages: dict[str, Told]
    area_tier2: Told
    sms_before_duplicate: int
    sms_after_duplicate: int
    escalations_after_duplicate: list[str]
    status_after_request: str
    held_statuses: set[str]
    final: dict[str, Any]
    on_wall_after: bool
    told: list[Told]
    timeline: str
    execution_status: str | None


def red_never_acknowledged(world: World) -> NeverAcknowledged:
    fleet = world.fleet(RED_NEVER_ACKNOWLEDGED, (0, 2, LOAD["red"]))
    raised = world.publish(RED_NEVER_ACKNOWLEDGED, fleet, range(2))
    record = world.warning_of(RED_NEVER_ACKNOWLEDGED)
    wid = record.warning_id
    tiers: list[int] = []  # the tier recorded on the warning, each time it was seen to change

    def tier_three_recorded() -> bool:
        tier = int(world.api.warning(wid)["warning"]["details"].get("escalation_tier", 0))
        if not tiers or tiers[-1] != tier:
            tiers.append(tier)
        return tier >= 3

    eventually(tier_three_recorded, f"tier 3 recorded on {wid}", interval=0.25)
    messages = {
        "escalation_tier1": world.outbox.wait_for(wid, "DutyQueue", "escalation_tier1"),
        "escalation_tier2": world.outbox.wait_for(wid, "RegulatorQueue", "escalation_tier2"),
        "escalation_tier3": world.outbox.wait_for(wid, "EmergencyQueue", "escalation_tier3"),
    }
    area = world.outbox.wait_for(wid, "AreaQueue", "escalation_tier2")

    # a redelivered tier-3 hand-back (SQS delivers at least once): nobody is told twice. Tier 3 is recorded, so
    # its hand-back was taken; once the queue is empty its handler has finished (SMS included)
    world.workflow_queue_drained()
    sms_before = len(world.sms_about(wid, TIER_SMS[3]))
    body = world.machine_message(wid, "RecordTier3")
    world.send_workflow_message(body)
    world.send_workflow_message(body)
    world.workflow_queue_drained()  # both duplicates taken and handled
    sms_after = len(world.sms_about(wid, TIER_SMS[3]))
    escalations = escalate_events(world.api.warning(wid))

    # late: acknowledged, found to be a false alarm, clear requested; red waits for the duty centre
    dispose(world, record, outcome="false_alarm")
    after_request = act_enterprise(
        world, record, {"type": "request_clear", "reason": "false_alarm", "text": "限位器误报,载荷正常"}
    )
    held = world.hold(wid, "clear_requested", reads=2)  # two polls of the machine: it waits for the duty centre
    world.api.act(DUTY_USER, wid, {"type": "confirm_closure", "note": "电话核实为误报"})
    final = archived(world, record)
    return NeverAcknowledged(
        record=record,
        raised_at=raised,
        tiers_seen=tiers,
        tier_messages=messages,
        area_tier2=area,
        sms_before_duplicate=sms_before,
        sms_after_duplicate=sms_after,
        escalations_after_duplicate=escalations,
        status_after_request=after_request["status"],
        held_statuses=held.statuses,
        final=final,
        on_wall_after=world.api.on_wall(wid),
        told=world.outbox.of(wid),
        timeline=render_timeline(world.sfn, execution_arn(world.state_machine_arn, wid)),
        execution_status=world.execution_status(wid),
    )


@dataclass
class RaisedMidway:
    """Blue, raised to red by a higher reading: red's deadlines from the change, not blue's from the raise."""

    record: WarningRecord
    raised_at: float
    changed_at: float
    level_after: str
    tier1: Told
    tier1_clock: int
    final: dict[str, Any]


def blue_raised_to_red(world: World) -> RaisedMidway:
    fleet = world.fleet(BLUE_RAISED_TO_RED, (0, 2, LOAD["blue"]), (2, 2, LOAD["red"]))
    raised = world.publish(BLUE_RAISED_TO_RED, fleet, range(2))
    record = world.warning_of(BLUE_RAISED_TO_RED)
    world.wait_status(record.warning_id, "RUNNING")
    eventually(  # the machine runs on blue's clock for a while: two polls by its own clock
        lambda: any(clock >= 2 * POLL_S for clock, _ in world.machine_reads(record.warning_id)),
        f"{record.warning_id} polled on blue's clock",
    )
    changed = world.publish(BLUE_RAISED_TO_RED, fleet, range(2, 3))
    level = eventually(
        lambda: world.api.warning(record.warning_id)["warning"]["level"] == "red" and "red", "the level raised"
    )
    tier1 = world.outbox.wait_for(record.warning_id, "DutyQueue", "escalation_tier1")
    tier1_clock = world.machine_clock(record.warning_id, "EscalateTier1")
    world.api.act(DUTY_USER, record.warning_id, {"type": "mark_false_alarm", "note": "演练数据,判定误报"})
    final = archived(world, record)
    return RaisedMidway(record, raised, changed, level, tier1, tier1_clock, final)


@dataclass
class LateReading:
    """Yellow; a red reading measured just before the enterprise acknowledged arrives just after it."""

    record: WarningRecord
    level_after: str
    told: list[Told]


def late_reading_after_an_action(world: World) -> LateReading:
    fleet = Fleet(
        world.platform.registry,
        incidents=(
            Incident(LATE_READING, 0, 2, {"static_pressure_mpa": PRESSURE["yellow"]}),
            Incident(LATE_READING, 2, 1, {"static_pressure_mpa": PRESSURE["red"]}),
        ),
    )
    world.publish(LATE_READING, fleet, range(2))
    record = world.warning_of(LATE_READING)
    measured = time.time()
    time.sleep(0.3)  # not a wait for an outcome: the acknowledge comes strictly after the reading's timestamp
    act_enterprise(world, record, {"type": "acknowledge"})
    world.publish(LATE_READING, fleet, range(2, 3), measured=measured)

    def level_now() -> str:
        return str(world.api.warning(record.warning_id)["warning"]["level"])

    level = eventually(lambda: level_now() == "red" and "red", "the late red reading applied", interval=0.2)
    world.outbox.wait_for(record.warning_id, "DutyQueue", "level_up")
    told = world.outbox.of(record.warning_id, "DutyQueue")
    world.api.act(DUTY_USER, record.warning_id, {"type": "mark_false_alarm", "note": "测试数据,判定误报"})
    archived(world, record)
    return LateReading(record, level, told)


@dataclass
class Faults:
    """A lost start and an aborted execution, repaired by the sweeper; a duplicated hand-back."""

    lost: WarningRecord
    aborted: WarningRecord
    lost_starts: list[str]
    executions_before_sweep: dict[str, list[str]]
    swept_at: float
    repaired: list[str]
    untracked_after_sweep: dict[str, list[str]]
    resumed_tier1: dict[str, Told]
    sms_before_duplicate: int
    sms_after_duplicate: int
    escalations_after_duplicate: list[str]
    duplicate_tells: int
    second_sweep_repaired: list[str]
    running_after_second_sweep: dict[str, list[str]]


def faults_are_repaired(world: World, losing: LosingStarter) -> Faults:
    fleets = {device: world.fleet(device, (0, 2, LOAD["orange"])) for device in (LOST_START, ABORTED)}
    for device, fleet in fleets.items():
        world.publish(device, fleet, range(2))
    lost, aborted = world.warning_of(LOST_START), world.warning_of(ABORTED)
    world.abort(aborted.warning_id)
    before = {w.warning_id: [e["status"] for e in world.executions(w.warning_id)] for w in (lost, aborted)}
    # not a wait for an outcome: the sweeper leaves warnings younger than its grace (by the wall clock) alone
    time.sleep(max(0.0, max(lost.raised_at, aborted.raised_at) + SWEEP_GRACE_S + 0.2 - time.time()))

    swept_at = time.time()
    assert world.platform.scheduler is not None
    repaired = list(world.platform.scheduler.fire()["repaired"])
    untracked = {}
    for record, _key in _open_warnings():
        running = world.running(record.warning_id)
        if not running:
            untracked[record.warning_id] = [e["status"] for e in world.executions(record.warning_id)]
    # the executions the sweep started (on a busy machine the aborted one may have escalated before its abort
    # landed: what resumes is the new execution's own tier 1)
    repairs = {w.warning_id: world.running(w.warning_id)[0] for w in (lost, aborted)}
    resumed = {
        wid: world.outbox.wait_for(wid, "DutyQueue", "escalation_tier1", execution=name)
        for wid, name in repairs.items()
    }

    # a duplicated tier-1 hand-back for the repaired warning: recorded once, nobody told twice
    wid = aborted.warning_id
    eventually(lambda: "1" in escalate_events(world.api.warning(wid)), "tier 1 recorded")
    eventually(
        lambda: any(step.name == "RecordTier1" and step.result for step in world.machine_steps(repairs[wid])),
        "the repaired execution handed tier 1 back",
    )
    world.workflow_queue_drained()  # the hand-back has been handled (SMS included)
    sms_before = len(world.sms_about(wid, TIER_SMS[1]))
    body = world.machine_message(repairs[wid], "RecordTier1")
    world.send_workflow_message(body)
    world.send_workflow_message(body)
    world.workflow_queue_drained()  # both duplicates taken and handled
    sms_after = len(world.sms_about(wid, TIER_SMS[1]))
    escalations = escalate_events(world.api.warning(wid))
    tells = len(world.outbox.of(wid, "DutyQueue", "escalation_tier1", execution=repairs[wid]))

    # a second sweep, a second later (a repair started now would get another name, `-r<second>`, so a needless
    # repair would show): every warning is tracked, so nothing to repair
    time.sleep(1.1)
    second = list(world.platform.scheduler.fire()["repaired"])
    running_after = {w.warning_id: world.running(w.warning_id) for w in (lost, aborted)}
    return Faults(
        lost=lost,
        aborted=aborted,
        lost_starts=list(losing.lost),
        executions_before_sweep=before,
        swept_at=swept_at,
        repaired=repaired,
        untracked_after_sweep=untracked,
        resumed_tier1=resumed,
        sms_before_duplicate=sms_before,
        sms_after_duplicate=sms_after,
        escalations_after_duplicate=escalations,
        duplicate_tells=tells,
        second_sweep_repaired=second,
        running_after_second_sweep=running_after,
    )


def _open_warnings() -> Iterator[tuple[WarningRecord, Any]]:
    yield from AuditedWarningStore.open_in_sectors(list(Sector))


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Run:
    world: World
    futures: dict[str, Future[Any]]

    def result(self, name: str) -> Any:
        return self.futures[name].result(timeout=SCENARIO_TIMEOUT_S)


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    saved_environ = dict(os.environ)
    platform = start(policy_json=json.dumps(POLICY), sweep_interval_s=3600)  # the tests fire the sweeper
    ingest = container().ingest
    original = ingest._workflow
    losing = LosingStarter(original, {LOST_START})
    ingest._workflow = losing
    outbox = Outbox(platform.client("sqs"), {q: platform.infra.queue_url(q) for q in AUDIENCE_QUEUES})
    sfn = platform.client("stepfunctions")
    state_machine_arn = platform.infra.state_machine_arn("DisposalStateMachine")
    pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="scenario")
    try:
        users = [DUTY_USER] + [
            enterprise_user(platform.registry.by_device[d].enterprise_id)
            for d in (ORANGE_IN_TIME, YELLOW_ON_REQUEST, RED_NEVER_ACKNOWLEDGED, BLUE_RAISED_TO_RED, LATE_READING)
        ]
        world = World(
            platform=platform,
            api=Api(platform.api_url, users),
            outbox=outbox,
            sfn=sfn,
            sqs=platform.client("sqs"),
            state_machine_arn=state_machine_arn,
            workflow_queue_url=platform.infra.queue_url("WorkflowEventQueue"),
        )
        outbox.start()
        futures: dict[str, Future[Any]] = {
            "in_time": pool.submit(orange_acknowledged_in_time, world),
            "on_request": pool.submit(yellow_closes_on_request, world),
            "never": pool.submit(red_never_acknowledged, world),
            "midway": pool.submit(blue_raised_to_red, world),
            "faults": pool.submit(faults_are_repaired, world, losing),
            "late": pool.submit(late_reading_after_an_action, world),
        }
        yield Run(world, futures)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        ingest._workflow = original
        outbox.stop()
        running = sfn.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING")["executions"]
        for execution in running:  # open warnings' executions would poll a server that is going away
            sfn.stop_execution(executionArn=execution["executionArn"])
        reset_moto(platform.endpoint_url)
        platform.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
        reset()


def changes(told: list[Told]) -> set[str]:
    return {m.change for m in told}


# --- 1. acknowledged in time -------------------------------------------------------------------------------------


def test_a_warning_acknowledged_in_time_is_never_escalated(run: Run) -> None:
    seen: InTime = run.result("in_time")
    assert seen.acknowledged_at_clock < DEADLINES["orange"]["acknowledge_s"]  # in time by the machine's clock
    assert seen.held_until_clock > DEADLINES["orange"]["acknowledge_s"] + POLL_S  # open past it, by the same clock
    assert not changes(seen.told) & set(ESCALATIONS), (sorted(changes(seen.told)), seen.acknowledged_at_clock)
    assert "reminder" not in changes(seen.told)  # orange has no reminders in this policy
    assert "escalation_tier" not in seen.final["warning"]["details"]
    assert [e for e in seen.final["timeline"] if e["type"] == "escalate"] == []


# --- 2. missed acknowledge: tier by tier -------------------------------------------------------------------------


def test_a_missed_acknowledge_escalates_tier_one_then_two_and_for_red_three(run: Run) -> None:
    seen: NeverAcknowledged = run.result("never")
    assert seen.tiers_seen == sorted(seen.tiers_seen) and seen.tiers_seen[-1] == 3  # the tier only ever rose
    tier1, tier2, tier3 = (seen.tier_messages[change] for change in ESCALATIONS)
    assert tier1.at < tier2.at < tier3.at
    limits = DEADLINES["red"]
    for message, tier, deadline in ((tier1, 1, "acknowledge_s"), (tier2, 2, "verify_s"), (tier3, 3, "clear_s")):
        assert message.attributes["change"] == f"escalation_tier{tier}"
        assert message.attributes["level"] == "red"
        assert (message.body["tier"], message.body["deadline_s"]) == (tier, limits[deadline])
        assert message.body["elapsed_s"] == limits[deadline]  # noticed at the first poll at its deadline
        assert message.at - seen.raised_at >= limits[deadline]  # never early by the wall clock either
    assert json.loads(tier1.attributes["audience"]) == ["duty", "enterprise"]
    assert json.loads(tier2.attributes["audience"]) == ["regulator", "area", "duty"]
    assert seen.area_tier2.body["reason"] == "verify_overdue"
    assert json.loads(tier3.attributes["audience"]) == ["emergency"]
    assert escalate_events(seen.final) == ["1", "2", "3"]


# --- 3. level raised mid-way -------------------------------------------------------------------------------------


def test_a_level_raised_midway_applies_the_new_levels_shorter_deadlines(run: Run) -> None:
    seen: RaisedMidway = run.result("midway")
    assert seen.level_after == "red"
    assert seen.tier1.attributes["level"] == "red"
    assert seen.tier1.body["deadline_s"] == DEADLINES["red"]["acknowledge_s"]
    assert seen.tier1.body["elapsed_s"] == DEADLINES["red"]["acknowledge_s"]  # the clock restarted at the change
    assert seen.tier1.at - seen.changed_at >= DEADLINES["red"]["acknowledge_s"]  # red's clock, from the change
    assert seen.tier1_clock < DEADLINES["blue"]["acknowledge_s"]  # before blue's deadline, by the machine's clock
    assert seen.final["warning"]["status"] == "archived"


def test_a_level_change_measured_before_an_action_and_ingested_after_it_still_applies(run: Run) -> None:
    seen: LateReading = run.result("late")
    assert "level_up" in changes(seen.told)  # the duty centre was told of red
    assert seen.level_after == "red"  # and the item (so the machine) has it too


# --- 4. who closes -----------------------------------------------------------------------------------------------


def test_orange_and_red_closures_wait_for_the_duty_centres_confirmation(run: Run) -> None:
    orange: InTime = run.result("in_time")
    red: NeverAcknowledged = run.result("never")
    assert orange.status_after_request == "clear_requested"
    assert orange.held_statuses == {"clear_requested"}
    assert orange.held_execution_statuses == {"RUNNING"}
    assert orange.enterprise_confirm_status == 403  # the enterprise may not confirm its own closure
    assert red.status_after_request == "clear_requested"
    assert red.held_statuses == {"clear_requested"}
    for final in (orange.final, red.final):
        closure = final["warning"]["details"]["closure"]
        assert (closure["confirmed"], closure["role"]) == (True, "duty")


def test_a_yellow_closes_on_the_enterprises_request_when_the_reading_is_normal(run: Run) -> None:
    seen: OnRequest = run.result("on_request")
    assert seen.acknowledged_at_clock < DEADLINES["yellow"]["acknowledge_s"]  # in time by the machine's clock
    assert seen.status_after_request == "closed"
    closure = seen.final["warning"]["details"]["closure"]
    assert (closure["confirmed"], closure["role"], closure["reason"]) == (False, "enterprise", "disposed")
    assert not changes(seen.told) & set(ESCALATIONS), (sorted(changes(seen.told)), seen.acknowledged_at_clock)


def test_reminders_repeat_until_the_warning_is_acknowledged(run: Run) -> None:
    seen: OnRequest = run.result("on_request")
    reminders = [m for m in seen.told if m.change == "reminder"]
    assert len(seen.reminders_before_ack) >= 2
    assert all(m.body["level"] == "yellow" and m.queue == "EnterpriseQueue" for m in reminders)
    gaps = [b.at - a.at for a, b in pairwise(reminders)]
    assert all(gap >= DEADLINES["yellow"]["reminder_s"] - 0.1 for gap in gaps), gaps
    # none after the acknowledge: the machine reminded only when its latest poll had read it unacknowledged
    assert seen.statuses_read_before_reminders, "the machine's history shows no reminder"
    assert set(seen.statuses_read_before_reminders) == {"raised"}, seen.statuses_read_before_reminders
    assert len(seen.statuses_read_before_reminders) == len(reminders)


# --- 5. closed → archived, off the wall --------------------------------------------------------------------------


def test_a_closed_warning_is_archived_by_its_execution_and_leaves_the_hot_wall(run: Run) -> None:
    in_time: InTime = run.result("in_time")
    on_request: OnRequest = run.result("on_request")
    never: NeverAcknowledged = run.result("never")
    assert in_time.on_wall_before
    for seen in (in_time, on_request, never):
        assert seen.execution_status == "SUCCEEDED"
        assert seen.final["warning"]["status"] == "archived"
        assert not seen.on_wall_after
        status, listed = run.world.api.call(DUTY_USER, "GET", "/warnings?status=archived&limit=100")
        assert status == 200
        assert seen.record.warning_id in {item["warning_id"] for item in listed["items"]}


# --- 6. faults ---------------------------------------------------------------------------------------------------


def test_the_sweeper_starts_a_lost_execution_and_repairs_an_aborted_one(run: Run) -> None:
    seen: Faults = run.result("faults")
    assert seen.lost_starts == [seen.lost.warning_id]
    assert seen.executions_before_sweep == {seen.lost.warning_id: [], seen.aborted.warning_id: ["ABORTED"]}
    assert sorted(seen.repaired) == sorted([seen.lost.warning_id, seen.aborted.warning_id])
    assert seen.untracked_after_sweep == {}  # every open warning has a RUNNING execution
    for warning_id, tier1 in seen.resumed_tier1.items():  # escalation resumes on a fresh clock
        assert tier1.body["elapsed_s"] == DEADLINES["orange"]["acknowledge_s"], warning_id
        assert tier1.at - seen.swept_at >= DEADLINES["orange"]["acknowledge_s"], warning_id


def test_a_duplicated_workflow_message_is_recorded_once_and_tells_nobody_twice(run: Run) -> None:
    seen: Faults = run.result("faults")
    assert seen.sms_before_duplicate > 0
    assert seen.sms_after_duplicate == seen.sms_before_duplicate
    assert seen.escalations_after_duplicate.count("1") == 1
    assert seen.duplicate_tells == 1


def test_a_duplicated_tier_three_message_texts_nobody_twice(run: Run) -> None:
    seen: NeverAcknowledged = run.result("never")
    assert seen.escalations_after_duplicate == ["1", "2", "3"]  # recorded once
    assert seen.sms_after_duplicate == seen.sms_before_duplicate


def test_a_second_sweep_leaves_a_repaired_warning_with_one_execution(run: Run) -> None:
    seen: Faults = run.result("faults")
    assert seen.second_sweep_repaired == []
    assert all(len(names) == 1 for names in seen.running_after_second_sweep.values())


# --- 7. the timeline, and what it cost ---------------------------------------------------------------------------


def test_the_red_warnings_history_reads_as_a_timeline(run: Run) -> None:
    seen: NeverAcknowledged = run.result("never")
    print(f"\n{seen.timeline}")
    lines = seen.timeline.splitlines()
    assert lines[0].endswith("history events") and "SUCCEEDED" in lines[0]
    published = [line for line in lines if " publish " in line]
    assert [next(c for c in ESCALATIONS if c in line) for line in published] == list(ESCALATIONS)
    assert any("status=clear_requested" in line for line in lines)
    assert any("status=archived" in line for line in lines)
    assert lines[-1].split()[-1] == "SUCCEEDED"


def _transitions(world: World, warning_id: str) -> list[tuple[str, str, Counter[str]]]:
    rows = []
    for execution in world.executions(warning_id):
        history = execution_history(world.sfn, execution["executionArn"])
        entered = Counter(
            e["stateEnteredEventDetails"]["name"] for e in history if str(e["type"]).endswith("StateEntered")
        )
        rows.append((execution["name"], execution["status"], entered))
    return rows


def test_state_transitions_per_warning_are_counted(run: Run) -> None:
    scenarios: dict[str, tuple[str, Any]] = {
        "orange, acknowledged in time": ("in_time", lambda s: [s.record]),
        "yellow, closed on request": ("on_request", lambda s: [s.record]),
        "red, never acknowledged": ("never", lambda s: [s.record]),
        "blue raised to red": ("midway", lambda s: [s.record]),
        "yellow, late red reading": ("late", lambda s: [s.record]),
        "orange, start lost (open)": ("faults", lambda s: [s.lost]),
        "orange, aborted (open)": ("faults", lambda s: [s.aborted]),
    }
    print("\nstate transitions (StateEntered events) per warning")
    print(f"{'scenario':<30} {'warning':<10} {'execution':<24} {'status':<10} polls esc rem  transitions")
    archived_runs = 0
    for label, (name, records) in scenarios.items():
        for record in records(run.result(name)):
            for execution, status, entered in _transitions(run.world, record.warning_id):
                polls = entered["Wait"]
                escalations = sum(n for state, n in entered.items() if state.startswith("Escalate"))
                reminders = entered["Remind"]
                restarts = entered["RestartClock"]
                total = entered.total()
                print(
                    f"{label:<30} {record.warning_id:<10} {execution:<24} {status:<10} "
                    f"{polls:>5} {escalations:>3} {reminders:>3}  {total:>5}"
                )
                if status == "SUCCEEDED":  # docs/disposal-workflow.md §5: T = 11 + 4·P + 3·(E + R) + 4·L
                    level_changes = restarts - 1
                    assert total == 11 + 4 * polls + 3 * (escalations + reminders) + 4 * level_changes, label
                    archived_runs += 1
    assert archived_runs == 5
