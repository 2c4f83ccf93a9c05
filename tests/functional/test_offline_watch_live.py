"""The offline watch as deployed (docs/offline-watch.md), on moto: the ingest `bootstrap.ingest_service` builds
tracks presence, the watch that `bootstrap.offline_watch_service` builds reads the summaries and raises and
recovers `offline` warnings through the real warning path (warning table, audit chain, delivery queue), on a
simulated clock (the thresholds are minutes). Plus the scheduled handler itself through Chalice's test client.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.audit_store import AuditedWarningStore
from chalicelib.adapters.online_ledger import DynamoOutageLedger
from chalicelib.bootstrap import base, ingest_service, offline_watch_service, online_ledger
from chalicelib.domain.changes import OFFLINE
from chalicelib.domain.clock import local_day_number
from chalicelib.domain.evaluation.periods import PeriodKind, containing
from chalicelib.domain.levels import Level
from chalicelib.domain.presence import offline_warning_id
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.ingest import IngestRecord, IngestService
from chalicelib.services.offline_watch import OfflineWatch
from chalicelib.services.ports import DeviceScope
from local.aws import Provisioned
from local.fleet import Fleet, SimMessage
from local.seed import SeedRegistry

PROJECT_DIR = Path(__file__).resolve().parents[2]
SHARD = "shardId-000000000000"
_sequence = itertools.count(49_700_000_000_000_000_000_000_000_000_000_000_000_000_000_000)


class SimClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stream_record(message: SimMessage, arrival: float) -> IngestRecord:
    _, sector, enterprise, device, _ = message.topic.split("/")
    document = {
        "payload": base64.b64encode(message.payload).decode("ascii"),
        "topic_sector": sector,
        "topic_enterprise": enterprise,
        "topic_device": device,
        "received_at": int(arrival * 1000),
    }
    return IngestRecord(str(next(_sequence)), json.dumps(document).encode(), arrival, SHARD)


class Site:
    """A few seeded devices on one shard, the ingest and the watch, one report per device a minute."""

    def __init__(self, seed: SeedRegistry) -> None:
        import time

        settings, policy = base().settings, base().policy
        start = time.time() // 60 * 60 + 1.0
        self.clock = SimClock(start)
        sns = boto3.client("sns", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)
        self.ingest: IngestService = ingest_service(
            settings, policy, sns, clock=self.clock, registry_clock=self.clock
        )
        self.watch: OfflineWatch = offline_watch_service(settings, policy, self.clock)
        hazchem = [d for d in seed.devices if d.sector.value == "hazchem"][:4]
        self.devices = hazchem
        self.fleet = Fleet(seed, incidents=())
        self.step = 0

    def minute(self, silent: frozenset[str] = frozenset()) -> Any:
        at = self.clock.now
        records = [
            stream_record(self.fleet.report(reg, self.step, at), at)
            for reg in self.devices
            if reg.device_id not in silent
        ]
        answer = self.ingest.handle(records)
        assert answer.failed_record_ids == []
        self.step += 1
        self.clock.now += 60
        return self.watch.run()


@pytest.fixture(scope="module")
def site(infra: Provisioned, seed: SeedRegistry) -> Site:
    return Site(seed)


def delivery_jobs(infra: Provisioned) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=infra.endpoint_url, region_name=infra.region)
    url = infra.queue_url("DeliveryQueue")
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in batch:
            yield json.loads(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_a_silent_device_raises_one_offline_warning_through_the_warning_path_and_recovers(
    site: Site, infra: Provisioned
) -> None:
    for _ in range(4):
        site.minute()
    silent = site.devices[0].device_id
    last_seen = site.clock.now - 60  # its last report, the minute before
    raised: list[str] = []
    for _ in range(10):  # threshold 3 × 60 s + 120 s, the summary's minute, the watch's 2-minute lag
        raised += site.minute(frozenset({silent})).raised
    assert raised == [silent]  # once, and only the silent device

    warning_id = offline_warning_id(silent, last_seen)
    warning = AuditedWarningStore().get(warning_id)
    assert warning is not None
    assert (warning.risk_type, warning.level, warning.status) == (OFFLINE, Level.BLUE, WarningStatus.RAISED)
    assert warning.enterprise_id == site.devices[0].enterprise_id
    assert not warning.reading_normal
    jobs = [job for job in delivery_jobs(infra) if job["warning_id"] == warning_id]
    assert len(jobs) == 1 and "设备离线" in jobs[0]["detail"]

    back = site.clock.now  # its next report
    recovered: list[str] = []
    for _ in range(5):
        recovered += site.minute().recovered
    assert recovered == [silent]
    after = AuditedWarningStore().get(warning_id)
    assert after is not None and after.reading_normal and after.status is WarningStatus.RAISED  # people close it
    kinds = [job["params"].get("phrase") for job in delivery_jobs(infra) if job["warning_id"] == warning_id]
    assert kinds == ["监测值恢复正常"]

    # the online-time ledger: the outage, from its last sign of life to its next report, once
    enterprise = site.devices[0].enterprise_id
    period = containing(PeriodKind.MONTH, site.clock.now)
    ledger = online_ledger(base().settings, site.clock)
    days = ledger.days(DeviceScope(enterprise_ids=(enterprise,)), period)
    assert sum(d.undeclared_outage_s for d in days if d.device_id == silent) == pytest.approx(back - last_seen)
    assert sum(d.undeclared_outage_s for d in days if d.device_id != silent) == 0
    DynamoOutageLedger().add(enterprise, silent, local_day_number(back), last_seen, back)  # again: one period
    again = ledger.days(DeviceScope(enterprise_ids=(enterprise,)), period)
    assert sum(d.undeclared_outage_s for d in again if d.device_id == silent) == pytest.approx(back - last_seen)


def test_the_scheduled_handler_runs_the_watch(infra: Provisioned, seed: SeedRegistry) -> None:
    with Client(app, stage_name="test", project_dir=str(PROJECT_DIR)) as client:
        answer = client.lambda_.invoke(
            "offline_watch", client.events.generate_cw_event("Scheduled Event", "aws.events", {}, [])
        ).payload
    assert set(answer) == {"minutes", "raised", "recovered"}
