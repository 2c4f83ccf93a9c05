"""The disposal state machine (infra/disposal.asl.json) as moto executes it: deadlines, tiers, level changes,
archive and hand-over, with seconds-scale deadlines and a 1 s poll.

Each scenario raises its own warning (its own id), so messages are told apart by `warning_id` in the body. Times
are taken from the machine's own `at` field (`$$.State.EnteredTime`), not from when the test happened to receive.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from cfnlint import api as cfnlint_api

from local.aws import DEFAULT_REGION, Provisioned, provision
from local.cfn import INFRA_DIR, TEMPLATE_PATH, finalize_package
from local.sfn import (
    Deadlines,
    disposal_input,
    execution_arn,
    quiet_moto_asl_logging,
    render_timeline,
    start_disposal,
    start_handover,
    wait_for_end,
)

ASL_PATH = INFRA_DIR / "disposal.asl.json"
MOTO_EXECUTES = {
    "arn:aws:states:::dynamodb:getItem",
    "arn:aws:states:::dynamodb:updateItem",
    "arn:aws:states:::dynamodb:putItem",
    "arn:aws:states:::sns:publish",
    "arn:aws:states:::sqs:sendMessage",
}
QUEUES = ("EnterpriseQueue", "DutyQueue", "RegulatorQueue", "AreaQueue", "EmergencyQueue", "WorkflowEventQueue")
ESCALATION_QUEUES = QUEUES[:-1]
SLOW: Deadlines = {"acknowledge_s": 60, "verify_s": 60, "clear_s": 60, "reminder_s": 0}


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=DEFAULT_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass(frozen=True)
class Received:
    queue: str
    body: dict[str, Any]
    attributes: dict[str, str]

    @property
    def change(self) -> str:
        return str(self.body.get("change"))

    @property
    def at(self) -> datetime:
        return datetime.fromisoformat(str(self.body["at"]))


class Inbox:
    """Drains the audience queues and the workflow-event queue, keeping every message by queue."""

    def __init__(self, sqs: Any, infra: Provisioned) -> None:
        self.sqs = sqs
        self.urls = {queue: infra.queue_url(queue) for queue in QUEUES}
        self.received: list[Received] = []

    def collect(self) -> None:
        for queue, url in self.urls.items():
            while batch := self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", []):
                for message in batch:
                    attributes = {
                        name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()
                    }
                    self.received.append(Received(queue, json.loads(message["Body"]), attributes))
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def of(self, warning_id: str, queue: str | None = None) -> list[Received]:
        self.collect()
        return [m for m in self.received if m.body.get("warning_id") == warning_id and queue in (None, m.queue)]

    def changes(self, warning_id: str, queue: str) -> list[str]:
        return [m.change for m in self.of(warning_id, queue)]

    def wait_for(
        self, warning_id: str, queue: str, change: str, *, reason: str | None = None, timeout_s: float = 40.0
    ) -> Received:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.of(warning_id, queue):
                if message.change == change and reason in (None, message.body.get("reason")):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no {change} ({reason}) for {warning_id} in {queue} within {timeout_s} s")


@pytest.fixture(scope="module")
def infra(moto_server: str) -> Provisioned:
    quiet_moto_asl_logging()
    return provision(moto_server, stage="asl")


@pytest.fixture(scope="module")
def sfn(moto_server: str) -> Any:
    return client("stepfunctions", moto_server)


@pytest.fixture(scope="module")
def dynamodb(moto_server: str) -> Any:
    return client("dynamodb", moto_server)


@pytest.fixture(scope="module")
def inbox(infra: Provisioned, moto_server: str) -> Inbox:
    return Inbox(client("sqs", moto_server), infra)


@pytest.fixture(autouse=True)
def stop_leftover_executions(request: pytest.FixtureRequest) -> Iterator[None]:
    """A failed scenario must not leave its execution polling into the next one."""
    yield
    if "infra" not in request.fixturenames:
        return
    infra: Provisioned = request.getfixturevalue("infra")
    sfn: Any = request.getfixturevalue("sfn")
    machine = infra.state_machine_arn("DisposalStateMachine")
    for execution in sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
        sfn.stop_execution(executionArn=execution["executionArn"])


@dataclass(frozen=True)
class Raised:
    warning_id: str
    execution_arn: str
    started_at: datetime


def raise_warning(
    infra: Provisioned,
    sfn: Any,
    dynamodb: Any,
    *,
    level: str,
    deadlines: dict[str, Deadlines],
    status: str = "raised",
    max_polls: int = 1000,
) -> Raised:
    """Write the warning item as the app does (chalicelib/adapters/dynamo.py: WarningItem), then start its
    execution (name = warning_id)."""
    warning_id = f"W-{level}-{uuid.uuid4().hex[:8]}"
    dynamodb.put_item(
        TableName=infra.table("WarningTable"),
        Item={
            "warning_id": {"S": warning_id},
            "status": {"S": status},
            "level": {"S": level},
            "level_seq": {"N": "1"},
            "enterprise_id": {"S": "E-HC-01"},
            "raised_at": {"S": "2025-06-01T03:12:00Z"},
            "open_sector": {"S": "hazchem"},
            "open_area": {"S": "tanggu"},
            "urgency": {"S": f"1#{warning_id}"},
            "version": {"N": "3"},
        },
    )
    execution_input = disposal_input(
        warning_id=warning_id,
        level=level,
        sector="hazchem",
        enterprise_id="E-HC-01",
        area="tanggu",
        deadlines={name: deadlines.get(name, SLOW) for name in ("red", "orange", "yellow", "blue")},
        poll_s=1,
        archive_ttl_s=86400,
        max_polls=max_polls,
    )
    started_at = datetime.now(UTC)
    arn = start_disposal(sfn, infra.state_machine_arn("DisposalStateMachine"), execution_input)
    return Raised(warning_id, arn, started_at)


def set_item(infra: Provisioned, dynamodb: Any, warning_id: str, **values: str) -> datetime:
    """Change the warning item as the app would; returns when the change was made."""
    names = {f"#{name}": name for name in values}
    typed = {f":{name}": {"N" if name == "level_seq" else "S": value} for name, value in values.items()}
    dynamodb.update_item(
        TableName=infra.table("WarningTable"),
        Key={"warning_id": {"S": warning_id}},
        UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in values),
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=typed,
    )
    return datetime.now(UTC)


def close_and_finish(infra: Provisioned, sfn: Any, dynamodb: Any, raised: Raised, arn: str | None = None) -> None:
    set_item(infra, dynamodb, raised.warning_id, status="closed")
    assert wait_for_end(sfn, arn or raised.execution_arn, timeout_s=40)["status"] == "SUCCEEDED"


# --- the definition ----------------------------------------------------------------------------------------------


def test_the_asl_uses_only_what_moto_executes_and_every_transition_lands() -> None:
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    states: dict[str, dict[str, Any]] = asl["States"]
    assert "QueryLanguage" not in asl, "moto 5.2.5 cannot evaluate JSONata"
    assert {s["Resource"] for s in states.values() if s["Type"] == "Task"} <= MOTO_EXECUTES
    assert not any("Assign" in state for state in states.values()), "moto 5.2.5 cannot read variables back"

    def targets(state: dict[str, Any]) -> set[str]:
        found = {state.get("Next"), state.get("Default")}
        found |= {rule.get("Next") for rule in state.get("Choices", [])}
        found |= {catch.get("Next") for catch in state.get("Catch", [])}
        return {name for name in found if name}

    reachable, frontier = {asl["StartAt"]}, [asl["StartAt"]]
    while frontier:
        for target in targets(states[frontier.pop()]):
            assert target in states, f"transition to missing state {target}"
            if target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(states)


def test_the_packaged_template_inlines_the_disposal_asl_and_lints_clean() -> None:
    template = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    packaged = finalize_package(template, "prod")
    machine = packaged["Resources"]["DisposalStateMachine"]["Properties"]
    assert machine["Definition"] == json.loads(ASL_PATH.read_text(encoding="utf-8"))
    assert set(machine["DefinitionSubstitutions"]) == {
        "WarningTable",
        "EscalationTopicArn",
        "WorkflowEventQueueUrl",
    }
    assert [str(m) for m in cfnlint_api.lint(json.dumps(packaged), regions=["cn-north-1"])] == []


# --- scenarios on moto -------------------------------------------------------------------------------------------


def test_a_warning_acknowledged_in_time_is_reminded_until_then_and_never_escalated(
    infra: Provisioned, sfn: Any, dynamodb: Any, inbox: Inbox
) -> None:
    red: Deadlines = {"acknowledge_s": 3, "verify_s": 30, "clear_s": 30, "reminder_s": 1}
    raised = raise_warning(infra, sfn, dynamodb, level="red", deadlines={"red": red})

    inbox.wait_for(raised.warning_id, "EnterpriseQueue", "reminder")
    acknowledged_at = set_item(infra, dynamodb, raised.warning_id, status="acknowledged")
    time.sleep(2.5)  # past the 3 s acknowledge deadline
    close_and_finish(infra, sfn, dynamodb, raised)

    reminders = inbox.of(raised.warning_id, "EnterpriseQueue")
    assert reminders and {m.change for m in reminders} == {"reminder"}
    assert all(m.at < acknowledged_at for m in reminders), "reminders stop once acknowledged"
    assert reminders[0].attributes["audience"] == '["enterprise"]'
    for queue in ESCALATION_QUEUES[1:]:
        assert inbox.of(raised.warning_id, queue) == []
    assert inbox.changes(raised.warning_id, "WorkflowEventQueue") == ["archived"]


def test_an_unacknowledged_red_warning_escalates_tier_by_tier_up_to_the_emergency_bureau(
    infra: Provisioned, sfn: Any, dynamodb: Any, inbox: Inbox
) -> None:
    red: Deadlines = {"acknowledge_s": 1, "verify_s": 2, "clear_s": 3, "reminder_s": 0}
    raised = raise_warning(infra, sfn, dynamodb, level="red", deadlines={"red": red})

    tier1 = inbox.wait_for(raised.warning_id, "DutyQueue", "escalation_tier1")
    tier2 = inbox.wait_for(raised.warning_id, "RegulatorQueue", "escalation_tier2")
    tier3 = inbox.wait_for(raised.warning_id, "EmergencyQueue", "escalation_tier3")
    close_and_finish(infra, sfn, dynamodb, raised)

    assert tier1.attributes == {
        "level": "red",
        "sector": "hazchem",
        "enterprise_id": "E-HC-01",
        "area": "tanggu",
        "audience": '["duty","enterprise"]',
        "change": "escalation_tier1",
    }
    assert tier2.attributes["audience"] == '["regulator","area","duty"]'
    assert tier3.attributes["audience"] == '["emergency"]'
    assert (tier1.body["tier"], tier1.body["reason"], tier1.body["deadline_s"]) == (1, "acknowledge_overdue", 1)
    assert (tier2.body["tier"], tier2.body["reason"]) == (2, "verify_overdue")
    assert (tier3.body["tier"], tier3.body["reason"]) == (3, "clear_overdue")
    assert raised.started_at < tier1.at < tier2.at < tier3.at
    assert inbox.changes(raised.warning_id, "DutyQueue") == ["escalation_tier1", "escalation_tier2"]
    assert inbox.changes(raised.warning_id, "AreaQueue") == ["escalation_tier2"]
    assert inbox.changes(raised.warning_id, "EnterpriseQueue") == ["escalation_tier1"], "reminder_s 0: none"
    assert inbox.changes(raised.warning_id, "WorkflowEventQueue") == [
        "escalation_tier1",
        "escalation_tier2",
        "escalation_tier3",
        "archived",
    ]

    timeline = render_timeline(sfn, raised.execution_arn)
    print("\n" + timeline)
    assert "escalation_tier3 [red] → emergency" in timeline
    assert timeline.splitlines()[-1].split()[-1] == "SUCCEEDED"


def test_an_orange_warning_past_its_clear_deadline_renotifies_tier_two_not_the_emergency_bureau(
    infra: Provisioned, sfn: Any, dynamodb: Any, inbox: Inbox
) -> None:
    orange: Deadlines = {"acknowledge_s": 1, "verify_s": 2, "clear_s": 3, "reminder_s": 0}
    raised = raise_warning(
        infra, sfn, dynamodb, level="orange", deadlines={"orange": orange}, status="acknowledged"
    )

    verify = inbox.wait_for(raised.warning_id, "RegulatorQueue", "escalation_tier2")
    clear = inbox.wait_for(raised.warning_id, "RegulatorQueue", "escalation_tier2", reason="clear_overdue")
    close_and_finish(infra, sfn, dynamodb, raised)

    assert verify.body["reason"] == "verify_overdue"
    assert (clear.body["status"], clear.body["deadline_s"]) == ("acknowledged", 3)
    assert clear.attributes["level"] == "orange"
    assert inbox.of(raised.warning_id, "EmergencyQueue") == []
    assert "escalation_tier1" not in inbox.changes(raised.warning_id, "DutyQueue"), "acknowledged in time"


def test_raising_the_level_mid_way_restarts_the_clock_with_the_shorter_deadline(
    infra: Provisioned, sfn: Any, dynamodb: Any, inbox: Inbox
) -> None:
    blue: Deadlines = {"acknowledge_s": 6, "verify_s": 30, "clear_s": 30, "reminder_s": 0}
    red: Deadlines = {"acknowledge_s": 1, "verify_s": 30, "clear_s": 30, "reminder_s": 0}
    raised = raise_warning(infra, sfn, dynamodb, level="blue", deadlines={"blue": blue, "red": red})

    time.sleep(1.5)
    raised_to_red_at = datetime.now(UTC)
    set_item(infra, dynamodb, raised.warning_id, level="red", level_seq="2")
    tier1 = inbox.wait_for(raised.warning_id, "DutyQueue", "escalation_tier1")
    close_and_finish(infra, sfn, dynamodb, raised)

    since_start = (tier1.at - raised.started_at).total_seconds()
    since_change = (tier1.at - raised_to_red_at).total_seconds()
    assert since_start < blue["acknowledge_s"], f"red's deadline applies: escalated after {since_start:.1f} s"
    assert since_change >= red["acknowledge_s"], (
        "the clock restarts at the change, it does not count from the start"
    )
    assert (tier1.attributes["level"], tier1.body["level_seq"], tier1.body["deadline_s"]) == ("red", "2", 1)


def test_closing_a_warning_archives_it_off_the_hot_wall_and_ends_the_execution(
    infra: Provisioned, sfn: Any, dynamodb: Any, inbox: Inbox
) -> None:
    raised = raise_warning(infra, sfn, dynamodb, level="yellow", deadlines={})
    started_at_s = int(raised.started_at.timestamp())

    time.sleep(1.2)
    close_and_finish(infra, sfn, dynamodb, raised)

    item = dynamodb.get_item(
        TableName=infra.table("WarningTable"), Key={"warning_id": {"S": raised.warning_id}}, ConsistentRead=True
    )["Item"]
    assert item["status"] == {"S": "archived"}
    assert not {"open_sector", "open_area", "urgency"} & set(item), "off the open_by_* indexes"
    assert item["version"] == {"N": "4"}, "the app's optimistic lock sees the archive"
    assert item["level"] == {"S": "yellow"} and item["enterprise_id"] == {"S": "E-HC-01"}
    expires_at = int(item["expires_at"]["N"])
    assert started_at_s + 86400 <= expires_at <= started_at_s + 86400 + 10
    (archived,) = inbox.of(raised.warning_id, "WorkflowEventQueue")
    assert (archived.change, archived.body["expires_at"]) == ("archived", str(expires_at))
    assert archived.attributes == {"type": "archived", "change": "archived"}


def test_a_long_running_warning_hands_over_to_a_new_execution_that_keeps_its_clock(
    infra: Provisioned, sfn: Any, dynamodb: Any, inbox: Inbox
) -> None:
    red: Deadlines = {"acknowledge_s": 10, "verify_s": 60, "clear_s": 60, "reminder_s": 0}
    raised = raise_warning(infra, sfn, dynamodb, level="red", deadlines={"red": red}, max_polls=7)

    handover = inbox.wait_for(raised.warning_id, "WorkflowEventQueue", "handover")
    assert wait_for_end(sfn, raised.execution_arn)["status"] == "SUCCEEDED"
    assert handover.body["name"] == f"{raised.warning_id}-1"
    assert handover.body["input"]["run"] == {"elapsed_s": 7, "waited_s": 7, "polls": 0, "generation": 1}
    next_arn = start_handover(sfn, handover.body)
    assert next_arn == execution_arn(infra.state_machine_arn("DisposalStateMachine"), f"{raised.warning_id}-1")

    tier1 = inbox.wait_for(raised.warning_id, "DutyQueue", "escalation_tier1")
    close_and_finish(infra, sfn, dynamodb, raised, arn=next_arn)

    since_start = (tier1.at - raised.started_at).total_seconds()
    handed_over_at = sfn.describe_execution(executionArn=next_arn)["startDate"]
    since_handover = (tier1.at - handed_over_at).total_seconds()
    # The new execution owes acknowledge_s - elapsed_s = 3 s more; a clock restarted by the hand-over would wait
    # the full 10 s from the hand-over (measured from it, so a slow machine delays both alike; 7 s of margin).
    assert since_start >= red["acknowledge_s"]
    assert since_handover < red["acknowledge_s"], "the clock carried over"
    assert tier1.body["execution"] == f"{raised.warning_id}-1"


def test_an_execution_for_a_warning_that_was_never_written_fails_loudly(infra: Provisioned, sfn: Any) -> None:
    execution_input = disposal_input(
        warning_id="W-nowhere",
        level="red",
        sector="hazchem",
        enterprise_id="E-HC-01",
        area="tanggu",
        deadlines=dict.fromkeys(("red", "orange", "yellow", "blue"), SLOW),
        poll_s=1,
        archive_ttl_s=86400,
    )
    arn = start_disposal(sfn, infra.state_machine_arn("DisposalStateMachine"), execution_input)

    result = wait_for_end(sfn, arn, timeout_s=30)

    assert (result["status"], result.get("error")) == ("FAILED", "Disposal.WarningMissing")
