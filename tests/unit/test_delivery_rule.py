"""Who is told, by which channel (第十三条, 第十四条, DOMAIN.md §4): the rule in `domain/delivery.py`."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from chalicelib.domain.delivery import (
    Channel,
    DeliveryJob,
    JobKind,
    Target,
    contact_key,
    inbox_audiences,
    inbox_keys_of,
    targets,
)
from chalicelib.domain.policy import Audience
from chalicelib.domain.registry import Contact, Enterprise, Person
from chalicelib.domain.roles import Role
from chalicelib.domain.sectors import Sector

DUTY_A = Person(person_id="P-D1", name="值守甲", role=Role.DUTY, phone="+8613800000001")
DUTY_B = Person(person_id="P-D2", name="值守乙", role=Role.DUTY, phone="+8613800000002")
REG_FIRE = Person(person_id="P-R1", name="消防", role=Role.REGULATOR, phone="+8613800000003", department="fire")
REG_ROAD = Person(
    person_id="P-R2", name="交通", role=Role.REGULATOR, phone="+8613800000004", department="transport"
)
AREA_1 = Person(person_id="P-A1", name="街道一", role=Role.AREA, phone="+8613800000005", area_codes=("A1",))
AREA_2 = Person(person_id="P-A2", name="街道二", role=Role.AREA, phone="+8613800000006", area_codes=("A2",))
EMG = Person(person_id="P-E1", name="应急", role=Role.EMERGENCY, phone="+8613800000007")
ENT_ON_DUTY = Person(
    person_id="P-X1", name="企业值班", role=Role.ENTERPRISE, phone="+8613800000008", enterprise_id="E1"
)
CONTACT = contact_key("E1", "+8613800000009")
EVERYONE = (DUTY_A, DUTY_B, REG_FIRE, REG_ROAD, AREA_1, AREA_2, EMG)
ENTERPRISE = Enterprise(
    enterprise_id="E1",
    name="渤化化工有限公司",
    sector=Sector.HAZCHEM,
    area_codes=("A1",),
    contacts=(Contact(name="安全负责人", phone="+8613800000009"),),
)


def job(sms: Sequence[Audience], inbox: Sequence[Audience] | None = None, **fields: object) -> DeliveryJob:
    values: dict[str, object] = {
        "job_id": "warning_change:W1:1",
        "kind": JobKind.WARNING_CHANGE,
        "warning_id": "W1",
        "enterprise_id": "E1",
        "level": 4,
        "at": 1000.0,
        "template_id": "warning_reminder",
        "params": {},
        "sms_audiences": tuple(sms),
        "inbox_audiences": tuple(inbox_audiences(sms) if inbox is None else inbox),
        "regulators": ("fire",),
        "areas": ("A1",),
    }
    values.update(fields)
    return DeliveryJob.model_validate(values)


def on_duty_of(
    people: Sequence[Person], enterprise_people: Sequence[Person] = (), duty: Sequence[Person] | None = None
):  # type: ignore[no-untyped-def]
    def on_duty(role: Role, enterprise_id: str | None) -> Sequence[Person]:
        if role is Role.ENTERPRISE:
            return [p for p in enterprise_people if p.enterprise_id == enterprise_id]
        if role is Role.DUTY and duty is not None:
            return duty
        return [p for p in people if p.role == role.value]

    return on_duty


def texted(found: Sequence[Target]) -> list[str]:
    return [t.recipient for t in found if t.channel is Channel.SMS]


def inboxes(found: Sequence[Target]) -> list[str]:
    return [t.recipient for t in found if t.channel is Channel.INBOX]


RED = (Audience.ENTERPRISE, Audience.DUTY, Audience.REGULATOR, Audience.AREA, Audience.EMERGENCY)
ORANGE = (Audience.ENTERPRISE, Audience.DUTY, Audience.REGULATOR, Audience.AREA)
YELLOW = (Audience.ENTERPRISE, Audience.DUTY)
BLUE = (Audience.ENTERPRISE,)


@pytest.mark.parametrize(
    ("route", "sms", "inbox"),
    [
        (
            RED,
            [CONTACT, "P-D1", "P-D2", "P-R1", "P-A1", "P-E1"],
            ["enterprise:E1", "duty", "emergency", "regulator:fire", "area:A1"],
        ),
        (
            ORANGE,
            [CONTACT, "P-D1", "P-D2", "P-R1", "P-A1"],
            ["enterprise:E1", "duty", "emergency", "regulator:fire", "area:A1"],
        ),
        (YELLOW, [CONTACT, "P-D1", "P-D2"], ["enterprise:E1", "duty", "emergency"]),
        (BLUE, [CONTACT], ["enterprise:E1", "duty", "emergency"]),
    ],
    ids=["red", "orange", "yellow", "blue"],
)
def test_every_level_reaches_the_three_inboxes_and_sms_follow_the_level(
    route: tuple[Audience, ...], sms: list[str], inbox: list[str]
) -> None:
    found = targets(job(route), on_duty_of(EVERYONE), ENTERPRISE)
    assert texted(found) == sms
    assert inboxes(found) == inbox


def test_duty_texts_go_to_whoever_is_on_duty_at_that_moment() -> None:
    found = targets(job(YELLOW), on_duty_of(EVERYONE, duty=[DUTY_B]), ENTERPRISE)
    assert "P-D2" in texted(found) and "P-D1" not in texted(found)


def test_the_enterprise_on_duty_person_is_texted_instead_of_its_contacts() -> None:
    found = targets(job(BLUE), on_duty_of(EVERYONE, [ENT_ON_DUTY]), ENTERPRISE)
    assert texted(found) == ["P-X1"]


def test_without_an_enterprise_record_nor_an_on_duty_person_nobody_of_the_enterprise_is_texted() -> None:
    assert texted(targets(job(BLUE), on_duty_of(EVERYONE), None)) == []


def test_a_person_in_two_audiences_is_texted_once() -> None:
    both = Person(person_id="P-A9", name="双", role=Role.AREA, phone="+8613800000001", area_codes=("A1",))
    found = targets(job((Audience.DUTY, Audience.AREA)), on_duty_of([DUTY_A, both]), ENTERPRISE)
    assert texted(found) == ["P-D1"]


def test_a_data_quality_change_stays_out_of_the_bureau_inbox() -> None:
    assert inbox_audiences(BLUE, data_quality=True) == (Audience.ENTERPRISE, Audience.DUTY)
    assert inbox_audiences(BLUE) == (Audience.ENTERPRISE, Audience.DUTY, Audience.EMERGENCY)


@pytest.mark.parametrize(
    ("role", "scope", "keys"),
    [
        (Role.ENTERPRISE, {"enterprise_id": "E1"}, ["enterprise:E1"]),
        (Role.DUTY, {}, ["duty"]),
        (Role.EMERGENCY, {}, ["emergency"]),
        (Role.REGULATOR, {"department": "fire"}, ["regulator:fire"]),
        (Role.AREA, {"areas": ("A1", "A2")}, ["area:A1", "area:A2"]),
        (Role.ADMIN, {}, []),
    ],
)
def test_a_user_reads_the_inboxes_of_their_role_and_scope(
    role: Role, scope: dict[str, object], keys: list[str]
) -> None:
    assert (
        inbox_keys_of(
            role,
            scope.get("enterprise_id"),  # type: ignore[arg-type]
            scope.get("department"),  # type: ignore[arg-type]
            scope.get("areas", ()),  # type: ignore[arg-type]
        )
        == keys
    )
