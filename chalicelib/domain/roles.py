"""Who takes part (DOMAIN.md §1): the roles of people and of the platform, and which roles are told of warnings.

A role is both who acts on a warning (`lifecycle.Actor.role`) and, for the five receiving roles, who is told of it
(`policy.Audience` is this enum; routing accepts only the `AUDIENCE_ROLES`).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ENTERPRISE = "enterprise"  # 企业主体单位: its own enterprise
    DUTY = "duty"  # 监控值守机构 (7x24): everything
    REGULATOR = "regulator"  # 行业主管部门: its sector(s)
    AREA = "area"  # 属地 (开发区、街镇): its area codes
    EMERGENCY = "emergency"  # 应急管理局: reads everything, acts on red
    ADMIN = "admin"  # 区政府 administration: users, roles, registry; reads warnings, never acts on them
    SYSTEM = "system"  # the platform itself (engine, workflow, schedules); never issued to a person

    @property
    def zh(self) -> str:
        return ROLE_ZH[self]


ROLE_ZH = {
    Role.ENTERPRISE: "企业",
    Role.DUTY: "值守中心",
    Role.REGULATOR: "行业主管部门",
    Role.AREA: "属地",
    Role.EMERGENCY: "应急管理局",
    Role.ADMIN: "系统管理员",
    Role.SYSTEM: "平台",
}
AUDIENCE_ROLES = frozenset({Role.ENTERPRISE, Role.DUTY, Role.REGULATOR, Role.AREA, Role.EMERGENCY})
"""The roles a warning can be routed to; the administration and the platform itself are never told."""
