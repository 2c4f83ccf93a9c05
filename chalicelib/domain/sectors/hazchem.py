"""Risk model for hazardous-chemical enterprises (DOMAIN.md §2.2, unit rules from §2.2 and §3).

Gas detectors are graded against GB/T 50493-2019 §5.5.2 alarm setpoints (combustible gas in %LEL, toxic gas
against the occupational exposure limit), oxygen against the 19.5–23.5 %VOL band, and tank level, temperature and
pressure against the H/HH/L/LL setpoints of the enterprise's DCS/SIS tag list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.findings import Combination, Finding, SectorSpec, UnitAlarm, normal, rising
from chalicelib.domain.levels import Level
from chalicelib.domain.telemetry import STRICT, Envelope

if TYPE_CHECKING:
    from chalicelib.domain.registry import DeviceRegistration, Setpoint

# --- telemetry: gas detectors, tank gauges -----------------------------------------------------------------------


class HazchemMetrics(BaseModel):
    model_config = STRICT
    gas_lel_pct: Annotated[float, Field(ge=0, le=100)] | None = None
    toxic_ppm: Annotated[float, Field(ge=0, le=10000)] | None = None
    o2_pct_vol: Annotated[float, Field(ge=0, le=30)] | None = None
    level_pct: Annotated[float, Field(ge=-5, le=110)] | None = None
    temperature_c: Annotated[float, Field(ge=-200, le=1200)] | None = None
    pressure_kpa: Annotated[float, Field(ge=-101.3, le=50000)] | None = None
    interlock_ok: bool | None = None  # False: the SIS interlock did not act (or is bypassed)


class HazchemEvent(BaseModel):
    model_config = STRICT
    code: Literal["detector_fault"]


class HazchemMessage(Envelope):
    sector: Literal["hazchem"]
    metrics: HazchemMetrics = HazchemMetrics()
    events: tuple[HazchemEvent, ...] = ()


_NONE = int(Level.NONE)
_BLUE = int(Level.BLUE)
_YELLOW = int(Level.YELLOW)
_ORANGE = int(Level.ORANGE)
_RED = int(Level.RED)

COMBUSTIBLE_GAS = "combustible_gas"
GAS_DETECTOR_FAULT = "gas_detector_fault"
TOXIC_GAS = "toxic_gas"
OXYGEN = "oxygen"
TANK_LEVEL = "tank_level"
TANK_TEMPERATURE = "tank_temperature"
TANK_PRESSURE = "tank_pressure"

TAG_GAS_L1 = "gas_l1"
TAG_GAS_L2 = "gas_l2"
TAG_TOXIC_L2 = "toxic_l2"
TAG_HH = "hh"

_GAS_AT_LEAST_L1 = frozenset({TAG_GAS_L1, TAG_GAS_L2})


class HazchemConfig(BaseModel):
    """Every tunable number of the hazardous-chemicals model; defaults follow DOMAIN.md §2.2.

    Gas setpoints here apply only when the device has none registered. Hysteresis bands set how far a value must
    come back below (or above, for low alarms) a threshold before a standing warning may fall.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gas_blue_lel_pct: float = Field(default=10.0, gt=0, le=100)
    gas_l1_lel_pct: float = Field(default=25.0, gt=0, le=100)  # GB/T 50493: level-1 setpoint ≤ 25 %LEL
    gas_l2_lel_pct: float = Field(default=50.0, gt=0, le=100)  # GB/T 50493: level-2 setpoint ≤ 50 %LEL
    gas_band_lel_pct: float = Field(default=2.0, ge=0)

    toxic_blue_oel_fraction: float = Field(default=0.5, gt=0)
    toxic_l1_oel_fraction: float = Field(default=1.0, gt=0)  # GB/T 50493: level-1 ≤ 100 % OEL
    toxic_l2_oel_fraction: float = Field(default=2.0, gt=0)  # GB/T 50493: level-2 ≤ 200 % OEL
    toxic_band_oel_fraction: float = Field(default=0.1, ge=0)
    default_oel_ppm: float | None = Field(default=10.0, gt=0)  # None: toxic readings without a registration pass

    oxygen_low_pct_vol: float = Field(default=19.5, ge=0, le=100)
    oxygen_high_pct_vol: float = Field(default=23.5, ge=0, le=100)
    oxygen_band_pct_vol: float = Field(default=0.2, ge=0)

    tank_blue_h_fraction: float = Field(default=0.9, gt=0, lt=1)
    tank_band_setpoint_fraction: float = Field(default=0.02, ge=0)
    tank_level_band_min_pct: float = Field(default=0.5, ge=0)
    tank_temperature_band_min_c: float = Field(default=0.5, ge=0)
    tank_pressure_band_min_kpa: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _tiers_are_ordered(self) -> HazchemConfig:
        if not self.gas_blue_lel_pct < self.gas_l1_lel_pct < self.gas_l2_lel_pct:
            raise ValueError("gas tiers must rise: blue < level-1 < level-2")
        if not self.toxic_blue_oel_fraction < self.toxic_l1_oel_fraction < self.toxic_l2_oel_fraction:
            raise ValueError("toxic tiers must rise: blue < level-1 < level-2")
        if not self.oxygen_low_pct_vol < self.oxygen_high_pct_vol:
            raise ValueError("oxygen band must have low < high")
        return self


