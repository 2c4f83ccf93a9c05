"""In-memory fakes of every port in `ports.py`: shared by tests, benches and anything that needs an AWS-free wiring
of the use cases (`tests/unit`, `bench/workflow.py`).

Each fake keeps the contract of its adapter (`chalicelib/adapters/`), not its storage layout: what is idempotent,
what is conditional on a version and raises `ConcurrentUpdateError`, what answers False or None when there is
nothing to do, what a channel's refusal is (`DeliveryNotSentError`). What a fake holds is plain data in public
attributes, for a test to read (and, for the audit trails, to tamper with). Nothing reads a clock but the warning
store's `act` (the workflow's escalator), which reads the one it is given.

Faults, per fake, by operation (the port's method name):
- `fail(operation, times=1, error=None)`: the next `times` calls raise before taking effect ("not applied": a
  throttled or refused call); by default a `TransientError`, or the fake's own refusal (the notifier's:
  `DeliveryNotSentError`);
- `lose_response(operation, times=1, error=None)`: the next `times` calls take effect, then raise (the response
  lost on the way back, or a send whose outcome is unknown); by default a `TransientError`;
- `calls[operation]` counts the calls, faulted ones included; `injected` lists the faults met.
`is_transient` plays `adapters/errors.is_transient` for them. Each fake serves one call at a time (a lock, as the
service behind an adapter applies each request atomically), so threads may share one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from chalicelib.domain.access import Scope, apply_authorized
from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.due import restamp
from chalicelib.domain.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ENGINE_ACTOR, Actor, Role, Transition, apply_engine_change, parse_action
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.registry import Contact, DeviceRegistration, Enterprise, Person
from chalicelib.domain.sectors import Sector
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.ports import (
    AuditStamp,
    ClaimOutcome,
    ConcurrentUpdateError,
    DeliveryKey,
    DeliveryNotSentError,
    DeliveryOutcome,
    Key,
    Listing,
    NewUser,
    Notification,
    QuarantinedMessage,
    RegistrySubject,
    ShardCheckpoint,
    ShardLease,
    SubjectLog,
    UserAccount,
    UserPage,
    subject_of,
)

if TYPE_CHECKING:
    from chalicelib.services.ports import (
        DeliveryLedger,
        Directory,
        Escalator,
        EvidenceStore,
        Executions,
        Notifier,
        OpenWarnings,
        Publisher,
        Quarantine,
        Registry,
        RegistryRepository,
        StateStore,
        StreamEntry,
        Timers,
        UserDirectory,
        WarningListings,
        WarningReader,
        WarningRepository,
        WarningStore,
        Workflow,
    )

# --- faults ----------------------------------------------------------------------------------------------------


class TransientError(Exception):
    """An infrastructure fault (throttling, a timeout, a 5xx): a retry later may get past it."""


def is_transient(exc: BaseException) -> bool:
    """The fakes' `is_transient` (the ingest's): a `TransientError`, nothing else."""
    return isinstance(exc, TransientError)


class FaultMode(StrEnum):
    NOT_APPLIED = "not applied"  # raised before the call takes effect
    RESPONSE_LOST = "response lost"  # the call takes effect, then raises


@dataclass(frozen=True)
class Fault:
    operation: str
    mode: FaultMode
    error: BaseException


class Fake:
    """What every fake shares: its calls by operation, the faults planned for the next ones, one call at a time."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.injected: list[Fault] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._lock = threading.RLock()

    def fail(self, operation: str, times: int = 1, error: BaseException | None = None) -> None:
        """The next `times` calls of `operation` raise `error` without taking effect."""
        for _ in range(times):
            self._plan(Fault(operation, FaultMode.NOT_APPLIED, error or self.refusal(operation)))

    def lose_response(self, operation: str, times: int = 1, error: BaseException | None = None) -> None:
        """The next `times` calls of `operation` take effect, then raise `error`."""
        for _ in range(times):
            self._plan(Fault(operation, FaultMode.RESPONSE_LOST, error or TransientError(f"{operation}: lost")))

    def clear_faults(self) -> None:
        self._faults.clear()

    def refusal(self, operation: str) -> BaseException:
        """What a refused call raises unless the test says otherwise."""
        return TransientError(f"{operation}: throttled")

    def _plan(self, fault: Fault) -> None:
        if not callable(getattr(self, fault.operation, None)):
            raise ValueError(f"{type(self).__name__} has no operation {fault.operation!r}")
        self._faults.setdefault(fault.operation, deque()).append(fault)

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        """Count the call, hold the lock, and raise the fault planned for it before or after the body."""
        with self._lock:
            self.calls[operation] += 1
            planned = self._faults.get(operation)
            fault = planned.popleft() if planned else None
            if fault is not None and fault.mode is FaultMode.NOT_APPLIED:
                self.injected.append(fault)
                raise fault.error
            yield
            if fault is not None:
                self.injected.append(fault)
                raise fault.error


