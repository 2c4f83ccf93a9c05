"""The evaluation's reads and archive (`adapters/evaluation_store.py`) on moto, tables and bucket from
infra/resources.json: which warnings a period reads (through the indexes, the warning table never scanned), level
changes read only for warnings whose level changed, the fleet with its grades, device-days derived from the offline
state, the versioned archive and its index."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from chalicelib.adapters import aws_clients, dynamo, presence
from chalicelib.adapters.dynamo import DynamoRegistry, DynamoWarningStore, WarningEventItem, WarningItem
from chalicelib.adapters.evaluation_store import DynamoEvaluationFacts, S3ReportArchive, reader
from chalicelib.bootstrap import online_ledger
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import LevelChange, facts_of
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.registry import Area, DeviceRegistration, StaticFactors
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.fakes import SAMPLE_ENTERPRISE, sample_warning
from chalicelib.services.ports import OfflineRecord, RenderedReport, ReportEntry
from chalicelib.settings import Settings
from local.aws import provision

MARCH = periods.month(2025, 3)
S, E = MARCH.start, MARCH.end
DAY = 86400.0
SINCE = S - DAY  # the repeat window
AS_OF = E + 3600
DEADLINES = DeadlinePolicy()


class Calls:
    """DynamoDB operations by (operation, table) through the models' clients."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[str, str]] = Counter()

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")
        self.seen[(str(model.name), str(body.get("TableName", "")))] += 1


@pytest.fixture(scope="module")
def settings(moto_server: str) -> Settings:
    provisioned = provision(moto_server, stage="test")
    found = Settings.from_env(
        {
            **provisioned.aws_env(),
            **provisioned.env(),
            "DYJ_STAGE": "test",
        }
    )
    dynamo.bind(found)
    presence.bind(found)
    return found


@pytest.fixture(scope="module")
def calls(settings: Settings) -> Calls:
    meter = Calls()
    for model in (WarningItem, WarningEventItem, dynamo.RegistryItem):
        model._get_connection().connection.client.meta.events.register("before-call.dynamodb", meter)
        reader(model).meta.events.register("before-call.dynamodb", meter)  # the evaluation's own clients
    return meter


def closed(record: WarningRecord, at: float) -> WarningRecord:
    return replace(record, status=WarningStatus.CLOSED, details={**record.details, "closure": {"at": at}})


@pytest.fixture(scope="module")
def stored(settings: Settings) -> dict[str, WarningRecord]:
    records = {
        "in-period": sample_warning("W-in", Level.RED, S + 2 * DAY, DEADLINES),
        "eve": closed(sample_warning("W-eve", Level.YELLOW, S - 3600, DEADLINES), S - 1800),
        "old-open": sample_warning("W-old-open", Level.ORANGE, S - 40 * DAY, DEADLINES),
        "old-closed-in": closed(sample_warning("W-old-in", Level.BLUE, S - 40 * DAY, DEADLINES), S + DAY),
        "old-closed-after": closed(sample_warning("W-old-after", Level.BLUE, S - 40 * DAY, DEADLINES), E + DAY),
        "old-closed-before": closed(
            sample_warning("W-old-gone", Level.BLUE, S - 40 * DAY, DEADLINES), S - 5 * DAY
        ),
        "april": sample_warning("W-april", Level.RED, E + 60, DEADLINES),
        "level-up": sample_warning("W-up", Level.YELLOW, S + 3 * DAY, DEADLINES),
    }
    store = DynamoWarningStore()
    for record in records.values():
        assert store.create(record)
    item = WarningItem.get("W-up")
    item.level_seq = 1
    item.save()
    change = {"previous_level": "yellow", "level": "red", "at": S + 3 * DAY + 600}
    WarningEventItem("W-up", 1, type="engine.level_up", at=change["at"], data=change).save()
    WarningEventItem("W-up", 2, type="acknowledge", at=S + 3 * DAY + 700, data={}).save()
    return records


def test_a_period_reads_what_was_raised_in_it_or_open_in_it_and_never_scans(
    stored: dict[str, WarningRecord], calls: Calls
) -> None:
    calls.seen.clear()
    facts = {f.warning_id: f for f in DynamoEvaluationFacts(DEADLINES).warnings(MARCH, AS_OF, SINCE)}
    assert sorted(facts) == sorted(["W-in", "W-eve", "W-old-open", "W-old-in", "W-old-after", "W-up"])
    operations = {operation for operation, _table in calls.seen}
    assert "Scan" not in operations
    warning_queries = sum(
        n for (op, table), n in calls.seen.items() if op == "Query" and table.endswith("-warnings")
    )
    assert warning_queries == 3 * len(Sector)  # raised in the span, open, closed since: one Query each per sector
    event_queries = [k for k in calls.seen if k[0] == "Query" and "event" in k[1]]
    assert sum(calls.seen[k] for k in event_queries) == 1, calls.seen  # only W-up's level changed
    assert facts["W-old-in"].closed_at == S + DAY
    expected = facts_of(
        stored["level-up"], DEADLINES, AS_OF, (LevelChange(at=S + 3 * DAY + 600, from_level=2, to_level=4),)
    )
    assert facts["W-up"] == expected


