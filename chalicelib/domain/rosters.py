"""Duty rosters (值班表): who is on shift when, and who a message for a role reaches at a given moment.

Shifts are half-open intervals `[starts_at, ends_at)` in epoch seconds: at a handover instant the incoming officer
is on duty and the outgoing one is not. Shifts may overlap (a handover with both present): everyone whose shift
covers the moment is told. When no shift covers it (a gap in the roster, or no roster at all), every duty officer
is told: too many told beats nobody told.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.registry import Person

MAX_SHIFT_S = 24 * 3600
"""The longest shift: who is on shift at t is found among the shifts starting in [t - MAX_SHIFT_S, t]."""
PAST_LIMIT_S = 7 * 86400
"""A shift that ended longer ago than this cannot be written any more (the roster is not for rewriting history)."""
MAX_RANGE_S = 31 * 86400
"""The longest window a shift listing may ask for."""

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class RosterRole(StrEnum):
    """The roles that keep a roster (others are told all at once)."""

    DUTY = "duty"


class Shift(BaseModel):
    """One person on one roster from `starts_at` (included) to `ends_at` (excluded), epoch seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    shift_id: str = Field(min_length=1, max_length=64)
    role: RosterRole = RosterRole.DUTY
    person_id: str = Field(min_length=1, max_length=64)
    starts_at: int = Field(ge=0)
    ends_at: int = Field(ge=0)
    note: str = Field(default="", max_length=200)

    def covers(self, at: float) -> bool:
        return self.starts_at <= at < self.ends_at

    def overlaps(self, start: float, end: float) -> bool:
        """Shares some instant with `[start, end)`."""
        return self.starts_at < end and start < self.ends_at


def check_phone(phone: str) -> str:
    """The number, if it is E.164 (`+8613800138000`); else 422 `invalid_phone`."""
    if not E164.fullmatch(phone):
        raise ValidationFailed("invalid_phone", "手机号码格式不正确，须为国际格式（如 +8613800138000）")
    return phone


def check_shift(shift: Shift, now: float) -> Shift:
    """A shift fit to be written: it ends after it starts, lasts at most `MAX_SHIFT_S`, and did not end longer
    than `PAST_LIMIT_S` ago (422 with the rule it breaks)."""
    if shift.ends_at <= shift.starts_at:
        raise ValidationFailed("shift_not_after_start", "班次结束时间须晚于开始时间")
    if shift.ends_at - shift.starts_at > MAX_SHIFT_S:
        raise ValidationFailed("shift_too_long", f"班次时长不得超过 {MAX_SHIFT_S // 3600} 小时")
    if shift.ends_at < now - PAST_LIMIT_S:
        raise ValidationFailed("shift_in_past", f"不能登记或修改 {PAST_LIMIT_S // 86400} 天以前已结束的班次")
    return shift


def check_range(start: float, end: float) -> None:
    """A listing window: not empty, at most `MAX_RANGE_S` long (422 `invalid_range`)."""
    if end <= start or end - start > MAX_RANGE_S:
        raise ValidationFailed("invalid_range", f"查询时段须为开始早于结束、且不超过 {MAX_RANGE_S // 86400} 天")


def starts_window(at: float) -> tuple[int, int]:
    """The starts of every shift that may cover `at`: `[at - MAX_SHIFT_S, at]` (both whole seconds)."""
    return int(at) - MAX_SHIFT_S, int(at)


def on_shift(shifts: Iterable[Shift], at: float) -> tuple[Shift, ...]:
    """The shifts covering `at` (half-open: a shift starting at `at` covers it, one ending at `at` does not),
    earliest start first."""
    return tuple(sorted((s for s in shifts if s.covers(at)), key=lambda s: (s.starts_at, s.shift_id)))


def on_duty(people: Sequence[Person], shifts: Iterable[Shift], at: float) -> tuple[Person, ...]:
    """Among `people` (the officers of one roster's role), those on shift at `at`; all of them when no shift covers
    `at` or when none of the people on shift is registered any more."""
    by_id = {person.person_id: person for person in people}
    present = [by_id[s.person_id] for s in on_shift(shifts, at) if s.person_id in by_id]
    return tuple({person.person_id: person for person in present}.values()) if present else tuple(people)
