"""Bad input through the ingest service with the real adapters on moto: nothing bad is graded, nothing is lost.

Every record arrives as the topic rule's output document (the device payload base64 in `payload`, plus the
topic's parts), exactly what the stream delivers to the handler. Each test uses its own devices, so the tests
share one provisioned server and one service (like one warm Lambda container) but not their state.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from chalicelib.adapters import delivery_store, dynamo
from chalicelib.adapters.channels.sns_sms import SnsSmsChannel
from chalicelib.adapters.dynamo import (
    DynamoDeliveryLedger,
    DynamoQuarantine,
    DynamoRegistry,
    DynamoStateStore,
    DynamoWarningStore,
)
from chalicelib.adapters.errors import is_transient
from chalicelib.adapters.notify import SnsNotifier
from chalicelib.adapters.rosters import DynamoRosters
from chalicelib.domain.catalog import build_engine, build_policy
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.levels import Level
from chalicelib.domain.rejections import RejectReason
from chalicelib.domain.state import UnitState
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.delivery import DeliveryService
from chalicelib.services.ingest import IngestRecord, IngestReport, IngestService
from chalicelib.services.ports import DeliveryJobs, DeliveryNotSentError, Notification, Notifier
from chalicelib.settings import Settings
from local.aws import Provisioned, provision
from local.fleet import Fleet
from local.seed import SeedRegistry, load_seed

AUDIENCE_QUEUES = {
    "enterprise": "EnterpriseQueue",
    "duty": "DutyQueue",
    "regulator": "RegulatorQueue",
    "area": "AreaQueue",
    "emergency": "EmergencyQueue",
}
_record_ids = itertools.count(49_600_000_000_000_000_000)


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """The ingest service wired to moto, plus what a test reads back: queues, SMS, tables."""

    infra: Provisioned
    settings: Settings
    seed: SeedRegistry
    service: IngestService
    notifier: Notifier
    clock: Clock
    sqs: Any
    delivery: DeliveryService
    seen_sms: set[str] = field(default_factory=set)

    # --- input --------------------------------------------------------------------------------------------

    def reading(self, device_id: str, at: float, seq: int | None = None, **metrics: Any) -> bytes:
        reg = self.seed.by_device[device_id]
        body: dict[str, Any] = {
            "device_id": device_id,
            "enterprise_id": reg.enterprise_id,
            "sector": reg.sector.value,
            "ts": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "metrics": metrics,
        }
        if seq is not None:
            body["seq"] = seq
        return json.dumps(body, ensure_ascii=False).encode()

    def topic_of(self, device_id: str) -> str:
        reg = self.seed.by_device[device_id]
        return f"dyj/{reg.sector.value}/{reg.enterprise_id}/{device_id}/telemetry"

    def record(self, payload: bytes, topic: str) -> IngestRecord:
        """The topic rule's output document for one MQTT message, as a stream record."""
        _, sector, enterprise, device, _ = topic.split("/")
        document = {
            "payload": base64.b64encode(payload).decode("ascii"),
            "topic_sector": sector,
            "topic_enterprise": enterprise,
            "topic_device": device,
            "received_at": int(self.clock.now * 1000),
        }
        return raw_record(json.dumps(document).encode())

    def records(self, device_id: str, payloads: Sequence[bytes]) -> list[IngestRecord]:
        return [self.record(payload, self.topic_of(device_id)) for payload in payloads]

    def handle(self, records: Sequence[IngestRecord]) -> IngestReport:
        return self.service.handle(records)

    # --- output -------------------------------------------------------------------------------------------

    def quarantined(self, records: Sequence[IngestRecord]) -> dict[str, dict[str, Any]]:
        """Quarantine rows of today (local date) for these records, by record id."""
        day = datetime.fromtimestamp(self.clock.now, SHANGHAI).strftime("%Y-%m-%d")
        wanted = {record.record_id for record in records}
        s3 = boto3.client("s3", endpoint_url=self.infra.endpoint_url, region_name=self.infra.region)
        rows = {
            row["received_id"].split("#", 1)[1]: row
            for row in DynamoQuarantine.by_day(day, s3, self.settings.quarantine_bucket)
        }
        return {record_id: row for record_id, row in rows.items() if record_id in wanted}

    def drain(self) -> dict[str, list[dict[str, Any]]]:
        """Every audience queue's messages since the last drain (the SNS message bodies)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for audience, logical_id in AUDIENCE_QUEUES.items():
            url = self.infra.queue_url(logical_id)
            bodies: list[dict[str, Any]] = []
            while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in batch:
                    bodies.append(json.loads(message["Body"]))
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            found[audience] = bodies
        return found

    def deliver_jobs(self) -> int:
        """The deliver handler's work on the queued jobs (the SMS go out through SNS on moto)."""
        url = self.infra.queue_url("DeliveryQueue")
        handled = 0
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                self.delivery.handle_body(message["Body"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                handled += 1
        return handled

    def new_sms(self) -> list[tuple[str, str]]:
        """(phone, text) of the SMS sent since the last call."""
        self.deliver_jobs()
        backend = sns_backends[DEFAULT_ACCOUNT_ID][self.infra.region]
        fresh = [(key, value) for key, value in backend.sms_messages.items() if key not in self.seen_sms]
        self.seen_sms.update(key for key, _ in fresh)
        return [(phone, text) for _, (phone, text) in fresh]

    def warnings_of(self, device_id: str) -> list[WarningRecord]:
        return [w for w in DynamoWarningStore.scan_all() if w.device_id == device_id]

    def enterprise_phones(self, device_id: str) -> set[str]:
        enterprise = self.seed.enterprise(self.seed.by_device[device_id].enterprise_id)
        return {contact.phone for contact in enterprise.contacts}


def raw_record(data: bytes) -> IngestRecord:
    return IngestRecord(str(next(_record_ids)), data)


class FlakyNotifier:
    """Refuses the first `failures` publishes (SNS unreachable: nothing was sent), then delegates."""

    def __init__(self, inner: Notifier, failures: int) -> None:
        self._inner = inner
        self.failures = failures

    def publish(self, notification: Notification) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryNotSentError("SNS unreachable")
        self._inner.publish(notification)


def ingest_service(settings: Settings, notifier: Notifier, clock: Clock, jobs: DeliveryJobs) -> IngestService:
    """Wired as chalicelib.bootstrap wires it, with the clock and the notifier in the test's hands."""
    policy = build_policy(settings.policy)
    return IngestService(
        engine=build_engine(policy),
        policy=policy,
        registry=DynamoRegistry(),
        states=DynamoStateStore(),
        warnings=DynamoWarningStore(),
        quarantine=DynamoQuarantine(
            settings.quarantine_ttl_days,
            boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=settings.region),
            settings.quarantine_bucket,
        ),
        notifier=notifier,
        deliveries=DynamoDeliveryLedger(),
        workflow=None,
        clock=clock,
        is_transient=is_transient,
        state_flush_s=settings.state_flush_s,
        jobs=jobs,
    )


@pytest.fixture(scope="module")
def rig(moto_server: str) -> Rig:
    infra = provision(moto_server, stage="test")
    settings = Settings.from_env({**infra.aws_env(), **infra.env()})
    dynamo.bind(settings)
    delivery_store.bind(settings)
    seed = load_seed()
    DynamoRegistry.put_many(seed.devices, seed.enterprises, seed.people)
    sns = boto3.client("sns", endpoint_url=moto_server, region_name=infra.region)
    notifier = SnsNotifier(sns, settings.warning_topic_arn)
    clock = Clock(float(int(datetime.now(UTC).timestamp())))
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name=infra.region)
    jobs = delivery_store.SqsDeliveryJobs(sqs, infra.queue_url("DeliveryQueue"))
    registry = DynamoRegistry()
    delivery = DeliveryService(
        DynamoDeliveryLedger(),
        delivery_store.DynamoReceipts(),
        DynamoRosters(registry),
        registry,
        SnsSmsChannel(sns),
        delivery_store.DynamoInbox(),
        clock=clock,
    )
    service = ingest_service(settings, notifier, clock, jobs)
    return Rig(infra, settings, seed, service, notifier, clock, sqs, delivery)


