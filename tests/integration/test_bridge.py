"""MQTT -> topic rule -> Kinesis / SQS error action -> Lambda-shaped pollers, against moto's server.

Each test publishes under its own enterprise id, so tests share one runtime but not their data.
"""

import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from local.bridge import BridgedRule, RuleBridge
from local.mqtt import Broker, Publisher, start_broker
from local.poller import FailedDelivery, KinesisPoller, LambdaContext, SqsPoller, StreamFailurePolicy

REGION = "us-east-1"
ACCOUNT = "123456789012"
STREAM = "dyj-telemetry-test"
TELEMETRY_SQL = (
    "SELECT *, topic(2) AS topic_sector, topic(3) AS topic_enterprise, topic(4) AS topic_device, "
    "timestamp() AS received_at FROM 'dyj/+/+/+/telemetry'"
)


@dataclass
class Runtime:
    kinesis: Any
    sqs: Any
    error_queue_url: str
    broker: Broker
    bridge: RuleBridge
    publisher: Publisher

    def publish(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish, wait for the broker's PUBACKs, then for the bridge to settle every message."""
        before = self.bridge.counters.received
        for topic, payload in messages:
            self.publisher.publish(topic, payload)
        assert self.publisher.wait_all_published(timeout=5)
        assert self.bridge.wait_settled(before + len(messages), timeout=5)


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def wait_stream_active(kinesis: Any, name: str) -> None:
    deadline = time.monotonic() + 5
    while kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "stream never became ACTIVE"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def runtime(moto_endpoint: str) -> Iterator[Runtime]:
    kinesis = client("kinesis", moto_endpoint)
    sqs = client("sqs", moto_endpoint)
    kinesis.create_stream(StreamName=STREAM, ShardCount=2)
    wait_stream_active(kinesis, STREAM)
    error_queue_url = sqs.create_queue(QueueName="dyj-iot-rule-errors-test")["QueueUrl"]
    broker = start_broker()
    rule = BridgedRule("telemetry_to_stream", TELEMETRY_SQL, STREAM, "${topic(4)}", error_queue_url)
    bridge = RuleBridge("127.0.0.1", broker.port, [rule], kinesis, sqs)
    bridge.start()
    publisher = Publisher("127.0.0.1", broker.port)
    try:
        yield Runtime(kinesis, sqs, error_queue_url, broker, bridge, publisher)
    finally:
        publisher.close()
        bridge.stop()
        broker.stop()


def enterprise() -> str:
    return f"ent-{uuid.uuid4().hex[:8]}"


def telemetry(ent: str, device: str, seq: int) -> tuple[str, bytes]:
    return f"dyj/hazchem/{ent}/{device}/telemetry", json.dumps({"seq": seq, "gas": 1.5 * seq}).encode()


def stream_records(kinesis: Any) -> list[dict[str, Any]]:
    """Every record in the stream, shard by shard, in shard order, with its Lambda `eventID` added.

    moto numbers records per shard ("1", "2", ...), so only shard id + sequence number identify a record.
    """
    records: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName=STREAM)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            records.extend({**r, "EventID": f"{shard['ShardId']}:{r['SequenceNumber']}"} for r in page["Records"])
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
    return records


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        page = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        if not page.get("Messages"):
            return messages
        messages.extend(page["Messages"])
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(page["Messages"])]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)


def decoded(record: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record["Data"])
    return data


def records_of(runtime: Runtime, ent: str) -> list[dict[str, Any]]:
    return [r for r in stream_records(runtime.kinesis) if decoded(r).get("topic_enterprise") == ent]


# --------------------------------------------------------------------------------------------- bridge


def test_valid_telemetry_reaches_the_stream_with_rule_fields_keyed_by_device(runtime: Runtime) -> None:
    ent = enterprise()
    before_ms = time.time_ns() // 1_000_000

    runtime.publish([telemetry(ent, "dev-a", 0)])

    [record] = [r for r in stream_records(runtime.kinesis) if decoded(r).get("topic_enterprise") == ent]
    body = decoded(record)
    assert record["PartitionKey"] == "dev-a"
    assert body["seq"] == 0
    assert body["topic_sector"] == "hazchem"
    assert body["topic_device"] == "dev-a"
    assert before_ms <= body["received_at"] <= time.time_ns() // 1_000_000


