"""The indicators of DOMAIN.md §6 per enterprise and period, and their rollups (docs/evaluation.md).

Every rate is a `Ratio`, numerator over denominator, kept as its two sums: a rollup per sector, area or regulator
department adds numerators and denominators (never averages the enterprises' rates), and an empty denominator is
None — no data, not 0 % or 100 %. A mean time is a Ratio too (seconds summed over warnings counted).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.due import Stage
from chalicelib.domain.evaluation.facts import ENTERPRISE_STAGES, DeviceDay, FleetFacts, WarningFacts
from chalicelib.domain.evaluation.periods import Period
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ClearReason
from chalicelib.domain.policy import RoutingPolicy
from chalicelib.domain.sectors import Sector

_MODEL = ConfigDict(extra="forbid", frozen=True)
ALL = "all"
LEVEL_KEYS = tuple(Level(level).code for level in (Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE))


class Ratio(BaseModel):
    model_config = _MODEL
    numerator: float = 0.0
    denominator: float = 0.0

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator

    def __add__(self, other: Ratio) -> Ratio:
        return Ratio(numerator=self.numerator + other.numerator, denominator=self.denominator + other.denominator)


def _add_optional(a: Ratio | None, b: Ratio | None) -> Ratio | None:
    """A part without the data (None) adds nothing; both without: still None."""
    if a is None:
        return b
    return a if b is None else a + b


def _add_maps(a: Mapping[str, Ratio], b: Mapping[str, Ratio]) -> dict[str, Ratio]:
    return {key: a.get(key, Ratio()) + b.get(key, Ratio()) for key in sorted({*a, *b})}


class Tally(BaseModel):
    """The sums behind every indicator; enterprises' tallies add up to a sector's, an area's, a department's."""

    model_config = _MODEL
    enterprises: int = 0
    online: Ratio = Ratio()  # 在线率: online s / (expected s - declared outage s)
    undeclared_outage_s: float = 0.0
    raised: dict[str, int] = {}  # warnings raised in the period, by peak level
    disposal: Ratio = Ratio()  # 处置率: closed by the end / due to close (closed or clear due) in the period
    timeliness: Ratio = Ratio()  # 及时率: the enterprise's stages on time / its stages settled in the period
    timeliness_by_stage: dict[str, Ratio] = {}  # per stage, 确认消警 (the duty centre's) included
    false_alarm: Ratio = Ratio()  # 误报率: closed as false alarm / closed in the period
    acknowledge_time: dict[str, Ratio] = {}  # seconds raise→签收 / warnings acknowledged, by peak level and "all"
    clear_time: dict[str, Ratio] = {}  # seconds raise→消警 / warnings closed, by peak level and "all"
    escalation: Ratio = Ratio()  # escalated before the end / raised in the period
    repeat: Ratio = Ratio()  # raised again within the window (same device + risk type) / raised in the period
    road_network: Ratio | None = None  # 入网率: vehicles networked / vehicles required
    road_online: Ratio | None = None  # 上线率: vehicles online in the period / vehicles networked
    road_data_quality: Ratio | None = None  # 数据合格率: qualified records / records
    road_track: Ratio | None = None  # 轨迹完整率: km with a complete track / km
    road_drift: Ratio | None = None  # 漂移率: vehicles with a drift / vehicles online (where drift is known)

    @property
    def undeclared_outage_h(self) -> float:
        return self.undeclared_outage_s / 3600.0

    @property
    def missed_deadlines(self) -> int:
        return round(self.timeliness.denominator - self.timeliness.numerator)

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            enterprises=self.enterprises + other.enterprises,
            online=self.online + other.online,
            undeclared_outage_s=self.undeclared_outage_s + other.undeclared_outage_s,
            raised={
                k: self.raised.get(k, 0) + other.raised.get(k, 0) for k in sorted({*self.raised, *other.raised})
            },
            disposal=self.disposal + other.disposal,
            timeliness=self.timeliness + other.timeliness,
            timeliness_by_stage=_add_maps(self.timeliness_by_stage, other.timeliness_by_stage),
            false_alarm=self.false_alarm + other.false_alarm,
            acknowledge_time=_add_maps(self.acknowledge_time, other.acknowledge_time),
            clear_time=_add_maps(self.clear_time, other.clear_time),
            escalation=self.escalation + other.escalation,
            repeat=self.repeat + other.repeat,
            road_network=_add_optional(self.road_network, other.road_network),
            road_online=_add_optional(self.road_online, other.road_online),
            road_data_quality=_add_optional(self.road_data_quality, other.road_data_quality),
            road_track=_add_optional(self.road_track, other.road_track),
            road_drift=_add_optional(self.road_drift, other.road_drift),
        )


class EnterpriseIndicators(BaseModel):
    model_config = _MODEL
    enterprise_id: str
    sector: Sector
    area_codes: tuple[str, ...] = ()
    period: Period
    tally: Tally


# --- the formulas ----------------------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> Ratio:
    return Ratio(numerator=numerator, denominator=denominator)


def online(days: Iterable[DeviceDay]) -> tuple[Ratio, float]:
    """(在线率, undeclared-outage seconds) over the device-days given (already those of the period)."""
    on = expected = undeclared = 0.0
    for day in days:
        on += day.online_s
        expected += day.expected_s - day.declared_outage_s
        undeclared += day.undeclared_outage_s
    return _ratio(on, expected), undeclared


def raised_by_level(warnings: Iterable[WarningFacts], period: Period) -> dict[str, int]:
    counts = dict.fromkeys(LEVEL_KEYS, 0)
    for warning in warnings:
        if period.contains(warning.raised_at):
            counts[Level(warning.peak_level).code] += 1
    return counts


def disposal(warnings: Iterable[WarningFacts], period: Period) -> Ratio:
    """处置率: a warning is due to close in the period when it closed in it or its clear deadline passed in it
    while open, whichever came first (each warning counts in one period); it counts as disposed when closed before
    the period's end."""
    numerator = denominator = 0
    for warning in warnings:
        clear = warning.stage(Stage.CLEAR)
        due_at = clear.due_at if clear is not None else None
        settles = min((t for t in (warning.closed_at, due_at) if t is not None), default=None)
        if period.contains(settles):
            denominator += 1
            numerator += warning.closed_at is not None and warning.closed_at < period.end
    return _ratio(numerator, denominator)


