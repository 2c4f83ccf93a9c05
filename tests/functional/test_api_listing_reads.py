"""Listings read indexes, never the table's history (docs/api.md "Listings and indexes"): over a warning table that
holds 10,000 closed warnings — the most recent ones, raised after every open warning — a page of a listing reads a
number of items proportional to its size, for every role and both orders.

Items read are counted below PynamoDB (every DynamoDB response's `ScannedCount`, or the items of a Get/BatchGet)
while the API answers through Chalice's test client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from pynamodb.connection.base import Connection

from chalicelib.adapters.dynamo import WarningItem, fill_item
from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.warning_actions import examined_per_page
from chalicelib.settings import Settings
from tests.functional.api_fixtures import ApiEnv, Http, api_env, engine_change, http, raise_warning

HISTORY = 10_000
USERS = {
    "enterprise": "ent-e-hc-01",
    "duty": "duty-01",
    "admin": "admin",
    "emergency": "emg-01",
    "regulator": "reg-emergency-bureau",  # hazchem and chem pipeline
    "area": "area-gulin",  # the second area of E-HC-01, the first of others
}


@dataclass
class ReadCounter:
    """Items DynamoDB read for this process: the `ScannedCount` of each Query and Scan, the items of a Get."""

    items: int = 0
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, operation: str, response: dict[str, Any]) -> None:
        if operation in {"Query", "Scan"}:
            read = int(response.get("ScannedCount", 0))
        elif operation == "GetItem":
            read = 1 if response.get("Item") else 0
        elif operation == "BatchGetItem":
            read = sum(len(items) for items in response.get("Responses", {}).values())
        else:
            return
        with self._lock:
            self.items += read
            self.calls += 1


@pytest.fixture(scope="module")
def counter() -> Iterator[ReadCounter]:
    counting = ReadCounter()
    original = Connection._make_api_call

    def counted(self: Connection, operation_name: str, operation_kwargs: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = original(self, operation_name, operation_kwargs)
        counting.record(operation_name, response)
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Connection, "_make_api_call", counted)
        yield counting


@pytest.fixture(scope="module")
def history(api_env: ApiEnv) -> dict[str, list[WarningRecord]]:
    """A few open warnings (raised a day ago), then 10,000 closed ones raised over the last hour on every device of
    the seed (so every enterprise, sector and area has a long closed history, newer than its open warnings).

    The closed items are the ones the app writes (`fill_item`), put straight into moto's store: its server runs in
    this process, and 400 batch writes over HTTP take a minute on a busy machine. What is measured is reading."""
    day_ago = time.time() - 86_400
    opened = {
        enterprise: [
            raise_warning(api_env.registry, enterprise, Level.RED, raised_at=day_ago + i) for i in range(3)
        ]
        for enterprise in ("E-HC-01", "E-CP-02", "E-RT-01")
    }
    settings = Settings.from_env()
    store = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region]
    devices = api_env.registry.devices
    start = time.time() - 3600
    for index in range(HISTORY):
        device = devices[index % len(devices)]
        at = start + index * 0.3
        change = engine_change(
            ChangeKind.RAISE,
            device.device_id,
            device.enterprise_id,
            Level.BLUE,
            at,
            at,
            api_env.registry,
            risk_type=f"history_{index}",
        )
        record = replace(WarningRecord.raised(change), status=WarningStatus.CLOSED, updated_at=at + 60)
        item = WarningItem(record.warning_id, level_seq=0, version=3)
        fill_item(item, record)
        store.put_item(settings.table_warning, item.serialize())
    return opened


def reads_of(http: Http, counter: ReadCounter, path: str, user: str) -> tuple[int, dict[str, Any]]:
    http.get("/me", user)  # the token is fetched and the container warm before counting
    before = counter.items
    answer = http.get(path, user)
    assert answer.status == 200, answer
    return counter.items - before, answer.body


def most_read(limit: int) -> int:
    """The bound a page keeps: one Query page of `limit + 1` per index partition read (at most six: the sectors),
    plus the first, smaller pages."""
    return 6 * (limit + 1) + 6 * 2


@pytest.mark.parametrize("role", sorted(USERS))
def test_a_newest_first_page_reads_in_proportion_to_its_size_not_to_the_history(
    http: Http, counter: ReadCounter, history: dict[str, list[WarningRecord]], role: str
) -> None:
    reads, page = reads_of(http, counter, "/warnings?limit=20", USERS[role])
    assert len(page["items"]) == 20 and page["next_cursor"]
    assert all(item["status"] == "closed" for item in page["items"])  # the history is the newest
    assert reads <= most_read(20), (role, reads)
    print(f"newest first, {role}, limit 20: {reads} items read")


@pytest.mark.parametrize("role", ["duty", "area"])
def test_the_following_pages_read_as_little(
    http: Http, counter: ReadCounter, history: dict[str, list[WarningRecord]], role: str
) -> None:
    _reads, first = reads_of(http, counter, "/warnings?limit=20", USERS[role])
    reads, second = reads_of(http, counter, f"/warnings?limit=20&cursor={first['next_cursor']}", USERS[role])
    assert len(second["items"]) == 20
    assert not {item["warning_id"] for item in second["items"]} & {item["warning_id"] for item in first["items"]}
    assert reads <= most_read(20), (role, reads)


@pytest.mark.parametrize("limit", [5, 100])
def test_what_a_page_reads_grows_with_its_size(
    http: Http, counter: ReadCounter, history: dict[str, list[WarningRecord]], limit: int
) -> None:
    reads, page = reads_of(http, counter, f"/warnings?limit={limit}", USERS["duty"])
    assert len(page["items"]) == limit
    assert reads <= most_read(limit), (limit, reads)
    print(f"newest first, duty, limit {limit}: {reads} items read")


@pytest.mark.parametrize("role", sorted(USERS))
def test_an_open_listing_reads_the_open_warnings_only(
    http: Http, counter: ReadCounter, history: dict[str, list[WarningRecord]], role: str
) -> None:
    path = (
        "/wall?limit=20" if role in {"duty", "regulator", "area", "emergency"} else "/warnings?open=true&limit=20"
    )
    reads, page = reads_of(http, counter, path, USERS[role])
    visible = {"enterprise": 3, "regulator": 6, "area": 6}.get(role, 9)  # E-CP-02: chem pipeline, GULIN
    opened = {record.warning_id for records in history.values() for record in records}
    listed = {item["warning_id"] for item in page["items"]}
    assert len(listed & opened) == visible and page["next_cursor"] is None
    assert reads <= len(listed) + 1, (role, reads)  # the caller's open warnings, nothing closed
    print(f"open, {role}: {reads} items read for {len(listed)} open warnings")


def test_a_filter_no_index_serves_still_reads_a_bounded_page_and_the_cursor_goes_on(
    http: Http, counter: ReadCounter, history: dict[str, list[WarningRecord]]
) -> None:
    reads, page = reads_of(http, counter, "/warnings?level=red&open=false&limit=20", USERS["duty"])
    assert page["items"] == [] and page["next_cursor"]  # 5 × 20 + 50 closed blue warnings examined, none red
    assert reads <= examined_per_page(20) + most_read(20), reads
    print(f"level=red&open=false, duty: {reads} items read, an empty page with a cursor")


__all__ = ["api_env", "http"]  # the fixtures this module uses
