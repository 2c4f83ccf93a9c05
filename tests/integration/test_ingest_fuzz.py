"""A generated corpus through the `ingest` handler: no record can make it raise, and every
record ends graded or quarantined with a reason, its original bytes kept.

The corpus (seeded, so every run is the same) starts from the fleet simulator's realistic reports of all 248
devices and breaks them every way a device, a broker or a careless integrator can: fields dropped, doubled and
retyped; numbers DynamoDB cannot hold or JSON should not carry; lone surrogates and invalid UTF-8; nesting a
hundred thousand deep; random bytes; rule documents whose payload is not base64 or not ASCII, or whose topic
fields have the wrong types; records of 350 KB and 1 MB. It goes through `app.ingest` as Kinesis batches of 100,
on moto. Nothing is injected into the infrastructure, so every batch must come back with no item failures. The
inputs the issue names are tests of their own, each a poison record between two good readings.

Run with `pytest -s` to see the figures (records, quarantined by reason, records per second).
"""

from __future__ import annotations

import base64
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.rejections import RejectReason
from local.fleet import Fleet as FleetSimulator
from tests.depth import scaled
from tests.integration.ingest_harness import (
    A_MONDAY_MORNING,
    IngestLambda,
    Platform,
    StreamRecord,
    batches,
    next_sequence_number,
    open_platform,
    rule_document,
)

CORPUS_SIZE = scaled(20_000)  # issue 8: at least 20,000 generated records
BATCH_SIZE = 100  # a Kinesis batch
SEED = 20_260_801
STEP_S = 5.0
CORPUS_STARTS_AFTER_S = 600.0  # after the named inputs' readings: the corpus's good readings are the newest
OVERSIZED_BYTES = 350 * 1024
REASONS = {reason.value for reason in RejectReason}


# --- the corpus ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzRecord:
    record: StreamRecord
    kind: str  # how it was made
    must_quarantine: bool  # nothing about it can be graded


@dataclass
class Corpus:
    records: list[FuzzRecord] = field(default_factory=list)

    def add(self, record: StreamRecord, kind: str, must_quarantine: bool) -> None:
        self.records.append(FuzzRecord(record, kind, must_quarantine))


