"""Settings and tampering (第七条, 第十六条; DOMAIN.md §5): what a reading tells of the device's
configuration and operating mode, against its registration. Pure; the engine turns the answers into data-quality
findings (`config_mismatch`, `long_manual`, `long_isolation`, `long_interlock_bypass`) — blue, to the enterprise,
and suppressed by an outage declaration like any data-quality finding (docs/device-protocol.md, docs/decisions.md).

- **Reported configuration** (`Envelope.config`): setpoints per metric and a JT/T 808 terminal's parameters. A
  value differing from the registered one beyond the tolerance is a mismatch; a value the registration does not
  hold (the sector default applies) or the device does not report is not compared.
- **Manual / bypass periods**: `manual` (`context.manual_mode`: the control system or the fire linkage controller
  in manual), `isolated` (`context.isolated`: the alarm system or a loop isolated / bypassed), `interlock` (hazchem
  `metrics.interlock_ok` false: the SIS interlock bypassed or not acting). A period starts with the first message
  reporting the mode and ends with the first that does not; a message without `context` reports neither manual nor
  isolated (the context's defaults), one without `interlock_ok` says nothing of the interlock. A period longer than
  its limit ([policy] `TamperPolicy.max_period_s`) is a finding, standing while the period lasts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.telemetry import ReportedConfig, ReportedSetpoint, ReportedTerminal

if TYPE_CHECKING:
    from chalicelib.domain.registry import DeviceRegistration

CONFIG_MISMATCH = "config_mismatch"
CONFIG_MODE = "config"  # in a state's modes: a reported configuration differing from the registration, since
TOLD_MODE = "told"  # in a state's modes: when a standing condition was last raised (engine._tampering_due)

MANUAL = "manual"
ISOLATED = "isolated"
INTERLOCK = "interlock"
MODES = (MANUAL, ISOLATED, INTERLOCK)

LONG_PERIOD_REASON = {MANUAL: "long_manual", ISOLATED: "long_isolation", INTERLOCK: "long_interlock_bypass"}
LONG_PERIOD_TITLE = {MANUAL: "手动运行超时", ISOLATED: "报警屏蔽超时", INTERLOCK: "联锁旁路超时"}
CONFIG_MISMATCH_TITLE = "设定值与登记不符"


def _default_max_period_s() -> dict[str, float]:
    return {MANUAL: 2 * 3600.0, ISOLATED: 8 * 3600.0, INTERLOCK: 3600.0}


class TamperPolicy(BaseModel):
    """[policy] (docs/decisions.md "Settings and tampering"): DOMAIN.md names the modes, not their durations."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_period_s: dict[str, float] = Field(default_factory=_default_max_period_s)  # mode -> longest allowed period
    config_tolerance_fraction: float = Field(default=0.001, ge=0)  # of the registered value
    config_tolerance_abs: float = Field(default=1e-6, ge=0)  # for registered values at or near zero
    recheck_s: float = Field(default=600.0, ge=0)  # a standing condition without a warning is raised again after


@dataclass(frozen=True, slots=True)
class Mismatch:
    setting: str  # "level_pct.hh", or a terminal parameter "max_speed_kmh"
    registered: float
    reported: float


def config_mismatches(
    reg: DeviceRegistration, reported: ReportedConfig, policy: TamperPolicy
) -> tuple[Mismatch, ...]:
    """The reported settings that differ from the registration (in the order reported)."""
    found: list[Mismatch] = []
    for metric, values in reported.setpoints.items():
        registered = reg.setpoints.get(metric)
        if registered is not None:
            found.extend(_differences(f"{metric}.", registered, values, _SETPOINT_NAMES, policy))
    if reported.terminal is not None:
        found.extend(_differences("", reg.static, reported.terminal, _TERMINAL_NAMES, policy))
    return tuple(found)


# the names a reported part may carry (its mirror on the fast decode path has the same names)
_SETPOINT_NAMES = tuple(ReportedSetpoint.model_fields)
_TERMINAL_NAMES = tuple(ReportedTerminal.model_fields)


def _differences(
    prefix: str,
    registered: BaseModel,
    reported: ReportedSetpoint | ReportedTerminal,
    names: tuple[str, ...],
    policy: TamperPolicy,
) -> Iterator[Mismatch]:
    for name, value in _given(reported, names):
        known = getattr(registered, name, None)
        if known is None:
            continue
        tolerance = max(policy.config_tolerance_abs, policy.config_tolerance_fraction * abs(known))
        if math.fabs(value - known) > tolerance:
            yield Mismatch(prefix + name, float(known), value)


def _given(values: BaseModel, names: tuple[str, ...]) -> Iterator[tuple[str, float]]:
    for name in names:
        value = getattr(values, name)
        if value is not None:
            yield name, float(value)


def reported_modes(msg: Any) -> Iterator[tuple[str, bool]]:
    """(mode, on) for every mode the message reports on (see the module's docstring)."""
    context = msg.context
    yield MANUAL, context is not None and context.manual_mode
    yield ISOLATED, context is not None and context.isolated
    interlock_ok = getattr(msg.metrics, "interlock_ok", None)
    if interlock_ok is not None:
        yield INTERLOCK, not interlock_ok


def track_modes(modes: dict[str, float], msg: Any, at: float) -> bool:
    """Start or end the periods the message reports on (`modes`: mode -> start); True when one started or ended."""
    if not modes and msg.context is None and getattr(msg.metrics, "interlock_ok", None) is not False:
        return False  # the usual message: nothing in manual, nothing reported
    changed = False
    for mode, on in reported_modes(msg):
        if on and mode not in modes:
            modes[mode] = at
            changed = True
        elif not on and mode in modes:
            del modes[mode]
            changed = True
    return changed


@dataclass(frozen=True, slots=True)
class LongPeriod:
    mode: str
    since: float
    lasted_s: float
    limit_s: float

    @property
    def reason(self) -> str:
        return LONG_PERIOD_REASON[self.mode]

    @property
    def title(self) -> str:
        return LONG_PERIOD_TITLE[self.mode]


def long_period(modes: dict[str, float], at: float, policy: TamperPolicy) -> LongPeriod | None:
    """The period furthest past its limit at `at` (a period is too long from its limit on), or None."""
    worst: LongPeriod | None = None
    for mode, since in modes.items():
        limit = policy.max_period_s.get(mode)
        lasted = at - since
        if limit is None or lasted < limit:
            continue
        if worst is None or lasted - limit > worst.lasted_s - worst.limit_s:
            worst = LongPeriod(mode, since, lasted, limit)
    return worst
