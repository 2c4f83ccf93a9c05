"""An in-memory fake of `RectificationStore` with the adapter's contract: version-checked saves (a stale or
repeated save is ConcurrentUpdateError), every change chained under `rectification:{id}`, publications chained
under `evaluation:{report id}`, one record per published version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.evaluation.rectification import RectificationItem
from chalicelib.domain.sectors import Sector
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

    def of_enterprise(self, enterprise_id: str) -> list[RectificationItem]:
        with self._call("of_enterprise"):
            found = [i for i in self.stored.values() if i.enterprise_id == enterprise_id]
            return sorted(found, key=lambda i: (i.created_at, i.rectification_id), reverse=True)

    def of_sectors(self, sectors: Sequence[Sector]) -> list[RectificationItem]:
        with self._call("of_sectors"):
            return _by_deadline(i for i in self.stored.values() if i.sector in sectors)

    def of_area(self, area_code: str) -> list[RectificationItem]:
        with self._call("of_area"):
            return _by_deadline(i for i in self.stored.values() if area_code in i.area_codes)

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
