"""Use cases of the disposal loop (issue 4): what the enterprise app, the duty centre, the regulators and the
administrator do through the API. Each takes the authenticated `Actor` (never anything from the body about who
acts) and answers with a response model, or raises a domain error that the API maps to its status.

Order of checks everywhere (`domain/access.py`): the role may use the route at all (403) → the record exists and is
in the actor's scope (404, the same answer for both) → role/level conditions (403) → the lifecycle (409) → rules on
the content that need the record (422: evidence keys, the assignee).

What an enterprise user sees of the government side (`for_enterprise`): who acted by name and role only — no user
ids, source IPs or app strings of staff, in the timeline and in the warning's details.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol

from aws_lambda_powertools import Logger

from chalicelib.api.errors import validated
from chalicelib.api.models import (
    ActionBody,
    AuditEventView,
    ChainReportView,
    Deadlines,
    DeviceChange,
    DeviceUpsert,
    EnterpriseChange,
    EnterpriseUpsert,
    EvidenceRequest,
    EvidenceTicket,
    MeView,
    Overdue,
    Page,
    PermittedAction,
    SubjectAudit,
    TimelineEntry,
    UserCreate,
    UserQuery,
    UserView,
    WarningDetail,
    WarningQuery,
    WarningView,
    decode_cursor,
    encode_cursor,
)
from chalicelib.domain import due
from chalicelib.domain.access import Scope, ScopeKind, permitted_actions, require_read, scope_filter
from chalicelib.domain.access import apply_authorized as authorized_transition
from chalicelib.domain.audit import AuditEvent, ChainHead, ChainReport, verify_chain
from chalicelib.domain.catalog import Policy
from chalicelib.domain.changes import CHANGE_KIND_ZH, ChangeKind
from chalicelib.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import (
    ACTION_ZH,
    ENGINE_ACTOR,
    ROLE_ZH,
    Action,
    ActionType,
    Actor,
    Reassign,
    Role,
    Transition,
)
from chalicelib.domain.policy import DEPARTMENT_ZH
from chalicelib.domain.registry import DeviceRegistration, Enterprise
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.observability import INHERIT, SERVICE, swallowed

Key = dict[str, str]
logger = Logger(service=SERVICE, child=True, level=INHERIT)
Listing = Iterator[tuple[WarningRecord, Key]]


class NotConfigured(DomainError):  # noqa: N818 - named like its siblings
    """A feature whose backing resource this stage does not have (e.g. no evidence bucket)."""

    http_status: ClassVar[int] = 503


# --- ports -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a call came from, for the audit trail."""

    source_ip: str | None = None
    app: str | None = None


@dataclass(frozen=True)
class SubjectLog:
    events: list[AuditEvent]  # the audit chain as stored, by seq
    head: ChainHead  # the anchor kept with the subject
    engine_log: list[dict[str, Any]] = field(default_factory=list)  # engine entries (warnings only)


class WarningRepository(Protocol):
    """Warnings with their audit chain. Records handed out carry no storage fields (no chain head)."""

    def get(self, warning_id: str) -> WarningRecord | None: ...

    def update(
        self,
        warning_id: str,
        decide: Callable[[WarningRecord | None], Transition],
        *,
        source_ip: str | None = None,
        app: str | None = None,
    ) -> WarningRecord:
        """Read, `decide` (may raise), save with the event chained, conditional on nobody having written in
        between; on a lost race read and decide again; ConcurrentUpdateError when it never wins."""
        ...

    def log(self, warning_id: str) -> SubjectLog: ...


class WarningListings(Protocol):
    """Warnings in a scope from indexes, each with the key (the listing's sort key and the warning id) to resume
    right after it. What a listing reads grows with what the caller takes from it, never with the table's
    history: `page_size` is how many the caller expects to take (a hint for the reads)."""

    def newest_first(self, scope: Scope, after: Key | None, page_size: int) -> Listing:
        """Every warning of the scope, the most recently raised first; key fields `raised_at`, `warning_id`."""
        ...

    def most_urgent_first(self, scope: Scope, after: Key | None, page_size: int) -> Listing:
        """The open warnings of the scope, red first and within a level the oldest first; key fields `urgency`,
        `warning_id`."""
        ...


