"""The online-time ledger (DOMAIN.md §6, docs/offline-watch.md "The online ledger"): outages are recorded per
enterprise, device and local day when they end (the offline watch's recoveries: one write per device per day an
outage touched, never per message), and read as the evaluation's `DeviceDay`s for a scope and a period: a device
with nothing recorded was online all day; a device offline now counts until now; the declarations' effective
windows (as they stand: a rejected one excuses nothing) are left out of the expected time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
    OfflineRecord,
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
        """An evaluation run's device-days, from three reads whatever the fleet's size: the recorded outages of
        the period's days (one query per day), the devices offline now (one query) and the declarations (the
        fleet's); a device's days without an outage or a declared window are one row (`DeviceDay.days`), the
        others one row per day."""
        until = min(as_of, period.end)
        if until <= period.start:
            return
        first, last = local_day_number(period.start), local_day_number(until - 1e-6)
        with ThreadPoolExecutor(1) as pool:  # the two reads side by side
            recorded_read = pool.submit(self._store.outages_between, first, last)
            ongoing = self._offline.all_offline()
            recorded = recorded_read.result()
        excused, by_device = _excused(fleet.declarations), _by_device(recorded)
        for devices in fleet.devices.values():
            yield from _device_rows(devices, first, last, until, by_device, ongoing, excused, True)

    def _enterprise_days(self, enterprise_id: str, first: int, last: int, until: float) -> list[DeviceDay]:
        devices: Sequence[Placed] = self._directory.devices_of(enterprise_id)
        if not devices:
            return []
        recorded = self._store.outages(enterprise_id, first, last)
        ongoing = self._offline.offline(d.device_id for d in devices)
        excused = _excused(self._declarations_of(enterprise_id))
        return list(_device_rows(devices, first, last, until, _by_device(recorded), ongoing, excused, False))


def _excused(declarations: Iterable[Declaration]) -> dict[str, list[Window]]:
    """Device -> the effective windows of the declarations naming it (as they stand: a rejected one excuses
    nothing)."""
    excused: defaultdict[str, list[Window]] = defaultdict(list)
    for declaration in declarations:
        window = effective_window(declaration)
        if window is not None:
            for device in declaration.device_ids:
                excused[device].append(window)
    return excused


def _by_device(recorded: Mapping[tuple[str, int], list[Window]]) -> dict[str, dict[int, list[Window]]]:
    found: defaultdict[str, dict[int, list[Window]]] = defaultdict(dict)
    for (device, day), windows in recorded.items():
        found[device][day] = windows
    return found


def _device_rows(
    devices: Iterable[Placed],
    first: int,
    last: int,
    until: float,
    recorded: Mapping[str, Mapping[int, list[Window]]],
    ongoing: Mapping[str, OfflineRecord],
    excused: Mapping[str, list[Window]],
    compact: bool,
) -> Iterator[DeviceDay]:
    """Each device's rows: one per day with an outage (recorded or ongoing) or a declared window; with `compact`,
    each run of other days as one row (`presence.quiet_days`), else one row per day."""
    period_start = local_day_start(first)
    for reg in devices:
        device = reg.device_id
        current = ongoing.get(device)
        windows = excused.get(device, ())
        outages_of = recorded.get(device, {})
        if compact and not outages_of and not windows and current is None:
            run = quiet_days(reg, first, last, until)  # the usual device: one row, nothing else to look at
            if run is not None:
                yield run
            continue
        marked = set(outages_of)
        for a, b in [*windows, *([(current.since, until)] if current is not None else [])]:
            marked.update(day for day, _, _ in by_local_day(max(a, period_start), min(b, until)))
        quiet_from: int | None = None
        for day in range(first, last + 2):
            if compact and day <= last and day not in marked:
                quiet_from = day if quiet_from is None else quiet_from
                continue
            if quiet_from is not None:
                run = quiet_days(reg, quiet_from, day - 1, until)
                if run is not None:
                    yield run
                quiet_from = None
            if day > last:
                break
            outages = list(outages_of.get(day, ()))
            if current is not None:
                outages.append((current.since, until))
            entry = ledger_day(reg, day, until, outages, windows)
            if entry is not None:
                yield entry
