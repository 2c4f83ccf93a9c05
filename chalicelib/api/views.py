"""What the use cases answer, as the API shows it (`models.py`): warnings with their due times and overdue steps,
timelines, chain reports, registry changes, users, the caller.

What an enterprise user sees of the government side: who acted by name and role only — no user ids, source IPs or
app strings of staff, in the timeline and in the warning's details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from chalicelib.api.models import (
    AuditEventView,
    ChainReportView,
    Deadlines,
    DeclarationList,
    DeclarationView,
    DeviceChange,
    DeviceStatusPage,
    DeviceStatusView,
    EnterpriseChange,
    EvaluationDownload,
    EvaluationEntryView,
    EvaluationList,
    EvaluationReportView,
    EvidenceTicket,
    LastFix,
    MeView,
    NotificationView,
    OnDutyView,
    Overdue,
    Page,
    PermittedAction,
    PersonChange,
    PublicationView,
    RectificationList,
    RectificationView,
    ShiftChange,
    SubjectAudit,
    SuppressedFindingList,
    SuppressedFindingView,
    TimelineEntry,
    UserView,
    WarningDetail,
    WarningView,
)
from chalicelib.domain.audit import AuditEvent, verify_chain
from chalicelib.domain.changes import CHANGE_KIND_ZH, ChangeKind
from chalicelib.domain.declarations import Declaration, SuppressedFinding, effective_window
from chalicelib.domain.due import Overdue as OverdueSteps
from chalicelib.domain.evaluation.rectification import RectificationItem
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ACTION_ZH, ENGINE_ACTOR, ROLE_ZH, ActionType, Actor, Role
from chalicelib.domain.policy import DEPARTMENT_ZH
from chalicelib.domain.registry import DeviceRegistration, Enterprise, Person
from chalicelib.domain.rosters import Shift
from chalicelib.domain.texts import risk_name
from chalicelib.services.cursors import ListingPage
from chalicelib.services.device_status import DevicePage
from chalicelib.services.evaluation import ARTIFACTS
from chalicelib.services.notifications import NotificationPage
from chalicelib.services.ports import (
    InboxItem,
    Publication,
    ReportEntry,
    SubjectLog,
    UserAccount,
    UserPage,
    declaration_subject,
    rectification_subject,
    registry_subject,
)
from chalicelib.services.registry_admin import RegistryChange
from chalicelib.services.rosters import Change, OnDuty, PeoplePage
from chalicelib.services.warning_actions import UploadTicket, WarningHistory, WarningPage, WarningStanding

STAFF_ROLES = frozenset(role.value for role in Role if role not in (Role.ENTERPRISE, Role.SYSTEM))

# --- warnings --------------------------------------------------------------------------------------------------


def warning_view(standing: WarningStanding, viewer: Actor | None = None) -> WarningView:
    record, times = standing.record, standing.due
    details = record.details
    if viewer is not None and viewer.role is Role.ENTERPRISE:
        details = without_staff_ids(details)
    return WarningView(
        **record.header(),
        sector_zh=record.sector.zh,
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
        deadlines=Deadlines(
            acknowledge_by=times.acknowledge_by,
            verify_by=times.verify_by,
            clear_by=times.clear_by,
            confirm_by=times.confirm_by,
            next_due=times.next_due if record.is_open else None,
        ),
        overdue=overdue_view(standing.overdue),
    )


def overdue_view(steps: OverdueSteps) -> Overdue:
    return Overdue(
        acknowledge=steps.acknowledge, verify=steps.verify, clear=steps.clear, confirm=steps.confirm, any=steps.any
    )


def warning_page(page: WarningPage, viewer: Actor) -> Page[WarningView]:
    return Page[WarningView](
        items=[warning_view(standing, viewer) for standing in page.items], next_cursor=page.next_cursor
    )


def warning_detail(history: WarningHistory, viewer: Actor) -> WarningDetail:
    entries = timeline(history.log)
    return WarningDetail(
        warning=warning_view(history.standing, viewer),
        timeline=(
            [for_enterprise(entry) for entry in entries if entry.source != "delivery"]
            if viewer.role is Role.ENTERPRISE
            else entries
        ),
        permitted_actions=[PermittedAction(type=action, zh=action.zh) for action in history.permitted],
        audit_seq=history.log.head.seq,
    )


def evidence_ticket(ticket: UploadTicket) -> EvidenceTicket:
    return EvidenceTicket(
        key=ticket.key,
        url=ticket.url,
        headers={"Content-Type": ticket.content_type},
        expires_in=ticket.expires_in,
    )


def for_enterprise(entry: TimelineEntry) -> TimelineEntry:
    """A timeline entry as an enterprise user sees it: staff (duty, regulators, areas, the bureau, the
    administrator) by name and role only; the enterprise's own people and the platform as they are."""
    if entry.role not in STAFF_ROLES:
        return entry
    return entry.model_copy(update={"actor": None, "source_ip": None, "app": None})


