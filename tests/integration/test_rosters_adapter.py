"""The `Rosters` adapter and the audited roster store on moto: shifts, people and on-duty persons written through
the roster administration, read back by one bounded Query per roster (never a Scan), cached per container."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.adapters import audit_store, dynamo
from chalicelib.adapters.audit_store import AuditedRegistry
from chalicelib.adapters.dynamo import DynamoRegistry, RegistryItem
from chalicelib.adapters.rosters import DynamoRosters
from chalicelib.domain.audit import verify_chain
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import Enterprise, Person
from chalicelib.domain.rosters import Shift
from chalicelib.services.rosters import RosterAdmin
from chalicelib.settings import Settings
from local.aws import Provisioned, provision

H = 3600
T0 = 1_900_000_000
ADMIN = Actor(user_id="admin", role=Role.ADMIN, name="管理员")
A = Person(person_id="duty-a", name="张伟", role="duty", phone="+8613800000001")
B = Person(person_id="duty-b", name="李娜", role="duty", phone="+8613800000002")
WATCH = Person(
    person_id="ent-e-r1", name="值班员", role="enterprise", phone="+8613800000003", enterprise_id="E-R1"
)
EMG = Person(person_id="emg-a", name="领导", role="emergency", phone="+8613800000004")


@pytest.fixture(scope="module")
def infra(moto_server: str) -> Provisioned:
    provisioned = provision(moto_server, stage="test")
    settings = Settings(
        stage="test",
        region=provisioned.region,
        aws_endpoint_url=moto_server,
        table_device_state=provisioned.table("DeviceStateTable"),
        table_unit_state=provisioned.table("UnitStateTable"),
        table_registry=provisioned.table("RegistryTable"),
        table_warning=provisioned.table("WarningTable"),
        table_warning_event=provisioned.table("WarningEventTable"),
        table_quarantine=provisioned.table("QuarantineTable"),
    )
    dynamo.bind(settings)
    audit_store.bind(settings)
    return provisioned


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def admin(infra: Provisioned) -> RosterAdmin:
    """Two officers in 12 h shifts around T0, an enterprise with its on-duty person, a bureau leader."""
    DynamoRegistry.put_enterprise(Enterprise(enterprise_id="E-R1", name="测试化工", sector=Sector.HAZCHEM))
    roster = RosterAdmin(AuditedRegistry(), lambda: float(T0))
    for person in (A, B, WATCH, EMG):
        roster.put_person(ADMIN, person.model_dump(mode="json"), "测试")
    for index in range(-2, 2):  # shifts starting T0 - 24 h, -12 h, 0, +12 h
        start = T0 + index * 12 * H
        officer = (A, B)[index % 2]
        roster.put_shift(
            ADMIN,
            Shift(shift_id=f"s{index + 2}", person_id=officer.person_id, starts_at=start, ends_at=start + 12 * H),
        )
    roster.name_on_duty(ADMIN, "E-R1", [WATCH.person_id], "指定专人")
    return roster


@pytest.fixture
def calls() -> Iterator[list[str]]:
    """The DynamoDB operations the registry table's client makes (a botocore event hook)."""
    seen: list[str] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        seen.append(model.name)
        body = params.get("body") or {}
        if isinstance(body, bytes | str):
            body = json.loads(body)
        if model.name == "Query" and "IndexName" not in body:  # the roster partition: a sort key range
            assert "BETWEEN" in body["KeyConditionExpression"]
            seen.append("bounded")

    client = RegistryItem._get_connection().connection.client
    client.meta.events.register("before-call.dynamodb", record)
    yield seen
    client.meta.events.unregister("before-call.dynamodb", record)


def test_the_officer_on_shift_is_read_by_one_bounded_query_never_a_scan(
    admin: RosterAdmin, calls: list[str]
) -> None:
    clock = Clock()
    rosters = DynamoRosters(clock=clock)
    assert rosters.on_duty(Role.DUTY, T0) == (A,)  # the shift starting at T0 (the incoming officer)
    assert calls.count("Query") == 2 and "Scan" not in calls  # the people (gsi1 PEOPLE) and the roster partition
    assert calls.count("bounded") == 1
    assert rosters.on_duty(Role.DUTY, T0 - 1) == (B,)  # the outgoing officer, just before the handover
    assert rosters.on_duty(Role.DUTY, T0 + 30 * 60) == (A,)
    assert calls.count("Query") == 2  # cached: within 60 s and an hour either side
    assert rosters.on_duty(Role.DUTY, T0 + 12 * H) == (B,)
    assert calls.count("Query") == 3 and "Scan" not in calls  # another window: one more bounded query


def test_a_gap_or_a_time_without_shifts_tells_every_officer(admin: RosterAdmin) -> None:
    rosters = DynamoRosters()
    assert set(rosters.on_duty(Role.DUTY, T0 + 24 * H)) == {A, B}  # after the last shift
    assert set(rosters.on_duty(Role.DUTY, T0 - 24 * H - 1)) == {A, B}  # before the first


def test_a_shift_change_shows_once_the_cache_expires(admin: RosterAdmin) -> None:
    clock = Clock()
    rosters = DynamoRosters(clock=clock)
    assert rosters.on_duty(Role.DUTY, T0 + H) == (A,)
    admin.put_shift(ADMIN, Shift(shift_id="s2", person_id=B.person_id, starts_at=T0, ends_at=T0 + 12 * H), "调班")
    try:
        assert rosters.on_duty(Role.DUTY, T0 + H) == (A,)  # within 60 s: the cached roster
        clock.now = 61.0
        assert rosters.on_duty(Role.DUTY, T0 + H) == (B,)
    finally:
        admin.put_shift(ADMIN, Shift(shift_id="s2", person_id=A.person_id, starts_at=T0, ends_at=T0 + 12 * H))


def test_a_moved_shift_leaves_no_copy_at_its_old_start_and_a_deleted_one_none_at_all(admin: RosterAdmin) -> None:
    admin.put_shift(
        ADMIN, Shift(shift_id="s-move", person_id=B.person_id, starts_at=T0 + 48 * H, ends_at=T0 + 50 * H)
    )
    admin.put_shift(
        ADMIN, Shift(shift_id="s-move", person_id=B.person_id, starts_at=T0 + 49 * H, ends_at=T0 + 50 * H)
    )
    listed = admin.shifts(ADMIN, Shift.model_fields["role"].default, T0 + 47 * H, T0 + 51 * H)
    assert [(s.shift_id, s.starts_at) for s in listed] == [("s-move", T0 + 49 * H)]
    admin.delete_shift(ADMIN, listed[0].role, "s-move", "取消")
    assert admin.shifts(ADMIN, listed[0].role, T0 + 47 * H, T0 + 51 * H) == []
    log = AuditedRegistry().log("shift:s-move")
    assert [e.type for e in log.events] == ["shift_registered", "shift_updated", "shift_deleted"]
    assert verify_chain(log.events, head=log.head).ok


def test_the_enterprise_gets_its_on_duty_person_and_other_roles_everyone(admin: RosterAdmin) -> None:
    rosters = DynamoRosters()
    assert rosters.on_duty(Role.ENTERPRISE, T0, "E-R1") == (WATCH,)
    assert rosters.on_duty(Role.ENTERPRISE, T0, "E-NONE") == ()
    assert rosters.on_duty(Role.EMERGENCY, T0) == (EMG,)
    trail = AuditedRegistry().log("enterprise:E-R1")
    assert (
        trail.events[-1].after["on_duty"] == [WATCH.person_id] and verify_chain(trail.events, head=trail.head).ok
    )
