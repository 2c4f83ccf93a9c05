"""What the IoT rules put on the stream (infra/resources.json `TelemetryRule`, `LifecycleRule`), and reading it.

`read_document` takes the usual record, a telemetry document, with msgspec (issue 15: a fraction of pydantic's
cost); anything else — a presence event, a document naming a presence event's fields, a broken record — is read by
the pydantic union as before, so what it answers and the errors it raises are unchanged
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


class _TelemetryMirror(msgspec.Struct, frozen=True, kw_only=True):
    """`TelemetryDocument` for msgspec. A presence event's names are read only to leave such a document to the
    pydantic union (which then picks one of the two shapes by its own rules)."""

    payload: Annotated[str, msgspec.Meta(max_length=MAX_RECORD_BYTES)]
    topic_sector: Topic = ""
    topic_enterprise: Topic = ""
    topic_device: Topic = ""
    eventType: Any = msgspec.UNSET  # noqa: N815
    clientId: Any = msgspec.UNSET  # noqa: N815


_read_telemetry = msgspec.json.Decoder(_TelemetryMirror).decode


def read_document(data: bytes) -> PresenceDocument | Telemetry:
    """The document of a stream record; pydantic's ValidationError when it is neither shape."""
    try:
        mirror = _read_telemetry(data)
    except Exception:  # whatever the mirror does not take, pydantic judges
        pass
    else:
        if mirror.eventType is msgspec.UNSET and mirror.clientId is msgspec.UNSET:
            return cast(Telemetry, mirror)
    return _DOCUMENT.validate_json(data)
