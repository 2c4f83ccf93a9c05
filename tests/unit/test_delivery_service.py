"""`DeliveryService`: each (job, recipient, channel) once, under retries, duplicates and racing consumers."""

from __future__ import annotations

import pytest

from chalicelib.domain.delivery import DeliveryJob, JobKind, contact_key
from chalicelib.domain.policy import Audience
from chalicelib.domain.registry import Contact, Enterprise, Person
from chalicelib.domain.roles import Role
from chalicelib.domain.sectors import Sector
from chalicelib.domain.texts import reminder_text
from chalicelib.services.delivery import DeliveryRetryError, DeliveryService, MalformedJobError
from chalicelib.services.delivery_fakes import (
    MemoryInbox,
    MemoryLedger,
    MemoryReceipts,
    ScriptedSms,
    StaticDirectory,
    StaticRosters,
)
from chalicelib.services.ports import (
    DeliveryKey,
    DeliveryOutcome,
    SmsRejected,
    SmsRejectReason,
    SmsUnavailable,
    SmsUnavailableReason,
)

DUTY = Person(person_id="P-D1", name="值守甲", role=Role.DUTY, phone="+8613800000001")
DUTY_PHONE = DUTY.phone
CONTACT_PHONE = "+8613800000009"
ENTERPRISE = Enterprise(
    enterprise_id="E1",
    name="渤化化工有限公司",
    sector=Sector.HAZCHEM,
    contacts=(Contact(name="安全负责人", phone=CONTACT_PHONE),),
)
TEXT = reminder_text(4, "WABCDEFGH", ENTERPRISE.name, 1000.0)
JOB = DeliveryJob(
    job_id="reminder:WABCDEFGH:1000",
    kind=JobKind.REMINDER,
    warning_id="WABCDEFGH",
    enterprise_id="E1",
    level=4,
    at=1000.0,
    template_id=TEXT.template_id,
    params=dict(TEXT.params),
    sms_audiences=(Audience.ENTERPRISE, Audience.DUTY),
    inbox_audiences=(Audience.ENTERPRISE, Audience.DUTY),
)


class World:
    def __init__(self, people: tuple[Person, ...] = (DUTY,)) -> None:
        self.ledger = MemoryLedger()
        self.receipts = MemoryReceipts()
        self.inbox = MemoryInbox()
        self.sms = ScriptedSms()
        self.rosters = StaticRosters(people)
        self.directory = StaticDirectory({"E1": ENTERPRISE})
        self.now = 2000.0

    def service(self, owner: str = "c1") -> DeliveryService:
        return DeliveryService(
            self.ledger,
            self.receipts,
            self.rosters,
            self.directory,
            self.sms,
            self.inbox,
            clock=lambda: self.now,
            lease_s=60,
            owner=owner,
        )

    def outcomes(self) -> dict[tuple[str, str], tuple[str, str, int]]:
        return {
            (row["channel"], row["recipient"]): (row["outcome"], row["reason"], row["attempts"])
            for row in self.receipts.of_warning("WABCDEFGH")
        }


def test_a_job_texts_each_person_once_and_fills_each_inbox_with_receipts() -> None:
    world = World()
    report = world.service().deliver(JOB)

    assert sorted(m.phone for m in world.sms.sent) == [DUTY_PHONE, CONTACT_PHONE]
    assert world.sms.sent[0].text.startswith("【滨海大应急】红色预警尚未签收")
    assert [i.inbox for i in world.inbox.items.values()] == ["enterprise:E1", "duty"]
    assert (report.sent, report.failed, report.retry) == (4, 0, [])
    sent = world.outcomes()[("sms", "P-D1")]
    assert sent == ("sent", "", 1)
    assert world.receipts.of_warning("WABCDEFGH")[0]["provider"] in {"inbox", "fake"}


def test_a_redelivered_or_duplicated_job_texts_nobody_again() -> None:
    world = World()
    world.service("c1").deliver(JOB)
    world.service("c1").deliver(JOB)  # the same message again
    world.service("c2").deliver(JOB)  # enqueued twice, taken by another consumer
    assert world.sms.calls == 2
    assert len(world.inbox.items) == 2


