"""Request and response models of the API, and the route table the OpenAPI document is generated from.

Conventions (docs/api.md):
- pagination: `?limit=` (1..100, default 20) and `?cursor=` (opaque: the position to resume after); a page is
  `{"items": [...], "next_cursor": str | null}`; null means the listing is complete;
- filters: one query parameter per field, given once (a repeated one is 400 `repeated_parameter`); a
  comma-separated value means "any of"; different fields combine with AND; an unknown parameter is a 422 like any
  other invalid value;
- errors: `{"code": str, "message": str (中文), "details"?: ...}`, the codes of `chalicelib/api/errors.py: CODES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, RootModel, model_validator

from chalicelib.api.errors import validated
from chalicelib.domain.declarations import DeclarationReason, DeclarationStatus
from chalicelib.domain.evaluation.rectification import RectificationStatus
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Action, ActionType, Role
from chalicelib.domain.presence import DeviceStatus
from chalicelib.domain.registry import (
    Contact,
    DeviceRegistration,
    Enterprise,
    Location,
    Person,
    Setpoint,
    StaticFactors,
)
from chalicelib.domain.rosters import Shift
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.ports import NewUser

_REQUEST = ConfigDict(extra="forbid", frozen=True)
_RESPONSE = ConfigDict(frozen=True)

T = TypeVar("T")

LevelCode = Literal["blue", "yellow", "orange", "red"]
PersonRole = Literal["enterprise", "duty", "regulator", "area", "emergency", "admin"]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
AreaCode = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
Department = Literal[
    "transport_bureau",
    "traffic_police",
    "emergency_bureau",
    "fire_rescue",
    "housing_construction",
    "development_reform",
    "planning_resources",
]
"""The regulator departments of `policy.DEPARTMENT_ZH` (a unit test keeps the two in step)."""

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
"""Path ids (warning, device, enterprise): anything else is a 404 without a lookup."""


# --- pagination and filters ------------------------------------------------------------------------------------


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


_AnyOf = (BeforeValidator(_comma_list), Field(min_length=1, max_length=20))
Statuses = Annotated[list[WarningStatus], *_AnyOf]
Levels = Annotated[list[LevelCode], *_AnyOf]
Sectors = Annotated[list[Sector], *_AnyOf]
Areas = Annotated[list[AreaCode], *_AnyOf]
Roles = Annotated[list[PersonRole], *_AnyOf]


class PageQuery(BaseModel):
    model_config = _REQUEST
    limit: int = Field(default=20, ge=1, le=100, description="page size, 1..100")
    cursor: str | None = Field(
        default=None, min_length=1, max_length=2048, description="next_cursor of the previous page"
    )


class WarningQuery(PageQuery):
    """GET /warnings and GET /wall."""

    status: Statuses | None = None
    level: Levels | None = None
    sector: Sectors | None = None
    area: Areas | None = None
    overdue: bool | None = Field(default=None, description="true: past any deadline; false: within all")
    open: bool | None = Field(default=None, description="true: open warnings only, sorted by urgency")


class NotificationQuery(PageQuery):
    """GET /me/notifications."""

    unread: bool | None = Field(default=None, description="true: only the notifications not read yet")


class NotificationView(BaseModel):
    """One notification of the caller's inbox (a warning change, a reminder, an escalation, an outage declaration's
    reminder or decision)."""

    model_config = _RESPONSE
    id: str = Field(description="the notification's id, for POST /me/notifications/{notification_id}/read")
    kind: str = Field(
        description="warning_change | reminder | escalation | declaration_reminder | declaration_decision"
    )
    warning_id: str | None = Field(description="the warning it is about; null for a declaration's notice")
    declaration_id: str | None = Field(description="the outage declaration it is about; null for a warning's")
    level: str | None = Field(description="blue | yellow | orange | red; null for a declaration's notice")
    text: str = Field(description="the short text (the SMS form, ≤ 70 characters)")
    detail: str = Field(description="the long form (a warning change's details), or empty")
    at: float = Field(description="when it happened (epoch seconds)")
    read_at: float | None = Field(description="when the caller's inbox marked it read; null: unread")


class UserQuery(PageQuery):
    role: Roles | None = None


class Page(BaseModel, Generic[T]):
    model_config = _RESPONSE
    items: list[T]
    next_cursor: str | None = None


# --- warnings --------------------------------------------------------------------------------------------------


class Deadlines(BaseModel):
    """Epoch seconds by which each step is due, at the warning's current level, armed at the raise or the last
    level change (DOMAIN.md §4; the due times stored on the warning, docs/disposal-workflow.md). `confirm_by`: the
    duty centre's confirmation of an orange/red clear request (null when none is waiting); `next_due`: the earliest
    thing still to happen (a deadline, a reminder; null when nothing is pending)."""

    model_config = _RESPONSE
    acknowledge_by: float
    verify_by: float
    clear_by: float
    confirm_by: float | None = None
    next_due: float | None = None


class Overdue(BaseModel):
    """A step past its stored due time and not done: acknowledge (签收), verify (核实反馈), clear (消警), confirm
    (确认消警, the duty centre)."""

    model_config = _RESPONSE
    acknowledge: bool
    verify: bool
    clear: bool
    confirm: bool = False
    any: bool


# The first fields are the warning's header (`domain.changes.WarningHeader`, filled from `header()`), listed again
# because a pydantic model cannot inherit the slotted dataclass and the published field order has `sector_zh`
# among them (a class docstring would change the OpenAPI document). A unit test keeps the two in step.
class WarningView(BaseModel):
    model_config = _RESPONSE
    warning_id: str
    device_id: str
    enterprise_id: str
    enterprise_name: str
    sector: Sector
    sector_zh: str
    unit_id: str
    unit_name: str
    point_name: str
    area_codes: list[str]
    risk_type: str
    level: str
    level_zh: str
    peak_level: str
    status: WarningStatus
    status_zh: str
    reading_normal: bool
    raised_at: float
    updated_at: float
    title: str
    reason: str
    value: float | None
    unit: str
    flags: list[str]
    details: dict[str, Any]
    version: int
    deadlines: Deadlines
    overdue: Overdue


class TimelineEntry(BaseModel):
    """One step of the warning's history. Enterprise users see staff (duty, regulators, areas, the bureau) by
    `actor_name` and `role` only: `actor`, `source_ip` and `app` are null on those entries."""

    model_config = _RESPONSE
    seq: int | None = Field(description="position in the audit chain; null for an engine log entry not chained")
    source: Literal["audit", "engine_log", "delivery"] = Field(
        description="audit: the chain; engine_log: an engine entry not chained; delivery: a message to a person "
        "(SMS or inbox) and its outcome, shown to staff only"
    )
    type: str
    type_zh: str
    actor: str | None = Field(description="user id; null where the caller may not see it")
    actor_name: str = Field(description="who acted, as a person reads it (name, or the role for old entries)")
    role: str
    role_zh: str
    at: float
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str
    data: dict[str, Any]
    source_ip: str | None = None
    app: str | None = None


class PermittedAction(BaseModel):
    model_config = _RESPONSE
    type: ActionType
    zh: str


class WarningDetail(BaseModel):
    model_config = _RESPONSE
    warning: WarningView
    timeline: list[TimelineEntry]
    permitted_actions: list[PermittedAction]
    audit_seq: int = Field(description="the chain head: events 1..audit_seq make up the warning's audit trail")


class ActionBody(RootModel[Action]):
    """One lifecycle action, chosen by `type` (see docs/api.md for who may take which)."""


def action_body(payload: Any) -> Action:
    """The body of an action request as the `Action` it names, or 422 `invalid_request` (its details name the
    action's `type` when the body has one)."""
    union_tag = payload.get("type") if isinstance(payload, dict) else None
    return validated(ActionBody, payload, union_tag).root


class EvidenceRequest(BaseModel):
    model_config = _REQUEST
    content_type: Literal["image/jpeg", "image/png"]


class EvidenceTicket(BaseModel):
    """Upload the photo with `PUT url` and these headers before `expires_in` seconds; then cite `key` in the
    action's `evidence_keys`."""

    model_config = _RESPONSE
    key: str
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str]
    expires_in: int


