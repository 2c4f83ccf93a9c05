"""Waiting on conditions, never for a fixed time: the local runtime, the demo and the end-to-end tests share these.

A busy machine (CI, a laptop compiling something) makes every step of the platform slower; a wait that decides an
outcome by the clock ("sleep 2 s, then look") then fails for the wrong reason. These helpers poll a condition until
it holds, bounded by a generous timeout, so that a slow machine makes a run longer, not wrong. `wait_while_moving`
also gives up early when nothing moves any more, so that a platform that is stuck (not slow) fails in reasonable
time whatever the bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import TypeVar

__all__ = ["WaitTimeoutError", "wait_until", "wait_while_moving"]

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """A condition did not hold within its bound. An AssertionError, so that a test reports it as a failure."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
) -> T:
    """Poll `probe` until it returns something truthy and return that; raise `WaitTimeoutError` after `timeout_s`.

    The last look starts after the bound has passed, so a condition that became true while the waiting thread was
    starved of CPU still counts.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        last_look = time.monotonic() >= deadline
        found = probe()
        if found:
            return found
        if last_look:
            raise WaitTimeoutError(f"not within {timeout_s:g} s: {what}")
        time.sleep(interval_s)


def wait_while_moving(
    done: Callable[[], bool],
    progress: Callable[[], Hashable],
    *,
    stall_s: float,
    timeout_s: float,
    interval_s: float = 0.1,
    on_poll: Callable[[], None] | None = None,
) -> bool:
    """Poll `done` until it holds, as long as `progress()` keeps changing; True when done, False when given up.

    Gives up once `progress()` has returned the same value for `stall_s` (stuck, not slow), or after `timeout_s` in
    all. `on_poll` runs at every poll (e.g. to print progress).
    """
    started = time.monotonic()
    last_value = progress()
    last_change = started
    while True:
        if on_poll is not None:
            on_poll()
        if done():
            return True
        now = time.monotonic()
        value = progress()
        if value != last_value:
            last_value, last_change = value, now
        if now - last_change >= stall_s or now - started >= timeout_s:
            return done()
        time.sleep(interval_s)
