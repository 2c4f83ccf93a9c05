"""Risk model for hazardous-chemical and oil/gas pipelines (DOMAIN.md §2.5).

Third-party activity near the line (石油天然气管道保护法 第30/35条: 5 m, 50 m, 200 m zones), pressure and
flow against the registered normal operating values and MAOP, sudden pressure drops, confirmed leaks
(negative-pressure wave or mass balance) and combustible gas in valve pits (GB/T 50493 setpoints, as in §2.2).
Both pipeline sectors share this model; high-consequence-area class III (+1) is applied by the grading engine.

"Intrusion plus pressure drop" (the red cell of §2.5's third-party row) counts every pressure drop that is itself
alarming: a sudden drop (`sudden_drop_fraction` of normal within `sudden_drop_window_s`, orange by itself) or a
reading below normal by `pressure_yellow_deviation` or more (yellow by itself; yellow is the policy's alarming
level). A reading inside that band (e.g. 9 % below normal: blue) or above normal is no drop for this rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.findings import Combination, Finding, SectorSpec, UnitAlarm, normal, rising
from chalicelib.domain.levels import Level
from chalicelib.domain.telemetry import STRICT, Envelope

if TYPE_CHECKING:
    from chalicelib.domain.registry import DeviceRegistration

# --- telemetry: both pipeline sectors, one payload --------------------------------------------------------


class PipelineMetrics(BaseModel):
    model_config = STRICT
    pressure_mpa: Annotated[float, Field(ge=0, le=40)] | None = None
    flow_m3h: Annotated[float, Field(ge=0, le=100000)] | None = None
    gas_lel_pct: Annotated[float, Field(ge=0, le=100)] | None = None


ThirdPartyKind = Literal[
    "blasting", "excavation", "works", "machinery", "digging", "drilling", "intrusion", "damage"
]


class PipelineEvent(BaseModel):
    """Third-party activity (fibre-optic vibration, video, patrol) or leak detection."""

    model_config = STRICT
    code: Literal["third_party", "npw_leak", "mass_balance_leak"]
    kind: ThirdPartyKind | None = None
    distance_m: Annotated[float, Field(ge=0, le=5000)] | None = None
    permit: bool = False


class ChemPipelineMessage(Envelope):
    sector: Literal["chem_pipeline"]
    metrics: PipelineMetrics = PipelineMetrics()
    events: tuple[PipelineEvent, ...] = ()


class OilGasPipelineMessage(Envelope):
    sector: Literal["oil_gas_pipeline"]
    metrics: PipelineMetrics = PipelineMetrics()
    events: tuple[PipelineEvent, ...] = ()


_NONE = int(Level.NONE)
_BLUE = int(Level.BLUE)
_YELLOW = int(Level.YELLOW)
_ORANGE = int(Level.ORANGE)
_RED = int(Level.RED)

THIRD_PARTY = "third_party"
PRESSURE = "pressure"
FLOW = "flow"
PIT_GAS = "pit_gas"
LEAK = "leak"

TAG_INTRUSION = "intrusion"
TAG_PRESSURE_DROP = "pressure_drop"
TAG_LEAK = "leak"

# scratch keys (the device state must stay small)
_PREVIOUS_PRESSURE = "pv"  # last pressure reading, MPa
_PREVIOUS_PRESSURE_TS = "pt"  # its time, epoch s
_DROP_TS = "pd"  # time of the last sudden pressure drop
_LOW_TS = "pl"  # time of the latest reading, while it is below normal by the yellow deviation or more
_INTRUSION_TS = "it"  # time of the last intrusion event
_THIRD_PARTY_LEVEL = "tl"  # level held after the last third-party event
_THIRD_PARTY_TS = "tt"  # time of the last third-party event that raised a level

# Ratios within this of a tier boundary count as on it: 7.2 MPa is 10 % below 8.0 MPa, whatever the binary floats.
_RATIO_TOLERANCE = 1e-9

_SUDDEN_DROP = "pressure_sudden_drop"
_INTRUSION_WITH_DROP = ("intrusion_with_pressure_drop", "入侵且压力下降")

PipelineMessage = ChemPipelineMessage | OilGasPipelineMessage

_KIND_ZH: dict[str, str] = {
    "blasting": "爆破",
    "excavation": "开挖",
    "works": "施工",
    "machinery": "机械作业",
    "digging": "挖掘",
    "drilling": "钻探",
    "intrusion": "入侵",
    "damage": "破坏",
}


class PipelineConfig(BaseModel):
    """Every tunable number of the pipeline model; defaults follow DOMAIN.md §2.5.

    Deviations and bands are fractions of the registered normal value (or of the MAOP for the MAOP band).
    Zone distances default to the Petroleum and Natural Gas Pipeline Protection Law (5 / 50 / 200 m).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pressure_blue_deviation: float = Field(default=0.05, gt=0)
    pressure_yellow_deviation: float = Field(default=0.10, gt=0)
    flow_blue_deviation: float = Field(default=0.05, gt=0)
    flow_yellow_deviation: float = Field(default=0.10, gt=0)
    deviation_band: float = Field(default=0.01, ge=0)
    maop_band: float = Field(default=0.01, ge=0, lt=1)

    sudden_drop_fraction: float = Field(default=0.15, gt=0, lt=1)  # of normal (of the previous reading if none)
    sudden_drop_window_s: float = Field(default=300.0, gt=0)  # the previous reading must be this recent
    sudden_drop_hold_s: float = Field(default=600.0, ge=0)  # orange is held this long after a drop

    pit_gas_l1_lel_pct: float = Field(default=25.0, gt=0, le=100)
    pit_gas_l2_lel_pct: float = Field(default=50.0, gt=0, le=100)
    pit_gas_band_lel_pct: float = Field(default=2.0, ge=0)

    near_zone_m: float = Field(default=5.0, ge=0)  # 第30条: listed acts banned within 5 m
    works_zone_m: float = Field(default=50.0, gt=0)  # 第35条: works 5–50 m need approval
    blasting_zone_m: float = Field(default=200.0, gt=0)  # 第35条: blasting/excavation within 200 m need approval
    near_zone_orange_kinds: frozenset[ThirdPartyKind] = frozenset(
        {"machinery", "digging", "drilling", "excavation", "blasting"}
    )
    unpermitted_blue_kinds: frozenset[ThirdPartyKind] = frozenset({"blasting", "excavation"})
    permit_clears_works_zone: bool = False  # True: permitted activity 5–50 m raises nothing
    unknown_distance_m: float = Field(default=50.0, ge=0)  # distance assumed when an event carries none
    intrusion_level: Level = Level.YELLOW  # an intrusion without a pressure drop
    intrusion_drop_window_s: float = Field(default=600.0, gt=0)  # intrusion + alarming pressure drop → red
    third_party_hold_s: float = Field(default=1800.0, ge=0)  # a third-party level is held this long

    @model_validator(mode="after")
    def _tiers_are_ordered(self) -> PipelineConfig:
        if not self.pressure_blue_deviation < self.pressure_yellow_deviation:
            raise ValueError("pressure deviation tiers must rise: blue < yellow")
        if not self.flow_blue_deviation < self.flow_yellow_deviation:
            raise ValueError("flow deviation tiers must rise: blue < yellow")
        if not self.pit_gas_l1_lel_pct < self.pit_gas_l2_lel_pct:
            raise ValueError("pit gas tiers must rise: level-1 < level-2")
        if not self.near_zone_m < self.works_zone_m <= self.blasting_zone_m:
            raise ValueError("zones must widen: near < works <= blasting")
        if self.intrusion_level == Level.NONE:
            raise ValueError("intrusion_level must be a warning level")
        return self


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _metres(distance: float) -> str:
    return f"{distance:g}米"


