"""Local stand-ins for Lambda event source mappings: a Kinesis stream poller and an SQS queue poller.

Both invoke a plain `handler(event, context)` with the event shape AWS Lambda sends, and honour partial batch
responses (`{"batchItemFailures": [{"itemIdentifier": ...}]}`, i.e. ReportBatchItemFailures).

Kinesis, as Lambda does without bisecting: records are delivered per shard in order; on a reported failure the
records before the first failed one are checkpointed and the batch is re-delivered from the failed record; an
exception, or a response naming an unknown/empty identifier, fails the whole batch. After `max_retries` retries of
the same record it goes to `on_failure` and the shard moves on (Lambda would drop the rest of that batch too; we
only give up on the record that keeps failing).

SQS: received messages are deleted when the handler succeeds for them; failed ones stay in the queue and come
back after the visibility timeout (`retry_visibility_timeout` shortens that locally); the queue's redrive policy,
not the poller, moves them to a dead-letter queue.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FailedDelivery",
    "Handler",
    "KinesisPoller",
    "LambdaContext",
    "SqsPoller",
]

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
"""Anything Lambda could call: `handler(event, context)`; the return value may carry batchItemFailures."""

StartingPosition = Literal["TRIM_HORIZON", "LATEST"]

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
_SHARD_REFRESH_S = 5.0
_MAX_SQS_RECEIVE = 10


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers (and Powertools) read."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    timeout_s: float = 60.0
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_s

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class FailedDelivery:
    """A record (or message) given up on after its retries, as an on-failure destination would receive it."""

    event_source_arn: str
    record: dict[str, Any]
    attempts: int
    reason: str
    shard_id: str | None = None


OnFailure = Callable[[FailedDelivery], None]


def _log_failure(failure: FailedDelivery) -> None:
    logger.warning(
        "giving up on %s after %d attempt(s): %s",
        failure.record.get("eventID") or failure.record.get("messageId"),
        failure.attempts,
        failure.reason,
    )


def _failed_identifiers(response: Any) -> list[Any] | None:
    """Identifiers reported as failed; None when the response is not a partial batch response."""
    if not isinstance(response, dict) or "batchItemFailures" not in response:
        return None
    failures = response["batchItemFailures"]
    if not failures:
        return []
    if not isinstance(failures, list):
        return [None]
    return [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]


class _BackgroundPoller:
    """`start()`/`stop()` around `run_once()`: polls again at once while there is work, else sleeps."""

    poll_interval: float
    name: str

    def __init__(self) -> None:
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop_event.is_set():
            try:
                delivered = self.run_once()
            except Exception:
                logger.exception("%s: polling failed", self.name)
                delivered = 0
            if not delivered:
                self._stop_event.wait(self.poll_interval)

    def __enter__(self) -> _BackgroundPoller:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------------- Kinesis


@dataclass
class _ShardState:
    shard_id: str
    iterator: str | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    last_fetched: str | None = None
    closed: bool = False
    failing_sequence: str | None = None
    attempts: int = 0


class KinesisPoller(_BackgroundPoller):
    """Reads every shard of a stream and invokes `handler` with Kinesis batches, per shard, in order."""

    def __init__(
        self,
        kinesis_client: Any,
        stream_name: str,
        handler: Handler,
        batch_size: int = 100,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        *,
        starting_position: StartingPosition = "TRIM_HORIZON",
        max_retries: int = 3,
        on_failure: OnFailure | None = None,
        function_name: str = "ingest",
        poll_interval: float = 0.05,
    ) -> None:
        super().__init__()
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be within 1..10000")
        self._kinesis = kinesis_client
        self.stream_name = stream_name
        self._handler = handler
        self._batch_size = batch_size
        self._region = region
        self._account = account
        self._starting_position = starting_position
        self._max_retries = max_retries
        self._on_failure = on_failure or _log_failure
        self._function_name = function_name
        self.poll_interval = poll_interval
        self.name = f"kinesis-poller-{stream_name}"
        self.event_source_arn = f"arn:aws:kinesis:{region}:{account}:stream/{stream_name}"
        self._invoke_identity_arn = f"arn:aws:iam::{account}:role/{function_name}-role"
        self._shards: dict[str, _ShardState] = {}
        self._shards_listed_at = float("-inf")
        self._lock = threading.Lock()

    def run_once(self) -> int:
        """Deliver at most one batch per shard; the number of records handed to the handler (retries included)."""
        with self._lock:
            self._refresh_shards()
            return sum(self._deliver_shard(shard) for shard in list(self._shards.values()) if not shard.closed)

    # ----------------------------------------------------------------------------------------------- shards

    def _refresh_shards(self) -> None:
        if time.monotonic() - self._shards_listed_at < _SHARD_REFRESH_S:
            return
        # Shards that appear after the first listing are children of a reshard: read them from the start.
        position: StartingPosition = self._starting_position if not self._shards else "TRIM_HORIZON"
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            page = self._kinesis.list_shards(**kwargs)
            for shard in page["Shards"]:
                shard_id = shard["ShardId"]
                if shard_id not in self._shards:
                    self._shards[shard_id] = _ShardState(shard_id, self._new_iterator(shard_id, None, position))
            token = page.get("NextToken")
            if not token:
                break
            kwargs = {"NextToken": token}
        self._shards_listed_at = time.monotonic()

    def _new_iterator(
        self, shard_id: str, after_sequence: str | None, position: StartingPosition = "TRIM_HORIZON"
    ) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
        if after_sequence is None:
            kwargs["ShardIteratorType"] = position
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = after_sequence
        return str(self._kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def _fill(self, shard: _ShardState) -> None:
        wanted = self._batch_size - len(shard.buffer)
        if wanted <= 0 or shard.iterator is None:
            return
        try:
            response = self._kinesis.get_records(ShardIterator=shard.iterator, Limit=wanted)
        except self._kinesis.exceptions.ExpiredIteratorException:
            shard.iterator = self._new_iterator(shard.shard_id, shard.last_fetched)
            response = self._kinesis.get_records(ShardIterator=shard.iterator, Limit=wanted)
        for record in response["Records"]:
            shard.buffer.append(self._event_record(shard.shard_id, record))
            shard.last_fetched = record["SequenceNumber"]
        shard.iterator = response.get("NextShardIterator")

    def _event_record(self, shard_id: str, record: dict[str, Any]) -> dict[str, Any]:
        arrival = record.get("ApproximateArrivalTimestamp")
        data: bytes = record["Data"]
        return {
            "kinesis": {
                "kinesisSchemaVersion": "1.0",
                "partitionKey": record["PartitionKey"],
                "sequenceNumber": record["SequenceNumber"],
                "data": base64.b64encode(data).decode("ascii"),
                "approximateArrivalTimestamp": arrival.timestamp() if arrival is not None else time.time(),
            },
            "eventSource": "aws:kinesis",
            "eventVersion": "1.0",
            "eventID": f"{shard_id}:{record['SequenceNumber']}",
            "eventName": "aws:kinesis:record",
            "invokeIdentityArn": self._invoke_identity_arn,
            "awsRegion": self._region,
            "eventSourceARN": self.event_source_arn,
        }

    # ----------------------------------------------------------------------------------------------- delivery

    def _deliver_shard(self, shard: _ShardState) -> int:
        self._fill(shard)
        if not shard.buffer:
            if shard.iterator is None:
                shard.closed = True
            return 0
        batch = shard.buffer[: self._batch_size]
        first_failed, reason = self._invoke(batch)
        if first_failed is None:
            del shard.buffer[: len(batch)]
            shard.failing_sequence, shard.attempts = None, 0
            return len(batch)
        del shard.buffer[:first_failed]
        self._note_failure(shard, reason)
        return len(batch)

    def _invoke(self, batch: list[dict[str, Any]]) -> tuple[int | None, str]:
        """Index of the first failed record (None when the whole batch succeeded) and why it failed."""
        context = LambdaContext(self._function_name, region=self._region, account=self._account)
        try:
            response = self._handler({"Records": batch}, context)
        except Exception as exc:
            logger.warning("%s: handler raised %s: %s", self.name, type(exc).__name__, exc)
            return 0, f"handler raised {type(exc).__name__}: {exc}"
        identifiers = _failed_identifiers(response)
        if not identifiers:
            return None, ""
        positions = {record["kinesis"]["sequenceNumber"]: index for index, record in enumerate(batch)}
        if any(identifier not in positions for identifier in identifiers):
            return 0, f"invalid batchItemFailures {identifiers!r}: whole batch retried"
        return min(positions[identifier] for identifier in identifiers), "reported in batchItemFailures"

    def _note_failure(self, shard: _ShardState, reason: str) -> None:
        head = shard.buffer[0]
        sequence = head["kinesis"]["sequenceNumber"]
        if shard.failing_sequence != sequence:
            shard.failing_sequence, shard.attempts = sequence, 0
        shard.attempts += 1
        if shard.attempts > self._max_retries:
            shard.buffer.pop(0)
            shard.failing_sequence, attempts, shard.attempts = None, shard.attempts, 0
            self._on_failure(FailedDelivery(self.event_source_arn, head, attempts, reason, shard.shard_id))


# ------------------------------------------------------------------------------------------------------------- SQS


class SqsPoller(_BackgroundPoller):
    """Receives from one queue and invokes `handler` with SQS batches; deletes what succeeded."""

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        batch_size: int = 10,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
        *,
        function_name: str = "worker",
        poll_interval: float = 0.1,
        wait_time_seconds: int = 0,
        retry_visibility_timeout: int | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be within 1..10000")
        self._sqs = sqs_client
        self.queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._region = region
        self._account = account
        self._function_name = function_name
        self.poll_interval = poll_interval
        self._wait_time_seconds = wait_time_seconds
        self._retry_visibility_timeout = retry_visibility_timeout
        queue_name = queue_url.rstrip("/").rsplit("/", 1)[-1]
        self.event_source_arn = f"arn:aws:sqs:{region}:{account}:{queue_name}"
        self.name = f"sqs-poller-{queue_name}"
        self._lock = threading.Lock()

    def run_once(self) -> int:
        """Receive up to `batch_size` messages, invoke once, delete the successes; the number delivered."""
        with self._lock:
            messages = self._receive()
            if not messages:
                return 0
            records = [self._event_record(message) for message in messages]
            failed = self._invoke(records)
            self._delete([r for r in records if r["messageId"] not in failed])
            self._release([r for r in records if r["messageId"] in failed])
            return len(records)

    def _receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self._batch_size:
            response = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(_MAX_SQS_RECEIVE, self._batch_size - len(messages)),
                WaitTimeSeconds=self._wait_time_seconds if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages.extend(received)
            if len(received) < _MAX_SQS_RECEIVE:
                break
        return messages

    def _event_record(self, message: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: _lambda_message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.event_source_arn,
            "awsRegion": self._region,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record

    def _invoke(self, records: list[dict[str, Any]]) -> set[str]:
        """Message ids that failed (all of them when the handler raised or answered with unknown ids)."""
        all_ids = {record["messageId"] for record in records}
        context = LambdaContext(self._function_name, region=self._region, account=self._account)
        try:
            response = self._handler({"Records": records}, context)
        except Exception as exc:
            logger.warning("%s: handler raised %s: %s", self.name, type(exc).__name__, exc)
            return all_ids
        identifiers = _failed_identifiers(response)
        if not identifiers:
            return set()
        if any(identifier not in all_ids for identifier in identifiers):
            logger.warning("%s: invalid batchItemFailures %r: whole batch failed", self.name, identifiers)
            return all_ids
        return {str(identifier) for identifier in identifiers}

    def _delete(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), _MAX_SQS_RECEIVE):
            chunk = records[start : start + _MAX_SQS_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)]
            response = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failure in response.get("Failed", []):
                logger.warning("%s: delete failed: %s", self.name, failure)

    def _release(self, records: list[dict[str, Any]]) -> None:
        if self._retry_visibility_timeout is None:
            return
        for record in records:
            self._sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=self._retry_visibility_timeout,
            )


def _lambda_message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API attribute (`StringValue`, `BinaryValue`, `DataType`) to Lambda's camelCase shape."""
    attribute: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute
