"""The delivery path's storage and queue: the delivery queue (SQS), inboxes and receipts in the warning-event
table (docs/delivery.md "Where things live"):
- an inbox: partition `INBOX#{inbox key}`, sort key `seq` = the entry's id (its time in ms, then a hash of its
  job: newest first, one per job); TTL `expires_at`;
- a warning's receipts: partition `RECEIPT#{warning id}` (a declaration's: `RECEIPT#declaration:{id}`), sort key
  a stable 48-bit hash of (job, channel, recipient); the outcome overwritten, the attempts counted.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import ClientError
from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.models import Model

from chalicelib.adapters import aws_clients
from chalicelib.adapters.errors import lost_race
from chalicelib.domain.delivery import DeliveryJob, inbox_entry_id
from chalicelib.services.ports import DeliveryReceipt, InboxItem, InboxPage
from chalicelib.settings import Settings

INBOX_PREFIX = "INBOX#"
RECEIPT_PREFIX = "RECEIPT#"
INBOX_TTL_S = 90 * 86400


class InboxEntryItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # INBOX#{inbox}
    seq = NumberAttribute(range_key=True)  # inbox_entry_id
    type = UnicodeAttribute(default="inbox")
    at = NumberAttribute()
    data = JSONAttribute()  # job_id, kind, warning_id, level, text, detail (declaration_id for a declaration)
    read_at = NumberAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class ReceiptItem(Model):
    class Meta:
        table_name = "unbound"

    warning_id = UnicodeAttribute(hash_key=True)  # RECEIPT#{warning id}
    seq = NumberAttribute(range_key=True)
    type = UnicodeAttribute(default="receipt")
    at = NumberAttribute(null=True)
    data = JSONAttribute(null=True)
    attempts = NumberAttribute(null=True)


def bind(settings: Settings) -> None:
    for model in (InboxEntryItem, ReceiptItem):
        meta: Any = model.Meta
        meta.table_name = settings.table_warning_event
        for name, value in aws_clients.dynamo_meta(settings).items():
            setattr(meta, name, value)
        model._connection = None


# --- the delivery queue ------------------------------------------------------------------------------------------


class SqsDeliveryJobs:
    """`DeliveryJobs` on SQS: batches of ten; an entry the queue did not take raises (a ClientError that says
    whose fault it was, so that the caller's transient check decides)."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url

    def enqueue(self, jobs: Sequence[DeliveryJob]) -> None:
        for start in range(0, len(jobs), 10):
            chunk = jobs[start : start + 10]
            entries = [{"Id": str(index), "MessageBody": job.model_dump_json()} for index, job in enumerate(chunk)]
            answer = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
            failed = answer.get("Failed") or []
            if failed:
                first = failed[0]
                status = 400 if first.get("SenderFault") else 500
                raise ClientError(
                    {
                        "Error": {"Code": str(first.get("Code", "")), "Message": str(first.get("Message", ""))},
                        "ResponseMetadata": {"HTTPStatusCode": status},
                    },
                    "SendMessageBatch",
                )


# --- inboxes -----------------------------------------------------------------------------------------------------


def _entry(item: InboxEntryItem) -> InboxItem:
    data = item.data or {}
    return InboxItem(
        inbox=item.warning_id.removeprefix(INBOX_PREFIX),
        item_id=str(int(item.seq)),
        job_id=str(data.get("job_id", "")),
        kind=str(data.get("kind", "")),
        warning_id=str(data.get("warning_id", "")),
        level=int(data.get("level", 0)),
        text=str(data.get("text", "")),
        detail=str(data.get("detail", "")),
        at=float(item.at),
        read_at=_optional_float(item.read_at),
        declaration_id=str(data.get("declaration_id", "")),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


class DynamoInbox:
    def put(self, item: InboxItem) -> None:
        row = InboxEntryItem(
            INBOX_PREFIX + item.inbox,
            inbox_entry_id(item.job_id, item.at),
            at=item.at,
            data={
                "job_id": item.job_id,
                "kind": item.kind,
                "warning_id": item.warning_id,
                "level": item.level,
                "text": item.text,
                "detail": item.detail,
                **({"declaration_id": item.declaration_id} if item.declaration_id else {}),
            },
            expires_at=int(item.at) + INBOX_TTL_S,
        )
        try:
            row.save(condition=InboxEntryItem.seq.does_not_exist())
        except PutError as exc:
            if not lost_race(exc):
                raise  # else written before: its read mark stays

    def _entries(self, inbox: str, after: int | None, limit: int, unread: bool) -> Iterator[InboxItem]:
        condition = None if after is None else InboxEntryItem.seq < after
        rows = InboxEntryItem.query(
            INBOX_PREFIX + inbox,
            range_key_condition=condition,
            filter_condition=InboxEntryItem.read_at.does_not_exist() if unread else None,
            scan_index_forward=False,
            page_size=limit + 1,
        )
        for row in rows:
            yield _entry(row)

    def page(self, inboxes: Sequence[str], after: str | None, limit: int, unread: bool) -> InboxPage:
        position = int(after) if after is not None else None
        merged = heapq.merge(
            *(self._entries(inbox, position, limit, unread) for inbox in inboxes),
            key=lambda entry: int(entry.item_id),
            reverse=True,
        )
        items: list[InboxItem] = []
        for entry in merged:
            if len(items) == limit:
                return InboxPage(items, items[-1].item_id)
            items.append(entry)
        return InboxPage(items, None)

    def mark_read(self, inboxes: Sequence[str], item_id: str, at: float) -> InboxItem | None:
        for inbox in inboxes:
            try:
                row = InboxEntryItem.get(INBOX_PREFIX + inbox, int(item_id), consistent_read=True)
            except DoesNotExist:
                continue
            read_at: Any = row.read_at
            if read_at is None:
                try:
                    row.update(
                        actions=[InboxEntryItem.read_at.set(at)],
                        condition=InboxEntryItem.read_at.does_not_exist(),
                    )
                except UpdateError as exc:
                    if not lost_race(exc):
                        raise
                    row.refresh(consistent_read=True)
            return _entry(row)
        return None


# --- receipts ----------------------------------------------------------------------------------------------------


def _receipt_seq(receipt: DeliveryReceipt) -> int:
    name = f"{receipt.job_id}|{receipt.channel}|{receipt.recipient}"
    return int.from_bytes(hashlib.blake2b(name.encode("utf-8", "backslashreplace"), digest_size=6).digest(), "big")


class DynamoReceipts:
    def record(self, warning_id: str, receipt: DeliveryReceipt) -> None:
        data = {
            "job_id": receipt.job_id,
            "kind": receipt.kind,
            "channel": receipt.channel,
            "audience": receipt.audience,
            "recipient": receipt.recipient,
            "name": receipt.name,
            "outcome": receipt.outcome,
            "provider": receipt.provider,
            "message_id": receipt.message_id,
            "reason": receipt.reason,
        }
        ReceiptItem(RECEIPT_PREFIX + warning_id, _receipt_seq(receipt)).update(
            actions=[
                ReceiptItem.type.set("receipt"),
                ReceiptItem.at.set(receipt.at),
                ReceiptItem.data.set(data),
                ReceiptItem.attempts.add(1),
            ]
        )

    def of_warning(self, warning_id: str) -> list[dict[str, Any]]:
        return read_receipts(warning_id)


def read_receipts(warning_id: str) -> list[dict[str, Any]]:
    """A warning's receipts, oldest first: each with its outcome and attempts."""
    rows = []
    for item in ReceiptItem.query(RECEIPT_PREFIX + warning_id):
        data = dict(item.data or {})
        rows.append({**data, "at": float(item.at or 0), "attempts": int(item.attempts or 0)})
    return sorted(rows, key=lambda row: (row["at"], json.dumps(row, sort_keys=True, ensure_ascii=False)))
