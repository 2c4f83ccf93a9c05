"""End to end through the local runtime: a device publishes over MQTT, the rule bridge puts the record on the
stream, the poller invokes the deployed `ingest` handler, and the warning, the notifications and the quarantine
land in moto's DynamoDB, SQS and SMS, exactly as they would on AWS.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import pytest

from chalicelib.adapters.dynamo import DynamoQuarantine, DynamoWarningStore
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.warnings import WarningRecord
from local.fleet import Fleet, Incident, SimMessage
from local.runtime import LocalPlatform
from local.waiting import wait_until
from tests.e2e.platform import running_platform

pytestmark = pytest.mark.e2e

AUDIENCE_QUEUES = {
    "enterprise": "EnterpriseQueue",
    "duty": "DutyQueue",
    "regulator": "RegulatorQueue",
    "area": "AreaQueue",
    "emergency": "EmergencyQueue",
}
RED_DEVICE = "CS04-TC1"  # tower crane: load >= 110 % is red
YELLOW_DEVICE = "HC04-T2-GT2"  # combustible gas: a level-1 alarm is yellow
INCIDENTS = (
    Incident(RED_DEVICE, 0, 2, {"load_pct": 113.0}, label="red: load >= 110 %"),
    Incident(YELLOW_DEVICE, 0, 2, {"gas_lel_pct": 31.0}, label="yellow: level-1 alarm"),
)
WAIT_S = 90.0  # the bound of every wait on a condition: generous, a busy machine is slow, not wrong

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], timeout: float = WAIT_S) -> T:
    """Poll until `probe` returns something truthy; fail after `timeout` seconds."""
    return wait_until(probe, timeout_s=timeout, what=f"something from {probe.__name__}")


@pytest.fixture(scope="module")
def platform() -> Iterator[LocalPlatform]:
    with running_platform() as running:
        yield running


class Outbox:
    """What people were told since the last look: audience queue messages (by audience) and SMS."""

    def __init__(self, platform: LocalPlatform) -> None:
        self._platform = platform
        self._sqs = platform.client("sqs")
        self._seen_sms = len(platform.sms_messages())

    def queues(self) -> dict[str, list[dict[str, Any]]]:
        told: dict[str, list[dict[str, Any]]] = {}
        for audience, logical_id in AUDIENCE_QUEUES.items():
            url = self._platform.infra.queue_url(logical_id)
            told[audience] = []
            while batch := self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                for message in batch:
                    told[audience].append(json.loads(message["Body"]))
                    self._sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return told

    def sms(self) -> list[tuple[str, str]]:
        messages = self._platform.sms_messages()
        fresh, self._seen_sms = messages[self._seen_sms :], len(messages)
        return fresh


def publish(platform: LocalPlatform, messages: Sequence[SimMessage]) -> None:
    """Publish with QoS 1 and wait until the bridge has settled every message."""
    before = platform.bridge.counters
    publisher = platform.publisher()
    try:
        for message in messages:
            publisher.publish(message.topic, message.payload)
        assert publisher.wait_all_published(timeout=WAIT_S)
    finally:
        publisher.close()
    assert platform.bridge.wait_settled(before.received + len(messages), timeout=WAIT_S)
    after = platform.bridge.counters
    assert (after.received - before.received, after.forwarded - before.forwarded) == (len(messages),) * 2
    assert (after.errored, after.filtered) == (before.errored, before.filtered)


def phones(platform: LocalPlatform, device_id: str, audiences: set[str], departments: set[str]) -> list[str]:
    """Who DOMAIN.md §4 and docs/delivery.md say is texted, read from the seeded directory: the enterprise's
    on-duty person (its contacts when none is named), the duty officer on shift now, the regulators of the
    departments, the officials of the device's areas, the bureau."""
    seed = platform.registry
    reg = seed.by_device[device_id]
    people = {person.person_id: person for person in seed.people}
    found: list[str] = []
    if "enterprise" in audiences:
        named = seed.on_duty.get(reg.enterprise_id, ())
        found += [people[p].phone for p in named] or [c.phone for c in seed.enterprise(reg.enterprise_id).contacts]
    if "duty" in audiences:
        now = time.time()
        shifts = seed.duty_rota.shifts_for(now) if seed.duty_rota else ()
        on_shift = {s.person_id for s in shifts if s.starts_at <= now < s.ends_at}
        found += [p.phone for p in seed.people if p.role == "duty" and (not on_shift or p.person_id in on_shift)]
    for person in seed.people:
        if person.role not in audiences or person.role in ("enterprise", "duty"):
            continue
        if person.role == "regulator" and person.department not in departments:
            continue
        if person.role == "area" and not set(person.area_codes) & set(reg.area_codes):
            continue
        found.append(person.phone)
    return sorted(set(found))


