"""Quarters and years from the months' tallies (docs/evaluation.md "Quarters and years").

Every monthly run keeps, beside its report, each enterprise's `Tally` of the month (`MonthTallies`, stored with
the report): a quarter's or a year's run sums its months' tallies instead of reading three or twelve months of
warnings and device-days again. Each fact of the formulas belongs to the one period its time falls in (a stage to
the month it settled in, a closure to the month it happened in, a device-day to its month), so for most indicators
the longer period's sums are the months' sums. Three are not, and are recomputed:

- 处置率's numerator counts a warning due to close in the period and closed *before the period's end*: a warning
  that fell due in January and closed in February is undisposed in January's tally and disposed in the quarter's.
  Each month keeps the warnings it counted undisposed (`open_due`); the longer run re-reads those (a few per
  cent of the warnings) and counts the ones closed before its end.
- the escalation rate's numerator counts a warning raised in the period and escalated *before the period's end*:
  each month keeps its raised warnings neither escalated nor closed by its end (`open_raised`); re-read likewise.
- 上线率 counts *distinct* vehicles online on some day: each month keeps its road-transport vehicles that were
  never online in it (`never_online`); a vehicle is offline for the longer period when it was never online in any
  of the months the enterprise was evaluated in. The denominator (vehicles networked) and 入网率 are the fleet's
  as read by the longer run.

`enterprises` of a summed tally is 1 (an enterprise, not a count of months). The score, band, ranks, rollups,
priority list and charts are computed from the summed tallies, as for any report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseIndicators, EnterpriseProfile, Ratio, Tally, total
from chalicelib.domain.evaluation.periods import Period, PeriodKind
from chalicelib.domain.sectors import Sector

_MODEL = ConfigDict(extra="forbid", frozen=True)


class DayCount(BaseModel):
    """Warnings raised on one local day (its ISO date), by peak level code."""

    model_config = _MODEL
    day: str
    counts: dict[str, int]


class EnterpriseMonth(BaseModel):
    model_config = _MODEL
    enterprise_id: str
    tally: Tally
    daily_raised: tuple[DayCount, ...] = ()
    open_due: tuple[str, ...] = ()  # warnings due to close in the month, not closed by its end
    open_raised: tuple[str, ...] = ()  # raised in the month, neither escalated nor closed by its end
    never_online: tuple[str, ...] = ()  # road transport: vehicles without online time in the month


class MonthTallies(BaseModel):
    model_config = _MODEL
    period: Period
    generated_at: float
    enterprises: tuple[EnterpriseMonth, ...]


def month_tallies(
    period: Period,
    generated_at: float,
    tallies: Mapping[str, Tally],
    daily_raised: Mapping[str, Sequence[tuple[str, Mapping[str, int]]]],
    warnings: Sequence[WarningFacts],
    device_days: Sequence[DeviceDay],
) -> MonthTallies:
    """What a month keeps for its quarter and year: each enterprise's tally and daily counts (as its report has
    them), and the warnings and vehicles whose count a longer period may change."""
    if period.kind is not PeriodKind.MONTH:
        raise ValueError("only a month's tallies are kept")
    open_due: dict[str, list[str]] = {}
    open_raised: dict[str, list[str]] = {}
    for warning in warnings:
        open_at_end = warning.closed_at is None or warning.closed_at >= period.end
        if not open_at_end:
            continue
        clear = next((s for s in warning.stages if s.stage.value == "clear"), None)
        due_at = clear.due_at if clear is not None else None
        if period.contains(due_at):
            open_due.setdefault(warning.enterprise_id, []).append(warning.warning_id)
        escalated = warning.escalated_at is not None and warning.escalated_at < period.end
        if period.contains(warning.raised_at) and not escalated:
            open_raised.setdefault(warning.enterprise_id, []).append(warning.warning_id)
    online: set[str] = set()
    vehicles: dict[str, set[str]] = {}
    for day in device_days:
        if day.sector is Sector.ROAD_TRANSPORT and period.contains_day(day.day):
            vehicles.setdefault(day.enterprise_id, set()).add(day.device_id)
            if day.online_s > 0:
                online.add(day.device_id)
    return MonthTallies(
        period=period,
        generated_at=generated_at,
        enterprises=tuple(
            EnterpriseMonth(
                enterprise_id=enterprise_id,
                tally=tally,
                daily_raised=tuple(
                    DayCount(day=day, counts=dict(counts)) for day, counts in daily_raised.get(enterprise_id, ())
                ),
                open_due=tuple(sorted(open_due.get(enterprise_id, ()))),
                open_raised=tuple(sorted(open_raised.get(enterprise_id, ()))),
                never_online=tuple(sorted(vehicles.get(enterprise_id, set()) - online)),
            )
            for enterprise_id, tally in sorted(tallies.items())
        ),
    )


def carried(months: Sequence[MonthTallies]) -> list[str]:
    """The warnings a longer period re-reads (its months' `open_due` and `open_raised`)."""
    ids = {w for m in months for e in m.enterprises for w in (*e.open_due, *e.open_raised)}
    return sorted(ids)


def sum_months(
    period: Period,
    profiles: Sequence[EnterpriseProfile],
    months: Sequence[MonthTallies],
    reread: Mapping[str, WarningFacts],
    fleets: Mapping[str, FleetFacts],
) -> tuple[list[EnterpriseIndicators], dict[str, list[tuple[str, dict[str, int]]]]]:
    """Each profiled enterprise's indicators for `period` (a quarter or a year) from its months' tallies, with the
    three recomputed indicators (module docstring); and its daily counts. `reread`: the carried warnings as they
    stand now (a warning not found changes nothing)."""
    if period.kind not in (PeriodKind.QUARTER, PeriodKind.YEAR):
        raise ValueError("quarters and years are summed from months")
    for month in months:
        if month.period.kind is not PeriodKind.MONTH or not (period.start <= month.period.start < period.end):
            raise ValueError(f"{month.period.label} is not a month of {period.label}")
    parts: dict[str, list[EnterpriseMonth]] = {}
    for month in sorted(months, key=lambda m: m.period.start):
        for part in month.enterprises:
            parts.setdefault(part.enterprise_id, []).append(part)
    results: list[EnterpriseIndicators] = []
    daily: dict[str, list[tuple[str, dict[str, int]]]] = {}
    for profile in profiles:
        own = parts.get(profile.enterprise_id, [])
        summed = total(part.tally for part in own) if own else Tally()
        disposed_later = sum(
            1
            for part in own
            for w in part.open_due
            if (f := reread.get(w)) is not None and f.closed_at is not None and f.closed_at < period.end
        )
        escalated_later = sum(
            1
            for part in own
            for w in part.open_raised
            if (f := reread.get(w)) is not None and f.escalated_at is not None and f.escalated_at < period.end
        )
        fleet = fleets.get(profile.enterprise_id)
        road: dict[str, Ratio | None] = {}
        if fleet is not None:
            never = set.intersection(*(set(part.never_online) for part in own)) if own else set()
            road = {
                "road_online": Ratio(
                    numerator=max(0, fleet.vehicles_networked - len(never)), denominator=fleet.vehicles_networked
                ),
                "road_network": None
                if fleet.vehicles_required is None
                else Ratio(numerator=fleet.vehicles_networked, denominator=fleet.vehicles_required),
            }
        tally = summed.model_copy(
            update={
                "enterprises": 1,
                "disposal": summed.disposal + Ratio(numerator=disposed_later),
                "escalation": summed.escalation + Ratio(numerator=escalated_later),
                **road,
            }
        )
        results.append(
            EnterpriseIndicators(
                enterprise_id=profile.enterprise_id,
                sector=profile.sector,
                area_codes=profile.area_codes,
                period=period,
                tally=tally,
            )
        )
        daily[profile.enterprise_id] = [(d.day, dict(d.counts)) for part in own for d in part.daily_raised]
    return results, daily
