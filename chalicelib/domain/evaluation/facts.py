"""The plain facts the indicators read (DOMAIN.md §6), extracted from stored records by pure functions, so that the
formulas never depend on storage: `WarningFacts` from a `WarningRecord` (plus, optionally, its level changes from
the warning's event log), and `DeviceDay`, one device's online ledger for one local day.

Stages and their due times. Each stage of a warning (签收, 核实反馈, 消警, and the duty centre's 确认消警) is
*settled* once: on time when it is done by the due time in force (done exactly at the due time is on time), or
missed when that due time passes first. The due time in force is the one armed at the raise or at the latest level
change (due.py): a level change re-arms it. A stage missed under one level and done in time after a re-arm is still
missed (the workflow escalated it). Closing a warning (any route, e.g. the duty centre marking a false alarm) ends
every stage still open.

The record stores only the due times of its current arming (`details["due"]`). Stages done before that arming are
read from the level changes (`LevelChange`, the warning's `level_up`/`level_down` events) when the caller passes
them; without them, the record's escalation entries (`details["escalations"]`, written when a stage was missed)
tell whether such a stage was missed, and its due time stays unknown (`due_at` None).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.due import DueTimes, Stage, escalations, stored
from chalicelib.domain.levels import LEVEL_BY_CODE, Level
from chalicelib.domain.lifecycle import ClearReason, LifecycleEvent, VerificationOutcome
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.sectors import Sector
from chalicelib.domain.warnings import WarningRecord

_FACTS = ConfigDict(extra="forbid", frozen=True)
ENTERPRISE_STAGES = (Stage.ACKNOWLEDGE, Stage.VERIFY, Stage.CLEAR)
"""The enterprise's own stages: its 及时率 and its missed deadlines. 确认消警 is the duty centre's."""


class LevelChange(BaseModel):
    model_config = _FACTS
    at: float
    from_level: int
    to_level: int


class StageFact(BaseModel):
    model_config = _FACTS
    stage: Stage
    due_at: float | None  # the due time that settled it (None: unknown, see the module docstring)
    done_at: float | None
    settled_at: float | None  # done_at when on time, the due time when missed; None while pending
    on_time: bool | None  # None while pending


class WarningFacts(BaseModel):
    """One warning as the evaluation sees it. `peak_level` is the level the warning is counted at."""

    model_config = _FACTS
    warning_id: str
    device_id: str
    enterprise_id: str
    sector: Sector
    area_codes: tuple[str, ...] = ()
    risk_type: str
    level: int
    peak_level: int
    raised_at: float
    acknowledged_at: float | None = None
    verified_at: float | None = None
    verification: VerificationOutcome | None = None
    closed_at: float | None = None
    clear_reason: ClearReason | None = None
    escalated_at: float | None = None  # the first escalation, by the workflow or by hand
    escalation_tier: int = 0
    stages: tuple[StageFact, ...] = ()
    flags: tuple[str, ...] = ()

    def stage(self, stage: Stage) -> StageFact | None:
        return next((fact for fact in self.stages if fact.stage is stage), None)


class DeviceDay(BaseModel):
    """One device's online ledger for one local day (the offline watch writes it; until then the services may
    fill it from presence data). Seconds are within the day's expected time: `online_s` counts only time outside
    declared windows, so online + declared + undeclared outage ≤ expected.

    The road-transport fields are None where the data does not exist yet (docs/evaluation.md).

    `days` > 1: a run of that many consecutive local days from `day` with the same device, summed (a ledger
    derived from presence writes a device's unremarkable days as one row: 250,000 devices × 31 days would be
    7.75 M rows); every seconds field is then within `days` × 86400. A run never crosses a period's end."""

    model_config = _FACTS
    device_id: str
    enterprise_id: str
    sector: Sector
    area_codes: tuple[str, ...] = ()
    day: date
    days: int = Field(default=1, ge=1, le=366)
    expected_s: float = Field(ge=0)
    online_s: float = Field(ge=0)
    declared_outage_s: float = Field(default=0.0, ge=0)
    undeclared_outage_s: float = Field(default=0.0, ge=0)
    records_total: int | None = Field(default=None, ge=0)  # road transport: positions received
    records_qualified: int | None = Field(default=None, ge=0)  # of which well-formed and plausible
    track_km: float | None = Field(default=None, ge=0)  # mileage driven
    track_complete_km: float | None = Field(default=None, ge=0)  # of which covered by a continuous track
    drifted: bool | None = None  # a satellite-position drift was detected this day

    @model_validator(mode="after")
    def _within_expected(self) -> DeviceDay:
        if self.expected_s > 86400 * self.days:
            raise ValueError("more expected time than the days hold")
        if self.online_s + self.declared_outage_s + self.undeclared_outage_s > self.expected_s + 1e-6:
            raise ValueError("online + declared + undeclared outage exceed the expected time")
        if (self.records_qualified or 0) > (self.records_total or 0) and self.records_qualified is not None:
            raise ValueError("more qualified records than records")
        if self.track_complete_km is not None and self.track_complete_km > (self.track_km or 0.0) + 1e-6:
            raise ValueError("more complete mileage than mileage")
        return self


