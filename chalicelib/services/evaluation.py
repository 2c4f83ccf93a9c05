"""Evaluation runs (评估报告, 第十八条, docs/evaluation.md "Runs, storage and reads"): read a period's facts,
build and render the report, store it (a new S3 version of each key) and its index entry.

A run is idempotent per (kind, period): the report id is `{kind}-{label}`, so a re-run writes the same keys (a new
version of each) and replaces the index entry. The scheduled runs evaluate `periods.last_complete(kind, now)`; the
duty centre and administrators may run any ended period on demand, or a custom window [start, end) that has ended
and lasts from a minute to 31 days (`custom_period`; what `make demo` evaluates: its own few minutes).

Who reads what (the API): every role reads the index; `GET /evaluations/{id}` answers the report cut to the
caller's scope (`ReportRenderer.scoped`); the artifacts (the whole workbook, the whole HTML) are downloaded by the
all-seeing roles only — a scoped caller gets 403 `report_download_scoped` and reads its part as JSON.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.access import Scope, ScopeKind, require_role, scope_filter, sectors_for_department
from chalicelib.domain.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, WarningFacts
from chalicelib.domain.evaluation.periods import Period, PeriodKind
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.rectification import overdue_counts
from chalicelib.domain.evaluation.report import EvaluationReport, build_report, report_from_months, tallies_of
from chalicelib.domain.evaluation.tallies import MonthTallies, carried
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import RoutingPolicy
from chalicelib.services.ports import (
    DeviceDayLedger,
    EvaluationFacts,
    EvaluationRequests,
    Fleet,
    RectificationStore,
    RenderedReport,
    ReportArchive,
    ReportEntry,
    ReportRenderer,
)

ARTIFACTS = ("xlsx", "html")
TALLIES = "tallies"  # a month's artifact: its tallies, what its quarter and year sum
SUMMED_KINDS = frozenset({PeriodKind.QUARTER, PeriodKind.YEAR})
QUEUED, RUNNING, FAILED = "queued", "running", "failed"  # an on-demand run's entry before it is done
RUN_ROLES = frozenset({Role.DUTY, Role.ADMIN})
DOWNLOAD_ROLES = frozenset({Role.DUTY, Role.EMERGENCY, Role.ADMIN})
SCHEDULE_ACTOR = "system:schedule"
NOT_FOUND = ("evaluation_not_found", "评估报告不存在")
_REPORT_ID = re.compile(r"^(month|quarter|year)-(\d{4})(?:-(Q)?(\d{1,2}))?$")
_CUSTOM_ID = re.compile(r"^custom-(\d{8}T\d{6}-\d{8}T\d{6})$")
CUSTOM_MIN_S = 60
CUSTOM_MAX_S = 31 * 86400  # a month's reads at most: what the API function runs synchronously (the bench's month)


def report_id(period: Period) -> str:
    return f"{period.kind.value}-{period.label}"


def period_of(kind: PeriodKind, year: int, number: int | None = None) -> Period:
    """The period named by the API's `{kind, year, number}` (number: the month 1..12 or quarter 1..4)."""
    try:
        if kind is PeriodKind.CUSTOM:
            raise ValueError("a custom window is named by its start and end")
        if kind is PeriodKind.YEAR:
            return periods.year(year)
        if number is None:
            raise ValueError("a month or quarter needs its number")
        if kind is PeriodKind.QUARTER:
            return periods.quarter(year, number)
        return periods.month(year, number)
    except ValueError as exc:
        raise ValidationFailed("invalid_period", "评估期无效") from exc


def custom_period(start: float, end: float) -> Period:
    """The custom window the API's `{kind: "custom", start, end}` names (whole seconds), from a minute to 31 days;
    whether it has ended is the run's check (`period_not_ended`)."""
    if not CUSTOM_MIN_S <= int(end) - int(start) <= CUSTOM_MAX_S:
        raise ValidationFailed("invalid_period", "评估期无效")
    return periods.custom(start, end)


