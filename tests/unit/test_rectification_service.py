"""通报 and rectification (`services/rectification.py`) over fakes: a published report tells each unit its own
result (one delivery job per enterprise, department, area, and the centre), once per report version; items
issued once; who answers, accepts and returns what; every step chained; the next evaluation counts the overdue
items."""

from __future__ import annotations

import json
from datetime import date

import pytest

from chalicelib.domain.audit import verify_chain
from chalicelib.domain.delivery import DeliveryJob, JobKind
from chalicelib.domain.errors import DomainError
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.evaluation.policy import EvaluationPolicy, RectificationPolicy
from chalicelib.domain.evaluation.rectification import RectificationStatus
from chalicelib.domain.evaluation.report import build_report
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import Audience
from chalicelib.services.cursors import examined_per_page
from chalicelib.services.delivery_fakes import MemoryJobs
from chalicelib.services.evaluation import EvaluationService
from chalicelib.services.evaluation_fakes import (
    FakeDeviceDayLedger,
    FakeEvaluationFacts,
    FakeReportArchive,
    SummaryRenderer,
)
from chalicelib.services.fakes import FakeEvidence
from chalicelib.services.ports import Fleet, RenderedReport, ReportEntry
from chalicelib.services.rectification import Rectifications
from chalicelib.services.rectification_fakes import FakeRectificationStore
from tests.unit.test_evaluation_report import AREAS, DAYS, MARCH, PROFILES, WARNINGS
from tests.unit.test_rectification import AREA_S2, AREA_Z1, DUTY, ENT, FIRE_REG, NOW, OTHER_ENT, REG

REPORT_ID = "month-2025-03"
POLICY = EvaluationPolicy(rectification=RectificationPolicy(below_score=95))  # E1 (73: 1 item), E3 (92: 2)
ADMIN = Actor(user_id="admin", role=Role.ADMIN)
ENT3 = Actor(user_id="ent-e3", role=Role.ENTERPRISE, enterprise_id="E3")


class World:
    def __init__(self) -> None:
        self.now = NOW
        self.archive = FakeReportArchive()
        self.store = FakeRectificationStore()
        self.jobs = MemoryJobs()
        self.evidence = FakeEvidence()
        self.service = Rectifications(
            self.archive, self.store, self.jobs, POLICY, lambda: self.now, self.evidence, new_key=lambda: "k1"
        )
        self.store_report()

    def store_report(self) -> ReportEntry:
        """A run of March (each store is a new version of the report)."""
        report = build_report(
            MARCH, PeriodKind.MONTH, PROFILES, WARNINGS, DAYS, {}, POLICY, self.now, area_names=AREAS
        )
        entry = ReportEntry(REPORT_ID, "month", "2025-03", MARCH.start, MARCH.end, self.now, "duty-01", {}, {}, {})
        return self.archive.store(entry, RenderedReport(report.model_dump_json().encode(), {}, {}))


@pytest.fixture
def world() -> World:
    return World()


