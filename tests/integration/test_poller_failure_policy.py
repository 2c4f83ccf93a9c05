"""A poison batch cannot hold a shard: the local Kinesis poller applies the failure handling that infra/ gives the
ingest function's event source mapping (retries, bisection, maximum record age, on-failure queue), on moto.

The poller is built exactly as the local runtime builds it (`local.runtime.ingest_poller`), from the provisioned
template; the handlers here are stand-ins that fail on purpose. Every test uses its own partition key (so its
records share one shard) and looks only at its own records: the stream and the failure queue are shared by the
module. Records are named by event id (`shardId:sequenceNumber`): moto numbers each shard's records from 1.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from local.aws import DEFAULT_REGION, Provisioned, provision
from local.cfn import Template
from local.poller import FailedDelivery, KinesisPoller, StreamFailurePolicy
from local.runtime import ingest_poller
from scripts.replay_ingest_failures import replay_queue

STAGE = "esm"
WAIT_S = 60.0  # generous: a busy machine slows moto down, the outcome is awaited, never assumed after a pause


class PoisonError(RuntimeError):
    """What a handler raises on a record it cannot handle (a bug, not an infrastructure fault)."""


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
    return provision(moto_server, stage=STAGE)


@pytest.fixture(scope="module")
def kinesis(moto_server: str) -> Any:
    return client("kinesis", moto_server)


@pytest.fixture(scope="module")
def sqs(moto_server: str) -> Any:
    return client("sqs", moto_server)


@pytest.fixture
def failure_queue(infra: Provisioned) -> str:
    return infra.queue_url("IngestFailureQueue")


@dataclass
class StandInHandler:
    """Records every batch it is given (as event ids); a batch containing a `poison` record raises before anything
    is processed, and `report` records are answered as batch item failures (everything before them processed)."""

    poison: set[str] = field(default_factory=set)
    report: set[str] = field(default_factory=set)
    batches: list[list[str]] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    arrivals: dict[str, float] = field(default_factory=dict)

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        event_ids = [record["eventID"] for record in event["Records"]]
        self.batches.append(event_ids)
        self.arrivals.update((r["eventID"], r["kinesis"]["approximateArrivalTimestamp"]) for r in event["Records"])
        if self.poison.intersection(event_ids):
            raise PoisonError("cannot handle this record")
        for record in event["Records"]:
            if record["eventID"] in self.report:
                return {"batchItemFailures": [{"itemIdentifier": record["kinesis"]["sequenceNumber"]}]}
            self.processed.append(record["eventID"])
        return {"batchItemFailures": []}

    def delivered_alone(self, event_id: str) -> int:
        return sum(batch == [event_id] for batch in self.batches)


def put_records(kinesis: Any, stream: str, count: int) -> list[str]:
    """`count` records of one new device (one partition key, so one shard, in order); their event ids."""
    device = f"dev-{uuid.uuid4().hex[:8]}"
    event_ids: list[str] = []
    for n in range(count):
        put = kinesis.put_record(StreamName=stream, Data=f"{device}:{n}".encode(), PartitionKey=device)
        event_ids.append(f"{put['ShardId']}:{put['SequenceNumber']}")
    return event_ids


def sequence_of(event_id: str) -> str:
    return event_id.split(":", 1)[1]


def failure_documents(sqs: Any, queue_url: str) -> Iterator[dict[str, Any]]:
    """Every on-failure message waiting on the queue (received and deleted)."""
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            yield json.loads(message["Body"])


class FailureQueueReader:
    """Collects the on-failure messages that concern some records (other tests share the queue)."""

    def __init__(self, sqs: Any, queue_url: str, event_ids: list[str]) -> None:
        self._sqs, self._queue_url = sqs, queue_url
        self._records = [(shard, int(sequence)) for shard, sequence in (e.split(":", 1) for e in event_ids)]
        self.documents: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        for document in failure_documents(self._sqs, self._queue_url):
            info = document["KinesisBatchInfo"]
            first, last = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
            if any(shard == info["shardId"] and first <= seq <= last for shard, seq in self._records):
                self.documents.append(document)
        return self.documents


def drain_until(poller: KinesisPoller, condition: Callable[[], bool], what: str) -> None:
    """Run the poller until `condition` holds; fail after `WAIT_S` (a bounded wait, not a fixed sleep)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"within {WAIT_S:.0f} s: {what}"
        if poller.run_once() == 0:
            time.sleep(0.01)


