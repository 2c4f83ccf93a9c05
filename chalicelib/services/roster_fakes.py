"""In-memory stand-ins for the roster ports, for tests (and for the delivery path's tests): `MemoryRosterStore`
(a `RosterRepository` with audit chains) and `StaticRosters` (a `Rosters` over fixed people, shifts and
enterprises, with the adapter's selection rules)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.domain.audit import AuditEvent, ChainHead, next_event
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.rosters import RosterRole, Shift, on_duty
from chalicelib.services.ports import AuditStamp, RegistrySubject, SubjectLog, registry_subject, subject_of


@dataclass
class MemoryRosterStore:
    """People, shifts and enterprises in dicts; every change chained like `AuditedRegistry`'s."""

    persons: dict[str, Person] = field(default_factory=dict)
    shifts_by_id: dict[str, Shift] = field(default_factory=dict)
    enterprises: dict[str, Enterprise] = field(default_factory=dict)
    chains: dict[str, list[AuditEvent]] = field(default_factory=dict)
    queries: list[tuple[str, int, int]] = field(default_factory=list)

    def person(self, person_id: str) -> Person | None:
        return self.persons.get(person_id)

    def people(self) -> list[Person]:
        return sorted(self.persons.values(), key=lambda p: (p.role, p.person_id))

    def enterprise(self, enterprise_id: str) -> Enterprise | None:
        return self.enterprises.get(enterprise_id)

    def put(self, subject: RegistrySubject, stamp: AuditStamp) -> AuditEvent | None:
        if isinstance(subject, Person):
            before = self.persons.get(subject.person_id)
            event = self._chain(subject_of(subject), "person", before, subject.model_dump(mode="json"), stamp)
            if event is not None:
                self.persons[subject.person_id] = subject
            return event
        if isinstance(subject, Enterprise):
            current = self.enterprises.get(subject.enterprise_id)
            event = self._chain(subject_of(subject), "enterprise", current, subject.model_dump(mode="json"), stamp)
            if event is not None:
                self.enterprises[subject.enterprise_id] = subject
            return event
        raise TypeError("devices are not kept here")

    def shift(self, shift_id: str) -> Shift | None:
        return self.shifts_by_id.get(shift_id)

    def shifts_starting(self, role: str, start: int, end: int) -> list[Shift]:
        self.queries.append((role, start, end))
        found = [s for s in self.shifts_by_id.values() if s.role.value == role and start <= s.starts_at <= end]
        return sorted(found, key=lambda s: (s.starts_at, s.shift_id))

    def put_shift(self, shift: Shift, stamp: AuditStamp) -> AuditEvent | None:
        before = self.shifts_by_id.get(shift.shift_id)
        subject = registry_subject("shift", shift.shift_id)
        event = self._chain(subject, "shift", before, shift.model_dump(mode="json"), stamp)
        if event is not None:
            self.shifts_by_id[shift.shift_id] = shift
        return event

    def delete_shift(self, shift_id: str, stamp: AuditStamp) -> AuditEvent | None:
        before = self.shifts_by_id.pop(shift_id, None)
        return self._chain(registry_subject("shift", shift_id), "shift", before, {}, stamp)

    def log(self, subject_id: str) -> SubjectLog:
        events = self.chains.get(subject_id, [])
        return SubjectLog(events=list(events), head=ChainHead.of(events[-1]) if events else ChainHead())

    def _chain(
        self, subject_id: str, kind: str, current: Any, after: dict[str, Any], stamp: AuditStamp
    ) -> AuditEvent | None:
        before = current.model_dump(mode="json") if current is not None else {}
        if before == after:
            return None
        verb = "deleted" if not after else ("updated" if current is not None else "registered")
        chain = self.chains.setdefault(subject_id, [])
        event = next_event(
            chain[-1] if chain else None,
            subject_id=subject_id,
            type=f"{kind}_{verb}",
            before=before,
            after=after,
            **asdict(stamp),
        )
        chain.append(event)
        return event


@dataclass
class StaticRosters:
    """The `Rosters` port over fixed people, shifts and enterprises (the rules of `adapters.rosters`)."""

    people: Sequence[Person] = ()
    shifts: Iterable[Shift] = ()
    enterprises: dict[str, Enterprise] = field(default_factory=dict)

    def on_duty(self, role: Role, at: float, enterprise_id: str | None = None) -> Sequence[Person]:
        of_role = [p for p in self.people if p.role == role.value]
        if role is Role.ENTERPRISE:
            enterprise = self.enterprises.get(enterprise_id or "")
            if enterprise is None:
                return ()
            named = {p.person_id: p for p in of_role if p.enterprise_id == enterprise.enterprise_id}
            return tuple(named[pid] for pid in enterprise.on_duty if pid in named)
        if role.value in {r.value for r in RosterRole}:
            return on_duty(of_role, [s for s in self.shifts if s.role.value == role.value], at)
        return tuple(of_role)
