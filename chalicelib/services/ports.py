"""Ports: every interface the use cases need from the outside world, and the small values they exchange through
them. Adapters (`chalicelib/adapters/`) implement them; tests fake them. Nothing here knows boto3 or PynamoDB.

Who uses which:
- ingest (`ingest.py`): Registry, StateStore, WarningStore, Quarantine, Notifier, DeliveryLedger, Workflow,
  DeliveryJobs;
- warning actions (`warning_actions.py`): WarningRepository, WarningListings, UserDirectory (the assignee of a
  reassignment), EvidenceStore, Timers;
- registry administration (`registry_admin.py`): RegistryRepository;
- people (`people.py`): UserDirectory, RegistryRepository (the enterprise a user belongs to);
- workflow (`workflow.py`): Executions, WarningReader, Escalator, OpenWarnings, Directory, Publisher,
  DeliveryJobs;
- delivery (`delivery.py`): DeliveryLedger, Receipts, Rosters, Directory, SmsChannel, Inbox;
- declarations (`declarations.py`): DeclarationStore, RegistryRepository (reads), DeclarationNotices;
- the offline watch (`presence.py`, `offline_watch.py`): PresenceLedger, OfflineState, OfflineSink;
- evaluation reports (`evaluation.py`): EvaluationFacts, DeviceDayLedger, ReportRenderer, ReportArchive,
  RectificationStore (overdue items, optional);
- 通报 and rectification (`rectification.py`): ReportArchive (reads), RectificationStore, DeliveryJobs,
  EvidenceStore;
- the online-time ledger (`online_ledger.py`): OutageLedger, DeviceDirectory, DeviceDaySource (the evaluation's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.domain.registry import DeviceRegistration, Enterprise, Person
from chalicelib.domain.warnings import WarningRecord

if TYPE_CHECKING:  # used in annotations only: not loaded with the ports (cold start, bench/coldstart.py)
    from chalicelib.domain.access import Scope
    from chalicelib.domain.audit import AuditEvent, ChainHead
    from chalicelib.domain.changes import WarningChange
    from chalicelib.domain.declarations import Declaration, DeclarationStatus, SuppressedFinding
    from chalicelib.domain.delivery import DeliveryJob
    from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, WarningFacts
    from chalicelib.domain.evaluation.indicators import EnterpriseProfile
    from chalicelib.domain.evaluation.periods import Period
    from chalicelib.domain.evaluation.rectification import RectificationItem, RectificationStatus
    from chalicelib.domain.lifecycle import Actor, Role, Transition
    from chalicelib.domain.policy import Route
    from chalicelib.domain.presence import Window
    from chalicelib.domain.rosters import Shift
    from chalicelib.domain.sectors import Sector
    from chalicelib.domain.state import DeviceState, UnitState
    from chalicelib.domain.texts import SmsText


class ConcurrentUpdateError(Exception):
    """A conditional write lost a race: somebody else changed the item since it was read."""


class DeliveryNotSentError(Exception):
    """The channel answered that it did not take the message (throttled, refused, unreachable before sending):
    sending again cannot double it. Any other exception from a send leaves the outcome unknown."""


# --- the ingest ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    received_at: float  # the record's arrival in the stream: a redelivery maps to the same row
    record_id: str
    reason: str
    detail: str
    payload: bytes
    topic: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    audience: str
    name: str
    phone: str


@dataclass(frozen=True, slots=True)
class Notification:
    change: WarningChange
    route: Route
    sms: str
    app: str
    recipients: tuple[Recipient, ...]
    text: SmsText | None = None  # the SMS as its template and parameters (`sms` is it rendered)


class Registry(Protocol):
    """Devices, enterprises and the people behind each audience."""

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]: ...

    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def people(self) -> Sequence[Person]: ...


class StateStore(Protocol):
    """Grading state per device and per unit, with optimistic concurrency (the state's `version`)."""

    def load_devices(self, device_ids: Iterable[str]) -> dict[str, DeviceState]: ...

    def load_units(self, unit_ids: Iterable[str]) -> dict[str, UnitState]: ...

    def save_device(self, state: DeviceState, last_seen: float) -> None:
        """Write if the stored version is still `state.version`, then bump it; else ConcurrentUpdateError."""
        ...

    def save_unit(self, state: UnitState) -> None: ...

    def shard_lease(self, shard_id: str) -> ShardLease | None:
        """Who holds the shard now (strongly consistent; None: nobody ever took it)."""
        ...

    def take_shard(self, shard_id: str, owner: str, seen: ShardLease | None) -> ShardLease:
        """Take the shard over from the holder `seen` (epoch + 1); ConcurrentUpdateError when it moved since."""
        ...

    def load_checkpoint(self, shard_id: str) -> ShardCheckpoint | None: ...

    def save_checkpoint(self, shard_id: str, checkpoint: ShardCheckpoint) -> None:
        """ConcurrentUpdateError when a holder of a later epoch has written one: this writer has lost the shard."""
        ...


@dataclass(frozen=True, slots=True)
class ShardLease:
    """The container that grades a shard now; every takeover bumps the epoch (docs/decisions.md "Shard lease")."""

    owner: str
    epoch: int


@dataclass(frozen=True, slots=True)
class ShardCheckpoint:
    """Every record applied on the shard through `sequence` is in the stored device states or in `states`: the
    states whose stored item lags the holder's (coalesced watermarks and rolling sums), as their JSON text."""

    sequence: str
    epoch: int
    states: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One record read back from the device stream: the stream is the log, the stored states a checkpoint."""

    sequence: str  # the Kinesis sequence number
    partition_key: str  # the device id (the topic rule's `${topic(4)}`, the lifecycle rule's `${clientId}`)
    data: bytes
    arrival_s: float  # approximateArrivalTimestamp


class StreamLog(Protocol):
    """The device stream read back (docs/decisions.md "What a container restart loses")."""

    def read(self, shard_id: str, after_sequence: str, before_sequence: str) -> Iterable[StreamEntry]:
        """The shard's records after `after_sequence` and before `before_sequence`, in order."""
        ...


class WarningStore(Protocol):
    """The warnings as the engine changes them: each change applied once, and logged, under redelivery."""

    def create(self, record: WarningRecord) -> bool:
        """Store a new warning; False when it already exists (a redelivered raise)."""
        ...

    def apply_change(self, change: WarningChange) -> bool:
        """Apply an engine level change or recovery; False when it was applied before (idempotent)."""
        ...

    def append_engine_event(self, change: WarningChange) -> bool:
        """Append the change to the warning's event log; False when this exact event is already there."""
        ...

    def get(self, warning_id: str) -> WarningRecord | None: ...


class Quarantine(Protocol):
    """Where rejected messages are kept, with their reason and original bytes, keyed so a redelivery rewrites
    its own row."""

    def put(self, items: Sequence[QuarantinedMessage]) -> None: ...


class Notifier(Protocol):
    """The warning topic (system fan-out to the consoles' audience queues; people are told by delivery jobs)."""

    def publish(self, notification: Notification) -> None:
        """Publish one warning change to the warning topic, with the attributes the audience subscriptions filter
        on and the change's dedupe key (subscribers drop a second copy)."""
        ...


class ClaimOutcome(StrEnum):
    MINE = "mine"  # this sender holds the delivery: send, then settle
    DONE = "done"  # sent before (or its outcome is unknown): never again
    BUSY = "busy"  # another live sender holds it: try again later


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # the channel refused it: a later attempt sends again
    UNKNOWN = "unknown"  # the send raised without telling whether it went out: not repeated, counted and logged
    REJECTED = "rejected"  # the channel refused it for good (a bad number, a bad template): never again


@dataclass(frozen=True, slots=True)
class DeliveryKey:
    """One telling: a warning change (its engine event) to one channel address."""

    warning_id: str
    event_seq: int
    channel: str  # "topic" or "sms"
    address: str  # "-" for the topic, the phone number for an SMS

    @property
    def name(self) -> str:
        return f"{self.channel}:{self.address}"

    @classmethod
    def of_job(cls, job_id: str, channel: str, recipient: str) -> DeliveryKey:
        """One delivery of a delivery job: (job, recipient, channel); the job id stands in the warning's place."""
        return cls(job_id, 0, channel, recipient)


class DeliveryLedger(Protocol):
    """Claim before sending, settle after: each (change, recipient) is told once under retries, lost responses,
    restarts and racing containers."""

    def claim(self, key: DeliveryKey, owner: str, now: float, lease_s: float) -> ClaimOutcome:
        """Take the delivery when nobody has, when `owner` already holds it unsent, or when another holder's
        claim is older than `lease_s` without an outcome (that sender died)."""
        ...

    def settle(self, key: DeliveryKey, owner: str, outcome: DeliveryOutcome, now: float) -> None:
        """Record the outcome, if `owner` still holds the claim."""
        ...


class Workflow(Protocol):
    """The disposal timers, as the ingest needs them (`workflow.WorkflowTimers`)."""

    def track(self, warning_id: str) -> None:
        """Arm (idempotently) the timer of the warning's stored due times and stop the one they supersede."""
        ...


# --- audit trails ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """Where a call came from, for the audit trail."""

    source_ip: str | None = None
    app: str | None = None


UNKNOWN_ORIGIN = Origin()


@dataclass(frozen=True)
class SubjectLog:
    """A subject's audit trail as stored: to be verified (`domain.audit.verify_chain`) and shown."""

    events: list[AuditEvent]  # the audit chain as stored, by seq
    head: ChainHead  # the anchor kept with the subject
    engine_log: list[dict[str, Any]] = field(default_factory=list)  # engine entries (warnings only)
    receipts: list[dict[str, Any]] = field(default_factory=list)  # deliveries to people (warnings only)


# --- warnings: listings and actions ----------------------------------------------------------------------------

Key = dict[str, str]
"""A listing's position: the index's sort key and the warning id of the entry to resume right after."""
Listing = Iterator[tuple[WarningRecord, Key]]
NEWEST_KEY = ("raised_at", "warning_id")  # the key fields of `WarningListings.newest_first`
URGENT_KEY = ("urgency", "warning_id")  # ... and of `most_urgent_first`


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
        """Every warning of the scope, the most recently raised first; keys of `NEWEST_KEY`."""
        ...

    def most_urgent_first(self, scope: Scope, after: Key | None, page_size: int) -> Listing:
        """The open warnings of the scope, red first and within a level the oldest first; keys of `URGENT_KEY`."""
        ...


class Timers(Protocol):
    """The disposal timers, as a person's action needs them (`workflow.WorkflowTimers`)."""

    def superseding(self, record: WarningRecord, before_version: int) -> bool:
        """Arm the timer of the record's new due times and stop the one of `before_version`."""
        ...


class EvidenceStore(Protocol):
    """Where the photos of a warning's evidence are uploaded to (straight from the app, never through us)."""

    def upload_url(self, key: str, content_type: str, expires_in: int) -> str:
        """A presigned PUT for exactly this key and content type."""
        ...


# --- users -----------------------------------------------------------------------------------------------------


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
    """The user pool: accounts, their role group and scope attributes."""

    def create_user(self, user: NewUser) -> UserAccount:
        """Conflict when the username is taken."""
        ...

    def list_users(self, limit: int, token: str | None = None, roles: Sequence[Role] = ...) -> UserPage: ...

    def user(self, username: str) -> UserAccount:
        """NotFound when there is no such user."""
        ...


# --- the registry ----------------------------------------------------------------------------------------------

RegistrySubject = DeviceRegistration | Enterprise | Person


def registry_subject(kind: str, key: str) -> str:
    """The audit subject of a device (`device:{id}`), an enterprise (`enterprise:{id}`), a person (`person:{id}`)
    or a shift (`shift:{id}`)."""
    return f"{kind}:{key}"


def subject_of(subject: RegistrySubject) -> str:
    if isinstance(subject, DeviceRegistration):
        return registry_subject("device", subject.device_id)
    if isinstance(subject, Person):
        return registry_subject("person", subject.person_id)
    return registry_subject("enterprise", subject.enterprise_id)


@dataclass(frozen=True)
class AuditStamp:
    """Who changes a registry subject, when, why and from where: the audit event's fields beside the change."""

    actor: str
    role: str
    at: float
    reason: str = ""
    source_ip: str | None = None
    app: str | None = None

    @classmethod
    def of(cls, actor: Actor, at: float, reason: str, origin: Origin) -> AuditStamp:
        return cls(actor.user_id, actor.role.value, at, reason, origin.source_ip, origin.app)


class RegistryRepository(Protocol):
    """Enterprises and devices; every write is chained in the subject's audit trail."""

    def device(self, device_id: str) -> DeviceRegistration | None: ...

    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def devices_of(self, enterprise_id: str) -> list[DeviceRegistration]: ...

    def put(self, subject: RegistrySubject, stamp: AuditStamp) -> AuditEvent | None:
        """Register or change a device or an enterprise, with its audit event (`{kind}_registered` or
        `{kind}_updated`) chained under `subject_of(subject)`; None when nothing changed (no event, no write)."""
        ...

    def log(self, subject_id: str) -> SubjectLog: ...


class RosterRepository(Protocol):
    """People and duty shifts (and the enterprises whose on-duty persons they are); every write is chained in the
    subject's audit trail (`person:{id}`, `shift:{id}`, `enterprise:{id}`)."""

    def person(self, person_id: str) -> Person | None: ...

    def people(self) -> list[Person]:
        """Every registered person, by (role, person id)."""
        ...

    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def put(self, subject: RegistrySubject, stamp: AuditStamp) -> AuditEvent | None:
        """As `RegistryRepository.put` (people: `person_registered` / `person_updated`)."""
        ...

    def shift(self, shift_id: str) -> Shift | None: ...

    def shifts_starting(self, role: str, start: int, end: int) -> list[Shift]:
        """The role's shifts starting in `[start, end]` (one bounded query), by start."""
        ...

    def put_shift(self, shift: Shift, stamp: AuditStamp) -> AuditEvent | None:
        """Write a shift (`shift_registered` / `shift_updated` under `shift:{id}`); None when nothing changed."""
        ...

    def delete_shift(self, shift_id: str, stamp: AuditStamp) -> AuditEvent | None:
        """Remove a shift (`shift_deleted`); None when there was none."""
        ...

    def log(self, subject_id: str) -> SubjectLog: ...


# --- the workflow ----------------------------------------------------------------------------------------------


class Executions(Protocol):
    """Step Functions, as far as the timers need it."""

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start a timer; False when one of that name exists already (idempotent by name)."""
        ...

    def stop(self, name: str) -> None:
        """Stop a timer if it still runs; errors (gone, finished) are ignored."""
        ...

    def running_names(self) -> set[str]:
        """The names of the RUNNING timers."""
        ...


class WarningReader(Protocol):
    """One warning as stored (with its due times)."""

    def get(self, warning_id: str) -> WarningRecord | None: ...


class Escalator(Protocol):
    """The audited action path (`warning_actions.SystemActions`): what fell due is recorded like a person's
    action, by the system actor; InvalidTransition when the warning moved on meanwhile."""

    def act(self, actor: Actor, warning_id: str, payload: Mapping[str, Any]) -> object: ...


class OpenWarnings(Protocol):
    """Every open warning (the sweeper's round)."""

    def open_warnings(self) -> Iterable[WarningRecord]: ...


class Directory(Protocol):
    """Enterprises and the people behind each audience, for telling them."""

    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def people(self) -> Sequence[Person]: ...


class Publisher(Protocol):
    """The escalation topic: the consoles' queues subscribe by audience."""

    def publish(self, body: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None: ...


# --- channels: SMS ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One text to one person, in both shapes a provider may need: a template with parameters (mainland China
    providers send only pre-approved templates under a registered signature) and the rendered text (free-text
    providers, e.g. SNS)."""

    phone: str  # E.164, e.g. "+8613800138000"
    template_id: str  # our logical template, e.g. "warning_raised"; each provider maps it to its own code
    params: Mapping[str, str]  # the template's parameters by name
    text: str  # the rendered Chinese text (≤ 70 characters, signature included), for free-text channels
    dedupe_key: str  # one telling (a warning change to this person): the provider's out id, for tracing


@dataclass(frozen=True, slots=True)
class SmsReceipt:
    """The provider took the message."""

    provider: str  # "aliyun", "sns"
    message_id: str  # the provider's id of the message (Aliyun BizId, SNS MessageId)
    request_id: str | None = None  # the provider's id of the call, for its support desk


class SmsRejectReason(StrEnum):
    """Why a message can never go out as it is: sending it again cannot help."""

    INVALID_PHONE = "invalid_phone"  # not E.164, or not a number this provider serves
    UNKNOWN_TEMPLATE = "unknown_template"  # no provider template is configured for the logical template
    MISSING_PARAM = "missing_param"  # a parameter the template needs is absent or empty
    PARAM_TOO_LONG = "param_too_long"  # a parameter is longer than the provider allows
    TEXT_TOO_LONG = "text_too_long"  # the free text is longer than one message
    TEMPLATE_INVALID = "template_invalid"  # the provider knows no approved template of that code, or its params
    SIGNATURE_INVALID = "signature_invalid"  # the signature (签名) is not approved or does not fit the template
    CONTENT_REJECTED = "content_rejected"  # the content trips the provider's filters (keywords, links)
    INVALID_REQUEST = "invalid_request"  # the provider refused the request's shape
    PROVIDER_REFUSED = "provider_refused"  # any other refusal the provider calls the caller's fault


class SmsUnavailableReason(StrEnum):
    """Why a message did not go out now although it may later: send it again after a delay."""

    THROTTLED = "throttled"  # the provider's rate or frequency limits
    PROVIDER_ERROR = "provider_error"  # the provider failed (5xx, its system error, an unreadable answer)
    TIMEOUT = "timeout"  # no answer in time: the message may have gone out
    CONNECTION = "connection"  # no connection was made
    CREDENTIALS = "credentials"  # the access key could not be read, or the provider refused it (rotated?)
    ACCOUNT = "account"  # the provider account cannot send now (balance, daily or monthly quota)


class SmsSendError(Exception):
    """A send that did not produce a receipt. `reason` is ours; `provider_code` / `provider_message` are the
    provider's words, for the logs and the operators (never branch on the message)."""

    def __init__(
        self,
        reason: str,
        *,
        provider: str = "",
        provider_code: str | None = None,
        provider_message: str | None = None,
        request_id: str | None = None,
        detail: str = "",
    ) -> None:
        self.reason = reason
        self.provider = provider
        self.provider_code = provider_code
        self.provider_message = provider_message
        self.request_id = request_id
        self.detail = detail
        words = ", ".join(
            part
            for part in (
                provider,
                f"code={provider_code}" if provider_code else "",
                f"request={request_id}" if request_id else "",
                detail,
                provider_message or "",
            )
            if part
        )
        super().__init__(f"{reason} ({words})" if words else str(reason))


class SmsRejected(SmsSendError):  # noqa: N818 - the name the delivery handler is written against
    """Permanent: the message was not sent and never will be as it is (do not retry; record it, alert)."""

    reason: SmsRejectReason

    def __init__(
        self,
        reason: SmsRejectReason | str,
        *,
        provider: str = "",
        provider_code: str | None = None,
        provider_message: str | None = None,
        request_id: str | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(
            SmsRejectReason(reason),
            provider=provider,
            provider_code=provider_code,
            provider_message=provider_message,
            request_id=request_id,
            detail=detail,
        )


class SmsUnavailable(SmsSendError):  # noqa: N818 - likewise
    """Transient: retry later. `maybe_sent` is True when the provider may have taken the message although no
    receipt came back (a timeout, an unreadable answer): a retry may then text the person twice."""

    reason: SmsUnavailableReason

    def __init__(
        self,
        reason: SmsUnavailableReason | str,
        *,
        provider: str = "",
        provider_code: str | None = None,
        provider_message: str | None = None,
        request_id: str | None = None,
        detail: str = "",
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(
            SmsUnavailableReason(reason),
            provider=provider,
            provider_code=provider_code,
            provider_message=provider_message,
            request_id=request_id,
            detail=detail,
        )
        self.maybe_sent = maybe_sent


class SmsChannel(Protocol):
    """An SMS provider (`chalicelib/adapters/channels/`): one message, one call, no retries of its own (the
    delivery queue retries). Checks what it can before calling the provider, so a bad message costs no call."""

    def send(self, message: SmsMessage) -> SmsReceipt:
        """The provider's receipt; SmsRejected when the message can never go out as it is; SmsUnavailable when
        it may go out later."""
        ...


class Rosters(Protocol):
    """Who is on duty (第十四条 专人; the duty centre's 7x24 shifts): whom a message for a role reaches now."""

    def on_duty(self, role: Role, at: float, enterprise_id: str | None = None) -> Sequence[Person]:
        """The people of `role` on duty at `at` (epoch seconds). For `duty`: whoever's shift covers `at`, every
        duty officer when no shift covers it (too many told beats nobody told). For `enterprise` (with
        `enterprise_id`): that enterprise's on-duty person(s); empty when none is named (the caller falls back to
        the enterprise's contacts). Other roles have no shifts: every person of the role."""
        ...


# --- outage declarations (申报) ----------------------------------------------------------------------------------


def declaration_subject(declaration_id: str) -> str:
    """The audit subject of a declaration (`declaration:{id}`)."""
    return f"declaration:{declaration_id}"


class DeclarationStore(Protocol):
    """Declarations with optimistic versioning; every change chained in the audit trail of
    `declaration_subject(id)`. Listings read indexes, never the whole table."""

    def get(self, declaration_id: str) -> Declaration | None: ...

    def of_enterprise(self, enterprise_id: str) -> list[Declaration]:
        """Every declaration of the enterprise, the newest first."""
        ...

    def open(self) -> list[Declaration]:
        """The pending and approved declarations (as stored: some may have ended and await the sweep), by end."""
        ...

    def history(
        self,
        enterprise_id: str,
        statuses: frozenset[DeclarationStatus] | None,
        after: str | None,
        page_size: int,
    ) -> Iterator[tuple[Declaration, str]]:
        """The enterprise's declarations stored with one of `statuses` (None: any), the newest first, each with its
        position, strictly after the position `after`; read from an index keyed by status, `page_size` at a time,
        only as far as the caller consumes."""
        ...

    def open_listing(self, after: str | None, page_size: int) -> Iterator[tuple[Declaration, str]]:
        """`open()` as a listing: by end, each with its position, strictly after `after`, read a page at a time."""
        ...

    def save(self, declaration: Declaration, event_type: str, stamp: AuditStamp) -> AuditEvent:
        """Store `declaration`, whose `version` is the stored one (0: new), as version + 1, with its audit event
        (`event_type`, before and after); ConcurrentUpdateError when somebody else wrote it since it was read (or
        it exists already, for a new one). Answers the event chained."""
        ...

    def log(self, declaration_id: str) -> SubjectLog: ...


class DeclarationNotices(Protocol):
    """Telling people of declarations: delivery jobs on the delivery queue (`services.declarations.
    DeclarationNoticeJobs`); a logging no-op where a stage has no delivery queue."""

    def remind(self, declaration: Declaration, at: float) -> None:
        """The declaration's window ends soon: declare again if the outage goes on. Called at least once per
        declaration (the job id is per declaration: the delivery ledger sends it once)."""
        ...

    def decided(self, declaration: Declaration) -> None:
        """A regulator approved or rejected the declaration (its stored, decided state)."""
        ...


class SuppressedFindings(Protocol):
    """The findings a declaration suppressed (DOMAIN.md §5: recorded, shown as suppressed): written with the engine
    log's row of a change flagged `declared` (`WarningStore.append_engine_event`), read per declaration."""

    def of_declaration(self, declaration_id: str, limit: int) -> list[SuppressedFinding]:
        """The newest first, at most `limit`."""
        ...


# --- presence and the offline watch (docs/offline-watch.md) ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardSummary:
    """What one ingest container learned of one shard in one minute: only the changes. `silent`: devices whose
    deadline passed with no sign of life (device, last sign of life); `back`: devices that spoke again after the
    container called them silent, or that it did not know (a fresh container, a new device)."""

    shard: str
    minute: int  # epoch minute (epoch seconds // 60)
    owner: str  # the container
    fresh: bool = False  # the container's first summary of this shard
    back: tuple[tuple[str, float], ...] = ()  # (device, when it spoke)
    silent: tuple[tuple[str, float], ...] = ()  # (device, last sign of life)
    messages: int = 0
    tracked: int = 0


@dataclass(frozen=True, slots=True)
class ShardRoster:
    """Every device a container watches on a shard, with its last sign of life and threshold: how a new
    container takes a shard over, and how the detector finds the devices of a shard that fell silent."""

    shard: str
    minute: int
    devices: Mapping[str, tuple[float, float]]  # device -> (last sign of life, threshold s)


class PresenceLedger(Protocol):
    """Shard-minute summaries and shard rosters (written by the ingest, read by the offline watch)."""

    def put_summary(self, summary: ShardSummary) -> None: ...

    def summaries(self, minute: int) -> list[ShardSummary]:
        """Every shard's summary of `minute` (one query)."""
        ...

    def put_roster(self, roster: ShardRoster) -> None: ...

    def latest_roster(self, shard: str) -> ShardRoster | None:
        """The shard's newest roster (one query, newest first, one item)."""
        ...


@dataclass
class WatchState:
    """The offline watch's own state: the last minute read, each shard's last minute with a summary, and for each
    silent shard when its roster is due to be read again (the next deadline of a device on it; inf: all handled).
    """

    cursor: int
    shards: dict[str, int] = field(default_factory=dict)
    silent_shards: dict[str, float] = field(default_factory=dict)
    suppressed: dict[str, str] = field(default_factory=dict)  # offline device -> the declaration excusing it
    regrading: dict[str, float] = field(default_factory=dict)  # offline vehicle -> its outage's start (§2.1)


@dataclass(frozen=True, slots=True)
class OfflineRecord:
    """A device currently offline: since its last sign of life; `suppressed` by a declaration (no warning)."""

    device_id: str
    since: float
    suppressed_by: str | None = None


class OfflineState(Protocol):
    """The watch state and the devices currently offline (one item each: reads only for the devices named)."""

    def load(self) -> WatchState | None: ...

    def save(self, state: WatchState) -> None: ...

    def offline(self, device_ids: Iterable[str]) -> dict[str, OfflineRecord]:
        """The named devices that are offline (one batch read)."""
        ...

    def all_offline(self) -> dict[str, OfflineRecord]:
        """Every device offline now (the evaluation's read: one query, not one key per device)."""
        ...

    def mark_offline(self, record: OfflineRecord) -> None: ...

    def mark_online(self, device_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class OfflineTransition:
    device_id: str
    at: float  # when the watch decided
    since: float  # the last sign of life (offline) / when data came back (online)
    offline_since: float | None = None  # online: the outage's last sign of life (names its warning)


class OfflineSink(Protocol):
    """Where offline warnings go: raise and recover an `offline` warning through the warning store, routing and
    delivery (`services/offline_warnings.py`). Called once per transition, again only after a failure (the
    caller dedupes); idempotent: a repeated raise or recovery names the same warning and event."""

    def offline(self, transition: OfflineTransition) -> bool:
        """Raise; True when the warning's level may still rise while the device stays silent (a hazardous-goods
        vehicle, DOMAIN.md §2.1): the watch then calls `regrade` every run until it answers False."""
        ...

    def regrade(self, transition: OfflineTransition) -> bool:
        """The device is still silent (`offline_since`: its outage): raise the warning's level if its silence rule
        now says more; False when nothing more can come (top level, closed, or not a vehicle)."""
        ...

    def online(self, transition: OfflineTransition) -> None: ...

    def suppressed(self, transition: OfflineTransition, declaration_id: str) -> None:
        """A declaration excuses the silent device: the finding is recorded (the engine log, flagged `declared`),
        no warning raised, nobody told (DOMAIN.md §5)."""
        ...


# --- the online-time ledger (在线率, DOMAIN.md §6) ------------------------------------------------------------


class OutageLedger(Protocol):
    """Recorded outages per enterprise, device and local day (written when an outage ends, never per message)."""

    def add(self, enterprise_id: str, device_id: str, day: int, start: float, end: float) -> None:
        """Record the offline period [start, end) within local day `day` (`clock.local_day_number`); idempotent:
        the same period twice is one."""
        ...

    def outages(self, enterprise_id: str, first_day: int, last_day: int) -> dict[tuple[str, int], list[Window]]:
        """(device, day) -> its recorded offline periods, for the days in [first_day, last_day] (one query)."""
        ...

    def outages_between(self, first_day: int, last_day: int) -> dict[tuple[str, int], list[Window]]:
        """Every enterprise's recorded outages of the days in [first_day, last_day] (one query per day: what an
        evaluation run reads)."""
        ...


class DeviceDirectory(Protocol):
    """Enterprises and their devices (the registry's listings)."""

    def enterprises(self) -> list[Enterprise]: ...

    def devices_of(self, enterprise_id: str) -> list[DeviceRegistration]: ...

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]:
        """The named devices' registrations (batch reads by key; unknown ids are left out)."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceScope:
    """Whose devices: named enterprises, or every enterprise of a sector or of an area (given ones combine)."""

    enterprise_ids: tuple[str, ...] = ()
    sector: str | None = None
    area: str | None = None


class DeviceDaySource(Protocol):
    """The evaluation's 在线率 input: one `evaluation.facts.DeviceDay` per device in scope and local day of the
    period (up to now), from the ledger, the devices currently offline and the declarations' effective windows."""

    def days(self, scope: DeviceScope, period: Period) -> list[DeviceDay]: ...


# --- delivery: jobs, inboxes, receipts ---------------------------------------------------------------------------


class DeliveryJobs(Protocol):
    """The delivery queue: one message per job (`domain.delivery.DeliveryJob`)."""

    def enqueue(self, jobs: Sequence[DeliveryJob]) -> None:
        """Put every job on the queue, or raise (nothing is half-known: a retry enqueues them again, and the
        delivery ledger sends each job's deliveries once)."""
        ...


@dataclass(frozen=True, slots=True)
class InboxItem:
    """One entry of an inbox (`domain.delivery.inbox_key`), newest first by `at`."""

    inbox: str
    item_id: str  # unique in the inbox, stable for a (job, inbox): what `mark_read` takes
    job_id: str
    kind: str
    warning_id: str
    level: int
    text: str
    detail: str
    at: float
    read_at: float | None = None
    declaration_id: str = ""  # a declaration's notice: the declaration (`warning_id` is empty then)


@dataclass
class InboxPage:
    items: list[InboxItem] = field(default_factory=list)
    next_key: str | None = None  # the item id to resume after


class Inbox(Protocol):
    """The in-app inbox channel."""

    def put(self, item: InboxItem) -> None:
        """Write the entry; writing it again (a retried job) changes nothing, its read mark included."""
        ...

    def page(self, inboxes: Sequence[str], after: str | None, limit: int, unread: bool) -> InboxPage:
        """Entries of the inboxes, newest first, resuming after `after` (an item id)."""
        ...

    def mark_read(self, inboxes: Sequence[str], item_id: str, at: float) -> InboxItem | None:
        """Mark an entry of one of these inboxes read (once: a second call keeps the first time); None when none
        of them has it."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What happened to one delivery (job, recipient, channel), for the warning's timeline."""

    job_id: str
    kind: str
    channel: str
    audience: str
    recipient: str  # a person id, a contact key or an inbox key; never the phone
    name: str
    outcome: str  # sent, failed, unknown, retrying
    at: float
    provider: str = ""
    message_id: str = ""
    reason: str = ""


class Receipts(Protocol):
    """The deliveries' outcomes, on the event partition of their subject (a warning id, or `declaration:{id}`)."""

    def record(self, warning_id: str, receipt: DeliveryReceipt) -> None:
        """Write (or overwrite) the receipt of this delivery, counting the attempts."""
        ...

    def of_warning(self, warning_id: str) -> list[dict[str, Any]]: ...


# --- evaluation reports (评估报告): docs/evaluation.md "Runs, storage and reads" -------------------------------


@dataclass(frozen=True, slots=True)
class FleetDevice:
    """What the evaluation needs of a registered device (a `DeviceRegistration` without setpoints and kind)."""

    device_id: str
    enterprise_id: str
    sector: Sector
    area_codes: tuple[str, ...] = ()
    major_hazard_grade: int | None = None


@dataclass(frozen=True, slots=True)
class Fleet:
    """The evaluated enterprises and what the device-day ledger needs of their devices."""

    profiles: Sequence[EnterpriseProfile]
    devices: Mapping[str, Sequence[FleetDevice]]  # enterprise id -> its registered devices
    fleets: Sequence[FleetFacts] = ()  # road transport: registered vehicles
    declarations: Sequence[Declaration] = ()  # every declaration (their effective windows excuse outages)
    area_names: Mapping[str, str] = field(default_factory=dict)  # area code -> 中文名 (registry `Area`)


class EvaluationFacts(Protocol):
    """What a run reads, in proportion to the period's warnings and to the fleet, never the table's history."""

    def fleet(self) -> Fleet: ...

    def warnings(self, period: Period, as_of: float, since: float) -> Iterator[WarningFacts]:
        """Every warning raised before `period.end` that was raised at or after `since` (the period's start less
        the repeat window), or was open at `since` (still open, or closed at or after it), as read at `as_of`."""
        ...

    def warnings_by_id(self, warning_ids: Sequence[str], as_of: float) -> Iterator[WarningFacts]:
        """The named warnings' facts as read at `as_of` (those found): a quarter's or year's re-read of the
        warnings its months carried (docs/evaluation.md "Quarters and years")."""
        ...


class DeviceDayLedger(Protocol):
    """The online-time ledger of the period's device-days (issue 12); derived from presence until it exists."""

    def device_days(self, period: Period, fleet: Fleet, as_of: float) -> Iterator[DeviceDay]: ...


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """One run's report: the JSON document, its artifacts by format (`xlsx`, `html`), counts for the index."""

    document: bytes
    artifacts: Mapping[str, bytes]
    counts: Mapping[str, int]


class ReportRenderer(Protocol):
    """Builds the report of a period from its facts and renders its artifacts (domain/evaluation/report.py and
    chalicelib/reports/); `scoped` cuts a stored document down to what one scope may read."""

    def render(
        self,
        period: Period,
        fleet: Fleet,
        warnings: Sequence[WarningFacts],
        device_days: Sequence[DeviceDay],
        generated_at: float,
        *,
        overdue_rectifications: Mapping[str, int] | None = None,  # enterprise id -> items overdue at the end
    ) -> RenderedReport: ...

    def render_months(
        self,
        period: Period,
        fleet: Fleet,
        months: Sequence[bytes],
        reread: Callable[[Sequence[str]], Sequence[WarningFacts]],
        generated_at: float,
        *,
        overdue_rectifications: Mapping[str, int] | None = None,
    ) -> RenderedReport:
        """A quarter's or a year's report from its months' `tallies` artifacts (what `render` adds for a month);
        `reread` reads the warnings they carried as they stand now."""
        ...

    def scoped(self, document: bytes, scope: Scope) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """The report index: one entry per (kind, period), replaced by a re-run."""

    report_id: str  # "{kind}-{label}", e.g. "month-2025-03"
    kind: str
    label: str
    start: float
    end: float
    generated_at: float
    requested_by: str
    keys: Mapping[str, str]  # "json", "xlsx", "html" -> S3 key
    versions: Mapping[str, str]  # the same -> S3 version id of this run ("" where the bucket keeps none)
    counts: Mapping[str, int]
    status: str = "done"  # queued, running, done, failed: an on-demand run's progress (keys: the last done run's)


class ReportArchive(Protocol):
    """Reports in a versioned bucket and their index (newest first)."""

    def store(self, entry: ReportEntry, report: RenderedReport) -> ReportEntry:
        """Write the document and artifacts (a new version of each key), then the index entry with the keys and
        versions written; returns the entry as stored."""
        ...

    def mark(self, entry: ReportEntry) -> ReportEntry:
        """Write the index entry's status (an on-demand run queued, running or failed), keeping the keys and
        versions of the last run that stored its report, if any."""
        ...

    def entries(self, limit: int) -> list[ReportEntry]: ...

    def entry(self, report_id: str) -> ReportEntry | None: ...

    def document(self, entry: ReportEntry) -> bytes: ...

    def artifact(self, entry: ReportEntry, name: str) -> bytes:
        """This run's version of one of the entry's artifacts."""
        ...

    def download_url(self, entry: ReportEntry, artifact: str, expires_s: int) -> str: ...


class EvaluationRequests(Protocol):
    """The queue of on-demand runs: the API answers at once, the evaluation function runs the period."""

    def send(self, report_id: str, requested_by: str) -> None: ...


# --- 通报 and rectification (整改事项): docs/evaluation.md "通报 and rectification" ------------------------------


def evaluation_subject(report_id: str) -> str:
    """The audit subject of a report's publications (`evaluation:{report id}`)."""
    return f"evaluation:{report_id}"


def rectification_subject(rectification_id: str) -> str:
    """The audit subject of a rectification item (`rectification:{id}`)."""
    return f"rectification:{rectification_id}"


@dataclass(frozen=True, slots=True)
class Publication:
    """A report's publication (通报): the latest version published, and every version published so far."""

    report_id: str
    version: str  # the report's version published (its JSON's S3 version id, or its generation time)
    published_at: float
    published_by: str
    jobs: int  # delivery jobs queued (one per enterprise, department, area, and the duty centre + bureau)
    rectifications: int  # items the report asks for (issued now or before)
    enterprises_rectifying: int
    versions: tuple[str, ...] = ()  # every version published, oldest first


class RectificationStore(Protocol):
    """Rectification items with optimistic versioning, every change chained under `rectification_subject(id)`;
    the publications of each report chained under `evaluation_subject(report id)`. Listings read indexes."""

    def get(self, rectification_id: str) -> RectificationItem | None: ...

    def save(self, item: RectificationItem, event_type: str, stamp: AuditStamp) -> AuditEvent:
        """Store `item`, whose `version` is the stored one (0: new), as version + 1, with its audit event;
        ConcurrentUpdateError when somebody else wrote it since (or it exists already, for a new one)."""
        ...

    def listing(
        self,
        scope: Scope,
        statuses: frozenset[RectificationStatus] | None,
        after: str | None,
        page_size: int,
    ) -> Iterator[tuple[RectificationItem, str]]:
        """The items of the scope's index partitions (an enterprise's: the newest first; sectors', areas', all six
        sectors': by deadline) stored with one of `statuses` (None: any), each with its position, strictly after
        `after`; read from indexes keyed by status, `page_size` at a time, only as far as the caller consumes. An
        area listing may hold items of other areas too (the caller filters by scope)."""
        ...

    def due_before(self, at: float) -> list[RectificationItem]:
        """Every item whose deadline is before `at` (what may be overdue then), in every sector."""
        ...

    def log(self, rectification_id: str) -> SubjectLog: ...

    def publication(self, report_id: str) -> Publication | None: ...

    def record_publication(self, publication: Publication, stamp: AuditStamp) -> bool:
        """Record that `publication.version` was published (chained, `evaluation_published`); False, and nothing
        written, when that version was recorded before."""
        ...

    def publication_log(self, report_id: str) -> SubjectLog: ...
