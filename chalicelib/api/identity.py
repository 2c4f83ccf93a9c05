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


def _groups(claims: Mapping[str, Any]) -> list[str]:
    groups = claims.get("cognito:groups") or []
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
    user_id = _text(claims, "cognito:username") or _text(claims, "sub") or ""
    fields: dict[str, Any] = {"user_id": user_id, "role": role, "name": _text(claims, "name") or user_id}
    if role is Role.ENTERPRISE:
        fields["enterprise_id"] = _text(claims, "custom:enterprise_id")
    elif role is Role.REGULATOR:
        department = _text(claims, "custom:department")
        fields["department"] = department
        fields["sectors"] = sectors_for_department(department, routing) if department else ()
    elif role is Role.AREA:
        areas = _text(claims, "custom:area_codes") or ""
        fields["area_codes"] = tuple(dict.fromkeys(code.strip() for code in areas.split(",") if code.strip()))
    try:
        return Actor(**fields)
    except ValidationError as exc:
        raise Forbidden("scope_missing", "账号未配置数据范围，请联系系统管理员") from exc
