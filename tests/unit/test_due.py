"""Due times as data (DOMAIN.md §4, chalicelib/domain/due.py): table-driven from the policy's deadlines."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain import due
from chalicelib.domain.due import DueKind, Stage
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.policy import DeadlinePolicy, WorkflowPolicy
from chalicelib.domain.warnings import WarningRecord, WarningStatus

S = WarningStatus
T0 = 1_800_000_000.0
POLICY = DeadlinePolicy()  # red 5/15/120 min, confirm 30 min, reminders 2 min; orange 10/30/240, confirm 1 h ...


def warning(level: int = Level.RED, status: WarningStatus = S.RAISED, **details: Any) -> WarningRecord:
    return WarningRecord(
        warning_id="W1",
        device_id="D",
        enterprise_id="E1",
        enterprise_name="渤化化工有限公司",
        sector=Sector.HAZCHEM,
        unit_id="U",
        unit_name="罐区",
        point_name="V-101",
        area_codes=("DAGANG",),
        risk_type="tank_level",
        level=level,
        peak_level=level,
        status=status,
        reading_normal=False,
        raised_at=T0,
        updated_at=T0,
        title="液位高高报",
        reason="r",
        value=1.0,
        unit="%",
        details=details,
    )


def stamped(record: WarningRecord) -> tuple[WarningRecord, due.DueTimes]:
    record = due.restamp(record, POLICY)
    times = due.stored(record)
    assert times is not None
    return record, times


@pytest.mark.parametrize(
    ("level", "acknowledge", "verify", "clear", "reminder"),
    [
        (Level.RED, 300, 900, 7200, 120),
        (Level.ORANGE, 600, 1800, 14400, 300),
        (Level.YELLOW, 1800, 7200, 86400, 600),
        (Level.BLUE, 7200, 86400, 259200, 1800),
    ],
)
def test_a_raise_arms_each_levels_deadlines_from_the_raise(
    level: int, acknowledge: int, verify: int, clear: int, reminder: int
) -> None:
    _, times = stamped(warning(level))

    assert (times.acknowledge_by, times.verify_by, times.clear_by) == (T0 + acknowledge, T0 + verify, T0 + clear)
    assert times.next_reminder == T0 + reminder
    assert times.next_due == T0 + reminder and times.next_kind == "remind"
    assert times.version == 1 and times.timer == "W1-1" and times.confirm_by is None


@pytest.mark.parametrize(
    ("status", "pending_stages"),
    [
        (S.RAISED, {Stage.ACKNOWLEDGE, Stage.VERIFY, Stage.CLEAR}),
        (S.ACKNOWLEDGED, {Stage.VERIFY, Stage.CLEAR}),
        (S.VERIFIED, {Stage.CLEAR}),
        (S.DISPOSING, {Stage.CLEAR}),
    ],
)
def test_each_open_status_leaves_the_stages_not_done_pending(
    status: WarningStatus, pending_stages: set[Stage]
) -> None:
    record, times = stamped(warning(Level.ORANGE, status))

    escalations = {item.stage for item in due.pending(record, times) if item.kind is DueKind.ESCALATE}
    reminders = [item for item in due.pending(record, times) if item.kind is DueKind.REMIND]

    assert escalations == pending_stages
    assert bool(reminders) is (status is S.RAISED)  # reminders only while nobody has acknowledged


def test_a_clear_request_on_red_adds_the_duty_centres_confirmation_and_keeps_the_clear_deadline() -> None:
    request = {"reason": "disposed", "at": T0 + 1000}
    record, times = stamped(warning(Level.RED, S.CLEAR_REQUESTED, clear_request=request))

    assert times.confirm_by == T0 + 1000 + 1800  # red: 30 min (DOMAIN.md §4)
    stages = {item.stage for item in due.pending(record, times)}
    assert stages == {Stage.CLEAR, Stage.CONFIRM}
    assert times.next_due == T0 + 2800 and times.next_kind == "confirm"


def test_an_orange_confirmation_gets_an_hour_and_yellow_none() -> None:
    request = {"reason": "false_alarm", "at": T0 + 60}
    _, orange = stamped(warning(Level.ORANGE, S.CLEAR_REQUESTED, clear_request=request))
    _, yellow = stamped(warning(Level.YELLOW, S.CLEAR_REQUESTED, clear_request=request))

    assert orange.confirm_by == T0 + 60 + 3600
    assert yellow.confirm_by is None and yellow.next_kind == "clear"


def test_a_red_lowered_to_yellow_still_has_the_confirmation_clock_of_its_peak() -> None:
    request = {"reason": "disposed", "at": T0 + 60}
    record = replace(warning(Level.YELLOW, S.CLEAR_REQUESTED, clear_request=request), peak_level=Level.RED)

    _, times = stamped(record)

    assert times.confirm_by == T0 + 60 + 1800


@pytest.mark.parametrize(
    ("old", "new", "acknowledge_s"),
    [(Level.BLUE, Level.RED, 300), (Level.RED, Level.YELLOW, 1800), (Level.ORANGE, Level.RED, 300)],
)
def test_a_level_change_re_arms_from_the_change_at_the_new_levels_deadlines(
    old: int, new: int, acknowledge_s: int
) -> None:
    record, before = stamped(warning(old))
    changed = replace(record, level=new, peak_level=max(old, new), updated_at=T0 + 100)

    _, after = stamped(changed)

    assert after.armed_at == T0 + 100 and after.acknowledge_by == T0 + 100 + acknowledge_s
    assert after.version == before.version + 1 and after.timer == "W1-2"


def test_a_level_up_shortens_and_a_level_down_lengthens_what_is_left() -> None:
    record, blue = stamped(warning(Level.BLUE))
    _, red = stamped(replace(record, level=Level.RED, peak_level=Level.RED, updated_at=T0 + 100))
    record, orange = stamped(warning(Level.ORANGE))
    _, yellow = stamped(replace(record, level=Level.YELLOW, updated_at=T0 + 100))

    assert red.clear_by < blue.clear_by
    assert yellow.clear_by > orange.clear_by


def test_an_action_that_does_not_change_the_due_times_keeps_the_version() -> None:
    record, times = stamped(warning(Level.RED))
    contacted = replace(record, details={**record.details, "contact_count": 1}, updated_at=T0 + 10)

    assert due.restamp(contacted, POLICY) is contacted
    assert times.version == 1


def test_acknowledging_moves_the_next_due_time_to_the_verify_deadline_and_stops_reminders() -> None:
    record, _ = stamped(warning(Level.RED))

    _, times = stamped(replace(record, status=S.ACKNOWLEDGED, updated_at=T0 + 30))

    assert times.next_reminder is None and times.next_due == T0 + 900 and times.next_kind == "verify"
    assert times.version == 2


def test_a_missed_stage_is_due_once_per_level_and_then_the_next_stage_is() -> None:
    record, _ = stamped(warning(Level.RED, reminder={"slot": T0 + 9999, "armed_at": T0}))
    items = due.due_now(record, T0 + 301)
    assert [(item.kind, item.stage, item.tier) for item in items] == [(DueKind.ESCALATE, Stage.ACKNOWLEDGE, 1)]

    escalated = [{"stage": "acknowledge", "tier": 1, "level": "red", "at": T0 + 301}]
    record, times = stamped(replace(record, details={**record.details, "escalations": escalated}))

    assert due.due_now(record, T0 + 302) == []
    assert times.next_kind == "verify" and times.next_due == T0 + 900


@pytest.mark.parametrize(
    ("stage", "level", "tier"),
    [
        (Stage.ACKNOWLEDGE, Level.BLUE, 1),
        (Stage.VERIFY, Level.YELLOW, 2),
        (Stage.CLEAR, Level.ORANGE, 2),
        (Stage.CLEAR, Level.RED, 3),
        (Stage.CONFIRM, Level.ORANGE, 3),
    ],
)
def test_each_missed_stage_reaches_its_tier(stage: Stage, level: int, tier: int) -> None:
    assert due.stage_tier(stage, level) == tier


def test_a_level_up_retells_a_stage_escalated_at_the_lower_level_at_once() -> None:
    escalated = [{"stage": "verify", "tier": 2, "level": "orange", "at": T0 + 1801}]
    record, _ = stamped(warning(Level.ORANGE, S.ACKNOWLEDGED, escalations=escalated))
    raised = replace(record, level=Level.RED, peak_level=Level.RED, updated_at=T0 + 2000)

    record, times = stamped(raised)
    items = due.due_now(record, T0 + 2000)

    assert [(item.kind, item.stage, item.tier, item.from_level) for item in items] == [
        (DueKind.RETELL, Stage.VERIFY, 2, Level.ORANGE)
    ]
    assert times.next_due == T0 + 2000


def test_a_level_down_retells_nothing() -> None:
    escalated = [{"stage": "verify", "tier": 2, "level": "red", "at": T0 + 901}]
    record, _ = stamped(warning(Level.RED, S.ACKNOWLEDGED, escalations=escalated))

    record, _ = stamped(replace(record, level=Level.ORANGE, updated_at=T0 + 1000))

    assert [item.kind for item in due.due_now(record, T0 + 1000)] == []


def test_reminders_follow_the_grid_from_the_arming_and_a_late_one_skips_to_the_latest_slot() -> None:
    record, _ = stamped(warning(Level.RED, reminder={"slot": T0 + 240, "armed_at": T0, "count": 2}))
    times = due.stored(record)
    assert times is not None and times.next_reminder == T0 + 360

    assert due.reminder_slot(T0, 120, T0 + 121) == T0 + 120
    assert due.reminder_slot(T0, 120, T0 + 1000) == T0 + 960


def test_a_closed_warning_has_its_archive_due_at_the_closure_and_an_archived_one_nothing() -> None:
    closure = {"reason": "disposed", "at": T0 + 500}
    record, times = stamped(warning(Level.RED, S.CLOSED, closure=closure))
    assert times.next_kind == "archive" and times.next_due == T0 + 500

    _, archived = stamped(replace(record, status=S.ARCHIVED))
    assert archived.next_due is None and archived.timer is None


def test_a_timer_sleeps_whole_seconds_rounded_down_and_wakes_ahead_of_its_start_latency() -> None:
    assert due.TIMER_LEAD_S == 0.5
    assert due.wait_seconds(T0 + 2.9, T0) == 2  # wakes 0.9 s early
    assert due.wait_seconds(T0 + 2.4, T0) == 1  # not 0.4 s early (less than the lead): 1.4 s
    assert due.wait_seconds(T0 + 2.0, T0) == 1
    assert due.wait_seconds(T0 + 0.4, T0) == 0
    assert due.wait_seconds(T0 - 5, T0) == 0


def test_the_handler_sleeps_whatever_a_timer_can_wake_early() -> None:
    assert WorkflowPolicy().early_wake_s >= 1 + due.TIMER_LEAD_S


def test_a_record_without_stored_due_times_is_computed_for_the_views() -> None:
    times = due.of(warning(Level.RED), POLICY)

    assert times.acknowledge_by == T0 + 300 and times.version == 0
