"""Outage declarations in the registry table (docs/declarations.md "Storage"), audited like a warning.

Items (registry table, pk/sk, the table's `gsi1`):
- `DECL#{id}` / `DECL`: the declaration (`data`), its version (conditional saves) and its audit chain head (seq,
  hash, the head's event): one version-checked save changes the declaration and advances its chain, so two
  deciders never both win; gsi1 `DECLS#{enterprise id}` / `{created, ISO}#{id}`: an enterprise's history, newest
  first;
- `DECL#{id}` / `OPEN`: present while the declaration is pending or approved; gsi1 `DECLS#OPEN` /
  `{ends_at, ISO}#{id}`: the open declarations by end, for the sweep, the duty centre's list and (later) the
  ingest's suppression. It is written before a save that leaves the declaration open and deleted after one that
  closes it, so the index is never missing an open declaration; `open()` reads the declarations themselves and
  drops stale entries;
- `DECL#{id}` / `S#{status}`: gsi1 `DECLS#{enterprise id}#{status}` / `{created, ISO}#{id}`: an enterprise's
  history by stored status (`history` with statuses reads these partitions, then the declarations). The entry of
  the new status is written before a save and the previous status's deleted after it, so the index never misses a
  declaration under its status; a listing drops an entry whose declaration has another status (one left by a
  failed save or delete).
Events go to the audit log (`audit_store.put_event`, partition `AUDIT#declaration:{id}`), after the save; a save
whose event put failed leaves the event in the head (`last`) and the next save puts it first.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
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
from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.declarations import OPEN_STATUSES, Declaration, DeclarationStatus
from chalicelib.observability import INHERIT, SERVICE
from chalicelib.services.ports import AuditStamp, ConcurrentUpdateError, SubjectLog, declaration_subject
from chalicelib.settings import Settings

logger = Logger(service=SERVICE, child=True, level=INHERIT)

MAIN, OPEN = "DECL", "OPEN"
OPEN_PARTITION = "DECLS#OPEN"


class DeclarationIndex(GlobalSecondaryIndex["DeclarationItem"]):
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class DeclarationItem(Model):
    class Meta:
        table_name = "unbound"

    pk = UnicodeAttribute(hash_key=True)  # DECL#{id}
    sk = UnicodeAttribute(range_key=True)  # DECL or OPEN
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    data = JSONAttribute(null=True)  # the declaration (main item only)
    audit_seq = NumberAttribute(null=True)
    audit_hash = UnicodeAttribute(null=True)
    audit_last = UnicodeAttribute(null=True)  # the head's event (JSON)
    version = VersionAttribute()
    by_gsi1 = DeclarationIndex()


def bind(settings: Settings) -> None:
    meta: Any = DeclarationItem.Meta
    meta.table_name = settings.table_registry
    for name, value in aws_clients.dynamo_meta(settings).items():
        setattr(meta, name, value)
    DeclarationItem._connection = None


def _declaration(item: DeclarationItem) -> Declaration:
    return Declaration.model_validate({**(item.data or {}), "version": int(item.version or 0)})


def _status_sk(status: DeclarationStatus) -> str:
    return f"S#{status.value}"


def _restore(item: DeclarationItem) -> None:
    """Put the head's own event if the log lacks it (its writer stopped between the save and the put)."""
    if item.audit_last and put_event(AuditEvent.from_dict(json.loads(item.audit_last))):
        logger.warning("declaration audit event restored", extra={"subject": declaration_subject(item.pk[5:])})


