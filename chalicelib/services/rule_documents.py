"""What the IoT rules put on the stream (infra/resources.json `TelemetryRule`, `LifecycleRule`), and reading it.

`read_document` takes the usual record, a telemetry document, with msgspec (a fraction of pydantic's cost:
`bench/engine.py`); anything else — a presence event, a document with other fields than the rule's, a broken
record — is read by the pydantic union as before, so what it answers and the errors it raises are unchanged
(tests/unit/test_rule_documents.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, cast

import msgspec
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

# IoT Core takes MQTT payloads up to 128 KiB; the rule document carries it in base64 with the topic fields.
MAX_PAYLOAD_BYTES = 128 * 1024
MAX_RECORD_BYTES = MAX_PAYLOAD_BYTES * 4 // 3 + 4096


class TelemetryDocument(BaseModel):
    """What the telemetry topic rule puts on the stream (infra/resources.json `TelemetryRule`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    payload: str = Field(max_length=MAX_RECORD_BYTES)  # the MQTT payload, base64
    topic_sector: str = Field("", max_length=64)  # absent only from a document the rule did not make
    topic_enterprise: str = Field("", max_length=64)
    topic_device: str = Field("", max_length=64)


class PresenceDocument(BaseModel):
    """What the lifecycle rule puts on the stream: an IoT Core connect/disconnect event."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    eventType: str = Field(max_length=32)  # noqa: N815 (IoT Core's field name)
    clientId: str = Field(max_length=128)  # noqa: N815


_DOCUMENT = TypeAdapter(PresenceDocument | TelemetryDocument)


class Telemetry(Protocol):
    """A telemetry document as the ingest reads it: a `TelemetryDocument`, or its mirror from the fast path."""

    @property
    def payload(self) -> str: ...
    @property
    def topic_sector(self) -> str: ...
    @property
    def topic_enterprise(self) -> str: ...
    @property
    def topic_device(self) -> str: ...


Topic = Annotated[str, msgspec.Meta(max_length=64)]


class _TelemetryMirror(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`TelemetryDocument` for msgspec, the rule's fields only: a document with any other name (a presence event's,
    say) is left to the pydantic union. msgspec would skip an unknown field's value unread, where pydantic refuses
    a document whose JSON is broken anywhere (invalid UTF-8 in an ignored field, for one)."""

    payload: Annotated[str, msgspec.Meta(max_length=MAX_RECORD_BYTES)]
    topic_sector: Topic = ""
    topic_enterprise: Topic = ""
    topic_device: Topic = ""
    received_at: Any = None  # read (so checked as JSON), not used


_read_telemetry = msgspec.json.Decoder(_TelemetryMirror).decode


def read_document(data: bytes) -> PresenceDocument | Telemetry:
    """The document of a stream record; pydantic's ValidationError when it is neither shape."""
    try:
        return cast(Telemetry, _read_telemetry(data))
    except Exception:  # whatever the mirror does not take, pydantic judges
        return _DOCUMENT.validate_json(data)