def test_publishing_tells_each_unit_its_own_result(world: World) -> None:
    published = world.service.publish(DUTY, REPORT_ID)
    assert not published.already
    publication = published.publication
    assert (publication.version, publication.versions, publication.published_by) == ("1", ("1",), "duty-01")
    assert (publication.rectifications, publication.enterprises_rectifying) == (3, 2)
    jobs = world.jobs.jobs
    assert len({job.job_id for job in jobs}) == len(jobs) == publication.jobs == 3 + 2 + 3 + 1
    assert {job.kind for job in jobs} == {JobKind.EVALUATION_PUBLISHED}
    assert {job.subject for job in jobs} == {f"evaluation:{REPORT_ID}"}
    results = {job.enterprise_id: job for job in jobs if job.enterprise_id}
    assert set(results) == {"E1", "E2", "E3"}
    e1 = results["E1"]
    assert (e1.sms_audiences, e1.inbox_audiences) == ((Audience.ENTERPRISE,), (Audience.ENTERPRISE,))
    assert e1.text.render() == "【滨海大应急】化工一厂2025年3月评估得分73(橙色),全区第3/3名。须整改1项,05-03前答复"
    assert results["E2"].text.render() == "【滨海大应急】化工二厂2025年3月评估得分100(蓝色),全区第1/3名。详见平台"
    assert "在线率未达标" in results["E3"].detail and "预警处置超时" in results["E3"].detail
    summaries = {(job.inbox_audiences, job.regulators, job.areas): job for job in jobs if not job.enterprise_id}
    assert all(not job.sms_audiences for job in summaries.values())  # the staff's summaries: inbox only
    fire = summaries[((Audience.REGULATOR,), ("fire_rescue",), ())]
    assert (
        fire.text.render() == "【滨海大应急】区消防救援支队2025年3月评估:1家企业,红0橙0黄0蓝1,须整改1家。详见平台"
    )
    assert "消防三号(92分)" in fire.detail
    z1 = summaries[((Audience.AREA,), (), ("Z1",))]
    assert "开发区2025年3月评估:1家企业,红0橙1黄0蓝0,须整改1家" in z1.text.render()
    centre = summaries[((Audience.DUTY, Audience.EMERGENCY), (), ())]
    assert "全区2025年3月评估:3家企业,红0橙1黄0蓝2,须整改2家" in centre.text.render()
    log = world.store.publication_log(REPORT_ID)
    assert [e.type for e in log.events] == ["evaluation_published"] and verify_chain(log.events, log.head).ok


def test_the_same_version_is_published_once(world: World) -> None:
    first = world.service.publish(DUTY, REPORT_ID)
    jobs, saves = len(world.jobs.jobs), world.store.calls["save"]
    again = world.service.publish(ADMIN, REPORT_ID)
    assert again.already and again.publication == first.publication
    assert (len(world.jobs.jobs), world.store.calls["save"]) == (jobs, saves)  # nobody told twice, nothing written


def test_a_new_version_tells_again_and_keeps_the_items(world: World) -> None:
    first = world.service.publish(DUTY, REPORT_ID)
    (e1_item,) = world.service.list(ENT).items
    world.service.answer(ENT, e1_item.rectification_id, "已整改")
    world.service.accept(DUTY, e1_item.rectification_id)
    items = {i.rectification_id: i for i in world.service.list(DUTY).items}
    world.now += 86400
    world.store_report()  # re-run: version 2
    second = world.service.publish(DUTY, REPORT_ID)
    assert not second.already and second.publication.versions == ("1", "2")
    published = [job for job in world.jobs.jobs if job.kind is JobKind.EVALUATION_PUBLISHED]
    ids_first = {job.job_id for job in published[: first.publication.jobs]}
    ids_second = {job.job_id for job in published[first.publication.jobs :]}
    assert len(ids_second) == second.publication.jobs and not ids_first & ids_second
    assert {i.rectification_id: i for i in world.service.list(DUTY).items} == items  # not issued again
    e1_again = next(job for job in published[first.publication.jobs :] if job.enterprise_id == "E1")
    assert e1_again.text.render().endswith("详见平台")  # its item was accepted meanwhile: nothing asked again
    log = world.store.publication_log(REPORT_ID)
    assert [e.type for e in log.events] == ["evaluation_published"] * 2 and verify_chain(log.events, log.head).ok


@pytest.mark.parametrize("actor", [ENT, REG, AREA_Z1, Actor(user_id="emg", role=Role.EMERGENCY)])
def test_only_the_duty_centre_and_admins_publish(world: World, actor: Actor) -> None:
    with pytest.raises(DomainError) as refused:
        world.service.publish(actor, REPORT_ID)
    assert (refused.value.code, refused.value.http_status) == ("role_not_permitted", 403)
    assert world.jobs.jobs == []


