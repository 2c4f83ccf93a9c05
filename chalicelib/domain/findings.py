"""What a sector risk model returns, and the contract every sector model follows.

A sector model looks at one validated message (plus the device's registration and its own scratch state) and
returns one `Finding` per risk type it assessed: the raw level the reading deserves, with no dedup, duration,
combination or static rules applied (the grading engine does those, the same way for every sector).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import DeviceRegistration


@dataclass(slots=True, frozen=True)
class Finding:
    """One risk type's assessment of one message.

    level: the level the reading deserves now (NONE when normal).
    hold: the level the active warning keeps given the hysteresis band (``hold >= level``): a warning at level L
          only falls to ``max(level, min(L, hold))``. For event-driven risks, ``hold == level``.
    family: the parameter family for unit combination ("gas", "level", "temperature", "wind", ...).
    tag: a sector-specific marker for its own unit rules (e.g. "gas_l2", "hh", "intrusion").
    immediate: raise without waiting for the duration rule (events, confirmed fires, leaks).
    """

    risk_type: str
    level: int
    hold: int = 0
    reason: str = ""
    title: str = ""  # short Chinese description, e.g. "液位高高报"
    value: float | None = None
    unit: str = ""
    family: str = ""
    tag: str = ""
    immediate: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def effective_hold(self) -> int:
        return self.hold if self.hold > self.level else self.level


_NORMALS: dict[str, Finding] = {}


def normal(risk_type: str) -> Finding:
    """The shared, allocation-free finding for a normal reading of `risk_type`."""
    found = _NORMALS.get(risk_type)
    if found is None:
        found = _NORMALS[risk_type] = Finding(risk_type, Level.NONE)
    return found


def rising(value: float, thresholds: Sequence[float | None], band: float) -> tuple[int, int]:
    """Grade a value that is worse when higher: thresholds (blue, yellow, orange, red), each inclusive (>=).

    Returns (level, hold): hold is the level computed as if the value were `band` higher, i.e. an active level
    stays until the value is back below its threshold by the band.
    """
    level = hold = 0
    held = value + band
    for index, threshold in enumerate(thresholds, start=1):
        if threshold is None:
            continue
        if value >= threshold:
            level = index
        if held >= threshold:
            hold = index
    return level, hold


def falling(value: float, thresholds: Sequence[float | None], band: float) -> tuple[int, int]:
    """Grade a value that is worse when lower: thresholds (blue, yellow, orange, red), each strict (<)."""
    level = hold = 0
    held = value - band
    for index, threshold in enumerate(thresholds, start=1):
        if threshold is None:
            continue
        if value < threshold:
            level = index
        if held < threshold:
            hold = index
    return level, hold


@dataclass(slots=True, frozen=True)
class UnitAlarm:
    """An alarm currently standing on another device of the same unit (for combination rules)."""

    device_id: str
    risk_type: str
    family: str
    tag: str
    level: int  # the raw level (before modifiers)
    ts: float


@dataclass(slots=True, frozen=True)
class Combination:
    """What a sector's unit rule decides for a finding: a new raw level and why (or no change)."""

    level: int
    reason: str


class SectorModel(Protocol):
    """A risk model for one sector (DOMAIN.md §2.x). Pure: no I/O, never raises on a validated message."""

    sector: Sector
    stuck_metrics: tuple[str, ...]  # analog metrics whose exact repetition means a stuck sensor
    # `scratch` keys a container restart must not lose: a change to any marks the state dirty (written with the
    # batch); the other keys are rolling sums the model recomputes, written with the coalesced watermark
    durable_memory: tuple[str, ...]

    def evaluate(self, reg: DeviceRegistration, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        """Assess `msg` (already validated, `msg.sector == reg.sector`) for every risk type it bears on.

        `scratch` is this device's model state (JSON-compatible, short keys; mutate it in place; keep it small).
        `now_s` is the message's epoch seconds. Return one finding per assessed risk type, `normal(...)` when fine.
        """
        ...

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        """Sector-specific unit rule (e.g. two gas detectors at level 2 -> red); None to leave it to the engine."""
        ...
