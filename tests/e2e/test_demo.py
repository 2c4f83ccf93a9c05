"""`make demo` checks itself: a short live run through the whole local platform must account for every message,
raise every level in every sector, quarantine every bad message with exactly its reason, and close the loop:
escalations of every tier, reminders, closures confirmed by the duty centre and warnings archived by the state
machine, with the simulated people acting through the API, and the duty officer's evaluation of the run's own
window (the report stored, read back and downloaded). Its exit code says so.

One run (`--fast`, deadlines about three times shorter; ~75 s with start-up and summary on a quiet machine) is
shared by the tests of this module; they read the JSON summary the run writes (`--summary`), not its console text.
On a busy machine the run takes longer and passes the same checks: the fleet waits for the platform to catch up
before each step, and the drain waits on conditions, each bounded (`local.demo.orchestration`). A few tests at the
end check the pieces the story rests on without a run (personas, the feed's escalation entries).
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from chalicelib.bootstrap import reset
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.score import band
from chalicelib.domain.levels import Sector
from chalicelib.domain.rejections import RejectReason
from local.actors import Persona, persona_for
from local.aws import reset_moto, start_moto_server
from local.demo import cli, orchestration
from local.demo.checks import RULES, with_verdict
from local.demo.deadlines import FAST_DEADLINES_S
from local.demo.summary import DemoSummary, EvaluationSummary, ScenarioOutcome
from local.demo.summary_lines import VERDICT_OK
from local.feed import EscalationEntry, WarningFeed, escalation_sms
from local.fleet import INCIDENTS
from local.seed import load_seed

pytestmark = [pytest.mark.e2e, pytest.mark.realtime]

SHORT_RUN = ["--duration", "60", "--step", "2", "--fast", "--no-colour"]
LEVELS = ("blue", "yellow", "orange", "red")


@dataclass(frozen=True)
class DemoRun:
    exit_code: int
    output: str
    summary_json: str  # the file the run wrote
    report_dir: Path  # where it wrote the evaluation report

    @cached_property
    def summary(self) -> DemoSummary:
        return DemoSummary.model_validate_json(self.summary_json)


def _wipe_moto() -> None:
    """Moto keeps one state per process: start from (and leave) an empty one."""
    server, endpoint_url = start_moto_server()
    try:
        reset_moto(endpoint_url)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    saved_environ = dict(os.environ)
    summary_path = tmp_path_factory.mktemp("demo") / "summary.json"
    _wipe_moto()
    out = io.StringIO()
    try:
        exit_code = cli.main([*SHORT_RUN, "--summary", str(summary_path)], out=out)
        assert summary_path.exists(), out.getvalue()[-3000:]
        report_dir = summary_path.parent / "demo-report"
        yield DemoRun(exit_code, out.getvalue(), summary_path.read_text(encoding="utf-8"), report_dir)
    finally:
        _wipe_moto()
        os.environ.clear()
        os.environ.update(saved_environ)
        reset()


def _scenarios(summary: DemoSummary, persona: Persona) -> list[ScenarioOutcome]:
    return [scenario for scenario in summary.scenarios if scenario.played and scenario.persona == persona.value]


# --- the verdict ------------------------------------------------------------------------------------------------


def test_the_demo_exits_zero_when_every_check_passes(short_run: DemoRun) -> None:
    failed = {check.name: check.problem for check in short_run.summary.checks if not check.passed}
    assert not failed, f"{failed}\n{short_run.output[-2000:]}"
    assert (short_run.exit_code, short_run.summary.exit_code, short_run.summary.passed) == (0, 0, True)


def test_the_summary_reports_every_check_with_what_it_expected_and_observed(short_run: DemoRun) -> None:
    checks = {check.name: check for check in short_run.summary.checks}
    assert list(checks) == [rule.name for rule in RULES]
    assert all(check.description and check.problem is None for check in checks.values())
    assert checks["every_message_accounted_for"].observed == checks["every_message_accounted_for"].expected == 0


def test_a_message_in_flight_fails_the_run_and_says_how_many(short_run: DemoRun) -> None:
    summary = short_run.summary
    stuck = summary.model_copy(update={"messages": summary.messages.model_copy(update={"in_flight": 3})})
    judged = with_verdict(stuck)
    assert (judged.passed, judged.exit_code) == (False, 1)
    check = judged.check("every_message_accounted_for")
    assert (check.expected, check.observed, check.passed) == (0, 3, False)
    assert judged.problems == ["3 message(s) unaccounted for"]


def test_the_console_ends_with_the_verdict(short_run: DemoRun) -> None:
    assert short_run.output.rstrip().splitlines()[-1] == VERDICT_OK


def test_the_summary_file_is_plain_json_with_its_schema_version(short_run: DemoRun) -> None:
    raw: dict[str, Any] = json.loads(short_run.summary_json)
    assert raw["schema_version"] == 1
    assert raw["checks"] and all(check["passed"] is True for check in raw["checks"])
    assert raw["timings"]["total_s"] >= raw["timings"]["run_s"] > 0


# --- a declared outage (申报) ------------------------------------------------------------------------------------


def test_a_declared_and_approved_planned_stop_suppresses_a_finding_and_lists_it(
    short_run: DemoRun,
) -> None:
    scene = short_run.summary.declaration
    assert scene is not None and scene.problem is None, scene
    assert scene.answers == {"declare": 201, "approve": 200, "findings": 200}
    assert (scene.reason, scene.status, scene.approved_by) == ("planned_stop", "approved", "reg-emergency-bureau")
    assert scene.suppressed == ["config_mismatch"] and scene.raised_for_device == 0
    assert "suppressed (recorded, not raised, nobody told): config_mismatch" in short_run.output


def test_a_rejected_declaration_carries_its_reason_and_an_expiring_one_is_reminded_then_ends(
    short_run: DemoRun,
) -> None:
    cases = {case.case: case for case in short_run.summary.declarations}
    rejected, expiring = cases["rejected"], cases["expiring"]
    assert rejected.problem is None and expiring.problem is None, cases
    assert rejected.answers == {"declare": 201, "reject": 200, "audit": 200, "read": 200}
    assert (rejected.reason, rejected.status, rejected.decided_by) == (
        "planned_stop",
        "rejected",
        "reg-emergency-bureau",
    )
    assert rejected.rejection_reason and rejected.audit == ["declaration_declared", "declaration_rejected"]
    assert (expiring.reason, expiring.status) == ("equipment_damage", "expired")
    assert expiring.audit == ["declaration_declared", "declaration_reminded", "declaration_expired"]
    assert expiring.reminded_at is not None and expiring.window_s == 30
    # the notices went out (docs/delivery.md "Declarations' notices"): the rejection, the reminder; SMS and inbox
    assert {"declaration_decision/sms", "declaration_decision/inbox"} <= set(rejected.delivered), rejected
    assert {"declaration_reminder/sms", "declaration_reminder/inbox"} <= set(expiring.delivered), expiring


# --- devices on duty: a device going silent, the online-time ledger ----------------------------------------------


def test_a_device_going_silent_gets_an_offline_warning_that_recovers_when_it_reports_again(
    short_run: DemoRun,
) -> None:
    scene = short_run.summary.offline
    assert scene is not None and scene.problem is None, scene
    assert scene.warning_id is not None and scene.status is not None
    assert scene.silent_at is not None and scene.raised_at is not None and scene.recovered_at is not None
    assert scene.silent_at < scene.raised_at <= scene.resumed_at < scene.recovered_at  # type: ignore[operator]
    assert scene.peak_level == "blue" and scene.reading_normal
    assert short_run.summary.check("silent_device_goes_offline_and_recovers").passed


def test_the_online_rate_per_sector_comes_from_the_ledger_and_counts_the_silence(short_run: DemoRun) -> None:
    rows = short_run.summary.online_by_sector
    assert set(rows) == {sector.value for sector in Sector}
    assert all(row.online is not None and 0 < row.online <= 1 for row in rows.values()), rows
    hazchem = rows["hazchem"]
    assert hazchem.undeclared_outage_s > 0 and hazchem.online is not None and hazchem.online < 1
    assert hazchem.declared_outage_s > 0  # the approved planned stop's and the expiring window's time
    others = [row for sector, row in rows.items() if sector != "hazchem"]
    assert all(row.undeclared_outage_s == 0 and row.online == pytest.approx(1) for row in others), rows


# --- messages and quarantine -------------------------------------------------------------------------------------


def test_every_published_message_is_graded_quarantined_or_a_rule_error(short_run: DemoRun) -> None:
    messages = short_run.summary.messages
    assert messages.in_flight == 0
    assert messages.published == messages.graded + messages.quarantined + messages.rule_errors
    assert messages.published_bad >= len(SENT_BY_THE_FLEET)


@pytest.mark.parametrize("sector", list(Sector), ids=lambda sector: sector.value)
def test_all_four_levels_are_raised_in_every_sector(short_run: DemoRun, sector: Sector) -> None:
    raised = short_run.summary.warnings.raised[sector.value]
    assert all(raised[level] > 0 for level in LEVELS), raised


# platform faults no input is known to reach: the store refusing what the domain let through, a model raising;
# and a good reading inside a 数据失真 declaration (kept ungraded; the demo declares none)
PLATFORM_FAULTS = (RejectReason.UNSTORABLE_VALUE, RejectReason.MODEL_ERROR)
NOT_BAD_MESSAGES = (*PLATFORM_FAULTS, RejectReason.DECLARED_DISTORTION)
SENT_BY_THE_FLEET = [reason for reason in RejectReason if reason not in NOT_BAD_MESSAGES]


@pytest.mark.parametrize("reason", SENT_BY_THE_FLEET, ids=lambda reason: reason.value)
def test_every_bad_reason_is_quarantined_exactly_as_expected(short_run: DemoRun, reason: RejectReason) -> None:
    quarantine = short_run.summary.quarantine
    expected = quarantine.expected_by_reason[reason.value]
    assert expected >= 1  # the fleet sends at least one message of every kind
    assert quarantine.by_reason[reason.value] == expected
    sent = [outcome for outcome in quarantine.bad_messages if outcome.expected_reason == reason.value]
    assert len(sent) == expected
    assert all(outcome.got_reason == reason.value for outcome in sent), sent


def test_no_good_message_is_quarantined(short_run: DemoRun) -> None:
    assert short_run.summary.quarantine.unexpected == []


def test_no_message_of_the_demo_is_refused_by_the_store(short_run: DemoRun) -> None:
    quarantine = short_run.summary.quarantine
    reason = RejectReason.UNSTORABLE_VALUE.value
    assert (quarantine.expected_by_reason[reason], quarantine.by_reason[reason]) == (0, 0)


# --- warnings and SMS --------------------------------------------------------------------------------------------

AUDIENCES_BY_LEVEL = {  # DOMAIN.md: who is told of a warning raised at (or raised to) each level
    "blue": {"enterprise"},
    "yellow": {"enterprise", "duty"},
    "orange": {"enterprise", "duty", "regulator", "area"},
    "red": {"enterprise", "duty", "regulator", "area", "emergency"},
}


@pytest.mark.parametrize("level", LEVELS)
def test_sms_for_a_raise_go_to_the_audiences_of_its_level(short_run: DemoRun, level: str) -> None:
    sent = short_run.summary.sms.for_raises_by_level[level]
    assert {audience for audience, count in sent.items() if count} == AUDIENCES_BY_LEVEL[level], sent


def test_every_warning_change_reached_the_queues_it_was_routed_to(short_run: DemoRun) -> None:
    assert short_run.summary.warnings.routing_mismatches == 0


# --- the closed loop ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", [1, 2, 3])
def test_the_workflow_escalates_every_tier_of_a_missed_deadline(short_run: DemoRun, tier: int) -> None:
    escalations = short_run.summary.escalations
    assert escalations.by_tier[tier] > 0
    published = [item for item in escalations.published if item.tier == tier]
    assert published and all(item.delivered_to for item in published)


def test_a_red_past_its_clear_deadline_reaches_the_emergency_bureau_alone(short_run: DemoRun) -> None:
    tier3 = [item for item in short_run.summary.escalations.published if item.tier == 3]
    assert any(item.level == "red" and item.reason == "clear_overdue" for item in tier3), tier3
    missed_stages = [item for item in tier3 if item.reason != "confirm_overdue"]
    assert all(item.delivered_to == ["emergency"] for item in missed_stages), tier3
    # a missed confirmation is the duty centre's own lapse: the bureau that supervises it is told, and so is it
    confirmations = [item for item in tier3 if item.reason == "confirm_overdue"]
    assert all(sorted(item.delivered_to) == ["duty", "emergency"] for item in confirmations), confirmations


def test_a_silent_enterprise_leaves_a_red_warning_to_reach_tier_three(short_run: DemoRun) -> None:
    summary = short_run.summary
    published = {item.warning_id for item in summary.escalations.published if item.tier == 3}
    silent = _scenarios(summary, Persona.SILENT)
    escalated = [
        warning
        for scenario in silent
        for warning in scenario.warnings
        if "red" in warning.levels_reached and (warning.escalation_tier == 3 or warning.warning_id in published)
    ]
    assert escalated, silent


def test_a_late_enterprise_acknowledges_only_after_its_deadline(short_run: DemoRun) -> None:
    late = _scenarios(short_run.summary, Persona.LATE)
    acknowledged = [w for scenario in late for w in scenario.warnings if w.acknowledged_after_s is not None]
    assert acknowledged, late
    for warning in acknowledged:
        # a level-up re-arms the clock later and a higher level's deadline is shorter: the peak's is a lower bound
        acknowledge_s = FAST_DEADLINES_S[warning.peak_level][0]
        assert warning.acknowledged_after_s is not None
        assert warning.acknowledged_after_s >= acknowledge_s, warning


def test_the_duty_centre_phones_the_enterprise_of_a_tier_one_warning(short_run: DemoRun) -> None:
    assert short_run.summary.people.accepted["duty"]["record_contact"] > 0


def test_reminders_repeat_while_a_warning_is_not_acknowledged(short_run: DemoRun) -> None:
    escalations = short_run.summary.escalations
    assert escalations.reminders >= 2
    assert escalations.most_reminders_for_one_warning >= 2


def test_the_duty_centre_confirms_a_closure(short_run: DemoRun) -> None:
    summary = short_run.summary
    assert summary.loop.closures_by_how.get("duty_confirmed", 0) > 0
    assert summary.people.accepted["duty"]["confirm_closure"] > 0


def test_closed_warnings_are_archived_by_their_archive_timers(short_run: DemoRun) -> None:
    loop = short_run.summary.loop
    assert loop.archived > 0
    assert len(loop.transitions_archived) == loop.archived
    assert all(transitions > 0 for transitions in loop.transitions_archived)


def test_silent_enterprises_leave_warnings_open(short_run: DemoRun) -> None:
    silent = _scenarios(short_run.summary, Persona.SILENT)
    assert any(warning.status != "archived" for scenario in silent for warning in scenario.warnings)
    assert sum(short_run.summary.loop.still_open.values()) > 0


def test_every_action_through_the_api_is_accepted_or_refused_by_the_lifecycle(short_run: DemoRun) -> None:
    answers = short_run.summary.people.answers
    assert sum(answers.values()) > 0
    assert all(200 <= status < 300 or status == 409 for status in answers), answers
    assert short_run.summary.people.unexpected_answers == []


# --- the evaluation of the run's window --------------------------------------------------------------------------

EVALUATION_CHECKS = (
    "evaluation_report_stored",
    "evaluation_covers_every_enterprise",
    "evaluation_counts_the_demo_warnings",
)


def _evaluation(short_run: DemoRun) -> EvaluationSummary:
    evaluation = short_run.summary.evaluation
    assert evaluation is not None and evaluation.report_id is not None, short_run.output[-2000:]
    return evaluation


def test_the_duty_officer_evaluates_the_runs_window_through_the_api(short_run: DemoRun) -> None:
    evaluation = _evaluation(short_run)
    window = periods.custom(evaluation.start, evaluation.end)
    assert evaluation.report_id == f"custom-{window.label}"
    assert evaluation.start <= short_run.summary.timings.started_at.timestamp()  # before any warning
    assert evaluation.answers == {"run": 202, "read": 200, "download_xlsx": 200, "download_html": 200}
    assert evaluation.problem is None and evaluation.requested_by == "duty-01"
    prefix = f"evaluations/custom/{window.label}/report"
    assert {artifact: key.split("/", 3)[3] for artifact, key in evaluation.s3_keys.items()} == {
        artifact: f"{prefix}.{artifact}" for artifact in ("json", "xlsx", "html")
    }
    assert all(evaluation.s3_versions[artifact] for artifact in evaluation.s3_keys)  # the bucket is versioned


def test_the_evaluation_covers_every_enterprise_and_counts_the_runs_warnings(short_run: DemoRun) -> None:
    summary, evaluation = short_run.summary, _evaluation(short_run)
    assert evaluation.enterprises == len(load_seed().enterprises) and evaluation.missing_enterprises == []
    assert evaluation.report_raised == evaluation.demo_raised
    warnings = summary.warnings
    assert sum(evaluation.report_raised.values()) == sum(warnings.by_peak_level.values()) + warnings.data_quality
    assert sum(evaluation.bands.values()) == evaluation.enterprises
    assert all(summary.check(name).passed for name in EVALUATION_CHECKS), summary.checks


def test_the_summary_shows_the_best_and_the_worst_with_their_indicators(short_run: DemoRun) -> None:
    evaluation = _evaluation(short_run)
    ranked = [*evaluation.top, *evaluation.bottom]
    assert [row.rank for row in evaluation.top] == [1, 2, 3]
    assert evaluation.bottom[-1].rank == evaluation.enterprises
    assert [row.score for row in ranked] == sorted((row.score for row in ranked), reverse=True)
    policy = EvaluationPolicy()
    assert all(row.band == band(row.score, policy).code for row in ranked)
    worst = evaluation.bottom[-1]
    assert worst.raised > 0 and worst.score < evaluation.top[0].score  # the run's warnings cost points
    for row in ranked:
        rates = (row.online, row.disposal, row.timeliness, row.false_alarm)
        assert all(rate is None or 0 <= rate <= 1 for rate in rates), row
        assert row.online is not None  # every device was expected online in the window
    assert any(row.timeliness is not None for row in evaluation.bottom)  # stages settled: on time or missed


def test_the_report_is_written_where_a_person_can_open_it(short_run: DemoRun) -> None:
    import openpyxl

    evaluation = _evaluation(short_run)
    files = {artifact: Path(path) for artifact, path in evaluation.files.items()}
    assert files == {kind: short_run.report_dir / f"report.{kind}" for kind in ("json", "xlsx", "html")}
    sheet = openpyxl.load_workbook(files["xlsx"], read_only=True)["企业"]
    names = [row[1] for row in sheet.iter_rows(min_row=3, values_only=True) if row and row[0] is not None]
    assert len(names) == evaluation.enterprises
    assert {row.name for row in [*evaluation.top, *evaluation.bottom]} <= set(names)
    page = files["html"].read_text(encoding="utf-8")
    assert all(row.name in page for row in [*evaluation.top, *evaluation.bottom])
    assert "<svg" in page and "至" in page  # the charts, and the window's local times in the title
    assert files["html"].name in short_run.output and files["xlsx"].name in short_run.output  # paths printed


# --- the pieces, without a run -----------------------------------------------------------------------------------


def test_personas_cover_every_behaviour_and_a_silent_enterprise_has_a_red_incident() -> None:
    registry = load_seed()
    personas = {e.enterprise_id: persona_for(e.enterprise_id) for e in registry.enterprises}
    assert set(personas.values()) == set(Persona)
    red_incidents = [i for i in INCIDENTS if re.search(r"\bred\b", i.label)]
    silent_reds = [
        i for i in red_incidents if personas[registry.by_device[i.device_id].enterprise_id] is Persona.SILENT
    ]
    assert silent_reds, "tier 3 needs a red nobody answers"


def test_a_run_that_stops_early_leaves_no_summary_of_an_earlier_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stale = tmp_path / "summary.json"
    stale.write_text("{}", encoding="utf-8")

    def interrupted(options: object, out: object) -> DemoSummary:
        raise KeyboardInterrupt

    monkeypatch.setattr(orchestration, "run", interrupted)
    assert cli.main(["--summary", str(stale)], out=io.StringIO()) == cli.EXIT_INTERRUPTED
    assert not stale.exists()


class _Queues:
    """Just enough SQS for the feed: each queue hands out its messages once."""

    def __init__(self, messages: dict[str, list[dict[str, Any]]]) -> None:
        self._messages = messages

    def receive_message(self, QueueUrl: str, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3's name
        return {"Messages": self._messages.pop(QueueUrl, [])}

    def delete_message_batch(self, **_: Any) -> None:
        return None


def _escalation_message(body: dict[str, Any], audiences: list[str], receipt: str) -> dict[str, Any]:
    attribute = {"DataType": "String.Array", "StringValue": json.dumps(audiences)}
    return {"Body": json.dumps(body), "ReceiptHandle": receipt, "MessageAttributes": {"audience": attribute}}


def test_an_sms_sent_after_the_feeds_last_round_counts_for_its_change_when_the_feed_stops() -> None:
    text = "【大应急】红色预警 WTEST0003 塘沽化工仓储 储罐液位超高"
    change = {"warning_id": "WTEST0003", "kind": "raise", "level": "red", "enterprise_id": "E-HC-06"}
    body = {"change": change, "sms": text, "recipients": [{"audience": "area"}, {"audience": "emergency"}]}
    message = {"Body": json.dumps(body), "ReceiptHandle": "a1", "MessageAttributes": {}}
    sms_log: list[tuple[str, str]] = []
    feed = WarningFeed(
        _Queues({"area-url": [message]}),
        {"area": "area-url"},
        lambda: list(sms_log),
        {"+8613800000001": "area", "+8613800000002": "emergency"},
        lambda entry: None,
    )
    sms_log.append(("+8613800000001", text))
    feed.poll_once()
    sms_log.append(("+8613800000002", text))  # the deliver function was behind: sent after the last round
    feed.stop()

    [entry] = feed.stats().entries
    assert dict(entry.sms_sent) == {"area": 1, "emergency": 1}


def test_the_feed_shows_an_escalation_once_with_the_queues_and_the_sms_of_its_delivery_receipts() -> None:
    body = {
        "type": "escalation",
        "warning_id": "WTEST0001",
        "change": "escalation_tier1",
        "tier": 1,
        "stage": "acknowledge",
        "retell": False,
        "reason": "acknowledge_overdue",
        "level": "red",
        "sector": "hazchem",
        "enterprise_id": "E-HC-06",
        "at": "2025-06-01T03:12:00.123456+00:00",
    }
    queues = _Queues(
        {
            "duty-url": [_escalation_message(body, ["duty", "enterprise"], "d1")],
            "enterprise-url": [_escalation_message(body, ["duty", "enterprise"], "e1")],
        }
    )

    def receipt(job_id: str, channel: str, audience: str, recipient: str) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "kind": "escalation",
            "channel": channel,
            "audience": audience,
            "recipient": recipient,
            "outcome": "sent",
            "attempts": 1,
        }

    this_job = "escalation:WTEST0001:v3:escalate:acknowledge:t1"
    receipts: list[dict[str, Any]] = []
    shown: list[EscalationEntry] = []
    feed = WarningFeed(
        queues,
        {"duty": "duty-url", "enterprise": "enterprise-url"},
        list,
        {},
        lambda entry: None,
        on_escalation=shown.append,
        receipts=lambda warning_id: receipts if warning_id == "WTEST0001" else [],
        escalation_wait_s=0.0,
    )
    feed.poll_once()
    receipts.extend(
        [
            receipt(this_job, "sms", "duty", "P-DUTY-01"),
            receipt(this_job, "sms", "enterprise", "P-ENT"),
            receipt(this_job, "inbox", "duty", "duty"),
            receipt("escalation:WTEST0001:v3:escalate:verify:t2", "sms", "regulator", "P-REG"),  # another stage
        ]
    )
    feed.poll_once()
    feed.poll_once()

    assert len(shown) == 1
    entry = shown[0]
    assert (entry.tier, entry.warning_id, entry.delivered_to) == (1, "WTEST0001", {"duty", "enterprise"})
    assert dict(entry.sms_sent) == {"duty": 1, "enterprise": 1}
    assert feed.stats().escalations_by_tier == {1: 1}


def test_an_escalation_shown_before_its_receipts_is_followed_by_its_deliveries_when_they_come() -> None:
    body = {
        "type": "escalation",
        "warning_id": "WTEST0002",
        "change": "escalation_tier3",
        "tier": 3,
        "stage": "clear",
        "retell": False,
        "reason": "clear_overdue",
        "level": "red",
        "enterprise_id": "E-HC-06",
        "at": "2025-06-01T03:30:00+00:00",
    }
    receipts: list[dict[str, Any]] = []
    shown: list[EscalationEntry] = []
    delivered: list[EscalationEntry] = []
    feed = WarningFeed(
        _Queues({"emergency-url": [_escalation_message(body, ["emergency"], "m1")]}),
        {"emergency": "emergency-url"},
        list,
        {},
        lambda entry: None,
        on_escalation=shown.append,
        receipts=lambda warning_id: receipts,
        on_delivered=delivered.append,
        escalation_wait_s=0.0,
    )
    feed.poll_once()
    feed.poll_once()
    assert len(shown) == 1 and not shown[0].sms_sent and delivered == []  # the deliver function is behind

    job = "escalation:WTEST0002:v7:escalate:clear:t3"
    receipts += [
        {"job_id": job, "channel": "sms", "audience": "emergency", "recipient": r, "outcome": "sent"}
        for r in ("P-EMG-01", "P-EMG-02")
    ]
    feed.poll_once()
    feed.stop()  # shows what is pending at once

    assert [dict(entry.sms_sent) for entry in delivered] == [{"emergency": 2}]


def test_escalations_of_one_stage_at_two_due_versions_each_count_their_own_jobs_receipts() -> None:
    body = {"warning_id": "W1", "stage": "acknowledge", "tier": 1, "retell": False}
    rows = [
        {
            "job_id": f"escalation:W1:v{version}:escalate:acknowledge:t1",
            "channel": "sms",
            "outcome": "sent",
            "audience": audience,
        }
        for version, audience in ((12, "duty"), (3, "enterprise"), (12, "enterprise"))
    ]
    assert escalation_sms(body, 0, rows) == {"enterprise": 1}  # v3 first: by version number, not as text
    assert escalation_sms(body, 1, rows) == {"duty": 1, "enterprise": 1}
    assert escalation_sms({**body, "retell": True}, 0, rows) == {}


def test_the_delivery_summary_counts_receipts_and_times_sms_from_the_moment_of_their_job() -> None:
    from local.demo.observations import delivery_summary

    def row(job_id: str, kind: str, channel: str, audience: str, at: float, **extra: Any) -> dict[str, Any]:
        base = {"job_id": job_id, "kind": kind, "channel": channel, "audience": audience, "recipient": audience}
        return {**base, "outcome": "sent", "attempts": 1, "at": at, "reason": "", **extra}

    change = "warning_change:W1:17000000000000"  # a reading at 1,700,000,000.000 s
    receipts = {
        "W1": [
            row(change, "warning_change", "sms", "enterprise", 1_700_000_001.5),
            row(change, "warning_change", "inbox", "duty", 1_700_000_001.2),
            row("reminder:W1:1700000060", "reminder", "sms", "enterprise", 1_700_000_062.0, attempts=2),
            row("reminder:W1:1700000060", "reminder", "inbox", "enterprise", 1_700_000_061.0),
            row("reminder:W1:1700000120", "reminder", "inbox", "enterprise", 1_700_000_121.0),
        ],
        "W2": [
            row(
                "escalation:W2:v1:escalate:acknowledge:t1",
                "escalation",
                "sms",
                "duty",
                5.0,
                outcome="failed",
                reason="invalid_phone",
            )
        ],
    }
    summary = delivery_summary(receipts)

    assert summary.jobs_by_kind == {"warning_change": 1, "reminder": 2, "escalation": 1}
    assert summary.by_kind["reminder"] == {"sms": 1, "inbox": 2}
    assert summary.by_audience["sms"] == {"enterprise": 2, "duty": 1}
    assert (summary.outcomes, summary.failed_reasons, summary.retried) == (
        {"sent": 5, "failed": 1},
        {"invalid_phone": 1},
        1,
    )
    assert summary.reminder_sms_for_one_warning == 1
    assert summary.sms_latency_s["warning_change"].median_s == 1.5
    assert "reminder" not in summary.sms_latency_s  # its only SMS took two attempts: not the path's latency