def _json(value: Any) -> bytes:
    """JSON as a device sends it: UTF-8, with a lone surrogate written as its escape (`\\ud800`)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return text.encode("utf-8", "backslashreplace")


def _document(topic_parts: dict[str, Any], payload: Any, arrival_s: float) -> bytes:
    return _json({"payload": payload, **topic_parts, "received_at": int(arrival_s * 1000)})


def _topic_parts(topic: str) -> dict[str, Any]:
    _, sector, enterprise, device, _ = topic.split("/")
    return {"topic_sector": sector, "topic_enterprise": enterprise, "topic_device": device}


_JUNK: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    1.5,
    "",
    "x",
    [],
    {},
    [1, 2],
    {"a": 1},
    "\ud800",
    2**64,
    1e308,
    "9" * 400,
)
_EXTREME_NUMBERS_TEXT = (
    "1e-131",
    "1e-130",
    "-1e-131",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "-0.0",
    "5e-324",
    "1e-400",
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9223372036854775808",
    "18446744073709551616",
    "1" + "0" * 40,
    "-" + "9" * 400,
    "123456789012345678901234567890.123456789",
    "0.30000000000000004",
    '"NaN"',
    '"1e-131"',
    "1E-131",
    "0e0",
)
_BAD_TEXT = (
    "\ud800",
    "\udfff",
    "a\ud800b",
    "\ud83d",
    "a\u0000b",
    "\u202e",
    "\ufeff",
    "设备",
    "\U0001f600",
    "x" * 5000,
)
_INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe6\x9d", b"\x80", b"\xf8\x88\x80\x80\x80")


class CorpusMaker:
    """Turns fleet reports into the corpus: each report becomes one record, good or broken one way or another."""

    def __init__(self, rng: random.Random, registered: list[str]) -> None:
        self.rng = rng
        self.registered = registered
        weighted: list[tuple[int, Callable[[dict[str, Any], str, float], tuple[bytes, str, bool]]]] = [
            (16, self.untouched),
            (8, self.dropped_field),
            (5, self.duplicated_field),
            (8, self.retyped_field),
            (14, self.extreme_number),
            (3, self.extreme_seq_or_ts),
            (8, self.bad_unicode_text),
            (5, self.invalid_utf8),
            (4, self.truncated),
            (3, self.odd_events_or_context),
            (2, self.deep_payload),
            (5, self.payload_not_base64),
            (6, self.odd_topic_fields),
            (4, self.odd_document),
            (4, self.random_bytes),
            (3, self.presence),
            (1, self.unknown_device),
        ]
        self.makers = [maker for weight, maker in weighted for _ in range(weight)]

    def make(self, message_body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        return self.rng.choice(self.makers)(message_body, topic, arrival_s)

    # --- helpers

    def _wrap(self, topic: str, payload: bytes, arrival_s: float) -> bytes:
        return rule_document(topic, payload, arrival_s)

    def _metric_key(self, body: dict[str, Any]) -> str:
        metrics = body.get("metrics") or {}
        return self.rng.choice(sorted(metrics)) if metrics else "static_pressure_mpa"

    # --- envelopes

    def untouched(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        return self._wrap(topic, _json(body), arrival_s), "valid", False

    def dropped_field(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key = self.rng.choice(["device_id", "enterprise_id", "sector", "ts", "metrics", "seq"])
        changed = {k: v for k, v in body.items() if k != key}
        must = key in ("device_id", "enterprise_id", "sector", "ts")
        return self._wrap(topic, _json(changed), arrival_s), f"dropped {key}", must

    def duplicated_field(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key = self.rng.choice(["device_id", "ts", "sector", "metrics", "seq"])
        other = self.rng.choice(_JUNK)
        text = _json(body)
        doubled = b"{" + _json(key) + b":" + _json(other) + b"," + text[1:]
        if self.rng.random() < 0.5:
            doubled = text[:-1] + b"," + _json(key) + b":" + _json(other) + b"}"
        return self._wrap(topic, doubled, arrival_s), f"duplicated {key}", False

    def retyped_field(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key = self.rng.choice(
            ["device_id", "enterprise_id", "sector", "ts", "metrics", "seq", "events", "context"]
        )
        changed = {**body, key: self.rng.choice(_JUNK)}
        return self._wrap(topic, _json(changed), arrival_s), f"retyped {key}", False

    def extreme_number(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key = self._metric_key(body)
        number = self.rng.choice(_EXTREME_NUMBERS_TEXT)
        changed = {**body, "metrics": {**(body.get("metrics") or {}), key: "@@NUMBER@@"}}
        text = _json(changed).replace(b'"@@NUMBER@@"', number.encode())
        return self._wrap(topic, text, arrival_s), f"extreme number {number[:24]}", False

    def extreme_seq_or_ts(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key, value = self.rng.choice(
            [
                ("seq", 2**53),
                ("seq", 2**53 + 1),
                ("seq", 2**64),
                ("seq", -1),
                ("seq", 1.5),
                ("seq", "7"),
                ("ts", "9999-12-31T23:59:59+00:00"),
                ("ts", "0001-01-01T00:00:00+00:00"),
                ("ts", "2026-02-30T00:00:00Z"),
                ("ts", "now"),
                ("ts", 1_700_000_000),
                ("ts", "2026-01-01T00:00:00"),  # no offset
                ("ts", "+275760-09-13T00:00:00Z"),
            ]
        )
        return self._wrap(topic, _json({**body, key: value}), arrival_s), f"extreme {key}", False

    def bad_unicode_text(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key = self.rng.choice(["device_id", "enterprise_id", "msg_id", "sector"])
        text = self.rng.choice(_BAD_TEXT)
        value = text if self.rng.random() < 0.5 else f"{body.get(key, '')}{text}"
        return self._wrap(topic, _json({**body, key: value}), arrival_s), f"bad text in {key}", False

    def invalid_utf8(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        raw = _json(body)
        cut = self.rng.randrange(1, len(raw))
        broken = raw[:cut] + self.rng.choice(_INVALID_UTF8) + raw[cut:]
        return self._wrap(topic, broken, arrival_s), "invalid utf-8 in the payload", True

    def truncated(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        raw = _json(body)
        return self._wrap(topic, raw[: self.rng.randrange(0, len(raw) - 1)], arrival_s), "truncated", True

    def odd_events_or_context(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        key, value = self.rng.choice(
            [
                ("events", [{"code": "fire_alarm", "zone": "1", "point": "P"}] * 2000),
                ("events", [{"code": "teleport"}]),
                ("events", [{"code": "reset", "zone": "\ud800"}]),
                ("events", [{"code": "fire_alarm", "zone": "\ud800", "point": "\udfff"}]),
                ("events", [{"code": "supervisory", "zone": "设备区", "point": "P\u0000"}]),
                ("events", "fire"),
                ("events", [None, 1, "x"]),
                ("context", {"isolated": "yes"}),
                ("context", {"pouring": True, "extra": 1}),
                ("context", []),
            ]
        )
        return self._wrap(topic, _json({**body, key: value}), arrival_s), f"odd {key}", False

    def deep_payload(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        depth = self.rng.choice([1_000, 10_000, 100_000])
        shape = self.rng.choice(["list", "metrics", "object"])
        if shape == "list":
            raw = b"[" * depth + b"]" * depth
        elif shape == "object":
            raw = b'{"a":' * depth + b"1" + b"}" * depth
        else:
            text = _json({**body, "metrics": "@@DEEP@@"})
            raw = text.replace(b'"@@DEEP@@"', b"[" * depth + b"]" * depth)
        return self._wrap(topic, raw, arrival_s), f"payload nested {depth} deep", True

    # --- rule documents

    def payload_not_base64(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        encoded = base64.b64encode(_json(body)).decode("ascii")
        payload = self.rng.choice(
            [
                "%%% not base64 %%%",
                "载荷不是base64",
                "é" + encoded,
                encoded[:-1],
                encoded.replace("+", "-").replace("/", "_") + "-_",
                "\ud800" + encoded,
                12345,
                None,
                [encoded],
                {"b64": encoded},
                "",
            ]
        )
        return _document(_topic_parts(topic), payload, arrival_s), "payload not base64", True

    def odd_topic_fields(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        parts = _topic_parts(topic)
        key = self.rng.choice(sorted(parts))
        value = self.rng.choice([*_JUNK, *_BAD_TEXT, "a/b", "+", "#", "x" * 300])
        if self.rng.random() < 0.2:
            changed = {k: v for k, v in parts.items() if k != key}
        else:
            changed = {**parts, key: value}
        encoded = base64.b64encode(_json(body)).decode("ascii")
        return _document(changed, encoded, arrival_s), f"odd {key}", False

    def odd_document(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        encoded = base64.b64encode(_json(body)).decode("ascii")
        choice = self.rng.randrange(9)
        if choice == 0:
            return b"[" * 100_000 + b"]" * 100_000, "document nested 100000 deep", True
        if choice == 1:
            return b'{"payload":' * 50_000 + b"1" + b"}" * 50_000, "document objects nested 50000 deep", True
        if choice == 2:
            return _json([encoded]), "document is a list", True
        if choice == 3:
            return _json(encoded), "document is a string", True
        if choice == 4:
            return b'{"payload": NaN, "topic_device": Infinity}', "document with NaN tokens", True
        if choice == 5:
            return _json({"\ud800": encoded, "payload\ud800": 1}), "document keys with lone surrogates", True
        if choice == 6:
            document = rule_document(topic, _json(body), arrival_s)
            return document[:-1] + b',"extra":"\xff\xfe"}', "document with invalid utf-8", True
        if choice == 7:
            return b"", "empty record", True
        return b"null", "document is null", True

    def random_bytes(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        size = self.rng.choice([1, 7, 64, 500, 4000])
        data = self.rng.randbytes(size)
        if self.rng.random() < 0.5:
            return data, "random bytes as the record", True
        return self._wrap(topic, data, arrival_s), "random bytes as the payload", True

    def presence(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        client = self.rng.choice([body.get("device_id", ""), "GHOST-7", "\ud800", 42, None])
        event = self.rng.choice(["connected", "disconnected", "subscribed", "", 5])
        document = {"eventType": event, "clientId": client, "timestamp": int(arrival_s * 1000)}
        return _json(document), "presence event", False

    def unknown_device(self, body: dict[str, Any], topic: str, arrival_s: float) -> tuple[bytes, str, bool]:
        ghost = f"GHOST-{self.rng.randrange(10**6)}"
        parts = {**_topic_parts(topic), "topic_device": ghost}
        payload = base64.b64encode(_json({**body, "device_id": ghost})).decode("ascii")
        return _document(parts, payload, arrival_s), "unknown device", True


def oversized_record(body: dict[str, Any], topic: str, arrival_s: float, size: int) -> bytes:
    """A rule document of about `size` bytes: the device padded its message with a huge string."""
    padding = "x" * (size * 3 // 4)
    return rule_document(topic, _json({**body, "msg_id": padding}), arrival_s)


def generate_corpus(platform: Platform, start_s: float, size: int = CORPUS_SIZE) -> Corpus:
    rng = random.Random(SEED)
    seed = platform.world.seed
    fleet = FleetSimulator(seed, seed=SEED, incidents=())
    maker = CorpusMaker(rng, [d.device_id for d in seed.devices])
    corpus = Corpus()
    step = 0
    while len(corpus.records) < size:
        for message in fleet.step(step, start_s + step * STEP_S, spread_s=STEP_S * 0.9):
            arrival_s = message.at + 0.2
            body = json.loads(message.payload)
            if rng.random() < 0.001:
                record_size = rng.choice([OVERSIZED_BYTES, 1024 * 1024 - 4096])
                data, kind, must = oversized_record(body, message.topic, arrival_s, record_size), "oversized", True
            else:
                data, kind, must = maker.make(body, message.topic, arrival_s)
            corpus.add(StreamRecord(next_sequence_number(), data, arrival_s, message.topic), kind, must)
            if len(corpus.records) >= size:
                break
        step += 1
    return corpus


# --- feeding the handler ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the handler did with a batch, from the container's own running totals."""

    received: int
    graded: int
    quarantined: int
    presence: int
    failures: list[str]


