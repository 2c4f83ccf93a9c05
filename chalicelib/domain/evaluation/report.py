"""The evaluation report of one period (评估报告, 第十八条): all a reader or a renderer needs, computed once.

    build_report(
        period: Period,                      # what is evaluated
        kind: PeriodKind,                    # must be period.kind (kept for the callers' signature)
        profiles: Sequence[EnterpriseProfile],
        warnings: Sequence[WarningFacts],    # raised before period.end; from period.start - repeat window
        device_days: Sequence[DeviceDay],    # the period's device-days (others are ignored)
        fleets: Mapping[str, FleetFacts],    # road-transport enterprises' fleets, by enterprise id
        policy: EvaluationPolicy,
        generated_at: float,                 # epoch seconds
        *,
        area_names: Mapping[str, str] | None = None,  # area code -> 中文名 (registry `Area`); the code otherwise
        routing: RoutingPolicy | None = None,          # the regulators of each sector (departments)
        overdue_rectifications: Mapping[str, int] | None = None,  # enterprise id -> 整改事项 overdue at the end
    ) -> EvaluationReport

The report holds per enterprise its profile, `Tally` and its values (`Figures`), score card, band and rankings;
the rollups per sector, area and regulator department and overall (sums of tallies, never averaged rates); the
priority-inspection list (meaningful for a year period, computed always); and the chart series (warnings raised
per local day by peak level, 在线率 by sector, the score distribution by band and 10-point bin, the worst 20).

`for_enterprise` / `for_sector(s)` / `for_department` / `for_area(s)` return scoped copies for the API: the rows
of the scope, rollups and charts recomputed from those rows (an area's sector rollup covers the sector's
enterprises in that area), and the district's overall rollup kept for comparison. Rankings stay the district-wide
ones. The model round-trips through JSON (`model_dump_json` / `model_validate_json`): it is stored per period.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, WarningFacts
from chalicelib.domain.evaluation.indicators import (
    ALL,
    LEVEL_KEYS,
    EnterpriseIndicators,
    EnterpriseProfile,
    Tally,
    evaluate,
    rollup,
    total,
)
from chalicelib.domain.evaluation.periods import Period, PeriodKind, local_midnight
from chalicelib.domain.evaluation.policy import EvaluationPolicy, ScoreBands
from chalicelib.domain.evaluation.score import ScoreCard, priority_list, rank_key, score_all
from chalicelib.domain.evaluation.tallies import MonthTallies, month_tallies, sum_months
from chalicelib.domain.levels import LEVEL_BY_CODE, Level
from chalicelib.domain.policy import DEPARTMENT_ZH, RoutingPolicy
from chalicelib.domain.sectors import Sector

_MODEL = ConfigDict(extra="forbid", frozen=True)
WORST_COUNT = 20
SCORE_BINS = 10  # 0-10, 10-20, ..., 90-100 (100 falls in the last)
OVERALL_ZH = "全区"
BAND_ORDER = LEVEL_KEYS  # red, orange, yellow, blue: worst first
PRIORITY_REASON_ZH = {"sector_bottom": "行业排名末位"}


def band_zh(code: str) -> str:
    """红色 / 橙色 / 黄色 / 蓝色 for a band (a level code)."""
    return LEVEL_BY_CODE[code].zh


def reason_zh(reason: str) -> str:
    """A priority-list reason in Chinese: `band:red` → 红色等级, `sector_bottom` → 行业排名末位."""
    if reason.startswith("band:"):
        return f"{band_zh(reason.removeprefix('band:'))}等级"
    return PRIORITY_REASON_ZH.get(reason, reason)


class Figures(BaseModel):
    """A tally's values, so that a reader never divides: rates in 0..1, None where there is no data."""

    model_config = _MODEL
    online: float | None
    undeclared_outage_h: float
    raised: dict[str, int]  # by peak level code
    raised_total: int
    disposal: float | None
    timeliness: float | None
    missed_deadlines: int
    false_alarm: float | None
    acknowledge_mean_s: float | None
    clear_mean_s: float | None
    escalation: float | None
    repeat: float | None
    road_network: float | None = None
    road_online: float | None = None
    road_data_quality: float | None = None
    road_track: float | None = None
    road_drift: float | None = None

    @classmethod
    def of(cls, tally: Tally) -> Figures:
        raised = {level: tally.raised.get(level, 0) for level in LEVEL_KEYS}
        ack = tally.acknowledge_time.get(ALL)
        clear = tally.clear_time.get(ALL)
        return cls(
            online=tally.online.value,
            undeclared_outage_h=tally.undeclared_outage_h,
            raised=raised,
            raised_total=sum(raised.values()),
            disposal=tally.disposal.value,
            timeliness=tally.timeliness.value,
            missed_deadlines=tally.missed_deadlines,
            false_alarm=tally.false_alarm.value,
            acknowledge_mean_s=None if ack is None else ack.value,
            clear_mean_s=None if clear is None else clear.value,
            escalation=tally.escalation.value,
            repeat=tally.repeat.value,
            road_network=None if tally.road_network is None else tally.road_network.value,
            road_online=None if tally.road_online is None else tally.road_online.value,
            road_data_quality=None if tally.road_data_quality is None else tally.road_data_quality.value,
            road_track=None if tally.road_track is None else tally.road_track.value,
            road_drift=None if tally.road_drift is None else tally.road_drift.value,
        )