def test_interleaved_devices_keep_their_publish_order(runtime: Runtime) -> None:
    ent = enterprise()
    messages = [telemetry(ent, device, seq) for seq in range(40) for device in ("dev-1", "dev-2")]

    runtime.publish(messages)

    ours = [r for r in stream_records(runtime.kinesis) if decoded(r).get("topic_enterprise") == ent]
    for device in ("dev-1", "dev-2"):
        of_device = [r for r in ours if r["PartitionKey"] == device]
        assert [decoded(r)["seq"] for r in of_device] == list(range(40))
        assert {decoded(r)["topic_device"] for r in of_device} == {device}


def test_non_json_payload_goes_to_the_error_queue_with_its_reason(runtime: Runtime) -> None:
    ent = enterprise()
    topic = f"dyj/mining/{ent}/dev-x/telemetry"
    before = runtime.bridge.counters

    runtime.publish([(topic, b"\x00not-json\xff"), telemetry(ent, "dev-x", 1)])

    errors = [json.loads(m["Body"]) for m in receive_all(runtime.sqs, runtime.error_queue_url)]
    [error] = [e for e in errors if e["topic"] == topic]
    assert error["ruleName"] == "telemetry_to_stream"
    assert base64.b64decode(error["base64OriginalPayload"]) == b"\x00not-json\xff"
    [failure] = error["failures"]
    assert failure["failedAction"] == "KinesisAction"
    assert failure["failedResource"] == STREAM
    assert "not valid JSON" in failure["errorMessage"]
    assert [decoded(r)["seq"] for r in records_of(runtime, ent)] == [1]
    after = runtime.bridge.counters
    assert (after.received - before.received, after.forwarded - before.forwarded) == (2, 1)
    assert after.errored - before.errored == 1


def test_topics_outside_the_rule_filter_are_not_received(runtime: Runtime) -> None:
    before = runtime.bridge.counters.received

    runtime.publisher.publish(f"dyj/hazchem/{enterprise()}/dev-a/status", b"{}")
    assert runtime.publisher.wait_all_published(timeout=5)
    time.sleep(0.2)

    assert runtime.bridge.counters.received == before


