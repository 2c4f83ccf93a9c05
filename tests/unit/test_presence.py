"""Device presence (docs/offline-watch.md): thresholds, deadlines, transitions, offline level, the day ledger."""

from __future__ import annotations

import pytest

from chalicelib.domain.levels import Level
from chalicelib.domain.presence import (
    DeviceDay,
    Presence,
    PresencePolicy,
    Signal,
    Watch,
    deadline,
    device_day,
    is_silent,
    observe,
    offline_level,
    outages,
    silent_since,
    transition,
)
from chalicelib.domain.registry import DeviceRegistration, Setpoint, StaticFactors
from chalicelib.domain.sectors.road_transport import RoadTransportModel

POLICY = PresencePolicy(kind_intervals_s={("hazchem", "gas_detector"): 10.0})


def registration(
    sector: str = "hazchem", kind: str = "tank", interval_s: float | None = None, vehicle: str | None = None
) -> DeviceRegistration:
    return DeviceRegistration(
        device_id="d-1",
        enterprise_id="e-1",
        enterprise_name="某企业",
        sector=sector,
        unit_id="u-1",
        unit_name="单元",
        kind=kind,
        setpoints={"report_interval_s": Setpoint(normal=interval_s)} if interval_s else {},
        static=StaticFactors(vehicle_class=vehicle),
    )


@pytest.mark.parametrize(
    ("reg", "interval", "threshold"),
    [
        (registration(), 60.0, 300.0),  # the sector default: 3 × 60 + 120
        (registration(kind="gas_detector"), 10.0, 150.0),  # the kind's policy
        (registration(kind="gas_detector", interval_s=20.0), 20.0, 180.0),  # the registration wins
        (registration(sector="fire", kind="fire_controller"), 300.0, 1020.0),
        (registration(sector="road_transport", kind="gnss"), 30.0, 210.0),
    ],
)
def test_interval_and_threshold_per_kind(reg: DeviceRegistration, interval: float, threshold: float) -> None:
    assert POLICY.interval_s(reg.sector.value, reg.kind, None if not reg.setpoints else 20.0) == interval
    assert POLICY.threshold_of(reg) == threshold


def test_an_unknown_sector_takes_the_default_interval() -> None:
    assert PresencePolicy().interval_s("other", "x") == 60.0


@pytest.mark.parametrize(
    ("now", "silent"),
    [(1299.0, False), (1300.0, False), (1300.5, True), (2000.0, True)],
)
def test_silent_strictly_after_interval_plus_grace(now: float, silent: bool) -> None:
    watch = Watch(last_seen=1000.0, threshold_s=300.0)
    assert deadline(watch, 60.0) == 1300.0
    assert is_silent(watch, now, 60.0) is silent
    assert silent_since(watch) == 1000.0


@pytest.mark.parametrize(
    ("disconnected_at", "expected"),
    [
        (None, 1300.0),
        (1100.0, 1160.0),  # a disconnect makes it a candidate sooner
        (1280.0, 1300.0),  # never later than the silence deadline
        (900.0, 1300.0),  # a disconnect before the last data does not count
    ],
)
def test_disconnect_shortens_the_deadline(disconnected_at: float | None, expected: float) -> None:
    assert deadline(Watch(1000.0, 300.0, disconnected_at), 60.0) == expected


def test_observe_data_connect_and_disconnect() -> None:
    watch = observe(None, Signal.DATA, 100.0, 300.0)
    assert watch == Watch(100.0, 300.0)
    watch = observe(watch, Signal.DISCONNECT, 150.0, 300.0)
    assert watch == Watch(100.0, 300.0, 150.0)
    assert is_silent(watch, 211.0, 60.0) and not is_silent(watch, 210.0, 60.0)
    watch = observe(watch, Signal.CONNECT, 180.0, 300.0)  # a connect clears the disconnect and is a sign of life
    assert watch == Watch(180.0, 300.0)
    assert observe(watch, Signal.DATA, 170.0, 300.0).last_seen == 180.0  # an older record never moves it back
    assert observe(None, Signal.DISCONNECT, 50.0, 300.0) == Watch(50.0, 300.0, 50.0)
    assert observe(watch, Signal.SILENCE, 999.0, 300.0) is watch