class ChainReportView(BaseModel):
    model_config = _RESPONSE
    ok: bool
    first_bad_seq: int | None
    reason: str | None
    reason_zh: str
    checked: int
    head_seq: int


class AuditEventView(BaseModel):
    model_config = _RESPONSE
    seq: int
    type: str
    actor: str
    role: str
    at: float
    before: dict[str, Any]
    after: dict[str, Any]
    reason: str
    data: dict[str, Any]
    source_ip: str | None
    app: str | None
    hash: str


class SubjectAudit(BaseModel):
    model_config = _RESPONSE
    subject_id: str
    report: ChainReportView
    events: list[AuditEventView]


# --- identity --------------------------------------------------------------------------------------------------


class MeView(BaseModel):
    model_config = _RESPONSE
    user_id: str
    name: str
    role: Role
    role_zh: str
    enterprise_id: str | None
    department: str | None
    department_zh: str | None
    sectors: list[Sector]
    area_codes: list[str]


class UserCreate(BaseModel):
    """A new user: the role is its one group; the scope fields its role needs, and no others."""

    model_config = _REQUEST
    username: str = Field(min_length=3, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{2,63}$")
    name: str = Field(min_length=1, max_length=32)
    role: PersonRole
    phone: str | None = Field(default=None, pattern=r"^\+[0-9]{6,15}$")
    enterprise_id: Code | None = None
    department: Department | None = None
    area_codes: list[AreaCode] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _scope_fits_the_role(self) -> UserCreate:
        needs = {"enterprise": "enterprise_id", "regulator": "department", "area": "area_codes"}
        for role, name in needs.items():
            present = bool(getattr(self, name))
            if present != (self.role == role):
                raise ValueError(f"{name} is required for role {role} and not allowed otherwise")
        return self

    def new_user(self) -> NewUser:
        return NewUser(
            username=self.username,
            role=Role(self.role),
            name=self.name,
            phone=self.phone,
            enterprise_id=self.enterprise_id,
            department=self.department,
            area_codes=tuple(self.area_codes),
        )


class UserView(BaseModel):
    model_config = _RESPONSE
    username: str
    name: str
    role: Role | None
    role_zh: str | None
    phone: str | None
    enterprise_id: str | None
    department: str | None
    department_zh: str | None
    area_codes: list[str]
    enabled: bool
    status: str


# --- registry --------------------------------------------------------------------------------------------------


class EnterpriseUpsert(BaseModel):
    """PUT /admin/enterprises/{id}: the profile (its id is the path's); `reason` goes to the audit trail."""

    model_config = _REQUEST
    name: str = Field(min_length=1, max_length=64)
    sector: Sector
    area_codes: list[AreaCode] = Field(default_factory=list, max_length=20)
    contacts: list[Contact] = Field(default_factory=list, max_length=20)
    reason: str = Field(default="", max_length=500)

    def enterprise(self, enterprise_id: str) -> Enterprise:
        return Enterprise(
            enterprise_id=enterprise_id,
            name=self.name,
            sector=self.sector,
            area_codes=tuple(self.area_codes),
            contacts=tuple(self.contacts),
        )


class DeviceUpsert(BaseModel):
    """PUT /admin/devices/{id}: the registration (sector, areas and enterprise name come from the enterprise)."""

    model_config = _REQUEST
    enterprise_id: Code
    unit_id: str = Field(min_length=1, max_length=64)
    unit_name: str = Field(min_length=1, max_length=32)
    point_name: str = Field(default="", max_length=32)
    kind: str = Field(min_length=1, max_length=32)
    setpoints: dict[Annotated[str, Field(min_length=1, max_length=64)], Setpoint] = Field(
        default_factory=dict, max_length=50
    )
    static: StaticFactors = StaticFactors()
    location: Location | None = None
    reason: str = Field(default="", max_length=500)


class EnterpriseChange(BaseModel):
    model_config = _RESPONSE
    enterprise: Enterprise
    changed: bool
    audit_seq: int
    devices_updated: int = 0


class DeviceChange(BaseModel):
    model_config = _RESPONSE
    device: DeviceRegistration
    changed: bool
    audit_seq: int


# --- people and rosters ----------------------------------------------------------------------------------------


class PeopleQuery(PageQuery):
    """GET /admin/people: by (role, person id)."""

    role: Roles | None = None


class PersonUpsert(BaseModel):
    """PUT /admin/people/{person_id}: a person behind an audience (staff: `person_id` is their API user id). The
    scope fields its role needs, and no others: `enterprise_id` (enterprise), `department` (regulator),
    `area_codes` (area). `phone` in E.164 (`+8613800138000`), else 422 `invalid_phone`."""

    model_config = _REQUEST
    name: str = Field(min_length=1, max_length=32)
    role: PersonRole
    phone: str = Field(min_length=1, max_length=32)
    department: Department | None = None
    sectors: list[Sector] = Field(default_factory=list, max_length=10)
    area_codes: list[AreaCode] = Field(default_factory=list, max_length=20)
    enterprise_id: Code | None = None
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _scope_fits_the_role(self) -> PersonUpsert:
        needs = {"enterprise": "enterprise_id", "regulator": "department", "area": "area_codes"}
        for role, name in needs.items():
            if bool(getattr(self, name)) != (self.role == role):
                raise ValueError(f"{name} is required for role {role} and not allowed otherwise")
        return self

    def fields(self, person_id: str) -> dict[str, Any]:
        return {"person_id": person_id, **self.model_dump(exclude={"reason"})}


class PersonChange(BaseModel):
    model_config = _RESPONSE
    person: Person
    changed: bool
    audit_seq: int


class ShiftQuery(BaseModel):
    """GET /admin/rosters/duty/shifts: the shifts sharing an instant with `[from, to)` (epoch seconds; default
    now and 24 hours later; at most 31 days)."""

    model_config = _REQUEST
    start: int | None = Field(default=None, alias="from", ge=0, description="epoch seconds; default: now")
    to: int | None = Field(default=None, ge=0, description="epoch seconds; default: from + 24 h")


class ShiftUpsert(BaseModel):
    """PUT /admin/rosters/duty/shifts/{shift_id}: a duty officer's shift `[starts_at, ends_at)` (epoch seconds,
    at most 24 h; at the handover instant the incoming officer is on duty)."""

    model_config = _REQUEST
    person_id: Code
    starts_at: int = Field(ge=0)
    ends_at: int = Field(ge=0)
    note: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=500)

    def shift(self, shift_id: str) -> Shift:
        return Shift(
            shift_id=shift_id,
            person_id=self.person_id,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            note=self.note,
        )