class Rank(BaseModel):
    model_config = _MODEL
    scope: str  # a sector code or an area code
    position: int  # 1 = the best
    of: int


class DayCounts(BaseModel):
    """Warnings raised on one local day, by peak level (only the levels that occurred)."""

    model_config = _MODEL
    day: date
    counts: dict[str, int]


class EnterpriseRow(BaseModel):
    model_config = _MODEL
    enterprise_id: str
    name: str
    sector: Sector
    area_codes: tuple[str, ...]
    departments: tuple[str, ...]  # regulator department codes (policy.DEPARTMENT_ZH)
    rank: int  # district-wide position, 1 = the best (score.rank_key)
    sector_rank: Rank
    area_ranks: tuple[Rank, ...]
    card: ScoreCard
    tally: Tally
    figures: Figures
    daily_raised: tuple[DayCounts, ...] = ()  # days with warnings raised in the period
    overdue_rectifications: int = 0  # rectification items (整改事项) overdue at the period's end

    @property
    def score(self) -> float:
        return self.card.score

    @property
    def band(self) -> str:
        return self.card.band


class Rollup(BaseModel):
    model_config = _MODEL
    key: str  # a sector, area or department code; "all" for the overall one
    name: str  # its Chinese name
    bands: dict[str, int]  # enterprises per score band
    tally: Tally
    figures: Figures

    @property
    def enterprises(self) -> int:
        return self.tally.enterprises


class PriorityRow(BaseModel):
    model_config = _MODEL
    position: int  # 1 = the first to inspect (the worst)
    enterprise_id: str
    name: str
    sector: Sector
    area_codes: tuple[str, ...]
    score: float
    band: str
    sector_rank: Rank
    reasons: tuple[str, ...]  # score.priority_list's: "band:<code>", "sector_bottom"


class Trend(BaseModel):
    """Warnings raised per local day of the period, by peak level: `by_level[code][i]` is `days[i]`'s count."""

    model_config = _MODEL
    days: tuple[date, ...]
    by_level: dict[str, tuple[int, ...]]


class SectorOnline(BaseModel):
    model_config = _MODEL
    sector: Sector
    name: str
    online: float | None


class ScoreDistribution(BaseModel):
    model_config = _MODEL
    by_band: dict[str, int]  # red, orange, yellow, blue
    bins: tuple[int, ...]  # SCORE_BINS counts: [0, 10), [10, 20), ..., [90, 100]
    bins_by_band: dict[str, tuple[int, ...]]  # the bins split by band (a bin may straddle a band edge)


class WorstEntry(BaseModel):
    model_config = _MODEL
    enterprise_id: str
    name: str
    sector_name: str
    score: float
    band: str


class Charts(BaseModel):
    model_config = _MODEL
    trend: Trend
    online_by_sector: tuple[SectorOnline, ...]
    score_distribution: ScoreDistribution
    worst: tuple[WorstEntry, ...]  # worst first, at most WORST_COUNT


class Scope(BaseModel):
    model_config = _MODEL
    kind: Literal["all", "enterprise", "sector", "area", "department"] = "all"
    key: str | None = None
    name: str = OVERALL_ZH


