"""People, duty shifts and enterprises' on-duty persons through the API: who may, what is audited, what is refused
(in Chinese), and what the seed installed through the same administration."""

from __future__ import annotations

import time

import pytest

from chalicelib.bootstrap import rosters
from chalicelib.domain.lifecycle import Role
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http

ADMIN, DUTY = "admin", "duty-01"
OTHERS = ("ent-e-hc-01", "reg-emergency-bureau", "area-tjftz", "emg-01")
H = 3600
PERSON = {"name": "值守中心 赵敏", "role": "duty", "phone": "+8613800000099"}


def test_the_seed_installed_people_a_duty_roster_and_on_duty_persons_through_the_audited_administration(
    api_env: ApiEnv, http: Http
) -> None:
    duty = http.get("/admin/people/duty-01", DUTY).body
    assert (duty["role"], duty["phone"]) == ("duty", "+8613800000001")
    trail = http.get("/admin/people/duty-01/audit", ADMIN).body
    assert [e["type"] for e in trail["events"]] == ["person_registered"] and trail["report"]["ok"]
    shifts = http.get("/admin/rosters/duty/shifts", DUTY).body["items"]
    assert shifts and {s["person_id"] for s in shifts} <= {"duty-01", "duty-02"}
    on_duty = http.get("/admin/enterprises/E-HC-01/on-duty", DUTY).body
    assert on_duty["person_ids"] == ["ent-e-hc-01"] and on_duty["people"][0]["enterprise_id"] == "E-HC-01"
    now = time.time()
    (current,) = [s for s in shifts if s["starts_at"] <= now < s["ends_at"]]
    assert [p.person_id for p in rosters().on_duty(Role.DUTY, now)] == [current["person_id"]]
    assert [p.person_id for p in rosters().on_duty(Role.ENTERPRISE, now, "E-HC-01")] == ["ent-e-hc-01"]


def test_a_person_is_registered_changed_and_audited_by_the_administrator(http: Http) -> None:
    created = http.put("/admin/people/duty-03", ADMIN, {**PERSON, "reason": "新入职"})
    assert (created.status, created.body["changed"], created.body["audit_seq"]) == (200, True, 1)
    same = http.put("/admin/people/duty-03", ADMIN, PERSON).body
    assert (same["changed"], same["audit_seq"]) == (False, 1)
    changed = http.put("/admin/people/duty-03", ADMIN, {**PERSON, "phone": "+8613900000099"}).body
    assert changed["audit_seq"] == 2
    trail = http.get("/admin/people/duty-03/audit", ADMIN).body
    assert [e["type"] for e in trail["events"]] == ["person_registered", "person_updated"]
    assert trail["events"][0]["reason"] == "新入职" and trail["events"][0]["actor"] == ADMIN
    listed = http.get("/admin/people?role=duty", DUTY).body
    assert "duty-03" in [p["person_id"] for p in listed["items"]]
    assert http.get("/admin/people/nobody", ADMIN).code == "person_not_found"


@pytest.mark.parametrize("phone", ["13800000099", "+86 13800000099", "+0861380000"])
def test_an_invalid_phone_is_a_422_with_the_chinese_message(http: Http, phone: str) -> None:
    answer = http.put("/admin/people/duty-04", ADMIN, {**PERSON, "phone": phone})
    assert (answer.status, answer.code) == (422, "invalid_phone")
    assert answer.body["message"] == "手机号码格式不正确，须为国际格式（如 +8613800138000）"


@pytest.mark.parametrize(
    "body",
    [
        {**PERSON, "role": "enterprise"},  # no enterprise
        {**PERSON, "role": "regulator"},  # no department
        {**PERSON, "enterprise_id": "E-HC-01"},  # a scope of another role
        {**PERSON, "role": "system"},
    ],
)
def test_a_person_whose_scope_does_not_fit_the_role_is_refused(http: Http, body: dict[str, object]) -> None:
    assert http.put("/admin/people/duty-05", ADMIN, body).code == "invalid_request"


def test_people_are_the_administrators_to_write_and_the_duty_centres_to_read(http: Http) -> None:
    assert http.put("/admin/people/duty-06", DUTY, PERSON).status == 403
    for user in OTHERS:
        assert http.get("/admin/people", user).status == 403, user
        assert http.get("/admin/people/duty-01", user).status == 403, user
        assert http.put("/admin/people/duty-06", user, PERSON).status == 403, user
    assert http.get("/admin/people/duty-06", ADMIN).status == 404


