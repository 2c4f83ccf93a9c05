"""Rectification items (domain/evaluation/rectification.py): which enterprises rectify, the items derived from
their figures (table-driven, titles by hand), the lifecycle, overdue, scopes; and the report's overdue column."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import openpyxl
import pytest

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.errors import DomainError
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.evaluation.policy import EvaluationPolicy, RectificationPolicy
from chalicelib.domain.evaluation.rectification import (
    Problem,
    RectificationItem,
    RectificationStatus,
    accept,
    answer,
    can_see,
    deadline_after,
    evidence_prefix,
    is_overdue,
    issue,
    needs_rectification,
    overdue_counts,
    problems_of,
    rectification_id,
    return_,
)
from chalicelib.domain.evaluation.report import EnterpriseRow, EvaluationReport, build_report
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.sectors import Sector
from chalicelib.reports.html import render_html
from chalicelib.reports.xlsx import render_xlsx
from tests.unit.test_evaluation_report import AREAS, DAYS, MARCH, PROFILES, WARNINGS

POLICY = EvaluationPolicy()
DUTY = Actor(user_id="duty-01", role=Role.DUTY)
ENT = Actor(user_id="ent-e1", role=Role.ENTERPRISE, enterprise_id="E1")
OTHER_ENT = Actor(user_id="ent-e2", role=Role.ENTERPRISE, enterprise_id="E2")
REG = Actor(user_id="reg", role=Role.REGULATOR, sectors=(Sector.HAZCHEM,), department="emergency_bureau")
FIRE_REG = Actor(user_id="reg-fire", role=Role.REGULATOR, sectors=(Sector.FIRE,), department="fire_rescue")
AREA_Z1 = Actor(user_id="area-z1", role=Role.AREA, area_codes=("Z1",))
AREA_S2 = Actor(user_id="area-s2", role=Role.AREA, area_codes=("S2",))
NOW = datetime(2025, 4, 2, 10, 0, tzinfo=SHANGHAI).timestamp()


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return build_report(MARCH, PeriodKind.MONTH, PROFILES, WARNINGS, DAYS, {}, POLICY, 1.7e9, area_names=AREAS)


def row_with(report: EvaluationReport, band: str = "orange", score: float = 73.0, **figures: Any) -> EnterpriseRow:
    """E1's row (orange, 73; online 100 %, nothing late, no closures) with other figures."""
    row = report.row("E1")
    assert row is not None
    return row.model_copy(
        update={
            "card": row.card.model_copy(update={"band": band, "score": score}),
            "figures": row.figures.model_copy(update=figures),
        }
    )


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ({}, [(Problem.LOW_SCORE, "安全状态得分73分（橙色）")]),
        ({"online": 0.985}, [(Problem.LOW_ONLINE, "在线率98.50%，低于99.5%")]),
        ({"online": 0.995}, [(Problem.LOW_SCORE, "安全状态得分73分（橙色）")]),  # at the target: no problem
        ({"online": None}, [(Problem.LOW_SCORE, "安全状态得分73分（橙色）")]),  # no data is no problem
        ({"undeclared_outage_h": 2.5}, [(Problem.UNDECLARED_OUTAGE, "未报备离线2.5小时")]),
        ({"missed_deadlines": 3}, [(Problem.MISSED_DEADLINES, "预警签收、核实反馈或消警超时3次")]),
        ({"false_alarm": 0.4}, [(Problem.HIGH_FALSE_ALARM, "误报率40.0%，高于30.0%")]),
        ({"false_alarm": 0.3}, [(Problem.LOW_SCORE, "安全状态得分73分（橙色）")]),  # at the maximum: fine
        ({"disposal": 0.85}, [(Problem.LOW_DISPOSAL, "处置率85.0%，低于90.0%")]),
        ({"disposal": 0.9}, [(Problem.LOW_SCORE, "安全状态得分73分（橙色）")]),
        (
            {"online": 0.9, "missed_deadlines": 1, "false_alarm": 0.5},
            [
                (Problem.LOW_ONLINE, "在线率90.00%，低于99.5%"),
                (Problem.MISSED_DEADLINES, "预警签收、核实反馈或消警超时1次"),
                (Problem.HIGH_FALSE_ALARM, "误报率50.0%，高于30.0%"),
            ],
        ),
    ],
)
def test_the_problems_come_from_the_figures(
    report: EvaluationReport, figures: dict[str, Any], expected: list[tuple[Problem, str]]
) -> None:
    found = problems_of(row_with(report, **figures), POLICY)
    assert [(problem, title) for problem, title, _ in found] == expected
    assert all(requirement for _, _, requirement in found)