class RegistryRepository(Protocol):
    """Enterprises and devices; every write is chained in the subject's audit trail."""

    def device(self, device_id: str) -> DeviceRegistration | None: ...

    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def devices_of(self, enterprise_id: str) -> list[DeviceRegistration]: ...

    def put_device(self, registration: DeviceRegistration, audit: Mapping[str, Any]) -> AuditEvent | None:
        """None when nothing changed. `audit`: actor, role, at, reason, source_ip, app."""
        ...

    def put_enterprise(self, enterprise: Enterprise, audit: Mapping[str, Any]) -> AuditEvent | None: ...

    def log(self, subject_id: str) -> SubjectLog: ...


@dataclass(frozen=True)
class UserAccount:
    username: str
    role: Role | None  # None: no role group, or several
    name: str = ""
    phone: str | None = None
    enterprise_id: str | None = None
    department: str | None = None
    area_codes: tuple[str, ...] = ()
    enabled: bool = True
    status: str = ""


@dataclass(frozen=True)
class NewUser:
    username: str
    role: Role
    name: str
    phone: str | None = None
    enterprise_id: str | None = None
    department: str | None = None
    area_codes: tuple[str, ...] = ()
    temporary_password: str | None = None  # None: the user pool makes one and sends the invitation
    suppress_invitation: bool = False  # seeding: no message to send


@dataclass
class UserPage:
    users: list[UserAccount] = field(default_factory=list)
    next_token: str | None = None


class UserDirectory(Protocol):
    def create_user(self, user: NewUser) -> UserAccount:
        """Conflict when the username is taken."""
        ...

    def list_users(self, limit: int, token: str | None = None, roles: Sequence[Role] = ...) -> UserPage: ...

    def user(self, username: str) -> UserAccount:
        """NotFound when there is no such user."""
        ...


class Timers(Protocol):
    """The disposal timers (chalicelib/services/workflow.py)."""

    def superseding(self, record: WarningRecord, before_version: int) -> bool:
        """Arm the timer of the record's new due times and stop the one of `before_version`."""
        ...


class EvidenceStore(Protocol):
    def upload_url(self, key: str, content_type: str, expires_in: int) -> str:
        """A presigned PUT for exactly this key and content type."""
        ...


# --- the service -----------------------------------------------------------------------------------------------

WALL_ROLES = frozenset({Role.DUTY, Role.REGULATOR, Role.AREA, Role.EMERGENCY})
EVIDENCE_ROLES = frozenset({Role.ENTERPRISE, Role.REGULATOR, Role.AREA})
AUDIT_ROLES = frozenset({Role.DUTY, Role.ADMIN})
EVIDENCE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
EVIDENCE_URL_TTL_S = 300
PERSON_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.SYSTEM)
STAFF_ROLES = frozenset(role.value for role in Role if role not in (Role.ENTERPRISE, Role.SYSTEM))
NEWEST_KEY = ("raised_at", "warning_id")
URGENT_KEY = ("urgency", "warning_id")
OPEN_STATUSES = frozenset(status for status in WarningStatus if status.is_open)


def examined_per_page(limit: int) -> int:
    """How many index entries a page looks at, at most, before it answers (short, with a cursor): filters that no
    index serves (level, some statuses, overdue=false) cannot make a page read without bound."""
    return 5 * limit + 50


def evidence_prefix(record: WarningRecord) -> str:
    return f"evidence/{record.enterprise_id}/{record.warning_id}/"


def _require_role(actor: Actor, roles: frozenset[Role], what: str) -> None:
    if actor.role not in roles:
        raise Forbidden("role_not_permitted", f"{actor.role.zh}无权{what}")


