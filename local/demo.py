"""`make demo`: the whole platform on this machine, with the fleet reporting live over MQTT (docs/demo.md).

    .venv/bin/python -m local.demo [--duration SECONDS] [--step SECONDS] [--no-colour]

Starts the local runtime, has every registered device report once per step (scripted incidents and one message of
every bad kind mixed in), prints each warning change as the audience consoles receive it (with the SMS sent), then
drains and prints a summary that checks itself: every message accounted for, every bad message quarantined with its
expected reason, every level raised in every sector. The exit code is non-zero when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import threading
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TextIO

from chalicelib.domain.changes import CHANGE_KIND_ZH, DATA_QUALITY, ChangeKind
from chalicelib.domain.levels import LEVEL_BY_CODE, Level, Sector
from chalicelib.domain.policy import Audience
from chalicelib.domain.rejections import RejectReason
from local import runtime
from local.feed import AUDIENCE_QUEUES, FeedEntry, FeedStats, WarningFeed, phone_audiences
from local.fleet import INCIDENTS, Fleet, SimMessage
from local.mqtt import Publisher

DEFAULT_DURATION_S = 150.0
DEFAULT_STEP_S = 4.0
DRAIN_S = 10.0
BAD_MESSAGES_AT_STEP = 2
PROGRESS_EVERY_S = 5.0
SPREAD = 0.9  # reports are spread over this share of a step, like a real fleet
FLEET_SEED = 1
STEPS_FOR_EVERY_LEVEL = max(incident.start_step + min(incident.steps, 2) for incident in INCIDENTS)
"""Every scripted incident has raised by then (a breach raises on its second consecutive reading)."""

CST = timezone(timedelta(hours=8))
LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
_QUIET_LOGGERS = ("dayingji", "local", "amqtt", "transitions", "werkzeug", "botocore", "pynamodb")


# --------------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    duration_s: float = DEFAULT_DURATION_S
    step_s: float = DEFAULT_STEP_S
    colour: bool = True

    @property
    def drain_s(self) -> float:
        """The tail of the run that only drains: at most DRAIN_S, and never more than a quarter of it."""
        return min(DRAIN_S, self.duration_s / 4)

    @property
    def publishing_steps(self) -> int:
        return int((self.duration_s - self.drain_s) // self.step_s)


def parse_args(argv: Sequence[str] | None = None, out: TextIO | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo", description="The whole platform locally, with a live fleet (docs/demo.md)."
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="SECONDS",
        help=f"whole run after start-up, the last {DRAIN_S:g} s only drain (default {DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--step",
        type=float,
        default=DEFAULT_STEP_S,
        metavar="SECONDS",
        help=f"every device reports once per step (default {DEFAULT_STEP_S:g})",
    )
    parser.add_argument("--no-colour", "--no-color", action="store_true", help="plain text, no ANSI colours")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.step <= 0:
        parser.error("--duration and --step must be positive")
    stream = out or sys.stdout
    colour = not args.no_colour and "NO_COLOR" not in os.environ and stream.isatty()
    return Options(duration_s=args.duration, step_s=args.step, colour=colour)


# --------------------------------------------------------------------------------------------------- output

_COLOURS = {
    "blue": "\033[34m",
    "yellow": "\033[33m",
    "orange": "\033[38;5;208m",
    "red": "\033[31m",
    "none": "\033[32m",
    "bold": "\033[1m",
    "dim": "\033[2m",
}
_RESET = "\033[0m"


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    fill = " " * max(0, width - display_width(text))
    return fill + text if right else text + fill


class Console:
    """Thread-safe line printer (the feed thread and the main thread both print)."""

    def __init__(self, out: TextIO, colour: bool) -> None:
        self._out = out
        self._colour = colour
        self._lock = threading.Lock()

    def paint(self, text: str, style: str) -> str:
        return f"{_COLOURS[style]}{text}{_RESET}" if self._colour and style in _COLOURS else text

    def line(self, text: str = "") -> None:
        with self._lock:
            self._out.write(text + "\n")
            self._out.flush()


def audience_zh(audience: str) -> str:
    try:
        return Audience(audience).zh
    except ValueError:
        return "未知号码"


def level_zh(code: str) -> str:
    return Level(LEVEL_BY_CODE.get(code, Level.NONE)).zh


def local_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(CST).strftime("%H:%M:%S")


def feed_lines(entry: FeedEntry, console: Console) -> list[str]:
    """Two lines per change: level, kind, sector and the SMS text; then who received it and the SMS sent."""
    change = entry.change
    kind = str(change.get("kind", ""))
    style = "none" if kind in (ChangeKind.LEVEL_DOWN.value, ChangeKind.RECOVER.value) else entry.level
    try:
        sector = Sector(str(change.get("sector"))).zh
    except ValueError:
        sector = str(change.get("sector"))
    kind_zh = CHANGE_KIND_ZH.get(ChangeKind(kind), kind) if kind in set(ChangeKind) else kind
    if change.get("risk_type") == DATA_QUALITY:
        kind_zh = f"{kind_zh}·数据质量"
    head = f"{local_time(float(change.get('at', 0.0)))}  {pad(level_zh(entry.level), 4)} {pad(kind_zh, 12)}"
    first = console.paint(f"{head} {pad(sector, 10)} {entry.sms}", style)
    consoles = "/".join(audience_zh(a) for a in AUDIENCE_QUEUES if a in entry.delivered_to) or "无"
    sent = sum(entry.sms_sent.values())
    planned = sum(entry.planned_sms.values())
    by_audience = ", ".join(f"{audience_zh(a)} {n}" for a, n in _ordered(entry.sms_sent))
    sms = f"短信 {sent} 条" + (f" ({by_audience})" if by_audience else "")
    if sent != planned:
        sms += f"  应发 {planned} 条"
    routing = "" if entry.routing_matches else f"  ⚠ 路由 {'/'.join(entry.routed)}"
    return [first, console.paint(f"{'':10}→ 送达 {consoles} · {sms}{routing}", "dim")]


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    order = [*AUDIENCE_QUEUES, *sorted(set(counts) - set(AUDIENCE_QUEUES))]
    return [(audience, counts[audience]) for audience in order if counts[audience]]


# --------------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class BadCheck:
    message: SimMessage
    got: str  # the reason it was quarantined with, "" when it was not quarantined

    @property
    def ok(self) -> bool:
        return self.got == self.message.expected_reject


@dataclass
class DemoSummary:
    published_good: int = 0
    published_bad: int = 0
    graded: int = 0
    quarantined: int = 0
    rule_errors: int = 0
    in_flight: int = 0
    in_flight_detail: dict[str, int] = field(default_factory=dict)
    quarantine_rows: Counter[str] = field(default_factory=Counter)  # by reason, from the Quarantine table
    expected_reasons: Counter[str] = field(default_factory=Counter)
    bad_checks: list[BadCheck] = field(default_factory=list)
    unexpected_quarantine: list[dict[str, Any]] = field(default_factory=list)
    raised: Counter[tuple[Sector, Level]] = field(default_factory=Counter)  # warnings by sector and level reached
    data_quality: int = 0
    changes: Counter[str] = field(default_factory=Counter)
    sms_by_audience: Counter[str] = field(default_factory=Counter)
    sms_planned: int = 0
    routing_mismatches: int = 0
    elapsed_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def published(self) -> int:
        return self.published_good + self.published_bad

    @property
    def empty_cells(self) -> list[tuple[Sector, Level]]:
        return [(sector, level) for sector in Sector for level in LEVELS if not self.raised[(sector, level)]]

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0


def check_quarantine(
    bad: Sequence[SimMessage], rows: Sequence[dict[str, Any]]
) -> tuple[list[BadCheck], list[dict[str, Any]]]:
    """Match each bad message to its quarantined row (same topic and bytes); rows left over were not expected."""
    unmatched: dict[tuple[str, bytes], list[dict[str, Any]]] = {}
    for row in rows:
        unmatched.setdefault((str(row.get("topic")), bytes(row["payload"])), []).append(row)
    checks: list[BadCheck] = []
    for message in bad:
        if not message.expected_reject:
            continue
        candidates = unmatched.get((message.topic, message.payload), [])
        exact = [row for row in candidates if row["reason"] == message.expected_reject]
        matched = (exact or candidates)[:1]
        for row in matched:
            candidates.remove(row)
        checks.append(BadCheck(message, str(matched[0]["reason"]) if matched else ""))
    leftover = [row for group in unmatched.values() for row in group]
    return checks, leftover


def summary_lines(summary: DemoSummary, console: Console) -> list[str]:
    def bold(text: str) -> str:
        return console.paint(text, "bold")

    lines = ["", bold(f"══ 演示小结 summary ({summary.elapsed_s:.0f} s) " + "═" * 60)]
    lines.append(
        f"消息 messages: published {summary.published:,} (good {summary.published_good:,} / "
        f"bad {summary.published_bad}) · graded {summary.graded:,} · quarantined {summary.quarantined} · "
        f"rule errors {summary.rule_errors}"
    )
    lines += _quarantine_lines(summary, console)
    lines += _warning_lines(summary, console)
    sms = " · ".join(f"{audience_zh(a)} {n}" for a, n in _ordered(summary.sms_by_audience)) or "none"
    total = sum(summary.sms_by_audience.values())
    lines += ["", bold("短信 SMS sent by audience"), f"  {sms} · total {total} (planned {summary.sms_planned})"]
    lines += ["", bold("ACCOUNTING") + " " + accounting_line(summary)]
    verdict = "OK: every check passed" if not summary.problems else "FAILED: " + "; ".join(summary.problems)
    lines.append(console.paint(verdict, "none" if not summary.problems else "red"))
    return lines


def accounting_line(summary: DemoSummary) -> str:
    equation = (
        f"published {summary.published:,} = graded {summary.graded:,} + quarantined {summary.quarantined} + "
        f"rule errors {summary.rule_errors} + still in flight {summary.in_flight}"
    )
    if summary.in_flight == 0:
        return f"{equation} → every message accounted for"
    detail = ", ".join(f"{name} {count}" for name, count in summary.in_flight_detail.items() if count)
    return f"{equation} → UNACCOUNTED: {summary.in_flight} ({detail or 'counted more than published'})"


def _quarantine_lines(summary: DemoSummary, console: Console) -> list[str]:
    lines = ["", console.paint("隔离 quarantine by reason (Quarantine table)", "bold")]
    lines.append(
        f"  {pad('reason', 24)}{pad('原因', 28)}{pad('expected', 10, right=True)}{pad('got', 6, right=True)}"
    )
    for reason in RejectReason:
        expected, got = summary.expected_reasons[reason.value], summary.quarantine_rows[reason.value]
        mark = "✓" if expected == got else "✗"
        lines.append(
            f"  {pad(reason.value, 24)}{pad(reason.zh, 28)}{pad(str(expected), 10, right=True)}"
            f"{pad(str(got), 6, right=True)}  {mark}"
        )
    wrong = [check for check in summary.bad_checks if not check.ok]
    good = len(summary.bad_checks) - len(wrong)
    lines.append(f"  bad messages with exactly their expected reason: {good}/{len(summary.bad_checks)}")
    for check in wrong:
        lines.append(
            f"    ✗ {check.message.device_id}: expected {check.message.expected_reject}, "
            f"got {check.got or 'not quarantined'}"
        )
    for row in summary.unexpected_quarantine[:10]:
        lines.append(f"    ✗ unexpected: {row.get('reason')} {row.get('device_id')} {str(row.get('detail'))[:60]}")
    return lines


def _warning_lines(summary: DemoSummary, console: Console) -> list[str]:
    title = "预警 warnings by sector × level reached (raised at or raised to; Warning tables"
    lines = ["", console.paint(f"{title}; data-quality findings apart: {summary.data_quality})", "bold")]
    header = "".join(console.paint(pad(level.zh, 8, right=True), level.code) for level in LEVELS)
    lines.append(f"  {pad('sector', 30)}{header}")
    for sector in Sector:
        cells = "".join(
            pad(str(summary.raised[(sector, level)]) if summary.raised[(sector, level)] else "·", 8, right=True)
            for level in LEVELS
        )
        lines.append(f"  {pad(f'{sector.zh} {sector.value}', 30)}{cells}")
    kinds = " · ".join(f"{kind} {summary.changes[kind]}" for kind in ChangeKind if summary.changes[kind])
    lines.append(f"  changes seen on the consoles: {kinds or 'none'}")
    if summary.routing_mismatches:
        lines.append(f"  ⚠ {summary.routing_mismatches} change(s) reached other queues than their route")
    return lines


# --------------------------------------------------------------------------------------------------- the run


class _Demo:
    def __init__(self, platform: runtime.LocalPlatform, options: Options, console: Console) -> None:
        self.platform = platform
        self.options = options
        self.console = console
        self.fleet = Fleet(platform.registry, seed=FLEET_SEED)
        self.started = time.monotonic()
        self.started_wall = time.time()
        self.published_good = 0
        self.bad: list[SimMessage] = []
        self._held: list[SimMessage] = []
        self._last_progress = self.started
        self._quarantine_before = {row["received_id"] for row in self._quarantine_rows()}
        self._warnings_before = {record.warning_id for record in self._warnings()}
        sqs = platform.client("sqs")
        urls = {audience: platform.infra.queue_url(logical) for audience, logical in AUDIENCE_QUEUES.items()}
        self.feed = WarningFeed(sqs, urls, platform.sms_messages, phone_audiences(platform.registry), self._show)

    @property
    def published(self) -> int:
        return self.published_good + len(self.bad)

    def run(self) -> DemoSummary:
        self.feed.start()
        publisher = self.platform.publisher("dyj-demo-fleet")
        try:
            self._publish(publisher)
            self._drain(publisher)
        finally:
            publisher.close()
            self.feed.stop()
        summary = self._summarise()
        for line in summary_lines(summary, self.console):
            self.console.line(line)
        return summary

    # --- publishing

    def _publish(self, publisher: Publisher) -> None:
        step_s = self.options.step_s
        for step in range(self.options.publishing_steps):
            self._sleep_until(self.started + step * step_s)
            at = time.time()
            for message in self.fleet.step(step, at, spread_s=step_s * SPREAD):
                self._sleep_until(self.started + (message.at - self.started_wall))
                self._send(publisher, message)
                self._send_due(publisher, time.time())
            if step == BAD_MESSAGES_AT_STEP:
                self._publish_bad(publisher)
        self._send_due(publisher, float("inf"))

    def _send(self, publisher: Publisher, message: SimMessage) -> None:
        publisher.publish(message.topic, message.payload)
        if message.expected_reject:
            self.bad.append(message)
        else:
            self.published_good += 1

    def _send_due(self, publisher: Publisher, now: float) -> None:
        """Send the held messages whose time has come (a device resending a message later)."""
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
        later = f"; {len(self._held)} resent a few seconds later" if self._held else ""
        self.console.line(
            self.console.paint(
                f"{'':10}⚑ sending {sum(reasons.values())} bad messages ({len(reasons)} reasons: "
                f"{', '.join(sorted(reasons))}{later}): each must end in the quarantine with its reason",
                "dim",
            )
        )

    def _sleep_until(self, monotonic_deadline: float) -> None:
        while True:
            self._maybe_progress()
            remaining = monotonic_deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.5))

    # --- draining

    def _drain(self, publisher: Publisher) -> None:
        deadline = self.started + self.options.duration_s
        self.console.line(self.console.paint(f"{'':10}■ publishing stopped; draining", "dim"))
        publisher.wait_all_published(timeout=max(1.0, deadline - time.monotonic()))
        settled_at: float | None = None
        while time.monotonic() < deadline:
            self._maybe_progress()
            if not self._platform_settled():
                settled_at = None
            elif settled_at is None:
                settled_at = time.monotonic()
            elif self.feed.drained_since(settled_at):
                break
            time.sleep(0.1)
        self._progress()

    def _platform_settled(self) -> bool:
        """Every published message reached the bridge and was settled, and the handler took all it forwarded."""
        counters = self.platform.bridge.counters
        totals = _ingest_totals()
        handled = totals["graded"] + totals["quarantined"] + totals["presence"] + len(self.platform.failures)
        return (
            counters.received >= self.published
            and counters.settled >= counters.received
            and handled >= counters.forwarded
        )

    # --- live output

    def _show(self, entry: FeedEntry) -> None:
        for line in feed_lines(entry, self.console):
            self.console.line(line)

    def _maybe_progress(self) -> None:
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._progress()

    def _progress(self) -> None:
        self._last_progress = time.monotonic()
        totals = _ingest_totals()
        stats = self.feed.stats()
        changes = len(stats.entries)
        self.console.line(
            self.console.paint(
                f"[{time.monotonic() - self.started:5.0f} s] published {self.published:,} (bad {len(self.bad)}) · "
                f"graded {totals['graded']:,} · quarantined {totals['quarantined']} · "
                f"warnings {stats.raised} raised / {changes} changes · SMS {stats.sms_total}",
                "bold",
            )
        )

    # --- reading the tables

    def _days(self) -> list[str]:
        start = datetime.fromtimestamp(self.started_wall - 60, CST)
        end = datetime.fromtimestamp(time.time() + 60, CST)
        days = {start.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")}
        return sorted(days)

    def _quarantine_rows(self) -> list[dict[str, Any]]:
        from chalicelib.adapters.dynamo import DynamoQuarantine

        return [row for day in self._days() for row in DynamoQuarantine.by_day(day)]

    @staticmethod
    def _warnings() -> list[Any]:
        from chalicelib.adapters.dynamo import DynamoWarningStore

        return DynamoWarningStore.scan_all()

    def _summarise(self) -> DemoSummary:
        totals = _ingest_totals()
        counters = self.platform.bridge.counters
        stats = self.feed.stats()
        summary = DemoSummary(
            published_good=self.published_good,
            published_bad=len(self.bad),
            graded=totals["graded"],
            quarantined=totals["quarantined"],
            rule_errors=counters.errored,
            elapsed_s=time.monotonic() - self.started,
        )
        summary.in_flight = summary.published - summary.graded - summary.quarantined - summary.rule_errors
        handled = summary.graded + summary.quarantined + totals["presence"]
        summary.in_flight_detail = {
            "not yet at the rule bridge": max(0, summary.published - counters.received),
            "queued in the bridge": counters.received - counters.settled,
            "on the stream": max(0, counters.forwarded - handled - len(self.platform.failures)),
            "dropped after retries": len(self.platform.failures),
        }
        self._summarise_quarantine(summary)
        self._summarise_warnings(summary, stats)
        summary.problems = _problems(summary)
        return summary

    def _summarise_quarantine(self, summary: DemoSummary) -> None:
        rows = [row for row in self._quarantine_rows() if row["received_id"] not in self._quarantine_before]
        summary.quarantine_rows = Counter(str(row["reason"]) for row in rows)
        summary.expected_reasons = Counter(message.expected_reject or "" for message in self.bad)
        summary.bad_checks, summary.unexpected_quarantine = check_quarantine(self.bad, rows)

    def _summarise_warnings(self, summary: DemoSummary, stats: FeedStats) -> None:
        from chalicelib.adapters.dynamo import DynamoWarningStore

        for record in self._warnings():
            if record.warning_id in self._warnings_before:
                continue
            if record.risk_type == DATA_QUALITY:
                summary.data_quality += 1
                continue
            for level in levels_reached(DynamoWarningStore.events(record.warning_id)):
                summary.raised[(record.sector, level)] += 1
        summary.changes = Counter(entry.kind for entry in stats.entries)
        summary.sms_by_audience = stats.sms_by_audience
        summary.sms_planned = sum(sum(entry.planned_sms.values()) for entry in stats.entries)
        summary.routing_mismatches = sum(1 for entry in stats.entries if not entry.routing_matches)


def levels_reached(events: Sequence[dict[str, Any]]) -> set[Level]:
    """The levels a warning was raised at or raised to, from its engine events."""
    raising = {f"engine.{ChangeKind.RAISE.value}", f"engine.{ChangeKind.LEVEL_UP.value}"}
    return {
        Level(LEVEL_BY_CODE[event["data"]["level"]])
        for event in events
        if event["type"] in raising and event["data"].get("level") in LEVEL_BY_CODE
    } - {Level.NONE}


def _problems(summary: DemoSummary) -> list[str]:
    problems: list[str] = []
    if summary.in_flight:
        problems.append(f"{summary.in_flight} message(s) unaccounted for")
    if summary.empty_cells:
        cells = ", ".join(f"{sector.value}/{level.code}" for sector, level in summary.empty_cells)
        problems.append(f"no warning raised for {cells}")
    wrong = sum(1 for check in summary.bad_checks if not check.ok)
    if wrong:
        problems.append(f"{wrong} bad message(s) without exactly their expected reason")
    if summary.unexpected_quarantine:
        problems.append(f"{len(summary.unexpected_quarantine)} message(s) quarantined unexpectedly")
    recorded = sum(summary.quarantine_rows.values())
    if recorded != summary.quarantined:
        problems.append(f"handler quarantined {summary.quarantined}, Quarantine table holds {recorded}")
    return problems


def _ingest_totals() -> Counter[str]:
    from chalicelib.bootstrap import container

    return container().ingest.totals


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def _quiet_platform() -> Iterator[None]:
    """Keep the terminal for the feed: the handlers log every batch with rejects (the feed says it better) and
    print CloudWatch EMF metric blobs to stdout (the Console keeps the real stream). Warnings still show."""
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(_Discard()), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No application metrics to publish")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def run(options: Options, out: TextIO | None = None) -> DemoSummary:
    """Start the platform, run the live fleet, print the feed and the summary; the platform always stops."""
    console = Console(out or sys.stdout, options.colour)
    with _quiet_platform():
        begun = time.monotonic()
        console.line(console.paint("dayingji 大应急 — local platform demo", "bold"))
        steps = options.publishing_steps
        console.line(
            f"starting moto, MQTT broker, rule bridge and stream poller… then {steps} steps of "
            f"{options.step_s:g} s ({options.duration_s:g} s in all, the last {options.drain_s:g} s drain)"
        )
        if steps < STEPS_FOR_EVERY_LEVEL:
            console.line(
                console.paint(
                    f"note: the scripted incidents need {STEPS_FOR_EVERY_LEVEL} steps to reach every level in "
                    f"every sector; this run has {steps}",
                    "yellow",
                )
            )
        platform = runtime.start()
        try:
            console.line(
                f"platform up in {time.monotonic() - begun:.1f} s: {len(platform.registry.devices)} devices, "
                f"{len(platform.registry.enterprises)} enterprises; live feed from the audience queues:"
            )
            return _Demo(platform, options, console).run()
        finally:
            platform.stop()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    options = parse_args(argv, out)
    try:
        return run(options, out).exit_code
    except KeyboardInterrupt:
        (out or sys.stdout).write("\ninterrupted; the platform was stopped\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