@pytest.mark.parametrize(
    ("band", "score", "rules", "rectifies"),
    [
        ("red", 40.0, RectificationPolicy(), True),
        ("orange", 73.0, RectificationPolicy(), True),
        ("yellow", 78.0, RectificationPolicy(), False),
        ("yellow", 78.0, RectificationPolicy(below_score=80), True),
        ("yellow", 80.0, RectificationPolicy(below_score=80), False),
        ("orange", 73.0, RectificationPolicy(bands=("red",)), False),
    ],
)
def test_who_rectifies_is_the_policy_s_bands_or_score(
    report: EvaluationReport, band: str, score: float, rules: RectificationPolicy, rectifies: bool
) -> None:
    assert needs_rectification(row_with(report, band=band, score=score), rules) is rectifies


def test_a_published_report_issues_one_item_per_problem_below_the_threshold(report: EvaluationReport) -> None:
    policy = EvaluationPolicy(rectification=RectificationPolicy(below_score=95))  # E1 (73) and E3 (92)
    items = issue(report, "month-2025-03", policy, DUTY, NOW)
    assert [(i.enterprise_id, i.problem) for i in items] == [
        ("E3", Problem.LOW_ONLINE),  # 99 %
        ("E3", Problem.MISSED_DEADLINES),  # the missed 签收
        ("E1", Problem.LOW_SCORE),
    ]
    e3 = items[0]
    assert (e3.sector, e3.area_codes, e3.period_label, e3.band, e3.score) == (
        Sector.FIRE,
        ("S2",),
        "2025-03",
        "blue",
        92,
    )
    assert {i.deadline for i in items} == {datetime(2025, 5, 3, tzinfo=SHANGHAI).timestamp()}
    assert all(i.status is RectificationStatus.OPEN and i.issued_by == "duty-01" for i in items)
    again = issue(report, "month-2025-03", policy, DUTY, NOW + 3600)
    assert [i.rectification_id for i in again] == [i.rectification_id for i in items]  # deterministic ids


def test_ids_are_deterministic_and_distinct() -> None:
    one = rectification_id("month-2025-03", "E1", Problem.LOW_ONLINE)
    assert one == rectification_id("month-2025-03", "E1", Problem.LOW_ONLINE)
    assert len({one, rectification_id("month-2025-04", "E1", Problem.LOW_ONLINE)}) == 2
    assert len({one, rectification_id("month-2025-03", "E2", Problem.LOW_ONLINE)}) == 2
    assert one.startswith("RCT-") and len(one) == 20


def test_the_deadline_is_the_end_of_the_local_day_days_after_publishing() -> None:
    assert deadline_after(NOW, 30) == datetime(2025, 5, 3, tzinfo=SHANGHAI).timestamp()
    late_evening = datetime(2025, 4, 2, 23, 59, tzinfo=SHANGHAI).timestamp()
    assert deadline_after(late_evening, 1) == datetime(2025, 4, 4, tzinfo=SHANGHAI).timestamp()


@pytest.fixture
def item(report: EvaluationReport) -> RectificationItem:
    return issue(report, "month-2025-03", POLICY, DUTY, NOW)[0]  # E1's


def test_answer_accept(item: RectificationItem) -> None:
    key = f"{evidence_prefix(item)}photo.jpg"
    answered = answer(item, ENT, NOW + 60, " 已更换液位计 ", [key])
    assert (answered.status, answered.answer_note, answered.evidence_keys, answered.answers) == (
        RectificationStatus.ANSWERED,
        "已更换液位计",
        (key,),
        1,
    )
    with pytest.raises(DomainError) as again:
        answer(answered, ENT, NOW + 61, "再次答复")
    assert (again.value.code, again.value.http_status) == ("rectification_not_answerable", 409)
    accepted = accept(answered, REG, NOW + 120)
    assert (accepted.status, accepted.reviewed_by, accepted.accepted_at) == (
        RectificationStatus.ACCEPTED,
        "reg",
        NOW + 120,
    )
    with pytest.raises(DomainError) as twice:
        accept(accepted, REG, NOW + 121)
    assert twice.value.code == "rectification_not_answered"


