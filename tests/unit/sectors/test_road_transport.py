"""Road transport risk model (DOMAIN.md §2.1): every table row, both sides of each boundary, the memory rules."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.findings import Finding, UnitAlarm, normal
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.sectors.road_transport import (
    CONTINUOUS_DRIVING,
    DAILY_DRIVING,
    DRIVER_STATE,
    NIGHT_SPEED,
    OFFLINE_MOVING,
    OVERSPEED,
    GnssFix,
    RoadTransportConfig,
    RoadTransportMessage,
    RoadTransportModel,
    last_fix,
)

NONE, BLUE, YELLOW, ORANGE, RED = Level.NONE, Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED
METRES_PER_DEGREE_LAT = 6_371_000.0 * 3.141592653589793 / 180


def local(hhmm: str, day: int = 1) -> float:
    """Epoch seconds of a local (Asia/Shanghai) time on 2024-05-<day>."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    return datetime(2024, 5, day, hour, minute, tzinfo=SHANGHAI).timestamp()


def registration(vehicle_class: str | None = "heavy_freight", **static: Any) -> DeviceRegistration:
    return DeviceRegistration(
        device_id="gnss-1",
        enterprise_id="ent-1",
        enterprise_name="滨海运输",
        sector=Sector.ROAD_TRANSPORT,
        unit_id="veh-1",
        unit_name="津A12345",
        kind="gnss_terminal",
        static={"vehicle_class": vehicle_class, **static},
    )


def message(ts: float, events: tuple[dict[str, Any], ...] = (), **metrics: Any) -> RoadTransportMessage:
    return RoadTransportMessage.model_validate(
        {
            "device_id": "gnss-1",
            "enterprise_id": "ent-1",
            "sector": "road_transport",
            "ts": datetime.fromtimestamp(ts, SHANGHAI).isoformat(),
            "metrics": metrics,
            "events": list(events),
        }
    )


class Vehicle:
    """One terminal on a timeline: feeds reports to the model and keeps its scratch, like the engine would."""

    def __init__(
        self,
        vehicle_class: str | None = "heavy_freight",
        config: RoadTransportConfig | None = None,
        **static: Any,
    ) -> None:
        self.model = RoadTransportModel(config)
        self.reg = registration(vehicle_class, **static)
        self.scratch: dict[str, Any] = {}
        self.clock = 0.0

    def report(self, ts: float, events: tuple[dict[str, Any], ...] = (), **metrics: Any) -> dict[str, Finding]:
        self.clock = ts
        findings = self.model.evaluate(self.reg, message(ts, events, **metrics), self.scratch, ts)
        by_type = {finding.risk_type: finding for finding in findings}
        assert len(by_type) == len(findings), "one finding per risk type"
        return by_type

    def start(self, ts: float, speed: float = 60.0, **metrics: Any) -> dict[str, Finding]:
        return self.report(ts, speed_kmh=speed, **metrics)

    def drive(self, minutes: float, speed: float = 60.0, step_s: float = 60.0) -> dict[str, Finding]:
        """Moving reports every `step_s` from the clock until `minutes` later (the last one exactly then)."""
        return self._run(minutes, speed, step_s)

    def park(self, minutes: float, step_s: float = 60.0) -> dict[str, Finding]:
        return self._run(minutes, 0.0, step_s)

    def _run(self, minutes: float, speed: float, step_s: float) -> dict[str, Finding]:
        start, end = self.clock, self.clock + minutes * 60
        ts = start + step_s
        while ts < end:
            self.report(ts, speed_kmh=speed)
            ts += step_s
        return self.report(end, speed_kmh=speed)


def assess(
    vehicle_class: str | None,
    ts: float,
    config: RoadTransportConfig | None = None,
    static: dict[str, Any] | None = None,
    **metrics: Any,
) -> dict[str, Finding]:
    """A single report from a fresh vehicle."""
    return Vehicle(vehicle_class, config, **(static or {})).report(ts, **metrics)


NOON = local("12:00")


# --- contract -----------------------------------------------------------------------------------------------


def test_model_is_registered_for_its_sector_with_no_stuck_metrics_and_no_unit_rule() -> None:
    model = Sector.ROAD_TRANSPORT.spec.build()
    assert type(model) is RoadTransportModel
    assert Sector.ROAD_TRANSPORT.spec.message is RoadTransportMessage
    assert model.stuck_metrics == ()
    finding = Finding(OVERSPEED, RED, reason="overspeed_serious")
    other = UnitAlarm("gnss-1", CONTINUOUS_DRIVING, "driving_time", "continuous", YELLOW, NOON)
    assert model.combine(finding, [other]) is None


def test_normal_report_returns_shared_normal_constants_for_every_risk_type() -> None:
    vehicle = Vehicle("coach_tour")
    vehicle.start(NOON)
    findings = vehicle.drive(10)
    assert set(findings) == {OVERSPEED, NIGHT_SPEED, CONTINUOUS_DRIVING, DAILY_DRIVING, DRIVER_STATE}
    assert all(f.level == NONE and f.hold == NONE and not f.params for f in findings.values())
    assert all(finding is normal(risk_type) for risk_type, finding in findings.items())


