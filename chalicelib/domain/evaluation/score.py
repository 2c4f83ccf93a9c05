"""The enterprise safety-state score (DOMAIN.md §6), its colour band, the rankings within sector and area, and the
priority-inspection list (重点检查名单) for the next year (第十八条). The numbers are `EvaluationPolicy`'s.

    score = start (100) − static − min(cap 40, Σ warning points) − 2 × missed deadlines − data quality

clamped at `floor` (0) and rounded to 2 decimals; the band is read from the rounded score (≥ 90 blue, ≥ 75 yellow,
≥ 60 orange, below red). Rankings: position 1 is the best; ties are broken by fewer missed deadlines, then fewer
raw warning points, then the enterprise id, so every run lists the same order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.evaluation.indicators import EnterpriseIndicators, EnterpriseProfile, Tally
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.levels import Level
from chalicelib.domain.sectors import Sector

_MODEL = ConfigDict(extra="forbid", frozen=True)


class ScoreCard(BaseModel):
    model_config = _MODEL
    enterprise_id: str
    name: str = ""
    sector: Sector
    area_codes: tuple[str, ...] = ()
    score: float
    band: str  # a level code: blue / yellow / orange / red
    static_points: float
    warning_points_raw: float
    warning_points: float  # after the cap
    missed_deadlines: int
    deadline_points: float
    data_quality_points: float


def static_points(grades: Iterable[int], policy: EvaluationPolicy) -> float:
    """The worst (lowest-numbered) major-hazard grade of the enterprise counts, once; none: 0."""
    return max((policy.major_hazard_points.get(grade, 0.0) for grade in grades), default=0.0)


def warning_points(tally: Tally, policy: EvaluationPolicy) -> float:
    """Σ points of the warnings raised in the period, each at its peak level (before the cap)."""
    return sum(policy.warning_points.get(level, 0.0) * count for level, count in tally.raised.items())


def data_quality_points(tally: Tally, policy: EvaluationPolicy) -> float:
    """Points per percentage point of 在线率 below the target, plus points per undeclared-outage hour, capped.
    No expected online time (在线率 None): nothing to judge, no shortfall points."""
    rate = tally.online.value
    shortfall_pct = 0.0 if rate is None else max(0.0, policy.online_target - rate) * 100
    points = (
        shortfall_pct * policy.online_shortfall_points_per_pct
        + tally.undeclared_outage_h * policy.undeclared_outage_points_per_hour
    )
    return min(points, policy.data_quality_cap)


def band(score: float, policy: EvaluationPolicy) -> Level:
    edges = policy.bands
    if score >= edges.blue:
        return Level.BLUE
    if score >= edges.yellow:
        return Level.YELLOW
    if score >= edges.orange:
        return Level.ORANGE
    return Level.RED


def score(profile: EnterpriseProfile, result: EnterpriseIndicators, policy: EvaluationPolicy) -> ScoreCard:
    static = static_points(profile.major_hazard_grades, policy)
    raw = warning_points(result.tally, policy)
    capped = min(raw, policy.warning_points_cap)
    missed = result.tally.missed_deadlines
    deadline = missed * policy.missed_deadline_points
    if policy.missed_deadline_cap is not None:
        deadline = min(deadline, policy.missed_deadline_cap)
    quality = data_quality_points(result.tally, policy)
    value = round(max(policy.floor, policy.start_points - static - capped - deadline - quality), 2)
    return ScoreCard(
        enterprise_id=profile.enterprise_id,
        name=profile.name,
        sector=profile.sector,
        area_codes=profile.area_codes,
        score=value,
        band=band(value, policy).code,
        static_points=static,
        warning_points_raw=raw,
        warning_points=capped,
        missed_deadlines=missed,
        deadline_points=deadline,
        data_quality_points=quality,
    )


def score_all(
    profiles: Sequence[EnterpriseProfile], results: Sequence[EnterpriseIndicators], policy: EvaluationPolicy
) -> list[ScoreCard]:
    by_id = {result.enterprise_id: result for result in results}
    return [score(profile, by_id[profile.enterprise_id], policy) for profile in profiles]


# --- rankings and the priority list ----------------------------------------------------------------------------


class RankEntry(BaseModel):
    model_config = _MODEL
    scope: str  # a sector code or an area code
    position: int  # 1 = the best
    of: int
    card: ScoreCard


def rank_key(card: ScoreCard) -> tuple[float, int, float, str]:
    """Best first: higher score, then fewer missed deadlines, then fewer raw warning points, then the id."""
    return (-card.score, card.missed_deadlines, card.warning_points_raw, card.enterprise_id)


def _rank(groups: dict[str, list[ScoreCard]]) -> dict[str, list[RankEntry]]:
    ranked: dict[str, list[RankEntry]] = {}
    for scope in sorted(groups):
        cards = sorted(groups[scope], key=rank_key)
        ranked[scope] = [
            RankEntry(scope=scope, position=i + 1, of=len(cards), card=c) for i, c in enumerate(cards)
        ]
    return ranked


def rank_by_sector(cards: Iterable[ScoreCard]) -> dict[str, list[RankEntry]]:
    groups: dict[str, list[ScoreCard]] = defaultdict(list)
    for card in cards:
        groups[card.sector.value].append(card)
    return _rank(groups)


def rank_by_area(cards: Iterable[ScoreCard]) -> dict[str, list[RankEntry]]:
    """An enterprise is ranked in each of its areas (dev zone and street)."""
    groups: dict[str, list[ScoreCard]] = defaultdict(list)
    for card in cards:
        for area in card.area_codes:
            groups[area].append(card)
    return _rank(groups)


class PriorityEntry(BaseModel):
    model_config = _MODEL
    card: ScoreCard
    reasons: tuple[str, ...]  # "band:<code>", "sector_bottom"


def bottom_count(size: int, share: float) -> int:
    """The bottom share of a sector of `size`, rounded up (10 % of 11 is 2); 0 when the share is 0."""
    return min(size, math.ceil(size * share - 1e-9)) if share > 0 else 0


def priority_list(annual: Iterable[ScoreCard], policy: EvaluationPolicy) -> list[PriorityEntry]:
    """重点检查名单 from an annual result: every enterprise in a priority band, plus the bottom share of each
    sector's ranking; worst first (the ranking order reversed)."""
    cards = list(annual)
    reasons: dict[str, list[str]] = defaultdict(list)
    for card in cards:
        if card.band in policy.priority_bands:
            reasons[card.enterprise_id].append(f"band:{card.band}")
    for entries in rank_by_sector(cards).values():
        for entry in entries[len(entries) - bottom_count(len(entries), policy.priority_bottom_share) :]:
            reasons[entry.card.enterprise_id].append("sector_bottom")
    listed = sorted((c for c in cards if c.enterprise_id in reasons), key=rank_key, reverse=True)
    return [PriorityEntry(card=card, reasons=tuple(reasons[card.enterprise_id])) for card in listed]
