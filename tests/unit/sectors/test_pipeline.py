"""Pipeline risk model (chem and oil/gas): every row of DOMAIN.md §2.5, both sides of each boundary, the memory
rules (sudden drop, third-party hold, intrusion plus pressure drop) and the unit rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.findings import Finding, UnitAlarm, normal
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import DeviceRegistration, Setpoint
from chalicelib.domain.sectors.pipeline import (
    ChemPipelineMessage,
    OilGasPipelineMessage,
    PipelineConfig,
    PipelineModel,
)

NOW = 1_717_207_200.0  # 2024-06-01 10:00 Asia/Shanghai
NONE, BLUE, YELLOW, ORANGE, RED = Level.NONE, Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED

LINE_SETPOINTS = {
    "pressure_mpa": Setpoint(normal=8.0, maop=9.6),
    "flow_m3h": Setpoint(normal=400.0),
}


def message(
    metrics: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    sector: Sector = Sector.CHEM_PIPELINE,
) -> ChemPipelineMessage | OilGasPipelineMessage:
    payload = {
        "device_id": "PL-7",
        "enterprise_id": "ENT-2",
        "ts": "2024-06-01T10:00:00+08:00",
        "sector": sector.value,
        "metrics": metrics or {},
        "events": events or [],
    }
    if sector == Sector.OIL_GAS_PIPELINE:
        return OilGasPipelineMessage.model_validate(payload)
    return ChemPipelineMessage.model_validate(payload)


def registration(
    setpoints: dict[str, Setpoint] | None = None, sector: Sector = Sector.CHEM_PIPELINE
) -> DeviceRegistration:
    return DeviceRegistration(
        device_id="PL-7",
        enterprise_id="ENT-2",
        enterprise_name="渤海管道",
        sector=sector,
        unit_id="SEG-3",
        unit_name="三号管段",
        point_name="K12+300",
        kind="pipeline_rtu",
        setpoints=setpoints if setpoints is not None else LINE_SETPOINTS,
    )


def third_party(kind: str | None, distance_m: float | None = None, permit: bool = False) -> dict[str, Any]:
    event: dict[str, Any] = {"code": "third_party", "permit": permit}
    if kind is not None:
        event["kind"] = kind
    if distance_m is not None:
        event["distance_m"] = distance_m
    return event


class Line:
    """One pipeline device fed message after message, keeping its scratch like the engine does."""

    def __init__(self, model: PipelineModel | None = None, setpoints: dict[str, Setpoint] | None = None) -> None:
        self.model = model or PipelineModel(Sector.CHEM_PIPELINE)
        self.reg = registration(setpoints)
        self.scratch: dict[str, Any] = {}

    def send(
        self, at_s: float, metrics: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None
    ) -> dict[str, Finding]:
        findings = self.model.evaluate(self.reg, message(metrics, events), self.scratch, NOW + at_s)
        by_type = {finding.risk_type: finding for finding in findings}
        assert len(by_type) == len(findings), "one finding per risk type"
        return by_type


def grade(
    metrics: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    setpoints: dict[str, Setpoint] | None = None,
    model: PipelineModel | None = None,
) -> dict[str, Finding]:
    return Line(model, setpoints).send(0.0, metrics, events)


# --- third-party activity --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "distance_m", "permit", "level", "reason"),
    [
        # blue: blasting or excavation 50–200 m without a permit
        ("blasting", 200.0, False, BLUE, "third_party_unpermitted"),
        ("blasting", 200.1, False, NONE, ""),
        ("blasting", 50.1, False, BLUE, "third_party_unpermitted"),
        ("excavation", 120.0, False, BLUE, "third_party_unpermitted"),
        ("blasting", 120.0, True, NONE, ""),
        ("excavation", 120.0, True, NONE, ""),
        ("machinery", 120.0, False, NONE, ""),
        ("works", 120.0, False, NONE, ""),
        # yellow: any works 5–50 m
        ("works", 50.0, False, YELLOW, "third_party_works_zone"),
        ("works", 50.1, False, NONE, ""),
        ("works", 5.1, False, YELLOW, "third_party_works_zone"),
        ("machinery", 50.0, False, YELLOW, "third_party_works_zone"),
        ("excavation", 30.0, False, YELLOW, "third_party_works_zone"),
        ("blasting", 50.0, False, YELLOW, "third_party_works_zone"),
        ("works", 30.0, True, YELLOW, "third_party_works_zone"),
        ("machinery", 5.1, False, YELLOW, "third_party_works_zone"),
        ("works", 3.0, False, YELLOW, "third_party_works_zone"),  # "works" is not a listed act
        # orange: machinery, digging or drilling ≤ 5 m
        ("machinery", 5.0, False, ORANGE, "third_party_near_zone"),
        ("digging", 5.0, False, ORANGE, "third_party_near_zone"),
        ("drilling", 0.0, False, ORANGE, "third_party_near_zone"),
        ("digging", 5.1, False, YELLOW, "third_party_works_zone"),
        ("excavation", 4.0, True, ORANGE, "third_party_near_zone"),
        # red: damage
        ("damage", 0.0, False, RED, "third_party_damage"),
        ("damage", None, False, RED, "third_party_damage"),
        # policy: an intrusion alone is yellow; with a pressure drop it is red (tested below)
        ("intrusion", 2.0, False, YELLOW, "third_party_intrusion"),
        # no distance: assumed at the works-zone edge
        ("machinery", None, False, YELLOW, "third_party_works_zone"),
        ("blasting", None, False, YELLOW, "third_party_works_zone"),
        # no kind: generic works
        (None, 30.0, False, YELLOW, "third_party_works_zone"),
        (None, 3.0, False, YELLOW, "third_party_works_zone"),
    ],
)
def test_third_party_activity_is_graded_by_kind_distance_and_permit(kind, distance_m, permit, level, reason):
    finding = grade(events=[third_party(kind, distance_m, permit)])["third_party"]
    assert (finding.level, finding.reason) == (level, reason)
    if level:
        assert finding.immediate and finding.effective_hold == level
        assert finding.family == "third_party"
        assert 0 < len(finding.title) <= 10


def test_third_party_titles_name_the_zone_and_activity():
    titles = [
        grade(events=[third_party(kind, distance)])["third_party"].title
        for kind, distance in [("blasting", 150.0), ("works", 30.0), ("machinery", 2.0), ("damage", 0.0)]
    ]
    assert titles == ["200米内爆破未审批", "50米内施工", "5米内机械作业", "管道遭第三方破坏"]


def test_the_worst_of_several_third_party_events_wins():
    events = [third_party("works", 40.0), third_party("drilling", 1.0), third_party("blasting", 150.0)]
    finding = grade(events=events)["third_party"]
    assert (finding.level, finding.params["kind"], finding.value) == (ORANGE, "drilling", 1.0)


def test_permit_can_clear_the_works_zone_by_config():
    model = PipelineModel(Sector.CHEM_PIPELINE, PipelineConfig(permit_clears_works_zone=True))
    assert grade(events=[third_party("works", 30.0, permit=True)], model=model)["third_party"].level == NONE
    assert grade(events=[third_party("works", 30.0)], model=model)["third_party"].level == YELLOW


def test_zone_distances_and_kinds_follow_the_config():
    config = PipelineConfig(near_zone_m=10.0, near_zone_orange_kinds=frozenset({"machinery", "works"}))
    model = PipelineModel(Sector.CHEM_PIPELINE, config)
    assert grade(events=[third_party("works", 8.0)], model=model)["third_party"].level == ORANGE
    assert grade(events=[third_party("digging", 8.0)], model=model)["third_party"].level == YELLOW


def test_intrusion_level_follows_the_config():
    model = PipelineModel(Sector.CHEM_PIPELINE, PipelineConfig(intrusion_level=Level.ORANGE))
    assert grade(events=[third_party("intrusion")], model=model)["third_party"].level == ORANGE


def test_third_party_level_is_held_for_thirty_minutes_after_the_event_then_recovers():
    line = Line()
    assert line.send(0, events=[third_party("machinery", 3.0)])["third_party"].level == ORANGE
    during = line.send(1799, {"pressure_mpa": 8.0})["third_party"]
    assert (during.level, during.effective_hold, during.reason) == (ORANGE, ORANGE, "third_party_hold")
    assert during.immediate is False  # kept, not a new event
    assert line.send(1800, {"pressure_mpa": 8.0})["third_party"] is normal("third_party")
    assert "third_party" not in line.send(1860, {"pressure_mpa": 8.0})
    assert line.scratch.keys() <= {"pv", "pt"}


def test_a_later_lesser_event_keeps_the_higher_level_held():
    line = Line()
    line.send(0, events=[third_party("damage")])
    later = line.send(600, events=[third_party("works", 30.0)])["third_party"]
    assert (later.level, later.effective_hold) == (YELLOW, RED)
    assert line.send(600 + 1799, {})["third_party"].effective_hold == RED


def test_event_that_raises_nothing_keeps_the_standing_hold_without_extending_it():
    line = Line()
    line.send(0, events=[third_party("works", 30.0)])
    quiet = line.send(900, events=[third_party("blasting", 150.0, permit=True)])["third_party"]
    assert (quiet.level, quiet.reason) == (YELLOW, "third_party_hold")
    assert line.send(1800, {})["third_party"] is normal("third_party")


def test_messages_without_third_party_history_do_not_bear_on_it():
    assert set(grade({"pressure_mpa": 8.0, "flow_m3h": 400.0})) == {"pressure", "flow"}


# --- intrusion plus pressure drop (same device, scratch) --------------------------------------------------------


def test_intrusion_after_a_pressure_drop_within_ten_minutes_is_red():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0})
    assert line.send(60, {"pressure_mpa": 6.5})["pressure"].reason == "pressure_sudden_drop"
    finding = line.send(60 + 600, events=[third_party("intrusion", 1.0)])["third_party"]
    assert (finding.level, finding.reason, finding.immediate) == (RED, "intrusion_with_pressure_drop", True)


def test_intrusion_more_than_ten_minutes_after_a_drop_stays_yellow():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0})
    line.send(60, {"pressure_mpa": 6.5})
    assert line.send(60 + 601, events=[third_party("intrusion", 1.0)])["third_party"].level == YELLOW


def test_pressure_drop_after_an_intrusion_turns_third_party_red():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0}, [third_party("intrusion", 1.0)])
    findings = line.send(120, {"pressure_mpa": 6.5})
    assert (findings["third_party"].level, findings["third_party"].immediate) == (RED, True)
    assert findings["pressure"].level == ORANGE


@pytest.mark.parametrize(("drop_at_s", "level"), [(600, RED), (601, YELLOW)])
def test_pressure_drop_within_ten_minutes_of_an_intrusion_turns_red(drop_at_s, level):
    line = Line()
    line.send(0, events=[third_party("intrusion", 1.0)])
    line.send(400, {"pressure_mpa": 8.0})
    findings = line.send(drop_at_s, {"pressure_mpa": 6.5})
    assert findings["pressure"].reason == "pressure_sudden_drop"
    assert findings["third_party"].level == level  # yellow: only the intrusion, held


def test_intrusion_and_drop_in_one_message_are_red():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0})
    findings = line.send(30, {"pressure_mpa": 6.0}, [third_party("intrusion", 0.0)])
    assert findings["third_party"].level == RED


def test_works_event_after_an_intrusion_with_a_drop_now_is_red():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0}, [third_party("intrusion", 1.0)])
    findings = line.send(60, {"pressure_mpa": 6.5}, [third_party("works", 20.0)])
    assert findings["third_party"].level == RED


# --- intrusion plus a pressure already below the alarming band (no sudden drop) ---------------------------------
# DOMAIN.md §2.5: "intrusion plus pressure drop" is red. Any drop that is alarming by itself counts: a sudden drop
# (above), or a reading below normal by the yellow deviation (10 %) or more. Normal pressure here is 8.0 MPa.


@pytest.mark.parametrize(
    ("pressure", "level", "reason"),
    [
        (7.04, RED, "intrusion_with_pressure_drop"),  # 12 % below: past the yellow band
        (7.2, RED, "intrusion_with_pressure_drop"),  # exactly 10 % below: on the band counts
        (0.5, RED, "intrusion_with_pressure_drop"),
        (7.21, YELLOW, "third_party_intrusion"),  # 9.9 % below: blue by itself, no alarming drop
        (7.28, YELLOW, "third_party_intrusion"),  # 9 % below
        (8.0, YELLOW, "third_party_intrusion"),
        (8.96, YELLOW, "third_party_intrusion"),  # 12 % above: past the band, but no drop
        (9.7, YELLOW, "third_party_intrusion"),  # above MAOP is orange, but no drop
    ],
)
def test_intrusion_with_the_pressure_below_the_alarming_band_in_one_message_is_red(pressure, level, reason):
    findings = grade({"pressure_mpa": pressure}, [third_party("intrusion", 1.0)])
    assert (findings["third_party"].level, findings["third_party"].reason) == (level, reason)
    assert findings["pressure"].reason != "pressure_sudden_drop"  # no previous reading: this is no sudden drop


@pytest.mark.parametrize(
    ("pressure", "intrusion_after_s", "level"),
    [
        (7.04, 60, RED),  # 12 % below, then an intrusion
        (7.04, 600, RED),  # the latest reading may be up to ten minutes old
        (7.04, 601, YELLOW),
        (7.28, 60, YELLOW),  # 9 % below
        (8.96, 60, YELLOW),  # 12 % above
    ],
)
def test_intrusion_after_a_reading_below_the_band_is_red(pressure, intrusion_after_s, level):
    line = Line()
    line.send(0, {"pressure_mpa": 7.6})
    line.send(60, {"pressure_mpa": pressure})
    finding = line.send(60 + intrusion_after_s, events=[third_party("intrusion", 1.0)])["third_party"]
    assert finding.level == level


@pytest.mark.parametrize(
    ("pressure", "level"),
    [(7.04, RED), (7.2, RED), (7.28, YELLOW), (8.0, YELLOW), (8.96, YELLOW)],
)
def test_a_reading_below_the_band_after_an_intrusion_turns_third_party_red(pressure, level):
    line = Line()
    line.send(0, {"pressure_mpa": 8.0}, [third_party("intrusion", 1.0)])
    line.send(200, {"pressure_mpa": 7.6})  # the pressure sinks slowly: never a sudden drop
    findings = line.send(400, {"pressure_mpa": pressure})
    assert findings["pressure"].reason != "pressure_sudden_drop"
    assert findings["third_party"].level == level
    if level == RED:
        assert (findings["third_party"].reason, findings["third_party"].immediate) == (
            "intrusion_with_pressure_drop",
            True,
        )


def test_a_reading_back_inside_the_band_ends_the_drop_for_a_later_intrusion():
    line = Line()
    line.send(0, {"pressure_mpa": 7.04})
    line.send(60, {"pressure_mpa": 7.3})  # 8.75 % below: still a blue warning (hysteresis), but no alarming drop
    assert line.send(120, events=[third_party("intrusion", 1.0)])["third_party"].level == YELLOW
    assert "pl" not in line.scratch


def test_a_late_low_reading_does_not_replace_the_newer_normal_one():
    line = Line()
    line.send(100, {"pressure_mpa": 8.0})
    line.send(50, {"pressure_mpa": 7.04})  # measured earlier, arrives late
    assert line.send(160, events=[third_party("intrusion", 1.0)])["third_party"].level == YELLOW


def test_without_a_registered_normal_only_a_sudden_drop_meets_an_intrusion():
    line = Line(setpoints={"pressure_mpa": Setpoint(maop=9.6)})
    line.send(0, {"pressure_mpa": 4.0})
    assert line.send(60, {"pressure_mpa": 3.8}, [third_party("intrusion", 1.0)])["third_party"].level == YELLOW


@pytest.mark.parametrize(
    ("pressure", "tag"),
    [(7.04, "pressure_drop"), (7.2, "pressure_drop"), (7.28, ""), (7.6, ""), (8.96, "")],
)
def test_a_reading_below_the_band_is_tagged_as_a_pressure_drop_for_the_unit_rule(pressure, tag):
    assert grade({"pressure_mpa": pressure})["pressure"].tag == tag


@pytest.mark.parametrize(("pressure", "expected"), [(7.04, RED), (7.28, None), (8.96, None)])
def test_intrusion_and_a_reading_below_the_band_on_another_device_of_the_unit_are_red(pressure, expected):
    model = PipelineModel(Sector.CHEM_PIPELINE)
    gauge = grade({"pressure_mpa": pressure})["pressure"]
    others = [unit_alarm(gauge.tag, "pressure", "PT-2", gauge.level)]
    combination = model.combine(intrusion_finding(), others)
    assert (None if combination is None else combination.level) == expected
    reverse = model.combine(gauge, [unit_alarm("intrusion", "third_party", "FO-1", YELLOW)])
    assert (None if reverse is None else reverse.level) == expected


# --- pressure and flow -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pressure", "level", "reason"),
    [
        (8.0, NONE, ""),
        (8.39, NONE, ""),
        (8.4, BLUE, "pressure_high_deviation"),  # +5 % of normal 8.0
        (8.79, BLUE, "pressure_high_deviation"),
        (8.8, YELLOW, "pressure_high_deviation"),  # +10 %
        (9.6, YELLOW, "pressure_high_deviation"),  # at MAOP is not above it
        (9.61, ORANGE, "pressure_above_maop"),
        (7.61, NONE, ""),
        (7.6, BLUE, "pressure_low_deviation"),  # -5 %
        (7.21, BLUE, "pressure_low_deviation"),
        (7.2, YELLOW, "pressure_low_deviation"),  # -10 %
        (0.5, YELLOW, "pressure_low_deviation"),
    ],
)
def test_pressure_is_graded_against_normal_and_maop(pressure, level, reason):
    finding = grade({"pressure_mpa": pressure})["pressure"]
    assert (finding.level, finding.reason) == (level, reason)
    assert finding.immediate is False


@pytest.mark.parametrize(
    ("pressure", "level", "hold"),
    [
        (8.35, NONE, BLUE),  # within 1 % of normal below the 5 % tier
        (8.3, NONE, NONE),
        (8.75, BLUE, YELLOW),
        (9.55, YELLOW, ORANGE),  # within 1 % of MAOP
        (9.5, YELLOW, YELLOW),
    ],
)
def test_pressure_warning_holds_within_the_band(pressure, level, hold):
    finding = grade({"pressure_mpa": pressure})["pressure"]
    assert (finding.level, finding.effective_hold) == (level, hold)


def test_pressure_without_a_registered_normal_is_graded_only_against_maop():
    setpoints = {"pressure_mpa": Setpoint(maop=9.6)}
    assert grade({"pressure_mpa": 9.0}, setpoints=setpoints)["pressure"] is normal("pressure")
    assert grade({"pressure_mpa": 9.7}, setpoints=setpoints)["pressure"].level == ORANGE


def test_pressure_without_any_setpoint_is_not_graded():
    assert grade({"pressure_mpa": 30.0}, setpoints={})["pressure"] is normal("pressure")


@pytest.mark.parametrize(
    ("previous", "elapsed_s", "current", "dropped"),
    [
        (8.0, 60, 6.8, True),  # 1.2 MPa = 15 % of normal 8.0
        (8.0, 60, 6.81, False),
        (8.0, 300, 6.8, True),  # the previous reading may be up to 5 min old
        (8.0, 301, 6.8, False),
        (8.4, 120, 7.2, True),
        (6.8, 60, 8.0, False),  # a rise is no drop
    ],
)
def test_sudden_drop_is_fifteen_percent_of_normal_within_five_minutes(previous, elapsed_s, current, dropped):
    line = Line()
    line.send(0, {"pressure_mpa": previous})
    finding = line.send(elapsed_s, {"pressure_mpa": current})["pressure"]
    assert (finding.reason == "pressure_sudden_drop") is dropped
    if dropped:
        assert (finding.level, finding.immediate, finding.tag, finding.title) == (
            ORANGE,
            True,
            "pressure_drop",
            "压力突降",
        )


def test_sudden_drop_without_a_registered_normal_is_relative_to_the_previous_reading():
    line = Line(setpoints={})
    line.send(0, {"pressure_mpa": 4.0})
    assert line.send(60, {"pressure_mpa": 3.41})["pressure"].level == NONE
    line.send(120, {"pressure_mpa": 4.0})
    assert line.send(180, {"pressure_mpa": 3.4})["pressure"].level == ORANGE


def test_sudden_drop_is_held_orange_for_ten_minutes_with_its_tag():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0})
    line.send(60, {"pressure_mpa": 6.5})
    after = line.send(120, {"pressure_mpa": 6.5})["pressure"]
    assert (after.level, after.reason, after.tag, after.immediate) == (
        ORANGE,
        "pressure_drop_hold",
        "pressure_drop",
        False,
    )
    assert line.send(60 + 599, {"pressure_mpa": 8.0})["pressure"].level == ORANGE
    recovered = line.send(60 + 600, {"pressure_mpa": 8.0})["pressure"]
    assert recovered is normal("pressure")
    assert "pd" not in line.scratch


def test_late_message_does_not_replace_the_newer_previous_reading():
    line = Line()
    line.send(100, {"pressure_mpa": 8.0})
    line.send(50, {"pressure_mpa": 5.0})  # arrives late
    assert line.scratch["pv"] == 8.0
    assert line.send(160, {"pressure_mpa": 6.5})["pressure"].reason == "pressure_sudden_drop"


def test_reading_after_a_gap_is_not_compared_with_the_stale_one():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0})
    assert line.send(3600, {"pressure_mpa": 6.5})["pressure"].reason == "pressure_low_deviation"


@pytest.mark.parametrize(
    ("flow", "level", "reason"),
    [
        (400.0, NONE, ""),
        (419.9, NONE, ""),
        (420.0, BLUE, "flow_high_deviation"),
        (439.9, BLUE, "flow_high_deviation"),
        (440.0, YELLOW, "flow_high_deviation"),
        (2000.0, YELLOW, "flow_high_deviation"),
        (380.1, NONE, ""),
        (380.0, BLUE, "flow_low_deviation"),
        (360.1, BLUE, "flow_low_deviation"),
        (360.0, YELLOW, "flow_low_deviation"),
        (0.0, YELLOW, "flow_low_deviation"),
    ],
)
def test_flow_is_graded_against_normal(flow, level, reason):
    finding = grade({"flow_m3h": flow})["flow"]
    assert (finding.level, finding.reason) == (level, reason)


def test_flow_deviation_titles_say_direction_and_tier():
    assert grade({"flow_m3h": 300.0})["flow"].title == "流量偏低10%以上"
    assert grade({"pressure_mpa": 8.5})["pressure"].title == "压力偏高5%以上"


def test_flow_without_a_registered_normal_is_not_graded():
    assert grade({"flow_m3h": 99999.0}, setpoints={})["flow"] is normal("flow")


def test_deviation_tiers_follow_the_config():
    config = PipelineConfig(pressure_blue_deviation=0.02, pressure_yellow_deviation=0.04)
    model = PipelineModel(Sector.CHEM_PIPELINE, config)
    assert grade({"pressure_mpa": 8.16}, model=model)["pressure"].level == BLUE
    assert grade({"pressure_mpa": 8.32}, model=model)["pressure"].level == YELLOW


# --- valve-pit gas and leaks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lel_pct", "level", "reason"),
    [
        (10.0, NONE, ""),  # no blue tier for valve pits
        (24.9, NONE, ""),
        (25.0, YELLOW, "pit_gas_level1"),
        (49.9, YELLOW, "pit_gas_level1"),
        (50.0, ORANGE, "pit_gas_level2"),
        (100.0, ORANGE, "pit_gas_level2"),  # no red tier
    ],
)
def test_valve_pit_gas_uses_the_gas_alarm_levels(lel_pct, level, reason):
    finding = grade({"gas_lel_pct": lel_pct})["pit_gas"]
    assert (finding.level, finding.reason) == (level, reason)


def test_valve_pit_registered_setpoints_override_the_defaults():
    setpoints = {"gas_lel_pct": Setpoint(l1=20, l2=40)}
    levels = [grade({"gas_lel_pct": value}, setpoints=setpoints)["pit_gas"].level for value in (19.9, 20, 40)]
    assert levels == [NONE, YELLOW, ORANGE]


def test_valve_pit_gas_holds_within_the_band():
    finding = grade({"gas_lel_pct": 23.5})["pit_gas"]
    assert (finding.level, finding.effective_hold) == (NONE, YELLOW)


@pytest.mark.parametrize(
    ("codes", "reason"),
    [
        (["npw_leak"], "npw_leak"),
        (["mass_balance_leak"], "mass_balance_leak"),
        (["npw_leak", "mass_balance_leak"], "leak_npw_and_mass_balance"),
    ],
)
def test_confirmed_leak_is_red_at_once(codes, reason):
    finding = grade(events=[{"code": code} for code in codes])["leak"]
    assert (finding.level, finding.effective_hold, finding.immediate, finding.reason) == (RED, RED, True, reason)
    assert finding.tag == "leak"


def test_leak_is_not_cleared_by_a_later_message():
    line = Line()
    line.send(0, events=[{"code": "npw_leak"}])
    assert "leak" not in line.send(60, {"pressure_mpa": 8.0})


# --- unit rule (combine) ---------------------------------------------------------------------------------------


def unit_alarm(tag: str, risk_type: str, device_id: str = "PL-8", level: int = ORANGE) -> UnitAlarm:
    return UnitAlarm(device_id, risk_type, risk_type, tag, level, NOW - 120)


def intrusion_finding() -> Finding:
    return grade(events=[third_party("intrusion", 1.0)])["third_party"]


def drop_finding() -> Finding:
    line = Line()
    line.send(0, {"pressure_mpa": 8.0})
    return line.send(60, {"pressure_mpa": 6.5})["pressure"]


def test_intrusion_is_tagged_for_the_unit_rule():
    assert intrusion_finding().tag == "intrusion"


def test_held_intrusion_keeps_its_tag_only_within_the_intrusion_window():
    line = Line()
    line.send(0, events=[third_party("intrusion", 1.0)])
    assert line.send(600, {})["third_party"].tag == "intrusion"
    held = line.send(601, {})["third_party"]
    assert (held.level, held.tag) == (YELLOW, "")


def test_held_intrusion_on_one_device_and_a_drop_on_another_raise_red():
    fibre, gauge = Line(), Line()
    fibre.send(0, events=[third_party("intrusion", 1.0)])
    held = fibre.send(240, {})["third_party"]
    gauge.send(200, {"pressure_mpa": 8.0})
    drop = gauge.send(260, {"pressure_mpa": 6.5})["pressure"]
    model = fibre.model
    combination = model.combine(drop, [unit_alarm(held.tag, "third_party", "FO-1", held.level)])
    assert combination is not None and combination.level == RED
    later = gauge.send(400, {"pressure_mpa": 6.5})["pressure"]
    again = model.combine(intrusion_finding(), [unit_alarm(later.tag, "pressure", "PT-2", later.level)])
    assert again is not None and again.level == RED


@pytest.mark.parametrize(
    ("finding_factory", "others", "expected"),
    [
        (intrusion_finding, [unit_alarm("pressure_drop", "pressure")], (RED, "intrusion_with_pressure_drop")),
        (intrusion_finding, [unit_alarm("", "pressure", level=YELLOW)], None),
        (intrusion_finding, [], None),
        (
            drop_finding,
            [unit_alarm("intrusion", "third_party", level=YELLOW)],
            (RED, "pressure_drop_with_intrusion"),
        ),
        (drop_finding, [unit_alarm("", "third_party", level=ORANGE)], None),
        (drop_finding, [unit_alarm("leak", "leak", level=RED)], None),
    ],
)
def test_intrusion_plus_pressure_drop_in_one_unit_is_red(finding_factory, others, expected):
    combination = PipelineModel(Sector.CHEM_PIPELINE).combine(finding_factory(), others)
    assert (None if combination is None else (combination.level, combination.reason)) == expected


def test_red_findings_are_left_alone_by_the_unit_rule():
    damage = grade(events=[third_party("damage")])["third_party"]
    assert PipelineModel(Sector.CHEM_PIPELINE).combine(damage, [unit_alarm("pressure_drop", "pressure")]) is None


# --- contract --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sector", [Sector.CHEM_PIPELINE, Sector.OIL_GAS_PIPELINE])
def test_both_pipeline_sectors_share_the_model(sector):
    model = PipelineModel(sector)
    assert model.sector == sector
    assert model.stuck_metrics == ("pressure_mpa", "flow_m3h")
    findings = model.evaluate(registration(sector=sector), message({"pressure_mpa": 9.7}, sector=sector), {}, NOW)
    assert findings[0].level == ORANGE


def test_pipeline_model_refuses_other_sectors():
    with pytest.raises(ValueError, match="pipeline"):
        PipelineModel(Sector.HAZCHEM)


def test_normal_readings_return_shared_normal_findings():
    findings = grade({"pressure_mpa": 8.1, "flow_m3h": 405.0, "gas_lel_pct": 0.0})
    assert all(finding is normal(finding.risk_type) for finding in findings.values())
    assert set(findings) == {"pressure", "flow", "pit_gas"}


def test_scratch_stays_small_and_json_compatible():
    line = Line()
    line.send(0, {"pressure_mpa": 8.0}, [third_party("intrusion", 1.0)])
    line.send(60, {"pressure_mpa": 6.5}, [third_party("damage"), {"code": "npw_leak"}])
    assert len(json.dumps(line.scratch)) < 200


@pytest.mark.parametrize(
    "overrides",
    [
        {"pressure_blue_deviation": 0.2},
        {"flow_yellow_deviation": 0.01},
        {"pit_gas_l1_lel_pct": 60.0},
        {"near_zone_m": 60.0},
        {"intrusion_level": 0},
        {"near_zone_orange_kinds": frozenset({"flying"})},
        {"unknown_field": 1},
    ],
)
def test_config_rejects_inconsistent_or_unknown_values(overrides):
    with pytest.raises(ValidationError):
        PipelineConfig(**overrides)
