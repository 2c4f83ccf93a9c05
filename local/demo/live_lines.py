"""The live feed's lines: what the consoles receive (warning changes, escalations, reminders), what people do
through the API, archives, the progress line and the run's own notes. Chinese where the platform speaks Chinese
(the SMS, the consoles' labels), English for the demo's own commentary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from chalicelib.domain.changes import CHANGE_KIND_ZH, DATA_QUALITY, ChangeKind
from chalicelib.domain.lifecycle import (
    CLEAR_REASON_ZH,
    ESCALATION_TIER_ZH,
    VERIFICATION_ZH,
    ActionType,
    ClearReason,
    EscalationTier,
    VerificationOutcome,
)
from chalicelib.domain.warnings import WarningStatus
from local.actors import ActorEvent, Persona
from local.demo.deadlines import confirm_table, deadline_table
from local.demo.observations import TIMER_DONE
from local.demo.options import STEPS_FOR_EVERY_LEVEL, Options
from local.demo.summary import DeclarationCase, DeclarationScene
from local.demo.terminal import Console, audiences_zh, level_zh, local_time, pad, sector_zh, sms_zh
from local.feed import EscalationEntry, ExecutionEnd, FeedEntry

REASON_ZH = {
    "acknowledge_overdue": "超时未签收",
    "verify_overdue": "超时未核实反馈",
    "clear_overdue": "超时未消警",
    "not_acknowledged": "尚未签收",
}
TIER_LABEL = {1: "超时升级·一级", 2: "超时升级·二级", 3: "超时升级·三级"}
DETAIL_ZH = {"reached": "已接通", "no_answer": "无人接听", "rejected": "驳回"}
INDENT = " " * 10  # under the time column


def feed_lines(entry: FeedEntry, console: Console) -> list[str]:
    """Two lines per change: level, kind, sector and the SMS text; then who received it and the SMS sent."""
    change = entry.change
    kind = entry.kind
    style = "none" if kind in (ChangeKind.LEVEL_DOWN.value, ChangeKind.RECOVER.value) else entry.level
    kind_zh = CHANGE_KIND_ZH.get(ChangeKind(kind), kind) if kind in set(ChangeKind) else kind
    if change.get("risk_type") == DATA_QUALITY:
        kind_zh = f"{kind_zh}·数据质量"
    head = f"{local_time(float(change.get('at', 0.0)))}  {pad(level_zh(entry.level), 4)} {pad(kind_zh, 12)}"
    first = console.paint(f"{head} {pad(sector_zh(str(change.get('sector'))), 10)} {entry.sms}", style)
    sms = sms_zh(entry.sms_sent)
    planned = sum(entry.planned_sms.values())
    if sum(entry.sms_sent.values()) != planned:
        sms += f"  应发 {planned} 条"
    routing = "" if entry.routing_matches else f"  ⚠ 路由 {'/'.join(entry.routed)}"
    return [first, console.paint(f"{INDENT}→ 送达 {audiences_zh(entry.delivered_to)} · {sms}{routing}", "dim")]


def escalation_lines(entry: EscalationEntry, console: Console, enterprise: str) -> list[str]:
    """An escalation: two lines (what, to whom and the SMS the app sent); a reminder: one line."""
    head = f"{local_time(entry.at)}  {pad(level_zh(entry.level), 4)}"
    sector = pad(sector_zh(str(entry.body.get("sector", ""))), 10)
    who = f"{enterprise} {entry.warning_id}"
    reason = REASON_ZH.get(entry.reason, entry.reason)
    if entry.is_reminder:
        channels = "短信+站内信" if entry.body.get("sms") else "站内信"
        text = f"{head} {pad('催办提醒', 12)} {sector} {who}: {reason},第{entry.ordinal}次提醒 → 企业({channels})"
        return [console.paint(text, "dim")]
    tier = entry.tier
    tier_zh = ESCALATION_TIER_ZH[EscalationTier(tier)] if tier in (1, 2, 3) else f"tier {tier}"
    due_at = entry.body.get("due_at")
    when = f"(时限 {local_time(float(due_at))})" if isinstance(due_at, (int, float)) else ""
    label = TIER_LABEL.get(tier, entry.change)
    first = f"{head} {pad(label, 12)} {sector} {who}: {reason}{when} → {tier_zh}"
    routing = "" if set(entry.routed) == entry.delivered_to else f"  ⚠ 路由 {'/'.join(entry.routed)}"
    sms = sms_zh(entry.sms_sent) if entry.receipts_seen else "短信 投递中…"
    second = f"{INDENT}→ 送达 {audiences_zh(entry.delivered_to)} · {sms}{routing}"
    return [console.paint(first, "bold" if tier < 3 else "red"), console.paint(second, "dim")]


def delivered_lines(entry: EscalationEntry, console: Console, enterprise: str) -> list[str]:
    """The SMS of an escalation printed before its delivery receipts came (the deliver function was behind)."""
    label = TIER_LABEL.get(entry.tier, entry.change)
    sms = sms_zh(entry.sms_sent) if entry.receipts_seen else "短信 回执未到"
    return [console.paint(f"{INDENT}✉ {label} {enterprise} {entry.warning_id} 已投递 · {sms}", "dim")]


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
    outcome = WarningStatus(event.after_status).zh if event.ok and event.after_status else event.error or "失败"
    text = (
        f"{local_time(event.at)}  {pad(level, 4)} {pad('✎ ' + what, 12)} {sector} {enterprise} {event.warning_id}"
        f"{': ' + detail if detail else ''} → {outcome} · {event.username} HTTP {event.status}"
    )
    lines = [console.paint(text, "dim" if event.ok else "yellow")]
    if event.closed:
        since = max(0.0, event.at - float(before.get("raised_at", event.at)))
        lines.append(console.paint(f"{INDENT}✔ 消警关闭: {closure_zh(event)} · 发布后 {since:.0f} 秒", "none"))
    return lines


def closure_zh(event: ActorEvent) -> str:
    if event.action is ActionType.MARK_FALSE_ALARM:
        return "值守中心判定误报"
    if event.action is ActionType.CONFIRM_CLOSURE:
        return f"值守中心确认消警({action_detail_zh(event)})"
    return f"企业申请消警即关闭({action_detail_zh(event)},读数已正常)"


def archive_lines(end: ExecutionEnd, console: Console, label: str) -> list[str]:
    stopped = local_time(end.stopped_at)
    if end.archived:
        text = f"{stopped}  {pad(level_zh(end.level), 4)} {pad('▣ 归档', 12)} {label} {end.warning_id}: "
        return [console.paint(f"{text}时限计时器到期归档,移出值守大屏", "none")]
    if end.status in TIMER_DONE:  # a timer that fell due (its due item shows as it happens), or one superseded
        return []
    return [console.paint(f"{stopped}  ⚠ 状态机执行 {end.name} {end.status} {end.error}", "red")]


# ------------------------------------------------------------------------------------------------- the run's notes


def opening_lines(options: Options, console: Console) -> list[str]:
    steps = options.publishing_steps
    lines = [
        console.paint("dayingji 大应急 — local platform demo", "bold"),
        f"starting moto, MQTT broker, rule bridge, stream poller, workflow and API… then {steps} steps of "
        f"{options.step_s:g} s, then a drain until everything has settled ({options.duration_s:g} s in all "
        "on a quiet machine)",
        deadlines_line(options.fast),
    ]
    if steps < STEPS_FOR_EVERY_LEVEL:
        note = (
            f"note: the scripted incidents need {STEPS_FOR_EVERY_LEVEL} steps to reach every level in every "
            f"sector; this run has {steps}"
        )
        lines.append(console.paint(note, "yellow"))
    return lines


def deadlines_line(fast: bool) -> str:
    levels = " · ".join(
        f"{level_zh(level)} {ack}/{verify}/{clear} s (提醒 {reminder} s)"
        for level, (ack, verify, clear, reminder) in deadline_table(fast).items()
    )
    confirms = " · ".join(f"{level_zh(level)} {seconds} s" for level, seconds in confirm_table(fast).items())
    return f"deadlines 签收/核实反馈/消警: {levels}; 确认消警: {confirms}; timers sleep until each due time"


def personas_line(personas: Mapping[str, Persona]) -> str:
    groups = " · ".join(
        f"{persona.zh} {', '.join(sorted(e for e, p in personas.items() if p is persona))}"
        for persona in Persona
        if persona in personas.values()
    )
    return f"people: the duty console (duty-01) and one app per enterprise — {groups}"


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    published: int
    bad: int
    graded: int
    quarantined: int
    raised: int
    changes: int
    sms: int
    escalations_by_tier: Counter[int]
    reminders: int
    actions: int
    closed: int
    archived: int


def progress_line(progress: Progress, console: Console) -> str:
    tiers = progress.escalations_by_tier
    return console.paint(
        f"[{progress.elapsed_s:5.0f} s] published {progress.published:,} (bad {progress.bad}) · "
        f"graded {progress.graded:,} · quarantined {progress.quarantined} · "
        f"warnings {progress.raised} raised / {progress.changes} changes · SMS {progress.sms} · "
        f"escalations {tiers[1]}/{tiers[2]}/{tiers[3]} · reminders {progress.reminders} · "
        f"actions {progress.actions} · closed {progress.closed} · archived {progress.archived}",
        "bold",
    )


def bad_messages_line(reasons: Counter[str], held: int, console: Console) -> str:
    later = f"; {held} resent a few seconds later" if held else ""
    return console.paint(
        f"{INDENT}⚑ sending {sum(reasons.values())} bad messages ({len(reasons)} reasons: "
        f"{', '.join(sorted(reasons))}{later}): each must end in the quarantine with its reason",
        "dim",
    )


def behind_line(in_flight: int, console: Console) -> str:
    return console.paint(
        f"{INDENT}⚠ the platform is {in_flight:,} messages behind and not catching up; publishing on", "yellow"
    )


def note_line(text: str, console: Console) -> str:
    return console.paint(f"{INDENT}■ {text}", "dim")


def declaration_line(scene: DeclarationScene, console: Console) -> str:
    if scene.declaration_id is None or scene.problem is not None:
        return console.paint(f"{INDENT}✗ 申报 declared outage: {scene.problem}", "red")
    return note_line(
        f"申报 停产检修 {scene.device_id} declared by {scene.declared_by} ({scene.declaration_id}), "
        f"{scene.status} by {scene.approved_by}: its data-quality findings are suppressed from now on",
        console,
    )


def declaration_case_line(case: DeclarationCase, console: Console) -> str:
    """The rejected and the expiring declaration, as declared at the start of the run."""
    if case.declaration_id is None or case.problem is not None:
        return console.paint(f"{INDENT}✗ 申报 {case.case} declaration: {case.problem}", "red")
    if case.case == "rejected":
        what = f"rejected by {case.decided_by}: its window will not excuse the device"
    else:
        what = f"in effect for {case.window_s:.0f} s: the declarer is reminded before it ends, then it expires"
    reason = (
        "停产检修"
        if case.reason == "planned_stop"
        else "设备损坏"
        if case.reason == "equipment_damage"
        else case.reason
    )
    return note_line(
        f"申报 {reason} {case.device_id} declared by {case.declared_by} ({case.declaration_id}), {what}", console
    )