class ReasonBody(BaseModel):
    """An optional body for a deletion: why (the audit trail's `reason`)."""

    model_config = _REQUEST
    reason: str = Field(default="", max_length=500)


class ShiftChange(BaseModel):
    model_config = _RESPONSE
    shift: Shift
    changed: bool
    deleted: bool = False
    audit_seq: int


class OnDutyUpsert(BaseModel):
    """PUT /admin/enterprises/{enterprise_id}/on-duty: the enterprise's on-duty person(s) (专人, 第十四条):
    registered people of role `enterprise` of this enterprise; an empty list names nobody."""

    model_config = _REQUEST
    person_ids: list[Code] = Field(max_length=5)
    reason: str = Field(default="", max_length=500)


class OnDutyView(BaseModel):
    model_config = _RESPONSE
    enterprise_id: str
    person_ids: list[str]
    people: list[Person]
    changed: bool | None = Field(default=None, description="PUT only: this call changed the enterprise")
    audit_seq: int | None = Field(default=None, description="PUT only: the enterprise's audit chain head")


class ErrorBody(BaseModel):
    """Every error: `code` for programs (docs/api.md "Error codes"), `message` in Chinese for people, `details`
    for some codes (`invalid_request`: `{"errors": [{"field", "code"}], "total"}`; `wrong_status`: `status`,
    `allowed`; `already_escalated`: `tier`)."""

    model_config = _RESPONSE
    code: str
    message: str
    details: Any = None


class Health(BaseModel):
    model_config = _RESPONSE
    status: str
    stage: str


# --- the route table -------------------------------------------------------------------------------------------

ALL_ROLES: tuple[str, ...] = ("enterprise", "duty", "regulator", "area", "emergency", "admin")


