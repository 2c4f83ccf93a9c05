"""The warning disposal lifecycle: every status × every action, the closing rules per level, latched
warnings, engine level changes in every open state, and a property over arbitrary sequences of actions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.errors import DomainError, InvalidTransition, ValidationFailed
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import (
    Acknowledge,
    Action,
    ActionType,
    Actor,
    Archive,
    ClearReason,
    ConfirmClosure,
    ContactChannel,
    ContactOutcome,
    Escalate,
    EscalationTier,
    IssueSupervision,
    MarkFalseAlarm,
    Reassign,
    RecordContact,
    RecordInspection,
    RejectClear,
    Remind,
    RequestClear,
    Role,
    StartDisposal,
    Transition,
    VerificationOutcome,
    Verify,
    apply_action,
    apply_engine_change,
    needs_duty_confirmation,
    parse_action,
    status_allows,
)
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from tests.depth import scaled

T0 = 1_764_000_000.0
S = WarningStatus
ALL_LEVELS = [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED]
OPEN = [S.RAISED, S.ACKNOWLEDGED, S.VERIFIED, S.DISPOSING, S.CLEAR_REQUESTED]

ENTERPRISE = Actor(user_id="u-ent", role=Role.ENTERPRISE, name="张工", enterprise_id="E1")
DUTY = Actor(user_id="u-duty", role=Role.DUTY, name="值班员")
REGULATOR = Actor(user_id="u-reg", role=Role.REGULATOR, sectors=(Sector.HAZCHEM,), department="emergency_bureau")
AREA = Actor(user_id="u-area", role=Role.AREA, area_codes=("TEDA",))
EMERGENCY = Actor(user_id="u-em", role=Role.EMERGENCY)
ADMIN = Actor(user_id="u-admin", role=Role.ADMIN)
SYSTEM = Actor(user_id="workflow", role=Role.SYSTEM)
ACTORS = {
    Role.ENTERPRISE: ENTERPRISE,
    Role.DUTY: DUTY,
    Role.REGULATOR: REGULATOR,
    Role.AREA: AREA,
    Role.EMERGENCY: EMERGENCY,
    Role.ADMIN: ADMIN,
    Role.SYSTEM: SYSTEM,
}

SAMPLE_ACTIONS: dict[ActionType, Action] = {
    ActionType.ACKNOWLEDGE: Acknowledge(),
    ActionType.VERIFY: Verify(outcome=VerificationOutcome.REAL, note="现场确认液位偏高"),
    ActionType.START_DISPOSAL: StartDisposal(note="启动倒罐"),
    ActionType.REQUEST_CLEAR: RequestClear(
        reason=ClearReason.DISPOSED, text="已倒罐，液位恢复至70%", evidence_keys=("E1/W1/photo-1.jpg",)
    ),
    ActionType.CONFIRM_CLOSURE: ConfirmClosure(note="视频核实"),
    ActionType.REJECT_CLEAR: RejectClear(note="照片不清晰，请补充"),
    ActionType.RECORD_CONTACT: RecordContact(
        channel=ContactChannel.PHONE, outcome=ContactOutcome.REACHED, contact_name="李经理"
    ),
    ActionType.ESCALATE: Escalate(tier=EscalationTier.REGULATOR_AREA),
    ActionType.MARK_FALSE_ALARM: MarkFalseAlarm(note="视频确认为探头受潮"),
    ActionType.REASSIGN: Reassign(assignee_id="u-ent-2", assignee_name="王工"),
    ActionType.RECORD_INSPECTION: RecordInspection(findings="现场已处置，液位正常"),
    ActionType.ISSUE_SUPERVISION: IssueSupervision(order="限期整改联锁", deadline=T0 + 86_400),
    ActionType.ARCHIVE: Archive(),
    ActionType.REMIND: Remind(slot=T0 + 120),
}
ACTOR_FOR: dict[ActionType, Actor] = {
    ActionType.ACKNOWLEDGE: ENTERPRISE,
    ActionType.VERIFY: ENTERPRISE,
    ActionType.START_DISPOSAL: ENTERPRISE,
    ActionType.REQUEST_CLEAR: ENTERPRISE,
    ActionType.CONFIRM_CLOSURE: DUTY,
    ActionType.REJECT_CLEAR: DUTY,
    ActionType.RECORD_CONTACT: DUTY,
    ActionType.ESCALATE: DUTY,
    ActionType.MARK_FALSE_ALARM: DUTY,
    ActionType.REASSIGN: DUTY,
    ActionType.RECORD_INSPECTION: REGULATOR,
    ActionType.ISSUE_SUPERVISION: AREA,
    ActionType.ARCHIVE: SYSTEM,
    ActionType.REMIND: SYSTEM,
}


def make_record(level: int = Level.ORANGE, **overrides: Any) -> WarningRecord:
    values: dict[str, Any] = {
        "warning_id": "WTEST0001",
        "device_id": "HC01-T1-V1",
        "enterprise_id": "E1",
        "enterprise_name": "津港石化储运有限公司",
        "sector": Sector.HAZCHEM,
        "unit_id": "U1",
        "unit_name": "一号罐区",
        "point_name": "V-101储罐",
        "area_codes": ("TEDA", "TEDA-S01"),
        "risk_type": "tank_level",
        "level": level,
        "peak_level": level,
        "status": S.RAISED,
        "reading_normal": False,
        "raised_at": T0,
        "updated_at": T0,
        "title": "液位高高报",
        "reason": "tank_level_hh",
        "value": 95.2,
        "unit": "%",
    }
    values.update(overrides)
    return WarningRecord(**values)


def act(record: WarningRecord, action: Action, actor: Actor | None = None, at: float = T0 + 60) -> WarningRecord:
    return apply_action(record, action, actor or ACTOR_FOR[action.action_type], at).record


def engine_change(record: WarningRecord, kind: ChangeKind, level: int | None = None, at: float = T0 + 30):
    new_level = Level.NONE if kind is ChangeKind.RECOVER else (level or record.level)
    return WarningChange(
        kind=kind,
        warning_id=record.warning_id,
        device_id=record.device_id,
        enterprise_id=record.enterprise_id,
        enterprise_name=record.enterprise_name,
        sector=record.sector,
        unit_id=record.unit_id,
        unit_name=record.unit_name,
        point_name=record.point_name,
        area_codes=record.area_codes,
        risk_type=record.risk_type,
        level=new_level,
        previous_level=record.level,
        base_level=new_level,
        reason="tank_level_recovered" if kind is ChangeKind.RECOVER else "tank_level_hh",
        title=record.title,
        value=70.0 if kind is ChangeKind.RECOVER else 96.0,
        unit=record.unit,
        at=at,
        raised_at=record.raised_at,
    )


def recovered(record: WarningRecord) -> WarningRecord:
    transition = apply_engine_change(record, engine_change(record, ChangeKind.RECOVER))
    assert transition is not None
    return transition.record


def record_in(
    status: WarningStatus,
    level: int = Level.ORANGE,
    reading_normal: bool = True,
    outcome: VerificationOutcome = VerificationOutcome.REAL,
) -> WarningRecord:
    """A record driven through the real actions to `status` (closing by duty confirmation)."""
    record = make_record(level, reading_normal=reading_normal)
    path: list[tuple[WarningStatus, Action]] = [
        (S.ACKNOWLEDGED, Acknowledge()),
        (S.VERIFIED, Verify(outcome=outcome)),
        (S.DISPOSING, StartDisposal()),
        (S.CLEAR_REQUESTED, RequestClear(reason=ClearReason.DEVICE_FAULT, text="更换探头")),
        (S.CLOSED, ConfirmClosure()),
        (S.ARCHIVED, Archive()),
    ]
    if status is S.RAISED:
        return record
    for reached, action in path:
        record = act(record, action)
        if reached is status:
            break
    assert record.status is status
    return record


# ------------------------------------------------------------------ the transition table (orange, reading normal)

_CLOSED = "warning_closed"
_ARCHIVED = "warning_archived"
_WRONG = "wrong_status"
_SAME = "same"  # allowed, status unchanged

TRANSITIONS: dict[ActionType, dict[WarningStatus, WarningStatus | str]] = {
    ActionType.ACKNOWLEDGE: {S.RAISED: S.ACKNOWLEDGED},
    ActionType.VERIFY: {S.ACKNOWLEDGED: S.VERIFIED},
    ActionType.START_DISPOSAL: {S.VERIFIED: S.DISPOSING},
    ActionType.REQUEST_CLEAR: {S.VERIFIED: "disposal_required", S.DISPOSING: S.CLEAR_REQUESTED},
    ActionType.CONFIRM_CLOSURE: {S.CLEAR_REQUESTED: S.CLOSED},
    ActionType.REJECT_CLEAR: {S.CLEAR_REQUESTED: S.DISPOSING},
    ActionType.RECORD_CONTACT: dict.fromkeys(OPEN, _SAME),
    ActionType.ESCALATE: dict.fromkeys(OPEN, _SAME),
    ActionType.MARK_FALSE_ALARM: dict.fromkeys(OPEN, S.CLOSED),
    ActionType.REASSIGN: dict.fromkeys(OPEN, _SAME),
    ActionType.RECORD_INSPECTION: dict.fromkeys(OPEN, _SAME),
    ActionType.ISSUE_SUPERVISION: dict.fromkeys(OPEN, _SAME),
    ActionType.ARCHIVE: {S.CLOSED: S.ARCHIVED, **dict.fromkeys(OPEN, "warning_open")},
    ActionType.REMIND: {S.RAISED: _SAME},
}


def expected_outcome(action_type: ActionType, status: WarningStatus) -> WarningStatus | str:
    table = TRANSITIONS[action_type]
    if status in table:
        return table[status]
    if status is S.ARCHIVED:
        return _ARCHIVED
    if status is S.CLOSED:
        return _CLOSED
    return _WRONG


def test_the_table_covers_every_action() -> None:
    assert set(TRANSITIONS) == set(ActionType) == set(SAMPLE_ACTIONS)


@pytest.mark.parametrize("status", list(WarningStatus))
@pytest.mark.parametrize("action_type", list(ActionType))
def test_every_status_and_action_follows_the_transition_table(
    action_type: ActionType, status: WarningStatus
) -> None:
    record = record_in(status)
    expected = expected_outcome(action_type, status)
    action = SAMPLE_ACTIONS[action_type]
    if isinstance(expected, WarningStatus) or expected == _SAME:
        transition = apply_action(record, action, ACTOR_FOR[action_type], T0 + 600)
        assert transition.record.status is (status if expected == _SAME else expected)
        assert transition.record.version == record.version + 1
        assert transition.event.type == action_type.value
        assert (transition.event.before_status, transition.event.after_status) == (
            status,
            transition.record.status,
        )
    else:
        with pytest.raises(InvalidTransition) as caught:
            apply_action(record, action, ACTOR_FOR[action_type], T0 + 600)
        assert caught.value.code == expected
        assert caught.value.http_status == 409
        assert caught.value.message_zh


def test_acknowledging_a_closed_warning_says_so_in_chinese() -> None:
    with pytest.raises(InvalidTransition) as caught:
        apply_action(record_in(S.CLOSED), Acknowledge(), ENTERPRISE, T0)
    assert caught.value.message_zh == "预警已关闭，不能签收"


def test_a_wrong_status_message_names_the_current_status() -> None:
    with pytest.raises(InvalidTransition) as caught:
        apply_action(record_in(S.RAISED), Verify(outcome=VerificationOutcome.REAL), ENTERPRISE, T0)
    assert caught.value.message_zh == "预警当前为“待签收”，不能核实"
    assert caught.value.details["allowed"] == ["acknowledged"]


def test_archiving_an_open_warning_is_refused() -> None:
    with pytest.raises(InvalidTransition) as caught:
        apply_action(record_in(S.DISPOSING), Archive(), SYSTEM, T0)
    assert caught.value.message_zh == "预警尚未关闭，不能归档"


# ------------------------------------------------------------------ closing rules per level


@pytest.mark.parametrize("reason", list(ClearReason))
@pytest.mark.parametrize("level", [Level.BLUE, Level.YELLOW])
def test_blue_and_yellow_close_on_the_clear_request_when_the_reading_is_normal(
    level: int, reason: ClearReason
) -> None:
    record = record_in(S.DISPOSING, level=level, reading_normal=True)
    closed = act(record, RequestClear(reason=reason, text="已处理"))
    assert closed.status is S.CLOSED
    assert closed.details["closure"]["reason"] == reason.value
    assert closed.details["closure"]["confirmed"] is False


@pytest.mark.parametrize("reason", list(ClearReason))
@pytest.mark.parametrize("level", [Level.ORANGE, Level.RED])
def test_orange_and_red_wait_for_the_duty_centre_even_with_a_normal_reading(
    level: int, reason: ClearReason
) -> None:
    record = record_in(S.DISPOSING, level=level, reading_normal=True)
    requested = act(record, RequestClear(reason=reason, text="已处理"))
    assert requested.status is S.CLEAR_REQUESTED
    assert "closure" not in requested.details
    closed = act(requested, ConfirmClosure())
    assert closed.status is S.CLOSED
    closure = closed.details["closure"]
    assert (closure["reason"], closure["confirmed"], closure["by"]) == (reason.value, True, "u-duty")


@pytest.mark.parametrize("level", ALL_LEVELS)
def test_a_disposed_clear_request_with_the_reading_still_abnormal_is_refused_at_every_level(level: int) -> None:
    record = record_in(S.DISPOSING, level=level, reading_normal=False)
    with pytest.raises(InvalidTransition) as caught:
        act(record, RequestClear(reason=ClearReason.DISPOSED, text="已处置"))
    assert caught.value.code == "reading_not_normal"
    assert caught.value.message_zh == "监测数据尚未恢复正常，不能以“已处置”申请消警"


@pytest.mark.parametrize("reason", [ClearReason.FALSE_ALARM, ClearReason.DEVICE_FAULT, ClearReason.MAINTENANCE])
@pytest.mark.parametrize("level", [Level.BLUE, Level.YELLOW])
def test_blue_and_yellow_with_an_untrusted_abnormal_reading_wait_for_the_duty_centre(
    level: int, reason: ClearReason
) -> None:
    record = record_in(S.DISPOSING, level=level, reading_normal=False)
    assert needs_duty_confirmation(record)
    assert act(record, RequestClear(reason=reason, text="探头故障")).status is S.CLEAR_REQUESTED


def test_a_warning_that_was_red_and_is_now_blue_still_needs_the_duty_centre() -> None:
    record = record_in(S.DISPOSING, level=Level.RED, reading_normal=True)
    lowered = replace(record, level=Level.BLUE)
    assert act(lowered, RequestClear(reason=ClearReason.DISPOSED, text="已处置")).status is S.CLEAR_REQUESTED


def test_a_false_alarm_verification_goes_straight_to_the_clear_request() -> None:
    record = record_in(S.VERIFIED, level=Level.RED, outcome=VerificationOutcome.FALSE_ALARM)
    requested = act(record, RequestClear(reason=ClearReason.FALSE_ALARM, text="探头受潮误报"))
    assert requested.status is S.CLEAR_REQUESTED


def test_a_false_alarm_verification_on_yellow_with_a_normal_reading_closes_at_once() -> None:
    record = record_in(S.VERIFIED, level=Level.YELLOW, outcome=VerificationOutcome.FALSE_ALARM)
    assert act(record, RequestClear(reason=ClearReason.FALSE_ALARM, text="误报")).status is S.CLOSED


@pytest.mark.parametrize("reason", [ClearReason.DISPOSED, ClearReason.DEVICE_FAULT, ClearReason.MAINTENANCE])
def test_skipping_disposal_needs_the_false_alarm_reason(reason: ClearReason) -> None:
    record = record_in(S.VERIFIED, outcome=VerificationOutcome.FALSE_ALARM)
    with pytest.raises(InvalidTransition) as caught:
        act(record, RequestClear(reason=reason, text="x"))
    assert caught.value.code == "reason_mismatch"


@pytest.mark.parametrize("outcome", [VerificationOutcome.REAL, VerificationOutcome.DEVICE_FAULT])
def test_a_real_or_device_fault_verification_must_be_disposed_before_clearing(
    outcome: VerificationOutcome,
) -> None:
    record = record_in(S.VERIFIED, outcome=outcome)
    with pytest.raises(InvalidTransition) as caught:
        act(record, RequestClear(reason=ClearReason.FALSE_ALARM, text="x"))
    assert caught.value.code == "disposal_required"


def test_the_duty_centre_cannot_confirm_a_disposed_request_after_the_reading_relapses() -> None:
    record = record_in(S.DISPOSING, level=Level.ORANGE, reading_normal=True)
    requested = act(record, RequestClear(reason=ClearReason.DISPOSED, text="已处置"))
    relapse = apply_engine_change(requested, engine_change(requested, ChangeKind.LEVEL_UP, Level.RED))
    assert relapse is not None and relapse.record.status is S.CLEAR_REQUESTED
    with pytest.raises(InvalidTransition) as caught:
        act(relapse.record, ConfirmClosure())
    assert caught.value.code == "reading_not_normal"
    assert act(relapse.record, RejectClear(note="数据再次超限")).status is S.DISPOSING


def test_a_rejected_clear_request_returns_to_disposing_and_may_be_requested_again() -> None:
    requested = record_in(S.CLEAR_REQUESTED)
    rejected = act(requested, RejectClear(note="照片不清晰"))
    assert rejected.status is S.DISPOSING
    assert "clear_request" not in rejected.details
    assert rejected.details["clear_rejection"]["request_reason"] == "device_fault"
    again = act(rejected, RequestClear(reason=ClearReason.DISPOSED, text="补充照片", evidence_keys=("k/2.jpg",)))
    assert again.status is S.CLEAR_REQUESTED
    assert again.details["clear_request"]["evidence_keys"] == ["k/2.jpg"]


@pytest.mark.parametrize("status", OPEN)
def test_the_duty_centre_may_mark_a_false_alarm_from_any_open_status_and_it_closes(status: WarningStatus) -> None:
    closed = act(record_in(status, level=Level.RED, reading_normal=False), MarkFalseAlarm(note="视频确认误报"))
    assert closed.status is S.CLOSED
    assert closed.details["closure"]["reason"] == "false_alarm"
    assert closed.details["closure"]["confirmed"] is True


# ------------------------------------------------------------------ latched warnings and engine changes


def test_a_reading_that_recovers_before_anyone_responds_keeps_the_warning_open() -> None:
    record = recovered(make_record(Level.YELLOW))
    assert record.status is S.RAISED
    assert record.reading_normal
    assert record.is_open


def test_a_latched_yellow_closes_only_when_the_enterprise_reports_back() -> None:
    record = recovered(make_record(Level.YELLOW))
    for action in (Acknowledge(), Verify(outcome=VerificationOutcome.REAL), StartDisposal()):
        record = act(record, action)
        assert record.is_open
    closed = act(record, RequestClear(reason=ClearReason.DISPOSED, text="已排查，液位正常"))
    assert closed.status is S.CLOSED


def test_a_latched_red_still_needs_the_duty_centre() -> None:
    record = recovered(make_record(Level.RED))
    for action in (Acknowledge(), Verify(outcome=VerificationOutcome.REAL), StartDisposal()):
        record = act(record, action)
    requested = act(record, RequestClear(reason=ClearReason.DISPOSED, text="已处置"))
    assert requested.status is S.CLEAR_REQUESTED


@pytest.mark.parametrize(
    ("kind", "level"),
    [(ChangeKind.LEVEL_UP, Level.RED), (ChangeKind.LEVEL_DOWN, Level.BLUE), (ChangeKind.RECOVER, None)],
)
@pytest.mark.parametrize("status", OPEN)
def test_engine_changes_apply_in_every_open_status_without_moving_it(
    status: WarningStatus, kind: ChangeKind, level: int | None
) -> None:
    record = record_in(status, level=Level.ORANGE, reading_normal=False)
    transition = apply_engine_change(record, engine_change(record, kind, level))
    assert transition is not None
    new = transition.record
    assert new.status is status
    assert new.version == record.version + 1
    assert new.level == (level or Level.ORANGE)
    assert new.peak_level == max(Level.ORANGE, level or 0)
    assert new.reading_normal is (kind is ChangeKind.RECOVER)
    assert transition.event.type == kind.value
    assert (transition.event.actor, transition.event.role) == ("engine", "system")
    assert (transition.event.before_level, transition.event.after_level) == (Level.ORANGE, new.level)


@pytest.mark.parametrize("status", [S.CLOSED, S.ARCHIVED])
def test_a_closed_warning_takes_no_engine_change(status: WarningStatus) -> None:
    record = record_in(status)
    with pytest.raises(InvalidTransition) as caught:
        apply_engine_change(record, engine_change(record, ChangeKind.LEVEL_UP, Level.RED))
    assert caught.value.code == ("warning_closed" if status is S.CLOSED else "warning_archived")


def test_a_repeated_raise_is_no_change() -> None:
    record = make_record()
    assert apply_engine_change(record, engine_change(record, ChangeKind.RAISE)) is None


def test_an_engine_change_for_another_warning_is_a_programming_error() -> None:
    record = make_record()
    with pytest.raises(ValueError, match="applied to"):
        apply_engine_change(replace(record, warning_id="WOTHER"), engine_change(record, ChangeKind.LEVEL_UP, 4))


# ------------------------------------------------------------------ duty and regulator records


def test_escalation_only_climbs() -> None:
    record = act(make_record(), Escalate(tier=EscalationTier.REGULATOR_AREA))
    assert record.details["escalation_tier"] == 2
    for tier in (EscalationTier.DUTY_FOLLOW_UP, EscalationTier.REGULATOR_AREA):
        with pytest.raises(InvalidTransition) as caught:
            act(record, Escalate(tier=tier))
        assert caught.value.code == "already_escalated"
    assert act(record, Escalate(tier=EscalationTier.EMERGENCY_LEADERSHIP)).details["escalation_tier"] == 3


def test_contacts_inspections_and_supervision_orders_are_counted_and_the_last_kept() -> None:
    record = make_record()
    record = act(record, SAMPLE_ACTIONS[ActionType.RECORD_CONTACT])
    record = act(record, RecordContact(channel=ContactChannel.VIDEO, outcome=ContactOutcome.NO_ANSWER))
    record = act(record, SAMPLE_ACTIONS[ActionType.RECORD_INSPECTION])
    record = act(record, SAMPLE_ACTIONS[ActionType.ISSUE_SUPERVISION])
    assert record.status is S.RAISED
    assert record.details["contact_count"] == 2
    assert record.details["last_contact"]["outcome"] == "no_answer"
    assert record.details["inspection_count"] == 1
    assert record.details["supervision"]["deadline"] == T0 + 86_400
    assert record.version == 4


def test_a_supervision_order_needs_a_future_deadline() -> None:
    with pytest.raises(ValidationFailed) as caught:
        apply_action(make_record(), IssueSupervision(order="整改", deadline=T0), AREA, T0)
    assert (caught.value.code, caught.value.http_status) == ("deadline_not_future", 422)


def test_reassigning_records_the_new_contact() -> None:
    record = act(make_record(), Reassign(assignee_id="u-ent-2", assignee_name="王工"), ENTERPRISE)
    assert record.details["assignee"]["id"] == "u-ent-2"
    assert record.details["assignee"]["by"] == "u-ent"


# ------------------------------------------------------------------ the event and the record


def test_the_event_carries_actor_levels_reason_and_the_action_data() -> None:
    record = record_in(S.DISPOSING, level=Level.RED)
    action = SAMPLE_ACTIONS[ActionType.REQUEST_CLEAR]
    transition = apply_action(record, action, ENTERPRISE, T0 + 900)
    event = transition.event
    assert event.warning_id == record.warning_id
    assert (event.actor, event.role, event.at) == ("u-ent", "enterprise", T0 + 900)
    assert event.before() == {"status": "disposing", "level": "red"}
    assert event.after() == {"status": "clear_requested", "level": "red"}
    assert event.reason == "disposed"
    assert event.data["evidence_keys"] == ["E1/W1/photo-1.jpg"]
    assert event.version == transition.record.version == record.version + 1
    assert event.audit_fields()["subject_id"] == record.warning_id
    assert transition.record.updated_at == T0 + 900


def test_applying_an_action_never_touches_the_original_record() -> None:
    record = record_in(S.CLEAR_REQUESTED)
    before = dict(record.details)
    act(record, RejectClear(note="驳回"))
    assert record.details == before
    assert record.status is S.CLEAR_REQUESTED


def test_actions_parse_from_request_bodies_by_their_type() -> None:
    action = parse_action({"type": "request_clear", "reason": "maintenance", "text": " 检修 "})
    assert isinstance(action, RequestClear)
    assert action.text == "检修"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "request_clear", "reason": "disposed"},
        {"type": "request_clear", "reason": "gone", "text": "x"},
        {"type": "request_clear", "reason": "disposed", "text": "   "},
        {"type": "request_clear", "reason": "disposed", "text": "x", "evidence_keys": ["../etc/passwd"]},
        {"type": "request_clear", "reason": "disposed", "text": "x", "evidence_keys": ["k"] * 21},
        {"type": "verify", "outcome": "real", "extra": 1},
        {"type": "escalate", "tier": 4},
        {"type": "issue_supervision", "order": "x", "deadline": "nan"},
        {"type": "mark_false_alarm"},
        {"type": "delete_everything"},
        {},
    ],
)
def test_bad_request_bodies_are_refused_with_422(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_action(body)
    assert caught.value.http_status == 422
    assert caught.value.details["errors"]


# ------------------------------------------------------------------ property: any sequence stays consistent

_VARIANTS: list[Action] = [
    *SAMPLE_ACTIONS.values(),
    *(Verify(outcome=outcome) for outcome in VerificationOutcome),
    *(RequestClear(reason=reason, text="反馈") for reason in ClearReason),
    *(Escalate(tier=tier) for tier in EscalationTier),
    IssueSupervision(order="过期督办", deadline=T0),
]
_ENGINE_STEPS: list[tuple[ChangeKind, int | None]] = [
    (ChangeKind.RECOVER, None),
    *((ChangeKind.LEVEL_UP, level) for level in ALL_LEVELS),
    *((ChangeKind.LEVEL_DOWN, level) for level in ALL_LEVELS),
    (ChangeKind.RAISE, None),
]


def _steps_for(record: WarningRecord) -> st.SearchStrategy[Action | tuple[ChangeKind, int | None]]:
    """Mostly actions the status admits (so sequences reach clearing and closing; 判定误报 would cut most short),
    but also any action at all, engine changes, and recoveries (so blue/yellow may close on the request)."""
    admitted = [
        action
        for action in _VARIANTS
        if status_allows(record, action.action_type) and action.action_type is not ActionType.MARK_FALSE_ALARM
    ]
    likely = st.sampled_from(admitted) if admitted else st.nothing()
    recover = st.just((ChangeKind.RECOVER, None))
    return st.one_of(likely, likely, st.sampled_from(_VARIANTS), st.sampled_from(_ENGINE_STEPS), recover)


def _step(record: WarningRecord, step: Action | tuple[ChangeKind, int | None], at: float) -> Transition | None:
    if isinstance(step, tuple):
        kind, level = step
        return apply_engine_change(record, engine_change(record, kind, level, at))
    return apply_action(record, step, ACTOR_FOR[step.action_type], at)


def _assert_consistent(record: WarningRecord) -> None:
    assert Level.BLUE <= record.level <= record.peak_level <= Level.RED
    if record.status in (S.ACKNOWLEDGED, S.VERIFIED, S.DISPOSING, S.CLEAR_REQUESTED):
        assert "acknowledged" in record.details
    if record.status in (S.VERIFIED, S.DISPOSING, S.CLEAR_REQUESTED):
        assert "verification" in record.details
    if record.status is S.CLEAR_REQUESTED:
        assert "clear_request" in record.details
    if not record.is_open:
        closure = record.details["closure"]
        assert closure["reason"] in set(ClearReason)
        if closure["by"] != DUTY.user_id:
            assert not closure["confirmed"]


@settings(max_examples=scaled(200), deadline=None)
@given(st.sampled_from(ALL_LEVELS), st.integers(min_value=3, max_value=40), st.data())
def test_no_sequence_of_actions_leaves_a_record_inconsistent(level: int, length: int, data: st.DataObject) -> None:
    record = make_record(level)
    for index in range(length):
        step = data.draw(_steps_for(record))
        at = T0 + 60 * (index + 1)
        was_open, was_archived, peak = record.is_open, record.status is S.ARCHIVED, record.peak_level
        try:
            transition = _step(record, step, at)
        except DomainError:
            continue  # a refused action leaves the record as it was (it is immutable)
        if transition is None:
            continue
        new = transition.record
        assert new.version == record.version + 1
        assert transition.event.version == new.version
        assert transition.event.before_status is record.status
        assert transition.event.after_status is new.status
        if not was_open:
            assert not new.is_open, "a closed warning never reopens"
        if was_archived:
            pytest.fail("an archived warning takes no action at all")
        if was_open and not new.is_open and peak >= Level.ORANGE:
            assert new.details["closure"]["confirmed"], "orange/red close only with the duty centre"
        if was_open and not new.is_open and not new.details["closure"]["confirmed"]:
            assert new.reading_normal and new.peak_level < Level.ORANGE
        _assert_consistent(new)
        record = new