def open_warning(device_id: str) -> Callable[[], WarningRecord | None]:
    def warning_in_dynamodb() -> WarningRecord | None:
        return next((w for w in DynamoWarningStore.scan_all() if w.device_id == device_id), None)

    return warning_in_dynamodb


def test_an_incident_published_over_mqtt_raises_warnings_and_tells_the_right_people(
    platform: LocalPlatform,
) -> None:
    outbox = Outbox(platform)
    fleet = Fleet(platform.registry, incidents=INCIDENTS)
    at = time.time() - 5
    messages = [
        fleet.report(platform.registry.by_device[device], step, at + step)
        for step in (0, 1)
        for device in (RED_DEVICE, YELLOW_DEVICE)
    ]

    publish(platform, messages)

    red = eventually(open_warning(RED_DEVICE))
    yellow = eventually(open_warning(YELLOW_DEVICE))
    assert (red.level_enum.code, red.risk_type, red.status.value) == ("red", "crane_load", "raised")
    assert (yellow.level_enum.code, yellow.risk_type) == ("yellow", "combustible_gas")

    expected_red = phones(platform, RED_DEVICE, set(AUDIENCE_QUEUES), {"housing_construction"})
    expected_yellow = phones(platform, YELLOW_DEVICE, {"enterprise", "duty"}, set())
    texts: list[tuple[str, str]] = []

    def every_sms() -> list[tuple[str, str]] | None:
        texts.extend(outbox.sms())
        return texts if len(texts) >= len(expected_red) + len(expected_yellow) else None

    eventually(every_sms)
    assert sorted(phone for phone, text in texts if red.warning_id in text) == expected_red
    assert sorted(phone for phone, text in texts if yellow.warning_id in text) == expected_yellow

    told = outbox.queues()
    by_warning = {
        audience: sorted(m["change"]["level"] for m in bodies) for audience, bodies in told.items() if bodies
    }
    assert by_warning == {
        "enterprise": ["red", "yellow"],
        "duty": ["red", "yellow"],
        "regulator": ["red"],
        "area": ["red"],
        "emergency": ["red"],
    }
    assert platform.failures == []


def test_bad_messages_published_over_mqtt_end_in_the_quarantine(platform: LocalPlatform) -> None:
    at = time.time()
    bad = Fleet(platform.registry).bad_messages(at)
    expected = Counter((m.expected_reject, m.payload) for m in bad if m.expected_reject)
    sent = {m.payload for m in bad}
    days = {datetime.fromtimestamp(at, SHANGHAI).strftime("%Y-%m-%d")}

    publish(platform, bad)

    def quarantined() -> Counter[tuple[str, bytes]] | None:
        days.add(datetime.now(SHANGHAI).strftime("%Y-%m-%d"))
        s3, bucket = platform.client("s3"), platform.infra.env()["DYJ_QUARANTINE_BUCKET"]
        rows = [row for day in days for row in DynamoQuarantine.by_day(day, s3, bucket) if row["payload"] in sent]
        found = Counter((row["reason"], row["payload"]) for row in rows)
        return found if found.total() >= expected.total() else None

    assert eventually(quarantined) == expected
    assert platform.failures == []
    rule_errors = platform.client("sqs").receive_message(QueueUrl=platform.infra.queue_url("RuleErrorQueue"))
    assert rule_errors.get("Messages", []) == []
