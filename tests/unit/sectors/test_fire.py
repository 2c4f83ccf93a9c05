"""Fire-safety key units (DOMAIN.md §2.3): controller-state tiers and GB 50974 minimum static pressure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.findings import Finding, normal
from chalicelib.domain.levels import Level
from chalicelib.domain.registry import DeviceRegistration, Setpoint, StaticFactors
from chalicelib.domain.sectors.fire import ALARM_SYSTEM, STATIC_PRESSURE, FireConfig, FireMessage, FireModel

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC).timestamp()
MIN = 60.0
NONE, BLUE, YELLOW, ORANGE, RED = Level.NONE, Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED


def registration(
    building_class: str | None = None,
    height_m: float | None = None,
    volume_m3: float | None = None,
    low_setpoint: float | None = None,
) -> DeviceRegistration:
    setpoints = {"static_pressure_mpa": Setpoint(l=low_setpoint)} if low_setpoint is not None else {}
    return DeviceRegistration(
        device_id="fire-1",
        enterprise_id="ent-1",
        enterprise_name="某商厦",
        sector="fire",
        unit_id="bldg-1",
        unit_name="1号楼",
        kind="fire_controller",
        setpoints=setpoints,
        static=StaticFactors(
            building_class=building_class, building_height_m=height_m, building_volume_m3=volume_m3
        ),
    )


def message(
    now_s: float, pressure: float | None = None, events: list[dict[str, Any]] | None = None
) -> FireMessage:
    metrics = {"static_pressure_mpa": pressure} if pressure is not None else {}
    return FireMessage.model_validate(
        {
            "device_id": "fire-1",
            "enterprise_id": "ent-1",
            "ts": datetime.fromtimestamp(now_s, tz=UTC).isoformat(),
            "sector": "fire",
            "metrics": metrics,
            "events": events or [],
        }
    )


def event(code: str, zone: str | None = None, point: str | None = None) -> dict[str, Any]:
    return {"code": code, "zone": zone, "point": point}


def only(findings: list[Finding], risk_type: str) -> Finding:
    matching = [finding for finding in findings if finding.risk_type == risk_type]
    assert len(matching) == 1, findings
    return matching[0]


class Controller:
    """A fire alarm controller feeding one model, keeping its scratch between messages."""

    def __init__(self, model: FireModel | None = None) -> None:
        self.model = model or FireModel()
        self.scratch: dict[str, Any] = {}
        self.reg = registration()

    def send(self, now_s: float, *events: dict[str, Any]) -> Finding:
        findings = self.model.evaluate(self.reg, message(now_s, events=list(events)), self.scratch, now_s)
        json.dumps(self.scratch)  # scratch stays JSON-compatible
        return only(findings, ALARM_SYSTEM)


def grade_pressure(
    pressure: float, reg: DeviceRegistration | None = None, model: FireModel | None = None
) -> Finding:
    findings = (model or FireModel()).evaluate(reg or registration(), message(T0, pressure=pressure), {}, T0)
    return only(findings, STATIC_PRESSURE)


# --- static pressure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("building_class", "height_m", "volume_m3", "expected_minimum"),
    [
        ("class1_highrise_public", None, None, 0.10),
        ("class1_highrise_public", 100.0, None, 0.10),
        ("class1_highrise_public", 100.5, None, 0.15),
        ("highrise_residential", 120.0, None, 0.07),
        ("class2_highrise_public", None, None, 0.07),
        ("multistorey_public", None, None, 0.07),
        ("industrial", None, None, 0.10),
        ("industrial", None, 20000.0, 0.10),
        ("industrial", None, 19999.0, 0.07),
        ("sprinkler", None, None, 0.10),
        ("municipal_hydrant", None, None, 0.14),
        (None, None, None, 0.10),
    ],
)
def test_minimum_static_pressure_follows_gb50974_by_building_class(
    building_class: str | None, height_m: float | None, volume_m3: float | None, expected_minimum: float
) -> None:
    reg = registration(building_class, height_m, volume_m3)
    assert FireModel().minimum_static_pressure(reg) == expected_minimum
    assert grade_pressure(expected_minimum, reg).level == BLUE
    assert grade_pressure(expected_minimum - 0.001, reg).level == YELLOW


@pytest.mark.parametrize(
    ("pressure", "expected"),
    [
        (0.30, NONE),
        (0.11, NONE),  # minimum + 10 % is not below it
        (0.1099, BLUE),
        (0.10, BLUE),  # at the minimum: not below it
        (0.0999, YELLOW),
        (0.05, YELLOW),  # half the minimum: not below it
        (0.0499, ORANGE),
        (0.01, ORANGE),  # at the empty-pipe bound
        (0.0099, RED),
        (0.0, RED),
    ],
)
def test_static_pressure_tiers_against_the_default_minimum(pressure: float, expected: Level) -> None:
    finding = grade_pressure(pressure)
    assert finding.level == expected
    if expected:
        assert finding.family == "pressure"
        assert finding.unit == "MPa"
        assert finding.value == pressure
        assert finding.params["minimum_mpa"] == 0.10
        assert not finding.immediate
        assert len(finding.title) <= 10


@pytest.mark.parametrize(
    ("pressure", "expected", "reason"),
    [
        (0.154, NONE, ""),  # minimum 0.14 + 10 %
        (0.1539, BLUE, "static_pressure_near_minimum"),
        (0.1399, YELLOW, "static_pressure_below_minimum"),
        (0.0699, ORANGE, "static_pressure_below_half_minimum"),
        (0.005, RED, "static_pressure_empty"),
    ],
)
def test_municipal_hydrant_tiers_scale_with_its_higher_minimum(
    pressure: float, expected: Level, reason: str
) -> None:
    finding = grade_pressure(pressure, registration("municipal_hydrant"))
    assert finding.level == expected
    if expected:
        assert finding.reason == reason


def test_registered_low_setpoint_overrides_the_building_class_minimum() -> None:
    reg = registration("municipal_hydrant", low_setpoint=0.20)
    assert FireModel().minimum_static_pressure(reg) == 0.20
    assert grade_pressure(0.19, reg).level == YELLOW
    assert grade_pressure(0.22, reg).level == NONE


def test_configured_default_minimum_applies_when_nothing_is_registered() -> None:
    model = FireModel(FireConfig(default_min_static_pressure_mpa=0.20, empty_pipe_mpa=0.02))
    assert grade_pressure(0.19, model=model).level == YELLOW
    assert grade_pressure(0.015, model=model).level == RED


def test_pressure_warning_holds_until_back_above_the_threshold_by_the_band() -> None:
    within_band = grade_pressure(0.112)
    assert (within_band.level, within_band.hold) == (NONE, BLUE)
    clear = grade_pressure(0.116)
    assert clear is normal(STATIC_PRESSURE)
    recovering = grade_pressure(0.101)
    assert (recovering.level, recovering.hold) == (BLUE, YELLOW)


def test_pressure_only_message_does_not_report_the_alarm_system() -> None:
    findings = FireModel().evaluate(registration(), message(T0, pressure=0.3), {}, T0)
    assert findings == [normal(STATIC_PRESSURE)]


# --- alarm controller: blue ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("fault", "controller_fault"),
        ("isolated", "controller_isolated"),
        ("supervisory", "controller_supervisory"),
    ],
)
def test_fault_isolated_or_supervisory_event_raises_blue(code: str, reason: str) -> None:
    finding = Controller().send(T0, event(code))
    assert (finding.level, finding.reason, finding.family) == (BLUE, reason, "fire_alarm")
    assert finding.hold == BLUE
    assert not finding.immediate


def test_blue_stands_for_the_hold_time_then_clears() -> None:
    controller = Controller()
    controller.send(T0, event("fault"))
    assert controller.send(T0 + 29 * MIN).level == BLUE
    assert controller.send(T0 + 30 * MIN) is normal(ALARM_SYSTEM)
    assert controller.scratch == {}


def test_reset_clears_a_standing_fault() -> None:
    controller = Controller()
    controller.send(T0, event("fault"))
    assert controller.send(T0 + MIN, event("reset")).level == NONE
    assert controller.send(T0 + 2 * MIN).level == NONE


def test_controller_heartbeat_with_nothing_standing_is_normal() -> None:
    assert Controller().send(T0) is normal(ALARM_SYSTEM)


# --- alarm controller: yellow (unconfirmed fire alarm) ---------------------------------------------------------


def test_single_fire_alarm_is_not_yet_a_warning_inside_the_confirmation_window() -> None:
    controller = Controller()
    assert controller.send(T0, event("fire_alarm", "Z1", "D1")).level == NONE
    assert controller.send(T0 + 179).level == NONE


def test_fire_alarm_not_reset_within_three_minutes_raises_yellow_on_a_later_message() -> None:
    controller = Controller()
    controller.send(T0, event("fire_alarm", "Z1", "D1"))
    finding = controller.send(T0 + 180)
    assert (finding.level, finding.reason) == (YELLOW, "fire_alarm_unconfirmed")
    assert finding.params["since_s"] == 180


def test_fire_alarm_reset_within_three_minutes_never_raises() -> None:
    controller = Controller()
    controller.send(T0, event("fire_alarm", "Z1", "D1"))
    controller.send(T0 + 120, event("reset"))
    assert controller.send(T0 + 240).level == NONE


def test_repeated_fire_alarm_from_one_point_keeps_its_first_alarm_time() -> None:
    controller = Controller()
    controller.send(T0, event("fire_alarm", "Z1", "D1"))
    controller.send(T0 + 170, event("fire_alarm", "Z1", "D1"))
    assert controller.send(T0 + 180).level == YELLOW


def test_confirmation_window_is_configurable() -> None:
    controller = Controller(FireModel(FireConfig(confirm_window_s=60)))
    controller.send(T0, event("fire_alarm", "Z1", "D1"))
    assert controller.send(T0 + 59).level == NONE
    assert controller.send(T0 + 60).level == YELLOW


def test_unreset_fire_alarm_is_forgotten_after_the_alarm_memory() -> None:
    controller = Controller()
    controller.send(T0, event("fire_alarm", "Z1", "D1"))
    assert controller.send(T0 + 59 * MIN).level == YELLOW
    assert controller.send(T0 + 60 * MIN).level == NONE
    assert controller.scratch == {}


# --- alarm controller: orange (two points in one zone) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("second_alarm", "delay_s", "expected"),
    [
        (event("fire_alarm", "Z1", "D2"), 0, ORANGE),
        (event("fire_alarm", "Z1", "D2"), 600, ORANGE),
        (event("fire_alarm", "Z1", "D2"), 601, YELLOW),  # too late to pair; the first alarm is unconfirmed
        (event("fire_alarm", "Z2", "D2"), 60, NONE),  # another zone
        (event("fire_alarm", "Z1", "D1"), 60, NONE),  # the same point again
        (event("fire_alarm", "Z1", None), 60, NONE),  # point unknown: not provably a second device
    ],
)
def test_second_point_in_the_same_zone_within_ten_minutes_raises_orange(
    second_alarm: dict[str, Any], delay_s: float, expected: Level
) -> None:
    controller = Controller()
    controller.send(T0, event("fire_alarm", "Z1", "D1"))
    finding = controller.send(T0 + delay_s, second_alarm)
    assert finding.level == expected
    if expected == ORANGE:
        assert finding.reason == "fire_alarm_two_points_one_zone"
        assert finding.immediate
        assert finding.params == {"zone": "Z1", "points": "D1,D2"}


def test_two_points_in_one_message_raise_orange_at_once() -> None:
    finding = Controller().send(T0, event("fire_alarm", "Z3", "A"), event("fire_alarm", "Z3", "B"))
    assert (finding.level, finding.immediate) == (ORANGE, True)


def test_orange_stands_on_heartbeats_until_reset() -> None:
    controller = Controller()
    controller.send(T0, event("fire_alarm", "Z1", "D1"), event("fire_alarm", "Z1", "D2"))
    assert controller.send(T0 + 20 * MIN).level == ORANGE
    assert controller.send(T0 + 21 * MIN, event("reset")).level == NONE
    assert controller.scratch == {}


def test_alarms_without_a_zone_count_as_one_controller_zone() -> None:
    finding = Controller().send(T0, event("fire_alarm", None, "D1"), event("fire_alarm", None, "D2"))
    assert finding.level == ORANGE


# --- alarm controller: red -------------------------------------------------------------------------------------


def test_confirmed_fire_raises_red_immediately_and_stands_until_reset() -> None:
    controller = Controller()
    finding = controller.send(T0, event("fire_confirmed", "Z1", "D1"))
    assert (finding.level, finding.reason, finding.immediate, finding.hold) == (RED, "fire_confirmed", True, RED)
    assert controller.send(T0 + 30 * MIN).level == RED
    assert controller.send(T0 + 31 * MIN, event("reset")).level == NONE


@pytest.mark.parametrize(
    ("first", "second", "gap_s", "expected"),
    [
        ("sprinkler_flow", "pressure_switch", 0, RED),
        ("sprinkler_flow", "pressure_switch", 120, RED),
        ("pressure_switch", "sprinkler_flow", 120, RED),
        ("sprinkler_flow", "pressure_switch", 121, NONE),
        ("sprinkler_flow", "sprinkler_flow", 10, NONE),
    ],
)
def test_sprinkler_flow_plus_pressure_switch_within_two_minutes_raises_red(
    first: str, second: str, gap_s: float, expected: Level
) -> None:
    controller = Controller()
    assert controller.send(T0, event(first)).level == NONE
    finding = controller.send(T0 + gap_s, event(second))
    assert finding.level == expected
    if expected == RED:
        assert (finding.reason, finding.immediate) == ("sprinkler_flow_and_pressure_switch", True)


def test_flow_and_pressure_switch_in_one_message_raise_red() -> None:
    assert Controller().send(T0, event("sprinkler_flow"), event("pressure_switch")).level == RED


def test_red_outranks_a_standing_fault_and_reset_clears_all_memory() -> None:
    controller = Controller()
    controller.send(T0, event("fault"), event("fire_alarm", "Z1", "D1"))
    assert controller.send(T0 + MIN, event("fire_confirmed")).level == RED
    controller.send(T0 + 2 * MIN, event("reset"))
    assert controller.send(T0 + 10 * MIN).level == NONE


def test_events_after_a_reset_in_the_same_message_still_count() -> None:
    controller = Controller()
    controller.send(T0, event("fire_confirmed"))
    assert controller.send(T0 + MIN, event("reset"), event("fault")).level == BLUE


# --- scratch hygiene -------------------------------------------------------------------------------------------


def test_remembered_alarms_are_capped_and_scratch_stays_small() -> None:
    controller = Controller()
    for index in range(40):
        controller.send(T0 + index, event("fire_alarm", f"Z{index:029d}", f"P{index:031d}"))
    assert len(controller.scratch["a"]["al"]) == FireConfig().max_remembered_alarms
    assert len(json.dumps(controller.scratch)) < 1024


def test_model_keeps_its_state_under_its_own_key_only() -> None:
    controller = Controller()
    controller.scratch["other"] = 1
    controller.send(T0, event("fire_confirmed"))
    controller.send(T0 + MIN, event("reset"))
    assert controller.scratch == {"other": 1}


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        FireConfig(bogus=1)  # type: ignore[call-arg]


def test_no_fire_specific_unit_rule() -> None:
    assert FireModel().combine(Controller().send(T0, event("fire_confirmed")), []) is None
