"""The warning disposal lifecycle (DOMAIN.md §1, §4) as a pure state machine over `WarningRecord`.

    raised ─签收→ acknowledged ─核实→ verified ─开始处置→ disposing ─申请消警→ clear_requested
        clear_requested ─确认消警→ closed ─归档→ archived;   clear_requested ─驳回→ disposing
        verified (核实为误报) ─申请消警(误报)→ clear_requested;   blue/yellow, reading normal: 申请消警 → closed
        any open status ─判定误报 (duty)→ closed

Who may act is `access.py`'s business; this module only knows which status, level and reading allow what.
`apply_action(record, action, actor, now)` returns a `Transition` (the new record, version + 1, and the
`LifecycleEvent` to audit) or raises `InvalidTransition` / `ValidationFailed`; it never mutates its input.

Closing rules:
- A warning whose peak level reached orange or red closes only by the duty centre's confirmation
  (`confirm_closure`, or `mark_false_alarm`), even if the engine has since lowered it.
- A blue/yellow warning closes on the enterprise's clear request itself when the reading is normal again.
- A clear request with reason `disposed` while the reading is still abnormal is refused (`reading_not_normal`), at
  any level: a disposed hazard shows in the data. With reason false alarm / device fault / maintenance the reading
  cannot be trusted, so the request waits in `clear_requested` for the duty centre (blue/yellow included).
- A recovering reading never closes a warning by itself (latched): it stays open until the enterprise reports back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.due import ESCALATIONS_KEY, REMINDER_KEY, Stage, escalated, escalations, stored
from chalicelib.domain.errors import InvalidTransition, ValidationFailed
from chalicelib.domain.levels import LEVEL_BY_CODE, Level
from chalicelib.domain.roles import ROLE_ZH as ROLE_ZH  # noqa: PLC0414 - re-exported: Role lives in roles.py
from chalicelib.domain.roles import Role as Role  # noqa: PLC0414 - re-exported: Role lives in roles.py
from chalicelib.domain.sectors import Sector
from chalicelib.domain.warnings import WarningRecord, WarningStatus

# ---------------------------------------------------------------------------------------------------- actors


class Actor(BaseModel):
    """Who acts: built by the API layer from the authenticated identity, never from the request body."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    user_id: str = Field(min_length=1, max_length=128)
    role: Role
    name: str = ""
    enterprise_id: str | None = None  # enterprise users
    sectors: tuple[Sector, ...] = ()  # regulators (resolved from the department by the API layer)
    department: str | None = None  # regulators: department code (policy.DEPARTMENT_ZH)
    area_codes: tuple[str, ...] = ()  # area users

    @model_validator(mode="after")
    def _has_its_scope(self) -> Actor:
        if self.role is Role.ENTERPRISE and not self.enterprise_id:
            raise ValueError("an enterprise user needs enterprise_id")
        if self.role is Role.REGULATOR and not self.sectors:
            raise ValueError("a regulator needs at least one sector")
        if self.role is Role.AREA and not self.area_codes:
            raise ValueError("an area user needs at least one area code")
        return self


ENGINE_ACTOR = Actor(user_id="engine", role=Role.SYSTEM, name="风险预警模型")

# ---------------------------------------------------------------------------------------------------- codes


