"""Ingest a batch of device records (DOMAIN.md §3, ARCHITECTURE.md flow): validate, check identity, grade, record
warnings, tell people, persist state, quarantine the rest.

Nothing is dropped and nothing a record contains can stop its shard: every record ends graded, quarantined with a
reason (its bytes kept), skipped as a redelivery of a record already applied, or, for an infrastructure fault
(throttling, timeouts, 5xx), reported as a batch-item failure for the event source to redeliver. Retries are
exact: warning ids, event keys, quarantine keys and delivery keys derive from the records, never from the
processing clock, and each delivery is claimed before it is sent (docs/decisions.md "Once-only telling").
"""

from __future__ import annotations

import base64
import math
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import ValidationError

from chalicelib.domain.catalog import Policy
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.declarations import Declaration, declared, not_graded, suppressing
from chalicelib.domain.delivery import change_job
from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.levels import Level
from chalicelib.domain.presence import Signal
from chalicelib.domain.rejections import Rejection, RejectReason, safe_text
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.telemetry import AnyMessage
from chalicelib.domain.warnings import WarningRecord
from chalicelib.observability import INHERIT, SERVICE, count, swallowed, traced
from chalicelib.services.fanout import notification_for
from chalicelib.services.ports import (
    ClaimOutcome,
    ConcurrentUpdateError,
    DeliveryJobs,
    DeliveryKey,
    DeliveryLedger,
    DeliveryNotSentError,
    DeliveryOutcome,
    Notification,
    Notifier,
    Quarantine,
    QuarantinedMessage,
    Registry,
    ShardCheckpoint,
    StateStore,
    StreamEntry,
    StreamLog,
    WarningStore,
    Workflow,
)
from chalicelib.services.presence import PresenceTracker, Sighting
from chalicelib.services.rule_documents import (
    MAX_PAYLOAD_BYTES,
    MAX_RECORD_BYTES,
    PresenceDocument,
    read_document,
)

_LEVEL_CHANGES = frozenset({ChangeKind.LEVEL_UP, ChangeKind.LEVEL_DOWN})
logger = Logger(service=SERVICE, child=True, level=INHERIT)


@dataclass(frozen=True, slots=True)
class IngestRecord:
    """One record from the stream: the topic rule's output document (JSON bytes)."""

    record_id: str  # the Kinesis sequence number (unique within its shard)
    data: bytes
    arrival_s: float | None = None  # approximateArrivalTimestamp: when the stream took the record
    shard_id: str = ""  # from the event's `eventID` ("shardId-…:sequence")

    @property
    def stream_id(self) -> str:
        """Unique in the stream: the shard and the sequence number."""
        return f"{self.shard_id}:{self.record_id}" if self.shard_id else self.record_id

    @property
    def sequence(self) -> int | None:
        return int(self.record_id) if self.record_id.isdigit() else None


@dataclass
class IngestReport:
    received: int = 0
    graded: int = 0
    presence: int = 0
    redelivered: int = 0  # records applied by an earlier delivery of the same batch (skipped, not quarantined)
    quarantined: Counter[str] = field(default_factory=Counter)
    changes: list[WarningChange] = field(default_factory=list)
    notified: int = 0  # topic publications by this call
    jobs: int = 0  # delivery jobs enqueued (messages for people)
    delivery_unknown: int = 0  # sends that raised without saying whether they went out
    failed_record_ids: list[str] = field(default_factory=list)
    states_written: int = 0
    unit_conflicts: int = 0  # unit writes that lost a race and were merged again


@dataclass
class _Item:
    record: IngestRecord
    arrival: float
    topic: str | None = None
    topic_device: str | None = None
    raw: bytes = b""
    message: AnyMessage | None = None
    rejection: Rejection | None = None
    presence: PresenceDocument | None = None
    redelivered: bool = False


@dataclass
class _Device:
    """One device's share of a batch."""

    first: IngestRecord
    graded: list[_Item] = field(default_factory=list)
    changes: list[WarningChange] = field(default_factory=list)


class _BatchUnits:
    """The unit states of one batch, each read (strongly consistent) the first time a reading touches a unit rule:
    devices of other shards write the same unit, so no copy is kept across batches, and a unit no reading touches
    is not read at all (docs/decisions.md "Shard lease and checkpoint")."""

    def __init__(self, states: StateStore, stored: _BatchUnits | None = None) -> None:
        self._states = states
        self._stored = stored  # a scratch view: copies of the stored units, never written
        self.units: dict[str, UnitState] = {}
        self.loaded_alarms: dict[str, dict[str, list[Any]]] = {}  # what a lost race merges this batch's notes on

    def source(self, unit_id: str) -> Callable[[], UnitState]:
        return lambda: self.get(unit_id)

    def get(self, unit_id: str) -> UnitState:
        unit = self.units.get(unit_id)
        if unit is None:
            if self._stored is not None:
                stored = self._stored.get(unit_id)
                unit = UnitState.loads(unit_id, stored.dumps(), stored.version)
            else:
                unit = self._states.load_units([unit_id])[unit_id]
                self.loaded_alarms[unit_id] = dict(unit.alarms)
            self.units[unit_id] = unit
        return unit

    def scratch(self) -> _BatchUnits:
        """Copies of the stored units for a regrade whose unit notes are dropped (the catch-up)."""
        return _BatchUnits(self._states, stored=self)