@pytest.fixture(autouse=True)
def clean_outboxes(rig: Rig) -> None:
    """Each test reads only the notifications and SMS it caused."""
    rig.drain()
    rig.new_sms()


# --- every reason --------------------------------------------------------------------------------------------


def test_every_bad_kind_is_quarantined_with_its_reason_and_its_original_bytes(rig: Rig) -> None:
    bad = Fleet(rig.seed).bad_messages(rig.clock.now - 5)
    records = [rig.record(message.payload, message.topic) for message in bad]
    expected = {
        record.record_id: (message.expected_reject, message.payload)
        for record, message in zip(records, bad, strict=True)
        if message.expected_reject
    }
    # every reason but the platform's own faults, which no message can cause: `unstorable_value` (the store
    # refusing a change the domain let through) and `model_error` (a sector model raising), and a reading inside a
    # 数据失真 declaration (a good message; tests/unit/test_offline_suppression.py)
    kinds = {reason.value for reason in RejectReason} - {
        RejectReason.UNSTORABLE_VALUE.value,
        RejectReason.MODEL_ERROR.value,
        RejectReason.DECLARED_DISTORTION.value,
    }
    assert {reason for reason, _ in expected.values()} == kinds

    report = rig.handle(records)

    rows = rig.quarantined(records)
    assert {record_id: (row["reason"], row["payload"]) for record_id, row in rows.items()} == expected
    assert report.quarantined == Counter(reason for reason, _ in expected.values())
    assert report.graded == len(bad) - len(expected)
    assert report.failed_record_ids == []


