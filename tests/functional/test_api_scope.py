"""What people see and do beyond their role's routes (docs/api.md "Roles and scopes"): an enterprise sees the
government side by name and role only, and reassigns its warnings to its own users only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http, raise_warning

ENTERPRISE, DUTY, REGULATOR, ADMIN = "ent-e-hc-01", "duty-01", "reg-emergency-bureau", "admin"
STAFF_USERS = (DUTY, REGULATOR)
APPS = {ENTERPRISE: "enterprise-app/1.4 (Android)", DUTY: "duty-console/2.0", REGULATOR: "inspector-app/0.9"}


def act(http: Http, user: str, record: WarningRecord, body: dict[str, Any]) -> Any:
    return http.post(
        f"/warnings/{record.warning_id}/actions", user, body, headers={"x-dyj-app": APPS.get(user, "")}
    )


@pytest.fixture(scope="module")
def worked_on(api_env: ApiEnv, http: Http) -> WarningRecord:
    """A red warning of E-HC-01 that its enterprise, the duty centre and a regulator have acted on."""
    record = raise_warning(api_env.registry, "E-HC-01", Level.RED)
    steps: list[tuple[str, dict[str, Any]]] = [
        (ENTERPRISE, {"type": "acknowledge"}),
        (DUTY, {"type": "record_contact", "channel": "phone", "outcome": "reached", "contact_name": "刘经理"}),
        (DUTY, {"type": "escalate", "tier": 2, "note": "通报主管部门"}),
        (REGULATOR, {"type": "record_inspection", "findings": "储罐区已疏散"}),
    ]
    for user, body in steps:
        assert act(http, user, record, body).status == 200, (user, body)
    return record


def test_an_enterprise_sees_staff_in_the_timeline_by_name_and_role_only(
    http: Http, worked_on: WarningRecord
) -> None:
    detail = http.get(f"/warnings/{worked_on.warning_id}", ENTERPRISE).body
    staff = [entry for entry in detail["timeline"] if entry["role"] in {"duty", "regulator"}]
    assert [entry["type"] for entry in staff] == ["record_contact", "escalate", "record_inspection"]
    for entry in staff:
        assert (entry["actor"], entry["source_ip"], entry["app"]) == (None, None, None)
        assert entry["actor_name"] and entry["actor_name"] not in STAFF_USERS
        assert entry["role_zh"] in {"值守中心", "行业主管部门"}
    text = json.dumps(detail, ensure_ascii=False)
    for hidden in (*STAFF_USERS, APPS[DUTY], APPS[REGULATOR]):
        assert hidden not in text, hidden


def test_an_enterprise_sees_its_own_peoples_entries_whole(http: Http, worked_on: WarningRecord) -> None:
    detail = http.get(f"/warnings/{worked_on.warning_id}", ENTERPRISE).body
    (own,) = [entry for entry in detail["timeline"] if entry["role"] == "enterprise"]
    assert (own["type"], own["actor"], own["app"]) == ("acknowledge", ENTERPRISE, APPS[ENTERPRISE])
    assert detail["warning"]["details"]["acknowledged"]["by"] == ENTERPRISE


def test_an_enterprise_sees_no_staff_user_ids_in_the_warnings_step_records(
    http: Http, worked_on: WarningRecord
) -> None:
    details = http.get(f"/warnings/{worked_on.warning_id}", ENTERPRISE).body["warning"]["details"]
    for step in ("last_contact", "escalation", "last_inspection"):
        assert (
            "by" not in details[step] and details[step]["name"] and details[step]["role"] in {"duty", "regulator"}
        )
    listed = http.get("/warnings?limit=100", ENTERPRISE).body["items"]
    assert DUTY not in json.dumps([item for item in listed if item["warning_id"] == worked_on.warning_id])


def test_staff_see_every_field_of_the_same_timeline(http: Http, worked_on: WarningRecord) -> None:
    detail = http.get(f"/warnings/{worked_on.warning_id}", DUTY).body
    contact = next(entry for entry in detail["timeline"] if entry["type"] == "record_contact")
    assert (contact["actor"], contact["app"]) == (DUTY, APPS[DUTY])
    assert contact["source_ip"]
    assert detail["warning"]["details"]["last_contact"]["by"] == DUTY


# --- reassign --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def colleague(http: Http) -> str:
    """A second enterprise user of E-HC-01, created by the administrator."""
    body = {"username": "ent-e-hc-01-wang", "name": "王工", "role": "enterprise", "enterprise_id": "E-HC-01"}
    assert http.post("/admin/users", ADMIN, body).status == 201
    return "ent-e-hc-01-wang"


@pytest.mark.parametrize(
    ("user", "assignee"),
    [
        (ENTERPRISE, "ent-e-rt-01"),  # another enterprise's user
        (ENTERPRISE, "nobody-at-all"),
        (ENTERPRISE, DUTY),  # a user, not an enterprise user
        (DUTY, "ent-e-rt-01"),
    ],
)
def test_a_warning_is_reassigned_to_a_user_of_its_own_enterprise_only(
    api_env: ApiEnv, http: Http, user: str, assignee: str
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.ORANGE)
    answer = act(http, user, record, {"type": "reassign", "assignee_id": assignee, "assignee_name": "某人"})
    assert (answer.status, answer.code) == (422, "assignee_not_in_enterprise")
    assert answer.body["details"]["errors"] == [{"field": "assignee_id", "code": "not_in_enterprise"}]
    detail = http.get(f"/warnings/{record.warning_id}", DUTY).body
    assert "assignee" not in detail["warning"]["details"]
    assert [entry["type"] for entry in detail["timeline"]] == ["raise"]


def test_a_reassignment_to_a_colleague_records_the_directorys_name(
    api_env: ApiEnv, http: Http, colleague: str
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.ORANGE)
    answer = act(http, ENTERPRISE, record, {"type": "reassign", "assignee_id": colleague, "assignee_name": "张三"})
    assert answer.status == 200, answer
    assignee = answer.body["details"]["assignee"]
    assert (assignee["id"], assignee["assignee_name"]) == (colleague, "王工")


def test_the_role_and_scope_checks_come_before_the_assignee_check(api_env: ApiEnv, http: Http) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.ORANGE)
    body = {"type": "reassign", "assignee_id": "nobody-at-all"}
    assert act(http, REGULATOR, record, body).code == "role_not_permitted"
    assert act(http, "ent-e-rt-01", record, body).code == "warning_not_found"


__all__ = ["api_env", "http"]  # the fixtures this module uses
