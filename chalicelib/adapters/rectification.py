"""Rectification items and report publications in the registry table (docs/evaluation.md "通报 and
rectification", "Storage"), audited like a declaration.

Items (registry table, pk/sk, the table's `gsi1`):
- `RECT#{id}` / `RECT`: the item (`data`), its version (conditional saves) and its audit chain head; gsi1
  `RECTS#S#{sector}` / `{deadline ISO}#{id}`: a sector's items by deadline (the regulators' and the duty centre's
  lists, and the evaluation's overdue count: a range on the deadline, whole items from the index);
- `RECT#{id}` / `E`: gsi1 `RECTS#E#{enterprise}` / `{created ISO}#{id}`: an enterprise's items, newest first;
- `RECT#{id}` / `A#{area}`: gsi1 `RECTS#A#{area}` / `{deadline ISO}#{id}`: an area's items.
  The pointers are written before the item is created (sector, enterprise and areas never change): a listing
  reads the pointers, then the items (BatchGetItem), and drops a pointer whose item was never written.
- by stored status, the same three orders: `RECT#{id}` / `S#{status}` (gsi1 `RECTS#S#{sector}#{status}`),
  `E#{status}` (`RECTS#E#{enterprise}#{status}`), `A#{area}#{status}` (`RECTS#A#{area}#{status}`): a status
  filter reads only its partitions. The pointers of the new status are written before a save and the previous
  status's deleted after it, so no item is ever missing under its status; a listing drops a pointer whose item
  has another status (one left by a save that failed, or whose delete failed).
- `EVAL#{report id}` / `PUBLICATION`: the report's latest publication and every version published, with the
  chain head of `evaluation:{report id}`.
Events go to the audit log (`audit_store.put_event`) after the save; a save whose event put failed leaves it in the
head (`audit_last`) and the next save puts it first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from aws_lambda_powertools import Logger
from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import DeleteError, DoesNotExist, PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters import aws_clients
from chalicelib.adapters.audit_store import put_event, read_chain
from chalicelib.adapters.dynamo import iso_utc
from chalicelib.adapters.errors import lost_race
from chalicelib.adapters.index_pages import chunks, merged
from chalicelib.domain.access import Scope, ScopeKind
from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.evaluation.rectification import RectificationItem, RectificationStatus
from chalicelib.domain.sectors import Sector
from chalicelib.observability import INHERIT, SERVICE
from chalicelib.services.ports import (
    AuditStamp,
    ConcurrentUpdateError,
    Publication,
    SubjectLog,
    evaluation_subject,
    rectification_subject,
)
from chalicelib.settings import Settings

logger = Logger(service=SERVICE, child=True, level=INHERIT)

MAIN, ENTERPRISE = "RECT", "E"
PUBLICATION = "PUBLICATION"


class ChainedIndex(GlobalSecondaryIndex["ChainedItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class ChainedItem(Model):
    """A versioned document with its audit chain head (an item or a publication), or an index pointer."""

    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    data = JSONAttribute(null=True)
    audit_seq = NumberAttribute(null=True)
    audit_hash = UnicodeAttribute(null=True)
    audit_last = UnicodeAttribute(null=True)
    version = VersionAttribute()
    by_gsi1 = ChainedIndex()


def bind(settings: Settings) -> None:
    meta: Any = ChainedItem.Meta
    meta.table_name = settings.table_registry
    for name, value in aws_clients.dynamo_meta(settings).items():
        setattr(meta, name, value)
    ChainedItem._connection = None


def _get(pk: str, sk: str) -> ChainedItem | None:
    try:
        return ChainedItem.get(pk, sk, consistent_read=True)
    except DoesNotExist:
        return None


def _head(item: ChainedItem | None) -> ChainHead:
    if item is None:
        return ChainHead()
    return ChainHead(int(item.audit_seq or 0), item.audit_hash or ChainHead().hash)


def _chained_save(
    current: ChainedItem | None,
    fresh: ChainedItem,
    subject: str,
    event_type: str,
    before: dict[str, Any],
    after: dict[str, Any],
    stamp: AuditStamp,
) -> AuditEvent:
    """Save the document (conditional on the version read: `current`, or absent for a new one) with its chain
    head advanced, then put the event in the audit log."""
    if current is not None and current.audit_last:  # its writer stopped between the save and the put
        put_event(AuditEvent.from_dict(json.loads(current.audit_last)))
    event = next_event(
        _head(current),
        subject_id=subject,
        type=event_type,
        before=before,
        after=after,
        actor=stamp.actor,
        role=stamp.role,
        at=stamp.at,
        reason=stamp.reason,
        source_ip=stamp.source_ip,
        app=stamp.app,
    )
    item = current or fresh
    item.gsi1pk, item.gsi1sk, item.data = fresh.gsi1pk, fresh.gsi1sk, after
    item.audit_seq, item.audit_hash = event.seq, event.hash
    item.audit_last = json.dumps(event.to_dict(), ensure_ascii=False)
    try:
        item.save()
    except PutError as exc:
        if lost_race(exc):
            raise ConcurrentUpdateError(subject) from exc
        raise
    put_event(event)
    return event


def _partitions(scope: Scope, statuses: frozenset[RectificationStatus] | None) -> list[str]:
    if scope.kind is ScopeKind.ENTERPRISE:
        bases = [f"RECTS#E#{scope.enterprise_id}"]
    elif scope.kind is ScopeKind.AREAS:
        bases = [f"RECTS#A#{code}" for code in scope.area_codes]
    else:
        sectors = list(Sector) if scope.kind is ScopeKind.ALL else scope.sectors
        bases = [f"RECTS#S#{Sector(sector).value}" for sector in sectors]
    if statuses is None:
        return bases
    return [f"{base}#{status.value}" for base in bases for status in sorted(statuses)]


def _status_pointers(item: RectificationItem, status: RectificationStatus) -> list[ChainedItem]:
    key = f"RECT#{item.rectification_id}"
    by_deadline = f"{iso_utc(item.deadline)}#{item.rectification_id}"
    return [
        ChainedItem(
            key, f"S#{status.value}", gsi1pk=f"RECTS#S#{item.sector.value}#{status.value}", gsi1sk=by_deadline
        ),
        ChainedItem(
            key,
            f"E#{status.value}",
            gsi1pk=f"RECTS#E#{item.enterprise_id}#{status.value}",
            gsi1sk=f"{iso_utc(item.created_at)}#{item.rectification_id}",
        ),
        *(
            ChainedItem(
                key, f"A#{code}#{status.value}", gsi1pk=f"RECTS#A#{code}#{status.value}", gsi1sk=by_deadline
            )
            for code in item.area_codes
        ),
    ]


def _item(found: ChainedItem) -> RectificationItem:
    return RectificationItem.model_validate({**(found.data or {}), "version": int(found.version or 0)})


def _publication(found: ChainedItem) -> Publication:
    data = dict(found.data or {})
    return Publication(**{**data, "versions": tuple(data.get("versions", ()))})


class DynamoRectificationStore:
    """The `RectificationStore` port."""

    def get(self, rectification_id: str) -> RectificationItem | None:
        found = _get(f"RECT#{rectification_id}", MAIN)
        return None if found is None else _item(found)

    def save(self, item: RectificationItem, event_type: str, stamp: AuditStamp) -> AuditEvent:
        key = f"RECT#{item.rectification_id}"
        current = _get(key, MAIN)
        stored_version = _item(current).version if current is not None else 0
        if stored_version != item.version:
            raise ConcurrentUpdateError(item.rectification_id)
        if current is None:
            self._pointers(item)
        status_pointers = _status_pointers(item, item.status)
        with ChainedItem.batch_write() as batch:  # before: no item is ever missing under its status
            for pointer in status_pointers:
                batch.save(pointer)
        before = _item(current).model_dump(mode="json", exclude={"version"}) if current is not None else {}
        after = item.model_copy(update={"version": item.version + 1}).model_dump(mode="json", exclude={"version"})
        fresh = ChainedItem(
            key,
            MAIN,
            gsi1pk=f"RECTS#S#{item.sector.value}",
            gsi1sk=f"{iso_utc(item.deadline)}#{item.rectification_id}",
        )
        previous = _item(current).status if current is not None else None
        event = _chained_save(
            current, fresh, rectification_subject(item.rectification_id), event_type, before, after, stamp
        )
        if previous is not None and previous is not item.status:
            try:
                with ChainedItem.batch_write() as batch:
                    for pointer in _status_pointers(item, previous):
                        batch.delete(pointer)
            except (DeleteError, PutError):  # passed over by the listings (their item has another status)
                logger.warning("stale rectification status pointers kept", extra={"id": item.rectification_id})
        return event

    @staticmethod
    def _pointers(item: RectificationItem) -> None:
        key = f"RECT#{item.rectification_id}"
        by_deadline = f"{iso_utc(item.deadline)}#{item.rectification_id}"
        pointers = [
            ChainedItem(
                key,
                ENTERPRISE,
                gsi1pk=f"RECTS#E#{item.enterprise_id}",
                gsi1sk=f"{iso_utc(item.created_at)}#{item.rectification_id}",
            ),
            *(
                ChainedItem(key, f"A#{code}", gsi1pk=f"RECTS#A#{code}", gsi1sk=by_deadline)
                for code in item.area_codes
            ),
        ]
        with ChainedItem.batch_write() as batch:
            for pointer in pointers:
                batch.save(pointer)

    @staticmethod
    def listing(
        scope: Scope,
        statuses: frozenset[RectificationStatus] | None,
        after: str | None,
        page_size: int,
    ) -> Iterator[tuple[RectificationItem, str]]:
        descending = scope.kind is ScopeKind.ENTERPRISE
        entries = merged(
            ChainedItem.by_gsi1,
            _partitions(scope, statuses),
            descending=descending,
            after=after,
            page_size=page_size,
        )
        for chunk in chunks(entries, page_size):
            wanted = [entry.pk for entry in chunk if entry.sk != MAIN]
            mains = {
                item.pk: item for item in ChainedItem.batch_get([(key, MAIN) for key in dict.fromkeys(wanted)])
            }
            for entry in chunk:
                main = entry if entry.sk == MAIN else mains.get(entry.pk)
                found = None if main is None else _item(main)
                if found is not None and (statuses is None or found.status in statuses):  # else stale or unwritten
                    yield found, str(entry.gsi1sk)

    def due_before(self, at: float) -> list[RectificationItem]:
        return [
            _item(item)
            for sector in Sector
            for item in ChainedItem.by_gsi1.query(f"RECTS#S#{sector.value}", ChainedItem.gsi1sk < iso_utc(at))
        ]

    def log(self, rectification_id: str) -> SubjectLog:
        subject = rectification_subject(rectification_id)
        return SubjectLog(events=read_chain(subject), head=_head(_get(f"RECT#{rectification_id}", MAIN)))

    def publication(self, report_id: str) -> Publication | None:
        found = _get(f"EVAL#{report_id}", PUBLICATION)
        return None if found is None else _publication(found)

    def record_publication(self, publication: Publication, stamp: AuditStamp) -> bool:
        key = f"EVAL#{publication.report_id}"
        current = _get(key, PUBLICATION)
        before = asdict(_publication(current)) if current is not None else {}
        if current is not None and publication.version in before.get("versions", ()):
            return False
        after = json.loads(json.dumps(asdict(publication)))
        try:
            _chained_save(
                current,
                ChainedItem(key, PUBLICATION),
                evaluation_subject(publication.report_id),
                "evaluation_published",
                json.loads(json.dumps(before)),
                after,
                stamp,
            )
        except ConcurrentUpdateError:
            return False
        return True

    def publication_log(self, report_id: str) -> SubjectLog:
        subject = evaluation_subject(report_id)
        return SubjectLog(events=read_chain(subject), head=_head(_get(f"EVAL#{report_id}", PUBLICATION)))
