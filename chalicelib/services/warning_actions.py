"""Warnings as people see them and act on them: the listings and the wall, one warning with its audit trail, the
lifecycle actions, evidence uploads, the chain check; and the same audited action path for what the workflow
records as the system (`SystemActions`).

Each use case takes the authenticated `Actor` (never anything from the body about who acts) and answers with
domain records and the small values below; the API maps them to its views (`chalicelib/api/views.py`). Order of
checks everywhere (`domain/access.py`): the role may use the route at all (403) → the record exists and is in the
actor's scope (404, the same answer for both) → role/level conditions (403) → the lifecycle (409) → rules on the
content that need the record (422: evidence keys, the assignee).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from aws_lambda_powertools import Logger

from chalicelib.domain import due
from chalicelib.domain.access import (
    Scope,
    ScopeKind,
    permitted_actions,
    require_read,
    require_role,
    scope_filter,
)
from chalicelib.domain.access import apply_authorized as authorized_transition
from chalicelib.domain.catalog import Policy
from chalicelib.domain.due import DueTimes, Overdue
from chalicelib.domain.errors import InvalidTransition, NotConfigured, NotFound, ValidationFailed
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import Action, ActionType, Actor, Reassign, Role, Transition, parse_action
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.observability import INHERIT, SERVICE, swallowed
from chalicelib.services.cursors import decode_cursor, encode_cursor, examined_per_page
from chalicelib.services.ports import (
    NEWEST_KEY,
    UNKNOWN_ORIGIN,
    URGENT_KEY,
    EvidenceStore,
    Key,
    Listing,
    Origin,
    SubjectLog,
    Timers,
    UserAccount,
    UserDirectory,
    WarningListings,
    WarningRepository,
)

logger = Logger(service=SERVICE, child=True, level=INHERIT)

WALL_ROLES = frozenset({Role.DUTY, Role.REGULATOR, Role.AREA, Role.EMERGENCY})
EVIDENCE_ROLES = frozenset({Role.ENTERPRISE, Role.REGULATOR, Role.AREA})
AUDIT_ROLES = frozenset({Role.DUTY, Role.ADMIN})
EVIDENCE_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
EVIDENCE_URL_TTL_S = 300
OPEN_STATUSES = frozenset(status for status in WarningStatus if status.is_open)


class WarningFilter(Protocol):
    """What a listing keeps and how much of it (the API's `WarningQuery`): within a field any of the values,
    across fields all of them; `cursor`, the `next_cursor` of the page before."""

    @property
    def status(self) -> Sequence[WarningStatus] | None: ...

    @property
    def level(self) -> Sequence[str] | None: ...  # level codes

    @property
    def sector(self) -> Sequence[Sector] | None: ...

    @property
    def area(self) -> Sequence[str] | None: ...

    @property
    def overdue(self) -> bool | None: ...

    @property
    def open(self) -> bool | None: ...

    @property
    def limit(self) -> int: ...

    @property
    def cursor(self) -> str | None: ...


@dataclass(frozen=True)
class WarningStanding:
    """A warning as it stands at one moment: the record, its due times, and the steps overdue then."""

    record: WarningRecord
    due: DueTimes
    overdue: Overdue


@dataclass(frozen=True)
class WarningPage:
    items: list[WarningStanding]
    next_cursor: str | None = None  # None: the listing is complete


@dataclass(frozen=True)
class WarningHistory:
    """One warning, its audit trail (with the engine's log), and what the actor may do to it now."""

    standing: WarningStanding
    log: SubjectLog
    permitted: tuple[ActionType, ...]


@dataclass(frozen=True)
class UploadTicket:
    key: str
    url: str
    content_type: str
    expires_in: int


def evidence_prefix(record: WarningRecord) -> str:
    return f"evidence/{record.enterprise_id}/{record.warning_id}/"


class WarningActions:
    def __init__(
        self,
        warnings: WarningRepository,
        listings: WarningListings,
        policy: Policy,
        clock: Callable[[], float],
        *,
        users: UserDirectory | None = None,
        evidence: EvidenceStore | None = None,
        timers: Timers | None = None,
    ) -> None:
        self._warnings = warnings
        self._listings = listings
        self._policy = policy
        self._clock = clock
        self._users = users
        self._evidence = evidence
        self._timers = timers

    # --- lists

    def list_warnings(self, actor: Actor, query: WarningFilter) -> WarningPage:
        """Scoped. A listing that can hold open warnings only (`open=true`, `overdue=true`, or open statuses only)
        comes from the open indexes, most urgent first; any other, newest first."""
        if _open_only(query):
            return self._urgent_page(actor, query)
        scope = _listing_scope(actor, query)
        after = decode_cursor(query.cursor, NEWEST_KEY)
        if scope is None:
            return WarningPage(items=[])
        return self._page(self._listings.newest_first(scope, after, query.limit + 1), actor, query)

    def wall(self, actor: Actor, query: WarningFilter) -> WarningPage:
        """Open warnings in the actor's scope, red first and then the oldest (duty, regulator, area, emergency)."""
        require_role(actor, WALL_ROLES, "查看值守大屏")
        return self._urgent_page(actor, query)

    def _urgent_page(self, actor: Actor, query: WarningFilter) -> WarningPage:
        scope = _listing_scope(actor, query)
        after = decode_cursor(query.cursor, URGENT_KEY)
        if scope is None:
            return WarningPage(items=[])
        listing = self._listings.most_urgent_first(scope, after, query.limit + 1)
        return self._page(listing, actor, query, open_only=True)

    def _page(self, listing: Listing, actor: Actor, query: WarningFilter, open_only: bool = False) -> WarningPage:
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
            return query.overdue is None or self._overdue(record, now).any == query.overdue

        items: list[WarningStanding] = []
        last: Key | None = None
        budget = examined_per_page(query.limit)
        for examined, (record, key) in enumerate(listing, start=1):
            if wanted(record):
                if len(items) == query.limit:
                    return WarningPage(items=items, next_cursor=encode_cursor(last or {}))
                items.append(self.standing(record, now))
            last = key
            if examined >= budget:
                return WarningPage(items=items, next_cursor=encode_cursor(last))
        return WarningPage(items=items)

    # --- one warning

    def detail(self, actor: Actor, warning_id: str) -> WarningHistory:
        record = require_read(actor, self._warnings.get(warning_id))
        log = self._warnings.log(warning_id)
        return WarningHistory(
            standing=self.standing(record, self._clock()),
            log=log,
            permitted=permitted_actions(actor, record),
        )

    def act(
        self, actor: Actor, warning_id: str, action: Action, origin: Origin = UNKNOWN_ORIGIN
    ) -> WarningStanding:
        """One lifecycle action; exactly one of two concurrent actions wins. The audit event names the actor
        (`data.actor_name`) so that the timeline can show who acted without an id."""
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
        return self.standing(record, self._clock())

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
            if self._users is None:
                raise NotConfigured("users_unavailable", "用户目录未配置")
            try:
                cache[action.assignee_id] = self._users.user(action.assignee_id)
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

    def evidence_upload(self, actor: Actor, warning_id: str, content_type: str) -> UploadTicket:
        """A presigned upload for one photo (`content_type`: one of `EVIDENCE_EXTENSIONS`) of an open warning."""
        require_role(actor, EVIDENCE_ROLES, "上传现场照片")
        record = require_read(actor, self._warnings.get(warning_id))
        if not record.is_open:
            raise InvalidTransition("warning_closed", "预警已关闭，不能再上传照片")
        if self._evidence is None:
            raise NotConfigured("evidence_unavailable", "照片存储未配置")
        key = f"{evidence_prefix(record)}{uuid.uuid4().hex}.{EVIDENCE_EXTENSIONS[content_type]}"
        url = self._evidence.upload_url(key, content_type, EVIDENCE_URL_TTL_S)
        return UploadTicket(key=key, url=url, content_type=content_type, expires_in=EVIDENCE_URL_TTL_S)

    def verify(self, actor: Actor, warning_id: str) -> SubjectLog:
        """The warning's audit trail as stored, for the chain check (duty centre, administrator)."""
        require_role(actor, AUDIT_ROLES, "校验审计链")
        require_read(actor, self._warnings.get(warning_id))
        return self._warnings.log(warning_id)

    # --- due times

    def standing(self, record: WarningRecord, now: float) -> WarningStanding:
        times = due.of(record, self._policy.deadlines)
        return WarningStanding(record=record, due=times, overdue=due.overdue(record, times, now))

    def _overdue(self, record: WarningRecord, now: float) -> Overdue:
        return due.overdue(record, due.of(record, self._policy.deadlines), now)


class SystemActions:
    """The workflow's `Escalator`: what fell due (an escalation, a reminder, the archive) recorded through the
    audited action path people use, by the system actor. Built from the warning actions alone, so the workflow's
    handlers never build the API (its token verifier, the user directory)."""

    def __init__(self, actions: WarningActions) -> None:
        self._actions = actions

    def act(self, actor: Actor, warning_id: str, payload: Mapping[str, Any]) -> WarningRecord:
        return self._actions.act(actor, warning_id, parse_action(dict(payload))).record


# --- helpers ---------------------------------------------------------------------------------------------------


def _open_only(query: WarningFilter) -> bool:
    """The query can match open warnings only (so the sparse open indexes hold all it can find)."""
    open_statuses = bool(query.status) and set(query.status or ()) <= OPEN_STATUSES
    return bool(query.open) or bool(query.overdue) or open_statuses


def _listing_scope(actor: Actor, query: WarningFilter) -> Scope | None:
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


def _check_evidence(record: WarningRecord, action: Action) -> None:
    """Evidence must be a photo uploaded for this warning (no citing another enterprise's objects)."""
    keys: Sequence[str] = getattr(action, "evidence_keys", ())
    prefix = evidence_prefix(record)
    if any(not key.startswith(prefix) for key in keys):
        raise ValidationFailed("evidence_outside_warning", "照片不属于该预警，请通过本预警的上传地址上传")
