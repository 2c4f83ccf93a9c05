"""The run: start the platform, start the watchers (the feed, the state machine's executions) and the people, let
the fleet publish, drain, read the summary, write it and print it. The platform always stops.

The drain never judges by the clock what the platform has not had the time to do: it waits on conditions, each
bounded and giving up when nothing moves (`local.waiting.wait_while_moving`), so a busy machine makes the run
longer, not wrong.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Hashable, Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from chalicelib.domain.lifecycle import ActionType, Role
from chalicelib.domain.texts import short_enterprise
from local import runtime
from local.actors import ActorCrew, ActorEvent
from local.demo.checks import with_verdict
from local.demo.deadlines import DECLARATION_SWEEP_EVERY_S, OFFLINE_WATCH_EVERY_S, demo_policy
from local.demo.declarations import DeclarationCases, DeclaredOutage
from local.demo.evaluation import evaluate_demo
from local.demo.live_lines import (
    Progress,
    actor_lines,
    archive_lines,
    declaration_case_line,
    declaration_line,
    delivered_lines,
    escalation_lines,
    feed_lines,
    note_line,
    opening_lines,
    personas_line,
    progress_line,
    shows_reminder,
)
from local.demo.observations import PlatformTables, RunFacts, ingest_totals, online_by_sector, summarise
from local.demo.offline import SilentDevice
from local.demo.options import Options
from local.demo.publishing import CATCH_UP_TIMEOUT_S, STALL_S, FleetPublishing
from local.demo.summary import DemoSummary, OldestRunning, RunOptions, Timings
from local.demo.summary_lines import summary_lines
from local.demo.terminal import Console, pad, sector_zh
from local.feed import (
    AUDIENCE_QUEUES,
    EscalationEntry,
    ExecutionEnd,
    ExecutionWatcher,
    FeedEntry,
    WarningFeed,
    phone_audiences,
    state_transitions,
)
from local.fleet import Fleet, SimMessage
from local.mqtt import Publisher
from local.sfn import execution_history
from local.waiting import wait_while_moving

STORY_TIMEOUT_S = 180.0  # after publishing, at most this long for the closed loop's milestones
SETTLE_TIMEOUT_S = 300.0  # after people stop, at most this long for the feed and deliveries to drain and closures
# to be archived (a quiet machine needs seconds; the stall bound gives up sooner when nothing moves)
PUBLISH_TIMEOUT_S = 60.0  # for the broker to acknowledge every message published
PROGRESS_EVERY_S = 5.0
FLEET_SEED = 1
_QUIET_LOGGERS = ("dayingji", "local", "amqtt", "transitions", "werkzeug", "botocore", "pynamodb")


def run(options: Options, out: TextIO) -> DemoSummary:
    """Start the platform, run the live fleet, print the feed and the summary, write the summary's JSON."""
    console = Console(out, options.colour)
    with _quiet_platform():
        began, started_at = time.monotonic(), datetime.now(UTC)
        console.lines(opening_lines(options, console))
        platform = runtime.start(
            policy_json=json.dumps(demo_policy(options.fast)),
            offline_watch_interval_s=OFFLINE_WATCH_EVERY_S,
            declaration_sweep_interval_s=DECLARATION_SWEEP_EVERY_S,
        )
        try:
            startup_s = time.monotonic() - began
            registry = platform.registry
            console.line(
                f"platform up in {startup_s:.1f} s: {len(registry.devices)} devices, "
                f"{len(registry.enterprises)} enterprises, API on {platform.api_url}"
            )
            demo = LiveDemo(platform, options, console)
            console.line(personas_line(demo.crew.personas))
            console.line("live feed from the audience queues, the API and the state machine:")
            demo.run()
            facts = demo.facts(started_at=started_at, startup_s=startup_s, began=began)
            summary = summarise(facts, platform, demo.tables)
            console.line(note_line("the duty officer evaluates the demo's window (POST /evaluations)", console))
            evaluated = evaluate_demo(
                platform.api_url,
                started_at.timestamp(),
                [enterprise.enterprise_id for enterprise in registry.enterprises],
                demo.tables.warnings(),
                options.report_dir,
            )
            records = demo.tables.warnings()
            scenes = {
                "evaluation": evaluated,
                "declaration": demo.declared.outcome(records),
                "offline": demo.silent.outcome(records),
                "declarations": demo.cases.outcome(demo.tables.receipts),
                "online_by_sector": online_by_sector(started_at.timestamp(), time.time()),
            }
            summary = with_verdict(summary.model_copy(update=scenes))
            summary.write(options.summary_path)
            console.lines(summary_lines(summary, console, written_to=options.summary_path))
            return summary
        finally:
            platform.stop()