# --- the registry: devices, enterprises, people ------------------------------------------------------------------


class FakeRegistry(Fake):
    """Devices, enterprises and people: the ingest's `Registry`, the workflow's `Directory` and the administrator's
    `RegistryRepository` (as `AuditedRegistry`: a `put` that changes nothing is None and writes nothing; any other
    is chained under `subject_of(subject)` as `{kind}_registered` or `{kind}_updated`, the head kept apart)."""

    def __init__(
        self,
        devices: Iterable[DeviceRegistration] = (),
        enterprises: Iterable[Enterprise] = (),
        people: Iterable[Person] = (),
    ) -> None:
        super().__init__()
        self.registrations: dict[str, DeviceRegistration] = {d.device_id: d for d in devices}
        self.profiles: dict[str, Enterprise] = {e.enterprise_id: e for e in enterprises}
        self.persons: list[Person] = list(people)
        self.events: dict[str, list[AuditEvent]] = {}  # subject id -> its audit chain as stored
        self.heads: dict[str, ChainHead] = {}

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]:
        with self._call("devices"):
            return {d: self.registrations[d] for d in dict.fromkeys(device_ids) if d in self.registrations}

    def device(self, device_id: str) -> DeviceRegistration | None:
        with self._call("device"):
            return self.registrations.get(device_id)

    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        with self._call("enterprise"):
            return self.profiles.get(enterprise_id)

    def people(self) -> Sequence[Person]:
        with self._call("people"):
            return tuple(self.persons)

    def devices_of(self, enterprise_id: str) -> list[DeviceRegistration]:
        with self._call("devices_of"):
            return [d for _, d in sorted(self.registrations.items()) if d.enterprise_id == enterprise_id]

    def put(self, subject: RegistrySubject, stamp: AuditStamp) -> AuditEvent | None:
        with self._call("put"):
            subject_id = subject_of(subject)
            kind, _, _ = subject_id.partition(":")
            current: RegistrySubject | None
            if isinstance(subject, DeviceRegistration):
                current = self.registrations.get(subject.device_id)
            elif isinstance(subject, Person):
                current = next((p for p in self.persons if p.person_id == subject.person_id), None)
            else:
                current = self.profiles.get(subject.enterprise_id)
            before = current.model_dump(mode="json") if current is not None else {}
            after = subject.model_dump(mode="json")
            if before == after:
                return None
            event = next_event(
                self.heads.get(subject_id, ChainHead()),
                subject_id=subject_id,
                type=f"{kind}_{'updated' if current is not None else 'registered'}",
                before=before,
                after=after,
                **asdict(stamp),
            )
            if isinstance(subject, DeviceRegistration):
                self.registrations[subject.device_id] = subject
            elif isinstance(subject, Person):
                self.persons = [p for p in self.persons if p.person_id != subject.person_id] + [subject]
            else:
                self.profiles[subject.enterprise_id] = subject
            self.heads[subject_id] = ChainHead.of(event)
            self.events.setdefault(subject_id, []).append(event)
            return event

    def log(self, subject_id: str) -> SubjectLog:
        with self._call("log"):
            return SubjectLog(
                events=list(self.events.get(subject_id, ())), head=self.heads.get(subject_id, ChainHead())
            )