def period_of_id(value: str) -> Period | None:
    custom = _CUSTOM_ID.fullmatch(value)
    if custom is not None:
        try:
            return periods.custom_of_label(custom.group(1))
        except ValueError:
            return None
    match = _REPORT_ID.fullmatch(value)
    if match is None:
        return None
    kind, year, quarter_mark, number = match.groups()
    try:
        if kind == "year" and number is None:
            return periods.year(int(year))
        if kind == "quarter" and quarter_mark and number:
            return periods.quarter(int(year), int(number))
        if kind == "month" and not quarter_mark and number and len(number) == 2:
            return periods.month(int(year), int(number))
    except ValueError:
        return None
    return None


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What one run read and wrote (logged; the bench prints it)."""

    enterprises: int
    devices: int
    warnings: int  # a quarter or a year: the warnings its months carried, read again
    device_days: int
    months: int = 0  # a quarter or a year: the months' tallies summed


class EvaluationService:
    def __init__(
        self,
        facts: EvaluationFacts,
        ledger: DeviceDayLedger,
        renderer: ReportRenderer,
        archive: ReportArchive,
        policy: EvaluationPolicy,
        clock: Callable[[], float],
        download_expires_s: int = 300,
        rectifications: RectificationStore | None = None,
        requests: EvaluationRequests | None = None,
    ) -> None:
        self._facts = facts
        self._ledger = ledger
        self._renderer = renderer
        self._archive = archive
        self._policy = policy
        self._clock = clock
        self._download_expires_s = download_expires_s
        self._rectifications = rectifications
        self._requests = requests
        self.last_run: RunFigures | None = None

    # --- runs --------------------------------------------------------------------------------------------------

    def run(self, kind: PeriodKind, period: Period, requested_by: str) -> ReportEntry:
        """Evaluate an ended period and store its report (replacing an earlier run's: new versions of its keys)."""
        if period.kind is not kind:
            raise ValidationFailed("invalid_period", "评估期无效")
        now = self._clock()
        if period.end > now:
            raise ValidationFailed("period_not_ended", "评估期尚未结束")
        collecting = gc.isenabled()
        gc.disable()  # a run builds ~10 objects per warning and device, all alive to the end: the cyclic
        try:  # collector's passes over them cost a third of the run's CPU and free nothing
            return self._run(kind, period, requested_by, now)
        finally:
            if collecting:
                gc.enable()

    def _run(self, kind: PeriodKind, period: Period, requested_by: str, now: float) -> ReportEntry:
        fleet = self._facts.fleet()
        overdue = None
        if self._rectifications is not None:  # 整改事项 overdue at the period's end (a column of the report)
            overdue = overdue_counts(self._rectifications.due_before(period.end), period.end)
        if kind in SUMMED_KINDS:  # a quarter or a year: its months' tallies (docs/evaluation.md)
            months = [self._month_tallies(month, requested_by) for month in periods.months_of(period)]
            reread: list[WarningFacts] = []

            def read_again(ids: Sequence[str]) -> Sequence[WarningFacts]:
                reread.extend(self._facts.warnings_by_id(ids, now))
                return reread

            rendered = self._renderer.render_months(
                period, fleet, months, read_again, now, overdue_rectifications=overdue
            )
            self.last_run = RunFigures(
                enterprises=len(fleet.profiles),
                devices=sum(len(devices) for devices in fleet.devices.values()),
                warnings=len(reread),
                device_days=0,
                months=len(months),
            )
        else:
            since = period.start - self._policy.repeat_window_s
            with ThreadPoolExecutor(2) as pool:  # independent reads: one's waits overlap the other's parsing
                warnings_read = pool.submit(lambda: list(self._facts.warnings(period, now, since)))
                days_read = pool.submit(lambda: list(self._ledger.device_days(period, fleet, now)))
                warnings, days = warnings_read.result(), days_read.result()
            rendered = self._renderer.render(period, fleet, warnings, days, now, overdue_rectifications=overdue)
            self.last_run = RunFigures(
                enterprises=len(fleet.profiles),
                devices=sum(len(devices) for devices in fleet.devices.values()),
                warnings=len(warnings),
                device_days=len(days),
            )
        entry = ReportEntry(
            report_id=report_id(period),
            kind=kind.value,
            label=period.label,
            start=period.start,
            end=period.end,
            generated_at=now,
            requested_by=requested_by,
            keys={},
            versions={},
            counts=dict(rendered.counts),
        )
        return self._archive.store(entry, rendered)

    def _month_tallies(self, month: Period, requested_by: str) -> bytes:
        """A month's stored tallies; the month is run first when it has none (never run, or run before they were
        kept)."""
        entry = self._archive.entry(report_id(month))
        if entry is None or TALLIES not in entry.keys:
            entry = self._run(PeriodKind.MONTH, month, requested_by, self._clock())
        return self._archive.artifact(entry, TALLIES)

    def run_scheduled(self, kind: PeriodKind) -> ReportEntry:
        """The schedule's run: the latest period of `kind` that has ended."""
        return self.run(kind, periods.last_complete(kind, self._clock()), SCHEDULE_ACTOR)

    def request(self, actor: Actor, kind: PeriodKind, year: int, number: int | None) -> ReportEntry:
        """An on-demand run (the duty centre, administrators)."""
        require_role(actor, RUN_ROLES, "发起评估")
        return self._accept(kind, period_of(kind, year, number), actor.user_id)

    def request_custom(self, actor: Actor, start: float, end: float) -> ReportEntry:
        """An on-demand run of a custom window [start, end) that has ended (the duty centre, administrators)."""
        require_role(actor, RUN_ROLES, "发起评估")
        return self._accept(PeriodKind.CUSTOM, custom_period(start, end), actor.user_id)

    def _accept(self, kind: PeriodKind, period: Period, requested_by: str) -> ReportEntry:
        """With a request queue: check the period, mark the entry queued and hand the run to the evaluation
        function (a full-size run outlasts API Gateway's 29 s); without one, run it here."""
        if self._requests is None:
            return self.run(kind, period, requested_by)
        now = self._clock()
        if period.end > now:
            raise ValidationFailed("period_not_ended", "评估期尚未结束")
        entry = self._archive.mark(_entry_of(period, requested_by, now, QUEUED))
        self._requests.send(entry.report_id, requested_by)
        return entry

    def run_requested(self, value: str, requested_by: str) -> ReportEntry:
        """The evaluation function's side of an on-demand run: running, then done (the stored report) or failed
        (and raised: the queue retries once, then keeps the request in its dead-letter queue)."""
        period = period_of_id(value)
        if period is None:
            raise ValidationFailed("invalid_period", "评估期无效")
        self._archive.mark(_entry_of(period, requested_by, self._clock(), RUNNING))
        try:
            return self.run(period.kind, period, requested_by)
        except Exception:
            self._archive.mark(_entry_of(period, requested_by, self._clock(), FAILED))
            raise

    # --- reads -------------------------------------------------------------------------------------------------

    def entries(self, actor: Actor, limit: int = 50) -> list[ReportEntry]:
        """The report index, newest period first (every role: what was evaluated is no secret)."""
        del actor
        return self._archive.entries(limit)

    def _entry(self, value: str) -> ReportEntry:
        entry = self._archive.entry(value) if period_of_id(value) is not None else None
        if entry is None:
            raise NotFound(*NOT_FOUND)
        return entry

    def read(self, actor: Actor, value: str) -> tuple[ReportEntry, dict[str, object]]:
        """The report as JSON, cut to the caller's scope (an enterprise: its own row and the overall figures); an
        on-demand run not done yet answers its entry (status queued, running or failed) and, if the period was
        evaluated before, that report."""
        entry = self._entry(value)
        if "json" not in entry.keys:
            return entry, {}
        return entry, self._renderer.scoped(self._archive.document(entry), scope_filter(actor))

    def download(self, actor: Actor, value: str, artifact: str) -> tuple[ReportEntry, str, int]:
        """A presigned URL of the whole artifact (the all-seeing roles), valid for `download_expires_s`."""
        if actor.role not in DOWNLOAD_ROLES:
            raise Forbidden(
                "report_download_scoped",
                "评估报告全文仅限值守中心、应急管理局和管理员下载，请在线查看本单位范围的评估结果",
            )
        entry = self._entry(value)
        if artifact not in entry.keys:
            raise NotFound(*NOT_FOUND)
        url = self._archive.download_url(entry, artifact, self._download_expires_s)
        return entry, url, self._download_expires_s


def _entry_of(period: Period, requested_by: str, at: float, status: str) -> ReportEntry:
    return ReportEntry(
        report_id=report_id(period),
        kind=period.kind.value,
        label=period.label,
        start=period.start,
        end=period.end,
        generated_at=at,
        requested_by=requested_by,
        keys={},
        versions={},
        counts={},
        status=status,
    )


class DomainReportRenderer:
    """`ReportRenderer` over the report module: `build_report` (domain/evaluation/report.py), the model's JSON,
    `render_xlsx` and `render_html` (chalicelib/reports); `scoped` reads the stored JSON back and cuts it with the
    model's own scoping."""

    def __init__(self, policy: EvaluationPolicy, routing: RoutingPolicy) -> None:
        self._policy = policy
        self._routing = routing

    def render(
        self,
        period: Period,
        fleet: Fleet,
        warnings: Sequence[WarningFacts],
        device_days: Sequence[DeviceDay],
        generated_at: float,
        *,
        overdue_rectifications: Mapping[str, int] | None = None,
    ) -> RenderedReport:
        report = build_report(
            period,
            period.kind,
            fleet.profiles,
            warnings,
            device_days,
            {f.enterprise_id: f for f in fleet.fleets},
            self._policy,
            generated_at,
            area_names=fleet.area_names,
            routing=self._routing,
            overdue_rectifications=overdue_rectifications,
        )
        tallies = {}
        if period.kind is PeriodKind.MONTH:
            tallies[TALLIES] = tallies_of(report, warnings, device_days).model_dump_json().encode()
        return self._rendered(report, tallies, len(device_days))

    def render_months(
        self,
        period: Period,
        fleet: Fleet,
        months: Sequence[bytes],
        reread: Callable[[Sequence[str]], Sequence[WarningFacts]],
        generated_at: float,
        *,
        overdue_rectifications: Mapping[str, int] | None = None,
    ) -> RenderedReport:
        parsed = [MonthTallies.model_validate_json(month) for month in months]
        report = report_from_months(
            period,
            fleet.profiles,
            parsed,
            {facts.warning_id: facts for facts in reread(carried(parsed))},
            {f.enterprise_id: f for f in fleet.fleets},
            self._policy,
            generated_at,
            area_names=fleet.area_names,
            routing=self._routing,
            overdue_rectifications=overdue_rectifications,
        )
        return self._rendered(report, {}, 0)

    @staticmethod
    def _rendered(report: EvaluationReport, extra: Mapping[str, bytes], device_days: int) -> RenderedReport:
        from chalicelib.reports.html import render_html  # pygal and XlsxWriter: only where reports are made
        from chalicelib.reports.xlsx import render_xlsx

        return RenderedReport(
            document=report.model_dump_json().encode(),
            artifacts={"xlsx": render_xlsx(report), "html": render_html(report), **extra},
            counts={
                "enterprises": len(report.enterprises),
                "warnings": sum(report.overall.tally.raised.values()),
                "device_days": device_days,
                "priority": len(report.priority),
            },
        )

    def scoped(self, document: bytes, scope: Scope) -> dict[str, Any]:
        report = EvaluationReport.model_validate_json(document)
        return self._cut(report, scope).model_dump(mode="json")

    def _cut(self, report: EvaluationReport, scope: Scope) -> EvaluationReport:
        if scope.kind is ScopeKind.ALL:
            return report
        if scope.kind is ScopeKind.ENTERPRISE:
            try:
                return report.for_enterprise(scope.enterprise_id or "")
            except KeyError:
                raise NotFound(*NOT_FOUND) from None  # the enterprise was not evaluated in that period
        if scope.kind is ScopeKind.SECTORS:
            wanted = set(scope.sectors)
            if len(wanted) == 1:
                return report.for_sectors(scope.sectors)
            departments = {d for sector in wanted for d in self._routing.regulators.get(sector, ())}
            for department in sorted(departments):
                if set(sectors_for_department(department, self._routing)) == wanted:
                    return report.for_department(department)
            return report.for_sectors(scope.sectors)
        return report.for_areas(scope.area_codes)
