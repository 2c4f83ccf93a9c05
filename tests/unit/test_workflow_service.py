"""The workflow use case with small fakes and the real domain (lifecycle + due times): a timer's due message is
turned into what fell due (escalation of the missed stage, reminder, re-telling after a level-up, archive), told
once, and the next timer armed; stale and malformed messages; the sweeper re-arms from the stored due times."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain import due
from chalicelib.domain.catalog import build_policy
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import Actor, apply_action, parse_action
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.delivery_fakes import DeliverAtOnce
from chalicelib.services.fakes import SAMPLE_ENTERPRISE, sample_warning
from chalicelib.services.workflow import WorkflowMessage, WorkflowService, WorkflowTimers

NOW = 1_800_000_000.0
POLICY = build_policy({"workflow": {"sweep_grace_s": 30}})
ENTERPRISE = SAMPLE_ENTERPRISE
PEOPLE = (
    Person(person_id="D1", name="值守", role="duty", phone="+8613900000002"),
    Person(
        person_id="R1",
        name="应急局",
        role="regulator",
        phone="+8613900000003",
        department="emergency_bureau",
        sectors=(Sector.HAZCHEM,),
    ),
    Person(
        person_id="R2",
        name="消防",
        role="regulator",
        phone="+8613900000004",
        department="fire_rescue",
        sectors=(Sector.FIRE,),
    ),
    Person(person_id="A1", name="大港", role="area", phone="+8613900000005", area_codes=("DAGANG",)),
    Person(person_id="A2", name="汉沽", role="area", phone="+8613900000006", area_codes=("HANGU",)),
    Person(person_id="M1", name="应急局领导", role="emergency", phone="+8613900000007"),
)


def record(warning_id: str = "WAAAA", level: int = Level.RED, raised_at: float = NOW - 600) -> WarningRecord:
    """A raised warning with its due times stamped, as the store writes it."""
    return sample_warning(warning_id, level, raised_at, POLICY.deadlines)


class FakeExecutions:
    def __init__(self, statuses: dict[str, str] | None = None) -> None:
        self.statuses = dict(statuses or {})
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.stopped: list[str] = []

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        if name in self.statuses:
            return False
        self.statuses[name] = "RUNNING"
        self.started.append((name, payload))
        return True

    def stop(self, name: str) -> None:
        self.stopped.append(name)
        if self.statuses.get(name) == "RUNNING":
            self.statuses[name] = "ABORTED"

    def running_names(self) -> set[str]:
        return {name for name, status in self.statuses.items() if status == "RUNNING"}


class Store:
    """The warnings and the audited action path: the real lifecycle, due times restamped on every write."""

    def __init__(self, records: Sequence[WarningRecord] = ()) -> None:
        self.records = {r.warning_id: r for r in records}
        self.actions: list[dict[str, Any]] = []

    def get(self, warning_id: str) -> WarningRecord | None:
        return self.records.get(warning_id)

    def act(self, actor: Actor, warning_id: str, payload: Any) -> Any:
        transition = apply_action(self.records[warning_id], parse_action(payload), actor, NOW)
        self.records[warning_id] = due.restamp(transition.record, POLICY.deadlines)
        self.actions.append(payload)
        return transition

    def open_warnings(self) -> Iterable[WarningRecord]:
        return [r for r in self.records.values() if r.is_open]


class FakeDirectory:
    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        return ENTERPRISE if enterprise_id == "E1" else None

    def people(self) -> Sequence[Person]:
        return PEOPLE


class FakeTopic:
    def __init__(self) -> None:
        self.published: list[tuple[dict[str, Any], dict[str, dict[str, str]]]] = []

    def publish(self, body: dict[str, Any], attributes: dict[str, dict[str, str]]) -> None:
        self.published.append((body, attributes))


class World:
    def __init__(self, records: Sequence[WarningRecord] = (), statuses: dict[str, str] | None = None) -> None:
        self.now = NOW
        self.executions = FakeExecutions(statuses)
        self.store = Store(records)
        self.delivery = DeliverAtOnce(FakeDirectory())  # the delivery queue and handler, in one step
        self.sms = self.delivery.sms
        self.topic = FakeTopic()
        self.timers = WorkflowTimers(self.executions, self.store, lambda: self.now)
        self.slept: list[float] = []
        self.service = WorkflowService(
            POLICY,
            self.timers,
            self.executions,
            self.store,
            self.store,
            self.store,
            FakeDirectory(),
            self.delivery,
            self.topic,
            clock=lambda: self.now,
            sleep=self.sleep,
        )

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def fire(self, warning_id: str = "WAAAA", version: int | None = None) -> Any:
        record = self.store.get(warning_id)
        times = due.stored(record) if record else None
        body = {"type": "due", "warning_id": warning_id, "due_version": version or (times.version if times else 1)}
        return self.service.handle([WorkflowMessage("m", json.dumps(body))])

    def phones(self) -> set[str]:
        return {phone for phone, _ in self.sms.sent}


DUTY, REGULATOR, AREA, BUREAU, ENTERPRISE_PHONE = (
    "+8613900000002",
    "+8613900000003",
    "+8613900000005",
    "+8613900000007",
    "+8613900000001",
)


def without_reminders(r: WarningRecord) -> WarningRecord:
    """Reminders well in the future, so that a test sees only the stage it is about."""
    times = due.stored(r)
    assert times is not None
    details = {**r.details, "reminder": {"slot": NOW + 10_000, "armed_at": times.armed_at, "count": 1}}
    return due.restamp(replace(r, details=details), POLICY.deadlines)


def test_a_raise_arms_one_timer_named_after_the_due_version_sleeping_until_the_next_due_time() -> None:
    world = World([record(raised_at=NOW)])
    world.timers.track("WAAAA")
    world.timers.track("WAAAA")  # a redelivered raise

    assert world.executions.started == [
        (
            "WAAAA-1",
            {
                "warning_id": "WAAAA",
                "due_version": 1,
                "wait_s": 119,  # wakes due.TIMER_LEAD_S to a second early
                "due_at": NOW + 120,
                "due_kind": "remind",
                "level": "red",
            },
        )
    ]


def test_a_missed_acknowledgement_reaches_tier_one_once_texted_to_duty_and_enterprise_naming_the_stage() -> None:
    world = World([without_reminders(record())])  # raised 600 s ago: red acknowledge (300 s) missed
    report = world.fire()

    assert report.failed_message_ids == [] and report.escalations == 1
    assert world.store.actions[0] == {"type": "escalate", "tier": 1, "stage": "acknowledge", "retell": False}
    assert world.phones() == {DUTY, ENTERPRISE_PHONE}
    assert all(len(text) <= 70 and "超时未签收" in text for _, text in world.sms.sent)
    body, attributes = world.topic.published[0]
    assert (
        body["change"] == "escalation_tier1" and attributes["audience"]["StringValue"] == '["duty", "enterprise"]'
    )


def test_the_next_timer_is_armed_at_the_next_stage_and_a_duplicate_message_is_stale() -> None:
    world = World([without_reminders(record())])
    world.fire()
    times = due.stored(world.store.records["WAAAA"])
    assert times is not None and times.next_kind == "verify"
    assert world.executions.started[-1][0] == times.timer
    assert world.executions.started[-1][1]["wait_s"] == 299  # raised 600 s ago, verify at 900 s, less the lead

    report = world.fire(version=times.version - 1)  # the same message again
    assert report.stale == 1 and report.escalations == 0 and len(world.sms.sent) == 2


def test_red_never_acknowledged_reaches_tiers_one_two_three_once_each_in_order() -> None:
    world = World([without_reminders(record(raised_at=NOW))])
    tiers: list[tuple[int, str]] = []
    for offset in (300, 900, 7200):
        world.now = NOW + offset
        world.fire()
        world.fire()  # a duplicate: stale now
        tiers += [(a["tier"], a["stage"]) for a in world.store.actions if a["type"] == "escalate"][len(tiers) :]

    assert tiers == [(1, "acknowledge"), (2, "verify"), (3, "clear")]
    assert "超时未消警" in world.sms.sent[-1][1] and world.sms.sent[-1][0] == BUREAU


def test_orange_missed_clear_reaches_tier_two_again_naming_the_clear_not_the_verification() -> None:
    verified = replace(record(level=Level.ORANGE, raised_at=NOW - 20_000), status=WarningStatus.DISPOSING)
    world = World([due.restamp(verified, POLICY.deadlines)])
    world.fire()

    assert world.store.actions == [{"type": "escalate", "tier": 2, "stage": "clear", "retell": False}]
    assert world.phones() == {REGULATOR, AREA, DUTY}
    assert all("超时未消警" in text and "核实反馈" not in text for _, text in world.sms.sent)


def test_a_clear_awaiting_confirmation_past_its_deadline_reaches_the_emergency_bureau() -> None:
    request = {"reason": "disposed", "text": "已处置", "at": NOW - 2000}
    waiting = replace(record(raised_at=NOW - 2100), status=WarningStatus.CLEAR_REQUESTED)
    waiting = due.restamp(
        replace(waiting, details={**waiting.details, "clear_request": request}), POLICY.deadlines
    )
    world = World([waiting])
    world.fire()

    assert world.store.actions == [{"type": "escalate", "tier": 3, "stage": "confirm", "retell": False}]
    assert world.phones() == {BUREAU, DUTY}
    assert all("确认消警" in text for _, text in world.sms.sent)


def test_a_reminder_goes_to_the_enterprise_while_nobody_acknowledges() -> None:
    world = World([record(raised_at=NOW - 121)])
    report = world.fire()

    assert report.reminders == 1 and world.phones() == {ENTERPRISE_PHONE}
    assert "尚未签收" in world.sms.sent[0][1]
    times = due.stored(world.store.records["WAAAA"])
    assert times is not None and times.next_reminder == NOW - 121 + 240


@pytest.mark.parametrize(
    ("level", "age_s", "texted"),
    [
        (Level.YELLOW, 601, True),  # the first reminder: yellow texts one (reminder_sms = 1)
        (Level.YELLOW, 1201, False),  # the second: the inbox only
        (Level.BLUE, 1801, False),  # blue never texts a reminder: its raise was its one SMS
    ],
)
def test_reminders_reach_the_inbox_every_time_and_the_phone_only_for_the_levels_first_ones(
    level: Level, age_s: float, texted: bool
) -> None:
    world = World([record(level=level, raised_at=NOW - age_s)])
    report = world.fire()

    assert report.reminders == 1
    assert world.phones() == ({ENTERPRISE_PHONE} if texted else set())
    [job] = world.delivery.jobs
    assert job.kind == "reminder" and [item.kind for item in world.delivery.inbox.items.values()] == ["reminder"]
    assert world.topic.published[-1][0]["sms"] is texted


def test_a_level_up_tells_the_new_levels_wider_audience_of_a_tier_already_reached_once() -> None:
    world = World([without_reminders(record(level=Level.ORANGE, raised_at=NOW - 700))])
    world.fire()  # orange acknowledge (600 s) missed: tier 1
    assert world.phones() == {DUTY, ENTERPRISE_PHONE}
    raised = world.store.records["WAAAA"]
    world.store.records["WAAAA"] = due.restamp(
        replace(raised, level=Level.RED, peak_level=Level.RED, updated_at=NOW), POLICY.deadlines
    )
    world.sms.sent.clear()

    world.fire()
    world.fire()

    assert world.store.actions[-1] == {"type": "escalate", "tier": 1, "stage": "acknowledge", "retell": True}
    assert world.phones() == {BUREAU}  # red's audience beyond orange's: the emergency bureau
    assert len(world.sms.sent) == 1 and "预警升为红色" in world.sms.sent[0][1]


class CrashOnce:
    """The delivery queue unreachable once: the process dies after recording a due item, before telling anyone."""

    def __init__(self, jobs: DeliverAtOnce) -> None:
        self.jobs, self.failed = jobs, False

    def enqueue(self, jobs: Sequence[Any]) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("delivery queue unreachable")
        self.jobs.enqueue(jobs)


def test_an_escalation_recorded_before_a_crash_is_told_when_its_message_comes_again_and_only_once() -> None:
    world = World([without_reminders(record())])  # red acknowledge missed
    world.service._jobs = CrashOnce(world.delivery)
    version = due.stored(world.store.records["WAAAA"]).version  # type: ignore[union-attr]

    crashed = world.fire()
    assert crashed.failed_message_ids == ["m"] and world.sms.sent == []
    assert due.escalated(world.store.records["WAAAA"], due.Stage.ACKNOWLEDGE, Level.RED)

    redelivered = world.fire(version=version)  # the queue redelivers the message that failed
    assert redelivered.stale == 1 and redelivered.escalations == 0 and redelivered.retold_jobs == 1
    assert world.phones() == {DUTY, ENTERPRISE_PHONE} and all("超时未签收" in t for _, t in world.sms.sent)

    sent = len(world.sms.sent)
    again = world.fire(version=version)  # a duplicate of it: the job again, nobody texted twice
    assert again.retold_jobs == 1 and len(world.sms.sent) == sent
    assert len(world.topic.published) == 1  # published before the crash, not again from a redelivery


def test_stages_missed_together_are_texted_once_whatever_version_is_redelivered() -> None:
    world = World([without_reminders(record(raised_at=NOW - 100_000))])  # acknowledge, verify, clear all missed
    first = due.stored(world.store.records["WAAAA"]).version  # type: ignore[union-attr]

    assert world.fire().escalations == 3
    sent = list(world.sms.sent)
    last = due.stored(world.store.records["WAAAA"]).version  # type: ignore[union-attr]
    for version in range(first, last + 1):  # every version the three escalations were recorded under, again
        world.fire(version=version)

    assert world.sms.sent == sent and len(world.topic.published) == 3


def test_a_reminder_recorded_before_a_crash_is_sent_when_its_message_comes_again() -> None:
    world = World([record(raised_at=NOW - 121)])
    world.service._jobs = CrashOnce(world.delivery)
    version = due.stored(world.store.records["WAAAA"]).version  # type: ignore[union-attr]

    assert world.fire().failed_message_ids == ["m"] and world.sms.sent == []
    report = world.fire(version=version)
    assert report.retold_jobs == 1 and world.phones() == {ENTERPRISE_PHONE}
    assert "尚未签收" in world.sms.sent[0][1]


def test_a_retell_recorded_before_a_crash_reaches_the_new_levels_audience_on_redelivery() -> None:
    world = World([without_reminders(record(level=Level.ORANGE, raised_at=NOW - 700))])
    world.fire()  # orange tier 1
    raised = world.store.records["WAAAA"]
    world.store.records["WAAAA"] = due.restamp(
        replace(raised, level=Level.RED, peak_level=Level.RED, updated_at=NOW), POLICY.deadlines
    )
    world.sms.sent.clear()
    world.service._jobs = CrashOnce(world.delivery)
    version = due.stored(world.store.records["WAAAA"]).version  # type: ignore[union-attr]

    assert world.fire().failed_message_ids == ["m"] and world.sms.sent == []
    assert world.fire(version=version).retold_jobs == 1
    assert world.phones() == {BUREAU} and "预警升为红色" in world.sms.sent[0][1]


def test_a_closed_warning_is_archived_by_its_timer_in_the_audit_path() -> None:
    closed = replace(record(), status=WarningStatus.CLOSED)
    closed = due.restamp(replace(closed, details={**closed.details, "closure": {"at": NOW - 1}}), POLICY.deadlines)
    world = World([closed])
    report = world.fire()

    assert report.archived == 1 and world.store.records["WAAAA"].status is WarningStatus.ARCHIVED
    assert world.store.actions == [{"type": "archive"}]
    assert world.fire(version=99).stale == 1


def test_a_timer_waking_early_is_re_armed_for_the_remainder_under_a_fresh_name() -> None:
    world = World([without_reminders(record(raised_at=NOW - 295))])  # acknowledge due in 5 s
    report = world.fire()

    assert report.rearmed == 1 and world.store.actions == []
    name, payload = world.executions.started[-1]
    assert name.startswith("WAAAA-2_e") and payload["wait_s"] == 4  # 5 s, less the lead


def test_a_timer_woken_within_the_whole_second_rounding_sleeps_the_rest_and_acts_on_time() -> None:
    world = World([without_reminders(record(raised_at=NOW - 299.4))])  # acknowledge due in 0.6 s
    report = world.fire()

    assert (report.rearmed, report.escalations) == (0, 1)
    assert world.slept == [pytest.approx(0.6)] and world.now == pytest.approx(NOW + 0.6)

    skewed = World([without_reminders(record(raised_at=NOW - 299.97))])
    assert skewed.fire().escalations == 1 and skewed.slept == []  # within the clock tolerance: due now


def test_a_timer_woken_earlier_than_the_rounding_re_arms_without_sleeping() -> None:
    world = World([without_reminders(record(raised_at=NOW - 298))])  # due in 2 s: not the rounding, a wrong clock
    report = world.fire()

    assert (report.rearmed, report.escalations, world.slept) == (1, 0, [])
    assert world.executions.started[-1][1]["wait_s"] == 1  # 2 s, less the lead


def test_a_batch_is_handled_in_order_of_due_time_so_a_sleep_makes_no_later_message_late() -> None:
    later = without_reminders(record(warning_id="WLATE", raised_at=NOW - 299.2))  # due in 0.8 s
    sooner = without_reminders(record(warning_id="WSOON", raised_at=NOW - 299.5))  # due in 0.5 s
    world = World([later, sooner])
    messages = [
        WorkflowMessage(r.warning_id, json.dumps({"type": "due", "warning_id": r.warning_id, "due_version": 2}))
        for r in (later, sooner)
    ]
    messages = [
        WorkflowMessage(m.message_id, json.dumps({**json.loads(m.body), "due_at": r.raised_at + 300}))
        for m, r in zip(messages, (later, sooner), strict=True)
    ]
    report = world.service.handle(messages)

    assert report.escalations == 2
    assert world.slept == [pytest.approx(0.5), pytest.approx(0.3)]  # never past a due time, never back


def test_malformed_messages_are_reported_as_failures_and_logged_and_the_rest_handled(
    caplog: Any,
) -> None:
    world = World([without_reminders(record())])
    bad = [
        WorkflowMessage("not-json", "{not json"),
        WorkflowMessage("no-type", json.dumps({"warning_id": "WAAAA"})),
        WorkflowMessage("bad-version", json.dumps({"type": "due", "warning_id": "WAAAA", "due_version": "x"})),
    ]
    good = WorkflowMessage("ok", json.dumps({"type": "due", "warning_id": "WAAAA", "due_version": 2}))
    report = world.service.handle([*bad, good])

    assert report.failed_message_ids == ["not-json", "no-type", "bad-version"] == report.malformed
    assert report.escalations == 1
    assert sum("malformed workflow message" in r.message for r in caplog.records) == 3


def test_an_unknown_or_archived_warning_is_stale() -> None:
    archived = replace(record(), status=WarningStatus.ARCHIVED)
    world = World([archived])
    assert world.fire("WNONE", 1).stale == 1
    assert world.fire("WAAAA", 1).stale == 1 and world.store.actions == []


def test_the_sweeper_re_arms_from_the_stored_due_times_and_not_again_while_the_repair_runs() -> None:
    lost = without_reminders(record("WLOST"))  # its timer never started
    failed = without_reminders(record("WFAIL"))
    live = without_reminders(record("WLIVE"))
    young = record("WYOUNG", raised_at=NOW - 5)
    world = World([lost, failed, live, young], {"WFAIL-2": "FAILED", "WLIVE-2": "RUNNING"})

    assert sorted(world.service.sweep().repaired) == ["WFAIL", "WLOST"]
    assert world.service.sweep().repaired == []
    started = dict(world.executions.started)
    assert set(started) == {f"WLOST-2_r{int(NOW)}", f"WFAIL-2_r{int(NOW)}"}
    assert started[f"WFAIL-2_r{int(NOW)}"]["due_at"] == NOW - 600 + 300  # the stored clock, not a restart
    assert started[f"WFAIL-2_r{int(NOW)}"]["wait_s"] == 0


def test_an_action_supersedes_the_previous_timer() -> None:
    world = World([record(raised_at=NOW)])
    before = due.stored(world.store.records["WAAAA"])
    assert before is not None
    world.store.act(Actor(user_id="u", role="enterprise", enterprise_id="E1"), "WAAAA", {"type": "acknowledge"})

    world.timers.superseding(world.store.records["WAAAA"], before.version)

    assert [name for name, _ in world.executions.started] == ["WAAAA-2"]
    assert world.executions.stopped == ["WAAAA-1"]


def test_the_sweeper_leaves_a_just_changed_warning_and_reads_past_a_lagging_index() -> None:
    changed = replace(without_reminders(record("WCHANGED")), updated_at=NOW - 1)  # its writer may still be arming
    current = without_reminders(record("WLAG"))  # version 2 in the table, its timer running
    lagging = record("WLAG")  # version 1, as a lagging open index still shows it
    world = World([changed, current], {"WLAG-2": "RUNNING"})
    world.store.open_warnings = lambda: [changed, lagging]  # type: ignore[method-assign]

    assert world.service.sweep().repaired == []
    assert world.executions.started == []