@pytest.mark.parametrize("report_id", ["month-2025-04", "not-a-report"])
def test_an_unknown_report_is_not_found(world: World, report_id: str) -> None:
    with pytest.raises(DomainError) as missing:
        world.service.publish(DUTY, report_id)
    assert (missing.value.code, missing.value.http_status) == ("evaluation_not_found", 404)


@pytest.mark.parametrize(
    ("actor", "enterprises"),
    [
        (ENT, ["E1"]),
        (ENT3, ["E3", "E3"]),
        (OTHER_ENT, []),
        (REG, ["E1"]),
        (FIRE_REG, ["E3", "E3"]),
        (AREA_Z1, ["E1"]),
        (AREA_S2, ["E3", "E3"]),
        (DUTY, ["E1", "E3", "E3"]),
    ],
)
def test_listings_are_scoped(world: World, actor: Actor, enterprises: list[str]) -> None:
    world.service.publish(DUTY, REPORT_ID)
    assert sorted(i.enterprise_id for i in world.service.list(actor).items) == enterprises
    assert world.service.list(REG, enterprise_id="E3").items == []  # another sector's enterprise: nothing
    assert [i.enterprise_id for i in world.service.list(ENT, enterprise_id="E3").items] == ["E1"]  # always its own


def test_answer_accept_return_with_roles_scopes_and_the_chain(world: World) -> None:
    world.service.publish(DUTY, REPORT_ID)
    online, missed = sorted(world.service.list(ENT3).items, key=lambda i: i.problem.value)
    ticket = world.service.evidence_upload(ENT3, online.rectification_id, "image/jpeg")
    assert ticket.key == f"evidence/E3/rectification/{online.rectification_id}/k1.jpg"

    def refused(call: object) -> tuple[str, int]:
        with pytest.raises(DomainError) as error:
            call()  # type: ignore[operator]
        return error.value.code, error.value.http_status

    rid = online.rectification_id
    assert refused(lambda: world.service.answer(ENT, rid, "已整改")) == ("rectification_not_found", 404)
    assert refused(lambda: world.service.answer(FIRE_REG, rid, "已整改")) == ("role_not_permitted", 403)
    answered = world.service.answer(ENT3, rid, "已修复网络", [ticket.key])
    assert (answered.status, answered.version) == (RectificationStatus.ANSWERED, 2)
    assert refused(lambda: world.service.accept(ENT3, rid)) == ("role_not_permitted", 403)
    assert refused(lambda: world.service.accept(REG, rid)) == ("rectification_not_found", 404)  # not its sector
    assert refused(lambda: world.service.return_(FIRE_REG, rid, "")) == ("return_reason_required", 422)
    returned = world.service.return_(FIRE_REG, rid, "请提供在线率恢复截图")
    assert returned.status is RectificationStatus.RETURNED
    world.service.answer(ENT3, rid, "已补充截图")
    accepted = world.service.accept(DUTY, rid, "同意")
    assert (accepted.status, accepted.reviewed_by) == (RectificationStatus.ACCEPTED, "duty-01")
    assert world.service.list(ENT3, statuses=[RectificationStatus.ACCEPTED]).items == [
        world.service.get(ENT3, rid)
    ]
    assert [
        i.rectification_id for i in world.service.list(FIRE_REG, statuses=[RectificationStatus.OPEN]).items
    ] == [missed.rectification_id]

    assert refused(lambda: world.service.audit(ENT3, rid)) == ("role_not_permitted", 403)
    log = world.service.audit(FIRE_REG, rid)
    assert [e.type for e in log.events] == [
        "rectification_issued",
        "rectification_answered",
        "rectification_returned",
        "rectification_answered",
        "rectification_accepted",
    ]
    assert verify_chain(log.events, log.head).ok
    assert log.events[2].reason == "请提供在线率恢复截图" and log.events[2].actor == "reg-fire"