class PipelineModel:
    """Pipeline model shared by `chem_pipeline` and `oil_gas_pipeline` (DOMAIN.md §2.5).

    Risk types: third_party, pressure, flow, pit_gas, leak. Memory in `scratch`: the previous pressure reading
    (sudden drops), the last sudden drop, the latest low reading (below normal by the yellow deviation or more)
    and the last intrusion (intrusion plus an alarming pressure drop within `intrusion_drop_window_s` → red), and
    the third-party level held for `third_party_hold_s` after the last event.

    An alarming pressure drop is a sudden drop or a reading below the yellow deviation band; a pressure finding
    that is one carries the tag `pressure_drop`, so the unit rule pairs it with an intrusion on another device.
    """

    stuck_metrics: tuple[str, ...] = ("pressure_mpa", "flow_m3h")
    # written at once when they change; the previous pressure sample rides on the coalesced state writes
    durable_memory: tuple[str, ...] = ("pd", "it", "tl", "tt")

    def __init__(self, sector: str, config: PipelineConfig | None = None) -> None:
        if sector not in (CHEM_PIPELINE.code, OIL_GAS_PIPELINE.code):
            raise ValueError(f"PipelineModel grades pipeline sectors only, not {sector}")
        self.sector = sector
        self.config = cfg = config or PipelineConfig()
        self._normal_third_party = normal(THIRD_PARTY)
        self._normal_pressure = normal(PRESSURE)
        self._normal_flow = normal(FLOW)
        self._normal_pit_gas = normal(PIT_GAS)
        self._maop_hold_fraction = 1.0 - cfg.maop_band  # above this fraction of MAOP an orange is held
        self._pit_quiet_below = cfg.pit_gas_l1_lel_pct - cfg.pit_gas_band_lel_pct
        self._near_orange_titles = {kind: f"{_metres(cfg.near_zone_m)}内{zh}" for kind, zh in _KIND_ZH.items()}
        self._works_titles = {kind: f"{_metres(cfg.works_zone_m)}内{zh}" for kind, zh in _KIND_ZH.items()}
        self._blasting_titles = {
            kind: f"{_metres(cfg.blasting_zone_m)}内{zh}未审批" for kind, zh in _KIND_ZH.items()
        }
        self._deviation_titles = {
            (PRESSURE, _BLUE, True): f"压力偏高{_pct(cfg.pressure_blue_deviation)}以上",
            (PRESSURE, _YELLOW, True): f"压力偏高{_pct(cfg.pressure_yellow_deviation)}以上",
            (PRESSURE, _BLUE, False): f"压力偏低{_pct(cfg.pressure_blue_deviation)}以上",
            (PRESSURE, _YELLOW, False): f"压力偏低{_pct(cfg.pressure_yellow_deviation)}以上",
            (FLOW, _BLUE, True): f"流量偏高{_pct(cfg.flow_blue_deviation)}以上",
            (FLOW, _YELLOW, True): f"流量偏高{_pct(cfg.flow_yellow_deviation)}以上",
            (FLOW, _BLUE, False): f"流量偏低{_pct(cfg.flow_blue_deviation)}以上",
            (FLOW, _YELLOW, False): f"流量偏低{_pct(cfg.flow_yellow_deviation)}以上",
        }
        # Findings for messages inside the third-party hold window, by (held level, recent intrusion): the level
        # stays raw (so the unit rule still sees it) but is no new event.
        self._third_party_holds = {
            (level, intrusion): Finding(
                THIRD_PARTY,
                level,
                level,
                reason="third_party_hold",
                title="管道周边第三方活动",
                family=THIRD_PARTY,
                tag=TAG_INTRUSION if intrusion and level < _RED else "",
                params={"hold_s": cfg.third_party_hold_s},
            )
            for level in (_BLUE, _YELLOW, _ORANGE, _RED)
            for intrusion in (False, True)
        }

    # --- evaluate -----------------------------------------------------------------------------------------------

    def evaluate(
        self, reg: DeviceRegistration, msg: PipelineMessage, scratch: dict[str, Any], now_s: float
    ) -> list[Finding]:
        """Grade the readings and events of one message; see the class docstring for what `scratch` keeps."""
        metrics = msg.metrics
        findings: list[Finding] = []
        dropped = below_band = False
        pressure = metrics.pressure_mpa
        if pressure is not None:
            normal_value, maop = _normal_and_maop(reg)
            below_band = self._below_alarming_band(pressure, normal_value)
            self._remember_low_pressure(below_band, scratch, now_s)
            dropped = self._sudden_drop(pressure, normal_value, scratch, now_s)
            findings.append(
                self._grade_pressure(pressure, normal_value, maop, dropped, below_band, scratch, now_s)
            )
        flow = metrics.flow_m3h
        if flow is not None:
            findings.append(self._grade_flow(reg, flow))
        gas = metrics.gas_lel_pct
        if gas is not None:
            findings.append(self._grade_pit_gas(reg, gas))
        alarming_drop = dropped or below_band
        events = msg.events
        if events:
            self._grade_events(events, scratch, now_s, alarming_drop, findings)
        elif alarming_drop or _THIRD_PARTY_TS in scratch:
            self._third_party_without_event(scratch, now_s, alarming_drop, findings)
        return findings

    # --- pressure and flow --------------------------------------------------------------------------------------

    def _grade_pressure(
        self,
        pressure: float,
        normal_value: float | None,
        maop: float | None,
        dropped: bool,
        below_band: bool,
        scratch: dict[str, Any],
        now_s: float,
    ) -> Finding:
        """Deviation from normal (blue/yellow), above MAOP (orange), a sudden drop (orange, kept raw for
        `sudden_drop_hold_s` so that the unit rule can pair it with an intrusion). A sudden drop, and a reading
        below the yellow deviation band (`below_band`), are tagged `pressure_drop` for the unit rule."""
        cfg = self.config
        maop_hold = self._maop_hold_fraction

        level = hold = _NONE
        high = True
        if normal_value is not None:
            high = pressure >= normal_value
            deviation = abs(pressure - normal_value) / normal_value + _RATIO_TOLERANCE
            if deviation + cfg.deviation_band >= cfg.pressure_blue_deviation:
                level, hold = rising(
                    deviation, (cfg.pressure_blue_deviation, cfg.pressure_yellow_deviation), cfg.deviation_band
                )
            elif not dropped and _DROP_TS not in scratch and (maop is None or pressure <= maop * maop_hold):
                return self._normal_pressure
        above_maop = maop is not None and pressure > maop
        if maop is not None and pressure > maop * maop_hold:
            hold = _ORANGE
        if dropped:
            return Finding(
                PRESSURE,
                _ORANGE,
                _ORANGE,
                reason=_SUDDEN_DROP,
                title="压力突降",
                value=pressure,
                unit="MPa",
                family=PRESSURE,
                tag=TAG_PRESSURE_DROP,
                immediate=True,
                params={"drop_fraction": cfg.sudden_drop_fraction, "window_s": cfg.sudden_drop_window_s},
            )
        drop_held = False
        drop_ts = scratch.get(_DROP_TS)
        if drop_ts is not None:
            if 0 <= now_s - drop_ts < cfg.sudden_drop_hold_s:
                drop_held = True
            elif now_s - drop_ts >= max(cfg.sudden_drop_hold_s, cfg.intrusion_drop_window_s):
                del scratch[_DROP_TS]
        if above_maop:
            return Finding(
                PRESSURE,
                _ORANGE,
                _ORANGE,
                reason="pressure_above_maop",
                title="压力超最大允许值",
                value=pressure,
                unit="MPa",
                family=PRESSURE,
                tag=TAG_PRESSURE_DROP if drop_held else "",
                params={"maop": maop},
            )
        if drop_held:
            return Finding(
                PRESSURE,
                _ORANGE,
                _ORANGE,
                reason="pressure_drop_hold",
                title="压力突降",
                value=pressure,
                unit="MPa",
                family=PRESSURE,
                tag=TAG_PRESSURE_DROP,
                params={"drop_ts": drop_ts, "hold_s": cfg.sudden_drop_hold_s},
            )
        if hold == _NONE:
            return self._normal_pressure
        if level == _NONE:
            return Finding(PRESSURE, _NONE, hold, family=PRESSURE)
        return Finding(
            PRESSURE,
            level,
            hold if hold > level else level,
            reason="pressure_high_deviation" if high else "pressure_low_deviation",
            title=self._deviation_titles[PRESSURE, level, high],
            value=pressure,
            unit="MPa",
            family=PRESSURE,
            tag=TAG_PRESSURE_DROP if below_band else "",
            params={"normal": normal_value},
        )

    def _below_alarming_band(self, pressure: float, normal_value: float | None) -> bool:
        """True when the reading is below the registered normal by `pressure_yellow_deviation` or more: a pressure
        drop that is alarming by itself (yellow), so that with an intrusion it is red. No normal, no band."""
        if normal_value is None:
            return False
        shortfall = (normal_value - pressure) / normal_value + _RATIO_TOLERANCE
        return shortfall >= self.config.pressure_yellow_deviation

    @staticmethod
    def _remember_low_pressure(below_band: bool, scratch: dict[str, Any], now_s: float) -> None:
        """Keep the time of the latest reading while it is below the band; forget it once a reading is not.

        A message older than the latest pressure reading changes nothing (the newer reading stands)."""
        latest_ts = scratch.get(_PREVIOUS_PRESSURE_TS)
        if latest_ts is not None and now_s < latest_ts:
            return
        if below_band:
            scratch[_LOW_TS] = now_s
        else:
            scratch.pop(_LOW_TS, None)

    def _sudden_drop(
        self, pressure: float, normal_value: float | None, scratch: dict[str, Any], now_s: float
    ) -> bool:
        """Compare with the previous reading (if recent enough) and remember this one; True on a sudden drop.

        The drop is measured against the registered normal pressure, or against the previous reading without one.
        """
        cfg = self.config
        previous = scratch.get(_PREVIOUS_PRESSURE)
        previous_ts = scratch.get(_PREVIOUS_PRESSURE_TS)
        dropped = False
        if previous is not None and previous_ts is not None:
            elapsed = now_s - previous_ts
            if elapsed < 0:
                return False  # an older message arriving late: keep the newer reading
            if elapsed <= cfg.sudden_drop_window_s:
                reference = normal_value if normal_value is not None else previous
                drop = previous - pressure
                dropped = drop > 0 and drop / reference + _RATIO_TOLERANCE >= cfg.sudden_drop_fraction
        scratch[_PREVIOUS_PRESSURE] = pressure
        scratch[_PREVIOUS_PRESSURE_TS] = now_s
        if dropped:
            scratch[_DROP_TS] = now_s
        return dropped

    def _grade_flow(self, reg: DeviceRegistration, flow: float) -> Finding:
        setpoint = reg.setpoints.get("flow_m3h")
        normal_value = setpoint.normal if setpoint is not None else None
        if normal_value is None or normal_value <= 0:
            return self._normal_flow
        cfg = self.config
        deviation = abs(flow - normal_value) / normal_value + _RATIO_TOLERANCE
        if deviation + cfg.deviation_band < cfg.flow_blue_deviation:
            return self._normal_flow
        level, hold = rising(deviation, (cfg.flow_blue_deviation, cfg.flow_yellow_deviation), cfg.deviation_band)
        if level == _NONE:
            return Finding(FLOW, _NONE, hold, family=FLOW)
        high = flow >= normal_value
        return Finding(
            FLOW,
            level,
            hold,
            reason="flow_high_deviation" if high else "flow_low_deviation",
            title=self._deviation_titles[FLOW, level, high],
            value=flow,
            unit="m³/h",
            family=FLOW,
            params={"normal": normal_value},
        )

    def _grade_pit_gas(self, reg: DeviceRegistration, gas: float) -> Finding:
        cfg = self.config
        setpoint = reg.setpoints.get("gas_lel_pct")
        if setpoint is None:
            if gas < self._pit_quiet_below:
                return self._normal_pit_gas
            l1, l2 = cfg.pit_gas_l1_lel_pct, cfg.pit_gas_l2_lel_pct
        else:
            l1 = cfg.pit_gas_l1_lel_pct if setpoint.l1 is None else setpoint.l1
            l2 = cfg.pit_gas_l2_lel_pct if setpoint.l2 is None else setpoint.l2
        level, hold = rising(gas, (None, l1, l2), cfg.pit_gas_band_lel_pct)
        if hold == _NONE:
            return self._normal_pit_gas
        if level == _NONE:
            return Finding(PIT_GAS, _NONE, hold, family="gas")
        level_two = level == _ORANGE
        return Finding(
            PIT_GAS,
            level,
            hold,
            reason="pit_gas_level2" if level_two else "pit_gas_level1",
            title="阀井可燃气体二级报警" if level_two else "阀井可燃气体一级报警",
            value=gas,
            unit="%LEL",
            family="gas",
            tag="gas_l2" if level_two else "gas_l1",
            params={"l1": l1, "l2": l2},
        )

    # --- events -------------------------------------------------------------------------------------------------

    def _grade_events(
        self,
        events: Sequence[PipelineEvent],
        scratch: dict[str, Any],
        now_s: float,
        alarming_drop: bool,
        findings: list[Finding],
    ) -> None:
        """The worst third-party event of the message, red when it is an intrusion and an alarming pressure drop
        is at hand (now, or within `intrusion_drop_window_s`), or there is an alarming drop now after a recent
        intrusion; confirmed leaks."""
        third_party: tuple[int, str, str, PipelineEvent] | None = None
        intrusion = False
        leak_codes: list[str] = []
        for event in events:
            if event.code != "third_party":
                leak_codes.append(event.code)
                continue
            graded = self._grade_third_party(event)
            intrusion = intrusion or event.kind == "intrusion"
            if third_party is None or graded[0] > third_party[0]:
                third_party = (*graded, event)
        if leak_codes:
            findings.append(_leak_finding(leak_codes))
        if third_party is None:
            if alarming_drop or _THIRD_PARTY_TS in scratch:
                self._third_party_without_event(scratch, now_s, alarming_drop, findings)
            return

        level, reason, title, event = third_party
        if intrusion:
            scratch[_INTRUSION_TS] = now_s
        if level < _RED and self._intrusion_meets_drop(scratch, now_s, intrusion, alarming_drop):
            level = _RED
            reason, title = _INTRUSION_WITH_DROP
        held = self._held_third_party_level(scratch, now_s)
        hold = max(level, held)
        if level > _NONE:
            scratch[_THIRD_PARTY_LEVEL] = hold
            scratch[_THIRD_PARTY_TS] = now_s
        if level == _NONE:
            findings.append(self._held_third_party(scratch, now_s, held) if held else self._normal_third_party)
            return
        params: dict[str, Any] = {"kind": event.kind or "works", "permit": event.permit}
        if event.distance_m is not None:
            params["distance_m"] = event.distance_m
        findings.append(
            Finding(
                THIRD_PARTY,
                level,
                hold,
                reason=reason,
                title=title,
                value=event.distance_m,
                unit="m" if event.distance_m is not None else "",
                family=THIRD_PARTY,
                tag=TAG_INTRUSION if intrusion and level < _RED else "",
                immediate=True,
                params=params,
            )
        )

    def _grade_third_party(self, event: PipelineEvent) -> tuple[int, str, str]:
        """Level, reason and title of one third-party event by kind and distance (§2.5 table, inclusive edges).

        An event without a kind is graded as generic works; one without a distance at `unknown_distance_m`.
        """
        cfg = self.config
        kind = event.kind or "works"
        if kind == "damage":
            return _RED, "third_party_damage", "管道遭第三方破坏"
        if kind == "intrusion":
            return int(cfg.intrusion_level), "third_party_intrusion", "管道保护区入侵"
        distance = event.distance_m if event.distance_m is not None else cfg.unknown_distance_m
        if distance <= cfg.near_zone_m and kind in cfg.near_zone_orange_kinds:
            return _ORANGE, "third_party_near_zone", self._near_orange_titles[kind]
        if distance <= cfg.works_zone_m:
            if event.permit and cfg.permit_clears_works_zone:
                return _NONE, "", ""
            return _YELLOW, "third_party_works_zone", self._works_titles[kind]
        if distance <= cfg.blasting_zone_m and kind in cfg.unpermitted_blue_kinds and not event.permit:
            return _BLUE, "third_party_unpermitted", self._blasting_titles[kind]
        return _NONE, "", ""

    def _third_party_without_event(
        self, scratch: dict[str, Any], now_s: float, alarming_drop: bool, findings: list[Finding]
    ) -> None:
        """A message without a third-party event: an alarming pressure drop (sudden, or below the band) after a
        recent intrusion turns red; otherwise keep the held level while its window lasts, then report normal once
        and forget it."""
        cfg = self.config
        held = self._held_third_party_level(scratch, now_s)
        if alarming_drop and self._intrusion_meets_drop(scratch, now_s, False, alarming_drop):
            scratch[_THIRD_PARTY_LEVEL] = _RED
            scratch[_THIRD_PARTY_TS] = now_s
            reason, title = _INTRUSION_WITH_DROP
            findings.append(
                Finding(
                    THIRD_PARTY,
                    _RED,
                    _RED,
                    reason=reason,
                    title=title,
                    family=THIRD_PARTY,
                    immediate=True,
                    params={"intrusion_ts": scratch[_INTRUSION_TS], "window_s": cfg.intrusion_drop_window_s},
                )
            )
            return
        if _THIRD_PARTY_TS not in scratch:
            return
        if held:
            findings.append(self._held_third_party(scratch, now_s, held))
            return
        scratch.pop(_THIRD_PARTY_LEVEL, None)
        scratch.pop(_THIRD_PARTY_TS, None)
        intrusion_ts = scratch.get(_INTRUSION_TS)
        if intrusion_ts is not None and now_s - intrusion_ts > cfg.intrusion_drop_window_s:
            del scratch[_INTRUSION_TS]
        findings.append(self._normal_third_party)

    def _intrusion_meets_drop(
        self, scratch: dict[str, Any], now_s: float, intrusion_now: bool, dropped_now: bool
    ) -> bool:
        """Same-device rule: an intrusion now and an alarming pressure drop within the window (a sudden drop, or
        the latest reading below the band), or an alarming drop now (`dropped_now`) after an intrusion."""
        window = self.config.intrusion_drop_window_s
        if intrusion_now:
            for drop_key in (_DROP_TS, _LOW_TS):
                drop_ts = scratch.get(drop_key)
                if drop_ts is not None and abs(now_s - drop_ts) <= window:
                    return True
        if dropped_now:
            intrusion_ts = scratch.get(_INTRUSION_TS)
            if intrusion_ts is not None and abs(now_s - intrusion_ts) <= window:
                return True
        return False

    def _held_third_party(self, scratch: dict[str, Any], now_s: float, held: int) -> Finding:
        intrusion_ts = scratch.get(_INTRUSION_TS)
        recent_intrusion = intrusion_ts is not None and now_s - intrusion_ts <= self.config.intrusion_drop_window_s
        return self._third_party_holds[held, recent_intrusion]

    def _held_third_party_level(self, scratch: dict[str, Any], now_s: float) -> int:
        last_ts = scratch.get(_THIRD_PARTY_TS)
        if last_ts is None or now_s - last_ts >= self.config.third_party_hold_s:
            return _NONE
        held: int = scratch.get(_THIRD_PARTY_LEVEL, _NONE)
        return held

    # --- unit rules ---------------------------------------------------------------------------------------------

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        """Unit rule of §2.5: an intrusion plus an alarming pressure drop (a finding tagged `pressure_drop`: a
        sudden drop, or a reading below the yellow deviation band) in the same unit, either order → red."""
        tag = finding.tag
        if finding.level >= _RED:
            return None
        if tag == TAG_INTRUSION:
            if any(other.tag == TAG_PRESSURE_DROP for other in others):
                return Combination(_RED, "intrusion_with_pressure_drop")
        elif tag == TAG_PRESSURE_DROP and any(other.tag == TAG_INTRUSION for other in others):
            return Combination(_RED, "pressure_drop_with_intrusion")
        return None


