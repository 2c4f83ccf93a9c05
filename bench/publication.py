"""Publishing (通报) bench: what one publish of a full-size report costs in the API function, on the in-memory
ports (the service, the domain and the texts as deployed; no AWS).

    .venv/bin/python -m bench.publication [--enterprises 5000]

A synthetic month of `--enterprises` enterprises (local/report_preview.py's district) is built and stored, then
published once by the duty centre over `FakeReportArchive`, `FakeRectificationStore` and `MemoryJobs`. Printed: the
CPU of the publish (the report's JSON parsed, the items derived and saved, every job's text fitted), the jobs and
items, and the AWS calls they stand for (SendMessageBatch of 10; per new item one conditional PutItem of the item,
two BatchWriteItem of its pointers — by scope, and by scope and status — and one PutItem of its audit event). A
second publish of the same version is timed too (nothing is told or written).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence

from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.services.delivery_fakes import MemoryJobs
from chalicelib.services.evaluation_fakes import FakeReportArchive
from chalicelib.services.ports import RenderedReport, ReportEntry
from chalicelib.services.rectification import Rectifications
from chalicelib.services.rectification_fakes import FakeRectificationStore
from local.report_preview import synthetic_report

DUTY = Actor(user_id="duty-01", role=Role.DUTY)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=5000)
    args = parser.parse_args(argv)
    period = periods.month(2025, 3)
    started = time.process_time()
    report = synthetic_report(period, args.enterprises)
    built_s = time.process_time() - started
    archive, store, jobs = FakeReportArchive(), FakeRectificationStore(), MemoryJobs()
    entry = ReportEntry(
        "month-2025-03", "month", "2025-03", period.start, period.end, period.end, "bench", {}, {}, {}
    )
    document = report.model_dump_json().encode()
    archive.store(entry, RenderedReport(document, {}, {}))
    service = Rectifications(archive, store, jobs, EvaluationPolicy(), lambda: period.end + 86400)

    started = time.process_time()
    published = service.publish(DUTY, "month-2025-03").publication
    publish_s = time.process_time() - started
    started = time.process_time()
    again = service.publish(DUTY, "month-2025-03")
    again_s = time.process_time() - started

    items = published.rectifications
    # by enterprise and each area; by status: sector, enterprise and each area
    pointers = sum(1 + len(item.area_codes) + 2 + len(item.area_codes) for item in store.stored.values())
    sms = sum(1 for job in jobs.jobs if job.sms_audiences)
    print(
        f"report: {len(report.enterprises)} enterprises, JSON {len(document) / 1e6:.1f} MB "
        f"(built in {built_s:.1f} s)"
    )
    print(
        f"publish: {publish_s:.2f} s CPU; {published.jobs} jobs ({sms} with an SMS), {items} items for "
        f"{published.enterprises_rectifying} enterprises"
    )
    print(
        f"  AWS calls it stands for: {math.ceil(published.jobs / 10)} SendMessageBatch, {items} item PutItem + "
        f"{items} audit PutItem + {2 * items} pointer BatchWriteItem ({pointers} pointers), {items} GetItem first"
    )
    print(
        f"again (same version): {again_s * 1000:.1f} ms CPU, already={again.already}, jobs queued {len(jobs.jobs)}"
    )


if __name__ == "__main__":
    main()
