"""Hazardous-chemicals risk model: every row of DOMAIN.md §2.2, both sides of each boundary, and the unit rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.findings import Finding, UnitAlarm, normal
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import DeviceRegistration, Setpoint, StaticFactors
from chalicelib.domain.sectors.hazchem import HazchemConfig, HazchemMessage, HazchemModel

NOW = 1_717_207_200.0  # 2024-06-01 10:00 Asia/Shanghai
NONE, BLUE, YELLOW, ORANGE, RED = Level.NONE, Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED

TANK_SETPOINTS = {
    "level_pct": Setpoint(h=80, hh=90, l=20, ll=10),
    "temperature_c": Setpoint(h=50, hh=60, l=5, ll=0),
    "pressure_kpa": Setpoint(h=200, hh=250, l=20, ll=10),
}


def message(metrics: dict[str, Any] | None = None, events: tuple[str, ...] = ()) -> HazchemMessage:
    return HazchemMessage.model_validate(
        {
            "device_id": "GD-101",
            "enterprise_id": "ENT-1",
            "ts": "2024-06-01T10:00:00+08:00",
            "sector": "hazchem",
            "metrics": metrics or {},
            "events": [{"code": code} for code in events],
        }
    )


def registration(setpoints: dict[str, Setpoint] | None = None, oel_ppm: float | None = None) -> DeviceRegistration:
    return DeviceRegistration(
        device_id="GD-101",
        enterprise_id="ENT-1",
        enterprise_name="滨海化工",
        sector=Sector.HAZCHEM,
        unit_id="TANK-FARM-1",
        unit_name="一号罐区",
        point_name="V-101储罐",
        kind="tank",
        setpoints=setpoints or {},
        static=StaticFactors(oel_ppm=oel_ppm),
    )


def grade(
    metrics: dict[str, Any] | None = None,
    events: tuple[str, ...] = (),
    reg: DeviceRegistration | None = None,
    model: HazchemModel | None = None,
) -> dict[str, Finding]:
    findings = (model or HazchemModel()).evaluate(reg or registration(), message(metrics, events), {}, NOW)
    by_type = {finding.risk_type: finding for finding in findings}
    assert len(by_type) == len(findings), "one finding per risk type"
    return by_type


def alarm(
    tag: str, risk_type: str = "combustible_gas", device_id: str = "GD-102", level: int = YELLOW
) -> UnitAlarm:
    return UnitAlarm(device_id, risk_type, "gas", tag, level, NOW - 60)


# --- combustible gas -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lel_pct", "level", "reason"),
    [
        (0.0, NONE, ""),
        (9.9, NONE, ""),
        (10.0, BLUE, "gas_elevated"),
        (24.9, BLUE, "gas_elevated"),
        (25.0, YELLOW, "gas_level1"),
        (49.9, YELLOW, "gas_level1"),
        (50.0, ORANGE, "gas_level2"),
        (100.0, ORANGE, "gas_level2"),
    ],
)
def test_combustible_gas_is_graded_against_gbt50493_default_setpoints(lel_pct, level, reason):
    finding = grade({"gas_lel_pct": lel_pct})["combustible_gas"]
    assert (finding.level, finding.reason) == (level, reason)


@pytest.mark.parametrize(
    ("setpoint", "lel_pct", "level"),
    [
        (Setpoint(l1=20, l2=40), 19.9, BLUE),
        (Setpoint(l1=20, l2=40), 20.0, YELLOW),
        (Setpoint(l1=20, l2=40), 39.9, YELLOW),
        (Setpoint(l1=20, l2=40), 40.0, ORANGE),
        (Setpoint(l1=20), 49.9, YELLOW),  # level-2 falls back to the default 50 %LEL
        (Setpoint(l1=20), 50.0, ORANGE),
        (Setpoint(l2=30), 24.9, BLUE),  # level-1 falls back to the default 25 %LEL
        (Setpoint(l2=30), 30.0, ORANGE),
    ],
)
def test_registered_gas_setpoints_override_the_defaults(setpoint, lel_pct, level):
    reg = registration({"gas_lel_pct": setpoint})
    assert grade({"gas_lel_pct": lel_pct}, reg=reg)["combustible_gas"].level == level


def test_gas_tiers_follow_the_stage_config():
    model = HazchemModel(HazchemConfig(gas_blue_lel_pct=5, gas_l1_lel_pct=20, gas_l2_lel_pct=40))
    levels = [grade({"gas_lel_pct": value}, model=model)["combustible_gas"].level for value in (4.9, 5, 20, 40)]
    assert levels == [NONE, BLUE, YELLOW, ORANGE]


def test_gas_alarm_carries_what_the_sms_and_unit_rules_need():
    finding = grade({"gas_lel_pct": 52.0})["combustible_gas"]
    assert finding.title == "可燃气体二级报警"
    assert (finding.value, finding.unit, finding.family, finding.tag) == (52.0, "%LEL", "gas", "gas_l2")
    assert finding.params == {"blue": 10.0, "l1": 25.0, "l2": 50.0}
    assert finding.immediate is False  # analog: the engine applies the duration rule


@pytest.mark.parametrize(("lel_pct", "tag"), [(12.0, ""), (30.0, "gas_l1"), (60.0, "gas_l2")])
def test_gas_tags_mark_the_alarm_level_for_unit_rules(lel_pct, tag):
    assert grade({"gas_lel_pct": lel_pct})["combustible_gas"].tag == tag


@pytest.mark.parametrize(
    ("lel_pct", "level", "hold"),
    [
        (7.9, NONE, NONE),  # more than the 2 %LEL band below blue: nothing held
        (8.0, NONE, BLUE),  # back below blue but within the band: a blue warning stays
        (23.5, BLUE, YELLOW),
        (48.0, YELLOW, ORANGE),
        (47.9, YELLOW, YELLOW),
    ],
)
def test_gas_warning_falls_only_below_threshold_minus_band(lel_pct, level, hold):
    finding = grade({"gas_lel_pct": lel_pct})["combustible_gas"]
    assert (finding.level, finding.effective_hold) == (level, hold)


def test_normal_gas_reading_returns_the_shared_normal_findings():
    findings = grade({"gas_lel_pct": 2.0})
    assert findings["combustible_gas"] is normal("combustible_gas")
    assert findings["gas_detector_fault"] is normal("gas_detector_fault")
    assert set(findings) == {"combustible_gas", "gas_detector_fault"}


# --- detector fault --------------------------------------------------------------------------------------------


def test_detector_fault_raises_blue_at_once():
    finding = grade(events=("detector_fault",))["gas_detector_fault"]
    assert (finding.level, finding.effective_hold, finding.immediate) == (BLUE, BLUE, True)
    assert finding.reason == "detector_fault"


def test_detector_reporting_a_reading_without_fault_clears_the_fault():
    assert grade({"toxic_ppm": 0.0})["gas_detector_fault"] is normal("gas_detector_fault")


def test_tank_gauge_message_does_not_bear_on_gas_detector_fault():
    assert "gas_detector_fault" not in grade({"level_pct": 50.0}, reg=registration(TANK_SETPOINTS))


def test_fault_and_reading_in_one_message_are_both_graded():
    findings = grade({"gas_lel_pct": 30.0}, events=("detector_fault",))
    assert (findings["combustible_gas"].level, findings["gas_detector_fault"].level) == (YELLOW, BLUE)


# --- toxic gas -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ppm", "level", "reason"),
    [
        (4.9, NONE, ""),
        (5.0, BLUE, "toxic_elevated"),  # 50 % OEL
        (9.9, BLUE, "toxic_elevated"),
        (10.0, YELLOW, "toxic_level1"),  # 100 % OEL
        (19.9, YELLOW, "toxic_level1"),
        (20.0, ORANGE, "toxic_level2"),  # 200 % OEL
        (500.0, ORANGE, "toxic_level2"),
    ],
)
def test_toxic_gas_is_graded_against_the_registered_oel(ppm, level, reason):
    finding = grade({"toxic_ppm": ppm}, reg=registration(oel_ppm=10.0))["toxic_gas"]
    assert (finding.level, finding.reason) == (level, reason)


@pytest.mark.parametrize(
    ("ppm", "level"),
    [(14.9, NONE), (15.0, BLUE), (29.9, BLUE), (30.0, YELLOW), (59.9, YELLOW), (60.0, ORANGE)],
)
def test_toxic_oel_from_the_registration_scales_every_tier(ppm, level):
    assert grade({"toxic_ppm": ppm}, reg=registration(oel_ppm=30.0))["toxic_gas"].level == level


@pytest.mark.parametrize(
    ("ppm", "level"),
    [(3.9, NONE), (4.0, BLUE), (7.9, BLUE), (8.0, YELLOW), (15.9, YELLOW), (16.0, ORANGE)],
)
def test_toxic_setpoints_without_oel_take_level_one_as_the_oel(ppm, level):
    reg = registration({"toxic_ppm": Setpoint(l1=8, l2=16)})
    assert grade({"toxic_ppm": ppm}, reg=reg)["toxic_gas"].level == level


def test_toxic_level_two_only_setpoint_derives_the_oel_from_it():
    reg = registration({"toxic_ppm": Setpoint(l2=40)})  # OEL = 40 / 200 % = 20 ppm
    levels = [grade({"toxic_ppm": ppm}, reg=reg)["toxic_gas"].level for ppm in (9.9, 10, 20, 40)]
    assert levels == [NONE, BLUE, YELLOW, ORANGE]


def test_registered_toxic_setpoints_win_over_oel_multiples():
    reg = registration({"toxic_ppm": Setpoint(l1=6, l2=12)}, oel_ppm=10.0)
    levels = [grade({"toxic_ppm": ppm}, reg=reg)["toxic_gas"].level for ppm in (4.9, 5, 6, 12)]
    assert levels == [NONE, BLUE, YELLOW, ORANGE]


@pytest.mark.parametrize(("ppm", "level"), [(4.9, NONE), (5.0, BLUE), (10.0, YELLOW), (20.0, ORANGE)])
def test_unregistered_toxic_detector_uses_the_config_default_oel(ppm, level):
    assert grade({"toxic_ppm": ppm})["toxic_gas"].level == level


def test_toxic_detector_is_not_graded_when_the_default_oel_is_switched_off():
    model = HazchemModel(HazchemConfig(default_oel_ppm=None))
    assert grade({"toxic_ppm": 5000.0}, model=model)["toxic_gas"] is normal("toxic_gas")


def test_toxic_level_two_is_tagged_and_carries_the_oel():
    finding = grade({"toxic_ppm": 25.0}, reg=registration(oel_ppm=10.0))["toxic_gas"]
    assert (finding.tag, finding.family, finding.unit, finding.title) == (
        "toxic_l2",
        "toxic",
        "ppm",
        "有毒气体二级报警",
    )
    assert finding.params["oel_ppm"] == 10.0


def test_toxic_warning_holds_within_ten_percent_of_oel():
    finding = grade({"toxic_ppm": 9.0}, reg=registration(oel_ppm=10.0))["toxic_gas"]
    assert (finding.level, finding.effective_hold) == (BLUE, YELLOW)


# --- oxygen ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("o2", "level", "reason"),
    [
        (0.0, YELLOW, "oxygen_low"),
        (19.4, YELLOW, "oxygen_low"),
        (19.5, NONE, ""),
        (20.9, NONE, ""),
        (23.5, NONE, ""),
        (23.6, YELLOW, "oxygen_high"),
        (30.0, YELLOW, "oxygen_high"),
    ],
)
def test_oxygen_outside_19_5_to_23_5_is_yellow_and_never_more(o2, level, reason):
    finding = grade({"o2_pct_vol": o2})["oxygen"]
    assert (finding.level, finding.reason) == (level, reason)


@pytest.mark.parametrize(("o2", "hold"), [(19.6, YELLOW), (19.8, NONE), (23.4, YELLOW), (23.2, NONE)])
def test_oxygen_warning_holds_within_the_band(o2, hold):
    finding = grade({"o2_pct_vol": o2})["oxygen"]
    assert (finding.level, finding.effective_hold) == (NONE, hold)


def test_normal_oxygen_is_the_shared_normal_finding():
    assert grade({"o2_pct_vol": 20.9})["oxygen"] is normal("oxygen")


# --- tank level / temperature / pressure -----------------------------------------------------------------------

TANK_ROWS = [
    # metric, value, risk type, level, reason
    ("level_pct", 71.9, "tank_level", NONE, ""),
    ("level_pct", 72.0, "tank_level", BLUE, "tank_level_near_h"),  # 90 % of H = 80
    ("level_pct", 79.9, "tank_level", BLUE, "tank_level_near_h"),
    ("level_pct", 80.0, "tank_level", YELLOW, "tank_level_h"),
    ("level_pct", 89.9, "tank_level", YELLOW, "tank_level_h"),
    ("level_pct", 90.0, "tank_level", ORANGE, "tank_level_hh"),
    ("level_pct", 20.1, "tank_level", NONE, ""),
    ("level_pct", 20.0, "tank_level", YELLOW, "tank_level_l"),
    ("level_pct", 10.1, "tank_level", YELLOW, "tank_level_l"),
    ("level_pct", 10.0, "tank_level", ORANGE, "tank_level_ll"),
    ("temperature_c", 44.9, "tank_temperature", NONE, ""),
    ("temperature_c", 45.0, "tank_temperature", BLUE, "tank_temperature_near_h"),
    ("temperature_c", 50.0, "tank_temperature", YELLOW, "tank_temperature_h"),
    ("temperature_c", 59.9, "tank_temperature", YELLOW, "tank_temperature_h"),
    ("temperature_c", 60.0, "tank_temperature", ORANGE, "tank_temperature_hh"),
    ("temperature_c", 5.1, "tank_temperature", NONE, ""),
    ("temperature_c", 5.0, "tank_temperature", YELLOW, "tank_temperature_l"),
    ("temperature_c", 0.0, "tank_temperature", ORANGE, "tank_temperature_ll"),
    ("pressure_kpa", 179.9, "tank_pressure", NONE, ""),
    ("pressure_kpa", 180.0, "tank_pressure", BLUE, "tank_pressure_near_h"),
    ("pressure_kpa", 200.0, "tank_pressure", YELLOW, "tank_pressure_h"),
    ("pressure_kpa", 249.9, "tank_pressure", YELLOW, "tank_pressure_h"),
    ("pressure_kpa", 250.0, "tank_pressure", ORANGE, "tank_pressure_hh"),
    ("pressure_kpa", 20.1, "tank_pressure", NONE, ""),
    ("pressure_kpa", 20.0, "tank_pressure", YELLOW, "tank_pressure_l"),
    ("pressure_kpa", 10.1, "tank_pressure", YELLOW, "tank_pressure_l"),
    ("pressure_kpa", 10.0, "tank_pressure", ORANGE, "tank_pressure_ll"),
]


@pytest.mark.parametrize(("metric", "value", "risk_type", "level", "reason"), TANK_ROWS)
def test_tank_parameters_are_graded_against_the_dcs_setpoints(metric, value, risk_type, level, reason):
    finding = grade({metric: value}, reg=registration(TANK_SETPOINTS))[risk_type]
    assert (finding.level, finding.reason) == (level, reason)


@pytest.mark.parametrize(
    ("metric", "risk_type", "family", "unit", "title"),
    [
        ("level_pct", "tank_level", "level", "%", "液位高高报"),
        ("temperature_c", "tank_temperature", "temperature", "°C", "温度高高报"),
        ("pressure_kpa", "tank_pressure", "pressure", "kPa", "压力高高报"),
    ],
)
def test_tank_hh_is_tagged_per_parameter_family(metric, risk_type, family, unit, title):
    value = TANK_SETPOINTS[metric].hh
    finding = grade({metric: value}, reg=registration(TANK_SETPOINTS))[risk_type]
    assert (finding.family, finding.unit, finding.title, finding.tag) == (family, unit, title, "hh")
    assert finding.params == {"threshold": value}


@pytest.mark.parametrize("metric", ["level_pct", "temperature_c", "pressure_kpa"])
def test_tank_gauge_without_registered_setpoints_is_not_graded(metric):
    findings = grade({metric: 100.0})
    assert len(findings) == 1
    assert next(iter(findings.values())).level == NONE


def test_hh_with_the_interlock_not_acting_is_red():
    finding = grade({"level_pct": 91.0, "interlock_ok": False}, reg=registration(TANK_SETPOINTS))["tank_level"]
    assert (finding.level, finding.reason, finding.title) == (
        RED,
        "tank_level_hh_interlock_failed",
        "液位高高报联锁未动作",
    )
    assert finding.tag == "hh"


@pytest.mark.parametrize("interlock_ok", [True, None])
def test_hh_with_the_interlock_acting_or_unknown_stays_orange(interlock_ok):
    metrics = {"level_pct": 91.0, "interlock_ok": interlock_ok}
    assert grade(metrics, reg=registration(TANK_SETPOINTS))["tank_level"].level == ORANGE


@pytest.mark.parametrize(("value", "level"), [(85.0, YELLOW), (5.0, ORANGE)])
def test_interlock_failure_below_hh_or_at_ll_adds_nothing(value, level):
    metrics = {"level_pct": value, "interlock_ok": False}
    assert grade(metrics, reg=registration(TANK_SETPOINTS))["tank_level"].level == level


def test_two_parameters_at_hh_in_one_message_raise_both_red():
    findings = grade({"level_pct": 90.0, "pressure_kpa": 260.0}, reg=registration(TANK_SETPOINTS))
    assert findings["tank_level"].level == findings["tank_pressure"].level == RED
    assert findings["tank_pressure"].reason == "tank_pressure_hh_multi"
    assert findings["tank_pressure"].params["hh_count"] == 2


def test_one_parameter_at_hh_and_another_at_h_stay_orange_and_yellow():
    findings = grade({"level_pct": 90.0, "pressure_kpa": 249.9}, reg=registration(TANK_SETPOINTS))
    assert (findings["tank_level"].level, findings["tank_pressure"].level) == (ORANGE, YELLOW)


def test_hh_and_ll_in_one_message_are_not_two_parameters_at_hh():
    findings = grade({"level_pct": 90.0, "temperature_c": -1.0}, reg=registration(TANK_SETPOINTS))
    assert (findings["tank_level"].level, findings["tank_temperature"].level) == (ORANGE, ORANGE)


@pytest.mark.parametrize(
    ("value", "level", "hold"),
    [
        (89.0, YELLOW, ORANGE),  # band = 2 % of H (1.6) > the 0.5 floor
        (88.3, YELLOW, YELLOW),
        (78.5, BLUE, YELLOW),
        (70.5, NONE, BLUE),
        (70.3, NONE, NONE),
        (20.4, NONE, YELLOW),  # low side: band = max(0.5, 2 % of L = 0.4)
        (20.6, NONE, NONE),
        (10.5, YELLOW, ORANGE),
    ],
)
def test_tank_warning_holds_within_the_band(value, level, hold):
    finding = grade({"level_pct": value}, reg=registration(TANK_SETPOINTS))["tank_level"]
    assert (finding.level, finding.effective_hold) == (level, hold)


def test_hh_within_band_with_failed_interlock_holds_red():
    finding = grade({"level_pct": 89.5, "interlock_ok": False}, reg=registration(TANK_SETPOINTS))["tank_level"]
    assert (finding.level, finding.effective_hold) == (YELLOW, RED)


def test_only_hh_registered_grades_orange_without_blue_or_yellow():
    reg = registration({"level_pct": Setpoint(hh=90)})
    levels = [grade({"level_pct": value}, reg=reg)["tank_level"].level for value in (85.0, 89.9, 90.0)]
    assert levels == [NONE, NONE, ORANGE]


def test_blue_needs_a_positive_h_setpoint():
    reg = registration({"temperature_c": Setpoint(h=-150, hh=-140)})  # cryogenic tank
    assert grade({"temperature_c": -160.0}, reg=reg)["tank_temperature"].level == NONE
    assert grade({"temperature_c": -150.0}, reg=reg)["tank_temperature"].level == YELLOW


def test_tank_near_h_fraction_follows_the_config():
    model = HazchemModel(HazchemConfig(tank_blue_h_fraction=0.8))
    reg = registration(TANK_SETPOINTS)
    assert grade({"level_pct": 64.0}, reg=reg, model=model)["tank_level"].level == BLUE
    assert grade({"level_pct": 63.0}, reg=reg, model=model)["tank_level"].level == NONE


def test_changed_registration_setpoints_take_effect():
    model = HazchemModel()
    assert grade({"level_pct": 86.0}, reg=registration(TANK_SETPOINTS), model=model)["tank_level"].level == YELLOW
    raised = registration({"level_pct": Setpoint(h=95, hh=98)})
    assert grade({"level_pct": 86.0}, reg=raised, model=model)["tank_level"].level == BLUE


def test_normal_tank_readings_are_shared_normal_findings():
    findings = grade(
        {"level_pct": 50.0, "temperature_c": 25.0, "pressure_kpa": 100.0, "interlock_ok": True},
        reg=registration(TANK_SETPOINTS),
    )
    assert findings == {
        "tank_level": normal("tank_level"),
        "tank_temperature": normal("tank_temperature"),
        "tank_pressure": normal("tank_pressure"),
    }
    assert all(finding is normal(finding.risk_type) for finding in findings.values())


# --- unit rules (combine) --------------------------------------------------------------------------------------


def finding_for(metrics: dict[str, Any], risk_type: str) -> Finding:
    return grade(metrics, reg=registration(TANK_SETPOINTS, oel_ppm=10.0))[risk_type]


GAS_L1 = {"gas_lel_pct": 30.0}
GAS_L2 = {"gas_lel_pct": 55.0}
TOXIC_L2 = {"toxic_ppm": 25.0}
LEVEL_HH = {"level_pct": 92.0}


@pytest.mark.parametrize(
    ("metrics", "risk_type", "others", "expected"),
    [
        (GAS_L1, "combustible_gas", [alarm("gas_l1")], (ORANGE, "gas_level1_two_detectors")),
        (GAS_L1, "combustible_gas", [alarm("gas_l2", level=ORANGE)], (ORANGE, "gas_level1_two_detectors")),
        (GAS_L1, "combustible_gas", [], None),
        (GAS_L1, "combustible_gas", [alarm("", level=BLUE)], None),
        (GAS_L1, "combustible_gas", [alarm("hh", "tank_level")], None),
        (GAS_L2, "combustible_gas", [alarm("gas_l2", level=ORANGE)], (RED, "gas_level2_two_detectors")),
        (GAS_L2, "combustible_gas", [alarm("gas_l1")], None),
        (GAS_L2, "combustible_gas", [alarm("hh", "tank_level", "TK-7")], (RED, "gas_level2_with_process_hh")),
        (GAS_L2, "combustible_gas", [alarm("toxic_l2", "toxic_gas")], None),
        (TOXIC_L2, "toxic_gas", [alarm("toxic_l2", "toxic_gas")], (RED, "toxic_level2_two_detectors")),
        (TOXIC_L2, "toxic_gas", [alarm("gas_l2")], None),
        (LEVEL_HH, "tank_level", [alarm("hh", "tank_pressure", "GD-101")], (RED, "process_hh_with_other_hh")),
        (LEVEL_HH, "tank_level", [alarm("hh", "tank_level", "TK-7")], (RED, "process_hh_with_other_hh")),
        (LEVEL_HH, "tank_level", [alarm("gas_l2", level=ORANGE)], (RED, "process_hh_with_gas_level2")),
        (LEVEL_HH, "tank_level", [alarm("gas_l1")], None),
        ({"gas_lel_pct": 12.0}, "combustible_gas", [alarm("gas_l2", level=ORANGE)], None),
        ({"level_pct": 85.0}, "tank_level", [alarm("hh", "tank_pressure")], None),
    ],
)
def test_unit_rules_of_the_hazchem_table(metrics, risk_type, others, expected):
    model = HazchemModel()
    combination = model.combine(finding_for(metrics, risk_type), others)
    assert (None if combination is None else (combination.level, combination.reason)) == expected


def test_second_detector_at_level_two_raises_red():
    model = HazchemModel()
    first = finding_for(GAS_L2, "combustible_gas")
    second_detector = UnitAlarm("GD-102", first.risk_type, first.family, first.tag, first.level, NOW - 30)
    combination = model.combine(first, [second_detector])
    assert combination is not None and combination.level == RED


def test_combine_never_touches_a_finding_that_is_already_red():
    red = finding_for({"level_pct": 92.0, "interlock_ok": False}, "tank_level")
    assert red.level == RED
    assert HazchemModel().combine(red, [alarm("gas_l2", level=ORANGE)]) is None


# --- contract --------------------------------------------------------------------------------------------------


def test_model_is_registered_for_its_sector_and_declares_its_stuck_metrics():
    model = Sector.HAZCHEM.spec.build()
    assert type(model) is HazchemModel
    assert Sector.HAZCHEM.spec.message is HazchemMessage
    assert model.stuck_metrics == ("level_pct", "temperature_c", "pressure_kpa")


def test_empty_message_bears_on_nothing():
    assert grade() == {}


@pytest.mark.parametrize(
    "overrides",
    [
        {"gas_blue_lel_pct": 30.0},
        {"gas_l1_lel_pct": 60.0},
        {"toxic_l2_oel_fraction": 0.9},
        {"oxygen_low_pct_vol": 24.0},
        {"tank_blue_h_fraction": 1.2},
        {"unknown_field": 1},
    ],
)
def test_config_rejects_inconsistent_or_unknown_values(overrides):
    with pytest.raises(ValidationError):
        HazchemConfig(**overrides)


def test_config_is_frozen():
    config = HazchemConfig()
    with pytest.raises(ValidationError):
        config.gas_l1_lel_pct = 20.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("metrics", "events"),
    [
        ({"gas_lel_pct": 15.0}, ()),
        ({"gas_lel_pct": 30.0}, ()),
        ({"gas_lel_pct": 60.0}, ("detector_fault",)),
        ({"toxic_ppm": 6.0}, ()),
        ({"toxic_ppm": 12.0}, ()),
        ({"toxic_ppm": 25.0}, ()),
        ({"o2_pct_vol": 18.0}, ()),
        ({"o2_pct_vol": 25.0}, ()),
        ({"level_pct": 75.0, "temperature_c": 52.0, "pressure_kpa": 15.0}, ()),
        ({"level_pct": 95.0, "temperature_c": 61.0, "pressure_kpa": 5.0, "interlock_ok": False}, ()),
        ({"level_pct": 95.0, "pressure_kpa": 260.0}, ()),
    ],
)
def test_every_alarm_has_a_short_chinese_title_reason_and_params(metrics, events):
    findings = grade(metrics, events, reg=registration(TANK_SETPOINTS, oel_ppm=10.0))
    alarms = [finding for finding in findings.values() if finding.level > NONE]
    assert alarms
    for finding in alarms:
        assert finding.reason and finding.family
        assert 0 < len(finding.title) <= 10
        assert finding.effective_hold >= finding.level
        if finding.risk_type != "gas_detector_fault":
            assert finding.params and finding.unit and finding.value is not None
