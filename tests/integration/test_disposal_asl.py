"""The disposal timer (infra/disposal.asl.json) as moto executes it: sleep `wait_s` whole seconds, then one `due`
message to WorkflowEventQueue, three transitions; a stopped timer says nothing; a past due time fires at once.

Times are checked against the message's arrival with generous upper bounds (the machine may be busy) and a strict
lower bound: a timer never reports before its `due_at` minus the one second its whole-second wait can round.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from cfnlint import api as cfnlint_api

from local.aws import DEFAULT_REGION, Provisioned, provision
from local.cfn import INFRA_DIR, TEMPLATE_PATH, finalize_package
from local.sfn import (
    TIMER_STATES,
    execution_history,
    quiet_moto_asl_logging,
    render_timeline,
    start_timer,
    timer_input,
    wait_for_end,
)

ASL_PATH = INFRA_DIR / "disposal.asl.json"
MOTO_EXECUTES = {"arn:aws:states:::sqs:sendMessage"}
LATE_BOUND_S = 10.0  # a busy machine may deliver late; never early


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=DEFAULT_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def infra(moto_server: str) -> Provisioned:
    quiet_moto_asl_logging()
    return provision(moto_server, stage="asl")


@pytest.fixture(scope="module")
def sfn(moto_server: str) -> Any:
    return client("stepfunctions", moto_server)


@pytest.fixture(scope="module")
def sqs(moto_server: str) -> Any:
    return client("sqs", moto_server)


def due_messages(
    sqs: Any, infra: Provisioned, warning_id: str, timeout_s: float
) -> list[tuple[float, dict[str, Any]]]:
    """The due messages of `warning_id` received within `timeout_s` (each with its arrival time), returning as
    soon as one arrived."""
    url = infra.queue_url("WorkflowEventQueue")
    found: list[tuple[float, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not found:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            if body.get("warning_id") == warning_id:
                found.append((time.time(), body))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


# --- the definition ----------------------------------------------------------------------------------------------


def test_the_timer_is_three_states_and_uses_only_what_moto_executes() -> None:
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    states: dict[str, dict[str, Any]] = asl["States"]
    assert tuple(states) == TIMER_STATES and asl["StartAt"] == "SleepUntilDue"
    assert "QueryLanguage" not in asl and not any("Assign" in state for state in states.values())
    assert {s["Resource"] for s in states.values() if s["Type"] == "Task"} == MOTO_EXECUTES
    assert states["SleepUntilDue"] == {"Type": "Wait", "SecondsPath": "$.wait_s", "Next": "ReportDue"}
    assert not any(state["Type"] == "Choice" for state in states.values()), "a timer never polls"


def test_the_packaged_template_inlines_the_timer_and_lints_clean() -> None:
    template = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    packaged = finalize_package(template, "prod")
    machine = packaged["Resources"]["DisposalStateMachine"]["Properties"]
    assert machine["Definition"] == json.loads(ASL_PATH.read_text(encoding="utf-8"))
    assert set(machine["DefinitionSubstitutions"]) == {"WorkflowEventQueueUrl"}
    role = packaged["Resources"]["DisposalRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert [statement["Action"] for statement in role] == ["sqs:SendMessage"]
    assert [str(m) for m in cfnlint_api.lint(json.dumps(packaged), regions=["cn-north-1"])] == []


# --- on moto -----------------------------------------------------------------------------------------------------


def test_a_timer_reports_its_due_version_once_not_before_its_due_time_in_three_transitions(
    infra: Provisioned, sfn: Any, sqs: Any
) -> None:
    warning_id = f"W-{uuid.uuid4().hex[:8]}"
    due_at = time.time() + 2.5
    arn = start_timer(
        sfn, infra.state_machine_arn("DisposalStateMachine"), f"{warning_id}-3", timer_input(warning_id, 3, due_at)
    )

    received = due_messages(sqs, infra, warning_id, timeout_s=3 + LATE_BOUND_S)

    assert len(received) == 1
    arrived, body = received[0]
    assert body == {
        "type": "due",
        "warning_id": warning_id,
        "due_version": 3,
        "due_at": due_at,
        "timer": f"{warning_id}-3",
    }
    assert due_at - 1.0 <= arrived <= due_at + LATE_BOUND_S
    assert wait_for_end(sfn, arn, timeout_s=LATE_BOUND_S)["status"] == "SUCCEEDED"
    history = execution_history(sfn, arn)
    assert [e["stateEnteredEventDetails"]["name"] for e in history if e["type"].endswith("StateEntered")] == list(
        TIMER_STATES
    )
    print(render_timeline(sfn, arn))


def test_a_due_time_in_the_past_fires_at_once(infra: Provisioned, sfn: Any, sqs: Any) -> None:
    warning_id = f"W-{uuid.uuid4().hex[:8]}"
    start_timer(
        sfn,
        infra.state_machine_arn("DisposalStateMachine"),
        f"{warning_id}-1",
        timer_input(warning_id, 1, time.time() - 30),
    )
    started = time.time()

    received = due_messages(sqs, infra, warning_id, timeout_s=LATE_BOUND_S)

    assert len(received) == 1 and received[0][0] - started < LATE_BOUND_S


def test_a_stopped_timer_says_nothing(infra: Provisioned, sfn: Any, sqs: Any) -> None:
    warning_id = f"W-{uuid.uuid4().hex[:8]}"
    arn = start_timer(
        sfn,
        infra.state_machine_arn("DisposalStateMachine"),
        f"{warning_id}-1",
        timer_input(warning_id, 1, time.time() + 2),
    )
    sfn.stop_execution(executionArn=arn, cause="superseded")

    assert wait_for_end(sfn, arn, timeout_s=LATE_BOUND_S)["status"] == "ABORTED"
    assert due_messages(sqs, infra, warning_id, timeout_s=4) == []


def test_a_timer_name_is_taken_once(infra: Provisioned, sfn: Any) -> None:
    warning_id = f"W-{uuid.uuid4().hex[:8]}"
    machine = infra.state_machine_arn("DisposalStateMachine")
    payload = timer_input(warning_id, 1, time.time() + 30)
    arn = start_timer(sfn, machine, f"{warning_id}-1", payload)
    assert start_timer(sfn, machine, f"{warning_id}-1", payload) == arn  # same name and input: the same timer
    sfn.stop_execution(executionArn=arn)
    assert wait_for_end(sfn, arn, timeout_s=LATE_BOUND_S)["status"] == "ABORTED"  # a stop lands asynchronously
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):
        start_timer(sfn, machine, f"{warning_id}-1", payload)
