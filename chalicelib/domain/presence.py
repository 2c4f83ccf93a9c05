"""Device presence (DOMAIN.md §5, §6; docs/offline-watch.md): the expected report interval per kind, when a silent
device becomes `offline`, how data and IoT Core lifecycle events move it, and the per-day online ledger (在线率).

Pure: times are epoch seconds; nothing here reads a clock or a store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chalicelib.domain.changes import OFFLINE, ChangeKind, WarningChange, warning_id_for
from chalicelib.domain.clock import SHANGHAI_OFFSET_S, local_day_number
from chalicelib.domain.evaluation.facts import DeviceDay as FactsDeviceDay
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.sectors.road_transport import RoadTransportModel

DEFAULT_INTERVALS_S: Mapping[str, float] = {
    "road_transport": 30.0,  # JT/T 808 terminals report every 30 s while moving
    "hazchem": 60.0,
    "fire": 300.0,  # alarm controllers send a heartbeat every few minutes
    "construction": 60.0,
    "chem_pipeline": 60.0,
    "oil_gas_pipeline": 60.0,
}


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class Signal(StrEnum):
    """What the detector learns about a device."""

    DATA = "data"  # a record arrived (the device spoke)
    CONNECT = "connect"  # IoT Core lifecycle: connected
    DISCONNECT = "disconnect"  # IoT Core lifecycle: disconnected
    SILENCE = "silence"  # its deadline passed with no sign of life


@dataclass(frozen=True)
class PresencePolicy:
    """[policy] defaults, per stage: threshold = interval × missed_reports + grace_s."""

    intervals_s: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS_S))
    kind_intervals_s: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (sector, kind) -> s
    default_interval_s: float = 60.0
    missed_reports: int = 3
    grace_s: float = 120.0
    disconnect_grace_s: float = 60.0  # a reconnect within this is a blip, not an outage
    period_s: float = 60.0  # the summaries' "minute": one summary per shard and period

    def interval_s(self, sector: str, kind: str, registered_s: float | None = None) -> float:
        """The registration's own interval wins, then the kind's, then the sector's, then the default."""
        if registered_s is not None and registered_s > 0:
            return registered_s
        by_kind = self.kind_intervals_s.get((sector, kind))
        if by_kind is not None:
            return by_kind
        return self.intervals_s.get(sector, self.default_interval_s)

    def threshold_s(self, sector: str, kind: str, registered_s: float | None = None) -> float:
        """Silent longer than this: offline."""
        return self.interval_s(sector, kind, registered_s) * self.missed_reports + self.grace_s

    def threshold_of(self, reg: DeviceRegistration) -> float:
        return self.threshold_s(reg.sector.value, reg.kind, registered_interval_s(reg))


class OfflineWatchPolicy(BaseModel):
    """`Policy.presence` ([policy], a stage may override any of it): the thresholds of `PresencePolicy`, the
    summaries' period (a minute as deployed) and the watch's clock. `kind_intervals_s` is keyed `sector/kind`.
    Changing `period_s` on a live stage is like a first deployment: the watch's cursor starts again."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    intervals_s: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_INTERVALS_S))
    kind_intervals_s: dict[str, float] = Field(default_factory=dict)
    default_interval_s: float = Field(default=60.0, gt=0)
    missed_reports: int = Field(default=3, ge=1)
    grace_s: float = Field(default=120.0, ge=0)
    disconnect_grace_s: float = Field(default=60.0, ge=0)
    period_s: float = Field(default=60.0, ge=1)  # one summary per shard and period
    lag_periods: int = Field(default=2, ge=1)  # the watch reads a period this many periods after it began
    shard_silence_s: float = Field(default=180.0, gt=0)  # a shard without a summary this long is silent

    @field_validator("kind_intervals_s")
    @classmethod
    def _sector_slash_kind(cls, value: dict[str, float]) -> dict[str, float]:
        if bad := sorted(key for key in value if key.count("/") != 1 or "" in key.split("/")):
            raise ValueError(f"kind_intervals_s keys are sector/kind: {bad}")
        return value

    def thresholds(self) -> PresencePolicy:
        kinds: dict[tuple[str, str], float] = {}
        for key, seconds in self.kind_intervals_s.items():
            sector, _, kind = key.partition("/")
            kinds[(sector, kind)] = seconds
        return PresencePolicy(
            intervals_s=dict(self.intervals_s),
            kind_intervals_s=kinds,
            default_interval_s=self.default_interval_s,
            missed_reports=self.missed_reports,
            grace_s=self.grace_s,
            disconnect_grace_s=self.disconnect_grace_s,
            period_s=self.period_s,
        )


def registered_interval_s(reg: DeviceRegistration) -> float | None:
    """A registration's own report interval (a setpoint named `report_interval_s`, its
    `normal` value: the interval it reports at in normal operation), if any."""
    setpoint = reg.setpoints.get("report_interval_s")
    return None if setpoint is None else setpoint.normal


@dataclass(frozen=True, slots=True)
class Watch:
    """What decides a device's deadline: its last sign of life, its threshold, a disconnect not followed by one."""

    last_seen: float
    threshold_s: float
    disconnected_at: float | None = None


