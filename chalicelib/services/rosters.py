"""People and duty rosters: the people behind each audience (with their phones), the duty centre's shifts and each
enterprise's on-duty person(s) (专人, 第十四条); every change audited per subject.

Who may do what: the administrator registers people; the duty centre reads them. Shifts and on-duty persons are
managed by the administrator and the duty centre. A staff member's `person_id` is their API user id (the Cognito
username): the delivery path writes what it tells a person under the id the API authenticates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from chalicelib.domain.access import require_role
from chalicelib.domain.audit import AuditEvent
from chalicelib.domain.errors import NotFound, ValidationFailed
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.rosters import MAX_SHIFT_S, RosterRole, Shift, check_phone, check_range, check_shift
from chalicelib.services.cursors import decode_cursor, encode_cursor
from chalicelib.services.ports import (
    UNKNOWN_ORIGIN,
    AuditStamp,
    Origin,
    RosterRepository,
    SubjectLog,
    registry_subject,
    subject_of,
)

PEOPLE_WRITE = frozenset({Role.ADMIN})
PEOPLE_READ = frozenset({Role.ADMIN, Role.DUTY})
ROSTER_KEEPERS = frozenset({Role.ADMIN, Role.DUTY})
MAX_ON_DUTY = 5
T = TypeVar("T", Person, Shift, Enterprise)


@dataclass(frozen=True)
class Change(Generic[T]):
    """A subject as stored now; `changed`: this call wrote it; `audit_seq`: the head of its audit chain."""

    subject: T
    changed: bool
    audit_seq: int


@dataclass(frozen=True)
class PeoplePage:
    people: list[Person]
    next_cursor: str | None = None


@dataclass(frozen=True)
class OnDuty:
    """An enterprise's on-duty persons, as named (`person_ids`) and as registered now (`people`)."""

    enterprise_id: str
    person_ids: tuple[str, ...]
    people: tuple[Person, ...]


