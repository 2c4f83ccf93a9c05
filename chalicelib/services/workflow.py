"""The closed loop's clock (DOMAIN.md §4, docs/disposal-workflow.md): one Step Functions execution per warning
escalates tier by tier; this use case starts it, takes what it hands back (escalations to record and tell,
hand-overs to continue) and sweeps for open warnings that lost their execution."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.domain.catalog import Policy
from chalicelib.domain.errors import DomainError
from chalicelib.domain.levels import LEVEL_BY_CODE, Level
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import Audience, Route
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.texts import short_enterprise
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.fanout import recipients
from chalicelib.services.ports import Recipient

WORKFLOW_ACTOR = Actor(user_id="workflow", role=Role.SYSTEM, name="处置时限跟踪")
LEVEL_NAMES = ("blue", "yellow", "orange", "red")
# the tier is there already, or the warning was closed meanwhile: nothing left to do for this message
_ALREADY_DONE = frozenset({"already_escalated", "warning_closed", "warning_archived"})
_TIER_TEXT = {
    1: "超时未签收,请值守中心电话/视频连线企业",
    2: "超时未核实反馈,请主管部门和属地督促,可组织现场核查",
    3: "红色预警超时未消警,请应急管理局领导督办",
}


def disposal_input(record: WarningRecord, policy: Policy, now: float) -> dict[str, Any]:
    """The execution's input: the warning, all four levels' deadlines (it follows level changes), the clock."""
    deadlines = {
        name: {
            "acknowledge_s": int(deadline.acknowledge_s),
            "verify_s": int(deadline.verify_s),
            "clear_s": int(deadline.clear_s),
            "reminder_s": int(deadline.reminder_s),
        }
        for name, deadline in zip(
            LEVEL_NAMES,
            (policy.deadlines.blue, policy.deadlines.yellow, policy.deadlines.orange, policy.deadlines.red),
            strict=True,
        )
    }
    return {
        "warning_id": record.warning_id,
        "level": Level(record.level).code,
        "sector": record.sector.value,
        "enterprise_id": record.enterprise_id,
        "area": record.area_codes[0] if record.area_codes else "NONE",
        "deadlines": deadlines,
        "poll_s": policy.workflow.poll_s,
        "archive_ttl_s": policy.workflow.archive_ttl_s,
        "started_at_s": int(now),
        "max_polls": policy.workflow.max_polls,
    }


class Executions(Protocol):
    """Step Functions, as far as the workflow needs it."""

    def start(self, name: str, payload: dict[str, Any], state_machine_arn: str | None = None) -> bool:
        """Start an execution; False when one of that name exists already (a redelivery)."""
        ...

    def running_warnings(self) -> set[str]:
        """The warnings that have a RUNNING execution (whatever its name: first run, hand-over or repair)."""
        ...


class Escalator(Protocol):
    def act(self, actor: Actor, warning_id: str, payload: Any) -> Any: ...


class OpenWarnings(Protocol):
    def open_warnings(self) -> Iterable[WarningRecord]: ...


class Directory(Protocol):
    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def people(self) -> Sequence[Person]: ...


class SmsSender(Protocol):
    def sms(self, phone: str, text: str) -> None: ...


@dataclass
class WorkflowReport:
    escalations: int = 0
    sms: int = 0
    handovers: int = 0
    archived: int = 0
    failed_message_ids: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkflowMessage:
    message_id: str
    body: str


class WorkflowStarter:
    """The ingest's `Workflow` port: start following a new warning (idempotent by execution name)."""

    def __init__(self, policy: Policy, executions: Executions, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._executions = executions
        self._clock = clock

    def track(self, record: WarningRecord) -> None:
        self._executions.start(record.warning_id, disposal_input(record, self._policy, self._clock()))


class WorkflowService:
    def __init__(
        self,
        policy: Policy,
        executions: Executions,
        escalator: Escalator,
        warnings: OpenWarnings,
        directory: Directory,
        sms: SmsSender,
        clock: Callable[[], float],
    ) -> None:
        self._policy = policy
        self._executions = executions
        self._escalator = escalator
        self._warnings = warnings
        self._directory = directory
        self._sms = sms
        self._clock = clock

    # --- what the execution hands back ------------------------------------------------------------------------

    def handle(self, messages: Sequence[WorkflowMessage]) -> WorkflowReport:
        report = WorkflowReport()
        for message in messages:
            try:
                self._handle_one(json.loads(message.body), report)
            except Exception:  # reported per message: the queue redelivers, then dead-letters it
                report.failed_message_ids.append(message.message_id)
        return report

    def _handle_one(self, body: dict[str, Any], report: WorkflowReport) -> None:
        kind = body.get("type")
        if kind == "escalation":
            self._escalate(body, report)
        elif kind == "handover":
            self._executions.start(str(body["name"]), dict(body["input"]), str(body["state_machine_arn"]))
            report.handovers += 1
        elif kind == "archived":
            report.archived += 1

    def _escalate(self, body: dict[str, Any], report: WorkflowReport) -> None:
        """Record the tier on the warning; text its audiences only when the tier was reached just now, so a
        redelivered message, a repeated clear-overdue notice or a tier a duty officer reached by hand first is
        not texted twice (the escalation itself still reaches the consoles through the topic)."""
        tier = int(body["tier"])
        warning_id = str(body["warning_id"])
        try:
            self._escalator.act(WORKFLOW_ACTOR, warning_id, {"type": "escalate", "tier": tier})
        except DomainError as exc:
            if exc.code in _ALREADY_DONE:
                return
            raise
        report.escalations += 1
        self._tell(body, tier, report)

    def _tell(self, body: dict[str, Any], tier: int, report: WorkflowReport) -> None:
        audiences = tuple(Audience(a) for a in body.get("audience", ()) if a in Audience.__members__.values())
        sector = body["sector"]
        enterprise = self._directory.enterprise(str(body["enterprise_id"]))
        regulators = self._policy.routing.regulators.get(sector, ())
        areas = enterprise.area_codes if enterprise else ()
        route = Route(audiences=audiences, regulators=regulators, areas=areas)
        people: tuple[Recipient, ...] = recipients(route, enterprise, self._directory.people())
        name = short_enterprise(enterprise.name)[:10] if enterprise else str(body["enterprise_id"])
        level = Level(LEVEL_BY_CODE.get(str(body.get("level")), Level.BLUE))
        text = f"【滨海大应急】{level.zh}预警{body['warning_id']} {name}{_TIER_TEXT[min(tier, 3)]}。"[:70]
        for person in people:
            self._sms.sms(person.phone, text)
            report.sms += 1

    # --- the sweeper ------------------------------------------------------------------------------------------

    def sweep(self) -> WorkflowReport:
        """Open warnings without a live execution get a new one (a lost start, a failed or ended execution)."""
        report = WorkflowReport()
        now = self._clock()
        running: set[str] | None = None
        for record in self._warnings.open_warnings():
            if now - record.raised_at < self._policy.workflow.sweep_grace_s:
                continue
            if running is None:
                running = self._executions.running_warnings()
            if record.warning_id in running:
                continue
            payload = disposal_input(record, self._policy, now)
            started = self._executions.start(record.warning_id, payload) or self._executions.start(
                f"{record.warning_id}-r{int(now)}", payload
            )
            if started:
                report.repaired.append(record.warning_id)
        return report
