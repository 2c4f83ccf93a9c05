"""The audit trail in DynamoDB: append-only, hash-chained events per subject (DOMAIN.md §4, `domain/audit.py`).

Where things live:
- events: `WarningEventTable`, partition `AUDIT#{subject}` (the subject: a warning id, `device:{id}`,
  `enterprise:{id}`), sort key `seq` = 1, 2, 3... The engine's own log (`DynamoWarningStore.append_engine_event`,
  partition = the warning id, seq derived from the reading's time) stays apart; the timeline reads both.
- the chain head (seq, hash) of a warning: in the warning item (`details["audit"]`), written by the same
  version-checked save as the status change; of a registry subject: an `AUDIT#{subject}`/`HEAD` item in the
  registry table, version-checked the same way.

How one change is written (no DynamoDB transaction, see docs/api.md "audit trail"):
1. read the subject and its head (n, h); put the head's own event if it is missing from the log (below);
2. build event n+1 (prev_hash h) and save the subject with head (n+1, hash) and a copy of the event, conditional on
   the version read in 1 — of two concurrent writers exactly one wins; the other re-reads and retries;
3. put event n+1 with `attribute_not_exists(seq)`: nothing in the log is ever overwritten.
A crash between 2 and 3 loses nothing: the next writer finds the head's event missing and puts the copy (and logs
it); until then `verify_chain` reports the gap, as it must for a deleted event.

Every engine change and every person's action on a warning goes through `AuditedWarningStore`, which is also the
ingest's `WarningStore`; registry changes go through `AuditedRegistry`.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, replace
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from pynamodb.attributes import NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.models import Model

from chalicelib.adapters import aws_clients
from chalicelib.adapters.dynamo import (
    DynamoRegistry,
    DynamoWarningStore,
    OpenBySectorIndex,
    RegistryItem,
    WarningItem,
    engine_event_seq,
    fill_item,
    record_from_item,
)
from chalicelib.adapters.errors import lost_race
from chalicelib.adapters.rosters import query_shifts, read_shift, remove_shift, write_shift
from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.catalog import build_policy
from chalicelib.domain.changes import KIND_ORDER, ChangeKind, WarningChange
from chalicelib.domain.due import restamp
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import ENGINE_ACTOR, Transition, apply_engine_change
from chalicelib.domain.policy import DeadlinePolicy, WorkflowPolicy
from chalicelib.domain.registry import DeviceRegistration, Enterprise, Person
from chalicelib.domain.rosters import Shift
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.observability import INHERIT, SERVICE, swallowed
from chalicelib.services.ports import (
    AuditStamp,
    ConcurrentUpdateError,
    Key,
    RegistrySubject,
    SubjectLog,
    registry_subject,
    subject_of,
)
from chalicelib.settings import Settings

logger = Logger(service=SERVICE, child=True, level=INHERIT)

AUDIT_KEY = "audit"  # the chain head inside a warning's `details`
PARTITION_PREFIX = "AUDIT#"
S = TypeVar("S", DeviceRegistration, Enterprise, Person)


class ChainEventItem(Model):
    """One audit event; `data` is the event's canonical JSON, kept as text so that a damaged item still reads."""

    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # AUDIT#{subject id}
    seq = NumberAttribute(range_key=True)
    type = UnicodeAttribute()
    at = NumberAttribute()
    data = UnicodeAttribute()


class AuditHeadItem(Model):
    """The chain head of a registry subject (device, enterprise), in the registry table."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # AUDIT#{subject}
    sk = UnicodeAttribute(range_key=True)  # HEAD
    seq = NumberAttribute(default=0)
    hash = UnicodeAttribute(null=True)
    last = UnicodeAttribute(null=True)  # the head's event (JSON), until the next write has checked the log has it
    version = VersionAttribute()


_BOUND: dict[str, Any] = {"deadlines": DeadlinePolicy(), "workflow": WorkflowPolicy()}


def bind(settings: Settings) -> None:
    """Point this module's models at their tables (the shared ones are bound by `dynamo.bind`), and take the
    stage's deadlines (due times are stamped on every write) and archive TTL."""
    policy = build_policy(settings.policy)
    _BOUND.update(deadlines=policy.deadlines, workflow=policy.workflow)
    for model, table in ((ChainEventItem, settings.table_warning_event), (AuditHeadItem, settings.table_registry)):
        meta: Any = model.Meta
        meta.table_name = table
        for name, value in aws_clients.dynamo_meta(settings).items():
            setattr(meta, name, value)
        model._connection = None


# --- the log ---------------------------------------------------------------------------------------------------