@dataclass(frozen=True)
class RouteDoc:
    method: str
    path: str
    operation_id: str
    summary: str
    roles: tuple[str, ...]
    response: Any
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    codes: tuple[str, ...] = ()
    tag: str = "warnings"
    public: bool = False
    etag: bool = False
    """Answers with an `ETag`, and 304 without a body to a matching `If-None-Match` (app.py `api_route`)."""

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The codes this operation may answer with (every operation may answer `internal`)."""
        read = _QUERY if self.query is not None else ()
        written = _BODY if self.body is not None else ()
        who = () if self.public else _AUTH
        return tuple(dict.fromkeys((*who, *read, *written, *self.codes, "internal")))


_AUTH = ("unauthenticated", "token_expired", "invalid_token", "auth_unavailable", "no_role", "scope_missing")
_QUERY = ("repeated_parameter", "invalid_request", "invalid_cursor")
_BODY = ("payload_too_large", "unsupported_media_type", "invalid_json", "invalid_request")
_ROLE = ("role_not_permitted",)
_LIFECYCLE = (
    "wrong_status",
    "warning_closed",
    "warning_archived",
    "warning_open",
    "disposal_required",
    "reason_mismatch",
    "reading_not_normal",
    "already_escalated",
    "red_level_only",
    "conflict",
    "deadline_not_future",
    "evidence_outside_warning",
    "assignee_not_in_enterprise",
    "users_unavailable",
)
ROUTES: tuple[RouteDoc, ...] = (
    RouteDoc("GET", "/health", "health", "存活检查", (), Health, tag="system", public=True),
    RouteDoc("GET", "/me", "me", "当前用户（身份与数据范围来自令牌）", ALL_ROLES, MeView, tag="identity"),
    RouteDoc(
        "GET",
        "/me/notifications",
        "listNotifications",
        "我的通知（站内信：本企业/本部门/本属地/值守中心/应急管理局的收件箱；最新在前；可只看未读）",
        ALL_ROLES,
        Page[NotificationView],
        query=NotificationQuery,
        tag="identity",
    ),
    RouteDoc(
        "POST",
        "/me/notifications/{notification_id}/read",
        "readNotification",
        "标记一条通知为已读（只能标记自己收件箱里的通知）",
        ALL_ROLES,
        NotificationView,
        codes=("notification_not_found",),
        tag="identity",
    ),
    RouteDoc(
        "GET",
        "/warnings",
        "listWarnings",
        "预警列表（按角色范围；最新在前；只查未闭环预警时按紧急程度排序）",
        ALL_ROLES,
        Page[WarningView],
        query=WarningQuery,
    ),
    RouteDoc(
        "GET",
        "/wall",
        "wall",
        "值守大屏：未闭环预警，红色在前、同级最早在前",
        ("duty", "regulator", "area", "emergency"),
        Page[WarningView],
        query=WarningQuery,
        codes=_ROLE,
        etag=True,
    ),
    RouteDoc(
        "GET",
        "/warnings/{warning_id}",
        "getWarning",
        "预警详情、完整时间线、时限与当前可执行操作",
        ALL_ROLES,
        WarningDetail,
        codes=("warning_not_found",),
    ),
    RouteDoc(
        "POST",
        "/warnings/{warning_id}/actions",
        "act",
        "对预警执行一项处置操作（签收、核实、处置、申请消警、确认消警、督促、升级、核查、督办、归档…）",
        ("enterprise", "duty", "regulator", "area", "emergency"),
        WarningView,
        body=ActionBody,
        codes=(*_ROLE, "warning_not_found", *_LIFECYCLE),
    ),
    RouteDoc(
        "POST",
        "/warnings/{warning_id}/evidence",
        "evidenceUpload",
        "申请上传现场照片（预签名 S3 PUT 地址）",
        ("enterprise", "regulator", "area"),
        EvidenceTicket,
        status=201,
        body=EvidenceRequest,
        codes=(*_ROLE, "warning_not_found", "warning_closed", "evidence_unavailable"),
    ),
    RouteDoc(
        "GET",
        "/warnings/{warning_id}/audit",
        "verifyWarningChain",
        "校验预警审计链（篡改、删除、截断）",
        ("duty", "admin"),
        ChainReportView,
        codes=(*_ROLE, "warning_not_found"),
        tag="audit",
    ),
    RouteDoc(
        "GET",
        "/admin/enterprises/{enterprise_id}",
        "getEnterprise",
        "企业登记信息",
        ("admin",),
        Enterprise,
        codes=(*_ROLE, "enterprise_not_found"),
        tag="admin",
    ),
    RouteDoc(
        "PUT",
        "/admin/enterprises/{enterprise_id}",
        "putEnterprise",
        "登记或修改企业（留痕）",
        ("admin",),
        EnterpriseChange,
        body=EnterpriseUpsert,
        codes=(*_ROLE, "enterprise_not_found", "sector_locked", "conflict"),
        tag="admin",
    ),
    RouteDoc(
        "GET",
        "/admin/enterprises/{enterprise_id}/audit",
        "enterpriseAudit",
        "企业登记变更记录及审计链校验",
        ("admin",),
        SubjectAudit,
        codes=(*_ROLE, "enterprise_not_found"),
        tag="admin",
    ),
    RouteDoc(
        "GET",
        "/admin/devices/{device_id}",
        "getDevice",
        "设备登记信息（含报警设定值）",
        ("admin",),
        DeviceRegistration,
        codes=(*_ROLE, "device_not_found"),
        tag="admin",
    ),
    RouteDoc(
        "PUT",
        "/admin/devices/{device_id}",
        "putDevice",
        "登记或修改设备及报警设定值（留痕）",
        ("admin",),
        DeviceChange,
        body=DeviceUpsert,
        codes=(*_ROLE, "device_not_found", "unknown_enterprise", "conflict"),
        tag="admin",
    ),
    RouteDoc(
        "GET",
        "/admin/devices/{device_id}/audit",
        "deviceAudit",
        "设备登记与设定值变更记录及审计链校验",
        ("admin",),
        SubjectAudit,
        codes=(*_ROLE, "device_not_found"),
        tag="admin",
    ),
    RouteDoc(
        "POST",
        "/admin/users",
        "createUser",
        "创建用户（角色与数据范围）",
        ("admin",),
        UserView,
        status=201,
        body=UserCreate,
        codes=(*_ROLE, "unknown_enterprise", "user_exists", "invalid_user", "users_unavailable"),
        tag="admin",
    ),
    RouteDoc(
        "GET",
        "/admin/users",
        "listUsers",
        "用户列表（按角色）",
        ("admin",),
        Page[UserView],
        query=UserQuery,
        codes=(*_ROLE, "users_unavailable"),
        tag="admin",
    ),
    RouteDoc(
        "GET",
        "/admin/people",
        "listPeople",
        "人员列表（接收预警的人员及其手机号，按角色）",
        ("admin", "duty"),
        Page[Person],
        query=PeopleQuery,
        codes=_ROLE,
        tag="rosters",
    ),
    RouteDoc(
        "GET",
        "/admin/people/{person_id}",
        "getPerson",
        "人员信息",
        ("admin", "duty"),
        Person,
        codes=(*_ROLE, "person_not_found"),
        tag="rosters",
    ),
    RouteDoc(
        "PUT",
        "/admin/people/{person_id}",
        "putPerson",
        "登记或修改人员（手机号、部门、行业、属地、企业；留痕）",
        ("admin",),
        PersonChange,
        body=PersonUpsert,
        codes=(*_ROLE, "person_not_found", "invalid_phone", "unknown_enterprise", "conflict"),
        tag="rosters",
    ),
    RouteDoc(
        "GET",
        "/admin/people/{person_id}/audit",
        "personAudit",
        "人员信息变更记录及审计链校验",
        ("admin", "duty"),
        SubjectAudit,
        codes=(*_ROLE, "person_not_found"),
        tag="rosters",
    ),
    RouteDoc(
        "GET",
        "/admin/rosters/duty/shifts",
        "listDutyShifts",
        "值守中心值班表（与查询时段有交集的班次）",
        ("admin", "duty"),
        Page[Shift],
        query=ShiftQuery,
        codes=(*_ROLE, "invalid_range"),
        tag="rosters",
    ),
    RouteDoc(
        "PUT",
        "/admin/rosters/duty/shifts/{shift_id}",
        "putDutyShift",
        "登记或修改值班班次（留痕）",
        ("admin", "duty"),
        ShiftChange,
        body=ShiftUpsert,
        codes=(
            *_ROLE,
            "shift_not_found",
            "shift_not_after_start",
            "shift_too_long",
            "shift_in_past",
            "unknown_person",
            "person_not_on_roster",
            "conflict",
        ),
        tag="rosters",
    ),
    RouteDoc(
        "DELETE",
        "/admin/rosters/duty/shifts/{shift_id}",
        "deleteDutyShift",
        "删除值班班次（留痕）",
        ("admin", "duty"),
        ShiftChange,
        body=ReasonBody,
        codes=(*_ROLE, "shift_not_found", "conflict"),
        tag="rosters",
    ),
    RouteDoc(
        "GET",
        "/admin/rosters/duty/shifts/{shift_id}/audit",
        "dutyShiftAudit",
        "班次变更记录及审计链校验",
        ("admin", "duty"),
        SubjectAudit,
        codes=(*_ROLE, "shift_not_found"),
        tag="rosters",
    ),
    RouteDoc(
        "GET",
        "/admin/enterprises/{enterprise_id}/on-duty",
        "getOnDuty",
        "企业值班专人（第十四条）",
        ("admin", "duty"),
        OnDutyView,
        codes=(*_ROLE, "enterprise_not_found"),
        tag="rosters",
    ),
    RouteDoc(
        "PUT",
        "/admin/enterprises/{enterprise_id}/on-duty",
        "putOnDuty",
        "指定企业值班专人（留痕）",
        ("admin", "duty"),
        OnDutyView,
        body=OnDutyUpsert,
        codes=(*_ROLE, "enterprise_not_found", "on_duty_not_in_enterprise", "conflict"),
        tag="rosters",
    ),
)


# --- outage declarations (申报) --------------------------------------------------------------------------------

DeclarationStatuses = Annotated[list[DeclarationStatus], *_AnyOf]


class DeclarationCreate(BaseModel):
    """POST /declarations: the devices (or a whole unit: its devices now), the reason and the half-open window
    [starts_at, ends_at) in epoch seconds. An enterprise user declares for its own enterprise (`enterprise_id`
    may be left out); the administrator names it."""

    model_config = _REQUEST
    enterprise_id: Code | None = None
    device_ids: list[Code] | None = Field(default=None, min_length=1, max_length=200)
    unit_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    reason: DeclarationReason
    starts_at: float = Field(gt=0, allow_inf_nan=False)
    ends_at: float = Field(gt=0, allow_inf_nan=False)
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _devices_or_a_unit(self) -> DeclarationCreate:
        if (self.device_ids is None) == (self.unit_id is None):
            raise ValueError("give device_ids or unit_id, not both")
        return self


class DeclarationDecision(BaseModel):
    """POST /declarations/{id}/approve and /withdraw: an optional note for the audit trail."""

    model_config = _REQUEST
    note: str = Field(default="", max_length=500)


class DeclarationRejection(BaseModel):
    """POST /declarations/{id}/reject: the reason is required (it goes to the declarer and the audit trail)."""

    model_config = _REQUEST
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


class DeclarationQuery(PageQuery):
    """GET /declarations: without `enterprise_id`, the open declarations (pending, approved) in scope, by end; with
    it, that enterprise's history, the newest first (an enterprise user always gets its own). A page at a time."""

    status: DeclarationStatuses | None = None
    enterprise_id: Code | None = None