_LIMITS_CACHE_SIZE = 65536  # registered setpoints whose derived thresholds are kept, per gauge kind


@dataclass(frozen=True, slots=True)
class _TankLimits:
    """Thresholds derived from one registered tank setpoint (H/HH/L/LL, the blue near-H value, the bands).

    A value strictly between `quiet_above` and `quiet_below` breaches nothing and holds nothing.
    """

    setpoint: Setpoint
    near: float | None
    h: float | None
    hh: float | None
    low: float | None
    low_low: float | None
    high_band: float
    low_band: float
    quiet_above: float
    quiet_below: float

    @classmethod
    def derive(
        cls, setpoint: Setpoint, blue_h_fraction: float, band_fraction: float, band_min: float
    ) -> _TankLimits:
        h, hh, low, low_low = setpoint.h, setpoint.hh, setpoint.l, setpoint.ll
        # Blue is "≥ 90 % of H": only meaningful for a positive H (not for, e.g., a cryogenic temperature).
        # Rounded so that 90 % of 1.6 is 1.44, not 1.4400000000000002.
        near = round(blue_h_fraction * h, 9) if h is not None and h > 0 else None
        high_reference = h if h is not None else hh
        low_reference = low if low is not None else low_low
        high_band = 0.0 if high_reference is None else max(band_min, band_fraction * abs(high_reference))
        low_band = 0.0 if low_reference is None else max(band_min, band_fraction * abs(low_reference))
        highs = [value for value in (near, h, hh) if value is not None]
        lows = [value for value in (low, low_low) if value is not None]
        return cls(
            setpoint,
            near,
            h,
            hh,
            low,
            low_low,
            high_band,
            low_band,
            quiet_above=max(lows) + low_band if lows else -math.inf,
            quiet_below=min(highs) - high_band if highs else math.inf,
        )


@dataclass(frozen=True, slots=True)
class _TankParameter:
    """One tank gauge metric graded against its H/HH/L/LL setpoints; `texts` maps a breach kind to reason/title."""

    metric: str
    risk_type: str
    family: str
    unit: str
    band_min: float
    texts: Mapping[str, tuple[str, str]]
    normal: Finding
    limits_cache: dict[int, _TankLimits]


@dataclass(frozen=True, slots=True)
class _TankGrade:
    """A tank parameter's grade before the same-message HH rules (interlock, several parameters at HH)."""

    parameter: _TankParameter
    value: float
    level: int
    hold: int
    kind: str
    threshold: float
    at_hh: bool
    held_hh: bool