def test_risk_types_emitted_depend_on_vehicle_class_and_speed_presence() -> None:
    assert set(assess("heavy_freight", NOON, speed_kmh=50)) == {
        OVERSPEED,
        CONTINUOUS_DRIVING,
        DAILY_DRIVING,
        DRIVER_STATE,
    }
    assert OFFLINE_MOVING in assess("hazmat", NOON, speed_kmh=50)
    assert NIGHT_SPEED not in assess("hazmat", NOON, speed_kmh=50)
    for passenger in ("coach_long_distance", "coach_tour", "bus_intercity"):
        assert NIGHT_SPEED in assess(passenger, NOON, speed_kmh=50)
    no_speed = assess("coach_tour", NOON, lat=39.0, lon=117.7)
    assert OVERSPEED not in no_speed and NIGHT_SPEED not in no_speed


# --- overspeed ----------------------------------------------------------------------------------------------

EXPRESSWAY_ROWS = [
    # speed, level, reason  (limit 100, margin 5: blue 95..100, yellow >100..<110, orange 110..<120, red >=120)
    (94.9, NONE, ""),
    (95.0, BLUE, "overspeed_near_limit"),
    (100.0, BLUE, "overspeed_near_limit"),
    (100.1, YELLOW, "overspeed_minor"),
    (109.9, YELLOW, "overspeed_minor"),
    (110.0, ORANGE, "overspeed_moderate"),
    (119.9, ORANGE, "overspeed_moderate"),
    (120.0, RED, "overspeed_serious"),
    (150.0, RED, "overspeed_serious"),
]


@pytest.mark.parametrize("road_class", ["expressway", "urban_expressway"])
@pytest.mark.parametrize(("speed", "level", "reason"), EXPRESSWAY_ROWS)
def test_overspeed_on_expressways_follows_the_10_20_percent_tiers(
    road_class: str, speed: float, level: int, reason: str
) -> None:
    finding = assess("heavy_freight", NOON, speed_kmh=speed, road_limit_kmh=100, road_class=road_class)[OVERSPEED]
    assert finding.level == level
    assert finding.reason == reason


OTHER_ROAD_ROWS = [
    # speed, level, reason  (limit 60, margin 5: blue 55..<66, yellow 66..<72, orange 72..<90, red >=90)
    (54.9, NONE, ""),
    (55.0, BLUE, "overspeed_near_limit"),
    (60.0, BLUE, "overspeed_near_limit"),
    (60.1, BLUE, "overspeed_minor"),
    (65.9, BLUE, "overspeed_minor"),
    (66.0, YELLOW, "overspeed_moderate"),
    (71.9, YELLOW, "overspeed_moderate"),
    (72.0, ORANGE, "overspeed_serious"),
    (89.9, ORANGE, "overspeed_serious"),
    (90.0, RED, "overspeed_extreme"),
]


@pytest.mark.parametrize(("speed", "level", "reason"), OTHER_ROAD_ROWS)
def test_overspeed_on_other_roads_is_blue_up_to_10_percent_over_then_10_20_50(
    speed: float, level: int, reason: str
) -> None:
    finding = assess("heavy_freight", NOON, speed_kmh=speed, road_limit_kmh=60, road_class="other")[OVERSPEED]
    assert finding.level == level
    assert finding.reason == reason


def test_overspeed_finding_carries_speed_limit_and_percent_over() -> None:
    finding = assess("heavy_freight", NOON, speed_kmh=121, road_limit_kmh=100, road_class="expressway")[OVERSPEED]
    assert finding.title == "超速20%以上"
    assert (finding.value, finding.unit, finding.family) == (121, "km/h", "speed")
    assert finding.params == {"speed": 121, "limit": 100, "over_pct": 21.0, "road_class": "expressway"}
    assert not finding.immediate


@pytest.mark.parametrize(
    ("vehicle_class", "road_limit", "vehicle_limit", "expected_limit"),
    [
        ("heavy_freight", 100, None, 100),  # road only
        ("heavy_freight", None, 90, 90),  # vehicle (0x0055) only
        ("heavy_freight", 100, 90, 90),  # the lower of the two
        ("heavy_freight", 60, 90, 60),
        ("heavy_freight", None, None, 100),  # neither: config default
        ("hazmat", 120, None, 80),  # hazmat capped at 80 km/h
        ("hazmat", None, 90, 80),
        ("hazmat", None, None, 80),
        ("hazmat", 60, None, 60),  # a lower road limit still wins
    ],
)
def test_speed_limit_is_the_lower_of_road_and_vehicle_and_hazmat_at_most_80(
    vehicle_class: str, road_limit: float | None, vehicle_limit: float | None, expected_limit: float
) -> None:
    metrics: dict[str, Any] = {"speed_kmh": expected_limit, "road_class": "expressway"}
    if road_limit is not None:
        metrics["road_limit_kmh"] = road_limit
    static = {} if vehicle_limit is None else {"max_speed_kmh": vehicle_limit}
    at_limit = assess(vehicle_class, NOON, static=static, **metrics)[OVERSPEED]
    assert at_limit.level == BLUE
    assert at_limit.params["limit"] == expected_limit
    metrics["speed_kmh"] = expected_limit + 0.5
    assert assess(vehicle_class, NOON, static=static, **metrics)[OVERSPEED].level == YELLOW


def test_registered_overspeed_margin_widens_the_blue_band() -> None:
    wide = {"overspeed_margin_kmh": 10}
    assert assess("heavy_freight", NOON, static=wide, speed_kmh=90, road_limit_kmh=100)[OVERSPEED].level == BLUE
    assert assess("heavy_freight", NOON, static=wide, speed_kmh=89.9, road_limit_kmh=100)[OVERSPEED].level == NONE
    assert assess("heavy_freight", NOON, speed_kmh=90, road_limit_kmh=100)[OVERSPEED].level == NONE


