"""Chalice entrypoints: routing only. Each handler parses its event, calls one service, returns."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Chalice, KinesisEvent

from chalicelib.bootstrap import container
from chalicelib.services.ingest import IngestRecord

STAGE = os.environ.get("DYJ_STAGE", "dev")
app = Chalice(app_name="dayingji")
logger = Logger(service="dayingji")
metrics = Metrics(namespace="dayingji", service="ingest")


@app.on_kinesis_record(stream=f"dayingji-{STAGE}-devices", batch_size=100, starting_position="TRIM_HORIZON")
def ingest(event: KinesisEvent) -> dict[str, Any]:
    report = container().ingest.handle([IngestRecord(record.sequence_number, record.data) for record in event])
    metrics.add_metric("messages", MetricUnit.Count, report.received)
    metrics.add_metric("graded", MetricUnit.Count, report.graded)
    metrics.add_metric("quarantined", MetricUnit.Count, sum(report.quarantined.values()))
    for change in report.changes:
        metrics.add_metric(f"warning_{change.kind.value}", MetricUnit.Count, 1)
    metrics.flush_metrics()
    if report.quarantined or report.failed_record_ids:
        logger.info(
            "batch with rejects",
            extra={"quarantined": dict(report.quarantined), "failed": report.failed_record_ids},
        )
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in report.failed_record_ids]}


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "stage": STAGE}
