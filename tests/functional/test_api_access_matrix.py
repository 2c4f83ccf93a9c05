"""The access matrix: every route × every role × a resource in and out of the caller's scope → allow, 403 or 404.

Real ID tokens from moto's Cognito for the seeded users. The resources: a red hazchem warning of E-HC-01 (areas
TJFTZ, GULIN) — in scope of its enterprise user, the 区应急局 regulator (hazchem) and the TJFTZ area official — and
a red road-transport warning of E-RT-01 (areas TEDA, TAIDA), out of all three scopes. Duty, emergency and admin see
both. Rules from DOMAIN.md §1 and docs/api.md: a role that may never use a route gets 403 whatever the record (that
says nothing about it); a record out of scope is 404, the same answer as a missing one.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http, raise_warning

USERS = {
    "enterprise": "ent-e-hc-01",
    "duty": "duty-01",
    "regulator": "reg-emergency-bureau",
    "area": "area-tjftz",
    "emergency": "emg-01",
    "admin": "admin",
}
ROLES = tuple(USERS)
ALL_SEEING = {"duty", "emergency", "admin"}
IN, OUT = "in_scope", "out_of_scope"


@pytest.fixture
def pair(api_env: ApiEnv) -> dict[str, WarningRecord]:
    """Fresh warnings for one case (actions change them)."""
    return {
        IN: raise_warning(api_env.registry, "E-HC-01", Level.RED),
        OUT: raise_warning(api_env.registry, "E-RT-01", Level.RED),
    }


def visible(role: str, scope: str) -> bool:
    return scope == IN or role in ALL_SEEING


def all_ids(http: Http, path: str, user: str) -> set[str]:
    ids: set[str] = set()
    cursor = None
    for _ in range(100):
        separator = "&" if "?" in path else "?"
        answer = http.get(f"{path}{separator}limit=100" + (f"&cursor={cursor}" if cursor else ""), user)
        assert answer.status == 200, answer
        ids |= {item["warning_id"] for item in answer.body["items"]}
        cursor = answer.body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("listing never ended")


# --- reads -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_me_answers_every_role_with_its_own_token_scope(http: Http, role: str) -> None:
    answer = http.get("/me", USERS[role])
    assert answer.status == 200
    assert answer.body["role"] == role
    expected = {
        "enterprise": ("enterprise_id", "E-HC-01"),
        "regulator": ("sectors", ["hazchem", "chem_pipeline"]),
        "area": ("area_codes", ["TJFTZ"]),
    }
    if role in expected:
        field, value = expected[role]
        assert answer.body[field] == value


@pytest.mark.parametrize("role", ROLES)
def test_warning_list_holds_exactly_what_the_role_may_see(
    http: Http, pair: dict[str, WarningRecord], role: str
) -> None:
    ids = all_ids(http, "/warnings", USERS[role])
    for scope, record in pair.items():
        assert (record.warning_id in ids) is visible(role, scope), scope


@pytest.mark.parametrize("role", ROLES)
def test_open_list_by_urgency_holds_exactly_what_the_role_may_see(
    http: Http, pair: dict[str, WarningRecord], role: str
) -> None:
    ids = all_ids(http, "/warnings?open=true", USERS[role])
    for scope, record in pair.items():
        assert (record.warning_id in ids) is visible(role, scope), scope


@pytest.mark.parametrize("role", ROLES)
def test_wall_is_for_duty_regulators_areas_and_the_bureau_each_in_scope(
    http: Http, pair: dict[str, WarningRecord], role: str
) -> None:
    if role in {"enterprise", "admin"}:
        assert http.get("/wall", USERS[role]).status == 403
        return
    ids = all_ids(http, "/wall", USERS[role])
    for scope, record in pair.items():
        assert (record.warning_id in ids) is visible(role, scope), scope


@pytest.mark.parametrize("scope", (IN, OUT))
@pytest.mark.parametrize("role", ROLES)
def test_warning_detail_is_404_out_of_scope(
    http: Http, pair: dict[str, WarningRecord], role: str, scope: str
) -> None:
    answer = http.get(f"/warnings/{pair[scope].warning_id}", USERS[role])
    assert answer.status == (200 if visible(role, scope) else 404)
    if answer.status == 404:
        assert answer.body["code"] == "warning_not_found"


@pytest.mark.parametrize("scope", (IN, OUT))
@pytest.mark.parametrize("role", ROLES)
def test_audit_verification_is_for_duty_and_admin_only(
    http: Http, pair: dict[str, WarningRecord], role: str, scope: str
) -> None:
    answer = http.get(f"/warnings/{pair[scope].warning_id}/audit", USERS[role])
    assert answer.status == (200 if role in {"duty", "admin"} else 403)


# --- actions ---------------------------------------------------------------------------------------------------

OWN_ACTION: dict[str, dict[str, Any]] = {
    "enterprise": {"type": "acknowledge"},
    "duty": {"type": "record_contact", "channel": "phone", "outcome": "reached"},
    "regulator": {"type": "record_inspection", "findings": "现场核查：储罐区已疏散"},
    "area": {"type": "issue_supervision", "order": "立即整改", "deadline": time.time() + 86400},
    "emergency": {"type": "escalate", "tier": 3},
    "admin": {"type": "acknowledge"},  # admin reads warnings and never acts on them
}
FORBIDDEN_ACTION: dict[str, dict[str, Any]] = {
    "enterprise": {"type": "confirm_closure"},
    "duty": {"type": "acknowledge"},
    "regulator": {"type": "record_contact", "channel": "video", "outcome": "no_answer"},
    "area": {"type": "mark_false_alarm", "note": "误报"},
    "emergency": {"type": "acknowledge"},
    "admin": {"type": "archive"},
}


@pytest.mark.parametrize("scope", (IN, OUT))
@pytest.mark.parametrize("role", ROLES)
def test_a_role_takes_its_own_action_only_in_scope(
    http: Http, pair: dict[str, WarningRecord], role: str, scope: str
) -> None:
    answer = http.post(f"/warnings/{pair[scope].warning_id}/actions", USERS[role], OWN_ACTION[role])
    if role == "admin":
        assert answer.status == 403
    else:
        assert answer.status == (200 if visible(role, scope) else 404), answer


@pytest.mark.parametrize("scope", (IN, OUT))
@pytest.mark.parametrize("role", ROLES)
def test_an_action_the_role_may_never_take_is_403_in_and_out_of_scope(
    http: Http, pair: dict[str, WarningRecord], role: str, scope: str
) -> None:
    answer = http.post(f"/warnings/{pair[scope].warning_id}/actions", USERS[role], FORBIDDEN_ACTION[role])
    assert answer.status == 403
    assert answer.body["code"] == "role_not_permitted"


def test_the_emergency_bureau_acts_on_red_warnings_only(api_env: ApiEnv, http: Http) -> None:
    yellow = raise_warning(api_env.registry, "E-HC-01", Level.YELLOW)
    answer = http.post(
        f"/warnings/{yellow.warning_id}/actions", USERS["emergency"], {"type": "escalate", "tier": 3}
    )
    assert (answer.status, answer.code) == (403, "red_level_only")


@pytest.mark.parametrize("scope", (IN, OUT))
@pytest.mark.parametrize("role", ROLES)
def test_evidence_upload_is_for_the_enterprise_and_inspectors_in_scope(
    http: Http, pair: dict[str, WarningRecord], role: str, scope: str
) -> None:
    answer = http.post(f"/warnings/{pair[scope].warning_id}/evidence", USERS[role], {"content_type": "image/jpeg"})
    if role in {"duty", "emergency", "admin"}:
        assert answer.status == 403
    else:
        assert answer.status == (201 if visible(role, scope) else 404)


def test_a_regulator_of_two_sectors_sees_both_and_an_area_official_sees_its_second_area_code(
    api_env: ApiEnv, http: Http
) -> None:
    pipeline = raise_warning(api_env.registry, "E-CP-02", Level.ORANGE)  # chem pipeline, GULIN
    hazchem = raise_warning(api_env.registry, "E-HC-01", Level.ORANGE)  # TJFTZ first, GULIN second
    regulator = all_ids(http, "/wall", USERS["regulator"])
    street = all_ids(http, "/wall", "area-gulin")
    assert {pipeline.warning_id, hazchem.warning_id} <= regulator
    assert {pipeline.warning_id, hazchem.warning_id} <= street
    assert http.get(f"/warnings/{hazchem.warning_id}", "area-teda").status == 404


# --- administration --------------------------------------------------------------------------------------------


def admin_calls(api_env: ApiEnv, exists: bool) -> list[tuple[str, str, Any]]:
    enterprise = "E-HC-01" if exists else "E-NOPE-99"
    device = api_env.registry.devices[0].device_id if exists else "NO-SUCH-DEVICE"
    return [
        ("GET", f"/admin/enterprises/{enterprise}", None),
        ("GET", f"/admin/enterprises/{enterprise}/audit", None),
        ("GET", f"/admin/devices/{device}", None),
        ("GET", f"/admin/devices/{device}/audit", None),
        ("GET", "/admin/users", None),
    ]


@pytest.mark.parametrize("exists", (True, False), ids=("existing", "missing"))
@pytest.mark.parametrize("role", ROLES)
def test_admin_routes_are_for_the_administrator_only(api_env: ApiEnv, http: Http, role: str, exists: bool) -> None:
    for method, path, body in admin_calls(api_env, exists):
        answer = http.call(method, path, USERS[role], body)
        if role != "admin":
            assert answer.status == 403, path
        elif path == "/admin/users":
            assert answer.status == 200
        else:
            assert answer.status == (200 if exists else 404), path


@pytest.mark.parametrize("role", ROLES)
def test_admin_writes_are_refused_to_every_other_role(api_env: ApiEnv, http: Http, role: str) -> None:
    if role == "admin":
        return
    device = api_env.registry.devices[0]
    writes = [
        ("PUT", "/admin/enterprises/E-HC-01", {"name": "改名", "sector": "hazchem"}),
        (
            "PUT",
            f"/admin/devices/{device.device_id}",
            {"enterprise_id": "E-HC-01", "unit_id": "U", "unit_name": "U", "kind": "k"},
        ),
        ("POST", "/admin/users", {"username": f"x-{role}", "name": "某人", "role": "duty"}),
    ]
    for method, path, body in writes:
        assert http.call(method, path, USERS[role], body).status == 403, path
    assert http.get("/admin/enterprises/E-HC-01", "admin").body["name"] != "改名"


__all__ = ["api_env", "http"]  # the fixtures this module uses
