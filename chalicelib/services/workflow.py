"""The closed loop's clock (DOMAIN.md §4, docs/disposal-workflow.md).

A warning's due times are data on the warning (`domain/due.py`). A disposal *timer* (one Step Functions execution)
sleeps until the warning's `next_due` and then sends one `due` message to the workflow queue; this use case takes
that message, asks the domain what is due now (an escalation of a missed stage, a reminder, the re-telling of an
escalation after a level-up, the archive), records it through the audited disposal path, tells people, and arms
the next timer. Whoever changes the due times (the ingest on a raise or level change, a person's action) arms a new
timer named `{warning_id}-{due_version}` and stops the previous one. The sweeper re-arms open warnings whose timer
is gone, from the stored due times.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from chalicelib.domain import due
from chalicelib.domain.catalog import Policy
from chalicelib.domain.delivery import escalation_job, reminder_by_sms, reminder_job
from chalicelib.domain.due import REMINDER_KEY, DueItem, DueKind, DueTimes, Stage
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import Audience
from chalicelib.domain.registry import Enterprise
from chalicelib.domain.texts import SmsText, escalation_text, reminder_text
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.observability import INHERIT, SERVICE, correlated, count, swallowed, traced
from chalicelib.services.ports import (
    DeliveryJobs,
    Directory,
    Escalator,
    Executions,
    OpenWarnings,
    Publisher,
    WarningReader,
)

logger = Logger(service=SERVICE, child=True, level=INHERIT)

WORKFLOW_ACTOR = Actor(user_id="workflow", role=Role.SYSTEM, name="处置时限跟踪")
DUE_MESSAGE = "due"
TIER_AUDIENCES: dict[int, tuple[Audience, ...]] = {
    1: (Audience.DUTY, Audience.ENTERPRISE),
    2: (Audience.REGULATOR, Audience.AREA, Audience.DUTY),
    3: (Audience.EMERGENCY,),
}
CONFIRM_AUDIENCES = (Audience.EMERGENCY, Audience.DUTY)  # the bureau supervises the duty centre, which is told too
_REPAIR_SUFFIX = re.compile(r"_[er]\d+$")


def timer_input(warning_id: str, times: DueTimes, now: float) -> dict[str, Any]:
    """A timer's input: sleep `wait_s` (`due.wait_seconds`: whole seconds, waking a little before `due_at`), then
    report `due_version`. `due_kind` and `level` only tell a reader of the execution what it sleeps for."""
    assert times.next_due is not None
    return {
        "warning_id": warning_id,
        "due_version": times.version,
        "wait_s": due.wait_seconds(times.next_due, now),
        "due_at": times.next_due,
        "due_kind": times.next_kind,
        "level": times.level,
    }


@dataclass
class WorkflowReport:
    escalations: int = 0
    reminders: int = 0
    jobs: int = 0  # delivery jobs enqueued (reminders, escalations)
    retold_jobs: int = 0  # of which enqueued again for a redelivered message (the ledger sends nothing twice)
    archived: int = 0
    stale: int = 0  # a due message for a warning that moved on (old version, archived, gone)
    moved_on: int = 0  # a due item that another writer handled first
    rearmed: int = 0  # a timer that woke early, armed again for the remainder
    failed_message_ids: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WorkflowMessage:
    message_id: str
    body: str


class MalformedMessageError(ValueError):
    pass


@dataclass(frozen=True)
class DueMessage:
    warning_id: str
    due_version: int
    due_at: float = 0.0  # when the timer's stage falls due (orders a batch; 0 when the sender did not say)


def parse_message(body: str) -> DueMessage:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedMessageError("not JSON") from exc
    if not isinstance(data, dict) or data.get("type") != DUE_MESSAGE:
        raise MalformedMessageError("not a due message")
    warning_id, version = data.get("warning_id"), data.get("due_version")
    if (
        not isinstance(warning_id, str)
        or not warning_id
        or isinstance(version, bool)
        or not isinstance(version, int)
    ):
        raise MalformedMessageError("warning_id or due_version missing or of the wrong type")
    due_at = data.get("due_at")
    if isinstance(due_at, bool) or not isinstance(due_at, int | float):
        due_at = 0.0
    return DueMessage(warning_id, version, float(due_at))


class WorkflowTimers:
    """Arms a warning's timer from its stored due times: the ingest's `Workflow` port and the API's `Timers`."""

    def __init__(self, executions: Executions, warnings: WarningReader, clock: Callable[[], float]) -> None:
        self._executions = executions
        self._warnings = warnings
        self._clock = clock

    def arm(self, record: WarningRecord, stop: str | None = None, suffix: str = "") -> bool:
        """Start the timer of the record's current due version (idempotent by name), then stop `stop` (the timer
        it supersedes). False when nothing is due or that timer exists already."""
        times = due.stored(record)
        started = False
        if times is not None and times.timer is not None and times.next_due is not None:
            payload = timer_input(record.warning_id, times, self._clock())
            started = self._executions.start(times.timer + suffix, payload)
        if stop is not None and (times is None or stop != times.timer):
            self._executions.stop(stop)
        return started

    def track(self, warning_id: str) -> None:
        """After a raise or an engine level change: arm the new due version, stop the one before."""
        record = self._warnings.get(warning_id)
        if record is None:
            return
        times = due.stored(record)
        previous = due.timer_name(warning_id, times.version - 1) if times and times.version > 1 else None
        self.arm(record, stop=previous)

    def superseding(self, record: WarningRecord, before_version: int) -> bool:
        """After a person's action changed the due times: arm the new version, stop `before_version`'s timer."""
        stop = due.timer_name(record.warning_id, before_version) if before_version > 0 else None
        return self.arm(record, stop=stop)