def timeliness(warnings: Sequence[WarningFacts], period: Period) -> tuple[Ratio, dict[str, Ratio]]:
    """及时率: stages settled in the period that were on time / stages settled in the period; overall over the
    enterprise's stages (签收, 核实反馈, 消警), and per stage (with 确认消警)."""
    on_time = dict.fromkeys((stage.value for stage in Stage), 0)
    settled = dict(on_time)
    for warning in warnings:
        for fact in warning.stages:
            if period.contains(fact.settled_at):
                settled[fact.stage.value] += 1
                on_time[fact.stage.value] += 1 if fact.on_time else 0
    by_stage = {stage: _ratio(on_time[stage], settled[stage]) for stage in settled}
    overall = _ratio(
        sum(on_time[stage.value] for stage in ENTERPRISE_STAGES),
        sum(settled[stage.value] for stage in ENTERPRISE_STAGES),
    )
    return overall, by_stage


def false_alarm(warnings: Iterable[WarningFacts], period: Period) -> Ratio:
    closed = [w for w in warnings if period.contains(w.closed_at)]
    return _ratio(sum(w.clear_reason is ClearReason.FALSE_ALARM for w in closed), len(closed))


def _mean_by_level(pairs: Iterable[tuple[int, float]]) -> dict[str, Ratio]:
    seconds = dict.fromkeys((ALL, *LEVEL_KEYS), 0.0)
    counts = dict.fromkeys(seconds, 0)
    for level, spent in pairs:
        code = Level(level).code
        seconds[ALL] += spent
        counts[ALL] += 1
        seconds[code] += spent
        counts[code] += 1
    return {key: _ratio(seconds[key], counts[key]) for key in seconds}


def acknowledge_time(warnings: Iterable[WarningFacts], period: Period) -> dict[str, Ratio]:
    """Mean seconds from the raise to 签收, over warnings acknowledged in the period, by peak level."""
    return _mean_by_level(
        (w.peak_level, w.acknowledged_at - w.raised_at)
        for w in warnings
        if w.acknowledged_at is not None and period.contains(w.acknowledged_at)
    )


def clear_time(warnings: Iterable[WarningFacts], period: Period) -> dict[str, Ratio]:
    """Mean seconds from the raise to the closure (消警), over warnings closed in the period, by peak level."""
    return _mean_by_level(
        (w.peak_level, w.closed_at - w.raised_at)
        for w in warnings
        if w.closed_at is not None and period.contains(w.closed_at)
    )


