"""`make demo` checks itself: a short live run through the whole local platform must account for every message,
raise every level in every sector, and quarantine every bad message with exactly its reason; its exit code says so.

One run (~45 s) is shared by the tests of this module; they read the summary the demo prints.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chalicelib.bootstrap import reset
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.rejections import RejectReason
from local import demo
from local.aws import reset_moto, start_moto_server

pytestmark = pytest.mark.e2e

SHORT_RUN = ["--duration", "45", "--step", "1.5", "--no-colour"]
LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)


@dataclass(frozen=True)
class DemoRun:
    exit_code: int
    output: str

    def row(self, first_word: str) -> list[str]:
        """The words of the summary line that starts with `first_word` (after indentation)."""
        for line in self.output.splitlines():
            words = line.split()
            if words and words[0] == first_word:
                return words
        raise AssertionError(f"no summary line for {first_word!r}")


def _wipe_moto() -> None:
    """Moto keeps one state per process: start from (and leave) an empty one."""
    server, endpoint_url = start_moto_server()
    try:
        reset_moto(endpoint_url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def short_run() -> Iterator[DemoRun]:
    saved_environ = dict(os.environ)
    _wipe_moto()
    out = io.StringIO()
    try:
        exit_code = demo.main(SHORT_RUN, out=out)
        yield DemoRun(exit_code, out.getvalue())
    finally:
        _wipe_moto()
        os.environ.clear()
        os.environ.update(saved_environ)
        reset()


def test_every_published_message_is_graded_quarantined_or_a_rule_error(short_run: DemoRun) -> None:
    assert "→ every message accounted for" in short_run.output
    assert "UNACCOUNTED" not in short_run.output


@pytest.mark.parametrize("sector", list(Sector), ids=lambda sector: sector.value)
def test_all_four_levels_are_raised_in_every_sector(short_run: DemoRun, sector: Sector) -> None:
    words = short_run.row(sector.zh)
    assert words[1] == sector.value
    counts = dict(zip(LEVELS, words[2:6], strict=True))
    assert all(count.isdigit() and int(count) > 0 for count in counts.values()), counts


@pytest.mark.parametrize(
    "reason",
    list(RejectReason),
    ids=lambda reason: reason.value,
)
def test_every_bad_reason_is_quarantined_exactly_as_expected(short_run: DemoRun, reason: RejectReason) -> None:
    *_, expected, got, mark = short_run.row(reason.value)
    assert int(expected) >= 1  # the fleet sends at least one message of every kind
    assert (got, mark) == (expected, "✓")
    assert not re.search(rf"✗ \S+: expected {reason.value},", short_run.output)


def test_no_good_message_is_quarantined(short_run: DemoRun) -> None:
    assert "✗ unexpected:" not in short_run.output


def test_the_demo_exits_zero_when_every_check_passes(short_run: DemoRun) -> None:
    assert short_run.exit_code == 0, short_run.output[-3000:]
    assert "OK: every check passed" in short_run.output
