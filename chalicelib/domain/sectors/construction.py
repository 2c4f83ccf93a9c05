"""Construction sites (建筑工地): tower cranes, deep foundation pits, high formwork.

Implements the three rows of DOMAIN.md §2.4: crane load/moment ratio (GB 5144), wind at the jib top (Beaufort
4 / 6), and pit or formwork values against the designer's control values (GB 50497-2019 §8.0.3, §8.0.9), plus the
"orange or red on formwork during a pour means stop pouring and evacuate" text rule. Duration, dedup, modifiers and
the generic unit combination are the grading engine's job (§3); this module returns raw levels only.

Risk types (one per metric, so the engine dedups and holds each on its own):
- ``crane_load``     family ``load``          max(load_pct, moment_pct); limiter bypassed -> red
- ``wind``           family ``wind``          wind_ms; capped at orange while the crane is not operating
- ``pit_cumulative`` family ``displacement``  |cumulative_mm| / cumulative_mm.control
- ``pit_rate``       family ``displacement``  |rate_mm_d| / rate control; rate over control 2 local days running
- ``formwork_axial`` family ``axial_force``   |axial_force_kn| / axial_force_kn.control
- ``tilt``           family ``tilt``          |tilt_permille| / tilt_permille.control (default 2 ‰)
- ``pit_danger``     family ``displacement``  any §8.0.9 event -> red, immediate, held for a config time
Cumulative change and its rate share the family ``displacement`` (one physical quantity, so the engine's
"different parameters" combination does not count it twice); axial force and tilt are different parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.clock import local_day_number
from chalicelib.domain.findings import Combination, Finding, SectorSpec, UnitAlarm, normal, rising
from chalicelib.domain.levels import Level
from chalicelib.domain.telemetry import STRICT, Envelope

if TYPE_CHECKING:
    from chalicelib.domain.registry import DeviceRegistration

# --- telemetry: tower cranes, pits, high formwork ---------------------------------------------------------


class ConstructionMetrics(BaseModel):
    model_config = STRICT
    load_pct: Annotated[float, Field(ge=0, le=300)] | None = None
    moment_pct: Annotated[float, Field(ge=0, le=300)] | None = None
    wind_ms: Annotated[float, Field(ge=0, le=80)] | None = None
    limiter_bypassed: bool | None = None
    cumulative_mm: Annotated[float, Field(ge=-2000, le=2000)] | None = None
    rate_mm_d: Annotated[float, Field(ge=-500, le=500)] | None = None
    axial_force_kn: Annotated[float, Field(ge=-5000, le=5000)] | None = None
    tilt_permille: Annotated[float, Field(ge=-100, le=100)] | None = None


class ConstructionEvent(BaseModel):
    """GB 50497-2019 §8.0.9 immediate-danger conditions, reported by the monitoring contractor."""

    model_config = STRICT
    code: Literal["piping", "heave", "collapse", "strut_break", "neighbour_crack"]


class ConstructionMessage(Envelope):
    sector: Literal["construction"]
    metrics: ConstructionMetrics = ConstructionMetrics()
    events: tuple[ConstructionEvent, ...] = ()


CRANE_LOAD = "crane_load"
WIND = "wind"
PIT_CUMULATIVE = "pit_cumulative"
PIT_RATE = "pit_rate"
FORMWORK_AXIAL = "formwork_axial"
TILT = "tilt"
PIT_DANGER = "pit_danger"

STOP_POUR_ACTION = "stop_pour_evacuate"
STOP_POUR_REASON = "formwork_stop_pour_evacuate"
STOP_POUR_TITLE = "高支模超限停浇撤离"

_NORMAL_CRANE = normal(CRANE_LOAD)
_NORMAL_WIND = normal(WIND)
_NORMAL_DANGER = normal(PIT_DANGER)

_DANGER_KEY = "pd"  # scratch["pd"] = [ts, code] of the last §8.0.9 event, while it stands
_RATE_STREAK_KEY = "rs"  # scratch["rs"] = [local day, consecutive days over control, ts of last exceedance]
_THRESHOLD_CACHE_CAP = 512

Tiers = tuple[float, float, float, float]


class ConstructionConfig(BaseModel):
    """Every number the construction model uses; DOMAIN.md §2.4 values as defaults, overridable per stage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # crane: % of rated load or moment, (blue, yellow, orange, red) lower bounds, inclusive
    load_tiers_pct: Tiers = (80.0, 90.0, 100.0, 110.0)
    load_band_pct: float = Field(default=2.0, ge=0)  # hysteresis, percentage points
    # wind at the jib top, m/s, (blue, yellow, orange, red) lower bounds, inclusive
    wind_tiers_ms: Tiers = (5.5, 8.0, 10.8, 13.8)
    wind_band_ms: float = Field(default=0.5, ge=0)
    idle_wind_cap_level: int = Field(default=Level.ORANGE, ge=Level.BLUE, le=Level.RED)  # crane not operating
    # pit / formwork: |value| / control, (blue, yellow, orange, red) lower bounds, inclusive
    control_ratio_tiers: Tiers = (0.60, 0.70, 0.85, 1.00)
    control_band_fraction: float = Field(default=0.02, ge=0)  # hysteresis, as a fraction of the control value
    default_tilt_control_permille: float = Field(default=2.0, gt=0)  # "building tilt warns at 2/1000"
    # rate of change over its control on N consecutive local days -> a floor level
    rate_streak_days: int = Field(default=2, ge=2)
    rate_streak_level: int = Field(default=Level.YELLOW, ge=Level.BLUE, le=Level.RED)
    rate_streak_hold_s: float = Field(default=86400.0, gt=0)  # floor stands this long after the last exceedance
    # GB 50497 §8.0.9 events
    danger_hold_s: float = Field(default=3600.0, gt=0)  # red stands this long after the last event
    # formwork during a pour: at or above this level the text says stop pouring and evacuate
    stop_pour_level: int = Field(default=Level.ORANGE, ge=Level.BLUE, le=Level.RED)

    @model_validator(mode="after")
    def _tiers_ascend(self) -> ConstructionConfig:
        for name in ("load_tiers_pct", "wind_tiers_ms", "control_ratio_tiers"):
            tiers: Tiers = getattr(self, name)
            if any(low >= high for low, high in pairwise(tiers)) or tiers[0] <= 0:
                raise ValueError(f"{name} must be positive and strictly ascending")
        return self


