"""What the run observed, turned into a `DemoSummary`: the counts the orchestration kept (published, bad messages,
the feed, the people's actions, the executions that ended) and the platform's own tables (Quarantine, Warning and
its events), read once the run has drained. Only the rows and warnings of this run count: whatever the tables held
before it started is remembered and left out (moto keeps one state per process)."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.changes import DATA_QUALITY, ChangeKind
from chalicelib.domain.levels import LEVEL_BY_CODE, Level, Sector
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.rejections import RejectReason
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from local.actors import ActorEvent, Persona
from local.demo.summary import (
    BadMessageOutcome,
    DeliverySummary,
    DemoSummary,
    EscalationItem,
    EscalationSummary,
    Latency,
    LoopSummary,
    MessageCounts,
    OldestRunning,
    PeopleSummary,
    QuarantineSummary,
    RunOptions,
    ScenarioOutcome,
    ScenarioWarning,
    SectorOnline,
    SmsSummary,
    TimeStats,
    Timings,
    UnexpectedQuarantine,
    WarningSummary,
)
from local.demo.terminal import CST
from local.feed import AUDIENCE_QUEUES, ExecutionEnd, FeedStats, escalation_sms
from local.fleet import INCIDENTS, SimMessage
from local.runtime import LocalPlatform
from local.seed import SeedRegistry

HAZARD_LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
TIERS = (1, 2, 3)
RAISING = frozenset({ChangeKind.RAISE.value, ChangeKind.LEVEL_UP.value})
TIMER_DONE = frozenset({"SUCCEEDED", "ABORTED"})
"""A disposal timer that reported its due time, or one stopped because a change superseded it: both normal."""


def ingest_totals() -> Counter[str]:
    """The ingest handler's running totals: graded, quarantined, presence."""
    from chalicelib.bootstrap import container

    return container().ingest.totals


@dataclass(frozen=True)
class RunFacts:
    """What the orchestration kept during the run; everything else is read from the platform."""

    options: RunOptions
    timings: Timings
    published_good: int
    bad: Sequence[SimMessage]
    feed: FeedStats
    actor_events: Sequence[ActorEvent]
    personas: Mapping[str, Persona]
    ended: Sequence[ExecutionEnd]
    oldest_running: OldestRunning | None


