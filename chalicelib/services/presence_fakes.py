"""In-memory fakes of the presence ports (docs/offline-watch.md), counting what a store would read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

from chalicelib.domain.presence import Window
from chalicelib.domain.registry import DeviceRegistration, Enterprise
from chalicelib.services.ports import (
    OfflineRecord,
    OfflineTransition,
    ShardRoster,
    ShardSummary,
    WatchState,
)


class FakePresenceLedger:
    def __init__(self) -> None:
        self.summaries_by_minute: dict[int, dict[str, ShardSummary]] = {}
        self.rosters: dict[str, dict[int, ShardRoster]] = {}
        self.reads: Counter[str] = Counter()  # items read, by kind
        self.writes: Counter[str] = Counter()
        self.fail_writes = False

    def put_summary(self, summary: ShardSummary) -> None:
        if self.fail_writes:
            raise ConnectionError("throttled")
        self.summaries_by_minute.setdefault(summary.minute, {})[summary.shard] = summary
        self.writes["summary"] += 1

    def summaries(self, minute: int) -> list[ShardSummary]:
        found = list(self.summaries_by_minute.get(minute, {}).values())
        self.reads["summary_queries"] += 1
        self.reads["summaries"] += len(found)
        return found

    def put_roster(self, roster: ShardRoster) -> None:
        if self.fail_writes:
            raise ConnectionError("throttled")
        self.rosters.setdefault(roster.shard, {})[roster.minute] = roster
        self.writes["roster"] += 1

    def latest_roster(self, shard: str) -> ShardRoster | None:
        self.reads["roster_queries"] += 1
        rosters = self.rosters.get(shard)
        if not rosters:
            return None
        self.reads["rosters"] += 1
        return rosters[max(rosters)]


class FakeOfflineState:
    def __init__(self) -> None:
        self.state: WatchState | None = None
        self.records: dict[str, OfflineRecord] = {}
        self.reads: Counter[str] = Counter()
        self.writes: Counter[str] = Counter()

    def load(self) -> WatchState | None:
        self.reads["state"] += 1
        if self.state is None:
            return None
        return replace(
            self.state,
            shards=dict(self.state.shards),
            silent_shards=dict(self.state.silent_shards),
            suppressed=dict(self.state.suppressed),
            regrading=dict(self.state.regrading),
        )

    def save(self, state: WatchState) -> None:
        self.writes["state"] += 1
        self.state = replace(
            state,
            shards=dict(state.shards),
            silent_shards=dict(state.silent_shards),
            suppressed=dict(state.suppressed),
        )

    def offline(self, device_ids: Iterable[str]) -> dict[str, OfflineRecord]:
        ids = list(dict.fromkeys(device_ids))
        self.reads["offline_keys"] += len(ids)
        return {d: self.records[d] for d in ids if d in self.records}

    def all_offline(self) -> dict[str, OfflineRecord]:
        self.reads["all_offline"] += 1
        return dict(self.records)

    def mark_offline(self, record: OfflineRecord) -> None:
        self.writes["offline"] += 1
        self.records[record.device_id] = record

    def mark_online(self, device_id: str) -> None:
        self.writes["online"] += 1
        self.records.pop(device_id, None)


class FakeOfflineSink:
    def __init__(self) -> None:
        self.raised: list[OfflineTransition] = []
        self.recovered: list[OfflineTransition] = []
        self.regraded: list[OfflineTransition] = []
        self.excused: list[tuple[OfflineTransition, str]] = []
        self.rising: set[str] = set()  # devices whose level may still rise (vehicles)

    def offline(self, transition: OfflineTransition) -> bool:
        self.raised.append(transition)
        return transition.device_id in self.rising

    def regrade(self, transition: OfflineTransition) -> bool:
        self.regraded.append(transition)
        return transition.device_id in self.rising

    def online(self, transition: OfflineTransition) -> None:
        self.recovered.append(transition)

    def suppressed(self, transition: OfflineTransition, declaration_id: str) -> None:
        self.excused.append((transition, declaration_id))


class FakeOutageLedger:
    def __init__(self) -> None:
        self.days: dict[tuple[str, str, int], set[tuple[float, float]]] = {}
        self.writes = 0
        self.queries = 0

    def add(self, enterprise_id: str, device_id: str, day: int, start: float, end: float) -> None:
        self.writes += 1
        self.days.setdefault((enterprise_id, device_id, day), set()).add((start, end))

    def outages(self, enterprise_id: str, first_day: int, last_day: int) -> dict[tuple[str, int], list[Window]]:
        self.queries += 1
        return {
            (device, day): sorted(periods)
            for (enterprise, device, day), periods in self.days.items()
            if enterprise == enterprise_id and first_day <= day <= last_day
        }

    def outages_between(self, first_day: int, last_day: int) -> dict[tuple[str, int], list[Window]]:
        self.queries += last_day - first_day + 1  # one per day
        return {
            (device, day): sorted(periods)
            for (_enterprise, device, day), periods in self.days.items()
            if first_day <= day <= last_day
        }


class FakeDeviceDirectory:
    def __init__(self, enterprises: Sequence[Enterprise], devices: Sequence[DeviceRegistration]) -> None:
        self._enterprises = list(enterprises)
        self._devices = list(devices)
        self.reads: Counter[str] = Counter()  # queries by kind, and registrations read by key

    def enterprises(self) -> list[Enterprise]:
        self.reads["enterprises"] += 1
        return list(self._enterprises)

    def devices_of(self, enterprise_id: str) -> list[DeviceRegistration]:
        self.reads["devices_of"] += 1
        return [d for d in self._devices if d.enterprise_id == enterprise_id]

    def devices(self, device_ids: Iterable[str]) -> dict[str, DeviceRegistration]:
        wanted = set(device_ids)
        self.reads["device_keys"] += len(wanted)
        return {d.device_id: d for d in self._devices if d.device_id in wanted}
