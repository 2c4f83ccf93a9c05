"""A tamper-evident audit chain per subject (a warning, a device registration, a setpoint...).

Each event carries `prev_hash` (the previous event's `hash`, or `GENESIS_HASH` for seq 1) and its own `hash` =
sha256 of the canonical JSON of every other field (sorted keys, separators `(",", ":")`, `ensure_ascii=False`).
`verify_chain` finds the first altered field, deleted event (seq gap), reordered event or broken link.

Canonical numbers: an integral float is written as an int and a `Decimal` as the int or float it equals, so a
chain survives a DynamoDB round trip (which returns every number as `Decimal`). NaN and infinity are refused.

Deleting the *last* events of a chain leaves no gap; only an anchor kept elsewhere can show it: store the head
(`ChainHead`: seq and hash) with the subject, in the same write as the event, and pass it to `verify_chain`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("non-finite number in an audit event")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not allowed in an audit event")


def canonical_json(value: Any) -> str:
    return json.dumps(
        _canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


@dataclass(frozen=True, slots=True)
class AuditEvent:
    subject_id: str  # a warning id, a device id, a setpoint key...
    seq: int  # 1, 2, 3... per subject
    type: str
    actor: str
    role: str
    at: float
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    source_ip: str | None = None
    app: str | None = None
    prev_hash: str = ""
    hash: str = ""

    def hashed_fields(self) -> dict[str, Any]:
        """Every field but `hash` (prev_hash included)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "hash"}

    def computed_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.hashed_fields()).encode("utf-8")).hexdigest()

    def sealed(self) -> AuditEvent:
        return replace(self, hash=self.computed_hash())

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = _canonical(self.hashed_fields())
        body["hash"] = self.hash
        return body

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> AuditEvent:
        """From storage (numbers may be `Decimal`); `verify_chain` tells whether it is intact."""
        return cls(
            subject_id=str(item["subject_id"]),
            seq=int(item["seq"]),
            type=str(item["type"]),
            actor=str(item["actor"]),
            role=str(item["role"]),
            at=float(item["at"]),
            before=dict(item.get("before") or {}),
            after=dict(item.get("after") or {}),
            reason=str(item.get("reason") or ""),
            data=dict(item.get("data") or {}),
            source_ip=item.get("source_ip"),
            app=item.get("app"),
            prev_hash=str(item.get("prev_hash") or ""),
            hash=str(item.get("hash") or ""),
        )


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last event's seq and hash, kept with the subject as the chain's anchor (seq 0 = empty chain)."""

    seq: int = 0
    hash: str = GENESIS_HASH

    @classmethod
    def of(cls, event: AuditEvent | None) -> ChainHead:
        return cls() if event is None else cls(event.seq, event.hash)


def next_event(
    previous: AuditEvent | ChainHead | None,
    *,
    subject_id: str,
    type: str,
    actor: str,
    role: str,
    at: float,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    source_ip: str | None = None,
    app: str | None = None,
) -> AuditEvent:
    """The sealed event that follows `previous` (the last event, its head, or None for the first)."""
    head = previous if isinstance(previous, ChainHead) else ChainHead.of(previous)
    if isinstance(previous, AuditEvent) and previous.subject_id != subject_id:
        raise ValueError(f"event for {subject_id} cannot follow an event of {previous.subject_id}")
    return AuditEvent(
        subject_id=subject_id,
        seq=head.seq + 1,
        type=type,
        actor=actor,
        role=role,
        at=at,
        before=dict(before),
        after=dict(after),
        reason=reason,
        data=dict(data or {}),
        source_ip=source_ip,
        app=app,
        prev_hash=head.hash,
    ).sealed()


def chain(events: Iterable[AuditEvent], after: AuditEvent | ChainHead | None = None) -> list[AuditEvent]:
    """Number (seq), link (prev_hash) and seal (hash) `events` in the given order, continuing `after`."""
    head = after if isinstance(after, ChainHead) else ChainHead.of(after)
    subject = after.subject_id if isinstance(after, AuditEvent) else None
    sealed: list[AuditEvent] = []
    for event in events:
        subject = subject or event.subject_id
        if event.subject_id != subject:
            raise ValueError(f"one chain per subject: {event.subject_id} among {subject}")
        linked = replace(event, seq=head.seq + 1, prev_hash=head.hash).sealed()
        sealed.append(linked)
        head = ChainHead.of(linked)
    return sealed


@dataclass(frozen=True, slots=True)
class ChainReport:
    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None  # a code of CHAIN_FAULT_ZH
    checked: int = 0  # events found intact before the first fault

    @property
    def reason_zh(self) -> str:
        return CHAIN_FAULT_ZH.get(self.reason or "", "完整")


CHAIN_FAULT_ZH = {
    "subject_mismatch": "混入其他对象的记录",
    "seq_gap": "记录缺失（序号不连续）",
    "seq_out_of_order": "记录顺序被调换",
    "broken_link": "前序哈希不符（链被断开）",
    "hash_mismatch": "记录内容被篡改",
    "head_mismatch": "链尾与锚点不符（记录被截断或追加）",
}


def _bad(seq: int, reason: str, checked: int) -> ChainReport:
    return ChainReport(ok=False, first_bad_seq=seq, reason=reason, checked=checked)


def verify_chain(
    events: Sequence[AuditEvent], head: ChainHead | None = None, start: ChainHead | None = None
) -> ChainReport:
    """Check `events` in stored order. `start` is the event before the first one given (default: the genesis, so a
    full chain starts at seq 1); `head` is the anchor the last event must match (detects a truncated tail)."""
    previous = start or ChainHead()
    subject = events[0].subject_id if events else None
    seqs = [event.seq for event in events]
    for index, event in enumerate(events):
        expected = previous.seq + 1
        if event.subject_id != subject:
            return _bad(expected, "subject_mismatch", index)
        if event.seq != expected:
            fault = "seq_out_of_order" if expected in seqs[index + 1 :] else "seq_gap"
            return _bad(expected, fault, index)
        if event.prev_hash != previous.hash:
            return _bad(event.seq, "broken_link", index)
        if event.hash != event.computed_hash():
            return _bad(event.seq, "hash_mismatch", index)
        previous = ChainHead.of(event)
    if head is not None and (head.seq, head.hash) != (previous.seq, previous.hash):
        return _bad(
            min(previous.seq, head.seq) + 1 if previous.seq != head.seq else head.seq, "head_mismatch", len(events)
        )
    return ChainReport(ok=True, checked=len(events))
