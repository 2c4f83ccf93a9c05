"""The fleet publishing live over MQTT: one report per device per step, the bad messages at one step, and the
back-pressure that keeps a busy machine's run slower rather than wrong."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from local.demo.live_lines import bad_messages_line, behind_line
from local.demo.terminal import Console
from local.fleet import Fleet, SimMessage
from local.mqtt import Publisher
from local.waiting import wait_while_moving

BEHIND_BY_STEPS = 1.0  # before a step, the fleet waits while more than this many steps of messages are in flight
STALL_S = 45.0  # a wait on the platform gives up when nothing has moved for this long (stuck, not slow)
CATCH_UP_TIMEOUT_S = 300.0  # at most this long before one step, and for the messages in flight after publishing
BAD_MESSAGES_AT_STEP = 2
SPREAD = 0.9  # reports are spread over this share of a step, like a real fleet


class FleetPublishing:
    """Publishes the fleet's steps and counts what it sent; `accounted()` says how many reached an end."""

    def __init__(
        self,
        fleet: Fleet,
        console: Console,
        *,
        step_s: float,
        steps: int,
        accounted: Callable[[], int],
        on_poll: Callable[[], None],
        muted: set[str] | None = None,
    ) -> None:
        self.fleet = fleet
        self.console = console
        self.step_s = step_s
        self.steps = steps
        self.accounted = accounted
        self.on_poll = on_poll
        self.published_good = 0
        self.bad: list[SimMessage] = []
        self.waited_s = 0.0  # the fleet waiting for the platform to catch up
        self._held: list[SimMessage] = []  # sent later than generated (a device resending a message)
        self.muted = muted if muted is not None else set()  # devices whose reports a scene holds back (silent)
        self.step: int | None = None  # the step being published; None before the first and after the last

    @property
    def published(self) -> int:
        return self.published_good + len(self.bad)

    def in_flight(self) -> int:
        return self.published - self.accounted()

    def publish(self, publisher: Publisher) -> None:
        """One report per device per step; a step starts `step_s` after the previous one, and not before the
        platform is at most `BEHIND_BY_STEPS` behind: a backlog would reach the engine long after the readings'
        timestamps, and the incidents, the deadlines and the people would no longer tell the story."""
        allowed_in_flight = int(BEHIND_BY_STEPS * len(self.fleet.devices))
        next_step_at = time.monotonic()
        try:
            self._publish_steps(publisher, allowed_in_flight, next_step_at)
        finally:
            self.step = None

    def _publish_steps(self, publisher: Publisher, allowed_in_flight: int, next_step_at: float) -> None:
        for step in range(self.steps):
            self._sleep_until(next_step_at)
            self._wait_until_caught_up(allowed_in_flight)
            step_started, at = time.monotonic(), time.time()
            self.step = step
            for message in self.fleet.step(step, at, spread_s=self.step_s * SPREAD):
                if message.device_id in self.muted:
                    continue
                self._sleep_until(step_started + (message.at - at))
                self._send(publisher, message)
                self._send_due(publisher, time.time())
            if step == BAD_MESSAGES_AT_STEP:
                self._publish_bad(publisher)
            next_step_at = step_started + self.step_s
        self._send_due(publisher, float("inf"))

    def _wait_until_caught_up(self, allowed_in_flight: int) -> None:
        if self.in_flight() <= allowed_in_flight:
            return
        started = time.monotonic()
        caught_up = wait_while_moving(
            lambda: self.in_flight() <= allowed_in_flight,
            self.accounted,
            stall_s=STALL_S,
            timeout_s=CATCH_UP_TIMEOUT_S,
            on_poll=self.on_poll,
        )
        self.waited_s += time.monotonic() - started
        if not caught_up:
            self.console.line(behind_line(self.in_flight(), self.console))

    def send(self, publisher: Publisher, message: SimMessage) -> None:
        """One message outside the fleet's steps (a scene's), counted like the others."""
        self._send(publisher, message)

    def _send(self, publisher: Publisher, message: SimMessage) -> None:
        publisher.publish(message.topic, message.payload)
        if message.expected_reject:
            self.bad.append(message)
        else:
            self.published_good += 1

    def _send_due(self, publisher: Publisher, now: float) -> None:
        while self._held and self._held[0].at <= now:
            self._send(publisher, self._held.pop(0))

    def _publish_bad(self, publisher: Publisher) -> None:
        now = time.time()
        messages = self.fleet.bad_messages(now)
        for message in messages:
            if message.at <= now:
                self._send(publisher, message)
            else:
                self._held.append(message)
        self._held.sort(key=lambda message: message.at)
        reasons = Counter(m.expected_reject for m in messages if m.expected_reject)
        self.console.line(bad_messages_line(reasons, len(self._held), self.console))

    def _sleep_until(self, monotonic_deadline: float) -> None:
        while True:
            self.on_poll()
            remaining = monotonic_deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.5))