def test_registered_zero_margin_means_blue_only_at_the_limit() -> None:
    zero = {"overspeed_margin_kmh": 0}
    assert assess("heavy_freight", NOON, static=zero, speed_kmh=99.9, road_limit_kmh=100)[OVERSPEED].level == NONE
    assert assess("heavy_freight", NOON, static=zero, speed_kmh=100, road_limit_kmh=100)[OVERSPEED].level == BLUE


def test_unknown_road_class_uses_configured_default_tiers() -> None:
    assert assess("heavy_freight", NOON, speed_kmh=105, road_limit_kmh=100)[OVERSPEED].level == BLUE
    strict = RoadTransportConfig(default_road_class="expressway")
    finding = assess("heavy_freight", NOON, config=strict, speed_kmh=105, road_limit_kmh=100)[OVERSPEED]
    assert finding.level == YELLOW


def test_overspeed_hold_keeps_a_level_until_the_speed_is_below_it_by_the_band() -> None:
    express: dict[str, Any] = {"road_limit_kmh": 100, "road_class": "expressway"}
    just_under_orange = assess("heavy_freight", NOON, speed_kmh=109, **express)[OVERSPEED]
    assert (just_under_orange.level, just_under_orange.hold) == (YELLOW, ORANGE)
    within_band = assess("heavy_freight", NOON, speed_kmh=93.5, **express)[OVERSPEED]
    assert (within_band.level, within_band.hold) == (NONE, BLUE)
    assert assess("heavy_freight", NOON, speed_kmh=92.9, **express)[OVERSPEED].hold == NONE


def test_overspeed_tiers_come_from_config() -> None:
    config = RoadTransportConfig(expressway_orange_over_pct=5, expressway_red_over_pct=15)
    express: dict[str, Any] = {"road_limit_kmh": 100, "road_class": "expressway"}
    finding = assess("heavy_freight", NOON, config=config, speed_kmh=105, **express)[OVERSPEED]
    assert (finding.level, finding.title) == (ORANGE, "超速5%至15%")


# --- night speed (passenger vehicles) -----------------------------------------------------------------------

NIGHT_SPEED_ROWS = [
    # time, speed, level  (day limit 100 -> night 80)
    ("23:00", 80.0, NONE),
    ("23:00", 80.1, YELLOW),
    ("23:00", 100.0, YELLOW),
    ("23:00", 100.1, ORANGE),
    ("21:59", 90.0, NONE),  # before the night window
    ("22:00", 90.0, YELLOW),
    ("05:59", 90.0, YELLOW),
    ("06:00", 90.0, NONE),  # night ends
]


@pytest.mark.parametrize("vehicle_class", ["coach_tour", "bus_intercity", "coach_long_distance"])
@pytest.mark.parametrize(("hhmm", "speed", "level"), NIGHT_SPEED_ROWS)
def test_passenger_vehicle_at_night_is_held_to_80_percent_of_the_day_limit(
    vehicle_class: str, hhmm: str, speed: float, level: int
) -> None:
    finding = assess(vehicle_class, local(hhmm), speed_kmh=speed, road_limit_kmh=100)[NIGHT_SPEED]
    assert finding.level == level


def test_night_speed_reasons_titles_and_params() -> None:
    night = local("23:00")
    yellow = assess("coach_tour", night, speed_kmh=85, road_limit_kmh=100)[NIGHT_SPEED]
    assert (yellow.reason, yellow.title, yellow.family) == ("night_speed_over_night_limit", "夜间超速", "speed")
    assert yellow.params == {"speed": 85, "night_limit": 80.0, "day_limit": 100}
    orange = assess("coach_tour", night, speed_kmh=101, road_limit_kmh=100)[NIGHT_SPEED]
    assert (orange.reason, orange.title) == ("night_speed_over_day_limit", "夜间超日间限速")


LONG_DISTANCE_COACH_ROWS = [
    ("01:59", 30.0, NONE),
    ("02:00", 30.0, RED),
    ("03:00", 5.0, RED),  # moving threshold is inclusive
    ("03:00", 4.9, NONE),  # creeping below the moving threshold is not driving
    ("04:59", 30.0, RED),
    ("05:00", 30.0, NONE),
]


@pytest.mark.parametrize(("hhmm", "speed", "level"), LONG_DISTANCE_COACH_ROWS)
def test_long_distance_coach_moving_between_two_and_five_is_red(hhmm: str, speed: float, level: int) -> None:
    finding = assess("coach_long_distance", local(hhmm), speed_kmh=speed, road_limit_kmh=100)[NIGHT_SPEED]
    assert finding.level == level
    if level == RED:
        assert (finding.reason, finding.title) == ("coach_night_curfew_driving", "凌晨2-5时行车")


@pytest.mark.parametrize("vehicle_class", ["coach_tour", "bus_intercity"])
def test_other_passenger_vehicles_may_drive_between_two_and_five(vehicle_class: str) -> None:
    assert assess(vehicle_class, local("03:00"), speed_kmh=60, road_limit_kmh=100)[NIGHT_SPEED].level == NONE