def test_overdue_filter(world: World) -> None:
    world.service.publish(DUTY, REPORT_ID)
    assert world.service.list(DUTY, overdue=True).items == []
    world.now = world.service.list(DUTY).items[0].deadline + 1
    assert len(world.service.list(DUTY, overdue=True).items) == 3
    assert world.service.list(DUTY, overdue=False).items == []


def test_the_next_evaluation_counts_the_items_overdue_at_its_end(world: World) -> None:
    world.service.publish(DUTY, REPORT_ID)  # deadline 2025-05-03 00:00 local: overdue in May's report
    e3 = world.service.list(ENT3).items[0]
    world.now = e3.deadline - 3600
    world.service.answer(ENT3, e3.rectification_id, "已整改")
    world.service.accept(FIRE_REG, e3.rectification_id)  # accepted in time: not overdue

    def overdue_in(period: periods.Period) -> dict[str, int]:
        archive = FakeReportArchive()
        evaluation = EvaluationService(
            FakeEvaluationFacts(Fleet(profiles=PROFILES, devices={})),
            FakeDeviceDayLedger(),
            SummaryRenderer(),
            archive,
            POLICY,
            lambda: period.end + 3600,
            rectifications=world.store,
        )
        entry = evaluation.run(PeriodKind.MONTH, period, "duty-01")
        rows = json.loads(archive.document(entry))["enterprises"]
        return {row["enterprise_id"]: row["overdue_rectifications"] for row in rows}

    assert overdue_in(periods.month(2025, 4)) == {"E1": 0, "E2": 0, "E3": 0}  # before the deadline
    assert overdue_in(periods.month(2025, 5)) == {"E1": 1, "E2": 0, "E3": 1}


def test_a_job_names_its_enterprise_unless_it_is_a_staff_summary() -> None:
    from chalicelib.domain.delivery import evaluation_summary_job
    from chalicelib.domain.texts import evaluation_summary_text

    text = evaluation_summary_text("全区", "2025年3月", 3, {"red": 1}, 1)
    summary = evaluation_summary_job(REPORT_ID, "1", (Audience.DUTY,), NOW, text, "")
    assert summary.enterprise_id == "" and summary.subject == f"evaluation:{REPORT_ID}"
    with pytest.raises(ValueError, match="names it"):
        DeliveryJob.model_validate({**summary.model_dump(), "inbox_audiences": [Audience.ENTERPRISE]})
    with pytest.raises(ValueError, match="exactly one"):
        DeliveryJob.model_validate({**summary.model_dump(), "enterprise_id": "E1", "warning_id": "W1"})


def test_each_step_tells_the_other_side(world: World) -> None:
    world.service.publish(DUTY, REPORT_ID)
    item = world.service.list(ENT3).items[0]
    rid = item.rectification_id

    def notices() -> list[DeliveryJob]:
        return [job for job in world.jobs.jobs if job.kind is JobKind.RECTIFICATION_NOTICE]

    world.service.answer(ENT3, rid, "已修复")
    world.service.return_(FIRE_REG, rid, "请补充现场照片")
    world.service.answer(ENT3, rid, "已补充")
    world.service.accept(FIRE_REG, rid)
    answered, returned, again, accepted = notices()
    assert (answered.inbox_audiences, answered.regulators, answered.sms_audiences) == (
        (Audience.REGULATOR, Audience.DUTY),
        ("fire_rescue",),
        (),
    )
    assert answered.text.render() == f"【滨海大应急】消防三号已答复整改事项:在线率未达标,请验收。编号{rid}"
    assert (returned.sms_audiences, returned.inbox_audiences) == ((Audience.ENTERPRISE,), (Audience.ENTERPRISE,))
    assert (
        returned.text.render()
        == f"【滨海大应急】消防三号整改答复被退回:请补充现场照片。请于05-03前重新答复。编号{rid}"
    )
    assert "退回理由:请补充现场照片" in returned.detail
    assert again.job_id != answered.job_id  # a second answer is told again
    assert (accepted.sms_audiences, accepted.inbox_audiences) == ((), (Audience.ENTERPRISE,))
    assert {job.subject for job in notices()} == {f"evaluation:{REPORT_ID}"}