class HandlerRaisedError(Exception):
    """The handler raised instead of answering."""


def feed(platform: Platform, container: IngestLambda, batch: list[StreamRecord]) -> Outcome:
    """One invocation, counted from the container's running totals (`HandlerRaisedError` if the handler raised)."""
    platform.clock.set(batch[-1].arrival_s + 0.5)
    before = Counter(container.wiring.ingest.totals)
    attempt = container.invoke(batch, platform.faults)
    if attempt.error is not None:
        raise HandlerRaisedError(attempt.error)
    counted = Counter(container.wiring.ingest.totals) - before
    failures = attempt.failed or []
    return Outcome(counted["received"], counted["graded"], counted["quarantined"], counted["presence"], failures)


def quarantine_rows(platform: Platform, records: Iterable[StreamRecord]) -> dict[str, list[dict[str, Any]]]:
    """The quarantine rows of these records, by the record id their key names."""
    wanted = {record.sequence_number for record in records}
    rows: dict[str, list[dict[str, Any]]] = {}
    for item in platform.world.scan(platform.settings.table_quarantine):
        row = platform.world.quarantine_row(item)
        if row["record_id"] in wanted:
            rows.setdefault(row["record_id"], []).append({**row, "bytes": platform.world.quarantined_bytes(item)})
    return rows