class DisposalService:
    def __init__(
        self,
        warnings: WarningRepository,
        registry: RegistryRepository,
        users: UserDirectory | None,
        evidence: EvidenceStore | None,
        policy: Policy,
        clock: Callable[[], float],
        *,
        listings: WarningListings,
        timers: Timers | None = None,
    ) -> None:
        self._timers = timers
        self._warnings = warnings
        self._listings = listings
        self._registry = registry
        self._users = users
        self._evidence = evidence
        self._policy = policy
        self._clock = clock

    # --- who am I

    @staticmethod
    def me(actor: Actor) -> MeView:
        return MeView(
            user_id=actor.user_id,
            name=actor.name,
            role=actor.role,
            role_zh=actor.role.zh,
            enterprise_id=actor.enterprise_id,
            department=actor.department,
            department_zh=DEPARTMENT_ZH.get(actor.department or ""),
            sectors=list(actor.sectors),
            area_codes=list(actor.area_codes),
        )

    # --- lists

    def list_warnings(self, actor: Actor, query: WarningQuery) -> Page[WarningView]:
        """Scoped. A listing that can hold open warnings only (`open=true`, `overdue=true`, or open statuses only)
        comes from the open indexes, most urgent first; any other, newest first."""
        if _open_only(query):
            return self._urgent_page(actor, query)
        scope = _listing_scope(actor, query)
        after = decode_cursor(query.cursor, NEWEST_KEY)
        if scope is None:
            return Page[WarningView](items=[], next_cursor=None)
        return self._page(self._listings.newest_first(scope, after, query.limit + 1), actor, query)

    def wall(self, actor: Actor, query: WarningQuery) -> Page[WarningView]:
        """Open warnings in the actor's scope, red first and then the oldest (duty, regulator, area, emergency)."""
        _require_role(actor, WALL_ROLES, "查看值守大屏")
        return self._urgent_page(actor, query)

    def _urgent_page(self, actor: Actor, query: WarningQuery) -> Page[WarningView]:
        scope = _listing_scope(actor, query)
        after = decode_cursor(query.cursor, URGENT_KEY)
        if scope is None:
            return Page[WarningView](items=[], next_cursor=None)
        listing = self._listings.most_urgent_first(scope, after, query.limit + 1)
        return self._page(listing, actor, query, open_only=True)

    def _page(
        self, listing: Listing, actor: Actor, query: WarningQuery, open_only: bool = False
    ) -> Page[WarningView]:
        """Up to `limit` wanted records; `next_cursor` when one more exists, or when the page stopped after
        `examined_per_page` entries (then the page may be short, even empty: the caller follows the cursor)."""
        now = self._clock()
        scope = scope_filter(actor)

        def wanted(record: WarningRecord) -> bool:
            if not scope.matches(record) or (open_only and not record.is_open):
                return False
            if query.status and record.status not in query.status:
                return False
            if query.level and Level(record.level).code not in query.level:
                return False
            if query.sector and record.sector not in query.sector:
                return False
            if query.area and set(record.area_codes).isdisjoint(query.area):
                return False
            if query.open is not None and record.is_open != query.open:
                return False
            return query.overdue is None or self.overdue(record, now).any == query.overdue

        items: list[WarningView] = []
        last: Key | None = None
        budget = examined_per_page(query.limit)
        for examined, (record, key) in enumerate(listing, start=1):
            if wanted(record):
                if len(items) == query.limit:
                    return Page[WarningView](items=items, next_cursor=encode_cursor(last or {}))
                items.append(self.view(record, now, actor))
            last = key
            if examined >= budget:
                return Page[WarningView](items=items, next_cursor=encode_cursor(last))
        return Page[WarningView](items=items, next_cursor=None)

    # --- one warning

    def detail(self, actor: Actor, warning_id: str) -> WarningDetail:
        record = require_read(actor, self._warnings.get(warning_id))
        log = self._warnings.log(warning_id)
        entries = timeline(log)
        return WarningDetail(
            warning=self.view(record, self._clock(), actor),
            timeline=[for_enterprise(entry) for entry in entries] if actor.role is Role.ENTERPRISE else entries,
            permitted_actions=[PermittedAction(type=a, zh=a.zh) for a in permitted_actions(actor, record)],
            audit_seq=log.head.seq,
        )

    def act(self, actor: Actor, warning_id: str, payload: Any, origin: Origin = Origin()) -> WarningView:
        """One lifecycle action (body discriminated by `type`); exactly one of two concurrent actions wins. The
        audit event names the actor (`data.actor_name`) so that the timeline can show who acted without an id."""
        union_tag = payload.get("type") if isinstance(payload, dict) else None
        action: Action = validated(ActionBody, payload, union_tag).root
        assignees: dict[str, UserAccount] = {}
        versions: list[int] = []

        def decide(record: WarningRecord | None) -> Transition:
            now = self._clock()
            stored = due.stored(record) if record is not None else None
            versions.append(stored.version if stored is not None else 0)
            transition = authorized_transition(record, action, actor, now)  # 403, 404, 409 first
            if isinstance(action, Reassign):
                named = self._known_assignee(action, transition.record.enterprise_id, assignees)
                transition = authorized_transition(record, named, actor, now)
            _check_evidence(transition.record, action)
            event = transition.event
            named_event = replace(event, data={**event.data, "actor_name": actor.name})
            return Transition(transition.record, named_event)

        record = self._warnings.update(warning_id, decide, source_ip=origin.source_ip, app=origin.app)
        stored = due.stored(record)
        if stored is not None and stored.version != versions[-1] and actor.role is not Role.SYSTEM:
            self._arm(record, versions[-1])  # the workflow arms its own next timer once it has done what fell due
        return self.view(record, self._clock(), actor)

    def _arm(self, record: WarningRecord, before_version: int) -> None:
        """A new timer when the action changed the due times; a failure here leaves the action done and the timer
        to the sweeper (which re-arms from the stored due times)."""
        if self._timers is None:
            return
        try:
            self._timers.superseding(record, before_version)
        except Exception:
            logger.exception(
                "disposal timer not armed (the sweeper re-arms it)", extra={"warning_id": record.warning_id}
            )
            swallowed("disposal.arm_timer")

    def _known_assignee(self, action: Reassign, enterprise_id: str, cache: dict[str, UserAccount]) -> Reassign:
        """`reassign` names an enabled enterprise user of the warning's own enterprise (422 otherwise, whether the
        user is unknown or another enterprise's: the same answer); the name recorded is the directory's."""
        if action.assignee_id not in cache:
            try:
                cache[action.assignee_id] = self._directory().user(action.assignee_id)
            except NotFound:
                cache[action.assignee_id] = UserAccount(username=action.assignee_id, role=None, enabled=False)
        account = cache[action.assignee_id]
        if account.role is not Role.ENTERPRISE or account.enterprise_id != enterprise_id or not account.enabled:
            raise ValidationFailed(
                "assignee_not_in_enterprise",
                "改派对象须为该企业的用户",
                details={"errors": [{"field": "assignee_id", "code": "not_in_enterprise"}]},
            )
        return action.model_copy(update={"assignee_name": account.name or action.assignee_name})

    def evidence_upload(self, actor: Actor, warning_id: str, request: EvidenceRequest) -> EvidenceTicket:
        _require_role(actor, EVIDENCE_ROLES, "上传现场照片")
        record = require_read(actor, self._warnings.get(warning_id))
        if not record.is_open:
            raise InvalidTransition("warning_closed", "预警已关闭，不能再上传照片")
        if self._evidence is None:
            raise NotConfigured("evidence_unavailable", "照片存储未配置")
        key = f"{evidence_prefix(record)}{uuid.uuid4().hex}.{EVIDENCE_EXTENSIONS[request.content_type]}"
        url = self._evidence.upload_url(key, request.content_type, EVIDENCE_URL_TTL_S)
        return EvidenceTicket(
            key=key, url=url, headers={"Content-Type": request.content_type}, expires_in=EVIDENCE_URL_TTL_S
        )

    def verify(self, actor: Actor, warning_id: str) -> ChainReportView:
        _require_role(actor, AUDIT_ROLES, "校验审计链")
        require_read(actor, self._warnings.get(warning_id))
        return report_view(self._warnings.log(warning_id))

    # --- views

    def deadlines(self, record: WarningRecord) -> Deadlines:
        """The due times stored on the warning (computed by `domain/due.py` on every change)."""
        times = due.of(record, self._policy.deadlines)
        return Deadlines(
            acknowledge_by=times.acknowledge_by,
            verify_by=times.verify_by,
            clear_by=times.clear_by,
            confirm_by=times.confirm_by,
            next_due=times.next_due if record.is_open else None,
        )

    def overdue(self, record: WarningRecord, now: float) -> Overdue:
        """Past a step's stored due time and the step not done (DOMAIN.md §4)."""
        times = due.of(record, self._policy.deadlines)
        acknowledge = record.status is WarningStatus.RAISED and now > times.acknowledge_by
        verify = record.status in (WarningStatus.RAISED, WarningStatus.ACKNOWLEDGED) and now > times.verify_by
        clear = record.is_open and now > times.clear_by
        confirm = (
            record.status is WarningStatus.CLEAR_REQUESTED
            and times.confirm_by is not None
            and now > times.confirm_by
        )
        return Overdue(
            acknowledge=acknowledge,
            verify=verify,
            clear=clear,
            confirm=confirm,
            any=acknowledge or verify or clear or confirm,
        )

    def view(self, record: WarningRecord, now: float, viewer: Actor | None = None) -> WarningView:
        details = record.details
        if viewer is not None and viewer.role is Role.ENTERPRISE:
            details = _without_staff_ids(details)
        return WarningView(
            warning_id=record.warning_id,
            device_id=record.device_id,
            enterprise_id=record.enterprise_id,
            enterprise_name=record.enterprise_name,
            sector=record.sector,
            sector_zh=record.sector.zh,
            unit_id=record.unit_id,
            unit_name=record.unit_name,
            point_name=record.point_name,
            area_codes=list(record.area_codes),
            risk_type=record.risk_type,
            level=Level(record.level).code,
            level_zh=Level(record.level).zh,
            peak_level=Level(record.peak_level).code,
            status=record.status,
            status_zh=record.status.zh,
            reading_normal=record.reading_normal,
            raised_at=record.raised_at,
            updated_at=record.updated_at,
            title=record.title,
            reason=record.reason,
            value=record.value,
            unit=record.unit,
            flags=list(record.flags),
            details=details,
            version=record.version,
            deadlines=self.deadlines(record),
            overdue=self.overdue(record, now),
        )

    # --- administration: registry

    def enterprise(self, actor: Actor, enterprise_id: str) -> Enterprise:
        _require_role(actor, frozenset({Role.ADMIN}), "管理企业登记")
        found = self._registry.enterprise(enterprise_id)
        if found is None:
            raise NotFound("enterprise_not_found", "企业不存在")
        return found

    def put_enterprise(
        self, actor: Actor, enterprise_id: str, body: EnterpriseUpsert, origin: Origin = Origin()
    ) -> EnterpriseChange:
        """Register or change an enterprise; its devices' copies of its name and areas follow (each audited)."""
        _require_role(actor, frozenset({Role.ADMIN}), "管理企业登记")
        current = self._registry.enterprise(enterprise_id)
        devices = self._registry.devices_of(enterprise_id) if current is not None else []
        if current is not None and current.sector != body.sector and devices:
            raise Conflict("sector_locked", "企业已登记设备，不能变更所属行业")
        enterprise = Enterprise(
            enterprise_id=enterprise_id,
            name=body.name,
            sector=body.sector,
            area_codes=tuple(body.area_codes),
            contacts=tuple(body.contacts),
        )
        audit = self._audit(actor, body.reason, origin)
        event = self._registry.put_enterprise(enterprise, audit)
        updated = 0
        for device in devices:
            copy = device.model_copy(
                update={"enterprise_name": enterprise.name, "area_codes": enterprise.area_codes}
            )
            reason = f"企业信息变更同步: {body.reason}".rstrip(": ")
            if self._registry.put_device(copy, {**audit, "reason": reason}) is not None:
                updated += 1
        seq = event.seq if event is not None else self._registry.log(f"enterprise:{enterprise_id}").head.seq
        return EnterpriseChange(
            enterprise=enterprise, changed=event is not None, audit_seq=seq, devices_updated=updated
        )

    def device(self, actor: Actor, device_id: str) -> DeviceRegistration:
        _require_role(actor, frozenset({Role.ADMIN}), "管理设备登记")
        found = self._registry.device(device_id)
        if found is None:
            raise NotFound("device_not_found", "设备不存在")
        return found

    def put_device(
        self, actor: Actor, device_id: str, body: DeviceUpsert, origin: Origin = Origin()
    ) -> DeviceChange:
        """Register or change a device and its setpoints (名称、单元、设定值); audited as `device:{id}`."""
        _require_role(actor, frozenset({Role.ADMIN}), "管理设备登记")
        enterprise = self._registry.enterprise(body.enterprise_id)
        if enterprise is None:
            raise ValidationFailed("unknown_enterprise", "所属企业未登记")
        registration = DeviceRegistration(
            device_id=device_id,
            enterprise_id=enterprise.enterprise_id,
            enterprise_name=enterprise.name,
            sector=enterprise.sector,
            unit_id=body.unit_id,
            unit_name=body.unit_name,
            point_name=body.point_name,
            kind=body.kind,
            area_codes=enterprise.area_codes,
            setpoints=body.setpoints,
            static=body.static,
        )
        event = self._registry.put_device(registration, self._audit(actor, body.reason, origin))
        seq = event.seq if event is not None else self._registry.log(f"device:{device_id}").head.seq
        return DeviceChange(device=registration, changed=event is not None, audit_seq=seq)

    def subject_audit(self, actor: Actor, kind: str, subject: str) -> SubjectAudit:
        """The audit trail of a device or an enterprise, verified."""
        _require_role(actor, frozenset({Role.ADMIN}), "查看登记变更记录")
        exists = self._registry.device(subject) if kind == "device" else self._registry.enterprise(subject)
        log = self._registry.log(f"{kind}:{subject}")
        if exists is None and not log.events and log.head.seq == 0:
            if kind == "device":
                raise NotFound("device_not_found", "设备不存在")
            raise NotFound("enterprise_not_found", "企业不存在")
        return SubjectAudit(
            subject_id=f"{kind}:{subject}",
            report=report_view(log),
            events=[_event_view(event) for event in log.events],
        )

    def _audit(self, actor: Actor, reason: str, origin: Origin) -> dict[str, Any]:
        return {
            "actor": actor.user_id,
            "role": actor.role.value,
            "at": self._clock(),
            "reason": reason,
            "source_ip": origin.source_ip,
            "app": origin.app,
        }

    # --- administration: users

    def create_user(self, actor: Actor, body: UserCreate) -> UserView:
        _require_role(actor, frozenset({Role.ADMIN}), "管理用户")
        if body.enterprise_id and self._registry.enterprise(body.enterprise_id) is None:
            raise ValidationFailed("unknown_enterprise", "所属企业未登记")
        account = self._directory().create_user(
            NewUser(
                username=body.username,
                role=Role(body.role),
                name=body.name,
                phone=body.phone,
                enterprise_id=body.enterprise_id,
                department=body.department,
                area_codes=tuple(body.area_codes),
            )
        )
        return user_view(account)

    def list_users(self, actor: Actor, query: UserQuery) -> Page[UserView]:
        _require_role(actor, frozenset({Role.ADMIN}), "管理用户")
        roles = [role for role in PERSON_ROLES if not query.role or role.value in query.role]
        page = self._directory().list_users(query.limit, query.cursor, roles)
        return Page[UserView](items=[user_view(user) for user in page.users], next_cursor=page.next_token)

    def _directory(self) -> UserDirectory:
        if self._users is None:
            raise NotConfigured("users_unavailable", "用户目录未配置")
        return self._users


