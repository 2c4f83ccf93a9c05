"""Local stand-ins for Lambda event source mappings: a Kinesis stream poller and an SQS queue poller.

Both invoke a plain `handler(event, context)` with the event shape AWS Lambda sends, and honour partial batch
responses (`{"batchItemFailures": [{"itemIdentifier": ...}]}`, i.e. ReportBatchItemFailures).

Kinesis, as a Lambda event source mapping does with the failure handling of a `StreamFailurePolicy` (the same
values the packaged template gives the mapping, read from the stream's `dayingji:EventSourceMapping` metadata,
see `StreamFailurePolicy.from_event_source_mapping`):
- records are delivered per shard, in order, in batches of up to `batch_size`;
- a reported failure (batchItemFailures) checkpoints the records before the first failed one and retries the rest
  of that batch from it; a function error (the handler raised, or answered with an unknown identifier) fails the
  whole batch;
- with `bisect_batch_on_function_error`, a batch of more than one record that fails with a function error is split
  in two halves, each retried on its own; splitting does not consume the retry quota (as on AWS), so a poison
  record ends up alone, is retried `maximum_retry_attempts` times, and is discarded;
- after `maximum_retry_attempts` retries the batch being retried is discarded (the records from the checkpoint to
  the end of that batch, as Lambda does), and so are records older than `maximum_record_age_s` before they are
  handed over; each discarded batch goes to `on_failure` as a `FailedDelivery`, whose `invocation_record()` is the
  metadata message Lambda sends to an on-failure destination (`SqsFailureDestination` sends it to a queue). The
  shard then moves on.

SQS: received messages are deleted when the handler succeeds for them; failed ones stay in the queue and come
back after the visibility timeout (`retry_visibility_timeout` shortens that locally); the queue's redrive policy,
not the poller, moves them to a dead-letter queue.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

__all__ = [
    "FailedDelivery",
    "Handler",
    "KinesisPoller",
    "LambdaContext",
    "SqsFailureDestination",
    "SqsPoller",
    "StreamFailurePolicy",
]

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
"""Anything Lambda could call: `handler(event, context)`; the return value may carry batchItemFailures."""

StartingPosition = Literal["TRIM_HORIZON", "LATEST"]
FailureCondition = Literal["RetryAttemptsExhausted", "RecordAgeExceeded"]

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
REPORT_BATCH_ITEM_FAILURES: Final = "ReportBatchItemFailures"
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
class StreamFailurePolicy:
    """What a stream event source mapping does with a failing batch (Lambda's error-handling settings).

    `None` means Lambda's default for that setting: retry until the record expires, never discard by age. The
    poller's own default (3 retries, no bisection) keeps a bare poller from blocking a shard forever in a test;
    the local runtime passes the template's values (`from_event_source_mapping`).
    """

    maximum_retry_attempts: int | None = 3
    bisect_batch_on_function_error: bool = False
    maximum_record_age_s: float | None = None
    report_batch_item_failures: bool = True

    def __post_init__(self) -> None:
        if self.maximum_retry_attempts is not None and self.maximum_retry_attempts < 0:
            raise ValueError("maximum_retry_attempts must be >= 0 (None: retry until the record expires)")
        if self.maximum_record_age_s is not None and self.maximum_record_age_s <= 0:
            raise ValueError("maximum_record_age_s must be > 0 (None: no maximum)")

    @classmethod
    def from_event_source_mapping(cls, properties: Mapping[str, Any]) -> StreamFailurePolicy:
        """From event source mapping properties (CloudFormation names); -1 or absent: Lambda's default."""
        retries = int(properties.get("MaximumRetryAttempts", -1))
        age = int(properties.get("MaximumRecordAgeInSeconds", -1))
        return cls(
            maximum_retry_attempts=None if retries == -1 else retries,
            bisect_batch_on_function_error=bool(properties.get("BisectBatchOnFunctionError", False)),
            maximum_record_age_s=None if age == -1 else float(age),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES in properties.get("FunctionResponseTypes", ()),
        )

    def retries_exhausted(self, retries_done: int) -> bool:
        return self.maximum_retry_attempts is not None and retries_done >= self.maximum_retry_attempts


@dataclass(frozen=True)
class FailedDelivery:
    """A batch the poller gave up on, as an on-failure destination hears of it.

    `records` are the discarded Kinesis event records, in order; `attempts` is how often this batch was handed to
    the function (0 when it was discarded for its age before any attempt).
    """

    event_source_arn: str
    records: tuple[dict[str, Any], ...]
    attempts: int
    reason: str
    shard_id: str | None = None
    condition: FailureCondition = "RetryAttemptsExhausted"
    function_arn: str = ""

    @property
    def record(self) -> dict[str, Any]:
        """The first discarded record (where a replay starts)."""
        return self.records[0]

    def invocation_record(self, now: float) -> dict[str, Any]:
        """The JSON document Lambda sends to an on-failure destination: metadata only, never the data, so a
        replay reads the records back from the stream by shard and sequence range (docs/operations.md)."""
        first, last = self.records[0]["kinesis"], self.records[-1]["kinesis"]
        document: dict[str, Any] = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function_arn,
                "condition": self.condition,
                "approximateInvokeCount": self.attempts,
            },
            "version": "1.0",
            "timestamp": _iso_utc(now),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first["sequenceNumber"],
                "endSequenceNumber": last["sequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso_utc(float(first["approximateArrivalTimestamp"])),
                "approximateArrivalOfLastRecord": _iso_utc(float(last["approximateArrivalTimestamp"])),
                "batchSize": len(self.records),
                "streamArn": self.event_source_arn,
            },
        }
        if self.attempts:
            document["responseContext"] = {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            }
        return document