def test_night_window_and_ratio_come_from_config() -> None:
    config = RoadTransportConfig(night_start_minute=21 * 60, night_speed_pct=70)
    finding = assess("coach_tour", local("21:30"), config=config, speed_kmh=71, road_limit_kmh=100)[NIGHT_SPEED]
    assert finding.level == YELLOW


# --- continuous driving -------------------------------------------------------------------------------------

CONTINUOUS_DAY_ROWS = [
    # minutes driven, level  (day limit 240, margin 30)
    (209.5, NONE),
    (210.0, BLUE),
    (240.0, BLUE),
    (240.5, YELLOW),
    (270.0, YELLOW),
    (270.5, ORANGE),
    (300.0, ORANGE),
    (300.5, RED),
]


@pytest.mark.parametrize(("minutes", "level"), CONTINUOUS_DAY_ROWS)
def test_continuous_driving_by_day_four_hours(minutes: float, level: int) -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    finding = vehicle.drive(minutes)[CONTINUOUS_DRIVING]
    assert finding.level == level
    assert finding.hold == level
    assert not finding.immediate


CONTINUOUS_NIGHT_ROWS = [
    (89.5, NONE),
    (90.0, BLUE),
    (120.0, BLUE),
    (120.5, YELLOW),
    (150.0, YELLOW),
    (150.5, ORANGE),
    (180.0, ORANGE),
    (180.5, RED),
]


@pytest.mark.parametrize(("minutes", "level"), CONTINUOUS_NIGHT_ROWS)
def test_continuous_driving_at_night_two_hours(minutes: float, level: int) -> None:
    vehicle = Vehicle()
    vehicle.start(local("22:00"))
    assert vehicle.drive(minutes)[CONTINUOUS_DRIVING].level == level


def test_continuous_driving_finding_reports_minutes_limit_and_title() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    finding = vehicle.drive(245)[CONTINUOUS_DRIVING]
    assert (finding.reason, finding.title) == ("continuous_driving_over_limit", "连续驾驶超4小时")
    assert (finding.family, finding.unit, finding.value) == ("driving_time", "min", 245.0)
    assert finding.params == {"driving_min": 245.0, "limit_min": 240, "night": False}
    orange = vehicle.drive(30)[CONTINUOUS_DRIVING]
    assert (orange.reason, orange.title) == ("continuous_driving_well_over_limit", "连续驾驶超4.5小时")
    red = vehicle.drive(30)[CONTINUOUS_DRIVING]
    assert (red.reason, red.title) == ("continuous_driving_far_over_limit", "连续驾驶超5小时")


def test_registered_continuous_limit_and_fatigue_margin_override_defaults() -> None:
    for minutes, level in [(164.5, NONE), (165.0, BLUE), (180.0, BLUE), (180.5, YELLOW)]:
        vehicle = Vehicle(continuous_driving_limit_min=180, fatigue_margin_min=15)
        vehicle.start(local("07:00"))
        assert vehicle.drive(minutes)[CONTINUOUS_DRIVING].level == level, minutes


def test_stop_of_the_minimum_rest_restarts_the_stretch() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    vehicle.drive(200)
    vehicle.park(20)  # the stop lasts from the first stopped report to the first moving one: 20 min
    finding = vehicle.drive(60)[CONTINUOUS_DRIVING]
    assert finding.level == NONE
    assert vehicle.scratch["c"] == pytest.approx(59 * 60)  # the stop->move interval is not driving


def test_stop_shorter_than_the_minimum_rest_does_not_restart_and_is_noted() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    vehicle.drive(200)
    vehicle.park(19)
    finding = vehicle.drive(60)[CONTINUOUS_DRIVING]
    assert finding.level == YELLOW  # 200 + 1 (until the first stopped report) + 59 = 260 min
    assert finding.params["driving_min"] == 260.0
    assert finding.params["short_rest_min"] == 19.0


def test_registered_minimum_rest_overrides_the_twenty_minutes() -> None:
    vehicle = Vehicle(min_rest_min=30)
    vehicle.start(local("07:00"))
    vehicle.drive(200)
    vehicle.park(25)
    assert vehicle.drive(60)[CONTINUOUS_DRIVING].level == YELLOW
    vehicle.park(30)
    assert vehicle.drive(60)[CONTINUOUS_DRIVING].level == NONE


def test_stretch_recovers_while_still_parked_once_the_rest_is_long_enough() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    assert vehicle.drive(250)[CONTINUOUS_DRIVING].level == YELLOW
    # the stop starts at the first stopped report, one minute in
    assert vehicle.park(20)[CONTINUOUS_DRIVING].level == YELLOW  # stopped 19 min
    assert vehicle.park(1)[CONTINUOUS_DRIVING].level == NONE  # stopped 20 min


def test_data_gap_counts_as_driving_only_up_to_the_max_report_gap() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    vehicle.drive(100)
    vehicle.start(vehicle.clock + 12 * 60)  # 12 min without reports, still moving on return
    assert vehicle.scratch["c"] == pytest.approx(105 * 60)


def test_long_data_gap_counts_as_rest_beyond_the_max_report_gap() -> None:
    rested = Vehicle()
    rested.start(local("07:00"))
    rested.drive(230)
    rested.start(rested.clock + 30 * 60)  # 5 min driving + 25 min unaccounted: a full rest
    assert rested.drive(30)[CONTINUOUS_DRIVING].level == NONE

    not_rested = Vehicle()
    not_rested.start(local("07:00"))
    not_rested.drive(230)
    not_rested.start(not_rested.clock + 20 * 60)  # 5 min driving + 15 min: too short a rest
    finding = not_rested.drive(30)[CONTINUOUS_DRIVING]
    assert finding.level == YELLOW
    assert finding.params["driving_min"] == 265.0


