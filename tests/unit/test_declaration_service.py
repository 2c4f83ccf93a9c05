"""The declarations use case (`services/declarations.py`) over fakes: who declares, verifies, withdraws and sees
what; every step audited in the declaration's own chain; the sweep expires and reminds once."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

import pytest

from chalicelib.domain.audit import verify_chain
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange, warning_id_for
from chalicelib.domain.declarations import DeclarationPolicy, DeclarationReason, DeclarationStatus, declared
from chalicelib.domain.errors import Conflict, DomainError, Forbidden, NotFound, ValidationFailed
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import Enterprise
from chalicelib.services.cursors import examined_per_page
from chalicelib.services.declaration_fakes import (
    FakeDeclarationNotices,
    FakeDeclarationStore,
    FakeSuppressedFindings,
)
from chalicelib.services.declarations import Declarations
from chalicelib.services.fakes import FakeRegistry
from chalicelib.services.ports import AuditStamp, ConcurrentUpdateError, Origin
from tests.unit.test_declarations import ADMIN, DUTY, ENT, REG, device

H = 3600.0
T0 = 1_750_000_000.0
E1 = Enterprise(enterprise_id="E1", name="津港石化", sector=Sector.HAZCHEM, area_codes=("TEDA",))
E2 = Enterprise(enterprise_id="E2", name="某工地", sector=Sector.CONSTRUCTION, area_codes=("HANGU",))
FIRE_REG = Actor(user_id="reg-fire", role=Role.REGULATOR, sectors=(Sector.FIRE,), department="fire_rescue")
EMG = Actor(user_id="emg-01", role=Role.EMERGENCY)
AREA = Actor(user_id="area-teda", role=Role.AREA, area_codes=("TEDA",))


@dataclass(frozen=True)
class Form:
    device_ids: tuple[str, ...] | None = ("D1",)
    unit_id: str | None = None
    reason: DeclarationReason = DeclarationReason.EQUIPMENT_DAMAGE
    starts_at: float = T0
    ends_at: float = T0 + 4 * H
    note: str = "液位计损坏，待更换"
    enterprise_id: str | None = None


class World:
    def __init__(self) -> None:
        self.now = T0
        self.store = FakeDeclarationStore()
        self.notices = FakeDeclarationNotices()
        self.registry = FakeRegistry(
            devices=[device("D1"), device("D2"), device("D3", unit_id="U2"), device("X1", enterprise_id="E2")],
            enterprises=[E1, E2],
        )
        ids = count(1)
        self.suppressed = FakeSuppressedFindings()
        self.service = Declarations(
            self.store,
            self.registry,
            self.notices,
            DeclarationPolicy(),
            lambda: self.now,
            new_id=lambda: f"DCL-{next(ids)}",
            suppressed=self.suppressed,
        )

    def events(self, declaration_id: str) -> list[str]:
        return [e.type for e in self.store.log(declaration_id).events]


@pytest.fixture
def world() -> World:
    return World()


def test_declare_approve_then_it_suppresses_and_every_step_is_chained(world: World) -> None:
    origin = Origin(source_ip="10.0.0.1", app="dyj-app")
    declared = world.service.declare(ENT, Form(reason=DeclarationReason.PLANNED_STOP, starts_at=T0 + H), origin)
    assert (declared.status, declared.version, declared.device_ids) == (DeclarationStatus.PENDING, 1, ("D1",))

    approved = world.service.approve(REG, declared.declaration_id, "同意检修")
    assert (approved.status, approved.verified_by, approved.version) == (
        DeclarationStatus.APPROVED,
        REG.user_id,
        2,
    )

    log = world.service.audit(DUTY, declared.declaration_id)
    assert verify_chain(log.events, head=log.head).ok
    assert [e.type for e in log.events] == ["declaration_declared", "declaration_approved"]
    assert (log.events[0].source_ip, log.events[0].app, log.events[1].reason) == (
        "10.0.0.1",
        "dyj-app",
        "同意检修",
    )
    assert log.events[1].before["status"] == "pending" and log.events[1].after["status"] == "approved"
    assert log.events[0].subject_id == f"declaration:{declared.declaration_id}"


def test_a_whole_unit_is_declared_as_its_devices_now(world: World) -> None:
    declared = world.service.declare(ENT, Form(device_ids=None, unit_id="U1"))
    assert (declared.device_ids, declared.unit_id) == (("D1", "D2"), "U1")


@pytest.mark.parametrize(
    ("form", "code"),
    [
        (Form(device_ids=("X1",)), "device_not_in_enterprise"),
        (Form(enterprise_id="E2", device_ids=("X1",)), "other_enterprise"),
        (Form(ends_at=T0 + 8 * 24 * H), "window_too_long"),
        (Form(starts_at=T0 - 3 * H), "retroactive_window"),
        (Form(reason=DeclarationReason.PLANNED_STOP, starts_at=T0 - H), "retroactive_window"),
    ],
)
def test_declarations_that_break_a_rule_are_refused_and_nothing_is_stored(
    world: World, form: Form, code: str
) -> None:
    with pytest.raises(DomainError) as caught:
        world.service.declare(ENT, form)
    assert caught.value.code == code
    assert world.store.stored == {}


def test_an_overlapping_declaration_conflicts_naming_the_other(world: World) -> None:
    first = world.service.declare(ENT, Form())
    with pytest.raises(Conflict) as caught:
        world.service.declare(ENT, Form(device_ids=("D2", "D1"), starts_at=T0 + H, ends_at=T0 + 5 * H))
    assert caught.value.details == {"declaration_id": first.declaration_id, "device_ids": ["D1"]}
    assert world.service.declare(ENT, Form(starts_at=T0 + 4 * H, ends_at=T0 + 6 * H)).version == 1  # adjoining


def test_the_administrator_declares_for_an_enterprise_it_names(world: World) -> None:
    declared = world.service.declare(ADMIN, Form(enterprise_id="E2", device_ids=("X1",)))
    assert (declared.enterprise_id, declared.sector) == ("E2", Sector.CONSTRUCTION)


@pytest.mark.parametrize(
    ("actor", "error"),
    [
        (DUTY, Forbidden),  # the duty centre receives declarations, does not verify them
        (EMG, Forbidden),
        (AREA, Forbidden),
        (ENT, Forbidden),
        (FIRE_REG, NotFound),  # another sector's regulator: not in scope
    ],
)
def test_only_the_sectors_regulators_and_the_administrator_verify(
    world: World, actor: Actor, error: type[DomainError]
) -> None:
    declared = world.service.declare(ENT, Form())
    with pytest.raises(error):
        world.service.approve(actor, declared.declaration_id)
    with pytest.raises(error):
        world.service.reject(actor, declared.declaration_id, "不符合")
    assert world.service.approve(ADMIN, declared.declaration_id).status is DeclarationStatus.APPROVED


def test_a_rejection_ends_the_suppression_and_is_audited_with_its_reason(world: World) -> None:
    declared = world.service.declare(ENT, Form())
    world.now = T0 + H
    rejected = world.service.reject(REG, declared.declaration_id, "现场核查设备正常")
    assert (rejected.status, rejected.rejection_reason) == (DeclarationStatus.REJECTED, "现场核查设备正常")
    assert world.events(declared.declaration_id) == ["declaration_declared", "declaration_rejected"]
    with pytest.raises(DomainError, match="declaration_not_pending"):
        world.service.approve(REG, declared.declaration_id)


def test_withdraw_by_the_enterprise_before_the_start(world: World) -> None:
    declared = world.service.declare(ENT, Form(reason=DeclarationReason.PLANNED_STOP, starts_at=T0 + H))
    other = Actor(user_id="ent-e2", role=Role.ENTERPRISE, enterprise_id="E2")
    with pytest.raises(NotFound):
        world.service.withdraw(other, declared.declaration_id)
    with pytest.raises(Forbidden):
        world.service.withdraw(REG, declared.declaration_id)
    world.now = T0 + H
    with pytest.raises(DomainError, match="declaration_started"):
        world.service.withdraw(ENT, declared.declaration_id)
    world.now = T0 + H - 1
    assert world.service.withdraw(ENT, declared.declaration_id, "计划取消").status is DeclarationStatus.WITHDRAWN


def test_listings_stay_within_the_scope(world: World) -> None:
    mine = world.service.declare(ENT, Form())
    theirs = world.service.declare(ADMIN, Form(enterprise_id="E2", device_ids=("X1",)))
    world.service.reject(REG, mine.declaration_id, "不符合")
    again = world.service.declare(ENT, Form(starts_at=T0 + H))

    ids = lambda found: [d.declaration_id for d in found]  # noqa: E731
    assert set(ids(world.service.list(ENT).items)) == {again.declaration_id, mine.declaration_id}
    assert theirs.declaration_id not in ids(world.service.list(ENT, enterprise_id="E2").items)  # always its own
    assert ids(world.service.list(ENT, {DeclarationStatus.REJECTED}).items) == [mine.declaration_id]
    assert set(ids(world.service.list(DUTY).items)) == {again.declaration_id, theirs.declaration_id}  # open ones
    assert ids(world.service.list(REG).items) == [again.declaration_id]  # hazchem only
    assert ids(world.service.list(AREA).items) == [again.declaration_id]
    assert ids(world.service.list(DUTY, enterprise_id="E1", statuses={DeclarationStatus.REJECTED}).items) == [
        mine.declaration_id
    ]
    assert ids(world.service.list(FIRE_REG, enterprise_id="E1").items) == []
    with pytest.raises(NotFound):
        world.service.get(FIRE_REG, mine.declaration_id)
    with pytest.raises(Forbidden):
        world.service.audit(ENT, mine.declaration_id)


def finding(device_id: str, at: float, declaration_id: str | None) -> WarningChange:
    change = WarningChange(
        kind=ChangeKind.RAISE,
        warning_id=warning_id_for(device_id, DATA_QUALITY, at),
        device_id=device_id,
        enterprise_id="E1",
        enterprise_name=E1.name,
        sector=Sector.HAZCHEM,
        unit_id="U1",
        unit_name="罐区",
        point_name=device_id,
        area_codes=("TEDA",),
        risk_type=DATA_QUALITY,
        level=Level.BLUE,
        previous_level=Level.NONE,
        base_level=Level.BLUE,
        reason="stuck_value",
        title="数值长时间不变",
        value=None,
        unit="",
        at=at,
        raised_at=at,
        params={"metric": "level_pct"},
    )
    return declared(change, declaration_id) if declaration_id is not None else change


def test_the_findings_a_declaration_suppressed_are_listed_to_whoever_may_read_it(world: World) -> None:
    mine = world.service.declare(ENT, Form(device_ids=("D1", "D2")))
    for change in (
        finding("D1", T0 + 60, mine.declaration_id),
        finding("D2", T0 + 120, mine.declaration_id),
        finding("D1", T0 + 180, "DCL-other"),
        finding("D2", T0 + 240, None),  # raised as usual: not a suppressed finding
    ):
        world.suppressed.record(change)
    for reader in (ENT, DUTY, REG, AREA, EMG, ADMIN):
        declaration, found = world.service.suppressed(reader, mine.declaration_id)
        assert declaration.declaration_id == mine.declaration_id
        assert [(row.device_id, row.at) for row in found] == [("D2", T0 + 120), ("D1", T0 + 60)]  # newest first
    [newest, _] = world.service.suppressed(DUTY, mine.declaration_id)[1]
    assert (newest.risk_type, newest.reason, newest.level, newest.params) == (
        DATA_QUALITY,
        "stuck_value",
        Level.BLUE,
        {"metric": "level_pct"},
    )
    assert len(world.service.suppressed(DUTY, mine.declaration_id, limit=1)[1]) == 1
    theirs = world.service.declare(ADMIN, Form(enterprise_id="E2", device_ids=("X1",)))
    for outsider, declaration_id in ((FIRE_REG, mine.declaration_id), (ENT, theirs.declaration_id)):
        with pytest.raises(NotFound):
            world.service.suppressed(outsider, declaration_id)


def test_the_sweep_expires_ended_windows_and_reminds_once_before_the_end(world: World) -> None:
    short = world.service.declare(ENT, Form(ends_at=T0 + H))
    long = world.service.declare(ENT, Form(device_ids=("D2",), ends_at=T0 + 4 * H))
    planned = world.service.declare(
        ENT, Form(device_ids=("D3",), reason=DeclarationReason.PLANNED_STOP, starts_at=T0 + H, ends_at=T0 + 4 * H)
    )

    world.now = T0 + H
    report = world.service.sweep()
    assert (report.expired, report.reminded) == ([short.declaration_id], [])

    world.now = T0 + 3 * H
    report = world.service.sweep()
    assert (report.expired, report.reminded) == ([], [long.declaration_id])  # the planned stop is not in effect
    assert world.service.sweep().reminded == []  # once
    assert world.notices.reminded == [long.declaration_id]

    world.now = T0 + 4 * H
    assert set(world.service.sweep().expired) == {long.declaration_id, planned.declaration_id}
    assert world.events(long.declaration_id) == [
        "declaration_declared",
        "declaration_reminded",
        "declaration_expired",
    ]
    assert world.store.log(long.declaration_id).events[-1].actor == "declaration-sweep"


def test_a_reminder_that_fails_is_tried_again_next_round(world: World) -> None:
    declared = world.service.declare(ENT, Form())
    world.now = T0 + 3.5 * H
    world.notices.fail("remind")
    report = world.service.sweep()
    assert (report.reminded, report.failed) == ([], [declared.declaration_id])
    assert world.service.sweep().reminded == [declared.declaration_id]


def test_a_stale_save_loses(world: World) -> None:
    declared = world.service.declare(ENT, Form())
    world.service.approve(REG, declared.declaration_id)
    stamp = AuditStamp(actor=REG.user_id, role="regulator", at=T0)
    with pytest.raises(ConcurrentUpdateError):
        world.store.save(declared, "declaration_approved", stamp)  # read before the approval
    with pytest.raises(ConcurrentUpdateError):
        world.store.save(declared.model_copy(update={"version": 0}), "declaration_declared", stamp)  # exists


def test_a_page_of_the_history_reads_about_its_size_and_its_cursor_resumes_it(world: World) -> None:
    live = world.service.declare(ENT, Form())
    for index in range(500):  # the enterprise's history: older, closed
        world.store.stored[f"DCL-old{index:04d}"] = live.model_copy(
            update={
                "declaration_id": f"DCL-old{index:04d}",
                "status": DeclarationStatus.WITHDRAWN,
                "created_at": T0 - 10 * H - index,
            }
        )
    ids = lambda found: [d.declaration_id for d in found.items]  # noqa: E731

    world.store.read = 0
    page = world.service.list(ENT, limit=10)
    assert ids(page) == [live.declaration_id, *(f"DCL-old{index:04d}" for index in range(9))]
    assert page.next_cursor and world.store.read == 11  # the page and the one telling there is more
    world.store.read = 0
    pending = world.service.list(ENT, {DeclarationStatus.PENDING}, limit=10)
    assert (ids(pending), pending.next_cursor, world.store.read) == ([live.declaration_id], None, 1)

    seen: list[str] = []
    cursor: str | None = None
    while True:  # every page of the withdrawn ones, each once, in order
        page = world.service.list(DUTY, {DeclarationStatus.WITHDRAWN}, enterprise_id="E1", limit=64, cursor=cursor)
        seen += ids(page)
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [f"DCL-old{index:04d}" for index in range(500)]

    world.store.read = 0
    hidden = world.service.list(FIRE_REG, enterprise_id="E1", limit=10)  # none in its scope: a bounded empty page
    assert hidden.items == [] and hidden.next_cursor and world.store.read == examined_per_page(10)

    world.now = T0 + 4 * H  # the window ended, the sweep has not run: expired now, still stored pending
    assert ids(world.service.list(ENT, {DeclarationStatus.EXPIRED}, limit=5)) == [live.declaration_id]
    assert ids(world.service.list(ENT, {DeclarationStatus.PENDING})) == []
    assert ids(world.service.list(DUTY, {DeclarationStatus.EXPIRED})) == [live.declaration_id]  # the open ones


@pytest.mark.parametrize("cursor", ["bm9wZQ", "e30", "eyJhdCI6MX0", "!!", "eyJ3YXJuaW5nX2lkIjoieCJ9"])
def test_a_damaged_cursor_is_refused_in_chinese(world: World, cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        world.service.list(DUTY, cursor=cursor)
    assert (refused.value.code, refused.value.http_status, refused.value.message_zh) == (
        "invalid_cursor",
        422,
        "分页游标无效",
    )
