"""The summary as a person reads it at the end of a run, rendered from the same `DemoSummary` the JSON holds."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from pathlib import Path

from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.periods import period_zh
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import ActionType, Role
from chalicelib.domain.rejections import RejectReason
from chalicelib.domain.texts import short_enterprise
from chalicelib.domain.warnings import WarningStatus
from local.actors import Persona
from local.demo.summary import Check, DemoSummary, EnterpriseResult, LoopSummary, TimeStats
from local.demo.terminal import Console, audience_zh, level_zh, ordered_by_audience, pad, sector_zh, shown_path

LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
CLOSURE_HOW_ZH = {
    "enterprise": "企业申请即关闭 (blue/yellow, reading normal)",
    "duty_confirmed": "值守中心确认 confirmed by the duty centre",
    "duty_false_alarm": "值守中心判定误报 marked false alarm",
}
VERDICT_OK = "OK: every check passed"


def summary_lines(summary: DemoSummary, console: Console, written_to: Path | None = None) -> list[str]:
    def bold(text: str) -> str:
        return console.paint(text, "bold")

    messages = summary.messages
    lines = ["", bold(f"══ 演示小结 summary ({summary.timings.run_s:.0f} s) " + "═" * 60)]
    lines.append(
        f"消息 messages: published {messages.published:,} (good {messages.published_good:,} / "
        f"bad {messages.published_bad}) · graded {messages.graded:,} · quarantined {messages.quarantined} · "
        f"rule errors {messages.rule_errors}"
    )
    lines.append(pace_line(summary))
    lines += quarantine_lines(summary, console)
    lines += warning_lines(summary, console)
    sms = summary.sms
    by_audience = " · ".join(f"{audience_zh(a)} {n}" for a, n in ordered_by_audience(sms.by_audience)) or "none"
    lines += [
        "",
        bold("短信 SMS sent by audience"),
        f"  {by_audience} · total {sms.total} (warning changes: planned {sms.planned_for_changes}; "
        f"escalations: {sms.for_escalations} by their receipts)",
    ]
    lines += delivery_lines(summary)
    lines += loop_lines(summary, console)
    lines += evaluation_lines(summary, console)
    lines += declaration_lines(summary, console)
    lines += offline_lines(summary, console)
    lines += online_lines(summary, console)
    lines += ["", bold("ACCOUNTING") + " " + accounting_line(summary)]
    lines += check_lines(summary.checks, console)
    if written_to is not None:
        lines.append(console.paint(f"  the same as JSON: {shown_path(written_to)}", "dim"))
    lines.append(verdict_line(summary, console))
    return lines


DELIVERY_KINDS = ("warning_change", "reminder", "escalation", "declaration_reminder", "declaration_decision")


def delivery_lines(summary: DemoSummary) -> list[str]:
    """Deliveries by kind and channel, by audience, and their outcomes: the delivery receipts of the run."""
    deliveries = summary.deliveries
    kinds = [kind for kind in DELIVERY_KINDS if kind in deliveries.by_kind] + sorted(
        set(deliveries.by_kind) - set(DELIVERY_KINDS)
    )
    lines = ["", "投递 deliveries (from the delivery receipts)            jobs    短信 sms  站内信 inbox"]
    for kind in kinds:
        channels = deliveries.by_kind[kind]
        lines.append(
            f"  {pad(kind, 50)}{deliveries.jobs_by_kind.get(kind, 0):>6}"
            f"{channels.get('sms', 0):>10}{channels.get('inbox', 0):>13}"
        )
    for channel in ("sms", "inbox"):
        audiences = deliveries.by_audience.get(channel, {})
        shown = " · ".join(f"{audience_zh(a)} {n}" for a, n in ordered_by_audience(audiences)) or "none"
        lines.append(f"  {channel:<6}by audience: {shown}")
    outcomes = " · ".join(f"{outcome} {n}" for outcome, n in sorted(deliveries.outcomes.items())) or "none"
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(deliveries.failed_reasons.items()))
    lines.append(
        f"  outcomes: {outcomes}" + (f" ({reasons})" if reasons else "") + f" · retried {deliveries.retried}"
        f" · most reminder SMS to one warning's on-duty person {deliveries.reminder_sms_for_one_warning}"
    )
    for kind, stats in deliveries.sms_latency_s.items():
        if stats.n:
            lines.append(
                f"  {kind} → SMS handed to the channel, s: median {stats.median_s:.1f} · p95 {stats.p95_s:.1f}"
                f" · max {stats.max_s:.1f} (n {stats.n}; from the "
                + ("reading" if kind == "warning_change" else "reminder's slot")
                + ")"
            )
    return lines


def verdict_line(summary: DemoSummary, console: Console) -> str:
    if summary.passed:
        return console.paint(VERDICT_OK, "none")
    return console.paint("FAILED: " + "; ".join(summary.problems), "red")


def check_lines(checks: list[Check], console: Console) -> list[str]:
    passed = sum(1 for check in checks if check.passed)
    lines = ["", console.paint(f"检查 checks: {passed}/{len(checks)} passed", "bold")]
    width = max((len(check.name) for check in checks), default=0) + 2
    for check in checks:
        mark = console.paint("✓", "none") if check.passed else console.paint("✗", "red")
        wanted = f"≥ {check.expected}" if check.comparison == "at_least" else _short(check.expected)
        lines.append(f"  {mark} {pad(check.name, width)}expected {wanted} · observed {_short(check.observed)}")
    return lines


def _short(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value[:6])) + (", …" if len(value) > 6 else "") + "]"
    return str(value)


def pace_line(summary: DemoSummary) -> str:
    """How long the fleet waited for the platform, and the drain: a busy machine shows here, not in the checks."""
    timings = summary.timings
    waited = (
        f"the fleet waited {timings.fleet_waited_s:.0f} s in all for the platform to catch up (a busy machine)"
        if timings.fleet_waited_s >= 1
        else "the platform kept up with the fleet"
    )
    return f"  {waited} · drained in {timings.drain_s:.0f} s"


def accounting_line(summary: DemoSummary) -> str:
    m = summary.messages
    equation = (
        f"published {m.published:,} = graded {m.graded:,} + quarantined {m.quarantined} + "
        f"rule errors {m.rule_errors} + still in flight {m.in_flight}"
    )
    if m.in_flight == 0:
        return f"{equation} → every message accounted for"
    detail = ", ".join(f"{name} {count}" for name, count in m.in_flight_detail.items() if count)
    return f"{equation} → UNACCOUNTED: {m.in_flight} ({detail or 'counted more than published'})"


def quarantine_lines(summary: DemoSummary, console: Console) -> list[str]:
    quarantine = summary.quarantine
    lines = ["", console.paint("隔离 quarantine by reason (Quarantine table)", "bold")]
    lines.append(
        f"  {pad('reason', 24)}{pad('原因', 28)}{pad('expected', 10, right=True)}{pad('got', 6, right=True)}"
    )
    for reason in RejectReason:
        expected = quarantine.expected_by_reason.get(reason.value, 0)
        got = quarantine.by_reason.get(reason.value, 0)
        lines.append(
            f"  {pad(reason.value, 24)}{pad(reason.zh, 28)}{pad(str(expected), 10, right=True)}"
            f"{pad(str(got), 6, right=True)}  {'✓' if expected == got else '✗'}"
        )
    wrong = [outcome for outcome in quarantine.bad_messages if not outcome.passed]
    good = len(quarantine.bad_messages) - len(wrong)
    lines.append(f"  bad messages with exactly their expected reason: {good}/{len(quarantine.bad_messages)}")
    for outcome in wrong:
        lines.append(
            f"    ✗ {outcome.device_id}: expected {outcome.expected_reason}, "
            f"got {outcome.got_reason or 'not quarantined'}"
        )
    for row in quarantine.unexpected[:10]:
        lines.append(f"    ✗ unexpected: {row.reason} {row.device_id} {row.detail[:60]}")
    return lines


def warning_lines(summary: DemoSummary, console: Console) -> list[str]:
    warnings = summary.warnings
    title = "预警 warnings by sector × level reached (raised at or raised to; Warning tables"
    lines = ["", console.paint(f"{title}; data-quality findings apart: {warnings.data_quality})", "bold")]
    header = "".join(console.paint(pad(level.zh, 8, right=True), level.code) for level in LEVELS)
    lines.append(f"  {pad('sector', 30)}{header}")
    for sector in Sector:
        raised = warnings.raised.get(sector.value, {})
        cells = "".join(pad(str(raised.get(level.code) or "·"), 8, right=True) for level in LEVELS)
        lines.append(f"  {pad(f'{sector.zh} {sector.value}', 30)}{cells}")
    changes = warnings.changes_by_kind
    kinds = " · ".join(f"{kind.value} {changes[kind.value]}" for kind in ChangeKind if changes.get(kind.value))
    lines.append(f"  changes seen on the consoles: {kinds or 'none'}")
    if warnings.routing_mismatches:
        lines.append(f"  ⚠ {warnings.routing_mismatches} change(s) reached other queues than their route")
    return lines


def loop_lines(summary: DemoSummary, console: Console) -> list[str]:
    people, escalations, loop = summary.people, summary.escalations, summary.loop
    lines = [
        "",
        console.paint("闭环 closed loop (Step Functions disposal workflow + people through the API)", "bold"),
    ]
    personas = " · ".join(
        f"{persona.zh} {people.personas[persona.value]}"
        for persona in Persona
        if people.personas.get(persona.value)
    )
    answers = " · ".join(f"{status} {count}" for status, count in sorted(people.answers.items()))
    lines.append(
        f"  people: {sum(people.personas.values())} enterprise apps ({personas}) + the duty console · "
        f"{sum(people.answers.values())} actions (HTTP {answers or 'none'})"
    )
    for role in (Role.ENTERPRISE, Role.DUTY):
        accepted = people.accepted.get(role.value, {})
        done = " · ".join(
            f"{action.zh} {accepted[action.value]}" for action in ActionType if accepted.get(action.value)
        )
        lines.append(f"    {pad(role.zh, 10)}{done or 'none'}")
    lines += [f"    ✗ {text}" for text in people.unexpected_answers[:10]]
    tiers = " · ".join(f"tier {tier} {escalations.by_tier.get(tier, 0)}" for tier in (1, 2, 3))
    lines.append(
        f"  escalations published: {tiers} (tier 2 for a missed clear deadline: {escalations.clear_overdue_tier2})"
        f" · reminders {escalations.reminders} · escalation SMS {escalations.sms}"
    )
    recorded = " · ".join(f"tier {tier} {escalations.recorded_tiers.get(tier, 0)}" for tier in (1, 2, 3))
    lines.append(f"  warnings by the escalation tier recorded on them: {recorded}")
    lines.append("  time from the raise, seconds (median / max, n)   签收 acknowledge     消警 clear")
    for level in reversed(LEVELS):
        ack, clear = _stats(loop.acknowledge_s.get(level.code)), _stats(loop.clear_s.get(level.code))
        lines.append(f"    {pad(level.zh, 46)}{pad(ack, 21)}{clear}")
    how = " · ".join(
        f"{CLOSURE_HOW_ZH.get(k, k)} {n}" for k, n in sorted(loop.closures_by_how.items(), key=lambda kv: -kv[1])
    )
    lines.append(f"  closures {loop.closed}: {how or 'none'}")
    lines.append(
        f"  archived (by their archive timers) {loop.archived} · still open {sum(loop.still_open.values())}"
        + _still_open(loop.still_open)
    )
    lines.append(f"  state transitions per warning (all its timers, …StateEntered): {transitions_text(loop)}")
    lines += [f"    ✗ execution {name} did not succeed" for name in loop.failed_executions]
    return lines


def declaration_lines(summary: DemoSummary, console: Console) -> list[str]:
    """The declared outage: who declared and approved it, what it suppressed (GET /declarations/{id}/findings)."""
    scene = summary.declaration
    if scene is None:
        return []
    answers = " · ".join(f"{request} {status}" for request, status in scene.answers.items())
    lines = ["", console.paint(f"申报 declared outage (HTTP {answers or 'none'})", "bold")]
    if scene.declaration_id is None:
        return [*lines, console.paint(f"  ✗ {scene.problem}", "red"), *declaration_case_lines(summary)]
    lines.append(
        f"  {scene.declaration_id} · 停产检修 {scene.device_id} · declared by {scene.declared_by} · "
        f"{scene.status} by {scene.approved_by}"
    )
    suppressed = ", ".join(scene.suppressed) or "nothing"
    lines.append(
        f"  suppressed (recorded, not raised, nobody told): {suppressed} · "
        f"data-quality warnings raised for the device: {scene.raised_for_device}"
    )
    return lines + declaration_case_lines(summary)


def declaration_case_lines(summary: DemoSummary) -> list[str]:
    """The rejected and the expiring declaration as the duty centre reads them at the end."""
    lines = []
    for case in summary.declarations:
        if case.declaration_id is None:
            lines.append(f"  ✗ {case.case}: {case.problem}")
            continue
        trail = " → ".join(event.removeprefix("declaration_") for event in case.audit) or "no audit trail read"
        why = f" ({case.rejection_reason})" if case.rejection_reason else ""
        lines.append(
            f"  {case.declaration_id} · {case.reason} {case.device_id} · {case.status}{why} · audit: {trail}"
            + (f" · ✗ {case.problem}" if case.problem else "")
        )
    return lines


def offline_lines(summary: DemoSummary, console: Console) -> list[str]:
    """The silent device: silence, the offline warning, its escalation and its recovery, in seconds."""
    scene = summary.offline
    if scene is None:
        return []
    lines = [
        "",
        console.paint(
            f"离线 a device going silent ({scene.device_id}, {scene.enterprise_id} {Persona(scene.persona).zh})",
            "bold",
        ),
    ]
    start = scene.silent_at

    def after(at: float | None) -> str:
        return "not seen" if at is None or start is None else f"+{at - start:.0f} s"

    lines.append(
        f"  silent (reports stopped, then disconnected) → 设备离线 raised {after(scene.raised_at)} → back "
        f"{after(scene.resumed_at)} → recovered {after(scene.recovered_at)}"
    )
    if scene.warning_id is None:
        lines.append(console.paint(f"  ✗ {scene.problem}", "red"))
        return lines
    lines.append(
        f"  {scene.warning_id} · peak {level_zh(scene.peak_level or 'none')} · escalation tier "
        f"{scene.escalation_tier} · reading normal again: {'yes' if scene.reading_normal else 'no'} · "
        f"status {scene.status}" + (f" · ✗ {scene.problem}" if scene.problem else "")
    )
    return lines


def online_lines(summary: DemoSummary, console: Console) -> list[str]:
    """在线率 per sector from the online-time ledger, over the day(s) of the run."""
    if not summary.online_by_sector:
        return []
    lines = [
        "",
        console.paint("在线率 online rate by sector (the online-time ledger, today's elapsed time)", "bold"),
    ]
    for sector, row in summary.online_by_sector.items():
        rate = "—" if row.online is None else f"{row.online * 100:.4f}%"
        lines.append(
            f"  {pad(sector_zh(sector), 10)} {row.devices:>4} devices  {pad(rate, 10, right=True)}  "
            f"offline undeclared {row.undeclared_outage_s:>6.0f} s · declared {row.declared_outage_s:>6.0f} s"
        )
    return lines


def evaluation_lines(summary: DemoSummary, console: Console) -> list[str]:
    """The evaluation of the demo's window: the district's figures, the best and the worst enterprises with their
    key indicators, the S3 keys and the files a person can open."""
    evaluation = summary.evaluation
    if evaluation is None:
        return []
    answers = " · ".join(f"{request} {status}" for request, status in evaluation.answers.items())
    lines = [
        "",
        console.paint(
            f"评估 evaluation of the demo's window (POST /evaluations as {evaluation.requested_by}, kind custom; "
            f"HTTP {answers or 'none'}; {evaluation.took_s:.1f} s)",
            "bold",
        ),
    ]
    if evaluation.report_id is None:
        return [*lines, console.paint(f"  ✗ {evaluation.problem}", "red")]
    window = period_zh(periods.custom(evaluation.start, evaluation.end))
    lines.append(f"  {evaluation.report_id} · {window} · {evaluation.enterprises} enterprises")
    raised = " · ".join(
        console.paint(f"{level_zh(level)} {count}", level) for level, count in evaluation.report_raised.items()
    )
    bands = " · ".join(
        console.paint(f"{level_zh(band)} {count}", band) for band, count in evaluation.bands.items() if count
    )
    overall = evaluation.overall
    lines.append(
        f"  全区 district: warnings {raised} · 在线率 {_rate(overall.get('online'))} · 处置率 "
        f"{_rate(overall.get('disposal'))} · 及时率 {_rate(overall.get('timeliness'))} · 误报率 "
        f"{_rate(overall.get('false_alarm'))} · score bands {bands or 'none'}"
    )
    lines.append(
        f"  {pad('rank', 6)}{pad('enterprise', 34)}{pad('score', 8, right=True)}  {pad('band', 6)}"
        f"{pad('warnings', 9, right=True)}{pad('在线率', 9, right=True)}{pad('处置率', 9, right=True)}"
        f"{pad('及时率', 9, right=True)}{pad('误报率', 9, right=True)}"
    )
    shown = {row.enterprise_id for row in evaluation.top}
    bottom = [row for row in evaluation.bottom if row.enterprise_id not in shown]
    lines += [_enterprise_line(row, console) for row in evaluation.top]
    if bottom:
        if bottom[0].rank > evaluation.top[-1].rank + 1:
            lines.append("  …")
        lines += [_enterprise_line(row, console) for row in bottom]
    for artifact, key in evaluation.s3_keys.items():
        version = evaluation.s3_versions.get(artifact)
        lines.append(f"  S3 {pad(artifact, 5)}{key}" + (f" (version {version})" if version else ""))
    files = " · ".join(shown_path(Path(path)) for artifact, path in evaluation.files.items() if artifact != "json")
    lines.append(f"  open: {files or 'none written'}")
    if evaluation.problem:
        lines.append(console.paint(f"  ✗ {evaluation.problem}", "red"))
    return lines


def _enterprise_line(row: EnterpriseResult, console: Console) -> str:
    band = console.paint(pad(level_zh(row.band), 6), row.band)
    name = f"{row.enterprise_id} {short_enterprise(row.name)}"
    return (
        f"  {pad(str(row.rank), 6)}{pad(name, 34)}{pad(f'{row.score:.2f}', 8, right=True)}  {band}"
        f"{pad(str(row.raised), 9, right=True)}{pad(_rate(row.online), 9, right=True)}"
        f"{pad(_rate(row.disposal), 9, right=True)}{pad(_rate(row.timeliness), 9, right=True)}"
        f"{pad(_rate(row.false_alarm), 9, right=True)}"
    )


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _still_open(still_open: Mapping[str, int]) -> str:
    text = " · ".join(
        f"{status.zh} {still_open[status.value]}" for status in WarningStatus if still_open.get(status.value)
    )
    return f" ({text})" if text else ""


def transitions_text(loop: LoopSummary) -> str:
    parts = []
    if loop.transitions_archived:
        values = loop.transitions_archived
        parts.append(
            f"a typical closed and archived warning {statistics.median(values):.0f} "
            f"(median of {len(values)}; {min(values)}–{max(values)})"
        )
    if loop.oldest_running:
        oldest = loop.oldest_running
        parts.append(f"the oldest running timer ({oldest.execution}) {oldest.transitions} so far")
    return " · ".join(parts) or "no executions"


def _stats(stats: TimeStats | None) -> str:
    if stats is None or not stats.n:
        return "·"
    return f"{stats.median_s:.0f} / {stats.max_s:.0f} (n {stats.n})"
