"""The `ingest` Kinesis handler and the routes through Chalice's test client, on moto's server.

Records carry what the topic rule puts on the stream: the device's JSON base64 in `payload`, plus the topic's
sector, enterprise and device. Who must be told is written out from DOMAIN.md §4 against the seeded directory
(people by role, department and area), not computed by the code under test.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from app import app
from chalicelib.adapters.dynamo import DynamoStateStore, DynamoWarningStore
from chalicelib.bootstrap import container
from chalicelib.domain.state import DeviceState
from chalicelib.domain.warnings import WarningRecord
from local.aws import Provisioned
from local.fleet import Fleet
from local.seed import SeedRegistry

PROJECT_DIR = Path(__file__).resolve().parents[2]
AUDIENCE_QUEUES = {
    "enterprise": "EnterpriseQueue",
    "duty": "DutyQueue",
    "regulator": "RegulatorQueue",
    "area": "AreaQueue",
    "emergency": "EmergencyQueue",
}
REGULATORS = {"construction": {"housing_construction"}, "hazchem": {"emergency_bureau"}}
_sequence_numbers = itertools.count(49_650_000_000_000_000_000_000_000_000_000_000_000_000_000_000)


@pytest.fixture(scope="module")
def client(infra: Provisioned, seed: SeedRegistry) -> Iterator[Client]:
    with Client(app, stage_name="test", project_dir=str(PROJECT_DIR)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def sqs(infra: Provisioned) -> Any:
    import boto3

    return boto3.client("sqs", endpoint_url=infra.endpoint_url, region_name=infra.region)


class Outbox:
    """What people were told since the last look: audience queue messages and SMS."""

    def __init__(self, infra: Provisioned, sqs: Any, client: Client | None = None) -> None:
        self._infra = infra
        self._sqs = sqs
        self._client = client
        self._seen_sms: set[str] = set()
        self.look()

    def deliver(self) -> int:
        """Run the delivery handler on the delivery queue, as its event source mapping would."""
        url = self._infra.queue_url("DeliveryQueue")
        handled = 0
        while batch := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            if self._client is not None:
                event = self._client.events.generate_sqs_event(
                    message_bodies=[message["Body"] for message in batch], queue_name="delivery"
                )
                self._client.lambda_.invoke("deliver", event)
            for message in batch:
                self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            handled += len(batch)
        return handled

    def look(self) -> tuple[dict[str, list[dict[str, Any]]], list[tuple[str, str]]]:
        self.deliver()
        told: dict[str, list[dict[str, Any]]] = {}
        for audience, logical_id in AUDIENCE_QUEUES.items():
            url = self._infra.queue_url(logical_id)
            told[audience] = []
            while batch := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in batch:
                    told[audience].append(json.loads(message["Body"]))
                    self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        backend = sns_backends[DEFAULT_ACCOUNT_ID][self._infra.region]
        sms = [(key, value) for key, value in backend.sms_messages.items() if key not in self._seen_sms]
        self._seen_sms.update(key for key, _ in sms)
        return told, [(phone, text) for _, (phone, text) in sms]


@pytest.fixture
def outbox(infra: Provisioned, sqs: Any, client: Client) -> Outbox:
    return Outbox(infra, sqs, client)


# --- building events ---------------------------------------------------------------------------------------------


def now() -> float:
    return datetime.now(UTC).timestamp()


def reading(seed: SeedRegistry, device_id: str, at: float, **metrics: Any) -> tuple[str, bytes]:
    reg = seed.by_device[device_id]
    body = {
        "device_id": device_id,
        "enterprise_id": reg.enterprise_id,
        "sector": reg.sector.value,
        "ts": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
        "metrics": metrics,
    }
    return f"dyj/{reg.sector.value}/{reg.enterprise_id}/{device_id}/telemetry", json.dumps(body).encode()


def rule_output(topic: str, payload: bytes) -> bytes:
    _, sector, enterprise, device, _ = topic.split("/")
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "topic_sector": sector,
            "topic_enterprise": enterprise,
            "topic_device": device,
            "received_at": int(now() * 1000),
        }
    ).encode()


def kinesis_event(client: Client, bodies: Sequence[bytes]) -> dict[str, Any]:
    """Chalice's generated Kinesis event, with distinct sequence numbers as a real shard has (the generator gives
    every record the same one, which would make batchItemFailures and quarantine keys ambiguous) and arrival times
    of now (the generator's are fixed in 2018, and device clocks are judged against arrival)."""
    event: dict[str, Any] = client.events.generate_kinesis_event(list(bodies), stream_name="dayingji-test-devices")
    for record in event["Records"]:
        sequence = str(next(_sequence_numbers))
        record["kinesis"]["sequenceNumber"] = sequence
        record["kinesis"]["approximateArrivalTimestamp"] = time.time()
        record["eventID"] = f"shardId-000000000000:{sequence}"
    return event


def invoke(client: Client, messages: Sequence[tuple[str, bytes]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Invoke `ingest` with one record per (topic, payload); returns (the event, the handler's answer)."""
    event = kinesis_event(client, [rule_output(topic, payload) for topic, payload in messages])
    answer: dict[str, Any] = client.lambda_.invoke("ingest", event).payload
    return event, answer


def twice(seed: SeedRegistry, device_id: str, **metrics: Any) -> list[tuple[str, bytes]]:
    """Two consecutive readings (the duration rule raises on the second)."""
    at = now()
    return [reading(seed, device_id, at - 2, **metrics), reading(seed, device_id, at - 1, **metrics)]


# --- who must be told --------------------------------------------------------------------------------------------


def phones(seed: SeedRegistry, device_id: str, audiences: set[str]) -> set[str]:
    reg = seed.by_device[device_id]
    found: set[str] = set()
    if "enterprise" in audiences:
        found |= {contact.phone for contact in seed.enterprise(reg.enterprise_id).contacts}
    for person in seed.people:
        if person.role not in audiences or person.role == "enterprise":  # enterprises are told via their contacts
            continue
        if person.role == "regulator" and person.department not in REGULATORS[reg.sector.value]:
            continue
        if person.role == "area" and not set(person.area_codes) & set(reg.area_codes):
            continue
        found.add(person.phone)
    return found


def totals() -> Counter[str]:
    """The warm container's running counts (received, graded, quarantined, changes, ...)."""
    return Counter(container().ingest.totals)


def warnings_of(device_id: str) -> list[WarningRecord]:
    return [w for w in DynamoWarningStore.scan_all() if w.device_id == device_id]


def audiences_told(told: dict[str, list[dict[str, Any]]], warning_id: str) -> dict[str, list[str]]:
    return {
        audience: [m["change"]["kind"] for m in messages if m["change"]["warning_id"] == warning_id]
        for audience, messages in told.items()
        if messages
    }


# --- the handler -------------------------------------------------------------------------------------------------


def test_a_normal_batch_is_graded_with_no_failures_and_no_warnings(client: Client, seed: SeedRegistry) -> None:
    fleet = Fleet(seed)
    at = now() - 30
    messages = [(m.topic, m.payload) for m in fleet.step(0, at)][:100]
    devices = {topic.split("/")[3] for topic, _ in messages}
    before = totals()

    _, answer = invoke(client, messages)

    assert answer == {"batchItemFailures": []}
    counted = totals() - before
    assert (counted["received"], counted["graded"], counted["quarantined"], counted["changes"]) == (100, 100, 0, 0)
    assert DynamoStateStore().load_checkpoint("shardId-000000000000") is not None  # the shard's, with the states
    container().ingest.flush()  # a clean stop: the states the checkpoint carries are written
    states = DynamoStateStore().load_devices(devices)
    assert all(state.version >= 1 and state.last_ts > 0 for state in states.values())
    assert not [w for w in DynamoWarningStore.scan_all() if w.device_id in devices]


def test_a_red_incident_raises_a_warning_and_tells_all_five_audiences(
    client: Client, seed: SeedRegistry, outbox: Outbox
) -> None:
    device = "CS04-TC1"  # a tower crane: load >= 110 % is red

    _, answer = invoke(client, twice(seed, device, load_pct=113.0))

    assert answer == {"batchItemFailures": []}
    [warning] = warnings_of(device)
    assert (warning.level_enum.code, warning.status.value, warning.risk_type) == ("red", "raised", "crane_load")
    events = [event["type"] for event in DynamoWarningStore.events(warning.warning_id)]
    assert events.count("engine.raise") == 1
    told, sms = outbox.look()
    assert audiences_told(told, warning.warning_id) == {audience: ["raise"] for audience in AUDIENCE_QUEUES}
    assert told["regulator"][0]["regulators"] == ["housing_construction"]
    all_five = phones(seed, device, set(AUDIENCE_QUEUES))
    assert sorted(phone for phone, _ in sms) == sorted(all_five)
    assert all(text.startswith("【滨海大应急】红色预警") and warning.warning_id in text for _, text in sms)


def test_a_yellow_warning_tells_the_enterprise_and_the_duty_centre_only(
    client: Client, seed: SeedRegistry, outbox: Outbox
) -> None:
    device = "HC04-T2-GT2"  # combustible gas: a level-1 alarm (>= 25 %LEL) is yellow

    _, answer = invoke(client, twice(seed, device, gas_lel_pct=31.0))

    assert answer == {"batchItemFailures": []}
    [warning] = warnings_of(device)
    assert warning.level_enum.code == "yellow"
    told, sms = outbox.look()
    assert audiences_told(told, warning.warning_id) == {"enterprise": ["raise"], "duty": ["raise"]}
    assert sorted(phone for phone, _ in sms) == sorted(phones(seed, device, {"enterprise", "duty"}))


def test_a_blue_warning_tells_the_enterprise_only(client: Client, seed: SeedRegistry, outbox: Outbox) -> None:
    device = "CS01-TC1"  # wind at the jib top >= 5.5 m/s is blue

    _, answer = invoke(client, twice(seed, device, wind_ms=6.2))

    assert answer == {"batchItemFailures": []}
    [warning] = warnings_of(device)
    assert warning.level_enum.code == "blue"
    told, sms = outbox.look()
    assert audiences_told(told, warning.warning_id) == {"enterprise": ["raise"]}
    assert sorted(phone for phone, _ in sms) == sorted(phones(seed, device, {"enterprise"}))


def test_a_level_down_tells_the_enterprise_and_the_duty_centre_only(
    client: Client, seed: SeedRegistry, outbox: Outbox
) -> None:
    device = "CS05-TC1"
    invoke(client, twice(seed, device, load_pct=113.0))
    [warning] = warnings_of(device)
    outbox.look()

    _, answer = invoke(client, [reading(seed, device, now(), load_pct=95.0)])

    assert answer == {"batchItemFailures": []}
    [lowered] = warnings_of(device)
    assert (lowered.warning_id, lowered.level_enum.code, lowered.peak_level) == (warning.warning_id, "yellow", 4)
    told, sms = outbox.look()
    assert audiences_told(told, warning.warning_id) == {"enterprise": ["level_down"], "duty": ["level_down"]}
    assert sorted(phone for phone, _ in sms) == sorted(phones(seed, device, {"enterprise", "duty"}))


def test_a_poison_record_is_quarantined_without_failing_the_batch(client: Client, seed: SeedRegistry) -> None:
    good = reading(seed, "CS06-TC2", now() - 1, load_pct=30.0)
    event = kinesis_event(client, [b"\x00 not the rule document", rule_output(*good), b'{"payload": 5}'])
    before = totals()

    answer = client.lambda_.invoke("ingest", event).payload

    assert answer == {"batchItemFailures": []}
    counted = totals() - before
    assert (counted["graded"], counted["quarantined"], counted["failed"]) == (1, 2, 0)


def test_a_device_whose_state_write_loses_a_race_is_handed_back_for_redelivery(
    client: Client, seed: SeedRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    racing, calm = "CS06-TC1", "CS03-TC2"
    original = DynamoStateStore.save_device

    def save_after_a_competitor(self: DynamoStateStore, state: DeviceState, last_seen: float) -> None:
        if state.device_id == racing:  # another consumer writes the device's state first
            competitor = DynamoStateStore().load_devices([racing])[racing]
            original(self, competitor, last_seen)
        original(self, state, last_seen)

    monkeypatch.setattr(DynamoStateStore, "save_device", save_after_a_competitor)
    at = now()
    event, answer = invoke(
        client,
        [
            reading(seed, calm, at - 3, load_pct=20.0),
            reading(seed, racing, at - 2, load_pct=95.0),  # a breach pending its second reading: written at once
        ],
    )

    first_of_racing = event["Records"][1]["kinesis"]["sequenceNumber"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": first_of_racing}]}
    container().ingest.flush()  # the calm device's normal reading is in the cache (and the next checkpoint) only
    states = DynamoStateStore().load_devices([racing, calm])
    assert states[calm].last_ts == pytest.approx(at - 3, abs=0.01)
    assert states[racing].last_ts == 0.0


# --- routes ------------------------------------------------------------------------------------------------------


def test_health_answers_ok(client: Client) -> None:
    response = client.http.get("/health")

    assert response.status_code == 200
    assert response.json_body["status"] == "ok"