class EvaluationReport(BaseModel):
    model_config = _MODEL
    period: Period
    kind: PeriodKind
    generated_at: float
    scope: Scope = Scope()
    bands: ScoreBands  # the band edges the scores were banded with
    online_target: float  # 在线率's target (policy)
    area_names: dict[str, str]
    enterprises: tuple[EnterpriseRow, ...]  # best first
    sectors: tuple[Rollup, ...]
    areas: tuple[Rollup, ...]
    departments: tuple[Rollup, ...]
    overall: Rollup  # always the district's, in scoped copies too
    priority: tuple[PriorityRow, ...]  # worst first
    charts: Charts

    @model_validator(mode="after")
    def _kind_is_the_periods(self) -> EvaluationReport:
        if self.kind is not self.period.kind:
            raise ValueError("the report's kind is its period's")
        return self

    def row(self, enterprise_id: str) -> EnterpriseRow | None:
        return next((row for row in self.enterprises if row.enterprise_id == enterprise_id), None)

    def area_name(self, code: str) -> str:
        return self.area_names.get(code, code)

    def for_enterprise(self, enterprise_id: str) -> EvaluationReport:
        """Its own row, its priority entry if any, and the overall rollup. KeyError when it was not evaluated."""
        row = self.row(enterprise_id)
        if row is None:
            raise KeyError(enterprise_id)
        return self._scoped(Scope(kind="enterprise", key=enterprise_id, name=row.name), [row], with_rollups=False)

    def for_sector(self, sector: Sector | str) -> EvaluationReport:
        """The sector's rows; its areas' and departments' rollups over those rows only."""
        return self.for_sectors([sector])

    def for_sectors(self, sectors: Sequence[Sector | str]) -> EvaluationReport:
        """The rows of any of the sectors (a regulator of several sectors whose set is no department's)."""
        wanted = tuple(dict.fromkeys(Sector(sector) for sector in sectors))
        rows = [row for row in self.enterprises if row.sector in wanted]
        key = ",".join(sector.value for sector in wanted)
        return self._scoped(Scope(kind="sector", key=key, name="、".join(s.zh for s in wanted)), rows)

    def for_department(self, department: str) -> EvaluationReport:
        """The rows of the sectors a regulator department regulates (区应急局: hazchem and chem_pipeline)."""
        rows = [row for row in self.enterprises if department in row.departments]
        scope = Scope(kind="department", key=department, name=DEPARTMENT_ZH.get(department, department))
        return self._scoped(scope, rows)

    def for_area(self, area_code: str) -> EvaluationReport:
        """The area's rows (an enterprise in a dev zone and a street is in both); rollups over those rows, the
        area rollup for this area only."""
        return self.for_areas([area_code])

    def for_areas(self, area_codes: Sequence[str]) -> EvaluationReport:
        """The rows in any of the areas (an official of several areas), each of its areas' rollups."""
        codes = tuple(dict.fromkeys(area_codes))
        rows = [row for row in self.enterprises if set(codes) & set(row.area_codes)]
        scope = Scope(kind="area", key=",".join(codes), name="、".join(self.area_name(code) for code in codes))
        return self._scoped(scope, rows, only_areas=codes)

    def _scoped(
        self,
        scope: Scope,
        rows: list[EnterpriseRow],
        with_rollups: bool = True,
        only_areas: tuple[str, ...] | None = None,
    ) -> EvaluationReport:
        ids = {row.enterprise_id for row in rows}
        sectors, areas, departments = _rollups(rows, self.area_names) if with_rollups else ((), (), ())
        if only_areas is not None:
            areas = tuple(r for r in areas if r.key in only_areas)
        return self.model_copy(
            update={
                "scope": scope,
                "enterprises": tuple(rows),
                "sectors": sectors,
                "areas": areas,
                "departments": departments,
                "priority": tuple(p for p in self.priority if p.enterprise_id in ids),
                "charts": _charts(self.period, rows, sectors),
            }
        )


# --- building ----------------------------------------------------------------------------------------------------


def build_report(
    period: Period,
    kind: PeriodKind,
    profiles: Sequence[EnterpriseProfile],
    warnings: Sequence[WarningFacts],
    device_days: Sequence[DeviceDay],
    fleets: Mapping[str, FleetFacts],
    policy: EvaluationPolicy,
    generated_at: float,
    *,
    area_names: Mapping[str, str] | None = None,
    routing: RoutingPolicy | None = None,
    overdue_rectifications: Mapping[str, int] | None = None,
) -> EvaluationReport:
    """The report of `period` for the profiled enterprises (see the module docstring)."""
    if kind is not period.kind:
        raise ValueError(f"kind {kind} is not the period's ({period.kind})")
    results = evaluate(period, profiles, warnings, device_days, fleets.values(), policy)
    return _assemble(
        period,
        profiles,
        results,
        _daily_raised(period, warnings),
        policy,
        generated_at,
        area_names=area_names,
        routing=routing,
        overdue_rectifications=overdue_rectifications,
    )


