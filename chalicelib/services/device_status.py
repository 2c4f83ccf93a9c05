"""Devices by status for people (issue 12 item 5, docs/offline-watch.md "Device status"): online, offline,
declared, never seen, with last-seen times, within the caller's scope (enterprise: its own; regulator: its sectors;
area: its areas; duty centre, bureau, administrator: all).

Reads per call: the enterprise list (one index query), each enterprise's devices in scope (one index query each),
their states (batch reads: the last seen time, as written by the ingest, coalesced to every `state_flush_s`), their
offline records (batch reads) and the open declarations (one index read). Pages of `limit` devices, ordered by
enterprise and device; `next_cursor` resumes after the last one (enterprises before it are skipped unread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.domain.access import require_role
from chalicelib.domain.declarations import Declaration, suppressing
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.presence import DeviceStatus, can_see_device, device_status
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.sectors import Sector
from chalicelib.domain.sectors.road_transport import GnssFix, last_fix
from chalicelib.domain.state import DeviceState
from chalicelib.services.cursors import decode_cursor, encode_cursor
from chalicelib.services.ports import DeviceDirectory, OfflineState, StateStore

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
        open_declarations = self._declarations()
        enterprises = sorted(e.enterprise_id for e in self._directory.enterprises())
        found: list[DeviceStanding] = []
        for enterprise in enterprises:
            if (enterprise_id is not None and enterprise != enterprise_id) or enterprise < resume[0]:
                continue
            devices = [
                d
                for d in self._directory.devices_of(enterprise)
                if can_see_device(actor, d) and (enterprise, d.device_id) > resume
            ]
            if not devices:
                continue
            ids = [d.device_id for d in devices]
            states = self._states.load_devices(ids)
            offline = self._offline.offline(ids)
            for reg in sorted(devices, key=lambda d: d.device_id):
                state = states.get(reg.device_id)
                last_seen = state.last_ts if state is not None and state.last_ts > 0 else None
                record = offline.get(reg.device_id)
                excuse = suppressing(open_declarations, reg.device_id, now)
                current = device_status(record is not None, excuse is not None, last_seen)
                if status is not None and current is not status:
                    continue
                if len(found) == limit:
                    last = found[-1].registration
                    next_cursor = encode_cursor({"enterprise_id": last.enterprise_id, "device_id": last.device_id})
                    return DevicePage(tuple(found), next_cursor)
                found.append(
                    DeviceStanding(
                        reg,
                        current,
                        last_seen,
                        record.since if record is not None else None,
                        excuse.declaration_id if excuse is not None else None,
                        last_fix=_last_fix(reg, state),
                    )
                )
        return DevicePage(tuple(found), None)


def _last_fix(registration: DeviceRegistration, state: DeviceState | None) -> GnssFix | None:
    if state is None or registration.sector is not Sector.ROAD_TRANSPORT:
        return None
    return last_fix(state.scratch)
