"""An in-memory fake of `RectificationStore` with the adapter's contract: version-checked saves (a stale or
repeated save is ConcurrentUpdateError), every change chained under `rectification:{id}`, publications chained
under `evaluation:{report id}`, one record per published version."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from typing import Any

from chalicelib.domain.access import Scope, ScopeKind
from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.evaluation.rectification import RectificationItem, RectificationStatus
from chalicelib.services.fakes import Fake
from chalicelib.services.ports import (
    AuditStamp,
    ConcurrentUpdateError,
    Publication,
    SubjectLog,
    evaluation_subject,
    rectification_subject,
)


class FakeRectificationStore(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, RectificationItem] = {}
        self.publications: dict[str, Publication] = {}
        self.events: dict[str, list[AuditEvent]] = {}
        self.heads: dict[str, ChainHead] = {}
        self.read = 0  # items the listings handed out (what a page read)

    def _chain(
        self, subject: str, event_type: str, before: dict[str, Any], after: dict[str, Any], stamp: AuditStamp
    ) -> AuditEvent:
        event = next_event(
            self.heads.get(subject, ChainHead()),
            subject_id=subject,
            type=event_type,
            before=before,
            after=after,
            **asdict(stamp),
        )
        self.heads[subject] = ChainHead.of(event)
        self.events.setdefault(subject, []).append(event)
        return event

    def get(self, rectification_id: str) -> RectificationItem | None:
        with self._call("get"):
            return self.stored.get(rectification_id)

    def save(self, item: RectificationItem, event_type: str, stamp: AuditStamp) -> AuditEvent:
        with self._call("save"):
            current = self.stored.get(item.rectification_id)
            if (current.version if current is not None else 0) != item.version:
                raise ConcurrentUpdateError(item.rectification_id)
            saved = item.model_copy(update={"version": item.version + 1})
            before = current.model_dump(mode="json", exclude={"version"}) if current is not None else {}
            after = saved.model_dump(mode="json", exclude={"version"})
            event = self._chain(rectification_subject(item.rectification_id), event_type, before, after, stamp)
            self.stored[item.rectification_id] = saved
            return event

    def listing(
        self,
        scope: Scope,
        statuses: frozenset[RectificationStatus] | None,
        after: str | None,
        page_size: int,
    ) -> Iterator[tuple[RectificationItem, str]]:
        with self._call("listing"):
            descending = scope.kind is ScopeKind.ENTERPRISE
            found = [
                (item, f"{item.created_at if descending else item.deadline:020.6f}#{item.rectification_id}")
                for item in self.stored.values()
                if _in_partitions(scope, item) and (statuses is None or item.status in statuses)
            ]
        for item, position in sorted(found, key=lambda entry: entry[1], reverse=descending):
            if after is None or (position < after if descending else position > after):
                self.read += 1
                yield item, position

    def due_before(self, at: float) -> list[RectificationItem]:
        with self._call("due_before"):
            return _by_deadline(i for i in self.stored.values() if i.deadline < at)

    def log(self, rectification_id: str) -> SubjectLog:
        with self._call("log"):
            subject = rectification_subject(rectification_id)
            return SubjectLog(events=list(self.events.get(subject, ())), head=self.heads.get(subject, ChainHead()))

    def publication(self, report_id: str) -> Publication | None:
        with self._call("publication"):
            return self.publications.get(report_id)

    def record_publication(self, publication: Publication, stamp: AuditStamp) -> bool:
        with self._call("record_publication"):
            current = self.publications.get(publication.report_id)
            if current is not None and publication.version in current.versions:
                return False
            before = asdict(current) if current is not None else {}
            self._chain(
                evaluation_subject(publication.report_id),
                "evaluation_published",
                before,
                asdict(publication),
                stamp,
            )
            self.publications[publication.report_id] = replace(publication)
            return True

    def publication_log(self, report_id: str) -> SubjectLog:
        with self._call("publication_log"):
            subject = evaluation_subject(report_id)
            return SubjectLog(events=list(self.events.get(subject, ())), head=self.heads.get(subject, ChainHead()))


def _by_deadline(items: Any) -> list[RectificationItem]:
    return sorted(items, key=lambda i: (i.deadline, i.rectification_id))


def _in_partitions(scope: Scope, item: RectificationItem) -> bool:
    if scope.kind is ScopeKind.ENTERPRISE:
        return item.enterprise_id == scope.enterprise_id
    if scope.kind is ScopeKind.SECTORS:
        return item.sector in scope.sectors
    if scope.kind is ScopeKind.AREAS:
        return not set(item.area_codes).isdisjoint(scope.area_codes)
    return True
