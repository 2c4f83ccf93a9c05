"""Delivery figures on moto's server: how long a message for people takes from being queued to the SMS handed to
the channel and the inbox entry written, and how many deliveries a realistic set of warnings makes, by kind,
channel and audience.

    .venv/bin/python -m bench.delivery        # about a minute

The platform is the local one's parts: infra/resources.json provisioned on moto, the seed registry installed
through the roster administration (people, the duty shifts around now, each enterprise's on-duty person), and the
deployed `app.deliver` handler fed by an SQS poller as Lambda's event source feeds it (batches of 10). The jobs are
made by the builders the ingest and the workflow use (`change_job`, `reminder_job`, `escalation_job`, and the
declaration notices), with the texts of `domain/texts.py`, under the production policy (DOMAIN.md §4 deadlines),
and queued with `SqsDeliveryJobs`, the adapter the ingest and the workflow enqueue with right after they record the
change or escalation. The clock starts at that enqueue: the record's own write before it (one conditional write,
a few ms) is the ingest bench's figure.

The scenario set: one warning per seeded enterprise (32), the levels in turn (8 red, 8 orange, 8 yellow, 8 blue).
Per level, 5 enterprises acknowledge within the deadline (reminders until then), 2 late (tier 1 escalation,
reminders until one interval past the deadline) and 1 never feeds back (tiers 1 and 2, and 3 for a red;
acknowledged at twice the deadline); the prompt and late ones recover (a recovery change). Four declarations: an
approval, a rejection, and both reminded before their windows end.

Two passes: "one at a time" (a job queued when the previous one's deliveries are all done: the path's own
latency) and "burst" (the rest at once, as in an incident storm: queueing included). Handing off is timed by
wrapping the SMS channel (`SnsSmsChannel` on moto: the `Publish` call) and the inbox's write.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3

from chalicelib.domain.catalog import Policy, build_policy
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.declarations import Declaration, DeclarationReason, DeclarationStatus
from chalicelib.domain.delivery import (
    DeliveryJob,
    change_job,
    declaration_decision_job,
    declaration_reminder_job,
    escalation_job,
    reminder_by_sms,
    reminder_job,
)
from chalicelib.domain.due import Stage
from chalicelib.domain.levels import Level
from chalicelib.domain.registry import Enterprise
from chalicelib.domain.texts import escalation_text, reminder_text
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.fanout import notification_for
from chalicelib.services.ports import InboxItem, SmsChannel, SmsMessage, SmsReceipt
from chalicelib.services.workflow import TIER_AUDIENCES
from local.aws import provision, start_moto_server
from local.runtime import app_environment, queue_poller
from local.seed import SeedRegistry, load_seed
from local.waiting import wait_until

LEVELS = (Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE)
PROMPT, LATE, SILENT = "prompt", "late", "silent"
PERSONAS = (PROMPT,) * 5 + (LATE,) * 2 + (SILENT,)  # per level, over the 8 enterprises of that level
ONE_AT_A_TIME = 40  # jobs of the first pass
DRAIN_TIMEOUT_S = 300.0


# --- the scenario ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    jobs: tuple[DeliveryJob, ...]
    warnings: int
    changes: int


def _risk_type(enterprise: Enterprise) -> tuple[str, str]:
    code, name = next(iter(enterprise.sector.spec.risk_types.items()))
    return code, name


def _change(enterprise: Enterprise, index: int, level: int, kind: ChangeKind, at: float, raised_at: float) -> Any:
    risk, name = _risk_type(enterprise)
    return WarningChange(
        warning_id=f"WB{index:04d}",
        device_id=f"{enterprise.enterprise_id}-D1",
        enterprise_id=enterprise.enterprise_id,
        enterprise_name=enterprise.name,
        sector=enterprise.sector,
        unit_id="U1",
        unit_name="一号单元",
        point_name="监测点1",
        area_codes=enterprise.area_codes,
        risk_type=risk,
        kind=kind,
        level=0 if kind is ChangeKind.RECOVER else level,
        previous_level=level if kind is ChangeKind.RECOVER else 0,
        base_level=level,
        reason=risk,
        title=name,
        value=None if kind is ChangeKind.RECOVER else 95.2,
        unit="%",
        at=at,
        raised_at=raised_at,
    )


def _record(change: WarningChange) -> WarningRecord:
    return WarningRecord(
        **change.header(),
        level=change.level,
        peak_level=change.level,
        status=WarningStatus.RAISED,
        reading_normal=False,
        raised_at=change.raised_at,
        updated_at=change.raised_at,
        title=change.title,
        reason=change.reason,
        value=change.value,
        unit=change.unit,
    )


def scenario(registry: SeedRegistry, policy: Policy, now: float) -> Scenario:
    jobs: list[DeliveryJob] = []
    changes = 0
    per_level: Counter[int] = Counter()
    for index, enterprise in enumerate(registry.enterprises):
        level = LEVELS[index % len(LEVELS)]
        persona = PERSONAS[per_level[level] % len(PERSONAS)]
        per_level[level] += 1
        deadline = policy.deadlines.for_level(level)
        raised_at = now
        raise_change = _change(enterprise, index, level, ChangeKind.RAISE, raised_at, raised_at)
        notification = notification_for(policy, raise_change, enterprise, registry.people)
        assert notification.text is not None
        jobs.append(change_job(raise_change, notification.route, notification.text, notification.app))
        changes += 1
        record = _record(raise_change)
        acknowledged_after = {
            PROMPT: deadline.acknowledge_s / 2,
            LATE: deadline.acknowledge_s + deadline.reminder_s,
            SILENT: 2 * deadline.acknowledge_s,
        }[persona]
        slot_s = deadline.reminder_s
        while slot_s and slot_s < acknowledged_after:
            slot = raised_at + slot_s
            text = reminder_text(level, record.warning_id, enterprise.name, raised_at + deadline.acknowledge_s)
            by_sms = reminder_by_sms(slot, raised_at, deadline.reminder_s, deadline.reminder_sms)
            jobs.append(reminder_job(record, slot, text, by_sms=by_sms))
            slot_s += deadline.reminder_s
        stages = {PROMPT: (), LATE: ((1, Stage.ACKNOWLEDGE),), SILENT: ((1, Stage.ACKNOWLEDGE), (2, Stage.VERIFY))}
        missed = list(stages[persona])
        if persona == SILENT and level == Level.RED:
            missed.append((3, Stage.CLEAR))
        regulators = policy.routing.regulators.get(enterprise.sector, ())
        for tier, stage in missed:
            due_at = (
                raised_at
                + {
                    Stage.ACKNOWLEDGE: deadline.acknowledge_s,
                    Stage.VERIFY: deadline.verify_s,
                    Stage.CLEAR: deadline.clear_s,
                }[stage]
            )
            text = escalation_text(level, record.warning_id, enterprise.name, stage.value, stage.zh)
            discriminator = f"v1:escalate:{stage.value}:t{tier}"
            jobs.append(
                escalation_job(
                    record, TIER_AUDIENCES[tier], discriminator, due_at, text, regulators, enterprise.area_codes
                )
            )
        if persona != SILENT:
            recovered = _change(
                enterprise, index, level, ChangeKind.RECOVER, raised_at + deadline.verify_s, raised_at
            )
            notification = notification_for(policy, recovered, enterprise, registry.people)
            assert notification.text is not None
            jobs.append(change_job(recovered, notification.route, notification.text, notification.app))
            changes += 1
    jobs += declaration_jobs(registry, now)
    return Scenario(tuple(jobs), warnings=len(registry.enterprises), changes=changes)


def declaration_jobs(registry: SeedRegistry, now: float) -> list[DeliveryJob]:
    jobs: list[DeliveryJob] = []
    for index, enterprise in enumerate(registry.enterprises[:4]):
        declared = Declaration(
            declaration_id=f"DCL-{index:016x}",
            enterprise_id=enterprise.enterprise_id,
            enterprise_name=enterprise.name,
            sector=enterprise.sector,
            area_codes=enterprise.area_codes,
            device_ids=(f"{enterprise.enterprise_id}-D1",),
            reason=DeclarationReason.EQUIPMENT_DAMAGE,
            starts_at=now,
            ends_at=now + 8 * 3600,
            declared_by="bench",
            created_at=now,
            updated_at=now,
        )
        if index < 2:
            status = DeclarationStatus.APPROVED if index == 0 else DeclarationStatus.REJECTED
            decided = replace_declaration(declared, status, now + 600)
            jobs.append(declaration_decision_job(decided))
        else:
            jobs.append(declaration_reminder_job(declared, now + 7 * 3600))
    return jobs


def replace_declaration(declaration: Declaration, status: DeclarationStatus, at: float) -> Declaration:
    rejection = "检修方案未附审批文件" if status is DeclarationStatus.REJECTED else None
    return declaration.model_copy(
        update={"status": status, "verified_by": "reg", "verified_at": at, "rejection_reason": rejection}
    )


# --- timing the hand-offs ----------------------------------------------------------------------------------------


@dataclass
class HandOffs:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # job id -> hand-off times
    inbox: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, channel: str, job_id: str) -> None:
        with self.lock:
            (self.sms if channel == "sms" else self.inbox)[job_id].append(time.time())

    def count(self) -> int:
        with self.lock:
            return sum(map(len, self.sms.values())) + sum(map(len, self.inbox.values()))


def _sms_job_id(dedupe_key: str, jobs: set[str]) -> str:
    """The job of an SMS's dedupe key (`{job id}:{recipient}`; both may contain colons)."""
    head = dedupe_key
    while head and head not in jobs:
        head = head.rpartition(":")[0]
    return head


