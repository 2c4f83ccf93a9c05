"""DynamoDB through PynamoDB: the only place that knows items, keys and indexes (tables from infra/).

PynamoDB reads `Meta` when a model first connects, so table names and the endpoint are bound once per container by
`bind(settings)` before any use; nothing here reads the environment itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.adapters import aws_clients
from chalicelib.adapters.errors import lost_race
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.declarations import SuppressedFinding
from chalicelib.domain.levels import LEVEL_BY_CODE, Level, Sector
from chalicelib.domain.registry import Area, DeviceRegistration, Enterprise, Person
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.ports import (
    ClaimOutcome,
    ConcurrentUpdateError,
    DeliveryKey,
    DeliveryOutcome,
    QuarantinedMessage,
    ShardCheckpoint,
    ShardLease,
)
from chalicelib.settings import Settings


def iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- items ---------------------------------------------------------------------------------------------------


class DeviceStateItem(Model):
    class Meta:
        table_name = "unbound"

    device_id = UnicodeAttribute(hash_key=True)
    state = UnicodeAttribute()
    last_seen = NumberAttribute(null=True)
    version = VersionAttribute()


class ShardCheckpointItem(Model):
    """In the device-state table under `SHARD#{shard id}`: the stream sequence through which every record applied
    on the shard is in the stored device states or in `states` (zlib of {device: state JSON}: the states whose
    stored item lags), written by the lease holder of `epoch` (docs/decisions.md "Shard lease and checkpoint")."""

    class Meta:
        table_name = "unbound"

    device_id = UnicodeAttribute(hash_key=True)
    sequence = UnicodeAttribute()
    epoch = NumberAttribute(null=True)
    states = BinaryAttribute(null=True, legacy_encoding=False)


class ShardLeaseItem(Model):
    """In the device-state table under `SHARD#{shard id}#LEASE`: the container grading the shard, and the epoch its
    takeover made (read strongly consistent once per batch: a small item, one read unit)."""

    class Meta:
        table_name = "unbound"

    device_id = UnicodeAttribute(hash_key=True)
    owner = UnicodeAttribute()
    epoch = NumberAttribute()


class UnitStateItem(Model):
    class Meta:
        table_name = "unbound"

    unit_id = UnicodeAttribute(hash_key=True)
    state = UnicodeAttribute()
    version = VersionAttribute()


class RegistryVersionItem(Model):
    """`REGISTRY#VERSION` / `VERSION` in the registry table: a counter every registration, enterprise or person
    write bumps after it is stored, so a container checks the registry's freshness with one read a minute
    (docs/decisions.md "Shard lease and checkpoint")."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    changes = NumberAttribute(default=0)


REGISTRY_VERSION_KEY = ("REGISTRY#VERSION", "VERSION")


