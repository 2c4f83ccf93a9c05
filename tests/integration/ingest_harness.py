"""Drive the `ingest` Lambda handler as the Kinesis event source does, on moto (in process), and read back
everything it leaves behind: tables, topic publications (what the subscribed queues receive) and SMS.

The harness knows the handler only from the outside, so it holds whatever design sits behind it:
- records go in as real Kinesis events (base64 data, sequence numbers, `approximateArrivalTimestamp`) through
  `app.ingest`, and a batch is redelivered as Lambda does: from the first reported item failure on, or whole when
  the handler raised;
- the platform's wall clock is `time.time`, set by the test (`PlatformClock`), so runs are repeatable;
- a "container" is one wiring of `chalicelib.bootstrap.container()`: a restart builds a new one, a race runs two;
- faults are injected at the botocore layer (`WriteFaults`), under every adapter, on the write calls only;
- a `Snapshot` is every item of every table the ingest may write (all but the registry), every message on every
  queue and every SMS, compared as multisets; `differences` says what is missing, extra, doubled or changed.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer
from botocore.exceptions import ClientError, ReadTimeoutError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.config import DefaultConfig
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.sns.models import sns_backends
from moto.stepfunctions.models import stepfunctions_backends

from chalicelib import bootstrap
from chalicelib.adapters import dynamo
from chalicelib.adapters.dynamo import DynamoRegistry
from chalicelib.domain.clock import SHANGHAI
from chalicelib.settings import Settings
from local.aws import DEFAULT_REGION, Provisioned, fake_aws_environ, provision
from local.seed import SeedRegistry, load_seed

# --- the platform clock ----------------------------------------------------------------------------------------


class PlatformClock:
    """`time.time` as the platform sees it: set by the test and frozen in between, so that two runs of one stream
    see the same clock at the same points (install with `monkeypatch.setattr(time, "time", clock)`)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def set(self, at: float) -> None:
        self.now = at


A_MONDAY_MORNING = datetime(2026, 6, 1, 10, 0, tzinfo=SHANGHAI).timestamp()
"""Where the platform clock starts: a fixed instant, so the simulated fleet (whose vehicles drive and rest on the
clock) sends the same bytes on every run, whatever the day."""


# --- stream records and Kinesis events -------------------------------------------------------------------------

_sequence_counter = itertools.count(1)
SEQUENCE_NUMBER = re.compile(r"(?<=shardId-000000000000:)\d+")  # a record's id in a quarantine key


