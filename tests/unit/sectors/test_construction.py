"""Construction sites (DOMAIN.md §2.4): crane load, wind, pit/formwork values vs control, GB 50497 §8.0.9."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.findings import Finding, normal
from chalicelib.domain.levels import Level
from chalicelib.domain.registry import DeviceRegistration, Setpoint
from chalicelib.domain.sectors.construction import (
    CRANE_LOAD,
    FORMWORK_AXIAL,
    PIT_CUMULATIVE,
    PIT_DANGER,
    PIT_RATE,
    STOP_POUR_ACTION,
    STOP_POUR_REASON,
    TILT,
    WIND,
    ConstructionConfig,
    ConstructionMessage,
    ConstructionModel,
)

T0 = datetime(2024, 6, 3, 2, 0, tzinfo=UTC).timestamp()  # 10:00 Asia/Shanghai
HOUR = 3600.0
DAY = 86400.0
NONE, BLUE, YELLOW, ORANGE, RED = Level.NONE, Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED

PIT_CONTROLS = {
    "cumulative_mm": Setpoint(control=30.0),
    "rate_mm_d": Setpoint(control=3.0),
    "axial_force_kn": Setpoint(control=100.0),
}


def registration(setpoints: dict[str, Setpoint] | None = None) -> DeviceRegistration:
    return DeviceRegistration(
        device_id="site-1",
        enterprise_id="ent-1",
        enterprise_name="某建设公司",
        sector="construction",
        unit_id="site-1",
        unit_name="一号工地",
        kind="monitor",
        setpoints=setpoints or {},
    )


def message(
    now_s: float = T0,
    events: list[str] | None = None,
    context: dict[str, Any] | None = None,
    **metrics: Any,
) -> ConstructionMessage:
    body: dict[str, Any] = {
        "device_id": "site-1",
        "enterprise_id": "ent-1",
        "ts": datetime.fromtimestamp(now_s, tz=UTC).isoformat(),
        "sector": "construction",
        "metrics": metrics,
        "events": [{"code": code} for code in events or []],
    }
    if context is not None:
        body["context"] = context
    return ConstructionMessage.model_validate(body)


def evaluate(
    msg: ConstructionMessage,
    reg: DeviceRegistration | None = None,
    scratch: dict[str, Any] | None = None,
    model: ConstructionModel | None = None,
) -> list[Finding]:
    state = {} if scratch is None else scratch
    findings = (model or ConstructionModel()).evaluate(
        reg or registration(PIT_CONTROLS), msg, state, msg_time(msg)
    )
    json.dumps(state)  # scratch stays JSON-compatible
    return findings


def msg_time(msg: ConstructionMessage) -> float:
    return msg.ts.timestamp()


def only(findings: list[Finding], risk_type: str) -> Finding:
    matching = [finding for finding in findings if finding.risk_type == risk_type]
    assert len(matching) == 1, findings
    return matching[0]


def risk_types(findings: list[Finding]) -> set[str]:
    return {finding.risk_type for finding in findings}


# --- crane load / moment ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        ({"load_pct": 79.9}, NONE),
        ({"load_pct": 80.0}, BLUE),
        ({"load_pct": 89.9}, BLUE),
        ({"load_pct": 90.0}, YELLOW),
        ({"load_pct": 99.9}, YELLOW),
        ({"load_pct": 100.0}, ORANGE),
        ({"load_pct": 109.9}, ORANGE),
        ({"load_pct": 110.0}, RED),
        ({"moment_pct": 95.0}, YELLOW),
        ({"load_pct": 50.0, "moment_pct": 101.0}, ORANGE),  # the larger ratio decides
        ({"load_pct": 112.0, "moment_pct": 40.0}, RED),
        ({"load_pct": 10.0, "limiter_bypassed": False}, NONE),
        ({"load_pct": 10.0, "limiter_bypassed": True}, RED),
        ({"limiter_bypassed": True}, RED),
    ],
)
def test_crane_load_tiers_use_the_larger_of_load_and_moment(metrics: dict[str, Any], expected: Level) -> None:
    finding = only(evaluate(message(**metrics)), CRANE_LOAD)
    assert finding.level == expected
    if expected:
        assert (finding.family, finding.unit) == ("load", "%")
        assert len(finding.title) <= 10


def test_bypassed_limiter_is_an_immediate_red() -> None:
    finding = only(evaluate(message(load_pct=30.0, limiter_bypassed=True)), CRANE_LOAD)
    assert (finding.level, finding.hold, finding.immediate) == (RED, RED, True)
    assert finding.reason == "crane_limiter_bypassed"


def test_crane_overload_is_an_analog_finding_left_to_the_duration_rule() -> None:
    finding = only(evaluate(message(load_pct=111.0)), CRANE_LOAD)
    assert (finding.reason, finding.immediate) == ("crane_overload_severe", False)
    assert finding.params["threshold_pct"] == 110.0


@pytest.mark.parametrize(("load", "level", "hold"), [(88.5, BLUE, YELLOW), (87.9, BLUE, BLUE), (77.9, NONE, NONE)])
def test_crane_level_holds_within_the_band_below_a_threshold(load: float, level: Level, hold: Level) -> None:
    finding = only(evaluate(message(load_pct=load)), CRANE_LOAD)
    assert (finding.level, finding.effective_hold) == (level, hold)


def test_crane_tiers_are_configurable() -> None:
    model = ConstructionModel(ConstructionConfig(load_tiers_pct=(70.0, 85.0, 95.0, 105.0)))
    assert only(evaluate(message(load_pct=105.0), model=model), CRANE_LOAD).level == RED
    assert only(evaluate(message(load_pct=69.0), model=model), CRANE_LOAD).level == NONE


# --- wind ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wind", "context", "expected"),
    [
        (5.4, None, NONE),
        (5.5, None, BLUE),
        (7.9, None, BLUE),
        (8.0, None, YELLOW),
        (10.7, None, YELLOW),
        (10.8, None, ORANGE),
        (13.7, None, ORANGE),
        (13.8, None, RED),  # no context: the crane is assumed to be operating
        (13.8, {"operating": True}, RED),
        (13.8, {"operating": False}, ORANGE),
        (25.0, {"operating": False}, ORANGE),
        (10.8, {"operating": False}, ORANGE),
    ],
)
def test_wind_tiers_and_red_only_while_operating(
    wind: float, context: dict[str, Any] | None, expected: Level
) -> None:
    finding = only(evaluate(message(context=context, wind_ms=wind)), WIND)
    assert finding.level == expected
    assert finding.effective_hold <= (ORANGE if context == {"operating": False} else RED)
    if expected:
        assert (finding.family, finding.unit) == ("wind", "m/s")


def test_wind_in_gale_while_operating_reads_as_such() -> None:
    finding = only(evaluate(message(wind_ms=14.0)), WIND)
    assert finding.reason == "wind_gale_while_operating"
    assert finding.params == {"threshold_ms": 13.8, "operating": True}


def test_wind_level_holds_within_the_band() -> None:
    finding = only(evaluate(message(wind_ms=10.5)), WIND)
    assert (finding.level, finding.hold) == (YELLOW, ORANGE)


def test_model_reports_anemometer_as_stuck_candidate() -> None:
    assert ConstructionModel().stuck_metrics == ("wind_ms",)


# --- pit / formwork values vs their control value --------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "risk_type", "value", "expected"),
    [
        # cumulative, control 30 mm
        ("cumulative_mm", PIT_CUMULATIVE, 17.9, NONE),
        ("cumulative_mm", PIT_CUMULATIVE, 18.0, BLUE),
        ("cumulative_mm", PIT_CUMULATIVE, 20.9, BLUE),
        ("cumulative_mm", PIT_CUMULATIVE, 21.0, YELLOW),
        ("cumulative_mm", PIT_CUMULATIVE, 25.4, YELLOW),
        ("cumulative_mm", PIT_CUMULATIVE, 25.5, ORANGE),
        ("cumulative_mm", PIT_CUMULATIVE, 29.9, ORANGE),
        ("cumulative_mm", PIT_CUMULATIVE, 30.0, RED),
        ("cumulative_mm", PIT_CUMULATIVE, -30.0, RED),  # settlement: absolute value
        ("cumulative_mm", PIT_CUMULATIVE, -17.9, NONE),
        # rate, control 3 mm/d
        ("rate_mm_d", PIT_RATE, 1.79, NONE),
        ("rate_mm_d", PIT_RATE, 1.8, BLUE),
        ("rate_mm_d", PIT_RATE, 2.1, YELLOW),
        ("rate_mm_d", PIT_RATE, 2.549, YELLOW),
        ("rate_mm_d", PIT_RATE, 2.55, ORANGE),
        ("rate_mm_d", PIT_RATE, 2.99, ORANGE),
        ("rate_mm_d", PIT_RATE, 3.0, RED),
        ("rate_mm_d", PIT_RATE, -3.5, RED),
        # formwork pole axial force, control 100 kN
        ("axial_force_kn", FORMWORK_AXIAL, 59.9, NONE),
        ("axial_force_kn", FORMWORK_AXIAL, 60.0, BLUE),
        ("axial_force_kn", FORMWORK_AXIAL, 69.9, BLUE),
        ("axial_force_kn", FORMWORK_AXIAL, 70.0, YELLOW),
        ("axial_force_kn", FORMWORK_AXIAL, 84.9, YELLOW),
        ("axial_force_kn", FORMWORK_AXIAL, 85.0, ORANGE),
        ("axial_force_kn", FORMWORK_AXIAL, 99.9, ORANGE),
        ("axial_force_kn", FORMWORK_AXIAL, 100.0, RED),
        # tilt, default control 2 permille
        ("tilt_permille", TILT, 1.19, NONE),
        ("tilt_permille", TILT, 1.2, BLUE),
        ("tilt_permille", TILT, 1.39, BLUE),
        ("tilt_permille", TILT, 1.4, YELLOW),
        ("tilt_permille", TILT, 1.69, YELLOW),
        ("tilt_permille", TILT, 1.7, ORANGE),
        ("tilt_permille", TILT, 1.99, ORANGE),
        ("tilt_permille", TILT, 2.0, RED),
        ("tilt_permille", TILT, -2.1, RED),
    ],
)
def test_value_against_control_tiers_at_60_70_85_100_percent(
    metric: str, risk_type: str, value: float, expected: Level
) -> None:
    metrics: dict[str, Any] = {metric: value}
    finding = only(evaluate(message(**metrics)), risk_type)
    assert finding.level == expected
    if expected:
        assert finding.value == value
        assert not finding.immediate
        assert finding.reason.endswith("_over_control" if expected == RED else "_near_control")
        assert len(finding.title) <= 10


@pytest.mark.parametrize(
    ("risk_type", "family"),
    [
        (PIT_CUMULATIVE, "displacement"),
        (PIT_RATE, "displacement"),
        (FORMWORK_AXIAL, "axial_force"),
        (TILT, "tilt"),
    ],
)
def test_each_controlled_metric_has_its_documented_family(risk_type: str, family: str) -> None:
    findings = evaluate(message(cumulative_mm=30.0, rate_mm_d=3.0, axial_force_kn=100.0, tilt_permille=2.0))
    assert only(findings, risk_type).family == family


def test_metrics_without_a_registered_control_are_skipped_except_tilt() -> None:
    findings = evaluate(
        message(cumulative_mm=500.0, rate_mm_d=50.0, axial_force_kn=900.0, tilt_permille=2.0),
        reg=registration(),
    )
    assert risk_types(findings) == {TILT}


def test_registered_tilt_control_overrides_the_default() -> None:
    reg = registration({"tilt_permille": Setpoint(control=4.0)})
    assert only(evaluate(message(tilt_permille=2.0), reg=reg), TILT).level == NONE
    assert only(evaluate(message(tilt_permille=2.4), reg=reg), TILT).level == BLUE


def test_rate_control_falls_back_to_the_cumulative_setpoints_rate_control() -> None:
    reg = registration({"cumulative_mm": Setpoint(control=30.0, rate_control=2.0)})
    finding = only(evaluate(message(rate_mm_d=2.0), reg=reg), PIT_RATE)
    assert (finding.level, finding.params["control"]) == (RED, 2.0)


def test_negative_control_value_is_taken_as_its_magnitude() -> None:
    reg = registration({"cumulative_mm": Setpoint(control=-30.0)})
    assert only(evaluate(message(cumulative_mm=-21.0), reg=reg), PIT_CUMULATIVE).level == YELLOW


def test_zero_control_value_is_treated_as_unregistered() -> None:
    reg = registration({"cumulative_mm": Setpoint(control=0.0)})
    assert PIT_CUMULATIVE not in risk_types(evaluate(message(cumulative_mm=5.0), reg=reg))


def test_control_ratio_tiers_are_configurable() -> None:
    model = ConstructionModel(ConstructionConfig(control_ratio_tiers=(0.5, 0.6, 0.8, 0.9)))
    assert only(evaluate(message(cumulative_mm=27.0), model=model), PIT_CUMULATIVE).level == RED


def test_control_value_finding_holds_within_the_band() -> None:
    finding = only(evaluate(message(cumulative_mm=20.5)), PIT_CUMULATIVE)  # band = 2 % of 30 mm = 0.6 mm
    assert (finding.level, finding.hold) == (BLUE, YELLOW)


# --- rate over control on two local days running ---------------------------------------------------------------


def local(day: int, hour: int, minute: int = 0) -> float:
    """Epoch seconds of June `day` 2024, hh:mm Asia/Shanghai."""
    return datetime(2024, 6, day, hour, minute, tzinfo=UTC).timestamp() - 8 * HOUR


def rate_level(scratch: dict[str, Any], now_s: float, rate: float) -> Finding:
    return only(evaluate(message(now_s, rate_mm_d=rate), scratch=scratch), PIT_RATE)


def test_rate_over_control_on_two_days_running_keeps_yellow_after_it_drops() -> None:
    scratch: dict[str, Any] = {}
    assert rate_level(scratch, local(3, 9), 3.2).level == RED
    assert rate_level(scratch, local(3, 18), 0.5).level == NONE  # one day only
    assert rate_level(scratch, local(4, 9), 3.1).level == RED
    finding = rate_level(scratch, local(4, 18), 0.5)
    assert (finding.level, finding.reason) == (YELLOW, "pit_rate_over_control_days_running")
    assert finding.params["days_running"] == 2


def test_rate_streak_counts_local_days_not_utc_days() -> None:
    scratch: dict[str, Any] = {}
    rate_level(scratch, local(3, 23, 30), 3.2)
    rate_level(scratch, local(4, 0, 30), 3.2)  # same UTC day, next local day
    assert rate_level(scratch, local(4, 1, 0), 0.5).level == YELLOW


def test_two_exceedances_on_the_same_local_day_are_not_a_streak() -> None:
    scratch: dict[str, Any] = {}
    rate_level(scratch, local(3, 8), 3.2)
    rate_level(scratch, local(3, 20), 3.2)
    assert rate_level(scratch, local(3, 21), 0.5).level == NONE


def test_a_day_without_exceedance_breaks_the_streak() -> None:
    scratch: dict[str, Any] = {}
    rate_level(scratch, local(3, 9), 3.2)
    rate_level(scratch, local(5, 9), 3.2)
    assert rate_level(scratch, local(5, 10), 0.5).level == NONE


def test_rate_just_below_control_does_not_count_toward_the_streak() -> None:
    scratch: dict[str, Any] = {}
    rate_level(scratch, local(3, 9), 2.99)
    rate_level(scratch, local(4, 9), 3.2)
    assert rate_level(scratch, local(4, 10), 0.5).level == NONE


def test_streak_floor_expires_after_its_hold_time() -> None:
    scratch: dict[str, Any] = {}
    rate_level(scratch, local(3, 9), 3.2)
    rate_level(scratch, local(4, 9), 3.2)
    assert rate_level(scratch, local(5, 8, 59), 0.5).level == YELLOW
    assert rate_level(scratch, local(5, 9, 0), 0.5).level == NONE
    rate_level(scratch, local(6, 9), 0.5)
    assert scratch == {}


def test_streak_length_is_configurable() -> None:
    model = ConstructionModel(ConstructionConfig(rate_streak_days=3))
    scratch: dict[str, Any] = {}
    for day in (3, 4):
        evaluate(message(local(day, 9), rate_mm_d=3.2), scratch=scratch, model=model)
    findings = evaluate(message(local(4, 10), rate_mm_d=0.5), scratch=scratch, model=model)
    assert only(findings, PIT_RATE).level == NONE


# --- formwork during a pour ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("axial_force", "pouring", "expected", "stop_pour"),
    [
        (85.0, True, ORANGE, True),
        (100.0, True, RED, True),
        (84.9, True, YELLOW, False),
        (85.0, False, ORANGE, False),
        (100.0, False, RED, False),
    ],
)
def test_orange_or_red_on_formwork_during_a_pour_says_stop_pouring_and_evacuate(
    axial_force: float, pouring: bool, expected: Level, stop_pour: bool
) -> None:
    msg = message(context={"pouring": pouring}, axial_force_kn=axial_force)
    finding = only(evaluate(msg), FORMWORK_AXIAL)
    assert finding.level == expected
    assert (finding.params.get("action") == STOP_POUR_ACTION) is stop_pour
    assert (finding.reason == STOP_POUR_REASON) is stop_pour
    if stop_pour:
        assert "停" in finding.title
        assert "撤离" in finding.title
        assert len(finding.title) <= 10
        assert finding.params["cause"] == f"formwork_axial_{'over' if expected == RED else 'near'}_control"


def test_pour_rule_covers_settlement_and_tilt_too() -> None:
    findings = evaluate(message(context={"pouring": True}, cumulative_mm=26.0, tilt_permille=1.8))
    for risk_type in (PIT_CUMULATIVE, TILT):
        assert only(findings, risk_type).params["action"] == STOP_POUR_ACTION


# --- GB 50497 §8.0.9 immediate danger --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("piping", "pit_piping"),
        ("heave", "pit_heave"),
        ("collapse", "pit_collapse"),
        ("strut_break", "pit_strut_break"),
        ("neighbour_crack", "pit_neighbour_crack"),
    ],
)
def test_any_8_0_9_condition_is_an_immediate_red(code: str, reason: str) -> None:
    finding = only(evaluate(message(events=[code])), PIT_DANGER)
    assert (finding.level, finding.hold, finding.immediate) == (RED, RED, True)
    assert (finding.reason, finding.params["event"]) == (reason, code)
    assert len(finding.title) <= 10


def test_danger_red_stands_for_its_hold_time_then_reports_normal_once() -> None:
    scratch: dict[str, Any] = {}
    evaluate(message(T0, events=["collapse"]), scratch=scratch)
    assert only(evaluate(message(T0 + 59 * 60), scratch=scratch), PIT_DANGER).level == RED
    assert only(evaluate(message(T0 + HOUR), scratch=scratch), PIT_DANGER) is normal(PIT_DANGER)
    assert PIT_DANGER not in risk_types(evaluate(message(T0 + HOUR + 60), scratch=scratch))
    assert scratch == {}


def test_a_new_danger_event_restarts_the_hold() -> None:
    scratch: dict[str, Any] = {}
    evaluate(message(T0, events=["piping"]), scratch=scratch)
    evaluate(message(T0 + 50 * 60, events=["heave"]), scratch=scratch)
    finding = only(evaluate(message(T0 + 100 * 60), scratch=scratch), PIT_DANGER)
    assert (finding.level, finding.reason) == (RED, "pit_heave")


def test_danger_during_a_pour_says_stop_pouring_and_evacuate() -> None:
    finding = only(evaluate(message(events=["collapse"], context={"pouring": True})), PIT_DANGER)
    assert (finding.level, finding.reason, finding.params["action"]) == (RED, STOP_POUR_REASON, STOP_POUR_ACTION)


# --- contract details ------------------------------------------------------------------------------------------


def test_message_reports_only_the_risk_types_it_carries() -> None:
    assert risk_types(evaluate(message(load_pct=10.0, wind_ms=2.0))) == {CRANE_LOAD, WIND}
    assert risk_types(evaluate(message(cumulative_mm=1.0, rate_mm_d=0.1))) == {PIT_CUMULATIVE, PIT_RATE}
    assert evaluate(message()) == []


def test_normal_readings_return_the_shared_normal_findings() -> None:
    findings = evaluate(message(load_pct=10.0, wind_ms=2.0, cumulative_mm=1.0, tilt_permille=0.1))
    assert all(finding is normal(finding.risk_type) for finding in findings)


@pytest.mark.parametrize(
    "overrides",
    [
        {"load_tiers_pct": (80.0, 90.0, 90.0, 110.0)},
        {"wind_tiers_ms": (8.0, 5.5, 10.8, 13.8)},
        {"control_ratio_tiers": (0.0, 0.7, 0.85, 1.0)},
        {"unknown_field": 1},
    ],
)
def test_config_rejects_non_ascending_tiers_and_unknown_fields(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ConstructionConfig(**overrides)


def test_no_construction_specific_unit_rule() -> None:
    finding = only(evaluate(message(load_pct=120.0)), CRANE_LOAD)
    assert ConstructionModel().combine(finding, []) is None
