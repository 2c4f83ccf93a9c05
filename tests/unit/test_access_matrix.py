"""The access matrix at the use cases (DOMAIN.md §1, docs/api.md): every use × every role × a warning in and out of
the caller's scope → allowed, 403 or 404, against the services over the fakes. `test_access.py` checks the
domain's rule (`require_action`, `can_read`); this checks that every use case applies it, before anything is
written; `tests/functional/test_api_access_matrix.py` keeps one pass per role over HTTP with real tokens.

The warnings: a red hazchem one of E1 (areas TEDA, TEDA-S01), in the scope of the enterprise user, the regulator of
hazchem and the TEDA area official; and a red fire one of E2 (area DJ), out of all three scopes. Duty, emergency,
admin and the system see both. A role that may never use something hears 403 whatever the warning (which says
nothing about it); a warning out of scope is 404, the same answer as a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from chalicelib.domain.errors import DomainError, Forbidden, NotFound
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import ActionType, Actor, Escalate, EscalationTier, Role
from chalicelib.domain.registry import DeviceRegistration, Enterprise, Location, Setpoint, StaticFactors
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.fakes import FakeRegistry, FakeUsers
from chalicelib.services.people import People
from chalicelib.services.ports import NewUser
from chalicelib.services.registry_admin import RegistryAdmin
from chalicelib.services.warning_actions import WALL_ROLES
from tests.unit.test_access import MAY_ACT, SEES_EVERYTHING
from tests.unit.test_lifecycle import ACTORS, make_record
from tests.unit.warning_fixtures import (
    IN_SCOPE,
    NOW,
    OUT_OF_SCOPE,
    STATUS_FOR,
    Query,
    World,
    sample_action,
)

ROLES = list(Role)
IN, OUT = "in_scope", "out_of_scope"
RECORDS = {IN: IN_SCOPE, OUT: OUT_OF_SCOPE}
ALLOW = "allow"


def visible(role: Role, scope: str) -> bool:
    return scope == IN or role in SEES_EVERYTHING


def outcome(call: object) -> str | int:
    """What a use case answered: allowed, or the HTTP status of its refusal."""
    try:
        if callable(call):
            call()
    except (Forbidden, NotFound) as refused:
        return refused.http_status
    return ALLOW


def every_id(world: World, actor: Actor, *, wall: bool = False, open_only: bool | None = None) -> set[str]:
    """Every warning id of a listing, page after page."""
    found: set[str] = set()
    cursor = None
    for _ in range(100):
        listing = world.actions.wall if wall else world.actions.list_warnings
        page = listing(actor, Query(open=open_only, limit=1, cursor=cursor))
        found |= {standing.record.warning_id for standing in page.items}
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("the listing never ended")


@pytest.fixture
def world() -> World:
    return World(IN_SCOPE, OUT_OF_SCOPE)


# --- reads -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("open_only", [None, True], ids=["newest first", "open, most urgent first"])
def test_a_listing_holds_exactly_what_the_role_may_see(world: World, role: Role, open_only: bool | None) -> None:
    ids = every_id(world, ACTORS[role], open_only=open_only)

    assert ids == {record.warning_id for scope, record in RECORDS.items() if visible(role, scope)}


@pytest.mark.parametrize("role", ROLES)
def test_the_wall_is_for_duty_regulators_areas_and_the_bureau_each_in_scope(world: World, role: Role) -> None:
    if role not in WALL_ROLES:
        assert outcome(lambda: world.actions.wall(ACTORS[role], Query())) == 403
        return
    ids = every_id(world, ACTORS[role], wall=True)
    assert ids == {record.warning_id for scope, record in RECORDS.items() if visible(role, scope)}


@pytest.mark.parametrize("scope", [IN, OUT])
@pytest.mark.parametrize("role", ROLES)
def test_a_warnings_detail_is_404_out_of_scope(world: World, role: Role, scope: str) -> None:
    answer = outcome(lambda: world.actions.detail(ACTORS[role], RECORDS[scope].warning_id))

    assert answer == (ALLOW if visible(role, scope) else 404)


@pytest.mark.parametrize("role", ROLES)
def test_a_missing_warning_is_the_same_404_as_one_out_of_scope(world: World, role: Role) -> None:
    with pytest.raises(NotFound) as missing:
        world.actions.detail(ACTORS[role], "WNONE")
    assert missing.value.code == "warning_not_found"


@pytest.mark.parametrize("scope", [IN, OUT])
@pytest.mark.parametrize("role", ROLES)
def test_the_chain_check_is_for_duty_and_admin_only(world: World, role: Role, scope: str) -> None:
    answer = outcome(lambda: world.actions.verify(ACTORS[role], RECORDS[scope].warning_id))

    assert answer == (ALLOW if role in {Role.DUTY, Role.ADMIN} else 403)


# --- actions: every action × every role × in and out of scope ----------------------------------------------------


def expected(action_type: ActionType, role: Role, scope: str) -> str | int:
    if role not in MAY_ACT[action_type]:
        return 403
    return ALLOW if visible(role, scope) else 404


@pytest.mark.parametrize("scope", [IN, OUT])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action_type", list(ActionType))
def test_every_action_by_every_role_is_taken_refused_or_not_found_and_a_refusal_writes_nothing(
    action_type: ActionType, role: Role, scope: str
) -> None:
    world = World(IN_SCOPE, OUT_OF_SCOPE)
    warning_id = RECORDS[scope].warning_id
    before = world.drive(warning_id, STATUS_FOR.get(action_type, WarningStatus.RAISED))
    chain = world.event_types(warning_id)

    answer = outcome(lambda: world.act(ACTORS[role], warning_id, sample_action(action_type, before)))

    assert answer == expected(action_type, role, scope)
    if answer == ALLOW:
        assert world.event_types(warning_id) == [*chain, action_type.value]
    else:
        assert world.event_types(warning_id) == chain and world.record(warning_id) == before


def test_the_emergency_bureau_acts_on_red_warnings_only() -> None:
    yellow = make_record(Level.YELLOW, warning_id="WYELLOW")
    world = World(yellow)

    with pytest.raises(Forbidden) as refused:
        world.act(ACTORS[Role.EMERGENCY], "WYELLOW", Escalate(tier=EscalationTier.EMERGENCY_LEADERSHIP))

    assert refused.value.code == "red_level_only"


@pytest.mark.parametrize("scope", [IN, OUT])
@pytest.mark.parametrize("role", ROLES)
def test_evidence_uploads_are_for_the_enterprise_and_inspectors_in_scope(
    world: World, role: Role, scope: str
) -> None:
    answer = outcome(lambda: world.actions.evidence_upload(ACTORS[role], RECORDS[scope].warning_id, "image/jpeg"))

    if role not in {Role.ENTERPRISE, Role.REGULATOR, Role.AREA}:
        assert answer == 403
    else:
        assert answer == (ALLOW if visible(role, scope) else 404)


def test_a_regulator_of_two_sectors_sees_both_and_an_area_official_any_of_its_area_codes() -> None:
    pipeline = make_record(Level.ORANGE, warning_id="WPIPE", sector=Sector.CHEM_PIPELINE, area_codes=("GULIN",))
    hazchem = make_record(Level.ORANGE, warning_id="WHAZ", area_codes=("TJFTZ", "GULIN"))  # GULIN second
    world = World(pipeline, hazchem)
    regulator = Actor(
        user_id="u-reg-2",
        role=Role.REGULATOR,
        sectors=(Sector.HAZCHEM, Sector.CHEM_PIPELINE),
        department="emergency_bureau",
    )
    street = Actor(user_id="u-gulin", role=Role.AREA, area_codes=("GULIN",))
    elsewhere = Actor(user_id="u-teda", role=Role.AREA, area_codes=("TEDA",))

    assert every_id(world, regulator, wall=True) == {"WPIPE", "WHAZ"}
    assert every_id(world, street, wall=True) == {"WPIPE", "WHAZ"}
    assert outcome(lambda: world.actions.detail(elsewhere, "WHAZ")) == 404


# --- administration --------------------------------------------------------------------------------------------

ENTERPRISE_PROFILE = Enterprise(enterprise_id="E1", name="津港石化储运有限公司", sector=Sector.HAZCHEM)
DEVICE = DeviceRegistration(
    device_id="HC01-T1-V1",
    enterprise_id="E1",
    enterprise_name=ENTERPRISE_PROFILE.name,
    sector=Sector.HAZCHEM,
    unit_id="U1",
    unit_name="一号罐区",
    kind="tank_level",
)  # as `admin_world` registers it


@dataclass(frozen=True)
class DeviceForm:
    """A device as the administrator registers it (`registry_admin.DeviceForm`)."""

    enterprise_id: str = "E1"
    unit_id: str = "U1"
    unit_name: str = "一号罐区"
    point_name: str = ""
    kind: str = "tank_level"
    setpoints: dict[str, Setpoint] = field(default_factory=dict)
    static: StaticFactors = field(default_factory=StaticFactors)
    location: Location | None = None
    reason: str = ""


def admin_world() -> tuple[RegistryAdmin, People]:
    """An enterprise and its device registered through the audited path (each has a trail); no users yet."""
    registry = FakeRegistry()
    admin = RegistryAdmin(registry, lambda: NOW)
    admin.put_enterprise(ACTORS[Role.ADMIN], ENTERPRISE_PROFILE)
    admin.put_device(ACTORS[Role.ADMIN], DEVICE.device_id, DeviceForm())
    return admin, People(FakeUsers(), registry)


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "missing"])
@pytest.mark.parametrize("role", ROLES)
def test_the_registry_and_the_users_are_for_the_administrator_only(role: Role, exists: bool) -> None:
    admin, people = admin_world()
    actor = ACTORS[role]
    enterprise, device = ("E1", DEVICE.device_id) if exists else ("E-NOPE-99", "NO-SUCH-DEVICE")
    reads = [
        lambda: admin.enterprise(actor, enterprise),
        lambda: admin.subject_audit(actor, "enterprise", enterprise),
        lambda: admin.device(actor, device),
        lambda: admin.subject_audit(actor, "device", device),
    ]

    answers = [outcome(read) for read in reads]
    listed = outcome(lambda: people.list_users(actor, None, limit=10))

    if role is not Role.ADMIN:
        assert answers == [403] * 4 and listed == 403
    else:
        assert answers == [ALLOW if exists else 404] * 4 and listed == ALLOW


@pytest.mark.parametrize("role", [role for role in ROLES if role is not Role.ADMIN])
def test_registry_and_user_writes_are_refused_to_every_other_role_and_change_nothing(role: Role) -> None:
    admin, people = admin_world()
    actor = ACTORS[role]
    renamed = ENTERPRISE_PROFILE.model_copy(update={"name": "改名"})
    writes = [
        lambda: admin.put_enterprise(actor, renamed),
        lambda: admin.put_device(actor, DEVICE.device_id, DeviceForm(unit_name="改名")),
        lambda: people.create_user(actor, NewUser(username=f"x-{role.value}", role=Role.DUTY, name="某人")),
    ]

    for write in writes:
        with pytest.raises(DomainError) as refused:
            write()
        assert refused.value.http_status == 403 and refused.value.code == "role_not_permitted"
    assert admin.enterprise(ACTORS[Role.ADMIN], "E1").name == ENTERPRISE_PROFILE.name
    assert people.list_users(ACTORS[Role.ADMIN], None, limit=10).users == []
