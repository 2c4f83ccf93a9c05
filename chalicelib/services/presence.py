"""The ingest container's presence tracker (docs/offline-watch.md): last sign of life per device kept in memory, a
deadline heap, and one compact change summary per shard and minute (plus an hourly roster) through
`PresenceLedger`. Never a write per device: the offline watch reads the summaries.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from chalicelib.domain.presence import PresencePolicy, Signal, Watch, deadline, observe
from chalicelib.services.ports import PresenceLedger, ShardRoster, ShardSummary


@dataclass(frozen=True, slots=True)
class Sighting:
    """One sign of life (or a disconnect) of one registered device, as the ingest saw it in a batch."""

    shard: str
    device_id: str
    at: float  # the record's arrival
    threshold_s: float
    signal: Signal = Signal.DATA


@dataclass
class _Minute:
    minute: int
    back: dict[str, float] = field(default_factory=dict)
    silent: dict[str, float] = field(default_factory=dict)
    messages: int = 0


class PresenceTracker:
    """Per container. `observe` after each batch; a shard's minute is written when a batch of a later minute
    arrives (or on `flush`). A failed write keeps the minute pending and is tried again with the next batch.
    A "minute" is `policy.period_s` long (60 s as deployed; a stage may shorten it, docs/offline-watch.md);
    `roster_every_min` counts periods."""

    def __init__(
        self,
        ledger: PresenceLedger,
        policy: PresencePolicy,
        owner: str,
        clock: Callable[[], float],
        roster_every_min: int = 60,
    ) -> None:
        self._ledger = ledger
        self.policy = self._policy = policy
        self._owner = owner
        self._clock = clock
        self._roster_every = roster_every_min
        self._watch: dict[str, Watch] = {}
        self._shard_of: dict[str, str] = {}
        self._heap: list[tuple[float, str]] = []
        self._silent: set[str] = set()  # called silent by this container, not heard since
        self._pending: dict[str, list[_Minute]] = {}  # shard -> minutes not yet written (oldest first)
        self._seeded: set[str] = set()
        self._fresh: set[str] = set()  # shards whose first summary is still to be written
        self._roster_at: dict[str, int] = {}
        self.writes = 0

    def observe(self, sightings: Iterable[Sighting]) -> None:
        now = self._clock()
        minute = int(now // self._policy.period_s)
        for sighting in sightings:
            self._seed(sighting.shard)
            self._sight(sighting, self._buffer(sighting.shard, minute))
        self._expire(now, minute)
        self._write_due(minute)

    def flush(self) -> None:
        """Write every pending minute, the current one included."""
        now = self._clock()
        self._expire(now, int(now // self._policy.period_s))
        self._write_due(None)

    @property
    def tracked(self) -> int:
        return len(self._watch)

    # --- internals -------------------------------------------------------------------------------------------

    def _seed(self, shard: str) -> None:
        """A new container takes a shard over from its latest roster: devices that stay silent are then reported
        by this container too (one query per shard per container)."""
        if shard in self._seeded:
            return
        self._seeded.add(shard)
        self._fresh.add(shard)
        roster = self._ledger.latest_roster(shard)
        if roster is None:
            return
        grace = self._policy.disconnect_grace_s
        for device, (last_seen, threshold) in roster.devices.items():
            if device not in self._watch:
                watch = self._watch[device] = Watch(last_seen, threshold)
                self._shard_of[device] = shard
                heapq.heappush(self._heap, (deadline(watch, grace), device))

    def _buffer(self, shard: str, minute: int) -> _Minute:
        pending = self._pending.setdefault(shard, [])
        if not pending or pending[-1].minute < minute:
            pending.append(_Minute(minute))
        return pending[-1]

    def _sight(self, sighting: Sighting, buffer: _Minute) -> None:
        device, grace = sighting.device_id, self._policy.disconnect_grace_s
        previous = self._watch.get(device)
        if sighting.signal is Signal.DATA:
            buffer.messages += 1
            late = previous is not None and sighting.at > deadline(previous, grace)
            if device in self._silent or previous is None or late:
                buffer.back[device] = sighting.at
                buffer.silent.pop(device, None)
                self._silent.discard(device)
        watch = self._watch[device] = observe(previous, sighting.signal, sighting.at, sighting.threshold_s)
        self._shard_of[device] = sighting.shard
        if watch != previous:
            heapq.heappush(self._heap, (deadline(watch, grace), device))

    def _expire(self, now: float, minute: int) -> None:
        """Pop the deadlines that passed (work in proportion to deadlines, not to the devices watched)."""
        heap, grace = self._heap, self._policy.disconnect_grace_s
        while heap and heap[0][0] < now:
            due, device = heapq.heappop(heap)
            watch = self._watch.get(device)
            if watch is None or deadline(watch, grace) != due or device in self._silent:
                continue  # superseded by a later sign of life, or already called
            self._silent.add(device)
            self._buffer(self._shard_of[device], minute).silent[device] = watch.last_seen

    def _write_due(self, current: int | None) -> None:
        for shard, pending in self._pending.items():
            while pending and (current is None or pending[0].minute < current):
                buffer = pending[0]
                try:
                    self._write(shard, buffer)
                except Exception:
                    return
                pending.pop(0)

    def _write(self, shard: str, buffer: _Minute) -> None:
        summary = ShardSummary(
            shard=shard,
            minute=buffer.minute,
            owner=self._owner,
            fresh=shard in self._fresh,
            back=tuple(sorted(buffer.back.items())),
            silent=tuple(sorted(buffer.silent.items())),
            messages=buffer.messages,
            tracked=sum(1 for s in self._shard_of.values() if s == shard) if shard in self._fresh else 0,
        )
        last_roster = self._roster_at.get(shard)
        if last_roster is None or buffer.minute - last_roster >= self._roster_every:
            watched = self._watch.items()
            devices = {d: (w.last_seen, w.threshold_s) for d, w in watched if self._shard_of[d] == shard}
            self._ledger.put_roster(ShardRoster(shard, buffer.minute, devices))
            self._roster_at[shard] = buffer.minute
            self.writes += 1
        self._ledger.put_summary(summary)
        self._fresh.discard(shard)
        self.writes += 1
