"""The terminal: a thread-safe line printer with colours, column padding that counts a Chinese character as two
columns, local (UTC+8) times, and the Chinese labels of the codes the platform uses."""

from __future__ import annotations

import threading
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.levels import LEVEL_BY_CODE, Level, Sector
from chalicelib.domain.policy import Audience
from local.feed import AUDIENCE_QUEUES

CST = SHANGHAI  # the duty centre reads UTC+8

_COLOURS = {
    "blue": "\033[34m",
    "yellow": "\033[33m",
    "orange": "\033[38;5;208m",
    "red": "\033[31m",
    "none": "\033[32m",  # a level code: back to normal, printed green
    "bold": "\033[1m",
    "dim": "\033[2m",
}
_RESET = "\033[0m"


class Console:
    """Thread-safe line printer (the feed's thread, the people's threads and the main thread all print)."""

    def __init__(self, out: TextIO, colour: bool) -> None:
        self._out = out
        self._colour = colour
        self._lock = threading.Lock()

    def paint(self, text: str, style: str) -> str:
        return f"{_COLOURS[style]}{text}{_RESET}" if self._colour and style in _COLOURS else text

    def line(self, text: str = "") -> None:
        self.lines([text])

    def lines(self, texts: Sequence[str]) -> None:
        """Several lines together (another thread's lines never come in between)."""
        with self._lock:
            self._out.write("".join(text + "\n" for text in texts))
            self._out.flush()


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


def local_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(CST).strftime("%H:%M:%S")


def level_zh(code: str) -> str:
    return Level(LEVEL_BY_CODE.get(code, Level.NONE)).zh


def sector_zh(code: str) -> str:
    try:
        return Sector(code).zh
    except ValueError:
        return code


def audience_zh(audience: str) -> str:
    try:
        return Audience(audience).zh
    except ValueError:
        return "未知号码"


def ordered_by_audience(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """The non-zero counts in the order of the consoles (enterprise first, emergency bureau last)."""
    order = [*AUDIENCE_QUEUES, *sorted(set(counts) - set(AUDIENCE_QUEUES))]
    return [(audience, counts[audience]) for audience in order if counts.get(audience)]


def audiences_zh(audiences: Sequence[str] | set[str]) -> str:
    """The consoles that received something, in console order: `企业/值守中心`, or 无."""
    return "/".join(audience_zh(a) for a in AUDIENCE_QUEUES if a in audiences) or "无"


def sms_zh(sent: Counter[str] | Mapping[str, int]) -> str:
    """`短信 4 条 (企业 2, 值守中心 2)`."""
    by_audience = ", ".join(f"{audience_zh(a)} {n}" for a, n in ordered_by_audience(sent))
    return f"短信 {sum(sent.values())} 条" + (f" ({by_audience})" if by_audience else "")


def shown_path(path: Path) -> str:
    """Relative to the working directory when under it (shorter to read), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
