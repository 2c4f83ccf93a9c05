"""Ingest a batch of device records (DOMAIN.md §3, ARCHITECTURE.md flow): validate, check identity, grade, persist
what changed, record warnings, fan out, quarantine the rest. Nothing is dropped: every record ends graded,
quarantined, or reported as a batch-item failure for the event source to redeliver.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.catalog import Policy
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.rejections import Rejection, RejectReason
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.telemetry import AnyMessage
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.fanout import notification_for
from chalicelib.services.ports import (
    ConcurrentUpdateError,
    Notifier,
    Quarantine,
    QuarantinedMessage,
    Registry,
    StateStore,
    WarningStore,
    Workflow,
)


@dataclass(frozen=True, slots=True)
class IngestRecord:
    """One record from the stream: the topic rule's output document (JSON bytes)."""

    record_id: str
    data: bytes


@dataclass
class IngestReport:
    received: int = 0
    graded: int = 0
    presence: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    changes: list[WarningChange] = field(default_factory=list)
    notified: int = 0
    failed_record_ids: list[str] = field(default_factory=list)
    states_written: int = 0
    unit_conflicts: int = 0


@dataclass
class _Item:
    record: IngestRecord
    topic: str | None = None
    topic_device: str | None = None
    raw: bytes = b""
    message: AnyMessage | None = None
    rejection: Rejection | None = None
    presence: dict[str, Any] | None = None


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
        workflow: Workflow | None,
        clock: Callable[[], float],
        state_flush_s: float = 300.0,
        cache_size: int = 50_000,
    ) -> None:
        self._engine = engine
        self._policy = policy
        self._registry = registry
        self._states = states
        self._warnings = warnings
        self._quarantine = quarantine
        self._notifier = notifier
        self._workflow = workflow
        self._clock = clock
        self._flush_s = state_flush_s
        self._persisted_at: dict[str, float] = {}  # device -> when its state was last written by this container
        self._cache: dict[str, DeviceState] = {}
        self._cache_size = cache_size
        self.totals: Counter[str] = Counter()  # since the container started: received, graded, quarantined...

    def handle(self, records: Sequence[IngestRecord]) -> IngestReport:
        """Grade a batch. Order matters for retries: warnings are recorded and told before states are written, so
        a batch retried after any failure regrades from the stored state and yields the same warnings (ids and
        event keys are deterministic), which the stores ignore and nobody is told twice."""
        now = self._clock()
        report = IngestReport(received=len(records))
        items = [self._decode(record, now) for record in records]

        claimed = {item.message.device_id for item in items if item.message is not None}
        claimed |= {item.rejection.device_id for item in items if item.rejection and item.rejection.device_id}
        claimed |= {item.topic_device for item in items if item.presence is not None and item.topic_device}
        registrations = self._registry.devices(claimed)
        states = self._load_states([device for device in claimed if device in registrations])
        units = self._states.load_units({registrations[device].unit_id for device in states})

        quarantined: list[QuarantinedMessage] = []
        touched: dict[str, DeviceState] = {}
        first_item_of: dict[str, IngestRecord] = {}
        try:
            for item in items:
                self._grade(item, now, registrations, states, units, report, touched, first_item_of)
                if item.rejection is not None:
                    quarantined.append(self._quarantined(item, now))
                    report.quarantined[item.rejection.reason.value] += 1
            if quarantined:
                self._quarantine.put(quarantined)
            self._record_changes(report)
            failed_devices = self._persist(touched, units, registrations, now, report)
        except Exception:
            self._forget(states)  # the redelivered batch must start from what is stored
            raise
        self._forget({device: states[device] for device in failed_devices})
        for device in failed_devices:
            report.failed_record_ids.append(first_item_of[device].record_id)
        self._count(report)
        return report

    def _load_states(self, device_ids: list[str]) -> dict[str, DeviceState]:
        """States this container holds are newer than the stored ones (watermark writes are coalesced): a shard
        is read by one invocation at a time and a device always maps to one shard; a stale entry is caught by
        the version check of the next write, which hands the records back for a retry from the stored state."""
        cache = self._cache
        missing = [device for device in device_ids if device not in cache]
        if missing:
            cache.update(self._states.load_devices(missing))
            overflow = len(cache) - self._cache_size
            if overflow > 0:
                wanted = set(device_ids)
                for device in [d for d in cache if d not in wanted][:overflow]:
                    self._persisted_at.pop(device, None)
                    del cache[device]
        return {device: cache[device] for device in device_ids}

    def _forget(self, states: dict[str, DeviceState]) -> None:
        for device in states:
            self._cache.pop(device, None)
            self._persisted_at.pop(device, None)

    def _count(self, report: IngestReport) -> None:
        totals = self.totals
        totals["received"] += report.received
        totals["graded"] += report.graded
        totals["presence"] += report.presence
        totals["quarantined"] += sum(report.quarantined.values())
        totals["failed"] += len(report.failed_record_ids)
        totals["changes"] += len(report.changes)
        totals["notified"] += report.notified
        totals["states_written"] += report.states_written

    # --- decoding and identity ---------------------------------------------------------------------------

    def _decode(self, record: IngestRecord, now: float) -> _Item:
        item = _Item(record)
        try:
            document = json.loads(record.data)
            if not isinstance(document, dict):
                raise ValueError("record is not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            item.raw = record.data
            item.rejection = Rejection(RejectReason.SCHEMA, f"stream record: {exc}"[:200], record.data)
            return item
        if "eventType" in document:  # IoT Core lifecycle (presence) event
            item.presence = document
            item.topic_device = str(document.get("clientId", "")) or None
            return item
        sector, enterprise, device = (
            document.get("topic_sector"),
            document.get("topic_enterprise"),
            document.get("topic_device"),
        )
        item.topic = f"dyj/{sector}/{enterprise}/{device}/telemetry"
        item.topic_device = device if isinstance(device, str) else None
        try:
            item.raw = base64.b64decode(document["payload"], validate=True)
        except (KeyError, TypeError, binascii.Error) as exc:
            item.raw = record.data
            detail = f"no payload: {exc}"[:200]
            item.rejection = Rejection(RejectReason.SCHEMA, detail, record.data, item.topic_device)
            return item
        parsed = self._engine.parse(item.raw, now)
        if isinstance(parsed, Rejection):
            if parsed.device_id is not None and parsed.device_id != device:
                # however else it is broken, a payload naming another device than its topic is spoofed: it must
                # not raise a data-quality finding against the device it names
                parsed = Rejection(
                    RejectReason.SPOOFED,
                    f"topic device {device}, payload device {parsed.device_id} ({parsed.reason.value})",
                    item.raw,
                    item.topic_device,
                )
            item.rejection = parsed
            return item
        if (parsed.device_id, parsed.enterprise_id, parsed.sector) != (device, enterprise, sector):
            item.rejection = Rejection(
                RejectReason.SPOOFED,
                f"topic {sector}/{enterprise}/{device}, payload {parsed.sector}/{parsed.enterprise_id}/"
                f"{parsed.device_id}",
                item.raw,
                item.topic_device,
            )
            return item
        item.message = parsed
        return item

    # --- grading -----------------------------------------------------------------------------------------

    def _grade(
        self,
        item: _Item,
        now: float,
        registrations: dict[str, DeviceRegistration] | Any,
        states: dict[str, DeviceState],
        units: dict[str, UnitState],
        report: IngestReport,
        touched: dict[str, DeviceState],
        first_item_of: dict[str, IngestRecord],
    ) -> None:
        if item.presence is not None:
            report.presence += 1
            device = item.topic_device
            if device in states:
                state = states[device]
                state.scratch["_p"] = {"e": str(item.presence.get("eventType")), "t": now}
                state.dirty = True
                touched[device] = state
                first_item_of.setdefault(device, item.record)
            return
        if item.rejection is not None:
            device = item.rejection.device_id
            if device in states and item.rejection.reason.is_sensor_fault:
                state = states[device]
                report.changes.extend(self._engine.reject(registrations[device], state, item.rejection, now))
                touched[device] = state
                first_item_of.setdefault(device, item.record)
            return
        message = item.message
        assert message is not None
        reg = registrations.get(message.device_id)
        if reg is None:
            item.rejection = Rejection(RejectReason.UNKNOWN_DEVICE, "no registration", item.raw, message.device_id)
            return
        state = states[message.device_id]
        result = self._engine.grade(reg, state, units.get(reg.unit_id), message, item.raw)
        if isinstance(result, Rejection):
            item.rejection = result
            return
        report.graded += 1
        report.changes.extend(result)
        touched[message.device_id] = state
        first_item_of.setdefault(message.device_id, item.record)

    def _quarantined(self, item: _Item, now: float) -> QuarantinedMessage:
        rejection = item.rejection
        assert rejection is not None
        return QuarantinedMessage(
            received_at=now,
            record_id=item.record.record_id,
            reason=rejection.reason.value,
            detail=rejection.detail,
            payload=item.raw or item.record.data,
            topic=item.topic,
            device_id=rejection.device_id or item.topic_device,
        )

    # --- persistence and fan-out -------------------------------------------------------------------------

    def _persist(
        self,
        touched: dict[str, DeviceState],
        units: dict[str, UnitState],
        registrations: Any,
        now: float,
        report: IngestReport,
    ) -> set[str]:
        """Write dirty states, and watermark-only ones once per flush interval; return devices that lost a race."""
        failed: set[str] = set()
        for device, state in touched.items():
            due = now - self._persisted_at.get(device, 0.0) >= self._flush_s
            if not (state.dirty or due):
                continue
            try:
                self._states.save_device(state, last_seen=state.last_ts)
            except ConcurrentUpdateError:
                failed.add(device)
                continue
            state.dirty = False
            self._persisted_at[device] = now
            report.states_written += 1
        for unit in units.values():
            if unit.dirty:
                try:
                    self._states.save_unit(unit)
                    unit.dirty = False
                except ConcurrentUpdateError:
                    # another shard's devices share the unit; their alarms are noted again on their next
                    # readings (a note refreshes every minute), so losing this merge only delays a combination
                    report.unit_conflicts += 1
        return failed

    def _record_changes(self, report: IngestReport) -> None:
        if not report.changes:
            return
        people = self._registry.people()
        for change in report.changes:
            if change.kind is ChangeKind.RAISE:
                record = WarningRecord.raised(change)
                self._warnings.create(record)
                if self._workflow is not None:
                    self._workflow.track(record)
            else:
                self._warnings.apply_change(change)
            if not self._warnings.append_engine_event(change) and self._warnings.was_notified(change):
                continue  # a redelivery: people were already told
            enterprise = self._registry.enterprise(change.enterprise_id)
            self._notifier.publish(notification_for(self._policy, change, enterprise, people))
            self._warnings.mark_notified(change)
            report.notified += 1