class DeclarationView(BaseModel):
    model_config = _RESPONSE
    declaration_id: str
    enterprise_id: str
    enterprise_name: str
    sector: Sector
    area_codes: list[str]
    device_ids: list[str]
    unit_id: str | None
    reason: DeclarationReason
    reason_zh: str
    starts_at: float
    ends_at: float
    note: str
    status: DeclarationStatus = Field(description="as it stands now: an ended window is expired")
    status_zh: str
    in_effect: bool = Field(description="suppressing its devices' offline and data-quality warnings now")
    declared_by: str
    verified_by: str | None
    verified_at: float | None
    rejection_reason: str | None
    withdrawn_by: str | None
    reminded_at: float | None
    created_at: float
    updated_at: float
    version: int


class DeclarationList(BaseModel):
    model_config = _RESPONSE
    items: list[DeclarationView]
    next_cursor: str | None = Field(
        default=None, description="the next page (null: this was the last; a short page may still have one)"
    )


class SuppressedFindingView(BaseModel):
    model_config = _RESPONSE
    warning_id: str = Field(description="the warning it would have been: no warning exists under this id")
    device_id: str
    enterprise_id: str
    point_name: str
    risk_type: str
    risk_name: str = Field(description="the risk type's Chinese name")
    reason: str = Field(description="what was found, e.g. stuck_value, config_mismatch, long_manual, offline")
    title: str
    level: LevelCode
    at: float = Field(description="when it was found (epoch seconds)")
    params: dict[str, Any]


