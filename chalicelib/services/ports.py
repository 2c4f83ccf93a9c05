"""Ports: what the use cases need from the outside world. Adapters implement them; tests may fake them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from chalicelib.domain.changes import WarningChange
from chalicelib.domain.policy import Route
from chalicelib.domain.registry import DeviceRegistration, Enterprise, Person
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.warnings import WarningRecord


class ConcurrentUpdateError(Exception):
    """A conditional write lost a race: somebody else changed the item since it was read."""


class DeliveryNotSentError(Exception):
    """The channel answered that it did not take the message (throttled, refused, unreachable before sending):
    sending again cannot double it. Any other exception from a send leaves the outcome unknown."""


@dataclass(frozen=True, slots=True)
class QuarantinedMessage:
    received_at: float  # the record's arrival in the stream: a redelivery maps to the same row
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

    def get(self, warning_id: str) -> WarningRecord | None: ...


class Quarantine(Protocol):
    def put(self, items: Sequence[QuarantinedMessage]) -> None: ...


class Notifier(Protocol):
    sms_enabled: bool

    def publish(self, notification: Notification) -> None:
        """Publish one warning change to the warning topic, with the attributes the audience subscriptions filter
        on and the change's dedupe key (subscribers drop a second copy)."""
        ...

    def send_sms(self, phone: str, text: str, dedupe_key: str) -> None:
        """Text one recipient; DeliveryNotSentError when the provider refused it."""
        ...


class ClaimOutcome(StrEnum):
    MINE = "mine"  # this sender holds the delivery: send, then settle
    DONE = "done"  # sent before (or its outcome is unknown): never again
    BUSY = "busy"  # another live sender holds it: try again later


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # the channel refused it: a later attempt sends again
    UNKNOWN = "unknown"  # the send raised without telling whether it went out: not repeated, counted and logged


@dataclass(frozen=True, slots=True)
class DeliveryKey:
    """One telling: a warning change (its engine event) to one channel address."""

    warning_id: str
    event_seq: int
    channel: str  # "topic" or "sms"
    address: str  # "-" for the topic, the phone number for an SMS

    @property
    def name(self) -> str:
        return f"{self.channel}:{self.address}"


class DeliveryLedger(Protocol):
    """Claim before sending, settle after: each (change, recipient) is told once under retries, lost responses,
    restarts and racing containers."""

    def claim(self, key: DeliveryKey, owner: str, now: float, lease_s: float) -> ClaimOutcome:
        """Take the delivery when nobody has, when `owner` already holds it unsent, or when another holder's
        claim is older than `lease_s` without an outcome (that sender died)."""
        ...

    def settle(self, key: DeliveryKey, owner: str, outcome: DeliveryOutcome, now: float) -> None:
        """Record the outcome, if `owner` still holds the claim."""
        ...


class Workflow(Protocol):
    def track(self, warning_id: str) -> None:
        """Arm (idempotently) the timer of the warning's stored due times and stop the one they supersede."""
        ...