def test_second_breach_after_a_rest_in_the_same_shift_is_red() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    assert vehicle.drive(245)[CONTINUOUS_DRIVING].level == YELLOW
    vehicle.park(20)
    assert vehicle.drive(200)[CONTINUOUS_DRIVING].level == NONE
    finding = vehicle.drive(50)[CONTINUOUS_DRIVING]
    assert finding.level == RED
    assert (finding.reason, finding.title) == ("continuous_driving_repeat", "同班次重复超时驾驶")


def test_breach_after_a_rest_without_an_earlier_breach_is_not_a_repeat() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    assert vehicle.drive(235)[CONTINUOUS_DRIVING].level == BLUE
    vehicle.park(20)
    assert vehicle.drive(250)[CONTINUOUS_DRIVING].level == YELLOW


def test_breach_more_than_a_day_after_the_earlier_one_is_not_a_repeat() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    assert vehicle.drive(245)[CONTINUOUS_DRIVING].level == YELLOW
    vehicle.park(24 * 60, step_s=600)
    assert vehicle.drive(250)[CONTINUOUS_DRIVING].level == YELLOW


# --- driving per rolling 24 h -------------------------------------------------------------------------------

DAILY_ROWS = [
    (419.5, NONE),
    (420.0, BLUE),
    (480.0, BLUE),
    (480.5, YELLOW),
    (540.0, YELLOW),
    (540.5, ORANGE),
    (600.0, ORANGE),
    (600.5, RED),
]


@pytest.mark.parametrize(("minutes", "level"), DAILY_ROWS)
def test_daily_driving_tiers_seven_eight_nine_ten_hours(minutes: float, level: int) -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    finding = vehicle.drive(minutes)[DAILY_DRIVING]
    assert finding.level == level


def test_daily_driving_finding_reports_minutes_and_titles() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    blue = vehicle.drive(420)[DAILY_DRIVING]
    assert (blue.reason, blue.title) == ("daily_driving_near_limit", "24小时驾驶达7小时")
    assert blue.family == "driving_time"
    yellow = vehicle.drive(61)[DAILY_DRIVING]
    assert (yellow.reason, yellow.title) == ("daily_driving_over_limit", "24小时驾驶超8小时")
    assert yellow.params == {"driving_min": 481.0, "limit_min": 480}
    orange = vehicle.drive(60)[DAILY_DRIVING]
    assert (orange.reason, orange.title) == ("daily_driving_well_over_limit", "24小时驾驶超9小时")
    red = vehicle.drive(60)[DAILY_DRIVING]
    assert (red.reason, red.title) == ("daily_driving_far_over_limit", "24h驾驶超10小时")


def test_daily_driving_counts_across_stretches_and_rests() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    vehicle.drive(240)
    vehicle.park(30)
    vehicle.start(vehicle.clock + 60)
    finding = vehicle.drive(240)[DAILY_DRIVING]
    assert finding.level == YELLOW  # 240 + 1 + 240 = 481 min
    assert finding.params["driving_min"] == 481.0


def test_registered_daily_limit_shifts_every_tier() -> None:
    for minutes, level in [(539.5, NONE), (540.0, BLUE), (600.0, BLUE), (600.5, YELLOW), (660.5, ORANGE)]:
        vehicle = Vehicle(daily_driving_limit_min=600)
        vehicle.start(local("06:00"))
        assert vehicle.drive(minutes)[DAILY_DRIVING].level == level, minutes


def test_driving_older_than_24_hours_leaves_the_window() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    assert vehicle.drive(570)[DAILY_DRIVING].level == ORANGE
    vehicle.park(1)  # 571 min driven between 06:00 and 15:31
    next_day = vehicle.start(local("07:16", day=2), speed=0)  # the first 76 min have left the window
    assert next_day[DAILY_DRIVING].level == YELLOW
    # 495 min, give or take the half-minute of booking each report interval at its end
    assert next_day[DAILY_DRIVING].params["driving_min"] == pytest.approx(495, abs=1)
    much_later = vehicle.start(local("16:00", day=2), speed=0)
    assert much_later[DAILY_DRIVING].level == NONE
    assert "w" not in vehicle.scratch  # an empty ring is dropped


def test_daily_driving_hold_band_delays_the_fall() -> None:
    vehicle = Vehicle()
    vehicle.start(local("06:00"))
    finding = vehicle.drive(417)[DAILY_DRIVING]
    assert (finding.level, finding.hold) == (NONE, BLUE)


# --- driver-state events (DSM) ------------------------------------------------------------------------------


def dsm(code: str, level: int = 1) -> tuple[dict[str, Any], ...]:
    return ({"code": code, "level": level},)


DSM_SINGLE_EVENT_ROWS = [
    ("phone", 1, BLUE, "dsm_level1_event", "接打电话一级报警"),
    ("fatigue", 1, BLUE, "dsm_level1_event", "疲劳驾驶一级报警"),
    ("smoking", 2, ORANGE, "dsm_level2_event", "抽烟二级报警"),
    ("fatigue", 2, ORANGE, "dsm_level2_event", "疲劳驾驶二级报警"),
    ("distraction", 2, ORANGE, "dsm_level2_event", "分神驾驶二级报警"),
    ("abnormal_driver", 1, RED, "dsm_abnormal_driver", "驾驶员异常"),
    ("abnormal_driver", 2, RED, "dsm_abnormal_driver", "驾驶员异常"),
]


