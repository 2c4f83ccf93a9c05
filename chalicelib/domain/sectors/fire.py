"""Fire-safety key units (消防安全重点单位): fire alarm controller state and water-supply static pressure.

Implements the two rows of DOMAIN.md §2.3: the controller-state tiers ([policy]) and the GB 50974 §5.2.2
minimum static pressure at the worst point. Duration, dedup, static/context modifiers, frequent alarms and the
generic unit combination are the grading engine's job (§3); this module returns raw levels only.

Risk types:
- ``fire_alarm_system`` (family ``fire_alarm``): event-driven, state kept in ``scratch["a"]``.
- ``static_pressure`` (family ``pressure``): analog, graded with ``falling`` and a hysteresis band.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.findings import Combination, Finding, SectorSpec, UnitAlarm, falling, normal
from chalicelib.domain.levels import Level
from chalicelib.domain.telemetry import STRICT, Envelope

if TYPE_CHECKING:
    from chalicelib.domain.registry import DeviceRegistration

# --- registration vocabulary and telemetry (fire alarm controller, water pressure) ----------------------------

BuildingClass = Literal[
    "class1_highrise_public",  # 一类高层公共建筑 ≥ 0.10 MPa (≥ 0.15 above 100 m)
    "highrise_residential",  # 高层住宅 ≥ 0.07
    "class2_highrise_public",  # 二类高层公共建筑 ≥ 0.07
    "multistorey_public",  # 多层公共建筑 ≥ 0.07
    "industrial",  # 工业建筑 ≥ 0.10 (≥ 0.07 under 20,000 m³)
    "sprinkler",  # 自动喷水灭火系统 ≥ 0.10
    "municipal_hydrant",  # 市政消火栓 ≥ 0.14
]


class FireMetrics(BaseModel):
    model_config = STRICT
    static_pressure_mpa: Annotated[float, Field(ge=0, le=3)] | None = None


class FireEvent(BaseModel):
    """Fire alarm controller event (GB 26875 transmission)."""

    model_config = STRICT
    code: Literal[
        "fault",
        "isolated",
        "supervisory",
        "fire_alarm",
        "fire_confirmed",
        "reset",
        "sprinkler_flow",
        "pressure_switch",
    ]
    zone: Annotated[str, Field(max_length=32)] | None = None
    point: Annotated[str, Field(max_length=32)] | None = None


class FireMessage(Envelope):
    sector: Literal["fire"]
    metrics: FireMetrics = FireMetrics()
    events: tuple[FireEvent, ...] = ()


ALARM_SYSTEM = "fire_alarm_system"
STATIC_PRESSURE = "static_pressure"

_NORMAL_ALARM_SYSTEM = normal(ALARM_SYSTEM)
_NORMAL_PRESSURE = normal(STATIC_PRESSURE)

_STATE_KEY = "a"  # scratch["a"]: the controller's remembered alarm state (absent when nothing stands)
_SUPERVISORY_CODES = frozenset({"fault", "isolated", "supervisory"})
_SPRINKLER_PAIR = {"sprinkler_flow": ("sf", "ps"), "pressure_switch": ("ps", "sf")}  # event -> (own, other) key
_THRESHOLD_CACHE_CAP = 512


def _default_minimums() -> dict[BuildingClass, float]:
    """GB 50974 §5.2.2 minimum static pressure (MPa) at the worst point, per building class."""
    return {
        "class1_highrise_public": 0.10,
        "highrise_residential": 0.07,
        "class2_highrise_public": 0.07,
        "multistorey_public": 0.07,
        "industrial": 0.10,
        "sprinkler": 0.10,
        "municipal_hydrant": 0.14,
    }


class FireConfig(BaseModel):
    """Every number the fire model uses; DOMAIN.md §2.3 values as defaults, overridable per stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- static pressure (GB 50974 §5.2.2 facts, then [policy] tiers) ---
    min_static_pressure_mpa: dict[BuildingClass, float] = Field(default_factory=_default_minimums)
    class1_tall_height_m: float = Field(default=100.0, gt=0)  # class-1 high-rise public: above this height...
    class1_tall_min_mpa: float = Field(default=0.15, gt=0)  # ...the minimum is this
    industrial_small_volume_m3: float = Field(default=20000.0, gt=0)  # industrial: below this volume...
    industrial_small_min_mpa: float = Field(default=0.07, gt=0)  # ...the minimum is this
    default_min_static_pressure_mpa: float = Field(default=0.10, gt=0)  # no class and no setpoint registered
    blue_margin_fraction: float = Field(default=0.10, ge=0)  # blue below minimum * (1 + margin)
    orange_fraction: float = Field(default=0.5, gt=0, lt=1)  # orange below minimum * fraction
    empty_pipe_mpa: float = Field(default=0.01, gt=0)  # red below this: pipe empty or valve closed
    pressure_band_mpa: float = Field(default=0.005, ge=0)  # hysteresis: a level falls once back above by this

    # --- fire alarm controller state ([policy]) ---
    fault_hold_s: float = Field(default=1800.0, gt=0)  # blue stands this long after a fault/isolated/supervisory
    confirm_window_s: float = Field(default=180.0, gt=0)  # an unreset fire_alarm older than this -> yellow
    two_point_window_s: float = Field(default=600.0, gt=0)  # two points of one zone alarming within this -> orange
    sprinkler_window_s: float = Field(default=120.0, gt=0)  # sprinkler_flow + pressure_switch within this -> red
    alarm_memory_s: float = Field(default=3600.0, gt=0)  # unreset alarms / red states forgotten after this
    max_remembered_alarms: int = Field(default=6, ge=2, le=16)  # cap on remembered alarming points (scratch size)