_IDENTIFYING = ("by", "source_ip", "app")


def without_staff_ids(details: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The warning's details without the user ids (`by`) of staff in its step records (`acknowledged`,
    `escalation`, `closure`, ...: `{"by", "name", "role", "at"}`)."""
    cleaned: dict[str, Any] = {}
    for key, value in details.items():
        if not isinstance(value, Mapping) or depth >= 3:
            cleaned[key] = value
            continue
        inner = without_staff_ids(value, depth + 1)
        staff = inner.get("role") in STAFF_ROLES
        cleaned[key] = {k: v for k, v in inner.items() if not (staff and k in _IDENTIFYING)}
    return cleaned


# --- audit trails ----------------------------------------------------------------------------------------------


def timeline(log: SubjectLog) -> list[TimelineEntry]:
    """The audit chain (people and engine), plus engine log entries the chain does not hold (warnings raised
    before the chain existed), in time order."""
    entries = [
        TimelineEntry(
            seq=event.seq,
            source="audit",
            type=event.type,
            type_zh=type_zh(event.type),
            actor=event.actor,
            actor_name=actor_name(event),
            role=event.role,
            role_zh=role_zh(event.role),
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
                type_zh=type_zh(kind),
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
    entries.extend(receipt_entry(receipt) for receipt in log.receipts)
    return sorted(entries, key=lambda entry: (entry.at, entry.seq or 0))


DELIVERY_OUTCOME_ZH = {"sent": "已发送", "failed": "发送失败", "unknown": "结果未知", "retrying": "待重试"}
CHANNEL_ZH = {"sms": "短信", "inbox": "站内信"}


def receipt_entry(receipt: Mapping[str, Any]) -> TimelineEntry:
    """A delivery's receipt on the duty centre's timeline: who (by name, never the phone), which channel, the
    outcome, the provider's message id or the reason, and the attempts."""
    channel, outcome = str(receipt.get("channel", "")), str(receipt.get("outcome", ""))
    return TimelineEntry(
        seq=None,
        source="delivery",
        type=f"delivery_{channel}",
        type_zh=f"{CHANNEL_ZH.get(channel, channel)}{DELIVERY_OUTCOME_ZH.get(outcome, outcome)}",
        actor="delivery",
        actor_name=str(receipt.get("name") or receipt.get("recipient") or ""),
        role=Role.SYSTEM.value,
        role_zh=Role.SYSTEM.zh,
        at=float(receipt.get("at", 0.0)),
        before={},
        after={"outcome": outcome},
        reason=str(receipt.get("reason") or ""),
        data={
            key: receipt.get(key)
            for key in ("job_id", "kind", "channel", "audience", "recipient", "provider", "message_id", "attempts")
        },
    )


def report_view(log: SubjectLog) -> ChainReportView:
    """The chain verified (`domain.audit.verify_chain`): intact, or the first bad event and why."""
    report = verify_chain(log.events, head=log.head)
    return ChainReportView(
        ok=report.ok,
        first_bad_seq=report.first_bad_seq,
        reason=report.reason,
        reason_zh=report.reason_zh,
        checked=report.checked,
        head_seq=log.head.seq,
    )