def next_sequence_number() -> str:
    """A Kinesis-like sequence number: 56 digits, increasing, unique in the process."""
    return f"4959{next(_sequence_counter):052d}"


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One record on the device stream."""

    sequence_number: str
    data: bytes
    arrival_s: float  # approximateArrivalTimestamp
    partition_key: str = "device"


def rule_document(topic: str, payload: bytes, received_at_s: float) -> bytes:
    """What the telemetry topic rule puts on the stream for one MQTT message (infra/resources.json
    `TelemetryRule`: the payload base64, the topic's parts, the rule's `timestamp()`)."""
    parts = topic.split("/")
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "topic_sector": parts[1] if len(parts) > 1 else "",
            "topic_enterprise": parts[2] if len(parts) > 2 else "",
            "topic_device": parts[3] if len(parts) > 3 else "",
            "received_at": int(received_at_s * 1000),
        }
    ).encode()


def stream_record(topic: str, payload: bytes, arrival_s: float) -> StreamRecord:
    return StreamRecord(next_sequence_number(), rule_document(topic, payload, arrival_s), arrival_s, topic)


def onto_the_stream(platform: Platform, records: Sequence[StreamRecord]) -> list[StreamRecord]:
    """Put the records on moto's device stream (its first shard, where `kinesis_event` says they come from), each
    arriving at its own `arrival_s`, so that a cold container can read them back; the same records with the
    sequence numbers the stream gave them."""
    from datetime import UTC

    import moto.kinesis.models as kinesis_models

    client = boto3.client("kinesis", region_name=platform.world.infra.region)
    stream = platform.settings.device_stream
    placed: list[StreamRecord] = []
    arrival = [0.0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kinesis_models, "utcnow", lambda: datetime.fromtimestamp(arrival[0], UTC).replace(tzinfo=None)
        )
        for record in records:
            arrival[0] = record.arrival_s
            device = (
                record.partition_key.split("/")[3]
                if record.partition_key.count("/") >= 3
                else record.partition_key
            )
            answer = client.put_record(
                StreamName=stream, Data=record.data, PartitionKey=device, ExplicitHashKey="0"
            )
            placed.append(replace(record, sequence_number=answer["SequenceNumber"], partition_key=device))
    return placed


def kinesis_event(records: Sequence[StreamRecord], region: str = "us-east-1") -> dict[str, Any]:
    stream_arn = f"arn:aws:kinesis:{region}:{DEFAULT_ACCOUNT_ID}:stream/dayingji-test-devices"
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key[:256],
                    "sequenceNumber": record.sequence_number,
                    "data": base64.b64encode(record.data).decode("ascii"),
                    "approximateArrivalTimestamp": record.arrival_s,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{record.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/dayingji-test-ingest",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for record in records
        ]
    }


def batches(records: Sequence[StreamRecord], size: int) -> list[list[StreamRecord]]:
    return [list(records[start : start + size]) for start in range(0, len(records), size)]


# --- write faults at the botocore layer ------------------------------------------------------------------------

WRITE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "Publish",
        "PublishBatch",
        "SendMessage",
        "SendMessageBatch",
        "StartExecution",
        "PutObject",
        "PutRecord",
        "PutRecords",
    }
)
# Refusals that say the request was not carried out: each service's code from botocore's list of throttling codes.
_REFUSALS = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "sns": ("Throttling", 400),
    "sqs": ("RequestThrottled", 400),
    "stepfunctions": ("ThrottlingException", 400),
    "s3": ("SlowDown", 503),
}


class FaultMode(StrEnum):
    NOT_APPLIED = "not applied"  # the service refuses the call (throttled): nothing was written or sent
    RESPONSE_LOST = "response lost"  # the call is carried out, then the response times out on the way back
    CRASH = "crash"  # the call is carried out, then the container dies (a timeout, an out-of-memory kill)


class ContainerKilled(BaseException):
    """The container stops mid-invocation: no `except Exception` in the code under test runs."""


@dataclass(frozen=True, slots=True)
class WriteCall:
    """One write as the fault injector saw it: operation and target (table and key family, topic or SMS...)."""

    operation: str
    target: str

    @property
    def kind(self) -> str:
        return f"{self.operation} {self.target}".strip()


@dataclass(frozen=True, slots=True)
class Fault:
    """Fail the `write`-th write call (1-based) of one handler invocation, counting only the writes whose kind
    contains `matching` (all writes when it is empty)."""

    write: int
    mode: FaultMode
    matching: str = ""


@dataclass
class _Arming:
    fault: Fault | None
    matched: int = 0
    calls: list[WriteCall] = field(default_factory=list)
    injected: list[tuple[WriteCall, Fault]] = field(default_factory=list)


class WriteFaults:
    """Counts the write calls every botocore client makes while armed, and fails the planned one.

    `register` gives a client (`open_platform` registers every client made after it starts: PynamoDB's, boto3's)
    a `before-parameter-build` handler (which notes the call's target), a `before-call` handler (which counts
    writes, and raises a throttling refusal for NOT_APPLIED) and an `after-call` handler (which, once the call was
    carried out, raises a read timeout for RESPONSE_LOST or kills the container for CRASH). Arming is per thread:
    only the invocation the test armed is counted, never the test's own reads and resets.
    """

    def __init__(self, hash_keys: Mapping[str, str]) -> None:
        self._hash_keys = dict(hash_keys)  # table name -> hash key attribute (to name the key family of a write)
        self._local = threading.local()

    def register(self, client: Any) -> None:
        events = client.meta.events
        events.register("before-parameter-build", self._note_target)
        events.register("before-call", self._before_call)
        events.register("after-call", self._after_call)

    @contextmanager
    def armed(self, fault: Fault | None = None) -> Iterator[_Arming]:
        arming = _Arming(fault)
        self._local.arming = arming
        try:
            yield arming
        finally:
            self._local.arming = None

    # --- handlers

    def _note_target(self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name in WRITE_OPERATIONS and isinstance(context, dict):
            context["fault_probe_target"] = self._target(model.service_model.service_name, model.name, params)

    def _before_call(self, model: Any, context: Mapping[str, Any], **_: Any) -> None:
        arming: _Arming | None = getattr(self._local, "arming", None)
        if arming is None or model.name not in WRITE_OPERATIONS:
            return
        call = WriteCall(model.name, str((context or {}).get("fault_probe_target", "")))
        if call.target.endswith((" PRESENCE#", " ROSTER#")):
            # the presence tracker's summaries and rosters: how many depends on the container's life (a new one
            # writes a roster, a dead one's pending minute is gone), and the ingest swallows their failures by
            # design (tests/unit/test_ingest_presence.py): not points to fail, not counted
            return
        arming.calls.append(call)
        fault = arming.fault
        self._local.hit = False
        if fault is None or fault.matching not in call.kind:
            return
        arming.matched += 1
        if arming.matched != fault.write:
            return
        arming.injected.append((call, fault))
        self._local.hit = True
        if fault.mode is FaultMode.NOT_APPLIED:
            code, status = _REFUSALS.get(model.service_model.service_name, ("ThrottlingException", 400))
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "refused by the fault probe"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                model.name,
            )

    def _after_call(self, model: Any, **_: Any) -> None:
        arming: _Arming | None = getattr(self._local, "arming", None)
        if arming is None or model.name not in WRITE_OPERATIONS or not getattr(self._local, "hit", False):
            return
        self._local.hit = False
        assert arming.fault is not None
        if arming.fault.mode is FaultMode.RESPONSE_LOST:
            raise ReadTimeoutError(endpoint_url="fault-probe://response-lost")
        if arming.fault.mode is FaultMode.CRASH:
            raise ContainerKilled(f"killed after {arming.calls[-1].kind}")

    def _target(self, service: str, operation: str, params: Mapping[str, Any]) -> str:
        if service == "dynamodb":
            if operation == "BatchWriteItem":
                return ",".join(sorted(_short(t) for t in params.get("RequestItems", {})))
            if operation == "TransactWriteItems":
                tables = {
                    _short(body.get("TableName", ""))
                    for item in params.get("TransactItems", [])
                    for body in item.values()
                }
                return ",".join(sorted(tables))
            table = str(params.get("TableName", ""))
            key = params.get("Item") or params.get("Key") or {}
            hash_value = key.get(self._hash_keys.get(table, ""), {})
            text = hash_value.get("S", "") if isinstance(hash_value, dict) else ""
            family = text.split("#", 1)[0] + "#" if "#" in text else ""
            return f"{_short(table)} {family}".strip()
        if service == "sns":
            return "topic" if params.get("TopicArn") or params.get("TargetArn") else "sms"
        if service == "sqs":
            return str(params.get("QueueUrl", "")).rsplit("/", 1)[-1]
        if service == "s3":
            return str(params.get("Bucket", ""))
        return ""


def _short(table: str) -> str:
    return re.sub(r"^dayingji-[a-z0-9]+-", "", table)


# --- Lambda: containers and deliveries -------------------------------------------------------------------------


class RedeliveryError(Exception):
    """A batch still failed after the most attempts a test allows."""


@dataclass
class Attempt:
    """One invocation of the handler: what it got, what it answered, what was injected."""

    records: int
    failed: list[str] | None  # batch item failures; None when the handler raised
    error: str | None
    writes: list[WriteCall]
    injected: list[tuple[WriteCall, Fault]]
    killed: bool = False  # the container died: the next attempt needs a new one


class IngestLambda:
    """One Lambda container of the `ingest` function: a cold start wires `chalicelib.bootstrap.container()` anew
    (caches, clients, claim owner), exactly as a new process would; dropping it loses whatever only it knew."""

    _local = threading.local()

    def __init__(self) -> None:
        bootstrap.reset()
        self.wiring = bootstrap.container()

    @classmethod
    def current_wiring(cls) -> Any:
        """What `app.container()` answers during an invocation: the invoking container's wiring."""
        wiring = getattr(cls._local, "wiring", None)
        return wiring if wiring is not None else bootstrap.container()

    def invoke(self, records: Sequence[StreamRecord], faults: WriteFaults, fault: Fault | None = None) -> Attempt:
        import app as app_module

        event = kinesis_event(records)
        self._local.wiring = self.wiring
        with faults.armed(fault) as arming:
            try:
                response = app_module.ingest(event, None)
            except ContainerKilled as exc:
                return Attempt(len(records), None, f"killed: {exc}", arming.calls, arming.injected, killed=True)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
                return Attempt(len(records), None, error, arming.calls, arming.injected)
            finally:
                self._local.wiring = None
        failed = [str(item["itemIdentifier"]) for item in (response or {}).get("batchItemFailures", [])]
        return Attempt(len(records), failed, None, arming.calls, arming.injected)


