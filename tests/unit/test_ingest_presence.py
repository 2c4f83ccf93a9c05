"""The ingest's presence hook (docs/offline-watch.md): the batch's devices are seen by the tracker, which writes
one change summary per shard and minute; a device silent past its threshold is named once; no write per device."""

from __future__ import annotations

import json
from dataclasses import replace

from chalicelib.domain.presence import PresencePolicy
from chalicelib.services.ingest import IngestRecord
from chalicelib.services.presence import PresenceTracker
from chalicelib.services.presence_fakes import FakePresenceLedger
from tests.unit.test_ingest_service import GT1, GT2, T0, World, reading


def on_shard(record: IngestRecord) -> IngestRecord:
    return replace(record, shard_id="shardId-000000000001")


def lifecycle(number: int, device: str, event: str, at: float) -> IngestRecord:
    document = {"eventType": event, "clientId": device}
    return IngestRecord(str(number), json.dumps(document).encode(), at, "shardId-000000000001")


def test_the_batchs_devices_feed_one_summary_per_shard_minute_and_silence_is_named_once() -> None:
    world = World()
    ledger = FakePresenceLedger()
    service = world.container()
    service.presence = PresenceTracker(ledger, PresencePolicy(), "c1", lambda: world.now)
    threshold = PresencePolicy().threshold_of(world.registry.devices([GT1])[GT1])

    service.handle([on_shard(reading(1)), on_shard(reading(2, device=GT2))])
    number = 3
    while world.now < T0 + threshold + 240:  # GT1 keeps reporting, GT2 falls silent
        world.now += 60
        service.handle([on_shard(reading(number, at=world.now - 1))])
        number += 1

    summaries = [
        s for minute in sorted(ledger.summaries_by_minute) for s in ledger.summaries_by_minute[minute].values()
    ]
    assert {s.shard for s in summaries} == {"shardId-000000000001"}
    assert summaries[0].fresh and sorted(d for d, _ in summaries[0].back) == [GT1, GT2]
    assert [d for s in summaries for d, _ in s.silent] == [GT2]
    assert ledger.writes["summary"] == len(summaries) == len({s.minute for s in summaries})
    assert ledger.writes["roster"] == 1

    world.now += 60
    service.handle([on_shard(reading(number, device=GT2, at=world.now - 1))])
    world.now += 60
    service.handle([on_shard(reading(number + 1, at=world.now - 1))])
    last = ledger.summaries_by_minute[max(ledger.summaries_by_minute)]
    assert [d for s in last.values() for d, _ in s.back] == [GT2]


def test_a_disconnect_event_names_the_device_after_the_disconnect_grace() -> None:
    world = World()
    ledger = FakePresenceLedger()
    service = world.container()
    service.presence = PresenceTracker(ledger, PresencePolicy(), "c1", lambda: world.now)
    service.handle([on_shard(reading(1)), on_shard(reading(2, device=GT2))])
    service.handle([lifecycle(3, GT2, "disconnected", world.now)])
    for number in range(4, 8):
        world.now += 60
        service.handle([on_shard(reading(number, at=world.now - 1))])
    silent = [d for m in ledger.summaries_by_minute.values() for s in m.values() for d, _ in s.silent]
    assert silent == [GT2]  # within 4 minutes, not after its 5-minute threshold