def test_a_record_that_is_not_the_rule_document_keeps_its_stream_bytes(rig: Rig) -> None:
    good = rig.records(
        "HC05-T1-GT1",
        [rig.reading("HC05-T1-GT1", rig.clock.now - 4, gas_lel_pct=0.3)],
    )
    poison = [
        raw_record(b"\x00\x01 not json"),
        raw_record(b'{"payload": 5}'),
        raw_record(b'{"payload": "%%% not base64 %%%", "topic_device": "HC05-T1-GT2"}'),
        raw_record(b"[1, 2, 3]"),
        raw_record(b'{"topic_device": "HC05-T1-GT3"}'),
    ]
    more_good = rig.records(
        "HC05-T1-GT2",
        [rig.reading("HC05-T1-GT2", rig.clock.now - 3, gas_lel_pct=0.2)],
    )
    batch = [good[0], *poison, more_good[0]]

    report = rig.handle(batch)

    assert report.failed_record_ids == []
    assert report.graded == 2
    assert report.quarantined == Counter({"schema": len(poison)})
    rows = rig.quarantined(poison)
    assert {record_id: (row["reason"], row["payload"]) for record_id, row in rows.items()} == {
        record.record_id: ("schema", record.data) for record in poison
    }
    assert rows[poison[2].record_id]["device_id"] == "HC05-T1-GT2"
    states = DynamoStateStore().load_devices(["HC05-T1-GT1", "HC05-T1-GT2"])
    assert states["HC05-T1-GT1"].last_ts == pytest.approx(rig.clock.now - 4)
    assert states["HC05-T1-GT2"].last_ts == pytest.approx(rig.clock.now - 3)


# --- redelivery and order ------------------------------------------------------------------------------------


def test_a_redelivered_batch_has_no_second_effect(rig: Rig) -> None:
    device = "CS04-TC1"  # a tower crane: load >= 110 % is red, after two readings
    batch = rig.records(
        device,
        [
            rig.reading(device, rig.clock.now - 20, seq=1, load_pct=113.0),
            rig.reading(device, rig.clock.now - 19, seq=2, load_pct=113.5),
        ],
    )

    first = rig.handle(batch)
    [warning] = rig.warnings_of(device)
    events = DynamoWarningStore.events(warning.warning_id)
    sns_first = rig.drain()
    sms_first = rig.new_sms()

    second = rig.handle(batch)

    assert [(c.kind, c.level) for c in first.changes] == [(ChangeKind.RAISE, Level.RED)]
    assert (first.notified, first.jobs) == (1, 1)  # one topic publication, one delivery job (an SMS each)
    assert [len(sns_first[audience]) for audience in AUDIENCE_QUEUES] == [1, 1, 1, 1, 1]
    assert len(sms_first) >= 5
    assert (second.changes, second.notified, second.graded) == ([], 0, 0)
    # the same stream records again: a redelivery (skipped), not a device's replay (quarantined)
    assert (second.redelivered, second.quarantined) == (2, Counter())
    assert second.failed_record_ids == []
    assert rig.warnings_of(device) == [warning]
    assert DynamoWarningStore.events(warning.warning_id) == events
    assert all(messages == [] for messages in rig.drain().values())
    assert rig.new_sms() == []


def test_an_out_of_order_message_never_rolls_the_state_back(rig: Rig) -> None:
    device = "HC04-T2-GT1"
    rig.handle(
        rig.records(
            device,
            [
                rig.reading(device, rig.clock.now - 30, gas_lel_pct=31.0),
                rig.reading(device, rig.clock.now - 29, gas_lel_pct=31.5),
            ],
        )
    )
    [warning] = rig.warnings_of(device)
    before = DynamoStateStore().load_devices([device])[device]

    late = rig.records(
        device,
        [
            rig.reading(device, rig.clock.now - 60, gas_lel_pct=0.1),  # older than the newest: normal but stale
            rig.reading(device, rig.clock.now - 45, gas_lel_pct=0.1),
        ],
    )
    report = rig.handle(late)

    assert report.quarantined == Counter({"out_of_order": 2})
    assert report.changes == []
    after = DynamoStateStore().load_devices([device])[device]
    assert (after.last_ts, after.risks) == (before.last_ts, before.risks)
    assert after.version == before.version
    assert rig.warnings_of(device) == [warning]
    assert not warning.reading_normal and warning.level == Level.YELLOW


