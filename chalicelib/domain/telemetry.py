"""Device message envelope (docs/device-protocol.md): what every sector's message carries.

One message = one device reading at one instant. The envelope is the same for every sector; each sector module in
`chalicelib/domain/sectors/` subclasses it with its `sector` literal and its typed `metrics` and `events`, so a
wrong metric or event name for the claimed sector is a validation error. The discriminated union of all of them is
built from the sector registry (`chalicelib.domain.sectors.DeviceMessage`); `AnyMessage` is its static type.
Physical ranges are declared with `Field(ge=, le=)`: a value outside them is a sensor fault, never a reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Annotated, Any, Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
"""The configuration of every message part: unknown names, NaN and infinity are errors; messages are immutable."""

DeviceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
EnterpriseId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class MessageContext(BaseModel):
    """Conditions that make an alarm worse (DOMAIN.md §3 context rule)."""

    model_config = STRICT
    related_offline: bool = False  # related data or video (JT/T 1078) is offline
    isolated: bool = False  # the alarm system or a loop is isolated / bypassed
    manual_mode: bool = False  # the control system runs in manual
    pouring: bool = False  # construction: a concrete pour is in progress on the formwork
    operating: bool = True  # construction: the crane is working


class ReportedSetpoint(BaseModel):
    """The alarm setpoints a device says it runs with for one metric (a DCS/SIS tag's H/HH/L/LL, a gas controller's
    level-1/level-2, a monitoring station's control values): the names of the registration's `Setpoint`. Reported
    only to be compared with the registration (docs/device-protocol.md "Reported configuration"), never applied."""

    model_config = STRICT
    h: float | None = None
    hh: float | None = None
    l: float | None = None  # noqa: E741 - the standard's own name for the low setpoint
    ll: float | None = None
    l1: float | None = None
    l2: float | None = None
    control: float | None = None
    rate_control: float | None = None
    normal: float | None = None
    maop: float | None = None


class ReportedTerminal(BaseModel):
    """A JT/T 808 terminal's own parameters (its answer to 0x8104/0x8106, parameter ids 0x0055–0x005C): the names
    of the registration's `StaticFactors`."""

    model_config = STRICT
    max_speed_kmh: float | None = None  # 0x0055
    continuous_driving_limit_min: float | None = None  # 0x0057
    daily_driving_limit_min: float | None = None  # 0x0058
    min_rest_min: float | None = None  # 0x0059
    overspeed_margin_kmh: float | None = None  # 0x005B
    fatigue_margin_min: float | None = None  # 0x005C


MetricName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]


class ReportedConfig(BaseModel):
    """What the device says it is configured with (optional, any sector; sent when it changes, or periodically)."""

    model_config = STRICT
    setpoints: dict[MetricName, ReportedSetpoint] = Field(default_factory=dict, max_length=16)
    terminal: ReportedTerminal | None = None


class Envelope(BaseModel):
    """The fields every message has. A sector's message narrows the last three: `sector: Literal["<code>"]`,
    `metrics: <Sector>Metrics = <Sector>Metrics()` and `events: tuple[<Sector>Event, ...] = ()`."""

    model_config = STRICT
    device_id: DeviceId
    enterprise_id: EnterpriseId
    ts: AwareDatetime
    seq: Annotated[int, Field(ge=0, le=2**53)] | None = None
    msg_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    context: MessageContext | None = None
    config: ReportedConfig | None = None
    sector: str
    metrics: BaseModel
    events: tuple[BaseModel, ...] = ()

    @cached_property
    def epoch(self) -> float:
        """`ts` in epoch seconds, computed once per message."""
        return self.ts.timestamp()


class AnyMessage(Protocol):
    """A validated message of any sector, as the engine and the ingest service see it: a sector's `Envelope`, or
    its msgspec mirror from the fast decode path (fast_messages.py), which has the same attributes and values."""

    @property
    def device_id(self) -> str: ...
    @property
    def enterprise_id(self) -> str: ...
    @property
    def sector(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def epoch(self) -> float: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def msg_id(self) -> str | None: ...
    @property
    def context(self) -> MessageContext | None: ...
    @property
    def config(self) -> ReportedConfig | None: ...
    @property
    def metrics(self) -> Any: ...
    @property
    def events(self) -> Sequence[Any]: ...