class RegistryIndex(GlobalSecondaryIndex["RegistryItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class RegistryItem(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    data = JSONAttribute()
    by_gsi1 = RegistryIndex()


class OpenBySectorIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "open_by_sector"
        projection = AllProjection()

    open_sector = UnicodeAttribute(hash_key=True)
    urgency = UnicodeAttribute(range_key=True)


class OpenByAreaIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "open_by_area"
        projection = AllProjection()

    open_area = UnicodeAttribute(hash_key=True)
    urgency = UnicodeAttribute(range_key=True)


class ByEnterpriseIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "by_enterprise"
        projection = AllProjection()

    enterprise_id = UnicodeAttribute(hash_key=True)
    raised_at = UnicodeAttribute(range_key=True)


# The listings' indexes (chalicelib/adapters/warning_index.py, docs/api.md "Listings and indexes"): every scope a
# listing can have (an enterprise, a sector, an area) has an index newest first and a sparse one of the open
# warnings by urgency. A warning touches several areas, an index key holds one: two area slots (`area_slots`).


class OpenByEnterpriseIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "open_by_enterprise"
        projection = AllProjection()

    open_enterprise = UnicodeAttribute(hash_key=True)
    urgency = UnicodeAttribute(range_key=True)


class BySectorIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "by_sector"
        projection = AllProjection()

    sector = UnicodeAttribute(hash_key=True)
    raised_at = UnicodeAttribute(range_key=True)


class ByAreaIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "by_area"
        projection = AllProjection()

    first_area = UnicodeAttribute(hash_key=True)
    raised_at = UnicodeAttribute(range_key=True)


class ByOtherAreaIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "by_other_area"
        projection = AllProjection()

    other_area = UnicodeAttribute(hash_key=True)
    raised_at = UnicodeAttribute(range_key=True)


class OpenByOtherAreaIndex(GlobalSecondaryIndex["WarningItem"]):
    class Meta:
        index_name = "open_by_other_area"
        projection = AllProjection()

    open_other_area = UnicodeAttribute(hash_key=True)
    urgency = UnicodeAttribute(range_key=True)


class ClosedBySectorIndex(GlobalSecondaryIndex["WarningItem"]):
    """Sparse: the closed warnings by closure time, keys and `raised_epoch` only (the evaluation finds the
    warnings raised before its period and closed in or after it here, then reads those items whole)."""

    class Meta:
        index_name = "closed_by_sector"
        projection = IncludeProjection(["raised_epoch"])

    sector = UnicodeAttribute(hash_key=True)
    closed_at = UnicodeAttribute(range_key=True)


class WarningItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)
    enterprise_id = UnicodeAttribute()
    raised_at = UnicodeAttribute()  # ISO-8601 UTC, sortable
    raised_epoch = NumberAttribute()
    updated_at = NumberAttribute()
    sector = UnicodeAttribute()
    level = UnicodeAttribute()  # blue..red (the state machine reads it)
    level_seq = NumberAttribute(default=0)  # bumps on every engine level change (the state machine watches it)
    peak_level = UnicodeAttribute()
    status = UnicodeAttribute()
    reading_normal = BooleanAttribute(default=False)
    open_sector = UnicodeAttribute(null=True)  # sparse: only while open
    open_area = UnicodeAttribute(null=True)  # the first area slot, while open
    open_other_area = UnicodeAttribute(null=True)  # the second area slot, while open
    open_enterprise = UnicodeAttribute(null=True)
    urgency = UnicodeAttribute(null=True)
    first_area = UnicodeAttribute(null=True)  # area slots (`area_slots`): absent without areas
    other_area = UnicodeAttribute(null=True)
    closed_at = UnicodeAttribute(null=True)  # ISO-8601 UTC of the closure (`details.closure.at`), once closed
    device_id = UnicodeAttribute()
    enterprise_name = UnicodeAttribute()
    unit_id = UnicodeAttribute()
    unit_name = UnicodeAttribute()
    point_name = UnicodeAttribute(null=True)
    area_codes = JSONAttribute(default=list)
    risk_type = UnicodeAttribute()
    title = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    value = NumberAttribute(null=True)
    unit = UnicodeAttribute(null=True)
    flags = JSONAttribute(default=list)
    details = JSONAttribute(default=dict)
    expires_at = NumberAttribute(null=True)
    version = VersionAttribute()
    open_by_sector = OpenBySectorIndex()
    open_by_area = OpenByAreaIndex()
    by_enterprise = ByEnterpriseIndex()
    open_by_enterprise = OpenByEnterpriseIndex()
    by_sector = BySectorIndex()
    by_area = ByAreaIndex()
    by_other_area = ByOtherAreaIndex()
    open_by_other_area = OpenByOtherAreaIndex()
    closed_by_sector = ClosedBySectorIndex()


class WarningEventItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    type = UnicodeAttribute()
    at = NumberAttribute()
    data = JSONAttribute()
    expires_at = NumberAttribute(null=True)


class DeliveryItem(Model):
    """One telling of one warning change to one address, in the warning-event table (partition
    `DELIVERY#{warning id}#{event seq}`, sort key a stable 48-bit hash of the address)."""

    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    name = UnicodeAttribute()  # channel:address
    status = UnicodeAttribute()  # claimed, sent, failed, unknown
    owner = UnicodeAttribute()
    at = NumberAttribute()


class QuarantineItem(Model):
    class Meta:
        table_name = "unbound"

    day = UnicodeAttribute(hash_key=True)  # local date of the record's arrival, YYYY-MM-DD
    received_id = UnicodeAttribute(range_key=True)  # arrival ms # record id: a redelivery rewrites the same row
    reason = UnicodeAttribute()
    detail = UnicodeAttribute()
    device_id = UnicodeAttribute(null=True)
    topic = UnicodeAttribute(null=True)
    payload_b64 = UnicodeAttribute()  # empty when the bytes are in S3 (`payload_s3`)
    payload_s3 = UnicodeAttribute(null=True)  # key in the quarantine bucket of a payload too large for the row
    payload_size = NumberAttribute(null=True)
    expires_at = NumberAttribute()


_BINDINGS: tuple[tuple[type[Model], str], ...] = (
    (DeviceStateItem, "table_device_state"),
    (ShardCheckpointItem, "table_device_state"),
    (ShardLeaseItem, "table_device_state"),
    (UnitStateItem, "table_unit_state"),
    (RegistryItem, "table_registry"),
    (RegistryVersionItem, "table_registry"),
    (WarningItem, "table_warning"),
    (WarningEventItem, "table_warning_event"),
    (QuarantineItem, "table_quarantine"),
    (DeliveryItem, "table_warning_event"),
)


def bind(settings: Settings) -> None:
    """Point every model at its table and endpoint (once per container, and again when a test changes them)."""
    aws_clients.share_pynamodb_sessions()
    for model, field_name in _BINDINGS:
        meta: Any = model.Meta
        meta.table_name = getattr(settings, field_name)
        for name, value in aws_clients.dynamo_meta(settings).items():
            setattr(meta, name, value)
        model._connection = None  # re-read Meta on next use


_M = TypeVar("_M", bound=Model)


def _versioned(item: _M, version: int) -> _M:
    """A version attribute stays absent on a new item (the save is then conditional on the item not existing)."""
    if version:
        item.version = version  # type: ignore[attr-defined]
    return item


# --- repositories ----------------------------------------------------------------------------------------------


class DynamoStateStore:
    def load_devices(self, device_ids: Iterable[str]) -> dict[str, DeviceState]:
        ids = list(dict.fromkeys(device_ids))
        found = {
            item.device_id: DeviceState.loads(item.device_id, item.state, int(item.version or 0))
            for item in DeviceStateItem.batch_get(ids, consistent_read=True)
        }
        return {device: found.get(device) or DeviceState(device) for device in ids}

    def load_units(self, unit_ids: Iterable[str]) -> dict[str, UnitState]:
        ids = list(dict.fromkeys(unit_ids))
        found = {
            item.unit_id: UnitState.loads(item.unit_id, item.state, int(item.version or 0))
            for item in UnitStateItem.batch_get(ids, consistent_read=True)
        }
        return {unit: found.get(unit) or UnitState(unit) for unit in ids}

    def save_device(self, state: DeviceState, last_seen: float) -> None:
        item = _versioned(
            DeviceStateItem(state.device_id, state=state.dumps(), last_seen=last_seen), state.version
        )
        try:
            item.save()
        except PutError as exc:
            if lost_race(exc):
                raise ConcurrentUpdateError(state.device_id) from exc
            raise
        state.version = int(item.version or 0)

    def save_unit(self, state: UnitState) -> None:
        item = _versioned(UnitStateItem(state.unit_id, state=state.dumps()), state.version)
        try:
            item.save()
        except PutError as exc:
            if lost_race(exc):
                raise ConcurrentUpdateError(state.unit_id) from exc
            raise
        state.version = int(item.version or 0)

    def shard_lease(self, shard_id: str) -> ShardLease | None:
        try:
            item = ShardLeaseItem.get(f"SHARD#{shard_id}#LEASE", consistent_read=True)
        except DoesNotExist:
            return None
        return ShardLease(str(item.owner), int(item.epoch))

    def take_shard(self, shard_id: str, owner: str, seen: ShardLease | None) -> ShardLease:
        lease = ShardLease(owner, (seen.epoch if seen is not None else 0) + 1)
        condition = (
            ShardLeaseItem.device_id.does_not_exist() if seen is None else ShardLeaseItem.epoch == seen.epoch
        )
        try:
            ShardLeaseItem(f"SHARD#{shard_id}#LEASE", owner=owner, epoch=lease.epoch).save(condition=condition)
        except PutError as exc:
            if lost_race(exc):
                raise ConcurrentUpdateError(shard_id) from exc
            raise
        return lease

    def load_checkpoint(self, shard_id: str) -> ShardCheckpoint | None:
        try:
            item = ShardCheckpointItem.get(f"SHARD#{shard_id}", consistent_read=True)
        except DoesNotExist:
            return None
        states = json.loads(zlib.decompress(item.states)) if item.states else {}
        return ShardCheckpoint(str(item.sequence), int(item.epoch or 0), states)

    def save_checkpoint(self, shard_id: str, checkpoint: ShardCheckpoint) -> None:
        states = checkpoint.states
        text = json.dumps(states, separators=(",", ":"), ensure_ascii=False) if states else ""
        item = ShardCheckpointItem(
            f"SHARD#{shard_id}",
            sequence=checkpoint.sequence,
            epoch=checkpoint.epoch,
            states=zlib.compress(text.encode(), 9) if text else None,
        )
        condition = ShardCheckpointItem.epoch.does_not_exist() | (ShardCheckpointItem.epoch <= checkpoint.epoch)
        try:
            item.save(condition=condition)
        except PutError as exc:
            if lost_race(exc):
                raise ConcurrentUpdateError(shard_id) from exc
            raise


class DynamoRegistry:
    """Registrations, enterprises and people, cached per container. Every `ttl_s` (a minute) the container reads
    the registry's version counter (one eventually consistent read) and drops its cache when it moved; an entry is
    also re-read after `max_age_s` whatever the counter says (a writer died between write and bump)."""

    def __init__(
        self, ttl_s: float = 60.0, clock: Callable[[], float] | None = None, max_age_s: float = 3600.0
    ) -> None:
        self._ttl_s = ttl_s
        self._max_age_s = max(ttl_s, max_age_s)
        self._clock = clock or time.monotonic  # a bench's simulated clock expires it as a container's would
        self._checked_at = -math.inf
        self._version: int | None = None
        self._devices: dict[str, tuple[float, DeviceRegistration | None]] = {}
        self._enterprises: dict[str, tuple[float, Enterprise | None]] = {}
        self._people: tuple[float, tuple[Person, ...]] | None = None

    def _fresh(self) -> float:
        """The clock, after the once-per-`ttl_s` version check (the version is read before any entry it covers)."""
        now = self._clock()
        if now - self._checked_at > self._ttl_s:
            try:
                version = int(RegistryVersionItem.get(*REGISTRY_VERSION_KEY).changes or 0)
            except DoesNotExist:
                version = 0
            if version != self._version or self._ttl_s <= 0:
                self._devices.clear()
                self._enterprises.clear()
                self._people = None
            self._version, self._checked_at = version, now
        return now

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, DeviceRegistration]:
        now = self._fresh()
        ids = list(dict.fromkeys(device_ids))
        wanted = [d for d in ids if now - self._devices.get(d, (-1e18, None))[0] > self._max_age_s]
        if wanted:
            loaded = {
                item.pk[4:]: DeviceRegistration.model_validate(item.data)
                for item in RegistryItem.batch_get([(f"DEV#{d}", "REG") for d in wanted])
            }
            for device in wanted:
                self._devices[device] = (now, loaded.get(device))
        return {device: reg for device in ids if (reg := self._devices.get(device, (0.0, None))[1]) is not None}

    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        now = self._fresh()
        cached = self._enterprises.get(enterprise_id)
        if cached is None or now - cached[0] > self._max_age_s:
            try:
                item = RegistryItem.get(f"ENT#{enterprise_id}", "PROFILE")
                cached = (now, Enterprise.model_validate(item.data))
            except DoesNotExist:
                cached = (now, None)
            self._enterprises[enterprise_id] = cached
        return cached[1]

    def people(self) -> Sequence[Person]:
        now = self._fresh()
        if self._people is None or now - self._people[0] > self._max_age_s:
            found = tuple(Person.model_validate(item.data) for item in RegistryItem.by_gsi1.query("PEOPLE"))
            self._people = (now, found)
        return self._people[1]

    def enterprises(self) -> list[Enterprise]:
        return [Enterprise.model_validate(item.data) for item in RegistryItem.by_gsi1.query("ENTERPRISES")]

    # writes (seed loader, administrator)
    @staticmethod
    def put_device(reg: DeviceRegistration) -> None:
        _device_item(reg).save()
        bump_registry_version()

    @staticmethod
    def put_enterprise(enterprise: Enterprise) -> None:
        _enterprise_item(enterprise).save()
        bump_registry_version()

    @staticmethod
    def put_person(person: Person) -> None:
        _person_item(person).save()
        bump_registry_version()

    @staticmethod
    def put_many(
        devices: Iterable[DeviceRegistration],
        enterprises: Iterable[Enterprise],
        people: Iterable[Person],
        areas: Iterable[Area] = (),
    ) -> None:
        with RegistryItem.batch_write() as batch:
            for item in (
                *map(_device_item, devices),
                *map(_enterprise_item, enterprises),
                *map(_person_item, people),
                *map(_area_item, areas),
            ):
                batch.save(item)
        bump_registry_version()


