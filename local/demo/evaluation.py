"""The demo's last act: the duty officer evaluates what the demo just produced (评估报告, docs/evaluation.md).

Periods are calendar months, quarters and years, and only ended ones are evaluated; the demo's period is its own
few minutes, so the duty officer asks for a custom window (`POST /evaluations {kind: custom, start, end}`): from
the moment the platform began to start (before any warning) to now (after the drain: every warning raised, people
stopped). The run goes through the API as a duty console would, hence through `bootstrap.evaluation()` on moto's
DynamoDB and S3, as the on-demand route and the scheduled Lambdas do. Then the report is read back
(`GET /evaluations/{id}`, the duty centre sees all of it), the workbook and the page downloaded by their presigned
URLs (`GET /evaluations/{id}/download`) and written where a person can open them, and the index entry read for the
S3 keys (the API answers formats, not keys).
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from chalicelib.domain.evaluation.indicators import LEVEL_KEYS
from chalicelib.domain.evaluation.report import EnterpriseRow, EvaluationReport
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.warnings import WarningRecord
from local.actors import ApiClient, ApiResponse
from local.demo.summary import EnterpriseResult, EvaluationSummary
from local.users import DUTY_USER
from local.waiting import WaitTimeoutError, wait_until

REPORT_FILES = {"json": "report.json", "xlsx": "report.xlsx", "html": "report.html"}
DOWNLOADED = ("xlsx", "html")
SHOWN = 3  # enterprises shown at each end of the ranking
MIN_WINDOW_S = 60  # the shortest custom window the API takes (services.evaluation.CUSTOM_MIN_S)
DOWNLOAD_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 120.0  # the demo's window: a few seconds of work for the evaluate_requested function


def evaluate_demo(
    api_url: str,
    started_at: float,
    enterprise_ids: Sequence[str],
    records: Sequence[WarningRecord],
    report_dir: Path,
) -> EvaluationSummary:
    """Evaluate [started_at, now) as the duty officer, read the report back, download its artifacts into
    `report_dir`. A refusal or failure is recorded in the summary (`problem`), for the checks to report."""
    began = time.monotonic()
    end = float(int(time.time()))
    start = min(float(int(started_at)), end - MIN_WINDOW_S)
    client = ApiClient(api_url, DUTY_USER, "dyj-demo-duty-console")
    outcome = EvaluationSummary(
        report_id=None,
        start=start,
        end=end,
        requested_by=DUTY_USER,
        answers={},
        problem=None,
        enterprises=0,
        missing_enterprises=sorted(enterprise_ids),
        bands={},
        report_raised={},
        demo_raised=raised_by_peak_level(records),
        overall={},
        top=[],
        bottom=[],
        s3_keys={},
        s3_versions={},
        files={},
        file_bytes={},
        took_s=0.0,
    )
    answers: dict[str, int] = {}
    run = client.post("/evaluations", {"kind": "custom", "start": start, "end": end})
    answers["run"] = run.status
    if not run.ok:
        return _failed(outcome, answers, f"POST /evaluations answered {run.status} {run.error_code}")
    report_id = str(run.body["report_id"])

    def done() -> ApiResponse | None:  # the run is the evaluate_requested function's (POST answered 202, queued)
        answer = client.get(f"/evaluations/{report_id}")
        status = answer.body.get("entry", {}).get("status") if answer.ok else None
        return answer if not answer.ok or status in ("done", "failed") else None

    try:
        read = wait_until(done, timeout_s=RUN_TIMEOUT_S, what=f"the evaluation {report_id} to be done")
    except WaitTimeoutError as exc:
        return _failed(outcome, answers, str(exc))
    answers["read"] = read.status
    if not read.ok:
        return _failed(outcome, answers, f"GET /evaluations/{report_id} answered {read.status} {read.error_code}")
    if read.body["entry"]["status"] != "done":
        return _failed(outcome, answers, f"the evaluation {report_id} {read.body['entry']['status']}")
    report = EvaluationReport.model_validate(read.body["report"])
    report_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": _write(report_dir / REPORT_FILES["json"], report.model_dump_json(indent=2).encode())}
    problems = []
    for artifact in DOWNLOADED:
        download = client.get(f"/evaluations/{report_id}/download", {"format": artifact})
        answers[f"download_{artifact}"] = download.status
        if not download.ok:
            problems.append(f"the {artifact} download answered {download.status} {download.error_code}")
            continue
        try:
            with urllib.request.urlopen(str(download.body["url"]), timeout=DOWNLOAD_TIMEOUT_S) as response:
                files[artifact] = _write(report_dir / REPORT_FILES[artifact], response.read())
        except OSError as exc:  # urllib's errors included
            problems.append(f"the {artifact} presigned URL failed: {exc}")
    keys, versions = _stored_keys(report_id)
    covered = {row.enterprise_id for row in report.enterprises}
    return outcome.model_copy(
        update={
            "report_id": report_id,
            "answers": answers,
            "problem": "; ".join(problems) or None,
            "enterprises": len(report.enterprises),
            "missing_enterprises": sorted(set(enterprise_ids) - covered),
            "bands": dict(report.overall.bands),
            "report_raised": {level: report.overall.figures.raised.get(level, 0) for level in LEVEL_KEYS},
            "overall": {
                "online": report.overall.figures.online,
                "disposal": report.overall.figures.disposal,
                "timeliness": report.overall.figures.timeliness,
                "false_alarm": report.overall.figures.false_alarm,
            },
            "top": [enterprise_result(row) for row in report.enterprises[:SHOWN]],
            "bottom": [enterprise_result(row) for row in report.enterprises[-SHOWN:]],
            "s3_keys": keys,
            "s3_versions": versions,
            "files": {artifact: str(path) for artifact, path in files.items()},
            "file_bytes": {artifact: path.stat().st_size for artifact, path in files.items()},
            "took_s": round(time.monotonic() - began, 3),
        }
    )


def raised_by_peak_level(records: Sequence[WarningRecord]) -> dict[str, int]:
    """The run's warnings by the highest level they reached, every level listed (data-quality findings too: the
    evaluation counts every warning raised)."""
    peaks = Counter(Level(record.peak_level).code for record in records)
    return {level: peaks[level] for level in LEVEL_KEYS}


def enterprise_result(row: EnterpriseRow) -> EnterpriseResult:
    figures = row.figures
    return EnterpriseResult(
        enterprise_id=row.enterprise_id,
        name=row.name,
        sector=row.sector.value,
        rank=row.rank,
        score=row.score,
        band=row.band,
        raised=figures.raised_total,
        online=figures.online,
        disposal=figures.disposal,
        timeliness=figures.timeliness,
        false_alarm=figures.false_alarm,
    )


def clear_report_dir(report_dir: Path) -> None:
    """The files an earlier run left must not pass for this one's."""
    for name in REPORT_FILES.values():
        (report_dir / name).unlink(missing_ok=True)


def _stored_keys(report_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """The S3 keys and versions of the report, from its index entry (the service the API runs, as the API does)."""
    from chalicelib.bootstrap import base, evaluation

    reader = Actor(user_id=DUTY_USER, role=Role.DUTY)
    entry = next((e for e in evaluation().entries(reader, limit=200) if e.report_id == report_id), None)
    if entry is None:
        return {}, {}
    bucket = base().settings.evaluation_bucket
    return {name: f"s3://{bucket}/{key}" for name, key in entry.keys.items()}, dict(entry.versions)


def _failed(outcome: EvaluationSummary, answers: dict[str, int], problem: str) -> EvaluationSummary:
    return outcome.model_copy(update={"answers": answers, "problem": problem})


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path
