"""Outage declarations, the pure rules (`domain/declarations.py`): the window, the devices, overlaps, the states,
what a declaration covers (half-open windows), reminders and expiry. Table-driven; boundaries included."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain import declarations as rules
from chalicelib.domain.declarations import (
    Declaration,
    DeclarationPolicy,
    DeclarationReason,
    DeclarationStatus,
)
from chalicelib.domain.errors import Conflict, DomainError, Forbidden, InvalidTransition, ValidationFailed
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import DeviceRegistration, Enterprise

H = 3600.0
T0 = 1_750_000_000.0
POLICY = DeclarationPolicy()  # 7 days, 2 h retroactive, 60 s skew, reminded 1 h before the end
PLANNED, DAMAGE, DISTORTION, OTHER = (
    DeclarationReason.PLANNED_STOP,
    DeclarationReason.EQUIPMENT_DAMAGE,
    DeclarationReason.DATA_DISTORTION,
    DeclarationReason.OTHER,
)
PENDING, APPROVED, REJECTED, WITHDRAWN, EXPIRED = (
    DeclarationStatus.PENDING,
    DeclarationStatus.APPROVED,
    DeclarationStatus.REJECTED,
    DeclarationStatus.WITHDRAWN,
    DeclarationStatus.EXPIRED,
)
ENT = Actor(user_id="ent-e1", role=Role.ENTERPRISE, enterprise_id="E1")
REG = Actor(user_id="reg-emergency", role=Role.REGULATOR, sectors=(Sector.HAZCHEM,), department="emergency_bureau")
ENTERPRISE = Enterprise(enterprise_id="E1", name="津港石化", sector=Sector.HAZCHEM, area_codes=("TEDA",))


def make(
    reason: DeclarationReason = DAMAGE,
    starts_at: float = T0,
    ends_at: float = T0 + 4 * H,
    status: DeclarationStatus = PENDING,
    devices: tuple[str, ...] = ("D1",),
    declaration_id: str = "DCL-1",
    **fields: Any,
) -> Declaration:
    return Declaration(
        declaration_id=declaration_id,
        enterprise_id="E1",
        sector=Sector.HAZCHEM,
        area_codes=("TEDA",),
        device_ids=devices,
        reason=reason,
        starts_at=starts_at,
        ends_at=ends_at,
        status=status,
        declared_by="ent-e1",
        created_at=T0 - H,
        updated_at=T0 - H,
        **fields,
    )


def device(device_id: str, enterprise_id: str = "E1", unit_id: str = "U1") -> DeviceRegistration:
    return DeviceRegistration(
        device_id=device_id,
        enterprise_id=enterprise_id,
        enterprise_name="某企业",
        sector=Sector.HAZCHEM,
        unit_id=unit_id,
        unit_name="罐区",
        kind="tank_level",
    )


# --- the window ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "starts", "ends", "code"),
    [
        (DAMAGE, 0, 4 * H, None),
        (DAMAGE, 0, 0, "invalid_window"),  # empty
        (DAMAGE, H, 0, "invalid_window"),  # reversed
        (DAMAGE, 0, 7 * 24 * H, None),  # exactly the longest window
        (DAMAGE, 0, 7 * 24 * H + 1, "window_too_long"),
        (PLANNED, H, H + 7 * 24 * H + 1, "window_too_long"),
        (DAMAGE, -2 * H, H, None),  # declared after it started: exactly the limit
        (DAMAGE, -2 * H - 1, H, "retroactive_window"),
        (DISTORTION, -2 * H - 1, H, "retroactive_window"),
        (OTHER, -H, H, None),
        (DAMAGE, -H, 0, "retroactive_window"),  # a window that has ended (half-open: ends at now)
        (DAMAGE, -H, 1, None),
        (PLANNED, 0, H, None),  # starting now
        (PLANNED, -60, H, None),  # within the clock skew
        (PLANNED, -61, H, "retroactive_window"),  # a planned stop may not start in the past
        (PLANNED, 24 * H, 30 * H, None),
    ],
)
def test_the_window_rules(reason: DeclarationReason, starts: float, ends: float, code: str | None) -> None:
    if code is None:
        rules.check_window(reason, T0 + starts, T0 + ends, T0, POLICY)
        return
    with pytest.raises(ValidationFailed) as caught:
        rules.check_window(reason, T0 + starts, T0 + ends, T0, POLICY)
    assert caught.value.code == code


def test_a_stage_may_change_the_window_policy() -> None:
    strict = DeclarationPolicy(max_window_s=H, max_retroactive_s=0)
    with pytest.raises(ValidationFailed, match="window_too_long"):
        rules.check_window(DAMAGE, T0, T0 + H + 1, T0, strict)
    with pytest.raises(ValidationFailed, match="retroactive_window"):
        rules.check_window(DAMAGE, T0 - 1, T0 + H - 1, T0, strict)


# --- the devices -----------------------------------------------------------------------------------------------

REGISTERED = [device("D1"), device("D2"), device("D3", unit_id="U2"), device("X1", enterprise_id="E2")]


@pytest.mark.parametrize(
    ("device_ids", "unit_id", "expected"),
    [
        (("D1",), None, ("D1",)),
        (("D2", "D1", "D2"), None, ("D2", "D1")),  # repeats dropped, order kept
        ((), "U1", ("D1", "D2")),  # a whole unit: its devices now
        ((), "U2", ("D3",)),
        (("X1",), None, "device_not_in_enterprise"),  # another enterprise's device
        (("D1", "NOPE"), None, "device_not_in_enterprise"),  # unknown: the same answer
        ((), "U9", "device_not_in_enterprise"),  # a unit without devices of the enterprise
    ],
)
def test_devices_resolve_within_the_enterprise(
    device_ids: tuple[str, ...], unit_id: str | None, expected: tuple[str, ...] | str
) -> None:
    if isinstance(expected, str):
        with pytest.raises(ValidationFailed) as caught:
            rules.resolve_devices(ENTERPRISE, REGISTERED, device_ids, unit_id)
        assert caught.value.code == expected
    else:
        assert rules.resolve_devices(ENTERPRISE, REGISTERED, device_ids, unit_id) == expected


def declare(existing: list[Declaration], starts: float = 0, ends: float = 4 * H, **kw: Any) -> Declaration:
    defaults: dict[str, Any] = {"device_ids": ("D1",), "unit_id": None, "reason": DAMAGE, "note": ""}
    return rules.declare(
        declaration_id="DCL-new",
        enterprise=ENTERPRISE,
        starts_at=T0 + starts,
        ends_at=T0 + ends,
        actor=ENT,
        now=T0,
        existing=existing,
        policy=POLICY,
        **{**defaults, **kw},
    )


@pytest.mark.parametrize(
    ("other", "starts", "ends", "overlapping"),
    [
        (make(starts_at=T0, ends_at=T0 + 4 * H), 0, 4 * H, True),
        (make(starts_at=T0, ends_at=T0 + 4 * H), 4 * H, 5 * H, False),  # starts when the other ends
        (make(starts_at=T0 + 4 * H, ends_at=T0 + 5 * H), 0, 4 * H, False),  # ends when the other starts
        (make(starts_at=T0 + 4 * H - 1, ends_at=T0 + 5 * H), 0, 4 * H, True),  # one second shared
        (make(starts_at=T0, ends_at=T0 + 4 * H, status=APPROVED), H, 2 * H, True),
        (make(starts_at=T0, ends_at=T0 + 4 * H, status=REJECTED), H, 2 * H, False),
        (make(starts_at=T0, ends_at=T0 + 4 * H, status=WITHDRAWN), H, 2 * H, False),
        (make(starts_at=T0 - 3 * H, ends_at=T0, status=APPROVED), -H, H, False),  # ended, not yet swept
        (make(starts_at=T0, ends_at=T0 + 4 * H, devices=("D2",)), 0, 4 * H, False),  # other device
        (make(starts_at=T0, ends_at=T0 + 4 * H, devices=("D2", "D1")), 0, 4 * H, True),
    ],
)
def test_overlapping_declarations_of_a_device_conflict(
    other: Declaration, starts: float, ends: float, overlapping: bool
) -> None:
    if overlapping:
        with pytest.raises(Conflict) as caught:
            declare([other], starts, ends)
        assert caught.value.code == "declaration_overlaps"
        assert caught.value.details["declaration_id"] == other.declaration_id
    else:
        assert declare([other], starts, ends).status is PENDING


def test_a_new_declaration_is_pending_with_the_enterprise_scope_copied_in() -> None:
    new = declare([], reason=PLANNED, starts=H, ends=5 * H, note="年度检修")
    assert (new.status, new.sector, new.area_codes, new.declared_by, new.version) == (
        PENDING,
        Sector.HAZCHEM,
        ("TEDA",),
        "ent-e1",
        0,
    )


def test_too_many_devices_at_once_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="too_many_devices"):
        rules.declare(
            declaration_id="x",
            enterprise=ENTERPRISE,
            device_ids=tuple(f"D{i}" for i in range(POLICY.max_devices + 1)),
            unit_id=None,
            reason=DAMAGE,
            starts_at=T0,
            ends_at=T0 + H,
            note="",
            actor=ENT,
            now=T0,
            existing=[],
            policy=POLICY,
        )


# --- who declares ----------------------------------------------------------------------------------------------

ADMIN = Actor(user_id="admin", role=Role.ADMIN)
DUTY = Actor(user_id="duty-01", role=Role.DUTY)


@pytest.mark.parametrize(
    ("actor", "named", "expected"),
    [
        (ENT, None, "E1"),
        (ENT, "E1", "E1"),
        (ENT, "E2", "other_enterprise"),
        (ADMIN, "E2", "E2"),
        (ADMIN, None, "unknown_enterprise"),
        (DUTY, "E1", "role_not_permitted"),
        (REG, "E1", "role_not_permitted"),
    ],
)
def test_who_declares_for_which_enterprise(actor: Actor, named: str | None, expected: str) -> None:
    if expected.startswith("E"):
        assert rules.require_declaring_for(actor, named) == expected
    else:
        with pytest.raises(DomainError) as caught:
            rules.require_declaring_for(actor, named)
        assert caught.value.code == expected
        assert isinstance(caught.value, Forbidden | ValidationFailed)


# --- the states ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        (PENDING, T0, APPROVED),
        (PENDING, T0 + 4 * H - 1, APPROVED),  # late, within the window
        (PENDING, T0 + 4 * H, "declaration_not_pending"),  # ended: expired
        (APPROVED, T0, "declaration_not_pending"),
        (REJECTED, T0, "declaration_not_pending"),
        (WITHDRAWN, T0, "declaration_not_pending"),
        (EXPIRED, T0, "declaration_not_pending"),
    ],
)
def test_approve_only_a_pending_declaration_whose_window_has_not_ended(
    status: DeclarationStatus, now: float, expected: DeclarationStatus | str
) -> None:
    declaration = make(status=status)
    if isinstance(expected, DeclarationStatus):
        approved = rules.approve(declaration, REG, now)
        assert (approved.status, approved.verified_by, approved.verified_at, approved.approved) == (
            expected,
            "reg-emergency",
            now,
            True,
        )
    else:
        with pytest.raises(InvalidTransition) as caught:
            rules.approve(declaration, REG, now)
        assert caught.value.code == expected


def test_a_rejection_needs_a_reason_and_a_pending_declaration() -> None:
    with pytest.raises(ValidationFailed, match="rejection_reason_required"):
        rules.reject(make(), REG, T0, "  ")
    rejected = rules.reject(make(), REG, T0, " 未见检修计划 ")
    assert (rejected.status, rejected.rejection_reason, rejected.approved) == (REJECTED, "未见检修计划", False)
    with pytest.raises(InvalidTransition, match="declaration_not_pending"):
        rules.reject(rejected, REG, T0, "again")


@pytest.mark.parametrize(
    ("status", "now", "expected"),
    [
        (PENDING, T0 - 1, WITHDRAWN),
        (APPROVED, T0 - 1, WITHDRAWN),
        (PENDING, T0, "declaration_started"),  # the window starts at starts_at (half-open)
        (APPROVED, T0 + H, "declaration_started"),
        (REJECTED, T0 - 1, "declaration_not_pending"),
        (WITHDRAWN, T0 - 1, "declaration_not_pending"),
    ],
)
def test_withdraw_before_the_start_only(
    status: DeclarationStatus, now: float, expected: DeclarationStatus | str
) -> None:
    if isinstance(expected, DeclarationStatus):
        assert rules.withdraw(make(status=status), ENT, now).status is expected
    else:
        with pytest.raises(InvalidTransition) as caught:
            rules.withdraw(make(status=status), ENT, now)
        assert caught.value.code == expected


@pytest.mark.parametrize(
    ("status", "now", "expired"),
    [
        (PENDING, T0 + 4 * H - 1, False),
        (PENDING, T0 + 4 * H, True),  # half-open: at the end it is over
        (APPROVED, T0 + 4 * H, True),
        (REJECTED, T0 + 5 * H, False),
        (WITHDRAWN, T0 + 5 * H, False),
        (EXPIRED, T0 + 5 * H, False),
    ],
)
def test_open_declarations_expire_at_the_end_of_their_window(
    status: DeclarationStatus, now: float, expired: bool
) -> None:
    declaration = make(status=status)
    assert rules.expired([declaration], now) == ([declaration] if expired else [])
    assert (declaration.status_at(now) is EXPIRED) == (expired or status is EXPIRED)
    if expired:
        assert rules.expire(declaration, now).status is EXPIRED
    else:
        with pytest.raises(InvalidTransition):
            rules.expire(declaration, now)


# --- what a declaration covers ---------------------------------------------------------------------------------

APPROVED_AT_START = {"verified_by": "reg", "verified_at": T0 - H}
APPROVED_LATE = {"verified_by": "reg", "verified_at": T0 + H}


@pytest.mark.parametrize(
    ("reason", "status", "fields", "at", "covered"),
    [
        # unplanned: effective when declared, pending or approved, the whole window, half-open
        (DAMAGE, PENDING, {}, T0 - 1, False),
        (DAMAGE, PENDING, {}, T0, True),
        (DAMAGE, PENDING, {}, T0 + 4 * H - 1, True),
        (DAMAGE, PENDING, {}, T0 + 4 * H, False),
        (DISTORTION, APPROVED, APPROVED_AT_START, T0 + H, True),
        (OTHER, PENDING, {}, T0 + H, True),
        (DAMAGE, REJECTED, {"verified_at": T0 + H, "rejection_reason": "x"}, T0 + 30, False),  # never excused
        (DAMAGE, WITHDRAWN, {}, T0 + H, False),
        (DAMAGE, EXPIRED, {}, T0 + H, True),  # looking back: its window was covered
        # planned: nothing until approved, then from the later of start and approval
        (PLANNED, PENDING, {}, T0 + H, False),
        (PLANNED, APPROVED, APPROVED_AT_START, T0 - 1, False),
        (PLANNED, APPROVED, APPROVED_AT_START, T0, True),
        (PLANNED, APPROVED, APPROVED_AT_START, T0 + 4 * H - 1, True),
        (PLANNED, APPROVED, APPROVED_AT_START, T0 + 4 * H, False),
        (PLANNED, APPROVED, APPROVED_LATE, T0 + H - 1, False),
        (PLANNED, APPROVED, APPROVED_LATE, T0 + H, True),
        (PLANNED, EXPIRED, APPROVED_AT_START, T0 + H, True),
        (PLANNED, EXPIRED, {}, T0 + H, False),  # expired unapproved
    ],
)
def test_what_a_declaration_covers(
    reason: DeclarationReason, status: DeclarationStatus, fields: dict[str, Any], at: float, covered: bool
) -> None:
    declaration = make(reason=reason, status=status, **fields)
    assert (rules.suppressing([declaration], "D1", at) is declaration) == covered
    assert rules.suppressing([declaration], "D2", at) is None  # not its device
    assert rules.excusing([declaration], at) == ({"D1": declaration} if covered else {})


def test_every_device_excused_now_with_the_declaration_suppressing_names() -> None:
    first = make(reason=DAMAGE, devices=("D1", "D2"), declaration_id="a")
    second = make(reason=DISTORTION, devices=("D2", "D3"), declaration_id="b")
    excused = rules.excusing([first, second], T0)
    assert excused == {"D1": first, "D2": first, "D3": second}
    assert all(rules.suppressing([first, second], d, T0) is excused[d] for d in ("D1", "D2", "D3"))
    assert rules.excusing([first, second], T0 + 4 * H) == {}  # both ended


def test_not_graded_only_under_a_covering_distortion_declaration() -> None:
    damage = make(reason=DAMAGE, devices=("D1",), declaration_id="a")
    distortion = make(reason=DISTORTION, devices=("D2",), declaration_id="b")
    both = [damage, distortion]
    assert rules.suppressing(both, "D1", T0) is damage
    assert rules.not_graded(both, "D1", T0) is None  # offline excused, readings still graded
    assert rules.not_graded(both, "D2", T0) is distortion
    assert rules.not_graded(both, "D2", T0 + 4 * H) is None


@pytest.mark.parametrize(
    ("reason", "status", "fields", "now", "due"),
    [
        (DAMAGE, PENDING, {}, T0 + 3 * H - 1, False),
        (DAMAGE, PENDING, {}, T0 + 3 * H, True),  # exactly an hour before the end
        (DAMAGE, APPROVED, APPROVED_AT_START, T0 + 4 * H - 1, True),
        (DAMAGE, PENDING, {}, T0 + 4 * H, False),  # ended: expiry, not a reminder
        (DAMAGE, PENDING, {"reminded_at": T0 + 3 * H}, T0 + 3.5 * H, False),  # once
        (PLANNED, PENDING, {}, T0 + 3.5 * H, False),  # not in effect: nothing to remind of
        (PLANNED, APPROVED, APPROVED_AT_START, T0 + 3.5 * H, True),
        (DAMAGE, REJECTED, {"verified_at": T0, "rejection_reason": "x"}, T0 + 3.5 * H, False),
    ],
)
def test_reminders_fall_due_once_before_the_end_of_a_window_in_effect(
    reason: DeclarationReason, status: DeclarationStatus, fields: dict[str, Any], now: float, due: bool
) -> None:
    declaration = make(reason=reason, status=status, **fields)
    assert rules.due_reminders([declaration], now, POLICY) == ([declaration] if due else [])


@pytest.mark.parametrize(
    ("actor", "visible"),
    [
        (ENT, True),
        (Actor(user_id="e2", role=Role.ENTERPRISE, enterprise_id="E2"), False),
        (REG, True),
        (Actor(user_id="r", role=Role.REGULATOR, sectors=(Sector.FIRE,)), False),
        (Actor(user_id="a", role=Role.AREA, area_codes=("TEDA", "X")), True),
        (Actor(user_id="a", role=Role.AREA, area_codes=("HANGU",)), False),
        (DUTY, True),
        (Actor(user_id="emg", role=Role.EMERGENCY), True),
        (ADMIN, True),
    ],
)
def test_who_sees_a_declaration(actor: Actor, visible: bool) -> None:
    assert rules.can_see(actor, make()) is visible
