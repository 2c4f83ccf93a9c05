"""The demo's silent device (docs/offline-watch.md): a gas detector of a silent enterprise stops reporting and IoT
Core's lifecycle says it disconnected; the offline watch raises an `offline` warning (设备离线) through the warning
path (the consoles show it, nobody acknowledges it, it escalates); once the consoles have seen the warning the
device reconnects and reports again, and the watch tells its recovery.

The platform runs with the demo's presence policy (`local.demo.deadlines.demo_policy`): one summary per shard
every few seconds and a disconnect offline after a few seconds, so the scene fits in the short run; the other
devices keep the deployed thresholds (minutes), so a busy machine's slower steps never make them offline.

The scene runs beside the fleet, driven by `tick()` from the run's polls (the fleet's steps and the drain's
waits, one thread): no sleep of its own. Each transition waits on what the consoles saw, bounded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import Any

from chalicelib.domain.changes import OFFLINE, ChangeKind
from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from local.actors import persona_for
from local.demo.summary import OfflineScene
from local.fleet import Fleet, SimMessage
from local.seed import SeedRegistry

SILENT_DEVICE = "HC03-T1-GT3"  # E-HC-03 never acts (actors: silent); no incident or bad message is on it
SILENT_AFTER_STEPS = 1  # it reports in this many steps first (the ingest knows it), then falls silent; IoT Core
# says it disconnected at the next step (its last report is on the stream by then)
RAISE_TIMEOUT_S = 150.0  # from the silence: the offline warning should be on the consoles well before
RECOVER_TIMEOUT_S = 150.0  # from its return: the recovery likewise


class Phase(IntEnum):
    REPORTING = 0
    MUTED = 1  # its reports stopped; the disconnect follows a step later (after its last report on the stream)
    SILENT = 2  # disconnected: waiting for the offline warning
    BACK = 3  # reconnected and reporting: waiting for the recovery
    DONE = 4


def lifecycle_message(device_id: str, event: str, at: float) -> tuple[str, bytes]:
    """What IoT Core publishes when a device's MQTT connection opens or closes (the lifecycle rule's topic)."""
    body: dict[str, Any] = {
        "clientId": device_id,
        "timestamp": int(at * 1000),
        "eventType": event,
        "sessionIdentifier": f"demo-{device_id}",
        "principalIdentifier": f"demo/{device_id}",
        "versionNumber": 0,
    }
    if event == "disconnected":
        body |= {"clientInitiatedDisconnect": False, "disconnectReason": "MQTT_KEEP_ALIVE_TIMEOUT"}
    return f"$aws/events/presence/{event}/{device_id}", json.dumps(body).encode()


class SilentDevice:
    def __init__(self, registry: SeedRegistry, fleet: Fleet, step_s: float) -> None:
        self.reg = registry.by_device[SILENT_DEVICE]
        self._fleet = fleet
        self._step_s = step_s
        self._lock = threading.Lock()
        self.phase = Phase.REPORTING
        self.muted: set[str] = set()  # the fleet skips these devices' reports
        self._silent_at: float | None = None
        self._raised_at: float | None = None
        self._resumed_at: float | None = None
        self._recovered_at: float | None = None
        self._last_report = 0.0
        self._stepped = False  # the fleet has begun its steps
        self._beats = 0
        self.problem: str | None = None

    def heard(self, change: Mapping[str, Any]) -> None:
        """A warning change the consoles saw (the feed's thread)."""
        if change.get("device_id") != SILENT_DEVICE or change.get("risk_type") != OFFLINE:
            return
        with self._lock:
            if change.get("kind") == ChangeKind.RAISE.value and self._raised_at is None:
                self._raised_at = time.time()
            elif change.get("kind") == ChangeKind.RECOVER.value and self._recovered_at is None:
                self._recovered_at = time.time()

    def tick(
        self, lifecycle: Callable[[str, bytes], object], send: Callable[[SimMessage], None], step: int | None
    ) -> str | None:
        """Move the scene on; returns a line for the console when something happened. `lifecycle` publishes what
        IoT Core itself publishes (no client may publish on `$aws/...`: `RuleBridge.publish_as_broker`); `send`
        publishes a reading counted with the fleet's; `step`: the fleet's step under way, None once it has stopped
        (then the scene reports for the device until its recovery is seen: the ingest writes presence summaries
        on batches). Steps, not seconds, decide the silence: a busy machine's fleet waits between steps.
        """
        if self.phase is Phase.DONE:
            return None
        if self.phase is Phase.REPORTING and step is None:
            if self._stepped:  # the fleet stopped before the scene could start
                self.problem, self.phase = f"the run had fewer than {SILENT_AFTER_STEPS + 1} steps", Phase.DONE
            return None
        self._stepped = True
        now = time.time()
        with self._lock:
            raised_at, recovered_at = self._raised_at, self._recovered_at
        if self.phase is Phase.REPORTING and step is not None and step >= SILENT_AFTER_STEPS:
            self.muted.add(SILENT_DEVICE)
            self._silent_at = now
            self.phase = Phase.MUTED
            return f"离线 {SILENT_DEVICE} stops reporting"
        if self.phase is Phase.MUTED and (step is None or step > SILENT_AFTER_STEPS):
            lifecycle(*lifecycle_message(SILENT_DEVICE, "disconnected", now))
            self.phase = Phase.SILENT
            return (
                f"离线 {SILENT_DEVICE}: IoT Core reports it disconnected; the offline watch should raise 设备离线"
            )
        if self.phase is Phase.SILENT and self._silent_at is not None:
            if raised_at is None and now < self._silent_at + RAISE_TIMEOUT_S:
                return None
            if raised_at is None:
                self.problem = f"no offline warning within {RAISE_TIMEOUT_S:.0f} s of the silence"
            lifecycle(*lifecycle_message(SILENT_DEVICE, "connected", now))
            self.muted.discard(SILENT_DEVICE)
            self._resumed_at = self._last_report = now
            self.phase = Phase.BACK
            return f"离线 {SILENT_DEVICE} reconnects and reports again; the offline watch should tell its recovery"
        if self.phase is Phase.BACK and self._resumed_at is not None:
            if recovered_at is not None:
                self.phase = Phase.DONE
                return None
            if now >= self._resumed_at + RECOVER_TIMEOUT_S:
                self.problem = self.problem or f"no recovery within {RECOVER_TIMEOUT_S:.0f} s of its return"
                self.phase = Phase.DONE
                return None
            if step is None and now >= self._last_report + self._step_s:
                self._last_report = now
                self._beats += 1
                send(self._fleet.report(self.reg, 1000 + self._beats, now))
        return None

    def done(self) -> bool:
        return self.phase is Phase.DONE

    def outcome(self, records: Sequence[WarningRecord]) -> OfflineScene:
        """The offline warning of the device as the Warning table holds it, and what the scene saw."""
        mine = [r for r in records if r.device_id == SILENT_DEVICE and r.risk_type == OFFLINE]
        record = max(mine, key=lambda r: r.raised_at) if mine else None
        problem = self.problem
        if record is None and problem is None:
            problem = "no offline warning in the Warning table"
        with self._lock:
            raised_at, recovered_at = self._raised_at, self._recovered_at
        return OfflineScene(
            device_id=SILENT_DEVICE,
            enterprise_id=self.reg.enterprise_id,
            persona=persona_for(self.reg.enterprise_id).value,
            silent_at=self._silent_at,
            raised_at=raised_at,
            resumed_at=self._resumed_at,
            recovered_at=recovered_at,
            warning_id=record.warning_id if record else None,
            peak_level=Level(record.peak_level).code if record else None,
            escalation_tier=int((record.details or {}).get("escalation_tier", 0)) if record else 0,
            reading_normal=bool(record and record.reading_normal),
            status=WarningStatus(record.status).value if record else None,
            problem=problem,
        )
