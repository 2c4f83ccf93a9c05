"""In-memory fakes of the evaluation ports (`EvaluationFacts`, `DeviceDayLedger`, `ReportArchive`) and
`SummaryRenderer`, a light `ReportRenderer` over the domain's scores (its artifacts are placeholders) for unit
tests that need no workbook; the deployed renderer is `evaluation.DomainReportRenderer`."""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from chalicelib.domain.access import Scope, ScopeKind
from chalicelib.domain.evaluation.facts import DeviceDay, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseIndicators, by_sector, evaluate, overall
from chalicelib.domain.evaluation.periods import Period, PeriodKind
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.score import score_all
from chalicelib.domain.evaluation.tallies import MonthTallies, carried, month_tallies, sum_months
from chalicelib.services.fakes import Fake
from chalicelib.services.ports import Fleet, RenderedReport, ReportEntry


class FakeEvaluationFacts(Fake):
    """The fleet and every warning's facts; `warnings` keeps the adapter's contract (raised before the end, and
    raised since `since` or open at it)."""

    def __init__(self, fleet: Fleet, warnings: Sequence[WarningFacts] = ()) -> None:
        super().__init__()
        self.stored_fleet = fleet
        self.stored: list[WarningFacts] = list(warnings)

    def fleet(self) -> Fleet:
        with self._call("fleet"):
            return self.stored_fleet

    def warnings(self, period: Period, as_of: float, since: float) -> Iterator[WarningFacts]:
        with self._call("warnings"):
            found = [
                w
                for w in self.stored
                if w.raised_at < period.end
                and (w.raised_at >= since or w.closed_at is None or w.closed_at >= since)
            ]
        yield from found

    def warnings_by_id(self, warning_ids: Sequence[str], as_of: float) -> Iterator[WarningFacts]:
        with self._call("warnings_by_id"):
            wanted = set(warning_ids)
            found = [w for w in self.stored if w.warning_id in wanted]
        yield from found


class FakeDeviceDayLedger(Fake):
    def __init__(self, days: Sequence[DeviceDay] = ()) -> None:
        super().__init__()
        self.stored: list[DeviceDay] = list(days)

    def device_days(self, period: Period, fleet: Fleet, as_of: float) -> Iterator[DeviceDay]:
        with self._call("device_days"):
            found = [day for day in self.stored if period.contains_day(day.day)]
        yield from found