# --- grading state -------------------------------------------------------------------------------------------


class FakeStates(Fake):
    """Device and unit states (`StateStore`), stored as their JSON text with a version: a save is conditional on
    the stored version being the state's (`ConcurrentUpdateError` else), then bumps both. A lost response leaves
    the state's own version behind, as the adapter does (the next save from it loses the race)."""

    def __init__(self) -> None:
        super().__init__()
        self.devices: dict[str, tuple[str, int]] = {}  # device id -> (state JSON, version)
        self.last_seen: dict[str, float] = {}
        self.units: dict[str, tuple[str, int]] = {}
        self.checkpoints: dict[str, ShardCheckpoint] = {}
        self.leases: dict[str, ShardLease] = {}

    def load_devices(self, device_ids: Iterable[str]) -> dict[str, DeviceState]:
        with self._call("load_devices"):
            return {d: self._device(d) or DeviceState(d) for d in dict.fromkeys(device_ids)}

    def load_units(self, unit_ids: Iterable[str]) -> dict[str, UnitState]:
        with self._call("load_units"):
            return {u: self._unit(u) or UnitState(u) for u in dict.fromkeys(unit_ids)}

    def save_device(self, state: DeviceState, last_seen: float) -> None:
        with self._call("save_device"):
            version = self._checked(self.devices, state.device_id, state.version)
            self.devices[state.device_id] = (state.dumps(), version)
            self.last_seen[state.device_id] = last_seen
        state.version = version

    def save_unit(self, state: UnitState) -> None:
        with self._call("save_unit"):
            version = self._checked(self.units, state.unit_id, state.version)
            self.units[state.unit_id] = (state.dumps(), version)
        state.version = version

    def shard_lease(self, shard_id: str) -> ShardLease | None:
        with self._call("shard_lease"):
            return self.leases.get(shard_id)

    def take_shard(self, shard_id: str, owner: str, seen: ShardLease | None) -> ShardLease:
        with self._call("take_shard"):
            if self.leases.get(shard_id) != seen:
                raise ConcurrentUpdateError(shard_id)
            lease = self.leases[shard_id] = ShardLease(owner, (seen.epoch if seen else 0) + 1)
        return lease

    def load_checkpoint(self, shard_id: str) -> ShardCheckpoint | None:
        with self._call("load_checkpoint"):
            return self.checkpoints.get(shard_id)

    def save_checkpoint(self, shard_id: str, checkpoint: ShardCheckpoint) -> None:
        with self._call("save_checkpoint"):
            stored = self.checkpoints.get(shard_id)
            if stored is not None and stored.epoch > checkpoint.epoch:
                raise ConcurrentUpdateError(shard_id)
            self.checkpoints[shard_id] = checkpoint

    def sequence(self, shard_id: str) -> str | None:
        """The shard's checkpoint sequence (None: never written)."""
        checkpoint = self.checkpoints.get(shard_id)
        return None if checkpoint is None else checkpoint.sequence

    def device(self, device_id: str) -> DeviceState | None:
        """The device's state as stored (None: never written)."""
        return self._device(device_id)

    def unit(self, unit_id: str) -> UnitState | None:
        return self._unit(unit_id)

    def _device(self, device_id: str) -> DeviceState | None:
        stored = self.devices.get(device_id)
        return None if stored is None else DeviceState.loads(device_id, *stored)

    def _unit(self, unit_id: str) -> UnitState | None:
        stored = self.units.get(unit_id)
        return None if stored is None else UnitState.loads(unit_id, *stored)

    @staticmethod
    def _checked(rows: Mapping[str, tuple[str, int]], key: str, version: int) -> int:
        stored = rows.get(key, ("", 0))[1]
        if stored != version:
            raise ConcurrentUpdateError(key)
        return stored + 1


