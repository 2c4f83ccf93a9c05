"""`make demo`: the whole platform on this machine, with the fleet reporting live over MQTT and simulated people
closing the loop through the API (docs/demo.md).

    .venv/bin/python -m local.demo [--duration SECONDS] [--step SECONDS] [--fast] [--no-colour]

Starts the local runtime with seconds-scale deadlines, has every registered device report once per step (scripted
incidents and one message of every bad kind mixed in), and lets the enterprise apps and the duty console
(`local/actors.py`) act on the warnings over HTTP with real tokens: some in time, some late, some never. The feed
prints each warning change as the audience consoles receive it (with the SMS sent), every escalation and reminder
the disposal workflow (Step Functions, the real ASL) publishes, every action taken through the API, closures and
archives. Then it drains and prints a summary that checks itself: every message accounted for, every bad message
quarantined with its expected reason, every level raised in every sector, and the closed loop shown: a tier-3
escalation, a closure and an archived warning. The exit code is non-zero when a check fails.

On a busy machine the platform (one Python process) handles fewer messages per second than the fleet publishes.
The demo never judges by the clock what the platform has not had the time to do: before each step the fleet waits
while the platform is more than a step behind (so that readings reach the engine within seconds of their
timestamps, as the story and the deadlines assume), and the drain waits on conditions (every message accounted
for, the closed loop's milestones seen, closed warnings archived), each bounded and giving up when nothing moves.
A busy machine makes the run longer, not wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import sys
import threading
import time
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TextIO

from chalicelib.domain.changes import CHANGE_KIND_ZH, DATA_QUALITY, ChangeKind
from chalicelib.domain.levels import LEVEL_BY_CODE, Level, Sector
from chalicelib.domain.lifecycle import (
    CLEAR_REASON_ZH,
    ESCALATION_TIER_ZH,
    VERIFICATION_ZH,
    ActionType,
    ClearReason,
    EscalationTier,
    Role,
    VerificationOutcome,
)
from chalicelib.domain.policy import Audience
from chalicelib.domain.rejections import RejectReason
from chalicelib.domain.texts import short_enterprise
from chalicelib.domain.warnings import WarningStatus
from local import runtime
from local.actors import ActorCrew, ActorEvent, ActorTiming, Persona
from local.feed import (
    AUDIENCE_QUEUES,
    EscalationEntry,
    ExecutionEnd,
    ExecutionWatcher,
    FeedEntry,
    FeedStats,
    WarningFeed,
    phone_audiences,
    state_transitions,
)
from local.fleet import INCIDENTS, Fleet, SimMessage
from local.mqtt import Publisher
from local.sfn import execution_history
from local.waiting import wait_while_moving

DEFAULT_DURATION_S = 150.0
DEFAULT_STEP_S = 4.0
DRAIN_S = 10.0
BEHIND_BY_STEPS = 1.0  # before a step, the fleet waits while more than this many steps of messages are in flight
STALL_S = 45.0  # a wait on the platform gives up when nothing has moved for this long (stuck, not slow)
CATCH_UP_TIMEOUT_S = 300.0  # at most this long before one step, and for the messages in flight after publishing
STORY_TIMEOUT_S = 180.0  # after publishing, at most this long for the closed loop's milestones
SETTLE_TIMEOUT_S = 90.0  # after people stop, at most this long for the feed to drain and closures to be archived
PUBLISH_TIMEOUT_S = 60.0  # for the broker to acknowledge every message published
BAD_MESSAGES_AT_STEP = 2
PROGRESS_EVERY_S = 5.0
SPREAD = 0.9  # reports are spread over this share of a step, like a real fleet
FLEET_SEED = 1
STEPS_FOR_EVERY_LEVEL = max(incident.start_step + min(incident.steps, 2) for incident in INCIDENTS)
"""Every scripted incident has raised by then (a breach raises on its second consecutive reading)."""

CST = timezone(timedelta(hours=8))
LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
_QUIET_LOGGERS = ("dayingji", "local", "amqtt", "transitions", "werkzeug", "botocore", "pynamodb")

# --------------------------------------------------------------------------------------------------- the clock

DEADLINES_S: Mapping[str, tuple[int, int, int, int]] = {
    "red": (15, 30, 50, 8),
    "orange": (20, 40, 70, 10),
    "yellow": (25, 50, 90, 12),
    "blue": (30, 60, 120, 15),
}
"""Per level: acknowledge, verify + feed back, clear, reminder interval (seconds, counted from the raise).
DOMAIN.md §4 in minutes and hours becomes seconds, keeping the order of the levels, so that within the default run
a silent red (raised by ~75 s) reaches tier 3 (~125 s) and a silent orange its clear deadline (tier 2 again)."""
CONFIRM_S: Mapping[str, int] = {"red": 40, "orange": 50}
"""The duty centre's confirmation of an orange/red clear request (DOMAIN.md §4: 30 min, 1 h), in seconds."""
SWEEP_GRACE_S = 20
FAST_DEADLINES_S: Mapping[str, tuple[int, int, int, int]] = {
    "red": (5, 10, 18, 3),
    "orange": (7, 14, 25, 4),
    "yellow": (9, 18, 32, 5),
    "blue": (10, 20, 40, 6),
}
FAST_CONFIRM_S: Mapping[str, int] = {"red": 12, "orange": 15}
"""`--fast` (tests): the same story about three times faster (the timers sleep until each due time: no polling)."""
FAST_ACTOR_PACE = 1 / 2