def bump_registry_version() -> None:
    """After a registry write, never before: a container that reads the counter and then the entries holds no entry
    older than the counter it read."""
    RegistryVersionItem(*REGISTRY_VERSION_KEY).update(actions=[RegistryVersionItem.changes.add(1)])


def _device_item(reg: DeviceRegistration) -> RegistryItem:
    return RegistryItem(
        f"DEV#{reg.device_id}",
        "REG",
        gsi1pk=f"ENT#{reg.enterprise_id}",
        gsi1sk=f"DEV#{reg.device_id}",
        data=reg.model_dump(mode="json"),
    )


def _enterprise_item(enterprise: Enterprise) -> RegistryItem:
    return RegistryItem(
        f"ENT#{enterprise.enterprise_id}",
        "PROFILE",
        gsi1pk="ENTERPRISES",
        gsi1sk=f"{enterprise.sector.value}#{enterprise.enterprise_id}",
        data=enterprise.model_dump(mode="json"),
    )


def _area_item(area: Area) -> RegistryItem:
    """A dev zone or street (`AREA#{code}` / `PROFILE`): its Chinese name for the reports."""
    return RegistryItem(
        f"AREA#{area.code}", "PROFILE", gsi1pk="AREAS", gsi1sk=area.code, data=area.model_dump(mode="json")
    )


