"""Duty rosters: who is on duty at an instant (half-open shifts, overlaps, gaps), shift validation, and the roster
administration's rules over an in-memory store (access, audit, on-duty persons)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.rosters import MAX_SHIFT_S, PAST_LIMIT_S, Shift, check_phone, check_shift, on_duty, on_shift
from chalicelib.services.registry_admin import RegistryAdmin
from chalicelib.services.roster_fakes import MemoryRosterStore, StaticRosters
from chalicelib.services.rosters import RosterAdmin

H = 3600
T0 = 1_800_000_000  # a shift boundary: A works [T0 - 12 h, T0), B works [T0, T0 + 12 h)
A = Person(person_id="duty-01", name="张伟", role="duty", phone="+8613800000001")
B = Person(person_id="duty-02", name="李娜", role="duty", phone="+8613800000002")
C = Person(person_id="duty-03", name="王强", role="duty", phone="+8613800000003")
OFFICERS = (A, B, C)


def shift(shift_id: str, person: Person, starts_at: int, ends_at: int) -> Shift:
    return Shift(shift_id=shift_id, person_id=person.person_id, starts_at=starts_at, ends_at=ends_at)


HANDOVER = (shift("s-a", A, T0 - 12 * H, T0), shift("s-b", B, T0, T0 + 12 * H))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T0 - 12 * H - 1, OFFICERS),  # before A's shift starts: nobody's shift, every officer
        (T0 - 12 * H, (A,)),  # at A's start: A
        (T0 - 1, (A,)),  # just before the handover: A
        (T0, (B,)),  # at the handover: the incoming officer only
        (T0 + 1, (B,)),  # just after: B
        (T0 + 12 * H - 1, (B,)),  # just before B's end
        (T0 + 12 * H, OFFICERS),  # at B's end: nobody's shift, every officer
    ],
    ids=["before-first", "at-start", "before-end", "at-handover", "after-handover", "before-last-end", "at-end"],
)
def test_the_officer_on_duty_at_shift_boundaries(at: float, expected: tuple[Person, ...]) -> None:
    assert on_duty(OFFICERS, HANDOVER, at) == expected


def test_overlapping_shifts_tell_both_officers_earliest_start_first() -> None:
    overlap = (shift("s-b", B, T0, T0 + 12 * H), shift("s-a", A, T0 - 12 * H, T0 + H))
    assert on_duty(OFFICERS, overlap, T0 + 30 * 60) == (A, B)
    assert on_duty(OFFICERS, overlap, T0 + H) == (B,)


def test_a_gap_in_the_roster_or_no_roster_tells_every_officer() -> None:
    gap = (shift("s-a", A, T0 - 12 * H, T0), shift("s-b", B, T0 + H, T0 + 12 * H))
    assert on_duty(OFFICERS, gap, T0 + 30 * 60) == OFFICERS
    assert on_duty(OFFICERS, (), T0) == OFFICERS


def test_a_shift_of_a_person_no_longer_registered_does_not_leave_nobody_told() -> None:
    gone = Person(person_id="duty-09", name="离职", role="duty", phone="+8613800000009")
    assert on_duty(OFFICERS, (shift("s-x", gone, T0, T0 + H),), T0) == OFFICERS


def test_on_shift_lists_the_covering_shifts_in_start_order() -> None:
    assert [s.shift_id for s in on_shift(HANDOVER, T0)] == ["s-b"]
    assert on_shift(HANDOVER, T0 + 12 * H) == ()


NOW = float(T0)


@pytest.mark.parametrize(
    ("starts_at", "ends_at", "code"),
    [
        (T0, T0, "shift_not_after_start"),
        (T0, T0 - 1, "shift_not_after_start"),
        (T0, T0 + MAX_SHIFT_S + 1, "shift_too_long"),
        (T0 - PAST_LIMIT_S - 2 * H, T0 - PAST_LIMIT_S - 1, "shift_in_past"),
    ],
)
def test_a_shift_that_breaks_a_rule_is_refused_with_the_rule(starts_at: int, ends_at: int, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_shift(shift("s", A, starts_at, ends_at), NOW)
    assert caught.value.code == code and caught.value.message_zh


@pytest.mark.parametrize(
    ("starts_at", "ends_at"),
    [
        (T0, T0 + 1),
        (T0, T0 + MAX_SHIFT_S),
        (T0 - PAST_LIMIT_S - H, T0 - PAST_LIMIT_S),
        (T0 + 30 * 86400, T0 + 31 * 86400),
    ],
)
def test_a_shift_within_the_rules_is_taken(starts_at: int, ends_at: int) -> None:
    assert check_shift(shift("s", A, starts_at, ends_at), NOW).starts_at == starts_at


@pytest.mark.parametrize(
    "phone", ["13800138000", "+86 138 0013 8000", "+0123456789", "+12345", "+1234567890123456"]
)
def test_a_phone_not_in_e164_is_refused_in_chinese(phone: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_phone(phone)
    assert caught.value.code == "invalid_phone" and "国际格式" in caught.value.message_zh


def test_an_e164_phone_is_taken() -> None:
    assert check_phone("+8613800138000") == "+8613800138000"


def test_a_shift_has_no_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Shift.model_validate({"shift_id": "s", "person_id": "p", "starts_at": 1, "ends_at": 2, "x": 1})


# --- the Rosters fake (the adapter's rules; tests/integration/test_rosters_adapter.py runs the adapter itself) ---

ENTERPRISE = Enterprise(enterprise_id="E-1", name="某化工", sector=Sector.HAZCHEM, on_duty=("ent-e-1",))
WATCH = Person(person_id="ent-e-1", name="值班员", role="enterprise", phone="+8613800000011", enterprise_id="E-1")
OTHER = Person(person_id="ent-e-2", name="别家", role="enterprise", phone="+8613800000012", enterprise_id="E-2")
EMG = Person(person_id="emg-01", name="领导", role="emergency", phone="+8613800000013")


def test_static_rosters_follow_the_port_rules() -> None:
    rosters = StaticRosters(
        people=(*OFFICERS, WATCH, OTHER, EMG),
        shifts=HANDOVER,
        enterprises={"E-1": ENTERPRISE, "E-2": Enterprise(enterprise_id="E-2", name="别家", sector=Sector.FIRE)},
    )
    assert rosters.on_duty(Role.DUTY, T0) == (B,)
    assert rosters.on_duty(Role.ENTERPRISE, T0, "E-1") == (WATCH,)
    assert rosters.on_duty(Role.ENTERPRISE, T0, "E-2") == ()  # none named: the caller tells the contacts
    assert rosters.on_duty(Role.ENTERPRISE, T0) == ()
    assert rosters.on_duty(Role.EMERGENCY, T0) == (EMG,)


# --- the roster administration --------------------------------------------------------------------------------

ADMIN = Actor(user_id="admin", role=Role.ADMIN, name="管理员")
DUTY = Actor(user_id="duty-01", role=Role.DUTY, name="张伟")
REGULATOR = Actor(user_id="reg-x", role=Role.REGULATOR, department="fire_rescue", sectors=(Sector.FIRE,))


@pytest.fixture
def store() -> MemoryRosterStore:
    memory = MemoryRosterStore()
    memory.enterprises["E-1"] = ENTERPRISE.model_copy(update={"on_duty": ()})
    return memory


@pytest.fixture
def admin(store: MemoryRosterStore) -> RosterAdmin:
    return RosterAdmin(store, lambda: NOW)


def fields(person: Person, **changes: Any) -> dict[str, Any]:
    return {**person.model_dump(mode="json"), **changes}


def test_a_person_is_registered_then_updated_each_change_chained(
    admin: RosterAdmin, store: MemoryRosterStore
) -> None:
    first = admin.put_person(ADMIN, fields(A), "入职")
    again = admin.put_person(ADMIN, fields(A))
    moved = admin.put_person(ADMIN, fields(A, phone="+8613900000001"), "换号")
    assert (first.changed, first.audit_seq, again.changed, again.audit_seq) == (True, 1, False, 1)
    assert (moved.changed, moved.audit_seq) == (True, 2)
    events = store.log("person:duty-01").events
    assert [e.type for e in events] == ["person_registered", "person_updated"]
    assert events[1].before["phone"] == A.phone and events[1].reason == "换号"
    assert admin.person(DUTY, "duty-01").phone == "+8613900000001"


def test_only_the_administrator_registers_people_and_the_duty_centre_reads_them(admin: RosterAdmin) -> None:
    admin.put_person(ADMIN, fields(A))
    with pytest.raises(Forbidden):
        admin.put_person(DUTY, fields(B))
    with pytest.raises(Forbidden):
        admin.person(REGULATOR, "duty-01")
    assert [p.person_id for p in admin.people(DUTY, ["duty"], 10).people] == ["duty-01"]
    with pytest.raises(NotFound):
        admin.person(ADMIN, "nobody")


def test_a_person_with_a_bad_phone_or_an_unregistered_enterprise_is_refused(admin: RosterAdmin) -> None:
    with pytest.raises(ValidationFailed) as bad_phone:
        admin.put_person(ADMIN, fields(A, phone="13800000001"))
    assert bad_phone.value.code == "invalid_phone"
    with pytest.raises(ValidationFailed) as unknown:
        admin.put_person(ADMIN, fields(OTHER))
    assert unknown.value.code == "unknown_enterprise"


def test_people_list_in_pages_by_role_and_id(admin: RosterAdmin) -> None:
    for person in (*OFFICERS, EMG):
        admin.put_person(ADMIN, fields(person))
    first = admin.people(ADMIN, None, 3)
    second = admin.people(ADMIN, None, 3, first.next_cursor)
    assert [p.person_id for p in first.people + second.people] == ["duty-01", "duty-02", "duty-03", "emg-01"]
    assert second.next_cursor is None
    with pytest.raises(ValidationFailed):
        admin.people(ADMIN, None, 3, "bm9wZQ")


def test_duty_shifts_are_kept_by_the_duty_centre_for_duty_officers_only(
    admin: RosterAdmin, store: MemoryRosterStore
) -> None:
    admin.put_person(ADMIN, fields(A))
    admin.put_person(ADMIN, fields(EMG))
    made = admin.put_shift(DUTY, shift("s-a", A, T0, T0 + 12 * H), "排班")
    assert (made.changed, made.audit_seq) == (True, 1)
    moved = admin.put_shift(DUTY, shift("s-a", A, T0 + H, T0 + 13 * H))
    assert (moved.changed, moved.audit_seq) == (True, 2)
    for bad, code in (
        (shift("s-x", B, T0, T0 + H), "unknown_person"),
        (shift("s-y", EMG, T0, T0 + H), "person_not_on_roster"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            admin.put_shift(ADMIN, bad)
        assert caught.value.code == code
    with pytest.raises(Forbidden):
        admin.put_shift(REGULATOR, shift("s-a", A, T0, T0 + H))
    gone = admin.delete_shift(DUTY, shift("s-a", A, 0, 1).role, "s-a", "调班")
    assert gone.changed
    assert [e.type for e in store.log("shift:s-a").events] == [
        "shift_registered",
        "shift_updated",
        "shift_deleted",
    ]
    with pytest.raises(NotFound):
        admin.delete_shift(DUTY, gone.subject.role, "s-a")


def test_shift_listing_is_one_bounded_query_and_keeps_the_shifts_sharing_the_window(
    admin: RosterAdmin, store: MemoryRosterStore
) -> None:
    admin.put_person(ADMIN, fields(A))
    for index in range(4):  # 12 h shifts from T0 - 12 h
        start = T0 - 12 * H + index * 12 * H
        admin.put_shift(ADMIN, shift(f"s-{index}", A, start, start + 12 * H))
    store.queries.clear()
    listed = admin.shifts(DUTY, HANDOVER[0].role, T0 - H, T0 + H)
    assert [s.shift_id for s in listed] == ["s-0", "s-1"]
    assert store.queries == [("duty", T0 - H - MAX_SHIFT_S, T0 + H)]
    with pytest.raises(ValidationFailed) as caught:
        admin.shifts(DUTY, HANDOVER[0].role, T0, T0 + 32 * 86400)
    assert caught.value.code == "invalid_range"


def test_an_enterprise_names_its_own_enterprise_people_as_on_duty(
    admin: RosterAdmin, store: MemoryRosterStore
) -> None:
    admin.put_person(ADMIN, fields(WATCH))
    admin.put_person(ADMIN, fields(A))
    named, change = admin.name_on_duty(DUTY, "E-1", ["ent-e-1"], "指定专人")
    assert (named.person_ids, named.people, change.changed) == (("ent-e-1",), (WATCH,), True)
    assert store.log("enterprise:E-1").events[-1].after["on_duty"] == ["ent-e-1"]
    with pytest.raises(ValidationFailed) as caught:
        admin.name_on_duty(ADMIN, "E-1", ["duty-01"])
    assert caught.value.code == "on_duty_not_in_enterprise"
    with pytest.raises(NotFound):
        admin.on_duty(ADMIN, "E-NONE")
    assert admin.on_duty(DUTY, "E-1").person_ids == ("ent-e-1",)


def test_an_enterprise_profile_change_keeps_its_on_duty_persons(store: MemoryRosterStore) -> None:
    store.enterprises["E-1"] = ENTERPRISE

    class Registry(MemoryRosterStore):
        def devices_of(self, enterprise_id: str) -> list[Any]:
            return []

        def device(self, device_id: str) -> None:
            return None

    registry = Registry(enterprises=dict(store.enterprises))
    change = RegistryAdmin(registry, lambda: NOW).put_enterprise(
        ADMIN, ENTERPRISE.model_copy(update={"name": "改名", "on_duty": ()})
    )
    assert change.subject.on_duty == ("ent-e-1",)