def _tank_texts(risk_type: str, name_zh: str) -> dict[str, tuple[str, str]]:
    return {
        "near_h": (f"{risk_type}_near_h", f"{name_zh}接近高报"),
        "h": (f"{risk_type}_h", f"{name_zh}高报"),
        "hh": (f"{risk_type}_hh", f"{name_zh}高高报"),
        "l": (f"{risk_type}_l", f"{name_zh}低报"),
        "ll": (f"{risk_type}_ll", f"{name_zh}低低报"),
        "hh_interlock": (f"{risk_type}_hh_interlock_failed", f"{name_zh}高高报联锁未动作"),
        "hh_multi": (f"{risk_type}_hh_multi", f"{name_zh}高高报(多参数)"),
    }


_GAS_TEXTS = {
    _BLUE: ("gas_elevated", "可燃气体浓度偏高"),
    _YELLOW: ("gas_level1", "可燃气体一级报警"),
    _ORANGE: ("gas_level2", "可燃气体二级报警"),
}
_GAS_TAGS = {_BLUE: "", _YELLOW: TAG_GAS_L1, _ORANGE: TAG_GAS_L2}
_TOXIC_TEXTS = {
    _BLUE: ("toxic_elevated", "有毒气体浓度偏高"),
    _YELLOW: ("toxic_level1", "有毒气体一级报警"),
    _ORANGE: ("toxic_level2", "有毒气体二级报警"),
}
_TOXIC_TAGS = {_BLUE: "", _YELLOW: "", _ORANGE: TAG_TOXIC_L2}

_DETECTOR_FAULT = Finding(
    GAS_DETECTOR_FAULT,
    _BLUE,
    _BLUE,
    reason="detector_fault",
    title="气体探测器故障",
    family="gas",
    immediate=True,
)


