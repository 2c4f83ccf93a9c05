"""通报 and rectification (整改事项, 第十八条; docs/evaluation.md "通报 and rectification").

Publishing a stored report (the duty centre, administrators) tells every unit its own result through the delivery
path, and issues rectification items to the enterprises below the policy's threshold:
- each enterprise: its inbox, and its on-duty person by SMS: score, band, district rank, and how many items it must
  answer by when;
- each regulator department and each area: its inbox, the summary of its scope (enterprises per band, how many
  rectify, the worst);
- the duty centre and the bureau: their inboxes, the district's summary.
Publishing is idempotent per report version: every job id names the version (the delivery ledger sends each once),
items have deterministic ids (created once, whatever the version), and a version already recorded answers the
recorded publication without telling anyone again. A re-run of the report (a new version) published again tells
the units its new results; items already issued stay as they are (new problems get new items).

Who (role 403 → scope 404 → status 409, as for declarations):
- publish: duty, admin;
- list, read: in the scope of `rectification.can_see`; answer (and evidence uploads): the enterprise of the item,
  admin; accept / return: the sector's regulators, the duty centre, admin; the audit trail: duty, regulators in
  scope, the bureau, admin.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from aws_lambda_powertools import Logger

from chalicelib.domain.access import Scope, ScopeKind, require_role, scope_filter
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.delivery import (
    DeliveryJob,
    evaluation_result_job,
    evaluation_summary_job,
    rectification_notice_job,
)
from chalicelib.domain.errors import NotConfigured, NotFound
from chalicelib.domain.evaluation import rectification as rules
from chalicelib.domain.evaluation.periods import Period, PeriodKind, period_zh
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.rectification import RectificationItem, RectificationStatus
from chalicelib.domain.evaluation.report import EnterpriseRow, EvaluationReport, Rollup, band_zh
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import Audience, RoutingPolicy
from chalicelib.domain.texts import (
    evaluation_result_text,
    evaluation_summary_text,
    local_day_clock,
    rectification_notice_text,
)
from chalicelib.observability import INHERIT, SERVICE, count, swallowed
from chalicelib.services.cursors import ListingPage, position_after, take_page
from chalicelib.services.evaluation import NOT_FOUND as REPORT_NOT_FOUND
from chalicelib.services.evaluation import period_of_id
from chalicelib.services.ports import (
    UNKNOWN_ORIGIN,
    AuditStamp,
    ConcurrentUpdateError,
    DeliveryJobs,
    EvidenceStore,
    Origin,
    Publication,
    RectificationStore,
    ReportArchive,
    ReportEntry,
    SubjectLog,
)
from chalicelib.services.warning_actions import EVIDENCE_EXTENSIONS, EVIDENCE_URL_TTL_S, UploadTicket

logger = Logger(service=SERVICE, child=True, level=INHERIT)

NOT_FOUND = ("rectification_not_found", "整改事项不存在或无权查看")
WORST_IN_SUMMARY = 5


@dataclass(frozen=True, slots=True)
class Published:
    publication: Publication
    already: bool  # this version was published before: nobody was told again


def report_version(entry: ReportEntry) -> str:
    """The version a publication names: the report JSON's S3 version id, or (a bucket keeping none) the run's
    generation time in milliseconds."""
    return entry.versions.get("json") or f"g{int(entry.generated_at * 1000)}"


class Rectifications:
    def __init__(
        self,
        archive: ReportArchive,
        store: RectificationStore,
        jobs: DeliveryJobs | None,
        policy: EvaluationPolicy,
        clock: Callable[[], float],
        evidence: EvidenceStore | None = None,
        new_key: Callable[[], str] = lambda: uuid.uuid4().hex,
        workers: int = 16,
        routing: RoutingPolicy | None = None,
    ) -> None:
        self._archive = archive
        self._store = store
        self._jobs = jobs
        self._policy = policy
        self._clock = clock
        self._evidence = evidence
        self._new_key = new_key
        self._workers = workers
        self._regulators = (routing or RoutingPolicy()).regulators

    # --- publishing (通报) ---------------------------------------------------------------------------------------

    def publish(self, actor: Actor, report_id: str, origin: Origin = UNKNOWN_ORIGIN) -> Published:
        require_role(actor, rules.PUBLISHING_ROLES, "通报评估结果")
        entry = self._archive.entry(report_id) if period_of_id(report_id) is not None else None
        if entry is None or "json" not in entry.keys:  # an on-demand run still queued: no report yet
            raise NotFound(*REPORT_NOT_FOUND)
        version = report_version(entry)
        before = self._store.publication(report_id)
        if before is not None and version in before.versions:
            return Published(before, already=True)
        report = EvaluationReport.model_validate_json(self._archive.document(entry))
        now = self._clock()
        stamp = AuditStamp.of(actor, now, f"通报 {report_id}", origin)
        items = self._issue(report, report_id, actor, now, stamp)
        jobs = self._jobs_of(report, report_id, version, items, now)
        if self._jobs is not None:
            queue = self._jobs
            chunks = [jobs[start : start + 100] for start in range(0, len(jobs), 100)]
            with ThreadPoolExecutor(self._workers) as pool:  # a full district: 500 SQS batches, not one by one
                list(pool.map(queue.enqueue, chunks))
            count("DeliveryJobsEnqueued", value=len(jobs), kind="evaluation_published")
        else:
            logger.info(
                "evaluation publication not delivered: this stage has no delivery queue", extra={"jobs": len(jobs)}
            )
        publication = Publication(
            report_id=report_id,
            version=version,
            published_at=now,
            published_by=actor.user_id,
            jobs=len(jobs),
            rectifications=sum(len(found) for found in items.values()),
            enterprises_rectifying=len(items),
            versions=(*(before.versions if before else ()), version),
        )
        if not self._store.record_publication(publication, stamp):  # a concurrent publish of this version won
            recorded = self._store.publication(report_id)
            return Published(recorded or publication, already=True)
        return Published(publication, already=False)

    def publication(self, actor: Actor, report_id: str) -> Publication | None:
        """The report's latest publication (every role: whether a report was circulated is no secret)."""
        del actor
        return self._store.publication(report_id)

    def _issue(
        self, report: EvaluationReport, report_id: str, actor: Actor, now: float, stamp: AuditStamp
    ) -> dict[str, list[RectificationItem]]:
        """The report's items by enterprise, as stored (an item issued by an earlier publish stays as it is). Each
        item is independent: a full district's thousands are written side by side (four calls each)."""

        def stored(item: RectificationItem) -> RectificationItem:
            found = self._store.get(item.rectification_id)
            if found is not None:
                return found
            try:
                self._store.save(item, "rectification_issued", stamp)
                return item.model_copy(update={"version": 1})
            except ConcurrentUpdateError:  # a concurrent publish created it
                return self._store.get(item.rectification_id) or item

        issued: dict[str, list[RectificationItem]] = defaultdict(list)
        with ThreadPoolExecutor(self._workers) as pool:
            for item in pool.map(stored, rules.issue(report, report_id, self._policy, actor, now)):
                issued[item.enterprise_id].append(item)
        return issued

    def _jobs_of(
        self,
        report: EvaluationReport,
        report_id: str,
        version: str,
        items: dict[str, list[RectificationItem]],
        now: float,
    ) -> list[DeliveryJob]:
        period = sms_period(report.period)
        of = len(report.enterprises)
        outstanding = {  # an item accepted since an earlier version was published is not asked for again
            enterprise: [item for item in found if item.status is not RectificationStatus.ACCEPTED]
            for enterprise, found in items.items()
        }
        items = {enterprise: found for enterprise, found in outstanding.items() if found}
        jobs = []
        for row in report.enterprises:
            own = items.get(row.enterprise_id, [])
            deadline = min((item.deadline for item in own), default=0.0)
            text = evaluation_result_text(
                row.name, period, row.score, band_zh(row.band), row.rank, of, len(own), deadline
            )
            jobs.append(
                evaluation_result_job(
                    report_id, version, row.enterprise_id, now, text, _result_detail(report, row, own)
                )
            )

        def summary(
            rollup: Rollup,
            rows: Sequence[EnterpriseRow],
            audiences: tuple[Audience, ...],
            **scope: tuple[str, ...],
        ) -> DeliveryJob:
            rectifying = sum(1 for row in rows if row.enterprise_id in items)
            text = evaluation_summary_text(rollup.name, period, rollup.enterprises, rollup.bands, rectifying)
            detail = _summary_detail(report, rollup, rows, items)
            return evaluation_summary_job(report_id, version, audiences, now, text, detail, **scope)

        for rollup in report.departments:
            rows = [row for row in report.enterprises if rollup.key in row.departments]
            jobs.append(summary(rollup, rows, (Audience.REGULATOR,), regulators=(rollup.key,)))
        for rollup in report.areas:
            rows = [row for row in report.enterprises if rollup.key in row.area_codes]
            jobs.append(summary(rollup, rows, (Audience.AREA,), areas=(rollup.key,)))
        jobs.append(summary(report.overall, report.enterprises, (Audience.DUTY, Audience.EMERGENCY)))
        return jobs

    # --- the enterprise ----------------------------------------------------------------------------------------

    def answer(
        self,
        actor: Actor,
        rectification_id: str,
        note: str,
        evidence_keys: Sequence[str] = (),
        origin: Origin = UNKNOWN_ORIGIN,
    ) -> RectificationItem:
        require_role(actor, rules.ANSWERING_ROLES, "答复整改事项")
        current = self._visible(actor, rectification_id)
        now = self._clock()
        changed = rules.answer(current, actor, now, note, evidence_keys)
        return self._tell(self._save(changed, "rectification_answered", actor, now, note, origin), "answered")

    def evidence_upload(self, actor: Actor, rectification_id: str, content_type: str) -> UploadTicket:
        """A presigned upload for one photo of the item's evidence (the warnings' evidence bucket)."""
        require_role(actor, rules.ANSWERING_ROLES, "上传整改材料")
        item = self._visible(actor, rectification_id)
        if self._evidence is None:
            raise NotConfigured("evidence_unavailable", "照片存储未配置")
        key = f"{rules.evidence_prefix(item)}{self._new_key()}.{EVIDENCE_EXTENSIONS[content_type]}"
        url = self._evidence.upload_url(key, content_type, EVIDENCE_URL_TTL_S)
        return UploadTicket(key=key, url=url, content_type=content_type, expires_in=EVIDENCE_URL_TTL_S)

    # --- the regulator -----------------------------------------------------------------------------------------

    def accept(
        self, actor: Actor, rectification_id: str, note: str = "", origin: Origin = UNKNOWN_ORIGIN
    ) -> RectificationItem:
        require_role(actor, rules.REVIEWING_ROLES, "验收整改事项")
        current = self._visible(actor, rectification_id)
        now = self._clock()
        accepted = self._save(
            rules.accept(current, actor, now), "rectification_accepted", actor, now, note, origin
        )
        return self._tell(accepted, "accepted")

    def return_(
        self, actor: Actor, rectification_id: str, reason: str, origin: Origin = UNKNOWN_ORIGIN
    ) -> RectificationItem:
        require_role(actor, rules.REVIEWING_ROLES, "退回整改事项")
        current = self._visible(actor, rectification_id)
        now = self._clock()
        changed = rules.return_(current, actor, now, reason)
        return self._tell(self._save(changed, "rectification_returned", actor, now, reason, origin), "returned")

    # --- reads -------------------------------------------------------------------------------------------------

    def get(self, actor: Actor, rectification_id: str) -> RectificationItem:
        return self._visible(actor, rectification_id)

    def list(
        self,
        actor: Actor,
        statuses: Collection[RectificationStatus] | None = None,
        enterprise_id: str | None = None,
        report_id: str | None = None,
        overdue: bool | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> ListingPage[RectificationItem]:
        """A page of the items in the caller's scope (an enterprise: its own, the newest first; with
        `enterprise_id`, that enterprise's; a regulator its sectors', an area its areas', the others every
        sector's, by deadline), filtered by status (read from the partitions of those statuses only), report and
        whether overdue now (filtered as read, at most `examined_per_page` items a page)."""
        if actor.role is Role.ENTERPRISE:
            enterprise_id = actor.enterprise_id
        after = position_after(cursor)
        scope = (
            Scope(kind=ScopeKind.ENTERPRISE, enterprise_id=enterprise_id) if enterprise_id else scope_filter(actor)
        )
        wanted = frozenset(statuses) if statuses else None
        now = self._clock()
        return take_page(
            self._store.listing(scope, wanted, after, limit + 1),
            lambda item: (
                rules.can_see(actor, item)
                and (wanted is None or item.status in wanted)
                and (report_id is None or item.report_id == report_id)
                and (overdue is None or item.overdue_at(now) is overdue)
            ),
            limit,
        )

    def audit(self, actor: Actor, rectification_id: str) -> SubjectLog:
        require_role(actor, rules.AUDIT_ROLES, "查看整改记录")
        self._visible(actor, rectification_id)
        return self._store.log(rectification_id)

    # --- helpers -----------------------------------------------------------------------------------------------

    def _tell(self, item: RectificationItem, change: str) -> RectificationItem:
        """Tell the other side (a delivery job). The step is recorded whatever happens here: a notice that cannot
        be queued is logged and counted (both sides see the status in the app)."""
        if self._jobs is None:
            logger.info("rectification notice not delivered: this stage has no delivery queue")
            return item
        what = item.return_reason if change == "returned" else item.problem.zh
        text = rectification_notice_text(
            change, item.enterprise_name, what or "", item.rectification_id, item.deadline
        )
        job = rectification_notice_job(
            item.report_id,
            item.rectification_id,
            change,
            item.version,
            item.enterprise_id,
            item.updated_at,
            text,
            _item_detail(item),
            regulators=self._regulators.get(item.sector, ()),
        )
        try:
            self._jobs.enqueue([job])
            count("DeliveryJobsEnqueued", kind=job.kind.value)
        except Exception as exc:
            logger.warning(
                "rectification notice not queued",
                extra={"rectification_id": item.rectification_id, "error": type(exc).__name__},
            )
            swallowed("rectification.notice")
        return item

    def _visible(self, actor: Actor, rectification_id: str) -> RectificationItem:
        found = self._store.get(rectification_id)
        if found is None or not rules.can_see(actor, found):
            raise NotFound(*NOT_FOUND)
        return found

    def _save(
        self, item: RectificationItem, event_type: str, actor: Actor, now: float, reason: str, origin: Origin
    ) -> RectificationItem:
        self._store.save(item, event_type, AuditStamp.of(actor, now, reason, origin))
        return item.model_copy(update={"version": item.version + 1})


def _result_detail(report: EvaluationReport, row: EnterpriseRow, items: Sequence[RectificationItem]) -> str:
    """The inbox's long form of an enterprise's result."""
    figures = row.figures
    lines = [
        f"{period_zh(report.period)}安全风险监测预警评估结果",
        f"企业:{row.name}",
        f"得分:{row.score:g}分,{band_zh(row.band)}等级",
        f"排名:全区第{row.rank}/{len(report.enterprises)}名,行业第{row.sector_rank.position}/{row.sector_rank.of}名",
        f"在线率:{_rate(figures.online, 2)} 处置率:{_rate(figures.disposal)} 及时率:{_rate(figures.timeliness)} "
        f"误报率:{_rate(figures.false_alarm)}",
        f"预警:{figures.raised_total}次,超时环节{figures.missed_deadlines}个,未报备离线{figures.undeclared_outage_h:.1f}小时",
    ]
    if items:
        lines.append(f"整改事项({len(items)}项,请于{local_day_clock(min(i.deadline for i in items))}前答复):")
        lines += [f"{n}. {item.problem.zh}:{item.title}。{item.requirement}" for n, item in enumerate(items, 1)]
    lines.append(f"报告编号:{report.kind.value}-{report.period.label}")
    return "\n".join(lines)


def sms_period(period: Period) -> str:
    """The period in a text: 2025年3月, 2025年第1季度, 2025年度; a custom window by its local days,
    03-01至03-03 (its end is exclusive)."""
    if period.kind is not PeriodKind.CUSTOM:
        return period_zh(period)
    first, last = (datetime.fromtimestamp(at, SHANGHAI) for at in (period.start, period.end - 1))
    return f"{first:%m-%d}至{last:%m-%d}" if first.date() != last.date() else f"{first:%m-%d}"


def _item_detail(item: RectificationItem) -> str:
    """The inbox's long form of an item's change."""
    lines = [
        f"整改事项:{item.problem.zh}({item.title})",
        f"企业:{item.enterprise_name}",
        f"状态:{item.status.zh},期限{local_day_clock(item.deadline)}",
        f"要求:{item.requirement}",
    ]
    if item.answer_note:
        lines.append(f"企业答复:{item.answer_note}")
    if item.return_reason and item.status is RectificationStatus.RETURNED:
        lines.append(f"退回理由:{item.return_reason}")
    lines.append(f"编号:{item.rectification_id}(报告{item.report_id})")
    return "\n".join(lines)


def _summary_detail(
    report: EvaluationReport,
    rollup: Rollup,
    rows: Sequence[EnterpriseRow],
    items: dict[str, list[RectificationItem]],
) -> str:
    """The inbox's long form of a scope's summary: the band counts, the figures, the worst and who rectifies."""
    figures = rollup.figures
    bands = "、".join(
        f"{band_zh(band)}{rollup.bands.get(band, 0)}家" for band in ("red", "orange", "yellow", "blue")
    )
    worst = sorted(rows, key=lambda row: row.rank, reverse=True)[:WORST_IN_SUMMARY]
    lines = [
        f"{rollup.name}{period_zh(report.period)}安全风险监测预警评估",
        f"企业{rollup.enterprises}家:{bands}",
        f"在线率:{_rate(figures.online, 2)} 处置率:{_rate(figures.disposal)} 及时率:{_rate(figures.timeliness)}",
        "得分最低:" + "、".join(f"{row.name}({row.score:g}分)" for row in worst),
        f"须整改企业{sum(1 for row in rows if row.enterprise_id in items)}家,"
        f"整改事项{sum(len(items.get(row.enterprise_id, ())) for row in rows)}项",
        f"报告编号:{report.kind.value}-{report.period.label}",
    ]
    return "\n".join(lines)


def _rate(value: float | None, digits: int = 1) -> str:
    return "无数据" if value is None else f"{value * 100:.{digits}f}%"