def test_an_older_message_inside_a_batch_is_rejected_after_a_newer_one(rig: Rig) -> None:
    device = "HC04-T2-GT2"
    batch = rig.records(
        device,
        [
            rig.reading(device, rig.clock.now - 10, gas_lel_pct=0.2),
            rig.reading(device, rig.clock.now - 12, gas_lel_pct=0.4),
            rig.reading(device, rig.clock.now - 8, gas_lel_pct=0.3),
        ],
    )

    report = rig.handle(batch)

    assert report.graded == 2
    assert report.quarantined == Counter({"out_of_order": 1})
    assert list(rig.quarantined(batch)) == [batch[1].record_id]
    assert DynamoStateStore().load_devices([device])[device].last_ts == pytest.approx(rig.clock.now - 8)


def test_a_batch_retried_after_a_fan_out_failure_still_tells_people(rig: Rig) -> None:
    device = "RT07-V01"  # a heavy truck: >= 20 % over the expressway limit is red
    batch = rig.records(
        device,
        [
            rig.reading(device, rig.clock.now - 15, seq=1, speed_kmh=126.0, road_class="expressway"),
            rig.reading(device, rig.clock.now - 14, seq=2, speed_kmh=127.0, road_class="expressway"),
        ],
    )
    service = ingest_service(
        rig.settings,
        FlakyNotifier(rig.notifier, failures=1),
        rig.clock,
        delivery_store.SqsDeliveryJobs(rig.sqs, rig.infra.queue_url("DeliveryQueue")),
    )

    first = service.handle(batch)
    assert first.failed_record_ids == [batch[0].record_id]  # the device's records go back, nothing is lost
    again = service.handle(batch)  # the event source redelivers from the failed record
    assert again.failed_record_ids == []

    assert len(rig.warnings_of(device)) == 1
    assert len(rig.drain()["enterprise"]) == 1
    assert rig.enterprise_phones(device) <= {phone for phone, _ in rig.new_sms()}