def install_timing(hand_offs: HandOffs, job_ids: set[str]) -> None:
    """Wrap the SMS channel and the inbox the deployed handler's wiring builds (`bootstrap.delivery()`)."""
    from chalicelib import bootstrap
    from chalicelib.adapters import delivery_store

    build_channel = bootstrap.sms_channel

    class TimedSms:
        def __init__(self, inner: SmsChannel) -> None:
            self._inner = inner

        def send(self, message: SmsMessage) -> SmsReceipt:
            receipt = self._inner.send(message)
            hand_offs.add("sms", _sms_job_id(message.dedupe_key, job_ids))
            return receipt

    def timed_channel(settings: Any) -> SmsChannel | None:
        inner = build_channel(settings)
        return None if inner is None else TimedSms(inner)

    class TimedInbox(delivery_store.DynamoInbox):
        def put(self, item: InboxItem) -> None:
            super().put(item)
            hand_offs.add("inbox", item.job_id)

    mock.patch.object(bootstrap, "sms_channel", timed_channel).start()
    mock.patch.object(delivery_store, "DynamoInbox", TimedInbox).start()


# --- running -----------------------------------------------------------------------------------------------------


@dataclass
class Pass:
    name: str
    queued: dict[str, float] = field(default_factory=dict)  # job id -> enqueue time
    wall_s: float = 0.0

    def latencies(self, hand_offs: HandOffs, channel: str) -> list[float]:
        found = hand_offs.sms if channel == "sms" else hand_offs.inbox
        return [at - self.queued[job] for job, times in found.items() if job in self.queued for at in times]

    def job_latencies(self, hand_offs: HandOffs) -> list[float]:
        done: dict[str, float] = {}
        for found in (hand_offs.sms, hand_offs.inbox):
            for job, times in found.items():
                if job in self.queued:
                    done[job] = max(done.get(job, 0.0), *times)
        return [at - self.queued[job] for job, at in done.items()]


