"""Outage declarations (申报, DOMAIN.md §5, 第十六条 of the 2022 measures): an enterprise declares that some of its
devices will not push data, or will push distorted data, for a window; the sector's regulator verifies it.

The rules (docs/declarations.md):
- a window is half-open, [starts_at, ends_at), at most `max_window_s` long; a longer outage is a new declaration
  (an extension is a new request, verified again);
- a planned stop (停产检修) is requested beforehand: it may not start before now (less `clock_skew_s`), and it
  suppresses nothing until a regulator approves it (from the approval on, if that comes late);
- equipment damage (设备损坏), distorted data (数据失真) and other outages are effective as soon as they are
  declared, and may be declared up to `max_retroactive_s` after they started; the regulator still verifies them:
  a rejection ends the suppression and, looking back, excuses nothing;
- no window may end before now; no two pending or approved declarations may overlap on one device;
- every device must belong to the declaring enterprise (a whole unit is resolved to its devices when declared);
- pending → approved | rejected (regulator) | withdrawn (the enterprise, before the start); pending or approved →
  expired when the window has ended (the sweep); nothing else moves.

What a declaration covers (`suppressing`) is what the offline watch and the data-quality grading will skip; a
covering `data_distortion` declaration also means the device's readings are not graded (`not_graded`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.changes import WarningChange
from chalicelib.domain.errors import Conflict, Forbidden, InvalidTransition, ValidationFailed
from chalicelib.domain.lifecycle import Actor
from chalicelib.domain.registry import DeviceRegistration, Enterprise
from chalicelib.domain.roles import Role
from chalicelib.domain.sectors import Sector

HOUR_S = 3600.0
DAY_S = 86400.0


class DeclarationReason(StrEnum):
    PLANNED_STOP = "planned_stop"  # 停产检修: approved beforehand
    EQUIPMENT_DAMAGE = "equipment_damage"  # 设备损坏
    DATA_DISTORTION = "data_distortion"  # 数据失真: readings not graded while covered
    OTHER = "other"  # 其他

    @property
    def zh(self) -> str:
        return REASON_ZH[self]

    @property
    def needs_approval_first(self) -> bool:
        """Suppresses only once approved (a planned stop); the others are effective when declared."""
        return self is DeclarationReason.PLANNED_STOP


REASON_ZH = {
    DeclarationReason.PLANNED_STOP: "停产检修",
    DeclarationReason.EQUIPMENT_DAMAGE: "设备损坏",
    DeclarationReason.DATA_DISTORTION: "数据失真",
    DeclarationReason.OTHER: "其他",
}


class DeclarationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"

    @property
    def zh(self) -> str:
        return STATUS_ZH[self]


STATUS_ZH = {
    DeclarationStatus.PENDING: "待核实",
    DeclarationStatus.APPROVED: "已核准",
    DeclarationStatus.REJECTED: "已驳回",
    DeclarationStatus.WITHDRAWN: "已撤回",
    DeclarationStatus.EXPIRED: "已到期",
}
OPEN_STATUSES = frozenset({DeclarationStatus.PENDING, DeclarationStatus.APPROVED})
"""Declarations that still hold their devices (overlap check) and that the sweep looks at."""


class DeclarationPolicy(BaseModel):
    """[policy] numbers of the declarations (`Policy.declarations`, a stage may override them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_window_s: float = Field(default=7 * DAY_S, gt=0)  # longer: declare again (an extension is a new request)
    max_retroactive_s: float = Field(default=2 * HOUR_S, ge=0)  # unplanned outages declared after they start
    clock_skew_s: float = Field(default=60.0, ge=0)  # a planned stop "starting now" sent a little late
    remind_before_end_s: float = Field(default=HOUR_S, ge=0)  # the declarer is reminded this long before the end
    max_devices: int = Field(default=200, ge=1)
    open_cache_s: float = Field(default=60.0, ge=0)  # the ingest reads the open declarations at most this often


class Declaration(BaseModel):
    """One declaration as stored. `sector` and `area_codes` are the enterprise's at declaration time (the scopes
    of regulators and areas); `device_ids` are resolved (a unit declared is its devices then)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    declaration_id: str = Field(min_length=1, max_length=64)
    enterprise_id: str
    enterprise_name: str = ""
    sector: Sector
    area_codes: tuple[str, ...] = ()
    device_ids: tuple[str, ...]
    unit_id: str | None = None  # the unit declared, when a whole unit was
    reason: DeclarationReason
    starts_at: float
    ends_at: float
    note: str = ""
    status: DeclarationStatus = DeclarationStatus.PENDING
    declared_by: str
    verified_by: str | None = None  # the regulator (or administrator) who approved or rejected it
    verified_at: float | None = None
    rejection_reason: str | None = None
    withdrawn_by: str | None = None
    reminded_at: float | None = None
    created_at: float
    updated_at: float
    version: int = 0  # 0: not stored yet; each stored change adds one

    @property
    def approved(self) -> bool:
        """A regulator approved it (its status may since have become expired)."""
        return self.verified_at is not None and self.rejection_reason is None

    def status_at(self, now: float) -> DeclarationStatus:
        """The status as it stands at `now`: an open declaration whose window has ended is expired, even before
        the sweep has written so."""
        if self.status in OPEN_STATUSES and now >= self.ends_at:
            return DeclarationStatus.EXPIRED
        return self.status


# --- what a declaration covers ---------------------------------------------------------------------------------


DECLARED_FLAG = "declared"
"""On a finding a declaration suppressed: recorded in the engine log, never raised or told."""
DECLARATION_PARAM = "declaration_id"
"""In a suppressed finding's params: the declaration that excused it."""


def declared(change: WarningChange, declaration_id: str) -> WarningChange:
    """The finding as recorded when `declaration_id` suppressed it: flagged `declared`, naming the declaration."""
    return replace(
        change,
        flags=(*change.flags, DECLARED_FLAG),
        params={**change.params, DECLARATION_PARAM: declaration_id},
    )


@dataclass(frozen=True, slots=True)
class SuppressedFinding:
    """A finding a declaration suppressed (recorded, not raised nor told), as the console lists it."""

    declaration_id: str
    warning_id: str  # the warning it would have been (no warning exists under this id)
    device_id: str
    enterprise_id: str
    point_name: str
    risk_type: str
    reason: str
    title: str
    level: int
    at: float
    params: dict[str, Any]

    @classmethod
    def of(cls, change: WarningChange) -> SuppressedFinding | None:
        """The suppressed finding a recorded change is, or None (a change no declaration suppressed)."""
        declaration_id = change.params.get(DECLARATION_PARAM)
        if DECLARED_FLAG not in change.flags or not isinstance(declaration_id, str):
            return None
        params = {key: value for key, value in change.params.items() if key != DECLARATION_PARAM}
        return cls(
            declaration_id,
            change.warning_id,
            change.device_id,
            change.enterprise_id,
            change.point_name,
            change.risk_type,
            change.reason,
            change.title,
            int(change.level),
            change.at,
            params,
        )

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuppressedFinding:
        values = {name: data[name] for name in cls.__slots__}
        values["level"], values["at"] = int(values["level"]), float(values["at"])
        return cls(**values)


def effective_window(declaration: Declaration) -> tuple[float, float] | None:
    """The half-open span during which the declaration excuses its devices, as the record stands; None if never.

    - rejected or withdrawn: never (a rejection excuses nothing, looking back; live warnings raised meanwhile were
      suppressed and stay recorded);
    - a planned stop: from its start or its approval, whichever is later; not at all while unapproved;
    - the others: the whole window, pending or approved."""
    if declaration.status in (DeclarationStatus.REJECTED, DeclarationStatus.WITHDRAWN):
        return None
    if declaration.reason.needs_approval_first:
        if not declaration.approved or declaration.verified_at is None:
            return None
        start = max(declaration.starts_at, declaration.verified_at)
    else:
        start = declaration.starts_at
    return (start, declaration.ends_at) if start < declaration.ends_at else None


def covers(declaration: Declaration, device_id: str, at: float) -> bool:
    window = effective_window(declaration)
    return window is not None and device_id in declaration.device_ids and window[0] <= at < window[1]


def suppressing(declarations: Iterable[Declaration], device_id: str, at: float) -> Declaration | None:
    """The declaration that excuses `device_id` at `at` (offline and data-quality warnings are not raised, the
    time does not count against the online rate); None when none does."""
    for declaration in declarations:
        if covers(declaration, device_id, at):
            return declaration
    return None


def excusing(declarations: Iterable[Declaration], at: float) -> dict[str, Declaration]:
    """Every device a declaration excuses at `at`, with the declaration `suppressing` names for it (the first)."""
    found: dict[str, Declaration] = {}
    for declaration in declarations:
        window = effective_window(declaration)
        if window is not None and window[0] <= at < window[1]:
            for device_id in declaration.device_ids:
                found.setdefault(device_id, declaration)
    return found


def not_graded(declarations: Iterable[Declaration], device_id: str, at: float) -> Declaration | None:
    """The covering `data_distortion` declaration: the device's readings at `at` are recorded, never graded."""
    return suppressing((d for d in declarations if d.reason is DeclarationReason.DATA_DISTORTION), device_id, at)


def due_reminders(declarations: Iterable[Declaration], now: float, policy: DeclarationPolicy) -> list[Declaration]:
    """In effect now, ending within `remind_before_end_s`, not reminded yet: remind the declarer (declare again if
    the outage goes on)."""
    return [
        d
        for d in declarations
        if d.reminded_at is None
        and d.status in OPEN_STATUSES
        and d.ends_at - policy.remind_before_end_s <= now < d.ends_at
        and (window := effective_window(d)) is not None
        and window[0] <= now
    ]


def expired(declarations: Iterable[Declaration], now: float) -> list[Declaration]:
    """The open declarations whose window has ended (the sweep marks them expired)."""
    return [d for d in declarations if d.status in OPEN_STATUSES and now >= d.ends_at]


# --- declaring -------------------------------------------------------------------------------------------------


def overlaps(a: Declaration, b: Declaration) -> bool:
    """Half-open windows on a shared device: one ending exactly when the other starts does not overlap."""
    return a.starts_at < b.ends_at and b.starts_at < a.ends_at and not set(a.device_ids).isdisjoint(b.device_ids)


def resolve_devices(
    enterprise: Enterprise,
    registered: Sequence[DeviceRegistration],
    device_ids: Sequence[str] = (),
    unit_id: str | None = None,
) -> tuple[str, ...]:
    """The devices declared: the named ones, or every device of the unit now. Each must be a registered device of
    the enterprise (an unknown device is the same answer as another enterprise's, nothing leaks)."""
    own = {d.device_id: d for d in registered if d.enterprise_id == enterprise.enterprise_id}
    if unit_id is not None:
        found = tuple(sorted(d for d, reg in own.items() if reg.unit_id == unit_id))
        if not found:
            raise ValidationFailed(
                "device_not_in_enterprise", "设备或单元不属于本企业", details={"unit_id": unit_id}
            )
        return found
    strangers = [d for d in device_ids if d not in own]
    if strangers:
        raise ValidationFailed(
            "device_not_in_enterprise", "设备或单元不属于本企业", details={"device_ids": strangers[:20]}
        )
    return tuple(dict.fromkeys(device_ids))


def check_window(
    reason: DeclarationReason, starts_at: float, ends_at: float, now: float, policy: DeclarationPolicy
) -> None:
    """The window's own rules (422)."""
    if ends_at <= starts_at:
        raise ValidationFailed("invalid_window", "结束时间须晚于开始时间")
    if ends_at - starts_at > policy.max_window_s:
        raise ValidationFailed(
            "window_too_long",
            f"申报时段不得超过{policy.max_window_s / HOUR_S:g}小时，到期后请重新申报",
            details={"max_window_s": policy.max_window_s},
        )
    if ends_at <= now:
        raise ValidationFailed("retroactive_window", "申报时段已结束", details={"ends_at": ends_at})
    if reason.needs_approval_first:
        if starts_at < now - policy.clock_skew_s:
            raise ValidationFailed(
                "retroactive_window",
                "停产检修须事先申报，开始时间不得早于当前时间",
                details={"starts_at": starts_at},
            )
    elif starts_at < now - policy.max_retroactive_s:
        raise ValidationFailed(
            "retroactive_window",
            f"补报不得早于{policy.max_retroactive_s / HOUR_S:g}小时前",
            details={"max_retroactive_s": policy.max_retroactive_s},
        )


def check_no_overlap(new: Declaration, existing: Iterable[Declaration], now: float) -> None:
    """409 when a pending or approved declaration (not ended at `now`) overlaps on one of the devices."""
    for other in existing:
        if other.declaration_id == new.declaration_id or other.status_at(now) not in OPEN_STATUSES:
            continue
        if overlaps(new, other):
            shared = sorted(set(new.device_ids) & set(other.device_ids))
            raise Conflict(
                "declaration_overlaps",
                "所选设备在该时段已有申报",
                details={"declaration_id": other.declaration_id, "device_ids": shared[:20]},
            )


def declare(
    *,
    declaration_id: str,
    enterprise: Enterprise,
    device_ids: tuple[str, ...],
    unit_id: str | None,
    reason: DeclarationReason,
    starts_at: float,
    ends_at: float,
    note: str,
    actor: Actor,
    now: float,
    existing: Iterable[Declaration],
    policy: DeclarationPolicy,
) -> Declaration:
    """A new pending declaration, after every rule (422 for the window and devices, 409 for an overlap)."""
    check_window(reason, starts_at, ends_at, now, policy)
    if not device_ids:
        raise ValidationFailed("device_not_in_enterprise", "设备或单元不属于本企业")
    if len(device_ids) > policy.max_devices:
        raise ValidationFailed("too_many_devices", f"一次申报不得超过{policy.max_devices}台设备")
    new = Declaration(
        declaration_id=declaration_id,
        enterprise_id=enterprise.enterprise_id,
        enterprise_name=enterprise.name,
        sector=enterprise.sector,
        area_codes=enterprise.area_codes,
        device_ids=device_ids,
        unit_id=unit_id,
        reason=reason,
        starts_at=starts_at,
        ends_at=ends_at,
        note=note,
        declared_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    check_no_overlap(new, existing, now)
    return new


# --- deciding --------------------------------------------------------------------------------------------------


def _require_pending(declaration: Declaration, now: float) -> None:
    status = declaration.status_at(now)
    if status is not DeclarationStatus.PENDING:
        raise InvalidTransition(
            "declaration_not_pending", f"申报{status.zh}，不能再核实或撤回", details={"status": status.value}
        )


def _changed(declaration: Declaration, now: float, **fields: Any) -> Declaration:
    return declaration.model_copy(update={**fields, "updated_at": now})


def approve(declaration: Declaration, actor: Actor, now: float) -> Declaration:
    _require_pending(declaration, now)
    return _changed(
        declaration, now, status=DeclarationStatus.APPROVED, verified_by=actor.user_id, verified_at=now
    )


def reject(declaration: Declaration, actor: Actor, now: float, reason: str) -> Declaration:
    if not reason.strip():
        raise ValidationFailed("rejection_reason_required", "驳回须说明理由")
    _require_pending(declaration, now)
    return _changed(
        declaration,
        now,
        status=DeclarationStatus.REJECTED,
        verified_by=actor.user_id,
        verified_at=now,
        rejection_reason=reason.strip(),
    )


def withdraw(declaration: Declaration, actor: Actor, now: float) -> Declaration:
    """The enterprise takes back a declaration that has not started (pending or approved)."""
    status = declaration.status_at(now)
    if status not in OPEN_STATUSES:
        raise InvalidTransition(
            "declaration_not_pending", f"申报{status.zh}，不能再核实或撤回", details={"status": status.value}
        )
    if now >= declaration.starts_at:
        raise InvalidTransition("declaration_started", "申报时段已开始，不能撤回")
    return _changed(declaration, now, status=DeclarationStatus.WITHDRAWN, withdrawn_by=actor.user_id)


def expire(declaration: Declaration, now: float) -> Declaration:
    if declaration.status not in OPEN_STATUSES or now < declaration.ends_at:
        raise InvalidTransition("declaration_not_pending", "申报未到期")
    return _changed(declaration, now, status=DeclarationStatus.EXPIRED)


def reminded(declaration: Declaration, now: float) -> Declaration:
    return _changed(declaration, now, reminded_at=now)


# --- who ------------------------------------------------------------------------------------------------------

DECLARING_ROLES = frozenset({Role.ENTERPRISE, Role.ADMIN})
VERIFYING_ROLES = frozenset({Role.REGULATOR, Role.ADMIN})  # 第十六条: the sector departments verify; duty may not
WITHDRAWING_ROLES = frozenset({Role.ENTERPRISE, Role.ADMIN})
AUDIT_ROLES = frozenset({Role.DUTY, Role.REGULATOR, Role.EMERGENCY, Role.ADMIN})


def can_see(actor: Actor, declaration: Declaration) -> bool:
    """Enterprise: its own; regulator: its sectors; area: its areas; duty, emergency, admin, system: all."""
    if actor.role is Role.ENTERPRISE:
        return declaration.enterprise_id == actor.enterprise_id
    if actor.role is Role.REGULATOR:
        return declaration.sector in actor.sectors
    if actor.role is Role.AREA:
        return not set(declaration.area_codes).isdisjoint(actor.area_codes)
    return True


def require_declaring_for(actor: Actor, enterprise_id: str | None) -> str:
    """The enterprise the actor declares for: an enterprise user its own (403 for another), the administrator
    the one named (422 when none is)."""
    if actor.role not in DECLARING_ROLES:
        raise Forbidden("role_not_permitted", f"{actor.role.zh}无权申报")
    if actor.role is Role.ENTERPRISE:
        if enterprise_id is not None and enterprise_id != actor.enterprise_id:
            raise Forbidden("other_enterprise", "只能为本企业申报")
        assert actor.enterprise_id is not None  # an enterprise actor always has one
        return actor.enterprise_id
    if enterprise_id is None:
        raise ValidationFailed("unknown_enterprise", "所属企业未登记")
    return enterprise_id
