"""Devices by status for people (docs/offline-watch.md "Device status"): online, offline,
declared, never seen, with last-seen times, within the caller's scope (enterprise: its own; regulator: its sectors;
area: its areas; duty centre, bureau, administrator: all).

Pages of `limit` devices, ordered by enterprise and device; `next_cursor` resumes after the last one (enterprises
before it are skipped unread). The per-device reads follow the page, not the fleet:
- `declared`: the open declarations (one index read) name the candidates, `offline`: the offline records (one
  index query of the devices offline now); their registrations are read by key (or, within one enterprise, its
  devices listed); a device's status is then known without its state, so only the page's devices (at most
  `limit`) have their states (and, for `declared`, their offline records) read;
- `online`, `never_seen` and no filter: the registry is walked in order (one index query per enterprise, lazily:
  the walk stops when the page is full) and candidates read in chunks of at most `limit + 1` (states and offline
  records, batch reads), until the page is full and one more device is known to match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

from chalicelib.domain.access import require_role
from chalicelib.domain.declarations import Declaration, excusing
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.presence import DeviceStatus, can_see_device, device_status
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.sectors import Sector
from chalicelib.domain.sectors.road_transport import GnssFix, last_fix
from chalicelib.domain.state import DeviceState
from chalicelib.services.cursors import decode_cursor, encode_cursor
from chalicelib.services.ports import DeviceDirectory, OfflineRecord, OfflineState, StateStore

READING_ROLES = frozenset({Role.ENTERPRISE, Role.DUTY, Role.REGULATOR, Role.AREA, Role.EMERGENCY, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class DeviceStanding:
    registration: DeviceRegistration
    status: DeviceStatus
    last_seen: float | None  # its newest graded reading (the device's own time)
    offline_since: float | None  # its last sign of life, while offline (declared or not)
    declaration_id: str | None  # the declaration excusing it now
    last_fix: GnssFix | None = None  # a vehicle's last GNSS fix, as its state was last written


@dataclass(frozen=True, slots=True)
class DevicePage:
    items: tuple[DeviceStanding, ...]
    next_cursor: str | None  # where the next page starts (None: this was the last)

    @property
    def truncated(self) -> bool:
        return self.next_cursor is not None


CURSOR_FIELDS = ("enterprise_id", "device_id")


class DeviceStatuses:
    def __init__(
        self,
        directory: DeviceDirectory,
        states: StateStore,
        offline: OfflineState,
        declarations: Callable[[], Sequence[Declaration]],
        clock: Callable[[], float],
    ) -> None:
        self._directory = directory
        self._states = states
        self._offline = offline
        self._declarations = declarations
        self._clock = clock

    def list(
        self,
        actor: Actor,
        status: DeviceStatus | None = None,
        enterprise_id: str | None = None,
        limit: int = 500,
        cursor: str | None = None,
    ) -> DevicePage:
        """Ordered by enterprise, then device; a page ends after `limit` devices (`next_cursor` resumes after the
        last one answered)."""
        require_role(actor, READING_ROLES, "查看设备状态")
        after = decode_cursor(cursor, CURSOR_FIELDS)
        resume = (after["enterprise_id"], after["device_id"]) if after is not None else ("", "")
        if actor.role is Role.ENTERPRISE:
            enterprise_id = actor.enterprise_id
        now = self._clock()
        excuses = excusing(self._declarations(), now)
        if status is DeviceStatus.DECLARED:
            candidates = self._among(actor, enterprise_id, resume, set(excuses))
            return self._known_page(candidates, excuses, None, limit)
        if status is DeviceStatus.OFFLINE:
            offline = self._offline.all_offline()
            candidates = self._among(actor, enterprise_id, resume, set(offline) - set(excuses))
            return self._known_page(candidates, excuses, offline, limit)
        visible = self._in_order(actor, enterprise_id, resume)
        if status is not None:  # online or never seen: no declaration excuses it (the rest needs its state)
            visible = (r for r in visible if r.device_id not in excuses)
        found: list[DeviceStanding] = []
        while chunk := list(islice(visible, limit + 1 - len(found))):
            for standing in self._standings(chunk, excuses, None):
                if status is not None and standing.status is not status:
                    continue
                if len(found) == limit:
                    return DevicePage(tuple(found), _after(found[-1]))
                found.append(standing)
        return DevicePage(tuple(found), None)

    def _in_order(
        self, actor: Actor, enterprise_id: str | None, resume: tuple[str, str]
    ) -> Iterator[DeviceRegistration]:
        """The devices the actor sees after `resume`, by enterprise then device; an enterprise's devices are read
        when the walk reaches it."""
        for enterprise in sorted(e.enterprise_id for e in self._directory.enterprises()):
            if (enterprise_id is not None and enterprise != enterprise_id) or enterprise < resume[0]:
                continue
            devices = [
                d
                for d in self._directory.devices_of(enterprise)
                if can_see_device(actor, d) and (enterprise, d.device_id) > resume
            ]
            yield from sorted(devices, key=lambda d: d.device_id)

    def _among(
        self, actor: Actor, enterprise_id: str | None, resume: tuple[str, str], device_ids: set[str]
    ) -> Iterator[DeviceRegistration]:
        """`_in_order` restricted to `device_ids`: one enterprise's walk, or across enterprises (where the walk
        would read every enterprise's devices) the named devices' registrations, read by key."""
        if enterprise_id is not None:
            return (r for r in self._in_order(actor, enterprise_id, resume) if r.device_id in device_ids)
        if not device_ids:
            return iter(())
        listed = {e.enterprise_id for e in self._directory.enterprises()}
        found = [
            r
            for r in self._directory.devices(device_ids).values()
            if r.enterprise_id in listed and can_see_device(actor, r) and (r.enterprise_id, r.device_id) > resume
        ]
        return iter(sorted(found, key=lambda r: (r.enterprise_id, r.device_id)))

    def _known_page(
        self,
        candidates: Iterator[DeviceRegistration],
        excuses: Mapping[str, Declaration],
        offline: Mapping[str, OfflineRecord] | None,
        limit: int,
    ) -> DevicePage:
        """A page of devices whose status is known before their states are read: only the page's are."""
        page = list(islice(candidates, limit))
        found = self._standings(page, excuses, offline)
        more = next(candidates, None) is not None
        return DevicePage(found, _after(found[-1]) if more and found else None)

    def _standings(
        self,
        devices: Sequence[DeviceRegistration],
        excuses: Mapping[str, Declaration],
        offline: Mapping[str, OfflineRecord] | None,
    ) -> tuple[DeviceStanding, ...]:
        """The devices' standings, from their states and offline records (`offline`: already read)."""
        ids = [d.device_id for d in devices]
        if not ids:
            return ()
        states = self._states.load_devices(ids)
        records = self._offline.offline(ids) if offline is None else offline
        return tuple(_standing(reg, states.get(reg.device_id), records, excuses) for reg in devices)


def _standing(
    reg: DeviceRegistration,
    state: DeviceState | None,
    offline: Mapping[str, OfflineRecord],
    excuses: Mapping[str, Declaration],
) -> DeviceStanding:
    last_seen = state.last_ts if state is not None and state.last_ts > 0 else None
    record = offline.get(reg.device_id)
    excuse = excuses.get(reg.device_id)
    return DeviceStanding(
        reg,
        device_status(record is not None, excuse is not None, last_seen),
        last_seen,
        record.since if record is not None else None,
        excuse.declaration_id if excuse is not None else None,
        last_fix=_last_fix(reg, state),
    )


def _after(last: DeviceStanding) -> str:
    reg = last.registration
    return encode_cursor({"enterprise_id": reg.enterprise_id, "device_id": reg.device_id})


def _last_fix(registration: DeviceRegistration, state: DeviceState | None) -> GnssFix | None:
    if state is None or registration.sector is not Sector.ROAD_TRANSPORT:
        return None
    return last_fix(state.scratch)