def expected_hand_offs(jobs: Sequence[DeliveryJob], receipts: dict[str, list[dict[str, Any]]]) -> int:
    return sum(
        1
        for job in jobs
        for row in receipts.get(job.subject, ())
        if row["job_id"] == job.job_id and row["outcome"] == "sent"
    )


def run(endpoint_url: str, registry: SeedRegistry) -> tuple[Scenario, Pass, Pass, HandOffs, list[dict[str, Any]]]:
    infra = provision(endpoint_url)
    os.environ.update(app_environment(infra))
    from chalicelib.bootstrap import reset

    reset()
    import app as chalice_app
    from chalicelib import bootstrap
    from chalicelib.adapters import audit_store, delivery_store, dynamo
    from chalicelib.adapters.delivery_store import SqsDeliveryJobs
    from chalicelib.settings import get_settings
    from local.seed import install

    logging.getLogger(chalice_app.app.app_name).setLevel(logging.WARNING)  # one line per job otherwise
    settings = get_settings()
    dynamo.bind(settings)
    audit_store.bind(settings)
    delivery_store.bind(settings)
    now = time.time()
    install(registry, now)
    policy = build_policy(settings.policy)
    plan = scenario(registry, policy, now)
    hand_offs = HandOffs()
    install_timing(hand_offs, {job.job_id for job in plan.jobs})
    sqs = boto3.client("sqs", endpoint_url=endpoint_url)
    queue = SqsDeliveryJobs(sqs, infra.queue_url("DeliveryQueue"))
    poller = queue_poller(infra, "DeliveryQueue", chalice_app.deliver, "deliver")
    poller.start()
    try:
        bootstrap.delivery()  # the handler's wiring built once, as a warm container has it
        single, burst = Pass("one at a time"), Pass("burst")
        started = time.perf_counter()
        for job in plan.jobs[:ONE_AT_A_TIME]:
            before = hand_offs.count()
            single.queued[job.job_id] = time.time()
            queue.enqueue([job])

            def delivered(before: int = before) -> bool:
                return hand_offs.count() > before and _settled(hand_offs)

            wait_until(
                delivered,
                timeout_s=30,
                what=f"deliveries of {job.job_id}",
                interval_s=0.01,
            )
        single.wall_s = time.perf_counter() - started
        rest = plan.jobs[ONE_AT_A_TIME:]
        started = time.perf_counter()
        at = time.time()
        for job in rest:
            burst.queued[job.job_id] = at
        queue.enqueue(list(rest))
        wait_until(
            lambda: _queue_empty(sqs, infra.queue_url("DeliveryQueue")) and _settled(hand_offs),
            timeout_s=DRAIN_TIMEOUT_S,
            what="the delivery queue drained",
        )
        burst.wall_s = time.perf_counter() - started
    finally:
        poller.stop()
    subjects = sorted({job.subject for job in plan.jobs})
    receipts = [row for subject in subjects for row in delivery_store.read_receipts(subject)]
    return plan, single, burst, hand_offs, receipts