def escalation(warnings: Iterable[WarningFacts], period: Period) -> Ratio:
    raised = [w for w in warnings if period.contains(w.raised_at)]
    escalated = sum(w.escalated_at is not None and w.escalated_at < period.end for w in raised)
    return _ratio(escalated, len(raised))


def repeat(warnings: Iterable[WarningFacts], period: Period, window_s: float) -> Ratio:
    """Warnings raised in the period whose device raised the same risk type at most `window_s` before (the
    earlier one may be from before the period: pass the warnings raised from `start - window_s`)."""
    by_point: dict[tuple[str, str], list[float]] = defaultdict(list)
    for warning in warnings:
        by_point[(warning.device_id, warning.risk_type)].append(warning.raised_at)
    numerator = denominator = 0
    for times in by_point.values():
        times.sort()
        for index, at in enumerate(times):
            if period.contains(at):
                denominator += 1
                numerator += index > 0 and at - times[index - 1] <= window_s
    return _ratio(numerator, denominator)


def road(days: Sequence[DeviceDay], fleet: FleetFacts | None) -> dict[str, Ratio | None]:
    """The road-transport indicators (交运发〔2016〕160号) where the inputs exist; None where they do not."""
    if fleet is None:
        return dict.fromkeys(("road_network", "road_online", "road_data_quality", "road_track", "road_drift"))
    vehicles = [day for day in days if day.sector is Sector.ROAD_TRANSPORT]
    online_ids = {day.device_id for day in vehicles if day.online_s > 0}
    known = [day for day in vehicles if day.records_total is not None and day.records_qualified is not None]
    tracked = [day for day in vehicles if day.track_km is not None and day.track_complete_km is not None]
    drift_known = {day.device_id for day in vehicles if day.drifted is not None and day.device_id in online_ids}
    drifted = {day.device_id for day in vehicles if day.drifted and day.device_id in online_ids}
    return {
        "road_network": None
        if fleet.vehicles_required is None
        else _ratio(fleet.vehicles_networked, fleet.vehicles_required),
        "road_online": _ratio(len(online_ids), fleet.vehicles_networked),
        "road_data_quality": _ratio(
            sum(d.records_qualified or 0 for d in known), sum(d.records_total or 0 for d in known)
        )
        if known
        else None,
        "road_track": _ratio(sum(d.track_complete_km or 0 for d in tracked), sum(d.track_km or 0 for d in tracked))
        if tracked
        else None,
        "road_drift": _ratio(len(drifted), len(drift_known)) if drift_known else None,
    }


def tally(
    period: Period,
    warnings: Sequence[WarningFacts],
    days: Sequence[DeviceDay],
    fleet: FleetFacts | None = None,
    policy: EvaluationPolicy | None = None,
) -> Tally:
    """All indicators of one enterprise (or any set of warnings and device-days) for `period`."""
    policy = policy or EvaluationPolicy()
    in_period = [day for day in days if period.contains_day(day.day)]
    online_rate, undeclared = online(in_period)
    overall, by_stage = timeliness(warnings, period)
    return Tally(
        enterprises=1,
        online=online_rate,
        undeclared_outage_s=undeclared,
        raised=raised_by_level(warnings, period),
        disposal=disposal(warnings, period),
        timeliness=overall,
        timeliness_by_stage=by_stage,
        false_alarm=false_alarm(warnings, period),
        acknowledge_time=acknowledge_time(warnings, period),
        clear_time=clear_time(warnings, period),
        escalation=escalation(warnings, period),
        repeat=repeat(warnings, period, policy.repeat_window_s),
        **road(in_period, fleet),
    )


class EnterpriseProfile(BaseModel):
    """What the evaluation needs of an enterprise besides its data: its places and its static risk."""

    model_config = _MODEL
    enterprise_id: str
    name: str = ""
    sector: Sector
    area_codes: tuple[str, ...] = ()
    major_hazard_grades: tuple[int, ...] = ()  # its devices' StaticFactors.major_hazard_grade (GB 18218)


