"""The seconds-scale clock the platform runs with during the demo (DYJ_POLICY_JSON).

DOMAIN.md §4 counts deadlines in minutes and hours; a demo of a few minutes needs seconds. The order between the
levels is kept, so the story is the same, only faster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DEADLINES_S: Mapping[str, tuple[int, int, int, int]] = {
    "red": (15, 30, 50, 8),
    "orange": (20, 40, 70, 10),
    "yellow": (25, 50, 90, 12),
    "blue": (30, 60, 120, 15),
}
"""Per level: acknowledge, verify + feed back, clear, reminder interval (seconds, counted from the raise).
Within the default run a silent red (raised by ~75 s) reaches tier 3 (~125 s) and a silent orange its clear
deadline (tier 2 again)."""

CONFIRM_S: Mapping[str, int] = {"red": 40, "orange": 50}
"""The duty centre's confirmation of an orange/red clear request (DOMAIN.md §4: 30 min, 1 h), in seconds."""

SWEEP_GRACE_S = 20
DECLARATIONS_CACHE_S = 1.0
REMIND_BEFORE_END_S = 20.0
"""The declarer of a window ending within this is reminded (an hour as deployed): the demo's 30 s window is
reminded ~10 s after it starts (local/demo/declarations.py)."""

PRESENCE: Mapping[str, float] = {"period_s": 5, "lag_periods": 3, "disconnect_grace_s": 4, "shard_silence_s": 900}
"""The offline watch on a seconds scale (docs/offline-watch.md): one presence summary per shard every 5 s, read
three periods (15 s) late, so that a slow batch on a busy machine still writes its period before the watch reads
it; a device that disconnected is offline 4 s later. The report thresholds stay the deployed ones (minutes): only
the scene's device, which disconnects, falls silent within the run, and a busy machine's slow steps make no
other device offline. Shard silence 15 min (3 as deployed): the shards fall quiet when the fleet stops, and a
long drain on a busy machine must not look like dead shards."""

FAST_DEADLINES_S: Mapping[str, tuple[int, int, int, int]] = {
    "red": (5, 10, 18, 15),
    "orange": (7, 14, 25, 20),
    "yellow": (9, 18, 32, 25),
    "blue": (10, 20, 40, 30),
}
FAST_CONFIRM_S: Mapping[str, int] = {"red": 12, "orange": 15}
"""`--fast` (tests): the same story about three times faster (the timers sleep until each due time: no polling).
Reminders are slower than the rest: every open warning's reminder is a delivery job, and the one local deliver
function (every call through moto, in one process) handles about two jobs a second: at 8–15 s for ~20 open warnings
the reminders alone kept it busy, so SMS waited and the drain (which waits for an empty delivery queue) took
minutes; at 15–30 s they take a third of it."""

OFFLINE_WATCH_EVERY_S = 2.0  # the offline watch's schedule (every minute as deployed; it reads new periods only)
DECLARATION_SWEEP_EVERY_S = 2.0  # the declarations' sweep (every 5 minutes as deployed): reminders, expiry

FAST_ACTOR_PACE = 1 / 2
"""`--fast`: people act twice as quickly."""


def deadline_table(fast: bool) -> Mapping[str, tuple[int, int, int, int]]:
    return FAST_DEADLINES_S if fast else DEADLINES_S


def confirm_table(fast: bool) -> Mapping[str, int]:
    return FAST_CONFIRM_S if fast else CONFIRM_S


def demo_policy(fast: bool) -> dict[str, Any]:
    """The policy overrides the platform runs with (DYJ_POLICY_JSON): deadlines, the workflow's clock, the
    declarations' cache and reminder, the offline watch's period."""
    deadlines: dict[str, dict[str, int]] = {
        level: {"acknowledge_s": ack, "verify_s": verify, "clear_s": clear, "reminder_s": reminder}
        for level, (ack, verify, clear, reminder) in deadline_table(fast).items()
    }
    for level, seconds in confirm_table(fast).items():
        deadlines[level]["confirm_s"] = seconds
    return {
        "deadlines": deadlines,
        "workflow": {"sweep_grace_s": SWEEP_GRACE_S},
        # the ingest sees the demo's declaration within seconds, not a minute (docs/declarations.md)
        "declarations": {"open_cache_s": DECLARATIONS_CACHE_S, "remind_before_end_s": REMIND_BEFORE_END_S},
        # the silent device's offline warning within the run (local/demo/offline.py)
        "presence": dict(PRESENCE),
    }