def deadline(watch: Watch, disconnect_grace_s: float) -> float:
    """When the device becomes offline if nothing more arrives: silence past its threshold, or sooner after a
    disconnect (the disconnect's grace)."""
    silent = watch.last_seen + watch.threshold_s
    if watch.disconnected_at is None or watch.disconnected_at < watch.last_seen:
        return silent
    return min(silent, watch.disconnected_at + disconnect_grace_s)


def is_silent(watch: Watch, now: float, disconnect_grace_s: float) -> bool:
    """Strictly past the deadline: exactly at it is not yet silent."""
    return now > deadline(watch, disconnect_grace_s)


def silent_since(watch: Watch) -> float:
    """The offline time counts from the last sign of life."""
    return watch.last_seen


def observe(watch: Watch | None, signal: Signal, at: float, threshold_s: float) -> Watch:
    """The watch after a signal: data and connect are signs of life (connect clears a pending disconnect); a
    disconnect marks the device for the shorter grace."""
    if signal is Signal.DISCONNECT:
        last = watch.last_seen if watch is not None else at
        return Watch(last, threshold_s, at)
    if signal in (Signal.DATA, Signal.CONNECT):
        last = at if watch is None else max(watch.last_seen, at)
        return Watch(last, threshold_s, None)
    return watch if watch is not None else Watch(at, threshold_s)


def transition(current: Presence, signal: Signal) -> Presence | None:
    """The new presence, or None when nothing changes. Only data brings an offline device back: a connect alone
    is not data (a terminal that connects and sends nothing is still silent)."""
    if current is Presence.ONLINE and signal in (Signal.SILENCE, Signal.DISCONNECT):
        return Presence.OFFLINE
    if current is Presence.OFFLINE and signal is Signal.DATA:
        return Presence.ONLINE
    return None


# --- the warning's level ---------------------------------------------------------------------------------------


def offline_level(
    reg: DeviceRegistration, scratch: Mapping[str, Any], now: float, road: RoadTransportModel | None = None
) -> Level:
    """The offline warning's level: a hazardous-goods vehicle by the road-transport silence rule (DOMAIN.md §2.1,
    `silence_level`: moving when it fell silent -> blue, long -> yellow, restricted zone -> red; NONE when the
    rule does not apply); every other device blue (an undeclared outage, §5)."""
    if reg.sector.value == "road_transport" and road is not None:
        finding = road.silence_level(reg, dict(scratch), now)
        if finding.level > Level.NONE:
            return Level(finding.level)
    return Level.BLUE


OFFLINE_TITLE = "设备离线未申报"


def offline_warning_id(device_id: str, since: float) -> str:
    """The offline warning of one outage (from its last sign of life): the watch that raises it and the one that
    recovers it name the same warning, and a re-run raises the same one."""
    return warning_id_for(device_id, OFFLINE, since)