def _person_item(person: Person) -> RegistryItem:
    return RegistryItem(
        f"PERSON#{person.person_id}",
        "PROFILE",
        gsi1pk="PEOPLE",
        gsi1sk=f"{person.role}#{person.person_id}",
        data=person.model_dump(mode="json"),
    )


def urgency_key(level: int, raised_at: float) -> str:
    """Sorts red first, then orange...; within a level the oldest first."""
    return f"{Level.RED - level}#{iso_utc(raised_at)}"


def record_from_item(item: WarningItem) -> WarningRecord:
    """The warning as the domain knows it (the audited store and the listings read items through this too)."""
    return WarningRecord(
        warning_id=item.warning_id,
        device_id=item.device_id,
        enterprise_id=item.enterprise_id,
        enterprise_name=item.enterprise_name,
        sector=Sector(item.sector),
        unit_id=item.unit_id,
        unit_name=item.unit_name,
        point_name=item.point_name or "",
        area_codes=tuple(item.area_codes or ()),
        risk_type=item.risk_type,
        level=LEVEL_BY_CODE[item.level],
        peak_level=LEVEL_BY_CODE[item.peak_level],
        status=WarningStatus(item.status),
        reading_normal=bool(item.reading_normal),
        raised_at=float(item.raised_epoch),
        updated_at=float(item.updated_at),
        title=item.title or "",
        reason=item.reason or "",
        value=float(item.value) if item.value is not None else None,
        unit=item.unit or "",
        flags=tuple(item.flags or ()),
        details=dict(item.details or {}),
        version=int(item.version or 0),
    )


