"""The demo's silent device (local/demo/offline.py) over fakes: steps, not seconds, decide the silence; IoT Core's
disconnect comes a step after its last report; it reports again once the consoles saw the offline warning, and
after the fleet has stopped the scene reports for it until the recovery shows."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.changes import OFFLINE
from local.demo.offline import SILENT_AFTER_STEPS, SILENT_DEVICE, Phase, SilentDevice
from local.fleet import Fleet, SimMessage
from local.seed import SeedRegistry, load_seed


@pytest.fixture(scope="module")
def registry() -> SeedRegistry:
    return load_seed()


class Scene:
    def __init__(self, registry: SeedRegistry) -> None:
        self.device = SilentDevice(registry, Fleet(registry), step_s=0.0)
        self.lifecycle: list[tuple[str, dict[str, object]]] = []
        self.sent: list[SimMessage] = []

    def tick(self, step: int | None) -> str | None:
        return self.device.tick(
            lambda topic, body: self.lifecycle.append((topic, json.loads(body))), self.sent.append, step
        )

    def heard(self, kind: str) -> None:
        self.device.heard({"device_id": SILENT_DEVICE, "risk_type": OFFLINE, "kind": kind})


def test_the_device_falls_silent_by_steps_and_disconnects_a_step_later(registry: SeedRegistry) -> None:
    scene = Scene(registry)
    for step in range(SILENT_AFTER_STEPS):
        assert scene.tick(step) is None
    assert scene.device.muted == set()
    assert scene.tick(SILENT_AFTER_STEPS) is not None
    assert scene.device.muted == {SILENT_DEVICE} and scene.lifecycle == []
    scene.tick(SILENT_AFTER_STEPS)  # the same step: its last report may not be on the stream yet
    assert scene.lifecycle == []
    scene.tick(SILENT_AFTER_STEPS + 1)
    [(topic, body)] = scene.lifecycle
    assert topic == f"$aws/events/presence/disconnected/{SILENT_DEVICE}"
    assert body["clientId"] == SILENT_DEVICE and body["eventType"] == "disconnected"
    assert scene.device.phase is Phase.SILENT


def test_it_reconnects_once_the_warning_shows_and_reports_until_the_recovery_after_the_fleet_stopped(
    registry: SeedRegistry,
) -> None:
    scene = Scene(registry)
    for step in range(SILENT_AFTER_STEPS + 2):
        scene.tick(step)
    scene.tick(SILENT_AFTER_STEPS + 2)
    assert scene.device.phase is Phase.SILENT  # nothing seen yet: stays silent
    scene.device.heard({"device_id": "HC03-T1-GT1", "risk_type": OFFLINE, "kind": "raise"})  # another device
    scene.tick(SILENT_AFTER_STEPS + 2)
    assert scene.device.phase is Phase.SILENT
    scene.heard("raise")
    scene.tick(SILENT_AFTER_STEPS + 3)
    assert scene.lifecycle[-1][1]["eventType"] == "connected" and scene.device.muted == set()
    scene.tick(SILENT_AFTER_STEPS + 4)
    assert scene.sent == []  # the fleet reports for it while it publishes
    scene.tick(None)
    scene.tick(None)
    assert [m.device_id for m in scene.sent] == [SILENT_DEVICE] * 2  # the fleet stopped: the scene reports
    scene.heard("recover")
    scene.tick(None)
    assert scene.device.done() and len(scene.sent) == 2


def test_a_run_too_short_for_the_scene_ends_it_with_a_problem(registry: SeedRegistry) -> None:
    scene = Scene(registry)
    scene.tick(None)  # before the first step: waits
    assert not scene.device.done()
    scene.tick(0)
    scene.tick(None)
    assert scene.device.done() and scene.device.problem is not None
    assert scene.device.outcome([]).warning_id is None
