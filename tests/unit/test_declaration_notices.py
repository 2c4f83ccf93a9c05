"""Declarations tell people through the delivery path (docs/delivery.md, docs/declarations.md): the sweep's
reminder before a window ends and a regulator's approval or rejection are delivery jobs, sent by the delivery
service once per (job, recipient, channel) like a warning's, with receipts on the declaration."""

from __future__ import annotations

from itertools import count

import pytest

from chalicelib.domain.declarations import DeclarationPolicy, DeclarationStatus
from chalicelib.domain.delivery import JobKind
from chalicelib.domain.levels import Sector
from chalicelib.domain.registry import Contact, Enterprise, Person
from chalicelib.domain.roles import Role
from chalicelib.domain.texts import SMS_MAX_CHARS, SMS_PREFIX
from chalicelib.services.declaration_fakes import FakeDeclarationStore
from chalicelib.services.declarations import DeclarationNoticeJobs, Declarations
from chalicelib.services.delivery_fakes import DeliverAtOnce
from chalicelib.services.fakes import FakeRegistry
from tests.unit.test_declaration_service import REG, T0, Form, H
from tests.unit.test_declarations import ENT, device

CONTACT_PHONE = "+8613800000011"
DUTY = Person(person_id="P-DUTY", name="值守甲", role=Role.DUTY, phone="+8613800000021")
E1 = Enterprise(
    enterprise_id="E1",
    name="津港石化有限公司",
    sector=Sector.HAZCHEM,
    area_codes=("TEDA",),
    contacts=(Contact(name="安全负责人", phone=CONTACT_PHONE),),
)


class World:
    def __init__(self) -> None:
        self.now = T0
        self.store = FakeDeclarationStore()
        self.registry = FakeRegistry(devices=[device("D1"), device("D2")], enterprises=[E1], people=[DUTY])
        self.delivery = DeliverAtOnce(self.registry, people=[DUTY])
        ids = count(1)
        self.service = Declarations(
            self.store,
            self.registry,
            DeclarationNoticeJobs(self.delivery),
            DeclarationPolicy(),
            lambda: self.now,
            new_id=lambda: f"DCL-{next(ids):016x}",
        )

    def inbox(self, key: str) -> list[tuple[str, str, str]]:
        return [(i.kind, i.declaration_id, i.warning_id) for i in self.delivery.inbox.of(key)]


@pytest.fixture
def world() -> World:
    return World()


def test_the_sweep_reminds_the_declaring_enterprise_by_sms_and_inbox_once(world: World) -> None:
    declared = world.service.declare(ENT, Form(ends_at=T0 + 4 * H))
    world.now = T0 + 3.5 * H

    assert world.service.sweep().reminded == [declared.declaration_id]
    world.now += 300
    assert world.service.sweep().reminded == []

    [(phone, text)] = world.delivery.sent
    assert phone == CONTACT_PHONE  # nobody named on duty: the enterprise's contact
    assert text.startswith(SMS_PREFIX + "津港石化设备损坏申报") and len(text) <= SMS_MAX_CHARS
    assert declared.declaration_id in text and "重新申报" in text
    assert world.inbox("enterprise:E1") == [("declaration_reminder", declared.declaration_id, "")]
    assert world.inbox("duty") == []
    [job] = world.delivery.jobs
    assert (job.kind, job.subject) == (JobKind.DECLARATION_REMINDER, f"declaration:{declared.declaration_id}")
    receipts = world.delivery.receipts.of_warning(job.subject)
    assert sorted((r["channel"], r["outcome"]) for r in receipts) == [("inbox", "sent"), ("sms", "sent")]


def test_a_reminder_handed_over_but_not_recorded_is_queued_again_and_sent_once(world: World) -> None:
    declared = world.service.declare(ENT, Form(ends_at=T0 + 4 * H))
    world.now = T0 + 3.5 * H
    world.store.fail("save")  # the job is queued, then recording `reminded_at` fails: the next round reminds again

    assert world.service.sweep().failed == [declared.declaration_id]
    assert world.service.sweep().reminded == [declared.declaration_id]
    assert len(world.delivery.jobs) == 2 and len(world.delivery.sent) == 1  # one id per declaration


def test_an_approval_tells_the_enterprise_by_sms_and_inbox_and_the_duty_centre_by_inbox(world: World) -> None:
    declared = world.service.declare(ENT, Form())
    world.now += 600
    world.service.approve(REG, declared.declaration_id, "同意")

    [(phone, text)] = world.delivery.sent
    assert phone == CONTACT_PHONE and "申报已核准" in text and len(text) <= SMS_MAX_CHARS
    assert world.inbox("enterprise:E1") == [("declaration_decision", declared.declaration_id, "")]
    assert world.inbox("duty") == [("declaration_decision", declared.declaration_id, "")]
    assert world.delivery.jobs[0].job_id == f"declaration_decision:{declared.declaration_id}:approved"


def test_a_rejection_names_its_reason_within_one_segment(world: World) -> None:
    declared = world.service.declare(ENT, Form())
    reason = "未附检修方案和审批文件，且申报时段与生产记录不符，请补充材料"
    world.service.reject(REG, declared.declaration_id, reason)

    [(_, text)] = world.delivery.sent
    assert "申报被驳回:未附检修" in text and len(text) <= SMS_MAX_CHARS
    assert world.store.get(declared.declaration_id).status is DeclarationStatus.REJECTED  # type: ignore[union-attr]


def test_a_decision_stands_when_its_notice_cannot_be_queued(world: World) -> None:
    declared = world.service.declare(ENT, Form())

    def refuse(_jobs: object) -> None:
        raise ConnectionError("queue down")

    world.delivery.enqueue = refuse  # type: ignore[method-assign]
    approved = world.service.approve(REG, declared.declaration_id)

    assert approved.status is DeclarationStatus.APPROVED
    assert world.store.get(declared.declaration_id).status is DeclarationStatus.APPROVED  # type: ignore[union-attr]