@dataclass
class Delivery:
    """How the event source got one batch through: every attempt, in order."""

    batch_first: str  # the sequence number of the batch's first record
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return len(self.attempts) - 1


LAMBDA_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)
"""How long the event source waits before each retry of a failed batch (then the last delay again): Lambda backs
off, and a claim left by a dead container is taken over after its lease, so retries must be able to outlast it."""


def deliver(
    batch: Sequence[StreamRecord],
    container: Callable[[], IngestLambda],
    faults: WriteFaults,
    clock: PlatformClock,
    first_fault: Fault | None = None,
    retry_delays_s: Sequence[float] = LAMBDA_RETRY_DELAYS_S,
    max_attempts: int = 16,
    on_attempt: Callable[[Attempt], None] | None = None,
    real_pause_s: float = 0.0,
) -> Delivery:
    """Invoke until the batch is done, as Lambda does with `ReportBatchItemFailures`: after item failures it
    redelivers from the lowest failed sequence number on; after an exception (or an unknown item id) the whole
    batch. `first_fault` applies to the first attempt only; retry n comes `retry_delays_s[n]` later on the platform
    clock (and, with `real_pause_s`, waits that long in real time, so that another thread's invocation can finish).
    `container` is asked for the container of each attempt, after `on_attempt` has seen the previous one."""
    delivery = Delivery(batch[0].sequence_number if batch else "")
    pending = list(batch)
    fault = first_fault
    while pending:
        retry = len(delivery.attempts)
        if retry >= max_attempts:
            raise RedeliveryError(f"batch still failing after {max_attempts} attempts: {delivery.attempts[-1]}")
        if retry:
            clock.set(clock.now + retry_delays_s[min(retry, len(retry_delays_s)) - 1])
            if real_pause_s:
                threading.Event().wait(real_pause_s)
        attempt = container().invoke(pending, faults, fault)
        fault = None
        delivery.attempts.append(attempt)
        if on_attempt is not None:
            on_attempt(attempt)
        if attempt.failed is None:
            continue
        if not attempt.failed:
            break
        positions = {record.sequence_number: index for index, record in enumerate(pending)}
        if any(item not in positions for item in attempt.failed):
            continue  # Lambda retries the whole batch when a reported item is not in it
        pending = pending[min(positions[item] for item in attempt.failed) :]
    return delivery


