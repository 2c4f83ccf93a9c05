"""What a sector risk model returns, the contract every sector model follows, and what a sector module declares.

A sector model looks at one validated message (plus the device's registration and its own scratch state) and
returns one `Finding` per risk type it assessed: the raw level the reading deserves, with no dedup, duration,
combination or static rules applied (the grading engine does those, the same way for every sector).

A sector module ends with a `SectorSpec` (its message, config, model and Chinese names); registering that spec in
`chalicelib.domain.sectors.Sector` is all the platform needs to know of the sector (docs/adding-a-sector.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, get_args, get_origin

from pydantic import BaseModel

from chalicelib.domain.levels import Level
from chalicelib.domain.telemetry import Envelope

if TYPE_CHECKING:
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


ConfigT = TypeVar("ConfigT", bound=BaseModel)
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CHINESE = re.compile(r"[\u4e00-\u9fff]")


@dataclass(frozen=True, slots=True, kw_only=True)
class SectorSpec(Generic[ConfigT]):
    """Everything the platform derives a sector from, declared once at the foot of the sector's module.

    message: the sector's message class (an `Envelope` with `sector: Literal["<code>"]`); its literal is the
             sector's code: the wire name, the topic segment, the policy key `sectors.<code>` and the enum value.
    config: every tunable number of the model, defaults as in DOMAIN.md; `config()` is the policy's default.
    model: builds the risk model from the (possibly overridden) config; a model class taking the config will do.
    zh: the sector's Chinese name; risk_types: every risk type the model emits -> its Chinese name (SMS, app,
        reports). A missing or non-Chinese name is an error when the module is imported, never a fallback.
    regulators: the departments (policy.DEPARTMENT_ZH codes) told of the sector's orange and red warnings.
    """

    zh: str
    message: type[Envelope]
    config: type[ConfigT]
    model: Callable[[ConfigT], SectorModel]
    risk_types: Mapping[str, str]
    regulators: tuple[str, ...]
    code: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", _sector_literal(self.message))
        _require_chinese(f"sector {self.code}", self.zh)
        if not self.risk_types:
            raise ValueError(f"sector {self.code}: declare the risk types its model emits")
        for risk_type, name in self.risk_types.items():
            if not _CODE.match(risk_type):
                raise ValueError(f"sector {self.code}: risk type {risk_type!r} must be a lower_snake_case code")
            _require_chinese(f"sector {self.code}, risk type {risk_type}", name)
        if not (isinstance(self.config, type) and issubclass(self.config, BaseModel)):
            raise TypeError(f"sector {self.code}: config must be a pydantic model class")
        self.config()  # the defaults must validate: they are the policy's defaults

    def build(self, config: ConfigT | None = None) -> SectorModel:
        """The sector's risk model with `config` (the defaults when None)."""
        return self.model(config if config is not None else self.config())

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The names `metrics` may carry (for simulators and property tests)."""
        metrics = self.message.model_fields["metrics"].annotation
        return tuple(metrics.model_fields) if isinstance(metrics, type) and issubclass(metrics, BaseModel) else ()

    @property
    def event_codes(self) -> tuple[str, ...]:
        """The `code`s an event may have (none when the sector's messages carry no events)."""
        event_types = get_args(self.message.model_fields["events"].annotation)  # tuple[Event, ...] -> (Event, ...)
        event = event_types[0] if event_types else None
        if not (isinstance(event, type) and issubclass(event, BaseModel)) or "code" not in event.model_fields:
            return ()
        return tuple(str(code) for code in get_args(event.model_fields["code"].annotation))


def _sector_literal(message: type[Envelope]) -> str:
    if not (isinstance(message, type) and issubclass(message, Envelope)):
        raise TypeError(f"{message!r}: a sector's message class subclasses telemetry.Envelope")
    annotation = message.model_fields["sector"].annotation
    codes = get_args(annotation) if get_origin(annotation) is Literal else ()
    if len(codes) != 1 or not isinstance(codes[0], str) or not _CODE.match(codes[0]):
        raise TypeError(f"{message.__name__}.sector must be Literal['<code>'], one lower_snake_case code")
    return codes[0]


def _require_chinese(what: str, name: str) -> None:
    if not _CHINESE.search(name or ""):
        raise ValueError(f"{what}: a Chinese name is required, got {name!r}")