def template_policy() -> StreamFailurePolicy:
    mapping = Template.load().event_source_mapping("DeviceStream")
    assert mapping is not None
    return StreamFailurePolicy.from_event_source_mapping(mapping.properties)


# --- the settings ------------------------------------------------------------------------------------------------


def test_the_local_poller_takes_the_failure_handling_the_template_gives_the_event_source_mapping(
    infra: Provisioned,
) -> None:
    poller = ingest_poller(infra, StandInHandler())

    policy = poller.failure_policy
    assert policy == template_policy()
    assert policy.maximum_retry_attempts is not None and 5 <= policy.maximum_retry_attempts <= 10
    assert policy.bisect_batch_on_function_error
    assert policy.maximum_record_age_s is not None and 60 <= policy.maximum_record_age_s <= 6 * 3600
    assert policy.report_batch_item_failures


def test_event_source_mapping_names_read_as_lambda_reads_them() -> None:
    assert StreamFailurePolicy.from_event_source_mapping({}) == StreamFailurePolicy(
        maximum_retry_attempts=None,
        bisect_batch_on_function_error=False,
        maximum_record_age_s=None,
        report_batch_item_failures=False,
    )
    assert StreamFailurePolicy.from_event_source_mapping(
        {
            "MaximumRetryAttempts": 0,
            "BisectBatchOnFunctionError": True,
            "MaximumRecordAgeInSeconds": 60,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        }
    ) == StreamFailurePolicy(0, True, 60.0, True)
    with pytest.raises(ValueError, match="maximum_retry_attempts"):
        StreamFailurePolicy(maximum_retry_attempts=-2)


# --- a poison record --------------------------------------------------------------------------------------------


