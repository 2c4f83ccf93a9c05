"""EvaluationService over fakes: which facts a run reads, idempotent runs per (kind, period), the schedule's
period, who may run, read and download."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from chalicelib.domain.errors import Forbidden, NotFound, ValidationFailed
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseProfile
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.policy import RoutingPolicy
from chalicelib.domain.sectors import Sector
from chalicelib.services.evaluation import (
    CUSTOM_MAX_S,
    DomainReportRenderer,
    EvaluationService,
    custom_period,
    period_of,
    period_of_id,
    report_id,
)
from chalicelib.services.evaluation_fakes import (
    FakeDeviceDayLedger,
    FakeEvaluationFacts,
    FakeEvaluationRequests,
    FakeReportArchive,
    SummaryRenderer,
)
from chalicelib.services.ports import Fleet

MARCH = periods.month(2025, 3)
NOW = MARCH.end + 3600.0  # 2025-04-01 01:00 local: the monthly schedule's run
DUTY = Actor(user_id="duty-1", role=Role.DUTY)
ADMIN = Actor(user_id="admin-1", role=Role.ADMIN)
ENTERPRISE = Actor(user_id="ent-1", role=Role.ENTERPRISE, enterprise_id="E1")
REGULATOR = Actor(user_id="reg-1", role=Role.REGULATOR, sectors=(Sector.FIRE,))
AREA = Actor(user_id="area-1", role=Role.AREA, area_codes=("A2",))
EMERGENCY = Actor(user_id="bureau-1", role=Role.EMERGENCY)


def warning(warning_id: str, enterprise_id: str, raised: float, closed: float | None = None) -> WarningFacts:
    sector = Sector.HAZCHEM if enterprise_id == "E1" else Sector.FIRE
    return WarningFacts(
        warning_id=warning_id,
        device_id=f"D-{enterprise_id}",
        enterprise_id=enterprise_id,
        sector=sector,
        risk_type="tank_level",
        level=Level.RED,
        peak_level=Level.RED,
        raised_at=raised,
        closed_at=closed,
    )


def profiles() -> list[EnterpriseProfile]:
    return [
        EnterpriseProfile(enterprise_id="E1", name="甲化工", sector=Sector.HAZCHEM, area_codes=("A1",)),
        EnterpriseProfile(enterprise_id="E2", name="乙商场", sector=Sector.FIRE, area_codes=("A2",)),
    ]


class Rig:
    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.facts = FakeEvaluationFacts(
            Fleet(profiles=profiles(), devices={}),
            [
                warning("W-march", "E1", MARCH.start + 86400),
                warning("W-old-open", "E1", MARCH.start - 30 * 86400),  # open all period
                warning("W-old-closed", "E2", MARCH.start - 30 * 86400, closed=MARCH.start - 10 * 86400),
                warning("W-eve", "E2", MARCH.start - 3600, closed=MARCH.start - 1800),  # in the repeat window
                warning("W-april", "E2", MARCH.end + 60),
            ],
        )
        self.ledger = FakeDeviceDayLedger(
            [
                DeviceDay(
                    device_id="D-E2",
                    enterprise_id="E2",
                    sector=Sector.FIRE,
                    day=date(2025, 3, 1),
                    days=31,
                    expected_s=31 * 86400,
                    online_s=31 * 86400 - 7200,
                    undeclared_outage_s=7200,
                )
            ]
        )
        self.archive = FakeReportArchive()
        self.service = EvaluationService(
            self.facts, self.ledger, SummaryRenderer(), self.archive, EvaluationPolicy(), lambda: self.now
        )


def test_a_run_reads_the_period_and_what_was_open_in_it_and_stores_one_entry() -> None:
    rig = Rig()
    entry = rig.service.run(PeriodKind.MONTH, MARCH, "duty-1")
    assert entry.report_id == "month-2025-03"
    assert rig.service.last_run is not None
    assert rig.service.last_run.warnings == 3  # W-march, W-old-open, W-eve (repeat window); not closed before
    assert entry.counts["enterprises"] == 2
    assert entry.counts["warnings"] == 1  # raised in March
    assert set(entry.keys) == {"json", "xlsx", "html", "tallies"}  # a month keeps its tallies for its quarter
    document = json.loads(rig.archive.document(entry))
    rows = {row["enterprise_id"]: row for row in document["enterprises"]}
    assert rows["E1"]["warning_points_raw"] == 10.0  # one red raised in March
    # 在线率 1 - 7200 / (31 × 86400) = 99.73 % is above the target: only the 2 undeclared hours count, 0.5 each
    assert rows["E2"]["data_quality_points"] == 1.0


def test_a_re_run_writes_new_versions_and_replaces_the_entry() -> None:
    rig = Rig()
    first = rig.service.run(PeriodKind.MONTH, MARCH, "system:schedule")
    rig.now += 86400
    second = rig.service.run(PeriodKind.MONTH, MARCH, "duty-1")
    assert first.versions["json"] == "1" and second.versions["json"] == "2"
    assert [e.report_id for e in rig.archive.entries(10)] == ["month-2025-03"]
    assert rig.archive.entry("month-2025-03") == second
    assert second.generated_at == first.generated_at + 86400


def test_the_schedule_evaluates_the_last_complete_period() -> None:
    rig = Rig()
    assert rig.service.run_scheduled(PeriodKind.MONTH).report_id == "month-2025-03"
    assert rig.service.run_scheduled(PeriodKind.QUARTER).report_id == "quarter-2025-Q1"
    assert rig.service.run_scheduled(PeriodKind.YEAR).report_id == "year-2024"
    ids = [e.report_id for e in rig.archive.entries(20)]
    # a quarter and a year sum their months' tallies: the months not run yet were run on the way
    assert ids[:3] == ["month-2025-03", "quarter-2025-Q1", "month-2025-02"]
    assert set(ids) == {"quarter-2025-Q1", "year-2024", *(f"month-2025-{m:02d}" for m in (1, 2, 3))} | {
        f"month-2024-{m:02d}" for m in range(1, 13)
    }
    assert rig.archive.calls["artifact"] == 3 + 12  # each month's tallies read once


def test_a_period_not_ended_is_refused() -> None:
    rig = Rig(now=MARCH.end - 1)
    with pytest.raises(ValidationFailed) as caught:
        rig.service.run(PeriodKind.MONTH, MARCH, "duty-1")
    assert caught.value.code == "period_not_ended"
    assert rig.archive.calls["store"] == 0


@pytest.mark.parametrize(
    ("kind", "year", "number", "label"),
    [
        (PeriodKind.MONTH, 2025, 3, "2025-03"),
        (PeriodKind.QUARTER, 2025, 4, "2025-Q4"),
        (PeriodKind.YEAR, 2024, None, "2024"),
    ],
)
def test_periods_named_by_the_api(kind: PeriodKind, year: int, number: int | None, label: str) -> None:
    period = period_of(kind, year, number)
    assert period.label == label
    assert period_of_id(report_id(period)) == period


@pytest.mark.parametrize(
    ("kind", "number"), [(PeriodKind.MONTH, 13), (PeriodKind.QUARTER, 5), (PeriodKind.MONTH, None)]
)
def test_invalid_periods(kind: PeriodKind, number: int | None) -> None:
    with pytest.raises(ValidationFailed):
        period_of(kind, 2025, number)


@pytest.mark.parametrize(
    "value",
    [
        "month-2025-3",
        "month-2025-Q1",
        "quarter-2025-03",
        "week-2025-01",
        "year-2025-1",
        "custom-20250230T000000-20250301T000000",  # no 30 February
        "custom-20250301T000000",
        "custom-2025-03-01",
    ],
)
def test_malformed_report_ids_name_no_period(value: str) -> None:
    assert period_of_id(value) is None


@pytest.mark.parametrize("actor", [DUTY, ADMIN])
def test_duty_and_admins_run_on_demand(actor: Actor) -> None:
    rig = Rig()
    entry = rig.service.request(actor, PeriodKind.MONTH, 2025, 3)
    assert entry.requested_by == actor.user_id


@pytest.mark.parametrize("actor", [ENTERPRISE, REGULATOR, AREA, EMERGENCY])
def test_other_roles_may_not_run(actor: Actor) -> None:
    with pytest.raises(Forbidden):
        Rig().service.request(actor, PeriodKind.MONTH, 2025, 3)


def test_a_custom_window_is_run_on_demand_with_what_happened_in_it() -> None:
    rig = Rig()
    start, end = MARCH.start + 86400 - 30.5, MARCH.start + 86400 + 180.9  # around W-march's raise
    entry = rig.service.request_custom(DUTY, start, end)
    assert entry.report_id == "custom-20250301T235929-20250302T000300"  # whole seconds, local times
    assert (entry.kind, entry.start, entry.end) == ("custom", MARCH.start + 86400 - 31, MARCH.start + 86400 + 180)
    assert entry.counts["warnings"] == 1
    assert period_of_id(entry.report_id) == custom_period(start, end)
    _entry, document = rig.service.read(EMERGENCY, entry.report_id)
    assert document["period"]["kind"] == "custom"


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (NOW - 59, NOW, "invalid_period"),  # shorter than a minute
        (NOW - CUSTOM_MAX_S - 1, NOW, "invalid_period"),  # longer than 31 days
        (NOW, NOW - 3600, "invalid_period"),  # ends before it starts
        (NOW - 3600, NOW + 1, "period_not_ended"),
    ],
)
def test_custom_windows_are_bounded_and_ended(start: float, end: float, code: str) -> None:
    rig = Rig()
    with pytest.raises(ValidationFailed) as caught:
        rig.service.request_custom(DUTY, start, end)
    assert caught.value.code == code
    assert rig.archive.calls["store"] == 0


def test_a_custom_window_is_not_named_by_a_year_and_number() -> None:
    with pytest.raises(ValidationFailed):
        period_of(PeriodKind.CUSTOM, 2025, 3)


@pytest.mark.parametrize("actor", [ENTERPRISE, REGULATOR, AREA, EMERGENCY])
def test_other_roles_may_not_run_a_custom_window(actor: Actor) -> None:
    with pytest.raises(Forbidden):
        Rig().service.request_custom(actor, NOW - 3600, NOW)


def _rows(rig: Rig, actor: Actor) -> Any:
    _entry, document = rig.service.read(actor, "month-2025-03")
    return sorted(row["enterprise_id"] for row in document["enterprises"])


def test_reads_are_scoped() -> None:
    rig = Rig()
    rig.service.run(PeriodKind.MONTH, MARCH, "duty-1")
    assert _rows(rig, DUTY) == ["E1", "E2"]
    assert _rows(rig, EMERGENCY) == ["E1", "E2"]
    assert _rows(rig, ENTERPRISE) == ["E1"]
    assert _rows(rig, REGULATOR) == ["E2"]
    assert _rows(rig, AREA) == ["E2"]
    _entry, own = rig.service.read(ENTERPRISE, "month-2025-03")
    assert "overall" in own


def test_missing_reports_are_not_found() -> None:
    rig = Rig()
    for value in ("month-2025-03", "nonsense"):
        with pytest.raises(NotFound):
            rig.service.read(DUTY, value)


def test_downloads_are_for_the_all_seeing_roles() -> None:
    rig = Rig()
    rig.service.run(PeriodKind.MONTH, MARCH, "duty-1")
    _entry, url, expires = rig.service.download(EMERGENCY, "month-2025-03", "xlsx")
    assert "evaluations/month/2025-03/report.xlsx" in url and expires == 300
    for actor in (ENTERPRISE, REGULATOR, AREA):
        with pytest.raises(Forbidden) as caught:
            rig.service.download(actor, "month-2025-03", "html")
        assert caught.value.code == "report_download_scoped"
    with pytest.raises(NotFound):
        rig.service.download(DUTY, "month-2025-03", "pdf")


def test_the_report_module_renders_and_scopes_the_stored_report() -> None:
    rig = Rig()
    rig.facts.stored_fleet = Fleet(profiles=profiles(), devices={}, area_names={"A1": "泰达", "A2": "新港街道"})
    rig.service = EvaluationService(
        rig.facts,
        rig.ledger,
        DomainReportRenderer(EvaluationPolicy(), RoutingPolicy()),
        rig.archive,
        EvaluationPolicy(),
        lambda: rig.now,
    )
    entry = rig.service.run(PeriodKind.MONTH, MARCH, "duty-1")
    assert rig.archive.objects[entry.keys["xlsx"]][-1][:2] == b"PK"
    assert b"<svg" in rig.archive.objects[entry.keys["html"]][-1]
    assert entry.counts["enterprises"] == 2 and entry.counts["warnings"] == 1
    assert _rows(rig, DUTY) == ["E1", "E2"]
    assert _rows(rig, ENTERPRISE) == ["E1"]
    assert _rows(rig, REGULATOR) == ["E2"]
    assert _rows(rig, AREA) == ["E2"]
    report = json.loads(rig.archive.objects[entry.keys["json"]][-1])
    assert report["area_names"] == {"A1": "泰达", "A2": "新港街道"}  # the registry's names, not the codes
    assert "新港街道" in rig.archive.objects[entry.keys["html"]][-1].decode()
    _entry, own = rig.service.read(ENTERPRISE, "month-2025-03")
    assert own["scope"]["kind"] == "enterprise" and own["overall"]["tally"]["enterprises"] == 2
    hazchem = Actor(user_id="reg-2", role=Role.REGULATOR, sectors=(Sector.HAZCHEM, Sector.CHEM_PIPELINE))
    _entry, department = rig.service.read(hazchem, "month-2025-03")
    assert department["scope"]["kind"] == "department"
    assert [row["enterprise_id"] for row in department["enterprises"]] == ["E1"]
    stranger = Actor(user_id="ent-9", role=Role.ENTERPRISE, enterprise_id="E9")
    with pytest.raises(NotFound):
        rig.service.read(stranger, "month-2025-03")  # not evaluated in that period


def test_with_a_request_queue_an_on_demand_run_is_queued_then_run_by_the_evaluation_function() -> None:
    rig = Rig()
    requests = FakeEvaluationRequests()
    rig.service = EvaluationService(
        rig.facts,
        rig.ledger,
        SummaryRenderer(),
        rig.archive,
        EvaluationPolicy(),
        lambda: rig.now,
        requests=requests,
    )
    queued = rig.service.request(DUTY, PeriodKind.MONTH, 2025, 3)
    assert (queued.report_id, queued.status, dict(queued.keys)) == ("month-2025-03", "queued", {})
    assert requests.sent == [("month-2025-03", "duty-1")] and rig.facts.calls["warnings"] == 0  # nothing read yet
    entry, report = rig.service.read(EMERGENCY, "month-2025-03")
    assert (entry.status, report) == ("queued", {})  # no report yet: the entry tells where the run stands

    done = rig.service.run_requested("month-2025-03", "duty-1")
    assert done.status == "done" and "json" in done.keys and rig.archive.entry("month-2025-03") == done

    # a re-run queued meanwhile keeps the last report readable; a failing run is marked failed and raised
    again = rig.service.request(ADMIN, PeriodKind.MONTH, 2025, 3)
    assert again.status == "queued" and again.keys == done.keys
    rig.facts.fail("warnings", error=RuntimeError("DynamoDB unavailable"))
    with pytest.raises(RuntimeError):
        rig.service.run_requested("month-2025-03", "admin-1")
    failed = rig.archive.entry("month-2025-03")
    assert failed is not None and failed.status == "failed" and failed.keys == done.keys
    # what cannot be run is refused before anything is queued
    with pytest.raises(ValidationFailed) as refused:
        rig.service.request(DUTY, PeriodKind.MONTH, 2025, 4)
    assert refused.value.code == "period_not_ended" and len(requests.sent) == 2
