"""Waiting on conditions (`local/waiting.py`), what the demo and the end-to-end tests use instead of sleeps."""

from __future__ import annotations

import itertools
import time

import pytest

from local.waiting import WaitTimeoutError, wait_until, wait_while_moving


def test_wait_until_returns_what_the_probe_found_once_it_holds() -> None:
    calls = itertools.count(1)
    found = wait_until(lambda: "found" if next(calls) >= 3 else None, timeout_s=5, what="x", interval_s=0)
    assert found == "found"


def test_wait_until_fails_as_an_assertion_naming_what_it_waited_for() -> None:
    with pytest.raises(WaitTimeoutError, match=r"not within 0\.05 s: the red warning"):
        wait_until(lambda: None, timeout_s=0.05, what="the red warning", interval_s=0.01)
    assert issubclass(WaitTimeoutError, AssertionError)


def test_wait_until_looks_once_more_after_the_bound() -> None:
    """A condition that became true while the waiting thread had no CPU still counts."""
    looks: list[float] = []

    def late_but_true() -> bool:
        looks.append(time.monotonic())
        if len(looks) == 1:
            time.sleep(0.1)  # starved past the bound
            return False
        return True

    assert wait_until(late_but_true, timeout_s=0.01, what="x", interval_s=0) is True
    assert len(looks) == 2


def test_wait_while_moving_waits_as_long_as_there_is_progress() -> None:
    progress = itertools.count()
    polls = itertools.count(1)
    done = wait_while_moving(lambda: next(polls) > 30, lambda: next(progress), stall_s=0.05, timeout_s=5)
    assert done


def test_wait_while_moving_gives_up_when_nothing_moves() -> None:
    started = time.monotonic()
    assert not wait_while_moving(lambda: False, lambda: 0, stall_s=0.05, timeout_s=5, interval_s=0.01)
    assert time.monotonic() - started < 2


def test_wait_while_moving_gives_up_at_its_bound_even_while_moving() -> None:
    progress = itertools.count()
    started = time.monotonic()
    assert not wait_while_moving(lambda: False, lambda: next(progress), stall_s=5, timeout_s=0.05, interval_s=0.01)
    assert time.monotonic() - started < 2


def test_wait_while_moving_calls_on_poll_at_every_poll() -> None:
    polled: list[int] = []
    calls = itertools.count(1)
    wait_while_moving(
        lambda: next(calls) >= 3, lambda: 0, stall_s=5, timeout_s=5, interval_s=0, on_poll=lambda: polled.append(1)
    )
    assert len(polled) == 3