# --- the world: reset and snapshot -----------------------------------------------------------------------------

_DESERIALIZE = TypeDeserializer().deserialize

# Attributes that legitimately depend on how a run went rather than on what the stream said:
# - `version`: an optimistic-lock counter counts writes, not content;
# - on a delivery claim (partition `DELIVERY#...`): who held it and when (`owner`, `at`: the container and the
#   processing clock) and its bookkeeping status (a send whose response was lost is truthfully "unknown"; what was
#   actually sent is compared in the SMS and publications themselves).
IGNORED_ATTRIBUTES = frozenset({"version"})
IGNORED_CLAIM_ATTRIBUTES = frozenset({"owner", "at", "status"})


@dataclass
class Snapshot:
    """Everything the ingest left behind, canonical and comparable."""

    tables: dict[str, dict[str, Any]]  # table -> primary key text -> canonical item
    told: Counter[str]  # "<queue> <canonical message body>"
    sms: Counter[str]  # "<phone> <text>"

    def items(self, table: str) -> dict[str, Any]:
        return self.tables.get(table, {})

    def without(self, *tables: str) -> Snapshot:
        return Snapshot({t: v for t, v in self.tables.items() if t not in tables}, self.told, self.sms)


class World:
    """moto's server as the ingest finds it: provisioned from infra/, the registry seeded; resets everything the
    ingest writes between runs and takes snapshots."""

    def __init__(self, infra: Provisioned, seed: SeedRegistry, registry_table: str, quarantine_table: str) -> None:
        self.infra = infra
        self.seed = seed
        self.registry_table = registry_table
        self.quarantine_table = quarantine_table
        session = boto3.session.Session(region_name=infra.region)
        self.dynamodb = session.client("dynamodb", endpoint_url=infra.endpoint_url or None)
        self.sqs = session.client("sqs", endpoint_url=infra.endpoint_url or None)
        self.s3 = session.client("s3", endpoint_url=infra.endpoint_url or None)
        self.key_schemas = {
            table: [
                key["AttributeName"] for key in self.dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
            ]
            for table in self._tables()
        }
        self.queues = {
            logical_id: infra.queue_url(logical_id)
            for logical_id, resource in infra.resources.items()
            if resource.type == "AWS::SQS::Queue" and logical_id != DELIVERY_QUEUE
        }
        self.delivery_queue = infra.queue_url(DELIVERY_QUEUE)
        self.buckets = [r.ref for r in infra.resources.values() if r.type == "AWS::S3::Bucket"]
        self._told: Counter[str] = Counter()
        self._sms_seen: set[str] = set()
        self._sms: Counter[str] = Counter()

    @property
    def hash_keys(self) -> dict[str, str]:
        return {table: keys[0] for table, keys in self.key_schemas.items()}

    def _tables(self) -> list[str]:
        names: list[str] = []
        for page in self.dynamodb.get_paginator("list_tables").paginate():
            names.extend(page["TableNames"])
        prefix = f"dayingji-{self.infra.stage}-"
        return [name for name in names if name.startswith(prefix) and name != self.registry_table]

    def reset(self) -> None:
        """Forget every container and everything the ingest wrote (the registry stays)."""
        bootstrap.reset()
        for table, keys in self.key_schemas.items():
            self._empty_table(table, keys)
        self._drain_queues()
        self._receive_jobs()
        for bucket in self.buckets:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
                if objects:
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
        sns_backends[DEFAULT_ACCOUNT_ID][self.infra.region].sms_messages.clear()
        for machine in stepfunctions_backends[DEFAULT_ACCOUNT_ID][self.infra.region].state_machines:
            machine.executions.clear()
        self._told = Counter()
        self._sms_seen = set()
        self._sms = Counter()

    def _empty_table(self, table: str, keys: list[str]) -> None:
        names = {f"#k{index}": key for index, key in enumerate(keys)}
        doomed: list[dict[str, Any]] = []
        for page in self.dynamodb.get_paginator("scan").paginate(
            TableName=table, ProjectionExpression=", ".join(names), ExpressionAttributeNames=names
        ):
            doomed.extend(page["Items"])
        for start in range(0, len(doomed), 25):
            chunk = doomed[start : start + 25]
            self.dynamodb.batch_write_item(
                RequestItems={table: [{"DeleteRequest": {"Key": key}} for key in chunk]}
            )

    def _drain_queues(self) -> list[tuple[str, str]]:
        drained: list[tuple[str, str]] = []
        for logical_id, url in self.queues.items():
            while True:
                messages = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=900
                ).get("Messages", [])
                if not messages:
                    break
                drained.extend((logical_id, message["Body"]) for message in messages)
                self.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
        return drained

    def _receive_jobs(self) -> list[str]:
        bodies: list[str] = []
        while messages := self.sqs.receive_message(
            QueueUrl=self.delivery_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=900
        ).get("Messages", []):
            bodies.extend(message["Body"] for message in messages)
            self.sqs.delete_message_batch(
                QueueUrl=self.delivery_queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
        return bodies

    def deliver_jobs(self) -> int:
        """Run the delivery service on the queued jobs (the deliver handler's work): the SMS of the run. A job
        enqueued twice (a retried batch) is sent once: the delivery ledger."""
        from chalicelib.services.delivery import DeliveryRetryError

        bodies = self._receive_jobs()
        for body in bodies:
            for _ in range(3):
                try:
                    bootstrap.delivery().handle_body(body)
                    break
                except DeliveryRetryError:
                    continue
        return len(bodies)

    def scan(self, table: str) -> list[dict[str, Any]]:
        """Every item of `table`, as boto3 would return it, read from moto's backend (moto's paginated Scan walks
        the whole table for every page: minutes for a table of 20,000 quarantine rows)."""
        stored = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.infra.region].get_table(table).all_items()
        return [
            {name: _DESERIALIZE(_decoded_binaries(value)) for name, value in item.to_json()["Attributes"].items()}
            for item in stored
        ]

    def snapshot(self, tables: Sequence[str] | None = None) -> Snapshot:
        """The tables now, plus every publication and SMS since the last reset (queues are drained as they are
        read, so successive snapshots accumulate)."""
        for queue, body in self._drain_queues():
            self._told[f"{queue} {_canonical_text(body)}"] += 1
        self.deliver_jobs()
        backend = sns_backends[DEFAULT_ACCOUNT_ID][self.infra.region]
        for message_id, (phone, text) in list(backend.sms_messages.items()):
            if message_id not in self._sms_seen:
                self._sms_seen.add(message_id)
                self._sms[f"{phone} {text}"] += 1
        wanted = self.key_schemas if tables is None else {t: self.key_schemas[t] for t in tables}
        found: dict[str, dict[str, Any]] = {}
        for table, keys in wanted.items():
            items: dict[str, Any] = {}
            checkpoints: list[dict[str, Any]] = []
            for item in self.scan(table):
                if _checkpoint_row(item):
                    checkpoints.append(item)
                    continue
                if _delivery_row(item) or _presence_row(item):
                    continue
                key, canonical = self._canonical_item(table, keys, item)
                copies = itertools.count(2)
                unique = key
                while unique in items:  # two rows about one record (quarantine rows keyed otherwise)
                    unique = f"{key} (copy {next(copies)})"
                items[unique] = canonical
            _overlay_checkpointed_states(items, checkpoints)
            found[_short(table)] = items
        return Snapshot(found, Counter(self._told), Counter(self._sms))

    def _canonical_item(self, table: str, keys: list[str], item: dict[str, Any]) -> tuple[str, Any]:
        plain = {name: _plain(value) for name, value in item.items()}
        if table == self.quarantine_table:
            row = self.quarantine_row(item)
            return f"{row['record_id']}", row
        key = " ".join(str(plain.get(name)) for name in keys)
        ignored = IGNORED_ATTRIBUTES
        if str(plain.get(keys[0], "")).startswith("DELIVERY#"):
            ignored = ignored | IGNORED_CLAIM_ATTRIBUTES
        return key, {name: value for name, value in plain.items() if name not in ignored}

    def quarantine_row(self, item: dict[str, Any]) -> dict[str, Any]:
        """A quarantine row as what it says about its record (whatever its key layout): the record id found in
        its key, the reason, the device and topic it names, and the original bytes (inline, or in S3)."""
        plain = {name: _plain(value) for name, value in item.items()}
        record_ids = {
            found for value in plain.values() if isinstance(value, str) for found in SEQUENCE_NUMBER.findall(value)
        }
        return {
            "record_id": ",".join(sorted(record_ids)) or "?",
            "reason": plain.get("reason"),
            "device_id": plain.get("device_id"),
            "topic": plain.get("topic"),
            "payload": _fingerprint(self.quarantined_bytes(item)),
        }

    def quarantined_bytes(self, item: Mapping[str, Any]) -> bytes:
        """The bytes a quarantine row keeps: a binary attribute, base64 text, or an S3 object it points at."""
        for name, value in item.items():
            if isinstance(value, Binary) and "payload" in name:
                return bytes(value.value)
        pointer = next(
            (str(value) for name, value in item.items() if "payload" in name and "s3" in name and value), None
        )
        if pointer:
            bucket, _, key = pointer.removeprefix("s3://").partition("/")
            if not key or bucket not in self.buckets:
                bucket, key = self.buckets[0], pointer.removeprefix("s3://")
            body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            return body
        text = item.get("payload_b64") or item.get("payload") or ""
        return base64.b64decode(str(text)) if text else b""


