"""Evaluation reports through the API and the schedule's handler (`chalice.test.Client`, moto, real ID tokens):
on-demand runs (who may, which periods), idempotent re-runs (a new S3 version, one index entry), the index, the
report scoped to the caller, downloads (presigned, the all-seeing roles only)."""

from __future__ import annotations

import json
import time
import urllib.request

import boto3
import pytest
from chalice.test import Client

from chalicelib.adapters import aws_clients
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.levels import Level
from chalicelib.settings import Settings
from tests.functional.api_fixtures import PROJECT_DIR, STAGE, ApiEnv, Http, api_env, http, raise_warning

DUTY, ADMIN, EMERGENCY = "duty-01", "admin", "emg-01"
ENTERPRISE = "ent-e-hc-01"  # E-HC-01: hazchem, areas TJFTZ and GULIN
REGULATOR = "reg-emergency-bureau"  # hazchem and chem_pipeline
AREA = "area-tjftz"
FIXTURES = (api_env, http)
LAST_MONTH = periods.last_complete(PeriodKind.MONTH, time.time())
REPORT = f"month-{LAST_MONTH.label}"


@pytest.fixture(scope="module")
def evaluated(api_env: ApiEnv, http: Http) -> dict[str, object]:
    """Two red warnings of E-HC-01 and one of E-RT-01 raised last month, then last month evaluated by the duty
    centre."""
    for enterprise, hours in (("E-HC-01", 30), ("E-HC-01", 60), ("E-RT-01", 90)):
        raise_warning(api_env.registry, enterprise, Level.RED, raised_at=LAST_MONTH.start + hours * 3600)
    answer = http.post("/evaluations", DUTY, _body())
    assert answer.status == 202, answer.body  # queued for the evaluate_requested function
    assert (answer.body["report_id"], answer.body["status"], answer.body["formats"]) == (REPORT, "queued", [])
    queued = http.get(f"/evaluations/{REPORT}", DUTY)
    assert queued.status == 200 and queued.body["entry"]["status"] == "queued" and queued.body["report"] == {}
    assert run_requested(api_env) == [REPORT]
    stored = http.get(f"/evaluations/{REPORT}", DUTY)
    assert stored.status == 200 and stored.body["entry"]["status"] == "done"
    body: dict[str, object] = stored.body["entry"]
    return body


def run_requested(api_env: ApiEnv) -> list[str]:
    """The evaluate_requested function over what POST /evaluations queued, as its event source would run it (one
    message per invocation); the report ids it stored."""
    from app import app

    sqs = boto3.client("sqs", endpoint_url=api_env.infra.endpoint_url, region_name=api_env.infra.region)
    url = api_env.infra.queue_url("EvaluationQueue")
    done: list[str] = []
    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                event = client.events.generate_sqs_event(message_bodies=[message["Body"]], queue_name=url)
                done += client.lambda_.invoke("evaluate_requested", event).payload["report_ids"]
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return done


def _body(kind: str = "month", period: periods.Period = LAST_MONTH) -> dict[str, object]:
    year, _, rest = period.label.partition("-")
    return {"kind": kind, "year": int(year), "number": int(rest) if rest else None}


def test_an_on_demand_run_stores_the_report_and_its_entry(evaluated: dict[str, object], http: Http) -> None:
    assert evaluated["report_id"] == REPORT
    assert evaluated["requested_by"] == DUTY
    assert sorted(evaluated["formats"]) == ["html", "xlsx"]  # type: ignore[arg-type]
    assert evaluated["counts"]["warnings"] == 3  # type: ignore[index]
    assert evaluated["counts"]["enterprises"] >= 2  # type: ignore[index]
    listed = http.get("/evaluations", ENTERPRISE)
    assert listed.status == 200
    assert [item["report_id"] for item in listed.body["items"]] == [REPORT]


def test_reports_are_scoped_to_the_caller(evaluated: dict[str, object], http: Http) -> None:
    def rows(user: str) -> list[dict[str, object]]:
        answer = http.get(f"/evaluations/{REPORT}", user)
        assert answer.status == 200, answer.body
        assert answer.body["entry"]["report_id"] == REPORT
        found: list[dict[str, object]] = answer.body["report"]["enterprises"]
        return found

    everyone = rows(DUTY)
    assert {row["enterprise_id"] for row in everyone} >= {"E-HC-01", "E-RT-01"}
    assert len(rows(EMERGENCY)) == len(everyone) == len(rows(ADMIN))
    own = rows(ENTERPRISE)
    assert [row["enterprise_id"] for row in own] == ["E-HC-01"]
    assert own[0]["card"]["warning_points_raw"] == 20.0  # two reds raised last month
    assert {row["sector"] for row in rows(REGULATOR)} <= {"hazchem", "chem_pipeline"}
    assert "E-HC-01" in {row["enterprise_id"] for row in rows(REGULATOR)}
    assert all("TJFTZ" in row["area_codes"] for row in rows(AREA))  # type: ignore[operator]
    assert http.get("/evaluations/month-1999-01", DUTY).code == "evaluation_not_found"
    assert http.get("/evaluations/not-a-report", DUTY).code == "evaluation_not_found"