def demo_policy(fast: bool) -> dict[str, Any]:
    """The policy overrides the platform runs with (DYJ_POLICY_JSON): deadlines and the workflow's clock."""
    table = FAST_DEADLINES_S if fast else DEADLINES_S
    confirm = FAST_CONFIRM_S if fast else CONFIRM_S
    deadlines: dict[str, dict[str, int]] = {
        level: {"acknowledge_s": ack, "verify_s": verify, "clear_s": clear, "reminder_s": reminder}
        for level, (ack, verify, clear, reminder) in table.items()
    }
    for level, seconds in confirm.items():
        deadlines[level]["confirm_s"] = seconds
    workflow = {"sweep_grace_s": SWEEP_GRACE_S}
    return {"deadlines": deadlines, "workflow": workflow}


def deadlines_line(fast: bool) -> str:
    table = FAST_DEADLINES_S if fast else DEADLINES_S
    levels = " · ".join(
        f"{level_zh(level)} {ack}/{verify}/{clear} s (提醒 {reminder} s)"
        for level, (ack, verify, clear, reminder) in table.items()
    )
    confirm = FAST_CONFIRM_S if fast else CONFIRM_S
    confirms = " · ".join(f"{level_zh(level)} {seconds} s" for level, seconds in confirm.items())
    return f"deadlines 签收/核实反馈/消警: {levels}; 确认消警: {confirms}; timers sleep until each due time"


