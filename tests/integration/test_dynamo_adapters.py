"""The DynamoDB adapters against moto's server, on the tables infra/resources.json defines.

Each test works on its own keys (device ids, warning ids, days), so the tests share one provisioned server but
not their data.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import boto3
import pytest

from chalicelib.adapters import dynamo
from chalicelib.adapters.dynamo import (
    DynamoQuarantine,
    DynamoRegistry,
    DynamoStateStore,
    DynamoWarningStore,
    WarningItem,
)
from chalicelib.adapters.stream_log import KinesisStreamLog
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import Contact, DeviceRegistration, Enterprise, Person, Setpoint
from chalicelib.domain.state import DeviceState, RiskState, UnitState
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.ports import ConcurrentUpdateError, QuarantinedMessage, ShardCheckpoint, ShardLease
from chalicelib.settings import Settings
from local.aws import Provisioned, provision

T0 = 1_764_000_000.0  # 2025-11-25 00:00 CST


@pytest.fixture(scope="module")
def infra(moto_server: str) -> Provisioned:
    provisioned = provision(moto_server, stage="test")
    dynamo.bind(
        Settings(
            stage="test",
            region=provisioned.region,
            aws_endpoint_url=moto_server,
            table_device_state=provisioned.table("DeviceStateTable"),
            table_unit_state=provisioned.table("UnitStateTable"),
            table_registry=provisioned.table("RegistryTable"),
            table_warning=provisioned.table("WarningTable"),
            table_warning_event=provisioned.table("WarningEventTable"),
            table_quarantine=provisioned.table("QuarantineTable"),
        )
    )
    return provisioned


@pytest.fixture
def states(infra: Provisioned) -> DynamoStateStore:
    return DynamoStateStore()


@pytest.fixture
def warnings(infra: Provisioned) -> DynamoWarningStore:
    return DynamoWarningStore()


def change(
    kind: ChangeKind,
    warning_id: str,
    level: int,
    at: float,
    *,
    previous: int = Level.NONE,
    sector: Sector = Sector.HAZCHEM,
    raised_at: float = T0,
) -> WarningChange:
    return WarningChange(
        kind=kind,
        warning_id=warning_id,
        device_id=f"D-{warning_id}",
        enterprise_id="E-T1",
        enterprise_name="渤化测试化工",
        sector=sector,
        unit_id="U-T1",
        unit_name="罐区一",
        point_name="GT-1",
        area_codes=("TEDA", "TAIDA"),
        risk_type="combustible_gas",
        level=level,
        previous_level=previous,
        base_level=level,
        reason="gas_l2" if level >= Level.ORANGE else "gas_l1",
        title="可燃气体报警",
        value=20.0 + 10 * level,
        unit="%LEL",
        at=at,
        raised_at=raised_at,
    )


def raised(warning_id: str, level: int, at: float = T0, sector: Sector = Sector.HAZCHEM) -> WarningRecord:
    return WarningRecord.raised(change(ChangeKind.RAISE, warning_id, level, at, sector=sector, raised_at=at))


# --- device and unit state ---------------------------------------------------------------------------------------


def test_device_state_round_trips_and_its_version_counts_the_saves(states: DynamoStateStore) -> None:
    state = DeviceState("RT-STATE-1", last_seq=7, last_ts=T0, scratch={"drive": [1, 2]}, quality_fault_at=T0 - 5)
    state.risks["gas"] = RiskState(base=2, level=3, warning_id="WABC", since=T0, raises=[T0], flags=4)

    states.save_device(state, last_seen=T0)
    assert state.version == 1
    loaded = states.load_devices(["RT-STATE-1"])["RT-STATE-1"]
    assert loaded.to_dict() == state.to_dict()
    assert loaded.version == 1

    loaded.last_seq = 8
    states.save_device(loaded, last_seen=T0 + 1)
    assert loaded.version == 2
    assert states.load_devices(["RT-STATE-1"])["RT-STATE-1"].last_seq == 8


def test_a_device_state_saved_from_a_stale_read_loses_the_race(states: DynamoStateStore) -> None:
    states.save_device(DeviceState("RT-RACE-1", last_seq=1), last_seen=T0)
    first = states.load_devices(["RT-RACE-1"])["RT-RACE-1"]
    second = states.load_devices(["RT-RACE-1"])["RT-RACE-1"]

    first.last_seq = 2
    states.save_device(first, last_seen=T0 + 1)
    second.last_seq = 3
    with pytest.raises(ConcurrentUpdateError):
        states.save_device(second, last_seen=T0 + 2)

    assert states.load_devices(["RT-RACE-1"])["RT-RACE-1"].last_seq == 2


def test_a_new_device_state_does_not_overwrite_one_written_meanwhile(states: DynamoStateStore) -> None:
    states.save_device(DeviceState("RT-RACE-2", last_seq=5), last_seen=T0)
    with pytest.raises(ConcurrentUpdateError):
        states.save_device(DeviceState("RT-RACE-2", last_seq=1), last_seen=T0)


def test_batch_load_gives_fresh_states_for_devices_never_seen(states: DynamoStateStore) -> None:
    states.save_device(DeviceState("RT-BATCH-1", last_seq=4, last_ts=T0), last_seen=T0)

    loaded = states.load_devices(["RT-BATCH-MISSING", "RT-BATCH-1", "RT-BATCH-MISSING"])

    assert list(loaded) == ["RT-BATCH-MISSING", "RT-BATCH-1"]
    fresh = loaded["RT-BATCH-MISSING"]
    assert (fresh.version, fresh.last_seq, fresh.last_ts, fresh.risks) == (0, -1, 0.0, {})
    assert (loaded["RT-BATCH-1"].last_seq, loaded["RT-BATCH-1"].version) == (4, 1)


def test_batch_load_reaches_past_one_hundred_devices(states: DynamoStateStore) -> None:
    ids = [f"RT-MANY-{n:03d}" for n in range(130)]
    for device in ids[::10]:
        states.save_device(DeviceState(device, last_seq=9), last_seen=T0)

    loaded = states.load_devices(ids)

    assert len(loaded) == 130
    assert {d for d, s in loaded.items() if s.last_seq == 9} == set(ids[::10])


def test_unit_state_round_trips_and_a_stale_save_loses_the_race(states: DynamoStateStore) -> None:
    unit = UnitState("U-RACE-1", alarms={"D1|gas": ["gas", "gas_l2", 3, T0]})
    states.save_unit(unit)
    first = states.load_units(["U-RACE-1", "U-NEVER"])
    assert first["U-RACE-1"].alarms == unit.alarms
    assert first["U-RACE-1"].version == 1
    assert (first["U-NEVER"].alarms, first["U-NEVER"].version) == ({}, 0)

    stale = states.load_units(["U-RACE-1"])["U-RACE-1"]
    first["U-RACE-1"].alarms.clear()
    states.save_unit(first["U-RACE-1"])
    with pytest.raises(ConcurrentUpdateError):
        states.save_unit(stale)


def test_a_shards_checkpoint_round_trips_with_its_states_and_is_none_until_written(
    states: DynamoStateStore,
) -> None:
    shard = "shardId-000000000007"
    assert states.load_checkpoint(shard) is None
    states.save_checkpoint(shard, ShardCheckpoint(f"{12:056d}", 1))
    carried = {"D-1": DeviceState("D-1", last_seq=4, last_ts=1.5, last_record=41).dumps(), "D-2": "{}"}
    states.save_checkpoint(shard, ShardCheckpoint(f"{42:056d}", 1, carried))

    assert states.load_checkpoint(shard) == ShardCheckpoint(f"{42:056d}", 1, carried)


def test_a_checkpoint_of_an_earlier_epoch_is_refused_once_a_later_one_is_stored(states: DynamoStateStore) -> None:
    shard = "shardId-000000000008"
    states.save_checkpoint(shard, ShardCheckpoint("10", 2))

    with pytest.raises(ConcurrentUpdateError):
        states.save_checkpoint(shard, ShardCheckpoint("11", 1))
    states.save_checkpoint(shard, ShardCheckpoint("12", 3))
    assert states.load_checkpoint(shard) == ShardCheckpoint("12", 3)


def test_a_shard_lease_is_taken_over_only_from_the_holder_that_was_read(states: DynamoStateStore) -> None:
    shard = "shardId-000000000009"
    assert states.shard_lease(shard) is None
    first = states.take_shard(shard, "container-a", None)
    with pytest.raises(ConcurrentUpdateError):
        states.take_shard(shard, "container-b", None)  # somebody took it since B read "nobody"
    second = states.take_shard(shard, "container-b", first)
    with pytest.raises(ConcurrentUpdateError):
        states.take_shard(shard, "container-a", first)  # A's view is stale

    assert (first, second) == (ShardLease("container-a", 1), ShardLease("container-b", 2))
    assert states.shard_lease(shard) == second


def test_the_stream_log_reads_a_shard_back_between_two_sequence_numbers_in_order(infra: Provisioned) -> None:
    """The catch-up's read-back (docs/decisions.md "What a container restart loses") on moto's Kinesis."""
    kinesis = boto3.client("kinesis", region_name=infra.region, endpoint_url=infra.endpoint_url)
    stream = infra.stream_name
    put = [
        kinesis.put_record(StreamName=stream, Data=f"r{n}".encode(), PartitionKey=f"D{n % 3}", ExplicitHashKey="0")
        for n in range(12)
    ]
    shard = put[0]["ShardId"]
    log = KinesisStreamLog(kinesis, stream)

    read = list(log.read(shard, put[2]["SequenceNumber"], put[9]["SequenceNumber"]))

    assert [entry.data for entry in read] == [f"r{n}".encode() for n in range(3, 9)]
    assert [entry.partition_key for entry in read] == [f"D{n % 3}" for n in range(3, 9)]
    assert all(entry.arrival_s > 0 for entry in read)
    assert list(log.read(shard, put[11]["SequenceNumber"], str(int(put[11]["SequenceNumber"]) + 1))) == []


# --- registry ----------------------------------------------------------------------------------------------------


def registration(device_id: str, enterprise_id: str) -> DeviceRegistration:
    return DeviceRegistration(
        device_id=device_id,
        enterprise_id=enterprise_id,
        enterprise_name="渤化测试化工",
        sector=Sector.HAZCHEM,
        unit_id="U-REG-1",
        unit_name="罐区一",
        kind="gas_detector",
        area_codes=("TEDA",),
        setpoints={"gas_lel_pct": Setpoint(l1=20.0, l2=40.0)},
    )


def person(person_id: str, role: Any, phone: str, **fields: Any) -> Person:
    return Person(person_id=person_id, name=f"测试 {person_id}", role=role, phone=phone, **fields)


@pytest.fixture(scope="module")
def seeded_registry(infra: Provisioned) -> None:
    DynamoRegistry.put_many(
        [registration("REG-D1", "E-REG-1"), registration("REG-D2", "E-REG-1")],
        [
            Enterprise(
                enterprise_id="E-REG-1",
                name="渤化测试化工",
                sector=Sector.HAZCHEM,
                area_codes=("TEDA",),
                contacts=(Contact(name="安全负责人 李娜", phone="+8613900000001"),),
            )
        ],
        [
            person("P-REG-DUTY", "duty", "+8613900000002"),
            person("P-REG-EB", "regulator", "+8613900000003", department="emergency_bureau"),
        ],
    )


@pytest.mark.usefixtures("seeded_registry")
def test_registry_returns_registered_devices_only_with_their_setpoints() -> None:
    found = DynamoRegistry().devices(["REG-D1", "REG-GHOST", "REG-D2"])

    assert set(found) == {"REG-D1", "REG-D2"}
    assert found["REG-D1"] == registration("REG-D1", "E-REG-1")
    assert found["REG-D1"].setpoint("gas_lel_pct").l2 == 40.0


@pytest.mark.usefixtures("seeded_registry")
def test_registry_reads_an_enterprise_and_none_for_an_unknown_one() -> None:
    registry = DynamoRegistry()

    enterprise = registry.enterprise("E-REG-1")

    assert enterprise is not None
    assert [contact.phone for contact in enterprise.contacts] == ["+8613900000001"]
    assert registry.enterprise("E-REG-NONE") is None
    assert [e.enterprise_id for e in registry.enterprises()] == ["E-REG-1"]


@pytest.mark.usefixtures("seeded_registry")
def test_registry_lists_people_and_caches_them_until_the_ttl() -> None:
    cached = DynamoRegistry(ttl_s=3600)
    uncached = DynamoRegistry(ttl_s=0)
    assert {p.person_id for p in cached.people()} == {"P-REG-DUTY", "P-REG-EB"}
    assert cached.devices(["REG-LATE"]) == {}

    DynamoRegistry.put_person(person("P-REG-LATE", "area", "+8613900000004", area_codes=("TEDA",)))
    DynamoRegistry.put_device(registration("REG-LATE", "E-REG-1"))

    assert "P-REG-LATE" not in {p.person_id for p in cached.people()}
    assert cached.devices(["REG-LATE"]) == {}
    assert "P-REG-LATE" in {p.person_id for p in uncached.people()}
    assert set(uncached.devices(["REG-LATE"])) == {"REG-LATE"}


@pytest.mark.usefixtures("seeded_registry")
def test_a_registry_change_shows_at_the_next_minutes_version_check_and_an_unchanged_registry_is_not_read() -> None:
    DynamoRegistry.put_device(registration("REG-VERSIONED", "E-REG-1"))
    now = [1000.0]
    registry = DynamoRegistry(ttl_s=60, clock=lambda: now[0])
    before = registry.devices(["REG-VERSIONED"])["REG-VERSIONED"]
    now[0] += 61
    assert registry.devices(["REG-VERSIONED"])["REG-VERSIONED"] is before  # the version has not moved

    DynamoRegistry.put_device(before.model_copy(update={"point_name": "改名后的测点"}))
    now[0] += 30
    assert registry.devices(["REG-VERSIONED"])["REG-VERSIONED"] is before  # not checked again yet
    now[0] += 31
    assert registry.devices(["REG-VERSIONED"])["REG-VERSIONED"].point_name == "改名后的测点"


# --- warnings ----------------------------------------------------------------------------------------------------


def test_creating_a_warning_twice_stores_it_once(warnings: DynamoWarningStore) -> None:
    record = raised("WCREATE1", Level.ORANGE)

    assert warnings.create(record) is True
    assert warnings.create(replace(record, title="重复投递")) is False

    stored = warnings.get("WCREATE1")
    assert stored is not None
    assert replace(stored, version=0) == record
    assert stored.title == "可燃气体报警"
    assert warnings.get("WNOSUCH") is None


def test_a_level_change_is_applied_once_and_bumps_level_seq(warnings: DynamoWarningStore) -> None:
    warnings.create(raised("WLEVEL1", Level.YELLOW))
    up = change(ChangeKind.LEVEL_UP, "WLEVEL1", Level.RED, T0 + 60, previous=Level.YELLOW)

    assert warnings.apply_change(up) is True
    assert warnings.apply_change(up) is False

    stored = warnings.get("WLEVEL1")
    assert stored is not None
    assert (stored.level, stored.peak_level, stored.updated_at) == (Level.RED, Level.RED, T0 + 60)
    assert WarningItem.get("WLEVEL1").level_seq == 1

    down = change(ChangeKind.LEVEL_DOWN, "WLEVEL1", Level.ORANGE, T0 + 120, previous=Level.RED)
    assert warnings.apply_change(down) is True
    stored = warnings.get("WLEVEL1")
    assert stored is not None
    assert (stored.level, stored.peak_level) == (Level.ORANGE, Level.RED)
    assert WarningItem.get("WLEVEL1").level_seq == 2


def test_an_older_change_arriving_late_is_not_applied(warnings: DynamoWarningStore) -> None:
    warnings.create(raised("WLATE1", Level.YELLOW))
    warnings.apply_change(change(ChangeKind.LEVEL_UP, "WLATE1", Level.RED, T0 + 60, previous=Level.YELLOW))

    stale = change(ChangeKind.LEVEL_DOWN, "WLATE1", Level.BLUE, T0 + 30, previous=Level.YELLOW)

    assert warnings.apply_change(stale) is False
    stored = warnings.get("WLATE1")
    assert stored is not None
    assert stored.level == Level.RED


def test_a_change_to_an_unknown_warning_is_not_applied(warnings: DynamoWarningStore) -> None:
    assert warnings.apply_change(change(ChangeKind.LEVEL_UP, "WGHOST", Level.RED, T0)) is False
    assert warnings.get("WGHOST") is None


def test_recovery_marks_the_reading_normal_and_keeps_status_and_level(warnings: DynamoWarningStore) -> None:
    warnings.create(raised("WRECOVER1", Level.ORANGE))
    stored = warnings.get("WRECOVER1")
    assert stored is not None
    warnings.save(replace(stored, status=WarningStatus.ACKNOWLEDGED))

    recover = change(ChangeKind.RECOVER, "WRECOVER1", Level.NONE, T0 + 300, previous=Level.ORANGE)
    assert warnings.apply_change(recover) is True

    after = warnings.get("WRECOVER1")
    assert after is not None
    assert after.reading_normal is True
    assert after.status is WarningStatus.ACKNOWLEDGED
    assert after.level == Level.ORANGE
    assert after.is_open
    assert WarningItem.get("WRECOVER1").level_seq == 0
    assert "WRECOVER1" in {w.warning_id for w in DynamoWarningStore.open_by_sector("hazchem")}


def test_saving_a_warning_read_before_someone_else_changed_it_loses_the_race(
    warnings: DynamoWarningStore,
) -> None:
    warnings.create(raised("WSAVE1", Level.YELLOW))
    read = warnings.get("WSAVE1")
    assert read is not None
    warnings.save(replace(read, status=WarningStatus.ACKNOWLEDGED))

    with pytest.raises(ConcurrentUpdateError):
        warnings.save(replace(read, status=WarningStatus.VERIFIED))


def test_open_warnings_of_a_sector_come_most_urgent_first(warnings: DynamoWarningStore) -> None:
    sector = Sector.FIRE
    warnings.create(raised("WURG-BLUE", Level.BLUE, T0 + 1, sector))
    warnings.create(raised("WURG-RED-NEW", Level.RED, T0 + 30, sector))
    warnings.create(raised("WURG-YELLOW", Level.YELLOW, T0 + 2, sector))
    warnings.create(raised("WURG-RED-OLD", Level.RED, T0 + 10, sector))
    warnings.create(raised("WURG-ORANGE", Level.ORANGE, T0 + 3, sector))
    warnings.create(replace(raised("WURG-CLOSED", Level.RED, T0, sector), status=WarningStatus.CLOSED))
    warnings.create(raised("WURG-OTHER-SECTOR", Level.RED, T0, Sector.CONSTRUCTION))

    listed = DynamoWarningStore.open_by_sector("fire")

    assert [w.warning_id for w in listed] == [
        "WURG-RED-OLD",
        "WURG-RED-NEW",
        "WURG-ORANGE",
        "WURG-YELLOW",
        "WURG-BLUE",
    ]


def test_a_level_change_moves_the_warning_in_the_urgency_order(warnings: DynamoWarningStore) -> None:
    warnings.create(raised("WMOVE-YELLOW", Level.YELLOW, T0, Sector.CHEM_PIPELINE))
    warnings.create(raised("WMOVE-ORANGE", Level.ORANGE, T0, Sector.CHEM_PIPELINE))
    warnings.apply_change(
        change(
            ChangeKind.LEVEL_UP,
            "WMOVE-YELLOW",
            Level.RED,
            T0 + 5,
            previous=Level.YELLOW,
            sector=Sector.CHEM_PIPELINE,
        )
    )

    listed = DynamoWarningStore.open_by_sector("chem_pipeline")

    assert [w.warning_id for w in listed] == ["WMOVE-YELLOW", "WMOVE-ORANGE"]


def test_an_engine_event_is_appended_once(warnings: DynamoWarningStore) -> None:
    raise_change = change(ChangeKind.RAISE, "WEVENT1", Level.RED, T0)
    recover = change(ChangeKind.RECOVER, "WEVENT1", Level.NONE, T0 + 90, previous=Level.RED)

    assert warnings.append_engine_event(raise_change) is True
    assert warnings.append_engine_event(raise_change) is False
    assert warnings.append_engine_event(recover) is True

    events = DynamoWarningStore.events("WEVENT1")
    assert [(e["type"], e["at"]) for e in events] == [("engine.raise", T0), ("engine.recover", T0 + 90)]
    assert events[0]["data"] == raise_change.to_dict()


# --- quarantine --------------------------------------------------------------------------------------------------


def test_quarantine_keeps_the_original_bytes_by_local_day(infra: Provisioned) -> None:
    at = 1_764_258_400.0  # 2025-11-27 23:46:40 CST, 15:46:40 UTC: the local day differs from UTC's only late
    late = at + 20 * 60  # 2025-11-28 00:06:40 CST, still 11-27 in UTC
    binary = b"\xff\xfe\x00 not json at all"
    DynamoQuarantine(ttl_days=1).put(
        [
            QuarantinedMessage(at, "seq-2", "schema", "stream record: bad", binary, None, None),
            QuarantinedMessage(
                at, "seq-1", "out_of_range", "", b'{"gas_lel_pct": 250}', "dyj/hazchem/E1/D1/telemetry", "D1"
            ),
            QuarantinedMessage(late, "seq-3", "replayed", "seq 3 seen", b"{}", None, "D2"),
        ]
    )

    assert datetime.fromtimestamp(at, SHANGHAI).strftime("%Y-%m-%d") == "2025-11-27"
    rows = DynamoQuarantine.by_day("2025-11-27")
    assert [(row["reason"], row["payload"]) for row in rows] == [
        ("out_of_range", b'{"gas_lel_pct": 250}'),
        ("schema", binary),
    ]
    assert rows[0]["detail"] == "-"
    assert (rows[0]["topic"], rows[0]["device_id"]) == ("dyj/hazchem/E1/D1/telemetry", "D1")
    assert (rows[1]["topic"], rows[1]["device_id"]) == (None, None)
    assert [row["reason"] for row in DynamoQuarantine.by_day("2025-11-28")] == ["replayed"]