def test_the_duty_centre_keeps_the_roster_and_each_change_is_audited(http: Http) -> None:
    start = int(time.time()) + 10 * 86400
    body = {"person_id": "duty-02", "starts_at": start, "ends_at": start + 12 * H, "note": "加班"}
    made = http.put("/admin/rosters/duty/shifts/T-1", DUTY, {**body, "reason": "排班"})
    assert (made.status, made.body["changed"]) == (200, True)
    listed = http.get(f"/admin/rosters/duty/shifts?from={start - H}&to={start + H}", ADMIN).body["items"]
    assert [s["shift_id"] for s in listed] == ["T-1"]
    gone = http.call("DELETE", "/admin/rosters/duty/shifts/T-1", ADMIN, {"reason": "取消"})
    assert (gone.status, gone.body["deleted"]) == (200, True)
    assert http.call("DELETE", "/admin/rosters/duty/shifts/T-1", ADMIN).code == "shift_not_found"
    trail = http.get("/admin/rosters/duty/shifts/T-1/audit", DUTY).body
    assert [e["type"] for e in trail["events"]] == ["shift_registered", "shift_deleted"] and trail["report"]["ok"]
    for user in OTHERS:
        assert http.put("/admin/rosters/duty/shifts/T-2", user, body).status == 403, user
        assert http.get("/admin/rosters/duty/shifts", user).status == 403, user


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"ends_at_offset": 0}, "shift_not_after_start"),
        ({"ends_at_offset": 25 * H}, "shift_too_long"),
        ({"starts_at_offset": -30 * 86400}, "shift_in_past"),
        ({"person_id": "nobody"}, "unknown_person"),
        ({"person_id": "emg-01"}, "person_not_on_roster"),
    ],
)
def test_a_shift_that_breaks_a_rule_is_refused(http: Http, change: dict[str, object], code: str) -> None:
    start = int(time.time()) + int(str(change.get("starts_at_offset", H)))
    end = start + int(str(change.get("ends_at_offset", 8 * H)))
    body = {"person_id": change.get("person_id", "duty-01"), "starts_at": start, "ends_at": end}
    answer = http.put("/admin/rosters/duty/shifts/T-BAD", DUTY, body)
    assert (answer.status, answer.code) == (422, code)
    assert answer.body["message"]


def test_shift_listing_refuses_a_window_too_long(http: Http) -> None:
    assert http.get("/admin/rosters/duty/shifts?from=0&to=99999999", DUTY).code == "invalid_range"


def test_an_enterprises_on_duty_person_is_one_of_its_own_people(http: Http) -> None:
    watch = {"name": "值班员 新人", "role": "enterprise", "phone": "+8613800000098", "enterprise_id": "E-HC-02"}
    assert http.put("/admin/people/ent-e-hc-02-b", ADMIN, watch).status == 200
    named = http.put(
        "/admin/enterprises/E-HC-02/on-duty", DUTY, {"person_ids": ["ent-e-hc-02-b"], "reason": "换人"}
    )
    assert (named.status, named.body["person_ids"], named.body["changed"]) == (200, ["ent-e-hc-02-b"], True)
    trail = http.get("/admin/enterprises/E-HC-02/audit", ADMIN).body
    assert trail["events"][-1]["after"]["on_duty"] == ["ent-e-hc-02-b"] and trail["report"]["ok"]
    wrong = http.put("/admin/enterprises/E-HC-01/on-duty", ADMIN, {"person_ids": ["ent-e-hc-02-b"]})
    assert (wrong.status, wrong.code) == (422, "on_duty_not_in_enterprise")
    assert http.get("/admin/enterprises/E-NOPE/on-duty", ADMIN).code == "enterprise_not_found"
    for user in OTHERS:
        assert http.put("/admin/enterprises/E-HC-02/on-duty", user, {"person_ids": []}).status == 403, user
        assert http.get("/admin/enterprises/E-HC-02/on-duty", user).status == 403, user


__all__ = ["api_env", "http"]  # the fixtures this module uses
