"""The warning as a record that people act on (DOMAIN.md §4): what the engine raised, where it stands now.

The engine's changes (raise, level up/down, recover) update the record; people move its status through the
disposal lifecycle (`lifecycle.py`). A reading that recovers does not close a warning: it stays open,
`reading_normal`, until the enterprise reports back (latched).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from chalicelib.domain.changes import ChangeKind, WarningChange, WarningHeader
from chalicelib.domain.levels import Level


class WarningStatus(StrEnum):
    RAISED = "raised"  # 已发布, waiting for 签收
    ACKNOWLEDGED = "acknowledged"  # 已签收
    VERIFIED = "verified"  # 已核实 (real / false / device fault)
    DISPOSING = "disposing"  # 处置中
    CLEAR_REQUESTED = "clear_requested"  # 申请消警
    CLOSED = "closed"  # 已消警
    ARCHIVED = "archived"  # 已归档

    @property
    def is_open(self) -> bool:
        return self not in (WarningStatus.CLOSED, WarningStatus.ARCHIVED)

    @property
    def zh(self) -> str:
        return STATUS_ZH[self]


STATUS_ZH = {
    WarningStatus.RAISED: "待签收",
    WarningStatus.ACKNOWLEDGED: "已签收",
    WarningStatus.VERIFIED: "已核实",
    WarningStatus.DISPOSING: "处置中",
    WarningStatus.CLEAR_REQUESTED: "申请消警",
    WarningStatus.CLOSED: "已消警",
    WarningStatus.ARCHIVED: "已归档",
}


@dataclass(frozen=True, slots=True)
class WarningRecord(WarningHeader):
    level: int
    peak_level: int
    status: WarningStatus
    reading_normal: bool
    raised_at: float
    updated_at: float
    title: str
    reason: str
    value: float | None
    unit: str
    flags: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  # lifecycle data: verification, clear reason, evidence
    version: int = 0

    @property
    def is_open(self) -> bool:
        return self.status.is_open

    @classmethod
    def raised(cls, change: WarningChange) -> WarningRecord:
        return cls(
            **change.header(),
            level=change.level,
            peak_level=change.level,
            status=WarningStatus.RAISED,
            reading_normal=False,
            raised_at=change.raised_at,
            updated_at=change.at,
            title=change.title,
            reason=change.reason,
            value=change.value,
            unit=change.unit,
            flags=change.flags,
        )

    def apply_engine_change(self, change: WarningChange) -> WarningRecord:
        """Level changes can arrive in any open state; a recovery only marks the reading normal (latched)."""
        if change.kind is ChangeKind.RECOVER:
            return replace(self, reading_normal=True, updated_at=change.at)
        if change.kind is ChangeKind.RAISE:
            return self
        return replace(
            self,
            level=change.level,
            peak_level=max(self.peak_level, change.level),
            reading_normal=False,
            updated_at=change.at,
            title=change.title or self.title,
            reason=change.reason or self.reason,
            value=change.value,
            flags=change.flags,
        )

    @property
    def level_enum(self) -> Level:
        return Level(self.level)
