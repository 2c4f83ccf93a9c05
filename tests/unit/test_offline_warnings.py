"""Offline warnings through the warning path (docs/offline-watch.md "Offline warnings"), over the ingest's fakes: a
raise is a stored `offline` warning with its timer, its topic publication and one delivery job; a repeated raise is
the same warning told once; the recovery marks the reading normal (latched) and is told; a device never raised
recovers nothing."""

from __future__ import annotations

from chalicelib.domain.catalog import sector_models
from chalicelib.domain.changes import OFFLINE
from chalicelib.domain.declarations import DECLARED_FLAG
from chalicelib.domain.levels import Level
from chalicelib.domain.presence import offline_warning_id
from chalicelib.domain.registry import DeviceRegistration, StaticFactors
from chalicelib.domain.sectors import Sector
from chalicelib.domain.sectors.road_transport import RoadTransportModel
from chalicelib.domain.state import DeviceState
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.delivery_fakes import MemoryJobs
from chalicelib.services.offline_warnings import OfflineWarnings
from chalicelib.services.ports import OfflineTransition
from tests.unit.test_ingest_service import GT1, POLICY, T0, World


def sink(world: World, jobs: MemoryJobs) -> OfflineWarnings:
    return OfflineWarnings(
        POLICY,
        world.registry,
        world.states,
        world.warnings,
        world.notifier,
        world.ledger,
        world.workflow,
        jobs,
        lambda: world.now,
    )


def test_an_outage_raises_an_offline_warning_told_once_and_its_recovery_is_told() -> None:
    world, jobs = World(), MemoryJobs()
    warnings = sink(world, jobs)
    since, decided = T0, T0 + 360
    warnings.offline(OfflineTransition(GT1, decided, since))
    warnings.offline(OfflineTransition(GT1, decided, since))  # the run after a failure applies it again

    warning_id = offline_warning_id(GT1, since)
    record = world.warnings.records[warning_id]
    assert (record.risk_type, record.level, record.status) == (OFFLINE, Level.BLUE, WarningStatus.RAISED)
    assert record.enterprise_id == "E-HC-T" and record.raised_at == decided
    assert world.workflow.tracked[0] == warning_id  # its deadlines are followed like any warning's
    assert [n.change.warning_id for n in world.notifier.published] == [warning_id]
    assert {job.job_id for job in jobs.jobs} == {jobs.jobs[0].job_id}  # the same job (the queue dedupes on it)
    assert "设备离线" in jobs.jobs[0].detail

    warnings.online(OfflineTransition(GT1, T0 + 900, T0 + 840, offline_since=since))
    recovered = world.warnings.records[warning_id]
    assert recovered.reading_normal and recovered.status is WarningStatus.RAISED  # people close it
    assert [n.change.kind.value for n in world.notifier.published] == ["raise", "recover"]


def test_a_device_never_raised_recovers_nothing() -> None:
    world, jobs = World(), MemoryJobs()
    sink(world, jobs).online(OfflineTransition(GT1, T0 + 900, T0 + 840, offline_since=T0))
    assert world.warnings.records == {} and world.notifier.published == [] and jobs.jobs == []


def test_an_excused_outage_is_recorded_flagged_declared_under_its_declaration_and_nobody_is_told() -> None:
    world, jobs = World(), MemoryJobs()
    sink(world, jobs).suppressed(OfflineTransition(GT1, T0 + 360, T0), "DCL-1")
    assert world.warnings.records == {} and world.notifier.published == [] and jobs.jobs == []
    [log] = world.warnings.engine_log.values()
    [event] = log.values()
    assert event["data"]["risk_type"] == OFFLINE and DECLARED_FLAG in event["data"]["flags"]
    assert event["data"]["params"]["declaration_id"] == "DCL-1"


# --- a hazardous-goods vehicle: its level follows its silence (DOMAIN.md §2.1) ----------------------------------

TRUCK = "RT-T-V1"


def truck_world(restricted: bool) -> tuple[World, MemoryJobs, OfflineWarnings]:
    world, jobs = World(), MemoryJobs()
    truck = DeviceRegistration(
        device_id=TRUCK,
        enterprise_id="E-HC-T",
        enterprise_name="渤化测试化工",
        sector=Sector.ROAD_TRANSPORT,
        unit_id="FLEET",
        unit_name="车队",
        point_name="津A12345",
        kind="vehicle_terminal",
        area_codes=("TEDA",),
        static=StaticFactors(vehicle_class="hazmat"),
    )
    world.registry.registrations[TRUCK] = truck
    scratch = {"t": T0, "m": 1, **({"z": 1} if restricted else {})}  # moving when it fell silent
    world.states.save_device(DeviceState(TRUCK, last_seq=1, last_ts=T0, scratch=scratch), last_seen=T0)
    road = sector_models(POLICY)[Sector.ROAD_TRANSPORT]
    assert isinstance(road, RoadTransportModel)
    warnings = OfflineWarnings(
        POLICY,
        world.registry,
        world.states,
        world.warnings,
        world.notifier,
        world.ledger,
        world.workflow,
        jobs,
        lambda: world.now,
        road=road,
    )
    return world, jobs, warnings


def test_a_silent_hazmat_vehicle_rises_to_yellow_after_a_long_silence() -> None:
    world, _, warnings = truck_world(restricted=False)
    assert warnings.offline(OfflineTransition(TRUCK, T0 + 300, T0)) is True  # blue now, may rise
    warning_id = offline_warning_id(TRUCK, T0)
    assert world.warnings.records[warning_id].level == Level.BLUE
    assert warnings.regrade(OfflineTransition(TRUCK, T0 + 900, T0 + 900, offline_since=T0)) is True
    assert world.warnings.records[warning_id].level == Level.BLUE  # 15 min: still blue
    assert warnings.regrade(OfflineTransition(TRUCK, T0 + 1900, T0 + 1900, offline_since=T0)) is True
    assert world.warnings.records[warning_id].level == Level.YELLOW  # over 30 min
    assert [n.change.kind.value for n in world.notifier.published] == ["raise", "level_up"]


def test_a_silent_hazmat_vehicle_in_a_restricted_zone_goes_red_and_is_then_left_alone() -> None:
    world, _, warnings = truck_world(restricted=True)
    warnings.offline(OfflineTransition(TRUCK, T0 + 300, T0))
    assert warnings.regrade(OfflineTransition(TRUCK, T0 + 700, T0 + 700, offline_since=T0)) is False  # top level
    assert world.warnings.records[offline_warning_id(TRUCK, T0)].level == Level.RED


def test_other_devices_stay_blue_and_are_not_regraded() -> None:
    world, jobs = World(), MemoryJobs()
    assert sink(world, jobs).offline(OfflineTransition(GT1, T0 + 360, T0)) is False