@dataclass(frozen=True, slots=True)
class _ControlledMetric:
    """A pit/formwork metric graded against the ``control`` registered under the metric's own name.

    ``fallback`` is a (setpoint key, field) consulted when ``setpoints[attribute].control`` is absent.
    """

    attribute: str
    risk_type: str
    family: str
    unit: str
    name_zh: str
    fallback: tuple[str, str] | None = None


_CONTROLLED_METRICS = (
    _ControlledMetric(
        attribute="cumulative_mm", risk_type=PIT_CUMULATIVE, family="displacement", unit="mm", name_zh="累计变化"
    ),
    _ControlledMetric(
        attribute="rate_mm_d",
        risk_type=PIT_RATE,
        family="displacement",
        unit="mm/d",
        name_zh="变化速率",
        fallback=("cumulative_mm", "rate_control"),
    ),
    _ControlledMetric(
        attribute="axial_force_kn", risk_type=FORMWORK_AXIAL, family="axial_force", unit="kN", name_zh="支模轴力"
    ),
    _ControlledMetric(attribute="tilt_permille", risk_type=TILT, family="tilt", unit="‰", name_zh="倾斜"),
)


class ConstructionModel:
    """Risk model for construction sites (DOMAIN.md §2.4).

    Scratch: ``pd`` = [ts, code] of the last GB 50497 §8.0.9 event while its red stands; ``rs`` = [local day,
    consecutive local days the rate reached its control, ts of the last such reading].
    """

    # An anemometer frozen on one value hides a gale; crane load, deformation and tilt legitimately repeat.
    stuck_metrics: tuple[str, ...] = ("wind_ms",)
    durable_memory: tuple[str, ...] = ("pd", "rs")

    def __init__(self, config: ConstructionConfig | None = None) -> None:
        self.config = cfg = config or ConstructionConfig()
        self._load_tiers = cfg.load_tiers_pct
        self._load_normal_below = cfg.load_tiers_pct[0] - cfg.load_band_pct
        self._wind_tiers = cfg.wind_tiers_ms
        self._wind_normal_below = cfg.wind_tiers_ms[0] - cfg.wind_band_ms
        self._ratio_tiers = cfg.control_ratio_tiers
        self._thresholds: dict[float, tuple[Tiers, float, float]] = {}
        self._control_thresholds(cfg.default_tilt_control_permille)

    # --- contract ---------------------------------------------------------------------------------------------

    def evaluate(self, reg: DeviceRegistration, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        """One finding per risk type the message's metrics or events bear on (see the module docstring)."""
        findings: list[Finding] = []
        metrics = msg.metrics
        context = msg.context
        pouring = context is not None and context.pouring

        load = metrics.load_pct
        moment = metrics.moment_pct
        bypassed = metrics.limiter_bypassed
        if load is not None or moment is not None or bypassed is not None:
            findings.append(self._grade_crane(load, moment, bypassed))
        wind = metrics.wind_ms
        if wind is not None:
            if wind < self._wind_normal_below:
                findings.append(_NORMAL_WIND)
            else:
                findings.append(self._grade_wind(wind, context is None or context.operating))

        for spec in _CONTROLLED_METRICS:
            value = getattr(metrics, spec.attribute)
            if value is not None:
                finding = self._grade_controlled(spec, reg, value, scratch, now_s, pouring)
                if finding is not None:
                    findings.append(finding)

        if msg.events or _DANGER_KEY in scratch:
            findings.append(self._grade_danger(msg.events, scratch, now_s, pouring))
        return findings

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        """No construction-specific unit rule in DOMAIN.md §2.4; the engine's generic combination applies."""
        return None

    # --- crane ------------------------------------------------------------------------------------------------

    def _grade_crane(self, load: float | None, moment: float | None, bypassed: bool | None) -> Finding:
        if load is None:
            ratio = moment
        elif moment is None or load >= moment:
            ratio = load
        else:
            ratio = moment
        if bypassed:
            return Finding(
                CRANE_LOAD,
                Level.RED,
                hold=Level.RED,
                reason="crane_limiter_bypassed",
                title="力矩限制器被旁路",
                value=ratio,
                unit="%",
                family="load",
                immediate=True,
                params={"limiter_bypassed": True},
            )
        if ratio is None or ratio < self._load_normal_below:
            return _NORMAL_CRANE
        level, hold = rising(ratio, self._load_tiers, self.config.load_band_pct)
        if not level and not hold:
            return _NORMAL_CRANE
        shown = level or hold
        reason, title = _CRANE_TEXT[shown]
        return Finding(
            CRANE_LOAD,
            level,
            hold=hold,
            reason=reason,
            title=title,
            value=ratio,
            unit="%",
            family="load",
            params={"threshold_pct": self._load_tiers[shown - 1], "load_pct": load, "moment_pct": moment},
        )

    # --- wind -------------------------------------------------------------------------------------------------

    def _grade_wind(self, wind: float, operating: bool) -> Finding:
        level, hold = rising(wind, self._wind_tiers, self.config.wind_band_ms)
        if not operating:
            cap = self.config.idle_wind_cap_level
            level = min(level, cap)
            hold = min(hold, cap)
        if not level and not hold:
            return _NORMAL_WIND
        shown = level or hold
        reason, title = _WIND_TEXT[shown]
        return Finding(
            WIND,
            level,
            hold=hold,
            reason=reason,
            title=title,
            value=wind,
            unit="m/s",
            family="wind",
            params={"threshold_ms": self._wind_tiers[shown - 1], "operating": operating},
        )

    # --- pit / formwork values vs control ---------------------------------------------------------------------

    def _control_thresholds(self, control: float) -> tuple[Tiers, float, float]:
        """(tier thresholds, band, normal-below bound) for a control value; boundaries rounded to be exact."""
        found = self._thresholds.get(control)
        if found is None:
            if len(self._thresholds) >= _THRESHOLD_CACHE_CAP:
                self._thresholds.clear()
            tiers = self._ratio_tiers
            thresholds: Tiers = (
                round(control * tiers[0], 9),
                round(control * tiers[1], 9),
                round(control * tiers[2], 9),
                round(control * tiers[3], 9),
            )
            band = control * self.config.control_band_fraction
            found = self._thresholds[control] = (thresholds, band, thresholds[0] - band)
        return found

    def _control_value(self, spec: _ControlledMetric, reg: DeviceRegistration) -> float | None:
        """The registered control value (absolute; None when absent or zero). Tilt falls back to the default."""
        setpoints = reg.setpoints
        control: float | None = None
        setpoint = setpoints.get(spec.attribute)
        if setpoint is not None:
            control = setpoint.control
        if control is None and spec.fallback is not None:
            key, field = spec.fallback
            setpoint = setpoints.get(key)
            if setpoint is not None:
                control = getattr(setpoint, field)
        if control is None:
            if spec.risk_type == TILT:
                return self.config.default_tilt_control_permille
            return None
        control = abs(control)
        return control if control > 0 else None

    def _grade_controlled(
        self,
        spec: _ControlledMetric,
        reg: DeviceRegistration,
        value: float,
        scratch: dict[str, Any],
        now_s: float,
        pouring: bool,
    ) -> Finding | None:
        control = self._control_value(spec, reg)
        if control is None:
            return None  # no control value registered: nothing to grade against
        magnitude = abs(value)
        thresholds, band, normal_below = self._control_thresholds(control)
        is_rate = spec.risk_type == PIT_RATE
        streak = 0
        if is_rate:
            streak = self._track_rate_streak(scratch, magnitude >= control, now_s)
        if magnitude < normal_below and not streak:
            return normal(spec.risk_type)
        level, hold = rising(magnitude, thresholds, band)
        reason = spec.risk_type + ("_over_control" if level >= Level.RED else "_near_control")
        title = spec.name_zh + ("超控制值" if level >= Level.RED else "接近控制值")
        params: dict[str, Any] = {"control": control, "ratio": round(magnitude / control, 3)}
        if streak and self.config.rate_streak_level > level:
            level = self.config.rate_streak_level
            hold = max(hold, level)
            reason = "pit_rate_over_control_days_running"
            title = "变化速率连续超控"
            params["days_running"] = streak
        if not level and not hold:
            return normal(spec.risk_type)
        if pouring and level >= self.config.stop_pour_level:
            params["action"] = STOP_POUR_ACTION
            params["cause"] = reason
            reason = STOP_POUR_REASON
            title = STOP_POUR_TITLE
        return Finding(
            spec.risk_type,
            level,
            hold=hold,
            reason=reason,
            title=title,
            value=value,
            unit=spec.unit,
            family=spec.family,
            params=params if level else {},
        )

    def _track_rate_streak(self, scratch: dict[str, Any], exceeded: bool, now_s: float) -> int:
        """Update the consecutive-local-days count; return it when the streak floor stands, else 0."""
        day = local_day_number(now_s)
        streak: list[Any] | None = scratch.get(_RATE_STREAK_KEY)
        if exceeded:
            if streak is None or day - streak[0] > 1:
                streak = scratch[_RATE_STREAK_KEY] = [day, 1, now_s]
            elif day - streak[0] == 1:
                streak[0] = day
                streak[1] += 1
                streak[2] = now_s
            elif day == streak[0]:
                streak[2] = max(streak[2], now_s)
            # an older local day (late message) does not rewrite the streak
        if streak is None:
            return 0
        if day - streak[0] > 1:
            del scratch[_RATE_STREAK_KEY]  # a whole local day passed without exceedance: the streak is broken
            return 0
        cfg = self.config
        if streak[1] >= cfg.rate_streak_days and now_s - streak[2] < cfg.rate_streak_hold_s:
            return int(streak[1])
        return 0

    # --- GB 50497 §8.0.9 events -------------------------------------------------------------------------------

    def _grade_danger(
        self, events: Sequence[ConstructionEvent], scratch: dict[str, Any], now_s: float, pouring: bool
    ) -> Finding:
        if events:
            scratch[_DANGER_KEY] = [now_s, events[-1].code]
        since, code = scratch[_DANGER_KEY]
        if now_s - since >= self.config.danger_hold_s:
            del scratch[_DANGER_KEY]
            return _NORMAL_DANGER  # reported once so the engine can lower the standing warning
        reason, title = _DANGER_TEXT.get(code, _DANGER_TEXT["collapse"])
        params: dict[str, Any] = {"event": code, "events": ",".join(event.code for event in events) or code}
        if pouring:
            params["action"] = STOP_POUR_ACTION
            params["cause"] = reason
            reason = STOP_POUR_REASON
            title = STOP_POUR_TITLE
        return Finding(
            PIT_DANGER,
            Level.RED,
            hold=Level.RED,
            reason=reason,
            title=title,
            family="displacement",
            immediate=True,
            params=params,
        )


_CRANE_TEXT: dict[int, tuple[str, str]] = {
    Level.BLUE: ("crane_load_prewarning", "塔吊载荷预警"),
    Level.YELLOW: ("crane_load_near_rated", "塔吊载荷接近额定"),
    Level.ORANGE: ("crane_overload", "塔吊超载"),
    Level.RED: ("crane_overload_severe", "塔吊严重超载"),
}

_WIND_TEXT: dict[int, tuple[str, str]] = {
    Level.BLUE: ("wind_no_jacking", "风速超限禁止顶升"),
    Level.YELLOW: ("wind_high", "大风预警"),
    Level.ORANGE: ("wind_stop_crane_work", "大风应停止吊装"),
    Level.RED: ("wind_gale_while_operating", "强风中塔吊仍作业"),
}

_DANGER_TEXT: dict[str, tuple[str, str]] = {
    "piping": ("pit_piping", "基坑管涌"),
    "heave": ("pit_heave", "基坑坑底隆起"),
    "collapse": ("pit_collapse", "基坑坍塌"),
    "strut_break": ("pit_strut_break", "基坑支撑断裂"),
    "neighbour_crack": ("pit_neighbour_crack", "周边建筑新增裂缝"),
}


SECTOR = SectorSpec(
    zh="建筑工地",
    message=ConstructionMessage,
    config=ConstructionConfig,
    model=ConstructionModel,
    risk_types={
        CRANE_LOAD: "塔吊载荷",
        WIND: "塔吊风速",
        PIT_CUMULATIVE: "基坑累计变形",
        PIT_RATE: "基坑变形速率",
        FORMWORK_AXIAL: "高支模立杆轴力",
        TILT: "倾斜",
        PIT_DANGER: "基坑危险工况",
    },
    regulators=("housing_construction",),
)
