"""Who is told, by which channel (第十三条, 第十四条, DOMAIN.md §4; docs/delivery.md): the delivery job and the
rule that turns it into deliveries (one per recipient and channel).

A `DeliveryJob` is one message for people: a warning change, a reminder, an escalation, an outage declaration's
reminder or decision (more kinds later: offline and evaluation notices). It names the audiences to text and the
audiences whose inbox gets it; the rule below picks the people from who is on duty at the job's moment. Pure: the
caller passes who is on duty as a function.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.changes import DATA_QUALITY, WarningChange
from chalicelib.domain.declarations import Declaration, DeclarationStatus
from chalicelib.domain.policy import Audience, Route
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.roles import Role
from chalicelib.domain.texts import (
    SmsText,
    declaration_approved_text,
    declaration_rejected_text,
    declaration_reminder_text,
)
from chalicelib.domain.warnings import WarningRecord


class JobKind(StrEnum):
    """What a job tells. A new kind (an outage notice, an evaluation report) is a new member and a builder of
    its job; the delivery path does not change."""

    WARNING_CHANGE = "warning_change"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    DECLARATION_REMINDER = "declaration_reminder"  # an outage declaration's window ends soon
    DECLARATION_DECISION = "declaration_decision"  # a declaration approved or rejected
    EVALUATION_PUBLISHED = "evaluation_published"  # a report published (通报): each unit's own result
    RECTIFICATION_NOTICE = "rectification_notice"  # a rectification item answered, returned or accepted


class Channel(StrEnum):
    SMS = "sms"
    INBOX = "inbox"


INBOX_ALWAYS = (Audience.ENTERPRISE, Audience.DUTY, Audience.EMERGENCY)
"""第十三条: every warning, every level, in real time to the enterprise, the duty centre and the bureau."""
DATA_QUALITY_INBOX = (Audience.ENTERPRISE, Audience.DUTY)
"""A data-quality finding is no safety alarm: the enterprise and the duty centre see it, the bureau does not."""


class DeliveryJob(BaseModel):
    """One message for people, as it travels on the delivery queue (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    job_id: str = Field(min_length=1, max_length=200)  # deterministic: the same telling always has the same id
    kind: JobKind
    warning_id: str = Field(default="", max_length=64)  # what it is about: a warning,
    declaration_id: str = Field(default="", max_length=64)  # or an outage declaration,
    report_id: str = Field(default="", max_length=64)  # or an evaluation report (exactly one of them)
    enterprise_id: str = Field(default="", max_length=64)  # empty only for a report's summary to the staff
    level: int  # the warning's; 0 for a declaration or a report
    at: float  # the moment told about: whose shift it is is read at this time
    template_id: str
    params: dict[str, str]
    detail: str = ""  # the long form for the inbox (a warning change's app text)
    sms_audiences: tuple[Audience, ...] = ()
    inbox_audiences: tuple[Audience, ...] = ()
    regulators: tuple[str, ...] = ()  # department codes told (the regulator audience)
    areas: tuple[str, ...] = ()  # area codes told (the area audience)

    @model_validator(mode="after")
    def _one_subject(self) -> DeliveryJob:
        if [bool(self.warning_id), bool(self.declaration_id), bool(self.report_id)].count(True) != 1:
            raise ValueError("a job is about exactly one warning, one declaration or one report")
        if not self.enterprise_id and (
            self.warning_id
            or self.declaration_id
            or Audience.ENTERPRISE
            in (
                *self.sms_audiences,
                *self.inbox_audiences,
            )
        ):
            raise ValueError("a job for an enterprise names it")
        return self

    @property
    def text(self) -> SmsText:
        return SmsText(self.template_id, self.params)

    @property
    def subject(self) -> str:
        """Whose receipts these are: the warning id, `declaration:{id}` (the declaration's audit subject) or
        `evaluation:{report id}`."""
        if self.report_id:
            return f"evaluation:{self.report_id}"
        return self.warning_id or f"declaration:{self.declaration_id}"


def inbox_audiences(sms: Sequence[Audience], data_quality: bool = False) -> tuple[Audience, ...]:
    """Whose inbox gets a warning change: the three parties of 第十三条 (a data-quality finding: the enterprise and
    the duty centre), and everyone texted."""
    base = DATA_QUALITY_INBOX if data_quality else INBOX_ALWAYS
    return tuple(dict.fromkeys((*base, *sms)))


@dataclass(frozen=True, slots=True)
class Target:
    """One delivery of a job: to a person's phone, or to an inbox.

    `recipient` is stable per person: the person id, `contact:{enterprise}:{phone}` for an enterprise contact; for
    an inbox the inbox key (`inbox_key`)."""

    channel: Channel
    audience: Audience
    recipient: str
    name: str = ""
    phone: str | None = None


OnDuty = Callable[[Role, str | None], Sequence[Person]]
"""Who of a role is on duty at the job's moment (`Rosters.on_duty` bound to the time); for `enterprise` the
enterprise id is given."""


def inbox_key(audience: Audience, job: DeliveryJob, scope: str | None = None) -> str:
    """The inbox an audience reads (docs/delivery.md "Inboxes"): one per enterprise, one for the duty centre, one
    for the bureau, one per regulating department, one per area."""
    if audience is Audience.ENTERPRISE:
        return f"enterprise:{job.enterprise_id}"
    if audience in (Audience.REGULATOR, Audience.AREA):
        return f"{audience.value}:{scope}"
    return audience.value


def inbox_keys_of(
    role: Role, enterprise_id: str | None, department: str | None, areas: Sequence[str]
) -> list[str]:
    """The inboxes a signed-in user reads: the same keys as `inbox_key`, from the user's role and scope."""
    if role is Role.ENTERPRISE:
        return [f"enterprise:{enterprise_id}"] if enterprise_id else []
    if role is Role.REGULATOR:
        return [f"regulator:{department}"] if department else []
    if role is Role.AREA:
        return [f"area:{code}" for code in areas]
    if role in (Role.DUTY, Role.EMERGENCY):
        return [role.value]
    return []


def targets(job: DeliveryJob, on_duty: OnDuty, enterprise: Enterprise | None) -> tuple[Target, ...]:
    """The deliveries of a job: inboxes first (they cannot fail for a person's sake), then one SMS per person,
    each person texted once per job even when in several audiences."""
    found: list[Target] = []
    for audience in job.inbox_audiences:
        if audience is Audience.REGULATOR:
            scopes: Sequence[str | None] = job.regulators
        elif audience is Audience.AREA:
            scopes = job.areas
        else:
            scopes = (None,)
        for scope in scopes:
            found.append(Target(Channel.INBOX, audience, inbox_key(audience, job, scope)))
    seen: set[str] = set()
    for audience in job.sms_audiences:
        for target in _texted(audience, job, on_duty, enterprise):
            key = target.phone or target.recipient
            if key not in seen:
                seen.add(key)
                found.append(target)
    return tuple(found)


def _texted(audience: Audience, job: DeliveryJob, on_duty: OnDuty, enterprise: Enterprise | None) -> list[Target]:
    if audience is Audience.ENTERPRISE:
        people = [p for p in on_duty(Role.ENTERPRISE, job.enterprise_id) if p.enterprise_id == job.enterprise_id]
        if not people and enterprise is not None:  # nobody named on duty: the enterprise's contacts
            return [
                Target(
                    Channel.SMS,
                    audience,
                    contact_key(job.enterprise_id, contact.phone),
                    contact.name,
                    contact.phone or None,
                )
                for contact in enterprise.contacts
            ]
        return [_person(audience, person) for person in people]
    people = list(on_duty(audience, None))
    if audience is Audience.REGULATOR:
        people = [p for p in people if p.department in job.regulators]
    elif audience is Audience.AREA:
        people = [p for p in people if set(p.area_codes) & set(job.areas)]
    return [_person(audience, person) for person in people if person.role == audience.value]


def contact_key(enterprise_id: str, phone: str) -> str:
    """An enterprise contact as a recipient: stable per phone, without the phone (logs and receipts name no
    number)."""
    digest = hashlib.blake2b(phone.encode("utf-8", "backslashreplace"), digest_size=4).hexdigest()
    return f"contact:{enterprise_id}:{digest}"


def _person(audience: Audience, person: Person) -> Target:
    return Target(Channel.SMS, audience, person.person_id, person.name, person.phone or None)


def inbox_entry_id(job_id: str, at: float) -> int:
    """An inbox entry's id: its time in milliseconds, then 40 bits of a hash of its job (newest first, and one
    entry per job in an inbox however often it is written)."""
    digest = hashlib.blake2b(job_id.encode("utf-8", "backslashreplace"), digest_size=5).digest()
    return int(at * 1000) * 10**13 + int.from_bytes(digest, "big")


def job_id(kind: JobKind, subject_id: str, *parts: object) -> str:
    """`{kind}:{warning or declaration id}:{parts…}`: the same telling (a redelivered batch, a retried due
    message) yields the same id, and the delivery ledger sends each (job, recipient, channel) once."""
    return ":".join((kind.value, subject_id, *(str(part) for part in parts)))


# --- the jobs of each kind ---------------------------------------------------------------------------------------


def change_job(change: WarningChange, route: Route, text: SmsText, detail: str) -> DeliveryJob:
    """A warning change: SMS by the route (the level's audiences), inboxes by 第十三条."""
    return DeliveryJob(
        job_id=job_id(JobKind.WARNING_CHANGE, change.warning_id, change.event_seq),
        kind=JobKind.WARNING_CHANGE,
        warning_id=change.warning_id,
        enterprise_id=change.enterprise_id,
        level=change.level or change.previous_level,
        at=change.at,
        template_id=text.template_id,
        params=dict(text.params),
        detail=detail,
        sms_audiences=tuple(route.audiences),
        inbox_audiences=inbox_audiences(route.audiences, data_quality=change.risk_type == DATA_QUALITY),
        regulators=tuple(route.regulators),
        areas=tuple(route.areas),
    )


def reminder_job(record: WarningRecord, slot: float, text: SmsText, by_sms: bool = True) -> DeliveryJob:
    """A reminder while nobody has acknowledged (第十四条): the enterprise's inbox every time, and its on-duty
    person by SMS while `by_sms` (the level's first `reminder_sms` reminders, `reminder_by_sms`)."""
    return DeliveryJob(
        job_id=job_id(JobKind.REMINDER, record.warning_id, int(slot)),
        kind=JobKind.REMINDER,
        warning_id=record.warning_id,
        enterprise_id=record.enterprise_id,
        level=record.level,
        at=slot,
        template_id=text.template_id,
        params=dict(text.params),
        sms_audiences=(Audience.ENTERPRISE,) if by_sms else (),
        inbox_audiences=(Audience.ENTERPRISE,),
    )


def reminder_by_sms(slot: float, armed_at: float, reminder_s: float, reminder_sms: int) -> bool:
    """Whether the reminder of `slot` also texts the on-duty person: the first `reminder_sms` reminders since the
    deadlines were armed (the raise, or the last level change) do; later ones go to the inbox only
    (docs/delivery.md "Reminders")."""
    if reminder_s <= 0:
        return False
    ordinal = round((slot - armed_at) / reminder_s)
    return ordinal <= reminder_sms


def escalation_job(
    record: WarningRecord,
    audiences: Sequence[Audience],
    discriminator: str,
    at: float,
    text: SmsText,
    regulators: Sequence[str],
    areas: Sequence[str],
) -> DeliveryJob:
    """An escalation (第十五条): its tier's audiences, by SMS and inbox. `discriminator` tells escalations of one
    warning apart (due version, stage, tier)."""
    return DeliveryJob(
        job_id=job_id(JobKind.ESCALATION, record.warning_id, discriminator),
        kind=JobKind.ESCALATION,
        warning_id=record.warning_id,
        enterprise_id=record.enterprise_id,
        level=record.level,
        at=at,
        template_id=text.template_id,
        params=dict(text.params),
        sms_audiences=tuple(audiences),
        inbox_audiences=tuple(audiences),
        regulators=tuple(regulators),
        areas=tuple(areas),
    )


def declaration_reminder_job(declaration: Declaration, at: float) -> DeliveryJob:
    """The declaration's window ends soon (第十六条, docs/declarations.md): the declaring enterprise's on-duty
    person by SMS, and its inbox. Once per declaration (the sweep reminds at least once; the ledger dedupes)."""
    text = declaration_reminder_text(
        declaration.enterprise_name or declaration.enterprise_id,
        declaration.reason.zh,
        declaration.ends_at,
        declaration.declaration_id,
    )
    return _declaration_job(
        declaration, JobKind.DECLARATION_REMINDER, at, text, inbox=(Audience.ENTERPRISE,), parts=()
    )


def declaration_decision_job(declaration: Declaration) -> DeliveryJob:
    """A regulator approved or rejected the declaration: the enterprise by SMS and inbox, and the duty centre's
    inbox (the declaration was made to it, 第十六条). One job per decision (a decision is final)."""
    if declaration.status not in (DeclarationStatus.APPROVED, DeclarationStatus.REJECTED):
        raise ValueError(f"declaration {declaration.declaration_id} is {declaration.status}, not decided")
    name = declaration.enterprise_name or declaration.enterprise_id
    if declaration.status is DeclarationStatus.APPROVED:
        text = declaration_approved_text(
            name, declaration.reason.zh, declaration.starts_at, declaration.ends_at, declaration.declaration_id
        )
    else:
        text = declaration_rejected_text(
            name, declaration.reason.zh, declaration.rejection_reason or "", declaration.declaration_id
        )
    return _declaration_job(
        declaration,
        JobKind.DECLARATION_DECISION,
        declaration.verified_at or declaration.updated_at,
        text,
        inbox=(Audience.ENTERPRISE, Audience.DUTY),
        parts=(declaration.status.value,),
    )


def _declaration_job(
    declaration: Declaration,
    kind: JobKind,
    at: float,
    text: SmsText,
    inbox: tuple[Audience, ...],
    parts: tuple[str, ...],
) -> DeliveryJob:
    return DeliveryJob(
        job_id=job_id(kind, declaration.declaration_id, *parts),
        kind=kind,
        declaration_id=declaration.declaration_id,
        enterprise_id=declaration.enterprise_id,
        level=0,
        at=at,
        template_id=text.template_id,
        params=dict(text.params),
        sms_audiences=(Audience.ENTERPRISE,),
        inbox_audiences=inbox,
    )


def evaluation_result_job(
    report_id: str, version: str, enterprise_id: str, at: float, text: SmsText, detail: str
) -> DeliveryJob:
    """A published report's result for one enterprise (通报): its inbox, and its on-duty person by SMS. One job per
    (report version, enterprise): publishing the same version again tells nobody twice."""
    return DeliveryJob(
        job_id=job_id(JobKind.EVALUATION_PUBLISHED, report_id, version, f"enterprise:{enterprise_id}"),
        kind=JobKind.EVALUATION_PUBLISHED,
        report_id=report_id,
        enterprise_id=enterprise_id,
        level=0,
        at=at,
        template_id=text.template_id,
        params=dict(text.params),
        detail=detail,
        sms_audiences=(Audience.ENTERPRISE,),
        inbox_audiences=(Audience.ENTERPRISE,),
    )


def evaluation_summary_job(
    report_id: str,
    version: str,
    audiences: Sequence[Audience],
    at: float,
    text: SmsText,
    detail: str,
    *,
    regulators: Sequence[str] = (),
    areas: Sequence[str] = (),
) -> DeliveryJob:
    """A published report's summary for the staff (inbox only): a regulator department's sectors, an area, or the
    whole district for the duty centre and the bureau."""
    scope = ",".join((*(a.value for a in audiences), *regulators, *areas))
    return DeliveryJob(
        job_id=job_id(JobKind.EVALUATION_PUBLISHED, report_id, version, scope),
        kind=JobKind.EVALUATION_PUBLISHED,
        report_id=report_id,
        level=0,
        at=at,
        template_id=text.template_id,
        params=dict(text.params),
        detail=detail,
        inbox_audiences=tuple(audiences),
        regulators=tuple(regulators),
        areas=tuple(areas),
    )


def rectification_notice_job(
    report_id: str,
    rectification_id: str,
    change: str,
    seq: int,
    enterprise_id: str,
    at: float,
    text: SmsText,
    detail: str,
    *,
    regulators: Sequence[str] = (),
) -> DeliveryJob:
    """A rectification item changed (its receipts go with its report's, `evaluation:{report id}`): `answered` →
    the inboxes of its sector's regulator departments and the duty centre; `returned` → the enterprise by SMS and
    inbox; `accepted` → the enterprise's inbox. One job per change (`seq`: the item's version after it)."""
    if change == "answered":
        sms: tuple[Audience, ...] = ()
        inbox: tuple[Audience, ...] = (Audience.REGULATOR, Audience.DUTY)
    else:
        sms = (Audience.ENTERPRISE,) if change == "returned" else ()
        inbox = (Audience.ENTERPRISE,)
    return DeliveryJob(
        job_id=job_id(JobKind.RECTIFICATION_NOTICE, rectification_id, seq, change),
        kind=JobKind.RECTIFICATION_NOTICE,
        report_id=report_id,
        enterprise_id=enterprise_id,
        level=0,
        at=at,
        template_id=text.template_id,
        params=dict(text.params),
        detail=detail,
        sms_audiences=sms,
        inbox_audiences=inbox,
        regulators=tuple(regulators) if change == "answered" else (),
    )