class _DeliveryBusyError(Exception):
    """Another live sender holds a delivery of this change: retry the device's records later."""


class IngestService:
    def __init__(
        self,
        engine: RiskEngine,
        policy: Policy,
        registry: Registry,
        states: StateStore,
        warnings: WarningStore,
        quarantine: Quarantine,
        notifier: Notifier,
        deliveries: DeliveryLedger,
        workflow: Workflow | None,
        clock: Callable[[], float],
        is_transient: Callable[[BaseException], bool],
        state_flush_s: float = 300.0,
        state_touch_s: float = 7200.0,
        cache_size: int = 50_000,
        claim_lease_s: float = 120.0,
        jobs: DeliveryJobs | None = None,
        presence: PresenceTracker | None = None,
        declarations: Callable[[], Sequence[Declaration]] | None = None,
        stream_log: StreamLog | None = None,
    ) -> None:
        self.presence = presence  # last sign of life per device, summarised per shard and minute
        self._declarations = declarations  # the open outage declarations (docs/declarations.md), cached
        self._engine = engine
        self._policy = policy
        self._registry = registry
        self._states = states
        self._warnings = warnings
        self._quarantine = quarantine
        self._notifier = notifier
        self._deliveries = deliveries
        self._workflow = workflow
        self._jobs = jobs
        self._clock = clock
        self._is_transient = is_transient
        self._flush_s = state_flush_s  # how often each shard's checkpoint (with the lagging states) is written
        # a stored state's newest reading (its `last_seen`, which the device list shows) is kept at most this far
        # behind the device's: a state is written at first sight and then at least once per `state_touch_s`
        self._touch_s = state_touch_s
        self._claim_lease_s = claim_lease_s
        self._owner = uuid.uuid4().hex  # this container, as the holder of delivery claims
        self._sent_unsettled: set[DeliveryKey] = set()  # sent, outcome not yet recorded (that write failed)
        self._cache: dict[str, DeviceState] = {}
        self._cache_size = cache_size
        # what a container switch loses and how the next one gets it back (docs/decisions.md "Shard lease and
        # checkpoint"): the shards this container holds (shard -> the epoch of its lease), which shard each cached
        # device is on, the cached states ahead of their stored item, states not in the cache that a checkpoint
        # must carry on (device -> shard, state JSON), and per shard the last record handled and when the
        # checkpoint was last written
        self._stream_log = stream_log
        self._persisted_at: dict[str, float] = {}  # device -> when written, for records without a shard
        self._stored_ts: dict[str, float] = {}  # device -> the newest reading its stored item has
        self._held: dict[str, int] = {}
        self._shard_of: dict[str, str] = {}
        self._behind: set[str] = set()
        self._parked: dict[str, tuple[str, str]] = {}
        self._tails: dict[str, int] = {}
        self._checkpointed_at: dict[str, float] = {}
        self._written: set[str] = set()  # device states written by the current batch
        self.totals: Counter[str] = Counter()  # since the container started: received, graded, quarantined...

    def handle(self, records: Sequence[IngestRecord]) -> IngestReport:
        """Grade a batch. Writes go in an order that makes any retry exact: quarantine rows, then per device its
        warnings with their events and deliveries, then unit states, then device states last (a retry regrades
        from the stored state and meets idempotent warning, event and delivery writes)."""
        now = self._clock()
        self._written.clear()
        report = IngestReport(received=len(records))
        items = [self._decode(record, now if record.arrival_s is None else record.arrival_s) for record in records]

        claimed = {item.message.device_id for item in items if item.message is not None}
        claimed |= {item.rejection.device_id for item in items if item.rejection and item.rejection.device_id}
        claimed |= {item.topic_device for item in items if item.presence is not None and item.topic_device}
        snapshots: dict[str, tuple[str, int]] = {}
        try:
            self._hold(records)
            registrations = self._registry.devices(claimed)
            states = self._load_states([device for device in claimed if device in registrations])
            if records and records[0].shard_id and records[0].sequence is not None:  # one batch, one shard
                self._shard_of.update(dict.fromkeys(states, records[0].shard_id))
            snapshots = {device: (state.dumps(), state.version) for device, state in states.items()}
            units = _BatchUnits(self._states)

            devices: dict[str, _Device] = {}
            for item in items:
                self._grade(item, registrations, states, units, report, devices)
            failed, poisoned = self._record_all(devices, report)
            self._quarantine_rejected(items, report)
            failed |= self._save_units(units.units, units.loaded_alarms, registrations, devices, report)
            retry, stale = self._save_states(devices, states, failed | poisoned, now, report)
            sightings = self._sightings(items, registrations) if self.presence is not None else []
        except Exception as exc:
            if not (records and (self._is_transient(exc) or isinstance(exc, ConcurrentUpdateError))):
                self._forget(claimed)  # a bug: the redelivered batch starts from what is stored
                raise  # not the records' doing and not the infrastructure's (the event source bisects)
            self._restore(snapshots)  # no device state was written: the retry regrades from the cache as it was
            logger.warning("transient fault: the whole batch goes back", extra={"error": type(exc).__name__})
            swallowed("ingest.batch_transient")
            report.failed_record_ids = [records[0].record_id]
            self._count(report, settled=[])
            return report
        self._observe_presence(sightings)
        # the cache as it was before this batch holds what the store lacks (coalesced watermarks, rolling memory):
        # a device to retry or whose records were quarantined regrades from it; a stale entry is dropped
        self._restore({device: snapshots[device] for device in (failed | poisoned | retry) - stale})
        self._forget(stale)
        report.failed_record_ids = [devices[device].first.record_id for device in failed | retry | stale]
        if failed | retry | stale:
            logger.info(
                "devices handed back for a retry",
                extra={"retry": sorted(failed | retry), "stale": sorted(stale), "poisoned": sorted(poisoned)},
            )
        unsettled = failed | retry | stale | poisoned
        self._note_behind(devices, unsettled)
        if not self._keep_checkpoint(records, now, due=bool(unsettled)):
            # the checkpoint was due and not written (a transient fault, or another container holds the shard now):
            # the batch goes back, and its retry (records already applied are skipped) writes it
            report.failed_record_ids = [records[0].record_id]
        self._count(report, settled=[c for d, g in devices.items() if d not in unsettled for c in g.changes])
        return report

    def flush(self) -> int:
        """Write every cached state ahead of its stored item, and the checkpoint of each shard still held."""
        written = 0
        for shard in list(self._held):
            if not self._still_held(shard):
                self._drop_shard(shard)
        for device, state in list(self._cache.items()):
            of = self._shard_of.get(device)
            if (of is None or of in self._held) and self._write_state(state):
                written += 1
        for shard in list(self._held):
            self._save_checkpoint(shard, self._clock())
        return written

    # --- presence (docs/offline-watch.md) ---------------------------------------------------------------------

    def _sightings(self, items: list[_Item], registrations: Any) -> list[Sighting]:
        """Every registered device that spoke in the batch (a graded record, any rejection it is named in, a
        lifecycle event): its record's arrival and its offline threshold."""
        assert self.presence is not None
        policy = self.presence.policy
        sightings = []
        for item in items:
            device = item.message.device_id if item.message is not None else item.topic_device
            reg = registrations.get(device) if device else None
            if reg is None:
                continue
            signal = Signal.DATA
            if item.presence is not None:
                signal = Signal.DISCONNECT if item.presence.eventType == "disconnected" else Signal.CONNECT
            threshold = policy.threshold_of(reg)
            sightings.append(Sighting(item.record.shard_id, reg.device_id, item.arrival, threshold, signal))
        return sightings

    def _observe_presence(self, sightings: list[Sighting]) -> None:
        if self.presence is None:
            return
        try:
            self.presence.observe(sightings)
        except Exception:
            logger.exception("presence tracking failed: the batch stands")
            swallowed("ingest.presence")

    # --- the container's state cache -------------------------------------------------------------------------

    @traced("ingest.load_states")
    def _load_states(self, device_ids: list[str]) -> dict[str, DeviceState]:
        """States this container holds are newer than the stored ones (watermark writes are coalesced): a shard
        is read by one invocation at a time and a device always maps to one shard; a stale entry is caught by
        the version check of the next write, which hands the records back for a retry from the stored state."""
        cache = self._cache
        missing = [device for device in device_ids if device not in cache]
        if missing:
            loaded = self._states.load_devices(missing)
            for device, stored in loaded.items():
                self._stored_ts[device] = stored.last_ts
                parked = self._parked.pop(device, None)
                if parked is None:
                    continue
                newer = DeviceState.loads(device, parked[1], stored.version)
                if newer.last_record > stored.last_record:  # the checkpoint has what the stored item lacks
                    loaded[device] = newer
                    self._shard_of[device] = parked[0]
                    self._behind.add(device)
            cache.update(loaded)
            overflow = len(cache) - self._cache_size
            if overflow > 0:
                wanted = set(device_ids)
                for device in [d for d in cache if d not in wanted][:overflow]:
                    self._evict(device)
        return {device: cache[device] for device in device_ids}

    # --- the shard lease and checkpoint (docs/decisions.md "Shard lease and checkpoint") -------------------------

    @traced("ingest.hold")
    def _hold(self, records: Sequence[IngestRecord]) -> None:
        """Before grading a shard's batch: make sure this container still holds the shard (one strongly consistent
        read of its lease); if another took it since, or nobody did, take it over, drop what the cache has of the
        shard, and catch up from the shard's checkpoint. A takeover that loses a race hands the batch back."""
        first = records[0] if records else None
        if first is None or first.sequence is None or not first.shard_id:
            return
        shard = first.shard_id
        lease = self._states.shard_lease(shard)
        if lease is not None and lease.owner == self._owner and self._held.get(shard) == lease.epoch:
            return
        self._drop_shard(shard)
        taken = self._states.take_shard(shard, self._owner, lease)
        count("ShardTakeovers")
        logger.info("shard taken over", extra={"shard": shard, "epoch": taken.epoch})
        self._catch_up(shard, first)
        self._held[shard] = taken.epoch  # only once caught up: a retry of a failed catch-up takes over again

    def _still_held(self, shard: str) -> bool:
        lease = self._states.shard_lease(shard)
        return lease is not None and lease.owner == self._owner and self._held.get(shard) == lease.epoch

    def _drop_shard(self, shard: str) -> None:
        """Forget what this container has of a shard another container holds (or may hold) now."""
        self._forget({device for device, of in self._shard_of.items() if of == shard})
        for device in [device for device, (of, _) in self._parked.items() if of == shard]:
            del self._parked[device]
        self._held.pop(shard, None)
        self._tails.pop(shard, None)
        self._checkpointed_at.pop(shard, None)

    @traced("ingest.catch_up")
    def _catch_up(self, shard: str, first: IngestRecord) -> None:
        """On taking a shard over: load its checkpoint (the states whose stored item lags, and the sequence through
        which they are complete), read the shard back from that sequence to the batch and regrade, into the states,
        what a container that stopped (or lost the shard) between checkpoints left out: coalesced watermarks and
        rolling sums. Their warnings, events and deliveries were recorded when they were first graded (the event
        source had checkpointed them): regrading rebuilds the states only."""
        checkpoint = self._states.load_checkpoint(shard)
        if checkpoint is not None:
            for device, text in checkpoint.states.items():
                self._parked[device] = (shard, text)
        after = checkpoint.sequence if checkpoint is not None else None
        backlog: dict[str, list[StreamEntry]] = {}
        assert first.sequence is not None
        if self._stream_log is not None and after is not None and int(after) < first.sequence - 1:
            try:
                for entry in self._stream_log.read(shard, after, first.record_id):
                    backlog.setdefault(entry.partition_key, []).append(entry)
            except Exception as exc:
                if self._is_transient(exc):
                    raise  # the batch goes back and its retry reads again
                logger.exception(
                    "reading the shard back failed: states start from the store", extra={"shard": shard}
                )
                swallowed("ingest.catch_up")
                backlog = {}
        if backlog:
            try:
                self._regrade_backlog(shard, backlog)
            except Exception:
                self._forget(backlog)  # half caught up: the retry starts again from the store
                raise
        # the first batch writes a checkpoint at once: a container may not live a checkpoint interval, and its
        # successor would read back from an ever older one
        self._checkpointed_at[shard] = -math.inf
        count("CatchUpRecordsRead", sum(len(entries) for entries in backlog.values()))

    def _regrade_backlog(self, shard: str, backlog: dict[str, list[StreamEntry]]) -> None:
        """Grade each device's records the state lacks into the state alone (changes, rejections and unit notes
        are dropped: the stored units already have them; grading runs on copies). A caught-up state is ahead of
        its stored item: the shard's next checkpoint carries it."""
        registrations = self._registry.devices(backlog)
        states = self._load_states([device for device in backlog if device in registrations])
        stored_units = _BatchUnits(self._states)
        applied = 0
        for device, state in states.items():
            self._shard_of[device] = shard
            missed = [entry for entry in backlog[device] if int(entry.sequence) > state.last_record]
            if not missed or state.last_record < 0:
                continue  # nothing left out, or a state no record was ever applied to (a first deployment)
            scratch_units = stored_units.scratch()
            for entry in missed:
                record = IngestRecord(entry.sequence, entry.data, entry.arrival_s, shard)
                item = self._decode(record, entry.arrival_s)
                self._grade(item, registrations, {device: state}, scratch_units, IngestReport(), {})
            self._behind.add(device)
            applied += len(missed)
        logger.info("shard read back", extra={"shard": shard, "devices": len(backlog), "applied": applied})
        count("CatchUpRecordsApplied", applied)

    def _note_behind(self, devices: dict[str, _Device], unsettled: set[str]) -> None:
        """Applied records whose device state was not written (coalesced) put the state ahead of its stored item:
        the shard's checkpoint carries it until the state is written."""
        for device, group in devices.items():
            if device in unsettled or group.first.sequence is None or not group.first.shard_id:
                continue
            self._shard_of[device] = group.first.shard_id
            if device not in self._written:
                self._behind.add(device)

    def _keep_checkpoint(self, records: Sequence[IngestRecord], now: float, due: bool) -> bool:
        """Once per `state_flush_s` per shard (and on the first batch after a takeover, and on the batch after one
        that handed records back: its retry's states are not left to the next interval); False when a due
        checkpoint was not written."""
        last = records[-1] if records else None
        if last is None or last.sequence is None or last.shard_id not in self._held:
            return True
        shard = last.shard_id
        self._tails[shard] = max(last.sequence, self._tails.get(shard, -1))
        saved = True
        if now - self._checkpointed_at.get(shard, -math.inf) >= self._flush_s:
            saved = self._save_checkpoint(shard, now)
        if due and saved:
            self._checkpointed_at[shard] = -math.inf
        return saved

    def _save_checkpoint(self, shard: str, now: float) -> bool:
        """The shard's checkpoint: through the last record handled, with every state of the shard that is ahead of
        its stored item (cached, or carried on from the previous checkpoint). False when not written: a transient
        fault, or the shard is another container's (a holder of a later epoch wrote one; this one lets it go)."""
        tail = self._tails.get(shard)
        if tail is None or shard not in self._held:
            return True
        states = {device: text for device, (of, text) in self._parked.items() if of == shard}
        for device in self._behind:
            state = self._cache.get(device)
            if state is not None and self._shard_of.get(device) == shard:
                states[device] = state.dumps()
        try:
            self._states.save_checkpoint(shard, ShardCheckpoint(str(tail), self._held[shard], states))
        except ConcurrentUpdateError:
            logger.warning("the shard is another container's: its batch goes back", extra={"shard": shard})
            count("ShardsLost")
            self._drop_shard(shard)
            return False
        except Exception as exc:
            if not self._is_transient(exc):
                raise
            logger.warning(
                "transient fault writing the shard's checkpoint: the batch goes back", extra={"shard": shard}
            )
            swallowed("ingest.checkpoint")  # the retry (its records all redeliveries) writes it
            return False
        self._checkpointed_at[shard] = now
        count("CheckpointStates", len(states))
        return True

    def _evict(self, device: str) -> None:
        """Drop a device from the cache, writing first what only the cache knows (its coalesced watermark and
        rolling memory); a lost race means the store is newer already."""
        state = self._cache.pop(device)
        shard = self._shard_of.pop(device, None)
        self._stored_ts.pop(device, None)
        ahead = device in self._behind or state.dirty
        self._behind.discard(device)
        if ahead and shard is not None:
            self._parked[device] = (shard, state.dumps())  # the shard's checkpoint carries it on
        elif ahead:
            self._write_state(state)

    def _write_state(self, state: DeviceState) -> bool:
        try:
            self._states.save_device(state, last_seen=state.last_ts)
        except ConcurrentUpdateError:
            return False
        state.dirty = False
        self._written.add(state.device_id)
        self._behind.discard(state.device_id)
        self._stored_ts[state.device_id] = state.last_ts
        return True

    def _restore(self, snapshots: dict[str, tuple[str, int]]) -> None:
        for device, (text, version) in snapshots.items():
            self._cache[device] = DeviceState.loads(device, text, version)

    def _forget(self, devices: set[str] | dict[str, Any]) -> None:
        for device in devices:
            self._cache.pop(device, None)
            self._behind.discard(device)
            self._shard_of.pop(device, None)
            self._parked.pop(device, None)
            self._persisted_at.pop(device, None)
            self._stored_ts.pop(device, None)

    def _count(self, report: IngestReport, settled: list[WarningChange]) -> None:
        """Totals since the container started, and this batch's metrics: warnings only for the devices whose
        records are done (a retried device is counted when its retry settles it)."""
        count("MessagesReceived", report.received)
        count("MessagesGraded", report.graded)
        count("MessagesRedelivered", report.redelivered)
        count("BatchItemFailures", len(report.failed_record_ids))
        for reason, quarantined in report.quarantined.items():
            count("MessagesQuarantined", quarantined, reason=reason)
        for change in settled:
            level, sector = Level(change.level).code, change.sector.value
            if change.kind is ChangeKind.RAISE:
                count("WarningsRaised", level=level, sector=sector)
            else:
                count("WarningsChanged", change=change.kind.value, level=level, sector=sector)
        totals = self.totals
        totals["received"] += report.received
        totals["graded"] += report.graded
        totals["presence"] += report.presence
        totals["redelivered"] += report.redelivered
        totals["quarantined"] += sum(report.quarantined.values())
        totals["failed"] += len(report.failed_record_ids)
        totals["changes"] += len(report.changes)
        totals["notified"] += report.notified
        totals["delivery_unknown"] += report.delivery_unknown
        totals["states_written"] += report.states_written

    # --- decoding and identity ---------------------------------------------------------------------------

    def _decode(self, record: IngestRecord, arrival: float) -> _Item:
        item = _Item(record, arrival, raw=record.data)
        if len(record.data) > MAX_RECORD_BYTES:
            detail = f"stream record of {len(record.data)} bytes (limit {MAX_RECORD_BYTES})"
            item.rejection = Rejection(RejectReason.OVERSIZED, detail, record.data)
            return item
        try:
            document = read_document(record.data)
        except ValidationError as exc:
            detail = safe_text(f"stream record: {exc.errors(include_input=False, include_url=False)[0]['msg']}")
            item.rejection = Rejection(RejectReason.SCHEMA, detail, record.data)
            return item
        if isinstance(document, PresenceDocument):
            item.presence = document
            item.topic_device = document.clientId or None
            return item
        sector, enterprise, device = document.topic_sector, document.topic_enterprise, document.topic_device
        item.topic = f"dyj/{sector}/{enterprise}/{device}/telemetry"
        item.topic_device = device or None
        try:
            item.raw = base64.b64decode(document.payload, validate=True)
        except ValueError as exc:  # not base64, or not ASCII at all
            detail = safe_text(f"payload is not base64: {exc}")
            item.rejection = Rejection(RejectReason.SCHEMA, detail, record.data, device)
            return item
        if len(item.raw) > MAX_PAYLOAD_BYTES:
            detail = f"payload of {len(item.raw)} bytes (limit {MAX_PAYLOAD_BYTES})"
            item.rejection = Rejection(RejectReason.OVERSIZED, detail, item.raw, device)
            return item
        parsed = self._engine.parse(item.raw, arrival)
        if isinstance(parsed, Rejection):
            if parsed.device_id is not None and parsed.device_id != device:
                # however else it is broken, a payload naming another device than its topic is spoofed: it must
                # not raise a data-quality finding against the device it names
                parsed = Rejection(
                    RejectReason.SPOOFED,
                    f"topic device {device}, payload device {parsed.device_id} ({parsed.reason.value})",
                    item.raw,
                    device,
                )
            item.rejection = parsed
            return item
        if (parsed.device_id, parsed.enterprise_id, parsed.sector) != (device, enterprise, sector):
            item.rejection = Rejection(
                RejectReason.SPOOFED,
                f"topic {sector}/{enterprise}/{device}, payload {parsed.sector}/{parsed.enterprise_id}/"
                f"{parsed.device_id}",
                item.raw,
                device,
            )
            return item
        item.message = parsed
        return item

    # --- grading -----------------------------------------------------------------------------------------

    def _grade(
        self,
        item: _Item,
        registrations: Any,
        states: dict[str, DeviceState],
        units: _BatchUnits,
        report: IngestReport,
        devices: dict[str, _Device],
    ) -> None:
        sequence = item.record.sequence
        if item.presence is not None:
            report.presence += 1
            device = item.topic_device
            if device in states:
                state = states[device]
                if state.already_applied(sequence):
                    return
                state.scratch["_p"] = {"e": item.presence.eventType, "t": item.arrival}
                self._applied(state, sequence)
                state.dirty = True
                devices.setdefault(device, _Device(item.record))
            return
        device = item.message.device_id if item.message is not None else None
        if device is None and item.rejection is not None and item.rejection.device_id in states:
            device = item.rejection.device_id
        current = states.get(device) if device is not None else None
        if current is not None and current.already_applied(sequence):
            item.redelivered, item.rejection = True, None
            report.redelivered += 1
            return
        if item.rejection is not None:
            if current is not None and device is not None and item.rejection.reason.is_sensor_fault:
                changes = self._engine.reject(registrations[device], current, item.rejection, item.arrival)
                if self._declarations is not None and changes:
                    changes = self._suppress_quality(changes, self._declarations(), current)
                self._applied(current, sequence)
                group = devices.setdefault(device, _Device(item.record))
                group.changes.extend(changes)
                report.changes.extend(changes)
            return
        message = item.message
        assert message is not None
        reg = registrations.get(message.device_id)
        if reg is None or current is None:
            item.rejection = Rejection(RejectReason.UNKNOWN_DEVICE, "no registration", item.raw, message.device_id)
            return
        excuses = self._declarations() if self._declarations is not None else ()
        if excuses and not_graded(excuses, reg.device_id, message.epoch):
            detail = "inside a data-distortion declaration"
            item.rejection = Rejection(RejectReason.DECLARED_DISTORTION, detail, item.raw, message.device_id)
            return  # kept in the quarantine with its bytes, never graded (its device still counts as alive)
        result = self._engine.grade(reg, current, units.source(reg.unit_id), message, item.raw)
        if excuses and not isinstance(result, Rejection):
            result = self._suppress_quality(result, excuses, current)
        if isinstance(result, Rejection):
            if result.reason is RejectReason.MODEL_ERROR:  # our bug, not the device's: someone must look
                logger.error("a sector model failed on a message", extra={"device_id": message.device_id})
                swallowed("ingest.sector_model")
            item.rejection = result
            return
        self._applied(current, sequence)
        report.graded += 1
        report.changes.extend(result)
        group = devices.setdefault(message.device_id, _Device(item.record))
        group.graded.append(item)
        group.changes.extend(result)

    def _suppress_quality(
        self, changes: Sequence[WarningChange], excuses: Sequence[Declaration], state: DeviceState
    ) -> Sequence[WarningChange]:
        """A data-quality finding of a device a declaration excuses (DOMAIN.md §5) is recorded, not raised: its
        change goes to the engine log flagged `declared`, nobody is told, and the engine forgets it (the same fault
        after the window raises then)."""
        kept: list[WarningChange] = []
        for change in changes:
            excused = change.risk_type == DATA_QUALITY and change.kind is ChangeKind.RAISE
            excuse = suppressing(excuses, change.device_id, change.at) if excused else None
            if excuse is None:
                kept.append(change)
                continue
            self._warnings.append_engine_event(declared(change, excuse.declaration_id))
            state.risks.pop(DATA_QUALITY, None)
            state.dirty = True
            count("FindingsSuppressed", risk_type=change.risk_type)
        return kept if len(kept) != len(changes) else changes

    @staticmethod
    def _applied(state: DeviceState, sequence: int | None) -> None:
        if sequence is not None and sequence > state.last_record:
            state.last_record = sequence

    @traced("ingest.quarantine")
    def _quarantine_rejected(self, items: list[_Item], report: IngestReport) -> None:
        rows = [self._quarantined(item) for item in items if item.rejection is not None]
        for row in rows:
            report.quarantined[row.reason] += 1
        if rows:
            self._quarantine.put(rows)

    @staticmethod
    def _quarantined(item: _Item) -> QuarantinedMessage:
        rejection = item.rejection
        assert rejection is not None
        device = rejection.device_id or item.topic_device
        return QuarantinedMessage(
            received_at=item.arrival,
            record_id=item.record.stream_id,
            reason=rejection.reason.value,
            detail=safe_text(rejection.detail) or "-",
            payload=item.raw or item.record.data,
            topic=safe_text(item.topic, 200) if item.topic else None,
            device_id=safe_text(device, 64) if device else None,
        )

    # --- warnings and telling ----------------------------------------------------------------------------

    @traced("ingest.record_warnings")
    def _record_all(self, devices: dict[str, _Device], report: IngestReport) -> tuple[set[str], set[str]]:
        """Record and tell each device's changes; returns the devices to retry, and the poisoned ones: a change
        that cannot be stored because of what it carries quarantines the device's records of this batch (its
        state is not written) instead of blocking the shard."""
        failed: set[str] = set()
        poisoned: set[str] = set()
        people = None
        for device, group in devices.items():
            if not group.changes:
                continue
            try:
                if people is None:
                    people = self._registry.people()
                for change in group.changes:
                    self._record(change, people, report)
            except (ConcurrentUpdateError, DeliveryNotSentError, _DeliveryBusyError):
                failed.add(device)
            except Exception as exc:
                if self._is_transient(exc):
                    logger.warning(
                        "transient fault recording warnings",
                        extra={"device_id": device, "error": type(exc).__name__},
                    )
                    swallowed("ingest.record_transient")
                    failed.add(device)
                    continue
                logger.exception("a change could not be stored", extra={"device_id": device})
                swallowed("ingest.record_unstorable")
                self._poison(device, group, exc, report)
                poisoned.add(device)
        return failed, poisoned

    @staticmethod
    def _poison(device: str, group: _Device, exc: Exception, report: IngestReport) -> None:
        """Quarantine the device's graded records of this batch (its state is not written, so nothing half-done
        stays): the store refused what grading them produced."""
        detail = safe_text(f"storing the warning change failed: {type(exc).__name__}: {exc}", 300)
        for item in group.graded:
            item.rejection = Rejection(RejectReason.UNSTORABLE_VALUE, detail, item.raw, device)
            report.graded -= 1
        for change in group.changes:
            report.changes.remove(change)
        group.graded.clear()
        group.changes.clear()

    def _record(self, change: WarningChange, people: Sequence[Any], report: IngestReport) -> None:
        if change.kind is ChangeKind.RAISE:
            record = WarningRecord.raised(change)
            self._warnings.create(record)  # completes a half-written raise (its audit event) when it exists
            if self._workflow is not None:
                self._workflow.track(record.warning_id)
        elif self._warnings.apply_change(change) and change.kind in _LEVEL_CHANGES and self._workflow is not None:
            self._workflow.track(change.warning_id)  # the level's deadlines are re-armed from the change
        self._warnings.append_engine_event(change)
        logger.info(
            "warning change recorded",
            extra={
                "warning_id": change.warning_id,
                "device_id": change.device_id,
                "change": change.kind.value,
                "warning_level": Level(change.level).code,
                "previous_level": Level(change.previous_level).code,
                "sector": change.sector.value,
                "risk_type": change.risk_type,
                "event_seq": change.event_seq,
            },
        )
        enterprise = self._registry.enterprise(change.enterprise_id)
        notification = notification_for(self._policy, change, enterprise, people)
        self._tell(notification, report)

    def _tell(self, notification: Notification, report: IngestReport) -> None:
        """The change to the warning topic (the consoles' audience queues), claimed once; then one delivery job
        for people (docs/delivery.md), enqueued again on a retry: the delivery ledger sends its deliveries once."""
        change = notification.change
        if notification.route.audiences:
            topic = DeliveryKey(change.warning_id, change.event_seq, "topic", "-")
            self._deliver(topic, lambda: self._notifier.publish(notification), report)
        if self._jobs is not None and notification.text is not None:
            self._jobs.enqueue([change_job(change, notification.route, notification.text, notification.app)])
            report.jobs += 1

    def _deliver(self, key: DeliveryKey, send: Callable[[], None], report: IngestReport) -> None:
        """Claim, send, settle. A send that raised without saying whether it went out is not repeated."""
        ledger, owner = self._deliveries, self._owner
        if key in self._sent_unsettled:
            ledger.settle(key, owner, DeliveryOutcome.SENT, self._clock())
            self._sent_unsettled.discard(key)
            return
        claim = ledger.claim(key, owner, self._clock(), self._claim_lease_s)
        if claim is ClaimOutcome.DONE:
            return
        if claim is ClaimOutcome.BUSY:
            raise _DeliveryBusyError(key.name)
        where = {"warning_id": key.warning_id, "event_seq": key.event_seq, "channel": key.channel}  # no address
        try:
            send()
        except DeliveryNotSentError:
            logger.warning("delivery not sent: the device's records go back for a retry", extra=where)
            count("DeliveriesFailed", channel=key.channel, outcome="not_sent")
            ledger.settle(key, owner, DeliveryOutcome.FAILED, self._clock())
            raise
        except Exception as exc:
            logger.error("delivery outcome unknown: not sent again", extra={**where, "error": type(exc).__name__})
            count("DeliveriesFailed", channel=key.channel, outcome="unknown")
            swallowed("ingest.delivery_unknown")
            ledger.settle(key, owner, DeliveryOutcome.UNKNOWN, self._clock())
            report.delivery_unknown += 1
            return
        count("DeliveriesSent", channel=key.channel)
        self._sent_unsettled.add(key)
        ledger.settle(key, owner, DeliveryOutcome.SENT, self._clock())
        self._sent_unsettled.discard(key)
        report.notified += 1

    # --- persistence ---------------------------------------------------------------------------------------

    @traced("ingest.save_units")
    def _save_units(
        self,
        units: dict[str, UnitState],
        loaded_alarms: dict[str, dict[str, list[Any]]],
        registrations: Any,
        devices: dict[str, _Device],
        report: IngestReport,
    ) -> set[str]:
        """Write each changed unit before any device state (a retry regrades the devices and notes their alarms
        again); a lost race re-reads the unit and reapplies this batch's own notes (each device's notes belong
        to its shard) up to three times before the unit's devices are retried."""
        failed: set[str] = set()
        for unit_id in list(units):
            unit = units[unit_id]
            if not unit.dirty:
                continue
            for attempt in range(3):
                try:
                    self._states.save_unit(unit)
                    unit.dirty = False
                    break
                except ConcurrentUpdateError:
                    report.unit_conflicts += 1
                    if attempt == 2:
                        break
                    unit = units[unit_id] = _merged(
                        self._states.load_units([unit_id])[unit_id], loaded_alarms[unit_id], unit
                    )
            if unit.dirty:
                failed |= {device for device in devices if registrations[device].unit_id == unit_id}
        return failed

    @traced("ingest.save_states")
    def _save_states(
        self,
        devices: dict[str, _Device],
        states: dict[str, DeviceState],
        failed: set[str],
        now: float,
        report: IngestReport,
    ) -> tuple[set[str], set[str]]:
        """Write dirty states, and states first seen or whose stored `last_seen` is a touch interval behind; any
        other watermark-only change is carried by the shard's checkpoint (of a record without a shard, written once
        per flush interval). Returns the devices to retry (an infrastructure fault) and those
        whose cached state is stale (another writer won the version check)."""
        retry: set[str] = set()
        stale: set[str] = set()
        for device, group in devices.items():
            if device in failed:
                continue
            state = states[device]
            first = group.first
            checkpointed = first.sequence is not None and first.shard_id in self._held
            if checkpointed:  # first sight, or the stored `last_seen` a touch interval behind
                due = state.last_ts - self._stored_ts.get(device, 0.0) >= self._touch_s
            else:
                due = now - self._persisted_at.get(device, -math.inf) >= self._flush_s
            if not (state.dirty or due):
                continue
            try:
                written = self._write_state(state)
            except Exception as exc:
                if not self._is_transient(exc):
                    raise
                logger.warning(
                    "transient fault writing a device state",
                    extra={"device_id": device, "error": type(exc).__name__},
                )
                swallowed("ingest.state_transient")
                retry.add(device)
                continue
            if not written:
                stale.add(device)
                continue
            if not checkpointed:
                self._persisted_at[device] = now
            report.states_written += 1
        return retry, stale


def _merged(stored: UnitState, loaded: dict[str, list[Any]], mine: UnitState) -> UnitState:
    """The stored unit with this batch's own changes (relative to what it loaded) applied on top."""
    alarms = dict(stored.alarms)
    for key in loaded.keys() | mine.alarms.keys():
        if key not in mine.alarms:
            alarms.pop(key, None)
        elif loaded.get(key) != mine.alarms[key]:
            alarms[key] = mine.alarms[key]
    merged = UnitState(stored.unit_id, alarms, stored.version)
    merged.dirty = True
    return merged
