"""The delivery path's storage on moto: inboxes (newest first, cursor, unread, read once, scoped by key), receipts
(outcome overwritten, attempts counted), the ledger (a rejected delivery is final) and the delivery queue."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from chalicelib.adapters import delivery_store, dynamo
from chalicelib.adapters.delivery_store import DynamoInbox, DynamoReceipts, SqsDeliveryJobs, read_receipts
from chalicelib.adapters.dynamo import DynamoDeliveryLedger
from chalicelib.domain.delivery import DeliveryJob, JobKind
from chalicelib.services.ports import ClaimOutcome, DeliveryKey, DeliveryOutcome, DeliveryReceipt, InboxItem
from chalicelib.settings import Settings
from local.aws import Provisioned, provision


@pytest.fixture(scope="module")
def infra(moto_server: str) -> Iterator[Provisioned]:
    provisioned = provision(moto_server, stage="test")
    settings = Settings.from_env({**provisioned.aws_env(), **provisioned.env()})
    dynamo.bind(settings)
    delivery_store.bind(settings)
    yield provisioned


def entry(inbox: str, job_id: str, at: float) -> InboxItem:
    return InboxItem(inbox, "", job_id, "warning_change", "W1", 4, f"text {job_id}", "", at)


def test_an_inbox_lists_newest_first_page_by_page_and_a_job_is_written_once(infra: Provisioned) -> None:
    inbox = DynamoInbox()
    for index in range(5):
        inbox.put(entry("enterprise:E1", f"job{index}", 1000.0 + index))
    inbox.put(entry("enterprise:E1", "job4", 1004.0))  # a retried job
    inbox.put(entry("enterprise:E2", "other", 2000.0))

    first = inbox.page(["enterprise:E1"], None, 2, unread=False)
    second = inbox.page(["enterprise:E1"], first.next_key, 2, unread=False)
    third = inbox.page(["enterprise:E1"], second.next_key, 2, unread=False)

    assert [i.job_id for i in first.items + second.items + third.items] == [f"job{i}" for i in (4, 3, 2, 1, 0)]
    assert third.next_key is None


def test_an_entry_is_marked_read_once_only_in_its_own_inbox_and_drops_out_of_the_unread_list(
    infra: Provisioned,
) -> None:
    inbox = DynamoInbox()
    inbox.put(entry("duty", "jobA", 3000.0))
    [item] = inbox.page(["duty"], None, 10, unread=True).items

    assert inbox.mark_read(["emergency"], item.item_id, 3001.0) is None  # not the caller's inbox
    assert inbox.mark_read(["duty"], item.item_id, 3002.0).read_at == 3002.0  # type: ignore[union-attr]
    assert inbox.mark_read(["duty"], item.item_id, 3009.0).read_at == 3002.0  # type: ignore[union-attr]
    assert inbox.page(["duty"], None, 10, unread=True).items == []
    inbox.put(entry("duty", "jobA", 3000.0))  # written again: the read mark stays
    assert inbox.page(["duty"], None, 10, unread=True).items == []


def test_a_receipt_keeps_the_last_outcome_and_counts_the_attempts(infra: Provisioned) -> None:
    receipts = DynamoReceipts()
    base = DeliveryReceipt(
        "job1", "reminder", "sms", "duty", "P-D1", "值守甲", "retrying", 10.0, reason="throttled"
    )
    receipts.record("W9", base)
    receipts.record(
        "W9", DeliveryReceipt("job1", "reminder", "sms", "duty", "P-D1", "值守甲", "sent", 20.0, "sns", "M1")
    )

    [row] = read_receipts("W9")
    assert (row["outcome"], row["message_id"], row["attempts"], row["reason"]) == ("sent", "M1", 2, "")


def test_a_rejected_delivery_is_final_in_the_ledger(infra: Provisioned) -> None:
    ledger = DynamoDeliveryLedger()
    key = DeliveryKey.of_job("job-r", "sms", "P-D1")
    assert ledger.claim(key, "a", 1.0, 60) is ClaimOutcome.MINE
    ledger.settle(key, "a", DeliveryOutcome.REJECTED, 2.0)
    assert ledger.claim(key, "b", 500.0, 60) is ClaimOutcome.DONE


def test_jobs_go_to_the_delivery_queue_as_json(infra: Provisioned) -> None:
    sqs = boto3.client("sqs", endpoint_url=infra.endpoint_url, region_name=infra.region)
    url = infra.queue_url("DeliveryQueue")
    job = DeliveryJob(
        job_id="reminder:W1:1",
        kind=JobKind.REMINDER,
        warning_id="W1",
        enterprise_id="E1",
        level=4,
        at=1.0,
        template_id="warning_reminder",
        params={"level": "红色"},
    )
    SqsDeliveryJobs(sqs, url).enqueue([job] * 12)
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(m["Body"]) for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    assert len(bodies) == 12 and DeliveryJob.model_validate(bodies[0]) == job