def report_from_months(
    period: Period,
    profiles: Sequence[EnterpriseProfile],
    months: Sequence[MonthTallies],
    reread: Mapping[str, WarningFacts],
    fleets: Mapping[str, FleetFacts],
    policy: EvaluationPolicy,
    generated_at: float,
    *,
    area_names: Mapping[str, str] | None = None,
    routing: RoutingPolicy | None = None,
    overdue_rectifications: Mapping[str, int] | None = None,
) -> EvaluationReport:
    """The report of a quarter or a year from its months' tallies (`tallies.sum_months`: which indicators sum and
    which are recomputed); `reread` holds the months' carried warnings as they stand now (`tallies.carried`)."""
    results, daily = sum_months(period, profiles, months, reread, fleets)
    return _assemble(
        period,
        profiles,
        results,
        {
            enterprise_id: tuple(DayCounts(day=date.fromisoformat(day), counts=counts) for day, counts in days)
            for enterprise_id, days in daily.items()
            if days
        },
        policy,
        generated_at,
        area_names=area_names,
        routing=routing,
        overdue_rectifications=overdue_rectifications,
    )


def tallies_of(
    report: EvaluationReport, warnings: Sequence[WarningFacts], device_days: Sequence[DeviceDay]
) -> MonthTallies:
    """What a month's report keeps for its quarter and year (`tallies.month_tallies`)."""
    rows = report.enterprises
    return month_tallies(
        report.period,
        report.generated_at,
        {row.enterprise_id: row.tally for row in report.enterprises},
        {row.enterprise_id: [(d.day.isoformat(), d.counts) for d in row.daily_raised] for row in rows},
        warnings,
        device_days,
    )


def _assemble(
    period: Period,
    profiles: Sequence[EnterpriseProfile],
    results: Sequence[EnterpriseIndicators],
    daily: Mapping[str, tuple[DayCounts, ...]],
    policy: EvaluationPolicy,
    generated_at: float,
    *,
    area_names: Mapping[str, str] | None,
    routing: RoutingPolicy | None,
    overdue_rectifications: Mapping[str, int] | None,
) -> EvaluationReport:
    regulators = (routing or RoutingPolicy()).regulators
    cards = score_all(profiles, results, policy)
    tally_of = {result.enterprise_id: result.tally for result in results}
    sector_ranks = _positions(cards, lambda card: (card.sector.value,))
    area_ranks = _positions(cards, lambda card: card.area_codes)
    rows = [
        EnterpriseRow(
            enterprise_id=card.enterprise_id,
            name=card.name,
            sector=card.sector,
            area_codes=card.area_codes,
            departments=regulators.get(card.sector, ()),
            rank=position,
            sector_rank=sector_ranks[card.enterprise_id][0],
            area_ranks=tuple(area_ranks[card.enterprise_id]),
            card=card,
            tally=tally_of[card.enterprise_id],
            figures=Figures.of(tally_of[card.enterprise_id]),
            daily_raised=daily.get(card.enterprise_id, ()),
            overdue_rectifications=(overdue_rectifications or {}).get(card.enterprise_id, 0),
        )
        for position, card in enumerate(sorted(cards, key=rank_key), start=1)
    ]
    rank_of = {row.enterprise_id: row.sector_rank for row in rows}
    names = dict(area_names or {})
    sectors, areas, departments = _rollups(rows, names)
    return EvaluationReport(
        period=period,
        kind=period.kind,
        generated_at=generated_at,
        bands=policy.bands,
        online_target=policy.online_target,
        area_names={code: names.get(code, code) for code in sorted({a for row in rows for a in row.area_codes})},
        enterprises=tuple(rows),
        sectors=sectors,
        areas=areas,
        departments=departments,
        overall=_rollup_of("all", OVERALL_ZH, rows),
        priority=tuple(
            PriorityRow(
                position=position,
                enterprise_id=entry.card.enterprise_id,
                name=entry.card.name,
                sector=entry.card.sector,
                area_codes=entry.card.area_codes,
                score=entry.card.score,
                band=entry.card.band,
                sector_rank=rank_of[entry.card.enterprise_id],
                reasons=entry.reasons,
            )
            for position, entry in enumerate(priority_list(cards, policy), start=1)
        ),
        charts=_charts(period, rows, sectors),
    )