class RosterAdmin:
    def __init__(self, store: RosterRepository, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock

    # --- people

    def person(self, actor: Actor, person_id: str) -> Person:
        require_role(actor, PEOPLE_READ, "查看人员信息")
        found = self._store.person(person_id)
        if found is None:
            raise NotFound("person_not_found", "人员不存在")
        return found

    def people(
        self, actor: Actor, roles: Sequence[str] | None, limit: int, cursor: str | None = None
    ) -> PeoplePage:
        """A page of people with any of `roles` (all when None), by (role, person id)."""
        require_role(actor, PEOPLE_READ, "查看人员信息")
        after = decode_cursor(cursor, ("role", "person_id"))
        start = (after["role"], after["person_id"]) if after else None
        wanted = sorted(
            (p for p in self._store.people() if not roles or p.role in roles),
            key=lambda p: (p.role, p.person_id),
        )
        remaining = [p for p in wanted if start is None or (p.role, p.person_id) > start]
        page = remaining[:limit]
        more = len(remaining) > limit
        token = encode_cursor({"role": page[-1].role, "person_id": page[-1].person_id}) if more else None
        return PeoplePage(people=page, next_cursor=token)

    def put_person(
        self, actor: Actor, fields: Mapping[str, Any], reason: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> Change[Person]:
        """Register or change a person (phone E.164; an enterprise person's enterprise registered); audited as
        `person:{id}`."""
        require_role(actor, PEOPLE_WRITE, "管理人员信息")
        check_phone(str(fields.get("phone", "")))
        person = Person.model_validate(dict(fields))
        if person.enterprise_id and self._store.enterprise(person.enterprise_id) is None:
            raise ValidationFailed("unknown_enterprise", "所属企业未登记")
        event = self._store.put(person, self._stamp(actor, reason, origin))
        return Change(person, event is not None, self._seq(event, subject_of(person)))

    # --- duty shifts

    def shifts(self, actor: Actor, role: RosterRole, start: float | None, end: float | None) -> list[Shift]:
        """The shifts of the roster sharing an instant with `[start, end)` (default: the next 24 hours), by start;
        one bounded query over the shifts starting in `[start - MAX_SHIFT_S, end)`."""
        require_role(actor, ROSTER_KEEPERS, "查看值班表")
        start = self._clock() if start is None else start
        end = start + 86400 if end is None else end
        check_range(start, end)
        found = self._store.shifts_starting(role.value, int(start) - MAX_SHIFT_S, int(end))
        return [shift for shift in found if shift.overlaps(start, end)]

    def put_shift(
        self, actor: Actor, shift: Shift, reason: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> Change[Shift]:
        """Add or change a shift: a registered person of the roster's role, a window that fits
        (`rosters.check_shift`); audited as `shift:{id}`."""
        require_role(actor, ROSTER_KEEPERS, "管理值班表")
        check_shift(shift, self._clock())
        person = self._store.person(shift.person_id)
        if person is None:
            raise ValidationFailed("unknown_person", "人员未登记")
        if person.role != shift.role.value:
            raise ValidationFailed("person_not_on_roster", "该人员不是值守人员，不能排班")
        subject = registry_subject("shift", shift.shift_id)
        event = self._store.put_shift(shift, self._stamp(actor, reason, origin))
        return Change(shift, event is not None, self._seq(event, subject))

    def delete_shift(
        self, actor: Actor, role: RosterRole, shift_id: str, reason: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> Change[Shift]:
        require_role(actor, ROSTER_KEEPERS, "管理值班表")
        current = self._store.shift(shift_id)
        if current is None or current.role is not role:
            raise NotFound("shift_not_found", "班次不存在")
        event = self._store.delete_shift(shift_id, self._stamp(actor, reason, origin))
        return Change(current, event is not None, self._seq(event, registry_subject("shift", shift_id)))

    # --- enterprises' on-duty persons

    def on_duty(self, actor: Actor, enterprise_id: str) -> OnDuty:
        require_role(actor, ROSTER_KEEPERS, "查看企业值班专人")
        return self._on_duty(self._enterprise(enterprise_id))

    def name_on_duty(
        self,
        actor: Actor,
        enterprise_id: str,
        person_ids: Sequence[str],
        reason: str = "",
        origin: Origin = UNKNOWN_ORIGIN,
    ) -> tuple[OnDuty, Change[Enterprise]]:
        """Name the enterprise's on-duty person(s): registered people of role `enterprise` of this enterprise
        (none: nobody named, its contacts are told); audited in the enterprise's trail."""
        require_role(actor, ROSTER_KEEPERS, "指定企业值班专人")
        enterprise = self._enterprise(enterprise_id)
        ids = tuple(dict.fromkeys(person_ids))
        if len(ids) > MAX_ON_DUTY:
            raise ValidationFailed("on_duty_not_in_enterprise", f"值班专人最多 {MAX_ON_DUTY} 人")
        for person_id in ids:
            person = self._store.person(person_id)
            if person is None or person.role != Role.ENTERPRISE.value or person.enterprise_id != enterprise_id:
                raise ValidationFailed(
                    "on_duty_not_in_enterprise", "值班专人须为已登记的本企业人员", details={"person_id": person_id}
                )
        named = enterprise.model_copy(update={"on_duty": ids})
        event = self._store.put(named, self._stamp(actor, reason, origin))
        change = Change(named, event is not None, self._seq(event, subject_of(named)))
        return self._on_duty(named), change

    def _on_duty(self, enterprise: Enterprise) -> OnDuty:
        people = tuple(p for p in map(self._store.person, enterprise.on_duty) if p is not None)
        return OnDuty(enterprise.enterprise_id, enterprise.on_duty, people)

    def _enterprise(self, enterprise_id: str) -> Enterprise:
        found = self._store.enterprise(enterprise_id)
        if found is None:
            raise NotFound("enterprise_not_found", "企业不存在")
        return found

    # --- audit

    def subject_audit(self, actor: Actor, kind: str, key: str) -> SubjectLog:
        """The audit trail of a person (`kind` "person") or a shift ("shift"; a deleted one's too)."""
        require_role(actor, PEOPLE_READ, "查看变更记录")
        exists = self._store.person(key) if kind == "person" else self._store.shift(key)
        log = self._store.log(registry_subject(kind, key))
        if exists is None and not log.events and log.head.seq == 0:
            if kind == "person":
                raise NotFound("person_not_found", "人员不存在")
            raise NotFound("shift_not_found", "班次不存在")
        return log

    def _seq(self, event: AuditEvent | None, subject_id: str) -> int:
        return event.seq if event is not None else self._store.log(subject_id).head.seq

    def _stamp(self, actor: Actor, reason: str, origin: Origin) -> AuditStamp:
        return AuditStamp.of(actor, self._clock(), reason, origin)