def _decoded_binaries(value: Any) -> Any:
    """A wire-format attribute value with its binaries as bytes (as botocore's parser hands them to boto3)."""
    if isinstance(value, dict):
        if "B" in value and isinstance(value["B"], str):
            return {"B": base64.b64decode(value["B"])}
        if "BS" in value:
            return {"BS": [base64.b64decode(v) if isinstance(v, str) else v for v in value["BS"]]}
        return {key: _decoded_binaries(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_decoded_binaries(inner) for inner in value]
    return value


def _fingerprint(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Binary):
        return "b64:" + base64.b64encode(bytes(value.value)).decode("ascii")
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


DELIVERY_QUEUE = "DeliveryQueue"
_DELIVERY_PARTITIONS = re.compile(r"^(RECEIPT#|INBOX#|DELIVERY#(warning_change|reminder|escalation):)")


_PRESENCE_PARTITIONS = re.compile(r"^(PRESENCE#|ROSTER#)")


def _presence_row(item: dict[str, Any]) -> bool:
    """The presence tracker's shard-minute summaries and rosters (docs/offline-watch.md) say what a container saw
    and when (its id, whether it was fresh, which devices it did not know yet): they depend on how a run went by
    design, and the offline watch's own tests check them."""
    partition = item.get("warning_id")
    return isinstance(partition, str) and _PRESENCE_PARTITIONS.match(partition) is not None


def _checkpoint_row(item: dict[str, Any]) -> bool:
    """A shard's checkpoint (docs/decisions.md "What a container restart loses") says how far a container had
    written its cache: it depends on when containers came and went, by design; the catch-up tests check it."""
    return str(item.get("device_id", "")).startswith("SHARD#")


def _overlay_checkpointed_states(items: dict[str, Any], checkpoints: list[dict[str, Any]]) -> None:
    """Device states as a container taking the shard over loads them: the stored item, or the shard checkpoint's
    copy where that is ahead (a normal reading is carried by the checkpoint, not written: docs/decisions.md "Shard
    lease and checkpoint"); `last_seen` is the state's own time either way."""
    for checkpoint in checkpoints:
        blob = checkpoint.get("states")
        if blob is None:
            continue
        data = blob.value if isinstance(blob, Binary) else blob
        for device, text in json.loads(zlib.decompress(data)).items():
            state = _plain(text)
            stored = items.get(device)
            if stored is not None and int(stored["state"].get("k", -1)) >= int(state["k"]):
                continue
            items[device] = {"device_id": device, "state": state, "last_seen": _plain(Decimal(str(state["t"])))}


def _delivery_row(item: dict[str, Any]) -> bool:
    """Rows the delivery handler writes (its ledger, receipts, inboxes): the delivery tests check those."""
    partition = item.get("warning_id")
    return isinstance(partition, str) and _DELIVERY_PARTITIONS.match(partition) is not None


def _canonical_text(body: str) -> str:
    try:
        return json.dumps(json.loads(body), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        return body


# --- differences -----------------------------------------------------------------------------------------------


def differences(expected: Snapshot, actual: Snapshot, limit: int = 8) -> list[str]:
    """What `actual` lacks, has extra, has twice or has changed against `expected`, one line each (at most
    `limit` per table or channel)."""
    lines: list[str] = []
    for table in sorted(set(expected.tables) | set(actual.tables)):
        lines.extend(_table_differences(table, expected.items(table), actual.items(table), limit))
    lines.extend(_multiset_differences("told", expected.told, actual.told, limit))
    lines.extend(_multiset_differences("sms", expected.sms, actual.sms, limit))
    return lines


def _table_differences(table: str, expected: dict[str, Any], actual: dict[str, Any], limit: int) -> list[str]:
    missing = [key for key in expected if key not in actual]
    extra = [key for key in actual if key not in expected]
    changed = [key for key in expected if key in actual and expected[key] != actual[key]]
    lines: list[str] = []
    if missing:
        lines.append(f"{table}: {len(missing)} item(s) missing")
        lines.extend(f"  - {key}: {_brief(expected[key])}" for key in missing[:limit])
    if extra:
        lines.append(f"{table}: {len(extra)} item(s) extra")
        lines.extend(f"  + {key}: {_brief(actual[key])}" for key in extra[:limit])
    if changed:
        lines.append(f"{table}: {len(changed)} item(s) changed")
        for key in changed[:limit]:
            paths = _changed_paths(expected[key], actual[key])
            lines.append(f"  ~ {key}: " + "; ".join(paths[:4]))
    return lines


def _multiset_differences(channel: str, expected: Counter[str], actual: Counter[str], limit: int) -> list[str]:
    lines: list[str] = []
    doubled = {text: actual[text] for text in expected if actual[text] > expected[text] > 0}
    missing = expected - actual
    extra = Counter({text: n for text, n in (actual - expected).items() if text not in doubled})
    if doubled:
        lines.append(f"{channel}: {len(doubled)} message(s) sent more often than in the clean run")
        lines.extend(
            f"  x{count} (clean: x{expected[text]}) {_brief_text(text)}"
            for text, count in list(doubled.items())[:limit]
        )
    if missing:
        lines.append(f"{channel}: {sum(missing.values())} message(s) missing")
        lines.extend(f"  - {_brief_text(text)}" for text in list(missing)[:limit])
    if extra:
        lines.append(f"{channel}: {sum(extra.values())} message(s) extra")
        lines.extend(f"  + {_brief_text(text)}" for text in list(extra)[:limit])
    return lines


def _changed_paths(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        paths: list[str] = []
        for key in sorted(set(expected) | set(actual), key=str):
            if expected.get(key) != actual.get(key):
                paths.extend(_changed_paths(expected.get(key), actual.get(key), f"{path}.{key}" if path else key))
        return paths
    return [f"{path or '.'}: {_brief(expected, 60)} -> {_brief(actual, 60)}"]


def _brief(value: Any, width: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


def _brief_text(text: str, width: int = 200) -> str:
    queue, _, body = text.partition(" ")
    try:
        message = json.loads(body)
        change = message.get("change", {}) if isinstance(message, dict) else {}
        if change:
            return (
                f"{queue} {change.get('kind')} {change.get('warning_id')} level {change.get('level')} "
                f"{change.get('risk_type')} at {change.get('at')}"
            )
    except (ValueError, AttributeError):
        pass
    return text if len(text) <= width else text[: width - 1] + "…"


# --- the platform under test -----------------------------------------------------------------------------------


@dataclass
class Platform:
    """moto provisioned and seeded, the app's environment set, the clock, the fault injector and the container
    switch installed: what a test module drives the handler with."""

    world: World
    clock: PlatformClock
    faults: WriteFaults
    settings: Settings

    def cold_start(self) -> IngestLambda:
        return IngestLambda()


def _hook_new_clients(patch: pytest.MonkeyPatch, faults: WriteFaults) -> None:
    """Every botocore client made from now on gets the fault injector's handlers; and all sessions share one
    loader of botocore's JSON models (PynamoDB makes a session per connection, so a cold start would otherwise read
    them again: the same files, a second of parsing each time)."""
    loader = botocore.loaders.create_loader()
    original = botocore.session.Session.create_client

    def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        session.register_component("data_loader", loader)
        client = original(session, *args, **kwargs)
        faults.register(client)
        return client

    patch.setattr(botocore.session.Session, "create_client", create_client)


def _one_request_at_a_time(patch: pytest.MonkeyPatch) -> None:
    """AWS carries out each request atomically (a conditional write checks and writes in one step); moto in
    process serves requests on the callers' threads without a lock, so two racing containers could both pass one
    condition. Serving one request at a time restores the service's guarantee; threads still interleave between
    requests, which is the race under test."""
    original = BotocoreStubber.__call__
    lock = threading.RLock()

    def atomic(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(stubber, event_name, request, **kwargs)

    patch.setattr(BotocoreStubber, "__call__", atomic)


@contextmanager
def open_platform(start_s: float) -> Iterator[Platform]:
    """moto in process (`mock_aws`: every botocore client of the process is served by it, without HTTP, which
    keeps hundreds of handler invocations within seconds), provisioned from infra/ and seeded; the app's
    environment, the platform clock, the fault injector and the container switch installed until the end.

    Executions are recorded, not run (whatever an earlier module's moto server configured): the disposal loop is
    not under test here, and its own reads, escalations and publications would mix with the ingest's."""
    import app as app_module

    recorded_only: DefaultConfig = {"stepfunctions": {"execute_state_machine": False}}
    with pytest.MonkeyPatch.context() as patch, mock_aws(config=recorded_only):
        region = DEFAULT_REGION
        for name, value in fake_aws_environ(region).items():
            patch.setenv(name, value)
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        infra = provision(None, stage="test", region=region)  # type: ignore[arg-type]  # AWS's own endpoints
        for name, value in {**infra.env(), "DYJ_STAGE": "test", "POWERTOOLS_METRICS_DISABLED": "true"}.items():
            patch.setenv(name, value)
        bootstrap.reset()
        settings = Settings.from_env()
        dynamo.bind(settings)
        seed = load_seed()
        DynamoRegistry.put_many(seed.devices, seed.enterprises, seed.people)
        world = World(infra, seed, settings.table_registry, settings.table_quarantine)
        faults = WriteFaults(world.hash_keys)
        _hook_new_clients(patch, faults)
        _one_request_at_a_time(patch)
        clock = PlatformClock(start_s)
        patch.setattr(time, "time", clock)
        patch.setattr(app_module, "container", IngestLambda.current_wiring)
        handler_log = logging.getLogger(app_module.logger.name)  # its "batch with rejects" line per batch
        level = handler_log.level
        handler_log.setLevel(logging.WARNING)
        try:
            yield Platform(world, clock, faults, settings)
        finally:
            handler_log.setLevel(level)
            bootstrap.reset()
    bootstrap.reset()