def fill_item(item: WarningItem, record: WarningRecord) -> None:
    """Write the record into the item, with the index keys it belongs under (open, by area, by urgency)."""
    item.enterprise_id = record.enterprise_id
    item.raised_at = iso_utc(record.raised_at)
    item.raised_epoch = record.raised_at
    item.updated_at = record.updated_at
    item.sector = record.sector.value
    item.level = Level(record.level).code
    item.peak_level = Level(record.peak_level).code
    item.status = record.status.value
    item.reading_normal = record.reading_normal
    item.device_id = record.device_id
    item.enterprise_name = record.enterprise_name
    item.unit_id = record.unit_id
    item.unit_name = record.unit_name
    item.point_name = record.point_name
    item.area_codes = list(record.area_codes)
    item.risk_type = record.risk_type
    item.title = record.title
    item.reason = record.reason
    item.value = record.value
    item.unit = record.unit
    item.flags = list(record.flags)
    item.details = record.details
    item.first_area, item.other_area = area_slots(record.area_codes)
    closure = record.details.get("closure")
    closed_at = closure.get("at") if isinstance(closure, Mapping) else None
    item.closed_at = iso_utc(float(closed_at)) if closed_at is not None else None
    if record.is_open:
        item.open_sector = record.sector.value
        item.open_enterprise = record.enterprise_id
        item.open_area, item.open_other_area = item.first_area, item.other_area
        item.urgency = urgency_key(record.level, record.raised_at)
    else:
        item.open_sector = item.open_enterprise = item.open_area = item.open_other_area = item.urgency = None


