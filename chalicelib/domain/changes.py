"""Warning changes: what the engine tells the rest of the platform (raise, level up, level down, recover)."""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

from chalicelib.domain.levels import Level
from chalicelib.domain.sectors import Sector


class ChangeKind(StrEnum):
    RAISE = "raise"
    LEVEL_UP = "level_up"
    LEVEL_DOWN = "level_down"
    RECOVER = "recover"

    @property
    def zh(self) -> str:
        return CHANGE_KIND_ZH[self]

    @property
    def lowers(self) -> bool:
        return self in (ChangeKind.LEVEL_DOWN, ChangeKind.RECOVER)


CHANGE_KIND_ZH = {
    ChangeKind.RAISE: "发布",
    ChangeKind.LEVEL_UP: "升级",
    ChangeKind.LEVEL_DOWN: "降级",
    ChangeKind.RECOVER: "数据恢复正常",
}

DATA_QUALITY = "data_quality"
OFFLINE = "offline"  # an undeclared outage (docs/offline-watch.md): the offline watch's risk type, not a sector's


def warning_id_for(device_id: str, risk_type: str, raised_at: float) -> str:
    """Deterministic, short id: a redelivered message that raises again yields the same id."""
    digest = hashlib.blake2b(f"{device_id}|{risk_type}|{raised_at:.3f}".encode(), digest_size=5).digest()
    return "W" + base64.b32encode(digest).decode()


KIND_ORDER = {ChangeKind.RAISE: 0, ChangeKind.LEVEL_UP: 1, ChangeKind.LEVEL_DOWN: 2, ChangeKind.RECOVER: 3}

# DynamoDB numbers hold magnitudes from 1e-130 to below 1e126 (and 0). Readings never carry meaning below
# 1e-30 (no sensor resolves that), so smaller magnitudes are stored as 0; larger ones are capped.
_TINIEST = 1e-30
_LARGEST = 9.9e125


def is_storable_number(value: float) -> bool:
    magnitude = abs(value)
    return magnitude == 0 or _TINIEST <= magnitude <= _LARGEST


def storable_number(value: float) -> float | None:
    """The value as DynamoDB can store it: None for NaN/inf, 0 below 1e-30, capped at ±9.9e125."""
    if not math.isfinite(value):
        return None
    if abs(value) < _TINIEST:
        return 0.0
    return max(-_LARGEST, min(_LARGEST, value))


@dataclass(slots=True, frozen=True)
class WarningHeader:
    """What names a warning and places it: the device, its enterprise, sector, unit and areas, and the risk. The
    engine's change carries it and the warning record keeps it as raised."""

    warning_id: str
    device_id: str
    enterprise_id: str
    enterprise_name: str
    sector: Sector
    unit_id: str
    unit_name: str
    point_name: str
    area_codes: tuple[str, ...]
    risk_type: str

    def header(self) -> dict[str, Any]:
        """The header's fields by name (to carry them over to a record or a view)."""
        return {name: getattr(self, name) for name in HEADER_FIELDS}


HEADER_FIELDS: tuple[str, ...] = tuple(item.name for item in fields(WarningHeader))


@dataclass(slots=True, frozen=True)
class WarningChange(WarningHeader):
    kind: ChangeKind
    level: int  # the level after this change (NONE for a recovery)
    previous_level: int
    base_level: int  # the raw level the reading deserved before unit/static/context/frequency rules
    reason: str
    title: str
    value: float | None
    unit: str
    at: float  # epoch seconds of the reading that caused the change
    raised_at: float
    flags: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is not None and not is_storable_number(self.value):
            object.__setattr__(self, "value", storable_number(self.value))

    @property
    def level_enum(self) -> Level:
        return Level(self.level)

    @property
    def event_seq(self) -> int:
        """Deterministic, ordered by time: a redelivered change maps to the same event (and delivery keys)."""
        return round(self.at * 1000) * 10 + KIND_ORDER[self.kind]

    @property
    def dedupe_key(self) -> str:
        """What subscribers of the warning topic dedupe on: one key per warning change."""
        return f"{self.warning_id}:{self.event_seq}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "warning_id": self.warning_id,
            "device_id": self.device_id,
            "enterprise_id": self.enterprise_id,
            "enterprise_name": self.enterprise_name,
            "sector": self.sector.value,
            "unit_id": self.unit_id,
            "unit_name": self.unit_name,
            "point_name": self.point_name,
            "area_codes": list(self.area_codes),
            "risk_type": self.risk_type,
            "level": Level(self.level).code,
            "previous_level": Level(self.previous_level).code,
            "base_level": Level(self.base_level).code,
            "reason": self.reason,
            "title": self.title,
            "value": self.value,
            "unit": self.unit,
            "at": self.at,
            "raised_at": self.raised_at,
            "flags": list(self.flags),
            "params": dict(self.params),
        }
