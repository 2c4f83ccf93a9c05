"""Rectification items (整改事项, 第十八条 "units rectify the problems found"): derived from a published
report, one per problem found at an enterprise below the policy threshold; answered by the enterprise,
accepted or returned by its regulator (or the duty centre). Pure (docs/evaluation.md "通报 and rectification").

Lifecycle:

    open ──answer (enterprise)──► answered ──accept (regulator, duty, admin)──► accepted
                                     │ ──return with a reason──► returned ──answer──► answered …

Overdue is not a status: an item is overdue at `at` when `at` is past its deadline and it was not accepted by then
(an answer waiting for review is still overdue: the problem is rectified when the regulator says so). A late answer
is taken; the item stays overdue until accepted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.errors import InvalidTransition, ValidationFailed
from chalicelib.domain.evaluation.periods import local_midnight
from chalicelib.domain.evaluation.policy import EvaluationPolicy, RectificationPolicy
from chalicelib.domain.evaluation.report import EnterpriseRow, EvaluationReport, band_zh
from chalicelib.domain.lifecycle import Actor
from chalicelib.domain.roles import Role
from chalicelib.domain.sectors import Sector


class Problem(StrEnum):
    LOW_ONLINE = "low_online"  # 在线率 below the target
    UNDECLARED_OUTAGE = "undeclared_outage"  # offline without a declaration
    MISSED_DEADLINES = "missed_deadlines"  # 签收 / 核实反馈 / 消警 late
    HIGH_FALSE_ALARM = "high_false_alarm"  # 误报率 above the policy's maximum
    LOW_DISPOSAL = "low_disposal"  # 处置率 below the policy's minimum
    LOW_SCORE = "low_score"  # below the threshold with none of the above: a general review

    @property
    def zh(self) -> str:
        return PROBLEM_ZH[self]


PROBLEM_ZH = {
    Problem.LOW_ONLINE: "在线率未达标",
    Problem.UNDECLARED_OUTAGE: "未报备离线",
    Problem.MISSED_DEADLINES: "预警处置超时",
    Problem.HIGH_FALSE_ALARM: "误报率偏高",
    Problem.LOW_DISPOSAL: "处置率偏低",
    Problem.LOW_SCORE: "安全状态得分偏低",
}


class RectificationStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"
    ACCEPTED = "accepted"
    RETURNED = "returned"

    @property
    def zh(self) -> str:
        return STATUS_ZH[self]


STATUS_ZH = {
    RectificationStatus.OPEN: "待整改",
    RectificationStatus.ANSWERED: "待验收",
    RectificationStatus.ACCEPTED: "已验收",
    RectificationStatus.RETURNED: "已退回",
}
ANSWERABLE = frozenset({RectificationStatus.OPEN, RectificationStatus.RETURNED})

PUBLISHING_ROLES = frozenset({Role.DUTY, Role.ADMIN})
ANSWERING_ROLES = frozenset({Role.ENTERPRISE, Role.ADMIN})
REVIEWING_ROLES = frozenset({Role.REGULATOR, Role.DUTY, Role.ADMIN})
AUDIT_ROLES = frozenset({Role.DUTY, Role.REGULATOR, Role.EMERGENCY, Role.ADMIN})
MAX_EVIDENCE = 9


class RectificationItem(BaseModel):
    """One problem to rectify, as stored. The enterprise's name, sector and areas are the report's (the scopes of
    regulators and areas)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rectification_id: str = Field(min_length=1, max_length=64)
    report_id: str
    period_label: str
    enterprise_id: str
    enterprise_name: str
    sector: Sector
    area_codes: tuple[str, ...] = ()
    problem: Problem
    title: str  # Chinese: the problem and its figure
    requirement: str  # Chinese: what to do
    score: float
    band: str
    deadline: float  # epoch seconds: overdue after this unless accepted
    status: RectificationStatus = RectificationStatus.OPEN
    issued_by: str
    created_at: float
    updated_at: float
    answer_note: str | None = None
    evidence_keys: tuple[str, ...] = ()
    answered_by: str | None = None
    answered_at: float | None = None
    answers: int = 0  # how many times it was answered (a return asks again)
    reviewed_by: str | None = None
    reviewed_at: float | None = None
    return_reason: str | None = None
    accepted_at: float | None = None
    version: int = 0

    def overdue_at(self, at: float) -> bool:
        return is_overdue(self, at)


