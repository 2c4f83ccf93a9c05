"""Counting what DynamoDB reads for this process while an API call answers (listings' read figures)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient


@contextmanager
def items_read() -> Iterator[Counter[str]]:
    """DynamoDB items this process reads meanwhile, by table: the keys of a Get or BatchGet (found or not), the
    `ScannedCount` of a Query or Scan (below PynamoDB and the adapters' own client calls alike)."""
    read: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def counted(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        response: dict[str, Any] = original(self, operation, params)
        if operation == "BatchGetItem":  # billed per key asked for, found or not
            read.update({table: len(asked["Keys"]) for table, asked in params["RequestItems"].items()})
        elif operation in {"Query", "Scan"}:
            read[params["TableName"]] += int(response.get("ScannedCount", 0))
        elif operation == "GetItem":
            read[params["TableName"]] += 1
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", counted)
        yield read