# --- warnings ----------------------------------------------------------------------------------------------------


def raise_event_seq(record: WarningRecord) -> int:
    """The engine event seq of a warning's raise (its `WarningChange.event_seq`)."""
    return round(record.updated_at * 1000) * 10


class FakeWarnings(Fake):
    """The warning table with its audit trail, as `AuditedWarningStore`: the ingest's `WarningStore`, the actions'
    `WarningRepository`, the workflow's `WarningReader` and `OpenWarnings`; and, standing in for
    `warning_actions.SystemActions`, the workflow's `Escalator` (`act`: role and scope checked, the real lifecycle
    through `update`, each payload kept in `actions`).

    Every write restamps the due times (`domain/due.py`), bumps the version and chains its event (`events`, the
    head in `heads`, kept apart as the table keeps it on the item); engine changes are applied once (a watermark of
    their event seq per warning) and their log is `engine_log`. `records` holds what readers get (no chain head).
    `race(writer)` makes the next version-checked save lose its race: `writer` (another writer's call) runs between
    its read and its write, or, without one, the stored version just moves on; `update` then reads and decides
    again, up to `retries` times, and raises `ConcurrentUpdateError` when it never wins."""

    def __init__(
        self,
        records: Iterable[WarningRecord] = (),
        *,
        deadlines: DeadlinePolicy | None = None,
        clock: Callable[[], float] = time.time,
        retries: int = 4,
    ) -> None:
        super().__init__()
        self.records: dict[str, WarningRecord] = {r.warning_id: r for r in records}  # as given: seeded as stored
        self.events: dict[str, list[AuditEvent]] = {}
        self.heads: dict[str, ChainHead] = {}
        self.engine_log: dict[str, dict[int, dict[str, Any]]] = {}
        self.engine_seqs: dict[str, int] = {}  # the last engine change applied, per warning
        self.actions: list[dict[str, Any]] = []  # payloads recorded through `act`
        self.deadlines = deadlines or DeadlinePolicy()
        self._clock = clock
        self._retries = retries
        self._races: deque[Callable[[], object] | None] = deque()

    def race(self, writer: Callable[[], object] | None = None, times: int = 1) -> None:
        self._races.extend([writer] * times)

    # --- reads

    def get(self, warning_id: str) -> WarningRecord | None:
        with self._call("get"):
            return self.records.get(warning_id)

    def log(self, warning_id: str) -> SubjectLog:
        with self._call("log"):
            engine = self.engine_log.get(warning_id, {})
            return SubjectLog(
                events=list(self.events.get(warning_id, ())),
                head=self.heads.get(warning_id, ChainHead()),
                engine_log=[engine[seq] for seq in sorted(engine)],
            )

    def open_warnings(self) -> Iterable[WarningRecord]:
        with self._call("open_warnings"):
            return [r for r in self.records.values() if r.is_open]

    # --- the ingest's writes

    def create(self, record: WarningRecord) -> bool:
        with self._call("create"):
            if record.warning_id in self.records:
                return False
            record = replace(restamp(record, self.deadlines), version=1)
            event = next_event(
                None,
                subject_id=record.warning_id,
                type=ChangeKind.RAISE.value,
                actor=ENGINE_ACTOR.user_id,
                role=ENGINE_ACTOR.role.value,
                at=record.updated_at,
                before={},
                after={"status": record.status.value, "level": Level(record.level).code},
                reason=record.reason,
                data={
                    "value": record.value,
                    "unit": record.unit,
                    "flags": list(record.flags),
                    "title": record.title,
                    "engine_seq": raise_event_seq(record),
                },
            )
            self._save(record, event, raise_event_seq(record))
            return True

    def apply_change(self, change: WarningChange) -> bool:
        """False when the warning is unknown, closed, or the change (or a later one) was applied before."""
        with self._call("apply_change"):
            seq = change.event_seq
            for _ in range(self._retries):
                current = self.records.get(change.warning_id)
                if current is None or seq <= self.engine_seqs.get(change.warning_id, 0):
                    return False
                if change.warning_id not in self.heads and current.updated_at >= change.at:
                    return False  # a warning seeded without a chain: the older store's rule (applied before)
                try:
                    transition = apply_engine_change(current, change)
                except InvalidTransition:
                    return False
                if transition is None:
                    return False
                if self._lost_race(current):
                    continue
                fields = transition.event.audit_fields()
                fields["data"] = {**fields["data"], "engine_seq": seq}
                self._commit(current, transition.record, fields, engine_seq=seq)
                return True
            raise ConcurrentUpdateError(change.warning_id)

    def append_engine_event(self, change: WarningChange) -> bool:
        with self._call("append_engine_event"):
            log = self.engine_log.setdefault(change.warning_id, {})
            if change.event_seq in log:
                return False
            log[change.event_seq] = {
                "seq": change.event_seq,
                "type": f"engine.{change.kind.value}",
                "at": change.at,
                "data": change.to_dict(),
            }
            return True

    # --- people's (and the workflow's) writes

    def update(
        self,
        warning_id: str,
        decide: Callable[[WarningRecord | None], Transition],
        *,
        source_ip: str | None = None,
        app: str | None = None,
    ) -> WarningRecord:
        with self._call("update"):
            for _ in range(self._retries):
                current = self.records.get(warning_id)
                transition = decide(current)
                assert current is not None  # `decide` refuses a missing warning
                if self._lost_race(current):
                    continue
                fields = transition.event.audit_fields()
                return self._commit(current, transition.record, fields, source_ip=source_ip, app=app)
            raise ConcurrentUpdateError(warning_id)

    def act(self, actor: Actor, warning_id: str, payload: Mapping[str, Any]) -> WarningRecord:
        """The escalator: `payload` as an action by `actor`, through `update`; InvalidTransition when the warning
        moved on."""
        action = parse_action(dict(payload))
        with self._call("act"):
            record = self.update(
                warning_id, lambda current: apply_authorized(current, action, actor, self._clock())
            )
            self.actions.append(dict(payload))
            return record

    def put(self, record: WarningRecord) -> WarningRecord:
        """Store `record` as it is, due times restamped, with no event: a shortcut past the engine (a bench's
        level change, a reading back to normal)."""
        with self._call("put"):
            record = restamp(record, self.deadlines)
            self.records[record.warning_id] = record
            return record

    # --- writing

    def _lost_race(self, read: WarningRecord) -> bool:
        """Whether the version-checked save of what was read loses: another writer (`race`) came in between."""
        if not self._races:
            return False
        writer = self._races.popleft()
        if writer is not None:
            writer()
        else:
            self.records[read.warning_id] = replace(read, version=read.version + 1)
        return self.records[read.warning_id].version != read.version

    def _commit(
        self,
        current: WarningRecord,
        record: WarningRecord,
        fields: dict[str, Any],
        *,
        engine_seq: int | None = None,
        source_ip: str | None = None,
        app: str | None = None,
    ) -> WarningRecord:
        event = next_event(self.heads.get(current.warning_id, ChainHead()), **fields, source_ip=source_ip, app=app)
        saved = replace(restamp(record, self.deadlines), version=current.version + 1)
        return self._save(saved, event, engine_seq)

    def _save(self, record: WarningRecord, event: AuditEvent, engine_seq: int | None) -> WarningRecord:
        self.records[record.warning_id] = record
        self.heads[record.warning_id] = ChainHead.of(event)
        self.events.setdefault(record.warning_id, []).append(event)
        if engine_seq is not None:
            self.engine_seqs[record.warning_id] = engine_seq
        return record