class FleetFacts(BaseModel):
    """A road-transport enterprise's vehicles: registered terminals (入网), and the vehicles it should have on the
    platform (应入网, from the transport bureau's roster — not available yet: None)."""

    model_config = _FACTS
    enterprise_id: str
    vehicles_networked: int = Field(ge=0)
    vehicles_required: int | None = Field(default=None, ge=0)


# --- extraction from a record --------------------------------------------------------------------------------


def level_changes(events: Iterable[LifecycleEvent]) -> tuple[LevelChange, ...]:
    """The level changes in a warning's event log (the engine's level_up / level_down), in time order."""
    kinds = {ChangeKind.LEVEL_UP.value, ChangeKind.LEVEL_DOWN.value}
    found = [
        LevelChange(at=event.at, from_level=event.before_level, to_level=event.after_level)
        for event in events
        if event.type in kinds and event.before_level != event.after_level
    ]
    return tuple(sorted(found, key=lambda change: change.at))


def _at(details: Mapping[str, Any], key: str) -> float | None:
    entry = details.get(key)
    if isinstance(entry, Mapping) and entry.get("at") is not None:
        return float(entry["at"])
    return None


def _earliest(*times: float | None) -> float | None:
    present = [time for time in times if time is not None]
    return min(present) if present else None


class _Arms:
    """The armings of a warning's deadlines, [(armed_at, level)], known from `known_from` on."""

    def __init__(self, record: WarningRecord, changes: Sequence[LevelChange] | None) -> None:
        self.stored: DueTimes | None = stored(record)
        if changes is not None:
            first = changes[0].from_level if changes else record.level
            self.arms = [(record.raised_at, first), *((c.at, c.to_level) for c in changes)]
        elif self.stored is not None:
            self.arms = [(self.stored.armed_at, LEVEL_BY_CODE.get(self.stored.level, record.level))]
        else:
            self.arms = [(record.raised_at, record.level)]  # as due.of: a record written before due times
        self.known_from = self.arms[0][0]

    def level_at(self, at: float) -> int:
        level = self.arms[0][1]
        for armed_at, arm_level in self.arms:
            if armed_at <= at:
                level = arm_level
        return level

    def armed_at(self, at: float) -> float:
        return max((armed for armed, _ in self.arms if armed <= at), default=self.arms[0][0])

    def due(self, stage: Stage, armed_at: float, level: int, deadlines: DeadlinePolicy) -> float:
        times = self.stored
        if times is not None and times.armed_at == armed_at and LEVEL_BY_CODE.get(times.level) == level:
            by = {Stage.ACKNOWLEDGE: times.acknowledge_by, Stage.VERIFY: times.verify_by}
            return by.get(stage, times.clear_by)
        limits = deadlines.for_level(level)
        seconds = {Stage.ACKNOWLEDGE: limits.acknowledge_s, Stage.VERIFY: limits.verify_s}
        return armed_at + seconds.get(stage, limits.clear_s)


def _settled(stage: Stage, due_at: float | None, done_at: float | None, missed: bool) -> StageFact:
    if missed:
        return StageFact(stage=stage, due_at=due_at, done_at=done_at, settled_at=due_at, on_time=False)
    return StageFact(stage=stage, due_at=due_at, done_at=done_at, settled_at=done_at, on_time=True)


def _pending(stage: Stage, done_at: float | None) -> StageFact:
    return StageFact(stage=stage, due_at=None, done_at=done_at, settled_at=None, on_time=None)


