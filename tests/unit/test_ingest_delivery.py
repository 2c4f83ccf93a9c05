"""Once-only telling (issue 8): each warning change reaches each recipient once, through retries, lost responses,
refusals, unknown outcomes and a second container, with the ingest service over in-memory ports."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from chalicelib.domain.catalog import build_engine, build_policy
from chalicelib.domain.changes import WarningChange
from chalicelib.domain.levels import Sector
from chalicelib.domain.registry import Contact, DeviceRegistration, Enterprise, Person
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.delivery_fakes import DeliverAtOnce
from chalicelib.services.ingest import IngestRecord, IngestService
from chalicelib.services.ports import (
    ClaimOutcome,
    ConcurrentUpdateError,
    DeliveryKey,
    DeliveryNotSentError,
    DeliveryOutcome,
    Notification,
    QuarantinedMessage,
    SmsUnavailable,
    SmsUnavailableReason,
)

T0 = 1_795_000_000.0
DEVICE = "HC-T-GT1"
ENTERPRISE = Enterprise(
    enterprise_id="E-HC-T",
    name="渤化测试化工",
    sector=Sector.HAZCHEM,
    area_codes=("TEDA",),
    contacts=(Contact(name="李娜", phone="+8613900000001"), Contact(name="何欣", phone="+8613900000002")),
)
REGISTRATION = DeviceRegistration(
    device_id=DEVICE,
    enterprise_id="E-HC-T",
    enterprise_name="渤化测试化工",
    sector=Sector.HAZCHEM,
    unit_id="U1",
    unit_name="罐区一",
    point_name="1#可燃气体",
    kind="gas_detector",
    area_codes=("TEDA",),
)
PEOPLE = (Person(person_id="duty-1", name="值班员", role="duty", phone="+8613900000010"),)


class Registry:
    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]:
        return {d: REGISTRATION for d in device_ids if d == DEVICE}

    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        return ENTERPRISE

    def people(self) -> Sequence[Person]:
        return PEOPLE


class States:
    def __init__(self) -> None:
        self.devices: dict[str, tuple[str, int]] = {}
        self.units: dict[str, tuple[str, int]] = {}

    def load_devices(self, device_ids: Iterable[str]) -> dict[str, DeviceState]:
        found = {d: DeviceState.loads(d, *self.devices[d]) for d in device_ids if d in self.devices}
        return {d: found.get(d) or DeviceState(d) for d in device_ids}

    def load_units(self, unit_ids: Iterable[str]) -> dict[str, UnitState]:
        found = {u: UnitState.loads(u, *self.units[u]) for u in unit_ids if u in self.units}
        return {u: found.get(u) or UnitState(u) for u in unit_ids}

    def save_device(self, state: DeviceState, last_seen: float) -> None:
        if self.devices.get(state.device_id, ("", 0))[1] != state.version:
            raise ConcurrentUpdateError(state.device_id)
        state.version += 1
        self.devices[state.device_id] = (state.dumps(), state.version)

    def save_unit(self, state: UnitState) -> None:
        if self.units.get(state.unit_id, ("", 0))[1] != state.version:
            raise ConcurrentUpdateError(state.unit_id)
        state.version += 1
        self.units[state.unit_id] = (state.dumps(), state.version)


class Warnings:
    def __init__(self) -> None:
        self.records: dict[str, WarningRecord] = {}
        self.events: set[tuple[str, int]] = set()

    def create(self, record: WarningRecord) -> bool:
        return self.records.setdefault(record.warning_id, record) is record

    def apply_change(self, change: WarningChange) -> bool:
        return True

    def append_engine_event(self, change: WarningChange) -> bool:
        key = (change.warning_id, change.event_seq)
        fresh = key not in self.events
        self.events.add(key)
        return fresh

    def get(self, warning_id: str) -> WarningRecord | None:
        return self.records.get(warning_id)


class Quarantine:
    def __init__(self) -> None:
        self.rows: dict[str, QuarantinedMessage] = {}

    def put(self, items: Sequence[QuarantinedMessage]) -> None:
        self.rows.update((item.record_id, item) for item in items)


@dataclass
class Notifier:
    """Records what went out; `faults` are raised by the next sends, in order (None: send normally)."""

    topic: list[str] = field(default_factory=list)
    faults: list[Exception | None] = field(default_factory=list)
    sent_before_fault: bool = False  # the fault comes after the message went out (a lost response)

    def _send(self, record: list[str] | list[tuple[str, str]], entry: object) -> None:
        fault = self.faults.pop(0) if self.faults else None
        if fault is None or self.sent_before_fault:
            record.append(entry)  # type: ignore[arg-type]
        if fault is not None:
            raise fault

    def publish(self, notification: Notification) -> None:
        self._send(self.topic, notification.change.dedupe_key)


@dataclass
class Ledger:
    """The claim rules of `DynamoDeliveryLedger`, in memory; `lose` loses the response of the next writes."""

    items: dict[DeliveryKey, tuple[str, str, float]] = field(default_factory=dict)
    lose: list[str] = field(default_factory=list)  # "claim" / "settle": apply, then raise; "settle fails"

    def claim(self, key: DeliveryKey, owner: str, now: float, lease_s: float) -> ClaimOutcome:
        status, holder, at = self.items.get(key, ("", "", 0.0))
        if status in ("sent", "unknown"):
            return ClaimOutcome.DONE
        if status == "claimed" and holder != owner and at >= now - lease_s:
            return ClaimOutcome.BUSY
        self.items[key] = ("claimed", owner, now)
        self._maybe_lose("claim")
        return ClaimOutcome.MINE

    def settle(self, key: DeliveryKey, owner: str, outcome: DeliveryOutcome, now: float) -> None:
        if self.lose and self.lose[0] == "settle fails":
            self.lose.pop(0)
            raise TimeoutError("settle not applied")
        if self.items[key][1] == owner:
            self.items[key] = (outcome.value, owner, now)
            self._maybe_lose("settle")

    def _maybe_lose(self, write: str) -> None:
        if self.lose and self.lose[0] == write:
            self.lose.pop(0)
            raise TimeoutError(f"{write} applied, response lost")


@dataclass
class World:
    states: States = field(default_factory=States)
    warnings: Warnings = field(default_factory=Warnings)
    quarantine: Quarantine = field(default_factory=Quarantine)
    notifier: Notifier = field(default_factory=Notifier)
    ledger: Ledger = field(default_factory=Ledger)
    now: float = T0 + 5
    delivery: DeliverAtOnce = field(default_factory=lambda: DeliverAtOnce(Registry()))

    def container(self) -> IngestService:
        policy = build_policy({})
        return IngestService(
            engine=build_engine(policy),
            policy=policy,
            registry=Registry(),
            states=self.states,
            warnings=self.warnings,
            quarantine=self.quarantine,
            notifier=self.notifier,
            deliveries=self.ledger,
            workflow=None,
            clock=lambda: self.now,
            is_transient=lambda exc: isinstance(exc, TimeoutError),
            jobs=self.delivery,
        )


def reading(seq: int, lel: float) -> IngestRecord:
    body = {
        "device_id": DEVICE,
        "enterprise_id": "E-HC-T",
        "sector": "hazchem",
        "ts": datetime.fromtimestamp(T0 + seq, UTC).isoformat(),
        "seq": seq,
        "metrics": {"gas_lel_pct": lel},
    }
    document = {
        "payload": base64.b64encode(json.dumps(body).encode()).decode(),
        "topic_sector": "hazchem",
        "topic_enterprise": "E-HC-T",
        "topic_device": DEVICE,
    }
    return IngestRecord(str(1000 + seq), json.dumps(document).encode(), T0 + seq + 0.5)


RAISING_BATCH = [reading(1, 60.0), reading(2, 61.0)]  # a breach held for two readings raises


def deliver_until_done(service: IngestService, batch: list[IngestRecord], attempts: int = 6) -> int:
    """Redeliver as Lambda does: the whole batch when the handler raised, else from the first failed record."""
    for attempt in range(attempts):
        try:
            report = service.handle(batch)
        except Exception:
            continue
        if not report.failed_record_ids:
            return attempt + 1
        first = min(batch.index(r) for r in batch if r.record_id in report.failed_record_ids)
        batch = batch[first:]
    raise AssertionError("the batch never went through")


def told(world: World) -> Counter[object]:
    return Counter([*world.notifier.topic, *world.delivery.sent])


@pytest.fixture
def clean() -> World:
    world = World()
    deliver_until_done(world.container(), list(RAISING_BATCH))
    return world


def test_a_raise_is_told_once_on_the_topic_and_once_to_each_recipient(clean: World) -> None:
    assert len(clean.notifier.topic) == 1
    assert len({job.job_id for job in clean.delivery.jobs}) == 1  # one job for people per change
    assert sorted(phone for phone, _ in clean.delivery.sent) == [
        "+8613900000001",
        "+8613900000002",
        "+8613900000010",
    ]
    assert all(count == 1 for count in told(clean).values())


def test_a_redelivered_batch_tells_nobody_again(clean: World) -> None:
    before = told(clean)
    report = clean.container().handle(list(RAISING_BATCH))  # a new container: nothing in memory
    assert told(clean) == before and report.notified == 0


@pytest.mark.parametrize("write", ["claim", "settle", "settle fails"])
def test_a_lost_ledger_response_neither_doubles_nor_drops_a_message(clean: World, write: str) -> None:
    world = World()
    world.ledger.lose = [write] * 4
    deliver_until_done(world.container(), list(RAISING_BATCH), attempts=10)
    assert told(world) == told(clean)


def test_a_refused_topic_publish_is_retried_until_it_goes_out(clean: World) -> None:
    world = World()
    world.notifier.faults = [DeliveryNotSentError("throttled"), DeliveryNotSentError("throttled")]
    attempts = deliver_until_done(world.container(), list(RAISING_BATCH))
    assert attempts == 3 and told(world) == told(clean)


def test_an_unavailable_sms_provider_is_retried_by_the_delivery_queue_not_by_the_stream(clean: World) -> None:
    world = World()
    world.delivery.sms.faults = [SmsUnavailable(SmsUnavailableReason.THROTTLED)]
    attempts = deliver_until_done(world.container(), list(RAISING_BATCH))
    assert attempts == 1 and world.delivery.pending
    world.delivery.redeliver()
    assert told(world) == told(clean)


def test_a_topic_publish_with_an_unknown_outcome_is_not_repeated(clean: World) -> None:
    world = World()
    world.notifier.faults = [TimeoutError("read timeout")]
    world.notifier.sent_before_fault = True  # it did go out
    service = world.container()
    deliver_until_done(service, list(RAISING_BATCH))
    assert told(world) == told(clean)
    assert service.totals["delivery_unknown"] == 1
    assert sorted(status for status, _, _ in world.ledger.items.values()) == ["unknown"]


def test_a_second_container_on_the_same_records_waits_for_the_first_then_tells_nobody_again(clean: World) -> None:
    world = World()
    first, second = world.container(), world.container()
    world.ledger.lose = ["claim"]  # the first container holds a claim it does not know it got
    report = first.handle(list(RAISING_BATCH))
    assert report.failed_record_ids  # it will retry
    racing = second.handle(list(RAISING_BATCH))
    assert racing.failed_record_ids  # the first still holds a claim: the second retries later, sends nothing
    deliver_until_done(first, list(RAISING_BATCH))
    deliver_until_done(second, list(RAISING_BATCH))
    assert told(world) == told(clean)


def test_a_claim_of_a_sender_that_died_is_taken_over_after_the_lease(clean: World) -> None:
    world = World()
    dead = world.container()
    world.notifier.faults = [DeliveryNotSentError("x")]
    dead.handle(list(RAISING_BATCH))  # topic refused and settled failed
    key = next(k for k, (status, _, _) in world.ledger.items.items() if status == "failed")
    world.ledger.items[key] = ("claimed", "a-container-that-died", world.now)  # as if it crashed mid-send
    successor = world.container()
    assert successor.handle(list(RAISING_BATCH)).failed_record_ids  # within the lease: wait
    world.now += 121
    deliver_until_done(successor, list(RAISING_BATCH))
    assert told(world) == told(clean)


def test_an_infrastructure_fault_before_grading_hands_the_whole_batch_back_without_raising(clean: World) -> None:
    world = World()
    load = world.states.load_devices

    def throttled(device_ids: Iterable[str]) -> dict[str, DeviceState]:
        world.states.load_devices = load  # type: ignore[method-assign]
        raise TimeoutError("throttled")

    world.states.load_devices = throttled  # type: ignore[method-assign]
    service = world.container()
    report = service.handle(list(RAISING_BATCH))
    assert report.failed_record_ids == [RAISING_BATCH[0].record_id] and told(world) == Counter()
    deliver_until_done(service, list(RAISING_BATCH))
    assert told(world) == told(clean)
