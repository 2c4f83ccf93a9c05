"""Who may see and do what with a warning (DOMAIN.md §1): roles, scopes, and the action table.

Scopes (what a role sees):
- enterprise: its own `enterprise_id`;  regulator: its sector(s);  area: warnings touching one of its area codes;
- duty, emergency, admin, system: everything.

Order of checks in `require_action`, so that nothing leaks: the role may take the action at all (else 403, which
says nothing about the record) → the record is in scope (else 404, the same answer as a missing record) → a
level condition on the role (emergency acts on red only: else 403) → then the lifecycle decides (409).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import (
    Action,
    ActionType,
    Actor,
    Role,
    Transition,
    apply_action,
    status_allows,
)
from chalicelib.domain.policy import RoutingPolicy
from chalicelib.domain.sectors import Sector
from chalicelib.domain.warnings import WarningRecord

_ALL_SEEING = frozenset({Role.DUTY, Role.EMERGENCY, Role.ADMIN, Role.SYSTEM})


class ScopeKind(StrEnum):
    ALL = "all"
    ENTERPRISE = "enterprise"
    SECTORS = "sectors"
    AREAS = "areas"


class Scope(BaseModel):
    """What a list query must be restricted to; `matches` is the same rule applied to one record."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: ScopeKind
    enterprise_id: str | None = None
    sectors: tuple[Sector, ...] = ()
    area_codes: tuple[str, ...] = ()

    def matches(self, record: WarningRecord) -> bool:
        if self.kind is ScopeKind.ALL:
            return True
        if self.kind is ScopeKind.ENTERPRISE:
            return self.enterprise_id is not None and record.enterprise_id == self.enterprise_id
        if self.kind is ScopeKind.SECTORS:
            return record.sector in self.sectors
        return not set(record.area_codes).isdisjoint(self.area_codes)


def scope_filter(actor: Actor) -> Scope:
    if actor.role in _ALL_SEEING:
        return Scope(kind=ScopeKind.ALL)
    if actor.role is Role.ENTERPRISE:
        return Scope(kind=ScopeKind.ENTERPRISE, enterprise_id=actor.enterprise_id)
    if actor.role is Role.REGULATOR:
        return Scope(kind=ScopeKind.SECTORS, sectors=actor.sectors)
    return Scope(kind=ScopeKind.AREAS, area_codes=actor.area_codes)


def sectors_for_department(department: str, routing: RoutingPolicy | None = None) -> tuple[Sector, ...]:
    """The sectors a regulator department supervises, per the routing policy (to build a regulator `Actor`)."""
    regulators = (routing or RoutingPolicy()).regulators
    return tuple(sector for sector, departments in regulators.items() if department in departments)


def require_role(actor: Actor, roles: frozenset[Role], what: str) -> None:
    """403 unless the actor's role is one of `roles` (`what`: the use, in Chinese, for the message)."""
    if actor.role not in roles:
        raise Forbidden("role_not_permitted", f"{actor.role.zh}无权{what}")


def can_read(actor: Actor, record: WarningRecord) -> bool:
    return scope_filter(actor).matches(record)


def require_read(actor: Actor, record: WarningRecord | None) -> WarningRecord:
    """The record, if it exists and the actor may see it; otherwise the same 404 either way."""
    if record is None or not can_read(actor, record):
        raise NotFound("warning_not_found", "预警不存在或无权查看")
    return record


ACTION_ROLES: Mapping[ActionType, frozenset[Role]] = {
    ActionType.ACKNOWLEDGE: frozenset({Role.ENTERPRISE}),
    ActionType.VERIFY: frozenset({Role.ENTERPRISE}),
    ActionType.START_DISPOSAL: frozenset({Role.ENTERPRISE}),
    ActionType.REQUEST_CLEAR: frozenset({Role.ENTERPRISE}),
    ActionType.CONFIRM_CLOSURE: frozenset({Role.DUTY, Role.EMERGENCY}),
    ActionType.REJECT_CLEAR: frozenset({Role.DUTY, Role.EMERGENCY}),
    ActionType.RECORD_CONTACT: frozenset({Role.DUTY}),
    ActionType.ESCALATE: frozenset({Role.DUTY, Role.EMERGENCY, Role.SYSTEM}),
    ActionType.MARK_FALSE_ALARM: frozenset({Role.DUTY}),
    ActionType.REASSIGN: frozenset({Role.DUTY, Role.ENTERPRISE}),
    ActionType.RECORD_INSPECTION: frozenset({Role.REGULATOR, Role.AREA}),
    ActionType.ISSUE_SUPERVISION: frozenset({Role.REGULATOR, Role.AREA}),
    ActionType.ARCHIVE: frozenset({Role.DUTY, Role.SYSTEM}),
    ActionType.REMIND: frozenset({Role.SYSTEM}),
}
"""Action → the roles that may take it (scope and level conditions come on top)."""

RED_ONLY: Mapping[ActionType, frozenset[Role]] = {
    ActionType.CONFIRM_CLOSURE: frozenset({Role.EMERGENCY}),
    ActionType.REJECT_CLEAR: frozenset({Role.EMERGENCY}),
    ActionType.ESCALATE: frozenset({Role.EMERGENCY}),
}
"""Roles that may take an action only on a warning whose peak level is red (the emergency bureau's powers)."""


def _action_type(action: Action | ActionType) -> ActionType:
    return action if isinstance(action, ActionType) else action.action_type


def role_may(role: Role, action: Action | ActionType) -> bool:
    return role in ACTION_ROLES[_action_type(action)]


def require_action(actor: Actor, action: Action | ActionType, record: WarningRecord | None) -> WarningRecord:
    """403 if the role may never take the action, 404 if the record is missing or out of scope, 403 if a level
    condition fails; returns the record. The lifecycle's own checks (409) come after, in `apply_action`."""
    action_type = _action_type(action)
    if not role_may(actor.role, action_type):
        raise Forbidden("role_not_permitted", f"{actor.role.zh}无权{action_type.zh}")
    found = require_read(actor, record)
    if actor.role in RED_ONLY.get(action_type, ()) and found.peak_level < Level.RED:
        raise Forbidden("red_level_only", f"{actor.role.zh}仅可对红色预警{action_type.zh}")
    return found


def may_act(actor: Actor, action: Action | ActionType, record: WarningRecord) -> bool:
    """Role, scope and level allow it (the lifecycle may still refuse)."""
    try:
        require_action(actor, action, record)
    except (Forbidden, NotFound):
        return False
    return True


def permitted_actions(actor: Actor, record: WarningRecord) -> tuple[ActionType, ...]:
    """The actions to offer this actor on this record now (role, scope, level, status); for the UI's buttons."""
    return tuple(
        action_type
        for action_type in ActionType
        if may_act(actor, action_type, record) and status_allows(record, action_type)
    )


def apply_authorized(record: WarningRecord | None, action: Action, actor: Actor, now: float) -> Transition:
    """`require_action` then `apply_action`: the one call a service needs (403 / 404 / 409 / 422 as errors)."""
    found = require_action(actor, action, record)
    return apply_action(found, action, actor, now)