# --------------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    duration_s: float = DEFAULT_DURATION_S
    step_s: float = DEFAULT_STEP_S
    colour: bool = True
    fast: bool = False

    @property
    def drain_s(self) -> float:
        """The tail of the run kept for draining: at most DRAIN_S, and never more than a quarter of it. It sets the
        number of publishing steps; the drain itself lasts until everything has settled (bounded)."""
        return min(DRAIN_S, self.duration_s / 4)

    @property
    def publishing_steps(self) -> int:
        return int((self.duration_s - self.drain_s) // self.step_s)

    @property
    def actor_timing(self) -> ActorTiming:
        timing = ActorTiming()
        return timing.scaled(FAST_ACTOR_PACE) if self.fast else timing


def parse_args(argv: Sequence[str] | None = None, out: TextIO | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m local.demo", description="The whole platform locally, with a live fleet (docs/demo.md)."
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION_S,
        metavar="SECONDS",
        help=(
            f"the run after start-up, the last {DRAIN_S:g} s kept for draining (default {DEFAULT_DURATION_S:g}); "
            "a busy machine makes it longer: the fleet waits for the platform, the drain for every message"
        ),
    )
    parser.add_argument(
        "--step",
        type=float,
        default=DEFAULT_STEP_S,
        metavar="SECONDS",
        help=f"every device reports once per step (default {DEFAULT_STEP_S:g})",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="deadlines and people about three times faster (for short runs and the tests)",
    )
    parser.add_argument("--no-colour", "--no-color", action="store_true", help="plain text, no ANSI colours")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.step <= 0:
        parser.error("--duration and --step must be positive")
    stream = out or sys.stdout
    colour = not args.no_colour and "NO_COLOR" not in os.environ and stream.isatty()
    return Options(duration_s=args.duration, step_s=args.step, colour=colour, fast=args.fast)


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
        self.lines([text])

    def lines(self, texts: Sequence[str]) -> None:
        """Several lines together (another thread's lines never come in between)."""
        with self._lock:
            self._out.write("".join(text + "\n" for text in texts))
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


def sector_zh(code: str) -> str:
    try:
        return Sector(code).zh
    except ValueError:
        return code


REASON_ZH = {
    "acknowledge_overdue": "超时未签收",
    "verify_overdue": "超时未核实反馈",
    "clear_overdue": "超时未消警",
    "not_acknowledged": "尚未签收",
}
TIER_LABEL = {1: "超时升级·一级", 2: "超时升级·二级", 3: "超时升级·三级"}
DETAIL_ZH = {"reached": "已接通", "no_answer": "无人接听", "rejected": "驳回"}


def escalation_lines(entry: EscalationEntry, console: Console, enterprise: str) -> list[str]:
    """An escalation: two lines (what, to whom and the SMS the app sent); a reminder: one line."""
    head = f"{local_time(entry.at)}  {pad(level_zh(entry.level), 4)}"
    sector = pad(sector_zh(str(entry.body.get("sector", ""))), 10)
    who = f"{enterprise} {entry.warning_id}"
    if entry.is_reminder:
        text = f"{head} {pad('催办提醒', 12)} {sector} {who}: {REASON_ZH.get(entry.reason, entry.reason)},"
        return [console.paint(f"{text}第{entry.ordinal}次提醒 → 企业", "dim")]
    tier = entry.tier
    tier_zh = ESCALATION_TIER_ZH[EscalationTier(tier)] if tier in (1, 2, 3) else f"tier {tier}"
    reason = REASON_ZH.get(entry.reason, entry.reason)
    due_at = entry.body.get("due_at")
    when = f"(时限 {local_time(float(due_at))})" if isinstance(due_at, (int, float)) else ""
    label = TIER_LABEL.get(tier, entry.change)
    first = f"{head} {pad(label, 12)} {sector} {who}: {reason}{when} → {tier_zh}"
    consoles = "/".join(audience_zh(a) for a in AUDIENCE_QUEUES if a in entry.delivered_to) or "无"
    sent = sum(entry.sms_sent.values())
    by_audience = ", ".join(f"{audience_zh(a)} {n}" for a, n in _ordered(entry.sms_sent))
    routing = "" if set(entry.routed) == entry.delivered_to else f"  ⚠ 路由 {'/'.join(entry.routed)}"
    second = f"{'':10}→ 送达 {consoles} · 短信 {sent} 条" + (f" ({by_audience})" if by_audience else "") + routing
    return [console.paint(first, "bold" if tier < 3 else "red"), console.paint(second, "dim")]


def shows_reminder(ordinal: int) -> bool:
    """Reminders repeat until someone acknowledges: the feed prints the 1st, the 2nd and every 5th."""
    return ordinal <= 2 or ordinal % 5 == 0


def action_detail_zh(event: ActorEvent) -> str:
    if event.action is ActionType.VERIFY and event.detail in set(VerificationOutcome):
        return VERIFICATION_ZH[VerificationOutcome(event.detail)]
    if event.detail in set(ClearReason):
        return f"原因:{CLEAR_REASON_ZH[ClearReason(event.detail)]}"
    return DETAIL_ZH.get(event.detail, event.detail)


def actor_lines(event: ActorEvent, console: Console, enterprise: str) -> list[str]:
    """One line per action (who, what, the answer); one more, in green, when it closed the warning."""
    before = event.before
    level = level_zh(str(before.get("level", "")))
    sector = pad(sector_zh(str(before.get("sector", ""))), 10)
    detail = action_detail_zh(event)
    what = f"{event.role.zh}{event.action.zh}"
    outcome = (
        f"{WarningStatus(event.after_status).zh}" if event.ok and event.after_status else event.error or "失败"
    )
    text = (
        f"{local_time(event.at)}  {pad(level, 4)} {pad('✎ ' + what, 12)} {sector} {enterprise} {event.warning_id}"
        f"{': ' + detail if detail else ''} → {outcome} · {event.username} HTTP {event.status}"
    )
    lines = [console.paint(text, "dim" if event.ok else "yellow")]
    if event.closed:
        lines.append(
            console.paint(f"{'':10}✔ 消警关闭: {closure_zh(event)} · 发布后 {_since_raise(event)}", "none")
        )
    return lines


def closure_zh(event: ActorEvent) -> str:
    if event.action is ActionType.MARK_FALSE_ALARM:
        return "值守中心判定误报"
    if event.action is ActionType.CONFIRM_CLOSURE:
        return f"值守中心确认消警({action_detail_zh(event)})"
    return f"企业申请消警即关闭({action_detail_zh(event)},读数已正常)"


def _since_raise(event: ActorEvent) -> str:
    raised_at = float(event.before.get("raised_at", event.at))
    return f"{max(0.0, event.at - raised_at):.0f} 秒"


TIMER_DONE = frozenset({"SUCCEEDED", "ABORTED"})
"""A disposal timer that reported its due time, or one stopped because a change superseded it: both normal."""


def archive_lines(end: ExecutionEnd, console: Console, label: str) -> list[str]:
    stopped = local_time(end.stopped_at)
    if end.archived:
        text = f"{stopped}  {pad(level_zh(end.level), 4)} {pad('▣ 归档', 12)} {label} {end.warning_id}: "
        return [console.paint(f"{text}时限计时器到期归档,移出值守大屏", "none")]
    if end.status in TIMER_DONE:  # a timer that fell due (its due item shows as it happens), or one superseded
        return []
    return [console.paint(f"{stopped}  ⚠ 状态机执行 {end.name} {end.status} {end.error}", "red")]


# --------------------------------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class BadCheck:
    message: SimMessage
    got: str  # the reason it was quarantined with, "" when it was not quarantined

    @property
    def ok(self) -> bool:
        return self.got == self.message.expected_reject


@dataclass
class LoopSummary:
    """The closed loop: what the disposal workflow and the people did."""

    personas: Counter[Persona] = field(default_factory=Counter)
    actions: Counter[tuple[Role, ActionType]] = field(default_factory=Counter)  # accepted (2xx)
    answers: Counter[int] = field(default_factory=Counter)  # HTTP statuses of every action
    unexpected_answers: list[str] = field(default_factory=list)  # neither 2xx nor 409
    escalations: Counter[int] = field(default_factory=Counter)  # by tier, as published
    clear_overdue: int = 0  # of which: the clear deadline missed
    reminders: int = 0
    escalation_sms: int = 0
    recorded_tiers: Counter[int] = field(default_factory=Counter)  # warnings by the tier recorded on them
    ack_times: dict[Level, list[float]] = field(default_factory=dict)  # seconds from the raise, by peak level
    clear_times: dict[Level, list[float]] = field(default_factory=dict)
    closures: Counter[str] = field(default_factory=Counter)  # how: enterprise / duty_confirmed / duty_false_alarm
    archived: int = 0
    still_open: Counter[WarningStatus] = field(default_factory=Counter)
    transitions_archived: list[int] = field(default_factory=list)
    oldest_running: tuple[str, int] | None = None  # the execution open longest, and its transitions so far
    failed_executions: list[str] = field(default_factory=list)

    @property
    def closed(self) -> int:
        return sum(self.closures.values())


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
    loop: LoopSummary = field(default_factory=LoopSummary)
    elapsed_s: float = 0.0
    fleet_waited_s: float = 0.0  # the fleet waiting for the platform to catch up (a busy machine)
    drain_s: float = 0.0  # from the end of publishing until everything was settled (or a wait gave up)
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
    lines.append(pace_line(summary))
    lines += _quarantine_lines(summary, console)
    lines += _warning_lines(summary, console)
    sms = " · ".join(f"{audience_zh(a)} {n}" for a, n in _ordered(summary.sms_by_audience)) or "none"
    total = sum(summary.sms_by_audience.values())
    lines += [
        "",
        bold("短信 SMS sent by audience"),
        f"  {sms} · total {total} (warning changes: planned {summary.sms_planned}; "
        f"escalations: {summary.loop.escalation_sms} matched)",
    ]
    lines += loop_lines(summary.loop, console)
    lines += ["", bold("ACCOUNTING") + " " + accounting_line(summary)]
    verdict = "OK: every check passed" if not summary.problems else "FAILED: " + "; ".join(summary.problems)
    lines.append(console.paint(verdict, "none" if not summary.problems else "red"))
    return lines


CLOSURE_HOW_ZH = {
    "enterprise": "企业申请即关闭 (blue/yellow, reading normal)",
    "duty_confirmed": "值守中心确认 confirmed by the duty centre",
    "duty_false_alarm": "值守中心判定误报 marked false alarm",
}


def loop_lines(loop: LoopSummary, console: Console) -> list[str]:
    lines = [
        "",
        console.paint("闭环 closed loop (Step Functions disposal workflow + people through the API)", "bold"),
    ]
    personas = " · ".join(
        f"{persona.zh} {loop.personas[persona]}" for persona in Persona if loop.personas[persona]
    )
    answers = " · ".join(f"{status} {count}" for status, count in sorted(loop.answers.items()))
    lines.append(
        f"  people: {sum(loop.personas.values())} enterprise apps ({personas}) + the duty console · "
        f"{sum(loop.answers.values())} actions (HTTP {answers or 'none'})"
    )
    for role in (Role.ENTERPRISE, Role.DUTY):
        done = " · ".join(
            f"{action.zh} {loop.actions[(role, action)]}" for action in ActionType if loop.actions[(role, action)]
        )
        lines.append(f"    {pad(role.zh, 10)}{done or 'none'}")
    for text in loop.unexpected_answers[:10]:
        lines.append(f"    ✗ {text}")
    tiers = " · ".join(f"tier {tier} {loop.escalations[tier]}" for tier in (1, 2, 3))
    lines.append(
        f"  escalations published: {tiers} (tier 2 for a missed clear deadline: {loop.clear_overdue}) · "
        f"reminders {loop.reminders} · escalation SMS {loop.escalation_sms}"
    )
    recorded = " · ".join(f"tier {tier} {loop.recorded_tiers[tier]}" for tier in (1, 2, 3))
    lines.append(f"  warnings by the escalation tier recorded on them: {recorded}")
    lines.append("  time from the raise, seconds (median / max, n)   签收 acknowledge     消警 clear")
    for level in reversed(LEVELS):
        ack, clear = _stats(loop.ack_times.get(level, [])), _stats(loop.clear_times.get(level, []))
        lines.append(f"    {pad(level.zh, 46)}{pad(ack, 21)}{clear}")
    how = " · ".join(f"{CLOSURE_HOW_ZH.get(k, k)} {n}" for k, n in loop.closures.most_common())
    lines.append(f"  closures {loop.closed}: {how or 'none'}")
    still = " · ".join(
        f"{status.zh} {loop.still_open[status]}" for status in WarningStatus if loop.still_open[status]
    )
    lines.append(
        f"  archived (by their archive timers) {loop.archived} · still open {sum(loop.still_open.values())}"
        + (f" ({still})" if still else "")
    )
    lines.append(f"  state transitions per warning (all its timers, …StateEntered): {transitions_text(loop)}")
    for name in loop.failed_executions:
        lines.append(f"    ✗ execution {name} did not succeed")
    return lines


def transitions_text(loop: LoopSummary) -> str:
    parts = []
    if loop.transitions_archived:
        values = loop.transitions_archived
        parts.append(
            f"a typical closed and archived warning {statistics.median(values):.0f} "
            f"(median of {len(values)}; {min(values)}–{max(values)})"
        )
    if loop.oldest_running:
        name, transitions = loop.oldest_running
        parts.append(f"the oldest running timer ({name}) {transitions} so far")
    return " · ".join(parts) or "no executions"


def _stats(values: Sequence[float]) -> str:
    if not values:
        return "·"
    return f"{statistics.median(values):.0f} / {max(values):.0f} (n {len(values)})"


def pace_line(summary: DemoSummary) -> str:
    """How long the fleet waited for the platform, and the drain: a busy machine shows here, not in the checks."""
    waited = (
        f"the fleet waited {summary.fleet_waited_s:.0f} s in all for the platform to catch up (a busy machine)"
        if summary.fleet_waited_s >= 1
        else "the platform kept up with the fleet"
    )
    return f"  {waited} · drained in {summary.drain_s:.0f} s"


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
        self.fleet_waited_s = 0.0
        self.drain_s = 0.0
        self._quarantine_before = {row["received_id"] for row in self._quarantine_rows()}
        self._warnings_before = {record.warning_id for record in self._warnings()}
        self._names = {e.enterprise_id: short_enterprise(e.name) for e in platform.registry.enterprises}
        self._lock = threading.Lock()
        self.actor_events: list[ActorEvent] = []
        self._closed: dict[str, ActorEvent] = {}  # warning id -> the action that closed it
        self._labels: dict[str, str] = {}  # warning id -> "sector enterprise", for the archive lines
        sqs = platform.client("sqs")
        urls = {audience: platform.infra.queue_url(logical) for audience, logical in AUDIENCE_QUEUES.items()}
        self.feed = WarningFeed(
            sqs,
            urls,
            platform.sms_messages,
            phone_audiences(platform.registry),
            self._show,
            on_escalation=self._show_escalation,
        )
        self.crew = ActorCrew(platform.api_url, platform.registry, self._on_action, options.actor_timing)
        self.executions = ExecutionWatcher(
            platform.client("stepfunctions"),
            platform.infra.state_machine_arn("DisposalStateMachine"),
            self._show_end,
            since=self.started_wall - 5,
        )

    @property
    def published(self) -> int:
        return self.published_good + len(self.bad)

    def run(self) -> DemoSummary:
        self.feed.start()
        self.executions.start()
        self.crew.start()
        publisher = self.platform.publisher("dyj-demo-fleet")
        try:
            self._publish(publisher)
            self._drain(publisher)
        finally:
            publisher.close()
            self.crew.stop()
            self.feed.stop()
            self.executions.stop()
        self.executions.poll_once()
        summary = self._summarise()
        self.console.lines(summary_lines(summary, self.console))
        return summary

    # --- publishing

    def _publish(self, publisher: Publisher) -> None:
        """One report per device per step; a step starts `step_s` after the previous one, and not before the
        platform is at most `BEHIND_BY_STEPS` behind (so a busy machine stretches the run instead of piling up a
        backlog whose readings would reach the engine long after their timestamps)."""
        step_s = self.options.step_s
        allowed_in_flight = int(BEHIND_BY_STEPS * len(self.fleet.devices))
        next_step_at = self.started
        for step in range(self.options.publishing_steps):
            self._sleep_until(next_step_at)
            self._wait_until_caught_up(allowed_in_flight)
            step_started, at = time.monotonic(), time.time()
            for message in self.fleet.step(step, at, spread_s=step_s * SPREAD):
                self._sleep_until(step_started + (message.at - at))
                self._send(publisher, message)
                self._send_due(publisher, time.time())
            if step == BAD_MESSAGES_AT_STEP:
                self._publish_bad(publisher)
            next_step_at = step_started + step_s
        self._send_due(publisher, float("inf"))

    def _wait_until_caught_up(self, allowed_in_flight: int) -> None:
        """Wait while more than `allowed_in_flight` published messages are not yet accounted for (bounded)."""
        if self._in_flight() <= allowed_in_flight:
            return
        started = time.monotonic()
        caught_up = wait_while_moving(
            lambda: self._in_flight() <= allowed_in_flight,
            self._accounted,
            stall_s=STALL_S,
            timeout_s=CATCH_UP_TIMEOUT_S,
            on_poll=self._maybe_progress,
        )
        self.fleet_waited_s += time.monotonic() - started
        if not caught_up:
            self.console.line(
                self.console.paint(
                    f"{'':10}⚠ the platform is {self._in_flight():,} messages behind and not catching up; "
                    "publishing on",
                    "yellow",
                )
            )

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
        """Wait on conditions, each bounded (and giving up when nothing moves), never for a fixed time:

        1. every published message accounted for (people still act);
        2. the closed loop's milestones seen: a tier-3 escalation, a closure confirmed by the duty centre, an
           archived warning (their deadlines run in real time from raises that a busy machine makes late);
        3. people stop acting; the platform settled, every closed warning archived and the feed drained.
        A wait that gives up leaves the rest to the summary's checks, which then say what is missing."""
        drain_started = time.monotonic()
        self.console.line(
            self.console.paint(f"{'':10}■ publishing stopped; waiting until every message is accounted for", "dim")
        )
        publisher.wait_all_published(timeout=PUBLISH_TIMEOUT_S)
        wait_while_moving(
            self._platform_settled,
            self._accounted,
            stall_s=STALL_S,
            timeout_s=CATCH_UP_TIMEOUT_S,
            on_poll=self._maybe_progress,
        )
        wait_while_moving(
            self._story_told,
            self._story_progress,
            stall_s=STORY_TIMEOUT_S,
            timeout_s=STORY_TIMEOUT_S,
            on_poll=self._maybe_progress,
        )
        self.crew.stop()
        self.console.line(self.console.paint(f"{'':10}■ people stop acting; draining", "dim"))
        settled_since: list[float] = []

        def settled_and_shown() -> bool:
            if not (self._platform_settled() and not self._closed_not_archived()):
                settled_since.clear()
                return False
            if not settled_since:
                settled_since.append(time.monotonic())
            return self.feed.drained_since(settled_since[0])

        wait_while_moving(
            settled_and_shown,
            self._settle_progress,
            stall_s=STALL_S,
            timeout_s=SETTLE_TIMEOUT_S,
            on_poll=self._maybe_progress,
        )
        self.drain_s = time.monotonic() - drain_started
        self._progress()

    def _in_flight(self) -> int:
        return self.published - self._accounted()

    def _accounted(self) -> int:
        """Published messages that reached an end: graded, quarantined, or refused by the rule (error action)."""
        totals = _ingest_totals()
        return totals["graded"] + totals["quarantined"] + self.platform.bridge.counters.errored

    def _story_told(self) -> bool:
        """The closed loop's milestones the summary checks: a tier-3 escalation, a closure confirmed by the duty
        centre, and an archived warning."""
        if not self.feed.stats().escalations_by_tier[3]:
            return False
        with self._lock:
            confirmed = any(
                event.role is Role.DUTY and event.action is ActionType.CONFIRM_CLOSURE and event.closed
                for event in self._closed.values()
            )
        return confirmed and any(end.archived for end in self.executions.ended())

    def _story_progress(self) -> tuple[int, ...]:
        stats = self.feed.stats()
        with self._lock:
            actions = len(self.actor_events)
        return len(stats.entries), len(stats.escalations), actions, len(self.executions.ended())

    def _settle_progress(self) -> tuple[int, ...]:
        return (self._accounted(), len(self._closed_not_archived()), *self._story_progress())

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

    def _closed_not_archived(self) -> set[str]:
        archived = {end.warning_id for end in self.executions.ended() if end.archived}
        with self._lock:
            return set(self._closed) - archived

    # --- live output

    def _show(self, entry: FeedEntry) -> None:
        self.console.lines(feed_lines(entry, self.console))
        self.crew.nudge(str(entry.change.get("enterprise_id", "")))  # the app's push notification

    def _show_escalation(self, entry: EscalationEntry) -> None:
        self.crew.nudge(entry.enterprise_id)
        if entry.is_reminder and not shows_reminder(entry.ordinal):
            return
        enterprise = self._names.get(entry.enterprise_id, entry.enterprise_id)
        self.console.lines(escalation_lines(entry, self.console, enterprise))

    def _on_action(self, event: ActorEvent) -> None:
        enterprise_id = str(event.before.get("enterprise_id", ""))
        enterprise = self._names.get(enterprise_id, enterprise_id)
        with self._lock:
            self.actor_events.append(event)
            self._labels[event.warning_id] = (
                f"{pad(sector_zh(str(event.before.get('sector', ''))), 10)} {enterprise}"
            )
            if event.closed:
                self._closed[event.warning_id] = event
        self.console.lines(actor_lines(event, self.console, enterprise))

    def _show_end(self, end: ExecutionEnd) -> None:
        with self._lock:
            label = self._labels.get(end.warning_id, pad("", 10))
        self.console.lines(archive_lines(end, self.console, label))

    def _maybe_progress(self) -> None:
        if time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self._progress()

    def _progress(self) -> None:
        self._last_progress = time.monotonic()
        totals = _ingest_totals()
        stats = self.feed.stats()
        changes = len(stats.entries)
        tiers = stats.escalations_by_tier
        with self._lock:
            actions, closed = len(self.actor_events), len(self._closed)
        archived = sum(1 for end in self.executions.ended() if end.archived)
        self.console.line(
            self.console.paint(
                f"[{time.monotonic() - self.started:5.0f} s] published {self.published:,} (bad {len(self.bad)}) · "
                f"graded {totals['graded']:,} · quarantined {totals['quarantined']} · "
                f"warnings {stats.raised} raised / {changes} changes · SMS {stats.sms_total} · "
                f"escalations {tiers[1]}/{tiers[2]}/{tiers[3]} · reminders {stats.reminders} · "
                f"actions {actions} · closed {closed} · archived {archived}",
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
        """The rows of the days of the run, payloads included (large ones are read back from the bucket)."""
        from chalicelib.adapters.dynamo import DynamoQuarantine

        s3, bucket = self.platform.client("s3"), self.platform.infra.env().get("DYJ_QUARANTINE_BUCKET", "")
        return [row for day in self._days() for row in DynamoQuarantine.by_day(day, s3, bucket)]

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
            fleet_waited_s=self.fleet_waited_s,
            drain_s=self.drain_s,
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
        records = [record for record in self._warnings() if record.warning_id not in self._warnings_before]
        self._summarise_warnings(summary, stats, records)
        self._summarise_loop(summary.loop, stats, records)
        summary.problems = _problems(summary)
        return summary

    def _summarise_quarantine(self, summary: DemoSummary) -> None:
        rows = [row for row in self._quarantine_rows() if row["received_id"] not in self._quarantine_before]
        summary.quarantine_rows = Counter(str(row["reason"]) for row in rows)
        summary.expected_reasons = Counter(message.expected_reject or "" for message in self.bad)
        summary.bad_checks, summary.unexpected_quarantine = check_quarantine(self.bad, rows)

    def _summarise_warnings(self, summary: DemoSummary, stats: FeedStats, records: Sequence[Any]) -> None:
        from chalicelib.adapters.dynamo import DynamoWarningStore

        for record in records:
            if record.risk_type == DATA_QUALITY:
                summary.data_quality += 1
                continue
            for level in levels_reached(DynamoWarningStore.events(record.warning_id)):
                summary.raised[(record.sector, level)] += 1
        summary.changes = Counter(entry.kind for entry in stats.entries)
        summary.sms_by_audience = stats.sms_by_audience
        summary.sms_planned = sum(sum(entry.planned_sms.values()) for entry in stats.entries)
        summary.routing_mismatches = sum(1 for entry in stats.entries if not entry.routing_matches)

    def _summarise_loop(self, loop: LoopSummary, stats: FeedStats, records: Sequence[Any]) -> None:
        loop.personas = Counter(self.crew.personas.values())
        with self._lock:
            events = list(self.actor_events)
        summarise_actions(loop, events)
        escalations = [entry for entry in stats.escalations if not entry.is_reminder]
        loop.escalations = Counter(entry.tier for entry in escalations)
        loop.clear_overdue = sum(1 for e in escalations if e.tier == 2 and e.reason == "clear_overdue")
        loop.reminders = stats.reminders
        loop.escalation_sms = sum(sum(entry.sms_sent.values()) for entry in escalations)
        summarise_records(loop, records)
        self._summarise_executions(loop)

    def _summarise_executions(self, loop: LoopSummary) -> None:
        ended = {end.name: end for end in self.executions.ended()}
        per_warning: Counter[str] = Counter()
        for end in ended.values():
            per_warning[end.warning_id] += end.transitions
        archived = {end.warning_id for end in ended.values() if end.archived}
        loop.transitions_archived = [per_warning[warning_id] for warning_id in sorted(archived)]
        loop.failed_executions = [end.name for end in ended.values() if end.status not in TIMER_DONE]
        running = [e for e in self.executions.executions() if e["status"] == "RUNNING"]
        if running:
            oldest = min(running, key=lambda execution: execution["startDate"])
            history = execution_history(self.platform.client("stepfunctions"), str(oldest["executionArn"]))
            loop.oldest_running = (str(oldest["name"]), state_transitions(history))


def summarise_actions(loop: LoopSummary, events: Sequence[ActorEvent]) -> None:
    for event in events:
        loop.answers[event.status] += 1
        if event.ok:
            loop.actions[(event.role, event.action)] += 1
        elif event.status != 409:
            loop.unexpected_answers.append(
                f"{event.username} {event.action.value} {event.warning_id}: HTTP {event.status} {event.error}"
            )


def summarise_records(loop: LoopSummary, records: Sequence[Any]) -> None:
    """Times, closures, archives, what is still open and the tiers recorded, from the Warning table."""
    for record in records:
        details: Mapping[str, Any] = record.details or {}
        level = Level(record.peak_level)
        tier = int(details.get("escalation_tier", 0))
        if tier:
            loop.recorded_tiers[min(tier, 3)] += 1
        acknowledged = details.get("acknowledged")
        if acknowledged:
            loop.ack_times.setdefault(level, []).append(float(acknowledged["at"]) - record.raised_at)
        status = WarningStatus(record.status)
        if status.is_open:
            loop.still_open[status] += 1
            continue
        if status is WarningStatus.ARCHIVED:
            loop.archived += 1
        closure = details.get("closure") or {}
        if closure.get("at") is not None:
            loop.clear_times.setdefault(level, []).append(float(closure["at"]) - record.raised_at)
        loop.closures[_closure_how(closure, details)] += 1


def _closure_how(closure: Mapping[str, Any], details: Mapping[str, Any]) -> str:
    if closure.get("role") != Role.DUTY.value:
        return "enterprise" if closure.get("role") == Role.ENTERPRISE.value else str(closure.get("role"))
    return "duty_confirmed" if details.get("clear_request") else "duty_false_alarm"


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
    return problems + _loop_problems(summary.loop)


def _loop_problems(loop: LoopSummary) -> list[str]:
    problems: list[str] = []
    if not loop.escalations[3]:
        problems.append("no tier-3 escalation (a red warning past its clear deadline)")
    if not loop.closed:
        problems.append("no warning was closed")
    if not loop.archived:
        problems.append("no closed warning was archived by the state machine")
    if loop.unexpected_answers:
        problems.append(f"{len(loop.unexpected_answers)} action(s) answered neither 2xx nor 409")
    if loop.failed_executions:
        problems.append(f"{len(loop.failed_executions)} disposal execution(s) failed")
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


def run(options: Options, out: TextIO | None = None) -> DemoSummary:
    """Start the platform, run the live fleet, print the feed and the summary; the platform always stops."""
    console = Console(out or sys.stdout, options.colour)
    with _quiet_platform():
        begun = time.monotonic()
        console.line(console.paint("dayingji 大应急 — local platform demo", "bold"))
        steps = options.publishing_steps
        console.line(
            f"starting moto, MQTT broker, rule bridge, stream poller, workflow and API… then {steps} steps of "
            f"{options.step_s:g} s, then a drain until everything has settled ({options.duration_s:g} s in all "
            "on a quiet machine)"
        )
        console.line(deadlines_line(options.fast))
        if steps < STEPS_FOR_EVERY_LEVEL:
            console.line(
                console.paint(
                    f"note: the scripted incidents need {STEPS_FOR_EVERY_LEVEL} steps to reach every level in "
                    f"every sector; this run has {steps}",
                    "yellow",
                )
            )
        platform = runtime.start(policy_json=json.dumps(demo_policy(options.fast)))
        try:
            console.line(
                f"platform up in {time.monotonic() - begun:.1f} s: {len(platform.registry.devices)} devices, "
                f"{len(platform.registry.enterprises)} enterprises, API on {platform.api_url}"
            )
            demo = _Demo(platform, options, console)
            console.line(personas_line(demo.crew.personas))
            console.line("live feed from the audience queues, the API and the state machine:")
            return demo.run()
        finally:
            platform.stop()


def personas_line(personas: Mapping[str, Persona]) -> str:
    groups = " · ".join(
        f"{persona.zh} {', '.join(sorted(e for e, p in personas.items() if p is persona))}"
        for persona in Persona
        if persona in personas.values()
    )
    return f"people: the duty console (duty-01) and one app per enterprise — {groups}"


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    options = parse_args(argv, out)
    try:
        return run(options, out).exit_code
    except KeyboardInterrupt:
        (out or sys.stdout).write("\ninterrupted; the platform was stopped\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
