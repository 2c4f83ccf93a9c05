"""Administration through the API: users with a role and a scope (Cognito), enterprises and devices (audited)."""

from __future__ import annotations

import pytest

from local.users import DEMO_PASSWORD, directory, token_for
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http

ADMIN = "admin"


def test_a_created_user_logs_in_with_the_role_and_scope_the_administrator_gave(
    api_env: ApiEnv, http: Http
) -> None:
    body = {"username": "reg-new", "name": "新监管员", "role": "regulator", "department": "fire_rescue"}
    created = http.post("/admin/users", ADMIN, body)
    assert created.status == 201
    assert (created.body["role"], created.body["department_zh"]) == ("regulator", "区消防救援支队")
    directory().set_password("reg-new", DEMO_PASSWORD)
    me = http.get("/me", None, headers={"Authorization": f"Bearer {token_for('reg-new')}"}).body
    assert (me["role"], me["sectors"]) == ("regulator", ["fire"])
    again = http.post("/admin/users", ADMIN, body)
    assert (again.status, again.code) == (409, "user_exists")


@pytest.mark.parametrize(
    "body",
    [
        {"username": "ent-x", "name": "某企业", "role": "enterprise"},  # no enterprise
        {"username": "ent-y", "name": "某企业", "role": "enterprise", "enterprise_id": "E-NOPE"},  # unknown one
        {
            "username": "duty-x",
            "name": "值守",
            "role": "duty",
            "enterprise_id": "E-HC-01",
        },  # scope of another role
        {"username": "area-x", "name": "属地", "role": "area", "area_codes": []},
        {"username": "reg-x", "name": "监管", "role": "regulator", "department": "no_such_department"},
        {"username": "Bad Name", "name": "某人", "role": "duty"},
        {"username": "sys", "name": "平台", "role": "system"},
    ],
)
def test_a_user_whose_scope_does_not_fit_its_role_is_refused(http: Http, body: dict[str, object]) -> None:
    answer = http.post("/admin/users", ADMIN, body)
    assert answer.status == 422


def test_users_list_by_role_in_pages(http: Http) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        answer = http.get(
            "/admin/users?role=area,emergency&limit=7" + (f"&cursor={cursor}" if cursor else ""), ADMIN
        )
        assert answer.status == 200
        seen += [user["username"] for user in answer.body["items"]]
        cursor = answer.body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 17 + 2
    assert all(name.startswith(("area-", "emg-")) for name in seen)
    assert http.get("/admin/users?cursor=bm9wZQ", ADMIN).status == 422


def test_an_enterprise_profile_change_is_audited_and_reaches_its_devices(api_env: ApiEnv, http: Http) -> None:
    current = http.get("/admin/enterprises/E-FR-06", ADMIN).body
    body = {
        "name": "北塘海鲜市场（新址）",
        "sector": current["sector"],
        "area_codes": [*current["area_codes"], "TANGGU"],
        "contacts": current["contacts"],
        "reason": "迁址",
    }
    changed = http.put("/admin/enterprises/E-FR-06", ADMIN, body).body
    devices = [d for d in api_env.registry.devices if d.enterprise_id == "E-FR-06"]
    assert (changed["changed"], changed["devices_updated"]) == (True, len(devices))
    device = http.get(f"/admin/devices/{devices[0].device_id}", ADMIN).body
    assert (device["enterprise_name"], device["area_codes"]) == (body["name"], body["area_codes"])
    trail = http.get("/admin/enterprises/E-FR-06/audit", ADMIN).body
    assert trail["report"]["ok"] and trail["events"][0]["before"]["name"] == current["name"]
    moved = http.put("/admin/enterprises/E-FR-06", ADMIN, {**body, "sector": "hazchem"})
    assert (moved.status, moved.code) == (409, "sector_locked")


def test_a_new_device_needs_a_registered_enterprise_and_takes_its_sector_and_areas(http: Http) -> None:
    body = {"enterprise_id": "E-HC-06", "unit_id": "U-NEW", "unit_name": "新罐区", "kind": "gas_detector"}
    assert (
        http.put("/admin/devices/NEW-GT-1", ADMIN, {**body, "enterprise_id": "E-NONE"}).code
        == "unknown_enterprise"
    )
    created = http.put("/admin/devices/NEW-GT-1", ADMIN, body)
    assert created.status == 200
    assert (created.body["device"]["sector"], created.body["device"]["area_codes"]) == ("hazchem", ["TANGGU"])
    trail = http.get("/admin/devices/NEW-GT-1/audit", ADMIN).body
    assert [event["type"] for event in trail["events"]] == ["device_registered"]


__all__ = ["api_env", "http"]  # the fixtures this module uses
