"""Verify the audit chain of a warning (or of `device:<id>` / `enterprise:<id>`), as GET /warnings/{id}/audit does.

Run: .venv/bin/python -m scripts.verify_chain WARNING_ID [...]   (the app's environment: DYJ_TABLE_*, AWS_*)
Exit status 0 when every chain is intact, 1 when one is not, 2 when a subject is unknown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from chalicelib.adapters import audit_store, dynamo
from chalicelib.adapters.audit_store import AuditedRegistry, AuditedWarningStore
from chalicelib.api.views import report_view
from chalicelib.services.ports import SubjectLog
from chalicelib.settings import Settings


def subject_log(subject: str) -> SubjectLog | None:
    if subject.startswith(("device:", "enterprise:")):
        log = AuditedRegistry().log(subject)
        return log if log.events or log.head.seq else None
    store = AuditedWarningStore()
    return store.log(subject) if store.get(subject) is not None else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("subjects", nargs="+", metavar="WARNING_ID")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    dynamo.bind(settings)
    audit_store.bind(settings)
    status = 0
    for subject in args.subjects:
        log = subject_log(subject)
        if log is None:
            print(json.dumps({"subject": subject, "error": "not found"}, ensure_ascii=False))
            status = max(status, 2)
            continue
        report = report_view(log)
        print(json.dumps({"subject": subject, **report.model_dump()}, ensure_ascii=False))
        if not report.ok:
            status = max(status, 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
