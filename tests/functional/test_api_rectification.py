"""通报 and rectification through the API (`chalice.test.Client`, moto, real ID tokens): a stored report published
by the duty centre (once per version), each unit's result delivered by the deliver handler to its inbox, the
rectification items scoped, answered with evidence, returned and accepted, audited."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.adapters import aws_clients
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.levels import Level
from chalicelib.settings import Settings
from tests.functional.api_fixtures import PROJECT_DIR, STAGE, ApiEnv, Http, api_env, http, raise_warning
from tests.functional.test_api_evaluations import run_requested

DUTY, ADMIN, EMERGENCY = "duty-01", "admin", "emg-01"
ENTERPRISE = "ent-e-hc-01"  # E-HC-01: hazchem, areas TJFTZ and GULIN
OTHER_ENTERPRISE = "ent-e-hc-02"
REGULATOR = "reg-emergency-bureau"  # hazchem and chem_pipeline
FIRE_REGULATOR = "reg-fire-rescue"
AREA = "area-tjftz"
FIXTURES = (api_env, http)
LAST_MONTH = periods.last_complete(PeriodKind.MONTH, time.time())
REPORT = f"month-{LAST_MONTH.label}"


def _queue() -> tuple[Any, str]:
    settings = Settings.from_env()
    return aws_clients.client("sqs", settings), settings.queue_delivery


def queued() -> int:
    sqs, url = _queue()
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def drain() -> list[str]:
    """Every message on the delivery queue (taken off it)."""
    sqs, url = _queue()
    bodies: list[str] = []
    while True:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


@pytest.fixture(scope="module")
def published(api_env: ApiEnv, http: Http) -> dict[str, Any]:
    """E-HC-01 with four red warnings last month (40 points, none acknowledged: red or orange), evaluated and
    published by the duty centre."""
    for hours in (30, 60, 90, 120):
        raise_warning(api_env.registry, "E-HC-01", Level.RED, raised_at=LAST_MONTH.start + hours * 3600)
    year, _, month = LAST_MONTH.label.partition("-")
    run = http.post("/evaluations", DUTY, {"kind": "month", "year": int(year), "number": int(month)})
    assert run.status == 202, run.body
    assert run_requested(api_env) == [REPORT]  # the evaluate_requested function's run
    answer = http.post(f"/evaluations/{REPORT}/publish", DUTY, None)
    assert answer.status == 200, answer.body
    body: dict[str, Any] = answer.body
    return body


def test_publishing_queues_each_unit_s_result_once_per_version(published: dict[str, Any], http: Http) -> None:
    assert published["report_id"] == REPORT and not published["already_published"]
    assert published["published_by"] == DUTY and published["versions"] == [published["version"]]
    enterprises = http.get(f"/evaluations/{REPORT}", DUTY).body["entry"]["counts"]["enterprises"]
    assert published["jobs"] > enterprises  # every enterprise, plus departments, areas and the centre
    assert published["rectifications"] >= 1 and published["enterprises_rectifying"] >= 1
    assert queued() == published["jobs"]
    again = http.post(f"/evaluations/{REPORT}/publish", ADMIN, None)
    assert again.status == 200 and again.body["already_published"] is True
    assert again.body["version"] == published["version"] and queued() == published["jobs"]  # nobody told twice


@pytest.mark.parametrize("user", [ENTERPRISE, REGULATOR, AREA, EMERGENCY])
def test_only_the_duty_centre_and_admins_publish(http: Http, user: str) -> None:
    assert http.post(f"/evaluations/{REPORT}/publish", user, None).code == "role_not_permitted"


def test_an_unknown_report_is_not_published(http: Http) -> None:
    assert http.post("/evaluations/month-1999-01/publish", DUTY, None).code == "evaluation_not_found"


def test_the_deliver_handler_puts_each_result_in_its_unit_s_inbox(published: dict[str, Any], http: Http) -> None:
    from app import app

    bodies = drain()
    assert len(bodies) == published["jobs"]
    bodies = [body for body in bodies if json.loads(body)["enterprise_id"] in ("E-HC-01", "")]  # and the staff's
    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        for start in range(0, len(bodies), 10):
            event = client.events.generate_sqs_event(
                message_bodies=bodies[start : start + 10], queue_name="delivery"
            )
            assert client.lambda_.invoke("deliver", event).payload == {"batchItemFailures": []}

    def told(user: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = http.get("/me/notifications?limit=50", user).body["items"]
        return [item for item in items if item["kind"] == "evaluation_published"]

    own = told(ENTERPRISE)
    assert len(own) == 1 and "评估得分" in own[0]["text"] and "须整改" in own[0]["text"]
    assert "津港石化储运有限公司" in own[0]["detail"] and "整改事项" in own[0]["detail"]
    regulator = told(REGULATOR)
    assert len(regulator) == 1 and "区应急局" in regulator[0]["text"] and "家企业" in regulator[0]["text"]
    assert len(told(AREA)) == 1 and len(told(DUTY)) == 1 and len(told(EMERGENCY)) == 1


def test_items_are_scoped(published: dict[str, Any], http: Http) -> None:
    def items(user: str, query: str = "") -> list[dict[str, Any]]:
        answer = http.get(f"/rectifications{query}", user)
        assert answer.status == 200, answer.body
        found: list[dict[str, Any]] = answer.body["items"]
        return found

    own = items(ENTERPRISE)
    assert own and {item["enterprise_id"] for item in own} == {"E-HC-01"}
    assert all(item["status"] == "open" and not item["overdue"] and item["report_id"] == REPORT for item in own)
    ids = {item["rectification_id"] for item in own}
    assert ids <= {item["rectification_id"] for item in items(REGULATOR)}
    assert ids <= {item["rectification_id"] for item in items(AREA)}
    assert ids <= {item["rectification_id"] for item in items(DUTY)}
    assert not ids & {item["rectification_id"] for item in items(FIRE_REGULATOR)}
    assert not ids & {item["rectification_id"] for item in items(OTHER_ENTERPRISE, "?enterprise_id=E-HC-01")}
    assert items(DUTY, "?overdue=true") == []
    assert items(DUTY, f"?status=answered,accepted&report_id={REPORT}") == []
    one = sorted(ids)[0]
    assert http.get(f"/rectifications/{one}", OTHER_ENTERPRISE).code == "rectification_not_found"
    assert http.get(f"/rectifications/{one}", FIRE_REGULATOR).code == "rectification_not_found"
    assert http.get("/rectifications/RCT-nothere", DUTY).code == "rectification_not_found"
    assert http.get(f"/rectifications/{one}", ENTERPRISE).body["problem_zh"]


def test_answer_with_evidence_return_and_accept(published: dict[str, Any], http: Http) -> None:
    item = http.get("/rectifications", ENTERPRISE).body["items"][0]
    path = f"/rectifications/{item['rectification_id']}"
    ticket = http.post(f"{path}/evidence", ENTERPRISE, {"content_type": "image/jpeg"})
    assert ticket.status == 201, ticket.body
    assert ticket.body["key"].startswith(f"evidence/E-HC-01/rectification/{item['rectification_id']}/")
    upload = urllib.request.Request(
        ticket.body["url"], data=b"\xff\xd8jpeg", method="PUT", headers=ticket.body["headers"]
    )
    with urllib.request.urlopen(upload, timeout=10) as response:
        assert response.status == 200
    assert http.post(f"{path}/evidence", REGULATOR, {"content_type": "image/jpeg"}).code == "role_not_permitted"

    assert http.post(f"{path}/accept", REGULATOR, {}).code == "rectification_not_answered"
    foreign = {"note": "已整改", "evidence_keys": ["evidence/E-HC-01/W-1/photo.jpg"]}
    assert http.post(f"{path}/answer", ENTERPRISE, foreign).code == "evidence_outside_rectification"
    assert http.post(f"{path}/answer", ENTERPRISE, {"note": " "}).code == "invalid_request"
    assert http.post(f"{path}/answer", OTHER_ENTERPRISE, {"note": "已整改"}).code == "rectification_not_found"
    answered = http.post(
        f"{path}/answer", ENTERPRISE, {"note": "已落实专人值守", "evidence_keys": [ticket.body["key"]]}
    )
    assert answered.status == 200, answered.body
    assert (answered.body["status"], answered.body["status_zh"], answered.body["evidence_keys"]) == (
        "answered",
        "待验收",
        [ticket.body["key"]],
    )
    assert http.post(f"{path}/answer", ENTERPRISE, {"note": "再答"}).code == "rectification_not_answerable"
    assert http.post(f"{path}/accept", ENTERPRISE, {}).code == "role_not_permitted"
    assert http.post(f"{path}/accept", FIRE_REGULATOR, {}).code == "rectification_not_found"
    assert http.post(f"{path}/return", REGULATOR, {}).code == "invalid_request"
    returned = http.post(f"{path}/return", REGULATOR, {"reason": "请补充值班记录"})
    assert (returned.body["status"], returned.body["return_reason"]) == ("returned", "请补充值班记录")
    assert http.post(f"{path}/answer", ENTERPRISE, {"note": "已补充值班记录"}).body["answers"] == 2
    accepted = http.post(f"{path}/accept", DUTY, None)
    assert (accepted.status, accepted.body["status"], accepted.body["reviewed_by"]) == (200, "accepted", DUTY)

    assert http.get(f"{path}/audit", ENTERPRISE).code == "role_not_permitted"
    audit = http.get(f"{path}/audit", REGULATOR).body
    assert audit["report"]["ok"] and audit["subject_id"] == f"rectification:{item['rectification_id']}"
    assert [event["type"] for event in audit["events"]] == [
        "rectification_issued",
        "rectification_answered",
        "rectification_returned",
        "rectification_answered",
        "rectification_accepted",
    ]
    assert audit["events"][2]["reason"] == "请补充值班记录"

    from app import app

    notices = [body for body in drain() if json.loads(body)["kind"] == "rectification_notice"]
    assert len(notices) == 4  # answered, returned, answered, accepted
    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        event = client.events.generate_sqs_event(message_bodies=notices, queue_name="delivery")
        assert client.lambda_.invoke("deliver", event).payload == {"batchItemFailures": []}

    def texts(user: str) -> list[str]:
        items = http.get("/me/notifications?limit=50", user).body["items"]
        return [item["text"] for item in items if item["kind"] == "rectification_notice"]

    assert len([text for text in texts(REGULATOR) if "请验收" in text]) == 2
    assert [text for text in texts(ENTERPRISE) if "被退回:请补充值班记录" in text]
    assert [text for text in texts(ENTERPRISE) if "已验收" in text]
    assert texts(FIRE_REGULATOR) == []