# --- deriving -------------------------------------------------------------------------------------------------


def rectification_id(report_id: str, enterprise_id: str, problem: Problem) -> str:
    """Deterministic: publishing a report again (or another version of it) finds the items it issued before."""
    digest = hashlib.blake2b(f"{report_id}|{enterprise_id}|{problem.value}".encode(), digest_size=8).hexdigest()
    return f"RCT-{digest}"


def needs_rectification(row: EnterpriseRow, policy: RectificationPolicy) -> bool:
    below = policy.below_score is not None and row.score < policy.below_score
    return row.band in policy.bands or below


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def problems_of(row: EnterpriseRow, policy: EvaluationPolicy) -> list[tuple[Problem, str, str]]:
    """(problem, title, requirement) for each problem the row's figures show; a row below the threshold with none
    of them gets one general item (`low_score`)."""
    rules = policy.rectification
    figures = row.figures
    found: list[tuple[Problem, str, str]] = []
    if figures.online is not None and figures.online < policy.online_target:
        found.append(
            (
                Problem.LOW_ONLINE,
                f"在线率{figures.online * 100:.2f}%，低于{policy.online_target * 100:g}%",
                "排查设备及网络故障，保障监测数据实时上传；停传须事先申报",
            )
        )
    if figures.undeclared_outage_h > rules.undeclared_outage_hours_max:
        found.append(
            (
                Problem.UNDECLARED_OUTAGE,
                f"未报备离线{figures.undeclared_outage_h:.1f}小时",
                "查明离线原因并修复；停产检修、设备损坏须按规定申报",
            )
        )
    if figures.missed_deadlines > 0:
        found.append(
            (
                Problem.MISSED_DEADLINES,
                f"预警签收、核实反馈或消警超时{figures.missed_deadlines}次",
                "落实专人值守，按时限签收、核实反馈和处置预警",
            )
        )
    if figures.false_alarm is not None and figures.false_alarm > rules.false_alarm_max:
        found.append(
            (
                Problem.HIGH_FALSE_ALARM,
                f"误报率{_pct(figures.false_alarm)}，高于{_pct(rules.false_alarm_max)}",
                "校准或维修误报设备，核对报警阈值",
            )
        )
    if figures.disposal is not None and figures.disposal < rules.disposal_min:
        found.append(
            (
                Problem.LOW_DISPOSAL,
                f"处置率{_pct(figures.disposal)}，低于{_pct(rules.disposal_min)}",
                "及时处置预警并消警，说明未处置原因",
            )
        )
    if not found:
        found.append(
            (
                Problem.LOW_SCORE,
                f"安全状态得分{row.score:g}分（{band_zh(row.band)}）",
                "全面排查重大危险源及预警处置情况，提交整改报告",
            )
        )
    return found


def deadline_after(published_at: float, days: int) -> float:
    """The end of the local day `days` days after publishing (local midnight after it)."""
    day = datetime.fromtimestamp(published_at, SHANGHAI).date() + timedelta(days=days + 1)
    return local_midnight(day)


def issue(
    report: EvaluationReport, report_id: str, policy: EvaluationPolicy, actor: Actor, now: float
) -> list[RectificationItem]:
    """The items a published report asks for: one per problem of each enterprise below the threshold."""
    rules = policy.rectification
    deadline = deadline_after(now, rules.days)
    items: list[RectificationItem] = []
    for row in report.enterprises:
        if not needs_rectification(row, rules):
            continue
        for problem, title, requirement in problems_of(row, policy):
            items.append(
                RectificationItem(
                    rectification_id=rectification_id(report_id, row.enterprise_id, problem),
                    report_id=report_id,
                    period_label=report.period.label,
                    enterprise_id=row.enterprise_id,
                    enterprise_name=row.name,
                    sector=row.sector,
                    area_codes=row.area_codes,
                    problem=problem,
                    title=title,
                    requirement=requirement,
                    score=row.score,
                    band=row.band,
                    deadline=deadline,
                    issued_by=actor.user_id,
                    created_at=now,
                    updated_at=now,
                )
            )
    return items