class HazchemModel:
    """Hazardous-chemical enterprise model: gas detectors, oxygen, tank gauges (DOMAIN.md §2.2).

    Risk types: combustible_gas, gas_detector_fault, toxic_gas, oxygen, tank_level, tank_temperature,
    tank_pressure. Registered setpoints (by metric name) win over the config defaults; tank gauges without
    registered setpoints are not graded (the DCS tag list is the only source of those values).
    """

    stuck_metrics: tuple[str, ...] = ("level_pct", "temperature_c", "pressure_kpa")
    durable_memory: tuple[str, ...] = ()  # no memory

    def __init__(self, config: HazchemConfig | None = None) -> None:
        self.config = cfg = config or HazchemConfig()
        self._gas_blue = cfg.gas_blue_lel_pct
        self._gas_l1 = cfg.gas_l1_lel_pct
        self._gas_l2 = cfg.gas_l2_lel_pct
        self._gas_band = cfg.gas_band_lel_pct
        # Below this a combustible reading without registered setpoints is normal and holds nothing.
        self._gas_quiet_below = cfg.gas_blue_lel_pct - cfg.gas_band_lel_pct
        self._o2_low = cfg.oxygen_low_pct_vol
        self._o2_high = cfg.oxygen_high_pct_vol
        self._o2_band = cfg.oxygen_band_pct_vol
        self._o2_quiet_low = cfg.oxygen_low_pct_vol + cfg.oxygen_band_pct_vol
        self._o2_quiet_high = cfg.oxygen_high_pct_vol - cfg.oxygen_band_pct_vol
        self._tank_parameters = (
            _TankParameter(
                "level_pct",
                TANK_LEVEL,
                "level",
                "%",
                cfg.tank_level_band_min_pct,
                _tank_texts(TANK_LEVEL, "液位"),
                normal(TANK_LEVEL),
                {},
            ),
            _TankParameter(
                "temperature_c",
                TANK_TEMPERATURE,
                "temperature",
                "°C",
                cfg.tank_temperature_band_min_c,
                _tank_texts(TANK_TEMPERATURE, "温度"),
                normal(TANK_TEMPERATURE),
                {},
            ),
            _TankParameter(
                "pressure_kpa",
                TANK_PRESSURE,
                "pressure",
                "kPa",
                cfg.tank_pressure_band_min_kpa,
                _tank_texts(TANK_PRESSURE, "压力"),
                normal(TANK_PRESSURE),
                {},
            ),
        )
        self._normal_gas = normal(COMBUSTIBLE_GAS)
        self._normal_fault = normal(GAS_DETECTOR_FAULT)
        self._normal_toxic = normal(TOXIC_GAS)
        self._normal_oxygen = normal(OXYGEN)

    # --- evaluate -----------------------------------------------------------------------------------------------

    def evaluate(
        self, reg: DeviceRegistration, msg: HazchemMessage, scratch: dict[str, Any], now_s: float
    ) -> list[Finding]:
        """Grade each risk type the message carries a reading or event for (needs no memory: `scratch` unused)."""
        metrics = msg.metrics
        findings: list[Finding] = []
        gas = metrics.gas_lel_pct
        toxic = metrics.toxic_ppm
        if gas is not None:
            findings.append(self._grade_combustible(reg, gas))
        if toxic is not None:
            findings.append(self._grade_toxic(reg, toxic))
        if msg.events:
            findings.append(_DETECTOR_FAULT)
        elif gas is not None or toxic is not None:
            findings.append(self._normal_fault)  # a detector that reports a reading is working again
        oxygen = metrics.o2_pct_vol
        if oxygen is not None:
            findings.append(self._grade_oxygen(oxygen))
        if metrics.level_pct is not None or metrics.temperature_c is not None or metrics.pressure_kpa is not None:
            self._grade_tanks(reg, metrics, findings)
        return findings

    def _grade_combustible(self, reg: DeviceRegistration, value: float) -> Finding:
        setpoint = reg.setpoints.get("gas_lel_pct")
        if setpoint is None:
            if value < self._gas_quiet_below:
                return self._normal_gas
            l1, l2 = self._gas_l1, self._gas_l2
        else:
            l1 = self._gas_l1 if setpoint.l1 is None else setpoint.l1
            l2 = self._gas_l2 if setpoint.l2 is None else setpoint.l2
            held = value + self._gas_band
            if held < self._gas_blue and held < l1 and held < l2:
                return self._normal_gas
        level, hold = rising(value, (self._gas_blue, l1, l2, None), self._gas_band)
        if hold == _NONE:
            return self._normal_gas
        if level == _NONE:
            return Finding(COMBUSTIBLE_GAS, _NONE, hold, family="gas")
        reason, title = _GAS_TEXTS[level]
        return Finding(
            COMBUSTIBLE_GAS,
            level,
            hold,
            reason=reason,
            title=title,
            value=value,
            unit="%LEL",
            family="gas",
            tag=_GAS_TAGS[level],
            params={"blue": self._gas_blue, "l1": l1, "l2": l2},
        )

    def _grade_toxic(self, reg: DeviceRegistration, value: float) -> Finding:
        cfg = self.config
        setpoint = reg.setpoints.get("toxic_ppm")
        l1_set = setpoint.l1 if setpoint is not None else None
        l2_set = setpoint.l2 if setpoint is not None else None
        oel = reg.static.oel_ppm
        if oel is None:
            if l1_set is not None:
                oel = l1_set / cfg.toxic_l1_oel_fraction
            elif l2_set is not None:
                oel = l2_set / cfg.toxic_l2_oel_fraction
            else:
                oel = cfg.default_oel_ppm
                if oel is None:
                    return self._normal_toxic
        blue = cfg.toxic_blue_oel_fraction * oel
        l1 = cfg.toxic_l1_oel_fraction * oel if l1_set is None else l1_set
        l2 = cfg.toxic_l2_oel_fraction * oel if l2_set is None else l2_set
        band = cfg.toxic_band_oel_fraction * oel
        held = value + band
        if held < blue and held < l1 and held < l2:
            return self._normal_toxic
        level, hold = rising(value, (blue, l1, l2, None), band)
        if hold == _NONE:
            return self._normal_toxic
        if level == _NONE:
            return Finding(TOXIC_GAS, _NONE, hold, family="toxic")
        reason, title = _TOXIC_TEXTS[level]
        return Finding(
            TOXIC_GAS,
            level,
            hold,
            reason=reason,
            title=title,
            value=value,
            unit="ppm",
            family="toxic",
            tag=_TOXIC_TAGS[level],
            params={"oel_ppm": oel, "l1": l1, "l2": l2},
        )

    def _grade_oxygen(self, value: float) -> Finding:
        if self._o2_quiet_low <= value <= self._o2_quiet_high:
            return self._normal_oxygen
        low, high, band = self._o2_low, self._o2_high, self._o2_band
        if value - band < low:
            level = _YELLOW if value < low else _NONE
            reason, title, threshold = "oxygen_low", "氧含量过低", low
        elif value + band > high:
            level = _YELLOW if value > high else _NONE
            reason, title, threshold = "oxygen_high", "氧含量过高", high
        else:
            return self._normal_oxygen
        if level == _NONE:
            return Finding(OXYGEN, _NONE, _YELLOW, family="oxygen")
        return Finding(
            OXYGEN,
            level,
            _YELLOW,
            reason=reason,
            title=title,
            value=value,
            unit="%VOL",
            family="oxygen",
            params={"threshold": threshold},
        )

    def _grade_tanks(self, reg: DeviceRegistration, metrics: HazchemMetrics, findings: list[Finding]) -> None:
        """Grade each tank gauge, then apply the same-message red rules: HH with the interlock not acting, or
        several parameters of this device at HH."""
        setpoints = reg.setpoints
        grades: list[_TankGrade] = []
        level_gauge, temperature_gauge, pressure_gauge = self._tank_parameters
        for parameter, value in (
            (level_gauge, metrics.level_pct),
            (temperature_gauge, metrics.temperature_c),
            (pressure_gauge, metrics.pressure_kpa),
        ):
            if value is None:
                continue
            setpoint = setpoints.get(parameter.metric)
            if setpoint is not None:
                limits = self._tank_limits(parameter, setpoint)
                if not limits.quiet_above < value < limits.quiet_below:
                    grades.append(_grade_tank_parameter(parameter, limits, value))
                    continue
            findings.append(parameter.normal)
        if not grades:
            return
        interlock_failed = metrics.interlock_ok is False
        at_hh = sum(1 for grade in grades if grade.at_hh)
        held_hh = sum(1 for grade in grades if grade.held_hh)
        for grade in grades:
            findings.append(_tank_finding(grade, interlock_failed, at_hh, held_hh))

    def _tank_limits(self, parameter: _TankParameter, setpoint: Setpoint) -> _TankLimits:
        """The thresholds derived from a registered setpoint, cached by the setpoint object's identity."""
        cache = parameter.limits_cache
        cached = cache.get(id(setpoint))
        if cached is not None and cached.setpoint is setpoint:
            return cached
        if len(cache) >= _LIMITS_CACHE_SIZE:
            cache.clear()
        cfg = self.config
        limits = cache[id(setpoint)] = _TankLimits.derive(
            setpoint, cfg.tank_blue_h_fraction, cfg.tank_band_setpoint_fraction, parameter.band_min
        )
        return limits

    # --- unit rules ---------------------------------------------------------------------------------------------

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        """Unit rules of §2.2: level-1 on ≥ 2 detectors → orange; level-2 on ≥ 2 detectors, level-2 plus a
        process HH, toxic level-2 on ≥ 2 detectors, or HH plus another HH → red. Never lowers a level.

        Gas tags are only ever set on one risk type per device, so any other alarm bearing the tag is another
        detector.
        """
        tag = finding.tag
        if not tag or finding.level >= _RED:
            return None
        if tag == TAG_GAS_L2:
            for other in others:
                if other.tag == TAG_GAS_L2:
                    return Combination(_RED, "gas_level2_two_detectors")
            for other in others:
                if other.tag == TAG_HH:
                    return Combination(_RED, "gas_level2_with_process_hh")
        elif tag == TAG_GAS_L1:
            if finding.level < _ORANGE and any(other.tag in _GAS_AT_LEAST_L1 for other in others):
                return Combination(_ORANGE, "gas_level1_two_detectors")
        elif tag == TAG_TOXIC_L2:
            if any(other.tag == TAG_TOXIC_L2 for other in others):
                return Combination(_RED, "toxic_level2_two_detectors")
        elif tag == TAG_HH:
            for other in others:
                if other.tag == TAG_HH:
                    return Combination(_RED, "process_hh_with_other_hh")
            for other in others:
                if other.tag == TAG_GAS_L2:
                    return Combination(_RED, "process_hh_with_gas_level2")
        return None


