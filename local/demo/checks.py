"""The demo's pass/fail checks, as data: each a name, what it checks, and how to read expected and observed values
from the summary. They read nothing but the summary, so the JSON file explains every verdict.

The checks decide the exit code of `make demo`: a broken platform must fail it, not print a happy story. What the
run merely shows (timings, how long the fleet waited) is not checked: a busy machine makes a run longer, not wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from pydantic import JsonValue

from chalicelib.domain.levels import Level, Sector
from local.demo.summary import Check, DeclarationCase, DemoSummary

Comparison = Literal["equals", "at_least"]
HAZARD_LEVELS = tuple(level.code for level in Level if level is not Level.NONE)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    comparison: Comparison
    expected: Callable[[DemoSummary], JsonValue]
    observed: Callable[[DemoSummary], JsonValue]
    problem: Callable[[DemoSummary, JsonValue], str]  # the sentence for a failure, from the observed value

    def evaluate(self, summary: DemoSummary) -> Check:
        expected, observed = self.expected(summary), self.observed(summary)
        passed = _holds(self.comparison, expected, observed)
        return Check(
            name=self.name,
            description=self.description,
            comparison=self.comparison,
            expected=expected,
            observed=observed,
            passed=passed,
            problem=None if passed else self.problem(summary, observed),
        )


def _holds(comparison: Comparison, expected: JsonValue, observed: JsonValue) -> bool:
    if comparison == "equals":
        return observed == expected
    return isinstance(observed, int) and isinstance(expected, int) and observed >= expected


def empty_cells(summary: DemoSummary) -> list[str]:
    """`sector/level` of every hazard level no warning of the run reached in that sector."""
    return [
        f"{sector}/{level}"
        for sector, levels in summary.warnings.raised.items()
        for level in HAZARD_LEVELS
        if not levels.get(level)
    ]


REPORT_ARTIFACTS = ["html", "json", "xlsx"]


def report_artifacts(summary: DemoSummary) -> list[str]:
    """The report's artifacts both stored in S3 (its index entry's keys) and written locally (read back through the
    API, downloaded by their presigned URLs, not empty)."""
    evaluation = summary.evaluation
    if evaluation is None:
        return []
    return sorted(a for a in evaluation.s3_keys if evaluation.file_bytes.get(a, 0) > 0)


def _evaluation_problem(summary: DemoSummary) -> str:
    evaluation = summary.evaluation
    if evaluation is None:
        return "the demo's window was not evaluated"
    stored = ", ".join(report_artifacts(summary)) or "none"
    why = evaluation.problem or "no problem said"
    return f"evaluation report incomplete (stored and downloaded: {stored}): {why}"


def _bad_messages_with_their_reason(summary: DemoSummary) -> int:
    return sum(1 for outcome in summary.quarantine.bad_messages if outcome.passed)


RULES: tuple[Rule, ...] = (
    Rule(
        "every_message_accounted_for",
        "every published message was graded, quarantined or refused by the topic rule (none still in flight)",
        "equals",
        lambda s: 0,
        lambda s: s.messages.in_flight,
        lambda s, observed: f"{observed} message(s) unaccounted for",
    ),
    Rule(
        "every_level_in_every_sector",
        "a warning reached blue, yellow, orange and red in every sector (data-quality findings apart)",
        "equals",
        lambda s: [],
        lambda s: list(empty_cells(s)),  # a list of JSON values, not of str (invariance)
        lambda s, observed: f"no warning raised for {', '.join(empty_cells(s))}",
    ),
    Rule(
        "bad_messages_get_their_reason",
        "every bad message the fleet sent is in the Quarantine table with exactly its expected reason",
        "equals",
        lambda s: len(s.quarantine.bad_messages),
        _bad_messages_with_their_reason,
        lambda s, observed: (
            f"{len(s.quarantine.bad_messages) - int(str(observed))} bad message(s) without exactly their expected "
            "reason"
        ),
    ),
    Rule(
        "no_good_message_quarantined",
        "no Quarantine row that no bad message explains",
        "equals",
        lambda s: 0,
        lambda s: len(s.quarantine.unexpected),
        lambda s, observed: f"{observed} message(s) quarantined unexpectedly",
    ),
    Rule(
        "quarantine_table_matches_handler",
        "the Quarantine table holds as many rows as the ingest handler quarantined",
        "equals",
        lambda s: s.messages.quarantined,
        lambda s: s.quarantine.table_rows,
        lambda s, observed: f"handler quarantined {s.messages.quarantined}, Quarantine table holds {observed}",
    ),
    Rule(
        "tier3_escalation_published",
        "the disposal workflow escalated a red warning past its clear deadline to tier 3",
        "at_least",
        lambda s: 1,
        lambda s: s.escalations.by_tier.get(3, 0),
        lambda s, observed: "no tier-3 escalation (a red warning past its clear deadline)",
    ),
    Rule(
        "escalations_texted",
        "escalations reached their tiers' people by SMS (the delivery receipts of escalation jobs)",
        "at_least",
        lambda s: 1,
        lambda s: s.deliveries.by_kind.get("escalation", {}).get("sms", 0),
        lambda s, observed: "no escalation SMS was handed to the SMS channel",
    ),
    Rule(
        "reminders_in_the_inbox",
        "reminders reached the enterprises' inboxes (the delivery receipts of reminder jobs)",
        "at_least",
        lambda s: 1,
        lambda s: s.deliveries.by_kind.get("reminder", {}).get("inbox", 0),
        lambda s, observed: "no reminder reached an enterprise's inbox",
    ),
    Rule(
        "no_delivery_failed",
        "no delivery failed or was left with an unknown outcome (every recipient has a phone, the channels work)",
        "equals",
        lambda s: 0,
        lambda s: s.deliveries.outcomes.get("failed", 0) + s.deliveries.outcomes.get("unknown", 0),
        lambda s, observed: f"{observed} deliveries failed or unknown: {s.deliveries.failed_reasons}",
    ),
    Rule(
        "warning_closed",
        "people closed at least one warning through the API",
        "at_least",
        lambda s: 1,
        lambda s: s.loop.closed,
        lambda s, observed: "no warning was closed",
    ),
    Rule(
        "closed_warning_archived",
        "the state machine archived at least one closed warning",
        "at_least",
        lambda s: 1,
        lambda s: s.loop.archived,
        lambda s, observed: "no closed warning was archived by the state machine",
    ),
    Rule(
        "actions_answered_2xx_or_409",
        "every action through the API was accepted (2xx) or refused by the lifecycle (409)",
        "equals",
        lambda s: 0,
        lambda s: len(s.people.unexpected_answers),
        lambda s, observed: f"{observed} action(s) answered neither 2xx nor 409",
    ),
    Rule(
        "disposal_executions_succeeded",
        "no disposal execution (Step Functions) failed",
        "equals",
        lambda s: 0,
        lambda s: len(s.loop.failed_executions),
        lambda s, observed: f"{observed} disposal execution(s) failed",
    ),
    Rule(
        "evaluation_report_stored",
        "the duty officer's evaluation of the demo's window stored its report (JSON, XLSX, HTML) in S3, and each "
        "came back through the API (the report read, the workbook and the page by their presigned URLs)",
        "equals",
        lambda s: list(REPORT_ARTIFACTS),
        lambda s: list(report_artifacts(s)),
        lambda s, observed: _evaluation_problem(s),
    ),
    Rule(
        "evaluation_covers_every_enterprise",
        "the evaluation report has a row for every enterprise of the demo (the seeded registry)",
        "equals",
        lambda s: [],
        lambda s: list(s.evaluation.missing_enterprises) if s.evaluation else ["(not evaluated)"],
        lambda s, observed: f"the evaluation report leaves out {observed}",
    ),
    Rule(
        "evaluation_counts_the_demo_warnings",
        "the report's warnings raised in the window, by peak level, are the warnings of the run (Warning table)",
        "equals",
        lambda s: dict(s.evaluation.demo_raised) if s.evaluation else {},
        lambda s: dict(s.evaluation.report_raised) if s.evaluation else None,
        lambda s, observed: (
            f"the report counts {observed} warnings by peak level, the run raised "
            f"{s.evaluation.demo_raised if s.evaluation else 'none read'}"
        ),
    ),
)


DECLARED_OUTCOME: dict[str, JsonValue] = {
    "status": "approved",
    "suppressed": ["config_mismatch"],
    "raised_for_device": 0,
}


def _declared(summary: DemoSummary) -> JsonValue:
    scene = summary.declaration
    if scene is None:
        return None
    suppressed: list[JsonValue] = list(scene.suppressed)
    return {"status": scene.status, "suppressed": suppressed, "raised_for_device": scene.raised_for_device}


RULES = (
    *RULES,
    Rule(
        "declared_outage_suppresses_a_finding",
        "a planned stop declared and approved through the API suppresses the device's config_mismatch finding: "
        "listed under the declaration, no data-quality warning raised",
        "equals",
        lambda s: dict(DECLARED_OUTCOME),
        _declared,
        lambda s, observed: (
            f"the declared outage shows {observed}"
            + (f" ({s.declaration.problem})" if s.declaration is not None and s.declaration.problem else "")
        ),
    ),
)


def _silent_device(summary: DemoSummary) -> JsonValue:
    scene = summary.offline
    if scene is None:
        return None
    return {"offline_warning_raised": scene.warning_id is not None, "recovered": scene.reading_normal}


def _case(summary: DemoSummary, name: str) -> DeclarationCase | None:
    return next((case for case in summary.declarations if case.case == name), None)


def _rejected(summary: DemoSummary) -> JsonValue:
    case = _case(summary, "rejected")
    if case is None:
        return None
    return {"status": case.status, "with_a_reason": bool(case.rejection_reason)}


def _expiring(summary: DemoSummary) -> JsonValue:
    case = _case(summary, "expiring")
    if case is None:
        return None
    trail: list[JsonValue] = [event.removeprefix("declaration_") for event in case.audit]
    reminder_sent = any(kind.startswith("declaration_reminder/") for kind in case.delivered)
    return {"status": case.status, "reminded": case.reminded_at is not None, "sent": reminder_sent, "audit": trail}


def _online(summary: DemoSummary) -> JsonValue:
    rows = summary.online_by_sector
    offline: list[JsonValue] = [*sorted(sector for sector, row in rows.items() if row.undeclared_outage_s > 0)]
    return {"sectors_rated": sum(1 for row in rows.values() if row.online is not None), "offline_time_in": offline}


def _problem_of(problem: str | None) -> str:
    return f" ({problem})" if problem else ""


EXPIRING_TRAIL: list[JsonValue] = ["declared", "reminded", "expired"]  # its audit trail's `declaration_*` events

RULES = (
    *RULES,
    Rule(
        "silent_device_goes_offline_and_recovers",
        "a device that stops reporting and disconnects gets an offline warning (设备离线) from the offline watch, "
        "and the warning recovers when the device reports again",
        "equals",
        lambda s: {"offline_warning_raised": True, "recovered": True},
        _silent_device,
        lambda s, observed: (
            f"the silent device shows {observed}" + _problem_of(s.offline.problem if s.offline else None)
        ),
    ),
    Rule(
        "declaration_rejected_with_a_reason",
        "a planned stop the sector's regulator rejects through the API is rejected, with its reason",
        "equals",
        lambda s: {"status": "rejected", "with_a_reason": True},
        _rejected,
        lambda s, observed: (
            f"the rejected declaration shows {observed}"
            + _problem_of(c.problem if (c := _case(s, "rejected")) else None)
        ),
    ),
    Rule(
        "declaration_reminded_then_expired",
        "a short declared window: the sweep reminds the declarer (a notice sent) before it ends, then expires it",
        "equals",
        lambda s: {"status": "expired", "reminded": True, "sent": True, "audit": list(EXPIRING_TRAIL)},
        _expiring,
        lambda s, observed: (
            f"the expiring declaration shows {observed}"
            + _problem_of(c.problem if (c := _case(s, "expiring")) else None)
        ),
    ),
    Rule(
        "online_rate_per_sector",
        "the online-time ledger gives every sector an online rate, offline time only where the device went silent",
        "equals",
        lambda s: {"sectors_rated": len(Sector), "offline_time_in": ["hazchem"]},
        _online,
        lambda s, observed: f"the online-time ledger shows {observed}",
    ),
)


def evaluate(summary: DemoSummary) -> list[Check]:
    return [rule.evaluate(summary) for rule in RULES]


def with_verdict(summary: DemoSummary) -> DemoSummary:
    """The summary with its checks evaluated, its verdict and the exit code that follows from it."""
    checks = evaluate(summary)
    passed = all(check.passed for check in checks)
    return summary.model_copy(update={"checks": checks, "passed": passed, "exit_code": 0 if passed else 1})