def _iso_utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


OnFailure = Callable[[FailedDelivery], None]


class SqsFailureDestination:
    """An on-failure destination: each discarded batch's `invocation_record()` as one message on an SQS queue."""

    def __init__(self, sqs_client: Any, queue_url: str, clock: Callable[[], float] = time.time) -> None:
        self._sqs = sqs_client
        self.queue_url = queue_url
        self._clock = clock

    def __call__(self, failure: FailedDelivery) -> None:
        body = json.dumps(failure.invocation_record(self._clock()), separators=(",", ":"))
        self._sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)


def _log_failure(failure: FailedDelivery) -> None:
    logger.warning(
        "%s: giving up on %d record(s) from %s after %d attempt(s): %s",
        failure.condition,
        len(failure.records),
        failure.record.get("eventID"),
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
    """`start()`/`stop()` around `run_once()`: polls again at once while there is work, else sleeps; `concurrency`
    threads poll side by side (Lambda's pollers run several batches of one event source at once)."""

    poll_interval: float
    name: str
    concurrency: int = 1

    def __init__(self) -> None:
        self._stop_event = threading.Event()
        self._threads: list[threading.Thread] = []

    def run_once(self) -> int:
        raise NotImplementedError

    def start(self) -> None:
        if self._threads:
            raise RuntimeError(f"{self.name} already started")
        self._stop_event.clear()
        self._threads = [
            threading.Thread(target=self._loop, name=f"{self.name}-{index}", daemon=True)
            for index in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

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
    """One shard's position: fetched records not yet checkpointed, and how the head of them is being retried.

    `splits` are the sizes of the batches the head of `buffer` is cut into (after a bisection, or to retry exactly
    the rest of a failed batch); when empty, the next batch is simply the first `batch_size` records.
    """

    shard_id: str
    iterator: str | None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    last_fetched: str | None = None
    closed: bool = False
    splits: list[int] = field(default_factory=list)
    retried_sequence: str | None = None  # first record of the batch that failed and is being retried
    attempts: int = 0  # failed invocations of that batch so far


@dataclass(frozen=True)
class _Outcome:
    """How one invocation ended: `failed_from` is the index of the first record not processed (None: all were);
    `function_error` tells a raised (or unreadable) answer from reported batch item failures."""

    failed_from: int | None
    function_error: bool = False
    reason: str = ""


_SUCCEEDED: Final = _Outcome(None)


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
        failure_policy: StreamFailurePolicy | None = None,
        on_failure: OnFailure | None = None,
        function_name: str = "ingest",
        poll_interval: float = 0.05,
        clock: Callable[[], float] = time.time,
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
        self.failure_policy = failure_policy or StreamFailurePolicy()
        self._on_failure = on_failure
        self._function_name = function_name
        self._clock = clock
        self.poll_interval = poll_interval
        self.name = f"kinesis-poller-{stream_name}"
        self.event_source_arn = f"arn:aws:kinesis:{region}:{account}:stream/{stream_name}"
        self._function_arn = f"arn:aws:lambda:{region}:{account}:function:{function_name}"
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
        self._discard_expired(shard)
        if not shard.buffer:
            if shard.iterator is None:
                shard.closed = True
            return 0
        batch = shard.buffer[: shard.splits[0] if shard.splits else self._batch_size]
        outcome = self._invoke(batch)
        if outcome.failed_from is None:
            self._consume(shard, len(batch))
            return len(batch)
        if outcome.function_error and self.failure_policy.bisect_batch_on_function_error and len(batch) > 1:
            self._bisect(shard, len(batch))
            return len(batch)
        self._consume(shard, outcome.failed_from)  # the records before the first failure are done
        rest = batch[outcome.failed_from :]
        self._retry_exactly(shard, len(rest))
        if self._count_failed_attempt(shard, rest[0]):
            self._discard(shard, rest, "RetryAttemptsExhausted", shard.attempts, outcome.reason)
        return len(batch)

    def _invoke(self, batch: list[dict[str, Any]]) -> _Outcome:
        context = LambdaContext(self._function_name, region=self._region, account=self._account)
        try:
            response = self._handler({"Records": batch}, context)
        except Exception as exc:
            logger.warning("%s: handler raised %s: %s", self.name, type(exc).__name__, exc)
            return _Outcome(0, function_error=True, reason=f"handler raised {type(exc).__name__}: {exc}")
        if not self.failure_policy.report_batch_item_failures:
            return _SUCCEEDED
        identifiers = _failed_identifiers(response)
        if not identifiers:
            return _SUCCEEDED
        positions = {record["kinesis"]["sequenceNumber"]: index for index, record in enumerate(batch)}
        if any(identifier not in positions for identifier in identifiers):
            return _Outcome(0, function_error=True, reason=f"invalid batchItemFailures {identifiers!r}")
        first = min(positions[identifier] for identifier in identifiers)
        return _Outcome(first, reason="reported in batchItemFailures")

    def _bisect(self, shard: _ShardState, size: int) -> None:
        """Cut the failed head batch in two; splitting does not count as a retry."""
        half = (size + 1) // 2
        shard.splits[:1] = [half, size - half]
        shard.retried_sequence, shard.attempts = None, 0

    @staticmethod
    def _retry_exactly(shard: _ShardState, size: int) -> None:
        """The next batch is exactly these `size` head records (the rest of the failed batch), nothing more."""
        if shard.splits:
            shard.splits[0] = size
        else:
            shard.splits.append(size)

    def _count_failed_attempt(self, shard: _ShardState, head: dict[str, Any]) -> bool:
        """One more failed invocation of the batch starting at `head`; True when its retries are exhausted."""
        sequence = head["kinesis"]["sequenceNumber"]
        if shard.retried_sequence != sequence:
            shard.retried_sequence, shard.attempts = sequence, 0
        shard.attempts += 1
        return self.failure_policy.retries_exhausted(shard.attempts - 1)

    def _discard_expired(self, shard: _ShardState) -> None:
        """Records older than the maximum age (a prefix: a shard is in arrival order) are never handed over."""
        max_age = self.failure_policy.maximum_record_age_s
        if max_age is None or not shard.buffer:
            return
        oldest_allowed = self._clock() - max_age
        expired = 0
        while (
            expired < len(shard.buffer)
            and float(shard.buffer[expired]["kinesis"]["approximateArrivalTimestamp"]) < oldest_allowed
        ):
            expired += 1
        if expired:
            reason = f"older than the maximum record age of {max_age:g} s"
            retried = shard.retried_sequence == shard.buffer[0]["kinesis"]["sequenceNumber"]
            attempts = shard.attempts if retried else 0
            self._discard(shard, shard.buffer[:expired], "RecordAgeExceeded", attempts, reason)

    def _discard(
        self,
        shard: _ShardState,
        records: Sequence[dict[str, Any]],
        condition: FailureCondition,
        attempts: int,
        reason: str,
    ) -> None:
        """Hand the batch to the on-failure destination first (if that fails, the batch stays), then move on."""
        failure = FailedDelivery(
            self.event_source_arn,
            tuple(records),
            attempts,
            reason,
            shard.shard_id,
            condition=condition,
            function_arn=self._function_arn,
        )
        _log_failure(failure)
        if self._on_failure is not None:
            self._on_failure(failure)
        self._consume(shard, len(records))

    @staticmethod
    def _consume(shard: _ShardState, count: int) -> None:
        """Checkpoint the first `count` records of the buffer (processed or discarded)."""
        if count <= 0:
            return
        head_sequence = shard.buffer[0]["kinesis"]["sequenceNumber"]
        del shard.buffer[:count]
        left = count
        while left and shard.splits:
            if shard.splits[0] <= left:
                left -= shard.splits.pop(0)
            else:
                shard.splits[0] -= left
                left = 0
        if shard.retried_sequence == head_sequence:
            shard.retried_sequence, shard.attempts = None, 0


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
        concurrency: int = 1,
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
        self.concurrency = concurrency
        self._lock = threading.BoundedSemaphore(concurrency)  # at most `concurrency` batches in hand at once

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
