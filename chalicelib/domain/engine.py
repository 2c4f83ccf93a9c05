"""The grading engine (DOMAIN.md §3): one pure function of (registration, state, message) for every sector.

parse() turns raw bytes into a validated message or a typed rejection; grade() runs the sector's risk model and
applies the platform's rules the same way for every sector: dedup per (device, risk type), duration before raising,
hysteresis before lowering, unit combination, frequent alarms, context and static +1, never above red, and sensor
faults as data-quality findings. Neither ever raises on any input.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from pydantic import ValidationError

from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange, warning_id_for
from chalicelib.domain.findings import Finding, SectorModel, UnitAlarm
from chalicelib.domain.levels import Level
from chalicelib.domain.policy import GradingPolicy
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.rejections import Rejection, RejectReason, rejection_from_validation
from chalicelib.domain.sectors import FAST_DECODE, MESSAGE_ADAPTER, Sector
from chalicelib.domain.state import (
    FLAG_COMBINED,
    FLAG_CONTEXT,
    FLAG_FREQUENT,
    FLAG_STATIC,
    DeviceState,
    RiskState,
    UnitState,
    flag_names,
)
from chalicelib.domain.tampering import (
    CONFIG_MISMATCH,
    CONFIG_MISMATCH_TITLE,
    CONFIG_MODE,
    TOLD_MODE,
    config_mismatches,
    long_period,
    track_modes,
)
from chalicelib.domain.telemetry import AnyMessage

NO_CHANGES: tuple[WarningChange, ...] = ()
GradeResult = Sequence[WarningChange] | Rejection
# the device's unit, or how to fetch it: the ingest reads a unit only when a reading touches a unit rule
UnitSource = UnitState | Callable[[], UnitState] | None

_STUCK_TITLE = "数值长时间不变"
_NONE = int(Level.NONE)  # a plain int on the hot path: reading an enum member off its class costs a lookup


class RiskEngine:
    def __init__(self, models: Mapping[Sector, SectorModel], grading: GradingPolicy | None = None) -> None:
        self._models = dict(models)
        self._policy = grading or GradingPolicy()
        self._fast = FAST_DECODE
        self._interlock_sectors = frozenset(
            sector for sector in self._models if "interlock_ok" in sector.spec.metric_names
        )
        self._durable = {sector: frozenset(model.durable_memory) for sector, model in self._models.items()}
        self._validate = MESSAGE_ADAPTER.validate_json

    @property
    def policy(self) -> GradingPolicy:
        return self._policy

    def model(self, sector: Sector) -> SectorModel:
        return self._models[sector]

    # --- parsing -------------------------------------------------------------------------------------------

    def parse(self, raw: bytes, now_s: float) -> AnyMessage | Rejection:
        """Validate raw bytes against the envelope and the claimed sector's payload, and check the device's clock
        against `now_s`: the record's arrival in the stream, so that a batch held in retries is judged as when
        it arrived, not as when it is processed. The fast path (fast_messages.py) decodes a valid message;
        pydantic judges what it refuses, and names the reason."""
        msg = self._fast(raw)
        if msg is None:
            try:
                msg = self._validate(raw)
                msg.epoch  # noqa: B018 - computed once, here
            except ValidationError as exc:
                return rejection_from_validation(exc, raw)
            except Exception as exc:  # the engine never raises on input
                return Rejection(RejectReason.SCHEMA, f"unparseable: {type(exc).__name__}", raw)
        skew = msg.epoch - now_s
        if skew > self._policy.max_future_skew_s:
            return Rejection(RejectReason.TIMESTAMP_FUTURE, f"ts {skew:.0f}s ahead", raw, msg.device_id, now_s)
        if -skew > self._policy.max_past_age_s:
            return Rejection(RejectReason.TIMESTAMP_PAST, f"ts {-skew:.0f}s old", raw, msg.device_id, now_s)
        return msg

    # --- grading -------------------------------------------------------------------------------------------

    def grade(
        self,
        reg: DeviceRegistration,
        state: DeviceState,
        unit: UnitSource,
        msg: AnyMessage,
        raw: bytes = b"",
    ) -> GradeResult:
        """Grade one validated message of a registered device; mutates `state` and `unit` in place. A callable
        `unit` is called only when the reading touches a unit rule: a finding at or above blue (combination), an
        alarm to note, or a risk standing or pending that may have a note to update or remove."""
        if msg.enterprise_id != reg.enterprise_id or msg.sector != reg.sector:
            # the topic (which the payload matched) claims an identity the registry does not give this device
            return Rejection(
                RejectReason.SPOOFED,
                f"registered {reg.enterprise_id}/{reg.sector}, message {msg.enterprise_id}/{msg.sector}",
                raw,
                msg.device_id,
            )
        ts = msg.epoch
        seq = msg.seq
        if ts <= state.last_ts:
            replayed = (
                seq is None or seq <= state.last_seq
                if ts == state.last_ts
                else (seq is not None and seq <= state.last_seq)
            )
            if replayed:
                return Rejection(RejectReason.REPLAYED, f"seq {seq} ts {ts:.3f} already seen", raw, msg.device_id)
            if ts < state.last_ts:
                return Rejection(
                    RejectReason.OUT_OF_ORDER, f"ts {ts:.3f} older than {state.last_ts:.3f}", raw, msg.device_id
                )
        state.last_ts = ts
        if seq is not None:
            state.last_seq = seq

        model = self._models[reg.sector]
        scratch = state.scratch
        durable = self._durable[reg.sector]
        watch = bool(durable) and not state.dirty  # a state already to be written needs no snapshot
        before = _memory(scratch, durable) if watch else None
        try:
            findings = model.evaluate(reg, msg, scratch, ts)
        except Exception as exc:  # a model bug must not crash a batch
            detail = f"model error: {type(exc).__name__}: {exc}"[:300]
            return Rejection(RejectReason.MODEL_ERROR, detail, raw, msg.device_id)
        if watch and before != _memory(scratch, durable):
            state.dirty = True  # memory a restart must not lose (an alarm standing, an event's time)

        changes: list[WarningChange] | None = None
        risks = state.risks
        unit_of: Callable[[], UnitState | None] | None = None
        for finding in findings:
            entry = risks.get(finding.risk_type)
            if entry is None:
                if finding.level == _NONE:
                    continue
                entry = risks[finding.risk_type] = RiskState()
            if unit_of is None:
                unit_of = _resolver(unit)
            standing = entry.level > _NONE or entry.pending_count > 0  # only then can the unit hold its note
            change = self._grade_finding(reg, state, unit_of, msg, model, finding, entry, ts)
            if unit is not None and (standing or self._alarming(finding)):
                self._note_unit_alarm(unit_of(), reg.device_id, finding, ts)
            if change is not None:
                if changes is None:
                    changes = []
                changes.append(change)

        # data quality: a message without stuck-value metrics, settings or modes, while no data-quality warning
        # stands, can neither raise nor recover one
        if (
            model.stuck_metrics
            or state.modes
            or msg.config is not None
            or msg.context is not None
            or DATA_QUALITY in risks
            or (reg.sector in self._interlock_sectors and msg.metrics.interlock_ok is False)
        ):
            quality = self._check_quality(reg, state, model, msg, ts)
            if quality is not None:
                if changes is None:
                    changes = []
                changes.append(quality)
        return changes if changes is not None else NO_CHANGES

    def reject(
        self, reg: DeviceRegistration | None, state: DeviceState | None, rejection: Rejection, now_s: float
    ) -> Sequence[WarningChange]:
        """A sensor fault from a registered device becomes a data-quality finding (blue, to the enterprise), at the
        message's own time when it could be read, else at `now_s` (the record's arrival): never the processing
        clock, so a retried batch raises the same finding."""
        if reg is None or state is None or not rejection.reason.is_sensor_fault:
            return NO_CHANGES
        if rejection.at is not None:
            now_s = rejection.at
        state.quality_fault_at = max(state.quality_fault_at, now_s)
        state.dirty = True
        finding = Finding(
            DATA_QUALITY,
            Level.BLUE,
            reason=rejection.reason.value,
            title=f"数据异常:{rejection.reason.zh}"[:16],
            immediate=True,
            params={"detail": rejection.detail[:80]},
        )
        change = self._raise_quality(reg, state, finding, now_s)
        return (change,) if change is not None else NO_CHANGES

    # --- the rules -----------------------------------------------------------------------------------------

    def _grade_finding(
        self,
        reg: DeviceRegistration,
        state: DeviceState,
        unit: Callable[[], UnitState | None],
        msg: AnyMessage,
        model: SectorModel,
        finding: Finding,
        entry: RiskState,
        ts: float,
    ) -> WarningChange | None:
        reading = finding.level
        if entry.level > _NONE:
            active_base = entry.base
            # hysteresis: a lower reading only lowers the level once it clears the band
            base = reading if reading >= active_base else max(reading, min(active_base, finding.effective_hold))
            if base == _NONE:
                return self._recover(reg, state, finding, entry, ts)
            frequent = entry.flags & FLAG_FREQUENT
            level, flags = self._modified_level(reg, unit, msg, model, finding, base, frequent, ts)
            if level == entry.level:
                if base != active_base or flags != entry.flags:
                    entry.base, entry.flags = base, flags
                    state.dirty = True
                return None
            previous = entry.level
            entry.base, entry.level, entry.flags, entry.last_change = base, level, flags, ts
            state.dirty = True
            kind = ChangeKind.LEVEL_UP if level > previous else ChangeKind.LEVEL_DOWN
            return self._change(kind, reg, finding, entry, previous, ts)

        if reading == _NONE:
            if entry.pending_count:
                entry.pending_level = entry.pending_count = 0
                entry.pending_since = 0.0
                state.dirty = True
            if not entry.raises:
                del state.risks[finding.risk_type]
            return None

        if not finding.immediate:
            if entry.pending_count == 0:
                entry.pending_since = ts
            entry.pending_count += 1
            entry.pending_level = reading
            state.dirty = True
            duration = self._policy.duration(finding.risk_type)
            lasted = duration.seconds > 0 and ts - entry.pending_since >= duration.seconds
            if entry.pending_count < duration.count and not lasted:
                return None
        return self._raise(reg, state, unit, msg, model, finding, entry, reading, ts)

    def _raise(
        self,
        reg: DeviceRegistration,
        state: DeviceState,
        unit: Callable[[], UnitState | None],
        msg: AnyMessage,
        model: SectorModel,
        finding: Finding,
        entry: RiskState,
        base: int,
        ts: float,
    ) -> WarningChange:
        horizon = ts - self._policy.frequent_window_s
        raises = [at for at in entry.raises if at > horizon]
        frequent = FLAG_FREQUENT if len(raises) + 1 >= self._policy.frequent_count else 0
        raises.append(ts)
        entry.raises = raises[-self._policy.frequent_count :]
        level, flags = self._modified_level(reg, unit, msg, model, finding, base, frequent, ts)
        entry.base, entry.level, entry.flags = base, level, flags
        entry.since = entry.last_change = ts
        entry.warning_id = warning_id_for(reg.device_id, finding.risk_type, ts)
        entry.pending_level = entry.pending_count = 0
        entry.pending_since = 0.0
        state.dirty = True
        return self._change(ChangeKind.RAISE, reg, finding, entry, Level.NONE, ts)

    def _recover(
        self, reg: DeviceRegistration, state: DeviceState, finding: Finding, entry: RiskState, ts: float
    ) -> WarningChange:
        previous = entry.level
        change = self._change(ChangeKind.RECOVER, reg, finding, entry, previous, ts, level=Level.NONE)
        entry.base = entry.level = entry.flags = 0
        entry.warning_id = ""
        entry.last_change = ts
        state.dirty = True
        return change

    def _modified_level(
        self,
        reg: DeviceRegistration,
        unit: Callable[[], UnitState | None],
        msg: AnyMessage,
        model: SectorModel,
        finding: Finding,
        base: int,
        flags: int,
        ts: float,
    ) -> tuple[int, int]:
        """Apply the unit combination, static, context and frequency rules to a raw level (never above red)."""
        level = base
        policy = self._policy
        fetched = unit() if base >= Level.BLUE else None
        if fetched is not None:
            others = self._unit_alarms(fetched, reg.device_id, finding.risk_type, ts)
            if others:
                graded = finding if finding.level == base else replace(finding, level=base)
                combination = model.combine(graded, others)
                if combination is not None and combination.level > level:
                    level = min(Level.RED, combination.level)
                    flags |= FLAG_COMBINED
                if base >= policy.combination_min_level:
                    families = {finding.family or finding.risk_type}
                    families.update(
                        other.family or other.risk_type
                        for other in others
                        if other.level >= policy.combination_min_level
                    )
                    if len(families) >= 3:
                        level = Level.RED
                        flags |= FLAG_COMBINED
                    elif len(families) == 2:
                        level += 1
                        flags |= FLAG_COMBINED
        static = reg.static
        if (static.major_hazard_grade in policy.static_bump_major_hazard_grades) or (
            static.hca_class in policy.static_bump_hca_classes
        ):
            level += 1
            flags |= FLAG_STATIC
        context = msg.context
        if (
            context is not None
            and base >= policy.context_min_level
            and (context.related_offline or context.isolated or context.manual_mode)
        ):
            level += 1
            flags |= FLAG_CONTEXT
        if flags & FLAG_FREQUENT:
            level += 1
        return min(level, Level.RED), flags

    def _unit_alarms(self, unit: UnitState, device_id: str, risk_type: str, ts: float) -> list[UnitAlarm]:
        horizon = ts - self._policy.combination_window_s
        own_key = f"{device_id}|{risk_type}"
        others: list[UnitAlarm] = []
        stale: list[str] = []
        for key, (family, tag, level, at) in unit.alarms.items():
            if at < horizon:
                stale.append(key)
            elif key != own_key:
                other_device, _, other_risk = key.partition("|")
                others.append(UnitAlarm(other_device, other_risk, family, tag, int(level), float(at)))
        for key in stale:
            del unit.alarms[key]
            unit.dirty = True
        return others

    def _alarming(self, finding: Finding) -> bool:
        return finding.level >= self._policy.combination_min_level or bool(finding.tag and finding.level)

    def _note_unit_alarm(self, unit: UnitState | None, device_id: str, finding: Finding, ts: float) -> None:
        if unit is None:
            return
        alarming = self._alarming(finding)
        key = f"{device_id}|{finding.risk_type}"
        current = unit.alarms.get(key)
        if not alarming:
            if current is not None:
                del unit.alarms[key]
                unit.dirty = True
            return
        if current is None or current[2] != finding.level or current[1] != finding.tag or ts - current[3] > 60:
            unit.alarms[key] = [finding.family or finding.risk_type, finding.tag, finding.level, ts]
            unit.dirty = True

    # --- data quality --------------------------------------------------------------------------------------

    def _check_quality(
        self, reg: DeviceRegistration, state: DeviceState, model: SectorModel, msg: AnyMessage, ts: float
    ) -> WarningChange | None:
        modes = state.modes
        # the usual message reports no mode (no context, no interlock bypass) while none stands: nothing to track
        reports_mode = msg.context is not None or (
            reg.sector in self._interlock_sectors and msg.metrics.interlock_ok is False
        )
        if (modes or reports_mode) and track_modes(modes, msg, ts):
            state.dirty = True  # a period's start is memory a restart must not lose
        stuck = self._stuck_metric(state, model, msg) if model.stuck_metrics else None
        finding: Finding | None = None
        if stuck is not None:
            finding = Finding(
                DATA_QUALITY,
                Level.BLUE,
                reason="stuck_value",
                title=_STUCK_TITLE,
                immediate=True,
                params={"metric": stuck, "repeats": self._policy.stuck_count},
            )
        elif msg.config is not None or state.modes:
            finding = self._tampering(reg, state, msg, ts)
            if finding is not None and not self._tampering_due(state, ts):
                finding = None
        if finding is not None:
            state.quality_fault_at = ts
            return self._raise_quality(reg, state, finding, ts)
        entry = state.risks.get(DATA_QUALITY)
        if entry is not None and entry.active and ts - state.quality_fault_at >= self._policy.quality_hold_s:
            change = self._recover(reg, state, Finding(DATA_QUALITY, Level.NONE), entry, ts)
            state.quality_fault_at = 0.0
            return change
        return None

    def _tampering(
        self, reg: DeviceRegistration, state: DeviceState, msg: AnyMessage, ts: float
    ) -> Finding | None:
        """Reported settings that differ from the registration, or a manual / bypass period past its limit
        (tampering.py): a data-quality finding, standing while the cause does."""
        policy = self._policy.tampering
        modes = state.modes
        if msg.config is not None:
            mismatches = config_mismatches(reg, msg.config, policy)
            if mismatches:
                if CONFIG_MODE not in modes:
                    modes[CONFIG_MODE] = ts
                    state.dirty = True
                first = mismatches[0]
                return _config_finding(
                    {
                        "setting": first.setting,
                        "registered": first.registered,
                        "reported": first.reported,
                        "mismatches": len(mismatches),
                    }
                )
            if modes.pop(CONFIG_MODE, None) is not None:
                state.dirty = True
        elif CONFIG_MODE in modes:
            # devices report their configuration now and then: the mismatch stands until a report matches
            return _config_finding({"since": modes[CONFIG_MODE]})
        period = long_period(state.modes, ts, policy) if state.modes else None
        if period is None:
            if modes.pop(TOLD_MODE, None) is not None:
                state.dirty = True  # nothing stands any more
            return None
        return Finding(
            DATA_QUALITY,
            Level.BLUE,
            reason=period.reason,
            title=period.title,
            immediate=True,
            params={
                "mode": period.mode,
                "since": period.since,
                "lasted_s": period.lasted_s,
                "limit_s": period.limit_s,
            },
        )

    def _tampering_due(self, state: DeviceState, ts: float) -> bool:
        """A standing condition is found with every message; while no data-quality warning stands for it, it is
        raised at most once per `recheck_s`: one a declaration suppressed (the ingest records it and forgets the
        warning) is recorded again that often, not with every message, and raised within that time once nothing
        excuses it."""
        entry = state.risks.get(DATA_QUALITY)
        if entry is not None and entry.active:
            return True
        told = state.modes.get(TOLD_MODE)
        if told is not None and ts - told < self._policy.tampering.recheck_s:
            return False
        state.modes[TOLD_MODE] = ts
        state.dirty = True
        return True

    def _stuck_metric(self, state: DeviceState, model: SectorModel, msg: AnyMessage) -> str | None:
        metrics = msg.metrics
        repeats = state.repeats
        limit = self._policy.stuck_count
        stuck: str | None = None
        for metric in model.stuck_metrics:
            value = getattr(metrics, metric, None)
            if value is None:
                continue
            seen = repeats.get(metric)
            if seen is not None and seen[0] == value:
                seen[1] += 1
                if seen[1] == limit:
                    stuck = metric
            else:
                repeats[metric] = [value, 1]
        return stuck

    def _raise_quality(
        self, reg: DeviceRegistration, state: DeviceState, finding: Finding, ts: float
    ) -> WarningChange | None:
        entry = state.risks.get(DATA_QUALITY)
        if entry is None:
            entry = state.risks[DATA_QUALITY] = RiskState()
        if entry.active:
            return None
        entry.base = entry.level = Level.BLUE
        entry.flags = 0
        entry.since = entry.last_change = ts
        entry.warning_id = warning_id_for(reg.device_id, DATA_QUALITY, ts)
        entry.raises = [*entry.raises[-2:], ts]
        state.dirty = True
        return self._change(ChangeKind.RAISE, reg, finding, entry, Level.NONE, ts)

    # --- output --------------------------------------------------------------------------------------------

    @staticmethod
    def _change(
        kind: ChangeKind,
        reg: DeviceRegistration,
        finding: Finding,
        entry: RiskState,
        previous: int,
        ts: float,
        level: int | None = None,
    ) -> WarningChange:
        return WarningChange(
            kind=kind,
            warning_id=entry.warning_id,
            device_id=reg.device_id,
            enterprise_id=reg.enterprise_id,
            enterprise_name=reg.enterprise_name,
            sector=reg.sector,
            unit_id=reg.unit_id,
            unit_name=reg.unit_name,
            point_name=reg.display_name,
            area_codes=reg.area_codes,
            risk_type=finding.risk_type,
            level=entry.level if level is None else level,
            previous_level=previous,
            base_level=entry.base if level is None else Level.NONE,
            reason=finding.reason,
            title=finding.title,
            value=finding.value,
            unit=finding.unit,
            at=ts,
            raised_at=entry.since,
            flags=flag_names(entry.flags),
            params=finding.params,
        )


def _config_finding(params: Mapping[str, object]) -> Finding:
    return Finding(
        DATA_QUALITY,
        Level.BLUE,
        reason=CONFIG_MISMATCH,
        title=CONFIG_MISMATCH_TITLE,
        immediate=True,
        params=params,
    )


_PLAIN = frozenset({bool, int, float, str, type(None)})


def _memory(scratch: Mapping[str, object], keys: frozenset[str]) -> dict[str, object] | None:
    """A comparable snapshot of the durable part of a sector model's memory (None when it holds none of it):
    plain values as they are, containers as their repr (models mutate them in place)."""
    if scratch.keys().isdisjoint(keys):
        return None
    present = scratch.keys() & keys
    snapshot = {key: scratch[key] for key in present}
    if _PLAIN.issuperset(map(type, snapshot.values())):
        return snapshot
    return {key: repr(value) for key, value in snapshot.items()}


def _resolver(unit: UnitSource) -> Callable[[], UnitState | None]:
    """The unit on first use, then the same object."""
    if unit is None or isinstance(unit, UnitState):
        return lambda: unit
    fetched: list[UnitState] = []

    def resolve() -> UnitState:
        if not fetched:
            fetched.append(unit())
        return fetched[0]

    return resolve
