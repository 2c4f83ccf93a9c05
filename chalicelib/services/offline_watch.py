"""The offline watch (docs/offline-watch.md), every minute: read the shard-minute summaries since the last run,
notice silent shards, decide offline/online transitions by the domain, emit each once. Reads are in proportion to
the summaries and to the devices named in them, never to the fleet.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger

from chalicelib.domain.declarations import Declaration, suppressing
from chalicelib.domain.presence import Presence, Signal, Watch, deadline, transition
from chalicelib.observability import INHERIT, SERVICE
from chalicelib.services.ports import (
    OfflineRecord,
    OfflineSink,
    OfflineState,
    OfflineTransition,
    PresenceLedger,
    WatchState,
)

logger = Logger(service=SERVICE, child=True, level=INHERIT)


@dataclass
class WatchReport:
    minutes: list[int] = field(default_factory=list)
    summaries: int = 0
    candidates: int = 0  # devices named (silent or back) after netting per device
    raised: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    silent_shards: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # transitions to apply again (the cursor stays)


class OfflineWatch:
    def __init__(
        self,
        ledger: PresenceLedger,
        state: OfflineState,
        sink: OfflineSink,
        declarations: Callable[[], Sequence[Declaration]],
        clock: Callable[[], float],
        shard_silence_s: float = 180.0,
        lag_min: int = 2,
        max_minutes: int = 60,
        disconnect_grace_s: float = 60.0,
        outage_ended: Callable[[str, float, float], None] | None = None,
        period_s: float = 60.0,
    ) -> None:
        """`period_s`: the summaries' minute (the tracker's `PresencePolicy.period_s`); `lag_min` and
        `max_minutes` count such periods."""
        self._ledger = ledger
        self._state = state
        self._sink = sink
        self._declarations = declarations
        self._clock = clock
        self._shard_silence_s = shard_silence_s
        self._lag = lag_min
        self._max_minutes = max_minutes
        self._grace = disconnect_grace_s
        self._outage_ended = outage_ended  # the online-time ledger (services/online_ledger.py: `closed`)
        self._period_s = period_s
        self._run_declarations: Sequence[Declaration] | None = None

    def run(self) -> WatchReport:
        self._run_declarations = None
        now = self._clock()
        last = int(now // self._period_s) - self._lag  # a minute is written by the first batch of a later one
        state = self._state.load() or WatchState(cursor=last - 1)
        report = WatchReport(minutes=list(range(max(state.cursor + 1, last - self._max_minutes + 1), last + 1)))
        latest: dict[str, tuple[Signal, float]] = {}  # device -> its last word in these minutes
        for minute in report.minutes:
            for summary in self._ledger.summaries(minute):
                report.summaries += 1
                state.shards[summary.shard] = max(minute, state.shards.get(summary.shard, minute))
                state.silent_shards.pop(summary.shard, None)
                # a device named in both spoke, then fell silent (data after the silence clears it from
                # `silent` in the tracker): its silence is its last word
                for device, at in summary.back:
                    latest[device] = (Signal.DATA, at)
                for device, since in summary.silent:
                    latest[device] = (Signal.SILENCE, since)
        self._silent_shards(state, last, now, latest, report)
        report.candidates = len(latest)
        self._apply(latest, now, report, state)
        self._excuses_ended(state, now, report)
        self._regrade(state, now)
        if not report.failed:
            state.cursor = max(state.cursor, last)
        self._state.save(state)  # last: a crashed run reads the same minutes again (transitions are idempotent)
        return report

    def _silent_shards(
        self,
        state: WatchState,
        last: int,
        now: float,
        latest: dict[str, tuple[Signal, float]],
        report: WatchReport,
    ) -> None:
        """A shard without a summary for `shard_silence_s`: its roster's devices past their threshold become
        offline candidates; the roster is read again at the next deadline of a device on it (until none is left).
        """
        for shard, seen in state.shards.items():
            due = state.silent_shards.get(shard)
            if due is None:
                if (last - seen) * self._period_s < self._shard_silence_s:
                    continue
                report.silent_shards.append(shard)
                logger.error("a stream shard sent no summary", extra={"shard": shard, "last_minute": seen})
            elif now <= due:
                continue
            roster = self._ledger.latest_roster(shard)
            upcoming = math.inf
            for device, (last_seen, threshold) in (roster.devices if roster else {}).items():
                at = deadline(Watch(last_seen, threshold), self._grace)
                if now > at:
                    if device not in latest and (due is None or at >= due):
                        latest[device] = (Signal.SILENCE, last_seen)
                else:
                    upcoming = min(upcoming, at)
            state.silent_shards[shard] = upcoming

    def _apply(
        self, latest: dict[str, tuple[Signal, float]], now: float, report: WatchReport, state: WatchState
    ) -> None:
        """Each transition told to the sink first, then recorded: a failure leaves the device as it was and the
        run's minutes unread (`report.failed`), so the next run applies it again (the sink is idempotent)."""
        if not latest:
            return
        offline = self._state.offline(latest)
        for device, (signal, at) in sorted(latest.items()):
            record = offline.get(device)
            current = Presence.OFFLINE if record is not None else Presence.ONLINE
            after = transition(current, signal)
            try:
                if after is Presence.OFFLINE:
                    excuse = suppressing(self._open_declarations(), device, now)
                    rising = excuse is None and self._sink.offline(OfflineTransition(device, now, at))
                    if excuse is not None:
                        self._sink.suppressed(OfflineTransition(device, now, at), excuse.declaration_id)
                    self._state.mark_offline(OfflineRecord(device, at, excuse.declaration_id if excuse else None))
                    if rising:
                        state.regrading[device] = at
                    if excuse is None:
                        report.raised.append(device)
                    else:
                        state.suppressed[device] = excuse.declaration_id
                        report.suppressed.append(device)
                elif after is Presence.ONLINE and record is not None:
                    if record.suppressed_by is None:
                        self._sink.online(OfflineTransition(device, now, at, offline_since=record.since))
                    if self._outage_ended is not None:
                        self._outage_ended(device, record.since, at)
                    self._state.mark_online(device)
                    state.suppressed.pop(device, None)
                    state.regrading.pop(device, None)
                    report.recovered.append(device)
            except Exception:
                logger.exception("offline transition failed: tried again next run", extra={"device_id": device})
                report.failed.append(device)

    def _excuses_ended(self, state: WatchState, now: float, report: WatchReport) -> None:
        """The offline devices a declaration excused (a bounded set, kept in the state): when none excuses them any
        more (the window ended, the declaration was rejected or withdrawn) and they are still offline, their
        offline warning is raised now. One declarations read per run, only while there are such devices."""
        if not state.suppressed:
            return
        declarations = self._open_declarations()
        ended = [d for d in sorted(state.suppressed) if suppressing(declarations, d, now) is None]
        if not ended:
            return
        offline = self._state.offline(ended)
        for device in ended:
            record = offline.get(device)
            try:
                if record is not None:
                    if self._sink.offline(OfflineTransition(device, now, record.since)):
                        state.regrading[device] = record.since
                    self._state.mark_offline(OfflineRecord(device, record.since, None))
                    report.raised.append(device)
                del state.suppressed[device]
            except Exception:
                logger.exception("offline warning after a declaration failed: tried again next run")
                report.failed.append(device)

    def _regrade(self, state: WatchState, now: float) -> None:
        """Offline vehicles whose level may still rise with their silence (DOMAIN.md §2.1: yellow after a long
        silence, red in a restricted zone): asked again every run while the sink says more may come (a bounded
        set: the silent hazardous-goods vehicles)."""
        for device, since in sorted(state.regrading.items()):
            try:
                if not self._sink.regrade(OfflineTransition(device, now, now, offline_since=since)):
                    del state.regrading[device]
            except Exception:
                logger.exception("offline regrade failed: tried again next run", extra={"device_id": device})

    def _open_declarations(self) -> Sequence[Declaration]:
        """Read once per run, when first needed."""
        if self._run_declarations is None:
            self._run_declarations = self._declarations()
        return self._run_declarations