class FakeWarningListings(Fake):
    """`WarningListings` over a `FakeWarnings`: the records of the scope in the index's order, (sort key, warning
    id), strictly after `after`. `examined` counts the entries handed out (a real listing's reads grow with it)."""

    def __init__(self, warnings: FakeWarnings) -> None:
        super().__init__()
        self._warnings = warnings
        self.examined = 0

    def newest_first(self, scope: Scope, after: Key | None, page_size: int) -> Listing:
        with self._call("newest_first"):
            entries = [
                ((_epoch_key(r.raised_at), r.warning_id), r)
                for r in list(self._warnings.records.values())
                if scope.matches(r)
            ]
        position = (after["raised_at"], after["warning_id"]) if after else None
        return self._listing(entries, "raised_at", position, descending=True)

    def most_urgent_first(self, scope: Scope, after: Key | None, page_size: int) -> Listing:
        with self._call("most_urgent_first"):
            entries = [
                ((f"{Level.RED - r.level}#{_epoch_key(r.raised_at)}", r.warning_id), r)
                for r in list(self._warnings.records.values())
                if r.is_open and scope.matches(r)
            ]
        position = (after["urgency"], after["warning_id"]) if after else None
        return self._listing(entries, "urgency", position, descending=False)

    def _listing(
        self,
        entries: list[tuple[tuple[str, str], WarningRecord]],
        field: str,
        after: tuple[str, str] | None,
        *,
        descending: bool,
    ) -> Listing:
        for position, record in sorted(entries, key=lambda entry: entry[0], reverse=descending):
            if after is not None and (position >= after if descending else position <= after):
                continue
            self.examined += 1
            yield record, {field: position[0], "warning_id": position[1]}