# --- helpers ---------------------------------------------------------------------------------------------------


def _open_only(query: WarningQuery) -> bool:
    """The query can match open warnings only (so the sparse open indexes hold all it can find)."""
    open_statuses = bool(query.status) and set(query.status or ()) <= OPEN_STATUSES
    return bool(query.open) or bool(query.overdue) or open_statuses


def _listing_scope(actor: Actor, query: WarningQuery) -> Scope | None:
    """The index scope to read: the actor's scope, narrowed by the `sector` or `area` filter where an index serves
    it; None when the filter leaves nothing of the actor's scope."""
    scope = scope_filter(actor)
    if scope.kind is ScopeKind.SECTORS and query.sector:
        sectors = tuple(sector for sector in scope.sectors if sector in query.sector)
        return Scope(kind=ScopeKind.SECTORS, sectors=sectors) if sectors else None
    if scope.kind is ScopeKind.AREAS and query.area:
        areas = tuple(area for area in scope.area_codes if area in query.area)
        return Scope(kind=ScopeKind.AREAS, area_codes=areas) if areas else None
    if scope.kind is ScopeKind.ALL and query.area:
        return Scope(kind=ScopeKind.AREAS, area_codes=tuple(dict.fromkeys(query.area)))
    if scope.kind is ScopeKind.ALL and query.sector:
        return Scope(kind=ScopeKind.SECTORS, sectors=tuple(dict.fromkeys(query.sector)))
    return scope