MORE_AREAS = "*"
"""The second area slot of a warning with more than two areas: area listings also read this partition (and keep
the warnings that touch the caller's areas), so a warning is listed for every one of its areas."""


def area_slots(area_codes: Iterable[str]) -> tuple[str | None, str | None]:
    """A warning's area codes as two index keys: the first area, and the second one (or `MORE_AREAS`)."""
    codes = [code for code in dict.fromkeys(area_codes) if code]
    if not codes:
        return None, None
    if len(codes) == 1:
        return codes[0], None
    return codes[0], codes[1] if len(codes) == 2 else MORE_AREAS


def engine_event_seq(change: WarningChange) -> int:
    return change.event_seq


class DynamoWarningStore:
    def __init__(self, retries: int = 3) -> None:
        self._retries = retries

    def get(self, warning_id: str) -> WarningRecord | None:
        try:
            return record_from_item(WarningItem.get(warning_id, consistent_read=True))
        except DoesNotExist:
            return None

    def create(self, record: WarningRecord) -> bool:
        item = WarningItem(record.warning_id, level_seq=0)
        fill_item(item, record)
        try:
            item.save()  # the version attribute makes this conditional on the item not existing
        except PutError as exc:
            if lost_race(exc):
                return False
            raise
        return True

    def save(self, record: WarningRecord) -> WarningRecord:
        """Write a record read before, if nobody changed it since (version); returns it with the new version."""
        item = _versioned(WarningItem(record.warning_id), record.version)
        try:
            current = WarningItem.get(record.warning_id, consistent_read=True)
            item.level_seq = current.level_seq
            item.expires_at = current.expires_at
        except DoesNotExist:
            item.level_seq = 0
        fill_item(item, record)
        try:
            item.save()
        except PutError as exc:
            if lost_race(exc):
                raise ConcurrentUpdateError(record.warning_id) from exc
            raise
        return record_from_item(item)

    def apply_change(self, change: WarningChange) -> bool:
        for _ in range(self._retries):
            try:
                item = WarningItem.get(change.warning_id, consistent_read=True)
            except DoesNotExist:
                return False
            if float(item.updated_at) >= change.at and change.kind is not ChangeKind.RAISE:
                return False  # applied before
            record = record_from_item(item).apply_engine_change(change)
            level_changed = Level(record.level).code != item.level
            fill_item(item, record)
            if level_changed:
                item.level_seq = int(item.level_seq or 0) + 1
            try:
                item.save()
                return True
            except PutError as exc:
                if not lost_race(exc):
                    raise
        raise ConcurrentUpdateError(change.warning_id)

    def append_engine_event(self, change: WarningChange) -> bool:
        event = WarningEventItem(
            change.warning_id,
            engine_event_seq(change),
            type=f"engine.{change.kind.value}",
            at=change.at,
            data=change.to_dict(),
        )
        try:
            event.save(condition=WarningEventItem.seq.does_not_exist())
        except PutError as exc:
            if not lost_race(exc):
                raise
            appended = False
        else:
            appended = True
        suppressed = SuppressedFinding.of(change)
        if suppressed is not None:
            DynamoSuppressedFindings.put(suppressed)  # idempotent: a repeated append rewrites the same row
        return appended

    @staticmethod
    def events(warning_id: str) -> list[dict[str, Any]]:
        return [
            {"seq": int(item.seq), "type": item.type, "at": float(item.at), "data": item.data}
            for item in WarningEventItem.query(warning_id)
        ]

    @staticmethod
    def open_by_sector(sector: str, limit: int = 100) -> list[WarningRecord]:
        return [record_from_item(item) for item in WarningItem.open_by_sector.query(sector, limit=limit)]

    @staticmethod
    def scan_all() -> list[WarningRecord]:
        return [record_from_item(item) for item in WarningItem.scan()]


