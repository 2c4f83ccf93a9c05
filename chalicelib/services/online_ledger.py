"""The online-time ledger (DOMAIN.md §6, docs/offline-watch.md "The online ledger"): outages are recorded per
enterprise, device and local day when they end (the offline watch's recoveries: one write per device per day an
outage touched, never per message), and read as the evaluation's `DeviceDay`s for a scope and a period: a device
with nothing recorded was online all day; a device offline now counts until now; the declarations' effective
windows (as they stand: a rejected one excuses nothing) are left out of the expected time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from chalicelib.domain.clock import local_day_number
from chalicelib.domain.declarations import Declaration, effective_window
from chalicelib.domain.evaluation.facts import DeviceDay
from chalicelib.domain.evaluation.periods import Period
from chalicelib.domain.presence import Placed, Window, by_local_day, ledger_day, local_day_start, quiet_days
from chalicelib.domain.registry import Enterprise
from chalicelib.services.ports import (
    DeviceDirectory,
    DeviceScope,
    Fleet,
    FleetDevice,
    OfflineState,
    OutageLedger,
    Registry,
)


def in_scope(enterprise: Enterprise, scope: DeviceScope) -> bool:
    if scope.enterprise_ids and enterprise.enterprise_id not in scope.enterprise_ids:
        return False
    if scope.sector is not None and enterprise.sector.value != scope.sector:
        return False
    return scope.area is None or scope.area in enterprise.area_codes


class OnlineLedger:
    """`DeviceDaySource` (a scope's device-days), `DeviceDayLedger` (an evaluation run's, `device_days`), and
    `closed` for the offline watch (an outage ended)."""

    readers = 8  # enterprises read at a time by an evaluation run (I/O bound: DynamoDB round trips)

    def __init__(
        self,
        store: OutageLedger,
        registry: Registry,
        directory: DeviceDirectory,
        offline: OfflineState,
        declarations_of: Callable[[str], list[Declaration]],
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._registry = registry
        self._directory = directory
        self._offline = offline
        self._declarations_of = declarations_of
        self._clock = clock

    def closed(self, device_id: str, start: float, end: float) -> None:
        """The device was offline over [start, end): recorded under each local day it touched."""
        reg = self._registry.devices([device_id]).get(device_id)
        if reg is None or end <= start:
            return
        for day, a, b in by_local_day(start, end):
            self._store.add(reg.enterprise_id, device_id, day, a, b)

    def days(self, scope: DeviceScope, period: Period) -> list[DeviceDay]:
        now = self._clock()
        until = min(now, period.end)
        if until <= period.start:
            return []
        first, last = local_day_number(period.start), local_day_number(until - 1e-6)
        found: list[DeviceDay] = []
        for enterprise in self._directory.enterprises():
            if in_scope(enterprise, scope):
                found += self._enterprise_days(enterprise.enterprise_id, first, last, until)
        return found

    def device_days(self, period: Period, fleet: Fleet, as_of: float) -> Iterator[DeviceDay]:
        """An evaluation run's device-days: per enterprise one ledger query, one read of its devices offline now
        and one of its declarations (`readers` enterprises at a time); a device's days without an outage or a
        declared window are one row (`DeviceDay.days`), the others one row per day."""
        until = min(as_of, period.end)
        if until <= period.start:
            return
        first, last = local_day_number(period.start), local_day_number(until - 1e-6)
        groups = [(enterprise_id, devices) for enterprise_id, devices in fleet.devices.items() if devices]
        with ThreadPoolExecutor(self.readers) as pool:
            for days in pool.map(lambda group: self._fleet_days(group[0], group[1], first, last, until), groups):
                yield from days

    def _fleet_days(
        self, enterprise_id: str, devices: Sequence[FleetDevice], first: int, last: int, until: float
    ) -> list[DeviceDay]:
        return self._enterprise_days(enterprise_id, first, last, until, devices, compact=True)

    def _enterprise_days(
        self,
        enterprise_id: str,
        first: int,
        last: int,
        until: float,
        registered: Sequence[Placed] | None = None,
        compact: bool = False,
    ) -> list[DeviceDay]:
        devices: Sequence[Placed] = self._directory.devices_of(enterprise_id) if registered is None else registered
        if not devices:
            return []
        recorded = self._store.outages(enterprise_id, first, last)
        ongoing = self._offline.offline(d.device_id for d in devices)
        excused: defaultdict[str, list[Window]] = defaultdict(list)
        for declaration in self._declarations_of(enterprise_id):
            window = effective_window(declaration)
            if window is not None:
                for device in declaration.device_ids:
                    excused[device].append(window)
        days: list[DeviceDay] = []
        for reg in devices:
            device = reg.device_id
            current = ongoing.get(device)
            marked = {day for (named, day) in recorded if named == device}
            for a, b in [*excused.get(device, ()), *([(current.since, until)] if current is not None else [])]:
                marked.update(day for day, _, _ in by_local_day(max(a, local_day_start(first)), min(b, until)))
            quiet_from: int | None = None
            for day in range(first, last + 2):
                if compact and day <= last and day not in marked:
                    quiet_from = day if quiet_from is None else quiet_from
                    continue
                if quiet_from is not None:
                    run = quiet_days(reg, quiet_from, day - 1, until)
                    days += [run] if run is not None else []
                    quiet_from = None
                if day > last:
                    break
                outages = list(recorded.get((device, day), ()))
                if current is not None:
                    outages.append((current.since, until))
                entry = ledger_day(reg, day, until, outages, excused.get(device, ()))
                if entry is not None:
                    days.append(entry)
        return days