def _stage_fact(
    stage: Stage,
    done_at: float | None,
    record: WarningRecord,
    arms: _Arms,
    missed_at: float | None,
    deadlines: DeadlinePolicy,
    as_of: float,
) -> StageFact:
    if arms.known_from > record.raised_at:  # the first armings are not on the record: its escalations tell
        if missed_at is not None and missed_at < arms.known_from and (done_at is None or missed_at < done_at):
            return _settled(stage, missed_at, done_at, missed=True)
        if done_at is not None and done_at < arms.known_from:
            return _settled(stage, None, done_at, missed=False)
    for index, (armed_at, level) in enumerate(arms.arms):
        following = arms.arms[index + 1][0] if index + 1 < len(arms.arms) else math.inf
        if done_at is not None and done_at < armed_at:
            continue
        due_at = arms.due(stage, armed_at, level, deadlines)
        if done_at is not None and done_at < following:
            return _settled(stage, due_at, done_at, missed=done_at > due_at)
        if due_at < following:
            return _settled(stage, due_at, done_at, missed=True) if due_at < as_of else _pending(stage, done_at)
    return _pending(stage, done_at)


def _confirm_fact(
    record: WarningRecord, arms: _Arms, closed_at: float | None, missed_at: float | None, deadlines: DeadlinePolicy
) -> StageFact | None:
    """确认消警: only when a clear request waits for the duty centre on a clock (orange/red)."""
    requested_at = _at(record.details, "clear_request")
    if requested_at is None:
        return None
    confirm_s = deadlines.for_level(arms.level_at(requested_at)).confirm_s
    confirm_s = confirm_s or deadlines.for_level(record.peak_level).confirm_s
    if confirm_s is None:
        return None
    times = arms.stored
    due_at = times.confirm_by if times is not None and times.confirm_by is not None else None
    if due_at is None:
        due_at = max(requested_at, arms.armed_at(requested_at)) + confirm_s
    if missed_at is not None and (closed_at is None or missed_at < closed_at):
        return _settled(Stage.CONFIRM, min(due_at, missed_at), closed_at, missed=True)
    if closed_at is None:
        return _pending(Stage.CONFIRM, None)
    return _settled(Stage.CONFIRM, due_at, closed_at, missed=closed_at > due_at)


def _missed(record: WarningRecord) -> dict[Stage, float]:
    """The first time the workflow escalated each stage (retells are not misses)."""
    first: dict[Stage, float] = {}
    for entry in escalations(record):
        try:
            stage, at = Stage(entry["stage"]), float(entry["at"])
        except (KeyError, TypeError, ValueError):
            continue
        if not entry.get("retell"):
            first[stage] = min(at, first.get(stage, at))
    return first


def facts_of(
    record: WarningRecord,
    deadlines: DeadlinePolicy,
    as_of: float,
    changes: Sequence[LevelChange] | None = None,
) -> WarningFacts:
    """The facts of `record` as read at `as_of` (a stage whose due time is after `as_of` and not done is pending).

    `changes`: the warning's level changes (`level_changes(events)`); None when the event log was not read."""
    details = record.details
    closure = details.get("closure") if isinstance(details.get("closure"), Mapping) else None
    closed_at = _at(details, "closure")
    verification = details.get("verification") if isinstance(details.get("verification"), Mapping) else None
    arms = _Arms(record, changes)
    missed = _missed(record)
    done = {
        Stage.ACKNOWLEDGE: _earliest(_at(details, "acknowledged"), closed_at),
        Stage.VERIFY: _earliest(_at(details, "verification"), closed_at),
        Stage.CLEAR: closed_at,
    }
    stages = [
        _stage_fact(stage, done[stage], record, arms, missed.get(stage), deadlines, as_of)
        for stage in ENTERPRISE_STAGES
    ]
    confirm = _confirm_fact(record, arms, closed_at, missed.get(Stage.CONFIRM), deadlines)
    if confirm is not None:
        stages.append(confirm)
    escalated_at = _earliest(min(missed.values(), default=None), _at(details, "escalation"))
    return WarningFacts(
        warning_id=record.warning_id,
        device_id=record.device_id,
        enterprise_id=record.enterprise_id,
        sector=record.sector,
        area_codes=record.area_codes,
        risk_type=record.risk_type,
        level=record.level,
        peak_level=max(record.peak_level, Level.BLUE),
        raised_at=record.raised_at,
        acknowledged_at=_at(details, "acknowledged"),
        verified_at=_at(details, "verification"),
        verification=VerificationOutcome(verification["outcome"]) if verification else None,
        closed_at=closed_at,
        clear_reason=ClearReason(closure["reason"]) if closure and closure.get("reason") else None,
        escalated_at=escalated_at,
        escalation_tier=int(details.get("escalation_tier", 0)),
        stages=tuple(stages),
        flags=record.flags,
    )