@pytest.mark.parametrize(("code", "dsm_level", "level", "reason", "title"), DSM_SINGLE_EVENT_ROWS)
def test_single_dsm_event_grades_by_its_level_and_code(
    code: str, dsm_level: int, level: int, reason: str, title: str
) -> None:
    finding = Vehicle().report(NOON, events=dsm(code, dsm_level))[DRIVER_STATE]
    assert (finding.level, finding.hold, finding.reason, finding.title) == (level, level, reason, title)
    assert finding.immediate
    assert finding.family == "driver"


def test_three_level_one_events_within_thirty_minutes_raise_yellow() -> None:
    vehicle = Vehicle()
    assert vehicle.report(NOON, events=dsm("phone"))[DRIVER_STATE].level == BLUE
    assert vehicle.report(NOON + 600, events=dsm("smoking"))[DRIVER_STATE].level == BLUE
    third = vehicle.report(NOON + 1800, events=dsm("distraction"))[DRIVER_STATE]
    assert (third.level, third.reason, third.title) == (YELLOW, "dsm_level1_repeated", "驾驶行为频繁报警")


def test_three_level_one_events_spread_over_more_than_thirty_minutes_stay_blue() -> None:
    vehicle = Vehicle()
    vehicle.report(NOON, events=dsm("phone"))
    vehicle.report(NOON + 900, events=dsm("phone"))
    assert vehicle.report(NOON + 1801, events=dsm("phone"))[DRIVER_STATE].level == BLUE


def test_three_level_one_events_in_one_message_raise_yellow() -> None:
    events = ({"code": "phone"}, {"code": "smoking"}, {"code": "distraction"})
    assert Vehicle().report(NOON, events=events)[DRIVER_STATE].level == YELLOW


def test_two_level_two_fatigue_events_within_the_window_raise_red() -> None:
    vehicle = Vehicle()
    vehicle.report(NOON, events=dsm("fatigue", 2))
    finding = vehicle.report(NOON + 3600, events=dsm("fatigue", 2))[DRIVER_STATE]
    assert (finding.level, finding.reason) == (RED, "dsm_fatigue_repeated")


def test_two_level_two_fatigue_events_too_far_apart_stay_orange() -> None:
    vehicle = Vehicle()
    vehicle.report(NOON, events=dsm("fatigue", 2))
    assert vehicle.report(NOON + 3601, events=dsm("fatigue", 2))[DRIVER_STATE].level == ORANGE


def test_level_two_events_of_other_kinds_do_not_count_as_repeated_fatigue() -> None:
    vehicle = Vehicle()
    vehicle.report(NOON, events=dsm("phone", 2))
    assert vehicle.report(NOON + 60, events=dsm("fatigue", 2))[DRIVER_STATE].level == ORANGE


@pytest.mark.parametrize(
    ("code", "dsm_level", "held_level", "window_s"),
    [("phone", 1, BLUE, 1800), ("phone", 2, ORANGE, 1800), ("abnormal_driver", 1, RED, 1800)],
)
def test_driver_state_holds_within_its_window_then_recovers(
    code: str, dsm_level: int, held_level: int, window_s: int
) -> None:
    vehicle = Vehicle()
    vehicle.start(NOON, speed=50)
    vehicle.report(NOON + 60, events=dsm(code, dsm_level), speed_kmh=50)
    assert vehicle.report(NOON + 60 + window_s, speed_kmh=50)[DRIVER_STATE].level == held_level
    recovered = vehicle.report(NOON + 61 + window_s, speed_kmh=50)[DRIVER_STATE]
    assert recovered.level == NONE
    assert "d" not in vehicle.scratch


def test_repeated_fatigue_stays_red_while_both_events_are_in_the_window() -> None:
    vehicle = Vehicle()
    vehicle.report(NOON, events=dsm("fatigue", 2))
    assert vehicle.report(NOON + 600, events=dsm("fatigue", 2))[DRIVER_STATE].level == RED
    assert vehicle.report(NOON + 3600)[DRIVER_STATE].level == RED
    # the first has left its 60 min, the second is past the 30 min a single level-2 event holds
    assert vehicle.report(NOON + 3601)[DRIVER_STATE].level == NONE


def test_dsm_windows_come_from_config() -> None:
    config = RoadTransportConfig(dsm_level1_repeat_count=2, dsm_level1_window_s=600)
    vehicle = Vehicle(config=config)
    vehicle.report(NOON, events=dsm("phone"))
    assert vehicle.report(NOON + 600, events=dsm("phone"))[DRIVER_STATE].level == YELLOW
    assert vehicle.report(NOON + 1201, events=dsm("phone"))[DRIVER_STATE].level == BLUE


# --- hazardous-goods vehicle offline while moving -----------------------------------------------------------

LAT, LON = 39.0, 117.7

OFFLINE_GAP_ROWS = [
    # gap s, level, reason
    (600, NONE, ""),
    (601, BLUE, "offline_moving"),
    (1800, BLUE, "offline_moving"),
    (1801, YELLOW, "offline_moving_long"),
]