def _epoch_key(epoch_s: float) -> str:
    return f"{epoch_s:020.6f}"


# --- the ingest's other ports --------------------------------------------------------------------------------


class FakeQuarantine(Fake):
    """Quarantine rows keyed by the record (its arrival and stream id), so a redelivery rewrites its own row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, QuarantinedMessage] = {}

    def put(self, items: Sequence[QuarantinedMessage]) -> None:
        with self._call("put"):
            self.rows.update((f"{int(item.received_at * 1000):013d}#{item.record_id}", item) for item in items)

    def reasons(self) -> Counter[str]:
        return Counter(row.reason for row in self.rows.values())


class FakeStreamLog(Fake):
    """The device stream's shards as lists: what was put on them, read back by arrival and sequence."""

    def __init__(self) -> None:
        super().__init__()
        self.shards: dict[str, list[StreamEntry]] = {}

    def put(self, shard_id: str, entry: StreamEntry) -> None:
        self.shards.setdefault(shard_id, []).append(entry)

    def read(self, shard_id: str, after_sequence: str, before_sequence: str) -> Iterator[StreamEntry]:
        with self._call("read"):
            entries = self.shards.get(shard_id, [])
            after, before = int(after_sequence), int(before_sequence)
            found = [entry for entry in entries if after < int(entry.sequence) < before]
        return iter(found)


class FakeNotifier(Fake):
    """The warning topic (`Notifier`): what was published, in order. A refused call raises `DeliveryNotSentError`
    (nothing went out); a lost response is a publication whose outcome is unknown (it went out). People are told
    through delivery jobs (`delivery_fakes.DeliverAtOnce`)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Notification] = []

    def publish(self, notification: Notification) -> None:
        with self._call("publish"):
            self.published.append(notification)

    def refusal(self, operation: str) -> BaseException:
        return DeliveryNotSentError(f"{operation}: refused")

    def told(self) -> Counter[str]:
        """Each publication as `topic:{dedupe key}`, counted (1 each: published once)."""
        return Counter(f"topic:{n.change.dedupe_key}" for n in self.published)


class Claim(NamedTuple):
    status: str  # "claimed", or a `DeliveryOutcome`
    owner: str
    at: float


class FakeDeliveryLedger(Fake):
    """Claims and outcomes of deliveries, as `DynamoDeliveryLedger`: a claim is taken when there is none, when its
    owner asks again, when it failed, or when its holder's lease ran out; a sent or unknown one is done; a live
    holder's is busy. A settle counts only while the owner still holds the claim."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[DeliveryKey, Claim] = {}

    def claim(self, key: DeliveryKey, owner: str, now: float, lease_s: float) -> ClaimOutcome:
        with self._call("claim"):
            current = self.items.get(key)
            if current is not None and current.status in (DeliveryOutcome.SENT, DeliveryOutcome.UNKNOWN):
                return ClaimOutcome.DONE
            if (
                current is not None
                and current.status == "claimed"
                and current.owner != owner
                and current.at >= now - lease_s
            ):
                return ClaimOutcome.BUSY
            self.items[key] = Claim("claimed", owner, now)
            return ClaimOutcome.MINE

    def settle(self, key: DeliveryKey, owner: str, outcome: DeliveryOutcome, now: float) -> None:
        with self._call("settle"):
            current = self.items.get(key)
            if current is not None and current.owner == owner:
                self.items[key] = Claim(outcome.value, owner, now)

    def statuses(self) -> Counter[str]:
        return Counter(claim.status for claim in self.items.values())


