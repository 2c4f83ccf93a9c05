"""The presence store in the warning-event table (docs/offline-watch.md "Who knows what"): `PresenceLedger` (shard-
minute summaries, shard rosters) and `OfflineState` (the watch's state, the devices currently offline).

Items (the table's key is `warning_id` (S) / `seq` (N); its TTL attribute is `expires_at`):
- `PRESENCE#{minute}` / `shard_key(shard) * 256 + chunk`: one shard's summary of one minute. The `back` and
  `silent` lists are compact JSON (`[[device, time], ...]`) inline while small; over `INLINE_LIMIT` bytes they are
  zlib-compressed into `blob`, and a blob over `CHUNK_BYTES` is cut into chunks (`chunk` of `chunks`) — all
  shards of a minute are still one Query. A minute whose chunks are not all there (a write failed half-way; the
  tracker writes it again) is left out until they are. Expires after `PRESENCE_TTL_S`.
- `ROSTER#{shard}` / `minute * 1024 + 1023 - chunk`: every device the container watches on the shard, columnar
  JSON (per threshold: device ids, last sign of life in ms from the minute) zlib-compressed, chunked like
  summaries. Chunk 0 (the head, with the count) has the highest sort key of its minute and is written last, so the
  newest complete roster is the first head of a newest-first query (`Limit` 1); its other chunks are one range
  query. Expires after `PRESENCE_TTL_S`.
- `OFFLINE-WATCH` / 0: the detector's cursor, shards' last minutes, silent shards' next roster read, and the
  offline devices a declaration excuses (checked again every run: a window's end or a rejection raises them).
- `OFFLINE#{device}` / 0: a device currently offline (since, suppressing declaration); deleted when it recovers,
  no TTL (it lives while the device is offline). Read by BatchGetItem of the devices named, never scanned.

Binary attributes are billed on their raw bytes (the base64 is only the wire encoding).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

from chalicelib.adapters import aws_clients
from chalicelib.services.ports import OfflineRecord, ShardRoster, ShardSummary, WatchState
from chalicelib.settings import Settings

PRESENCE_TTL_S = 3 * 86400
INLINE_LIMIT = 1024  # bytes of inline lists above which a summary's lists are compressed
CHUNK_BYTES = 350 * 1024  # a blob per item, well under DynamoDB's 400 KB item limit
SUMMARY_CHUNKS = 256  # chunks per shard and minute (sort key room)
ROSTER_CHUNKS = 1024  # chunks per roster (sort key room: 350 MB compressed)
WATCH_PARTITION = "OFFLINE-WATCH"
BATCH_GET_KEYS = 100


class SummaryItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # PRESENCE#{minute}
    seq = NumberAttribute(range_key=True)  # shard_key(shard) * 256 + chunk
    shard = UnicodeAttribute()
    owner = UnicodeAttribute()
    fresh = BooleanAttribute(default=False)
    messages = NumberAttribute(default=0)
    tracked = NumberAttribute(default=0)
    back = UnicodeAttribute(null=True)  # inline compact JSON
    silent = UnicodeAttribute(null=True)
    blob = BinaryAttribute(null=True, legacy_encoding=False)  # zlib of {"back": ..., "silent": ...}, chunked
    chunk = NumberAttribute(default=0)
    chunks = NumberAttribute(default=1)
    expires_at = NumberAttribute(null=True)


class RosterItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # ROSTER#{shard}
    seq = NumberAttribute(range_key=True)  # minute * 1024 + 1023 - chunk
    blob = BinaryAttribute(legacy_encoding=False)
    chunks = NumberAttribute(null=True)  # on the head (chunk 0) only
    expires_at = NumberAttribute(null=True)


class WatchStateItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # OFFLINE-WATCH
    seq = NumberAttribute(range_key=True)  # 0
    cursor = NumberAttribute()
    shards = JSONAttribute(default=dict)
    silent_shards = JSONAttribute(default=dict)  # shard -> next roster read (null: none left)
    suppressed = JSONAttribute(default=dict)  # offline device -> the declaration excusing it
    regrading = JSONAttribute(default=dict)  # offline vehicle -> its outage's start (its level may still rise)


OFFLINE_NOW = -1  # the `ledger_by_day` index's partition of the offline records (days are >= 0)


class OfflineItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # OFFLINE#{device}
    seq = NumberAttribute(range_key=True)  # 0
    since = NumberAttribute()
    suppressed_by = UnicodeAttribute(null=True)
    # listed in the table's `ledger_by_day` index under OFFLINE_NOW: the evaluation reads every device offline now
    # in one query (docs/evaluation.md "Device-days")
    day = NumberAttribute(default=OFFLINE_NOW)


MODELS: tuple[type[Model], ...] = (SummaryItem, RosterItem, WatchStateItem, OfflineItem)


def bind(settings: Settings) -> None:
    """Point the presence items at the warning-event table and the endpoint (once per container)."""
    for model in MODELS:
        meta: Any = model.Meta
        meta.table_name = settings.table_warning_event
        for name, value in aws_clients.dynamo_meta(settings).items():
            setattr(meta, name, value)
        model._connection = None


# --- encodings -------------------------------------------------------------------------------------------------


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def shard_key(shard: str) -> int:
    """A stable 40-bit number for a shard id (the summaries' sort key: one partition holds a minute's shards)."""
    return int.from_bytes(hashlib.blake2b(shard.encode(), digest_size=5).digest(), "big")


def _chunks(blob: bytes, limit: int) -> list[bytes]:
    return [blob[i : i + CHUNK_BYTES] for i in range(0, len(blob), CHUNK_BYTES)][:limit] or [b""]


def encode_devices(minute: int, devices: Mapping[str, tuple[float, float]], period_s: float = 60.0) -> bytes:
    """Columnar per threshold: `[[threshold, [ids], [last sign of life, ms after the minute]], ...]`, zlib."""
    base_ms = round(minute * period_s * 1000)
    groups: defaultdict[float, list[tuple[str, int]]] = defaultdict(list)
    for device, (last_seen, threshold) in devices.items():
        groups[threshold].append((device, round(last_seen * 1000) - base_ms))
    columns = [[t, [d for d, _ in rows], [ms for _, ms in rows]] for t, rows in sorted(groups.items())]
    return zlib.compress(_compact(columns).encode(), 6)


def decode_devices(minute: int, blob: bytes, period_s: float = 60.0) -> dict[str, tuple[float, float]]:
    base_ms = round(minute * period_s * 1000)
    devices: dict[str, tuple[float, float]] = {}
    for threshold, ids, offsets in json.loads(zlib.decompress(blob)):
        for device, ms in zip(ids, offsets, strict=True):
            devices[device] = ((base_ms + ms) / 1000, float(threshold))
    return devices


def _pairs(raw: Sequence[Sequence[Any]]) -> tuple[tuple[str, float], ...]:
    return tuple((str(device), float(at)) for device, at in raw)


# --- the ledger ------------------------------------------------------------------------------------------------


class DynamoPresenceLedger:
    """`PresenceLedger`: summaries in `PRESENCE#{minute}`, rosters in `ROSTER#{shard}` (module docstring). A
    minute is `period_s` long (the stage's `presence.period_s`; 60 s as deployed)."""

    def __init__(self, period_s: float = 60.0) -> None:
        self._period_s = period_s

    def put_summary(self, summary: ShardSummary) -> None:
        partition = f"PRESENCE#{summary.minute}"
        base = shard_key(summary.shard) * SUMMARY_CHUNKS
        head: dict[str, Any] = {
            "shard": summary.shard,
            "owner": summary.owner,
            "fresh": summary.fresh,
            "messages": summary.messages,
            "tracked": summary.tracked,
            "expires_at": round(summary.minute * self._period_s) + PRESENCE_TTL_S,
        }
        back, silent = _compact(summary.back), _compact(summary.silent)
        if len(back) + len(silent) <= INLINE_LIMIT:
            SummaryItem(partition, base, back=back, silent=silent, **head).save()
            return
        blob = zlib.compress(_compact({"back": summary.back, "silent": summary.silent}).encode(), 6)
        pieces = _chunks(blob, SUMMARY_CHUNKS)
        if len(pieces) * CHUNK_BYTES < len(blob):
            raise ValueError(f"summary of {summary.shard} at {summary.minute} exceeds {SUMMARY_CHUNKS} chunks")
        for index, piece in enumerate(pieces):
            SummaryItem(partition, base + index, blob=piece, chunk=index, chunks=len(pieces), **head).save()

    def summaries(self, minute: int) -> list[ShardSummary]:
        by_shard: defaultdict[str, list[SummaryItem]] = defaultdict(list)
        for item in SummaryItem.query(f"PRESENCE#{minute}"):
            by_shard[item.shard].append(item)
        found = []
        for shard, items in sorted(by_shard.items()):
            summary = self._summary(minute, shard, sorted(items, key=lambda i: int(i.chunk)))
            if summary is not None:
                found.append(summary)
        return found

    @staticmethod
    def _summary(minute: int, shard: str, items: list[SummaryItem]) -> ShardSummary | None:
        head = items[0]
        if cast("bytes | None", head.blob) is None:
            back, silent = json.loads(head.back or "[]"), json.loads(head.silent or "[]")
        else:
            if [int(i.chunk) for i in items] != list(range(int(head.chunks))):
                return None  # a write failed half-way; the tracker writes the minute again
            body = json.loads(zlib.decompress(b"".join(i.blob or b"" for i in items)))
            back, silent = body["back"], body["silent"]
        return ShardSummary(
            shard=shard,
            minute=minute,
            owner=head.owner,
            fresh=bool(head.fresh),
            back=_pairs(back),
            silent=_pairs(silent),
            messages=int(head.messages),
            tracked=int(head.tracked),
        )

    def put_roster(self, roster: ShardRoster) -> None:
        partition = f"ROSTER#{roster.shard}"
        blob = encode_devices(roster.minute, roster.devices, self._period_s)
        pieces = _chunks(blob, ROSTER_CHUNKS)
        if len(pieces) * CHUNK_BYTES < len(blob):
            raise ValueError(f"roster of {roster.shard} exceeds {ROSTER_CHUNKS} chunks")
        top = roster.minute * ROSTER_CHUNKS + ROSTER_CHUNKS - 1
        expires = round(roster.minute * self._period_s) + PRESENCE_TTL_S
        for index in range(len(pieces) - 1, 0, -1):  # the head last: a roster is visible only when complete
            RosterItem(partition, top - index, blob=pieces[index], expires_at=expires).save()
        RosterItem(partition, top, blob=pieces[0], chunks=len(pieces), expires_at=expires).save()

    def latest_roster(self, shard: str) -> ShardRoster | None:
        partition = f"ROSTER#{shard}"
        for item in self._newest_first(partition):
            if cast("float | None", item.chunks) is None:
                continue  # a chunk of a roster whose head was never written
            top, chunks = int(item.seq), int(item.chunks)
            minute = top // ROSTER_CHUNKS
            pieces = [item.blob]
            if chunks > 1:
                rest = RosterItem.query(
                    partition, RosterItem.seq.between(top - chunks + 1, top - 1), scan_index_forward=False
                )
                pieces += [chunk.blob for chunk in rest]
            return ShardRoster(shard, minute, decode_devices(minute, b"".join(pieces), self._period_s))
        return None

    @staticmethod
    def _newest_first(partition: str) -> Iterator[RosterItem]:
        yield from RosterItem.query(partition, scan_index_forward=False, page_size=1)


# --- the watch's state and the offline devices -----------------------------------------------------------------


def _offline_key(device_id: str) -> str:
    return f"OFFLINE#{device_id}"


def _offline_eventually(device_ids: list[str]) -> dict[str, OfflineRecord]:
    client = OfflineItem._get_connection().connection.client
    table = OfflineItem.Meta.table_name
    found: dict[str, OfflineRecord] = {}
    for at in range(0, len(device_ids), 100):  # BatchGetItem's limit
        batch = device_ids[at : at + 100]
        wanted: dict[str, Any] = {
            table: {
                "Keys": [{"warning_id": {"S": _offline_key(d)}, "seq": {"N": "0"}} for d in batch],
                "ProjectionExpression": "warning_id, since, suppressed_by",
            }
        }
        while wanted:
            answer = client.batch_get_item(RequestItems=wanted)
            for item in answer.get("Responses", {}).get(table, []):
                device = item["warning_id"]["S"].removeprefix("OFFLINE#")
                suppressed = item.get("suppressed_by", {}).get("S")
                found[device] = OfflineRecord(device, float(item["since"]["N"]), suppressed)
            wanted = answer.get("UnprocessedKeys") or {}
    return found


def _all_offline() -> dict[str, OfflineRecord]:
    client = OfflineItem._get_connection().connection.client
    request: dict[str, Any] = {
        "TableName": OfflineItem.Meta.table_name,
        "IndexName": "ledger_by_day",
        "KeyConditionExpression": "#day = :now",
        "ExpressionAttributeNames": {"#day": "day"},
        "ExpressionAttributeValues": {":now": {"N": str(OFFLINE_NOW)}},
        "ProjectionExpression": "warning_id, since, suppressed_by",
    }
    found: dict[str, OfflineRecord] = {}
    while True:
        page = client.query(**request)
        for item in page.get("Items", []):
            device = item["warning_id"]["S"].removeprefix("OFFLINE#")
            suppressed = item.get("suppressed_by", {}).get("S")
            found[device] = OfflineRecord(device, float(item["since"]["N"]), suppressed)
        if not page.get("LastEvaluatedKey"):
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoOfflineState:
    """`OfflineState`: one state item, one item per offline device (module docstring). The watch reads strongly
    consistent: the next run must see what the last one wrote (re-application is idempotent only then).
    `consistent=False` (the evaluation's and people's reads): `offline` reads eventually consistent (half the
    read units; it may lag the watch by a second) and parses the items without the model (a run asks for every
    device)."""

    def __init__(self, consistent: bool = True) -> None:
        self._consistent = consistent

    def load(self) -> WatchState | None:
        try:
            item = WatchStateItem.get(WATCH_PARTITION, 0, consistent_read=True)
        except DoesNotExist:
            return None
        silent = {s: (math.inf if due is None else float(due)) for s, due in (item.silent_shards or {}).items()}
        shards = {s: int(m) for s, m in (item.shards or {}).items()}
        regrading = {d: float(since) for d, since in (item.regrading or {}).items()}
        return WatchState(int(item.cursor), shards, silent, dict(item.suppressed or {}), regrading)

    def save(self, state: WatchState) -> None:
        silent = {s: (None if math.isinf(due) else due) for s, due in state.silent_shards.items()}
        WatchStateItem(
            WATCH_PARTITION,
            0,
            cursor=state.cursor,
            shards=dict(state.shards),
            silent_shards=silent,
            suppressed=dict(state.suppressed),
            regrading=dict(state.regrading),
        ).save()

    def offline(self, device_ids: Iterable[str]) -> dict[str, OfflineRecord]:
        if not self._consistent:
            return _offline_eventually(list(dict.fromkeys(device_ids)))
        keys = [(_offline_key(d), 0) for d in dict.fromkeys(device_ids)]
        found: dict[str, OfflineRecord] = {}
        for item in OfflineItem.batch_get(keys, consistent_read=True):
            device = item.warning_id.removeprefix("OFFLINE#")
            found[device] = OfflineRecord(device, float(item.since), item.suppressed_by)
        return found

    def all_offline(self) -> dict[str, OfflineRecord]:
        return _all_offline()

    def mark_offline(self, record: OfflineRecord) -> None:
        OfflineItem(
            _offline_key(record.device_id), 0, since=record.since, suppressed_by=record.suppressed_by
        ).save()

    def mark_online(self, device_id: str) -> None:
        OfflineItem(_offline_key(device_id), 0).delete()
