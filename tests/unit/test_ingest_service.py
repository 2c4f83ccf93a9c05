"""The ingest use case (`IngestService.handle`) over the shared fakes (`services/fakes.py`), in milliseconds: what
a batch of stream records leaves behind (device and unit states, warnings with their audit chain, people told
once, timers tracked, quarantine rows with their reason) and how it behaves when a port fails (docs/architecture.md
"Ingest: correct under retries", docs/device-protocol.md "What happens to a bad message").

The moto tiers keep what only they can show: the adapters' own conditional writes and translations
(`tests/integration/test_dynamo_adapters.py`), botocore-level faults under every adapter and racing containers
(`tests/integration/test_ingest_faults.py`), the Kinesis event shape through `app.ingest`
(`tests/functional/test_ingest_handler.py`).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.audit import verify_chain
from chalicelib.domain.catalog import build_engine, build_policy
from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import Contact, DeviceRegistration, Enterprise, Person
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.delivery_fakes import DeliverAtOnce
from chalicelib.services.fakes import (
    FakeDeliveryLedger,
    FakeExecutions,
    FakeNotifier,
    FakeQuarantine,
    FakeRegistry,
    FakeStates,
    FakeStreamLog,
    FakeWarnings,
    FakeWorkflow,
    is_transient,
)
from chalicelib.services.ingest import IngestRecord, IngestReport, IngestService
from chalicelib.services.ports import ConcurrentUpdateError, SmsUnavailable, SmsUnavailableReason, StreamEntry
from chalicelib.services.workflow import WorkflowTimers

T0 = 1_795_000_000.0
POLICY = build_policy({})
GT1, GT2 = "HC-T-GT1", "HC-T-GT2"  # two gas detectors of one enterprise, in two tank farms
NORMAL, ALARM = 1.0, 60.0  # %LEL: normal, and orange once held for two readings
ENTERPRISE = Enterprise(
    enterprise_id="E-HC-T",
    name="渤化测试化工",
    sector=Sector.HAZCHEM,
    area_codes=("TEDA",),
    contacts=(Contact(name="李娜", phone="+8613900000001"), Contact(name="何欣", phone="+8613900000002")),
)
DUTY = Person(person_id="duty-1", name="值班员", role="duty", phone="+8613900000010")
PHONES = {"+8613900000001", "+8613900000002", "+8613900000010"}  # who hears of an orange warning here


def registration(device_id: str, unit_id: str) -> DeviceRegistration:
    return DeviceRegistration(
        device_id=device_id,
        enterprise_id="E-HC-T",
        enterprise_name=ENTERPRISE.name,
        sector=Sector.HAZCHEM,
        unit_id=unit_id,
        unit_name=f"罐区{unit_id}",
        point_name="可燃气体",
        kind="gas_detector",
        area_codes=("TEDA",),
    )


@dataclass
class World:
    """The ports the ingest talks to, in memory, and the platform clock."""

    registry: FakeRegistry = field(
        default_factory=lambda: FakeRegistry(
            [registration(GT1, "U1"), registration(GT2, "U2")], [ENTERPRISE], [DUTY]
        )
    )
    states: FakeStates = field(default_factory=FakeStates)
    warnings: FakeWarnings = field(default_factory=lambda: FakeWarnings(deadlines=POLICY.deadlines))
    quarantine: FakeQuarantine = field(default_factory=FakeQuarantine)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    ledger: FakeDeliveryLedger = field(default_factory=FakeDeliveryLedger)
    workflow: FakeWorkflow = field(default_factory=FakeWorkflow)
    now: float = T0 + 60
    delivery: DeliverAtOnce = field(init=False)  # the delivery queue and handler in one step, over fakes

    def __post_init__(self) -> None:
        self.delivery = DeliverAtOnce(self.registry)

    def container(self, workflow: Any = None) -> IngestService:
        """A cold container: nothing in memory but what the ports hold."""
        return IngestService(**self.arguments(workflow))

    def arguments(self, workflow: Any = None) -> dict[str, Any]:
        return {
            "engine": build_engine(POLICY),
            "policy": POLICY,
            "registry": self.registry,
            "states": self.states,
            "warnings": self.warnings,
            "quarantine": self.quarantine,
            "notifier": self.notifier,
            "deliveries": self.ledger,
            "workflow": workflow or self.workflow,
            "clock": lambda: self.now,
            "is_transient": is_transient,
            "jobs": self.delivery,
        }

    def only_warning(self) -> WarningRecord:
        [record] = self.warnings.records.values()
        return record


AUTO = -1


def reading(
    number: int,
    device: str = GT1,
    lel: float = NORMAL,
    *,
    at: float | None = None,
    seq: int | None = AUTO,
    arrival: float | None = None,
    payload: dict[str, Any] | None = None,
    topic: dict[str, str] | None = None,
) -> IngestRecord:
    """Stream record `number` (its sequence number): a reading of `device` taken at `at` (default T0 + number) with
    device `seq` (default `number`), as the telemetry rule puts it on the stream; `payload` and `topic` override
    what the device wrote and what the topic said."""
    at = T0 + number if at is None else at
    body: dict[str, Any] = {
        "device_id": device,
        "enterprise_id": "E-HC-T",
        "sector": "hazchem",
        "ts": datetime.fromtimestamp(at, UTC).isoformat(),
        "metrics": {"gas_lel_pct": lel},
    }
    if seq is not None:
        body["seq"] = number if seq == AUTO else seq
    body.update(payload or {})
    document = {
        "payload": base64.b64encode(json.dumps(body).encode()).decode(),
        "topic_sector": "hazchem",
        "topic_enterprise": "E-HC-T",
        "topic_device": device,
        **(topic or {}),
    }
    return IngestRecord(str(number), json.dumps(document).encode(), at + 0.5 if arrival is None else arrival)


RAISING = [reading(1, lel=ALARM), reading(2, lel=ALARM)]  # the duration rule raises on the second


def redeliver_until_done(service: IngestService, batch: Sequence[IngestRecord], attempts: int = 6) -> int:
    """Play the event source: after item failures redeliver from the first failed record on; returns how many
    deliveries it took."""
    pending = list(batch)
    for attempt in range(1, attempts + 1):
        report = service.handle(pending)
        if not report.failed_record_ids:
            return attempt
        first = min(i for i, r in enumerate(pending) if r.record_id in report.failed_record_ids)
        pending = pending[first:]
    raise AssertionError("the batch never went through")


def told_once(world: World, changes: int = 1) -> bool:
    """Every change published once on the topic, and texted once to each of its recipients (one delivery job per
    change)."""
    topic = world.notifier.told()
    texted = Counter(world.delivery.sent)
    jobs = Counter(job.job_id for job in world.delivery.jobs)
    return (
        set(topic.values()) == {1}
        and len(topic) == changes
        and len(jobs) == changes
        and {phone for phone, _ in texted} == PHONES
        and len(texted) == changes * len(PHONES)
        and set(texted.values()) == {1}
    )


# --- normal flow -------------------------------------------------------------------------------------------------


def test_a_normal_reading_is_graded_and_writes_only_the_device_state_once_per_flush_interval() -> None:
    world = World()
    service = world.container()

    first = service.handle([reading(1)])
    later = service.handle([reading(2, at=T0 + 100), reading(3, at=T0 + 200)])
    world.now += POLICY_FLUSH_S
    flushed = service.handle([reading(4, at=world.now - 1)])

    assert (first.graded, later.graded, flushed.graded) == (1, 2, 1)
    assert (first.states_written, later.states_written, flushed.states_written) == (1, 0, 1)
    assert world.states.calls["save_device"] == 2
    stored = world.states.device(GT1)
    assert stored is not None and stored.last_ts == world.now - 1
    for fake in (world.warnings, world.quarantine, world.notifier, world.ledger, world.workflow):
        assert sum(fake.calls.values()) == 0, type(fake).__name__
    assert world.states.calls["save_unit"] == 0  # nothing stood in the tank farm


POLICY_FLUSH_S = 300.0  # `IngestService(state_flush_s=...)`'s default


def test_the_watermark_coalesced_in_memory_is_written_by_a_flush() -> None:
    world = World()
    service = world.container()
    service.handle([reading(1)])
    service.handle([reading(2)])

    assert service.flush() == 1
    stored = world.states.device(GT1)
    assert stored is not None and stored.last_ts == T0 + 2 and stored.last_record == 2


def test_an_alarm_raises_a_warning_stores_it_chained_tells_everyone_once_and_tracks_it() -> None:
    world = World()

    report = world.container().handle(RAISING)

    [change] = report.changes
    assert change.kind is ChangeKind.RAISE and change.level == Level.ORANGE
    record = world.only_warning()
    assert (record.warning_id, record.status, record.level) == (change.warning_id, WarningStatus.RAISED, 3)
    log = world.warnings.log(record.warning_id)
    assert [event.type for event in log.events] == ["raise"] and verify_chain(log.events, log.head).ok
    assert [entry["type"] for entry in log.engine_log] == ["engine.raise"]
    assert [n.change.warning_id for n in world.notifier.published] == [record.warning_id]
    assert {phone for phone, _ in world.delivery.sent} == PHONES
    assert told_once(world) and (report.notified, report.jobs) == (1, 1)  # the topic; one job for people
    assert world.ledger.statuses() == Counter({"sent": 1})  # the topic publication; the SMS in the delivery ledger
    assert world.workflow.tracked == [record.warning_id]
    assert report.failed_record_ids == [] and world.states.device(GT1) is not None


def test_a_raise_arms_the_warnings_first_timer_through_the_workflow_timers() -> None:
    world = World()
    executions = FakeExecutions()
    timers = WorkflowTimers(executions, world.warnings, lambda: world.now)

    world.container(workflow=timers).handle(RAISING)

    record = world.only_warning()
    assert [name for name, _ in executions.started] == [f"{record.warning_id}-1"]


def test_a_level_change_is_chained_told_and_re_tracked_and_a_recovery_only_latches_the_reading() -> None:
    world = World()
    service = world.container()
    service.handle(RAISING)

    lowered = service.handle([reading(3, lel=10.0)])
    recovered = service.handle([reading(4, lel=NORMAL)])

    assert [c.kind for c in (*lowered.changes, *recovered.changes)] == [ChangeKind.LEVEL_DOWN, ChangeKind.RECOVER]
    record = world.only_warning()
    assert (record.level, record.peak_level, record.reading_normal) == (Level.BLUE, Level.ORANGE, True)
    assert record.status is WarningStatus.RAISED  # latched: open until the enterprise reports back
    assert [e.type for e in world.warnings.log(record.warning_id).events] == ["raise", "level_down", "recover"]
    assert world.workflow.tracked == [record.warning_id] * 2  # the level change re-arms; a recovery does not
    assert told_once(world, changes=3)


# --- redelivery, replays, order and clocks -----------------------------------------------------------------------


def test_a_redelivered_batch_is_skipped_silently_in_the_same_container_and_in_a_cold_one() -> None:
    world = World()
    world.container().handle(RAISING)
    before = world.notifier.told()

    warm = world.container()
    warm.handle(RAISING)  # a cold container: the stored state knows the records
    again = warm.handle(RAISING)  # and now from its cache

    assert again.redelivered == 2 and again.graded == 0 and not again.quarantined
    assert world.notifier.told() == before and len(world.warnings.records) == 1
    assert world.quarantine.rows == {}


# The table of docs/device-protocol.md "Replays and order": the device's last accepted reading is ts T0+10, seq 5.
@pytest.mark.parametrize(
    ("at", "seq", "outcome"),
    [
        (T0 + 11, 1, "graded"),  # newer, a lower seq: a reboot
        (T0 + 10, None, "replayed"),
        (T0 + 10, 5, "replayed"),
        (T0 + 10, 6, "graded"),
        (T0 + 9, 4, "replayed"),  # seen before, sent again
        (T0 + 9, None, "out_of_order"),
        (T0 + 9, 6, "out_of_order"),  # never seen, but late: the state never rolls back
    ],
)
def test_a_devices_replays_and_late_messages_follow_the_protocols_table(
    at: float, seq: int | None, outcome: str
) -> None:
    world = World()
    service = world.container()
    service.handle([reading(100, at=T0 + 10, seq=5)])

    report = service.handle([late := reading(101, at=at, seq=seq)])

    if outcome == "graded":
        assert report.graded == 1 and world.quarantine.rows == {}
        return
    assert report.quarantined == Counter({outcome: 1}) and report.failed_record_ids == []
    [row] = world.quarantine.rows.values()
    assert (row.reason, row.record_id, row.device_id) == (outcome, "101", GT1)
    assert row.payload == base64.b64decode(json.loads(late.data)["payload"])  # the device's own bytes
    assert service.flush() == 1
    stored = world.states.device(GT1)
    assert stored is not None and (stored.last_ts, stored.last_seq) == (T0 + 10, 5)


@pytest.mark.parametrize(
    ("offset_s", "reason"),
    [
        (POLICY.grading.max_future_skew_s + 60, "timestamp_future"),
        (-POLICY.grading.max_past_age_s - 60, "timestamp_past"),
    ],
)
def test_a_clock_out_of_bounds_against_the_arrival_is_quarantined_and_a_data_quality_finding(
    offset_s: float, reason: str
) -> None:
    world = World()
    arrival = T0 + 5

    report = world.container().handle([reading(1, at=arrival + offset_s, arrival=arrival)])

    assert world.quarantine.reasons() == Counter({reason: 1})
    [change] = report.changes
    assert (change.risk_type, change.level, change.at) == ("data_quality", Level.BLUE, arrival)
    record = world.only_warning()
    assert record.risk_type == "data_quality" and record.reason == reason
    assert {phone for phone, _ in world.delivery.sent} == {c.phone for c in ENTERPRISE.contacts}


def test_clocks_are_judged_against_the_arrival_not_the_processing_time() -> None:
    world = World(now=T0 + 7200)  # the batch is handled two hours after it arrived

    report = world.container().handle([reading(1)])

    assert report.graded == 1 and world.quarantine.rows == {}


# --- identity -------------------------------------------------------------------------------------------------


def test_an_unknown_device_is_quarantined_and_gets_no_state() -> None:
    world = World()

    report = world.container().handle([reading(1, device="HC-T-NOPE")])

    assert report.quarantined == Counter({"unknown_device": 1})
    assert world.states.devices == {} and world.warnings.records == {}


@pytest.mark.parametrize(
    ("payload", "topic"),
    [
        ({"device_id": GT2}, {}),  # the payload names another device than its topic
        ({"enterprise_id": "E-HC-X"}, {}),  # ... another enterprise
        ({"sector": "fire", "metrics": {"static_pressure_mpa": 0.3}}, {}),  # ... another sector
        (
            {"enterprise_id": "E-HC-X"},
            {"topic_enterprise": "E-HC-X"},
        ),  # both claim what the registry does not give
    ],
    ids=["device", "enterprise", "sector", "registration"],
)
def test_a_spoofed_identity_is_quarantined_against_the_topics_device(
    payload: dict[str, Any], topic: dict[str, str]
) -> None:
    world = World()

    report = world.container().handle([reading(1, lel=ALARM, payload=payload, topic=topic)])

    assert report.quarantined == Counter({"spoofed": 1}) and report.graded == 0
    [row] = world.quarantine.rows.values()
    assert (
        row.device_id == GT1
        and row.topic == f"dyj/hazchem/{topic.get('topic_enterprise', 'E-HC-T')}/{GT1}/telemetry"
    )
    assert world.warnings.records == {} and world.notifier.told() == Counter()


def test_a_spoofed_faulty_reading_raises_no_data_quality_finding_against_the_device_it_names() -> None:
    world = World()

    world.container().handle([reading(1, lel=150.0, payload={"device_id": GT2})])  # out of range, and spoofed

    assert world.quarantine.reasons() == Counter({"spoofed": 1}) and world.warnings.records == {}


def test_a_record_that_is_not_the_rule_document_is_quarantined_with_its_stream_bytes() -> None:
    world = World()
    junk = IngestRecord("7", b"\x00 not json", T0)

    report = world.container().handle([junk, reading(8)])

    assert report.quarantined == Counter({"schema": 1}) and report.graded == 1
    [row] = world.quarantine.rows.values()
    assert (row.record_id, row.payload, row.device_id) == ("7", b"\x00 not json", None)


# --- faults ------------------------------------------------------------------------------------------------------


def test_a_transient_fault_storing_the_warning_hands_the_device_back_and_the_retry_tells_everyone_once() -> None:
    world = World()
    world.warnings.fail("create")
    service = world.container()

    first = service.handle(RAISING)

    assert first.failed_record_ids == ["1"]
    assert world.warnings.records == {} and world.notifier.told() == Counter()
    assert world.states.devices == {}  # the device's state is written last, after its effects
    assert redeliver_until_done(service, RAISING) == 1
    assert len(world.warnings.records) == 1 and told_once(world)


@pytest.mark.parametrize(
    "operation", ["create", "append_engine_event"], ids=["warning stored", "engine event appended"]
)
def test_a_lost_response_from_the_warning_store_is_retried_into_the_same_warning_and_tellings(
    operation: str,
) -> None:
    world = World()
    world.warnings.lose_response(operation)

    attempts = redeliver_until_done(world.container(), RAISING)

    assert attempts == 2
    record = world.only_warning()
    assert [e.type for e in world.warnings.log(record.warning_id).events] == ["raise"]
    assert told_once(world)


@pytest.mark.parametrize("fault", ["fail", "lose_response"])
def test_a_state_write_failing_after_people_were_told_is_retried_without_telling_them_again(fault: str) -> None:
    world = World()
    getattr(world.states, fault)("save_device")
    service = world.container()

    first = service.handle(RAISING)

    assert first.failed_record_ids == ["1"] and told_once(world)
    redeliver_until_done(service, RAISING)
    assert told_once(world) and len(world.warnings.records) == 1
    stored = world.states.device(GT1)
    assert stored is not None and stored.active_warnings()  # the warning stands in the stored state


def test_a_quarantine_write_failing_hands_the_whole_batch_back_and_the_retry_doubles_nothing() -> None:
    world = World()
    world.quarantine.fail("put")
    batch = [*RAISING, reading(3, device="HC-T-NOPE")]
    service = world.container()

    first = service.handle(batch)

    assert first.failed_record_ids == ["1"]  # the whole batch, from its first record
    redeliver_until_done(service, batch)
    assert world.quarantine.reasons() == Counter({"unknown_device": 1})
    assert told_once(world) and len(world.warnings.records) == 1


def test_a_transient_fault_before_grading_hands_the_whole_batch_back_with_nothing_written() -> None:
    world = World()
    world.states.fail("load_devices")
    service = world.container()

    report = service.handle(RAISING)

    assert report.failed_record_ids == ["1"] and report.graded == 0
    assert world.warnings.records == {} and world.states.devices == {}
    redeliver_until_done(service, RAISING)
    assert told_once(world)


def test_a_fault_that_is_no_infrastructures_raises_for_the_event_source_to_bisect() -> None:
    world = World()
    world.states.fail("load_devices", error=RuntimeError("a bug"))

    with pytest.raises(RuntimeError):
        world.container().handle(RAISING)


def test_a_change_the_store_refuses_for_what_it_carries_quarantines_the_devices_records_not_the_batch() -> None:
    world = World()
    world.warnings.fail("create", error=ValueError("item size has exceeded the maximum allowed size"))

    report = world.container().handle(RAISING)

    assert report.failed_record_ids == [] and report.quarantined == Counter({"unstorable_value": 2})
    assert report.changes == [] and report.graded == 0
    assert world.states.devices == {} and world.notifier.told() == Counter()


def test_a_failing_device_holds_back_only_itself() -> None:
    world = World()
    world.warnings.fail("create")
    batch = [reading(1, device=GT2), reading(2, lel=ALARM), reading(3, device=GT2), reading(4, lel=ALARM)]
    service = world.container()

    report = service.handle(batch)

    assert report.failed_record_ids == ["2"]
    calm = world.states.device(GT2)
    assert calm is not None and calm.last_record == 3  # written: its records are done
    assert world.states.device(GT1) is None
    retry = service.handle(batch[1:])  # the event source redelivers from the failed record on
    assert retry.failed_record_ids == [] and retry.redelivered == 1  # GT2's record 3, skipped
    assert told_once(world)


def test_a_unit_state_race_is_merged_without_failing_the_batch() -> None:
    world = World()
    world.states.fail("save_unit", error=ConcurrentUpdateError("U1"))

    report = world.container().handle(RAISING)

    assert report.unit_conflicts == 1 and report.failed_record_ids == []
    unit = world.states.unit("U1")
    assert unit is not None and unit.alarms


# --- telling: once-only through the ledger -----------------------------------------------------------------------


def test_an_sms_the_provider_cannot_take_now_leaves_the_batch_done_and_the_job_to_the_queues_retry() -> None:
    world = World()
    world.delivery.sms.faults = [SmsUnavailable(SmsUnavailableReason.THROTTLED)]  # the provider throttles once
    service = world.container()

    first = service.handle(RAISING)

    assert first.failed_record_ids == [] and len(world.warnings.records) == 1  # the ingest's part is done
    assert len(world.delivery.pending) == 1 and len(world.delivery.sent) == len(PHONES) - 1
    world.delivery.redeliver()  # the delivery queue's retry
    assert told_once(world) and world.delivery.pending == []


def test_a_refused_topic_publication_is_retried_until_it_goes_out_once() -> None:
    world = World()
    world.notifier.fail("publish", times=2)

    attempts = redeliver_until_done(world.container(), RAISING)

    assert attempts == 3 and told_once(world)


def test_an_sms_whose_outcome_is_unknown_is_not_sent_again() -> None:
    world = World()
    timeout = SmsUnavailable(SmsUnavailableReason.TIMEOUT, maybe_sent=True)  # it may have gone out
    world.delivery.sms.faults = [timeout]
    service = world.container()

    report = service.handle(RAISING)
    service.handle(RAISING)
    world.container().handle(RAISING)
    world.delivery.redeliver()

    assert report.failed_record_ids == [] and world.delivery.pending == []
    assert len(world.delivery.sent) == len(PHONES) - 1  # never sent again: the outcome is unknown, not failed


@pytest.mark.parametrize(
    ("operation", "fault"),
    [("claim", "lose_response"), ("settle", "lose_response"), ("settle", "fail")],
)
def test_a_ledger_write_failing_neither_doubles_nor_drops_a_telling(operation: str, fault: str) -> None:
    world = World()
    getattr(world.ledger, fault)(operation, times=4)

    redeliver_until_done(world.container(), RAISING, attempts=10)

    assert told_once(world)


def test_a_second_container_waits_while_the_first_holds_a_claim_then_tells_nobody_again() -> None:
    world = World()
    first, second = world.container(), world.container()
    world.ledger.lose_response("claim")  # the first holds a claim it does not know it got

    assert first.handle(RAISING).failed_record_ids == ["1"]
    assert second.handle(RAISING).failed_record_ids == ["1"]  # busy: it sends nothing and retries later
    redeliver_until_done(first, RAISING)
    redeliver_until_done(second, RAISING)

    assert told_once(world)


class ContainerKilled(BaseException):
    """The container stops mid-invocation: no `except Exception` runs."""


def test_the_topic_claim_of_a_container_that_died_is_taken_over_after_its_lease() -> None:
    world = World()
    world.notifier.lose_response("publish", error=ContainerKilled())  # dies between the publish and its settle
    with pytest.raises(ContainerKilled):
        world.container().handle(RAISING)
    successor = world.container()

    assert successor.handle(RAISING).failed_record_ids == ["1"]  # within the lease: wait
    world.now += 121
    redeliver_until_done(successor, RAISING)

    told = world.notifier.told()
    assert len(told) == 1 and sorted(told.values()) == [2]  # the one lost publication, published again
    assert {phone for phone, _ in world.delivery.sent} == PHONES


def test_each_record_is_accounted_for() -> None:
    world = World()
    batch = [
        *RAISING,
        reading(3, device="HC-T-NOPE"),
        IngestRecord("4", b"{}", T0),
        reading(5, device=GT2),
        reading(2, lel=ALARM),  # a redelivery inside the batch
    ]

    report: IngestReport = world.container().handle(batch)

    accounted = report.graded + sum(report.quarantined.values()) + report.redelivered
    assert accounted == report.received == len(batch) and report.failed_record_ids == []


# --- the shard lease and checkpoint, a cold container's catch-up (docs/decisions.md "Shard lease and checkpoint")

SHARD = "shardId-000000000000"


def on_the_stream(stream: FakeStreamLog, *records: IngestRecord) -> list[IngestRecord]:
    """The records as the event source hands them over (with their shard), put on the stream for a read-back."""
    placed = [replace(record, shard_id=SHARD) for record in records]
    for record in placed:
        device = json.loads(record.data)["topic_device"]
        assert record.arrival_s is not None
        stream.put(SHARD, StreamEntry(record.record_id, device, record.data, record.arrival_s))
    return placed


def reading_container(world: World, stream: FakeStreamLog) -> IngestService:
    """A cold container that reads the shard back (`stream_log`)."""
    return IngestService(**{**world.arguments(), "stream_log": stream})


def dying_container(world: World, stream: FakeStreamLog) -> list[IngestRecord]:
    """Container A takes the shard, grades GT1's readings 1 to 3 (normal: the state is written at first sight only;
    the shard's checkpoint, written on A's first batch, carries it through reading 1), and dies a minute later
    without writing anything more; what it was handed."""
    records = on_the_stream(stream, reading(1), reading(2), reading(3))
    dying = reading_container(world, stream)
    dying.handle(records[:1])
    world.now += 61
    dying.handle(records[1:])
    return records


def test_a_container_that_died_without_writing_its_cache_is_caught_up_from_the_stream() -> None:
    """Container B reads the shard back from the checkpoint, so a replay of A's last reading is `replayed`, as in
    one container, and B's state is A's."""
    world, stream = World(), FakeStreamLog()
    dying_container(world, stream)
    stored = world.states.device(GT1)
    assert stored is not None and stored.last_record == 1  # first sight; later normal readings write nothing
    checkpoint = world.states.checkpoints[SHARD]
    assert (checkpoint.sequence, dict(checkpoint.states)) == ("1", {})  # 2 and 3: applied, in A's cache only

    [replay] = on_the_stream(stream, reading(4, at=T0 + 3, seq=3))
    successor = reading_container(world, stream)
    report = successor.handle([replay])

    assert report.quarantined == Counter({"replayed": 1}) and report.graded == 0
    assert stream.calls["read"] == 1
    successor.flush()
    stored = world.states.device(GT1)
    assert stored is not None and (stored.last_record, stored.last_ts, stored.last_seq) == (3, T0 + 3, 3)


def test_without_the_read_back_a_cold_container_starts_from_the_stored_state() -> None:
    """The same story with no read-back: the replay is graded as new (what the catch-up exists to prevent)."""
    world, stream = World(), FakeStreamLog()
    dying_container(world, stream)

    [replay] = on_the_stream(stream, reading(4, at=T0 + 3, seq=3))
    report = world.container().handle([replay])

    assert report.graded == 1 and not report.quarantined


def test_a_container_that_stopped_cleanly_leaves_nothing_to_read_back() -> None:
    world, stream = World(), FakeStreamLog()
    records = on_the_stream(stream, *(reading(n, device=GT1 if n % 2 else GT2) for n in range(1, 9)))
    graceful = reading_container(world, stream)
    graceful.handle(records[:4])
    graceful.flush()  # writes the states, then the checkpoint: everything through record 4
    assert world.states.sequence(SHARD) == "4" and world.states.checkpoints[SHARD].states == {}

    successor = reading_container(world, stream)
    successor.handle(records[4:6])
    successor.handle(records[6:])

    assert stream.calls["read"] == 0
    assert world.states.sequence(SHARD) == "6"  # its first batch's, at once; the next a flush interval later


def test_a_device_that_stops_reporting_is_carried_by_the_shards_checkpoint_without_a_state_write() -> None:
    world, stream = World(), FakeStreamLog()
    records = on_the_stream(stream, reading(1), reading(2), reading(3, device=GT2), reading(4, device=GT2))
    service = reading_container(world, stream)
    service.handle(records[:1])
    service.handle(records[1:2])  # GT1 coalesced, then silent
    world.now += 61
    service.handle(records[2:3])
    assert world.states.sequence(SHARD) == "1"  # the first batch's; the next one a flush interval later

    world.now += POLICY_FLUSH_S
    service.handle(records[3:])

    checkpoint = world.states.checkpoints[SHARD]
    stored = {device: world.states.device(device) for device in (GT1, GT2)}
    assert {device: state.last_record for device, state in stored.items() if state} == {
        GT1: 1,
        GT2: 3,
    }  # first sight
    assert checkpoint.sequence == "4"
    assert {device: json.loads(text)["k"] for device, text in checkpoint.states.items()} == {GT1: "2", GT2: "4"}


def test_a_container_that_lost_the_shard_takes_it_back_and_catches_up_from_its_successors_checkpoint() -> None:
    """Lambda may hand a shard's batches to any of its containers: A, then B, then A again. B takes the lease; A,
    seeing the lease moved at its next batch, drops its cached states of the shard, takes the lease back and reads
    the shard back from B's checkpoint, so a replay of B's reading is `replayed` (A's cache would accept it)."""
    world, stream = World(), FakeStreamLog()
    records = on_the_stream(stream, reading(1), reading(2), reading(3), reading(4))
    first, second = reading_container(world, stream), reading_container(world, stream)
    first.handle(records[:1])
    second.handle(records[1:2])  # takes the lease, its checkpoint through 2 at once
    second.handle(records[2:3])  # coalesced: in B's cache only
    assert world.states.leases[SHARD].epoch == 2

    [replay] = on_the_stream(stream, reading(5, at=T0 + 3, seq=3))
    report = first.handle([records[3], replay])

    assert report.quarantined == Counter({"replayed": 1}) and report.graded == 1
    assert world.states.leases[SHARD].epoch == 3 and stream.calls["read"] == 1  # record 3, read back
    first.flush()
    stored = world.states.device(GT1)
    assert stored is not None and (stored.last_record, stored.last_seq) == (4, 4)


def test_a_stale_holder_is_refused_its_checkpoint_and_hands_its_batch_back() -> None:
    """A read its lease just before B took the shard over (the race a per-batch read leaves): A's checkpoint write
    is conditional on no later epoch having written one, so it is refused, A drops the shard and hands the batch
    back; B's checkpoint stands."""
    world, stream = World(), FakeStreamLog()
    records = on_the_stream(stream, reading(1), reading(2), reading(3))
    stale, holder = reading_container(world, stream), reading_container(world, stream)
    stale.handle(records[:1])
    lease_of_stale = world.states.leases[SHARD]
    holder.handle(records[1:2])
    world.now += POLICY_FLUSH_S
    world.states.leases[SHARD] = lease_of_stale  # what A reads: the lease as it was before B's takeover

    report = stale.handle(records[2:])

    assert report.failed_record_ids == [records[2].record_id]
    assert world.states.checkpoints[SHARD].epoch == 2 and world.states.sequence(SHARD) == "2"
    assert stale.flush() == 0  # it holds nothing now: writes nothing
    stored = world.states.device(GT1)
    assert stored is not None and stored.last_record == 1  # A's first sight; B's and A's later readings coalesced


def test_a_stored_state_is_written_at_first_sight_then_when_its_last_seen_is_a_touch_interval_behind() -> None:
    """What the device list shows as `last_seen` (the stored state's newest reading) lags by at most
    `state_touch_s`; in between, normal readings are carried by the shard's checkpoint."""
    world, stream = World(), FakeStreamLog()
    touch_s = 7200.0
    records = on_the_stream(stream, reading(1), reading(2, at=T0 + touch_s - 1), reading(3, at=T0 + touch_s + 1))
    service = reading_container(world, stream)

    written = [service.handle([record]).states_written for record in records]

    assert written == [1, 0, 1]
    stored = world.states.device(GT1)
    assert stored is not None and stored.last_ts == T0 + touch_s + 1


def test_a_checkpoint_that_cannot_be_written_hands_the_batch_back_and_the_retry_writes_it() -> None:
    world, stream = World(), FakeStreamLog()
    records = on_the_stream(stream, reading(1), reading(2))
    service = reading_container(world, stream)
    world.states.fail("save_checkpoint")  # throttled

    failed = service.handle(records)
    retried = service.handle(records)

    assert failed.failed_record_ids == [records[0].record_id] and failed.graded == 2
    assert retried.failed_record_ids == [] and retried.redelivered == 2
    assert world.states.sequence(SHARD) == "2"


def test_a_restart_from_the_checkpoint_keeps_a_pending_breach_and_the_units_alarm() -> None:
    """A breach waiting for its second reading is something that matters: its state and its unit's note are
    written at once; the watermark after it only in the checkpoint. The successor raises on the next reading."""
    world, stream = World(), FakeStreamLog()
    readings = (reading(1), reading(2, lel=ALARM), reading(3, device=GT2), reading(4, lel=ALARM))
    records = on_the_stream(stream, *readings)
    dying = reading_container(world, stream)
    dying.handle(records[:2])
    dying.handle(records[2:3])
    unit = world.states.unit("U1")
    assert unit is not None and set(unit.alarms) == {f"{GT1}|combustible_gas"}
    stored = world.states.device(GT2)
    assert stored is not None and stored.last_record == 3  # its first sight

    report = reading_container(world, stream).handle(records[3:])

    assert [(change.kind, change.level) for change in report.changes] == [(ChangeKind.RAISE, Level.ORANGE)]
    unit = world.states.unit("U1")
    assert unit is not None and set(unit.alarms) == {f"{GT1}|combustible_gas"}


def test_a_stream_that_cannot_be_read_back_leaves_the_batch_graded_and_is_counted() -> None:
    world, stream = World(), FakeStreamLog()
    dying_container(world, stream)
    [fourth] = on_the_stream(stream, reading(4))
    stream.fail("read", error=RuntimeError("no such shard"))

    report = reading_container(world, stream).handle([fourth])

    assert report.graded == 1 and not report.failed_record_ids


def test_a_transient_fault_reading_the_stream_back_hands_the_batch_back_and_the_retry_reads_again() -> None:
    world, stream = World(), FakeStreamLog()
    dying_container(world, stream)
    [replay] = on_the_stream(stream, reading(4, at=T0 + 3, seq=3))
    stream.fail("read")  # throttled
    successor = reading_container(world, stream)

    failed = successor.handle([replay])
    retried = successor.handle([replay])

    assert failed.failed_record_ids == [replay.record_id] and not failed.quarantined
    assert retried.quarantined == Counter({"replayed": 1})
    assert stream.calls["read"] == 2