@pytest.mark.parametrize(("gap_s", "level", "reason"), OFFLINE_GAP_ROWS)
def test_hazmat_silent_after_moving_is_graded_on_return(gap_s: int, level: int, reason: str) -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, lat=LAT, lon=LON)
    finding = vehicle.start(NOON + gap_s, lat=LAT, lon=LON)[OFFLINE_MOVING]
    assert (finding.level, finding.reason) == (level, reason)
    if level:
        assert finding.immediate
        assert finding.family == "offline"
        assert finding.params["offline_min"] == round(gap_s / 60, 1)


def test_hazmat_parked_before_the_gap_in_the_same_place_is_not_offline_moving() -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, speed=0, lat=LAT, lon=LON)
    assert vehicle.start(NOON + 3600, speed=0, lat=LAT, lon=LON)[OFFLINE_MOVING].level == NONE


@pytest.mark.parametrize(("moved_m", "level"), [(900, BLUE), (1100, ORANGE)])
def test_hazmat_that_moved_more_than_a_kilometre_while_offline_is_orange(moved_m: float, level: int) -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, lat=LAT, lon=LON)
    returned = vehicle.start(NOON + 900, lat=LAT + moved_m / METRES_PER_DEGREE_LAT, lon=LON)
    assert returned[OFFLINE_MOVING].level == level


def test_parked_hazmat_that_reappears_elsewhere_moved_while_offline() -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, speed=0, lat=LAT, lon=LON)
    finding = vehicle.start(NOON + 900, speed=0, lat=LAT + 0.05, lon=LON)[OFFLINE_MOVING]
    assert (finding.level, finding.reason, finding.title) == (ORANGE, "offline_moved", "离线期间车辆移动")
    assert finding.params["moved_m"] == pytest.approx(5560, abs=10)


@pytest.mark.parametrize(("zone_before", "zone_after"), [(True, False), (False, True), (True, True)])
def test_hazmat_offline_in_a_restricted_zone_on_either_side_is_red(zone_before: bool, zone_after: bool) -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, lat=LAT, lon=LON, in_restricted_zone=zone_before)
    finding = vehicle.start(NOON + 700, lat=LAT, lon=LON, in_restricted_zone=zone_after)[OFFLINE_MOVING]
    assert (finding.level, finding.reason) == (RED, "offline_restricted")


def test_restricted_zone_without_an_offline_gap_is_not_offline() -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, lat=LAT, lon=LON, in_restricted_zone=True)
    assert vehicle.start(NOON + 600, lat=LAT, lon=LON, in_restricted_zone=True)[OFFLINE_MOVING].level == NONE


def test_offline_judgement_holds_for_the_configured_time_then_recovers() -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, lat=LAT, lon=LON)
    back = NOON + 2000
    assert vehicle.start(back, lat=LAT, lon=LON)[OFFLINE_MOVING].level == YELLOW
    held = vehicle.start(back + 599, lat=LAT, lon=LON)[OFFLINE_MOVING]
    assert (held.level, held.params["offline_min"]) == (YELLOW, 33.3)
    assert vehicle.start(back + 600, lat=LAT, lon=LON)[OFFLINE_MOVING].level == NONE
    assert "ol" not in vehicle.scratch


def test_offline_rule_applies_to_hazmat_only() -> None:
    vehicle = Vehicle("heavy_freight")
    vehicle.start(NOON, lat=LAT, lon=LON)
    assert OFFLINE_MOVING not in vehicle.start(NOON + 4000, lat=LAT + 0.1, lon=LON)


@pytest.mark.parametrize("vehicle_class", ["bus_intercity", "hazmat"])
def test_every_vehicle_remembers_its_last_fix_and_a_report_without_one_keeps_it(vehicle_class: str) -> None:
    vehicle = Vehicle(vehicle_class)
    vehicle.start(NOON)
    assert last_fix(vehicle.scratch) is None  # no position reported yet
    vehicle.start(NOON + 60, lat=LAT, lon=LON)
    vehicle.start(NOON + 120, lat=LAT + 0.01, lon=LON)
    assert last_fix(vehicle.scratch) == GnssFix(LAT + 0.01, LON, NOON + 120)
    vehicle.start(NOON + 180)  # a report without a position (a DSM event, a lost fix)
    vehicle.report(NOON + 150, lat=LAT + 0.5, lon=LON, speed_kmh=60.0)  # a late report: the newer state stands
    assert last_fix(vehicle.scratch) == GnssFix(LAT + 0.01, LON, NOON + 120)


def test_a_state_written_before_fix_times_were_kept_dates_its_fix_by_its_last_report() -> None:
    assert last_fix({"a": LAT, "o": LON, "t": NOON}) == GnssFix(LAT, LON, NOON)


SILENCE_ROWS = [
    # silent s, moving at last report, restricted at last report, level
    (600, True, False, NONE),
    (601, True, False, BLUE),
    (1800, True, False, BLUE),
    (1801, True, False, YELLOW),
    (7200, False, False, NONE),
    (601, True, True, RED),
]


@pytest.mark.parametrize(("silent_s", "moving", "restricted", "level"), SILENCE_ROWS)
def test_silence_level_grades_a_hazmat_that_has_not_reported(
    silent_s: int, moving: bool, restricted: bool, level: int
) -> None:
    vehicle = Vehicle("hazmat")
    vehicle.start(NOON, speed=60 if moving else 0, lat=LAT, lon=LON, in_restricted_zone=restricted)
    before = json.dumps(vehicle.scratch, sort_keys=True)
    finding = vehicle.model.silence_level(vehicle.reg, vehicle.scratch, NOON + silent_s)
    assert finding.level == level
    assert json.dumps(vehicle.scratch, sort_keys=True) == before  # pure
    if level:
        assert finding.immediate