def evaluate(
    period: Period,
    profiles: Sequence[EnterpriseProfile],
    warnings: Iterable[WarningFacts],
    days: Iterable[DeviceDay],
    fleets: Iterable[FleetFacts] = (),
    policy: EvaluationPolicy | None = None,
) -> list[EnterpriseIndicators]:
    """Every profiled enterprise's indicators (one with no warnings or device-days has empty denominators)."""
    warnings_of: dict[str, list[WarningFacts]] = defaultdict(list)
    days_of: dict[str, list[DeviceDay]] = defaultdict(list)
    for warning in warnings:
        warnings_of[warning.enterprise_id].append(warning)
    for day in days:
        days_of[day.enterprise_id].append(day)
    fleet_of = {fleet.enterprise_id: fleet for fleet in fleets}
    return [
        EnterpriseIndicators(
            enterprise_id=p.enterprise_id,
            sector=p.sector,
            area_codes=p.area_codes,
            period=period,
            tally=tally(
                period,
                warnings_of[p.enterprise_id],
                days_of[p.enterprise_id],
                fleet_of.get(p.enterprise_id),
                policy,
            ),
        )
        for p in profiles
    ]


# --- rollups ---------------------------------------------------------------------------------------------------


def total(tallies: Iterable[Tally]) -> Tally:
    """The sum of many tallies at once: what adding them one by one gives (same order, same floats), without
    building every partial sum (a district's rollups add thousands)."""
    ratios = {name: [0.0, 0.0] for name in _RATIO_FIELDS}
    optional: dict[str, list[float]] = {}
    maps: dict[str, dict[str, list[float]]] = {name: {} for name in _MAP_FIELDS}
    raised: dict[str, int] = {}
    enterprises, undeclared = 0, 0.0
    for tally in tallies:
        enterprises += tally.enterprises
        undeclared += tally.undeclared_outage_s
        for name in _RATIO_FIELDS:
            part: Ratio | None = getattr(tally, name)
            if part is not None:
                sums = ratios[name]
                sums[0] += part.numerator
                sums[1] += part.denominator
        for name in _OPTIONAL_FIELDS:
            part = getattr(tally, name)
            if part is not None:
                sums = optional.setdefault(name, [0.0, 0.0])
                sums[0] += part.numerator
                sums[1] += part.denominator
        for name in _MAP_FIELDS:
            for key, part in getattr(tally, name).items():
                sums = maps[name].setdefault(key, [0.0, 0.0])
                sums[0] += part.numerator
                sums[1] += part.denominator
        for key, count in tally.raised.items():
            raised[key] = raised.get(key, 0) + count

    def ratio(sums: list[float]) -> Ratio:
        return _ratio(sums[0], sums[1])

    return Tally(
        enterprises=enterprises,
        undeclared_outage_s=undeclared,
        raised=dict(sorted(raised.items())),
        **{name: ratio(sums) for name, sums in ratios.items()},
        **{name: ratio(sums) for name, sums in optional.items()},
        **{name: {key: ratio(sums) for key, sums in sorted(parts.items())} for name, parts in maps.items()},
    )


_RATIO_FIELDS = ("online", "disposal", "timeliness", "false_alarm", "escalation", "repeat")
_OPTIONAL_FIELDS = ("road_network", "road_online", "road_data_quality", "road_track", "road_drift")
_MAP_FIELDS = ("timeliness_by_stage", "acknowledge_time", "clear_time")


def rollup(pairs: Iterable[tuple[str, Tally]]) -> dict[str, Tally]:
    """Sum the tallies of each key (a sector, an area, a department), keys sorted."""
    groups: dict[str, list[Tally]] = {}
    for key, part in pairs:
        groups.setdefault(key, []).append(part)
    return {key: total(groups[key]) for key in sorted(groups)}


def by_sector(results: Iterable[EnterpriseIndicators]) -> dict[str, Tally]:
    return rollup((r.sector.value, r.tally) for r in results)


def by_area(results: Iterable[EnterpriseIndicators]) -> dict[str, Tally]:
    """An enterprise in a dev zone and a street counts in both."""
    return rollup((area, r.tally) for r in results for area in r.area_codes)


def by_department(
    results: Iterable[EnterpriseIndicators], routing: RoutingPolicy | None = None
) -> dict[str, Tally]:
    """Per regulator department (policy.DEPARTMENT_ZH), through the sectors it regulates."""
    regulators = (routing or RoutingPolicy()).regulators
    return rollup((department, r.tally) for r in results for department in regulators.get(r.sector, ()))


def overall(results: Iterable[EnterpriseIndicators]) -> Tally:
    return total(r.tally for r in results)
