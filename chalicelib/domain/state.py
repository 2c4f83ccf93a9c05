"""Grading state as plain data: per device and per unit, serialised compactly (it lives in DynamoDB).

Keys are short on purpose: a device's state must stay well under 2 KB. `dirty` is not serialised: it says whether
something that matters changed since load (a warning, a pending breach, the sector model's memory), as opposed to
the watermark only, so that the ingest can coalesce writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

Flags = int
FLAG_FREQUENT = 1
FLAG_COMBINED = 2
FLAG_STATIC = 4
FLAG_CONTEXT = 8
FLAG_NAMES = {
    FLAG_FREQUENT: "frequent",
    FLAG_COMBINED: "combined",
    FLAG_STATIC: "static",
    FLAG_CONTEXT: "context",
}


def flag_names(flags: Flags) -> tuple[str, ...]:
    return tuple(name for bit, name in FLAG_NAMES.items() if flags & bit)


@dataclass(slots=True)
class RiskState:
    """One (device, risk type): the active warning, if any, and a breach waiting for its duration."""

    base: int = 0  # raw level of the active warning (what hysteresis compares)
    level: int = 0  # level after the unit, static, context and frequency rules
    warning_id: str = ""
    since: float = 0.0  # when the active warning was raised
    pending_level: int = 0
    pending_since: float = 0.0
    pending_count: int = 0
    raises: list[float] = field(default_factory=list)  # raise times within the frequency window
    flags: Flags = 0
    last_change: float = 0.0

    @property
    def active(self) -> bool:
        return self.level > 0

    def to_list(self) -> list[Any]:
        return [
            self.base,
            self.level,
            self.warning_id,
            self.since,
            self.pending_level,
            self.pending_since,
            self.pending_count,
            self.raises,
            self.flags,
            self.last_change,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> RiskState:
        return cls(
            int(data[0]),
            int(data[1]),
            str(data[2]),
            float(data[3]),
            int(data[4]),
            float(data[5]),
            int(data[6]),
            [float(t) for t in data[7]],
            int(data[8]),
            float(data[9]),
        )


@dataclass(slots=True)
class DeviceState:
    device_id: str
    last_seq: int = -1
    last_ts: float = 0.0
    risks: dict[str, RiskState] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)  # the sector model's own memory
    repeats: dict[str, list[float]] = field(default_factory=dict)  # metric -> [last value, repeat count]
    quality_fault_at: float = 0.0  # last sensor fault (rejected value or stuck sensor)
    last_record: int = -1  # the stream sequence number of the last record applied (redeliveries are skipped)
    version: int = 0  # optimistic-lock counter kept by the repository
    dirty: bool = False
    modes: dict[str, float] = field(default_factory=dict)  # manual / bypass periods: mode -> start (tampering.py)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"q": self.last_seq, "t": self.last_ts}
        if self.risks:
            data["r"] = {risk: entry.to_list() for risk, entry in self.risks.items()}
        if self.scratch:
            data["s"] = self.scratch
        if self.repeats:
            data["p"] = self.repeats
        if self.quality_fault_at:
            data["f"] = self.quality_fault_at
        if self.modes:
            data["m"] = self.modes
        if self.last_record >= 0:
            data["k"] = str(self.last_record)  # Kinesis sequence numbers exceed a JSON-safe integer
        return data

    @classmethod
    def from_dict(cls, device_id: str, data: dict[str, Any], version: int = 0) -> DeviceState:
        return cls(
            device_id=device_id,
            last_seq=int(data.get("q", -1)),
            last_ts=float(data.get("t", 0.0)),
            risks={risk: RiskState.from_list(entry) for risk, entry in data.get("r", {}).items()},
            scratch=dict(data.get("s", {})),
            repeats={metric: list(pair) for metric, pair in data.get("p", {}).items()},
            quality_fault_at=float(data.get("f", 0.0)),
            last_record=int(data.get("k", -1)),
            version=version,
            modes={mode: float(since) for mode, since in data.get("m", {}).items()},
        )

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, device_id: str, text: str, version: int = 0) -> DeviceState:
        return cls.from_dict(device_id, json.loads(text), version)

    def already_applied(self, record_sequence: int | None) -> bool:
        """Whether the stream record was applied to this state before: a redelivery, not a device's replay."""
        return record_sequence is not None and record_sequence <= self.last_record

    def active_warnings(self) -> dict[str, RiskState]:
        return {risk: entry for risk, entry in self.risks.items() if entry.active}


@dataclass(slots=True)
class UnitState:
    """Alarms standing in one unit (tank farm, building, site, segment).

    alarms: "device|risk" -> [family, tag, raw level, ts].
    """

    unit_id: str
    alarms: dict[str, list[Any]] = field(default_factory=dict)
    version: int = 0
    dirty: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.alarms}

    @classmethod
    def from_dict(cls, unit_id: str, data: dict[str, Any], version: int = 0) -> UnitState:
        return cls(unit_id, {key: list(value) for key, value in data.get("a", {}).items()}, version)

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, unit_id: str, text: str, version: int = 0) -> UnitState:
        return cls.from_dict(unit_id, json.loads(text), version)