def _positions(
    cards: Sequence[ScoreCard], scopes_of: Callable[[ScoreCard], Iterable[str]]
) -> dict[str, list[Rank]]:
    """Each enterprise's rank in each of its scopes (the score module's order)."""
    groups: dict[str, list[ScoreCard]] = defaultdict(list)
    for card in cards:
        for scope in scopes_of(card):
            groups[scope].append(card)
    ranks: dict[str, list[Rank]] = defaultdict(list)
    for scope in sorted(groups):
        ordered = sorted(groups[scope], key=rank_key)
        for position, card in enumerate(ordered, start=1):
            ranks[card.enterprise_id].append(Rank(scope=scope, position=position, of=len(ordered)))
    return ranks


def _local_day(at: float) -> date:
    return datetime.fromtimestamp(at, SHANGHAI).date()


def _daily_raised(period: Period, warnings: Iterable[WarningFacts]) -> dict[str, tuple[DayCounts, ...]]:
    counts: dict[str, dict[date, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for warning in warnings:
        if period.contains(warning.raised_at):
            counts[warning.enterprise_id][_local_day(warning.raised_at)][Level(warning.peak_level).code] += 1
    return {
        enterprise_id: tuple(
            DayCounts(day=day, counts={level: by_level[level] for level in LEVEL_KEYS if by_level[level]})
            for day, by_level in sorted(days.items())
        )
        for enterprise_id, days in counts.items()
    }


def period_days(period: Period) -> list[date]:
    """The local days of the period, in order."""
    days: list[date] = []
    day = _local_day(period.start)
    while local_midnight(day) < period.end:
        days.append(day)
        day += timedelta(days=1)
    return days


def _band_counts(rows: Iterable[EnterpriseRow]) -> dict[str, int]:
    counted = Counter(row.band for row in rows)
    return {band: counted[band] for band in BAND_ORDER}


def _rollup_of(key: str, name: str, rows: Sequence[EnterpriseRow]) -> Rollup:
    tally = total(row.tally for row in rows)
    return Rollup(key=key, name=name, bands=_band_counts(rows), tally=tally, figures=Figures.of(tally))


def _rollups(
    rows: Sequence[EnterpriseRow], area_names: Mapping[str, str]
) -> tuple[tuple[Rollup, ...], tuple[Rollup, ...], tuple[Rollup, ...]]:
    """(sectors, areas, departments): tallies summed over the rows (indicators.rollup), band counts alongside."""

    def grouped(
        keys_of: Callable[[EnterpriseRow], Iterable[str]], name_of: Callable[[str], str]
    ) -> tuple[Rollup, ...]:
        members: dict[str, list[EnterpriseRow]] = defaultdict(list)
        for row in rows:
            for key in keys_of(row):
                members[key].append(row)
        sums = rollup((key, row.tally) for key, group in members.items() for row in group)
        return tuple(
            Rollup(
                key=key,
                name=name_of(key),
                bands=_band_counts(members[key]),
                tally=tally,
                figures=Figures.of(tally),
            )
            for key, tally in sums.items()
        )

    return (
        grouped(lambda row: (row.sector.value,), lambda key: Sector(key).zh),
        grouped(lambda row: row.area_codes, lambda key: area_names.get(key, key)),
        grouped(lambda row: row.departments, lambda key: DEPARTMENT_ZH.get(key, key)),
    )


def _charts(period: Period, rows: Sequence[EnterpriseRow], sectors: Sequence[Rollup]) -> Charts:
    days = period_days(period)
    index = {day: i for i, day in enumerate(days)}
    series = {level: [0] * len(days) for level in LEVEL_KEYS}
    for row in rows:
        for day_counts in row.daily_raised:
            for level, count in day_counts.counts.items():
                series[level][index[day_counts.day]] += count
    bins = {band: [0] * SCORE_BINS for band in BAND_ORDER}
    for row in rows:
        bins[row.band][min(int(row.score // 10), SCORE_BINS - 1)] += 1
    worst = sorted(rows, key=lambda row: row.rank, reverse=True)[:WORST_COUNT]
    return Charts(
        trend=Trend(days=tuple(days), by_level={level: tuple(counts) for level, counts in series.items()}),
        online_by_sector=tuple(
            SectorOnline(sector=Sector(r.key), name=r.name, online=r.figures.online) for r in sectors
        ),
        score_distribution=ScoreDistribution(
            by_band=_band_counts(rows),
            bins=tuple(sum(column) for column in zip(*bins.values(), strict=True)),
            bins_by_band={band: tuple(counts) for band, counts in bins.items()},
        ),
        worst=tuple(
            WorstEntry(
                enterprise_id=row.enterprise_id,
                name=row.name,
                sector_name=row.sector.zh,
                score=row.score,
                band=row.band,
            )
            for row in worst
        ),
    )