def test_a_racing_consumer_holding_a_delivery_makes_the_job_retry_without_sending() -> None:
    world = World()
    world.ledger.claim(_key("sms", "P-D1"), "c2", world.now, 60)  # c2 is sending right now
    with pytest.raises(DeliveryRetryError):
        world.service("c1").deliver(JOB)
    assert [m.phone for m in world.sms.sent] == [CONTACT_PHONE]
    world.ledger.settle(_key("sms", "P-D1"), "c2", DeliveryOutcome.SENT, world.now)
    world.service("c1").deliver(JOB)
    assert world.sms.calls == 1


def test_a_consumer_that_died_holding_a_claim_is_taken_over_after_the_lease() -> None:
    world = World()
    world.ledger.claim(_key("sms", "P-D1"), "dead", world.now, 60)
    world.now += 61
    world.service("c1").deliver(JOB)
    assert sorted(m.phone for m in world.sms.sent) == [DUTY_PHONE, CONTACT_PHONE]


def test_an_sms_that_may_have_gone_out_is_settled_unknown_and_never_sent_again() -> None:
    world = World()
    world.sms.script[DUTY_PHONE] = [SmsUnavailable(SmsUnavailableReason.TIMEOUT, provider="fake", maybe_sent=True)]
    report = world.service().deliver(JOB)
    world.service().deliver(JOB)
    assert report.unknown == 1
    assert world.outcomes()[("sms", "P-D1")] == ("unknown", "timeout", 1)
    assert world.sms.calls == 2  # the contact once, the duty officer once (the timeout)


def test_an_unavailable_provider_fails_the_job_for_a_retry_that_sends_only_what_is_missing() -> None:
    world = World()
    world.sms.script[DUTY_PHONE] = [SmsUnavailable(SmsUnavailableReason.THROTTLED, provider="fake")]
    with pytest.raises(DeliveryRetryError):
        world.service().deliver(JOB)
    assert world.outcomes()[("sms", "P-D1")] == ("retrying", "throttled", 1)
    world.service().deliver(JOB)
    assert sorted(m.phone for m in world.sms.sent) == [DUTY_PHONE, CONTACT_PHONE]
    assert world.outcomes()[("sms", "P-D1")] == ("sent", "", 2)


def test_a_rejected_sms_is_a_recorded_failure_with_its_reason_and_not_retried() -> None:
    world = World()
    world.sms.script[DUTY_PHONE] = [SmsRejected(SmsRejectReason.INVALID_PHONE, provider="fake")]
    report = world.service().deliver(JOB)
    world.service().deliver(JOB)
    assert report.failed == 1
    assert world.outcomes()[("sms", "P-D1")] == ("failed", "invalid_phone", 1)
    assert world.sms.calls == 2


def test_a_person_without_a_phone_is_a_recorded_failure_not_a_crash() -> None:
    world = World()
    world.directory.enterprises["E1"] = ENTERPRISE.model_copy(
        update={"contacts": (Contact.model_construct(name="无号码", phone="", role="safety_manager"),)}
    )
    report = world.service().deliver(JOB)
    assert report.failed == 1
    assert world.outcomes()[("sms", contact_key("E1", ""))] == ("failed", "no_phone", 1)


def test_an_inbox_write_that_failed_is_retried_and_written_once() -> None:
    world = World()
    world.inbox.fail = 1
    with pytest.raises(DeliveryRetryError):
        world.service().deliver(JOB)
    world.service().deliver(JOB)
    assert len(world.inbox.items) == 2 and world.sms.calls == 2


def test_a_message_that_is_no_job_is_malformed() -> None:
    with pytest.raises(MalformedJobError):
        World().service().handle_body('{"kind": "nonsense"}')


def test_reminders_follow_the_enterprise_on_duty_person_at_the_job_moment() -> None:
    world = World()
    on_duty = Person(
        person_id="P-X1", name="值班", role=Role.ENTERPRISE, phone="+8613800000008", enterprise_id="E1"
    )
    world.rosters.shifts[(Role.ENTERPRISE, "E1")] = [on_duty]
    world.service().deliver(JOB)
    assert sorted(m.phone for m in world.sms.sent) == [DUTY_PHONE, on_duty.phone]
    assert (Role.ENTERPRISE, 1000.0, "E1") in world.rosters.asked


def _key(channel: str, recipient: str) -> DeliveryKey:
    return DeliveryKey.of_job(JOB.job_id, channel, recipient)