class SuppressedFindingList(BaseModel):
    """GET /declarations/{declaration_id}/findings: what the declaration suppressed (recorded, never raised or
    told: DOMAIN.md §5), the newest first."""

    model_config = _RESPONSE
    declaration_id: str
    items: list[SuppressedFindingView]
    truncated: bool = Field(description="more were recorded than `limit`")


class SuppressedFindingQuery(BaseModel):
    model_config = _REQUEST
    limit: int = Field(default=200, ge=1, le=1000)


_DECLARATION_LIFECYCLE = ("declaration_not_found", "declaration_not_pending", "conflict")
DECLARATION_ROUTES: tuple[RouteDoc, ...] = (
    RouteDoc(
        "POST",
        "/declarations",
        "declare",
        "申报停传或数据失真（停产检修须事先核准；设备损坏、数据失真可在开始后补报）",
        ("enterprise", "admin"),
        DeclarationView,
        status=201,
        body=DeclarationCreate,
        codes=(
            *_ROLE,
            "other_enterprise",
            "unknown_enterprise",
            "device_not_in_enterprise",
            "too_many_devices",
            "invalid_window",
            "window_too_long",
            "retroactive_window",
            "declaration_overlaps",
            "conflict",
        ),
        tag="declarations",
    ),
    RouteDoc(
        "GET",
        "/declarations",
        "listDeclarations",
        "申报列表（按角色范围；默认为待核实与已核准的申报）",
        ALL_ROLES,
        DeclarationList,
        query=DeclarationQuery,
        tag="declarations",
    ),
    RouteDoc(
        "GET",
        "/declarations/{declaration_id}",
        "getDeclaration",
        "申报详情",
        ALL_ROLES,
        DeclarationView,
        codes=("declaration_not_found",),
        tag="declarations",
    ),
    RouteDoc(
        "POST",
        "/declarations/{declaration_id}/approve",
        "approveDeclaration",
        "核准申报（行业主管部门）",
        ("regulator", "admin"),
        DeclarationView,
        body=DeclarationDecision,
        codes=(*_ROLE, *_DECLARATION_LIFECYCLE),
        tag="declarations",
    ),
    RouteDoc(
        "POST",
        "/declarations/{declaration_id}/reject",
        "rejectDeclaration",
        "驳回申报（行业主管部门，须说明理由）",
        ("regulator", "admin"),
        DeclarationView,
        body=DeclarationRejection,
        codes=(*_ROLE, *_DECLARATION_LIFECYCLE, "rejection_reason_required"),
        tag="declarations",
    ),
    RouteDoc(
        "POST",
        "/declarations/{declaration_id}/withdraw",
        "withdrawDeclaration",
        "撤回申报（开始前）",
        ("enterprise", "admin"),
        DeclarationView,
        body=DeclarationDecision,
        codes=(*_ROLE, *_DECLARATION_LIFECYCLE, "declaration_started"),
        tag="declarations",
    ),
    RouteDoc(
        "GET",
        "/declarations/{declaration_id}/findings",
        "declarationFindings",
        "申报期间被豁免的发现（已记录、未预警、未通知）",
        ALL_ROLES,
        SuppressedFindingList,
        query=SuppressedFindingQuery,
        codes=("declaration_not_found",),
        tag="declarations",
    ),
    RouteDoc(
        "GET",
        "/declarations/{declaration_id}/audit",
        "declarationAudit",
        "申报审计记录及审计链校验",
        ("duty", "regulator", "emergency", "admin"),
        SubjectAudit,
        codes=(*_ROLE, "declaration_not_found"),
        tag="audit",
    ),
)
ROUTES = (*ROUTES, *DECLARATION_ROUTES)


# --- evaluation reports (评估报告): docs/evaluation.md "Runs, storage and reads"


class EvaluationCreate(BaseModel):
    """POST /evaluations: the period to evaluate — a month (`year`, `number` 1..12), a quarter (1..4), a year, or a
    custom window [`start`, `end`) in epoch seconds (whole seconds; ended; from a minute to 31 days)."""

    model_config = _REQUEST
    kind: Literal["month", "quarter", "year", "custom"]
    year: int | None = Field(default=None, ge=2000, le=2100, description="month, quarter, year")
    number: int | None = Field(default=None, ge=1, le=12, description="the month 1..12 or the quarter 1..4")
    start: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="custom: epoch seconds")
    end: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="custom: epoch s, exclusive")

    @model_validator(mode="after")
    def _a_calendar_period_or_a_window(self) -> EvaluationCreate:
        if self.kind == "custom":
            if self.start is None or self.end is None or self.year is not None or self.number is not None:
                raise ValueError("a custom window is start and end, without year or number")
        elif self.year is None or self.start is not None or self.end is not None:
            raise ValueError("a calendar period is year (and number), without start or end")
        return self


class EvaluationQuery(BaseModel):
    model_config = _REQUEST
    limit: int = Field(default=50, ge=1, le=200)


class EvaluationDownloadQuery(BaseModel):
    model_config = _REQUEST
    format: Literal["xlsx", "html"] = "xlsx"


