"""GET /declarations and GET /rectifications read indexes keyed by what they filter (docs/api.md "Listings and
indexes"): over one enterprise's history of 2,000 closed declarations and 1,000 accepted rectification items (eight
index entries each: moto answers a Query in time linear in the table), a page of 10 reads about 10 items, for every
role, filtered or not, and its cursor leads to the next page.

The history is written straight into the registry table in the stores' layout (batch writes: a store's save is six
calls an item); the live items go through the API."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import pytest

from chalicelib.adapters import declarations as declaration_store
from chalicelib.adapters import rectification as rectification_store
from chalicelib.adapters.declarations import DeclarationItem
from chalicelib.adapters.dynamo import iso_utc
from chalicelib.adapters.rectification import ChainedItem
from chalicelib.domain.declarations import Declaration, DeclarationReason, DeclarationStatus
from chalicelib.domain.evaluation.rectification import Problem, RectificationItem, RectificationStatus
from chalicelib.domain.sectors import Sector
from chalicelib.settings import Settings
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http
from tests.functional.read_counting import items_read

HISTORY = 2_000
RECTIFIED = 1_000
PAGE = 10
ENTERPRISE = "E-HC-01"  # hazchem, areas TJFTZ and GULIN
USERS = {
    "enterprise": "ent-e-hc-01",
    "regulator": "reg-emergency-bureau",  # hazchem and chemical pipelines
    "area": "area-gulin",
    "duty": "duty-01",
    "admin": "admin",
}
FIXTURES = (api_env, http)
DAY = 86_400.0
CLOSED = (DeclarationStatus.EXPIRED, DeclarationStatus.WITHDRAWN, DeclarationStatus.REJECTED)


def closed_declaration(index: int, now: float) -> Declaration:
    created = now - 400 * DAY + index * 60
    return Declaration(
        declaration_id=f"DCL-old{index:05d}",
        enterprise_id=ENTERPRISE,
        enterprise_name="津港石化",
        sector=Sector.HAZCHEM,
        area_codes=("TJFTZ", "GULIN"),
        device_ids=("HC01-T1-GT1",),
        reason=DeclarationReason.EQUIPMENT_DAMAGE,
        starts_at=created,
        ends_at=created + 3600,
        status=CLOSED[index % len(CLOSED)],
        declared_by=USERS["enterprise"],
        created_at=created,
        updated_at=created,
    )


def accepted_item(index: int, now: float, status: RectificationStatus) -> RectificationItem:
    created = now - 400 * DAY + index * 60
    return RectificationItem(
        rectification_id=f"RCT-old{index:05d}",
        report_id="month-2025-01",
        period_label="2025年1月",
        enterprise_id=ENTERPRISE,
        enterprise_name="津港石化",
        sector=Sector.HAZCHEM,
        area_codes=("TJFTZ", "GULIN"),
        problem=Problem.LOW_ONLINE,
        title="在线率98.50%，低于99.5%",
        requirement="排查设备",
        score=55.0,
        band="red",
        deadline=created + 30 * DAY if status is RectificationStatus.ACCEPTED else now + 30 * DAY + index,
        status=status,
        issued_by=USERS["duty"],
        created_at=created,
        updated_at=created,
        accepted_at=created + DAY if status is RectificationStatus.ACCEPTED else None,
    )


def declaration_items(declaration: Declaration) -> list[DeclarationItem]:
    key = f"DECL#{declaration.declaration_id}"
    by_created = f"{iso_utc(declaration.created_at)}#{declaration.declaration_id}"
    data = json.loads(declaration.model_dump_json(exclude={"version"}))
    status = declaration.status.value
    return [
        DeclarationItem(key, "DECL", gsi1pk=f"DECLS#{ENTERPRISE}", gsi1sk=by_created, data=data, version=1),
        DeclarationItem(key, f"S#{status}", gsi1pk=f"DECLS#{ENTERPRISE}#{status}", gsi1sk=by_created),
    ]


def rectification_items(item: RectificationItem) -> list[ChainedItem]:
    key = f"RECT#{item.rectification_id}"
    by_deadline = f"{iso_utc(item.deadline)}#{item.rectification_id}"
    data = json.loads(item.model_dump_json(exclude={"version"}))
    return [
        ChainedItem(key, "RECT", gsi1pk=f"RECTS#S#{item.sector.value}", gsi1sk=by_deadline, data=data, version=1),
        ChainedItem(
            key,
            "E",
            gsi1pk=f"RECTS#E#{item.enterprise_id}",
            gsi1sk=f"{iso_utc(item.created_at)}#{item.rectification_id}",
        ),
        *(ChainedItem(key, f"A#{code}", gsi1pk=f"RECTS#A#{code}", gsi1sk=by_deadline) for code in item.area_codes),
        *rectification_store._status_pointers(item, item.status),
    ]


@pytest.fixture(scope="module")
def history(api_env: ApiEnv) -> float:
    settings = Settings.from_env()
    declaration_store.bind(settings)
    rectification_store.bind(settings)
    now = time.time()
    with DeclarationItem.batch_write() as batch:
        for index in range(HISTORY):
            for entry in declaration_items(closed_declaration(index, now)):
                batch.save(entry)
    with ChainedItem.batch_write() as batch:
        for index in range(RECTIFIED):
            for entry in rectification_items(accepted_item(index, now, RectificationStatus.ACCEPTED)):
                batch.save(entry)
        for index in range(3):  # the live ones
            for entry in rectification_items(accepted_item(RECTIFIED + index, now, RectificationStatus.OPEN)):
                batch.save(entry)
    return now


def read_page(http: Http, route: str, role: str, **query: str) -> tuple[dict[str, object], int]:
    """The page and the registry table's items read to answer it."""
    table = Settings.from_env().table_registry
    http.get("/me", USERS[role])  # the token fetched and the container warm before counting
    with items_read() as read:
        answer = http.get(f"{route}?{urlencode({'limit': str(PAGE), **query})}", USERS[role])
    assert answer.status == 200, answer.body
    print(f"GET {route} {role} {query}: {read[table]} registry items read")
    return answer.body, read[table]


