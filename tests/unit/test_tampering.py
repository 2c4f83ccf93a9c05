"""Settings and tampering (issue 12 item 6): reported configuration against the registration (`config_mismatch`)
and manual / bypass periods past their limits, as data-quality findings of the engine, both sides of each limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.catalog import build_engine
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import DeviceRegistration, Setpoint, StaticFactors
from chalicelib.domain.rejections import Rejection
from chalicelib.domain.state import DeviceState
from chalicelib.domain.tampering import (
    CONFIG_MODE,
    INTERLOCK,
    ISOLATED,
    MANUAL,
    TamperPolicy,
    config_mismatches,
    long_period,
)
from chalicelib.domain.telemetry import ReportedConfig, ReportedSetpoint, ReportedTerminal

T0 = 1_780_000_000.0
POLICY = TamperPolicy()
TANK = DeviceRegistration(
    device_id="T-1",
    enterprise_id="E-1",
    enterprise_name="滨海化工",
    sector=Sector.HAZCHEM,
    unit_id="U-1",
    unit_name="罐区",
    kind="tank_gauge",
    setpoints={"level_pct": Setpoint(h=80, hh=90, l=0), "gas_lel_pct": Setpoint(l1=25)},
)
VEHICLE = DeviceRegistration(
    device_id="V-1",
    enterprise_id="E-2",
    enterprise_name="滨海危运",
    sector=Sector.ROAD_TRANSPORT,
    unit_id="V-1",
    unit_name="津A12345",
    kind="gnss_terminal",
    static=StaticFactors(vehicle_class="hazmat", max_speed_kmh=80, continuous_driving_limit_min=240),
)


def setpoints(**values: dict[str, float]) -> ReportedConfig:
    return ReportedConfig(setpoints={metric: ReportedSetpoint(**given) for metric, given in values.items()})


@pytest.mark.parametrize(
    ("reg", "reported", "expected"),
    [
        (TANK, setpoints(level_pct={"hh": 90}), []),
        (TANK, setpoints(level_pct={"hh": 90.089}), []),  # within 0.1 % (0.09) of the registered value
        (TANK, setpoints(level_pct={"hh": 90.091}), [("level_pct.hh", 90, 90.091)]),
        (TANK, setpoints(level_pct={"hh": 89.9}), [("level_pct.hh", 90, 89.9)]),
        (TANK, setpoints(level_pct={"l": 0.0000009}), []),  # zero registered: an absolute tolerance of 1e-6
        (TANK, setpoints(level_pct={"l": 0.000002}), [("level_pct.l", 0, 0.000002)]),
        (TANK, setpoints(level_pct={"ll": 5}), []),  # not registered: the sector default applies, not compared
        (TANK, setpoints(temperature_c={"h": 50}), []),  # a metric without registered setpoints
        (TANK, setpoints(gas_lel_pct={"l1": 30, "l2": 50}), [("gas_lel_pct.l1", 25, 30)]),
        (
            TANK,
            setpoints(level_pct={"h": 85, "hh": 95}),
            [("level_pct.h", 80, 85), ("level_pct.hh", 90, 95)],
        ),
        (VEHICLE, ReportedConfig(terminal=ReportedTerminal(max_speed_kmh=80)), []),
        (VEHICLE, ReportedConfig(terminal=ReportedTerminal(max_speed_kmh=100)), [("max_speed_kmh", 80, 100)]),
        (VEHICLE, ReportedConfig(terminal=ReportedTerminal(daily_driving_limit_min=600)), []),  # not registered
        (
            VEHICLE,
            ReportedConfig(terminal=ReportedTerminal(continuous_driving_limit_min=300)),
            [("continuous_driving_limit_min", 240, 300)],
        ),
    ],
)
def test_reported_settings_are_compared_with_the_registered_ones(
    reg: DeviceRegistration, reported: ReportedConfig, expected: list[tuple[str, float, float]]
) -> None:
    found = config_mismatches(reg, reported, POLICY)
    assert [(m.setting, m.registered, m.reported) for m in found] == expected


def test_a_reported_setpoint_has_the_names_of_a_registered_one() -> None:
    assert set(ReportedSetpoint.model_fields) == set(Setpoint.model_fields)
    terminal = set(ReportedTerminal.model_fields)
    assert terminal <= set(StaticFactors.model_fields)


@pytest.mark.parametrize(
    ("mode", "lasted_s", "too_long"),
    [
        (MANUAL, 2 * 3600 - 1, False),
        (MANUAL, 2 * 3600, True),
        (ISOLATED, 8 * 3600 - 1, False),
        (ISOLATED, 8 * 3600, True),
        (INTERLOCK, 3600 - 1, False),
        (INTERLOCK, 3600, True),
        (CONFIG_MODE, 10 * 86400, False),  # a standing mismatch is not a period with a limit
    ],
)
def test_a_period_is_too_long_from_its_limit_on(mode: str, lasted_s: float, too_long: bool) -> None:
    found = long_period({mode: T0}, T0 + lasted_s, POLICY)
    assert (found is not None) is too_long
    if found is not None:
        assert (found.mode, found.since, found.lasted_s) == (mode, T0, lasted_s)


def test_of_two_long_periods_the_one_furthest_past_its_limit_is_named() -> None:
    modes = {MANUAL: T0, INTERLOCK: T0 + 1800}
    found = long_period(modes, T0 + 3 * 3600, POLICY)
    assert found is not None and found.mode == INTERLOCK  # 1.5 h past its 1 h limit; manual 1 h past its 2 h


# --- through the engine ------------------------------------------------------------------------------------------


def raw(reg: DeviceRegistration, t: float, seq: int, **fields: Any) -> bytes:
    body = {
        "device_id": reg.device_id,
        "enterprise_id": reg.enterprise_id,
        "sector": reg.sector.value,
        "ts": datetime.fromtimestamp(t, UTC).isoformat(),
        "seq": seq,
        **fields,
    }
    return json.dumps(body).encode()


class Device:
    def __init__(self, reg: DeviceRegistration, engine: RiskEngine | None = None) -> None:
        self.reg = reg
        self.engine = engine or build_engine()
        self.state = DeviceState(reg.device_id)
        self.seq = 0

    def feed(self, t: float, **fields: Any) -> list[WarningChange]:
        self.seq += 1
        body = raw(self.reg, t, self.seq, **fields)
        msg = self.engine.parse(body, t)
        assert not isinstance(msg, Rejection), msg
        self.state.dirty = False
        result = self.engine.grade(self.reg, self.state, None, msg, body)
        assert not isinstance(result, Rejection), result
        return [change for change in result if change.risk_type == DATA_QUALITY]


def test_a_reported_setpoint_unlike_the_registered_one_raises_config_mismatch_until_a_report_matches() -> None:
    tank = Device(TANK)
    assert tank.feed(T0, metrics={"level_pct": 50}, config={"setpoints": {"level_pct": {"hh": 90}}}) == []
    raised = tank.feed(T0 + 10, metrics={"level_pct": 50}, config={"setpoints": {"level_pct": {"hh": 95}}})
    assert [(c.kind, c.reason, c.level) for c in raised] == [(ChangeKind.RAISE, "config_mismatch", Level.BLUE)]
    assert raised[0].params == {"setting": "level_pct.hh", "registered": 90, "reported": 95, "mismatches": 1}
    assert raised[0].title == "设定值与登记不符"
    assert tank.state.dirty and tank.state.modes[CONFIG_MODE] == T0 + 10
    # readings without a configuration report keep it standing past the data-quality hold (1 h)
    assert tank.feed(T0 + 5000, metrics={"level_pct": 50}) == []
    assert tank.feed(T0 + 9000, metrics={"level_pct": 50}) == []
    # a matching report ends it; the finding recovers after the hold
    assert tank.feed(T0 + 9010, metrics={"level_pct": 50}, config={"setpoints": {"level_pct": {"hh": 90}}}) == []
    assert tank.state.modes == {}
    recovered = tank.feed(T0 + 9010 + 3600, metrics={"level_pct": 50})
    assert [c.kind for c in recovered] == [ChangeKind.RECOVER]


def test_a_terminal_reporting_another_speed_limit_than_registered_raises_config_mismatch() -> None:
    vehicle = Device(VEHICLE)
    changes = vehicle.feed(T0, metrics={"speed_kmh": 60}, config={"terminal": {"max_speed_kmh": 100}})
    assert [(c.reason, c.params["setting"]) for c in changes] == [("config_mismatch", "max_speed_kmh")]


FIRE = DeviceRegistration(
    device_id="F-1",
    enterprise_id="E-3",
    enterprise_name="滨海商场",
    sector=Sector.FIRE,
    unit_id="B-1",
    unit_name="主楼",
    kind="alarm_controller",
)


@pytest.mark.parametrize(
    ("reg", "on", "off", "limit_s", "reason", "title"),
    [
        (FIRE, {"context": {"manual_mode": True}}, {}, 2 * 3600, "long_manual", "手动运行超时"),
        (FIRE, {"context": {"isolated": True}}, {"context": {}}, 8 * 3600, "long_isolation", "报警屏蔽超时"),
        (
            TANK,
            {"metrics": {"level_pct": 50, "interlock_ok": False}},
            {"metrics": {"level_pct": 50, "interlock_ok": True}},
            3600,
            "long_interlock_bypass",
            "联锁旁路超时",
        ),
    ],
)
def test_a_manual_or_bypass_period_raises_once_past_its_limit(
    reg: DeviceRegistration, on: dict[str, Any], off: dict[str, Any], limit_s: float, reason: str, title: str
) -> None:
    device = Device(reg)
    assert device.feed(T0, **on) == []
    assert device.state.dirty  # the period's start is written at once
    assert device.feed(T0 + limit_s - 1, **on) == []
    raised = device.feed(T0 + limit_s, **on)
    assert [(c.kind, c.reason, c.title) for c in raised] == [(ChangeKind.RAISE, reason, title)]
    assert raised[0].params["since"] == T0 and raised[0].params["limit_s"] == limit_s
    assert device.feed(T0 + limit_s + 60, **on) == []  # one warning while it lasts
    assert device.feed(T0 + limit_s + 120, **off) == []
    assert device.state.modes == {}
    assert [c.kind for c in device.feed(T0 + limit_s + 120 + 3600, **off)] == [ChangeKind.RECOVER]


def test_a_period_that_ends_before_its_limit_starts_again_from_zero() -> None:
    controller = Device(FIRE)
    manual = {"context": {"manual_mode": True}}
    controller.feed(T0, **manual)
    controller.feed(T0 + 3600, context={"manual_mode": False})
    controller.feed(T0 + 3700, **manual)
    assert controller.feed(T0 + 3700 + 2 * 3600 - 1, **manual) == []
    assert [c.reason for c in controller.feed(T0 + 3700 + 2 * 3600, **manual)] == ["long_manual"]


def test_a_reading_that_says_nothing_of_the_interlock_keeps_its_bypass_period() -> None:
    tank = Device(TANK)
    tank.feed(T0, metrics={"interlock_ok": False})
    tank.feed(T0 + 1800, metrics={"level_pct": 50})
    assert tank.state.modes == {INTERLOCK: T0}
    assert [c.reason for c in tank.feed(T0 + 3600, metrics={"level_pct": 50})] == ["long_interlock_bypass"]


def test_modes_survive_the_state_round_trip() -> None:
    state = DeviceState("F-1", modes={MANUAL: T0, CONFIG_MODE: T0 + 1})
    assert DeviceState.loads("F-1", state.dumps()).modes == {MANUAL: T0, CONFIG_MODE: T0 + 1}
    assert "m" not in DeviceState("F-1").to_dict()


def test_the_limits_are_policy() -> None:
    from chalicelib.domain.catalog import Policy

    policy = Policy.model_validate({"grading": {"tampering": {"max_period_s": {"manual": 600}}}})
    controller = Device(FIRE, build_engine(policy))
    controller.feed(T0, context={"manual_mode": True})
    assert [c.reason for c in controller.feed(T0 + 600, context={"manual_mode": True})] == ["long_manual"]


def test_the_app_text_says_what_to_do_about_a_setting_or_a_long_bypass() -> None:
    from chalicelib.domain.policy import DeadlinePolicy
    from chalicelib.domain.texts import app_text

    tank = Device(TANK)
    (mismatch,) = tank.feed(T0, config={"setpoints": {"level_pct": {"hh": 95}}})
    assert "设定值与登记不符" in app_text(mismatch, DeadlinePolicy().blue)
    controller = Device(FIRE)
    controller.feed(T0, context={"manual_mode": True})
    (manual,) = controller.feed(T0 + 2 * 3600, context={"manual_mode": True})
    text = app_text(manual, DeadlinePolicy().blue)
    assert "手动运行超时" in text and "手动、屏蔽或旁路" in text


def test_a_standing_condition_a_declaration_suppressed_is_raised_again_only_after_the_recheck() -> None:
    controller = Device(FIRE)
    manual = {"context": {"manual_mode": True}}
    controller.feed(T0, **manual)
    assert [c.reason for c in controller.feed(T0 + 2 * 3600, **manual)] == ["long_manual"]
    controller.state.risks.pop(DATA_QUALITY)  # what the ingest does with a finding a declaration excuses
    controller.state.dirty = False
    for later in (60, 300, 599):  # not recorded again with every message
        assert controller.feed(T0 + 2 * 3600 + later, **manual) == []
    assert not controller.state.dirty
    again = controller.feed(T0 + 2 * 3600 + 600, **manual)
    assert [(c.kind, c.reason) for c in again] == [(ChangeKind.RAISE, "long_manual")]
    assert controller.feed(T0 + 2 * 3600 + 660, **manual) == []  # now a warning stands: nothing new
