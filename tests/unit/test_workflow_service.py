"""The workflow use case with small fakes: what an execution hands back is recorded and told, and the sweeper
gives every open warning a live execution."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from chalicelib.domain.catalog import build_policy
from chalicelib.domain.errors import InvalidTransition
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import Contact, Enterprise, Person
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.workflow import (
    WorkflowMessage,
    WorkflowService,
    WorkflowStarter,
    disposal_input,
)

NOW = 1_800_000_000.0
POLICY = build_policy({"workflow": {"poll_s": 1, "sweep_grace_s": 30}})
ENTERPRISE = Enterprise(
    enterprise_id="E1",
    name="渤化化工有限公司",
    sector=Sector.HAZCHEM,
    area_codes=("DAGANG",),
    contacts=(Contact(name="安全员", phone="+8613900000001"),),
)
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
    return WarningRecord(
        warning_id=warning_id,
        device_id="D",
        enterprise_id="E1",
        enterprise_name=ENTERPRISE.name,
        sector=Sector.HAZCHEM,
        unit_id="U",
        unit_name="罐区",
        point_name="V-101",
        area_codes=("DAGANG",),
        risk_type="tank_level",
        level=level,
        peak_level=level,
        status=WarningStatus.RAISED,
        reading_normal=False,
        raised_at=raised_at,
        updated_at=raised_at,
        title="液位高高报",
        reason="tank_level_hh",
        value=92.0,
        unit="%",
    )


class FakeExecutions:
    def __init__(self, statuses: dict[str, str] | None = None) -> None:
        self.statuses = dict(statuses or {})
        self.started: list[tuple[str, dict[str, Any], str | None]] = []

    def start(self, name: str, payload: dict[str, Any], state_machine_arn: str | None = None) -> bool:
        if name in self.statuses:
            return False
        self.statuses[name] = "RUNNING"
        self.started.append((name, payload, state_machine_arn))
        return True

    def running_warnings(self) -> set[str]:
        return {name.split("-", 1)[0] for name, status in self.statuses.items() if status == "RUNNING"}


class FakeEscalator:
    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[Actor, str, Any]] = []
        self.refuse = refuse

    def act(self, actor: Actor, warning_id: str, payload: Any) -> Any:
        self.calls.append((actor, warning_id, payload))
        if self.refuse:
            raise InvalidTransition("already_escalated", "已升级")
        return object()


class FakeWarnings:
    def __init__(self, records: Sequence[WarningRecord]) -> None:
        self.records = records

    def open_warnings(self) -> Iterable[WarningRecord]:
        return self.records


class FakeDirectory:
    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        return ENTERPRISE if enterprise_id == "E1" else None

    def people(self) -> Sequence[Person]:
        return PEOPLE


class FakeSms:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def sms(self, phone: str, text: str) -> None:
        self.sent.append((phone, text))


def service(
    executions: FakeExecutions | None = None,
    escalator: FakeEscalator | None = None,
    records: Sequence[WarningRecord] = (),
) -> tuple[WorkflowService, FakeExecutions, FakeEscalator, FakeSms]:
    executions = executions or FakeExecutions()
    escalator = escalator or FakeEscalator()
    sms = FakeSms()
    return (
        WorkflowService(
            POLICY, executions, escalator, FakeWarnings(records), FakeDirectory(), sms, clock=lambda: NOW
        ),
        executions,
        escalator,
        sms,
    )


def escalation(tier: int, audience: list[str], reason: str = "acknowledge_overdue") -> WorkflowMessage:
    body = {
        "type": "escalation",
        "warning_id": "WAAAA",
        "tier": tier,
        "reason": reason,
        "level": "red",
        "sector": "hazchem",
        "enterprise_id": "E1",
        "area": "DAGANG",
        "audience": audience,
        "change": f"escalation_tier{tier}",
    }
    return WorkflowMessage(f"m{tier}", json.dumps(body))


def test_the_input_carries_every_levels_deadlines_and_the_policy_clock() -> None:
    payload = disposal_input(record(), POLICY, NOW)
    assert payload["level"] == "red" and payload["area"] == "DAGANG" and payload["poll_s"] == 1
    assert set(payload["deadlines"]) == {"blue", "yellow", "orange", "red"}
    assert payload["deadlines"]["red"] == {
        "acknowledge_s": 300,
        "verify_s": 900,
        "clear_s": 7200,
        "reminder_s": 120,
    }


def test_a_new_warning_starts_one_execution_named_after_it() -> None:
    executions = FakeExecutions()
    starter = WorkflowStarter(POLICY, executions, clock=lambda: NOW)
    starter.track(record())
    starter.track(record())  # a redelivered raise
    assert [name for name, _, _ in executions.started] == ["WAAAA"]


def test_tier_one_is_recorded_as_the_workflows_escalation_and_the_duty_centre_is_texted() -> None:
    svc, _, escalator, sms = service()
    report = svc.handle([escalation(1, ["duty", "enterprise"])])
    assert report.failed_message_ids == []
    actor, warning_id, payload = escalator.calls[0]
    assert (actor.role, warning_id, payload) == (Role.SYSTEM, "WAAAA", {"type": "escalate", "tier": 1})
    assert {phone for phone, _ in sms.sent} == {"+8613900000002", "+8613900000001"}
    assert all(len(text) <= 70 and "电话/视频连线" in text for _, text in sms.sent)


def test_tier_two_reaches_the_sectors_regulators_and_the_enterprises_area_only() -> None:
    svc, _, _, sms = service()
    svc.handle([escalation(2, ["regulator", "area", "duty"], "verify_overdue")])
    assert {phone for phone, _ in sms.sent} == {"+8613900000003", "+8613900000005", "+8613900000002"}


def test_tier_three_reaches_the_emergency_bureau_leadership() -> None:
    svc, _, _, sms = service()
    svc.handle([escalation(3, ["emergency"], "clear_overdue")])
    assert {phone for phone, _ in sms.sent} == {"+8613900000007"}


def test_a_tier_already_reached_is_not_texted_again() -> None:
    svc, _, _, sms = service(escalator=FakeEscalator(refuse=True))
    report = svc.handle([escalation(1, ["duty", "enterprise"])])
    assert report.failed_message_ids == [] and sms.sent == []


def test_a_malformed_message_is_reported_failed_and_the_rest_handled() -> None:
    svc, _, escalator, _ = service()
    report = svc.handle([WorkflowMessage("bad", "{not json"), escalation(1, ["duty"])])
    assert report.failed_message_ids == ["bad"] and len(escalator.calls) == 1


def test_a_handover_continues_in_a_new_execution_once() -> None:
    svc, executions, _, _ = service()
    body = {"type": "handover", "name": "WAAAA-2", "input": {"warning_id": "WAAAA"}, "state_machine_arn": "arn:sm"}
    message = WorkflowMessage("h", json.dumps(body))
    svc.handle([message, message])
    assert executions.started == [("WAAAA-2", {"warning_id": "WAAAA"}, "arn:sm")]


def test_a_repeated_escalation_or_one_for_a_closed_warning_is_done_without_texting() -> None:
    class Closed(FakeEscalator):
        def act(self, actor: Actor, warning_id: str, payload: Any) -> Any:
            raise InvalidTransition("warning_closed", "预警已关闭")

    svc, _, _, sms = service(escalator=Closed())
    report = svc.handle(
        [escalation(3, ["emergency"], "clear_overdue"), escalation(2, ["regulator"], "clear_overdue")]
    )
    assert report.failed_message_ids == [] and sms.sent == []


def test_a_repaired_warning_is_not_repaired_again_while_its_repair_runs() -> None:
    executions = FakeExecutions({"WFAIL": "ABORTED"})
    svc, _, _, _ = service(executions=executions, records=[record("WFAIL")])
    assert svc.sweep().repaired == ["WFAIL"]
    assert svc.sweep().repaired == []
    assert sum(1 for status in executions.statuses.values() if status == "RUNNING") == 1


def test_the_sweeper_restarts_open_warnings_whose_execution_is_gone_or_ended() -> None:
    records = [
        record("WLOST"),  # start was lost: no execution at all
        record("WFAIL"),  # its execution failed
        record("WLIVE"),  # still followed
        record("WYOUNG", raised_at=NOW - 5),  # its start may still be on its way
    ]
    executions = FakeExecutions({"WFAIL": "FAILED", "WLIVE": "RUNNING"})
    svc, _, _, _ = service(executions=executions, records=records)
    report = svc.sweep()
    assert sorted(report.repaired) == ["WFAIL", "WLOST"]
    names = [name for name, _, _ in executions.started]
    assert "WLOST" in names and any(name.startswith("WFAIL-r") for name in names)
    assert len(names) == 2