def _normal_and_maop(reg: DeviceRegistration) -> tuple[float | None, float | None]:
    """The registered normal pressure (None unless positive) and MAOP."""
    setpoint = reg.setpoints.get("pressure_mpa")
    if setpoint is None:
        return None, None
    normal_value = setpoint.normal
    return (normal_value if normal_value is not None and normal_value > 0 else None), setpoint.maop


def _leak_finding(codes: Sequence[str]) -> Finding:
    """A confirmed leak is red at once; it is never cleared by a later message (people close it)."""
    npw = "npw_leak" in codes
    mass_balance = "mass_balance_leak" in codes
    if npw and mass_balance:
        reason, title = "leak_npw_and_mass_balance", "管道泄漏(双重确认)"
    elif npw:
        reason, title = "npw_leak", "负压波泄漏报警"
    else:
        reason, title = "mass_balance_leak", "输差泄漏报警"
    return Finding(
        LEAK,
        _RED,
        _RED,
        reason=reason,
        title=title,
        family=LEAK,
        tag=TAG_LEAK,
        immediate=True,
        params={"methods": ",".join(sorted(set(codes)))},
    )


_RISK_TYPES = {
    THIRD_PARTY: "第三方施工",
    PRESSURE: "管道压力",
    FLOW: "管道流量",
    PIT_GAS: "阀井可燃气体",
    LEAK: "管道泄漏",
}
# Two sectors, one model: each has its own message literal, policy section (`sectors.<code>`) and regulators.
CHEM_PIPELINE = SectorSpec(
    zh="危化品管道",
    message=ChemPipelineMessage,
    config=PipelineConfig,
    model=partial(PipelineModel, "chem_pipeline"),
    risk_types=_RISK_TYPES,
    regulators=("emergency_bureau", "planning_resources"),
)
OIL_GAS_PIPELINE = SectorSpec(
    zh="油气管道",
    message=OilGasPipelineMessage,
    config=PipelineConfig,
    model=partial(PipelineModel, "oil_gas_pipeline"),
    risk_types=_RISK_TYPES,
    regulators=("development_reform", "planning_resources"),
)
