"""Suppression by outage declarations (docs/declarations.md, docs/offline-watch.md): in the ingest, a 数据失真
declaration keeps the device's readings ungraded and an excused device's data-quality finding is recorded, not
raised; in the offline watch, an excused offline device is raised when nothing excuses it any more (the window
ended, the declaration was rejected), and a failed transition is applied again by the next run."""

from __future__ import annotations

from chalicelib.domain.changes import DATA_QUALITY
from chalicelib.domain.declarations import DECLARED_FLAG, Declaration, DeclarationReason, DeclarationStatus
from chalicelib.domain.levels import Sector
from chalicelib.domain.rejections import RejectReason
from chalicelib.services.declarations import OpenDeclarations
from chalicelib.services.ports import OfflineTransition
from tests.unit.test_ingest_service import ALARM, GT1, GT2, T0, World, reading
from tests.unit.test_offline_watch import T0 as WATCH_T0
from tests.unit.test_offline_watch import World as WatchWorld


def declaration(
    device: str,
    reason: DeclarationReason,
    starts_at: float,
    ends_at: float,
    status: DeclarationStatus = DeclarationStatus.PENDING,
) -> Declaration:
    approved = status is DeclarationStatus.APPROVED
    return Declaration(
        declaration_id=f"DCL-{device}",
        enterprise_id="E-HC-T",
        sector=Sector.HAZCHEM,
        area_codes=("TEDA",),
        device_ids=(device,),
        reason=reason,
        starts_at=starts_at,
        ends_at=ends_at,
        status=status,
        declared_by="ent",
        verified_by="reg" if approved else None,
        verified_at=starts_at - 60 if approved else None,
        created_at=starts_at - 3600,
        updated_at=starts_at - 60,
    )


# --- the ingest -------------------------------------------------------------------------------------------------


def ingest_with(world: World, *declarations: Declaration) -> object:
    service = world.container()
    service._declarations = lambda: list(declarations)
    return service


def test_readings_inside_a_distortion_declaration_are_kept_and_never_graded() -> None:
    world = World()
    service = ingest_with(world, declaration(GT1, DeclarationReason.DATA_DISTORTION, T0 - 60, T0 + 3600))
    report = service.handle(  # type: ignore[attr-defined]
        [reading(1, lel=ALARM), reading(2, lel=ALARM), reading(3, GT2, lel=ALARM), reading(4, GT2, lel=ALARM)]
    )
    assert [w.device_id for w in world.warnings.records.values()] == [GT2]  # the other device is graded as ever
    kept = [row for row in world.quarantine.rows.values() if row.device_id == GT1]
    assert [row.reason for row in kept] == [RejectReason.DECLARED_DISTORTION] * 2
    assert report.graded == 2


def test_an_excused_devices_data_quality_finding_is_recorded_not_raised_and_raises_after_the_window() -> None:
    world = World()
    damage = declaration(GT1, DeclarationReason.EQUIPMENT_DAMAGE, T0 - 60, T0 + 10)
    service = ingest_with(world, damage)
    service.handle([reading(1, lel=150.0)])  # type: ignore[attr-defined]  # out of range: a sensor fault
    assert world.warnings.records == {}
    [log] = world.warnings.engine_log.values()
    [event] = log.values()
    assert DECLARED_FLAG in event["data"]["flags"] and event["data"]["risk_type"] == DATA_QUALITY
    assert event["data"]["params"]["declaration_id"] == damage.declaration_id  # listed under its declaration

    service.handle([reading(20, lel=150.0)])  # type: ignore[attr-defined]  # the window has ended
    assert [w.risk_type for w in world.warnings.records.values()] == [DATA_QUALITY]


def test_open_declarations_are_read_once_per_ttl_and_a_failed_read_keeps_the_last_list() -> None:
    class Store:
        reads = 0
        fail = False

        def open(self) -> list[Declaration]:
            Store.reads += 1
            if Store.fail:
                raise RuntimeError("throttled")
            return [declaration(GT1, DeclarationReason.OTHER, T0, T0 + 60)]

    now = [T0]
    cached = OpenDeclarations(Store(), lambda: now[0], ttl_s=60)  # type: ignore[arg-type]
    assert len(cached()) == 1 and len(cached()) == 1 and Store.reads == 1
    now[0] += 60
    Store.fail = True
    assert len(cached()) == 1 and Store.reads == 2


# --- the offline watch ------------------------------------------------------------------------------------------


def test_an_excused_offline_device_is_raised_when_the_window_ends_and_only_then() -> None:
    window_end = WATCH_T0 + 15 * 60
    declarations = [declaration("D0002", DeclarationReason.EQUIPMENT_DAMAGE, WATCH_T0, window_end)]
    world = WatchWorld(devices=5)
    world.watch._declarations = lambda: declarations
    world.run(2)
    world.run(10, silent={"D0002"})
    assert world.sink.raised == [] and world.state.records["D0002"].suppressed_by == "DCL-D0002"
    while world.clock.now < window_end + 120:
        world.minute(silent={"D0002"})
        report = world.watch.run()  # at the clock's minute: the window is half-open
        assert report.raised == (["D0002"] if world.clock.now == window_end else [])
    [raised] = world.sink.raised
    assert raised.device_id == "D0002" and raised.since == WATCH_T0 + 60  # its outage, from its last sign of life
    assert world.state.records["D0002"].suppressed_by is None
    world.run(3)
    assert [t.device_id for t in world.sink.recovered] == ["D0002"]  # now it was told, so is its recovery


def test_a_rejected_declaration_raises_the_device_it_excused_at_the_next_run() -> None:
    pending = declaration("D0001", DeclarationReason.EQUIPMENT_DAMAGE, WATCH_T0, WATCH_T0 + 7200)
    declarations = [pending]
    world = WatchWorld(devices=3)
    world.watch._declarations = lambda: declarations
    world.run(2)
    world.run(10, silent={"D0001"})
    assert world.sink.raised == []
    declarations[0] = pending.model_copy(update={"status": DeclarationStatus.REJECTED})
    world.run(1, silent={"D0001"})
    assert [t.device_id for t in world.sink.raised] == ["D0001"]


def test_a_failed_raise_keeps_the_cursor_and_the_next_run_raises_it() -> None:
    world = WatchWorld(devices=3)
    world.run(2)
    calls: list[OfflineTransition] = []
    original = world.sink.offline

    def failing(transition: OfflineTransition) -> None:
        calls.append(transition)
        if len(calls) == 1:
            raise RuntimeError("warning store throttled")
        original(transition)

    world.sink.offline = failing  # type: ignore[method-assign]
    failed: list[str] = []
    for _ in range(10):
        world.minute(silent={"D0001"})
        failed += world.watch.run().failed
    assert failed == ["D0001"]
    assert [t.device_id for t in world.sink.raised] == ["D0001"]  # once, by the run after the failure
    assert "D0001" in world.state.records
