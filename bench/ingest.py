"""Ingest figures against moto's server: messages/s through `app.ingest`, DynamoDB write and read units and SNS
publishes per 1,000 normal messages and per warning change, and the estimated AWS cost per million device messages.

Run: .venv/bin/python -m bench.ingest [--devices N] [--minutes M] [--batch-size B] [--json PATH]

`--json PATH` also writes the per-batch and per-change figures as JSON (`summary`): the input of bench/costs.py.

Two runs over the same fleet and the same simulated time (reports every 10 s): "normal" (no incidents) and
"incidents" (the scripted incidents of local/fleet.py plus one of every bad message). Each run starts from an empty
moto server provisioned from infra/resources.json and the seeded registry. Kinesis-shaped events of `--batch-size`
records (the topic rule's output documents) go straight to the deployed handler, `app.ingest(event, context)`,
which runs the `IngestService` that `chalicelib.bootstrap.ingest_service` builds for the deployed handler (the
audit-chained warning store, the delivery ledger, the disposal timers on moto's Step Functions) with two clocks
swapped for the simulated one: the service's, and the registry cache's 60 s expiry (otherwise a compressed run
would read the registry less often than a real container does).

Counting: botocore event hooks on the clients the service actually uses (each PynamoDB model's client and the
notifier's SNS client). Capacity rules used (DynamoDB developer guide, "read and write operations", and "global
secondary indexes"):
- item size ~ the JSON length of the attribute map, names and values (values unwrapped from their type tags);
- write: ceil(size / 1 KB) per item, the larger of the old and new item for a replacing put; a failed conditional
  write costs ceil(existing item / 1 KB), at least 1; each GSI whose key is present costs one more write of the
  item (ALL projection), two (delete + put) when the item's index key changed, one when it left the index;
- read: ceil(size / 4 KB) per item, half for eventually consistent reads; BatchGetItem per requested key, a key
  not found costs the minimum (1, or 0.5 eventually consistent); Query on the sum of the items returned.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import math
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from unittest import mock

import boto3

from chalicelib.adapters import audit_store, dynamo, presence
from chalicelib.bootstrap import Container, base, ingest_service, reset
from chalicelib.domain.catalog import Policy, build_policy
from chalicelib.domain.clock import SHANGHAI
from chalicelib.services.ingest import IngestService
from chalicelib.settings import Settings
from local.aws import Provisioned, provision, reset_moto, start_moto_server
from local.fleet import INCIDENTS, Fleet, Incident, SimMessage
from local.poller import LambdaContext
from local.runtime import app_environment
from local.seed import SeedRegistry, load_seed

START = 1_764_370_800.0  # 2025-11-29 07:00 local, as bench/engine.py
REPORT_INTERVAL_S = 10.0
SPREAD_S = 9.0  # reports spread over the step like a real fleet
PIPELINE_LATENCY_S = 1.0  # publish -> rule -> stream -> handler: the clock lags the batch's newest message
REGISTRY_TTL_S = 60.0  # DynamoRegistry's default
BAD_MESSAGES_STEP = 30
TARGET_WCU = 5.0  # per 1,000 normal messages (issue 15 item 2)
TARGET_RCU = 20.0
AUDIENCE_QUEUES = ("EnterpriseQueue", "DutyQueue", "RegulatorQueue", "AreaQueue", "EmergencyQueue")
ITEM_MODELS: tuple[type[Any], ...] = (
    audit_store.ChainEventItem,
    audit_store.AuditHeadItem,
    dynamo.DeviceStateItem,
    dynamo.ShardCheckpointItem,
    dynamo.ShardLeaseItem,
    dynamo.UnitStateItem,
    dynamo.RegistryItem,
    dynamo.RegistryVersionItem,
    dynamo.WarningItem,
    dynamo.WarningEventItem,
    dynamo.DeliveryItem,
    dynamo.QuarantineItem,
    *presence.MODELS,  # the presence tracker's shard-minute summaries and rosters (docs/offline-watch.md)
)

# --- cost model (see docs/costs.md for every price's source; "assumed" ones could not be verified) -------------

USD_PER_CNY = 1 / 7.2  # assumed exchange rate
PRICE_IOT_MESSAGE = 1.00 / 1e6  # per 5 KB message unit, first 1 B messages/month
PRICE_IOT_CONNECTION_MINUTE = 0.08 / 1e6
PRICE_IOT_RULE = 0.15 / 1e6  # assumed: per rule triggered
PRICE_IOT_ACTION = 0.15 / 1e6  # assumed: per action executed
PRICE_KINESIS_STREAM_HOUR = 0.04  # assumed: on-demand standard, per stream-hour
PRICE_KINESIS_IN_GB = 0.08  # assumed: on-demand, per GB ingested (records rounded up to 1 KB)
PRICE_KINESIS_OUT_GB = 0.04  # assumed: on-demand, per GB retrieved
PRICE_LAMBDA_REQUEST = 0.20 / 1e6
PRICE_LAMBDA_GB_S = 0.0000166667  # x86
PRICE_DDB_WRU = 0.625 / 1e6
PRICE_DDB_RRU = 0.125 / 1e6
PRICE_SNS_PUBLISH = 0.50 / 1e6  # per 64 KB request
PRICE_SQS_REQUEST = 0.40 / 1e6
PRICE_SMS_CN = 0.045 * USD_PER_CNY  # assumed: domestic China SMS per 70-character part (CNY 0.045)
PRICE_LOGS_GB = 0.50
LAMBDA_MEMORY_MB = 128  # .chalice/config.json sets no lambda_memory_size: Chalice's default
LAMBDA_FULL_VCPU_MB = 1769  # Lambda allocates one full vCPU at 1,769 MB, proportionally less below
AWS_CALL_RTT_S = 0.008  # assumed in-region round trip per DynamoDB/SNS call
LAMBDA_PLATFORM_LOG_BYTES = 300  # assumed: START, END and REPORT lines per invocation
SQS_REQUESTS_PER_DELIVERY = 3  # assumed: SendMessage (from SNS), ReceiveMessage and DeleteMessage, unbatched


# --- the simulated clock and the registry cache that follows it ----------------------------------------------


class SimClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- counting capacity on the clients the service uses --------------------------------------------------------


def _plain(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value without its type tag."""
    tag, inner = next(iter(value.items()))
    if tag == "M":
        return {name: _plain(v) for name, v in inner.items()}
    if tag == "L":
        return [_plain(v) for v in inner]
    if tag == "N":
        return float(inner)
    if tag in ("B", "BS"):
        return base64.b64encode(inner).decode() if tag == "B" else [base64.b64encode(b).decode() for b in inner]
    if tag == "NS":
        return [float(n) for n in inner]
    return inner  # S, SS, BOOL, NULL


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes of the JSON attribute map (names + values), the approximation of DynamoDB's item size used here."""
    plain = {name: _plain(value) for name, value in item.items()}
    return len(json.dumps(plain, ensure_ascii=False, separators=(",", ":")).encode())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class TableSchema:
    label: str
    key: tuple[str, ...]
    indexes: Mapping[str, tuple[str, ...]]

    def key_of(self, item: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(json.dumps(item.get(name), sort_keys=True) for name in self.key)


@dataclass
class DynamoCounts:
    wcu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    rcu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    rcu_not_found: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    items_written: Counter[str] = field(default_factory=Counter)
    failed_conditions: int = 0

    def copy(self) -> DynamoCounts:
        return DynamoCounts(
            defaultdict(float, self.wcu),
            defaultdict(float, self.rcu),
            defaultdict(float, self.rcu_not_found),
            Counter(self.calls),
            Counter(self.items_written),
            self.failed_conditions,
        )

    def minus(self, other: DynamoCounts) -> DynamoCounts:
        result = DynamoCounts()
        for key in set(self.wcu) | set(other.wcu):
            result.wcu[key] = self.wcu[key] - other.wcu[key]
        for key in set(self.rcu) | set(other.rcu):
            result.rcu[key] = self.rcu[key] - other.rcu[key]
            result.rcu_not_found[key] = self.rcu_not_found[key] - other.rcu_not_found[key]
        result.calls = Counter(self.calls)
        result.calls.subtract(other.calls)
        result.items_written = Counter(self.items_written)
        result.items_written.subtract(other.items_written)
        result.failed_conditions = self.failed_conditions - other.failed_conditions
        return result

    @property
    def total_wcu(self) -> float:
        return sum(self.wcu.values())

    @property
    def total_rcu(self) -> float:
        return sum(self.rcu.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class DynamoMeter:
    """Write and read units per table (and per GSI), from the requests and responses botocore sees."""

    def __init__(self, schemas: Mapping[str, TableSchema]) -> None:
        self._schemas = schemas
        self._known: dict[tuple[str, tuple[str, ...]], Mapping[str, Any]] = {}  # last item seen per key
        self._attached: set[int] = set()
        self.counts = DynamoCounts()
        self.max_item: Counter[str] = Counter()

    def attach(self, client: Any) -> None:
        if id(client) in self._attached:
            return
        self._attached.add(id(client))
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    @staticmethod
    def _before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params: dict[str, Any] = context.get("bench_params", {})
        operation = str(model.name)
        self.counts.calls[operation] += 1
        failed = parsed.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        if operation == "PutItem":
            self._put(params["TableName"], params["Item"], failed)
        elif operation == "DeleteItem":
            self._delete(params["TableName"], params["Key"])
        elif operation == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        self._put(table, request["PutRequest"]["Item"], False)
                    else:
                        self._delete(table, request["DeleteRequest"]["Key"])
        elif operation == "UpdateItem":  # not used by the adapters today: the old item's size, at least 1 unit
            schema = self._schemas[params["TableName"]]
            old = self._known.get((schema.label, schema.key_of(params["Key"])))
            self.counts.wcu[schema.label] += write_units(item_size(old) if old else 0)
        elif operation == "GetItem":
            self._read(
                params["TableName"], [parsed.get("Item")], bool(params.get("ConsistentRead")), [params["Key"]]
            )
        elif operation == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                found = parsed.get("Responses", {}).get(table, [])
                missing = len(request["Keys"]) - len(found)
                self._read(table, [*found, *([None] * missing)], bool(request.get("ConsistentRead")))
        elif operation in ("Query", "Scan"):
            label = self._schemas[params["TableName"]].label
            size = sum(item_size(item) for item in parsed.get("Items", []))
            self.counts.rcu[label] += read_units(size, bool(params.get("ConsistentRead")))

    def _read(
        self,
        table: str,
        items: Sequence[Mapping[str, Any] | None],
        consistent: bool,
        keys: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        schema = self._schemas[table]
        for position, item in enumerate(items):
            units = read_units(item_size(item) if item else 0, consistent)
            self.counts.rcu[
                shard_label(schema.label, item or (keys[position] if position < len(keys) else {}))
            ] += units
            if item:
                self._known[(schema.label, schema.key_of(item))] = item
            else:
                self.counts.rcu_not_found[schema.label] += units

    def _put(self, table: str, item: Mapping[str, Any], failed: bool) -> None:
        schema = self._schemas[table]
        key = (schema.label, schema.key_of(item))
        old = self._known.get(key)
        old_size = item_size(old) if old else 0
        label = shard_label(schema.label, item)
        if failed:
            self.counts.failed_conditions += 1
            self.counts.wcu[label] += write_units(old_size)
            return
        size = item_size(item)
        self.max_item[label] = max(self.max_item[label], size)
        self.counts.items_written[label] += 1
        self.counts.wcu[label] += write_units(max(size, old_size))
        for index, attributes in schema.indexes.items():
            self.counts.wcu[f"{schema.label}/{index}"] += self._index_units(attributes, old, old_size, item, size)
        self._known[key] = item

    def _delete(self, table: str, key_item: Mapping[str, Any]) -> None:
        schema = self._schemas[table]
        key = (schema.label, schema.key_of(key_item))
        old = self._known.pop(key, None)
        old_size = item_size(old) if old else 0
        self.counts.wcu[schema.label] += write_units(old_size)
        for index, attributes in schema.indexes.items():
            self.counts.wcu[f"{schema.label}/{index}"] += self._index_units(attributes, old, old_size, None, 0)

    @staticmethod
    def _index_units(
        attributes: tuple[str, ...],
        old: Mapping[str, Any] | None,
        old_size: int,
        new: Mapping[str, Any] | None,
        new_size: int,
    ) -> int:
        def index_key(item: Mapping[str, Any] | None) -> tuple[str, ...] | None:
            if item is None or any(name not in item for name in attributes):
                return None
            return tuple(json.dumps(item[name], sort_keys=True) for name in attributes)

        before, after = index_key(old), index_key(new)
        units = 0
        if before is not None and before != after:
            units += write_units(old_size)  # the old index entry is deleted
        if after is not None:
            units += write_units(new_size)  # the new (or updated) entry is written
        return units


def shard_label(label: str, item: Mapping[str, Any]) -> str:
    """The shard's lease and checkpoint items live in the device-state table: counted apart."""
    key = item.get("device_id", {}).get("S", "") if label == "device-state" else ""
    if key.startswith("SHARD#"):
        return "shard-lease" if key.endswith("#LEASE") else "shard-checkpoint"
    return label


def sms_parts(text: str) -> int:
    """SMS segments: 160 GSM-7 characters or 70 UCS-2 (Chinese) ones; concatenated parts hold 153 / 67."""
    single, part = (160, 153) if text.isascii() else (70, 67)
    return 1 if len(text) <= single else math.ceil(len(text) / part)


@dataclass
class SnsCounts:
    topic_publishes: int = 0
    topic_requests: int = 0  # 64 KB units
    sms: int = 0
    sms_parts: int = 0
    by_change: Counter[str] = field(default_factory=Counter)

    def copy(self) -> SnsCounts:
        return SnsCounts(
            self.topic_publishes, self.topic_requests, self.sms, self.sms_parts, Counter(self.by_change)
        )


class SnsMeter:
    def __init__(self) -> None:
        self.counts = SnsCounts()

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.sns.Publish", self._publish)

    def _publish(self, params: dict[str, Any], **_: Any) -> None:
        message = str(params.get("Message", ""))
        if "PhoneNumber" in params:
            self.counts.sms += 1
            self.counts.sms_parts += sms_parts(message)
            return
        self.counts.topic_publishes += 1
        self.counts.topic_requests += max(1, math.ceil(len(message.encode()) / 65536))
        change = params.get("MessageAttributes", {}).get("change", {}).get("StringValue", "?")
        self.counts.by_change[str(change)] += 1


# --- the environment: moto, infra, seed, the wired service ---------------------------------------------------


@dataclass
class Environment:
    infra: Provisioned
    settings: Settings
    policy: Policy
    service: IngestService
    clock: SimClock
    dynamo_meter: DynamoMeter
    sns_meter: SnsMeter
    sns: Any
    sqs: Any


def table_schemas(infra: Provisioned, settings: Settings) -> dict[str, TableSchema]:
    client = boto3.client("dynamodb", endpoint_url=infra.endpoint_url, region_name=infra.region)
    labels = {
        settings.table_device_state: "device-state",
        settings.table_unit_state: "unit-state",
        settings.table_registry: "registry",
        settings.table_warning: "warning",
        settings.table_warning_event: "warning-event",
        settings.table_quarantine: "quarantine",
    }
    schemas: dict[str, TableSchema] = {}
    for name, label in labels.items():
        table = client.describe_table(TableName=name)["Table"]
        key = tuple(part["AttributeName"] for part in table["KeySchema"])
        indexes = {
            index["IndexName"]: tuple(part["AttributeName"] for part in index["KeySchema"])
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        schemas[name] = TableSchema(label, key, indexes)
    return schemas


def prepare(endpoint_url: str, registry: SeedRegistry) -> Environment:
    """A fresh, provisioned, seeded server and the IngestService `bootstrap.ingest_service` builds for the deployed
    handler (on the simulated clock), with meters on the clients it uses."""
    reset_moto(endpoint_url)
    infra = provision(endpoint_url)
    os.environ.update(app_environment(infra, {"POWERTOOLS_METRICS_DISABLED": "false"}))
    reset()
    settings = base().settings  # binds the tables, as every handler's wiring does first
    dynamo.DynamoRegistry.put_many(registry.devices, registry.enterprises, registry.people)

    dynamo_meter = DynamoMeter(table_schemas(infra, settings))
    for model in ITEM_MODELS:
        dynamo_meter.attach(model._get_connection().connection.client)
    sns = boto3.client("sns", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)
    sns_meter = SnsMeter()
    sns_meter.attach(sns)

    policy = build_policy(settings.policy)
    clock = SimClock(START)
    service = ingest_service(settings, policy, sns, clock=clock, registry_clock=clock)
    sqs = boto3.client("sqs", endpoint_url=endpoint_url, region_name=infra.region)
    return Environment(infra, settings, policy, service, clock, dynamo_meter, sns_meter, sns, sqs)


# --- the stream ---------------------------------------------------------------------------------------------


def rule_document(message: SimMessage, received_at: float) -> bytes:
    """What the topic rule puts on the stream (infra/resources.json: TelemetryRule's SQL)."""
    _, sector, enterprise, device, _ = message.topic.split("/")
    document = {
        "payload": base64.b64encode(message.payload).decode("ascii"),
        "topic_sector": sector,
        "topic_enterprise": enterprise,
        "topic_device": device,
        "received_at": int(received_at * 1000),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def fleet_messages(fleet: Fleet, steps: int, with_bad: bool) -> Iterator[SimMessage]:
    bad_step = min(BAD_MESSAGES_STEP, steps // 2)
    for step in range(steps):
        at = START + step * REPORT_INTERVAL_S
        if with_bad and step == bad_step:
            yield from fleet.bad_messages(at)  # before this step's reports: their timestamps are the step's start
        yield from fleet.step(step, at, spread_s=SPREAD_S)


def kinesis_event(batch: Sequence[SimMessage], first_sequence: int, infra: Provisioned) -> dict[str, Any]:
    arn = f"arn:aws:kinesis:{infra.region}:{infra.account_id}:stream/{infra.stream_name}"
    records = []
    for offset, message in enumerate(batch):
        sequence = f"{first_sequence + offset:056d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": message.device_id,
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(rule_document(message, message.at + 0.2)).decode("ascii"),
                    "approximateArrivalTimestamp": message.at + 0.3,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{infra.account_id}:role/dayingji-local",
                "awsRegion": infra.region,
                "eventSourceARN": arn,
            }
        )
    return {"Records": records}


@contextlib.contextmanager
def captured_output(logger_name: str) -> Iterator[io.StringIO]:
    """What the handler prints and logs (EMF metrics, log lines): what CloudWatch Logs would ingest."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger(logger_name).handlers if isinstance(h, logging.StreamHandler)]
    previous = [handler.setStream(buffer) for handler in handlers]
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)


# --- one run -------------------------------------------------------------------------------------------------


@dataclass
class RunFigures:
    label: str
    flush_s: float = 300.0
    sent: int = 0
    batches: int = 0
    expected_rejects: Counter[str] = field(default_factory=Counter)
    totals: Counter[str] = field(default_factory=Counter)
    wall_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    log_bytes: int = 0
    iot_units: int = 0
    kinesis_kb: int = 0
    dynamo: DynamoCounts = field(default_factory=DynamoCounts)
    dynamo_warm: DynamoCounts = field(default_factory=DynamoCounts)
    warm_messages: int = 0
    sns: SnsCounts = field(default_factory=SnsCounts)
    max_item: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[str] = field(default_factory=Counter)
    quarantined_reasons: Counter[str] = field(default_factory=Counter)
    warnings_raised: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def steady_messages(self) -> int:
        return self.sent - self.warm_messages

    @property
    def steady(self) -> DynamoCounts:
        return self.dynamo.minus(self.dynamo_warm)


def run(
    label: str,
    endpoint_url: str,
    registry: SeedRegistry,
    steps: int,
    batch_size: int,
    incidents: tuple[Incident, ...],
) -> RunFigures:
    import app as chalice_app  # after the environment is set: the deployed entrypoint, unchanged

    env = prepare(endpoint_url, registry)
    figures = RunFigures(label, flush_s=env.settings.state_flush_s)
    fleet = Fleet(registry, seed=7, incidents=incidents)
    messages = list(fleet_messages(fleet, steps, with_bad=bool(incidents)))
    figures.sent = len(messages)
    figures.expected_rejects = Counter(m.expected_reject for m in messages if m.expected_reject)
    for message in messages:
        figures.iot_units += math.ceil((len(message.payload) + len(message.topic)) / 5120)
        figures.kinesis_kb += math.ceil(len(rule_document(message, message.at)) / 1024)

    wired = Container(env.settings, env.policy, env.service, env.sns)
    context = LambdaContext(function_name="dayingji-local-ingest")
    warm_until = START + figures.flush_s
    sequence = 1
    with mock.patch.object(chalice_app, "container", return_value=wired):
        for begin in range(0, len(messages), batch_size):
            batch = messages[begin : begin + batch_size]
            if not figures.warm_messages and batch[0].at >= warm_until:
                figures.warm_messages = begin
                figures.dynamo_warm = env.dynamo_meter.counts.copy()
            env.clock.now = max(m.at for m in batch) + PIPELINE_LATENCY_S
            event = kinesis_event(batch, sequence, env.infra)
            sequence += len(batch)
            with captured_output(chalice_app.app.app_name) as output:
                wall, cpu = time.perf_counter(), time.thread_time()
                response = chalice_app.ingest(event, context)
                figures.cpu_s.append(time.thread_time() - cpu)
                figures.wall_s.append(time.perf_counter() - wall)
            figures.log_bytes += len(output.getvalue().encode())
            figures.failures += [item["itemIdentifier"] for item in response["batchItemFailures"]]
            figures.batches += 1

    figures.totals = Counter(env.service.totals)
    figures.dynamo = env.dynamo_meter.counts.copy()
    figures.max_item = Counter(env.dynamo_meter.max_item)
    figures.sns = env.sns_meter.counts.copy()
    # verification reads below are not counted: the meters' figures were copied above
    for logical_id in AUDIENCE_QUEUES:
        attributes = env.sqs.get_queue_attributes(
            QueueUrl=env.infra.queue_url(logical_id), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        figures.deliveries[logical_id] = int(attributes["ApproximateNumberOfMessages"])
    days = {datetime.fromtimestamp(m.at, SHANGHAI).strftime("%Y-%m-%d") for m in messages}
    for day in sorted(days):
        figures.quarantined_reasons.update(row["reason"] for row in dynamo.DynamoQuarantine.by_day(day))
    figures.warnings_raised = len(dynamo.DynamoWarningStore.scan_all())
    return figures


# --- figures -------------------------------------------------------------------------------------------------


def per_thousand(value: float, messages: int) -> float:
    return value * 1000 / messages if messages else 0.0


def check(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def p95(values: Sequence[float]) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * 0.95))]


def print_run(figures: RunFigures) -> None:
    totals = figures.totals
    graded, quarantined = totals["graded"], totals["quarantined"]
    unaccounted = figures.sent - graded - quarantined
    accounted = unaccounted == 0 and figures.sent == totals["received"] and not figures.failures
    print(f'\nrun "{figures.label}": {figures.sent:,} messages in {figures.batches} batches')
    print(
        f"  accounted      sent {figures.sent:,} = graded {graded:,} + quarantined {quarantined:,}"
        f"  (received {totals['received']:,}, batch-item failures {len(figures.failures)}),"
        f" unaccounted {unaccounted}  {check(accounted)}"
    )
    if figures.expected_rejects:
        verdict = "as expected" if figures.quarantined_reasons == figures.expected_rejects else "NOT as expected"
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(figures.quarantined_reasons.items()))
        print(f"  quarantine     {sum(figures.quarantined_reasons.values())} stored, reasons {verdict}: {reasons}")
    wall = sum(figures.wall_s)
    print(
        f"  throughput     {figures.sent / wall:,.0f} messages/s through app.ingest against moto (handler wall "
        f"{wall:.1f} s; per batch median {statistics.median(figures.wall_s) * 1e3:.0f} ms, "
        f"p95 {p95(figures.wall_s) * 1e3:.0f} ms)"
    )
    print(
        f"  handler CPU    per batch mean {statistics.mean(figures.cpu_s) * 1e3:.1f} ms, "
        f"median {statistics.median(figures.cpu_s) * 1e3:.1f} ms (handler thread only; moto's threads excluded)"
    )
    print(
        f"  changes        {totals['changes']} warning changes, {figures.warnings_raised} warnings raised, "
        f"{totals['notified']} notified; device states written {totals['states_written']:,}"
    )
    d, steady = figures.dynamo, figures.steady
    print(
        f"  DynamoDB       per 1,000 messages: WCU {per_thousand(d.total_wcu, figures.sent):.1f}, "
        f"RCU {per_thousand(d.total_rcu, figures.sent):.1f}, calls {per_thousand(d.total_calls, figures.sent):.1f}"
        f" (failed conditional writes {d.failed_conditions})"
    )
    if figures.warm_messages:
        print(
            f"                 after the first {figures.flush_s:.0f} s: "
            f"WCU {per_thousand(steady.total_wcu, figures.steady_messages):.1f}, "
            f"RCU {per_thousand(steady.total_rcu, figures.steady_messages):.1f} "
            f"per 1,000 over {figures.steady_messages:,} messages"
        )
        by_item = [
            f"{label} {per_thousand(steady.wcu[label], figures.steady_messages):.2f}"
            f"/{per_thousand(steady.rcu[label], figures.steady_messages):.2f}"
            for label in sorted(set(steady.wcu) | set(steady.rcu))
            if "/" not in label and (steady.wcu[label] or steady.rcu[label])
        ]
        print("                 of which (WCU/RCU): " + ", ".join(by_item))
    labels = sorted(set(d.wcu) | set(d.rcu), key=lambda label: -(d.wcu[label] + d.rcu[label]))
    for label in labels:
        if not (d.wcu[label] or d.rcu[label]):
            continue
        row = f"    {label:<26} WCU {per_thousand(d.wcu[label], figures.sent):7.1f}"
        if "/" not in label:
            row += (
                f"  RCU {per_thousand(d.rcu[label], figures.sent):7.1f}"
                f" (keys not found {per_thousand(d.rcu_not_found[label], figures.sent):6.1f})"
                f"  items written {d.items_written[label]:>5,}, largest {figures.max_item[label]:>4,} B"
            )
        print(row)
    print("    calls: " + ", ".join(f"{op} {count:,}" for op, count in d.calls.most_common()))
    s = figures.sns
    changes = ", ".join(f"{kind} {n}" for kind, n in sorted(s.by_change.items()))
    queues = ", ".join(f"{queue.removesuffix('Queue')} {n}" for queue, n in figures.deliveries.items())
    print(
        f"  SNS            topic publishes {s.topic_publishes} ({changes or 'none'}), SMS {s.sms} "
        f"({s.sms_parts} parts); SQS deliveries {sum(figures.deliveries.values())} ({queues})"
    )


@dataclass(frozen=True)
class CostLine:
    service: str
    quantity: float
    unit: str
    usd: float


def lambda_duration_s(figures: RunFigures) -> tuple[float, float]:
    """Modelled billed duration per invocation at LAMBDA_MEMORY_MB: CPU scaled to the memory's CPU share, plus
    one assumed round trip per AWS call (moto answers in-process, so its wall time is not Lambda's)."""
    cpu = statistics.mean(figures.cpu_s)
    calls = (figures.dynamo.total_calls + figures.sns.topic_publishes + figures.sns.sms) / figures.batches
    share = min(1.0, LAMBDA_MEMORY_MB / LAMBDA_FULL_VCPU_MB)
    return cpu / share + calls * AWS_CALL_RTT_S, calls


def normal_costs(figures: RunFigures, devices: int) -> list[CostLine]:
    million = 1e6
    scale = million / figures.sent
    invocations = figures.batches * scale
    duration, _ = lambda_duration_s(figures)
    gb_s = invocations * duration * LAMBDA_MEMORY_MB / 1024
    kinesis_gb = figures.kinesis_kb * scale / 1024**2
    stream_hours = million / (devices / REPORT_INTERVAL_S * 3600)
    log_gb = (figures.log_bytes / figures.batches + LAMBDA_PLATFORM_LOG_BYTES) * invocations / 1024**3
    connection_minutes = million / (60 / REPORT_INTERVAL_S)
    wru, rru = figures.dynamo.total_wcu * scale, figures.dynamo.total_rcu * scale
    sns_requests = (figures.sns.topic_requests) * scale
    sms_parts = figures.sns.sms_parts * scale
    sqs_requests = sum(figures.deliveries.values()) * SQS_REQUESTS_PER_DELIVERY * scale
    return [
        CostLine(
            "IoT Core messaging",
            figures.iot_units * scale,
            "5 KB messages",
            figures.iot_units * scale * PRICE_IOT_MESSAGE,
        ),
        CostLine(
            "IoT Core connectivity",
            connection_minutes,
            "connection-minutes",
            connection_minutes * PRICE_IOT_CONNECTION_MINUTE,
        ),
        CostLine("IoT rules triggered", million, "rules", million * PRICE_IOT_RULE),
        CostLine("IoT rule actions (Kinesis)", million, "actions", million * PRICE_IOT_ACTION),
        CostLine("Kinesis data in", kinesis_gb, "GB", kinesis_gb * PRICE_KINESIS_IN_GB),
        CostLine("Kinesis data retrieved", kinesis_gb, "GB", kinesis_gb * PRICE_KINESIS_OUT_GB),
        CostLine(
            "Kinesis stream-hours",
            stream_hours,
            f"h at {devices / REPORT_INTERVAL_S:.1f} msg/s",
            stream_hours * PRICE_KINESIS_STREAM_HOUR,
        ),
        CostLine("Lambda requests", invocations, "invocations", invocations * PRICE_LAMBDA_REQUEST),
        CostLine("Lambda duration", gb_s, f"GB-s at {LAMBDA_MEMORY_MB} MB", gb_s * PRICE_LAMBDA_GB_S),
        CostLine("DynamoDB writes", wru, "WRU", wru * PRICE_DDB_WRU),
        CostLine("DynamoDB reads", rru, "RRU", rru * PRICE_DDB_RRU),
        CostLine("SNS publishes", sns_requests, "requests", sns_requests * PRICE_SNS_PUBLISH),
        CostLine("SQS requests", sqs_requests, "requests", sqs_requests * PRICE_SQS_REQUEST),
        CostLine("SMS (China)", sms_parts, "parts", sms_parts * PRICE_SMS_CN),
        CostLine("CloudWatch Logs ingestion", log_gb, "GB", log_gb * PRICE_LOGS_GB),
    ]


def print_costs(lines: Sequence[CostLine], title: str) -> float:
    print(f"\n{title}")
    total = sum(line.usd for line in lines)
    for line in lines:
        share = line.usd / total * 100 if total else 0.0
        print(f"  {line.service:<28} {line.quantity:>14,.2f} {line.unit:<26} ${line.usd:>9.4f}  {share:5.1f} %")
    print(f"  {'total':<28} {'':>14} {'':<26} ${total:>9.4f}")
    return total


def print_per_warning(normal: RunFigures, incidents: RunFigures) -> float:
    """The marginal cost of a warning change: the incidents run minus the normal run over the same fleet and time
    (the bad messages' quarantine writes left out). Returns USD per change."""
    changes = incidents.totals["changes"] - normal.totals["changes"]
    raised = incidents.warnings_raised - normal.warnings_raised
    if changes <= 0 or raised <= 0:
        print("\nper warning change: no warning changes in the incidents run")
        return 0.0
    delta = incidents.dynamo.minus(normal.dynamo)
    wcu = sum(v for label, v in delta.wcu.items() if not label.startswith("quarantine"))
    rcu = sum(v for label, v in delta.rcu.items() if not label.startswith("quarantine"))
    requests = incidents.sns.topic_requests - normal.sns.topic_requests
    publishes = incidents.sns.topic_publishes - normal.sns.topic_publishes
    sms = incidents.sns.sms - normal.sns.sms
    parts = incidents.sns.sms_parts - normal.sns.sms_parts
    deliveries = sum(incidents.deliveries.values()) - sum(normal.deliveries.values())
    print(
        f"\nper warning change (incidents run minus normal run: {changes} changes, {raised} warnings raised;"
        " the bad messages' quarantine writes left out)"
    )
    print(
        f"  DynamoDB       WCU {wcu / changes:.1f}, RCU {rcu / changes:.1f} per change;"
        f" per raised warning WCU {wcu / raised:.1f}, RCU {rcu / raised:.1f}"
    )
    for label in sorted(delta.wcu, key=lambda label: -delta.wcu[label]):
        if abs(delta.wcu[label]) >= 0.5 and not label.startswith("quarantine"):
            print(f"    {label:<26} WCU {delta.wcu[label] / changes:6.2f}")
    print(
        f"  SNS            topic publishes {publishes / changes:.2f} ({requests / changes:.2f} requests), "
        f"SMS {sms / changes:.2f} ({parts / changes:.2f} parts), SQS deliveries {deliveries / changes:.2f}"
    )
    sms_usd = parts * PRICE_SMS_CN
    usd = (
        wcu * PRICE_DDB_WRU
        + rcu * PRICE_DDB_RRU
        + requests * PRICE_SNS_PUBLISH
        + sms_usd
        + deliveries * SQS_REQUESTS_PER_DELIVERY * PRICE_SQS_REQUEST
    ) / changes
    print(
        f"  cost           ${usd:.5f} per warning change, {sms_usd / changes / usd * 100:.2f} % of it SMS "
        f"(${usd * 1e6:,.0f} per million changes)"
    )
    return usd


def touch_refresh_wcu(figures: RunFigures, devices: int) -> float:
    """WCU per 1,000 messages of refreshing each stored state's `last_seen` once per `state_touch_s`, when no
    refresh falls in the measured window (the run is shorter): added, not measured (1 KB a write)."""
    touch_s = Settings().state_touch_s
    run_s = figures.sent / max(devices, 1) * REPORT_INTERVAL_S
    if touch_s <= run_s - figures.flush_s:
        return 0.0
    return 1000 * REPORT_INTERVAL_S / max(touch_s, REPORT_INTERVAL_S)


def summary(normal: RunFigures, incidents: RunFigures, devices: int, batch_size: int) -> dict[str, Any]:
    """The measured figures bench/costs.py prices: per batch of the normal run (steady state: after the first
    state flush, when the run is long enough) and per warning change (incidents minus normal)."""
    _, calls = lambda_duration_s(normal)
    steady = normal.steady if normal.warm_messages else normal.dynamo
    steady_messages = normal.steady_messages if normal.warm_messages else normal.sent
    changes = incidents.totals["changes"] - normal.totals["changes"]
    delta = incidents.dynamo.minus(normal.dynamo)
    per_change = max(changes, 1)
    return {
        "devices": devices,
        "batch_size": batch_size,
        "report_interval_s": REPORT_INTERVAL_S,
        "normal": {
            "messages": normal.sent,
            "batches": normal.batches,
            "handler_cpu_s_per_batch": statistics.mean(normal.cpu_s),
            "aws_calls_per_batch": calls,
            "log_bytes_per_batch": normal.log_bytes / normal.batches,
            "iot_units_per_message": normal.iot_units / normal.sent,
            "kinesis_kb_per_message": normal.kinesis_kb / normal.sent,
            "wru_per_1000": per_thousand(normal.dynamo.total_wcu, normal.sent),
            "rru_per_1000": per_thousand(normal.dynamo.total_rcu, normal.sent),
            "steady_wru_per_1000": per_thousand(steady.total_wcu, steady_messages)
            + (touch_refresh_wcu(normal, devices) if normal.warm_messages else 0.0),
            "steady_rru_per_1000": per_thousand(steady.total_rcu, steady_messages),
        },
        "per_change": {
            "changes": changes,
            "warnings_raised": incidents.warnings_raised - normal.warnings_raised,
            "wru": sum(v for k, v in delta.wcu.items() if not k.startswith("quarantine")) / per_change,
            "rru": sum(v for k, v in delta.rcu.items() if not k.startswith("quarantine")) / per_change,
            "topic_requests": (incidents.sns.topic_requests - normal.sns.topic_requests) / per_change,
            "sms_parts": (incidents.sns.sms_parts - normal.sns.sms_parts) / per_change,
            "sqs_deliveries": (sum(incidents.deliveries.values()) - sum(normal.deliveries.values())) / per_change,
            "handler_cpu_s": (sum(incidents.cpu_s) - sum(normal.cpu_s)) / per_change,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Ingest figures against moto's server (bench/ingest.py).")
    parser.add_argument("--devices", type=int, default=0, help="fleet size (default: the seed's 248 devices)")
    parser.add_argument("--minutes", type=float, default=10.0, help="simulated minutes per run (default 10)")
    parser.add_argument("--batch-size", type=int, default=100, help="records per Kinesis event (default 100)")
    parser.add_argument("--json", metavar="PATH", help="also write the measured figures as JSON (bench/costs.py)")
    args = parser.parse_args()

    base = load_seed()
    registry = base
    if args.devices and args.devices != len(base.devices):
        from bench.engine import scaled_registry

        registry = scaled_registry(base, args.devices)
    devices = len(registry.devices)
    steps = max(1, round(args.minutes * 60 / REPORT_INTERVAL_S))
    began = time.perf_counter()
    server, endpoint_url = start_moto_server()
    try:
        print(
            f"Ingest bench: {devices} devices reporting every {REPORT_INTERVAL_S:.0f} s, {steps} steps "
            f"({steps * REPORT_INTERVAL_S / 60:.0f} min simulated), batches of {args.batch_size}, "
            f"moto server at {endpoint_url}, state_flush_s {Settings().state_flush_s:.0f} s"
        )
        normal = run("normal", endpoint_url, registry, steps, args.batch_size, incidents=())
        print_run(normal)
        incidents = run("incidents", endpoint_url, registry, steps, args.batch_size, incidents=INCIDENTS)
        print_run(incidents)
    finally:
        server.stop()

    wcu = per_thousand(normal.dynamo.total_wcu, normal.sent)
    rcu = per_thousand(normal.dynamo.total_rcu, normal.sent)
    unaccounted = sum(f.sent - f.totals["graded"] - f.totals["quarantined"] for f in (normal, incidents))
    print(
        f"\ntargets (issue 15: DynamoDB per 1,000 normal messages once the container runs, i.e. after its first"
        f" {normal.flush_s:.0f} s, which hold one of the shard's checkpoints)"
    )
    if normal.warm_messages:
        touch_wcu = touch_refresh_wcu(normal, devices)
        steady_wcu = per_thousand(normal.steady.total_wcu, normal.steady_messages) + touch_wcu
        if touch_wcu:
            print(
                f"  (each device's stored state is also refreshed once per state_touch_s ="
                f" {Settings().state_touch_s:.0f} s, longer than this run: {touch_wcu:.2f} WCU per 1,000 at a"
                f" report per {REPORT_INTERVAL_S:.0f} s: added)"
            )
        steady_rcu = per_thousand(normal.steady.total_rcu, normal.steady_messages)
        for name, value, target in (("WCU", steady_wcu, TARGET_WCU), ("RCU", steady_rcu, TARGET_RCU)):
            print(
                f"  DynamoDB {name} per 1,000 normal messages <= {target:g}: {value:.2f} {check(value <= target)}"
            )
        start = normal.dynamo_warm
        print(
            f"  the container's start (its first {normal.flush_s:.0f} s, {normal.warm_messages:,} messages):"
            f" WCU {start.total_wcu:.0f}, RCU {start.total_rcu:.0f} (each device's state and registration read"
            " once, the shard's lease taken, its checkpoint read; on this fresh deployment each device's state"
            f" also written at first sight); the whole run: WCU {wcu:.2f}, RCU {rcu:.2f} per 1,000"
        )
    else:
        print(
            f"  (a run shorter than state_flush_s = {normal.flush_s:.0f} s measures only the container's start:"
            f" WCU {wcu:.2f}, RCU {rcu:.2f} per 1,000)  FAIL"
        )
    print(f"  messages unaccounted for == 0: {unaccounted}  {check(unaccounted == 0)}")

    duration, calls = lambda_duration_s(normal)
    share = min(1.0, LAMBDA_MEMORY_MB / LAMBDA_FULL_VCPU_MB)
    print(
        f"\nLambda model: {normal.sent / normal.batches:.0f} records and {calls:.1f} AWS calls per invocation;"
        f" handler CPU {statistics.mean(normal.cpu_s) * 1e3:.1f} ms measured here / {share:.3f} vCPU share"
        f" + {AWS_CALL_RTT_S * 1e3:.0f} ms per call (assumed) = {duration * 1e3:.0f} ms billed at"
        f" {LAMBDA_MEMORY_MB} MB; wall time against moto {statistics.mean(normal.wall_s) * 1e3:.0f} ms;"
        f" log output {normal.log_bytes / normal.batches:.0f} B per invocation measured"
        f" (+{LAMBDA_PLATFORM_LOG_BYTES} B of platform lines, assumed)"
    )
    total = print_costs(
        normal_costs(normal, devices),
        "estimated AWS cost per million normal device messages (us-east-1 list prices, USD; docs/costs.md)",
    )
    per_change = print_per_warning(normal, incidents)
    monthly = devices * (60 / REPORT_INTERVAL_S) * 60 * 24 * 30
    print(
        f"\nthis fleet ({devices} devices, a report every {REPORT_INTERVAL_S:.0f} s): {monthly / 1e6:.1f} M"
        f" messages per 30 days: ${total * monthly / 1e6:,.2f} for the normal flow,"
        f" plus ${per_change:.4f} per warning change"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(summary(normal, incidents, devices, args.batch_size), out, indent=2)
    print(f"\nbench time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