def ids(page: dict[str, object], field: str) -> list[str]:
    items = page["items"]
    assert isinstance(items, list)
    return [str(item[field]) for item in items]


def test_a_declaration_page_reads_a_pages_worth_of_the_enterprises_history(
    history: float, api_env: ApiEnv, http: Http
) -> None:
    live = http.post(
        "/declarations",
        USERS["enterprise"],
        {
            "device_ids": ["HC01-T1-GT2"],
            "reason": "equipment_damage",
            "starts_at": history,
            "ends_at": history + 3600,
            "note": "探头损坏",
        },
    )
    assert live.status == 201, live.body
    live_id = live.body["declaration_id"]

    page, read = read_page(http, "/declarations", "enterprise")  # its history, the newest first
    assert ids(page, "declaration_id")[0] == live_id and len(ids(page, "declaration_id")) == PAGE
    assert page["next_cursor"] and read <= 2 * (PAGE + 1) + 2
    following, read = read_page(http, "/declarations", "enterprise", cursor=str(page["next_cursor"]))
    assert ids(following, "declaration_id") == [f"DCL-old{index:05d}" for index in range(1990, 1980, -1)]
    assert read <= 2 * (PAGE + 1) + 2

    for role, query in [
        ("enterprise", {"status": "pending"}),
        ("regulator", {"enterprise_id": ENTERPRISE, "status": "pending,approved"}),
        ("duty", {"enterprise_id": ENTERPRISE, "status": "pending"}),
        ("duty", {}),  # the open ones
        ("regulator", {}),
        ("area", {}),
    ]:
        page, read = read_page(http, "/declarations", role, **query)
        assert ids(page, "declaration_id") == [live_id] and page["next_cursor"] is None, (role, query)
        assert read <= 6, (role, query, read)

    page, read = read_page(http, "/declarations", "admin", enterprise_id=ENTERPRISE, status="withdrawn")
    assert len(ids(page, "declaration_id")) == PAGE and {item["status"] for item in page["items"]} == {"withdrawn"}
    assert read <= 2 * (PAGE + 1) + 2
    assert http.get("/declarations?cursor=bm9wZQ", USERS["duty"]).code == "invalid_cursor"


def test_a_rectification_page_reads_a_pages_worth_of_the_history(history: float, http: Http) -> None:
    live = [f"RCT-old{RECTIFIED + index:05d}" for index in range(3)]
    for role in ("enterprise", "regulator", "area", "duty"):  # (admin: the duty centre's scope)
        page, read = read_page(http, "/rectifications", role, status="open")
        assert ids(page, "rectification_id") == (live[::-1] if role == "enterprise" else live), role
        assert page["next_cursor"] is None and read <= 2 * 3 + 8, (role, read)

    page, read = read_page(http, "/rectifications", "enterprise")  # the newest first
    assert ids(page, "rectification_id") == [f"RCT-old{RECTIFIED + 2 - index:05d}" for index in range(PAGE)]
    assert page["next_cursor"] and read <= 2 * (PAGE + 1) + 2
    for role in ("regulator", "area", "duty"):  # by deadline: the accepted ones first
        page, read = read_page(http, "/rectifications", role, status="accepted")
        assert ids(page, "rectification_id") == [f"RCT-old{index:05d}" for index in range(PAGE)], role
        # a regulator reads two sectors' partitions, the duty centre six, an area one (first pages of 3..12 each)
        assert read <= 2 * (PAGE + 1) + 6 * 7, (role, read)
        if role == "duty":
            continue  # (six partitions: moto's slowest Query; the cursor is the same for every scope)
        following, read = read_page(
            http, "/rectifications", role, status="accepted", cursor=str(page["next_cursor"])
        )
        assert ids(following, "rectification_id") == [f"RCT-old{index:05d}" for index in range(PAGE, 2 * PAGE)]
        assert read <= 2 * (PAGE + 1) + 6 * 7, (role, read)