class ActionType(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    VERIFY = "verify"
    START_DISPOSAL = "start_disposal"
    REQUEST_CLEAR = "request_clear"
    CONFIRM_CLOSURE = "confirm_closure"
    REJECT_CLEAR = "reject_clear"
    RECORD_CONTACT = "record_contact"
    ESCALATE = "escalate"
    MARK_FALSE_ALARM = "mark_false_alarm"
    REASSIGN = "reassign"
    RECORD_INSPECTION = "record_inspection"
    ISSUE_SUPERVISION = "issue_supervision"
    ARCHIVE = "archive"
    REMIND = "remind"

    @property
    def zh(self) -> str:
        return ACTION_ZH[self]


ACTION_ZH = {
    ActionType.ACKNOWLEDGE: "签收",
    ActionType.VERIFY: "核实",
    ActionType.START_DISPOSAL: "开始处置",
    ActionType.REQUEST_CLEAR: "申请消警",
    ActionType.CONFIRM_CLOSURE: "确认消警",
    ActionType.REJECT_CLEAR: "驳回消警申请",
    ActionType.RECORD_CONTACT: "记录电话/视频督促",
    ActionType.ESCALATE: "升级",
    ActionType.MARK_FALSE_ALARM: "判定误报",
    ActionType.REASSIGN: "改派",
    ActionType.RECORD_INSPECTION: "记录现场核查",
    ActionType.ISSUE_SUPERVISION: "下达督办",
    ActionType.ARCHIVE: "归档",
    ActionType.REMIND: "催办签收",
}


class VerificationOutcome(StrEnum):
    REAL = "real"
    FALSE_ALARM = "false_alarm"
    DEVICE_FAULT = "device_fault"


VERIFICATION_ZH = {
    VerificationOutcome.REAL: "真实报警",
    VerificationOutcome.FALSE_ALARM: "误报",
    VerificationOutcome.DEVICE_FAULT: "设备故障",
}


class ClearReason(StrEnum):
    """消警原因: the codes that feed the false-alarm rate (DOMAIN.md §4, §6)."""

    DISPOSED = "disposed"
    FALSE_ALARM = "false_alarm"
    DEVICE_FAULT = "device_fault"
    MAINTENANCE = "maintenance"


CLEAR_REASON_ZH = {
    ClearReason.DISPOSED: "已处置",
    ClearReason.FALSE_ALARM: "误报",
    ClearReason.DEVICE_FAULT: "设备故障",
    ClearReason.MAINTENANCE: "检修",
}


class ContactChannel(StrEnum):
    PHONE = "phone"
    VIDEO = "video"


class ContactOutcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"


class EscalationTier(IntEnum):
    """DOMAIN.md §4: each missed deadline climbs one tier; the duty centre may also climb by hand."""

    DUTY_FOLLOW_UP = 1  # 值守中心电话/视频督促企业
    REGULATOR_AREA = 2  # 通报行业主管部门和属地
    EMERGENCY_LEADERSHIP = 3  # 报告应急管理局领导


ESCALATION_TIER_ZH = {
    EscalationTier.DUTY_FOLLOW_UP: "值守中心督促",
    EscalationTier.REGULATOR_AREA: "通报行业主管部门和属地",
    EscalationTier.EMERGENCY_LEADERSHIP: "报告应急管理局领导",
}

# ---------------------------------------------------------------------------------------------------- actions

MAX_EVIDENCE = 20


def _object_key(key: str) -> str:
    if key.startswith("/") or ".." in key.split("/") or any(ord(char) < 0x20 for char in key):
        raise ValueError("not a plain object key")
    return key


Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
ObjectKey = Annotated[str, StringConstraints(min_length=1, max_length=512), AfterValidator(_object_key)]
EvidenceKeys = Annotated[tuple[ObjectKey, ...], Field(max_length=MAX_EVIDENCE)]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    note: Note = ""

    @property
    def action_type(self) -> ActionType:
        return ActionType(getattr(self, "type"))  # noqa: B009 - every concrete action declares `type`


class Acknowledge(_Action):
    """签收 (enterprise)."""

    type: Literal["acknowledge"] = "acknowledge"


class Verify(_Action):
    """核实 on site (enterprise): real, false alarm or device fault."""

    type: Literal["verify"] = "verify"
    outcome: VerificationOutcome


class StartDisposal(_Action):
    """处置 begins (enterprise); `note` says what is being done."""

    type: Literal["start_disposal"] = "start_disposal"


class RequestClear(_Action):
    """申请消警 (enterprise): the report back (反馈处置结果) with a reason code, a text and evidence photos."""

    type: Literal["request_clear"] = "request_clear"
    reason: ClearReason
    text: Text
    evidence_keys: EvidenceKeys = ()


class ConfirmClosure(_Action):
    """确认消警 (duty centre; emergency bureau on red)."""

    type: Literal["confirm_closure"] = "confirm_closure"


class RejectClear(_Action):
    """驳回消警申请 (duty centre; emergency bureau on red): back to disposing, with the reason why."""

    type: Literal["reject_clear"] = "reject_clear"
    note: Text


class RecordContact(_Action):
    """电话/视频督促 (duty centre): a contact with the enterprise and how it went."""

    type: Literal["record_contact"] = "record_contact"
    channel: ContactChannel
    outcome: ContactOutcome
    contact_name: Note = ""


class Escalate(_Action):
    """人工升级 (duty centre; emergency bureau on red): to a higher tier only. The workflow (`system`) escalates
    a missed `stage` (签收/核实反馈/消警/确认消警) once per stage and level, whether or not the tier climbs;
    `retell`: a level-up tells the new level's audience of a stage escalated at a lower level."""

    type: Literal["escalate"] = "escalate"
    tier: EscalationTier
    stage: Stage | None = None
    retell: bool = False


class MarkFalseAlarm(_Action):
    """判定误报 (duty centre): closes at once with reason false_alarm; the note justifies it."""

    type: Literal["mark_false_alarm"] = "mark_false_alarm"
    note: Text


class Reassign(_Action):
    """改派 to another contact of the enterprise (duty centre, or the enterprise itself)."""

    type: Literal["reassign"] = "reassign"
    assignee_id: str = Field(min_length=1, max_length=128)
    assignee_name: Note = ""


class RecordInspection(_Action):
    """现场核查 (regulator, area): findings and evidence."""

    type: Literal["record_inspection"] = "record_inspection"
    findings: Text
    evidence_keys: EvidenceKeys = ()


class IssueSupervision(_Action):
    """督办 (regulator, area): an order with a deadline (epoch seconds, after now)."""

    type: Literal["issue_supervision"] = "issue_supervision"
    order: Text
    deadline: float = Field(allow_inf_nan=False)


class Archive(_Action):
    """归档 (duty centre, or the workflow as `system`): only a closed warning."""

    type: Literal["archive"] = "archive"


class Remind(_Action):
    """催办签收 (the workflow as `system`): a reminder to the enterprise while nobody has acknowledged; `slot` is
    the reminder's due time (the next one is due `reminder_s` after it)."""

    type: Literal["remind"] = "remind"
    slot: float = Field(allow_inf_nan=False)


Action = Annotated[
    Acknowledge
    | Verify
    | StartDisposal
    | RequestClear
    | ConfirmClosure
    | RejectClear
    | RecordContact
    | Escalate
    | MarkFalseAlarm
    | Reassign
    | RecordInspection
    | IssueSupervision
    | Archive
    | Remind,
    Field(discriminator="type"),
]
ACTION_ADAPTER: TypeAdapter[Action] = TypeAdapter(Action)


def parse_action(payload: Any) -> Action:
    """A request body (dict or JSON bytes/str) → an `Action`, or `ValidationFailed` listing what is wrong."""
    try:
        if isinstance(payload, str | bytes | bytearray):
            return ACTION_ADAPTER.validate_json(payload)
        return ACTION_ADAPTER.validate_python(payload)
    except ValidationError as exc:
        errors = [
            {"loc": [str(part) for part in error["loc"]], "type": error["type"]}
            for error in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise ValidationFailed("invalid_action", "操作参数不正确", details={"errors": errors}) from exc


# ---------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """One step in a warning's history: what the audit chain records (`audit_fields`)."""

    warning_id: str
    type: str  # an ActionType, or an engine ChangeKind (level_up / level_down / recover)
    actor: str
    role: str
    at: float
    before_status: WarningStatus
    before_level: int
    after_status: WarningStatus
    after_level: int
    reason: str  # a code: clear reason, verification outcome, escalation tier, engine reason; "" if none
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # the record's version after this event

    @property
    def changes_status(self) -> bool:
        return self.before_status is not self.after_status

    def before(self) -> dict[str, Any]:
        return {"status": self.before_status.value, "level": Level(self.before_level).code}

    def after(self) -> dict[str, Any]:
        return {"status": self.after_status.value, "level": Level(self.after_level).code}

    def audit_fields(self) -> dict[str, Any]:
        """Keyword arguments for `audit.next_event` (subject_id = the warning id)."""
        return {
            "subject_id": self.warning_id,
            "type": self.type,
            "actor": self.actor,
            "role": self.role,
            "at": self.at,
            "before": self.before(),
            "after": self.after(),
            "reason": self.reason,
            "data": {**self.data, "version": self.version},
        }


@dataclass(frozen=True, slots=True)
class Transition:
    record: WarningRecord
    event: LifecycleEvent


# ---------------------------------------------------------------------------------------------------- rules

OPEN_STATUSES = frozenset(status for status in WarningStatus if status.is_open)

ALLOWED_FROM: Mapping[ActionType, frozenset[WarningStatus]] = {
    ActionType.ACKNOWLEDGE: frozenset({WarningStatus.RAISED}),
    ActionType.VERIFY: frozenset({WarningStatus.ACKNOWLEDGED}),
    ActionType.START_DISPOSAL: frozenset({WarningStatus.VERIFIED}),
    ActionType.REQUEST_CLEAR: frozenset({WarningStatus.VERIFIED, WarningStatus.DISPOSING}),
    ActionType.CONFIRM_CLOSURE: frozenset({WarningStatus.CLEAR_REQUESTED}),
    ActionType.REJECT_CLEAR: frozenset({WarningStatus.CLEAR_REQUESTED}),
    ActionType.RECORD_CONTACT: OPEN_STATUSES,
    ActionType.ESCALATE: OPEN_STATUSES,
    ActionType.MARK_FALSE_ALARM: OPEN_STATUSES,
    ActionType.REASSIGN: OPEN_STATUSES,
    ActionType.RECORD_INSPECTION: OPEN_STATUSES,
    ActionType.ISSUE_SUPERVISION: OPEN_STATUSES,
    ActionType.ARCHIVE: frozenset({WarningStatus.CLOSED}),
    ActionType.REMIND: frozenset({WarningStatus.RAISED}),
}
"""Statuses from which an action may be attempted; `request_clear` and `confirm_closure` check more (below)."""


def status_allows(record: WarningRecord, action_type: ActionType) -> bool:
    """Whether the record's status admits the action at all (for showing buttons); `apply_action` decides."""
    return record.status in ALLOWED_FROM[action_type]


def needs_duty_confirmation(record: WarningRecord) -> bool:
    """Orange/red (by peak level) always; blue/yellow when the reading is not normal (untrusted reading)."""
    return record.peak_level >= Level.ORANGE or not record.reading_normal


def verification_outcome(record: WarningRecord) -> VerificationOutcome | None:
    verification = record.details.get("verification")
    return VerificationOutcome(verification["outcome"]) if verification else None


def clear_request(record: WarningRecord) -> dict[str, Any] | None:
    request: dict[str, Any] | None = record.details.get("clear_request")
    return request


def escalation_tier(record: WarningRecord) -> int:
    return int(record.details.get("escalation_tier", 0))


def _check_status(record: WarningRecord, action_type: ActionType) -> None:
    if record.status in ALLOWED_FROM[action_type]:
        return
    verb = action_type.zh
    if record.status is WarningStatus.ARCHIVED:
        raise InvalidTransition("warning_archived", f"预警已归档，不能{verb}")
    if record.status is WarningStatus.CLOSED:
        raise InvalidTransition("warning_closed", f"预警已关闭，不能{verb}")
    if action_type is ActionType.ARCHIVE:
        raise InvalidTransition("warning_open", "预警尚未关闭，不能归档")
    raise InvalidTransition(
        "wrong_status",
        f"预警当前为“{record.status.zh}”，不能{verb}",
        details={"status": record.status.value, "allowed": sorted(s.value for s in ALLOWED_FROM[action_type])},
    )


def _by(actor: Actor, now: float) -> dict[str, Any]:
    return {"by": actor.user_id, "name": actor.name, "role": actor.role.value, "at": now}


@dataclass(frozen=True, slots=True)
class _Step:
    status: WarningStatus
    details: dict[str, Any]
    reason: str = ""


def _acknowledge(record: WarningRecord, action: Acknowledge, actor: Actor, now: float) -> _Step:
    return _Step(WarningStatus.ACKNOWLEDGED, {"acknowledged": _by(actor, now)})


def _verify(record: WarningRecord, action: Verify, actor: Actor, now: float) -> _Step:
    verification = {"outcome": action.outcome.value, "note": action.note, **_by(actor, now)}
    return _Step(WarningStatus.VERIFIED, {"verification": verification}, action.outcome.value)


def _start_disposal(record: WarningRecord, action: StartDisposal, actor: Actor, now: float) -> _Step:
    return _Step(WarningStatus.DISPOSING, {"disposal": {"note": action.note, **_by(actor, now)}})


def _closure(reason: str, actor: Actor, now: float, confirmed: bool, note: str = "") -> dict[str, Any]:
    return {"reason": reason, "confirmed": confirmed, "note": note, **_by(actor, now)}


def _request_clear(record: WarningRecord, action: RequestClear, actor: Actor, now: float) -> _Step:
    if record.status is WarningStatus.VERIFIED:
        if verification_outcome(record) is not VerificationOutcome.FALSE_ALARM:
            raise InvalidTransition("disposal_required", "预警核实为真实报警或设备故障，须先开始处置再申请消警")
        if action.reason is not ClearReason.FALSE_ALARM:
            raise InvalidTransition("reason_mismatch", "预警核实为误报，消警原因须为“误报”")
    if action.reason is ClearReason.DISPOSED and not record.reading_normal:
        raise InvalidTransition("reading_not_normal", "监测数据尚未恢复正常，不能以“已处置”申请消警")
    request = {
        "reason": action.reason.value,
        "text": action.text,
        "evidence_keys": list(action.evidence_keys),
        "note": action.note,
        **_by(actor, now),
    }
    if needs_duty_confirmation(record):
        return _Step(WarningStatus.CLEAR_REQUESTED, {"clear_request": request}, action.reason.value)
    closure = _closure(action.reason.value, actor, now, confirmed=False)
    return _Step(WarningStatus.CLOSED, {"clear_request": request, "closure": closure}, action.reason.value)


def _confirm_closure(record: WarningRecord, action: ConfirmClosure, actor: Actor, now: float) -> _Step:
    request = clear_request(record) or {}
    reason = str(request.get("reason", ClearReason.DISPOSED.value))
    if reason == ClearReason.DISPOSED and not record.reading_normal:
        raise InvalidTransition("reading_not_normal", "监测数据再次异常，不能确认消警，请驳回消警申请")
    return _Step(WarningStatus.CLOSED, {"closure": _closure(reason, actor, now, True, action.note)}, reason)


def _reject_clear(record: WarningRecord, action: RejectClear, actor: Actor, now: float) -> _Step:
    request = clear_request(record) or {}
    rejection = {"request_reason": request.get("reason"), "note": action.note, **_by(actor, now)}
    return _Step(WarningStatus.DISPOSING, {"clear_request": None, "clear_rejection": rejection}, "rejected")


def _record_contact(record: WarningRecord, action: RecordContact, actor: Actor, now: float) -> _Step:
    contact = {
        "channel": action.channel.value,
        "outcome": action.outcome.value,
        "contact_name": action.contact_name,
        "note": action.note,
        **_by(actor, now),
    }
    count = int(record.details.get("contact_count", 0)) + 1
    return _Step(record.status, {"last_contact": contact, "contact_count": count}, action.outcome.value)


def _escalate(record: WarningRecord, action: Escalate, actor: Actor, now: float) -> _Step:
    current = escalation_tier(record)
    if action.stage is not None:
        return _escalate_stage(record, action, actor, now)
    if action.tier <= current:
        raise InvalidTransition(
            "already_escalated",
            f"预警已升级至“{ESCALATION_TIER_ZH[EscalationTier(current)]}”，只能向更高层级升级",
            details={"tier": current},
        )
    escalation = {"tier": int(action.tier), "note": action.note, **_by(actor, now)}
    return _Step(record.status, {"escalation_tier": int(action.tier), "escalation": escalation}, str(action.tier))


def _escalate_stage(record: WarningRecord, action: Escalate, actor: Actor, now: float) -> _Step:
    """A missed stage, once per stage and level; the tier climbs when it is higher than the one reached."""
    assert action.stage is not None
    if escalated(record, action.stage, record.level):
        raise InvalidTransition(
            "already_escalated",
            f"预警{action.stage.zh}超时已在{Level(record.level).zh}等级上报",
            details={"tier": escalation_tier(record), "stage": action.stage.value},
        )
    tier = max(escalation_tier(record), int(action.tier))
    entry: dict[str, Any] = {
        "stage": action.stage.value,
        "tier": int(action.tier),
        "level": Level(record.level).code,
        "retell": action.retell,
        "at": now,
        **_settled_due(record, action),
    }
    escalation = {"tier": int(action.tier), "stage": action.stage.value, "note": action.note, **_by(actor, now)}
    details = {
        "escalation_tier": tier,
        "escalation": escalation,
        ESCALATIONS_KEY: [*escalations(record), entry],
    }
    return _Step(record.status, details, f"{action.tier}:{action.stage.value}")


def _settled_due(record: WarningRecord, action: Escalate) -> dict[str, Any]:
    """Which arming (due version) and due time a workflow escalation settles, and for a retell the level it was
    escalated at before: enough to tell people again after a crash between recording and telling."""
    times = stored(record)
    if times is None or action.stage is None:
        return {}
    if not action.retell:
        return {"due_version": times.version, "due_at": times.stage_due(action.stage)}
    earlier = [
        LEVEL_BY_CODE[str(entry["level"])]
        for entry in escalations(record)
        if entry.get("stage") == action.stage.value and str(entry.get("level")) in LEVEL_BY_CODE
    ]
    from_level = Level(max((level for level in earlier if level < record.level), default=record.level)).code
    return {"due_version": times.version, "due_at": times.armed_at, "from_level": from_level}


def _remind(record: WarningRecord, action: Remind, actor: Actor, now: float) -> _Step:
    due = stored(record)
    armed_at = due.armed_at if due is not None else record.raised_at
    previous = record.details.get(REMINDER_KEY) or {}
    count = int(previous.get("count", 0)) + 1
    reminder = {"slot": action.slot, "armed_at": armed_at, "count": count, "at": now}
    if due is not None:
        reminder["due_version"] = due.version
    return _Step(record.status, {REMINDER_KEY: reminder}, str(count))


def _mark_false_alarm(record: WarningRecord, action: MarkFalseAlarm, actor: Actor, now: float) -> _Step:
    reason = ClearReason.FALSE_ALARM.value
    return _Step(WarningStatus.CLOSED, {"closure": _closure(reason, actor, now, True, action.note)}, reason)


def _reassign(record: WarningRecord, action: Reassign, actor: Actor, now: float) -> _Step:
    assignee = {"id": action.assignee_id, "assignee_name": action.assignee_name, "note": action.note}
    return _Step(record.status, {"assignee": {**assignee, **_by(actor, now)}})


def _record_inspection(record: WarningRecord, action: RecordInspection, actor: Actor, now: float) -> _Step:
    inspection = {"findings": action.findings, "evidence_keys": list(action.evidence_keys), **_by(actor, now)}
    count = int(record.details.get("inspection_count", 0)) + 1
    return _Step(record.status, {"last_inspection": inspection, "inspection_count": count})


def _issue_supervision(record: WarningRecord, action: IssueSupervision, actor: Actor, now: float) -> _Step:
    if action.deadline <= now:
        raise ValidationFailed("deadline_not_future", "督办期限须晚于当前时间")
    supervision = {"order": action.order, "deadline": action.deadline, "note": action.note, **_by(actor, now)}
    count = int(record.details.get("supervision_count", 0)) + 1
    return _Step(record.status, {"supervision": supervision, "supervision_count": count})


def _archive(record: WarningRecord, action: Archive, actor: Actor, now: float) -> _Step:
    return _Step(WarningStatus.ARCHIVED, {"archived": _by(actor, now)})


_HANDLERS: Mapping[ActionType, Callable[[WarningRecord, Any, Actor, float], _Step]] = {
    ActionType.ACKNOWLEDGE: _acknowledge,
    ActionType.VERIFY: _verify,
    ActionType.START_DISPOSAL: _start_disposal,
    ActionType.REQUEST_CLEAR: _request_clear,
    ActionType.CONFIRM_CLOSURE: _confirm_closure,
    ActionType.REJECT_CLEAR: _reject_clear,
    ActionType.RECORD_CONTACT: _record_contact,
    ActionType.ESCALATE: _escalate,
    ActionType.MARK_FALSE_ALARM: _mark_false_alarm,
    ActionType.REASSIGN: _reassign,
    ActionType.RECORD_INSPECTION: _record_inspection,
    ActionType.ISSUE_SUPERVISION: _issue_supervision,
    ActionType.ARCHIVE: _archive,
    ActionType.REMIND: _remind,
}


def _merged(details: Mapping[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """`updates` overwrite `details`; an update to None removes the key."""
    merged = {**details, **updates}
    return {key: value for key, value in merged.items() if key not in updates or value is not None}


def apply_action(record: WarningRecord, action: Action, actor: Actor, now: float) -> Transition:
    """One person's (or the workflow's) action on a warning; `access.require_action` must have passed first."""
    action_type = action.action_type
    _check_status(record, action_type)
    step = _HANDLERS[action_type](record, action, actor, now)
    new = replace(
        record,
        status=step.status,
        details=_merged(record.details, step.details),
        updated_at=now,
        version=record.version + 1,
    )
    event = LifecycleEvent(
        warning_id=record.warning_id,
        type=action_type.value,
        actor=actor.user_id,
        role=actor.role.value,
        at=now,
        before_status=record.status,
        before_level=record.level,
        after_status=new.status,
        after_level=new.level,
        reason=step.reason,
        data=action.model_dump(mode="json", exclude={"type"}),
        version=new.version,
    )
    return Transition(new, event)


def apply_engine_change(record: WarningRecord, change: WarningChange) -> Transition | None:
    """The engine's level up/down or recovery, in any open state (status unchanged; a recovery only latches
    `reading_normal`). A repeated raise is a no-op (None). A closed warning takes no change: `warning_closed`."""
    if change.warning_id != record.warning_id:
        raise ValueError(f"change for {change.warning_id} applied to {record.warning_id}")
    if change.kind is ChangeKind.RAISE:
        return None
    if not record.is_open:
        code = "warning_archived" if record.status is WarningStatus.ARCHIVED else "warning_closed"
        raise InvalidTransition(code, f"预警已{'归档' if code == 'warning_archived' else '关闭'}，不能变更等级")
    new = replace(record.apply_engine_change(change), version=record.version + 1)
    event = LifecycleEvent(
        warning_id=record.warning_id,
        type=change.kind.value,
        actor=ENGINE_ACTOR.user_id,
        role=ENGINE_ACTOR.role.value,
        at=change.at,
        before_status=record.status,
        before_level=record.level,
        after_status=new.status,
        after_level=new.level,
        reason=change.reason,
        data={"value": change.value, "unit": change.unit, "flags": list(change.flags), "title": change.title},
        version=new.version,
    )
    return Transition(new, event)