class WorkflowService:
    def __init__(
        self,
        policy: Policy,
        timers: WorkflowTimers,
        executions: Executions,
        escalator: Escalator,
        warnings: WarningReader,
        open_warnings: OpenWarnings,
        directory: Directory,
        jobs: DeliveryJobs | None,
        publisher: Publisher | None,
        clock: Callable[[], float],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._policy = policy
        self._timers = timers
        self._executions = executions
        self._escalator = escalator
        self._warnings = warnings
        self._open = open_warnings
        self._directory = directory
        self._jobs = jobs
        self._publisher = publisher
        self._clock = clock
        self._sleep = sleep

    # --- a timer fell due ---------------------------------------------------------------------------------------

    def handle(self, messages: Sequence[WorkflowMessage]) -> WorkflowReport:
        """Handle a batch of due messages in order of due time, so that sleeping off one timer's early wake-up
        (`early_wake_s`) never makes a later message in the batch late."""
        report = WorkflowReport()
        parsed: list[tuple[WorkflowMessage, DueMessage]] = []
        for message in messages:
            try:
                parsed.append((message, parse_message(message.body)))
            except MalformedMessageError as exc:
                logger.error(
                    "malformed workflow message (to the dead-letter queue after its retries)",
                    extra={"message_id": message.message_id, "problem": str(exc), "body": message.body[:300]},
                )
                count("WorkflowMalformed")
                report.malformed.append(message.message_id)
                report.failed_message_ids.append(message.message_id)
        for message, due_message in sorted(parsed, key=lambda pair: pair[1].due_at):
            timer = due.timer_name(due_message.warning_id, due_message.due_version)
            with correlated(
                message_id=message.message_id,
                warning_id=due_message.warning_id,
                due_version=due_message.due_version,
                timer=timer,
            ):
                try:
                    self._due(due_message, report)
                except Exception as exc:  # reported per message: the queue redelivers, then dead-letters it
                    logger.exception("workflow message failed", extra={"error": type(exc).__name__})
                    count("WorkflowFailed")
                    swallowed("workflow.message")
                    report.failed_message_ids.append(message.message_id)
        return report

    @traced("workflow.due")
    def _due(self, message: DueMessage, report: WorkflowReport, slept: bool = False) -> None:
        # The clock is read before the warning: what is found due is due at this instant, and a change stored
        # meanwhile (read below) still wins; the read's own time is not added to the recorded lateness.
        now = self._clock()
        record = self._warnings.get(message.warning_id)
        times = due.stored(record) if record is not None else None
        if record is None or times is None or record.status is WarningStatus.ARCHIVED:
            report.stale += 1
            count("WorkflowStale")
            logger.info("due message for a warning archived or gone ignored")
            return
        if times.version != message.due_version:
            report.stale += 1
            count("WorkflowStale")
            logger.info(
                "stale due message ignored",
                extra={"warning_id": message.warning_id, "due_version": message.due_version, "now": times.version},
            )
            self._tell_again(record, message.due_version, report)
            return
        items = due.due_now(record, now, self._policy.workflow.early_s)
        if not items:
            if times.next_due is None:
                return
            ahead = times.next_due - now
            if not slept and ahead <= self._policy.workflow.early_wake_s:  # whole-second waits round down
                self._sleep(max(0.0, ahead))
                self._due(message, report, slept=True)  # read again: the warning may have moved on meanwhile
                return
            self._timers.arm(record, suffix=f"_e{int(now * 1000)}")  # woke early: the remainder, a fresh name
            report.rearmed += 1
            count("TimersRearmed")
            logger.info("timer woke early: armed again for the remainder", extra={"next_due": times.next_due})
            return
        done = [item for item in items if self._do(record, times, item, now, report)]
        fresh = self._warnings.get(message.warning_id)
        if fresh is not None:
            self._timers.arm(fresh)  # the clock first: a failure telling people below must not stop it
        for item in done:
            if item.kind is DueKind.REMIND:
                self._tell_reminder(record, times, item, now, report)
            elif item.kind is not DueKind.ARCHIVE:
                recorded = due.recorded_version(fresh, item) if fresh is not None else None
                self._tell_escalation(record, recorded or times.version, item, now, report)

    def _do(
        self, record: WarningRecord, times: DueTimes, item: DueItem, now: float, report: WorkflowReport
    ) -> bool:
        """Record the due item through the audited action path; True when this call recorded it."""
        if item.kind is DueKind.ARCHIVE:
            archived = self._act(record.warning_id, {"type": "archive"}, report)
            report.archived += int(archived)
            count("Archived", int(archived))
            return archived
        if item.kind is DueKind.REMIND:
            slot = self._slot(record, times, item, now)
            reminded = self._act(record.warning_id, {"type": "remind", "slot": slot}, report)
            report.reminders += int(reminded)
            if reminded:
                count("Reminders", level=Level(record.level).code)
                logger.info("reminder recorded", extra={"slot": slot})
            return reminded
        assert item.stage is not None
        payload = {
            "type": "escalate",
            "tier": item.tier,
            "stage": item.stage.value,
            "retell": item.kind is DueKind.RETELL,
        }
        escalated = self._act(record.warning_id, payload, report)
        report.escalations += int(escalated)
        if escalated:
            count("Escalations", tier=str(item.tier), stage=item.stage.value)
            logger.info(
                "escalation recorded", extra={"tier": item.tier, "stage": item.stage.value, "kind": item.kind}
            )
        return escalated

    def _slot(self, record: WarningRecord, times: DueTimes, item: DueItem, now: float) -> float:
        reminder_s = self._policy.deadlines.for_level(record.level).reminder_s
        return max(item.at, due.reminder_slot(times.armed_at, reminder_s, now))

    def _act(self, warning_id: str, payload: dict[str, Any], report: WorkflowReport) -> bool:
        """The audited action; False when the warning moved on meanwhile (another writer did it, it was closed)."""
        try:
            self._escalator.act(WORKFLOW_ACTOR, warning_id, payload)
        except InvalidTransition as exc:
            report.moved_on += 1
            count("WorkflowMovedOn")
            logger.info("due item moved on", extra={"warning_id": warning_id, "code": exc.code})
            return False
        return True

    # --- telling people -------------------------------------------------------------------------------------

    def _audiences(self, record: WarningRecord, item: DueItem) -> tuple[Audience, ...]:
        assert item.stage is not None
        if item.kind is DueKind.RETELL:
            routing = self._policy.routing
            new = routing.route(record.level, record.sector, record.area_codes).audiences
            old = routing.route(item.from_level, record.sector, record.area_codes).audiences
            return tuple(audience for audience in new if audience not in old)
        if item.stage is Stage.CONFIRM:
            return CONFIRM_AUDIENCES
        return TIER_AUDIENCES[min(item.tier, 3)]

    def _tell_again(self, record: WarningRecord, due_version: int, report: WorkflowReport) -> None:
        """A due message whose version has moved on may be a redelivery after a crash between recording its due
        items and telling people: enqueue their delivery jobs again. The jobs' ids are those of the first telling,
        so the delivery ledger sends nothing twice; the audience topic is not published again (it is a feed for
        machines, told at most once when this window is hit)."""
        now, before = self._clock(), report.retold_jobs
        for item in due.recorded_under(record, due_version):
            self._tell_escalation(record, due_version, item, now, report, publish=False)
        reminder = record.details.get(REMINDER_KEY)
        if isinstance(reminder, Mapping) and reminder.get("due_version") == due_version:
            item = DueItem(DueKind.REMIND, float(reminder["slot"]))
            self._tell_reminder(record, due.stored(record), item, now, report, slot=item.at, publish=False)
        if report.retold_jobs > before:
            count("WorkflowJobsEnqueuedAgain", report.retold_jobs - before)

    def _tell_escalation(
        self,
        record: WarningRecord,
        due_version: int,
        item: DueItem,
        now: float,
        report: WorkflowReport,
        publish: bool = True,
    ) -> None:
        assert item.stage is not None
        enterprise = self._directory.enterprise(record.enterprise_id)
        text = escalation_text(
            record.level,
            record.warning_id,
            enterprise.name if enterprise else record.enterprise_name,
            item.stage.value,
            item.stage.zh,
            retold=item.kind is DueKind.RETELL,
        )
        audiences = self._audiences(record, item)
        body = {
            "type": "escalation",
            "change": f"escalation_tier{item.tier}",
            "tier": item.tier,
            "stage": item.stage.value,
            "stage_zh": item.stage.zh,
            "retell": item.kind is DueKind.RETELL,
            "reason": f"{item.stage.value}_overdue",
        }
        discriminator = f"v{due_version}:{item.kind.value}:{item.stage.value}:t{item.tier}"
        self._send(record, enterprise, audiences, body, text, item, now, report, discriminator, publish=publish)

    def _tell_reminder(
        self,
        record: WarningRecord,
        times: DueTimes | None,
        item: DueItem,
        now: float,
        report: WorkflowReport,
        slot: float | None = None,
        publish: bool = True,
    ) -> None:
        if times is None:
            return
        enterprise = self._directory.enterprise(record.enterprise_id)
        name = enterprise.name if enterprise else record.enterprise_name
        text = reminder_text(record.level, record.warning_id, name, times.acknowledge_by)
        slot = self._slot(record, times, item, now) if slot is None else slot
        limits = self._policy.deadlines.for_level(record.level)
        by_sms = reminder_by_sms(slot, times.armed_at, limits.reminder_s, limits.reminder_sms)
        body = {"type": "reminder", "change": "reminder", "reason": "not_acknowledged", "sms": by_sms}
        audiences = (Audience.ENTERPRISE,)
        self._send(record, enterprise, audiences, body, text, item, now, report, slot=slot, publish=publish)

    def _send(
        self,
        record: WarningRecord,
        enterprise: Enterprise | None,
        audiences: tuple[Audience, ...],
        body: dict[str, Any],
        sms: SmsText,
        item: DueItem,
        now: float,
        report: WorkflowReport,
        discriminator: str = "",
        slot: float | None = None,
        publish: bool = True,
    ) -> None:
        if not audiences:
            return
        text = sms.render()
        level = Level(record.level).code
        area = record.area_codes[0] if record.area_codes else "NONE"
        message = {
            **body,
            "warning_id": record.warning_id,
            "level": level,
            "sector": record.sector.value,
            "enterprise_id": record.enterprise_id,
            "area": area,
            "audience": [audience.value for audience in audiences],
            "reason": body.get("reason", ""),
            "due_at": item.at,
            "at": datetime.fromtimestamp(now, UTC).isoformat(),
            "text": text,
        }
        if publish and self._publisher is not None:
            self._publisher.publish(
                message,
                {
                    "level": {"DataType": "String", "StringValue": level},
                    "sector": {"DataType": "String", "StringValue": record.sector.value},
                    "enterprise_id": {"DataType": "String", "StringValue": record.enterprise_id},
                    "area": {"DataType": "String", "StringValue": area},
                    "audience": {"DataType": "String.Array", "StringValue": json.dumps(message["audience"])},
                    "change": {"DataType": "String", "StringValue": str(body["change"])},
                },
            )
            count("DeliveriesSent", channel="escalation_topic")
        regulators = self._policy.routing.regulators.get(record.sector, ())
        areas = enterprise.area_codes if enterprise else record.area_codes
        if slot is not None:
            job = reminder_job(record, slot, sms, by_sms=bool(body.get("sms")))
        else:
            job = escalation_job(record, audiences, discriminator, item.at, sms, regulators, areas)
        if self._jobs is not None:
            self._jobs.enqueue([job])
            report.jobs += 1
            report.retold_jobs += int(not publish)
            count("DeliveryJobsEnqueued", kind=job.kind.value)
        logger.info(
            "people told", extra={"change": body["change"], "audiences": message["audience"], "job_id": job.job_id}
        )

    # --- the sweeper ------------------------------------------------------------------------------------------

    @traced("workflow.sweep")
    def sweep(self) -> WorkflowReport:
        """Open warnings whose timer is gone (a lost start, a failed or stopped execution) get one again, from the
        stored due times: the clock carries on, it never restarts. Left alone (`_recent`): a warning raised or
        changed within `sweep_grace_s`, or whose next due time passed within it."""
        report = WorkflowReport()
        now = self._clock()
        running: set[str] | None = None
        for record in self._open.open_warnings():
            if self._recent(record, now):
                continue
            times = due.stored(record)
            if times is None or times.timer is None or times.next_due is None:
                continue
            if running is None:
                running = {_REPAIR_SUFFIX.sub("", name) for name in self._executions.running_names()}
            if times.timer in running:
                continue
            current = self._warnings.get(record.warning_id)  # the open index may lag: read the warning itself
            times = due.stored(current) if current is not None and current.is_open else None
            if current is None or times is None or times.timer is None or times.timer in running:
                continue
            if self._recent(current, now):
                continue
            if self._timers.arm(current, suffix=f"_r{int(now)}"):
                report.repaired.append(record.warning_id)
                logger.warning(
                    "open warning without a live timer re-armed",
                    extra={"warning_id": record.warning_id, "due_version": times.version, "timer": times.timer},
                )
        count("TimersRepaired", len(report.repaired))
        return report

    def _recent(self, record: WarningRecord, now: float) -> bool:
        """Raised or changed within the grace (its timer may be being armed), or its next due time passed within
        it (its timer has reported; the due message is on its way to the handler)."""
        times = due.stored(record)
        moments = [record.raised_at, record.updated_at]
        if times is not None and times.next_due is not None and times.next_due <= now:
            moments.append(times.next_due)
        return now - max(moments) < self._policy.workflow.sweep_grace_s
