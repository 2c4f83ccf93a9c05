"""The platform's local time: Asia/Shanghai, UTC+8 without daylight saving since 1991 (one definition).

Everything that shows a local time (SMS, reports, the daily quarantine partition) or grades by local time of day
(night driving, curfews, per-day rates) uses these, never its own offset.
"""

from __future__ import annotations

from datetime import timedelta, timezone

SHANGHAI_OFFSET_S = 8 * 3600
SHANGHAI = timezone(timedelta(seconds=SHANGHAI_OFFSET_S), "Asia/Shanghai")
_DAY_S = 86400


def local_minute_of_day(epoch_s: float) -> int:
    """Minute of the day (0..1439) in Asia/Shanghai local time."""
    return int((epoch_s + SHANGHAI_OFFSET_S) // 60) % 1440


def local_day_number(epoch_s: float) -> int:
    """Days since 1970-01-01 in Asia/Shanghai local time (the day changes at local midnight)."""
    return int((epoch_s + SHANGHAI_OFFSET_S) // _DAY_S)


def in_window(minute: int, start: int, end: int) -> bool:
    """True when `minute` lies in [start, end), a window that may wrap past midnight."""
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end