def test_a_return_asks_for_another_answer(item: RectificationItem) -> None:
    with pytest.raises(DomainError) as early:
        return_(item, REG, NOW, "材料不全")
    assert early.value.code == "rectification_not_answered"
    answered = answer(item, ENT, NOW + 60, "已整改")
    with pytest.raises(DomainError) as no_reason:
        return_(answered, REG, NOW + 90, "  ")
    assert (no_reason.value.code, no_reason.value.http_status) == ("return_reason_required", 422)
    returned = return_(answered, REG, NOW + 90, "请补充现场照片")
    assert (returned.status, returned.return_reason) == (RectificationStatus.RETURNED, "请补充现场照片")
    again = answer(returned, ENT, NOW + 120, "已补充")
    assert (again.status, again.answers) == (RectificationStatus.ANSWERED, 2)
    assert accept(again, DUTY, NOW + 150).return_reason is None


@pytest.mark.parametrize(
    ("note", "keys", "code"),
    [
        ("", (), "answer_note_required"),
        ("已整改", ("evidence/E1/W-1/photo.jpg",), "evidence_outside_rectification"),  # a warning's photo
        ("已整改", ("evidence/E2/rectification/RCT-x/photo.jpg",), "evidence_outside_rectification"),
    ],
)
def test_answers_need_a_note_and_their_own_evidence(
    item: RectificationItem, note: str, keys: tuple[str, ...], code: str
) -> None:
    with pytest.raises(DomainError) as refused_:
        answer(item, ENT, NOW, note, keys)
    assert (refused_.value.code, refused_.value.http_status) == (code, 422)


def test_overdue_is_past_the_deadline_and_not_accepted_by_then(item: RectificationItem) -> None:
    deadline = item.deadline
    assert not is_overdue(item, deadline)  # the deadline itself is in time
    assert is_overdue(item, deadline + 1)
    answered = answer(item, ENT, deadline - 10, "已整改")
    assert is_overdue(answered, deadline + 1)  # answered but not accepted
    accepted_late = accept(answered, REG, deadline + 100)
    assert is_overdue(accepted_late, deadline + 50)  # not accepted by then
    assert not is_overdue(accepted_late, deadline + 100)
    assert not is_overdue(accept(answered, REG, deadline - 5), deadline + 1000)
    other = item.model_copy(update={"enterprise_id": "E3", "rectification_id": "RCT-2"})
    assert overdue_counts([item, other, accept(answered, REG, deadline - 5)], deadline + 1) == {"E1": 1, "E3": 1}


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        (ENT, True),
        (OTHER_ENT, False),
        (REG, True),  # E1 is hazchem
        (FIRE_REG, False),
        (AREA_Z1, True),
        (AREA_S2, False),
        (DUTY, True),
        (Actor(user_id="emg", role=Role.EMERGENCY), True),
    ],
)
def test_scopes(item: RectificationItem, actor: Actor, sees: bool) -> None:
    assert can_see(actor, item) is sees


def test_the_report_shows_each_enterprise_s_overdue_items() -> None:
    """In the model (and its JSON), the workbook's 企业 sheet (read back) and the HTML page's table."""
    built = build_report(
        MARCH,
        PeriodKind.MONTH,
        PROFILES,
        WARNINGS,
        DAYS,
        {},
        POLICY,
        1.7e9,
        area_names=AREAS,
        overdue_rectifications={"E1": 2},
    )
    assert {row.enterprise_id: row.overdue_rectifications for row in built.enterprises} == {
        "E1": 2,
        "E2": 0,
        "E3": 0,
    }
    assert EvaluationReport.model_validate_json(built.model_dump_json()).row("E1").overdue_rectifications == 2  # type: ignore[union-attr]
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(built)))
    sheet = book["企业"]
    headers = [cell.value for cell in sheet[2]]
    column = headers.index("逾期整改") + 1
    ids = headers.index("企业编号") + 1
    assert {sheet.cell(row, ids).value: sheet.cell(row, column).value for row in range(3, 6)} == {
        "E1": 2,
        "E2": 0,
        "E3": 0,
    }
    assert "<th>逾期整改</th>" in render_html(built).decode()
