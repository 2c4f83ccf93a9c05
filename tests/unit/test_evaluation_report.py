"""The evaluation report (domain/evaluation/report.py) on a three-enterprise fixture, every number by hand.

March 2025, default policy:
- E1 化工一厂, hazchem, areas Z1 + S1, major hazard grade 2 (15): a red (Mar 2) and a yellow (Mar 3) warning
  (10 + 2), fully online: 100 - 15 - 12 = 73, orange.
- E2 化工二厂, hazchem, area S1, nothing: fully online, 100, blue.
- E3 消防三号, fire, area S2: an orange warning (Mar 2, 5) with a missed 签收 (2), 在线率 99 % (0.5 pp short of
  99.5 %: 1 point): 100 - 5 - 2 - 1 = 92, blue.
A warning raised in February (the repeat window's read) and one of an unprofiled enterprise count nowhere.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from chalicelib.domain.due import Stage
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, StageFact, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseProfile, Ratio, Tally, total
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.report import EvaluationReport, build_report, period_days, reason_zh
from chalicelib.domain.levels import Level
from chalicelib.domain.sectors import Sector

MARCH = periods.month(2025, 3)
DAY = 86400.0
MAR_2 = MARCH.start + DAY + 3600
MAR_3 = MARCH.start + 2 * DAY + 3600
AREAS = {"Z1": "开发区", "S1": "新港街", "S2": "泰达街"}

PROFILES = [
    EnterpriseProfile(
        enterprise_id="E1",
        name="化工一厂",
        sector=Sector.HAZCHEM,
        area_codes=("Z1", "S1"),
        major_hazard_grades=(3, 2),
    ),
    EnterpriseProfile(enterprise_id="E2", name="化工二厂", sector=Sector.HAZCHEM, area_codes=("S1",)),
    EnterpriseProfile(enterprise_id="E3", name="消防三号", sector=Sector.FIRE, area_codes=("S2",)),
]


def warning(enterprise: str, sector: Sector, level: Level, raised: float, **fields: Any) -> WarningFacts:
    return WarningFacts(
        warning_id=f"{enterprise}-{raised}",
        device_id=f"{enterprise}-D1",
        enterprise_id=enterprise,
        sector=sector,
        risk_type="tank_level",
        level=level,
        peak_level=level,
        raised_at=raised,
        **fields,
    )


def device_day(enterprise: str, sector: Sector, online_s: float) -> DeviceDay:
    return DeviceDay(
        device_id=f"{enterprise}-D1",
        enterprise_id=enterprise,
        sector=sector,
        day=date(2025, 3, 2),
        expected_s=DAY,
        online_s=online_s,
        undeclared_outage_s=0.0,
    )


MISSED_ACK = StageFact(
    stage=Stage.ACKNOWLEDGE, due_at=MAR_2 + 300, done_at=None, settled_at=MAR_2 + 300, on_time=False
)
WARNINGS = [
    warning("E1", Sector.HAZCHEM, Level.RED, MAR_2),
    warning("E1", Sector.HAZCHEM, Level.YELLOW, MAR_3),
    warning("E1", Sector.HAZCHEM, Level.RED, MARCH.start - 3600),  # February: the repeat window only
    warning("E3", Sector.FIRE, Level.ORANGE, MAR_2, stages=(MISSED_ACK,)),
    warning("E9", Sector.FIRE, Level.RED, MAR_2),  # not profiled
]
DAYS = [
    device_day("E1", Sector.HAZCHEM, DAY),
    device_day("E2", Sector.HAZCHEM, DAY),
    device_day("E3", Sector.FIRE, 0.99 * DAY),
]


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return build_report(
        MARCH, PeriodKind.MONTH, PROFILES, WARNINGS, DAYS, {}, EvaluationPolicy(), 1.7e9, area_names=AREAS
    )


@pytest.mark.parametrize(
    ("enterprise", "score", "band", "rank", "sector_rank", "area_ranks"),
    [
        ("E2", 100.0, "blue", 1, ("hazchem", 1, 2), [("S1", 1, 2)]),
        ("E3", 92.0, "blue", 2, ("fire", 1, 1), [("S2", 1, 1)]),
        ("E1", 73.0, "orange", 3, ("hazchem", 2, 2), [("S1", 2, 2), ("Z1", 1, 1)]),
    ],
)
def test_each_enterprise_has_its_score_band_and_ranks(
    report: EvaluationReport,
    enterprise: str,
    score: float,
    band: str,
    rank: int,
    sector_rank: tuple[str, int, int],
    area_ranks: list[tuple[str, int, int]],
) -> None:
    row = report.row(enterprise)
    assert row is not None
    assert (row.score, row.band, row.rank) == (score, band, rank)
    assert (row.sector_rank.scope, row.sector_rank.position, row.sector_rank.of) == sector_rank
    assert [(r.scope, r.position, r.of) for r in row.area_ranks] == area_ranks


def test_rows_are_best_first_with_profile_fields_and_departments(report: EvaluationReport) -> None:
    assert [row.enterprise_id for row in report.enterprises] == ["E2", "E3", "E1"]
    e1 = report.enterprises[2]
    assert (e1.name, e1.sector, e1.area_codes, e1.departments) == (
        "化工一厂",
        Sector.HAZCHEM,
        ("Z1", "S1"),
        ("emergency_bureau",),
    )
    assert (e1.card.static_points, e1.card.warning_points, e1.card.missed_deadlines) == (15.0, 12.0, 0)


@pytest.mark.parametrize(
    ("enterprise", "online", "raised", "missed", "timeliness"),
    [
        ("E1", 1.0, {"red": 1, "orange": 0, "yellow": 1, "blue": 0}, 0, None),
        ("E2", 1.0, {"red": 0, "orange": 0, "yellow": 0, "blue": 0}, 0, None),
        ("E3", 0.99, {"red": 0, "orange": 1, "yellow": 0, "blue": 0}, 1, 0.0),
    ],
)
def test_figures_are_the_tallys_values(
    report: EvaluationReport,
    enterprise: str,
    online: float,
    raised: dict[str, int],
    missed: int,
    timeliness: float | None,
) -> None:
    row = report.row(enterprise)
    assert row is not None
    figures = row.figures
    assert figures.online == pytest.approx(online)
    assert (figures.raised, figures.raised_total, figures.missed_deadlines) == (
        raised,
        sum(raised.values()),
        missed,
    )
    assert figures.timeliness == timeliness
    assert figures.road_online is None and figures.acknowledge_mean_s is None


def test_rollups_sum_tallies_per_sector_area_department_and_overall(report: EvaluationReport) -> None:
    def view(rollups: Any) -> list[tuple[str, str, int, float | None, int]]:
        return [(r.key, r.name, r.enterprises, r.figures.online, r.figures.raised_total) for r in rollups]

    assert view(report.sectors) == [
        ("fire", "消防", 1, pytest.approx(0.99), 1),
        ("hazchem", "危险化学品", 2, 1.0, 2),
    ]
    assert view(report.areas) == [
        ("S1", "新港街", 2, 1.0, 2),
        ("S2", "泰达街", 1, pytest.approx(0.99), 1),
        ("Z1", "开发区", 1, 1.0, 2),
    ]
    assert view(report.departments) == [
        ("emergency_bureau", "区应急局", 2, 1.0, 2),
        ("fire_rescue", "区消防救援支队", 1, pytest.approx(0.99), 1),
    ]
    assert view([report.overall]) == [("all", "全区", 3, pytest.approx(2.99 / 3), 3)]
    assert report.overall.bands == {"red": 0, "orange": 1, "yellow": 0, "blue": 2}
    assert report.sectors[1].bands == {"red": 0, "orange": 1, "yellow": 0, "blue": 1}


def test_the_priority_list_is_each_sectors_bottom_worst_first(report: EvaluationReport) -> None:
    listed = [(p.position, p.enterprise_id, p.reasons, p.sector_rank.position, p.band) for p in report.priority]
    assert listed == [(1, "E1", ("sector_bottom",), 2, "orange"), (2, "E3", ("sector_bottom",), 1, "blue")]
    assert [reason_zh(r) for r in ("band:red", "sector_bottom")] == ["红色等级", "行业排名末位"]


def test_the_trend_counts_warnings_raised_per_local_day_by_peak_level(report: EvaluationReport) -> None:
    trend = report.charts.trend
    assert len(trend.days) == 31 and trend.days[0] == date(2025, 3, 1) and trend.days[-1] == date(2025, 3, 31)
    assert {level: (counts[1], counts[2], sum(counts)) for level, counts in trend.by_level.items()} == {
        "red": (1, 0, 1),
        "orange": (1, 0, 1),
        "yellow": (0, 1, 1),
        "blue": (0, 0, 0),
    }


def test_charts_online_by_sector_distribution_and_worst(report: EvaluationReport) -> None:
    charts = report.charts
    assert [(s.sector, s.online) for s in charts.online_by_sector] == [
        (Sector.FIRE, pytest.approx(0.99)),
        (Sector.HAZCHEM, 1.0),
    ]
    assert charts.score_distribution.by_band == {"red": 0, "orange": 1, "yellow": 0, "blue": 2}
    assert charts.score_distribution.bins == (0, 0, 0, 0, 0, 0, 0, 1, 0, 2)
    assert charts.score_distribution.bins_by_band["orange"] == (0, 0, 0, 0, 0, 0, 0, 1, 0, 0)
    assert charts.score_distribution.bins_by_band["blue"] == (0, 0, 0, 0, 0, 0, 0, 0, 0, 2)
    assert [(w.enterprise_id, w.sector_name, w.score) for w in charts.worst] == [
        ("E1", "危险化学品", 73.0),
        ("E3", "消防", 92.0),
        ("E2", "危险化学品", 100.0),
    ]


def test_it_round_trips_through_json(report: EvaluationReport) -> None:
    again = EvaluationReport.model_validate_json(report.model_dump_json())
    assert again == report
    assert again.for_area("S1") == report.for_area("S1")


def test_an_enterprise_sees_its_own_row_and_the_overall_rollup_only(report: EvaluationReport) -> None:
    own = report.for_enterprise("E1")
    assert (own.scope.kind, own.scope.key, own.scope.name) == ("enterprise", "E1", "化工一厂")
    assert [row.enterprise_id for row in own.enterprises] == ["E1"]
    assert (own.sectors, own.areas, own.departments) == ((), (), ())
    assert own.overall == report.overall
    assert [p.enterprise_id for p in own.priority] == ["E1"]
    assert [sum(counts) for counts in own.charts.trend.by_level.values()] == [1, 0, 1, 0]
    assert [w.enterprise_id for w in own.charts.worst] == ["E1"]
    with pytest.raises(KeyError):
        report.for_enterprise("E9")


def test_a_sector_scope_has_its_rows_and_rollups_over_them(report: EvaluationReport) -> None:
    hazchem = report.for_sector("hazchem")
    assert [row.enterprise_id for row in hazchem.enterprises] == ["E2", "E1"]
    assert [(r.key, r.enterprises) for r in hazchem.sectors] == [("hazchem", 2)]
    assert [(r.key, r.enterprises) for r in hazchem.areas] == [("S1", 2), ("Z1", 1)]
    assert [p.enterprise_id for p in hazchem.priority] == ["E1"]
    assert hazchem.overall.enterprises == 3
    assert hazchem.charts.score_distribution.bins[9] == 1
    assert report.for_sector(Sector.CONSTRUCTION).enterprises == ()


def test_a_department_scope_has_the_rows_of_the_sectors_it_regulates(report: EvaluationReport) -> None:
    bureau = report.for_department("emergency_bureau")
    assert (bureau.scope.kind, bureau.scope.name) == ("department", "区应急局")
    assert [row.enterprise_id for row in bureau.enterprises] == ["E2", "E1"]
    assert [(r.key, r.enterprises) for r in bureau.departments] == [("emergency_bureau", 2)]


def test_an_area_scope_has_its_rows_and_its_own_area_rollup(report: EvaluationReport) -> None:
    s1 = report.for_area("S1")
    assert (s1.scope.kind, s1.scope.name) == ("area", "新港街")
    assert [row.enterprise_id for row in s1.enterprises] == ["E2", "E1"]
    assert [(r.key, r.enterprises) for r in s1.areas] == [("S1", 2)]
    assert [(r.key, r.enterprises) for r in s1.sectors] == [("hazchem", 2)]
    assert [row.rank for row in s1.enterprises] == [1, 3]  # the district's ranks


def test_an_official_of_two_areas_sees_the_rows_of_both_and_both_area_rollups(report: EvaluationReport) -> None:
    both = report.for_areas(["S2", "Z1"])
    assert (both.scope.kind, both.scope.key, both.scope.name) == ("area", "S2,Z1", "泰达街、开发区")
    assert sorted(row.enterprise_id for row in both.enterprises) == ["E1", "E3"]
    assert sorted((r.key, r.enterprises) for r in both.areas) == [("S2", 1), ("Z1", 1)]  # not S1, E1's other area
    assert sorted((r.key, r.enterprises) for r in both.sectors) == [("fire", 1), ("hazchem", 1)]


def test_a_regulator_of_sectors_no_department_covers_sees_each_sectors_rows(report: EvaluationReport) -> None:
    both = report.for_sectors([Sector.FIRE, "hazchem"])
    assert (both.scope.key, both.scope.name) == ("fire,hazchem", f"{Sector.FIRE.zh}、{Sector.HAZCHEM.zh}")
    assert sorted(row.enterprise_id for row in both.enterprises) == ["E1", "E2", "E3"]
    assert report.for_sectors(["hazchem"]) == report.for_sector("hazchem")


def test_the_kind_must_be_the_periods() -> None:
    with pytest.raises(ValueError, match="kind"):
        build_report(MARCH, PeriodKind.YEAR, PROFILES, [], [], {}, EvaluationPolicy(), 0.0)


@pytest.mark.parametrize(
    ("period", "days"),
    [(periods.month(2024, 2), 29), (periods.quarter(2025, 1), 90), (periods.year(2025), 365)],
)
def test_period_days_are_the_local_calendar_days(period: periods.Period, days: int) -> None:
    assert len(period_days(period)) == days


def test_total_is_the_sum_of_tallies_added_one_by_one(report: EvaluationReport) -> None:
    road = Tally(enterprises=1, road_online=Ratio(numerator=2, denominator=3), raised={"red": 4})
    parts = [row.tally for row in report.enterprises] + [road, Tally()]
    assert total(parts) == sum(parts, Tally())
    assert total([]) == Tally()
    assert total([road]).road_online == Ratio(numerator=2, denominator=3) and total(parts[:3]).road_online is None
