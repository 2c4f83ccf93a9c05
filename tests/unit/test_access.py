"""Who may see and do what (DOMAIN.md §1): every action × every role × a record in and out of the actor's scope."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from chalicelib.domain.access import (
    ACTION_ROLES,
    Scope,
    ScopeKind,
    apply_authorized,
    can_read,
    permitted_actions,
    require_action,
    require_read,
    scope_filter,
    sectors_for_department,
)
from chalicelib.domain.errors import Forbidden, InvalidTransition, NotFound
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import Acknowledge, ActionType, Actor, Role
from chalicelib.domain.warnings import WarningStatus
from tests.unit.test_lifecycle import ACTORS, SAMPLE_ACTIONS, T0, make_record, record_in

ALLOW, FORBIDDEN, NOT_FOUND = "allow", 403, 404

# The specification, written out rather than derived from ACTION_ROLES.
MAY_ACT: dict[ActionType, set[Role]] = {
    ActionType.ACKNOWLEDGE: {Role.ENTERPRISE},
    ActionType.VERIFY: {Role.ENTERPRISE},
    ActionType.START_DISPOSAL: {Role.ENTERPRISE},
    ActionType.REQUEST_CLEAR: {Role.ENTERPRISE},
    ActionType.CONFIRM_CLOSURE: {Role.DUTY, Role.EMERGENCY},
    ActionType.REJECT_CLEAR: {Role.DUTY, Role.EMERGENCY},
    ActionType.RECORD_CONTACT: {Role.DUTY},
    ActionType.ESCALATE: {Role.DUTY, Role.EMERGENCY, Role.SYSTEM},
    ActionType.MARK_FALSE_ALARM: {Role.DUTY},
    ActionType.REASSIGN: {Role.DUTY, Role.ENTERPRISE},
    ActionType.RECORD_INSPECTION: {Role.REGULATOR, Role.AREA},
    ActionType.ISSUE_SUPERVISION: {Role.REGULATOR, Role.AREA},
    ActionType.ARCHIVE: {Role.DUTY, Role.SYSTEM},
    ActionType.REMIND: {Role.SYSTEM},
}
SEES_EVERYTHING = {Role.DUTY, Role.EMERGENCY, Role.ADMIN, Role.SYSTEM}

# in scope of every scoped actor (enterprise E1, regulator of hazchem, area TEDA); red so emergency powers apply
IN_SCOPE = make_record(Level.RED)
# another enterprise, another sector, another area
OUT_OF_SCOPE = replace(IN_SCOPE, warning_id="WOTHER", enterprise_id="E2", sector=Sector.FIRE, area_codes=("DJ",))


def expected(action_type: ActionType, role: Role, in_scope: bool) -> str | int:
    if role not in MAY_ACT[action_type]:
        return FORBIDDEN
    if not in_scope and role not in SEES_EVERYTHING:
        return NOT_FOUND
    return ALLOW


def test_the_action_table_is_the_specification() -> None:
    assert {action: set(roles) for action, roles in ACTION_ROLES.items()} == MAY_ACT


@pytest.mark.parametrize("in_scope", [True, False], ids=["in_scope", "out_of_scope"])
@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action_type", list(ActionType))
def test_every_action_by_every_role_is_allowed_forbidden_or_not_found(
    action_type: ActionType, role: Role, in_scope: bool
) -> None:
    record = IN_SCOPE if in_scope else OUT_OF_SCOPE
    outcome = expected(action_type, role, in_scope)
    actor = ACTORS[role]
    if outcome == ALLOW:
        assert require_action(actor, SAMPLE_ACTIONS[action_type], record) is record
        return
    error = Forbidden if outcome == FORBIDDEN else NotFound
    with pytest.raises(error) as caught:
        require_action(actor, SAMPLE_ACTIONS[action_type], record)
    assert caught.value.http_status == outcome
    assert caught.value.message_zh


@pytest.mark.parametrize("action_type", [ActionType.CONFIRM_CLOSURE, ActionType.REJECT_CLEAR, ActionType.ESCALATE])
@pytest.mark.parametrize("level", [Level.BLUE, Level.YELLOW, Level.ORANGE])
def test_the_emergency_bureau_acts_only_on_red(action_type: ActionType, level: int) -> None:
    record = make_record(level)
    with pytest.raises(Forbidden) as caught:
        require_action(ACTORS[Role.EMERGENCY], action_type, record)
    assert caught.value.code == "red_level_only"
    require_action(ACTORS[Role.DUTY], action_type, record)


def test_a_warning_that_was_red_stays_in_the_emergency_bureaus_hands_after_lowering() -> None:
    lowered = replace(make_record(Level.RED), level=Level.YELLOW)
    require_action(ACTORS[Role.EMERGENCY], ActionType.CONFIRM_CLOSURE, lowered)


@pytest.mark.parametrize("in_scope", [True, False], ids=["in_scope", "out_of_scope"])
@pytest.mark.parametrize("role", list(Role))
def test_reading_follows_the_scope(role: Role, in_scope: bool) -> None:
    record = IN_SCOPE if in_scope else OUT_OF_SCOPE
    visible = in_scope or role in SEES_EVERYTHING
    assert can_read(ACTORS[role], record) is visible
    if visible:
        assert require_read(ACTORS[role], record) is record
    else:
        with pytest.raises(NotFound):
            require_read(ACTORS[role], record)


def test_out_of_scope_and_missing_look_the_same() -> None:
    enterprise = ACTORS[Role.ENTERPRISE]
    with pytest.raises(NotFound) as out_of_scope:
        require_read(enterprise, OUT_OF_SCOPE)
    with pytest.raises(NotFound) as missing:
        require_action(enterprise, ActionType.ACKNOWLEDGE, None)
    assert out_of_scope.value.to_dict() == missing.value.to_dict()


def test_a_role_that_may_never_act_hears_403_even_for_a_missing_record() -> None:
    with pytest.raises(Forbidden) as caught:
        require_action(ACTORS[Role.ADMIN], ActionType.ACKNOWLEDGE, None)
    assert caught.value.code == "role_not_permitted"
    assert caught.value.message_zh == "系统管理员无权签收"


def test_an_area_user_sees_a_warning_through_any_of_its_area_codes() -> None:
    street = Actor(user_id="u-street", role=Role.AREA, area_codes=("TEDA-S01", "XG"))
    assert can_read(street, IN_SCOPE)
    assert not can_read(street, replace(IN_SCOPE, area_codes=("TEDA",)))


def test_a_regulator_with_several_sectors_sees_each_of_them() -> None:
    planning = Actor(user_id="u-plan", role=Role.REGULATOR, sectors=sectors_for_department("planning_resources"))
    assert planning.sectors == (Sector.CHEM_PIPELINE, Sector.OIL_GAS_PIPELINE)
    assert can_read(planning, replace(IN_SCOPE, sector=Sector.OIL_GAS_PIPELINE))
    assert not can_read(planning, IN_SCOPE)


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        (Role.ENTERPRISE, Scope(kind=ScopeKind.ENTERPRISE, enterprise_id="E1")),
        (Role.REGULATOR, Scope(kind=ScopeKind.SECTORS, sectors=(Sector.HAZCHEM,))),
        (Role.AREA, Scope(kind=ScopeKind.AREAS, area_codes=("TEDA",))),
        (Role.DUTY, Scope(kind=ScopeKind.ALL)),
        (Role.EMERGENCY, Scope(kind=ScopeKind.ALL)),
        (Role.ADMIN, Scope(kind=ScopeKind.ALL)),
        (Role.SYSTEM, Scope(kind=ScopeKind.ALL)),
    ],
)
def test_a_list_query_is_restricted_to_the_actors_scope(role: Role, scope: Scope) -> None:
    assert scope_filter(ACTORS[role]) == scope


@pytest.mark.parametrize(
    "fields",
    [
        {"role": Role.ENTERPRISE},
        {"role": Role.REGULATOR, "department": "emergency_bureau"},
        {"role": Role.AREA},
        {"role": Role.DUTY, "user_id": ""},
    ],
)
def test_an_actor_without_its_scope_cannot_be_built(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Actor.model_validate({"user_id": "u", **fields})


def test_the_enterprise_is_offered_acknowledge_and_reassign_on_a_new_warning() -> None:
    assert permitted_actions(ACTORS[Role.ENTERPRISE], IN_SCOPE) == (ActionType.ACKNOWLEDGE, ActionType.REASSIGN)


def test_the_duty_centre_is_offered_its_decisions_on_a_clear_request() -> None:
    requested = record_in(WarningStatus.CLEAR_REQUESTED, level=Level.ORANGE)
    assert permitted_actions(ACTORS[Role.DUTY], requested) == (
        ActionType.CONFIRM_CLOSURE,
        ActionType.REJECT_CLEAR,
        ActionType.RECORD_CONTACT,
        ActionType.ESCALATE,
        ActionType.MARK_FALSE_ALARM,
        ActionType.REASSIGN,
    )
    assert permitted_actions(ACTORS[Role.EMERGENCY], requested) == ()
    assert permitted_actions(ACTORS[Role.ADMIN], requested) == ()
    assert permitted_actions(ACTORS[Role.ENTERPRISE], replace(requested, enterprise_id="E2")) == ()


def test_apply_authorized_checks_access_before_the_lifecycle() -> None:
    enterprise = ACTORS[Role.ENTERPRISE]
    with pytest.raises(NotFound):
        other = replace(record_in(WarningStatus.CLOSED), enterprise_id="E2")
        apply_authorized(other, Acknowledge(), enterprise, T0)
    with pytest.raises(InvalidTransition):
        apply_authorized(record_in(WarningStatus.CLOSED), Acknowledge(), enterprise, T0)
    transition = apply_authorized(IN_SCOPE, Acknowledge(), enterprise, T0)
    assert transition.record.status is WarningStatus.ACKNOWLEDGED
