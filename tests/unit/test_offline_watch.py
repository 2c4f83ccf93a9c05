"""The presence tracker (ingest side) and the offline watch over fakes (docs/offline-watch.md): silence past the
threshold is one offline transition, data brings the device back, a silent shard makes its devices candidates,
a declaration suppresses; reads are in proportion to the summaries and the devices named, not to the fleet."""

from __future__ import annotations

from chalicelib.domain.declarations import Declaration, DeclarationReason, DeclarationStatus
from chalicelib.domain.levels import Sector
from chalicelib.domain.presence import PresencePolicy, Signal
from chalicelib.services.offline_watch import OfflineWatch
from chalicelib.services.presence import PresenceTracker, Sighting
from chalicelib.services.presence_fakes import FakeOfflineSink, FakeOfflineState, FakePresenceLedger

T0 = 1_750_000_020.0 - 1_750_000_020.0 % 60  # a minute boundary
THRESHOLD = 300.0  # 3 × 60 s + 120 s


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class World:
    """An ingest container on shard s1 and the watch, on one clock."""

    def __init__(self, devices: int = 100, declarations: tuple[Declaration, ...] = ()) -> None:
        self.clock = Clock()
        self.ledger = FakePresenceLedger()
        self.state = FakeOfflineState()
        self.sink = FakeOfflineSink()
        self.devices = [f"D{i:04d}" for i in range(devices)]
        self.tracker = self.container()
        self.watch = OfflineWatch(self.ledger, self.state, self.sink, lambda: declarations, self.clock)

    def container(self) -> PresenceTracker:
        return PresenceTracker(self.ledger, PresencePolicy(), "c1", self.clock)

    def minute(self, silent: set[str] = frozenset(), shard: str = "s1", signal: Signal = Signal.DATA) -> None:  # type: ignore[assignment]
        """Every device but the silent ones reports once, then a minute passes."""
        at = self.clock.now
        self.tracker.observe(Sighting(shard, d, at, THRESHOLD, signal) for d in self.devices if d not in silent)
        self.clock.now += 60

    def run(self, minutes: int, silent: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        for _ in range(minutes):
            self.minute(silent)
            self.watch.run()


def test_a_healthy_minute_is_one_small_summary_and_the_watch_reads_only_it() -> None:
    world = World(devices=1000)
    world.run(10)
    assert world.sink.raised == [] and world.sink.recovered == []
    summary = world.ledger.summaries_by_minute[int(T0 // 60) + 5]["s1"]
    assert (summary.back, summary.silent, summary.messages) == ((), (), 1000)
    # a roster on the first flush (and hourly), a summary per minute: never a write per device
    assert world.ledger.writes == {"summary": 9, "roster": 1}
    assert world.state.reads["offline_keys"] == 1000  # the fresh container's first minute names every device once
    reads_before = world.state.reads["offline_keys"]
    world.run(5)
    assert world.state.reads["offline_keys"] == reads_before  # then: nothing changed, nothing read


def test_silence_past_the_threshold_is_one_offline_transition_and_data_recovers() -> None:
    world = World()
    world.run(3)
    world.run(8, silent={"D0007"})  # silent from the minute it last spoke + 300 s
    assert [t.device_id for t in world.sink.raised] == ["D0007"]
    assert world.sink.raised[0].since == T0 + 2 * 60  # its last sign of life
    assert "D0007" in world.state.records
    world.run(3, silent={"D0007"})
    assert len(world.sink.raised) == 1  # once
    world.run(3)
    assert [t.device_id for t in world.sink.recovered] == ["D0007"]
    assert world.state.records == {}


def test_exactly_at_the_threshold_is_not_yet_offline() -> None:
    world = World(devices=2)
    world.minute()  # D0001 last speaks at T0
    world.clock.now = T0 + THRESHOLD
    world.tracker.observe([Sighting("s1", "D0000", world.clock.now, THRESHOLD)])
    world.tracker.flush()
    assert all(s.silent == () for m in world.ledger.summaries_by_minute.values() for s in m.values())
    world.clock.now = T0 + THRESHOLD + 1
    world.tracker.observe([])
    world.tracker.flush()
    silent = [d for m in world.ledger.summaries_by_minute.values() for s in m.values() for d, _ in s.silent]
    assert silent == ["D0001"]


def test_a_disconnect_makes_the_device_a_candidate_sooner_and_a_connect_does_not_bring_it_back() -> None:
    world = World(devices=3)
    world.run(2)
    world.tracker.observe([Sighting("s1", "D0001", world.clock.now, THRESHOLD, Signal.DISCONNECT)])
    world.run(4, silent={"D0001"})  # 60 s of disconnect grace, far sooner than 300 s of silence
    assert [t.device_id for t in world.sink.raised] == ["D0001"]
    world.tracker.observe([Sighting("s1", "D0001", world.clock.now, THRESHOLD, Signal.CONNECT)])
    world.run(3, silent={"D0001"})
    assert world.sink.recovered == []  # connected, still no data
    world.run(3)
    assert [t.device_id for t in world.sink.recovered] == ["D0001"]


def test_a_silent_shard_makes_its_devices_candidates() -> None:
    world = World(devices=20)
    world.run(3)
    for _ in range(20):  # the shard stops: no batch, no Lambda, no summary
        world.clock.now += 60
        report = world.watch.run()
        if report.silent_shards:
            assert report.silent_shards == ["s1"]
    assert sorted(t.device_id for t in world.sink.raised) == world.devices
    assert world.ledger.reads["rosters"] == 2  # when the shard fell silent, and at its devices' deadline


def test_a_new_container_takes_the_shard_over_from_its_roster() -> None:
    world = World(devices=10)
    world.run(3)
    world.tracker = world.container()  # cold start: the old container's memory is gone
    world.run(8, silent={"D0003"})
    assert [t.device_id for t in world.sink.raised] == ["D0003"]


def test_an_approved_declaration_suppresses_the_offline_warning_but_records_the_outage() -> None:
    declaration = Declaration(
        declaration_id="DCL-1",
        enterprise_id="E1",
        sector=Sector.HAZCHEM,
        area_codes=("TEDA",),
        device_ids=("D0002",),
        reason=DeclarationReason.PLANNED_STOP,
        starts_at=T0,
        ends_at=T0 + 7200,
        status=DeclarationStatus.APPROVED,
        declared_by="ent-e1",
        verified_by="reg",
        verified_at=T0 - 60,
        created_at=T0 - 3600,
        updated_at=T0 - 60,
    )
    world = World(devices=5, declarations=(declaration,))
    world.run(2)
    world.run(8, silent={"D0002", "D0004"})
    assert [t.device_id for t in world.sink.raised] == ["D0004"]
    assert world.state.records["D0002"].suppressed_by == "DCL-1"
    assert [(t.device_id, declaration_id) for t, declaration_id in world.sink.excused] == [("D0002", "DCL-1")]
    world.run(3)
    assert [t.device_id for t in world.sink.recovered] == ["D0004"]  # no recovery told for a suppressed one


def test_reads_per_run_are_in_proportion_to_summaries_and_changes() -> None:
    world = World(devices=2000)
    world.run(3)
    silent = set(world.devices[:20])  # 1 %
    offline_reads = world.state.reads["offline_keys"]
    summary_reads = world.ledger.reads["summaries"]
    world.run(10, silent=silent)
    assert world.state.reads["offline_keys"] - offline_reads == 20  # the devices named, once
    assert world.ledger.reads["summaries"] - summary_reads == 10  # one summary per shard and minute
    assert len(world.sink.raised) == 20


def test_a_failed_summary_write_is_kept_and_written_with_the_next_batch() -> None:
    world = World(devices=3)
    world.ledger.fail_writes = True
    world.minute()
    world.minute()
    assert world.ledger.writes["summary"] == 0
    world.ledger.fail_writes = False
    world.minute()
    assert world.ledger.writes["summary"] == 2


def test_a_vehicle_whose_level_may_rise_is_regraded_every_run_until_it_is_back() -> None:
    world = World(devices=3)
    world.sink.rising = {"D0001"}
    world.run(2)
    world.run(8, silent={"D0001"})
    assert [t.device_id for t in world.sink.raised] == ["D0001"]
    regraded = len(world.sink.regraded)
    assert regraded >= 1 and {t.offline_since for t in world.sink.regraded} == {world.sink.raised[0].since}
    world.run(2, silent={"D0001"})
    assert len(world.sink.regraded) == regraded + 2  # once a run while silent
    world.run(3)
    assert [t.device_id for t in world.sink.recovered] == ["D0001"]
    after = len(world.sink.regraded)
    world.run(2)
    assert len(world.sink.regraded) == after and world.state.state is not None
    assert world.state.state.regrading == {}


def test_a_stage_with_a_seconds_scale_period_detects_a_disconnected_device_within_a_few_periods() -> None:
    """`Policy.presence` (a stage's override, as the demo's): summaries every 5 s read two periods late, a
    disconnect offline after 4 s; the other devices, reporting every 2 s against their 300 s threshold, stay
    online."""
    from chalicelib.domain.catalog import build_policy

    presence = build_policy({"presence": {"period_s": 5, "disconnect_grace_s": 4}}).presence
    clock = Clock()
    ledger, state, sink = FakePresenceLedger(), FakeOfflineState(), FakeOfflineSink()
    tracker = PresenceTracker(ledger, presence.thresholds(), "c1", clock)
    watch = OfflineWatch(
        ledger,
        state,
        sink,
        lambda: (),
        clock,
        lag_min=presence.lag_periods,
        disconnect_grace_s=presence.disconnect_grace_s,
        period_s=presence.period_s,
    )
    devices = ["D0", "D1", "D2"]
    threshold = presence.thresholds().threshold_s("hazchem", "gas_detector")
    raised_at = None
    for tick in range(30):  # 60 s of reports every 2 s; D0 disconnects at 10 s and stays silent
        at = clock.now
        if tick == 5:
            tracker.observe([Sighting("s1", "D0", at, threshold, Signal.DISCONNECT)])
        tracker.observe(Sighting("s1", d, at, threshold) for d in devices if not (d == "D0" and tick >= 5))
        watch.run()
        if sink.raised and raised_at is None:
            raised_at = clock.now - T0
        clock.now += 2
    assert [t.device_id for t in sink.raised] == ["D0"]
    assert raised_at is not None and 10 + 4 < raised_at <= 10 + 4 + 3 * 5 + 2  # grace, then ≤ 3 periods


def test_the_presence_policy_keys_kinds_by_sector_and_kind() -> None:
    import pytest
    from pydantic import ValidationError

    from chalicelib.domain.catalog import build_policy

    policy = build_policy({"presence": {"kind_intervals_s": {"hazchem/gas_detector": 10}, "grace_s": 5}})
    assert policy.presence.thresholds().threshold_s("hazchem", "gas_detector") == 10 * 3 + 5
    with pytest.raises(ValidationError):
        build_policy({"presence": {"kind_intervals_s": {"gas_detector": 10}}})


def test_a_device_that_spoke_then_fell_silent_within_one_period_is_offline() -> None:
    """With a period shorter than a disconnect's grace plus a report interval, one summary may name a device both
    `back` (it spoke: data after a silence clears it from `silent` in the tracker) and `silent` afterwards."""
    from chalicelib.services.ports import ShardSummary

    world = World(devices=1)
    minute = int(T0 // 60)
    world.ledger.put_summary(
        ShardSummary(
            shard="s1",
            minute=minute,
            owner="c1",
            fresh=True,
            back=(("D0000", T0 + 1),),
            silent=(("D0000", T0 + 1),),
            messages=1,
            tracked=1,
        )
    )
    world.clock.now = T0 + 2 * 60  # the watch's first run reads the minute two minutes back
    world.watch.run()
    assert [t.device_id for t in world.sink.raised] == ["D0000"]