def offline_change(
    reg: DeviceRegistration,
    kind: ChangeKind,
    level: int,
    previous_level: int,
    at: float,
    raised_at: float,
    since: float,
) -> WarningChange:
    """A raise or a recovery of the device's `offline` warning (DOMAIN.md §5), shaped like the engine's changes so
    that it goes through the same store, routing, deadlines, delivery and escalation."""
    return WarningChange(
        kind=kind,
        warning_id=offline_warning_id(reg.device_id, since),
        device_id=reg.device_id,
        enterprise_id=reg.enterprise_id,
        enterprise_name=reg.enterprise_name,
        sector=reg.sector,
        unit_id=reg.unit_id,
        unit_name=reg.unit_name,
        point_name=reg.display_name,
        area_codes=reg.area_codes,
        risk_type=OFFLINE,
        level=level,
        previous_level=previous_level,
        base_level=level,
        reason="silence" if kind is ChangeKind.RAISE else "data_back",
        title=OFFLINE_TITLE,
        value=round(max(0.0, at - since) / 60.0, 1),  # minutes silent when decided
        unit="分钟",
        at=at,
        raised_at=raised_at,
    )


# --- the per-day online ledger (在线率) --------------------------------------------------------------------------

Window = tuple[float, float]


@dataclass(frozen=True, slots=True)
class DeviceDay:
    """One device's local day (DOMAIN.md §6): approved windows are excluded from the expected time."""

    expected_s: float
    online_s: float
    declared_outage_s: float
    undeclared_outage_s: float

    @property
    def online_rate(self) -> float | None:
        return None if self.expected_s <= 0 else self.online_s / self.expected_s


def _clip(windows: Iterable[Window], start: float, end: float) -> list[Window]:
    """Windows inside [start, end), merged and sorted."""
    clipped = sorted((max(a, start), min(b, end)) for a, b in windows if min(b, end) > max(a, start))
    merged: list[Window] = []
    for a, b in clipped:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _overlap(first: Sequence[Window], second: Sequence[Window]) -> float:
    total = 0.0
    for a, b in first:
        for c, d in second:
            total += max(0.0, min(b, d) - max(a, c))
    return total


def outages(
    start: float, end: float, initial: Presence, transitions: Iterable[tuple[float, Presence]]
) -> list[Window]:
    """The offline periods within [start, end) from the presence at `start` and the transitions after it."""
    periods: list[Window] = []
    state, since = initial, start
    for when, presence in sorted(transitions):
        at = min(max(when, start), end)
        if presence is state:
            continue
        if state is Presence.OFFLINE:
            periods.append((since, at))
        state, since = presence, at
    if state is Presence.OFFLINE:
        periods.append((since, end))
    return _clip(periods, start, end)


def device_day(
    start: float,
    end: float,
    initial: Presence,
    transitions: Iterable[tuple[float, Presence]],
    declared: Iterable[Window] = (),
) -> DeviceDay:
    """The day's ledger from state transitions (never from messages) and the approved windows."""
    offline = outages(start, end, initial, transitions)
    excused = _clip(declared, start, end)
    offline_s = sum(b - a for a, b in offline)
    declared_outage = _overlap(offline, excused)
    expected = (end - start) - sum(b - a for a, b in excused)
    undeclared = offline_s - declared_outage
    return DeviceDay(
        expected_s=expected,
        online_s=expected - undeclared,
        declared_outage_s=declared_outage,
        undeclared_outage_s=undeclared,
    )


# --- the persisted ledger: outages per local day, read as the evaluation's `DeviceDay` -------------------------

DAY_S = 86400.0


def local_day_start(day_number: int) -> float:
    """Epoch seconds of local midnight starting day `day_number` (`clock.local_day_number`)."""
    return day_number * DAY_S - SHANGHAI_OFFSET_S


def by_local_day(start: float, end: float) -> list[tuple[int, float, float]]:
    """[start, end) cut at local midnights: (day number, start, end) per day touched."""
    pieces: list[tuple[int, float, float]] = []
    at = start
    while at < end:
        day = local_day_number(at)
        cut = min(end, local_day_start(day + 1))
        pieces.append((day, at, cut))
        at = cut
    return pieces