def _grade_tank_parameter(parameter: _TankParameter, limits: _TankLimits, value: float) -> _TankGrade:
    """Grade one gauge against its setpoints; setpoints are inclusive on both sides ("at H" is a breach)."""
    level = hold = _NONE
    kind = ""
    threshold = 0.0
    at_hh = held_hh = False
    held = value + limits.high_band
    near, h, hh = limits.near, limits.h, limits.hh
    if near is not None:
        if value >= near:
            level, kind, threshold = _BLUE, "near_h", near
        if held >= near:
            hold = _BLUE
    if h is not None:
        if value >= h:
            level, kind, threshold = _YELLOW, "h", h
        if held >= h:
            hold = _YELLOW
    if hh is not None:
        if value >= hh:
            level, kind, threshold, at_hh = _ORANGE, "hh", hh, True
        if held >= hh:
            hold, held_hh = _ORANGE, True
    held = value - limits.low_band
    low, low_low = limits.low, limits.low_low
    if low is not None:
        if value <= low and level < _YELLOW:
            level, kind, threshold = _YELLOW, "l", low
        if held <= low and hold < _YELLOW:
            hold = _YELLOW
    if low_low is not None:
        if value <= low_low and level < _ORANGE:
            level, kind, threshold = _ORANGE, "ll", low_low
        if held <= low_low and hold < _ORANGE:
            hold = _ORANGE
    return _TankGrade(parameter, value, level, hold, kind, threshold, at_hh, held_hh)