def for_enterprise(entry: TimelineEntry) -> TimelineEntry:
    """A timeline entry as an enterprise user sees it: staff (duty, regulators, areas, the bureau, the
    administrator) by name and role only; the enterprise's own people and the platform as they are."""
    if entry.role not in STAFF_ROLES:
        return entry
    return entry.model_copy(update={"actor": None, "source_ip": None, "app": None})


_IDENTIFYING = ("by", "source_ip", "app")


def _without_staff_ids(details: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The warning's details without the user ids (`by`) of staff in its step records (`acknowledged`,
    `escalation`, `closure`, ...: `{"by", "name", "role", "at"}`)."""
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if not isinstance(value, Mapping) or depth >= 3:
            cleaned[key] = value
            continue
        inner = _without_staff_ids(value, depth + 1)
        staff = inner.get("role") in STAFF_ROLES
        cleaned[key] = {k: v for k, v in inner.items() if not (staff and k in _IDENTIFYING)}
    return cleaned


def _check_evidence(record: WarningRecord, action: Action) -> None:
    """Evidence must be a photo uploaded for this warning (no citing another enterprise's objects)."""
    keys: Sequence[str] = getattr(action, "evidence_keys", ())
    prefix = evidence_prefix(record)
    if any(not key.startswith(prefix) for key in keys):
        raise ValidationFailed("evidence_outside_warning", "照片不属于该预警，请通过本预警的上传地址上传")


def report_view(log: SubjectLog) -> ChainReportView:
    report: ChainReport = verify_chain(log.events, head=log.head)
    return ChainReportView(
        ok=report.ok,
        first_bad_seq=report.first_bad_seq,
        reason=report.reason,
        reason_zh=report.reason_zh,
        checked=report.checked,
        head_seq=log.head.seq,
    )


def _event_view(event: AuditEvent) -> AuditEventView:
    return AuditEventView(
        seq=event.seq,
        type=event.type,
        actor=event.actor,
        role=event.role,
        at=event.at,
        before=dict(event.before),
        after=dict(event.after),
        reason=event.reason,
        data=dict(event.data),
        source_ip=event.source_ip,
        app=event.app,
        hash=event.hash,
    )


def _type_zh(kind: str) -> str:
    if kind in ActionType.__members__.values():
        return ACTION_ZH[ActionType(kind)]
    if kind in ChangeKind.__members__.values():
        return CHANGE_KIND_ZH[ChangeKind(kind)]
    return kind


def _actor_name(event: AuditEvent) -> str:
    """Who acted, for people: the name recorded with the action; events written before names were recorded show
    the role (staff) or the user id (enterprise)."""
    if event.role == Role.SYSTEM.value:
        return ENGINE_ACTOR.name if event.actor == ENGINE_ACTOR.user_id else _role_zh(event.role)
    name = str(event.data.get("actor_name") or "")
    if name:
        return name
    return _role_zh(event.role) if event.role in STAFF_ROLES else event.actor


def _role_zh(role: str) -> str:
    try:
        return ROLE_ZH[Role(role)]
    except ValueError:
        return role


def timeline(log: SubjectLog) -> list[TimelineEntry]:
    """The audit chain (people and engine), plus engine log entries the chain does not hold (warnings raised
    before the chain existed), in time order."""
    entries = [
        TimelineEntry(
            seq=event.seq,
            source="audit",
            type=event.type,
            type_zh=_type_zh(event.type),
            actor=event.actor,
            actor_name=_actor_name(event),
            role=event.role,
            role_zh=_role_zh(event.role),
            at=event.at,
            before=dict(event.before),
            after=dict(event.after),
            reason=event.reason,
            data=dict(event.data),
            source_ip=event.source_ip,
            app=event.app,
        )
        for event in log.events
    ]
    chained = {event.data.get("engine_seq") for event in log.events}
    for entry in log.engine_log:
        if entry["seq"] in chained:
            continue
        data = entry.get("data") or {}
        kind = str(entry["type"]).removeprefix("engine.")
        entries.append(
            TimelineEntry(
                seq=None,
                source="engine_log",
                type=kind,
                type_zh=_type_zh(kind),
                actor="engine",
                actor_name=ENGINE_ACTOR.name,
                role=Role.SYSTEM.value,
                role_zh=Role.SYSTEM.zh,
                at=float(entry["at"]),
                before={"level": data.get("previous_level")},
                after={"level": data.get("level")},
                reason=str(data.get("reason") or ""),
                data={key: data.get(key) for key in ("value", "unit", "flags", "title")},
            )
        )
    return sorted(entries, key=lambda entry: (entry.at, entry.seq or 0))


def user_view(account: UserAccount) -> UserView:
    return UserView(
        username=account.username,
        name=account.name,
        role=account.role,
        role_zh=account.role.zh if account.role else None,
        phone=account.phone,
        enterprise_id=account.enterprise_id,
        department=account.department,
        department_zh=DEPARTMENT_ZH.get(account.department or ""),
        area_codes=list(account.area_codes),
        enabled=account.enabled,
        status=account.status,
    )