class FakeWorkflow(Fake):
    """The ingest's `Workflow`: the warnings it was asked to track, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tracked: list[str] = []

    def track(self, warning_id: str) -> None:
        with self._call("track"):
            self.tracked.append(warning_id)


# --- the actions' other ports ----------------------------------------------------------------------------------


class FakeTimers(Fake):
    """The actions' `Timers`: each (warning id, due version superseded) it was asked to re-arm."""

    def __init__(self) -> None:
        super().__init__()
        self.superseded: list[tuple[str, int]] = []

    def superseding(self, record: WarningRecord, before_version: int) -> bool:
        with self._call("superseding"):
            self.superseded.append((record.warning_id, before_version))
            return True


class FakeEvidence(Fake):
    """Presigned uploads: a URL naming the key, the content type and the expiry; each one issued kept."""

    def __init__(self) -> None:
        super().__init__()
        self.issued: list[tuple[str, str, int]] = []

    def upload_url(self, key: str, content_type: str, expires_in: int) -> str:
        with self._call("upload_url"):
            self.issued.append((key, content_type, expires_in))
            return f"https://evidence.invalid/{key}?content-type={content_type}&expires={expires_in}"


PERSON_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.SYSTEM)


class FakeUsers(Fake):
    """The user pool (`UserDirectory`), as `CognitoDirectory`: a taken username is `Conflict`, an unknown one
    `NotFound`; a new account keeps the scope attribute of its role only; listings go role by role (in the order
    asked), by username, with an opaque token."""

    def __init__(self, accounts: Iterable[UserAccount] = ()) -> None:
        super().__init__()
        self.accounts: dict[str, UserAccount] = {a.username: a for a in accounts}

    def create_user(self, user: NewUser) -> UserAccount:
        with self._call("create_user"):
            if user.username in self.accounts:
                raise Conflict("user_exists", "用户名已存在")
            account = UserAccount(
                username=user.username,
                role=user.role,
                name=user.name,
                phone=user.phone,
                enterprise_id=user.enterprise_id if user.role is Role.ENTERPRISE else None,
                department=user.department if user.role is Role.REGULATOR else None,
                area_codes=user.area_codes if user.role is Role.AREA else (),
                status="FORCE_CHANGE_PASSWORD",
            )
            self.accounts[user.username] = account
            return account

    def list_users(self, limit: int, token: str | None = None, roles: Sequence[Role] = PERSON_ROLES) -> UserPage:
        with self._call("list_users"):
            listed = [
                account for role in roles for _, account in sorted(self.accounts.items()) if account.role is role
            ]
            start = _offset(token, len(listed))
            end = start + limit
            return UserPage(users=listed[start:end], next_token=f"at:{end}" if end < len(listed) else None)

    def user(self, username: str) -> UserAccount:
        with self._call("user"):
            if username not in self.accounts:
                raise NotFound("user_not_found", "用户不存在")
            return self.accounts[username]