def test_a_record_that_makes_the_handler_raise_is_isolated_retried_and_sent_to_the_failure_queue(
    infra: Provisioned, kinesis: Any, sqs: Any, failure_queue: str
) -> None:
    # Given eight records of one device, the sixth of which makes the handler raise every time
    records = put_records(kinesis, infra.stream_name, 8)
    poison = records[5]
    good = [record for record in records if record != poison]
    handler = StandInHandler(poison={poison})
    failures: list[FailedDelivery] = []
    poller = ingest_poller(infra, handler, on_failure=failures.append)
    retries = poller.failure_policy.maximum_retry_attempts
    assert retries is not None
    reader = FailureQueueReader(sqs, failure_queue, records)

    # When the poller works through the shard
    drain_until(
        poller,
        lambda: set(good) <= set(handler.processed) and bool(reader.poll()),
        "the good records processed and the poison record on the failure queue",
    )

    # Then bisection let every other record through, once
    assert sorted(r for r in handler.processed if r in records) == sorted(good)
    # and the poison record, once alone, was tried 1 + MaximumRetryAttempts times, then given up on
    assert handler.delivered_alone(poison) == 1 + retries
    [document] = reader.documents
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 1 + retries
    assert document["responseContext"]["functionError"] == "Unhandled"
    info = document["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        *poison.split(":", 1),
        sequence_of(poison),
        1,
    )
    assert info["streamArn"].endswith(f":stream/{infra.stream_name}")
    [failure] = [f for f in failures if f.record["eventID"] == poison]

    # and the shard moves on: a record put afterwards is processed, the poison record is not tried again
    tries_before = handler.delivered_alone(poison)
    [later] = put_records(kinesis, infra.stream_name, 1)
    drain_until(poller, lambda: later in handler.processed, "a later record processed")
    assert handler.delivered_alone(poison) == tries_before

    # and an operator can read the discarded record back from the stream by the message's shard and sequence
    iterator = kinesis.get_shard_iterator(
        StreamName=infra.stream_name,
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    [replayed, *_] = kinesis.get_records(ShardIterator=iterator, Limit=info["batchSize"])["Records"]
    assert replayed["SequenceNumber"] == sequence_of(poison)
    assert replayed["Data"] == base64.b64decode(failure.record["kinesis"]["data"])


def test_a_reported_failure_is_retried_from_that_record_without_bisection_then_the_rest_of_the_batch_is_discarded(
    infra: Provisioned, kinesis: Any, sqs: Any, failure_queue: str
) -> None:
    # Given five records; the handler processes the first two and reports the third as failed, every time
    records = put_records(kinesis, infra.stream_name, 5)
    handler = StandInHandler(report={records[2]})
    poller = ingest_poller(infra, handler)
    retries = poller.failure_policy.maximum_retry_attempts
    assert retries is not None
    reader = FailureQueueReader(sqs, failure_queue, records)

    drain_until(poller, lambda: bool(reader.poll()), "the reported record on the failure queue")

    # Then the records before it were processed once, and each retry started at the reported record, whole
    assert [r for r in handler.processed if r in records] == records[:2]
    retried = [batch for batch in handler.batches if batch[0] == records[2]]
    assert retried == [records[2:]] * retries
    # and after the retries the rest of that batch went to the failure queue (Lambda discards the batch it retried)
    [document] = reader.documents
    info = document["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (
        sequence_of(records[2]),
        sequence_of(records[4]),
    )
    assert info["batchSize"] == 3
    assert document["requestContext"]["approximateInvokeCount"] == 1 + retries


def test_an_operator_replays_a_discarded_record_from_its_failure_message_once_the_fault_is_fixed(
    infra: Provisioned, kinesis: Any, sqs: Any, failure_queue: str
) -> None:
    # Given a record that was discarded after its retries: only its metadata is on the failure queue
    sqs.purge_queue(QueueUrl=failure_queue)
    records = put_records(kinesis, infra.stream_name, 3)
    failures: list[FailedDelivery] = []
    poller = ingest_poller(infra, StandInHandler(poison={records[1]}), on_failure=failures.append)
    drain_until(poller, lambda: any(f.record["eventID"] == records[1] for f in failures), "the record discarded")

    def still_broken(event: dict[str, Any]) -> Any:
        raise PoisonError("the fault is not fixed yet")

    # When a replay fails, the message stays on the queue
    [attempt] = replay_queue(sqs, failure_queue, kinesis, still_broken, DEFAULT_REGION, 1, visibility_timeout_s=0)
    assert (attempt.read, attempt.complete) == (1, False)
    assert attempt.error.startswith("PoisonError")

    # When the fault is fixed, the replay hands the function the very record (same sequence, same arrival time)
    fixed = StandInHandler()
    [done] = replay_queue(sqs, failure_queue, kinesis, lambda event: fixed(event, None), DEFAULT_REGION, 10)
    assert done.complete and done.read == 1
    assert fixed.processed == [records[1]]
    [failure] = [f for f in failures if f.record["eventID"] == records[1]]
    assert fixed.arrivals[records[1]] == pytest.approx(failure.record["kinesis"]["approximateArrivalTimestamp"])
    assert not sqs.receive_message(QueueUrl=failure_queue).get("Messages")


# --- old records ------------------------------------------------------------------------------------------------


def test_a_record_older_than_the_maximum_age_goes_to_the_failure_queue_unprocessed(
    infra: Provisioned, kinesis: Any, sqs: Any, failure_queue: str
) -> None:
    max_age = template_policy().maximum_record_age_s
    assert max_age is not None
    clock_offset = [max_age + 60.0]  # the poller's clock runs past the record's maximum age
    handler = StandInHandler()
    poller = ingest_poller(infra, handler, clock=lambda: time.time() + clock_offset[0])
    [old] = put_records(kinesis, infra.stream_name, 1)
    reader = FailureQueueReader(sqs, failure_queue, [old])

    drain_until(poller, lambda: bool(reader.poll()), "the old record on the failure queue")

    assert all(old not in batch for batch in handler.batches)
    [document] = reader.documents
    assert document["requestContext"]["condition"] == "RecordAgeExceeded"
    assert document["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in document
    # (one message for the shard's whole expired head: the older records of the other tests are in it too)
    info = document["KinesisBatchInfo"]
    assert info["shardId"] == old.split(":", 1)[0]
    assert int(info["startSequenceNumber"]) <= int(sequence_of(old)) == int(info["endSequenceNumber"])

    # and the shard moves on to records within the age
    clock_offset[0] = 0.0
    [fresh] = put_records(kinesis, infra.stream_name, 1)
    drain_until(poller, lambda: fresh in handler.processed, "a fresh record processed")
