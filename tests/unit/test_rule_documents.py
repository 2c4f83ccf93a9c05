"""Reading a stream record's document (chalicelib/services/rule_documents.py): the msgspec fast path answers what
the pydantic union answers, field for field, and leaves everything else to it (same document, same errors)."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from chalicelib.services.rule_documents import (
    MAX_RECORD_BYTES,
    PresenceDocument,
    TelemetryDocument,
    read_document,
)

UNION = TypeAdapter(PresenceDocument | TelemetryDocument)
PAYLOAD = base64.b64encode(b'{"device_id":"HC01-GT01"}').decode()
TELEMETRY = {
    "payload": PAYLOAD,
    "topic_sector": "hazchem",
    "topic_enterprise": "E-HC-01",
    "topic_device": "HC01-GT01",
    "received_at": 1764370800000,
}
PRESENCE = {"eventType": "connected", "clientId": "HC01-GT01", "timestamp": 1764370800000}
ODD_VALUES: list[Any] = [None, 1, 1.5, True, "", "x" * 64, "x" * 65, "中" * 64, [], {}, "\ud800", "a\nb"]


def documents() -> list[bytes]:
    rng = random.Random(15)
    found = [json.dumps(TELEMETRY).encode(), json.dumps(PRESENCE).encode(), json.dumps({**TELEMETRY, **PRESENCE})]
    found += [
        json.dumps({"payload": "x" * MAX_RECORD_BYTES}),
        json.dumps({"payload": "x" * (MAX_RECORD_BYTES + 1)}),
    ]
    for base in (TELEMETRY, PRESENCE, {**TELEMETRY, **PRESENCE}):
        for name in [*base, "eventType", "clientId"]:
            for value in ODD_VALUES:
                found.append(json.dumps({**base, name: value}))
            found.append(json.dumps({key: value for key, value in base.items() if key != name}))
    for _ in range(300):
        data = bytearray(json.dumps(rng.choice([TELEMETRY, PRESENCE])).encode())
        del data[rng.randrange(len(data)) :]
        found.append(bytes(data))
    for extra in ('"extra":"\xff\xfe"', '"received_at":"\xff"', '"received_at":NaN', '"extra":[' * 300):
        found.append(json.dumps(TELEMETRY).encode()[:-1] + b"," + extra.encode("latin-1") + b"}")
    found += [
        "",
        "null",
        "[]",
        '"payload"',
        "{}",
        b"\xff{}",
        '{"payload":"a","payload":1}',
        '{"payload":1,"payload":"a"}',
    ]
    return [item if isinstance(item, bytes) else item.encode() for item in found]


def test_the_fast_path_reads_what_the_pydantic_union_reads() -> None:
    refused = 0
    for data in documents():
        try:
            expected = UNION.validate_json(data)
        except ValidationError as exc:
            with pytest.raises(ValidationError) as raised:
                read_document(data)
            assert raised.value.errors() == exc.errors(), data
            refused += 1
            continue
        actual = read_document(data)
        if isinstance(expected, PresenceDocument):
            assert actual == expected, data
        else:
            assert not isinstance(actual, PresenceDocument), data
            fields = ("payload", "topic_sector", "topic_enterprise", "topic_device")
            assert [getattr(actual, name) for name in fields] == [getattr(expected, name) for name in fields], data
    assert refused > 300


def test_a_telemetry_document_takes_the_fast_path() -> None:
    read = read_document(json.dumps(TELEMETRY).encode())
    assert not isinstance(read, TelemetryDocument | PresenceDocument)  # the mirror, not a pydantic model
    assert (read.payload, read.topic_device) == (PAYLOAD, "HC01-GT01")
