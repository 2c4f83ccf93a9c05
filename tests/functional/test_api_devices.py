"""GET /devices (docs/offline-watch.md "Device status", docs/api.md): the devices in the caller's scope by status
(online, offline, declared, never seen) with last-seen times; `chalice.test.Client`, moto, real ID tokens."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from chalicelib.adapters import presence
from chalicelib.adapters.dynamo import DynamoStateStore
from chalicelib.adapters.presence import DynamoOfflineState
from chalicelib.domain.access import sectors_for_department
from chalicelib.domain.state import DeviceState
from chalicelib.services.ports import OfflineRecord
from chalicelib.settings import Settings
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http
from tests.functional.read_counting import items_read

ENT = "ent-e-hc-01"  # E-HC-01, hazchem, areas TJFTZ and GULIN
REG = "reg-emergency-bureau"  # regulates hazchem and chemical pipelines
DUTY = "duty-01"
AREA = "area-gulin"
FIXTURES = (api_env, http)


def listing(http: Http, user: str, **query: str) -> dict[str, dict[str, object]]:
    answer = http.get(f"/devices?{urlencode({'limit': '2000', **query})}", user)
    assert answer.status == 200, answer.body
    assert answer.body["truncated"] is False
    return {item["device_id"]: item for item in answer.body["items"]}


def test_each_role_lists_the_devices_of_its_scope(api_env: ApiEnv, http: Http) -> None:
    devices = api_env.registry.devices
    assert set(listing(http, DUTY)) == {d.device_id for d in devices}
    own = {d.device_id for d in devices if d.enterprise_id == "E-HC-01"}
    assert set(listing(http, ENT)) == own
    assert set(listing(http, ENT, enterprise_id="E-HC-02")) == own  # an enterprise user: always its own
    regulated = sectors_for_department("emergency_bureau")
    assert set(listing(http, REG)) == {d.device_id for d in devices if d.sector in regulated}
    assert set(listing(http, AREA)) == {d.device_id for d in devices if "GULIN" in d.area_codes}


def test_statuses_and_last_seen_times(api_env: ApiEnv, http: Http) -> None:
    presence.bind(Settings.from_env())  # the offline records this test writes (the API binds them on first use)
    now = time.time()
    DynamoStateStore().save_device(DeviceState("HC01-T1-GT1", last_seq=1, last_ts=now - 30), last_seen=now - 30)
    DynamoStateStore().save_device(DeviceState("HC01-T1-GT2", last_seq=1, last_ts=now - 900), last_seen=now - 900)
    DynamoOfflineState().mark_offline(OfflineRecord("HC01-T1-GT2", now - 900))
    declared = http.post(
        "/declarations",
        ENT,
        {
            "device_ids": ["HC01-T1-GT3"],
            "reason": "equipment_damage",
            "starts_at": now,
            "ends_at": now + 3600,
            "note": "探头损坏",
        },
    )
    assert declared.status == 201, declared.body

    seen = listing(http, ENT)
    assert (seen["HC01-T1-GT1"]["status"], seen["HC01-T1-GT1"]["last_seen"]) == ("online", now - 30)
    gt2 = seen["HC01-T1-GT2"]
    assert (gt2["status"], gt2["status_zh"], gt2["offline_since"]) == ("offline", "离线", now - 900)
    gt3 = seen["HC01-T1-GT3"]
    assert (gt3["status"], gt3["declaration_id"]) == ("declared", declared.body["declaration_id"])
    assert {item["status"] for name, item in seen.items() if not name.startswith("HC01-T1-GT")} == {"never_seen"}

    assert set(listing(http, DUTY, status="offline")) == {"HC01-T1-GT2"}
    assert set(listing(http, REG, status="declared")) == {"HC01-T1-GT3"}
    assert "HC01-T1-GT1" in listing(http, AREA, status="online")
    assert http.get("/devices?status=asleep", DUTY).status == 422

    pages, cursor = [], None
    while True:
        query = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        page = http.get(f"/devices?{urlencode(query)}", DUTY).body
        pages.append([item["device_id"] for item in page["items"]])
        cursor = page["next_cursor"]
        assert page["truncated"] is (cursor is not None)
        if cursor is None:
            break
    assert len(pages) == 5 and all(len(p) == 50 for p in pages[:-1])  # 248 devices
    assert [d for p in pages for d in p] == list(listing(http, DUTY))  # every device once, in order
    assert http.get("/devices?cursor=bm9wZQ", DUTY).code == "invalid_cursor"


def test_a_page_reads_the_states_of_its_devices_not_the_fleets(api_env: ApiEnv, http: Http) -> None:
    """248 devices, 7 of them offline: a page of 3 offline devices reads 3 states, the 7 (or 8) offline records and
    their registrations; an unfiltered page of 20 reads 21 states and 21 offline keys (both read 248 before)."""
    settings = Settings.from_env()
    presence.bind(settings)
    now = time.time()
    silent = sorted(d.device_id for d in api_env.registry.devices)[10:17]
    for device in silent:
        DynamoOfflineState().mark_offline(OfflineRecord(device, now - 600))
    http.get("/me", DUTY)  # the token fetched and the container warm before counting
    try:
        with items_read() as read:
            page = http.get("/devices?status=offline&limit=3", DUTY).body
        assert len(page["items"]) == 3 and page["next_cursor"]
        assert read[settings.table_device_state] == 3
        assert read[settings.table_warning_event] <= len(silent) + 1  # the offline records (HC01-T1-GT2: maybe)
        # the enterprise list and the offline devices' registrations (plus the open declaration, if made), not the
        # fleet's registrations
        assert read[settings.table_registry] <= len(api_env.registry.enterprises) + 2 * (len(silent) + 2)
        print(f"GET /devices?status=offline&limit=3: {dict(read)} items read")

        with items_read() as read:
            page = http.get("/devices?limit=20", DUTY).body
        assert len(page["items"]) == 20 and page["next_cursor"]
        assert read[settings.table_device_state] == 21  # the page and the one telling there is more
        assert read[settings.table_warning_event] <= 21
        print(f"GET /devices?limit=20: {dict(read)} items read")
    finally:
        for device in silent:
            DynamoOfflineState().mark_online(device)
