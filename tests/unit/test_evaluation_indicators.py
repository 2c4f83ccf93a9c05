"""Evaluation indicators, rollups, score, bands, rankings and the priority list (DOMAIN.md §6): hand-computed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from chalicelib.domain.catalog import build_policy
from chalicelib.domain.due import Stage
from chalicelib.domain.evaluation import indicators as ind
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, StageFact, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseIndicators, EnterpriseProfile, Ratio, Tally
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.score import (
    band,
    bottom_count,
    priority_list,
    rank_by_area,
    rank_by_sector,
    score,
)
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ClearReason
from chalicelib.domain.sectors import Sector

MARCH = periods.month(2025, 3)
S, E = MARCH.start, MARCH.end
H = 3600.0
POLICY = EvaluationPolicy()


def stage(kind: Stage, settled: float | None, on_time: bool | None, due_at: float | None = None) -> StageFact:
    return StageFact(stage=kind, due_at=due_at, done_at=None, settled_at=settled, on_time=on_time)


def warning(raised: float, **fields: Any) -> WarningFacts:
    base: dict[str, Any] = {
        "warning_id": f"W{raised}",
        "device_id": "D1",
        "enterprise_id": "E1",
        "sector": Sector.HAZCHEM,
        "risk_type": "tank_level",
        "level": Level.RED,
        "peak_level": Level.RED,
        "raised_at": raised,
    }
    return WarningFacts(**{**base, **fields})


def day(
    on: float, expected: float = 86400, declared: float = 0, undeclared: float = 0, **fields: Any
) -> DeviceDay:
    base: dict[str, Any] = {
        "device_id": "D1",
        "enterprise_id": "E1",
        "sector": Sector.HAZCHEM,
        "day": date(2025, 3, 2),
    }
    return DeviceDay(
        **{**base, **fields},
        expected_s=expected,
        online_s=on,
        declared_outage_s=declared,
        undeclared_outage_s=undeclared,
    )


# --- empty denominators -----------------------------------------------------------------------


def test_an_empty_period_has_no_rates_at_all() -> None:
    tally = ind.tally(MARCH, [], [])
    rates = [tally.online, tally.disposal, tally.timeliness, tally.false_alarm, tally.escalation, tally.repeat]
    assert [ratio.value for ratio in rates] == [None] * 6
    assert tally.acknowledge_time[ind.ALL].value is None and tally.clear_time["red"].value is None
    assert (tally.road_online, tally.road_network, tally.undeclared_outage_h) == (None, None, 0.0)


# --- 在线率 -----------------------------------------------------------------------


def test_online_rate_excludes_declared_outage_from_the_expected_time() -> None:
    days = [
        day(80000, declared=3600, undeclared=2800),
        day(86400, device_id="D2"),
        day(86400, day=date(2025, 4, 1)),  # not March
    ]
    tally = ind.tally(MARCH, [], days)
    # (80000 + 86400) / ((86400 - 3600) + 86400) = 166400 / 169200
    assert (tally.online.numerator, tally.online.denominator) == (166400, 169200)
    assert tally.online.value == pytest.approx(0.983452, abs=1e-6)
    assert tally.undeclared_outage_h == pytest.approx(2800 / 3600)


def test_a_day_wholly_declared_has_no_expected_time() -> None:
    assert ind.tally(MARCH, [], [day(0, declared=86400)]).online.value is None


# --- 处置率 -----------------------------------------------------------------------


def clear(due_at: float) -> tuple[StageFact, ...]:
    return (stage(Stage.CLEAR, None, None, due_at),)


@pytest.mark.parametrize(
    ("facts", "numerator", "denominator"),
    [
        # raised before the period, closed inside: due to close in March, disposed
        (warning(S - 5 * H, closed_at=S + H, stages=clear(S - 3 * H)), 0, 0),  # clear due in Feb: February's
        (warning(S - H, closed_at=S + H, stages=clear(S + H)), 1, 1),
        (warning(S + H, stages=clear(S + 3 * H)), 0, 1),  # due in March, still open at the end
        (warning(E - H, stages=clear(E + H)), 0, 0),  # due in April: April's
        (warning(S + H, closed_at=E + H, stages=clear(S + 3 * H)), 0, 1),  # closed after the end: not in March
        (warning(E - 2 * H, closed_at=E - H, stages=clear(E + 5 * H)), 1, 1),  # closed before its due: March's
    ],
)
def test_disposal_rate_counts_each_warning_in_the_period_it_was_due_to_close(
    facts: WarningFacts, numerator: int, denominator: int
) -> None:
    assert ind.disposal([facts], MARCH) == Ratio(numerator=numerator, denominator=denominator)


# --- 及时率 -----------------------------------------------------------------------


def test_timeliness_counts_stages_settled_in_the_period() -> None:
    facts = [
        warning(
            S + H,
            stages=(
                stage(Stage.ACKNOWLEDGE, S + H + 300, True),
                stage(Stage.VERIFY, S + H + 900, False),
                stage(Stage.CLEAR, S + 2 * H, True),
                stage(Stage.CONFIRM, S + 3 * H, False),
            ),
        ),
        warning(
            S - H,
            stages=(
                stage(Stage.ACKNOWLEDGE, S - H + 10, True),  # February
                stage(Stage.VERIFY, S + 10, True),
                stage(Stage.CLEAR, None, None),  # pending
            ),
        ),
    ]
    overall, by_stage = ind.timeliness(facts, MARCH)
    # enterprise stages in March: ack ✓, verify ✗, clear ✓ (W1); verify ✓ (W2) → 3 / 4; 确认消警 apart
    assert overall == Ratio(numerator=3, denominator=4)
    assert by_stage["acknowledge"] == Ratio(numerator=1, denominator=1)
    assert by_stage["verify"] == Ratio(numerator=1, denominator=2)
    assert by_stage["confirm"] == Ratio(numerator=0, denominator=1)
    assert ind.tally(MARCH, facts, []).missed_deadlines == 1


# --- 误报率, mean times, escalation, repeat ------------------------------------------


def test_false_alarm_rate_is_false_alarms_over_closures_in_the_period() -> None:
    facts = [
        warning(S + H, closed_at=S + 2 * H, clear_reason=ClearReason.FALSE_ALARM),
        warning(S + H, closed_at=S + 2 * H, clear_reason=ClearReason.DISPOSED),
        warning(S + H, closed_at=S + 2 * H, clear_reason=ClearReason.DEVICE_FAULT),
        warning(S - H, closed_at=S + 1, clear_reason=ClearReason.FALSE_ALARM),
        warning(S + H, closed_at=E, clear_reason=ClearReason.FALSE_ALARM),  # closed in April
        warning(S + H),  # open
    ]
    assert ind.false_alarm(facts, MARCH) == Ratio(numerator=2, denominator=4)  # 2 / 4 = 50 %


def test_mean_times_to_acknowledge_and_clear_by_peak_level() -> None:
    facts = [
        warning(S, acknowledged_at=S + 120, closed_at=S + 3600),
        warning(S, acknowledged_at=S + 240, closed_at=S + 7200),
        warning(S, peak_level=Level.BLUE, acknowledged_at=S + 3000),
        warning(S - 600, acknowledged_at=S - 300),  # acknowledged in February
    ]
    ack = ind.acknowledge_time(facts, MARCH)
    # red (120 + 240) / 2 = 180 s; blue 3000 s; all (120 + 240 + 3000) / 3 = 1120 s
    assert (ack["red"].value, ack["blue"].value, ack[ind.ALL].value, ack["yellow"].value) == (
        180,
        3000,
        1120,
        None,
    )
    cleared = ind.clear_time(facts, MARCH)
    assert cleared["red"].value == (3600 + 7200) / 2


def test_escalation_rate_counts_escalations_before_the_end_of_warnings_raised_in_the_period() -> None:
    facts = [
        warning(S + H, escalated_at=S + 2 * H),
        warning(E - H, escalated_at=E + H),  # escalated in April: not yet
        warning(S + H),
        warning(S - H, escalated_at=S + H),  # raised in February
    ]
    assert ind.escalation(facts, MARCH) == Ratio(numerator=1, denominator=3)


def test_repeat_rate_looks_back_one_window_from_each_raise() -> None:
    day_s = 86400
    facts = [
        warning(S - 2 * H),  # February, but the March one 2 h later repeats it
        warning(S),  # repeat (2 h after)
        warning(S + day_s),  # exactly 24 h after: a repeat (the window is inclusive)
        warning(S + 2 * day_s + 1),  # 24 h + 1 s after: not a repeat
        warning(S + 2 * day_s + 10, risk_type="gas"),  # another risk type: not a repeat
        warning(S + 2 * day_s + 20, device_id="D2"),  # another device: not a repeat
    ]
    # March raises: 5; repeats: 2
    assert ind.repeat(facts, MARCH, 86400) == Ratio(numerator=2, denominator=5)


# --- road transport -----------------------------------------------------------------------


def vehicle(device: str, on: float, **fields: Any) -> DeviceDay:
    return day(on, device_id=device, sector=Sector.ROAD_TRANSPORT, **fields)


def test_road_indicators_only_where_their_inputs_exist() -> None:
    days = [
        vehicle("V1", 80000, records_total=1000, records_qualified=990, track_km=200, track_complete_km=190),
        vehicle("V1", 80000, day=date(2025, 3, 3), drifted=True),
        vehicle("V2", 86400, records_total=500, records_qualified=500, drifted=False),
        vehicle("V3", 0),
    ]
    road = ind.road(days, FleetFacts(enterprise_id="E1", vehicles_networked=4))
    assert road["road_network"] is None  # 应入网 vehicles unknown
    assert road["road_online"] == Ratio(numerator=2, denominator=4)  # V1, V2 online of 4 networked
    assert road["road_data_quality"] == Ratio(numerator=1490, denominator=1500)  # (990 + 500) / (1000 + 500)
    assert road["road_track"] == Ratio(numerator=190, denominator=200)
    assert road["road_drift"] == Ratio(numerator=1, denominator=2)  # V1 drifted, of V1 and V2 (drift known)
    assert ind.road(days, None) == dict.fromkeys(road)
    assert ind.road([vehicle("V1", 1)], FleetFacts(enterprise_id="E1", vehicles_networked=1))["road_track"] is None


def test_road_network_rate_with_the_required_fleet() -> None:
    road = ind.road([], FleetFacts(enterprise_id="E1", vehicles_networked=9, vehicles_required=10))
    assert road["road_network"] == Ratio(numerator=9, denominator=10)
    assert road["road_online"] == Ratio(numerator=0, denominator=9)


# --- rollups -----------------------------------------------------------------------


def profile(
    eid: str, sector: Sector = Sector.HAZCHEM, areas: tuple[str, ...] = ("TEDA",), **f: Any
) -> EnterpriseProfile:
    return EnterpriseProfile(enterprise_id=eid, sector=sector, area_codes=areas, **f)


def test_rollups_sum_numerators_and_denominators_not_rates() -> None:
    profiles = [
        profile("E1"),
        profile("E2", areas=("TEDA", "XINGANG")),
        profile("E3", sector=Sector.CHEM_PIPELINE, areas=("XINGANG",)),
    ]
    march = [date(2025, 3, 2) + timedelta(days=i) for i in range(3)]
    days = [
        day(43200, enterprise_id="E1"),
        *(day(86400, enterprise_id="E2", device_id="D2", day=d) for d in march),
        day(0, enterprise_id="E3", device_id="D3"),
    ]
    warnings = [
        warning(S + H, enterprise_id="E1", closed_at=S + 2 * H, clear_reason=ClearReason.FALSE_ALARM),
        warning(S + H, enterprise_id="E2", closed_at=S + 2 * H, clear_reason=ClearReason.DISPOSED),
        warning(S + H, enterprise_id="E2", device_id="D2", closed_at=S + 3 * H, clear_reason=ClearReason.DISPOSED),
    ]
    results = ind.evaluate(MARCH, profiles, warnings, days)
    sector = ind.by_sector(results)["hazchem"]
    # E1 0.5, E2 1.0; sum: (43200 + 3 × 86400) / (4 × 86400) = 302400 / 345600 = 0.875 (the mean would be 0.75)
    assert sector.online == Ratio(numerator=302400, denominator=345600) and sector.online.value == 0.875
    assert sector.false_alarm == Ratio(numerator=1, denominator=3)
    assert sector.enterprises == 2
    areas = ind.by_area(results)
    assert (areas["TEDA"].enterprises, areas["XINGANG"].enterprises) == (2, 2)  # E2 counts in both its areas
    assert areas["XINGANG"].online == Ratio(numerator=259200, denominator=345600)  # E2 + E3
    departments = ind.by_department(results)
    # hazchem → emergency_bureau; chem_pipeline → emergency_bureau and planning_resources
    assert departments["emergency_bureau"].enterprises == 3
    assert departments["planning_resources"].online == Ratio(numerator=0, denominator=86400)
    assert ind.overall(results) == departments["emergency_bureau"]  # every enterprise once = the sum of parts
    assert sum(t.raised["red"] for t in ind.by_sector(results).values()) == 3


def test_a_rollup_of_road_indicators_skips_enterprises_without_the_data() -> None:
    with_data = Tally(road_data_quality=Ratio(numerator=9, denominator=10))
    assert (with_data + Tally()).road_data_quality == Ratio(numerator=9, denominator=10)
    assert (Tally() + Tally()).road_data_quality is None


# --- score and bands -----------------------------------------------------------------------


def result(eid: str = "E1", sector: Sector = Sector.HAZCHEM, **tally: Any) -> EnterpriseIndicators:
    return EnterpriseIndicators(
        enterprise_id=eid, sector=sector, area_codes=("TEDA",), period=MARCH, tally=Tally(**tally)
    )


def test_score_follows_domain_section_6() -> None:
    card = score(
        profile("E1", major_hazard_grades=(2,)),
        result(
            raised={"red": 2, "orange": 3, "yellow": 4, "blue": 1},
            timeliness=Ratio(numerator=7, denominator=10),
            online=Ratio(numerator=985, denominator=1000),
            undeclared_outage_s=2 * H,
        ),
        POLICY,
    )
    # static: grade 2 → 15; warnings 2×10 + 3×5 + 4×2 + 1×0.5 = 43.5, capped at 40; missed 10 − 7 = 3 → 6;
    # data quality: (99.5 − 98.5) % × 2 = 2, plus 2 h × 0.5 = 1 → 3; 100 − 15 − 40 − 6 − 3 = 36 → red
    assert (card.static_points, card.warning_points_raw, card.warning_points) == (15, 43.5, 40)
    assert (card.missed_deadlines, card.deadline_points, card.data_quality_points) == (3, 6, pytest.approx(3))
    assert (card.score, card.band) == (36, "red")


@pytest.mark.parametrize(
    ("grades", "points"),
    [((), 0), ((4,), 5), ((3,), 10), ((1,), 20), ((3, 1, 4), 20)],  # the worst grade counts once
)
def test_static_points_by_major_hazard_grade(grades: tuple[int, ...], points: float) -> None:
    assert score(profile("E1", major_hazard_grades=grades), result(), POLICY).static_points == points


def test_a_clean_enterprise_scores_100_and_no_online_data_costs_nothing() -> None:
    card = score(profile("E1"), result(), POLICY)
    assert (card.score, card.band, card.data_quality_points) == (100, "blue", 0)


def test_the_score_never_falls_below_the_floor_and_data_quality_is_capped() -> None:
    card = score(
        profile("E1", major_hazard_grades=(1,)),
        result(
            raised={"red": 10},
            timeliness=Ratio(numerator=0, denominator=30),
            online=Ratio(numerator=0, denominator=1),
        ),
        POLICY,
    )
    # 100 − 20 − 40 − 60 − min(20, 99.5 × 2) = −40 → 0
    assert (card.data_quality_points, card.score, card.band) == (20, 0, "red")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, Level.BLUE),
        (90, Level.BLUE),
        (89.99, Level.YELLOW),
        (75, Level.YELLOW),
        (74.99, Level.ORANGE),
        (60, Level.ORANGE),
        (59.99, Level.RED),
        (0, Level.RED),
    ],
)
def test_band_edges_belong_to_the_better_band(value: float, expected: Level) -> None:
    assert band(value, POLICY) is expected


def test_a_stage_overrides_the_evaluation_policy() -> None:
    policy = build_policy({"evaluation": {"warning_points_cap": 30, "bands": {"blue": 95}}}).evaluation
    assert (policy.warning_points_cap, band(94, policy)) == (30, Level.YELLOW)
    with pytest.raises(ValueError):
        build_policy({"evaluation": {"bands": {"yellow": 95}}})


# --- rankings and the priority list -----------------------------------------------------------------------


def card(eid: str, raised: dict[str, int], missed: int = 0, sector: Sector = Sector.HAZCHEM) -> Any:
    tally: dict[str, Any] = {"raised": raised, "timeliness": Ratio(numerator=0, denominator=missed)}
    return score(profile(eid, sector), result(eid, sector, **tally), POLICY)


def test_ranking_ties_are_broken_by_missed_deadlines_then_warning_points_then_id() -> None:
    cards = [
        card("E9", {"blue": 4}),  # 100 − 2 = 98, raw points 2
        card("E1", {"orange": 1}, missed=1),  # 100 − 5 − 2 = 93
        card("E2", {"yellow": 1}, missed=0),  # 98, raw 2
        card("E3", {"yellow": 1, "red": 0}, missed=0),  # 98, raw 2: same as E2 → by id
        card("E4", {"red": 0}, missed=1),  # 98, one missed: after the others at 98
    ]
    ranked = rank_by_sector(cards)["hazchem"]
    assert [(e.card.enterprise_id, e.card.score, e.position, e.of) for e in ranked] == [
        ("E2", 98, 1, 5),
        ("E3", 98, 2, 5),
        ("E9", 98, 3, 5),
        ("E4", 98, 4, 5),
        ("E1", 93, 5, 5),
    ]
    assert [e.card.enterprise_id for e in rank_by_area(cards)["TEDA"]] == ["E2", "E3", "E9", "E4", "E1"]


@pytest.mark.parametrize(
    ("size", "share", "count"), [(11, 0.1, 2), (10, 0.1, 1), (3, 0.1, 1), (0, 0.1, 0), (5, 0, 0)]
)
def test_the_bottom_share_rounds_up(size: int, share: float, count: int) -> None:
    assert bottom_count(size, share) == count


def test_priority_list_takes_the_red_band_and_each_sectors_bottom() -> None:
    hazchem = [card(f"H{i:02d}", {"blue": i}) for i in range(11)]  # H10 lowest (95), H09 next (95.5)
    fire = [
        card("F1", {"red": 4, "orange": 1}, sector=Sector.FIRE),  # 45 points capped at 40: 60, orange (edge)
        card("F2", {}, sector=Sector.FIRE),  # 100
        card("F3", {"red": 5}, missed=1, sector=Sector.FIRE),  # 100 − 40 − 2 = 58 → red
    ]
    listed = priority_list([*hazchem, *fire], POLICY)
    # hazchem: 11 → bottom 2 (H10, H09); fire: 3 → bottom 1 (F3, also red); worst first
    assert [(e.card.enterprise_id, e.reasons) for e in listed] == [
        ("F3", ("band:red", "sector_bottom")),
        ("H10", ("sector_bottom",)),
        ("H09", ("sector_bottom",)),
    ]