def original_bytes(record: StreamRecord) -> set[bytes]:
    """What a row may keep of a record: the stream record itself, or the device payload it carries."""
    kept = {record.data}
    try:
        document = json.loads(record.data)
        kept.add(base64.b64decode(document["payload"], validate=True))
    except Exception:  # not a document with a base64 payload: only the record's own bytes qualify
        pass
    return kept


# --- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with open_platform(A_MONDAY_MORNING) as opened:
        yield opened


@pytest.fixture
def container(platform: Platform) -> IngestLambda:
    """A cold container; the world is shared (each test reads back only its own records)."""
    return platform.cold_start()


# --- the inputs the issue names ----------------------------------------------------------------------------------


def reading(platform: Platform, device_id: str, at: float, **metrics: Any) -> tuple[str, dict[str, Any]]:
    registration = platform.world.seed.by_device[device_id]
    body = {
        "device_id": device_id,
        "enterprise_id": registration.enterprise_id,
        "sector": registration.sector.value,
        "ts": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
        "metrics": metrics,
    }
    return f"dyj/{registration.sector.value}/{registration.enterprise_id}/{device_id}/telemetry", body


@dataclass(frozen=True)
class PoisonCase:
    """Poison records between two good readings of other devices, all in one batch."""

    name: str
    make: Callable[[Platform, float], list[bytes]]
    must_quarantine: bool = True  # False: a value the domain may clamp and grade instead


def _twice_with(
    device_id: str, metric: str, normal: float, text: str, **others: float
) -> Callable[..., list[bytes]]:
    """Two readings in a row carrying `text` as `metric` (a breach raises on the second: its warning is stored)."""

    def make(platform: Platform, at: float) -> list[bytes]:
        made = []
        for offset in (-0.4, 0.0):
            topic, body = reading(platform, device_id, at + offset, **{metric: normal}, **others)
            payload = _json(body).replace(f'"{metric}":{normal!r}'.encode(), f'"{metric}":{text}'.encode())
            made.append(rule_document(topic, payload, at + offset))
        return made

    return make