class Placed(Protocol):
    """Where a device belongs (a `DeviceRegistration`, or the evaluation's lighter `FleetDevice`)."""

    @property
    def device_id(self) -> str: ...
    @property
    def enterprise_id(self) -> str: ...
    @property
    def sector(self) -> Any: ...
    @property
    def area_codes(self) -> tuple[str, ...]: ...


def ledger_day(
    reg: Placed,
    day_number: int,
    until: float,
    offline: Iterable[Window],
    excused: Iterable[Window],
) -> FactsDeviceDay | None:
    """One device's local day for the evaluation (`evaluation.facts.DeviceDay`, DOMAIN.md §6), up to `until` (the
    day's end, or now for today; None before the day starts): the outages as recorded (offline periods, from the
    watch's transitions) against the declarations' effective windows. In the evaluation's terms `expected_s` is
    the time elapsed, `declared_outage_s` the excused time (its denominator leaves it out), `undeclared_outage_s`
    the outage outside excused windows and `online_s` the rest of the unexcused time."""
    start = local_day_start(day_number)
    end = min(until, start + DAY_S)
    if end <= start:
        return None
    offline_windows = _clip(offline, start, end)
    transitions = [(t, p) for a, b in offline_windows for t, p in ((a, Presence.OFFLINE), (b, Presence.ONLINE))]
    excused = _clip(excused, start, end)
    day = device_day(start, end, Presence.ONLINE, transitions, excused)
    return FactsDeviceDay(
        device_id=reg.device_id,
        enterprise_id=reg.enterprise_id,
        sector=reg.sector,
        area_codes=reg.area_codes,
        day=date.fromordinal(date(1970, 1, 1).toordinal() + day_number),
        expected_s=end - start,
        online_s=max(0.0, day.online_s),
        declared_outage_s=(end - start) - day.expected_s,
        undeclared_outage_s=day.undeclared_outage_s,
    )


def quiet_days(reg: Placed, first_day: int, last_day: int, until: float) -> FactsDeviceDay | None:
    """Local days [first_day, last_day] with no outage and no declared window, as one row (`days` > 1): online
    throughout, up to `until`."""
    start = local_day_start(first_day)
    end = min(until, local_day_start(last_day + 1))
    if end <= start:
        return None
    return FactsDeviceDay(
        device_id=reg.device_id,
        enterprise_id=reg.enterprise_id,
        sector=reg.sector,
        area_codes=reg.area_codes,
        day=date.fromordinal(date(1970, 1, 1).toordinal() + first_day),
        days=last_day - first_day + 1,
        expected_s=end - start,
        online_s=end - start,
    )


# --- device status for people (docs/offline-watch.md "Device status") ------------------------------------------


class DeviceStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # silent past its threshold, no declaration excusing it: an offline warning stands
    DECLARED = "declared"  # a declaration excuses it now (whether it reports or not)
    NEVER_SEEN = "never_seen"  # registered, no reading ever graded

    @property
    def zh(self) -> str:
        return DEVICE_STATUS_ZH[self]


DEVICE_STATUS_ZH = {
    DeviceStatus.ONLINE: "在线",
    DeviceStatus.OFFLINE: "离线",
    DeviceStatus.DECLARED: "已申报",
    DeviceStatus.NEVER_SEEN: "从未上线",
}


def device_status(offline: bool, excused: bool, last_seen: float | None) -> DeviceStatus:
    """Declared first (the duty console reads an excused device as such), then offline, then never seen."""
    if excused:
        return DeviceStatus.DECLARED
    if offline:
        return DeviceStatus.OFFLINE
    if last_seen is None:
        return DeviceStatus.NEVER_SEEN
    return DeviceStatus.ONLINE


def can_see_device(actor: Actor, reg: DeviceRegistration) -> bool:
    """As for declarations: enterprise its own, regulator its sectors, area its areas, duty/bureau/admin all."""
    if actor.role is Role.ENTERPRISE:
        return reg.enterprise_id == actor.enterprise_id
    if actor.role is Role.REGULATOR:
        return reg.sector in actor.sectors
    if actor.role is Role.AREA:
        return not set(reg.area_codes).isdisjoint(actor.area_codes)
    return True