class EvaluationEntryView(BaseModel):
    model_config = _RESPONSE
    report_id: str = Field(description="`{kind}-{label}`: one report per period, replaced by a re-run")
    kind: str
    label: str = Field(description="2025-03, 2025-Q1, 2025")
    start: float
    end: float
    generated_at: float
    requested_by: str
    formats: list[str] = Field(description="the downloadable artifacts")
    counts: dict[str, int]
    status: str = Field(
        description="done; an on-demand run answered 202: queued, then running, then done (or failed). "
        "Until done, `formats`, `counts` and the report are the period's previous run's, if any"
    )


class EvaluationList(BaseModel):
    model_config = _RESPONSE
    items: list[EvaluationEntryView]


class EvaluationReportView(BaseModel):
    model_config = _RESPONSE
    entry: EvaluationEntryView
    report: dict[str, Any] = Field(description="the report cut to the caller's scope")


class EvaluationDownload(BaseModel):
    model_config = _RESPONSE
    report_id: str
    format: str
    url: str = Field(description="presigned GET of this run's version of the artifact")
    expires_in: int


_EVALUATION_RUN = ("invalid_period", "period_not_ended", "evaluation_unavailable", "conflict")
EVALUATION_ROUTES: tuple[RouteDoc, ...] = (
    RouteDoc(
        "POST",
        "/evaluations",
        "runEvaluation",
        "按需评估一个已结束的评估期或自定义时段（值守中心、管理员；异步执行：返回 202 与排队状态，"
        "以 GET /evaluations/{report_id} 查看进度；同一评估期重复评估则替换报告）",
        ("duty", "admin"),
        EvaluationEntryView,
        status=202,
        body=EvaluationCreate,
        codes=(*_ROLE, *_EVALUATION_RUN),
        tag="evaluations",
    ),
    RouteDoc(
        "GET",
        "/evaluations",
        "listEvaluations",
        "评估报告目录（最新评估期在前）",
        ALL_ROLES,
        EvaluationList,
        query=EvaluationQuery,
        codes=("evaluation_unavailable",),
        tag="evaluations",
    ),
    RouteDoc(
        "GET",
        "/evaluations/{report_id}",
        "getEvaluation",
        "评估报告（按角色范围：企业为本企业及总体，行业部门为本行业，属地为本辖区；entry.status 为按需评估的进度："
        "queued、running、done、failed，首次评估完成前 report 为空）",
        ALL_ROLES,
        EvaluationReportView,
        codes=("evaluation_not_found", "evaluation_unavailable"),
        tag="evaluations",
    ),
    RouteDoc(
        "GET",
        "/evaluations/{report_id}/download",
        "downloadEvaluation",
        "下载评估报告全文（XLSX 或 HTML，预签名链接；值守中心、应急管理局、管理员）",
        ("duty", "emergency", "admin"),
        EvaluationDownload,
        query=EvaluationDownloadQuery,
        codes=("report_download_scoped", "evaluation_not_found", "evaluation_unavailable"),
        tag="evaluations",
    ),
)
ROUTES = (*ROUTES, *EVALUATION_ROUTES)


# --- 通报 and rectification (整改事项): docs/evaluation.md "通报 and rectification"

RectificationStatuses = Annotated[list[RectificationStatus], *_AnyOf]


class PublicationView(BaseModel):
    model_config = _RESPONSE
    report_id: str
    version: str = Field(description="the report version published (its JSON's S3 version id)")
    published_at: float
    published_by: str
    jobs: int = Field(description="delivery jobs queued: one per enterprise, department, area, and the centre")
    rectifications: int = Field(description="rectification items the report asks for")
    enterprises_rectifying: int
    versions: list[str] = Field(description="every version of the report published, oldest first")
    already_published: bool = Field(description="this version was published before: nobody was told again")


class RectificationQuery(PageQuery):
    """GET /rectifications: the items in the caller's scope (an enterprise user: its own, the newest first; the
    others by deadline). A page at a time."""

    status: RectificationStatuses | None = None
    enterprise_id: Code | None = None
    report_id: Code | None = None
    overdue: bool | None = None


class RectificationAnswerBody(BaseModel):
    """POST /rectifications/{id}/answer: what was done, and the evidence uploaded for this item
    (`POST /rectifications/{id}/evidence`)."""

    model_config = _REQUEST
    note: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    evidence_keys: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(default=[], max_length=9)


class RectificationAcceptBody(BaseModel):
    model_config = _REQUEST
    note: str = Field(default="", max_length=500)


class RectificationReturnBody(BaseModel):
    model_config = _REQUEST
    reason: str = Field(min_length=1, max_length=500, pattern=r"\S")


class RectificationView(BaseModel):
    model_config = _RESPONSE
    rectification_id: str
    report_id: str
    period_label: str
    enterprise_id: str
    enterprise_name: str
    sector: Sector
    area_codes: list[str]
    problem: str
    problem_zh: str
    title: str
    requirement: str
    score: float
    band: str
    deadline: float
    status: RectificationStatus
    status_zh: str
    overdue: bool = Field(description="past the deadline and not accepted (now)")
    issued_by: str
    created_at: float
    updated_at: float
    answer_note: str | None
    evidence_keys: list[str]
    answered_by: str | None
    answered_at: float | None
    answers: int
    reviewed_by: str | None
    reviewed_at: float | None
    return_reason: str | None
    accepted_at: float | None
    version: int


class RectificationList(BaseModel):
    model_config = _RESPONSE
    items: list[RectificationView]
    next_cursor: str | None = Field(
        default=None, description="the next page (null: this was the last; a short page may still have one)"
    )