def _tank_finding(grade: _TankGrade, interlock_failed: bool, at_hh: int, held_hh: int) -> Finding:
    """The finding for one graded gauge, with HH turned red when the interlock failed or ≥ 2 gauges are at HH."""
    parameter = grade.parameter
    level, hold, kind = grade.level, grade.hold, grade.kind
    params: dict[str, Any] = {"threshold": grade.threshold}
    if grade.held_hh and (interlock_failed or held_hh >= 2):
        hold = _RED
    if grade.at_hh:
        if interlock_failed:
            level, kind = _RED, "hh_interlock"
            params["interlock_ok"] = False
        elif at_hh >= 2:
            level, kind = _RED, "hh_multi"
            params["hh_count"] = at_hh
    if level == _NONE:
        if hold == _NONE:
            return parameter.normal
        return Finding(parameter.risk_type, _NONE, hold, family=parameter.family)
    reason, title = parameter.texts[kind]
    return Finding(
        parameter.risk_type,
        level,
        hold,
        reason=reason,
        title=title,
        value=grade.value,
        unit=parameter.unit,
        family=parameter.family,
        tag=TAG_HH if grade.at_hh else "",
        params=params,
    )


SECTOR = SectorSpec(
    zh="危险化学品",
    message=HazchemMessage,
    config=HazchemConfig,
    model=HazchemModel,
    risk_types={
        COMBUSTIBLE_GAS: "可燃气体浓度",
        GAS_DETECTOR_FAULT: "气体探测器故障",
        TOXIC_GAS: "有毒气体浓度",
        OXYGEN: "氧含量",
        TANK_LEVEL: "储罐液位",
        TANK_TEMPERATURE: "储罐温度",
        TANK_PRESSURE: "储罐压力",
    },
    regulators=("emergency_bureau",),
)