def _event_from_item(item: ChainEventItem) -> AuditEvent:
    """The stored event; the key and the top-level attributes win over the JSON copy, so altering any is seen."""
    subject = item.warning_id.removeprefix(PARTITION_PREFIX)
    try:
        body: dict[str, Any] = json.loads(item.data)
        if not isinstance(body, dict):
            raise TypeError("not an object")
        body.update(subject_id=subject, seq=int(item.seq), type=item.type, at=float(item.at))
        return AuditEvent.from_dict(body)
    except (ValueError, TypeError, KeyError) as exc:  # the chain check reports it; the operators hear of it here
        logger.warning(
            "damaged audit event read",
            extra={"subject": subject, "seq": int(item.seq), "error": type(exc).__name__},
        )
        swallowed("audit.damaged_event")
        return AuditEvent(subject, int(item.seq), item.type, "", "", float(item.at), {}, {}, hash="damaged")


def put_event(event: AuditEvent) -> bool:
    """Append `event` unless its seq is taken; True when this call wrote it."""
    item = ChainEventItem(
        PARTITION_PREFIX + event.subject_id,
        event.seq,
        type=event.type,
        at=event.at,
        data=json.dumps(event.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
    )
    try:
        item.save(condition=ChainEventItem.seq.does_not_exist())
    except PutError as exc:
        if lost_race(exc):
            return False
        raise
    return True


def _restore(last: Mapping[str, Any] | None) -> None:
    """Put the head's own event if the log lacks it (its writer stopped between its two writes, or it was
    deleted)."""
    if not last:
        return
    event = AuditEvent.from_dict(last)
    if put_event(event):
        logger.warning("audit event restored from its subject's copy", extra={"subject": event.subject_id})


def read_chain(subject_id: str) -> list[AuditEvent]:
    """The subject's audit events as stored, by seq."""
    return [
        _event_from_item(item)
        for item in ChainEventItem.query(PARTITION_PREFIX + subject_id, consistent_read=True)
    ]


def read_engine_log(warning_id: str) -> list[dict[str, Any]]:
    """The engine's own log of a warning (`DynamoWarningStore.append_engine_event`), by its seq."""
    entries: list[dict[str, Any]] = []
    for item in ChainEventItem.query(warning_id, consistent_read=True):
        try:
            data = json.loads(item.data)
        except ValueError:
            logger.warning("damaged engine log entry read", extra={"warning_id": warning_id, "seq": int(item.seq)})
            swallowed("audit.damaged_engine_entry")
            data = {}
        entries.append({"seq": int(item.seq), "type": item.type, "at": float(item.at), "data": data})
    return entries


# --- warnings --------------------------------------------------------------------------------------------------


def chain_head(record: WarningRecord) -> ChainHead:
    head = record.details.get(AUDIT_KEY) or {}
    return ChainHead(int(head.get("seq", 0)), str(head.get("hash") or ChainHead().hash))


def _engine_watermark(record: WarningRecord) -> int:
    return int((record.details.get(AUDIT_KEY) or {}).get("engine_seq", 0))


def raise_event_fields(record: WarningRecord) -> dict[str, Any]:
    return {
        "subject_id": record.warning_id,
        "type": ChangeKind.RAISE.value,
        "actor": ENGINE_ACTOR.user_id,
        "role": ENGINE_ACTOR.role.value,
        "at": record.updated_at,
        "before": {},
        "after": {"status": record.status.value, "level": Level(record.level).code},
        "reason": record.reason,
        "data": {
            "value": record.value,
            "unit": record.unit,
            "flags": list(record.flags),
            "title": record.title,
            "engine_seq": _raise_seq(record),
        },
    }


def _raise_seq(record: WarningRecord) -> int:
    return round(record.updated_at * 1000) * 10 + KIND_ORDER[ChangeKind.RAISE]


Decide = Callable[[WarningRecord | None], Transition]


class AuditedWarningStore:
    """The warning table with every change chained: the ingest's `WarningStore`, the warning actions'
    `WarningRepository` and the workflow's `WarningReader`."""

    def __init__(
        self, retries: int = 4, deadlines: DeadlinePolicy | None = None, archive_ttl_s: int | None = None
    ) -> None:
        self._retries = retries
        self._engine_log = DynamoWarningStore()
        self._deadlines: DeadlinePolicy = deadlines or _BOUND["deadlines"]
        self._archive_ttl_s = archive_ttl_s or int(_BOUND["workflow"].archive_ttl_s)

    # --- reads

    @staticmethod
    def get(warning_id: str) -> WarningRecord | None:
        try:
            return public_record(record_from_item(WarningItem.get(warning_id, consistent_read=True)))
        except DoesNotExist:
            return None

    @staticmethod
    def log(warning_id: str) -> SubjectLog:
        try:
            head = chain_head(record_from_item(WarningItem.get(warning_id, consistent_read=True)))
        except DoesNotExist:
            head = ChainHead()
        from chalicelib.adapters.delivery_store import read_receipts

        return SubjectLog(
            events=read_chain(warning_id),
            head=head,
            engine_log=read_engine_log(warning_id),
            receipts=read_receipts(warning_id),
        )

    # --- writes

    def update(
        self, warning_id: str, decide: Decide, *, source_ip: str | None = None, app: str | None = None
    ) -> WarningRecord:
        """Read the warning, let `decide` turn it into a transition (it may raise), save it chained; on a lost
        race read again and decide again (the second decision may well be a 409)."""
        for _ in range(self._retries):
            try:
                item: WarningItem | None = WarningItem.get(warning_id, consistent_read=True)
            except DoesNotExist:
                item = None
            transition = decide(None if item is None else public_record(record_from_item(item)))
            assert item is not None  # `decide` refuses a missing warning
            fields = transition.event.audit_fields()
            saved = self._commit(item, transition.record, fields, source_ip=source_ip, app=app)
            if saved is not None:
                return saved
        raise ConcurrentUpdateError(warning_id)

    def create(self, record: WarningRecord) -> bool:
        """A new warning with its first event (`raise`); False when it exists already (a redelivered raise),
        after completing what its first writer may have left half done: the head's event in the log."""
        record = restamp(record, self._deadlines)
        event = next_event(None, **raise_event_fields(record))
        item = WarningItem(record.warning_id, level_seq=0)
        fill_item(item, _with_head(record, event, _raise_seq(record)))
        try:
            item.save()
        except PutError as exc:
            if not lost_race(exc):
                raise
            stored = record_from_item(WarningItem.get(record.warning_id, consistent_read=True))
            _restore((stored.details.get(AUDIT_KEY) or {}).get("last"))
            return False
        put_event(event)
        return True

    def apply_change(self, change: WarningChange) -> bool:
        """An engine level change or recovery, chained; False when applied before or when the warning is closed."""
        seq = engine_event_seq(change)
        for _ in range(self._retries):
            try:
                item = WarningItem.get(change.warning_id, consistent_read=True)
            except DoesNotExist:
                return False
            record = record_from_item(item)
            if chain_head(record).seq == 0 and float(item.updated_at) >= change.at:
                return False  # an unchained (older) warning: the engine store's own rule
            if seq <= _engine_watermark(record):
                _restore((record.details.get(AUDIT_KEY) or {}).get("last"))  # its event write may have failed
                return False
            try:
                transition = apply_engine_change(record, change)
            except InvalidTransition:
                return False  # closed or archived: the engine log still records the change
            if transition is None:
                return False
            fields = transition.event.audit_fields()
            fields["data"] = {**fields["data"], "engine_seq": seq}
            if self._commit(item, transition.record, fields, engine_seq=seq) is not None:
                return True
        raise ConcurrentUpdateError(change.warning_id)

    def append_engine_event(self, change: WarningChange) -> bool:
        return self._engine_log.append_engine_event(change)

    def _commit(
        self,
        item: WarningItem,
        record: WarningRecord,
        fields: dict[str, Any],
        *,
        engine_seq: int | None = None,
        source_ip: str | None = None,
        app: str | None = None,
    ) -> WarningRecord | None:
        current = record_from_item(item)
        _restore((current.details.get(AUDIT_KEY) or {}).get("last"))
        record = restamp(record, self._deadlines)  # due times follow every change (chalicelib/domain/due.py)
        event = next_event(chain_head(current), **fields, source_ip=source_ip, app=app)
        watermark = _engine_watermark(current) if engine_seq is None else engine_seq
        level_changed = Level(record.level).code != item.level
        fill_item(item, _with_head(record, event, watermark))
        if level_changed:
            item.level_seq = int(item.level_seq or 0) + 1
        if record.status is WarningStatus.ARCHIVED and getattr(item, "expires_at", None) is None:
            item.expires_at = int(record.updated_at + self._archive_ttl_s)
        try:
            item.save()
        except PutError as exc:
            if lost_race(exc):
                return None
            raise
        put_event(event)
        return public_record(record_from_item(item))

    # --- listings: (record, key) pairs in the index's order; the key resumes right after that record

    @staticmethod
    def by_enterprise(enterprise_id: str, after: Key | None = None) -> Iterator[tuple[WarningRecord, Key]]:
        """Newest first."""
        start = None
        if after is not None:
            start = {
                "warning_id": {"S": after["warning_id"]},
                "enterprise_id": {"S": enterprise_id},
                "raised_at": {"S": after["raised_at"]},
            }
        query = WarningItem.by_enterprise.query(
            enterprise_id, scan_index_forward=False, last_evaluated_key=start, page_size=100
        )
        for item in query:
            yield (
                public_record(record_from_item(item)),
                {"warning_id": item.warning_id, "raised_at": item.raised_at},
            )

    @staticmethod
    def open_in_sectors(
        sectors: Iterable[Sector], after: Key | None = None
    ) -> Iterator[tuple[WarningRecord, Key]]:
        """Open warnings of the sectors, by urgency (red first, then oldest), from the sparse `open_by_sector`
        index: one query per sector, merged."""
        streams = [_open_in_sector(sector, after) for sector in dict.fromkeys(sectors)]
        yield from heapq.merge(*streams, key=lambda pair: (pair[1]["urgency"], pair[1]["warning_id"]))

    @staticmethod
    def scan(after: Key | None = None) -> Iterator[tuple[WarningRecord, Key]]:
        """Every warning, in the table's order."""
        start = None if after is None else {"warning_id": {"S": after["warning_id"]}}
        for item in WarningItem.scan(last_evaluated_key=start, page_size=200):
            yield public_record(record_from_item(item)), {"warning_id": item.warning_id}


def public_record(record: WarningRecord) -> WarningRecord:
    """The record without the storage's chain head (which only this module writes): what every reader hands out."""
    if AUDIT_KEY not in record.details:
        return record
    return replace(record, details={k: v for k, v in record.details.items() if k != AUDIT_KEY})


def _with_head(record: WarningRecord, event: AuditEvent, engine_seq: int) -> WarningRecord:
    head = {"seq": event.seq, "hash": event.hash, "engine_seq": engine_seq, "last": event.to_dict()}
    return replace(record, details={**record.details, AUDIT_KEY: head})


def _open_in_sector(sector: Sector, after: Key | None) -> Iterator[tuple[WarningRecord, Key]]:
    """Sorted by (urgency, warning id): items of equal urgency come out of the index in no set order."""
    condition = None if after is None else OpenBySectorIndex.urgency >= after["urgency"]
    run: list[tuple[WarningRecord, Key]] = []
    for item in WarningItem.open_by_sector.query(sector.value, condition, page_size=100):
        key = {"warning_id": item.warning_id, "urgency": item.urgency or ""}
        if after is not None and (key["urgency"], key["warning_id"]) <= (after["urgency"], after["warning_id"]):
            continue
        if run and run[0][1]["urgency"] != key["urgency"]:
            yield from sorted(run, key=lambda pair: pair[1]["warning_id"])
            run = []
        run.append((public_record(record_from_item(item)), key))
    yield from sorted(run, key=lambda pair: pair[1]["warning_id"])


# --- the registry ----------------------------------------------------------------------------------------------


class AuditedRegistry:
    """Enterprise profiles, device registrations (with setpoints), people and duty shifts, every change chained per
    subject (the `RegistryRepository` and the `RosterRepository`)."""

    def __init__(self, retries: int = 4) -> None:
        self._retries = retries

    @staticmethod
    def device(device_id: str) -> DeviceRegistration | None:
        try:
            return DeviceRegistration.model_validate(RegistryItem.get(f"DEV#{device_id}", "REG").data)
        except DoesNotExist:
            return None

    @staticmethod
    def enterprise(enterprise_id: str) -> Enterprise | None:
        try:
            return Enterprise.model_validate(RegistryItem.get(f"ENT#{enterprise_id}", "PROFILE").data)
        except DoesNotExist:
            return None

    @staticmethod
    def devices_of(enterprise_id: str) -> list[DeviceRegistration]:
        return [
            DeviceRegistration.model_validate(item.data)
            for item in RegistryItem.by_gsi1.query(f"ENT#{enterprise_id}", RegistryItem.gsi1sk.startswith("DEV#"))
        ]

    @staticmethod
    def person(person_id: str) -> Person | None:
        try:
            return Person.model_validate(RegistryItem.get(f"PERSON#{person_id}", "PROFILE").data)
        except DoesNotExist:
            return None

    @staticmethod
    def people() -> list[Person]:
        return [Person.model_validate(item.data) for item in RegistryItem.by_gsi1.query("PEOPLE")]

    @staticmethod
    def shift(shift_id: str) -> Shift | None:
        return read_shift(shift_id)

    @staticmethod
    def shifts_starting(role: str, start: int, end: int) -> list[Shift]:
        return query_shifts(role, start, end)

    def put_shift(self, shift: Shift, stamp: AuditStamp) -> AuditEvent | None:
        """Write a shift (moving its roster copy when its start moved); None when nothing changed."""
        before: list[Shift | None] = [None]

        def load() -> dict[str, Any] | None:
            before[0] = read_shift(shift.shift_id)
            return None if before[0] is None else before[0].model_dump(mode="json")

        return self._chain(
            registry_subject("shift", shift.shift_id),
            "shift",
            load,
            shift.model_dump(mode="json"),
            lambda: write_shift(shift, before[0]),
            stamp,
        )

    def delete_shift(self, shift_id: str, stamp: AuditStamp) -> AuditEvent | None:
        """Remove a shift (`shift_deleted`); None when there is none."""
        before: list[Shift | None] = [None]

        def load() -> dict[str, Any] | None:
            before[0] = read_shift(shift_id)
            return None if before[0] is None else before[0].model_dump(mode="json")

        def remove() -> None:
            if before[0] is not None:
                remove_shift(before[0])

        return self._chain(registry_subject("shift", shift_id), "shift", load, {}, remove, stamp)

    @staticmethod
    def head(subject_id: str) -> ChainHead:
        try:
            item = AuditHeadItem.get(f"AUDIT#{subject_id}", "HEAD", consistent_read=True)
        except DoesNotExist:
            return ChainHead()
        return ChainHead(int(item.seq or 0), item.hash or ChainHead().hash)

    def log(self, subject_id: str) -> SubjectLog:
        return SubjectLog(events=read_chain(subject_id), head=self.head(subject_id))

    def put(self, subject: RegistrySubject, stamp: AuditStamp) -> AuditEvent | None:
        """Register or change a device, an enterprise or a person; None when nothing changed (no event, no
        write)."""
        if isinstance(subject, Person):
            person = subject
            return self._audited(
                person, "person", lambda: self.person(person.person_id), DynamoRegistry.put_person, stamp
            )
        if isinstance(subject, DeviceRegistration):
            device = subject
            return self._audited(
                device, "device", lambda: self.device(device.device_id), DynamoRegistry.put_device, stamp
            )
        enterprise = subject
        return self._audited(
            enterprise,
            "enterprise",
            lambda: self.enterprise(enterprise.enterprise_id),
            DynamoRegistry.put_enterprise,
            stamp,
        )

    def _audited(
        self,
        new: S,
        kind: str,
        load: Callable[[], S | None],
        write: Callable[[S], None],
        stamp: AuditStamp,
    ) -> AuditEvent | None:
        """The change chained under the subject's head (conditional on that head), then written, then its event
        put; the stamp gives the event's actor, role, time, reason and origin."""

        def before() -> dict[str, Any] | None:
            current = load()
            return None if current is None else current.model_dump(mode="json")

        return self._chain(subject_of(new), kind, before, new.model_dump(mode="json"), lambda: write(new), stamp)

    def _chain(
        self,
        subject_id: str,
        kind: str,
        load: Callable[[], dict[str, Any] | None],
        after: dict[str, Any],
        write: Callable[[], None],
        stamp: AuditStamp,
    ) -> AuditEvent | None:
        """One change of a subject: `{kind}_registered`, `_updated`, or `_deleted` (`after` empty); None when
        `after` is what is stored (nothing to delete: nothing stored)."""
        for _ in range(self._retries):
            try:
                head_item = AuditHeadItem.get(f"AUDIT#{subject_id}", "HEAD", consistent_read=True)
            except DoesNotExist:
                head_item = AuditHeadItem(f"AUDIT#{subject_id}", "HEAD", seq=0)
            _restore(json.loads(head_item.last) if head_item.last else None)
            current = load()
            before = current if current is not None else {}
            if before == after:
                return None
            verb = "deleted" if not after else ("updated" if current is not None else "registered")
            head = ChainHead(int(head_item.seq or 0), head_item.hash or ChainHead().hash)
            event = next_event(
                head,
                subject_id=subject_id,
                type=f"{kind}_{verb}",
                before=before,
                after=after,
                **asdict(stamp),
            )
            head_item.seq = event.seq
            head_item.hash = event.hash
            head_item.last = json.dumps(event.to_dict(), ensure_ascii=False)
            try:
                head_item.save()
            except PutError as exc:
                if lost_race(exc):
                    continue
                raise
            write()
            put_event(event)
            return event
        raise ConcurrentUpdateError(subject_id)