# --- the lifecycle --------------------------------------------------------------------------------------------


def _changed(item: RectificationItem, now: float, **fields: Any) -> RectificationItem:
    return item.model_copy(update={**fields, "updated_at": now})


def _refuse(item: RectificationItem, code: str, what: str) -> InvalidTransition:
    return InvalidTransition(code, f"整改事项{item.status.zh}，不能{what}", details={"status": item.status.value})


def answer(
    item: RectificationItem, actor: Actor, now: float, note: str, evidence_keys: Sequence[str] = ()
) -> RectificationItem:
    """The enterprise says what it did (a note, and evidence uploaded for this item)."""
    if not note.strip():
        raise ValidationFailed("answer_note_required", "整改答复须说明整改情况")
    if item.status not in ANSWERABLE:
        raise _refuse(item, "rectification_not_answerable", "答复")
    prefix = evidence_prefix(item)
    if any(not key.startswith(prefix) for key in evidence_keys):
        raise ValidationFailed(
            "evidence_outside_rectification", "附件不属于该整改事项，请通过本事项的上传地址上传"
        )
    if len(evidence_keys) > MAX_EVIDENCE:
        raise ValidationFailed("too_much_evidence", f"附件不得超过{MAX_EVIDENCE}个")
    return _changed(
        item,
        now,
        status=RectificationStatus.ANSWERED,
        answer_note=note.strip(),
        evidence_keys=tuple(dict.fromkeys(evidence_keys)),
        answered_by=actor.user_id,
        answered_at=now,
        answers=item.answers + 1,
    )


def accept(item: RectificationItem, actor: Actor, now: float) -> RectificationItem:
    if item.status is not RectificationStatus.ANSWERED:
        raise _refuse(item, "rectification_not_answered", "验收")
    return _changed(
        item,
        now,
        status=RectificationStatus.ACCEPTED,
        reviewed_by=actor.user_id,
        reviewed_at=now,
        accepted_at=now,
        return_reason=None,
    )


def return_(item: RectificationItem, actor: Actor, now: float, reason: str) -> RectificationItem:
    """Sent back to the enterprise with the reason: it answers again."""
    if not reason.strip():
        raise ValidationFailed("return_reason_required", "退回须说明理由")
    if item.status is not RectificationStatus.ANSWERED:
        raise _refuse(item, "rectification_not_answered", "退回")
    return _changed(
        item,
        now,
        status=RectificationStatus.RETURNED,
        reviewed_by=actor.user_id,
        reviewed_at=now,
        return_reason=reason.strip(),
    )


def is_overdue(item: RectificationItem, at: float) -> bool:
    """Past the deadline at `at` and not accepted by then."""
    accepted_in_time = item.accepted_at is not None and item.accepted_at <= at
    return at > item.deadline and not accepted_in_time


def overdue_counts(items: Iterable[RectificationItem], at: float) -> dict[str, int]:
    """Overdue items per enterprise at `at` (the next report's column)."""
    return dict(Counter(item.enterprise_id for item in items if is_overdue(item, at)))


# --- who ------------------------------------------------------------------------------------------------------


def can_see(actor: Actor, item: RectificationItem) -> bool:
    """Enterprise: its own; regulator: its sectors; area: its areas; duty, emergency, admin, system: all."""
    if actor.role is Role.ENTERPRISE:
        return item.enterprise_id == actor.enterprise_id
    if actor.role is Role.REGULATOR:
        return item.sector in actor.sectors
    if actor.role is Role.AREA:
        return not set(item.area_codes).isdisjoint(actor.area_codes)
    return True


def evidence_prefix(item: RectificationItem) -> str:
    """Where the evidence of an item is uploaded (the warnings' evidence bucket)."""
    return f"evidence/{item.enterprise_id}/rectification/{item.rectification_id}/"
