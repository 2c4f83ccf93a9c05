"""Ports: what the use cases need from the outside world. Adapters implement them; tests may fake them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chalicelib.domain.changes import WarningChange
from chalicelib.domain.policy import Route
from chalicelib.domain.registry import DeviceRegistration, Enterprise, Person
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.warnings import WarningRecord


class ConcurrentUpdateError(Exception):
    """A conditional write lost a race: somebody else changed the item since it was read."""


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    received_at: float
    record_id: str
    reason: str
    detail: str
    payload: bytes
    topic: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Recipient:
    audience: str
    name: str
    phone: str


@dataclass(frozen=True, slots=True)
class Notification:
    change: WarningChange
    route: Route
    sms: str
    app: str
    recipients: tuple[Recipient, ...]


class Registry(Protocol):
    """Devices, enterprises and the people behind each audience."""

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]: ...

    def enterprise(self, enterprise_id: str) -> Enterprise | None: ...

    def people(self) -> Sequence[Person]: ...


class StateStore(Protocol):
    """Grading state per device and per unit, with optimistic concurrency (the state's `version`)."""

    def load_devices(self, device_ids: Iterable[str]) -> dict[str, DeviceState]: ...

    def load_units(self, unit_ids: Iterable[str]) -> dict[str, UnitState]: ...

    def save_device(self, state: DeviceState, last_seen: float) -> None:
        """Write if the stored version is still `state.version`, then bump it; else ConcurrentUpdateError."""
        ...

    def save_unit(self, state: UnitState) -> None: ...


class WarningStore(Protocol):
    def create(self, record: WarningRecord) -> bool:
        """Store a new warning; False when it already exists (a redelivered raise)."""
        ...

    def apply_change(self, change: WarningChange) -> bool:
        """Apply an engine level change or recovery; False when it was applied before (idempotent)."""
        ...

    def append_engine_event(self, change: WarningChange) -> bool:
        """Append the change to the warning's event log; False when this exact event is already there."""
        ...

    def was_notified(self, change: WarningChange) -> bool:
        """Whether the fan-out of this (already logged) change went out."""
        ...

    def mark_notified(self, change: WarningChange) -> None: ...

    def get(self, warning_id: str) -> WarningRecord | None: ...


class Quarantine(Protocol):
    def put(self, items: Sequence[QuarantinedMessage]) -> None: ...


class Notifier(Protocol):
    def publish(self, notification: Notification) -> None:
        """Fan out one warning change: one SNS message with attributes, one SMS per recipient."""
        ...


class Workflow(Protocol):
    def track(self, record: WarningRecord) -> None:
        """Start (idempotently) the execution that follows this warning's deadlines."""
        ...