def _offset(token: str | None, size: int) -> int:
    if token is None:
        return 0
    position = token.removeprefix("at:")
    if not token.startswith("at:") or not position.isdigit() or int(position) > size:
        raise ValidationFailed("invalid_cursor", "分页游标无效")
    return int(position)


# --- the workflow's other ports --------------------------------------------------------------------------------


class FakeExecutions(Fake):
    """Step Functions as the timers see them: a start is idempotent by name (False when the name exists, whatever
    its status); a stop aborts a running one; `statuses` maps each name to RUNNING, ABORTED, FAILED..."""

    def __init__(self, statuses: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.statuses: dict[str, str] = dict(statuses or {})
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.stopped: list[str] = []

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        with self._call("start"):
            if name in self.statuses:
                return False
            self.statuses[name] = "RUNNING"
            self.started.append((name, payload))
            return True

    def stop(self, name: str) -> None:
        with self._call("stop"):
            self.stopped.append(name)
            if self.statuses.get(name) == "RUNNING":
                self.statuses[name] = "ABORTED"

    def running_names(self) -> set[str]:
        with self._call("running_names"):
            return {name for name, status in self.statuses.items() if status == "RUNNING"}


class FakeTopic(Fake):
    """The escalation topic (`Publisher`): every (body, attributes) published."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[dict[str, Any], dict[str, dict[str, str]]]] = []

    def publish(self, body: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None:
        with self._call("publish"):
            self.published.append((body, attributes))


if TYPE_CHECKING:  # each fake is the ports it stands for (mypy checks it; nothing runs)
    _registry: Registry = FakeRegistry()
    _directory: Directory = FakeRegistry()
    _registry_repository: RegistryRepository = FakeRegistry()
    _states: StateStore = FakeStates()
    _warning_store: WarningStore = FakeWarnings()
    _warning_repository: WarningRepository = FakeWarnings()
    _warning_reader: WarningReader = FakeWarnings()
    _open_warnings: OpenWarnings = FakeWarnings()
    _escalator: Escalator = FakeWarnings()
    _listings: WarningListings = FakeWarningListings(FakeWarnings())
    _quarantine: Quarantine = FakeQuarantine()
    _notifier: Notifier = FakeNotifier()
    _ledger: DeliveryLedger = FakeDeliveryLedger()
    _workflow: Workflow = FakeWorkflow()
    _timers: Timers = FakeTimers()
    _evidence: EvidenceStore = FakeEvidence()
    _users: UserDirectory = FakeUsers()
    _executions: Executions = FakeExecutions()
    _publisher: Publisher = FakeTopic()


# --- sample data shared by the workflow's tests and bench --------------------------------------------------------

SAMPLE_ENTERPRISE = Enterprise(
    enterprise_id="E1",
    name="渤化化工有限公司",
    sector=Sector.HAZCHEM,
    area_codes=("DAGANG",),
    contacts=(Contact(name="安全员", phone="+8613900000001"),),
)


def sample_warning(warning_id: str, level: int, raised_at: float, deadlines: DeadlinePolicy) -> WarningRecord:
    """A raised tank-level warning of `SAMPLE_ENTERPRISE`, its due times stamped as the store writes them."""
    record = WarningRecord(
        warning_id=warning_id,
        device_id="D",
        enterprise_id=SAMPLE_ENTERPRISE.enterprise_id,
        enterprise_name=SAMPLE_ENTERPRISE.name,
        sector=Sector.HAZCHEM,
        unit_id="U",
        unit_name="罐区",
        point_name="V-101",
        area_codes=SAMPLE_ENTERPRISE.area_codes,
        risk_type="tank_level",
        level=level,
        peak_level=level,
        status=WarningStatus.RAISED,
        reading_normal=False,
        raised_at=raised_at,
        updated_at=raised_at,
        title="液位高高报",
        reason="tank_level_hh",
        value=92.0,
        unit="%",
    )
    return restamp(record, deadlines)