class DynamoDeclarationStore:
    """The `DeclarationStore` port."""

    @staticmethod
    def _main(declaration_id: str) -> DeclarationItem | None:
        try:
            return DeclarationItem.get(f"DECL#{declaration_id}", MAIN, consistent_read=True)
        except DoesNotExist:
            return None

    def get(self, declaration_id: str) -> Declaration | None:
        item = self._main(declaration_id)
        return None if item is None else _declaration(item)

    @staticmethod
    def of_enterprise(enterprise_id: str) -> list[Declaration]:
        query = DeclarationItem.by_gsi1.query(f"DECLS#{enterprise_id}", scan_index_forward=False, page_size=100)
        return [_declaration(item) for item in query]

    @staticmethod
    def history(
        enterprise_id: str,
        statuses: frozenset[DeclarationStatus] | None,
        after: str | None,
        page_size: int,
    ) -> Iterator[tuple[Declaration, str]]:
        if statuses is None:
            for item in merged(
                DeclarationItem.by_gsi1,
                [f"DECLS#{enterprise_id}"],
                descending=True,
                after=after,
                page_size=page_size,
            ):
                yield _declaration(item), str(item.gsi1sk)
            return
        entries = merged(
            DeclarationItem.by_gsi1,
            [f"DECLS#{enterprise_id}#{status.value}" for status in sorted(statuses)],
            descending=True,
            after=after,
            page_size=page_size,
        )
        for chunk in chunks(entries, page_size):
            mains = {item.pk: item for item in DeclarationItem.batch_get([(entry.pk, MAIN) for entry in chunk])}
            for entry in chunk:
                main = mains.get(entry.pk)
                declaration = None if main is None else _declaration(main)
                if declaration is not None and declaration.status in statuses:  # else a stale entry
                    yield declaration, str(entry.gsi1sk)

    @staticmethod
    def open_listing(after: str | None, page_size: int) -> Iterator[tuple[Declaration, str]]:
        entries = merged(
            DeclarationItem.by_gsi1, [OPEN_PARTITION], descending=False, after=after, page_size=page_size
        )
        for chunk in chunks(entries, page_size):
            mains = {item.pk: item for item in DeclarationItem.batch_get([(entry.pk, MAIN) for entry in chunk])}
            for entry in chunk:
                main = mains.get(entry.pk)
                declaration = None if main is None else _declaration(main)
                if declaration is not None and declaration.status in OPEN_STATUSES:  # else closed since
                    yield declaration, str(entry.gsi1sk)

    def open(self) -> list[Declaration]:
        entries = list(DeclarationItem.by_gsi1.query(OPEN_PARTITION, page_size=200))
        if not entries:
            return []
        mains = {
            item.pk: item
            for item in DeclarationItem.batch_get([(entry.pk, MAIN) for entry in entries], consistent_read=True)
        }
        found: list[Declaration] = []
        for entry in entries:
            main = mains.get(entry.pk)
            declaration = None if main is None else _declaration(main)
            if declaration is not None and declaration.status in OPEN_STATUSES:
                found.append(declaration)
            elif main is not None:  # closed since (its writer stopped before the delete): tidy up
                # a reader without the right (the ingest, the offline watch) leaves it to the sweep
                with contextlib.suppress(DeleteError):
                    DeclarationItem(entry.pk, OPEN).delete(add_version_condition=False)
        return found

    def save(self, declaration: Declaration, event_type: str, stamp: AuditStamp) -> AuditEvent:
        key = f"DECL#{declaration.declaration_id}"
        current = self._main(declaration.declaration_id)
        stored_version = int(current.version or 0) if current is not None else 0
        if stored_version != declaration.version:
            raise ConcurrentUpdateError(declaration.declaration_id)
        if current is not None:
            _restore(current)
        head = (
            ChainHead(int(current.audit_seq or 0), current.audit_hash or ChainHead().hash)
            if current is not None
            else ChainHead()
        )
        previous = _declaration(current).status if current is not None else None
        before = _declaration(current).model_dump(mode="json", exclude={"version"}) if current else {}
        after = declaration.model_dump(mode="json", exclude={"version"})
        event = next_event(
            head,
            subject_id=declaration_subject(declaration.declaration_id),
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
        still_open = declaration.status in OPEN_STATUSES
        by_created = f"{iso_utc(declaration.created_at)}#{declaration.declaration_id}"
        # indexed before: neither the open index nor the status index ever misses a declaration
        with DeclarationItem.batch_write() as batch:
            batch.save(
                DeclarationItem(
                    key,
                    _status_sk(declaration.status),
                    gsi1pk=f"DECLS#{declaration.enterprise_id}#{declaration.status.value}",
                    gsi1sk=by_created,
                )
            )
            if still_open:
                batch.save(
                    DeclarationItem(
                        key,
                        OPEN,
                        gsi1pk=OPEN_PARTITION,
                        gsi1sk=f"{iso_utc(declaration.ends_at)}#{declaration.declaration_id}",
                    )
                )
        item = current or DeclarationItem(key, MAIN)
        item.gsi1pk = f"DECLS#{declaration.enterprise_id}"
        item.gsi1sk = by_created
        item.data = after
        item.audit_seq = event.seq
        item.audit_hash = event.hash
        item.audit_last = json.dumps(event.to_dict(), ensure_ascii=False)
        try:
            item.save()  # conditional on the version read (absent for a new one)
        except PutError as exc:
            if lost_race(exc):
                raise ConcurrentUpdateError(declaration.declaration_id) from exc
            raise
        put_event(event)
        stale = [_status_sk(previous)] if previous is not None and previous is not declaration.status else []
        if not still_open:
            stale.append(OPEN)
        try:
            with DeclarationItem.batch_write() as batch:
                for sk in stale:
                    batch.delete(DeclarationItem(key, sk))
        except (DeleteError, PutError):  # passed over by `open()` and the listings (their declaration's status)
            logger.warning("stale declaration index entries kept", extra={"id": declaration.declaration_id})
        return event

    def log(self, declaration_id: str) -> SubjectLog:
        item = self._main(declaration_id)
        head = (
            ChainHead()
            if item is None
            else ChainHead(int(item.audit_seq or 0), item.audit_hash or ChainHead().hash)
        )
        return SubjectLog(events=read_chain(declaration_subject(declaration_id)), head=head)


class LoggedDeclarationNotices:
    """The `DeclarationNotices` port of a stage without a delivery queue: the notice is logged, nothing sent."""

    @staticmethod
    def remind(declaration: Declaration, at: float) -> None:
        logger.info(
            "declaration reminder not delivered: this stage has no delivery queue",
            extra={
                "declaration_id": declaration.declaration_id,
                "enterprise_id": declaration.enterprise_id,
                "ends_at": declaration.ends_at,
            },
        )

    @staticmethod
    def decided(declaration: Declaration) -> None:
        logger.info(
            "declaration decision not delivered: this stage has no delivery queue",
            extra={"declaration_id": declaration.declaration_id, "status": declaration.status.value},
        )