def event_view(event: AuditEvent) -> AuditEventView:
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


def subject_audit(kind: str, key: str, log: SubjectLog) -> SubjectAudit:
    """The audit trail of a device or an enterprise (`kind`), verified, with every event."""
    return SubjectAudit(
        subject_id=registry_subject(kind, key),
        report=report_view(log),
        events=[event_view(event) for event in log.events],
    )


def type_zh(kind: str) -> str:
    if kind in ActionType.__members__.values():
        return ACTION_ZH[ActionType(kind)]
    if kind in ChangeKind.__members__.values():
        return CHANGE_KIND_ZH[ChangeKind(kind)]
    return kind


def actor_name(event: AuditEvent) -> str:
    """Who acted, for people: the name recorded with the action; events written before names were recorded show
    the role (staff) or the user id (enterprise)."""
    if event.role == Role.SYSTEM.value:
        return ENGINE_ACTOR.name if event.actor == ENGINE_ACTOR.user_id else role_zh(event.role)
    name = str(event.data.get("actor_name") or "")
    if name:
        return name
    return role_zh(event.role) if event.role in STAFF_ROLES else event.actor


def role_zh(role: str) -> str:
    try:
        return ROLE_ZH[Role(role)]
    except ValueError:
        return role


# --- the registry ----------------------------------------------------------------------------------------------


def enterprise_change(change: RegistryChange[Enterprise]) -> EnterpriseChange:
    return EnterpriseChange(
        enterprise=change.subject,
        changed=change.changed,
        audit_seq=change.audit_seq,
        devices_updated=change.devices_updated,
    )


def device_change(change: RegistryChange[DeviceRegistration]) -> DeviceChange:
    return DeviceChange(device=change.subject, changed=change.changed, audit_seq=change.audit_seq)


# --- people ----------------------------------------------------------------------------------------------------


def me_view(actor: Actor) -> MeView:
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


def user_page(page: UserPage) -> Page[UserView]:
    return Page[UserView](items=[user_view(user) for user in page.users], next_cursor=page.next_token)


# --- people and rosters ----------------------------------------------------------------------------------------


def person_change(change: Change[Person]) -> PersonChange:
    return PersonChange(person=change.subject, changed=change.changed, audit_seq=change.audit_seq)


def people_page(page: PeoplePage) -> Page[Person]:
    return Page[Person](items=page.people, next_cursor=page.next_cursor)


def shift_page(shifts: list[Shift]) -> Page[Shift]:
    return Page[Shift](items=shifts)


def shift_change(change: Change[Shift], deleted: bool = False) -> ShiftChange:
    return ShiftChange(shift=change.subject, changed=change.changed, deleted=deleted, audit_seq=change.audit_seq)


def on_duty_view(on_duty: OnDuty, change: Change[Enterprise] | None = None) -> OnDutyView:
    return OnDutyView(
        enterprise_id=on_duty.enterprise_id,
        person_ids=list(on_duty.person_ids),
        people=list(on_duty.people),
        changed=change.changed if change else None,
        audit_seq=change.audit_seq if change else None,
    )


# --- outage declarations ---------------------------------------------------------------------------------------


def declaration_view(declaration: Declaration, now: float) -> DeclarationView:
    """The declaration as it stands at `now` (an ended window shows as expired before the sweep writes it)."""
    status = declaration.status_at(now)
    return DeclarationView(
        **declaration.model_dump(exclude={"status"}),
        reason_zh=declaration.reason.zh,
        status=status,
        status_zh=status.zh,
        in_effect=(window := effective_window(declaration)) is not None and window[0] <= now < window[1],
    )


def declaration_list(page: ListingPage[Declaration], now: float) -> DeclarationList:
    return DeclarationList(items=[declaration_view(d, now) for d in page.items], next_cursor=page.next_cursor)


