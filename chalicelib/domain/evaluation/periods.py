"""Evaluation periods (DOMAIN.md §6): local calendar months, quarters and years in UTC+8 (clock.SHANGHAI), as
half-open epoch spans [start, end). A report for a period is final once the period has ended: every indicator
counts only what happened (or fell due) before `end`, so running it again later gives the same figures.

Besides the calendar, a `custom` window [start, end) in whole seconds, which the duty centre may request on demand
(a special evaluation: an incident's days, a campaign, the demo's few minutes); never scheduled."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, model_validator

from chalicelib.domain.clock import SHANGHAI


class PeriodKind(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    CUSTOM = "custom"


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: PeriodKind
    label: str  # "2025-03", "2025-Q1", "2025", custom "20250301T080000-20250303T080000" (local times)
    start: float  # epoch seconds, local midnight of the first day
    end: float  # epoch seconds, local midnight after the last day (exclusive)

    @model_validator(mode="after")
    def _ordered(self) -> Period:
        if self.end <= self.start:
            raise ValueError("a period ends after it starts")
        return self

    def contains(self, at: float | None) -> bool:
        return at is not None and self.start <= at < self.end

    def contains_day(self, day: date) -> bool:
        """The local day overlaps the period: a calendar period holds its days whole, a custom window may begin or
        end within a day (its device-days are then the part of the day in the window)."""
        return local_midnight(day) < self.end and local_midnight(day + timedelta(days=1)) > self.start


@lru_cache(maxsize=4096)  # the device-days of a period share a few hundred dates
def local_midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp()


def _months(year: int, month: int, count: int) -> tuple[float, float]:
    index = year * 12 + month - 1 + count
    return local_midnight(date(year, month, 1)), local_midnight(date(index // 12, index % 12 + 1, 1))


def month(year: int, month_number: int) -> Period:
    start, end = _months(year, month_number, 1)
    return Period(kind=PeriodKind.MONTH, label=f"{year:04d}-{month_number:02d}", start=start, end=end)


def quarter(year: int, number: int) -> Period:
    if not 1 <= number <= 4:
        raise ValueError("a quarter is 1..4")
    start, end = _months(year, 3 * number - 2, 3)
    return Period(kind=PeriodKind.QUARTER, label=f"{year:04d}-Q{number}", start=start, end=end)


def year(number: int) -> Period:
    start, end = _months(number, 1, 12)
    return Period(kind=PeriodKind.YEAR, label=f"{number:04d}", start=start, end=end)


def months_of(period: Period) -> list[Period]:
    """The calendar months a quarter or a year is made of, in order."""
    if period.kind not in (PeriodKind.QUARTER, PeriodKind.YEAR):
        raise ValueError("only quarters and years are made of months")
    first = datetime.fromtimestamp(period.start, SHANGHAI).date()
    count = 3 if period.kind is PeriodKind.QUARTER else 12
    index = first.year * 12 + first.month - 1
    return [month((index + n) // 12, (index + n) % 12 + 1) for n in range(count)]


WINDOW_TIME = "%Y%m%dT%H%M%S"  # a custom window's ends in its label, local time


def custom(start: float, end: float) -> Period:
    """The window [start, end), each end floored to the whole second; labelled by its local times."""
    first, last = float(int(start)), float(int(end))
    label = f"{_window_time(first)}-{_window_time(last)}"
    return Period(kind=PeriodKind.CUSTOM, label=label, start=first, end=last)


def custom_of_label(label: str) -> Period:
    """The custom window a label names (`custom(...).label`); ValueError when it names none."""
    first, _, last = label.partition("-")
    start, end = (_window_instant(text) for text in (first, last))
    period = custom(start, end)
    if period.label != label:
        raise ValueError(f"not a custom window's label: {label}")
    return period


def _window_instant(text: str) -> float:
    return datetime.strptime(text, WINDOW_TIME).replace(tzinfo=SHANGHAI).timestamp()


def _window_time(at: float) -> str:
    return datetime.fromtimestamp(at, SHANGHAI).strftime(WINDOW_TIME)


def containing(kind: PeriodKind, at: float) -> Period:
    """The period of `kind` that contains the instant `at` (local calendar; not for custom windows)."""
    if kind is PeriodKind.CUSTOM:
        raise ValueError("a custom window contains no calendar instant of its own")
    local = datetime.fromtimestamp(at, SHANGHAI)
    if kind is PeriodKind.MONTH:
        return month(local.year, local.month)
    if kind is PeriodKind.QUARTER:
        return quarter(local.year, (local.month - 1) // 3 + 1)
    return year(local.year)


def last_complete(kind: PeriodKind, now: float) -> Period:
    """The latest period of `kind` that has ended by `now` (what a scheduled report run evaluates)."""
    current = containing(kind, now)
    return containing(kind, current.start - 1)


def period_zh(period: Period) -> str:
    """2025年3月, 2025年第1季度, 2025年度; a custom window （2025年3月1日 08:00:00 至 3月3日 08:00:00）, local
    times, in brackets: the titles run on into 安全风险监测预警评估报告."""
    if period.kind is PeriodKind.CUSTOM:
        start, end = (datetime.fromtimestamp(at, SHANGHAI) for at in (period.start, period.end))
        same_day = end.date() == start.date()
        shown_end = f"{end:%H:%M:%S}" if same_day else f"{end.month}月{end.day}日 {end:%H:%M:%S}"
        return f"（{start.year}年{start.month}月{start.day}日 {start:%H:%M:%S} 至 {shown_end}）"
    if period.kind is PeriodKind.MONTH:
        year, month = period.label.split("-")
        return f"{year}年{int(month)}月"
    if period.kind is PeriodKind.QUARTER:
        year, quarter = period.label.split("-Q")
        return f"{year}年第{quarter}季度"
    return f"{period.label}年度"