class DynamoSuppressedFindings:
    """`SuppressedFindings`: the findings a declaration suppressed, in the warning-event table under
    `SUPPRESSED#{declaration id}`, sort key = the finding's time in ms × 2^16 + a 16-bit hash of its would-be
    warning id (written beside the engine log's row by `DynamoWarningStore.append_engine_event`)."""

    @staticmethod
    def put(found: SuppressedFinding) -> None:
        digest = hashlib.blake2b(found.warning_id.encode(), digest_size=2).digest()
        seq = round(found.at * 1000) * 65536 + int.from_bytes(digest, "big")
        item = WarningEventItem(f"SUPPRESSED#{found.declaration_id}", seq, type="suppressed", at=found.at)
        item.data = found.to_dict()
        item.save()

    @staticmethod
    def of_declaration(declaration_id: str, limit: int) -> list[SuppressedFinding]:
        items = WarningEventItem.query(f"SUPPRESSED#{declaration_id}", scan_index_forward=False, limit=limit)
        return [SuppressedFinding.from_dict(item.data) for item in items]


_CLAIMED, _SENT, _UNKNOWN = "claimed", DeliveryOutcome.SENT.value, DeliveryOutcome.UNKNOWN.value
_REJECTED = DeliveryOutcome.REJECTED.value


def _delivery_key(key: DeliveryKey) -> tuple[str, int]:
    digest = hashlib.blake2b(key.name.encode("utf-8", "backslashreplace"), digest_size=6).digest()
    return f"DELIVERY#{key.warning_id}#{key.event_seq}", int.from_bytes(digest, "big")


