"""Local stand-in for AWS IoT topic rules with a Kinesis action and an SQS error action.

Each rule gets its own MQTT subscriber (one paho network thread, so messages from one publisher arrive in publish
order). A message that matches is evaluated with the rule's SQL and queued; a single sender thread drains the queue
with `put_records` (up to 500 records, at least every 50 ms), one call at a time, so records with the same
partition key reach the stream in publish order. Anything that fails (SQL evaluation, an empty partition key, a
rejected or failed put) goes to the rule's error queue in the shape of an AWS IoT error-action message.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from local.mqtt import connect_client
from local.rule_sql import RuleError, RuleSql, substitute

__all__ = ["BridgeCounters", "BridgedRule", "RuleBridge"]

logger = logging.getLogger(__name__)

MAX_PUT_RECORDS = 500
"""Kinesis PutRecords limit per call."""
_MAX_PARTITION_KEY_LEN = 256
_SUBSCRIBE_TIMEOUT_S = 10.0
_SUBSCRIBE_QOS = 0
"""QoS 0 on the broker -> bridge hop: with a clean session QoS 1 would add no durability, and amqtt 0.12.1
registers its PUBACK waiter only after writing the PUBLISH, so a fast local subscriber's PUBACK is often 'unknown'
(warning plus a 5 s timeout task in the broker). Devices still publish with QoS 1."""


@dataclass(frozen=True)
class BridgedRule:
    """One topic rule: SQL, Kinesis destination (stream + partition key template) and SQS error action."""

    name: str
    sql: str
    stream_name: str
    partition_key_template: str
    error_queue_url: str | None = None


@dataclass(frozen=True)
class BridgeCounters:
    """A snapshot. `received` counts MQTT deliveries to rules; every one of them ends up forwarded, errored or
    filtered (WHERE not true) once settled."""

    received: int = 0
    forwarded: int = 0
    errored: int = 0
    filtered: int = 0

    @property
    def settled(self) -> int:
        return self.forwarded + self.errored + self.filtered


@dataclass(frozen=True)
class _Pending:
    rule: BridgedRule
    topic: str
    payload: bytes
    data: bytes
    partition_key: str


@dataclass(frozen=True)
class _CompiledRule:
    rule: BridgedRule
    sql: RuleSql


class RuleBridge:
    """Subscribes to every rule's topic filter and delivers matching messages to Kinesis, failures to SQS."""

    def __init__(
        self,
        broker_host: str,
        broker_port: int,
        rules: Sequence[BridgedRule],
        kinesis_client: Any,
        sqs_client: Any,
        *,
        batch_size: int = MAX_PUT_RECORDS,
        flush_interval: float = 0.05,
    ) -> None:
        if not 1 <= batch_size <= MAX_PUT_RECORDS:
            raise ValueError(f"batch_size must be within 1..{MAX_PUT_RECORDS}")
        self._host = broker_host
        self._port = broker_port
        self._rules = [_CompiledRule(rule, RuleSql.parse(rule.sql)) for rule in rules]
        self._kinesis = kinesis_client
        self._sqs = sqs_client
        self._batch_size = batch_size
        self._flush_interval = flush_interval

        self._cond = threading.Condition()
        self._queue: deque[tuple[float, _Pending]] = deque()
        self._put_lock = threading.Lock()
        self._counts = {"received": 0, "forwarded": 0, "errored": 0, "filtered": 0}
        self._clients: list[paho.Client] = []
        self._sender: threading.Thread | None = None
        self._stopping = False

    # ------------------------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Connect one subscriber per rule and start the sender; returns once every subscription is acked."""
        if self._sender is not None:
            raise RuntimeError("bridge already started")
        self._stopping = False
        self._sender = threading.Thread(target=self._send_loop, name="rule-bridge-sender", daemon=True)
        self._sender.start()
        try:
            for compiled in self._rules:
                self._clients.append(self._subscribe(compiled))
        except Exception:
            self.stop()
            raise
        logger.info("rule bridge started with %d rule(s) on %s:%d", len(self._rules), self._host, self._port)

    def stop(self) -> None:
        """Disconnect the subscribers, deliver what is queued, and stop the sender."""
        for client in self._clients:
            client.disconnect()
            client.loop_stop()
        self._clients.clear()
        self.flush()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout=10)
            self._sender = None

    def __enter__(self) -> RuleBridge:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------------ observing

    @property
    def counters(self) -> BridgeCounters:
        with self._cond:
            return BridgeCounters(**self._counts)

    def wait_settled(self, min_received: int, timeout: float = 10.0) -> bool:
        """Block until at least `min_received` messages arrived and every received one is settled."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                counters = BridgeCounters(**self._counts)
                if counters.received >= min_received and counters.settled >= counters.received:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def flush(self) -> None:
        """Put every queued record now, in the caller's thread."""
        while self._send_one_batch():
            pass

    def publish_as_broker(self, topic: str, payload: bytes) -> int:
        """A message the broker publishes itself: IoT Core's lifecycle events (`$aws/events/presence/...`), which
        no client may publish (MQTT-4.7.2-1: the broker drops a client that tries). Goes through every rule whose
        topic filter matches, as the rule's subscriber would have received it; returns how many matched."""
        matched = [c for c in self._rules if paho.topic_matches_sub(c.sql.topic_filter, topic)]
        for compiled in matched:
            self._on_message(compiled, topic, payload)
        return len(matched)

    # ------------------------------------------------------------------------------------------------ receiving

    def _subscribe(self, compiled: _CompiledRule) -> paho.Client:
        subscribed = threading.Event()
        topic_filter = compiled.sql.topic_filter

        def on_connect(client: paho.Client) -> None:
            subscribed.clear()
            client.subscribe(topic_filter, qos=_SUBSCRIBE_QOS)

        def on_subscribe(*_args: Any) -> None:
            subscribed.set()

        def on_message(_client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
            try:
                self._on_message(compiled, message.topic, bytes(message.payload))
            except Exception:
                logger.exception("rule %s: unexpected failure on %s", compiled.rule.name, message.topic)

        client_id = f"dyj-rule-{compiled.rule.name}-{uuid.uuid4().hex[:8]}"

        def configure(client: paho.Client) -> None:
            client.on_subscribe = on_subscribe
            client.on_message = on_message

        client = connect_client(self._host, self._port, client_id, on_connect=on_connect, configure=configure)
        if not subscribed.wait(_SUBSCRIBE_TIMEOUT_S):
            client.disconnect()
            client.loop_stop()
            raise TimeoutError(f"rule {compiled.rule.name}: no SUBACK for {topic_filter!r}")
        return client

    def _on_message(self, compiled: _CompiledRule, topic: str, payload: bytes) -> None:
        now_ms = time.time_ns() // 1_000_000
        self._count("received")
        rule = compiled.rule
        try:
            output = compiled.sql.apply(topic, payload, now_ms)
            if output is None:
                self._count("filtered")
                return
            partition_key = substitute(rule.partition_key_template, topic, payload, now_ms)
        except RuleError as exc:
            self._send_to_error_queue(rule, topic, payload, exc.reason)
            return
        if not 1 <= len(partition_key.encode()) <= _MAX_PARTITION_KEY_LEN:
            reason = f"partition key {partition_key!r} from {rule.partition_key_template!r} is not 1..256 bytes"
            self._send_to_error_queue(rule, topic, payload, reason)
            return
        data = json.dumps(output, separators=(",", ":"), ensure_ascii=False).encode()
        with self._cond:
            self._queue.append((time.monotonic(), _Pending(rule, topic, payload, data, partition_key)))
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------------------ sending

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                deadline = self._queue[0][0] + self._flush_interval
                while len(self._queue) < self._batch_size and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            try:
                self._send_one_batch()
            except Exception:
                logger.exception("rule bridge: sending a batch failed unexpectedly")

    def _send_one_batch(self) -> bool:
        """Take up to `batch_size` queued records and put them; False when there was nothing to send."""
        with self._put_lock:
            with self._cond:
                if not self._queue:
                    return False
                count = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft()[1] for _ in range(count)]
            by_stream: dict[str, list[_Pending]] = {}
            for pending in batch:
                by_stream.setdefault(pending.rule.stream_name, []).append(pending)
            for stream_name, records in by_stream.items():
                self._put(stream_name, records)
            return True

    def _put(self, stream_name: str, records: list[_Pending]) -> None:
        entries = [{"Data": r.data, "PartitionKey": r.partition_key} for r in records]
        try:
            response = self._kinesis.put_records(StreamName=stream_name, Records=entries)
        except Exception as exc:
            logger.warning("put_records to %s failed for %d record(s): %s", stream_name, len(records), exc)
            for pending in records:
                reason = f"PutRecords failed: {exc}"
                self._send_to_error_queue(pending.rule, pending.topic, pending.payload, reason)
            return
        forwarded = 0
        for pending, result in zip(records, response["Records"], strict=True):
            if "ErrorCode" in result:
                reason = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                self._send_to_error_queue(pending.rule, pending.topic, pending.payload, reason)
            else:
                forwarded += 1
        self._count("forwarded", forwarded)

    def _send_to_error_queue(self, rule: BridgedRule, topic: str, payload: bytes, reason: str) -> None:
        """Deliver the AWS IoT error-action message for a failed rule action."""
        message = {
            "ruleName": rule.name,
            "topic": topic,
            "cloudwatchTraceId": str(uuid.uuid4()),
            "clientId": "n/a",
            "base64OriginalPayload": base64.b64encode(payload).decode("ascii"),
            "failures": [
                {
                    "failedAction": "KinesisAction",
                    "failedResource": rule.stream_name,
                    "errorMessage": reason,
                }
            ],
        }
        logger.info("rule %s: message on %s to error action: %s", rule.name, topic, reason)
        try:
            if rule.error_queue_url is None:
                logger.warning("rule %s has no error queue; dropping the message", rule.name)
            else:
                self._sqs.send_message(QueueUrl=rule.error_queue_url, MessageBody=json.dumps(message))
        except Exception:
            logger.exception("rule %s: error action to %s failed", rule.name, rule.error_queue_url)
        finally:
            self._count("errored")

    def _count(self, name: str, amount: int = 1) -> None:
        if amount:
            with self._cond:
                self._counts[name] += amount
                self._cond.notify_all()