def test_the_fleet_has_every_enterprise_its_devices_and_their_worst_grades(settings: Settings) -> None:
    devices = [
        DeviceRegistration(
            device_id=f"D-{n}",
            enterprise_id=SAMPLE_ENTERPRISE.enterprise_id,
            enterprise_name=SAMPLE_ENTERPRISE.name,
            sector=Sector.HAZCHEM,
            unit_id="U",
            unit_name="罐区",
            kind="tank",
            area_codes=SAMPLE_ENTERPRISE.area_codes,
            static=StaticFactors(major_hazard_grade=grade),
        )
        for n, grade in enumerate((3, 2, None))
    ]
    area = Area(code=SAMPLE_ENTERPRISE.area_codes[0], name="天津港保税区", kind="dev_zone")
    DynamoRegistry.put_many(devices, [SAMPLE_ENTERPRISE], [], [area])
    fleet = DynamoEvaluationFacts(DEADLINES).fleet()
    assert [p.enterprise_id for p in fleet.profiles] == ["E1"]
    assert fleet.area_names == {area.code: "天津港保税区"}  # the reports name areas in Chinese
    assert fleet.profiles[0].major_hazard_grades == (2, 3)
    assert sorted(d.device_id for d in fleet.devices["E1"]) == ["D-0", "D-1", "D-2"]

    offline = presence.DynamoOfflineState()
    offline.mark_offline(OfflineRecord("D-0", E - 1.5 * DAY))  # since 30 March 12:00 local, still offline
    ledger = online_ledger(settings, clock=lambda: AS_OF)
    ledger.closed("D-1", S + 9.5 * DAY, S + 10.5 * DAY)  # 10 March 12:00 to 11 March 12:00, recovered
    days = list(ledger.device_days(MARCH, fleet, AS_OF))
    by_device: dict[str, list[Any]] = {}
    for day in days:
        by_device.setdefault(day.device_id, []).append(day)
    (whole,) = by_device["D-2"]
    assert (whole.day, whole.days, whole.online_s, whole.expected_s) == (date(2025, 3, 1), 31, 31 * DAY, 31 * DAY)
    run, the_30th, the_31st = by_device["D-0"]
    assert (run.days, run.online_s) == (29, 29 * DAY)
    assert (the_30th.day, the_30th.online_s, the_30th.undeclared_outage_s) == (date(2025, 3, 30), DAY / 2, DAY / 2)
    assert (the_31st.online_s, the_31st.undeclared_outage_s) == (0.0, DAY)
    before, the_10th, the_11th, after = by_device["D-1"]
    assert (before.days, the_10th.day, the_11th.day, after.day, after.days) == (
        9,
        date(2025, 3, 10),
        date(2025, 3, 11),
        date(2025, 3, 12),
        20,
    )
    assert the_10th.undeclared_outage_s == the_11th.undeclared_outage_s == DAY / 2
    assert sum(d.declared_outage_s for d in days) == 0


def test_the_archive_keeps_versions_and_one_index_entry_per_period(settings: Settings) -> None:
    s3 = aws_clients.s3(settings)
    archive = S3ReportArchive(s3, settings.evaluation_bucket)
    entry = ReportEntry("month-2025-03", "month", "2025-03", S, E, AS_OF, "duty-1", {}, {}, {"enterprises": 1})
    first = archive.store(entry, RenderedReport(b'{"run": 1}', {"xlsx": b"x1", "html": b"<p>1</p>"}, {}))
    second = archive.store(
        replace(entry, generated_at=AS_OF + 60), RenderedReport(b'{"run": 2}', {"xlsx": b"x2", "html": b"h"}, {})
    )
    assert first.keys == second.keys and first.keys["json"] == "evaluations/month/2025-03/report.json"
    assert first.versions["json"] and first.versions["json"] != second.versions["json"]
    assert json.loads(archive.document(second)) == {"run": 2}
    assert json.loads(archive.document(first)) == {"run": 1}  # the version named by the entry
    archive.store(
        ReportEntry(
            "year-2024", "year", "2024", periods.year(2024).start, periods.year(2024).end, AS_OF, "s", {}, {}, {}
        ),
        RenderedReport(b"{}", {}, {}),
    )
    assert [e.report_id for e in archive.entries(10)] == ["month-2025-03", "year-2024"]
    assert archive.entry("month-2025-03") == second
    assert archive.entry("month-2025-04") is None
    url = archive.download_url(second, "html", 60)
    assert "versionId=" in url and "report.html" in url