class FakeEvaluationRequests(Fake):
    """The evaluation queue: the requests sent, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def send(self, report_id: str, requested_by: str) -> None:
        with self._call("send"):
            self.sent.append((report_id, requested_by))


class SummaryRenderer:
    """Scores and sector rollups as the JSON document; a one-table HTML page; the 'workbook' is the CSV of the
    scores (a placeholder for the XLSX)."""

    def __init__(self, policy: EvaluationPolicy | None = None) -> None:
        self._policy = policy or EvaluationPolicy()

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
        results = evaluate(period, fleet.profiles, warnings, device_days, fleet.fleets, self._policy)
        extra = {}
        if period.kind is PeriodKind.MONTH:
            tallies = month_tallies(
                period, generated_at, {r.enterprise_id: r.tally for r in results}, {}, warnings, device_days
            )
            extra["tallies"] = tallies.model_dump_json().encode()
        return self._summary(period, fleet, results, generated_at, len(device_days), overdue_rectifications, extra)

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
        again = {w.warning_id: w for w in reread(carried(parsed))}
        fleets = {f.enterprise_id: f for f in fleet.fleets}
        results, _daily = sum_months(period, fleet.profiles, parsed, again, fleets)
        return self._summary(period, fleet, results, generated_at, 0, overdue_rectifications, {})

    def _summary(
        self,
        period: Period,
        fleet: Fleet,
        results: Sequence[EnterpriseIndicators],
        generated_at: float,
        device_days: int,
        overdue_rectifications: Mapping[str, int] | None,
        extra: Mapping[str, bytes],
    ) -> RenderedReport:
        cards = score_all(fleet.profiles, results, self._policy)
        overdue = overdue_rectifications or {}
        rows = [
            {**card.model_dump(mode="json"), "overdue_rectifications": overdue.get(card.enterprise_id, 0)}
            for card in cards
        ]
        total = overall(results)
        document = {
            "period": period.model_dump(mode="json"),
            "generated_at": generated_at,
            "enterprises": rows,
            "sectors": {sector: tally.model_dump(mode="json") for sector, tally in by_sector(results).items()},
            "overall": total.model_dump(mode="json"),
        }
        cells = "".join(
            f"<tr><td>{html.escape(row['name'] or row['enterprise_id'])}</td><td>{row['score']}</td></tr>"
            for row in rows
        )
        page = f"<html><body><h1>评估报告 {period.label}</h1><table>{cells}</table></body></html>"
        sheet = "\n".join(f"{row['enterprise_id']},{row['score']},{row['band']}" for row in rows)
        return RenderedReport(
            document=json.dumps(document, ensure_ascii=False).encode(),
            artifacts={"xlsx": sheet.encode(), "html": page.encode(), **extra},
            counts={
                "enterprises": len(rows),
                "warnings": sum(total.raised.values()),
                "device_days": device_days,
            },
        )

    def scoped(self, document: bytes, scope: Scope) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(document)
        rows: list[dict[str, Any]] = report["enterprises"]
        if scope.kind is ScopeKind.ALL:
            return report
        if scope.kind is ScopeKind.ENTERPRISE:
            keep = [row for row in rows if row["enterprise_id"] == scope.enterprise_id]
            return {**report, "enterprises": keep, "sectors": {}}
        if scope.kind is ScopeKind.SECTORS:
            sectors = {sector.value for sector in scope.sectors}
            keep = [row for row in rows if row["sector"] in sectors]
            return {
                **report,
                "enterprises": keep,
                "sectors": {k: v for k, v in report["sectors"].items() if k in sectors},
            }
        areas = set(scope.area_codes)
        keep = [row for row in rows if areas.intersection(row["area_codes"])]
        return {**report, "enterprises": keep, "sectors": {}}


class FakeReportArchive(Fake):
    """Keys as the S3 archive writes them, a version counter per key, the index by report id."""

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, list[bytes]] = {}  # key -> every version, oldest first
        self.index: dict[str, ReportEntry] = {}

    def store(self, entry: ReportEntry, report: RenderedReport) -> ReportEntry:
        with self._call("store"):
            prefix = f"evaluations/{entry.kind}/{entry.label}/report"
            keys = {"json": f"{prefix}.json", **{fmt: f"{prefix}.{fmt}" for fmt in report.artifacts}}
            bodies = {"json": report.document, **report.artifacts}
            versions = {}
            for name, key in keys.items():
                self.objects.setdefault(key, []).append(bodies[name])
                versions[name] = str(len(self.objects[key]))
            stored = replace(entry, keys=keys, versions=versions)
            self.index[entry.report_id] = stored
            return stored

    def mark(self, entry: ReportEntry) -> ReportEntry:
        with self._call("mark"):
            before = self.index.get(entry.report_id)
            if before is not None and "json" in before.keys:
                entry = replace(entry, keys=before.keys, versions=before.versions, counts=before.counts)
            self.index[entry.report_id] = entry
            return entry

    def entries(self, limit: int) -> list[ReportEntry]:
        with self._call("entries"):
            ordered = sorted(self.index.values(), key=lambda e: (e.end, e.start, e.report_id), reverse=True)
            return ordered[:limit]

    def entry(self, report_id: str) -> ReportEntry | None:
        with self._call("entry"):
            return self.index.get(report_id)

    def document(self, entry: ReportEntry) -> bytes:
        with self._call("document"):
            return self.objects[entry.keys["json"]][-1]

    def artifact(self, entry: ReportEntry, name: str) -> bytes:
        with self._call("artifact"):
            return self.objects[entry.keys[name]][int(entry.versions[name]) - 1]

    def download_url(self, entry: ReportEntry, artifact: str, expires_s: int) -> str:
        with self._call("download_url"):
            return f"https://reports.example/{entry.keys[artifact]}?version={entry.versions[artifact]}&ttl={expires_s}"
