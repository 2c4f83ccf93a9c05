"""Evaluation periods and the facts read from a warning record (chalicelib/domain/evaluation, DOMAIN.md §6)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from chalicelib.domain import due
from chalicelib.domain.due import Stage
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, LevelChange, facts_of, level_changes
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ClearReason, LifecycleEvent
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.sectors import Sector
from chalicelib.domain.warnings import WarningRecord, WarningStatus

POLICY = DeadlinePolicy()  # red 签收 300 s / 核实 900 s / 消警 7200 s / 确认 1800 s; yellow 1800 / 7200 / 86400
T = periods.month(2025, 3).start + 86400  # 2025-03-02 00:00 local
FAR = T + 365 * 86400  # read long after: nothing is pending for lack of time


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# --- periods -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "label", "start", "end"),
    [
        # local midnight is 16:00 UTC the day before
        (periods.month(2025, 3), "2025-03", "2025-02-28T16:00:00", "2025-03-31T16:00:00"),
        (periods.month(2024, 12), "2024-12", "2024-11-30T16:00:00", "2024-12-31T16:00:00"),
        (periods.month(2024, 2), "2024-02", "2024-01-31T16:00:00", "2024-02-29T16:00:00"),  # leap year
        (periods.quarter(2025, 1), "2025-Q1", "2024-12-31T16:00:00", "2025-03-31T16:00:00"),
        (periods.quarter(2025, 4), "2025-Q4", "2025-09-30T16:00:00", "2025-12-31T16:00:00"),
        (periods.year(2025), "2025", "2024-12-31T16:00:00", "2025-12-31T16:00:00"),
    ],
)
def test_calendar_periods_run_from_local_midnight_to_local_midnight(
    period: periods.Period, label: str, start: str, end: str
) -> None:
    assert (period.label, period.start, period.end) == (label, utc(start), utc(end))


@pytest.mark.parametrize(
    ("kind", "at", "label"),
    [
        (PeriodKind.MONTH, "2025-02-28T16:00:00", "2025-03"),  # 2025-03-01 00:00 local: March
        (PeriodKind.MONTH, "2025-02-28T15:59:59", "2025-02"),  # one second earlier: February
        (PeriodKind.QUARTER, "2025-06-30T15:59:59", "2025-Q2"),
        (PeriodKind.QUARTER, "2025-06-30T16:00:00", "2025-Q3"),
        (PeriodKind.YEAR, "2024-12-31T16:00:00", "2025"),
    ],
)
def test_the_period_containing_an_instant_follows_the_local_calendar(
    kind: PeriodKind, at: str, label: str
) -> None:
    assert periods.containing(kind, utc(at)).label == label


@pytest.mark.parametrize(
    ("kind", "now", "label"),
    [
        (PeriodKind.MONTH, "2025-03-31T16:00:00", "2025-03"),  # April 1st 00:00 local: March has ended
        (PeriodKind.QUARTER, "2025-04-15T00:00:00", "2025-Q1"),
        (PeriodKind.YEAR, "2025-01-01T00:00:00", "2024"),
    ],
)
def test_a_scheduled_run_evaluates_the_last_complete_period(kind: PeriodKind, now: str, label: str) -> None:
    assert periods.last_complete(kind, utc(now)).label == label


def test_a_custom_window_is_whole_seconds_labelled_by_its_local_times() -> None:
    window = periods.custom(utc("2025-03-01T00:40:12.7"), utc("2025-03-01T00:43:30.2"))
    assert (window.kind, window.label) == (PeriodKind.CUSTOM, "20250301T084012-20250301T084330")
    assert (window.start, window.end) == (utc("2025-03-01T00:40:12"), utc("2025-03-01T00:43:30"))
    assert periods.custom_of_label(window.label) == window
    with pytest.raises(ValueError):
        periods.custom_of_label("20250301T084330-20250301T084012")  # ends before it starts
    with pytest.raises(ValueError):
        periods.containing(PeriodKind.CUSTOM, window.start)
    # the day it falls in is its day (its device-days count), though the window begins after local midnight
    days = (date(2025, 2, 28), date(2025, 3, 1), date(2025, 3, 2))
    assert [window.contains_day(day) for day in days] == [False, True, False]
    assert [periods.month(2025, 3).contains_day(day) for day in (*days[:1], date(2025, 3, 31))] == [False, True]


def test_a_period_is_half_open() -> None:
    march = periods.month(2025, 3)
    assert march.contains(march.start) and not march.contains(march.end) and march.contains(march.end - 1)
    assert march.contains_day(date(2025, 3, 31)) and not march.contains_day(date(2025, 4, 1))
    with pytest.raises(ValueError):
        periods.quarter(2025, 5)


# --- device-days ---------------------------------------------------------------------------------------


def test_a_device_day_cannot_account_for_more_than_its_expected_time() -> None:
    with pytest.raises(ValueError, match="exceed"):
        DeviceDay(
            device_id="D",
            enterprise_id="E",
            sector=Sector.HAZCHEM,
            day=date(2025, 3, 2),
            expected_s=86400,
            online_s=86000,
            declared_outage_s=400,
            undeclared_outage_s=1,
        )


# --- facts from a record ------------------------------------------------------------------------------


def record(level: int = Level.RED, status: WarningStatus = WarningStatus.RAISED, **details: Any) -> WarningRecord:
    base = WarningRecord(
        warning_id="W1",
        device_id="D1",
        enterprise_id="E1",
        enterprise_name="渤化化工有限公司",
        sector=Sector.HAZCHEM,
        unit_id="U",
        unit_name="罐区",
        point_name="V-101",
        area_codes=("TEDA",),
        risk_type="tank_level",
        level=level,
        peak_level=level,
        status=status,
        reading_normal=False,
        raised_at=T,
        updated_at=T,
        title="液位高高报",
        reason="r",
        value=1.0,
        unit="%",
        details=details,
    )
    return due.restamp(base, POLICY)


def at(seconds: float) -> dict[str, Any]:
    return {"by": "u", "at": T + seconds}


def closure(seconds: float, reason: str = "disposed") -> dict[str, Any]:
    return {"reason": reason, "confirmed": True, **at(seconds)}


@pytest.mark.parametrize(
    ("acknowledged", "as_of", "on_time", "settled"),
    [
        (300, FAR, True, 300),  # red 签收 due at raise + 300 s: done exactly at the due time is on time
        (301, FAR, False, 300),  # one second late: missed, settled at the due time
        (None, T + 299, None, None),  # not done, not yet due: pending
        (None, T + 300, None, None),  # due exactly now: still pending (missed only once the due time has passed)
        (None, T + 301, False, 300),  # not done, due passed: missed
    ],
)
def test_acknowledge_stage_against_its_stored_due_time(
    acknowledged: float | None, as_of: float, on_time: bool | None, settled: float | None
) -> None:
    details = {"acknowledged": at(acknowledged)} if acknowledged is not None else {}
    status = WarningStatus.ACKNOWLEDGED if acknowledged is not None else WarningStatus.RAISED
    fact = facts_of(record(status=status, **details), POLICY, as_of).stage(Stage.ACKNOWLEDGE)
    assert fact is not None
    assert (fact.on_time, fact.settled_at) == (on_time, None if settled is None else T + settled)


def test_a_closure_ends_every_stage_still_open() -> None:
    # the duty centre marks a red false alarm 100 s after the raise, nobody had acknowledged: all on time
    facts = facts_of(
        record(status=WarningStatus.CLOSED, closure=closure(100, "false_alarm")), POLICY, FAR, changes=()
    )
    assert [(s.stage, s.on_time, s.settled_at) for s in facts.stages] == [
        (Stage.ACKNOWLEDGE, True, T + 100),
        (Stage.VERIFY, True, T + 100),
        (Stage.CLEAR, True, T + 100),
    ]
    assert (facts.closed_at, facts.clear_reason, facts.acknowledged_at) == (T + 100, ClearReason.FALSE_ALARM, None)


def lifted(level_up_at: float) -> WarningRecord:
    """Raised yellow at T, raised to red at T + level_up_at: the stored due times are re-armed then."""
    raised = record(level=Level.YELLOW)
    return due.restamp(replace(raised, level=Level.RED, peak_level=Level.RED, updated_at=T + level_up_at), POLICY)


UP = (LevelChange(at=T + 1000, from_level=Level.YELLOW, to_level=Level.RED),)


@pytest.mark.parametrize(
    ("acknowledged", "changes", "on_time", "due_at", "settled"),
    [
        # yellow 签收 due T+1800; red from T+1000 re-arms: due T+1000+300 = T+1300
        (1200, UP, True, 1300, 1200),
        (1400, UP, False, 1300, 1300),
        (500, UP, True, 1800, 500),  # done under yellow, before the re-arm: yellow's due applies
        # without the event log, a stage done before the stored arming: not escalated → on time, due unknown
        (500, None, True, None, 500),
    ],
)
def test_a_level_change_re_arms_the_due_time(
    acknowledged: float,
    changes: tuple[LevelChange, ...] | None,
    on_time: bool,
    due_at: float | None,
    settled: float,
) -> None:
    rec = replace(lifted(1000), status=WarningStatus.ACKNOWLEDGED)
    rec = replace(rec, details={**rec.details, "acknowledged": at(acknowledged)})
    fact = facts_of(rec, POLICY, FAR, changes).stage(Stage.ACKNOWLEDGE)
    assert fact is not None
    assert (fact.on_time, fact.due_at, fact.settled_at) == (
        on_time,
        None if due_at is None else T + due_at,
        T + settled,
    )


def test_a_stage_missed_before_a_re_arm_stays_missed() -> None:
    # yellow 签收 due T+1800 passes; red at T+2000 re-arms (due T+2300); acked T+2100: missed at T+1800
    changes = (LevelChange(at=T + 2000, from_level=Level.YELLOW, to_level=Level.RED),)
    rec = replace(lifted(2000), status=WarningStatus.ACKNOWLEDGED)
    rec = replace(rec, details={**rec.details, "acknowledged": at(2100)})
    fact = facts_of(rec, POLICY, FAR, changes).stage(Stage.ACKNOWLEDGE)
    assert fact is not None and (fact.on_time, fact.settled_at) == (False, T + 1800)


def test_without_the_event_log_the_escalation_entries_tell_a_miss_before_the_re_arm() -> None:
    rec = replace(lifted(2000), status=WarningStatus.ACKNOWLEDGED)
    entry = {"stage": "acknowledge", "tier": 1, "level": "yellow", "retell": False, "at": T + 1800}
    rec = replace(rec, details={**rec.details, "acknowledged": at(2100), "escalations": [entry]})
    facts = facts_of(rec, POLICY, FAR)
    fact = facts.stage(Stage.ACKNOWLEDGE)
    assert fact is not None and (fact.on_time, fact.settled_at) == (False, T + 1800)
    assert facts.escalated_at == T + 1800


def test_the_level_changes_are_read_from_the_event_log() -> None:
    def event(kind: str, seconds: float, before: int, after: int) -> LifecycleEvent:
        return LifecycleEvent(
            warning_id="W1",
            type=kind,
            actor="engine",
            role="system",
            at=T + seconds,
            before_status=WarningStatus.RAISED,
            before_level=before,
            after_status=WarningStatus.RAISED,
            after_level=after,
            reason="",
        )

    events = [
        event("level_down", 900, Level.RED, Level.ORANGE),
        event("acknowledge", 100, Level.YELLOW, Level.YELLOW),
        event("level_up", 500, Level.YELLOW, Level.RED),
        event("recover", 950, Level.ORANGE, Level.ORANGE),
    ]
    assert level_changes(events) == (
        LevelChange(at=T + 500, from_level=Level.YELLOW, to_level=Level.RED),
        LevelChange(at=T + 900, from_level=Level.RED, to_level=Level.ORANGE),
    )


@pytest.mark.parametrize(
    ("closed", "on_time"),
    [(1000 + 1800, True), (1000 + 1801, False)],  # red 确认消警: request + 1800 s
)
def test_the_duty_centres_confirmation_runs_from_the_clear_request(closed: float, on_time: bool) -> None:
    rec = record(
        status=WarningStatus.CLOSED,
        acknowledged=at(100),
        verification={"outcome": "real", **at(200)},
        clear_request={"reason": "disposed", **at(1000)},
        closure=closure(closed),
    )
    fact = facts_of(rec, POLICY, FAR, changes=()).stage(Stage.CONFIRM)
    assert fact is not None and (fact.on_time, fact.due_at) == (on_time, T + 2800)


def test_a_yellow_closed_on_request_has_no_confirmation_stage() -> None:
    rec = record(
        level=Level.YELLOW,
        status=WarningStatus.CLOSED,
        clear_request={"reason": "disposed", **at(1000)},
        closure={**closure(1000), "confirmed": False},
    )
    assert facts_of(rec, POLICY, FAR).stage(Stage.CONFIRM) is None
