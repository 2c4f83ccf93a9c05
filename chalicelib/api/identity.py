"""Verified token claims → the `Actor` the domain checks (role and scope come from the token only).

- role: the token's `cognito:groups` must hold exactly one of enterprise / duty / regulator / area / emergency /
  admin (other groups are ignored); none or several → 403 `no_role`;
- scope: enterprise → `custom:enterprise_id`; regulator → `custom:department`, whose sectors the routing policy
  names (`sectors_for_department`); area → `custom:area_codes` (comma-separated). A role without its scope → 403
  `scope_missing`. Attributes that do not belong to the role are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from chalicelib.domain.access import sectors_for_department
from chalicelib.domain.errors import Forbidden
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import RoutingPolicy

PERSON_ROLES = frozenset(role.value for role in Role if role is not Role.SYSTEM)
ROLES_CLAIM = "cognito:groups"
"""A list of group names (or one name); exactly one of them must be a role."""
USER_ID_CLAIMS = ("cognito:username", "sub")
"""The user id is the first of these the token has."""
NAME_CLAIM = "name"
SCOPE_CLAIMS: Mapping[Role, str] = {
    Role.ENTERPRISE: "custom:enterprise_id",
    Role.REGULATOR: "custom:department",
    Role.AREA: "custom:area_codes",
}
"""The claim that holds each scoped role's scope (area codes: comma-separated); other roles see everything."""


def _groups(claims: Mapping[str, Any]) -> list[str]:
    groups = claims.get(ROLES_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    return [str(group) for group in groups]


def _text(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    return str(value).strip() or None


def actor_from_claims(claims: Mapping[str, Any], routing: RoutingPolicy | None = None) -> Actor:
    roles = sorted({group for group in _groups(claims) if group in PERSON_ROLES})
    if len(roles) != 1:
        raise Forbidden("no_role", "账号未分配角色或角色不唯一，请联系系统管理员")
    role = Role(roles[0])
    user_id = next(filter(None, (_text(claims, name) for name in USER_ID_CLAIMS)), "")
    fields: dict[str, Any] = {"user_id": user_id, "role": role, "name": _text(claims, NAME_CLAIM) or user_id}
    scope = _text(claims, SCOPE_CLAIMS[role]) if role in SCOPE_CLAIMS else None
    if role is Role.ENTERPRISE:
        fields["enterprise_id"] = scope
    elif role is Role.REGULATOR:
        fields["department"] = scope
        fields["sectors"] = sectors_for_department(scope, routing) if scope else ()
    elif role is Role.AREA:
        areas = scope or ""
        fields["area_codes"] = tuple(dict.fromkeys(code.strip() for code in areas.split(",") if code.strip()))
    try:
        return Actor(**fields)
    except ValidationError as exc:
        raise Forbidden("scope_missing", "账号未配置数据范围，请联系系统管理员") from exc
