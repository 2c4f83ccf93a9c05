"""The presence store (`adapters/presence.py`) against moto's server, on the warning-event table of
infra/resources.json: summaries, rosters (large ones chunked), the watch's state and the offline devices
round-trip; the tracker and the offline watch over it find a silent device and its recovery — and
nothing is ever scanned."""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters import presence
from chalicelib.adapters.presence import (
    CHUNK_BYTES,
    MODELS,
    DynamoOfflineState,
    DynamoPresenceLedger,
    RosterItem,
    SummaryItem,
)
from chalicelib.domain.presence import PresencePolicy
from chalicelib.services.offline_watch import OfflineWatch
from chalicelib.services.ports import OfflineRecord, ShardRoster, ShardSummary, WatchState
from chalicelib.services.presence import PresenceTracker, Sighting
from chalicelib.services.presence_fakes import FakeOfflineSink
from chalicelib.settings import Settings
from local.aws import provision

T0 = 1_750_000_020.0 - 1_750_000_020.0 % 60
MINUTE = int(T0 // 60)
THRESHOLD = 300.0


class Calls:
    """Every DynamoDB operation the presence models' clients send (a botocore `before-call` hook)."""

    def __init__(self) -> None:
        self.by_operation: Counter[str] = Counter()
        self.clients: set[int] = set()

    def attach(self) -> None:
        for model in MODELS:
            client = model._get_connection().connection.client
            if id(client) not in self.clients:
                self.clients.add(id(client))
                client.meta.events.register("before-call.dynamodb", self._before_call)

    def _before_call(self, model: Any, **_: Any) -> None:
        assert model.name != "Scan", "the presence store never scans"
        self.by_operation[str(model.name)] += 1

    def reset(self) -> None:
        self.by_operation.clear()


@pytest.fixture(scope="module")
def calls(moto_server: str) -> Iterator[Calls]:
    provisioned = provision(moto_server, stage="test")
    presence.bind(
        Settings(
            stage="test",
            region=provisioned.region,
            aws_endpoint_url=moto_server,
            table_warning_event=provisioned.table("WarningEventTable"),
        )
    )
    meter = Calls()
    meter.attach()
    yield meter
    meter.reset()


@pytest.fixture
def ledger(calls: Calls) -> DynamoPresenceLedger:
    calls.reset()
    return DynamoPresenceLedger()


def test_a_quiet_summary_is_one_small_item_and_every_shard_of_a_minute_is_one_query(
    ledger: DynamoPresenceLedger, calls: Calls
) -> None:
    quiet = ShardSummary("shardId-000000000001", MINUTE, "c1", messages=2500)
    changed = ShardSummary(
        "shardId-000000000002", MINUTE, "c2", fresh=True, back=(("D1", T0 + 1.5),), silent=(("D2", T0 - 300.25),)
    )
    ledger.put_summary(quiet)
    ledger.put_summary(changed)
    assert ledger.summaries(MINUTE) == [quiet, changed]
    assert ledger.summaries(MINUTE + 1) == []
    assert calls.by_operation == {"PutItem": 2, "Query": 2}
    item = next(SummaryItem.query(f"PRESENCE#{MINUTE}", filter_condition=SummaryItem.shard == quiet.shard))
    assert item.blob is None and item.expires_at == MINUTE * 60 + presence.PRESENCE_TTL_S


def test_a_large_summary_is_compressed_and_chunked_and_read_back_whole(
    ledger: DynamoPresenceLedger, calls: Calls
) -> None:
    rng = random.Random(7)
    back = tuple((f"{rng.getrandbits(128):032x}", T0 + rng.randint(0, 59_999) / 1000) for _ in range(30_000))
    big = ShardSummary("s-big", MINUTE + 10, "c1", fresh=True, back=back, messages=30_000, tracked=30_000)
    ledger.put_summary(big)
    items = list(SummaryItem.query(f"PRESENCE#{MINUTE + 10}"))
    assert len(items) > 1 and all(i.blob is not None and len(i.blob) <= CHUNK_BYTES for i in items)
    assert ledger.summaries(MINUTE + 10) == [big]


def test_a_summary_missing_a_chunk_is_left_out_until_written_again(ledger: DynamoPresenceLedger) -> None:
    rng = random.Random(8)
    back = tuple((f"{rng.getrandbits(128):032x}", T0) for _ in range(30_000))
    summary = ShardSummary("s-half", MINUTE + 20, "c1", back=back)
    ledger.put_summary(summary)
    last = max(SummaryItem.query(f"PRESENCE#{MINUTE + 20}"), key=lambda i: int(i.seq))
    last.delete()
    assert ledger.summaries(MINUTE + 20) == []
    ledger.put_summary(summary)
    assert ledger.summaries(MINUTE + 20) == [summary]


def test_the_latest_roster_is_the_newest_complete_one_and_large_rosters_are_chunked(
    ledger: DynamoPresenceLedger, calls: Calls
) -> None:
    assert ledger.latest_roster("s-r") is None
    small = ShardRoster("s-r", MINUTE, {"D1": (T0 - 12.345, 300.0), "D2": (T0 - 1, 1020.0)})
    ledger.put_roster(small)
    assert ledger.latest_roster("s-r") == small

    rng = random.Random(9)  # random ids compress poorly: a few hundred thousand of them need several chunks
    devices = {
        f"{rng.getrandbits(128):032x}": (T0 + 60 - rng.randint(0, 600_000) / 1000, 300.0) for _ in range(40_000)
    }
    large = ShardRoster("s-r", MINUTE + 60, devices)
    ledger.put_roster(large)
    chunks = list(RosterItem.query("ROSTER#s-r", RosterItem.seq >= (MINUTE + 60) * presence.ROSTER_CHUNKS))
    assert len(chunks) > 1
    calls.reset()
    assert ledger.latest_roster("s-r") == large
    assert calls.by_operation == {"Query": 2}  # the head (newest first, one item), then the rest of its chunks

    RosterItem("ROSTER#s-r", (MINUTE + 120) * presence.ROSTER_CHUNKS + 1000, blob=b"x").save()  # head never came
    assert ledger.latest_roster("s-r") == large


def test_the_watch_state_and_offline_records_round_trip(calls: Calls) -> None:
    store = DynamoOfflineState()
    assert store.load() is None
    silent = {"s2": math.inf, "s3": T0 + 900.5}
    state = WatchState(MINUTE, {"s1": MINUTE - 1, "s2": MINUTE - 5}, silent, {"D2": "DCL-1"})
    store.save(state)
    assert store.load() == state

    store.mark_offline(OfflineRecord("D1", T0 - 400))
    store.mark_offline(OfflineRecord("D2", T0 - 500, "DCL-1"))
    calls.reset()
    named = [f"X{i}" for i in range(250)] + ["D1", "D2", "D1"]
    assert store.offline(named) == {
        "D1": OfflineRecord("D1", T0 - 400),
        "D2": OfflineRecord("D2", T0 - 500, "DCL-1"),
    }
    assert calls.by_operation == {"BatchGetItem": 3}  # 252 distinct keys, 100 a call
    store.mark_online("D1")
    assert store.offline(["D1", "D2"]) == {"D2": OfflineRecord("D2", T0 - 500, "DCL-1")}
    store.mark_online("D2")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def test_the_watch_over_dynamodb_finds_a_silent_device_and_its_recovery(calls: Calls) -> None:
    clock = Clock()
    clock.now = T0 + 86400  # clear of the minutes the other tests wrote
    ledger, state, sink = DynamoPresenceLedger(), DynamoOfflineState(), FakeOfflineSink()
    tracker = PresenceTracker(ledger, PresencePolicy(), "c1", clock)
    watch = OfflineWatch(ledger, state, sink, lambda: (), clock)
    devices = [f"D{i:04d}" for i in range(100)]
    start = clock.now

    def run(minutes: int, silent: frozenset[str] = frozenset()) -> None:
        for _ in range(minutes):
            tracker.observe(Sighting("s1", d, clock.now, THRESHOLD) for d in devices if d not in silent)
            clock.now += 60
            watch.run()

    run(3)
    calls.reset()
    run(8, frozenset({"D0007"}))
    assert [t.device_id for t in sink.raised] == ["D0007"]
    assert sink.raised[0].since == start + 2 * 60
    assert state.offline(["D0007"]) == {"D0007": OfflineRecord("D0007", start + 2 * 60)}
    run(3, frozenset({"D0007"}))
    assert len(sink.raised) == 1
    run(3)
    assert [t.device_id for t in sink.recovered] == ["D0007"]
    assert state.offline(["D0007"]) == {}
    assert "Scan" not in calls.by_operation