def _surrogate_device_id(platform: Platform, at: float) -> list[bytes]:
    topic, body = reading(platform, "HC03-T1-GT2", at, gas_lel_pct=0.3)
    return [rule_document(topic, _json({**body, "device_id": "\ud800"}), at)]


def _surrogate_topic_device(platform: Platform, at: float) -> list[bytes]:
    topic, body = reading(platform, "HC03-T1-GT3", at, gas_lel_pct=0.3)
    document = json.loads(rule_document(topic, _json({**body, "device_id": "\ud800"}), at))
    return [_json({**document, "topic_device": "\ud800"})]


def _fire_alarm_zone_surrogate(platform: Platform, at: float) -> list[bytes]:
    """A valid controller event whose zone and point (free text the platform keeps) are lone surrogates."""
    topic, body = reading(platform, "FR04-B1-FAC", at)
    event = {"code": "fire_alarm", "zone": "\ud800", "point": "\udfff"}
    return [rule_document(topic, _json({**body, "events": [event]}), at)]


def _deep_nesting(platform: Platform, at: float) -> list[bytes]:
    return [b"[" * 100_000 + b"]" * 100_000]


def _deep_nesting_in_the_payload(platform: Platform, at: float) -> list[bytes]:
    topic, _ = reading(platform, "CS03-TC2", at)
    return [rule_document(topic, b"[" * 100_000 + b"]" * 100_000, at)]


def _non_ascii_payload(platform: Platform, at: float) -> list[bytes]:
    topic, _ = reading(platform, "CP03-S1-RTU", at)
    return [_document(_topic_parts(topic), "载荷：不是base64", at)]


def _record_of_350_kb(platform: Platform, at: float) -> list[bytes]:
    """350 KB that is no rule document at all: only the whole record can be kept (467 KB as base64)."""
    return [b'{"note": "' + b"x" * (OVERSIZED_BYTES - 12) + b'"}']


def _record_of_350_kb_with_its_payload(platform: Platform, at: float) -> list[bytes]:
    """A rule document of 350 KB: a 262 KB device payload, base64."""
    topic, body = reading(platform, "RT05-V03", at, speed_kmh=60.0)
    return [oversized_record(body, topic, at, OVERSIZED_BYTES)]


POISON = [
    PoisonCase(
        "static_pressure_mpa 1e-131 from a registered water-pipeline gauge",
        _twice_with("FR02-B2-WP", "static_pressure_mpa", 0.321, "1e-131"),
        must_quarantine=False,
    ),
    PoisonCase(
        "pressure_mpa 1e-131 from a registered oil and gas pipeline RTU",
        _twice_with("OG01-S1-RTU", "pressure_mpa", 6.31, "1e-131", flow_m3h=500.0),
        must_quarantine=False,
    ),
    PoisonCase("a lone surrogate \\ud800 as the payload's device_id", _surrogate_device_id),
    PoisonCase("a lone surrogate \\ud800 as device_id in the payload and the topic", _surrogate_topic_device),
    PoisonCase(
        "a fire alarm whose zone and point are lone surrogates", _fire_alarm_zone_surrogate, must_quarantine=False
    ),
    PoisonCase("a stream record nested 100000 deep", _deep_nesting),
    PoisonCase("a payload nested 100000 deep", _deep_nesting_in_the_payload),
    PoisonCase("a rule document whose payload text is not ASCII", _non_ascii_payload),
    PoisonCase("a stream record of 350 KB", _record_of_350_kb),
    PoisonCase("a stream record of 350 KB carrying a device payload", _record_of_350_kb_with_its_payload),
]


