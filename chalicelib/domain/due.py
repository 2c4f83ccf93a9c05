"""Due times (DOMAIN.md §4) as data: absolute epoch seconds computed from the warning and the policy, stored on the
warning (`details["due"]`) whenever it changes, and read by everything that needs a clock — the API's overdue flags
and countdowns, the wall, the disposal timer (docs/disposal-workflow.md) and the sweeper. Nothing counts waited
seconds.

- The clock of the current level is *armed* at the raise and re-armed at every level change (`armed_at`): a
  level-up shortens what is left, a level-down lengthens it. Acknowledge, verify and clear run from `armed_at`.
- The duty centre's confirmation of an orange/red clear request (`confirm_s`, red 30 min, orange 1 h) runs from the
  request (or from a later re-arm). A clear request does not stop the clear deadline.
- Reminders repeat every `reminder_s` from `armed_at` while nobody has acknowledged.
- A missed stage escalates once per warning, stage and level (`details["escalations"]`): acknowledge → tier 1,
  verify → tier 2, clear → tier 3 on red (tier 2 below red), confirmation → tier 3 (the emergency bureau).
- After a level-up, a stage already escalated at a lower level is told to the new level's wider audience at once
  (`retell`), once per stage and level.
- A closed warning has one thing left to do: its archive, due at the closure.

`restamp` returns the record with its due times recomputed; `version` goes up only when they changed, and names the
timer that sleeps until `next_due` (`{warning_id}-{version}`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

from chalicelib.domain.levels import LEVEL_BY_CODE, Level
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.warnings import WarningRecord, WarningStatus

DUE_KEY = "due"
ESCALATIONS_KEY = "escalations"
REMINDER_KEY = "reminder"


class Stage(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    VERIFY = "verify"
    CLEAR = "clear"
    CONFIRM = "confirm"

    @property
    def zh(self) -> str:
        return STAGE_ZH[self]


STAGE_ZH = {
    Stage.ACKNOWLEDGE: "签收",
    Stage.VERIFY: "核实反馈",
    Stage.CLEAR: "消警",
    Stage.CONFIRM: "确认消警",
}


class DueKind(StrEnum):
    ESCALATE = "escalate"  # a stage's deadline passed
    RETELL = "retell"  # a level-up: tell the new level's wider audience of a stage escalated before
    REMIND = "remind"  # not acknowledged yet
    ARCHIVE = "archive"  # closed


def stage_tier(stage: Stage, level: int) -> int:
    """The escalation tier a missed stage reaches (DOMAIN.md §4, 第十五条)."""
    if stage is Stage.ACKNOWLEDGE:
        return 1
    if stage is Stage.VERIFY:
        return 2
    if stage is Stage.CLEAR:
        return 3 if level >= Level.RED else 2
    return 3


@dataclass(frozen=True, slots=True)
class DueItem:
    kind: DueKind
    at: float
    stage: Stage | None = None
    tier: int = 0
    from_level: int = 0  # RETELL: the level at which the stage was escalated before


@dataclass(frozen=True, slots=True)
class DueTimes:
    """What is stored in `details["due"]` (all times epoch seconds)."""

    version: int
    level: str  # the level whose deadlines are armed
    armed_at: float
    acknowledge_by: float
    verify_by: float
    clear_by: float
    confirm_by: float | None
    next_reminder: float | None
    next_due: float | None
    next_kind: str | None  # a DueKind, or the stage that falls due next
    timer: str | None  # the execution sleeping until next_due

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DueTimes:
        return cls(
            version=int(data["version"]),
            level=str(data["level"]),
            armed_at=float(data["armed_at"]),
            acknowledge_by=float(data["acknowledge_by"]),
            verify_by=float(data["verify_by"]),
            clear_by=float(data["clear_by"]),
            confirm_by=_opt(data.get("confirm_by")),
            next_reminder=_opt(data.get("next_reminder")),
            next_due=_opt(data.get("next_due")),
            next_kind=data.get("next_kind"),
            timer=data.get("timer"),
        )

    def stage_due(self, stage: Stage) -> float | None:
        """The due time of `stage` in this arming (确认消警: only while a clear request waits)."""
        return {
            Stage.ACKNOWLEDGE: self.acknowledge_by,
            Stage.VERIFY: self.verify_by,
            Stage.CLEAR: self.clear_by,
            Stage.CONFIRM: self.confirm_by,
        }[stage]

    def schedule(self) -> tuple[Any, ...]:
        """Everything but the version and the timer: what decides whether a new timer is needed."""
        return (
            self.level,
            self.armed_at,
            self.acknowledge_by,
            self.verify_by,
            self.clear_by,
            self.confirm_by,
            self.next_reminder,
            self.next_due,
            self.next_kind,
        )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def stored(record: WarningRecord) -> DueTimes | None:
    data = record.details.get(DUE_KEY)
    if not isinstance(data, Mapping):
        return None
    try:
        return DueTimes.from_dict(data)
    except (KeyError, TypeError, ValueError):
        return None


def timer_name(warning_id: str, version: int) -> str:
    return f"{warning_id}-{version}"


def escalations(record: WarningRecord) -> list[Mapping[str, Any]]:
    found = record.details.get(ESCALATIONS_KEY) or []
    return [entry for entry in found if isinstance(entry, Mapping)]


def recorded_under(record: WarningRecord, due_version: int) -> list[DueItem]:
    """The escalations the workflow recorded while `due_version` was armed, as the due items they settled: what
    a redelivered due message of that version must make sure people were told of (the telling follows the
    recording, so a crash in between would otherwise leave it untold)."""
    items = []
    for entry in escalations(record):
        if entry.get("due_version") != due_version or "stage" not in entry:
            continue
        try:
            stage = Stage(entry["stage"])
            kind = DueKind.RETELL if entry.get("retell") else DueKind.ESCALATE
            from_level = LEVEL_BY_CODE[str(entry["from_level"])] if kind is DueKind.RETELL else 0
            items.append(DueItem(kind, float(entry["due_at"]), stage, int(entry["tier"]), from_level))
        except (KeyError, TypeError, ValueError):
            continue  # an entry written before due versions were recorded
    return items


def recorded_version(record: WarningRecord, item: DueItem) -> int | None:
    """The due version `item`'s escalation was recorded under (`recorded_under`'s key): stages missed together are
    recorded one after another, each under the version the one before left, and are told under those versions so
    that a redelivered message of any of them names the same delivery job."""
    for settled in reversed(escalations(record)):
        if (
            settled.get("stage") == (item.stage.value if item.stage else None)
            and settled.get("tier") == item.tier
            and bool(settled.get("retell")) == (item.kind is DueKind.RETELL)
            and isinstance(settled.get("due_version"), int)
        ):
            return int(settled["due_version"])
    return None


def escalated(record: WarningRecord, stage: Stage, level: int) -> bool:
    code = Level(level).code
    return any(entry.get("stage") == stage.value and entry.get("level") == code for entry in escalations(record))


def _armed_at(record: WarningRecord, previous: DueTimes | None) -> float:
    if previous is not None and previous.level == Level(record.level).code:
        return previous.armed_at
    return record.raised_at if previous is None else record.updated_at


def _confirm_s(record: WarningRecord, deadlines: DeadlinePolicy) -> float | None:
    return deadlines.for_level(record.level).confirm_s or deadlines.for_level(record.peak_level).confirm_s


def _confirm_by(record: WarningRecord, deadlines: DeadlinePolicy, armed_at: float) -> float | None:
    if record.status is not WarningStatus.CLEAR_REQUESTED:
        return None
    confirm_s = _confirm_s(record, deadlines)
    request = record.details.get("clear_request") or {}
    if confirm_s is None or "at" not in request:
        return None
    return max(float(request["at"]), armed_at) + confirm_s


def _next_reminder(record: WarningRecord, reminder_s: float, armed_at: float) -> float | None:
    """Every `reminder_s` from `armed_at` while not acknowledged: the slot after the last one sent since armed."""
    if record.status is not WarningStatus.RAISED or reminder_s <= 0:
        return None
    last = record.details.get(REMINDER_KEY) or {}
    slot = float(last.get("slot", 0.0)) if float(last.get("armed_at", -1.0)) == armed_at else armed_at
    return max(slot, armed_at) + reminder_s


def reminder_slot(armed_at: float, reminder_s: float, now: float) -> float:
    """The latest reminder slot at or before `now` (a late reminder does not send the missed ones one by one)."""
    if reminder_s <= 0 or now < armed_at + reminder_s:
        return armed_at + reminder_s
    return armed_at + reminder_s * math.floor((now - armed_at) / reminder_s)


def _closed_at(record: WarningRecord) -> float:
    closure = record.details.get("closure") or {}
    return float(closure.get("at", record.updated_at))


def compute(record: WarningRecord, deadlines: DeadlinePolicy, previous: DueTimes | None = None) -> DueTimes:
    """The due times of `record` (the version and timer are `previous`'s; `restamp` moves them on)."""
    limits = deadlines.for_level(record.level)
    armed_at = _armed_at(record, previous)
    times = DueTimes(
        version=previous.version if previous else 0,
        level=Level(record.level).code,
        armed_at=armed_at,
        acknowledge_by=armed_at + limits.acknowledge_s,
        verify_by=armed_at + limits.verify_s,
        clear_by=armed_at + limits.clear_s,
        confirm_by=_confirm_by(record, deadlines, armed_at),
        next_reminder=_next_reminder(record, limits.reminder_s, armed_at),
        next_due=None,
        next_kind=None,
        timer=previous.timer if previous else None,
    )
    items = pending(record, times)
    if not items:
        return times
    first = min(items, key=lambda item: item.at)
    kind = first.stage.value if first.kind is DueKind.ESCALATE and first.stage else first.kind.value
    return replace(times, next_due=first.at, next_kind=kind)


def pending(record: WarningRecord, times: DueTimes) -> list[DueItem]:
    """What is still to happen, each with its due time, at the record's current status and level."""
    if record.status is WarningStatus.ARCHIVED:
        return []
    if record.status is WarningStatus.CLOSED:
        return [DueItem(DueKind.ARCHIVE, _closed_at(record))]
    level = record.level
    items = _retells(record, times)
    retold = {item.stage for item in items}
    status = record.status
    stages: list[tuple[Stage, float | None]] = [(Stage.CLEAR, times.clear_by), (Stage.CONFIRM, times.confirm_by)]
    if status in (WarningStatus.RAISED, WarningStatus.ACKNOWLEDGED):
        stages.insert(0, (Stage.VERIFY, times.verify_by))
    if status is WarningStatus.RAISED:
        stages.insert(0, (Stage.ACKNOWLEDGE, times.acknowledge_by))
    for stage, at in stages:
        if at is not None and stage not in retold and not escalated(record, stage, level):
            items.append(DueItem(DueKind.ESCALATE, at, stage, stage_tier(stage, level)))
    if times.next_reminder is not None:
        items.append(DueItem(DueKind.REMIND, times.next_reminder))
    return items


def _retells(record: WarningRecord, times: DueTimes) -> list[DueItem]:
    """Stages escalated at a lower level and not yet at this one: told at the level change."""
    best: dict[Stage, tuple[int, int]] = {}
    for entry in escalations(record):
        try:
            stage, level = Stage(entry["stage"]), LEVEL_BY_CODE[str(entry["level"])]
        except (KeyError, ValueError):
            continue  # a manual escalation (no stage)
        if level < record.level and not escalated(record, stage, record.level):
            tier = max(int(entry.get("tier", 0)), best.get(stage, (0, 0))[0])
            best[stage] = (tier, max(level, best.get(stage, (0, 0))[1]))
    return [DueItem(DueKind.RETELL, times.armed_at, stage, tier, level) for stage, (tier, level) in best.items()]


def due_now(record: WarningRecord, now: float, tolerance_s: float = 0.0) -> list[DueItem]:
    """What has fallen due by `now` (+ `tolerance_s`: a timer may wake up to that much early), earliest first."""
    times = stored(record)
    if times is None:
        return []
    return sorted((item for item in pending(record, times) if item.at <= now + tolerance_s), key=lambda i: i.at)


def restamp(record: WarningRecord, deadlines: DeadlinePolicy) -> WarningRecord:
    """The record with its due times recomputed; a new version (and timer name) only when they changed."""
    previous = stored(record)
    times = compute(record, deadlines, previous)
    if previous is not None and previous.schedule() == times.schedule():
        return record
    version = (previous.version if previous else 0) + 1
    timer = timer_name(record.warning_id, version) if times.next_due is not None else None
    times = replace(times, version=version, timer=timer)
    return replace(record, details={**record.details, DUE_KEY: times.to_dict()})


def of(record: WarningRecord, deadlines: DeadlinePolicy) -> DueTimes:
    """The stored due times, or (a record written before they were stored) computed now."""
    return stored(record) or compute(record, deadlines)


TIMER_LEAD_S = 0.5
"""A timer is set to wake at least this long before its due time: starting the execution and the due message's
way to the handler take time (most of a second on a starved machine), and the handler sleeps what is left."""


def wait_seconds(next_due: float, now: float) -> int:
    """Whole seconds a timer sleeps until `TIMER_LEAD_S` before `next_due`, rounded down (0 when past): a Wait
    state counts whole seconds, so the timer wakes `TIMER_LEAD_S` to `1 + TIMER_LEAD_S` seconds early and the
    handler sleeps the rest (`WorkflowPolicy.early_wake_s`) instead of waking up late."""
    return max(0, math.floor(next_due - now - TIMER_LEAD_S))


@dataclass(frozen=True, slots=True)
class Overdue:
    """The steps past their due time and not done (DOMAIN.md §4): acknowledge (签收), verify (核实反馈), clear
    (消警), and the duty centre's confirmation of a clear request (确认消警)."""

    acknowledge: bool
    verify: bool
    clear: bool
    confirm: bool

    @property
    def any(self) -> bool:
        return self.acknowledge or self.verify or self.clear or self.confirm


def overdue(record: WarningRecord, times: DueTimes, now: float) -> Overdue:
    """What of the record is overdue at `now`, by its due times."""
    return Overdue(
        acknowledge=record.status is WarningStatus.RAISED and now > times.acknowledge_by,
        verify=record.status in (WarningStatus.RAISED, WarningStatus.ACKNOWLEDGED) and now > times.verify_by,
        clear=record.is_open and now > times.clear_by,
        confirm=(
            record.status is WarningStatus.CLEAR_REQUESTED
            and times.confirm_by is not None
            and now > times.confirm_by
        ),
    )
