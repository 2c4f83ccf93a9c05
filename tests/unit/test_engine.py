"""The grading rules of DOMAIN.md §3, exercised through a small probe model so each rule is seen on its own."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.findings import Combination, Finding, UnitAlarm, normal, rising
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.policy import Duration, GradingPolicy
from chalicelib.domain.registry import DeviceRegistration, StaticFactors
from chalicelib.domain.rejections import Rejection, RejectReason
from chalicelib.domain.state import DeviceState, UnitState

T0 = 1_764_000_000.0


class ProbeModel:
    """gas_lel_pct graded 10/20/30/40 (band 2); level_pct 50/60/70/80; detector_fault event is immediate blue."""

    sector: Sector = Sector.HAZCHEM
    stuck_metrics: tuple[str, ...] = ("level_pct",)
    durable_memory: tuple[str, ...] = ()

    def __init__(self, combine_rule: bool = False) -> None:
        self.combine_rule = combine_rule

    def evaluate(self, reg: Any, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        findings = []
        metrics = msg.metrics
        if metrics.gas_lel_pct is not None:
            level, hold = rising(metrics.gas_lel_pct, (10, 20, 30, 40), 2)
            findings.append(
                Finding("gas", level, hold, "gas", "可燃气体", metrics.gas_lel_pct, "%LEL", "gas", "g")
                if level or hold
                else normal("gas")
            )
        if metrics.level_pct is not None:
            level, hold = rising(metrics.level_pct, (50, 60, 70, 80), 1)
            findings.append(
                Finding("level", level, hold, "lvl", "液位", metrics.level_pct, "%", "level")
                if level or hold
                else normal("level")
            )
        if metrics.temperature_c is not None:
            level, hold = rising(metrics.temperature_c, (50, 60, 70, 80), 1)
            findings.append(
                Finding("temp", level, hold, "t", "温度", metrics.temperature_c, "℃", "temperature")
                if level or hold
                else normal("temp")
            )
        if any(event.code == "detector_fault" for event in msg.events):
            findings.append(Finding("fault", Level.BLUE, reason="fault", title="探测器故障", immediate=True))
        return findings

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        if self.combine_rule and finding.tag == "g" and any(other.tag == "g" for other in others):
            return Combination(Level.RED, "two_gas")
        return None


def registration(device_id: str = "D1", unit_id: str = "U1", **static: Any) -> DeviceRegistration:
    return DeviceRegistration(
        device_id=device_id,
        enterprise_id="E1",
        enterprise_name="渤化测试化工",
        sector=Sector.HAZCHEM,
        unit_id=unit_id,
        unit_name="罐区一",
        point_name=f"{device_id}点位",
        kind="gas_detector",
        area_codes=("TEDA",),
        static=StaticFactors(**static),
    )


def message(t: float, device_id: str = "D1", seq: int | None = None, **fields: Any) -> bytes:
    body: dict[str, Any] = {
        "device_id": device_id,
        "enterprise_id": "E1",
        "sector": "hazchem",
        "ts": datetime.fromtimestamp(t, UTC).isoformat(),
    }
    if seq is not None:
        body["seq"] = seq
    events = fields.pop("events", None)
    context = fields.pop("context", None)
    body["metrics"] = fields
    if events:
        body["events"] = [{"code": code} for code in events]
    if context:
        body["context"] = context
    return json.dumps(body).encode()


class Rig:
    """Given a device (or several in one unit), feed readings and collect the changes."""

    def __init__(self, policy: GradingPolicy | None = None, combine_rule: bool = False, **static: int) -> None:
        self.engine = RiskEngine({Sector.HAZCHEM: ProbeModel(combine_rule)}, policy or GradingPolicy())
        self.static = static
        self.states: dict[str, DeviceState] = {}
        self.unit = UnitState("U1")
        self.changes: list[WarningChange] = []

    def feed(self, t: float, device_id: str = "D1", **fields: Any) -> Sequence[WarningChange] | Rejection:
        raw = message(t, device_id, **fields)
        reg = registration(device_id, "U1", **self.static)
        state = self.states.setdefault(device_id, DeviceState(device_id))
        parsed = self.engine.parse(raw, now_s=t)
        if isinstance(parsed, Rejection):
            self.engine.reject(reg, state, parsed, t)
            return parsed
        result = self.engine.grade(reg, state, self.unit, parsed, raw)
        if not isinstance(result, Rejection):
            self.changes.extend(result)
        return result

    def graded(self, t: float, device_id: str = "D1", **fields: Any) -> Sequence[WarningChange]:
        result = self.feed(t, device_id, **fields)
        assert not isinstance(result, Rejection), result
        return result

    def kinds(self) -> list[tuple[str, str, int]]:
        return [(change.kind.value, change.risk_type, change.level) for change in self.changes]


def test_a_single_breach_waits_for_its_duration_then_raises() -> None:
    rig = Rig()
    assert rig.feed(T0, gas_lel_pct=25) == ()
    changes = rig.graded(T0 + 1, gas_lel_pct=25)
    assert [(c.kind, c.level) for c in changes] == [(ChangeKind.RAISE, Level.YELLOW)]


def test_a_spike_that_does_not_persist_never_raises() -> None:
    rig = Rig()
    rig.feed(T0, gas_lel_pct=45)
    rig.feed(T0 + 1, gas_lel_pct=3)
    rig.feed(T0 + 2, gas_lel_pct=45)
    rig.feed(T0 + 3, gas_lel_pct=3)
    assert rig.changes == []


def test_duration_in_seconds_raises_once_the_breach_has_lasted() -> None:
    rig = Rig(GradingPolicy(durations={"gas": Duration(count=100, seconds=30)}))
    for offset in range(0, 30, 10):
        rig.feed(T0 + offset, gas_lel_pct=25)
    assert rig.changes == []
    rig.feed(T0 + 30, gas_lel_pct=25)
    assert rig.kinds() == [("raise", "gas", Level.YELLOW)]


def test_an_event_finding_raises_at_once() -> None:
    rig = Rig()
    rig.feed(T0, events=["detector_fault"])
    assert rig.kinds() == [("raise", "fault", Level.BLUE)]


def test_one_active_warning_per_device_and_risk_type_with_level_changes_on_it() -> None:
    rig = Rig()
    for offset, value in enumerate([25, 25, 26, 35, 36, 45, 25, 12]):
        rig.feed(T0 + offset, gas_lel_pct=value)
    assert rig.kinds() == [
        ("raise", "gas", Level.YELLOW),
        ("level_up", "gas", Level.ORANGE),
        ("level_up", "gas", Level.RED),
        ("level_down", "gas", Level.YELLOW),
        ("level_down", "gas", Level.BLUE),
    ]
    assert len({change.warning_id for change in rig.changes}) == 1


def test_a_noisy_series_around_a_threshold_raises_once_and_does_not_flap() -> None:
    rig = Rig()
    series = [19.0, 21.0, 19.5, 20.5, 18.5, 21.5, 19.2, 20.1, 18.9, 20.3] * 5
    for offset, value in enumerate(series):
        rig.feed(T0 + offset, gas_lel_pct=value)
    assert [kind for kind, _, _ in rig.kinds()] == ["raise"]


def test_the_level_falls_only_when_the_value_clears_the_band() -> None:
    rig = Rig()
    rig.feed(T0, gas_lel_pct=25)
    rig.feed(T0 + 1, gas_lel_pct=25)
    assert rig.feed(T0 + 2, gas_lel_pct=18.5) == ()  # below 20 but within the 2-point band
    changes = rig.graded(T0 + 3, gas_lel_pct=17.5)
    assert [(c.kind, c.level) for c in changes] == [(ChangeKind.LEVEL_DOWN, Level.BLUE)]


def test_recovery_closes_the_warning_and_a_new_breach_is_a_new_warning() -> None:
    rig = Rig()
    rig.feed(T0, gas_lel_pct=25)
    rig.feed(T0 + 1, gas_lel_pct=25)
    rig.feed(T0 + 2, gas_lel_pct=2)
    rig.feed(T0 + 100, gas_lel_pct=25)
    rig.feed(T0 + 101, gas_lel_pct=25)
    assert rig.kinds() == [("raise", "gas", 2), ("recover", "gas", 0), ("raise", "gas", 2)]
    assert rig.changes[0].warning_id == rig.changes[1].warning_id != rig.changes[2].warning_id


def test_two_different_parameters_alarming_in_one_unit_raise_one_level() -> None:
    rig = Rig()
    rig.feed(T0, "D2", level_pct=65)
    rig.feed(T0 + 1, "D2", level_pct=65)
    rig.feed(T0 + 2, gas_lel_pct=25)
    changes = rig.graded(T0 + 3, gas_lel_pct=25)
    assert isinstance(changes, Sequence)
    assert [(c.kind, c.level, c.flags) for c in changes] == [(ChangeKind.RAISE, Level.ORANGE, ("combined",))]


def test_three_different_parameters_alarming_in_one_unit_raise_red() -> None:
    rig = Rig()
    for offset in (0, 1):
        rig.feed(T0 + offset, "D2", level_pct=65)
        rig.feed(T0 + offset, "D3", temperature_c=65)
    rig.feed(T0 + 2, gas_lel_pct=25)
    changes = rig.graded(T0 + 3, gas_lel_pct=25)
    assert isinstance(changes, Sequence)
    assert [c.level for c in changes] == [Level.RED]


def test_alarms_older_than_the_combination_window_do_not_combine() -> None:
    rig = Rig()
    rig.feed(T0, "D2", level_pct=65)
    rig.feed(T0 + 1, "D2", level_pct=65)
    rig.feed(T0 + 700, gas_lel_pct=25)
    rig.feed(T0 + 701, gas_lel_pct=25)
    assert rig.changes[-1].level == Level.YELLOW


def test_a_sector_unit_rule_sets_the_level() -> None:
    rig = Rig(combine_rule=True)
    rig.feed(T0, "D2", gas_lel_pct=25)
    rig.feed(T0 + 1, "D2", gas_lel_pct=25)
    rig.feed(T0 + 2, gas_lel_pct=25)
    changes = rig.graded(T0 + 3, gas_lel_pct=25)
    assert isinstance(changes, Sequence)
    assert [c.level for c in changes] == [Level.RED]


def test_the_third_raise_within_24_hours_is_flagged_frequent_and_raised_one_level() -> None:
    rig = Rig()
    for start in (0, 3600, 7200):
        rig.feed(T0 + start, gas_lel_pct=25)
        rig.feed(T0 + start + 1, gas_lel_pct=25)
        rig.feed(T0 + start + 2, gas_lel_pct=1)
    raises = [c for c in rig.changes if c.kind is ChangeKind.RAISE]
    assert [(c.level, c.flags) for c in raises] == [(2, ()), (2, ()), (3, ("frequent",))]


def test_raises_more_than_24_hours_apart_are_not_frequent() -> None:
    rig = Rig()
    for start in (0, 50_000, 100_000):
        rig.feed(T0 + start, gas_lel_pct=25)
        rig.feed(T0 + start + 1, gas_lel_pct=25)
        rig.feed(T0 + start + 2, gas_lel_pct=1)
    assert all(c.flags == () for c in rig.changes)


@pytest.mark.parametrize(
    ("static", "expected"),
    [
        ({"major_hazard_grade": 1}, Level.ORANGE),
        ({"major_hazard_grade": 2}, Level.ORANGE),
        ({"major_hazard_grade": 3}, Level.YELLOW),
        ({"major_hazard_grade": 4}, Level.YELLOW),
        ({"hca_class": 3}, Level.ORANGE),
        ({"hca_class": 2}, Level.YELLOW),
        ({}, Level.YELLOW),
    ],
)
def test_static_factors_raise_one_level(static: dict[str, int], expected: Level) -> None:
    rig = Rig(None, False, **static)
    rig.feed(T0, gas_lel_pct=25)
    rig.feed(T0 + 1, gas_lel_pct=25)
    assert rig.changes[0].level == expected


def test_no_rule_ever_goes_above_red() -> None:
    rig = Rig(major_hazard_grade=1)
    for start in (0, 100, 200):
        rig.feed(T0 + start, gas_lel_pct=45, context={"isolated": True})
        rig.feed(T0 + start + 1, gas_lel_pct=45, context={"isolated": True})
        rig.feed(T0 + start + 2, gas_lel_pct=1)
    assert max(c.level for c in rig.changes) == Level.RED


@pytest.mark.parametrize("flag", ["related_offline", "isolated", "manual_mode"])
def test_an_alarm_while_related_data_is_offline_or_the_system_isolated_rises_one_level(flag: str) -> None:
    rig = Rig()
    rig.feed(T0, gas_lel_pct=25, context={flag: True})
    rig.feed(T0 + 1, gas_lel_pct=25, context={flag: True})
    assert [(c.level, c.flags) for c in rig.changes] == [(Level.ORANGE, ("context",))]


def test_context_does_not_raise_a_blue_pre_warning() -> None:
    rig = Rig()
    rig.feed(T0, gas_lel_pct=12, context={"isolated": True})
    rig.feed(T0 + 1, gas_lel_pct=12, context={"isolated": True})
    assert [c.level for c in rig.changes] == [Level.BLUE]


def test_a_replayed_sequence_is_rejected_and_changes_nothing() -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    state = DeviceState("D1")
    reg = registration()
    first = engine.parse(message(T0, seq=7, gas_lel_pct=1), T0)
    assert not isinstance(first, Rejection)
    engine.grade(reg, state, None, first)
    again = engine.grade(reg, state, None, first)
    assert isinstance(again, Rejection)
    assert again.reason is RejectReason.REPLAYED


def test_an_older_message_never_rolls_state_back() -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    state = DeviceState("D1")
    reg = registration()
    for t, seq in ((T0 + 10, 2), (T0 + 11, 3)):
        parsed = engine.parse(message(t, seq=seq, gas_lel_pct=25), T0 + 20)
        assert not isinstance(parsed, Rejection)
        engine.grade(reg, state, None, parsed)
    late = engine.parse(message(T0 + 5, seq=4, gas_lel_pct=1), T0 + 20)
    assert not isinstance(late, Rejection)
    result = engine.grade(reg, state, None, late)
    assert isinstance(result, Rejection)
    assert result.reason is RejectReason.OUT_OF_ORDER
    assert state.risks["gas"].level == Level.YELLOW and state.last_ts == T0 + 11


def test_a_device_that_restarts_its_sequence_with_newer_time_is_accepted() -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    state = DeviceState("D1")
    reg = registration()
    for t, seq in ((T0, 500), (T0 + 60, 0)):
        parsed = engine.parse(message(t, seq=seq, gas_lel_pct=1), T0 + 60)
        assert not isinstance(parsed, Rejection)
        assert not isinstance(engine.grade(reg, state, None, parsed), Rejection)
    assert state.last_seq == 0


def test_a_message_whose_enterprise_differs_from_the_registration_is_spoofed() -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    parsed = engine.parse(message(T0, gas_lel_pct=1), T0)
    assert not isinstance(parsed, Rejection)
    other = registration().model_copy(update={"enterprise_id": "E2"})
    result = engine.grade(other, DeviceState("D1"), None, parsed)
    # the topic (which the payload matches) claims an identity the registry does not give the device
    assert isinstance(result, Rejection) and result.reason is RejectReason.SPOOFED


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(301, RejectReason.TIMESTAMP_FUTURE), (-86_401, RejectReason.TIMESTAMP_PAST)],
)
def test_clock_skew_is_rejected(offset: float, reason: RejectReason) -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    parsed = engine.parse(message(T0 + offset, gas_lel_pct=1), T0)
    assert isinstance(parsed, Rejection) and parsed.reason is reason and parsed.device_id == "D1"


@pytest.mark.parametrize("offset", [299, -86_399])
def test_clock_within_tolerance_is_accepted(offset: float) -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    assert not isinstance(engine.parse(message(T0 + offset, gas_lel_pct=1), T0), Rejection)


def test_an_out_of_range_value_is_a_blue_data_quality_finding_never_a_red() -> None:
    rig = Rig()
    rejection = rig.feed(T0, gas_lel_pct=180)
    assert isinstance(rejection, Rejection) and rejection.reason is RejectReason.OUT_OF_RANGE
    state = rig.states["D1"]
    assert state.risks[DATA_QUALITY].level == Level.BLUE
    assert "gas" not in state.risks


def test_a_stuck_sensor_is_a_data_quality_finding_that_recovers_after_the_hold() -> None:
    policy = GradingPolicy(stuck_count=5, quality_hold_s=60)
    rig = Rig(policy)
    for offset in range(5):
        rig.feed(T0 + offset, level_pct=42.0)
    assert rig.kinds() == [("raise", DATA_QUALITY, Level.BLUE)]
    assert rig.changes[0].reason == "stuck_value"
    rig.feed(T0 + 30, level_pct=42.3)
    assert len(rig.changes) == 1
    rig.feed(T0 + 70, level_pct=42.1)
    assert rig.kinds()[-1] == ("recover", DATA_QUALITY, Level.NONE)


def test_state_round_trips_through_its_compact_form() -> None:
    rig = Rig()
    rig.feed(T0, gas_lel_pct=25)
    rig.feed(T0 + 1, gas_lel_pct=25)
    rig.feed(T0 + 2, level_pct=55)
    state = rig.states["D1"]
    again = DeviceState.loads("D1", state.dumps())
    assert again.to_dict() == state.to_dict()
    assert len(state.dumps().encode()) < 400


def test_a_model_that_crashes_rejects_the_message_instead_of_raising() -> None:
    class Broken(ProbeModel):
        def evaluate(self, reg: Any, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
            raise ZeroDivisionError("bug")

    engine = RiskEngine({Sector.HAZCHEM: Broken()})
    parsed = engine.parse(message(T0, gas_lel_pct=1), T0)
    assert not isinstance(parsed, Rejection)
    result = engine.grade(registration(), DeviceState("D1"), None, parsed)
    assert isinstance(result, Rejection) and "ZeroDivisionError" in result.detail


class MemoryModel(ProbeModel):
    """Remembers the last alarm time under a durable key and every reading under a rolling one."""

    durable_memory: tuple[str, ...] = ("alarm",)

    def evaluate(self, reg: DeviceRegistration, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        scratch["last"] = now_s
        if (msg.metrics.gas_lel_pct or 0) >= 5:
            scratch["alarm"] = [now_s]
        return super().evaluate(reg, msg, scratch, now_s)


def test_a_change_to_durable_model_memory_marks_the_state_to_be_written_at_once() -> None:
    engine = RiskEngine({Sector.HAZCHEM: MemoryModel()})
    state = DeviceState("D1")
    for t, lel, written in ((T0, 1, False), (T0 + 10, 6, True), (T0 + 20, 1, False)):
        state.dirty = False
        parsed = engine.parse(message(t, gas_lel_pct=lel), t)
        assert not isinstance(parsed, Rejection)
        engine.grade(registration(), state, None, parsed)
        assert state.dirty is written, (t, lel)
    assert state.scratch["last"] == T0 + 20  # rolling memory is kept, written with the coalesced watermark


def test_a_data_quality_finding_takes_the_message_time_not_the_clock_it_is_processed_by() -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    raw = message(T0, gas_lel_pct=1000)  # out of range
    parsed = engine.parse(raw, T0 + 5)
    assert isinstance(parsed, Rejection) and parsed.reason is RejectReason.OUT_OF_RANGE and parsed.at == T0
    first = engine.reject(registration(), DeviceState("D1"), parsed, T0 + 5)
    retried = engine.reject(registration(), DeviceState("D1"), parsed, T0 + 65)  # a retry a minute later
    assert [c.warning_id for c in first] == [c.warning_id for c in retried] and first[0].at == T0


def test_device_clocks_are_judged_against_the_arrival_time_passed_in() -> None:
    engine = RiskEngine({Sector.HAZCHEM: ProbeModel()})
    max_age = engine.policy.max_past_age_s
    raw = message(T0, gas_lel_pct=1)
    assert not isinstance(engine.parse(raw, T0 + max_age - 1), Rejection)  # arrived in time, processed late
    late = engine.parse(raw, T0 + max_age + 1)
    assert (
        isinstance(late, Rejection) and late.reason is RejectReason.TIMESTAMP_PAST and late.at == T0 + max_age + 1
    )