@pytest.mark.parametrize("case", POISON, ids=[case.name for case in POISON])
def test_a_poison_record_named_in_the_issue_neither_raises_nor_holds_up_its_batch(
    platform: Platform, container: IngestLambda, case: PoisonCase
) -> None:
    at = platform.clock.now + 30.0
    before_topic, before = reading(platform, "CS01-TC2", at - 2, load_pct=35.0, wind_ms=2.0)
    after_topic, after = reading(platform, "HC02-T1-O2", at, o2_pct_vol=20.9)
    poison = [StreamRecord(next_sequence_number(), data, at - 1) for data in case.make(platform, at - 1)]
    batch = [
        StreamRecord(next_sequence_number(), rule_document(before_topic, _json(before), at - 2), at - 2),
        *poison,
        StreamRecord(next_sequence_number(), rule_document(after_topic, _json(after), at), at),
    ]

    outcome = feed(platform, container, batch)

    rows = quarantine_rows(platform, batch)
    assert outcome.failures == [], "content is never an infrastructure fault"
    assert (outcome.received, outcome.graded + outcome.quarantined) == (len(batch), len(batch))
    assert batch[0].sequence_number not in rows and batch[-1].sequence_number not in rows, "the good ones graded"
    for record in poison:
        if case.must_quarantine or record.sequence_number in rows:
            [row] = rows[record.sequence_number]
            assert row["reason"] in REASONS
            assert row["bytes"] in original_bytes(record)
    assert len(rows) == outcome.quarantined


# --- the corpus through the handler ------------------------------------------------------------------------------


def test_twenty_thousand_generated_records_never_make_the_handler_raise_and_each_is_graded_or_quarantined(
    platform: Platform, container: IngestLambda
) -> None:
    corpus = generate_corpus(platform, A_MONDAY_MORNING + CORPUS_STARTS_AFTER_S)
    by_id = {fuzz.record.sequence_number: fuzz for fuzz in corpus.records}
    problems: list[str] = []
    totals: Counter[str] = Counter()
    started = time.perf_counter()

    for number, batch in enumerate(batches([fuzz.record for fuzz in corpus.records], BATCH_SIZE)):
        try:
            outcome = feed(platform, container, batch)
        except HandlerRaisedError as exc:
            kinds = Counter(by_id[record.sequence_number].kind for record in batch)
            problems.append(f"batch {number} raised {str(exc)[:200]} (kinds {dict(kinds)})")
            container = platform.cold_start()  # the invocation failed: Lambda would retry in a new container
            continue
        totals.update(received=outcome.received, graded=outcome.graded, presence=outcome.presence)
        totals.update(quarantined=outcome.quarantined)
        if outcome.failures:
            kinds = Counter(by_id[item].kind for item in outcome.failures if item in by_id)
            problems.append(f"batch {number}: item failures for content {dict(kinds)}")
        if outcome.received != outcome.graded + outcome.quarantined + outcome.presence:
            problems.append(
                f"batch {number}: received {outcome.received} != graded {outcome.graded} + quarantined "
                f"{outcome.quarantined} + presence {outcome.presence}"
            )
    elapsed = time.perf_counter() - started

    rows = quarantine_rows(platform, (fuzz.record for fuzz in corpus.records))
    quarantined_ids = set(rows)
    reasons = Counter(row["reason"] for found in rows.values() for row in found)
    unaccounted = [
        fuzz for fuzz in corpus.records if fuzz.must_quarantine and fuzz.record.sequence_number not in rows
    ]
    doubled = {record_id: len(found) for record_id, found in rows.items() if len(found) > 1}
    unknown_reasons = set(reasons) - REASONS
    lost_bytes = [
        record_id
        for record_id, found in rows.items()
        if record_id in by_id and any(row["bytes"] not in original_bytes(by_id[record_id].record) for row in found)
    ]
    _print_figures(len(corpus.records), totals, reasons, elapsed, corpus)

    assert problems == []
    assert totals["received"] == len(corpus.records)
    assert len(quarantined_ids) == totals["quarantined"], "one quarantine row per quarantined record"
    assert doubled == {}
    assert unknown_reasons == set()
    assert [f"{fuzz.kind}: {fuzz.record.data[:80]!r}" for fuzz in unaccounted] == []
    assert lost_bytes == []


def _print_figures(
    records: int, totals: Counter[str], reasons: Counter[str], elapsed: float, corpus: Corpus
) -> None:
    print(f"\nfuzz corpus: {records} records in {math.ceil(records / BATCH_SIZE)} batches of {BATCH_SIZE}")
    print(
        f"  graded {totals['graded']}, quarantined {totals['quarantined']}, presence {totals['presence']} "
        f"({elapsed:.1f} s, {records / elapsed:.0f} records/s through the handler on moto)"
    )
    for reason, count in reasons.most_common():
        print(f"  {reason:>20}: {count}")
    kinds = Counter(fuzz.kind.split(" ", 1)[0] for fuzz in corpus.records)
    print("  made by: " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