class LiveDemo:
    """The fleet, the people and the watchers on a running platform, and the live feed they print."""

    def __init__(self, platform: runtime.LocalPlatform, options: Options, console: Console) -> None:
        self.platform = platform
        self.options = options
        self.console = console
        self.started = time.monotonic()
        self.tables = PlatformTables(platform)
        fleet = Fleet(platform.registry, seed=FLEET_SEED)
        self.silent = SilentDevice(platform.registry, fleet, options.step_s)
        self.publishing = FleetPublishing(
            fleet,
            console,
            step_s=options.step_s,
            steps=options.publishing_steps,
            accounted=self._accounted,
            on_poll=self._poll,
            muted=self.silent.muted,
        )
        self._publisher: Publisher | None = None
        self.declared = DeclaredOutage(platform.api_url, platform.registry)
        self.cases = DeclarationCases(platform.api_url, platform.registry)
        self.publishing_s = 0.0
        self.drain_s = 0.0
        self._last_progress = self.started
        self._names = {e.enterprise_id: short_enterprise(e.name) for e in platform.registry.enterprises}
        self._lock = threading.Lock()
        self._deliveries_caught_up = False  # the delivery queue was empty once after people stopped
        self.actor_events: list[ActorEvent] = []
        self._closed: dict[str, ActorEvent] = {}  # warning id -> the action that closed it
        self._labels: dict[str, str] = {}  # warning id -> "sector enterprise", for the archive lines
        urls = {audience: platform.infra.queue_url(logical) for audience, logical in AUDIENCE_QUEUES.items()}
        self.feed = WarningFeed(
            platform.client("sqs"),
            urls,
            platform.sms_messages,
            phone_audiences(platform.registry),
            self._show,
            on_escalation=self._show_escalation,
            receipts=delivery_receipts,
            on_delivered=self._show_delivered,
        )
        self.crew = ActorCrew(platform.api_url, platform.registry, self._on_action, options.actor_timing)
        self.executions = ExecutionWatcher(
            platform.client("stepfunctions"),
            platform.infra.state_machine_arn("DisposalStateMachine"),
            self._show_end,
            since=time.time() - 5,
        )

    def run(self) -> None:
        self.feed.start()
        self.executions.start()
        self.crew.start()
        publisher = self._publisher = self.platform.publisher("dyj-demo-fleet")
        try:
            self.declared.declare_and_approve()
            self.console.line(declaration_line(self.declared.scene, self.console))
            for case in self.cases.declare():
                self.console.line(declaration_case_line(case, self.console))
            publishing_started = time.monotonic()
            self.publishing.publish(publisher)
            self.publishing.send(publisher, self.declared.mismatch_message(time.time()))
            self.publishing_s = time.monotonic() - publishing_started
            self._drain(publisher)
        finally:
            publisher.close()
            self.crew.stop()
            self.feed.stop()
            self.executions.stop()
        self.executions.poll_once()

    def facts(self, *, started_at: datetime, startup_s: float, began: float) -> RunFacts:
        """What the run kept, with its timings; `began` is the monotonic time the platform began to start."""
        now = time.monotonic()
        with self._lock:
            events = list(self.actor_events)
        return RunFacts(
            options=RunOptions(
                duration_s=self.options.duration_s,
                step_s=self.options.step_s,
                fast=self.options.fast,
                publishing_steps=self.options.publishing_steps,
            ),
            timings=Timings(
                started_at=started_at,
                startup_s=round(startup_s, 3),
                publishing_s=round(self.publishing_s, 3),
                fleet_waited_s=round(self.publishing.waited_s, 3),
                drain_s=round(self.drain_s, 3),
                run_s=round(now - self.started, 3),
                total_s=round(now - began, 3),
            ),
            published_good=self.publishing.published_good,
            bad=list(self.publishing.bad),
            feed=self.feed.stats(),
            actor_events=events,
            personas=dict(self.crew.personas),
            ended=self.executions.ended(),
            oldest_running=self._oldest_running(),
        )

    def _oldest_running(self) -> OldestRunning | None:
        running = [e for e in self.executions.executions() if e["status"] == "RUNNING"]
        if not running:
            return None
        oldest = min(running, key=lambda execution: execution["startDate"])
        history = execution_history(self.platform.client("stepfunctions"), str(oldest["executionArn"]))
        return OldestRunning(execution=str(oldest["name"]), transitions=state_transitions(history))

    # --- draining

    def _drain(self, publisher: Publisher) -> None:
        """Wait on conditions, each bounded (and giving up when nothing moves), never for a fixed time:

        1. every published message accounted for (people still act);
        2. the closed loop's milestones seen: a tier-3 escalation, a closure confirmed by the duty centre, an
           archived warning (their deadlines run in real time from raises that a busy machine makes late);
        3. people stop acting; the platform settled, every closed warning archived and the feed drained.
        A wait that gives up leaves the rest to the checks, which then say what is missing."""
        drain_started = time.monotonic()
        self.console.line(
            note_line("publishing stopped; waiting until every message is accounted for", self.console)
        )
        publisher.wait_all_published(timeout=PUBLISH_TIMEOUT_S)
        self._wait(self._platform_settled, self._accounted, STALL_S, CATCH_UP_TIMEOUT_S)
        self._wait(self._story_told, self._story_progress, STORY_TIMEOUT_S, STORY_TIMEOUT_S)
        self.crew.stop()
        self.console.line(note_line("people stop acting; draining", self.console))
        self._deliveries_caught_up = False
        settled_since: list[float] = []

        def settled_and_shown() -> bool:
            caught_up = self._delivery_backlog() == 0
            settled = self._platform_settled() and not self._closed_not_archived() and caught_up
            if not settled:
                settled_since.clear()
                return False
            if not settled_since:
                settled_since.append(time.monotonic())
            return self.feed.drained_since(settled_since[0])

        self._wait(settled_and_shown, self._settle_progress, STALL_S, SETTLE_TIMEOUT_S)
        self.drain_s = time.monotonic() - drain_started
        self._progress()

    def _wait(
        self, done: Callable[[], bool], progress: Callable[[], Hashable], stall_s: float, timeout_s: float
    ) -> bool:
        poll = self._poll
        return wait_while_moving(done, progress, stall_s=stall_s, timeout_s=timeout_s, on_poll=poll)

    def _accounted(self) -> int:
        """Published messages that reached an end: graded, quarantined, or refused by the rule (error action)."""
        totals = ingest_totals()
        return totals["graded"] + totals["quarantined"] + self.platform.bridge.counters.errored

    def _story_told(self) -> bool:
        """The closed loop's milestones the checks look for, and a closure confirmed by the duty centre."""
        if not self.feed.stats().escalations_by_tier[3]:
            return False
        with self._lock:
            confirmed = any(
                event.role is Role.DUTY and event.action is ActionType.CONFIRM_CLOSURE and event.closed
                for event in self._closed.values()
            )
        return confirmed and any(end.archived for end in self.executions.ended()) and self.silent.done()

    def _story_progress(self) -> tuple[int, ...]:
        stats = self.feed.stats()
        with self._lock:
            actions = len(self.actor_events)
        return len(stats.entries), len(stats.escalations), actions, len(self.executions.ended()), self.silent.phase

    def _settle_progress(self) -> tuple[int, ...]:
        """Moving while messages are graded, closures archived, the feed shows changes and escalations, or the
        delivery backlog shrinks (a busy machine can leave minutes of SMS queued behind the last change). The
        reminders of the warnings left open go on for ever: they are not progress."""
        stats = self.feed.stats()
        with self._lock:
            actions = len(self.actor_events)
        return (
            self._accounted(),
            len(self._closed_not_archived()),
            len(stats.entries),
            sum(stats.escalations_by_tier.values()),
            actions,
            len(self.executions.ended()),
            self.silent.phase,
            self._delivery_backlog(),
        )

    def _platform_settled(self) -> bool:
        """Every published message reached the bridge and was settled, and the handler took all it forwarded."""
        counters = self.platform.bridge.counters
        totals = ingest_totals()
        handled = totals["graded"] + totals["quarantined"] + totals["presence"] + len(self.platform.failures)
        return (
            counters.received >= self.publishing.published
            and counters.settled >= counters.received
            and handled >= counters.forwarded
        )

    def _delivery_backlog(self) -> int:
        """Delivery jobs queued or in hand, until the queue has once been empty after people stopped: then every
        job of what they saw was handled (its SMS sent), and the reminders that keep coming are not waited for."""
        if self._deliveries_caught_up:
            return 0
        waiting = self._deliveries_waiting()
        self._deliveries_caught_up = waiting == 0
        return waiting

    def _deliveries_waiting(self) -> int:
        """Delivery jobs queued or being handled."""
        attributes = self.platform.client("sqs").get_queue_attributes(
            QueueUrl=self.platform.infra.queue_url("DeliveryQueue"),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def _closed_not_archived(self) -> set[str]:
        archived = {end.warning_id for end in self.executions.ended() if end.archived}
        with self._lock:
            return set(self._closed) - archived

    # --- live output

    def _show(self, entry: FeedEntry) -> None:
        self.silent.heard(entry.change)
        self.console.lines(feed_lines(entry, self.console))
        self.crew.nudge(str(entry.change.get("enterprise_id", "")))  # the app's push notification

    def _show_escalation(self, entry: EscalationEntry) -> None:
        self.crew.nudge(entry.enterprise_id)
        if entry.is_reminder and not shows_reminder(entry.ordinal):
            return
        enterprise = self._names.get(entry.enterprise_id, entry.enterprise_id)
        self.console.lines(escalation_lines(entry, self.console, enterprise))

    def _show_delivered(self, entry: EscalationEntry) -> None:
        """The SMS of an escalation shown before its delivery receipts came."""
        enterprise = self._names.get(entry.enterprise_id, entry.enterprise_id)
        self.console.lines(delivered_lines(entry, self.console, enterprise))

    def _on_action(self, event: ActorEvent) -> None:
        enterprise_id = str(event.before.get("enterprise_id", ""))
        enterprise = self._names.get(enterprise_id, enterprise_id)
        with self._lock:
            self.actor_events.append(event)
            sector = sector_zh(str(event.before.get("sector", "")))
            self._labels[event.warning_id] = f"{pad(sector, 10)} {enterprise}"
            if event.closed:
                self._closed[event.warning_id] = event
        self.console.lines(actor_lines(event, self.console, enterprise))

    def _show_end(self, end: ExecutionEnd) -> None:
        with self._lock:
            label = self._labels.get(end.warning_id, pad("", 10))
        self.console.lines(archive_lines(end, self.console, label))

    def _poll(self) -> None:
        """Between the fleet's messages and in the drain's waits: the silent device's scene, the progress line."""
        if self._publisher is not None:
            bridge = self.platform.bridge
            said = self.silent.tick(bridge.publish_as_broker, self._send_scene_report, self.publishing.step)
            if said:
                self.console.line(note_line(said, self.console))
        self._maybe_progress()

    def _send_scene_report(self, message: SimMessage) -> None:
        assert self._publisher is not None
        self.publishing.send(self._publisher, message)

    def _maybe_progress(self) -> None:
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._progress()

    def _progress(self) -> None:
        self._last_progress = time.monotonic()
        totals = ingest_totals()
        stats = self.feed.stats()
        with self._lock:
            actions, closed = len(self.actor_events), len(self._closed)
        progress = Progress(
            elapsed_s=time.monotonic() - self.started,
            published=self.publishing.published,
            bad=len(self.publishing.bad),
            graded=totals["graded"],
            quarantined=totals["quarantined"],
            raised=stats.raised,
            changes=len(stats.entries),
            sms=stats.sms_total,
            escalations_by_tier=stats.escalations_by_tier,
            reminders=stats.reminders,
            actions=actions,
            closed=closed,
            archived=sum(1 for end in self.executions.ended() if end.archived),
        )
        self.console.line(progress_line(progress, self.console))


def delivery_receipts(warning_id: str) -> list[dict[str, Any]]:
    """A warning's delivery receipts (the deliver function's record of every SMS and inbox entry)."""
    from chalicelib.adapters.delivery_store import read_receipts
    from chalicelib.bootstrap import base

    base()  # the tables bound, as the handlers have them
    return read_receipts(warning_id)


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def _quiet_platform() -> Iterator[None]:
    """Keep the terminal for the feed: the handlers log every batch with rejects (the feed says it better) and
    print CloudWatch EMF metric blobs to stdout (the Console keeps the real stream), and Chalice's local server
    logs every request to stderr (the feed prints the actions). Warnings still show."""
    from chalice.local import ChaliceRequestHandler

    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    had_own = "log_message" in vars(ChaliceRequestHandler)
    saved = vars(ChaliceRequestHandler).get("log_message")
    ChaliceRequestHandler.log_message = _no_request_log
    try:
        with contextlib.redirect_stdout(_Discard()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            yield
    finally:
        if had_own:
            ChaliceRequestHandler.log_message = saved
        else:
            del ChaliceRequestHandler.log_message
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _no_request_log(handler: Any, format: str, *args: Any) -> None:
    return None
