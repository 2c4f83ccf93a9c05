"""The machine-readable summary of a demo run (`--summary PATH`, JSON; fields documented in docs/demo.md).

It holds everything the checks look at: the checks read nothing but this model (`local.demo.checks`), so a failing
check can always be explained from the file. The terminal summary is rendered from it too. Keys are the codes the
API uses (sector `hazchem`, level `red`, audience `emergency`, status `closed`), never the Chinese labels.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

SCHEMA_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunOptions(_Model):
    duration_s: float
    step_s: float
    fast: bool
    publishing_steps: int


class Timings(_Model):
    """Wall-clock seconds. A busy machine shows here (the fleet waiting, a long drain), never in the checks."""

    started_at: datetime  # UTC, when the platform began to start
    startup_s: float  # moto, broker, bridge, pollers, API and the seeded registry
    publishing_s: float  # the fleet's steps, the waits for the platform included
    fleet_waited_s: float  # of which: the fleet waiting for the platform to catch up
    drain_s: float  # from the end of publishing until everything settled (or a bounded wait gave up)
    run_s: float  # from the fleet's first step to the summary read from the tables
    total_s: float  # start-up to the summary written


class MessageCounts(_Model):
    published: int
    published_good: int
    published_bad: int
    graded: int  # by the ingest handler
    quarantined: int  # by the ingest handler
    rule_errors: int  # refused by the topic rule (its error action)
    presence: int  # lifecycle messages (connected/disconnected), neither graded nor quarantined
    in_flight: int  # published - graded - quarantined - rule errors; 0 when every message is accounted for
    in_flight_detail: dict[str, int]  # where the ones in flight are: not yet at the bridge, on the stream, ...


class BadMessageOutcome(_Model):
    device_id: str
    topic: str
    expected_reason: str
    got_reason: str | None  # the reason of the Quarantine row matched by topic and bytes; None: not quarantined
    passed: bool


class UnexpectedQuarantine(_Model):
    device_id: str
    reason: str
    detail: str


class QuarantineSummary(_Model):
    by_reason: dict[str, int]  # rows of the run in the Quarantine table, every reason listed (0 included)
    expected_by_reason: dict[str, int]  # from the bad messages the fleet sent, every reason listed
    table_rows: int
    bad_messages: list[BadMessageOutcome]
    unexpected: list[UnexpectedQuarantine]  # rows no bad message explains: a good message quarantined


class WarningSummary(_Model):
    raised: dict[str, dict[str, int]]  # sector -> level -> warnings raised at or raised to it (every cell listed)
    by_peak_level: dict[str, int]  # warnings of the run by the highest level they reached (data quality apart)
    data_quality: int  # data-quality findings (a sensor fault), counted apart from the hazard levels
    changes_by_kind: dict[str, int]  # warning changes seen on the audience consoles: raise, level_up, ...
    routing_mismatches: int  # changes that reached other queues than the audiences they were routed to


class SmsSummary(_Model):
    total: int
    by_audience: dict[str, int]
    for_raises_by_level: dict[str, dict[str, int]]  # raise and level_up changes: level -> audience -> SMS sent
    planned_for_changes: int  # recipients the platform addressed in its warning-change messages
    for_escalations: int  # SMS of escalations, from their delivery receipts


class Latency(_Model):
    n: int
    median_s: float | None
    p95_s: float | None
    max_s: float | None


class DeliverySummary(_Model):
    """Every delivery of the run's warnings, from the delivery receipts (docs/delivery.md "Receipts"): one per
    (job, recipient, channel), its latest outcome and how many attempts it took."""

    jobs_by_kind: dict[str, int]  # delivery jobs with at least one receipt: warning_change, reminder, escalation
    by_kind: dict[str, dict[str, int]]  # kind -> channel (sms, inbox) -> deliveries
    by_audience: dict[str, dict[str, int]]  # channel -> audience -> deliveries
    outcomes: dict[str, int]  # sent, failed, unknown, retrying
    failed_reasons: dict[str, int]  # reason -> failed or unknown deliveries
    retried: int  # attempts beyond the first, over all deliveries
    reminder_sms_for_one_warning: int  # the most reminder SMS any one warning's on-duty person received
    # kind -> seconds from the moment the job is about (a warning change: its reading; a reminder: its slot) to
    # the SMS handed to the channel (the receipt of a first attempt)
    sms_latency_s: dict[str, Latency] = Field(default_factory=dict)


class EscalationItem(_Model):
    warning_id: str
    enterprise_id: str
    sector: str
    level: str
    tier: int
    reason: str  # acknowledge_overdue, verify_overdue, clear_overdue
    at: float  # epoch seconds: when the workflow's state was entered
    delivered_to: list[str]  # the audience queues that received it
    sms_by_audience: dict[str, int]


class EscalationSummary(_Model):
    by_tier: dict[int, int]  # escalations published by tier (1, 2, 3 always listed)
    clear_overdue_tier2: int  # of the tier 2s: a non-red warning past its clear deadline
    reminders: int
    most_reminders_for_one_warning: int  # reminders repeat while nobody acknowledges
    sms: int
    recorded_tiers: dict[int, int]  # warnings by the highest tier recorded on them (details.escalation_tier)
    published: list[EscalationItem]


class PeopleSummary(_Model):
    personas: dict[str, int]  # enterprise apps by persona: prompt, false_alarm, late, silent
    accepted: dict[str, dict[str, int]]  # role -> action type -> actions the API accepted (2xx)
    answers: dict[int, int]  # HTTP status -> actions
    unexpected_answers: list[str]  # actions answered neither 2xx nor 409 (409: the lifecycle refusing)


class TimeStats(_Model):
    n: int
    median_s: float | None
    max_s: float | None


class OldestRunning(_Model):
    execution: str
    transitions: int


class LoopSummary(_Model):
    """The closed loop: what the disposal workflow and people did (the Warning table, the executions)."""

    acknowledge_s: dict[str, TimeStats]  # peak level -> seconds from the raise to the acknowledgement
    clear_s: dict[str, TimeStats]  # peak level -> seconds from the raise to the closure
    closures_by_how: dict[str, int]  # enterprise, duty_confirmed, duty_false_alarm
    closed: int  # closed during the run (archived ones included)
    archived: int
    still_open: dict[str, int]  # status -> warnings still open at the end
    transitions_archived: list[int]  # state transitions of each closed and archived warning, all its timers
    oldest_running: OldestRunning | None
    failed_executions: list[str]


class ScenarioWarning(_Model):
    warning_id: str
    data_quality: bool
    peak_level: str
    levels_reached: list[str]
    status: str
    escalation_tier: int  # the highest recorded on it; 0 when none
    acknowledged_after_s: float | None  # seconds from the raise; None when nobody acknowledged it
    closed_after_s: float | None  # seconds from the raise; None while open
    closed_how: str | None  # enterprise, duty_confirmed, duty_false_alarm; None while open


class ScenarioOutcome(_Model):
    """One scripted incident (`local.fleet.INCIDENTS`) and what became of it."""

    device_id: str
    label: str
    start_step: int
    played: bool  # the run had enough steps for it to start
    sector: str
    enterprise_id: str
    persona: str
    warnings: list[ScenarioWarning]


class EnterpriseResult(_Model):
    """An enterprise in the evaluation report: its place, score and key indicators (rates 0..1, None: no data)."""

    enterprise_id: str
    name: str
    sector: str
    rank: int  # district-wide, 1 = the best
    score: float
    band: str  # blue, yellow, orange, red
    raised: int  # warnings raised in the window
    online: float | None  # 在线率
    disposal: float | None  # 处置率
    timeliness: float | None  # 及时率
    false_alarm: float | None  # 误报率


class EvaluationSummary(_Model):
    """The evaluation of the demo's own window, run by the duty officer through `POST /evaluations` (kind custom)
    and read back through the API: the report, its S3 keys and the artifacts downloaded by their presigned URLs."""

    report_id: str | None  # custom-{local start}-{local end}; None when the run was refused or failed
    start: float  # epoch seconds: the window [start, end) asked for
    end: float
    requested_by: str
    answers: dict[str, int]  # request (run, read, download_xlsx, download_html) -> HTTP status
    problem: str | None  # what went wrong, in a sentence; None when every request answered
    enterprises: int  # enterprises in the report
    missing_enterprises: list[str]  # demo enterprises (the seeded registry) the report does not cover
    bands: dict[str, int]  # enterprises per score band
    report_raised: dict[str, int]  # the report's warnings raised in the window, by peak level
    demo_raised: dict[str, int]  # the run's warnings by peak level (Warning table, data-quality findings included)
    overall: dict[str, float | None]  # the district's online, disposal, timeliness, false_alarm
    top: list[EnterpriseResult]  # the best, best first
    bottom: list[EnterpriseResult]  # the worst, worst last
    s3_keys: dict[str, str]  # json, xlsx, html -> s3://bucket/key
    s3_versions: dict[str, str]  # the S3 version of each key this run wrote
    files: dict[str, str]  # json, xlsx, html -> the local file written (the artifacts by their presigned URLs)
    file_bytes: dict[str, int]
    took_s: float  # the run, the read and the downloads, wall-clock


class DeclarationScene(_Model):
    """The declared outage (申报): a planned stop declared by the enterprise and approved by the sector's regulator
    through the API, then a finding on the device that the window suppressed (local/demo/declarations.py)."""

    declaration_id: str | None  # None: the declaration was refused
    device_id: str
    reason: str
    declared_by: str
    approved_by: str | None
    status: str | None  # as the approval answered
    answers: dict[str, int]  # request (declare, approve, findings) -> HTTP status
    suppressed: list[str]  # the reasons GET /declarations/{id}/findings lists, the newest first
    raised_for_device: int  # data-quality warnings of the device in the Warning table (none: it was suppressed)
    problem: str | None


class OfflineScene(_Model):
    """A device going silent (local/demo/offline.py): its reports stop and IoT Core's lifecycle says it
    disconnected; the offline watch raises an `offline` warning, the device comes back, the warning recovers."""

    device_id: str
    enterprise_id: str
    persona: str  # how its enterprise behaves (silent: nobody acknowledges, the warning escalates)
    silent_at: float | None  # epoch s: its last report, then the disconnect (None: the scene never started)
    raised_at: float | None  # the offline warning's raise as the consoles saw it
    resumed_at: float | None  # reconnected and reporting again
    recovered_at: float | None  # the recovery as the consoles saw it
    warning_id: str | None  # the offline warning in the Warning table
    peak_level: str | None
    escalation_tier: int  # the highest tier recorded on the warning
    reading_normal: bool  # the warning's reading is normal again (recovered)
    status: str | None
    problem: str | None


class DeclarationCase(_Model):
    """One more declaration of the demo (local/demo/declarations.py): `rejected` (a planned stop the regulator
    rejects with a reason) or `expiring` (a short window that the sweep reminds and ends)."""

    case: str  # rejected, expiring
    declaration_id: str | None  # None: the declaration was refused
    device_id: str
    reason: str  # planned_stop, equipment_damage, ...
    declared_by: str
    decided_by: str | None  # the regulator who rejected it
    status: str | None  # as GET /declarations/{id} answered at the end
    rejection_reason: str | None
    window_s: float
    reminded_at: float | None
    audit: list[str]  # the event types of its audit trail (GET /declarations/{id}/audit), oldest first
    delivered: dict[str, int]  # `kind/channel` -> notices sent (its delivery receipts: reminder, decision)
    answers: dict[str, int]  # request -> HTTP status
    problem: str | None


class SectorOnline(_Model):
    """The online-time ledger (`OnlineLedger.days`) of one sector over the demo's local day(s), as the evaluation
    counts 在线率: online / (expected - declared outage)."""

    devices: int
    online: float | None  # 0..1, None: no expected time
    expected_s: float
    online_s: float
    declared_outage_s: float
    undeclared_outage_s: float


class Check(_Model):
    """One pass/fail check of the run: `passed` is `observed == expected` or `observed >= expected`."""

    name: str
    description: str
    comparison: Literal["equals", "at_least"]
    expected: JsonValue
    observed: JsonValue
    passed: bool
    problem: str | None  # what went wrong, in a sentence; None when passed


class DemoSummary(_Model):
    schema_version: int = SCHEMA_VERSION
    options: RunOptions
    timings: Timings
    messages: MessageCounts
    quarantine: QuarantineSummary
    warnings: WarningSummary
    sms: SmsSummary
    escalations: EscalationSummary
    deliveries: DeliverySummary
    people: PeopleSummary
    loop: LoopSummary
    scenarios: list[ScenarioOutcome]
    evaluation: EvaluationSummary | None = None  # None: the run did not get as far (a summary of an older run)
    declaration: DeclarationScene | None = None  # None: a summary of an older run
    offline: OfflineScene | None = None  # None: a summary of an older run
    declarations: list[DeclarationCase] = Field(default_factory=list)  # the rejected and the expiring one
    online_by_sector: dict[str, SectorOnline] = Field(default_factory=dict)  # from the online-time ledger
    checks: list[Check] = Field(default_factory=list)
    passed: bool = False  # every check passed
    exit_code: int = 1

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)

    @property
    def problems(self) -> list[str]:
        return [check.problem for check in self.checks if check.problem]

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)  # a reader never sees half a file

    @classmethod
    def read(cls, path: Path) -> DemoSummary:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))
