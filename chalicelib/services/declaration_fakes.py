"""In-memory fakes of the declaration ports, with the adapters' contracts: version-checked saves (a stale or
repeated save is ConcurrentUpdateError), every change chained under `declaration:{id}`, the head kept apart."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.changes import WarningChange
from chalicelib.domain.declarations import OPEN_STATUSES, Declaration, DeclarationStatus, SuppressedFinding
from chalicelib.services.fakes import Fake
from chalicelib.services.ports import AuditStamp, ConcurrentUpdateError, SubjectLog, declaration_subject


class FakeDeclarationStore(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, Declaration] = {}
        self.events: dict[str, list[AuditEvent]] = {}
        self.heads: dict[str, ChainHead] = {}
        self.read = 0  # declarations the listings handed out (what a page read)

    def get(self, declaration_id: str) -> Declaration | None:
        with self._call("get"):
            return self.stored.get(declaration_id)

    def of_enterprise(self, enterprise_id: str) -> list[Declaration]:
        with self._call("of_enterprise"):
            found = [d for d in self.stored.values() if d.enterprise_id == enterprise_id]
            return sorted(found, key=lambda d: (d.created_at, d.declaration_id), reverse=True)

    def open(self) -> list[Declaration]:
        with self._call("open"):
            found = [d for d in self.stored.values() if d.status in OPEN_STATUSES]
            return sorted(found, key=lambda d: (d.ends_at, d.declaration_id))

    def history(
        self,
        enterprise_id: str,
        statuses: frozenset[DeclarationStatus] | None,
        after: str | None,
        page_size: int,
    ) -> Iterator[tuple[Declaration, str]]:
        with self._call("history"):
            found = [
                (d, _position(d.created_at, d.declaration_id))
                for d in self.stored.values()
                if d.enterprise_id == enterprise_id and (statuses is None or d.status in statuses)
            ]
        for declaration, position in sorted(found, key=lambda entry: entry[1], reverse=True):
            if after is None or position < after:
                self.read += 1
                yield declaration, position

    def open_listing(self, after: str | None, page_size: int) -> Iterator[tuple[Declaration, str]]:
        with self._call("open_listing"):
            found = [(d, _position(d.ends_at, d.declaration_id)) for d in self.stored.values()]
        for declaration, position in sorted(found, key=lambda entry: entry[1]):
            if declaration.status in OPEN_STATUSES and (after is None or position > after):
                self.read += 1
                yield declaration, position

    def save(self, declaration: Declaration, event_type: str, stamp: AuditStamp) -> AuditEvent:
        with self._call("save"):
            current = self.stored.get(declaration.declaration_id)
            if (current.version if current is not None else 0) != declaration.version:
                raise ConcurrentUpdateError(declaration.declaration_id)
            saved = declaration.model_copy(update={"version": declaration.version + 1})
            subject = declaration_subject(declaration.declaration_id)
            event = next_event(
                self.heads.get(subject, ChainHead()),
                subject_id=subject,
                type=event_type,
                before=current.model_dump(mode="json", exclude={"version"}) if current is not None else {},
                after=saved.model_dump(mode="json", exclude={"version"}),
                **asdict(stamp),
            )
            self.stored[declaration.declaration_id] = saved
            self.heads[subject] = ChainHead.of(event)
            self.events.setdefault(subject, []).append(event)
            return event

    def log(self, declaration_id: str) -> SubjectLog:
        with self._call("log"):
            subject = declaration_subject(declaration_id)
            return SubjectLog(events=list(self.events.get(subject, ())), head=self.heads.get(subject, ChainHead()))


def _position(at: float, declaration_id: str) -> str:
    return f"{at:020.6f}#{declaration_id}"


class FakeDeclarationNotices(Fake):
    def __init__(self) -> None:
        super().__init__()
        self.reminded: list[str] = []
        self.decided_: list[tuple[str, str]] = []  # (declaration id, status)

    def remind(self, declaration: Declaration, at: float) -> None:
        with self._call("remind"):
            self.reminded.append(declaration.declaration_id)

    def decided(self, declaration: Declaration) -> None:
        with self._call("decided"):
            self.decided_.append((declaration.declaration_id, declaration.status.value))


class FakeSuppressedFindings(Fake):
    """`SuppressedFindings`: `record` what the warning store's engine log would index (a change flagged
    `declared`, naming its declaration); anything else is ignored, as by the adapter."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], SuppressedFinding] = {}

    def record(self, change: WarningChange) -> None:
        found = SuppressedFinding.of(change)
        if found is not None:
            self.rows[(found.declaration_id, found.warning_id)] = found

    def of_declaration(self, declaration_id: str, limit: int) -> list[SuppressedFinding]:
        with self._call("of_declaration"):
            found = [row for (owner, _), row in self.rows.items() if owner == declaration_id]
            return sorted(found, key=lambda row: (row.at, row.warning_id), reverse=True)[:limit]
