"""The deliver handler through `chalice.test.Client`: a job message from the delivery queue → SMS (SNS on moto)
and inboxes, each once, with receipts on the warning; a bad message fails alone (partial batch failure)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from app import app
from chalicelib.adapters.delivery_store import DynamoInbox, read_receipts
from chalicelib.bootstrap import delivery
from chalicelib.domain.delivery import DeliveryJob, JobKind
from chalicelib.domain.policy import Audience
from chalicelib.domain.texts import reminder_text
from local.aws import Provisioned
from local.seed import SeedRegistry
from tests.functional.test_ingest_handler import PROJECT_DIR


@pytest.fixture(scope="module")
def client(infra: Provisioned, seed: SeedRegistry) -> Iterator[Client]:
    with Client(app, stage_name="test", project_dir=str(PROJECT_DIR)) as test_client:
        yield test_client


def sms_sent(infra: Provisioned) -> list[tuple[str, str]]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][infra.region].sms_messages.values())


def reminder(seed: SeedRegistry) -> DeliveryJob:
    enterprise = seed.enterprises[0]
    text = reminder_text(4, "WDELIVER1", enterprise.name, 1_800_000_000.0)
    return DeliveryJob(
        job_id="reminder:WDELIVER1:1800000000",
        kind=JobKind.REMINDER,
        warning_id="WDELIVER1",
        enterprise_id=enterprise.enterprise_id,
        level=4,
        at=1_800_000_000.0,
        template_id=text.template_id,
        params=dict(text.params),
        sms_audiences=(Audience.ENTERPRISE, Audience.DUTY),
        inbox_audiences=(Audience.ENTERPRISE, Audience.DUTY),
    )


def invoke(client: Client, *bodies: str) -> Any:
    event = client.events.generate_sqs_event(message_bodies=list(bodies), queue_name="delivery")
    return client.lambda_.invoke("deliver", event).payload


def test_a_job_texts_its_people_once_fills_the_inboxes_and_leaves_receipts(
    client: Client, infra: Provisioned, seed: SeedRegistry
) -> None:
    job = reminder(seed)
    enterprise = seed.enterprise(job.enterprise_id)
    duty = [p for p in seed.people if p.role == "duty"]
    before = len(sms_sent(infra))

    assert invoke(client, job.model_dump_json()) == {"batchItemFailures": []}
    assert invoke(client, job.model_dump_json(), job.model_dump_json()) == {"batchItemFailures": []}

    texted = sms_sent(infra)[before:]
    expected = {c.phone for c in enterprise.contacts} | {p.phone for p in duty}
    assert sorted(phone for phone, _ in texted) == sorted(expected)  # each once, redeliveries sent nothing
    assert all(text.startswith("【滨海大应急】红色预警尚未签收") and len(text) <= 70 for _, text in texted)
    inbox = DynamoInbox()
    assert [i.job_id for i in inbox.page([f"enterprise:{job.enterprise_id}"], None, 10, False).items] == [
        job.job_id
    ]
    assert [i.job_id for i in inbox.page(["duty"], None, 10, False).items] == [job.job_id]
    outcomes = {(r["channel"], r["outcome"]) for r in read_receipts(job.warning_id)}
    assert outcomes == {("sms", "sent"), ("inbox", "sent")}
    assert all(r["attempts"] == 1 for r in read_receipts(job.warning_id))
    assert delivery() is delivery()  # built once per container


def test_a_message_that_is_no_job_fails_alone(client: Client, seed: SeedRegistry) -> None:
    job = reminder(seed).model_copy(update={"job_id": "reminder:WDELIVER1:2"})
    event = client.events.generate_sqs_event(message_bodies=["not a job", job.model_dump_json()], queue_name="q")
    answer = client.lambda_.invoke("deliver", event).payload
    failed = [item["itemIdentifier"] for item in answer["batchItemFailures"]]
    assert failed == [event["Records"][0]["messageId"]]