def suppressed_findings(
    declaration: Declaration, found: Sequence[SuppressedFinding], limit: int
) -> SuppressedFindingList:
    return SuppressedFindingList(
        declaration_id=declaration.declaration_id,
        items=[
            SuppressedFindingView(
                **{name: getattr(row, name) for name in row.__slots__ if name not in ("declaration_id", "level")},
                risk_name=risk_name(row.risk_type),
                level=Level(row.level).code,
            )
            for row in found[:limit]
        ],
        truncated=len(found) > limit,
    )


def declaration_audit(declaration_id: str, log: SubjectLog) -> SubjectAudit:
    """A declaration's trail, verified, with every event."""
    return SubjectAudit(
        subject_id=declaration_subject(declaration_id),
        report=report_view(log),
        events=[event_view(event) for event in log.events],
    )


# --- notifications ---------------------------------------------------------------------------------------------


def notification_view(item: InboxItem) -> NotificationView:
    return NotificationView(
        id=item.item_id,
        kind=item.kind,
        warning_id=item.warning_id or None,
        declaration_id=item.declaration_id or None,
        level=Level(item.level).code if item.level else None,
        text=item.text,
        detail=item.detail,
        at=item.at,
        read_at=item.read_at,
    )


def notification_page(page: NotificationPage) -> Page[NotificationView]:
    return Page[NotificationView](
        items=[notification_view(item) for item in page.items], next_cursor=page.next_cursor
    )


# --- evaluation reports


def evaluation_entry_view(entry: ReportEntry) -> EvaluationEntryView:
    return EvaluationEntryView(
        report_id=entry.report_id,
        kind=entry.kind,
        label=entry.label,
        start=entry.start,
        end=entry.end,
        generated_at=entry.generated_at,
        requested_by=entry.requested_by,
        formats=[name for name in entry.keys if name in ARTIFACTS],
        counts=dict(entry.counts),
        status=entry.status,
    )


def evaluation_list(entries: list[ReportEntry]) -> EvaluationList:
    return EvaluationList(items=[evaluation_entry_view(entry) for entry in entries])


def evaluation_report_view(entry: ReportEntry, report: dict[str, Any]) -> EvaluationReportView:
    return EvaluationReportView(entry=evaluation_entry_view(entry), report=report)


def evaluation_download(entry: ReportEntry, artifact: str, url: str, expires_in: int) -> EvaluationDownload:
    return EvaluationDownload(report_id=entry.report_id, format=artifact, url=url, expires_in=expires_in)


def device_status_page(page: DevicePage) -> DeviceStatusPage:
    return DeviceStatusPage(
        items=[
            DeviceStatusView(
                device_id=item.registration.device_id,
                enterprise_id=item.registration.enterprise_id,
                enterprise_name=item.registration.enterprise_name,
                sector=item.registration.sector,
                unit_id=item.registration.unit_id,
                point_name=item.registration.display_name,
                kind=item.registration.kind,
                area_codes=list(item.registration.area_codes),
                status=item.status,
                status_zh=item.status.zh,
                last_seen=item.last_seen,
                offline_since=item.offline_since,
                declaration_id=item.declaration_id,
                location=item.registration.location,
                last_fix=None if item.last_fix is None else LastFix(**asdict(item.last_fix)),
            )
            for item in page.items
        ],
        truncated=page.truncated,
        next_cursor=page.next_cursor,
    )


# --- 通报 and rectification


def publication_view(publication: Publication, already: bool) -> PublicationView:
    return PublicationView(**asdict(publication), already_published=already)


def rectification_view(item: RectificationItem, now: float) -> RectificationView:
    return RectificationView(
        **item.model_dump(),
        problem_zh=item.problem.zh,
        status_zh=item.status.zh,
        overdue=item.overdue_at(now),
    )


def rectification_list(page: ListingPage[RectificationItem], now: float) -> RectificationList:
    return RectificationList(
        items=[rectification_view(item, now) for item in page.items], next_cursor=page.next_cursor
    )


def rectification_audit(rectification_id: str, log: SubjectLog) -> SubjectAudit:
    return SubjectAudit(
        subject_id=rectification_subject(rectification_id),
        report=report_view(log),
        events=[event_view(event) for event in log.events],
    )