class DynamoDeliveryLedger:
    """Claims and outcomes of deliveries (`DeliveryLedger`), one conditional write each."""

    def claim(self, key: DeliveryKey, owner: str, now: float, lease_s: float) -> ClaimOutcome:
        partition, seq = _delivery_key(key)
        item = DeliveryItem(partition, seq, name=key.name, status=_CLAIMED, owner=owner, at=now)
        open_claim = (
            (DeliveryItem.status != _SENT) & (DeliveryItem.status != _UNKNOWN) & (DeliveryItem.status != _REJECTED)
        )
        takeable = (
            (DeliveryItem.owner == owner) | (DeliveryItem.status != _CLAIMED) | (DeliveryItem.at < now - lease_s)
        )
        try:
            item.save(condition=DeliveryItem.seq.does_not_exist() | (open_claim & takeable))
        except PutError as exc:
            if not lost_race(exc):
                raise
            current = DeliveryItem.get(partition, seq, consistent_read=True)
            return ClaimOutcome.DONE if current.status in (_SENT, _UNKNOWN, _REJECTED) else ClaimOutcome.BUSY
        return ClaimOutcome.MINE

    def settle(self, key: DeliveryKey, owner: str, outcome: DeliveryOutcome, now: float) -> None:
        partition, seq = _delivery_key(key)
        try:
            DeliveryItem(partition, seq).update(
                actions=[DeliveryItem.status.set(outcome.value), DeliveryItem.at.set(now)],
                condition=DeliveryItem.owner == owner,
            )
        except UpdateError as exc:
            if not lost_race(exc):
                raise  # else another sender took the claim over: its outcome stands

    @staticmethod
    def of_change(warning_id: str, event_seq: int) -> dict[str, str]:
        """Each address's status for one change (tests and operators)."""
        return {item.name: item.status for item in DeliveryItem.query(f"DELIVERY#{warning_id}#{event_seq}")}


class DynamoQuarantine:
    """Quarantine rows keyed by the record (its arrival and id), so a redelivery rewrites the same row; payloads
    over `inline_limit` bytes go to S3 (`quarantine/{day}/{record id}`) with the row pointing at them."""

    def __init__(
        self, ttl_days: int = 90, s3: Any = None, bucket: str = "", inline_limit: int = 64 * 1024
    ) -> None:
        self._ttl_s = ttl_days * 86400
        self._s3 = s3
        self._bucket = bucket
        self._inline_limit = inline_limit

    def put(self, items: Sequence[QuarantinedMessage]) -> None:
        rows = [self._row(message) for message in items]
        with QuarantineItem.batch_write() as batch:
            for row in rows:
                batch.save(row)

    def _row(self, message: QuarantinedMessage) -> QuarantineItem:
        local = datetime.fromtimestamp(message.received_at, SHANGHAI)
        day = local.strftime("%Y-%m-%d")
        row = QuarantineItem(
            day,
            f"{int(message.received_at * 1000):013d}#{message.record_id}",
            reason=message.reason,
            detail=message.detail[:500] or "-",
            device_id=message.device_id,
            topic=message.topic,
            payload_b64="",
            payload_size=len(message.payload),
            expires_at=int(message.received_at + self._ttl_s),
        )
        if len(message.payload) <= self._inline_limit or self._s3 is None or not self._bucket:
            row.payload_b64 = base64.b64encode(message.payload[: self._inline_limit]).decode("ascii")
        else:
            key = f"quarantine/{day}/{message.record_id}"
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=message.payload)
            row.payload_s3 = key
        return row

    @staticmethod
    def by_day(day: str, s3: Any = None, bucket: str = "") -> list[dict[str, Any]]:
        """The day's rows; a payload kept in S3 is read back when `s3` is given, else `payload` is empty."""
        return [
            {
                "received_id": item.received_id,
                "reason": item.reason,
                "detail": item.detail,
                "device_id": item.device_id,
                "topic": item.topic,
                "payload": _quarantined_payload(item, s3, bucket),
                "payload_s3": item.payload_s3,
            }
            for item in QuarantineItem.query(day)
        ]


def _quarantined_payload(item: QuarantineItem, s3: Any, bucket: str) -> bytes:
    if item.payload_s3:
        if s3 is None:
            return b""
        body: bytes = s3.get_object(Bucket=bucket, Key=item.payload_s3)["Body"].read()
        return body
    return base64.b64decode(item.payload_b64)