def test_silence_level_ignores_other_vehicle_classes_and_unknown_vehicles() -> None:
    freight = Vehicle("heavy_freight")
    freight.start(NOON)
    assert freight.model.silence_level(freight.reg, freight.scratch, NOON + 7200).level == NONE
    hazmat = Vehicle("hazmat")
    assert hazmat.model.silence_level(hazmat.reg, {}, NOON).level == NONE


# --- robustness and state size ------------------------------------------------------------------------------


def test_duplicate_and_late_reports_do_not_count_driving_twice() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    vehicle.drive(60)
    latest = vehicle.clock
    vehicle.report(latest, speed_kmh=60)
    vehicle.report(latest - 600, speed_kmh=60)
    assert vehicle.scratch["c"] == pytest.approx(3600)
    assert vehicle.scratch["t"] == latest


def test_report_without_speed_keeps_the_last_moving_state() -> None:
    vehicle = Vehicle()
    vehicle.start(local("07:00"))
    vehicle.report(local("07:00") + 60, events=dsm("phone"))
    assert vehicle.scratch["m"] is True
    assert vehicle.scratch["c"] == pytest.approx(60)


def test_vehicle_without_class_or_registered_values_falls_back_to_defaults() -> None:
    vehicle = Vehicle(None)
    vehicle.start(local("07:00"))
    vehicle.drive(241)
    findings = vehicle.report(vehicle.clock + 30, speed_kmh=67, road_limit_kmh=60)
    assert findings[OVERSPEED].level == YELLOW
    assert findings[CONTINUOUS_DRIVING].level == YELLOW
    assert NIGHT_SPEED not in findings and OFFLINE_MOVING not in findings


def test_scratch_stays_small_after_a_long_busy_day() -> None:
    vehicle = Vehicle("hazmat")
    ts = local("00:00")
    vehicle.start(ts, lat=LAT, lon=LON, in_restricted_zone=False)
    for index in range(1, 24 * 120):  # a report every ~30 s for a day, moving, with DSM events now and then
        ts += 30.123
        events = ({"code": "fatigue", "level": 2}, {"code": "phone"}) if index % 50 == 0 else ()
        position = {"lat": LAT + index * 1e-5, "lon": LON, "in_restricted_zone": False}
        vehicle.report(ts, events=events, speed_kmh=61.7, **position)
    vehicle.start(ts + 1200, lat=LAT + 0.1, lon=LON)  # and an offline judgement standing
    size = len(json.dumps(vehicle.scratch))
    assert "ol" in vehicle.scratch and "d" in vehicle.scratch and "w" in vehicle.scratch
    assert size < 1000, size


# --- config -------------------------------------------------------------------------------------------------


def test_config_is_frozen_and_rejects_unknown_fields() -> None:
    config = RoadTransportConfig()
    with pytest.raises(ValidationError):
        RoadTransportConfig(speed_limit=90)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        config.default_speed_limit_kmh = 90  # type: ignore[misc]


@pytest.mark.parametrize(
    "overrides",
    [
        {"daily_bucket_min": 7},
        {"daily_bucket_min": 1},
        {"expressway_orange_over_pct": 20, "expressway_red_over_pct": 10},
        {"other_orange_over_pct": 60},
        {"continuous_orange_over_min": 60},
        {"offline_long_gap_s": 300},
    ],
)
def test_config_rejects_inconsistent_tiers(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RoadTransportConfig(**overrides)


def test_default_speed_limit_comes_from_config() -> None:
    config = RoadTransportConfig(default_speed_limit_kmh=80)
    finding = assess("heavy_freight", NOON, config=config, speed_kmh=81, road_class="expressway")[OVERSPEED]
    assert (finding.level, finding.params["limit"]) == (YELLOW, 80)


@pytest.mark.parametrize(
    ("vehicle_class", "road_class", "road_limit", "speed", "level"),
    [
        ("hazmat", "expressway", 100, 87.9, YELLOW),  # hazmat limit 80: orange from 88
        ("hazmat", "expressway", 100, 88.0, ORANGE),
        ("hazmat", "expressway", 100, 95.9, ORANGE),
        ("hazmat", "expressway", 100, 96.0, RED),
        ("heavy_freight", "other", 70, 76.9, BLUE),
        ("heavy_freight", "other", 70, 77.0, YELLOW),
        ("heavy_freight", "other", 70, 83.9, YELLOW),
        ("heavy_freight", "other", 70, 84.0, ORANGE),
        ("heavy_freight", "other", 70, 104.9, ORANGE),
        ("heavy_freight", "other", 70, 105.0, RED),
        ("heavy_freight", "other", 35, 38.5, YELLOW),
        ("heavy_freight", "other", 35, 52.5, RED),
    ],
)
def test_percent_tiers_are_exact_at_other_limits(
    vehicle_class: str, road_class: str, road_limit: float, speed: float, level: int
) -> None:
    metrics: dict[str, Any] = {"speed_kmh": speed, "road_limit_kmh": road_limit, "road_class": road_class}
    assert assess(vehicle_class, NOON, **metrics)[OVERSPEED].level == level