_last_count: list[tuple[int, float]] = [(0, 0.0)]


def _settled(hand_offs: HandOffs, quiet_s: float = 0.3) -> bool:
    """No hand-off for `quiet_s`: a job's deliveries go out in one handler call."""
    now, count = time.monotonic(), hand_offs.count()
    last_count, since = _last_count[0]
    if count != last_count:
        _last_count[0] = (count, now)
        return False
    return now - since >= quiet_s


def _queue_empty(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


# --- printing ----------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def stats_line(label: str, values: Sequence[float]) -> str:
    if not values:
        return f"  {label:<28} n 0"
    return (
        f"  {label:<28} n {len(values):>4}  median {statistics.median(values) * 1e3:7.0f} ms"
        f"  p95 {percentile(values, 0.95) * 1e3:7.0f} ms  p99 {percentile(values, 0.99) * 1e3:7.0f} ms"
        f"  max {max(values) * 1e3:7.0f} ms"
    )


def print_latency(passes: Sequence[Pass], hand_offs: HandOffs) -> None:
    for one in passes:
        print(f"\n{one.name}: {len(one.queued)} jobs in {one.wall_s:.1f} s (queued -> handed off)")
        print(stats_line("SMS handed to the channel", one.latencies(hand_offs, "sms")))
        print(stats_line("inbox entry written", one.latencies(hand_offs, "inbox")))
        print(stats_line("job done (its last delivery)", one.job_latencies(hand_offs)))


def print_counts(plan: Scenario, receipts: Sequence[dict[str, Any]]) -> None:
    jobs = Counter(job.kind.value for job in plan.jobs)
    print(
        f"\nscenario: {plan.warnings} warnings, {plan.changes} warning changes, {len(plan.jobs)} jobs "
        f"({', '.join(f'{kind} {n}' for kind, n in sorted(jobs.items()))})"
    )
    outcomes = Counter(row["outcome"] for row in receipts)
    attempts = sum(row["attempts"] for row in receipts)
    print(
        f"deliveries: {len(receipts)} ({', '.join(f'{o} {n}' for o, n in sorted(outcomes.items()))}); "
        f"attempts {attempts} (retried {attempts - len(receipts)})"
    )
    table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for row in receipts:
        table[(row["kind"], row["channel"])][row["audience"]] += 1
    audiences = ("enterprise", "duty", "regulator", "area", "emergency")
    print(f"\n  {'kind':<22}{'channel':<8}" + "".join(f"{a:>11}" for a in audiences) + f"{'all':>8}{'per job':>9}")
    for (kind, channel), counts in sorted(table.items()):
        per_job = sum(counts.values()) / jobs[kind]
        print(
            f"  {kind:<22}{channel:<8}"
            + "".join(f"{counts.get(a, 0):>11}" for a in audiences)
            + f"{sum(counts.values()):>8}{per_job:>9.2f}"
        )


def print_reminder_policy(policy: Policy) -> None:
    """What a warning nobody ever acknowledges costs in reminder SMS until its clear deadline, before and after
    `reminder_sms` (the production policy, derived, not measured)."""
    print("\nreminders of a warning nobody acknowledges, until its clear deadline (production policy, derived):")
    print(f"  {'level':<8}{'interval':>10}{'reminders':>11}{'SMS before':>12}{'SMS now':>9}")
    for level in LEVELS:
        deadline = policy.deadlines.for_level(level)
        reminders = math.ceil(deadline.clear_s / deadline.reminder_s) - 1 if deadline.reminder_s else 0
        sms = sum(
            reminder_by_sms(k * deadline.reminder_s, 0.0, deadline.reminder_s, deadline.reminder_sms)
            for k in range(1, reminders + 1)
        )
        print(f"  {level.code:<8}{deadline.reminder_s:>9.0f}s{reminders:>11}{reminders:>12}{sms:>9}")


def main() -> None:
    registry = load_seed()
    began = time.perf_counter()
    server, endpoint_url = start_moto_server()
    try:
        print(f"Delivery bench: moto server at {endpoint_url}, the seed's {len(registry.enterprises)} enterprises")
        plan, single, burst, hand_offs, receipts = run(endpoint_url, registry)
    finally:
        server.stop()
    print_latency((single, burst), hand_offs)
    print_counts(plan, receipts)
    print_reminder_policy(build_policy())
    print(f"\n({time.perf_counter() - began:.0f} s in all)")


if __name__ == "__main__":
    main()