def test_a_notice_that_cannot_be_queued_does_not_undo_the_step(world: World) -> None:
    world.service.publish(DUTY, REPORT_ID)
    rid = world.service.list(ENT).items[0].rectification_id

    class Refusing:
        def enqueue(self, jobs: object) -> None:
            raise RuntimeError("queue down")

    world.service._jobs = Refusing()  # type: ignore[assignment]
    assert world.service.answer(ENT, rid, "已整改").status is RectificationStatus.ANSWERED
    assert world.service.get(ENT, rid).status is RectificationStatus.ANSWERED


def test_a_custom_window_is_named_by_its_local_days_in_the_texts() -> None:
    from chalicelib.domain.evaluation.periods import local_midnight
    from chalicelib.services.rectification import sms_period

    march_1 = local_midnight(date(2025, 3, 1))
    assert sms_period(periods.custom(march_1 + 8 * 3600, march_1 + 9 * 3600)) == "03-01"
    assert sms_period(periods.custom(march_1, march_1 + 2 * 86400)) == "03-01至03-02"  # the end is exclusive
    assert sms_period(MARCH) == "2025年3月"


def test_a_page_reads_about_its_size_whatever_the_accepted_history(world: World) -> None:
    world.service.publish(DUTY, REPORT_ID)
    (live,) = world.service.list(ENT).items
    for index in range(500):  # E1's history: older, accepted
        world.store.stored[f"RCT-old{index:04d}"] = live.model_copy(
            update={
                "rectification_id": f"RCT-old{index:04d}",
                "status": RectificationStatus.ACCEPTED,
                "created_at": live.created_at - 1 - index,
                "deadline": live.deadline - 86_400 - index,
            }
        )
    ids = lambda found: [i.rectification_id for i in found.items]  # noqa: E731
    for actor in (ENT, REG, AREA_Z1):
        world.store.read = 0
        page = world.service.list(actor, statuses=[RectificationStatus.OPEN], limit=10)
        assert (ids(page), page.next_cursor, world.store.read) == ([live.rectification_id], None, 1), actor
    world.store.read = 0
    assert len(world.service.list(DUTY, statuses=[RectificationStatus.OPEN], limit=10).items) == 3
    assert world.store.read == 3

    world.store.read = 0
    page = world.service.list(ENT, limit=10)  # the newest first
    assert ids(page) == [live.rectification_id, *(f"RCT-old{index:04d}" for index in range(9))]
    assert page.next_cursor and world.store.read == 11

    seen: list[str] = []
    cursor: str | None = None
    while True:  # every page of the accepted ones, by deadline, each once
        page = world.service.list(REG, statuses=[RectificationStatus.ACCEPTED], limit=64, cursor=cursor)
        seen += ids(page)
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [f"RCT-old{index:04d}" for index in range(499, -1, -1)]

    world.store.read = 0
    other = world.service.list(REG, enterprise_id="E3", limit=10)  # another sector's enterprise: a bounded page
    assert other.items == [] and world.store.read <= examined_per_page(10)
    world.store.read = 0
    overdue = world.service.list(DUTY, overdue=True, limit=10)  # no index serves it: at most the budget a page
    assert overdue.items == [] and overdue.next_cursor and world.store.read == examined_per_page(10)


def test_a_damaged_rectification_cursor_is_refused(world: World) -> None:
    with pytest.raises(DomainError) as refused:
        world.service.list(DUTY, cursor="eyJ3YXJuaW5nX2lkIjoieCJ9")
    assert (refused.value.code, refused.value.http_status, refused.value.message_zh) == (
        "invalid_cursor",
        422,
        "分页游标无效",
    )