class FireModel:
    """Risk model for fire-safety key units (DOMAIN.md §2.3).

    Alarm-system memory (``scratch["a"]``, only while something stands):
    ``b`` = [ts, code] of the last fault/isolated/supervisory; ``al`` = [[first_ts, zone, point], ...] one entry
    per alarming point (first alarm time, not refreshed by repeats), capped; ``fc`` = last fire_confirmed ts;
    ``sf`` / ``ps`` = last sprinkler_flow / pressure_switch ts; ``sr`` = ts the sprinkler pair was last seen.
    A ``reset`` event forgets all of it.
    """

    stuck_metrics: tuple[str, ...] = ("static_pressure_mpa",)
    durable_memory: tuple[str, ...] = ("a",)

    def __init__(self, config: FireConfig | None = None) -> None:
        self.config = cfg = config or FireConfig()
        self._minimums: dict[str | None, float] = dict(cfg.min_static_pressure_mpa.items())
        self._blue_factor = 1.0 + cfg.blue_margin_fraction
        self._band = cfg.pressure_band_mpa
        self._thresholds: dict[float, tuple[float, float, float, float]] = {}
        for minimum in (*self._minimums.values(), cfg.class1_tall_min_mpa, cfg.industrial_small_min_mpa):
            self._pressure_thresholds(minimum)
        self._pressure_thresholds(cfg.default_min_static_pressure_mpa)

    # --- contract ---------------------------------------------------------------------------------------------

    def evaluate(self, reg: DeviceRegistration, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        """Grade the static pressure (when reported) and the alarm-system state (on events or standing state).

        A controller heartbeat (no metric, no event, nothing standing) yields a normal ``fire_alarm_system``.
        """
        findings: list[Finding] = []
        pressure = msg.metrics.static_pressure_mpa
        if pressure is not None:
            findings.append(self._grade_pressure(reg, pressure))
        events = msg.events
        if events or _STATE_KEY in scratch:
            findings.append(self._grade_alarm_system(events, scratch, now_s))
        elif pressure is None:
            findings.append(_NORMAL_ALARM_SYSTEM)
        return findings

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        """No fire-specific unit rule in DOMAIN.md §2.3; the engine's generic combination applies."""
        return None

    # --- static pressure --------------------------------------------------------------------------------------

    def minimum_static_pressure(self, reg: DeviceRegistration) -> float:
        """Worst-point minimum (MPa): registered ``static_pressure_mpa.l``, else by building class or default."""
        setpoint = reg.setpoints.get("static_pressure_mpa")
        if setpoint is not None and setpoint.l is not None and setpoint.l > 0:
            return setpoint.l
        static = reg.static
        building_class = static.building_class
        minimum = self._minimums.get(building_class)
        if minimum is None:
            return self.config.default_min_static_pressure_mpa
        cfg = self.config
        if building_class == "class1_highrise_public":
            height = static.building_height_m
            if height is not None and height > cfg.class1_tall_height_m:
                return cfg.class1_tall_min_mpa
        elif building_class == "industrial":
            volume = static.building_volume_m3
            if volume is not None and volume < cfg.industrial_small_volume_m3:
                return cfg.industrial_small_min_mpa
        return minimum

    def _pressure_thresholds(self, minimum: float) -> tuple[float, float, float, float]:
        """(blue, yellow, orange, red) strict upper bounds for a minimum, rounded so boundaries are exact."""
        found = self._thresholds.get(minimum)
        if found is None:
            if len(self._thresholds) >= _THRESHOLD_CACHE_CAP:
                self._thresholds.clear()
            cfg = self.config
            found = self._thresholds[minimum] = (
                round(minimum * self._blue_factor, 9),
                minimum,
                round(minimum * cfg.orange_fraction, 9),
                cfg.empty_pipe_mpa,
            )
        return found

    def _grade_pressure(self, reg: DeviceRegistration, pressure: float) -> Finding:
        minimum = self.minimum_static_pressure(reg)
        thresholds = self._pressure_thresholds(minimum)
        if pressure >= thresholds[0] + self._band:
            return _NORMAL_PRESSURE
        level, hold = falling(pressure, thresholds, self._band)
        if not level and not hold:
            return _NORMAL_PRESSURE
        reason, title = _PRESSURE_TEXT[level or hold]
        return Finding(
            STATIC_PRESSURE,
            level,
            hold=hold,
            reason=reason,
            title=title,
            value=pressure,
            unit="MPa",
            family="pressure",
            params={"minimum_mpa": minimum, "threshold_mpa": thresholds[(level or hold) - 1]} if level else {},
        )

    # --- alarm system -----------------------------------------------------------------------------------------

    def _grade_alarm_system(self, events: Sequence[FireEvent], scratch: dict[str, Any], now_s: float) -> Finding:
        state: dict[str, Any] = scratch.get(_STATE_KEY) or {}
        for event in events:
            state = self._apply_event(state, event, now_s)
        finding = self._assess_state(state, now_s)
        if state:
            scratch[_STATE_KEY] = state
        else:
            scratch.pop(_STATE_KEY, None)
        return finding

    def _apply_event(self, state: dict[str, Any], event: FireEvent, now_s: float) -> dict[str, Any]:
        """Fold one controller event into the state; returns the (possibly new) state dict."""
        code = event.code
        if code == "reset":
            return {}
        if code in _SUPERVISORY_CODES:
            state["b"] = [now_s, code]
        elif code == "fire_alarm":
            self._remember_alarm(state, event.zone, event.point, now_s)
        elif code == "fire_confirmed":
            state["fc"] = now_s
        elif code in _SPRINKLER_PAIR:
            own_key, other_key = _SPRINKLER_PAIR[code]
            state[own_key] = now_s
            other = state.get(other_key)
            if other is not None and abs(now_s - other) <= self.config.sprinkler_window_s:
                state["sr"] = now_s
        return state

    def _remember_alarm(self, state: dict[str, Any], zone: str | None, point: str | None, now_s: float) -> None:
        alarms: list[list[Any]] = state.setdefault("al", [])
        for alarm in alarms:
            if alarm[1] == zone and alarm[2] == point:
                return  # the point is already in alarm: its clock keeps its first alarm time
        alarms.append([now_s, zone, point])
        if len(alarms) > self.config.max_remembered_alarms:
            del alarms[0]

    def _assess_state(self, state: dict[str, Any], now_s: float) -> Finding:
        """Expire what no longer stands, then return the highest standing condition."""
        if not state:
            return _NORMAL_ALARM_SYSTEM
        cfg = self.config
        memory = cfg.alarm_memory_s

        confirmed = state.get("fc")
        if confirmed is not None and now_s - confirmed >= memory:
            del state["fc"]
            confirmed = None
        sprinkler = state.get("sr")
        if sprinkler is not None and now_s - sprinkler >= memory:
            del state["sr"]
            sprinkler = None
        for key in ("sf", "ps"):
            seen = state.get(key)
            if seen is not None and now_s - seen > cfg.sprinkler_window_s:
                del state[key]
        alarms: list[list[Any]] | None = state.get("al")
        if alarms is not None:
            alarms[:] = [alarm for alarm in alarms if now_s - alarm[0] < memory]
            if not alarms:
                del state["al"]
                alarms = None
        supervisory = state.get("b")
        if supervisory is not None and now_s - supervisory[0] >= cfg.fault_hold_s:
            del state["b"]
            supervisory = None

        if confirmed is not None:
            return _alarm_finding(Level.RED, "fire_confirmed", "确认火警", {"since_s": now_s - confirmed})
        if sprinkler is not None:
            return _alarm_finding(
                Level.RED,
                "sprinkler_flow_and_pressure_switch",
                "喷淋水流压力开关动作",
                {"window_s": cfg.sprinkler_window_s},
            )
        if alarms is not None:
            pair = self._two_points_in_one_zone(alarms)
            if pair is not None:
                return _alarm_finding(
                    Level.ORANGE,
                    "fire_alarm_two_points_one_zone",
                    "同一区域两点火警",
                    {"zone": pair[0][1] or "", "points": f"{pair[0][2]},{pair[1][2]}"},
                )
            oldest = min(alarm[0] for alarm in alarms)
            if now_s - oldest >= cfg.confirm_window_s:
                return _alarm_finding(
                    Level.YELLOW,
                    "fire_alarm_unconfirmed",
                    "火警超时未确认",
                    {"since_s": now_s - oldest, "confirm_window_s": cfg.confirm_window_s, "alarms": len(alarms)},
                )
        if supervisory is not None:
            code = supervisory[1]
            reason, title = _SUPERVISORY_TEXT.get(code, _SUPERVISORY_TEXT["fault"])
            return _alarm_finding(Level.BLUE, reason, title, {"event": code})
        return _NORMAL_ALARM_SYSTEM

    def _two_points_in_one_zone(self, alarms: list[list[Any]]) -> tuple[list[Any], list[Any]] | None:
        """Two different known points of one zone whose first alarms lie within the window, or None."""
        window = self.config.two_point_window_s
        for index, first in enumerate(alarms):
            if first[2] is None:
                continue
            for second in alarms[index + 1 :]:
                if (
                    second[2] is not None
                    and second[1] == first[1]
                    and second[2] != first[2]
                    and abs(second[0] - first[0]) <= window
                ):
                    return first, second
        return None


def _alarm_finding(level: Level, reason: str, title: str, params: dict[str, Any]) -> Finding:
    return Finding(
        ALARM_SYSTEM,
        level,
        hold=level,
        reason=reason,
        title=title,
        family="fire_alarm",
        immediate=level >= Level.YELLOW,
        params=params,
    )


_PRESSURE_TEXT: dict[int, tuple[str, str]] = {
    Level.BLUE: ("static_pressure_near_minimum", "消防静压接近下限"),
    Level.YELLOW: ("static_pressure_below_minimum", "消防静压低于规范值"),
    Level.ORANGE: ("static_pressure_below_half_minimum", "消防静压严重不足"),
    Level.RED: ("static_pressure_empty", "管网无压或阀门关闭"),
}

_SUPERVISORY_TEXT: dict[str, tuple[str, str]] = {
    "fault": ("controller_fault", "火灾报警系统故障"),
    "isolated": ("controller_isolated", "火灾报警点位屏蔽"),
    "supervisory": ("controller_supervisory", "消防监管报警"),
}


SECTOR = SectorSpec(
    zh="消防",
    message=FireMessage,
    config=FireConfig,
    model=FireModel,
    risk_types={ALARM_SYSTEM: "火灾报警系统", STATIC_PRESSURE: "消防给水静压"},
    regulators=("fire_rescue",),
)