@pytest.mark.parametrize(
    ("current", "signal", "after"),
    [
        (Presence.ONLINE, Signal.SILENCE, Presence.OFFLINE),
        (Presence.ONLINE, Signal.DISCONNECT, Presence.OFFLINE),
        (Presence.ONLINE, Signal.DATA, None),
        (Presence.ONLINE, Signal.CONNECT, None),
        (Presence.OFFLINE, Signal.DATA, Presence.ONLINE),
        (Presence.OFFLINE, Signal.CONNECT, None),  # a connect alone is not data
        (Presence.OFFLINE, Signal.SILENCE, None),
        (Presence.OFFLINE, Signal.DISCONNECT, None),
    ],
)
def test_transitions(current: Presence, signal: Signal, after: Presence | None) -> None:
    assert transition(current, signal) is after


ROAD = RoadTransportModel()


@pytest.mark.parametrize(
    ("reg", "scratch", "silent_s", "level"),
    [
        (registration(), {}, 10_000, Level.BLUE),
        (registration("road_transport", "gnss", vehicle="hazmat"), {"t": 0.0, "m": True}, 600, Level.BLUE),
        (registration("road_transport", "gnss", vehicle="hazmat"), {"t": 0.0, "m": True}, 1800, Level.BLUE),
        (registration("road_transport", "gnss", vehicle="hazmat"), {"t": 0.0, "m": True}, 1801, Level.YELLOW),
        (registration("road_transport", "gnss", vehicle="hazmat"), {"t": 0.0, "m": True, "z": 1}, 601, Level.RED),
        (registration("road_transport", "gnss", vehicle="hazmat"), {"t": 0.0, "m": False}, 5000, Level.BLUE),
        (registration("road_transport", "gnss"), {"t": 0.0, "m": True}, 5000, Level.BLUE),
    ],
)
def test_offline_level_reuses_the_road_transport_silence_rule(
    reg: DeviceRegistration, scratch: dict[str, object], silent_s: float, level: Level
) -> None:
    assert offline_level(reg, scratch, silent_s, ROAD) is level


DAY = (0.0, 86_400.0)


def test_a_day_online_throughout() -> None:
    assert device_day(*DAY, Presence.ONLINE, []) == DeviceDay(86_400.0, 86_400.0, 0.0, 0.0)
    assert device_day(*DAY, Presence.ONLINE, []).online_rate == 1.0


def test_an_undeclared_outage_counts_against_the_online_rate() -> None:
    day = device_day(*DAY, Presence.ONLINE, [(3600.0, Presence.OFFLINE), (7200.0, Presence.ONLINE)])
    assert day == DeviceDay(86_400.0, 82_800.0, 0.0, 3600.0)


def test_an_approved_window_is_excluded_from_the_expected_time() -> None:
    day = device_day(
        *DAY,
        Presence.ONLINE,
        [(3600.0, Presence.OFFLINE), (7200.0, Presence.ONLINE)],
        declared=[(5400.0, 9000.0)],
    )
    assert day == DeviceDay(86_400.0 - 3600.0, 86_400.0 - 3600.0 - 1800.0, 1800.0, 1800.0)


def test_an_outage_across_midnight_is_clipped_to_the_day() -> None:
    day = device_day(*DAY, Presence.OFFLINE, [(600.0, Presence.ONLINE), (86_000.0, Presence.OFFLINE)])
    assert day.undeclared_outage_s == 1000.0
    assert outages(*DAY, Presence.ONLINE, [(-5.0, Presence.OFFLINE), (10.0, Presence.OFFLINE)]) == [
        (0.0, 86_400.0)
    ]


def test_a_fully_declared_day_has_no_expected_time() -> None:
    day = device_day(*DAY, Presence.OFFLINE, [], declared=[(-10.0, 50_000.0), (40_000.0, 90_000.0)])
    assert day == DeviceDay(0.0, 0.0, 86_400.0, 0.0)
    assert day.online_rate is None