def test_a_unit_state_race_neither_fails_the_batch_nor_loses_its_warning(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = "HC02-T2-GT3"  # combustible gas: a level-1 alarm is yellow, and an alarm for its unit
    unit_id = rig.seed.by_device[device].unit_id
    original = DynamoStateStore.save_unit
    raced: list[str] = []

    def save_after_a_competitor(self: DynamoStateStore, state: UnitState) -> None:
        if state.unit_id == unit_id and not raced:  # another consumer writes the unit first, once
            raced.append(unit_id)
            original(self, DynamoStateStore().load_units([unit_id])[unit_id])
        original(self, state)

    monkeypatch.setattr(DynamoStateStore, "save_unit", save_after_a_competitor)
    batch = rig.records(
        device,
        [
            rig.reading(device, rig.clock.now - 25, gas_lel_pct=31.0),
            rig.reading(device, rig.clock.now - 24, gas_lel_pct=31.5),
        ],
    )

    first = rig.handle(batch)
    assert first.failed_record_ids == []
    assert first.unit_conflicts == 1

    # level-1 gas is yellow; E-HC-02 is a grade-1 major hazard: +1
    assert [(w.level, w.risk_type) for w in rig.warnings_of(device)] == [(Level.ORANGE, "combustible_gas")]


# --- identity -------------------------------------------------------------------------------------------------


def test_a_payload_naming_another_device_than_its_topic_is_spoofed(rig: Rig) -> None:
    victim = "HC05-T2-GT1"
    payload = rig.reading(victim, rig.clock.now - 5, gas_lel_pct=60.0)
    record = rig.record(payload, rig.topic_of("HC02-T2-GT1"))

    report = rig.handle([record, rig.record(payload, rig.topic_of("HC02-T2-GT1"))])

    assert report.quarantined == Counter({"spoofed": 2})
    row = rig.quarantined([record])[record.record_id]
    assert (row["reason"], row["device_id"], row["payload"]) == ("spoofed", "HC02-T2-GT1", payload)
    assert DynamoStateStore().load_devices([victim])[victim].version == 0
    assert rig.warnings_of(victim) == []


def test_a_payload_naming_another_enterprise_than_its_topic_is_spoofed(rig: Rig) -> None:
    device = "HC05-T2-GT2"
    payload = rig.reading(device, rig.clock.now - 5, gas_lel_pct=0.2)
    topic = rig.topic_of(device).replace("/E-HC-05/", "/E-HC-02/")
    record = rig.record(payload, topic)

    report = rig.handle([record])

    assert report.quarantined == Counter({"spoofed": 1})
    assert rig.quarantined([record])[record.record_id]["topic"] == topic


def test_a_faulty_reading_naming_another_device_is_spoofed_not_a_data_quality_finding(rig: Rig) -> None:
    victim = "HC05-T2-GT3"
    bad = rig.reading(victim, rig.clock.now - 5, gas_lel_pct=250.0)  # out of the physical range
    record = rig.record(bad, rig.topic_of("HC02-T2-GT2"))

    report = rig.handle([record])

    assert report.quarantined == Counter({"spoofed": 1})
    assert report.changes == []
    assert rig.warnings_of(victim) == []
    assert rig.new_sms() == []


def test_a_device_claiming_another_enterprise_than_its_registration_is_spoofed(rig: Rig) -> None:
    device = "HC05-T1-GT3"
    body = json.loads(rig.reading(device, rig.clock.now - 5, gas_lel_pct=60.0))
    body["enterprise_id"] = "E-HC-02"
    payload = json.dumps(body).encode()
    record = rig.record(payload, f"dyj/hazchem/E-HC-02/{device}/telemetry")

    report = rig.handle([record])

    assert report.quarantined == Counter({"spoofed": 1})
    row = rig.quarantined([record])[record.record_id]
    assert (row["device_id"], row["payload"]) == (device, payload)
    assert rig.warnings_of(device) == []


def test_a_device_claiming_another_sector_than_its_registration_is_spoofed(rig: Rig) -> None:
    device = "HC05-T1-TX1"
    reg = rig.seed.by_device[device]
    payload = json.dumps(
        {
            "device_id": device,
            "enterprise_id": reg.enterprise_id,
            "sector": "fire",
            "ts": datetime.fromtimestamp(rig.clock.now - 5, UTC).isoformat(),
            "metrics": {"static_pressure_mpa": 0.0},
        }
    ).encode()
    record = rig.record(payload, f"dyj/fire/{reg.enterprise_id}/{device}/telemetry")

    report = rig.handle([record])

    assert report.quarantined == Counter({"spoofed": 1})
    assert report.changes == []


def test_an_unknown_device_is_quarantined_and_gets_no_state(rig: Rig) -> None:
    body = json.loads(rig.reading("HC05-T1-O2", rig.clock.now - 5, o2_pct_vol=20.9))
    body["device_id"] = "HC05-GHOST-9"
    payload = json.dumps(body).encode()
    record = rig.record(payload, "dyj/hazchem/E-HC-05/HC05-GHOST-9/telemetry")

    report = rig.handle([record])

    assert report.quarantined == Counter({"unknown_device": 1})
    row = rig.quarantined([record])[record.record_id]
    assert (row["reason"], row["device_id"], row["payload"]) == ("unknown_device", "HC05-GHOST-9", payload)
    assert DynamoStateStore().load_devices(["HC05-GHOST-9"])["HC05-GHOST-9"].version == 0


# --- sensor faults ----------------------------------------------------------------------------------------------


def test_a_sensor_fault_raises_a_blue_data_quality_warning_to_the_enterprise_only(rig: Rig) -> None:
    device = "HC05-T1-V1"  # a tank gauge
    faults = rig.records(
        device,
        [
            rig.reading(device, rig.clock.now - 6, level_pct=140.0),  # beyond the gauge's -5..110 %
            rig.reading(device, rig.clock.now - 5, level_pct=150.0),
        ],
    )

    report = rig.handle(faults)

    assert report.quarantined == Counter({"out_of_range": 2})
    assert [(c.kind, c.risk_type, c.level) for c in report.changes] == [
        (ChangeKind.RAISE, DATA_QUALITY, Level.BLUE)
    ]
    [warning] = rig.warnings_of(device)
    assert (warning.risk_type, warning.level) == (DATA_QUALITY, Level.BLUE)
    told = rig.drain()
    assert [m["change"]["risk_type"] for m in told["enterprise"]] == [DATA_QUALITY]
    assert all(told[audience] == [] for audience in ("duty", "regulator", "area", "emergency"))
    assert sorted(phone for phone, _ in rig.new_sms()) == sorted(rig.enterprise_phones(device))
    assert {row["reason"] for row in rig.quarantined(faults).values()} == {"out_of_range"}
