"""Quarters and years from the months' tallies (docs/evaluation.md "Quarters and years"): the summed indicators
equal the ones evaluated over the whole quarter, and the three recomputed ones (处置率 and escalation numerators,
上线率) count what happened after a month's end, hand-computed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from chalicelib.domain.due import Stage
from chalicelib.domain.evaluation import indicators as ind
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, StageFact, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseProfile
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.report import build_report, report_from_months, tallies_of
from chalicelib.domain.evaluation.tallies import MonthTallies, carried, sum_months
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ClearReason
from chalicelib.domain.sectors import Sector

Q1 = periods.quarter(2025, 1)
JAN, FEB, MAR = periods.months_of(Q1)
H, D = 3600.0, 86400.0
POLICY = EvaluationPolicy()
PROFILES = [
    EnterpriseProfile(enterprise_id="E1", name="甲", sector=Sector.HAZCHEM, area_codes=("TEDA",)),
    EnterpriseProfile(enterprise_id="R1", name="乙", sector=Sector.ROAD_TRANSPORT, area_codes=("TEDA",)),
]
FLEETS = {"R1": FleetFacts(enterprise_id="R1", vehicles_networked=3)}


def warning(name: str, raised: float, closed: float | None, due: float, **fields: Any) -> WarningFacts:
    """A red warning of E1 with its 消警 stage settled at the closure when on time, else missed at its due time."""
    if closed is not None and closed <= due:
        clear = StageFact(stage=Stage.CLEAR, due_at=due, done_at=closed, settled_at=closed, on_time=True)
    else:
        clear = StageFact(stage=Stage.CLEAR, due_at=due, done_at=closed, settled_at=due, on_time=False)
    base: dict[str, Any] = {
        "warning_id": name,
        "device_id": "D1",
        "enterprise_id": "E1",
        "sector": Sector.HAZCHEM,
        "risk_type": "tank_level",
        "level": Level.RED,
        "peak_level": Level.RED,
        "raised_at": raised,
        "closed_at": closed,
        "clear_reason": None if closed is None else ClearReason.DISPOSED,
        "stages": (clear,),
    }
    return WarningFacts(**{**base, **fields})


WARNINGS = [
    # fell due in January while open, closed in February: undisposed in January, disposed in the quarter
    warning("late", JAN.start + 10 * D, FEB.start + 2 * D, JAN.start + 13 * D),
    # raised on 31 January, escalated on 1 February: not escalated in January, escalated in the quarter
    warning("esc", FEB.start - H, FEB.start + 5 * H, FEB.start + 3 * D, escalated_at=FEB.start + H),
    # due in March, still open after the quarter: undisposed everywhere
    warning("open", MAR.start + 3 * D, None, MAR.start + 6 * D),
    # closed on time in February, false alarm
    warning("fa", FEB.start + 4 * D, FEB.start + 5 * D, FEB.start + 7 * D, clear_reason=ClearReason.FALSE_ALARM),
    # two raises of the same point 2 h apart across the January/February boundary: one repeat, in February
    warning("r1", FEB.start - H, FEB.start, FEB.start + 3 * D, device_id="D2"),
    warning("r2", FEB.start + H, FEB.start + 2 * H, FEB.start + 3 * D, device_id="D2"),
]


def vehicle(device: str, month: periods.Period, online: float) -> DeviceDay:
    start = date.fromtimestamp(month.start + 8 * H)
    days = round((month.end - month.start) / D)
    return DeviceDay(
        device_id=device,
        enterprise_id="R1",
        sector=Sector.ROAD_TRANSPORT,
        day=start,
        days=days,
        expected_s=days * D,
        online_s=online,
        undeclared_outage_s=days * D - online,
    )


# V1 online every month; V2 only in February; V3 never: 2 of 3 vehicles online in the quarter
DAYS = (
    [vehicle("V1", month, 100 * H) for month in (JAN, FEB, MAR)]
    + [vehicle("V2", JAN, 0), vehicle("V2", FEB, 5 * H), vehicle("V2", MAR, 0)]
    + [vehicle("V3", month, 0) for month in (JAN, FEB, MAR)]
)


def month_report(month: periods.Period, as_of: float) -> MonthTallies:
    seen = [w for w in WARNINGS if w.raised_at < month.end]  # what the month's run read
    report = build_report(month, month.kind, PROFILES, seen, DAYS, FLEETS, POLICY, as_of)
    return tallies_of(report, seen, DAYS)


@pytest.fixture(scope="module")
def months() -> list[MonthTallies]:
    return [month_report(m, m.end + H) for m in (JAN, FEB, MAR)]


def test_each_month_carries_the_warnings_a_longer_period_may_count_differently(months: list[MonthTallies]) -> None:
    jan, feb, mar = ({e.enterprise_id: e for e in m.enterprises}["E1"] for m in months)
    assert (jan.open_due, jan.open_raised) == (("late",), ("esc", "late", "r1"))
    assert (feb.open_due, feb.open_raised) == ((), ())
    assert (mar.open_due, mar.open_raised) == (("open",), ("open",))
    road = [{e.enterprise_id: e for e in m.enterprises}["R1"].never_online for m in months]
    assert road == [("V2", "V3"), ("V3",), ("V2", "V3")]
    assert carried(months) == ["esc", "late", "open", "r1"]


@pytest.mark.parametrize(
    ("indicator", "months_sum", "quarter"),
    [
        # (numerator, denominator) summed over January..March / the quarter's
        ("disposal", (4, 6), (5, 6)),  # "late" counted undisposed in January, closed before the quarter's end
        ("escalation", (0, 6), (1, 6)),  # "esc" raised in January, escalated in February
        ("timeliness", (4, 6), (4, 6)),  # summed as it is: each stage settles in one month ("late", "open" missed)
        ("false_alarm", (1, 5), (1, 5)),
        ("repeat", (1, 6), (1, 6)),  # r2 repeats r1 across the months' boundary
    ],
)
def test_summed_and_recomputed_indicators_hand_computed(
    months: list[MonthTallies], indicator: str, months_sum: tuple[int, int], quarter: tuple[int, int]
) -> None:
    reread = {w.warning_id: w for w in WARNINGS}
    plain = ind.total({e.enterprise_id: e for e in m.enterprises}["E1"].tally for m in months)
    results, _daily = sum_months(Q1, PROFILES, months, reread, FLEETS)
    summed = {r.enterprise_id: r.tally for r in results}["E1"]
    ratio = getattr(plain, indicator)
    assert (ratio.numerator, ratio.denominator) == months_sum
    ratio = getattr(summed, indicator)
    assert (ratio.numerator, ratio.denominator) == quarter
    # and the quarter's figure is what evaluating the whole quarter at once gives
    direct = ind.tally(Q1, WARNINGS, [], None, POLICY)
    assert getattr(direct, indicator) == ratio


def test_vehicles_online_in_the_quarter_are_counted_once(months: list[MonthTallies]) -> None:
    results, _ = sum_months(Q1, PROFILES, months, {}, FLEETS)
    road = {r.enterprise_id: r.tally for r in results}["R1"]
    assert road.road_online is not None and (road.road_online.numerator, road.road_online.denominator) == (2, 3)
    assert road.road_network is None  # 应入网 is not available
    assert road.enterprises == 1
    direct = ind.tally(Q1, [], DAYS, FLEETS["R1"], POLICY)
    assert direct.road_online == road.road_online and direct.online == road.online


def test_a_quarters_report_from_its_months_matches_the_one_evaluated_at_once(months: list[MonthTallies]) -> None:
    as_of = Q1.end + H
    reread = {w.warning_id: w for w in WARNINGS}
    summed = report_from_months(Q1, PROFILES, months, reread, FLEETS, POLICY, as_of)
    direct = build_report(Q1, Q1.kind, PROFILES, WARNINGS, DAYS, FLEETS, POLICY, as_of)
    for ours, theirs in zip(summed.enterprises, direct.enterprises, strict=True):
        assert (ours.enterprise_id, ours.card, ours.figures) == (theirs.enterprise_id, theirs.card, theirs.figures)
        assert ours.daily_raised == theirs.daily_raised
    assert summed.overall.figures == direct.overall.figures
    assert summed.charts == direct.charts and summed.priority == direct.priority


def test_only_a_quarter_or_a_year_sums_and_only_its_own_months(months: list[MonthTallies]) -> None:
    with pytest.raises(ValueError):
        sum_months(MAR, PROFILES, months, {}, FLEETS)
    with pytest.raises(ValueError):
        sum_months(periods.quarter(2025, 2), PROFILES, months, {}, FLEETS)
    assert [m.label for m in periods.months_of(periods.year(2024))] == [f"2024-{n:02d}" for n in range(1, 13)]