def test_lifecycle_events_published_as_the_broker_reach_the_stream_through_the_matching_rule(
    runtime: Runtime,
) -> None:
    """IoT Core publishes lifecycle events itself (no MQTT client may publish on `$aws/...`): the bridge takes them
    through every rule whose filter matches, keyed by the client id like the deployed lifecycle rule."""
    sql = "SELECT *, timestamp() AS received_at FROM '$aws/events/presence/+/+'"
    stream = "dyj-lifecycle-test"  # its own stream: the other tests read every record of theirs
    runtime.kinesis.create_stream(StreamName=stream, ShardCount=1)
    wait_stream_active(runtime.kinesis, stream)
    rule = BridgedRule("lifecycle_to_stream", sql, stream, "${clientId}", runtime.error_queue_url)
    bridge = RuleBridge("127.0.0.1", runtime.broker.port, [rule], runtime.kinesis, runtime.sqs)
    bridge.start()
    device = f"dev-{uuid.uuid4().hex[:8]}"
    event = {"clientId": device, "eventType": "disconnected", "timestamp": time.time_ns() // 1_000_000}
    try:
        topic = f"$aws/events/presence/disconnected/{device}"
        assert bridge.publish_as_broker(topic, json.dumps(event).encode()) == 1
        assert bridge.publish_as_broker(f"dyj/hazchem/{enterprise()}/{device}/telemetry", b"{}") == 0
        bridge.flush()
    finally:
        bridge.stop()
    shard = runtime.kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = runtime.kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    [record] = runtime.kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert record["PartitionKey"] == device
    assert decoded(record)["eventType"] == "disconnected" and "received_at" in decoded(record)


# --------------------------------------------------------------------------------------------- Kinesis poller


class Recorder:
    """A Lambda handler that records every invocation and can report chosen records as failed."""

    def __init__(self, fail: set[str] | None = None, fail_times: int = 1) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self._failures_left = dict.fromkeys(fail or set(), fail_times)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        self.contexts.append(context)
        failed = []
        for record in event["Records"]:
            if self._failures_left.get(record["eventID"], 0) > 0:
                self._failures_left[record["eventID"]] -= 1
                failed.append({"itemIdentifier": record["kinesis"]["sequenceNumber"]})
        return {"batchItemFailures": failed}

    def deliveries(self, event_id: str) -> int:
        return sum(r["eventID"] == event_id for e in self.events for r in e["Records"])


def drain(poller: KinesisPoller | SqsPoller, rounds: int = 20) -> None:
    idle = 0
    for _ in range(rounds):
        idle = idle + 1 if poller.run_once() == 0 else 0
        if idle == 2:
            return


def test_poller_delivers_lambda_shaped_kinesis_events(runtime: Runtime) -> None:
    ent = enterprise()
    runtime.publish([telemetry(ent, "dev-p", seq) for seq in range(3)])
    recorder = Recorder()
    poller = KinesisPoller(runtime.kinesis, STREAM, recorder, batch_size=100, region=REGION, account=ACCOUNT)

    drain(poller)

    delivered = [r for e in recorder.events for r in e["Records"]]
    ours = [r for r in delivered if json.loads(base64.b64decode(r["kinesis"]["data"]))["topic_enterprise"] == ent]
    assert [json.loads(base64.b64decode(r["kinesis"]["data"]))["seq"] for r in ours] == [0, 1, 2]
    record = ours[0]
    assert set(record) == {
        "kinesis",
        "eventSource",
        "eventVersion",
        "eventID",
        "eventName",
        "invokeIdentityArn",
        "awsRegion",
        "eventSourceARN",
    }
    assert set(record["kinesis"]) == {
        "kinesisSchemaVersion",
        "partitionKey",
        "sequenceNumber",
        "data",
        "approximateArrivalTimestamp",
    }
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert record["kinesis"]["partitionKey"] == "dev-p"
    assert isinstance(record["kinesis"]["approximateArrivalTimestamp"], float)
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventVersion"] == "1.0"
    assert record["eventName"] == "aws:kinesis:record"
    assert record["eventID"].startswith("shardId-")
    assert record["eventID"].endswith(":" + record["kinesis"]["sequenceNumber"])
    assert record["awsRegion"] == REGION
    assert record["eventSourceARN"] == f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}"
    assert record["invokeIdentityArn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    context = recorder.contexts[0]
    assert isinstance(context, LambdaContext)
    assert context.function_name == "ingest"
    assert context.aws_request_id
    assert 0 < context.get_remaining_time_in_millis() <= 60_000


def test_poller_redelivers_from_the_first_failed_record(runtime: Runtime) -> None:
    ent = enterprise()
    runtime.publish([telemetry(ent, "dev-r", seq) for seq in range(5)])
    ids = [r["EventID"] for r in records_of(runtime, ent)]
    recorder = Recorder(fail={ids[2]})
    poller = KinesisPoller(runtime.kinesis, STREAM, recorder, region=REGION, account=ACCOUNT)

    drain(poller)

    assert [recorder.deliveries(i) for i in ids] == [1, 1, 2, 2, 2]
    retry_batches = [e for e in recorder.events if e["Records"][0]["eventID"] == ids[2]]
    assert len(retry_batches) == 1


def test_handler_exception_retries_the_whole_batch(runtime: Runtime) -> None:
    ent = enterprise()
    runtime.publish([telemetry(ent, "dev-e", seq) for seq in range(2)])
    ids = [r["EventID"] for r in records_of(runtime, ent)]
    calls: list[list[str]] = []

    def flaky(event: dict[str, Any], _context: Any) -> None:
        calls.append([r["eventID"] for r in event["Records"]])
        if sum(ids[0] in batch for batch in calls) == 1 and ids[0] in calls[-1]:
            raise RuntimeError("cold database")

    poller = KinesisPoller(runtime.kinesis, STREAM, flaky, region=REGION, account=ACCOUNT)

    drain(poller)

    delivered = [event_id for batch in calls for event_id in batch]
    assert [delivered.count(i) for i in ids] == [2, 2]
    failed_batch = next(batch for batch in calls if ids[0] in batch)
    assert calls.count(failed_batch) == 2  # the very same batch, again


def test_record_that_keeps_failing_goes_to_the_failure_destination(runtime: Runtime) -> None:
    ent = enterprise()
    runtime.publish([telemetry(ent, "dev-f", seq) for seq in range(3)])
    ids = [r["EventID"] for r in records_of(runtime, ent)]
    recorder = Recorder(fail={ids[1]}, fail_times=100)
    failures: list[FailedDelivery] = []
    poller = KinesisPoller(
        runtime.kinesis,
        STREAM,
        recorder,
        failure_policy=StreamFailurePolicy(maximum_retry_attempts=2),
        on_failure=failures.append,
    )

    drain(poller)

    [failure] = failures
    assert failure.record["eventID"] == ids[1]
    assert failure.attempts == 3
    assert failure.shard_id == ids[1].split(":")[0]
    # as Lambda does, the rest of the retried batch rides along each retry and is discarded with it
    assert [r["eventID"] for r in failure.records] == ids[1:]
    assert [recorder.deliveries(i) for i in ids] == [1, 3, 3]


def test_latest_starting_position_skips_existing_records(runtime: Runtime) -> None:
    runtime.publish([telemetry(enterprise(), "dev-l", 0)])
    recorder = Recorder()
    poller = KinesisPoller(runtime.kinesis, STREAM, recorder, starting_position="LATEST")

    assert poller.run_once() == 0
    ent = enterprise()
    runtime.publish([telemetry(ent, "dev-l", 1)])
    drain(poller)

    delivered = [json.loads(base64.b64decode(r["kinesis"]["data"])) for e in recorder.events for r in e["Records"]]
    assert [d["topic_enterprise"] for d in delivered] == [ent]


# --------------------------------------------------------------------------------------------- SQS poller


def test_sqs_poller_deletes_successes_and_redelivers_reported_failures(runtime: Runtime) -> None:
    queue_url = runtime.sqs.create_queue(QueueName=f"work-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    for body in ("a", "b", "c"):
        runtime.sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
        )
    seen: list[dict[str, Any]] = []
    failed_once: set[str] = set()

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        seen.extend(event["Records"])
        failed = [r for r in event["Records"] if r["body"] == "b" and r["messageId"] not in failed_once]
        failed_once.update(r["messageId"] for r in failed)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in failed]}

    poller = SqsPoller(runtime.sqs, queue_url, handler, region=REGION, account=ACCOUNT, retry_visibility_timeout=0)

    drain(poller)

    assert sorted(r["body"] for r in seen) == ["a", "b", "b", "c"]
    record = seen[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_url.rsplit('/', 1)[-1]}"
    assert record["awsRegion"] == REGION
    assert record["messageAttributes"]["kind"]["stringValue"] == "test"
    assert record["messageAttributes"]["kind"]["dataType"] == "String"
    assert {"messageId", "receiptHandle", "body", "attributes", "md5OfBody"} <= set(record)
    assert "ApproximateReceiveCount" in record["attributes"]
    assert runtime.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages") is None


def test_background_poller_delivers_new_records_until_stopped(runtime: Runtime) -> None:
    recorder = Recorder()
    poller = KinesisPoller(runtime.kinesis, STREAM, recorder, starting_position="LATEST", poll_interval=0.02)
    poller.start()
    try:
        time.sleep(0.1)  # let it take its LATEST iterators before publishing
        ent = enterprise()
        runtime.publish([telemetry(ent, "dev-b", 0)])
        deadline = time.monotonic() + 5
        while not recorder.events and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        poller.stop()

    delivered = [json.loads(base64.b64decode(r["kinesis"]["data"])) for e in recorder.events for r in e["Records"]]
    assert [d["topic_enterprise"] for d in delivered] == [ent]