def test_downloads_are_presigned_for_the_all_seeing_roles(evaluated: dict[str, object], http: Http) -> None:
    answer = http.get(f"/evaluations/{REPORT}/download?format=html", EMERGENCY)
    assert answer.status == 200, answer.body
    with urllib.request.urlopen(answer.body["url"], timeout=10) as response:
        page = response.read().decode("utf-8")
    assert "津港石化储运有限公司" in page  # E-HC-01, listed in the district's page
    workbook = http.get(f"/evaluations/{REPORT}/download", DUTY).body
    assert workbook["format"] == "xlsx"
    with urllib.request.urlopen(workbook["url"], timeout=10) as response:
        assert response.read(2) == b"PK"  # an OOXML zip
    for user in (ENTERPRISE, REGULATOR, AREA):
        refused = http.get(f"/evaluations/{REPORT}/download?format=xlsx", user)
        assert (refused.status, refused.code) == (403, "report_download_scoped")
        assert "仅限" in refused.body["message"]
    assert http.get(f"/evaluations/{REPORT}/download?format=pdf", DUTY).code == "invalid_request"


def test_a_re_run_replaces_the_entry_with_a_new_version(
    evaluated: dict[str, object], api_env: ApiEnv, http: Http
) -> None:
    again = http.post("/evaluations", ADMIN, _body())
    assert again.status == 202 and again.body["report_id"] == REPORT
    # queued: the last report stays readable meanwhile
    assert again.body["status"] == "queued" and sorted(again.body["formats"]) == ["html", "xlsx"]
    assert run_requested(api_env) == [REPORT]
    rerun = http.get(f"/evaluations/{REPORT}", DUTY).body["entry"]
    assert rerun["status"] == "done" and rerun["requested_by"] == ADMIN
    assert rerun["generated_at"] >= evaluated["generated_at"]  # type: ignore[operator]
    listed = http.get("/evaluations", DUTY).body["items"]
    assert [item["report_id"] for item in listed].count(REPORT) == 1
    settings = Settings.from_env()
    versions = aws_clients.s3(settings).list_object_versions(
        Bucket=settings.evaluation_bucket, Prefix=f"evaluations/month/{LAST_MONTH.label}/report.json"
    )["Versions"]
    assert len(versions) >= 2


@pytest.mark.parametrize("user", [ENTERPRISE, REGULATOR, AREA, EMERGENCY])
def test_only_the_duty_centre_and_admins_run_on_demand(http: Http, user: str) -> None:
    assert http.post("/evaluations", user, _body()).code == "role_not_permitted"


def test_periods_must_exist_and_have_ended(http: Http) -> None:
    this_month = periods.containing(PeriodKind.MONTH, time.time())
    assert http.post("/evaluations", DUTY, _body(period=this_month)).code == "period_not_ended"
    assert http.post("/evaluations", DUTY, {"kind": "quarter", "year": 2025, "number": 5}).code == "invalid_period"
    assert http.post("/evaluations", DUTY, {"kind": "month", "year": 2025}).code == "invalid_period"
    assert http.post("/evaluations", DUTY, {"kind": "week", "year": 2025}).code == "invalid_request"


def test_the_quarterly_schedule_evaluates_the_last_quarter(api_env: ApiEnv, http: Http) -> None:
    from app import app

    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        answer = client.lambda_.invoke("evaluate_quarter", client.events.generate_cw_event("", "", {}, []))
    quarter = periods.last_complete(PeriodKind.QUARTER, time.time())
    assert answer.payload["report_id"] == f"quarter-{quarter.label}"
    stored = http.get(f"/evaluations/quarter-{quarter.label}", DUTY)
    assert stored.status == 200 and stored.body["entry"]["requested_by"] == "system:schedule"
    assert json.dumps(stored.body["report"]["period"]["label"]) == f'"{quarter.label}"'


def test_the_duty_centre_evaluates_a_custom_window_that_has_ended(api_env: ApiEnv, http: Http) -> None:
    now = time.time()
    raise_warning(api_env.registry, "E-FR-01", Level.ORANGE, raised_at=now - 600)
    answer = http.post("/evaluations", DUTY, {"kind": "custom", "start": now - 900, "end": now - 1})
    assert answer.status == 202, answer.body
    window = periods.custom(now - 900, now - 1)
    assert (answer.body["report_id"], answer.body["kind"]) == (f"custom-{window.label}", "custom")
    assert run_requested(api_env) == [f"custom-{window.label}"]
    entry = http.get(f"/evaluations/custom-{window.label}", DUTY).body["entry"]
    assert entry["counts"]["warnings"] == 1  # last month's warnings are not in the window
    stored = http.get(f"/evaluations/custom-{window.label}", EMERGENCY)
    assert stored.status == 200 and stored.body["report"]["period"]["kind"] == "custom"
    rows = {row["enterprise_id"]: row for row in stored.body["report"]["enterprises"]}
    raised = rows["E-FR-01"]["tally"]["raised"]
    assert (raised["orange"], sum(raised.values())) == (1, 1)
    download = http.get(f"/evaluations/custom-{window.label}/download?format=html", DUTY)
    with urllib.request.urlopen(download.body["url"], timeout=10) as response:
        assert "至" in response.read().decode("utf-8")  # the window's local times, 起 至 止


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"kind": "custom", "start": 1_700_000_000, "end": 1_700_000_059}, "invalid_period"),  # under a minute
        ({"kind": "custom", "start": 1_700_000_000, "end": 1_700_000_000 + 32 * 86400}, "invalid_period"),
        ({"kind": "custom", "start": time.time() - 60, "end": time.time() + 3600}, "period_not_ended"),
        ({"kind": "custom", "start": 1_700_000_000}, "invalid_request"),
        ({"kind": "custom", "year": 2025, "start": 1_700_000_000, "end": 1_700_003_600}, "invalid_request"),
        ({"kind": "month", "year": 2025, "number": 3, "start": 1_700_000_000}, "invalid_request"),
    ],
)
def test_custom_windows_are_validated(http: Http, body: dict[str, object], code: str) -> None:
    assert http.post("/evaluations", DUTY, body).code == code