class PlatformTables:
    """The Quarantine and Warning tables, less what they held before the run."""

    def __init__(self, platform: LocalPlatform) -> None:
        self._platform = platform
        self._started_wall = time.time()
        self._quarantine_before = {row["received_id"] for row in self._quarantine_rows()}
        self._warnings_before = {record.warning_id for record in self._all_warnings()}

    def quarantine_rows(self) -> list[dict[str, Any]]:
        return [row for row in self._quarantine_rows() if row["received_id"] not in self._quarantine_before]

    def warnings(self) -> list[WarningRecord]:
        return [record for record in self._all_warnings() if record.warning_id not in self._warnings_before]

    @staticmethod
    def receipts(warning_id: str) -> list[dict[str, Any]]:
        from chalicelib.adapters.delivery_store import read_receipts

        return read_receipts(warning_id)

    @staticmethod
    def events(warning_id: str) -> list[dict[str, Any]]:
        from chalicelib.adapters.dynamo import DynamoWarningStore

        return DynamoWarningStore.events(warning_id)

    def _quarantine_rows(self) -> list[dict[str, Any]]:
        """The rows of the days of the run (local dates), payloads included (large ones read back from S3)."""
        from chalicelib.adapters.dynamo import DynamoQuarantine

        s3, bucket = self._platform.client("s3"), self._platform.infra.env().get("DYJ_QUARANTINE_BUCKET", "")
        first = datetime.fromtimestamp(self._started_wall - 60, CST)
        last = datetime.fromtimestamp(time.time() + 60, CST)
        days = sorted({first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")})
        return [row for day in days for row in DynamoQuarantine.by_day(day, s3, bucket)]

    @staticmethod
    def _all_warnings() -> list[WarningRecord]:
        from chalicelib.adapters.dynamo import DynamoWarningStore

        return DynamoWarningStore.scan_all()


def summarise(facts: RunFacts, platform: LocalPlatform, tables: PlatformTables) -> DemoSummary:
    """The summary without its verdict (`local.demo.checks.with_verdict` adds it)."""
    records = tables.warnings()
    reached = {record.warning_id: levels_reached(tables.events(record.warning_id)) for record in records}
    receipts = {record.warning_id: tables.receipts(record.warning_id) for record in records}
    return DemoSummary(
        options=facts.options,
        timings=facts.timings,
        messages=message_counts(facts, platform),
        quarantine=quarantine_summary(facts.bad, tables.quarantine_rows()),
        warnings=warning_summary(records, reached, facts.feed),
        sms=sms_summary(facts.feed, receipts),
        escalations=escalation_summary(facts.feed, records, receipts),
        deliveries=delivery_summary(receipts),
        people=people_summary(facts.personas, facts.actor_events),
        loop=loop_summary(records, facts.ended, facts.oldest_running),
        scenarios=scenario_outcomes(records, reached, platform.registry, facts),
    )


def message_counts(facts: RunFacts, platform: LocalPlatform) -> MessageCounts:
    totals, counters = ingest_totals(), platform.bridge.counters
    published = facts.published_good + len(facts.bad)
    in_flight = published - totals["graded"] - totals["quarantined"] - counters.errored
    handled = totals["graded"] + totals["quarantined"] + totals["presence"]
    return MessageCounts(
        published=published,
        published_good=facts.published_good,
        published_bad=len(facts.bad),
        graded=totals["graded"],
        quarantined=totals["quarantined"],
        rule_errors=counters.errored,
        presence=totals["presence"],
        in_flight=in_flight,
        in_flight_detail={
            "not yet at the rule bridge": max(0, published - counters.received),
            "queued in the bridge": counters.received - counters.settled,
            "on the stream": max(0, counters.forwarded - handled - len(platform.failures)),
            "dropped after retries": len(platform.failures),
        },
    )


def quarantine_summary(bad: Sequence[SimMessage], rows: Sequence[dict[str, Any]]) -> QuarantineSummary:
    """Match each bad message to its quarantined row (same topic and bytes); rows left over were not expected."""
    unmatched: dict[tuple[str, bytes], list[dict[str, Any]]] = {}
    for row in rows:
        unmatched.setdefault((str(row.get("topic")), bytes(row["payload"])), []).append(row)
    outcomes: list[BadMessageOutcome] = []
    for message in bad:
        if not message.expected_reject:
            continue
        candidates = unmatched.get((message.topic, message.payload), [])
        exact = [row for row in candidates if row["reason"] == message.expected_reject]
        matched = (exact or candidates)[:1]
        for row in matched:
            candidates.remove(row)
        got = str(matched[0]["reason"]) if matched else None
        outcomes.append(
            BadMessageOutcome(
                device_id=message.device_id,
                topic=message.topic,
                expected_reason=message.expected_reject,
                got_reason=got,
                passed=got == message.expected_reject,
            )
        )
    by_reason, expected = Counter(str(row["reason"]) for row in rows), Counter(m.expected_reject for m in bad)
    return QuarantineSummary(
        by_reason={reason.value: by_reason[reason.value] for reason in RejectReason} | dict(by_reason),
        expected_by_reason={reason.value: expected[reason.value] for reason in RejectReason},
        table_rows=len(rows),
        bad_messages=outcomes,
        unexpected=[
            UnexpectedQuarantine(
                device_id=str(row.get("device_id")), reason=str(row.get("reason")), detail=str(row.get("detail"))
            )
            for group in unmatched.values()
            for row in group
        ],
    )


def levels_reached(events: Sequence[dict[str, Any]]) -> set[Level]:
    """The levels a warning was raised at or raised to, from its engine events."""
    raising = {f"engine.{ChangeKind.RAISE.value}", f"engine.{ChangeKind.LEVEL_UP.value}"}
    return {
        Level(LEVEL_BY_CODE[event["data"]["level"]])
        for event in events
        if event["type"] in raising and event["data"].get("level") in LEVEL_BY_CODE
    } - {Level.NONE}


def warning_summary(
    records: Sequence[WarningRecord], reached: Mapping[str, set[Level]], feed: FeedStats
) -> WarningSummary:
    hazards = [record for record in records if record.risk_type != DATA_QUALITY]
    cells: Counter[tuple[str, Level]] = Counter(
        (str(record.sector), level) for record in hazards for level in reached[record.warning_id]
    )
    peaks = Counter(Level(record.peak_level).code for record in hazards)
    return WarningSummary(
        raised={
            sector.value: {level.code: cells[(sector.value, level)] for level in HAZARD_LEVELS}
            for sector in Sector
        },
        by_peak_level={level.code: peaks[level.code] for level in HAZARD_LEVELS},
        data_quality=len(records) - len(hazards),
        changes_by_kind=dict(Counter(entry.kind for entry in feed.entries)),
        routing_mismatches=sum(1 for entry in feed.entries if not entry.routing_matches),
    )


def sms_summary(feed: FeedStats, receipts: Mapping[str, Sequence[Mapping[str, Any]]]) -> SmsSummary:
    by_level: dict[str, Counter[str]] = {}
    for entry in feed.entries:
        if entry.kind in RAISING:
            by_level.setdefault(entry.level, Counter()).update(entry.sms_sent)
    return SmsSummary(
        total=feed.sms_total,
        by_audience=dict(feed.sms_by_audience),
        for_raises_by_level={level: dict(counts) for level, counts in by_level.items()},
        planned_for_changes=sum(sum(entry.planned_sms.values()) for entry in feed.entries),
        for_escalations=escalation_sms_sent(receipts),
    )


def escalation_sms_sent(receipts: Mapping[str, Sequence[Mapping[str, Any]]]) -> int:
    return sum(
        1
        for rows in receipts.values()
        for row in rows
        if (row.get("kind"), row.get("channel"), row.get("outcome")) == ("escalation", "sms", "sent")
    )


def delivery_summary(receipts: Mapping[str, Sequence[Mapping[str, Any]]]) -> DeliverySummary:
    rows = [row for warning_rows in receipts.values() for row in warning_rows]
    by_kind: dict[str, Counter[str]] = {}
    by_audience: dict[str, Counter[str]] = {}
    for row in rows:
        by_kind.setdefault(str(row["kind"]), Counter())[str(row["channel"])] += 1
        by_audience.setdefault(str(row["channel"]), Counter())[str(row["audience"])] += 1
    reminder_sms = Counter(
        warning_id
        for warning_id, warning_rows in receipts.items()
        for row in warning_rows
        if (row.get("kind"), row.get("channel"), row.get("outcome")) == ("reminder", "sms", "sent")
    )
    return DeliverySummary(
        jobs_by_kind=dict(Counter(kind for kind, _ in {(str(r["kind"]), str(r["job_id"])) for r in rows})),
        by_kind={kind: dict(counts) for kind, counts in by_kind.items()},
        by_audience={channel: dict(counts) for channel, counts in by_audience.items()},
        outcomes=dict(Counter(str(row["outcome"]) for row in rows)),
        failed_reasons=dict(
            Counter(str(row.get("reason") or "-") for row in rows if row["outcome"] in ("failed", "unknown"))
        ),
        retried=sum(max(0, int(row.get("attempts", 1)) - 1) for row in rows),
        reminder_sms_for_one_warning=max(reminder_sms.values(), default=0),
        sms_latency_s=sms_latency(rows),
    )


def job_moment(job_id: str) -> float | None:
    """The moment a job is about, from its id (`domain.delivery.job_id`): a warning change's reading
    (`warning_change:{warning}:{event seq}`, seq = ms × 10 + kind) or a reminder's slot
    (`reminder:{warning}:{slot}`)."""
    kind, _, rest = job_id.partition(":")
    last = rest.rpartition(":")[2]
    if not last.isdigit():
        return None
    if kind == "warning_change":
        return int(last) // 10 / 1000
    if kind == "reminder":
        return float(last)
    return None


def sms_latency(rows: Sequence[Mapping[str, Any]]) -> dict[str, Latency]:
    found: dict[str, list[float]] = {}
    for row in rows:
        moment = job_moment(str(row["job_id"]))
        if moment is None or row["channel"] != "sms" or row["outcome"] != "sent" or int(row["attempts"]) != 1:
            continue
        found.setdefault(str(row["kind"]), []).append(float(row["at"]) - moment)
    return {kind: latency(values) for kind, values in found.items()}


def latency(values: Sequence[float]) -> Latency:
    ordered = sorted(values)
    if not ordered:
        return Latency(n=0, median_s=None, p95_s=None, max_s=None)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * 95 // 100) - 1))]
    return Latency(
        n=len(ordered),
        median_s=round(statistics.median(ordered), 3),
        p95_s=round(p95, 3),
        max_s=round(ordered[-1], 3),
    )


def escalation_summary(
    feed: FeedStats, records: Sequence[WarningRecord], receipts: Mapping[str, Sequence[Mapping[str, Any]]]
) -> EscalationSummary:
    escalations = [entry for entry in feed.escalations if not entry.is_reminder]
    return EscalationSummary(
        by_tier={tier: sum(1 for e in escalations if e.tier == tier) for tier in TIERS},
        clear_overdue_tier2=sum(1 for e in escalations if e.tier == 2 and e.reason == "clear_overdue"),
        reminders=feed.reminders,
        most_reminders_for_one_warning=max(
            (entry.ordinal for entry in feed.escalations if entry.is_reminder), default=0
        ),
        sms=escalation_sms_sent(receipts),
        recorded_tiers=recorded_tiers(records),
        published=[
            EscalationItem(
                warning_id=e.warning_id,
                enterprise_id=e.enterprise_id,
                sector=str(e.body.get("sector", "")),
                level=e.level,
                tier=e.tier,
                reason=e.reason,
                at=e.at,
                delivered_to=[a for a in AUDIENCE_QUEUES if a in e.delivered_to],
                sms_by_audience=dict(escalation_sms(e.body, e.occurrence, receipts.get(e.warning_id, ()))),
            )
            for e in escalations
        ],
    )


def recorded_tiers(records: Sequence[WarningRecord]) -> dict[int, int]:
    tiers = Counter(min(_tier(record), 3) for record in records if _tier(record))
    return {tier: tiers[tier] for tier in TIERS}


def _tier(record: WarningRecord) -> int:
    return int((record.details or {}).get("escalation_tier", 0))


def people_summary(personas: Mapping[str, Persona], events: Sequence[ActorEvent]) -> PeopleSummary:
    accepted: dict[str, Counter[str]] = {}
    unexpected: list[str] = []
    for event in events:
        if event.ok:
            accepted.setdefault(event.role.value, Counter())[event.action.value] += 1
        elif event.status != 409:
            unexpected.append(
                f"{event.username} {event.action.value} {event.warning_id}: HTTP {event.status} {event.error}"
            )
    return PeopleSummary(
        personas=dict(Counter(persona.value for persona in personas.values())),
        accepted={role: dict(counts) for role, counts in accepted.items()},
        answers=dict(Counter(event.status for event in events)),
        unexpected_answers=unexpected,
    )


def loop_summary(
    records: Sequence[WarningRecord], ended: Sequence[ExecutionEnd], oldest_running: OldestRunning | None
) -> LoopSummary:
    """Times, closures, archives and what is still open from the Warning table; transitions from the executions."""
    ack_times: dict[str, list[float]] = {}
    clear_times: dict[str, list[float]] = {}
    closures: Counter[str] = Counter()
    still_open: Counter[str] = Counter()
    archived = 0
    for record in records:
        details: Mapping[str, Any] = record.details or {}
        level = Level(record.peak_level).code
        acknowledged = details.get("acknowledged")
        if acknowledged:
            ack_times.setdefault(level, []).append(float(acknowledged["at"]) - record.raised_at)
        status = WarningStatus(record.status)
        if status.is_open:
            still_open[status.value] += 1
            continue
        archived += status is WarningStatus.ARCHIVED
        closure = details.get("closure") or {}
        if closure.get("at") is not None:
            clear_times.setdefault(level, []).append(float(closure["at"]) - record.raised_at)
        closures[closure_how(closure, details)] += 1
    per_warning: Counter[str] = Counter()
    for end in {end.name: end for end in ended}.values():
        per_warning[end.warning_id] += end.transitions
    archived_ids = sorted({end.warning_id for end in ended if end.archived})
    return LoopSummary(
        acknowledge_s={level: time_stats(values) for level, values in ack_times.items()},
        clear_s={level: time_stats(values) for level, values in clear_times.items()},
        closures_by_how=dict(closures.most_common()),
        closed=sum(closures.values()),
        archived=archived,
        still_open=dict(still_open),
        transitions_archived=[per_warning[warning_id] for warning_id in archived_ids],
        oldest_running=oldest_running,
        failed_executions=sorted({end.name for end in ended if end.status not in TIMER_DONE}),
    )


def closure_how(closure: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    if closure.get("role") != Role.DUTY.value:
        return "enterprise" if closure.get("role") == Role.ENTERPRISE.value else str(closure.get("role"))
    return "duty_confirmed" if details.get("clear_request") else "duty_false_alarm"


def time_stats(values: Sequence[float]) -> TimeStats:
    if not values:
        return TimeStats(n=0, median_s=None, max_s=None)
    return TimeStats(n=len(values), median_s=round(statistics.median(values), 3), max_s=round(max(values), 3))


def scenario_outcomes(
    records: Sequence[WarningRecord], reached: Mapping[str, set[Level]], registry: SeedRegistry, facts: RunFacts
) -> list[ScenarioOutcome]:
    by_device: dict[str, list[WarningRecord]] = {}
    for record in sorted(records, key=lambda record: record.raised_at):
        by_device.setdefault(record.device_id, []).append(record)
    outcomes = []
    for incident in INCIDENTS:
        device = registry.by_device[incident.device_id]
        warnings = by_device.get(incident.device_id, [])
        outcomes.append(
            ScenarioOutcome(
                device_id=incident.device_id,
                label=incident.label,
                start_step=incident.start_step,
                played=incident.start_step < facts.options.publishing_steps,
                sector=str(device.sector),
                enterprise_id=device.enterprise_id,
                persona=str(facts.personas.get(device.enterprise_id, "")),
                warnings=[scenario_warning(record, reached[record.warning_id]) for record in warnings],
            )
        )
    return outcomes


def scenario_warning(record: WarningRecord, reached: set[Level]) -> ScenarioWarning:
    details: Mapping[str, Any] = record.details or {}
    status = WarningStatus(record.status)
    return ScenarioWarning(
        warning_id=record.warning_id,
        data_quality=record.risk_type == DATA_QUALITY,
        peak_level=Level(record.peak_level).code,
        levels_reached=[level.code for level in sorted(reached)],
        status=status.value,
        escalation_tier=_tier(record),
        acknowledged_after_s=_after_raise(record, details.get("acknowledged")),
        closed_after_s=_after_raise(record, details.get("closure")),
        closed_how=None if status.is_open else closure_how(details.get("closure") or {}, details),
    )


def _after_raise(record: WarningRecord, step: Mapping[str, Any] | None) -> float | None:
    """Seconds from the raise to a lifecycle step recorded in the warning's details (`{"at": epoch seconds}`)."""
    if not step or step.get("at") is None:
        return None
    return round(float(step["at"]) - record.raised_at, 3)


def online_by_sector(start: float, end: float) -> dict[str, SectorOnline]:
    """The online-time ledger per sector over [start, end) (`OnlineLedger.days`, the evaluation's
    `DeviceDaySource`): 在线率 = online / (expected − declared outage). The ledger counts by local day, so the
    expected time is each day's elapsed time, not only the run's: a minute offline is a small share of it."""
    from chalicelib.bootstrap import base, online_ledger
    from chalicelib.domain.evaluation.indicators import online
    from chalicelib.domain.evaluation.periods import custom
    from chalicelib.services.ports import DeviceScope

    ledger = online_ledger(base().settings)
    period = custom(start, end)
    found: dict[str, SectorOnline] = {}
    for sector in Sector:
        days = ledger.days(DeviceScope(sector=sector.value), period)
        ratio, undeclared = online(days)
        found[sector.value] = SectorOnline(
            devices=len({day.device_id for day in days}),
            online=ratio.value,
            expected_s=round(sum(day.expected_s for day in days), 3),
            online_s=round(sum(day.online_s for day in days), 3),
            declared_outage_s=round(sum(day.declared_outage_s for day in days), 3),
            undeclared_outage_s=round(undeclared, 3),
        )
    return found
