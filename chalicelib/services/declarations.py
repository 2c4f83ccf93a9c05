"""Outage declarations (申报): an enterprise declares, the sector's regulator verifies, the schedule expires and
reminds. Every step is audited under `declaration:{id}` (docs/declarations.md).

Who (role 403 → scope 404 → status 409, as for warnings):
- declare: an enterprise user for its own enterprise; the administrator for any;
- approve / reject: the regulators of the declaration's sector, and the administrator. The duty centre receives
  the declarations (it sees them all) but does not verify them: 第十六条 gives that to the sector departments;
- withdraw: the declaring enterprise (any of its users) or the administrator, before the window starts;
- read and list: within the scope of `domain.declarations.can_see`; the audit trail: duty, regulators in scope,
  the bureau and the administrator.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Protocol

from aws_lambda_powertools import Logger

from chalicelib.domain import declarations as rules
from chalicelib.domain.access import require_role
from chalicelib.domain.declarations import (
    OPEN_STATUSES,
    Declaration,
    DeclarationPolicy,
    DeclarationReason,
    DeclarationStatus,
    SuppressedFinding,
)
from chalicelib.domain.delivery import declaration_decision_job, declaration_reminder_job
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.observability import INHERIT, SERVICE, count, swallowed
from chalicelib.services.cursors import ListingPage, position_after, take_page
from chalicelib.services.ports import (
    UNKNOWN_ORIGIN,
    AuditStamp,
    DeclarationNotices,
    DeclarationStore,
    DeliveryJobs,
    Origin,
    RegistryRepository,
    SubjectLog,
    SuppressedFindings,
)

logger = Logger(service=SERVICE, child=True, level=INHERIT)

SWEEP_ACTOR = Actor(user_id="declaration-sweep", role=Role.SYSTEM, name="申报到期巡检")
NOT_FOUND = ("declaration_not_found", "申报不存在或无权查看")


class DeclarationForm(Protocol):
    """What the declarer sends (the API's `DeclarationCreate`): devices or a whole unit, reason, window, note."""

    @property
    def enterprise_id(self) -> str | None: ...

    @property
    def device_ids(self) -> Collection[str] | None: ...

    @property
    def unit_id(self) -> str | None: ...

    @property
    def reason(self) -> DeclarationReason: ...

    @property
    def starts_at(self) -> float: ...

    @property
    def ends_at(self) -> float: ...

    @property
    def note(self) -> str: ...


@dataclass
class SweepReport:
    expired: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # left for the next round (logged by the caller)


def new_declaration_id() -> str:
    return f"DCL-{uuid.uuid4().hex[:16]}"


class OpenDeclarations:
    """The open declarations as a reader needs them on every message (the ingest: suppression and 失真): read at
    most once per `ttl_s` per container, like the registry; a failed read keeps the last list (logged)."""

    def __init__(self, store: DeclarationStore, clock: Callable[[], float], ttl_s: float = 60.0) -> None:
        self._store = store
        self._clock = clock
        self._ttl_s = ttl_s
        self._read_at: float | None = None
        self._open: list[Declaration] = []

    def __call__(self) -> list[Declaration]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._ttl_s:
            try:
                self._open = self._store.open()
            except Exception:
                logger.exception("open declarations not read: the last list stands")
            self._read_at = now
        return self._open


class DeclarationNoticeJobs:
    """The `DeclarationNotices` port over the delivery path: every notice is a delivery job (docs/delivery.md),
    sent by the deliver function like a warning's, once per (job, recipient, channel)."""

    def __init__(self, jobs: DeliveryJobs) -> None:
        self._jobs = jobs

    def remind(self, declaration: Declaration, at: float) -> None:
        self._jobs.enqueue([declaration_reminder_job(declaration, at)])
        count("DeliveryJobsEnqueued", kind="declaration_reminder")

    def decided(self, declaration: Declaration) -> None:
        self._jobs.enqueue([declaration_decision_job(declaration)])
        count("DeliveryJobsEnqueued", kind="declaration_decision")


class Declarations:
    def __init__(
        self,
        store: DeclarationStore,
        registry: RegistryRepository,
        notices: DeclarationNotices,
        policy: DeclarationPolicy,
        clock: Callable[[], float],
        new_id: Callable[[], str] = new_declaration_id,
        suppressed: SuppressedFindings | None = None,
    ) -> None:
        self._suppressed = suppressed
        self._store = store
        self._registry = registry
        self._notices = notices
        self._policy = policy
        self._clock = clock
        self._new_id = new_id

    # --- the enterprise

    def declare(self, actor: Actor, form: DeclarationForm, origin: Origin = UNKNOWN_ORIGIN) -> Declaration:
        enterprise_id = rules.require_declaring_for(actor, form.enterprise_id)
        enterprise = self._registry.enterprise(enterprise_id)
        if enterprise is None:
            raise ValidationFailed("unknown_enterprise", "所属企业未登记")
        now = self._clock()
        rules.check_window(form.reason, form.starts_at, form.ends_at, now, self._policy)  # before any device read
        devices = rules.resolve_devices(
            enterprise,
            self._registry.devices_of(enterprise_id),
            tuple(form.device_ids or ()),
            form.unit_id,
        )
        existing = [d for d in self._store.open() if d.enterprise_id == enterprise_id]
        declaration = rules.declare(
            declaration_id=self._new_id(),
            enterprise=enterprise,
            device_ids=devices,
            unit_id=form.unit_id,
            reason=form.reason,
            starts_at=form.starts_at,
            ends_at=form.ends_at,
            note=form.note,
            actor=actor,
            now=now,
            existing=existing,
            policy=self._policy,
        )
        return self._save(declaration, "declaration_declared", actor, now, form.note, origin)

    def withdraw(
        self, actor: Actor, declaration_id: str, reason: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> Declaration:
        require_role(actor, rules.WITHDRAWING_ROLES, "撤回申报")
        current = self._visible(actor, declaration_id)
        now = self._clock()
        return self._save(rules.withdraw(current, actor, now), "declaration_withdrawn", actor, now, reason, origin)

    # --- the regulator

    def approve(
        self, actor: Actor, declaration_id: str, note: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> Declaration:
        require_role(actor, rules.VERIFYING_ROLES, "核实申报")
        current = self._visible(actor, declaration_id)
        now = self._clock()
        approved = self._save(rules.approve(current, actor, now), "declaration_approved", actor, now, note, origin)
        self._tell_decision(approved)
        return approved

    def reject(
        self, actor: Actor, declaration_id: str, reason: str, origin: Origin = UNKNOWN_ORIGIN
    ) -> Declaration:
        require_role(actor, rules.VERIFYING_ROLES, "核实申报")
        current = self._visible(actor, declaration_id)
        now = self._clock()
        changed = rules.reject(current, actor, now, reason)
        rejected = self._save(changed, "declaration_rejected", actor, now, reason, origin)
        self._tell_decision(rejected)
        return rejected

    def _tell_decision(self, declaration: Declaration) -> None:
        """The decision is recorded whatever happens here: a notice that cannot be queued is logged and counted
        (the enterprise still sees the status in the app), never an error answer for a decision that stands."""
        try:
            self._notices.decided(declaration)
        except Exception as exc:
            logger.warning(
                "declaration decision not queued for delivery",
                extra={"declaration_id": declaration.declaration_id, "error": type(exc).__name__},
            )
            swallowed("declarations.decided")

    # --- reads

    def get(self, actor: Actor, declaration_id: str) -> Declaration:
        return self._visible(actor, declaration_id)

    def list(
        self,
        actor: Actor,
        statuses: Collection[DeclarationStatus] | None = None,
        enterprise_id: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ListingPage[Declaration]:
        """A page of an enterprise's history, the newest first (an enterprise user: its own; others: any
        enterprise in their scope, with `enterprise_id`), or without `enterprise_id` of the open declarations
        (pending, approved) in the actor's scope, by end. `statuses` filters on the status as it stands now (an
        ended window is expired): the history is read from the partitions of those statuses as stored (an expired
        one may still be stored pending or approved until the sweep), so a page reads about `limit` declarations
        whatever the enterprise's history."""
        if actor.role is Role.ENTERPRISE:
            enterprise_id = actor.enterprise_id
        after = position_after(cursor)
        wanted = frozenset(statuses) if statuses else None
        if enterprise_id:
            stored = wanted
            if wanted is not None and DeclarationStatus.EXPIRED in wanted:
                stored = wanted | OPEN_STATUSES
            listing = self._store.history(enterprise_id, stored, after, limit + 1)
        else:
            listing = self._store.open_listing(after, limit + 1)
        now = self._clock()
        return take_page(
            listing,
            lambda d: rules.can_see(actor, d) and (wanted is None or d.status_at(now) in wanted),
            limit,
        )

    def suppressed(
        self, actor: Actor, declaration_id: str, limit: int = 200
    ) -> tuple[Declaration, tuple[SuppressedFinding, ...]]:
        """The findings the declaration suppressed (recorded, never raised or told: DOMAIN.md §5), the newest
        first, for whoever may read the declaration."""
        declaration = self._visible(actor, declaration_id)
        if self._suppressed is None:
            return declaration, ()
        return declaration, tuple(self._suppressed.of_declaration(declaration_id, limit))

    def audit(self, actor: Actor, declaration_id: str) -> SubjectLog:
        require_role(actor, rules.AUDIT_ROLES, "查看申报记录")
        self._visible(actor, declaration_id)
        return self._store.log(declaration_id)

    # --- the schedule

    def sweep(self) -> SweepReport:
        """Mark ended windows expired and remind the declarers of windows about to end (each once: the reminder
        is recorded after it is handed over, so a failure in between reminds again next round; its delivery job
        has one id per declaration, so the people are told once)."""
        report = SweepReport()
        now = self._clock()
        open_now = self._store.open()
        for declaration in rules.expired(open_now, now):
            try:
                self._save(rules.expire(declaration, now), "declaration_expired", SWEEP_ACTOR, now)
                report.expired.append(declaration.declaration_id)
            except Exception:  # changed meanwhile or a fault: looked at again next round
                report.failed.append(declaration.declaration_id)
        for declaration in rules.due_reminders(open_now, now, self._policy):
            try:
                self._notices.remind(declaration, now)
                self._save(rules.reminded(declaration, now), "declaration_reminded", SWEEP_ACTOR, now)
                report.reminded.append(declaration.declaration_id)
            except Exception:  # reminded again next round (at least once)
                report.failed.append(declaration.declaration_id)
        return report

    # --- helpers

    def _visible(self, actor: Actor, declaration_id: str) -> Declaration:
        found = self._store.get(declaration_id)
        if found is None or not rules.can_see(actor, found):
            raise NotFound(*NOT_FOUND)
        return found

    def _save(
        self,
        declaration: Declaration,
        event_type: str,
        actor: Actor,
        now: float,
        reason: str = "",
        origin: Origin = UNKNOWN_ORIGIN,
    ) -> Declaration:
        stamp = AuditStamp.of(actor, now, reason, origin)
        self._store.save(declaration, event_type, stamp)
        return declaration.model_copy(update={"version": declaration.version + 1})