_RECTIFICATION = ("rectification_not_found",)
RECTIFICATION_ROUTES: tuple[RouteDoc, ...] = (
    RouteDoc(
        "POST",
        "/evaluations/{report_id}/publish",
        "publishEvaluation",
        "通报评估结果：各企业（站内信+短信）、监管部门、属地、值守中心和应急管理局（站内信）收到各自的结果；"
        "低于阈值的企业生成整改事项（同一版本重复通报不重复通知）",
        ("duty", "admin"),
        PublicationView,
        codes=(*_ROLE, "evaluation_not_found", "evaluation_unavailable", "conflict"),
        tag="evaluations",
    ),
    RouteDoc(
        "GET",
        "/rectifications",
        "listRectifications",
        "整改事项列表（按角色范围：企业为本企业，行业部门为本行业，属地为本辖区）",
        ALL_ROLES,
        RectificationList,
        query=RectificationQuery,
        codes=("evaluation_unavailable",),
        tag="evaluations",
    ),
    RouteDoc(
        "GET",
        "/rectifications/{rectification_id}",
        "getRectification",
        "整改事项详情",
        ALL_ROLES,
        RectificationView,
        codes=(*_RECTIFICATION, "evaluation_unavailable"),
        tag="evaluations",
    ),
    RouteDoc(
        "POST",
        "/rectifications/{rectification_id}/evidence",
        "rectificationEvidenceUpload",
        "获取整改材料照片的上传地址（企业）",
        ("enterprise", "admin"),
        EvidenceTicket,
        status=201,
        body=EvidenceRequest,
        codes=(*_ROLE, *_RECTIFICATION, "evidence_unavailable", "evaluation_unavailable"),
        tag="evaluations",
    ),
    RouteDoc(
        "POST",
        "/rectifications/{rectification_id}/answer",
        "answerRectification",
        "答复整改事项（企业：整改情况说明及材料；退回后可再次答复）",
        ("enterprise", "admin"),
        RectificationView,
        body=RectificationAnswerBody,
        codes=(
            *_ROLE,
            *_RECTIFICATION,
            "rectification_not_answerable",
            "answer_note_required",
            "evidence_outside_rectification",
            "too_much_evidence",
            "conflict",
            "evaluation_unavailable",
        ),
        tag="evaluations",
    ),
    RouteDoc(
        "POST",
        "/rectifications/{rectification_id}/accept",
        "acceptRectification",
        "验收整改事项（行业主管部门、值守中心）",
        ("regulator", "duty", "admin"),
        RectificationView,
        body=RectificationAcceptBody,
        codes=(*_ROLE, *_RECTIFICATION, "rectification_not_answered", "conflict", "evaluation_unavailable"),
        tag="evaluations",
    ),
    RouteDoc(
        "POST",
        "/rectifications/{rectification_id}/return",
        "returnRectification",
        "退回整改事项（行业主管部门、值守中心；须说明理由）",
        ("regulator", "duty", "admin"),
        RectificationView,
        body=RectificationReturnBody,
        codes=(
            *_ROLE,
            *_RECTIFICATION,
            "rectification_not_answered",
            "return_reason_required",
            "conflict",
            "evaluation_unavailable",
        ),
        tag="evaluations",
    ),
    RouteDoc(
        "GET",
        "/rectifications/{rectification_id}/audit",
        "rectificationAudit",
        "整改事项审计记录及审计链校验",
        ("duty", "regulator", "emergency", "admin"),
        SubjectAudit,
        codes=(*_ROLE, *_RECTIFICATION, "evaluation_unavailable"),
        tag="audit",
    ),
)
ROUTES = (*ROUTES, *RECTIFICATION_ROUTES)


# --- device status (docs/offline-watch.md "Device status") -----------------------------------------------------


class DeviceStatusQuery(BaseModel):
    """GET /devices: the devices in the caller's scope, by status (an enterprise user: its own)."""

    model_config = _REQUEST
    status: DeviceStatus | None = Field(default=None, description="online, offline, declared or never_seen")
    enterprise_id: Code | None = None
    limit: int = Field(default=500, ge=1, le=2000, description="page size, 1..2000")
    cursor: str | None = Field(
        default=None, min_length=1, max_length=2048, description="next_cursor of the previous page"
    )


class LastFix(BaseModel):
    model_config = _RESPONSE
    lat: float = Field(description="WGS-84 latitude, degrees")
    lon: float = Field(description="WGS-84 longitude, degrees")
    at: float = Field(description="the time of the report that carried it (epoch s)")


class DeviceStatusView(BaseModel):
    model_config = _RESPONSE
    device_id: str
    enterprise_id: str
    enterprise_name: str
    sector: Sector
    unit_id: str
    point_name: str
    kind: str
    area_codes: list[str]
    status: DeviceStatus
    status_zh: str
    last_seen: float | None = Field(
        description="its newest graded reading as its state was last written (epoch s): on a change, else at least"
        " every 2 h (DYJ_STATE_TOUCH_S); status, not last_seen, says whether it is online"
    )
    offline_since: float | None = Field(description="its last sign of life, while offline (declared or not)")
    declaration_id: str | None = Field(description="the declaration excusing it now")
    location: Location | None = Field(
        default=None, description="where it is registered (fixed devices; null for a vehicle, or unregistered)"
    )
    last_fix: LastFix | None = Field(
        default=None,
        description="a vehicle's last GNSS fix (road_transport; as its state was last written: when it starts or"
        " stops moving or its risk changes, else at least every 2 h); null for fixed devices and for a vehicle"
        " that has reported no position",
    )


class DeviceStatusPage(BaseModel):
    model_config = _RESPONSE
    items: list[DeviceStatusView]
    truncated: bool = Field(description="more devices matched than `limit`: ask again with `next_cursor`")
    next_cursor: str | None = Field(description="the next page (null: this was the last)")


DEVICE_ROUTES: tuple[RouteDoc, ...] = (
    RouteDoc(
        "GET",
        "/devices",
        "listDevices",
        "设备在线状态（在线、离线、已申报、从未上线；按角色范围）",
        ALL_ROLES,
        DeviceStatusPage,
        query=DeviceStatusQuery,
        codes=(*_ROLE, "invalid_cursor"),
        tag="devices",
    ),
)
ROUTES = (*ROUTES, *DEVICE_ROUTES)
