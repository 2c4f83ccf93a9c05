"""The disposal loop through the API (DOMAIN.md §1, §4): legal and illegal transitions, latched warnings,
concurrent actions, evidence, listings, and the errors every route shares (401, 400, 422, 409 in Chinese)."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.request
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.audit_store import AuditedWarningStore
from chalicelib.api.models import action_body
from chalicelib.bootstrap import api
from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.errors import DomainError
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import Actor, Role, Transition
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.warning_actions import WarningActions
from tests.functional.api_fixtures import (
    ApiEnv,
    Http,
    api_env,
    engine_change,
    http,
    raise_warning,
    recover,
)

ENTERPRISE, DUTY, EMERGENCY = "ent-e-hc-01", "duty-01", "emg-01"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def act(http: Http, user: str, record: WarningRecord, body: dict[str, Any]) -> Any:
    return http.post(f"/warnings/{record.warning_id}/actions", user, body)


def ok(http: Http, user: str, record: WarningRecord, body: dict[str, Any]) -> dict[str, Any]:
    answer = act(http, user, record, body)
    assert answer.status == 200, answer
    result: dict[str, Any] = answer.body
    return result


def upload(http: Http, user: str, record: WarningRecord) -> str:
    ticket = http.post(f"/warnings/{record.warning_id}/evidence", user, {"content_type": "image/jpeg"}).body
    request = urllib.request.Request(
        ticket["url"], data=b"\xff\xd8\xff photo", method="PUT", headers=ticket["headers"]
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    key: str = ticket["key"]
    return key


# --- the loop --------------------------------------------------------------------------------------------------


def test_a_red_warning_goes_round_the_whole_loop_and_every_step_is_in_the_timeline(
    api_env: ApiEnv, http: Http
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.RED)
    assert ok(http, ENTERPRISE, record, {"type": "acknowledge"})["status"] == "acknowledged"
    assert ok(http, ENTERPRISE, record, {"type": "verify", "outcome": "real"})["status"] == "verified"
    assert ok(http, ENTERPRISE, record, {"type": "start_disposal", "note": "关闭进料阀"})["status"] == "disposing"
    photo = upload(http, ENTERPRISE, record)
    clear = {"type": "request_clear", "reason": "disposed", "text": "已处置完毕", "evidence_keys": [photo]}

    refused = act(http, ENTERPRISE, record, clear)
    assert (refused.status, refused.code) == (409, "reading_not_normal")
    recover(api_env.registry, record)
    assert ok(http, ENTERPRISE, record, clear)["status"] == "clear_requested"  # red waits for the duty centre
    assert act(http, ENTERPRISE, record, {"type": "confirm_closure"}).status == 403
    assert ok(http, DUTY, record, {"type": "confirm_closure"})["status"] == "closed"
    assert ok(http, DUTY, record, {"type": "archive"})["status"] == "archived"

    detail = http.get(f"/warnings/{record.warning_id}", DUTY).body
    assert [entry["type"] for entry in detail["timeline"]] == [
        "raise",
        "acknowledge",
        "verify",
        "start_disposal",
        "recover",
        "request_clear",
        "confirm_closure",
        "archive",
    ]
    assert detail["warning"]["details"]["clear_request"]["evidence_keys"] == [photo]
    assert detail["permitted_actions"] == []
    assert http.get(f"/warnings/{record.warning_id}/audit", DUTY).body == {
        "ok": True,
        "first_bad_seq": None,
        "reason": None,
        "reason_zh": "完整",
        "checked": 8,
        "head_seq": 8,
    }


def test_a_blue_warning_closes_on_the_enterprise_report_once_the_reading_is_normal(
    api_env: ApiEnv, http: Http
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.BLUE)
    ok(http, ENTERPRISE, record, {"type": "acknowledge"})
    ok(http, ENTERPRISE, record, {"type": "verify", "outcome": "real"})
    ok(http, ENTERPRISE, record, {"type": "start_disposal"})
    recover(api_env.registry, record)
    closed = ok(http, ENTERPRISE, record, {"type": "request_clear", "reason": "disposed", "text": "已恢复"})
    assert closed["status"] == "closed"
    assert closed["details"]["closure"]["confirmed"] is False


def test_a_warning_whose_reading_recovers_before_anyone_responds_stays_open_on_the_wall(
    api_env: ApiEnv, http: Http
) -> None:
    record = raise_warning(api_env.registry, "E-HC-02", Level.ORANGE)
    recover(api_env.registry, record)
    view = http.get(f"/warnings/{record.warning_id}", ENTERPRISE.replace("01", "02")).body["warning"]
    assert (view["status"], view["reading_normal"]) == ("raised", True)
    wall = http.get("/wall?limit=100&sector=hazchem", DUTY).body["items"]
    assert record.warning_id in {item["warning_id"] for item in wall}


def test_an_engine_level_change_lands_in_any_open_state_and_in_the_chain(api_env: ApiEnv, http: Http) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.YELLOW)
    ok(http, ENTERPRISE, record, {"type": "acknowledge"})
    change = engine_change(
        ChangeKind.LEVEL_UP,
        record.device_id,
        record.enterprise_id,
        Level.RED,
        time.time(),
        record.raised_at,
        api_env.registry,
        previous=Level.YELLOW,
    )
    assert AuditedWarningStore().apply_change(change)
    assert not AuditedWarningStore().apply_change(change)  # a redelivery changes nothing
    detail = http.get(f"/warnings/{record.warning_id}", DUTY).body
    assert (detail["warning"]["status"], detail["warning"]["level"]) == ("acknowledged", "red")
    assert [entry["type"] for entry in detail["timeline"]] == ["raise", "acknowledge", "level_up"]
    assert http.get(f"/warnings/{record.warning_id}/audit", DUTY).body["ok"] is True


ILLEGAL = [
    (ENTERPRISE, {"type": "verify", "outcome": "real"}, "wrong_status"),
    (ENTERPRISE, {"type": "start_disposal"}, "wrong_status"),
    (ENTERPRISE, {"type": "request_clear", "reason": "disposed", "text": "已处置"}, "wrong_status"),
    (DUTY, {"type": "confirm_closure"}, "wrong_status"),
    (DUTY, {"type": "reject_clear", "note": "照片不清楚"}, "wrong_status"),
    (DUTY, {"type": "archive"}, "warning_open"),
]


@pytest.mark.parametrize(("user", "body", "code"), ILLEGAL, ids=[body["type"] for _, body, _ in ILLEGAL])
def test_an_illegal_transition_from_raised_is_a_409_with_a_chinese_message(
    api_env: ApiEnv, http: Http, user: str, body: dict[str, Any], code: str
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.RED)
    answer = act(http, user, record, body)
    assert (answer.status, answer.code) == (409, code)
    assert CHINESE.search(answer.body["message"])
    assert http.get(f"/warnings/{record.warning_id}", DUTY).body["warning"]["status"] == "raised"


def test_an_action_on_a_closed_warning_is_a_409_and_manual_escalation_only_goes_up(
    api_env: ApiEnv, http: Http
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.RED)
    ok(http, DUTY, record, {"type": "escalate", "tier": 2})
    lower = act(http, EMERGENCY, record, {"type": "escalate", "tier": 1})
    assert (lower.status, lower.code) == (409, "already_escalated")
    ok(http, DUTY, record, {"type": "mark_false_alarm", "note": "传感器受潮"})
    late = act(http, ENTERPRISE, record, {"type": "acknowledge"})
    assert (late.status, late.code) == (409, "warning_closed")


def test_evidence_must_be_uploaded_for_the_warning_it_is_cited_on(api_env: ApiEnv, http: Http) -> None:
    mine = raise_warning(api_env.registry, "E-HC-01", Level.BLUE)
    other = raise_warning(api_env.registry, "E-HC-01", Level.BLUE)
    photo_of_other = upload(http, ENTERPRISE, other)
    ok(http, ENTERPRISE, mine, {"type": "acknowledge"})
    ok(http, ENTERPRISE, mine, {"type": "verify", "outcome": "false_alarm"})
    body = {"type": "request_clear", "reason": "false_alarm", "text": "误报", "evidence_keys": [photo_of_other]}
    answer = act(http, ENTERPRISE, mine, body)
    assert (answer.status, answer.code) == (422, "evidence_outside_warning")


def test_evidence_upload_url_puts_exactly_that_key_and_a_closed_warning_takes_none(
    api_env: ApiEnv, http: Http
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.RED)
    key = upload(http, ENTERPRISE, record)
    assert key.startswith(f"evidence/E-HC-01/{record.warning_id}/") and key.endswith(".jpg")
    bad_type = http.post(f"/warnings/{record.warning_id}/evidence", ENTERPRISE, {"content_type": "text/html"})
    assert bad_type.status == 422
    ok(http, DUTY, record, {"type": "mark_false_alarm", "note": "误报"})
    closed = http.post(f"/warnings/{record.warning_id}/evidence", ENTERPRISE, {"content_type": "image/png"})
    assert (closed.status, closed.code) == (409, "warning_closed")


# --- concurrency -----------------------------------------------------------------------------------------------


class RacingStore(AuditedWarningStore):
    """Both threads read the warning before either writes: the race, every time."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self._barrier = barrier
        self._seen = threading.local()

    def update(self, warning_id: str, decide: Any, **origin: Any) -> WarningRecord:
        def racing(record: WarningRecord | None) -> Transition:
            if not getattr(self._seen, "waited", False):
                self._seen.waited = True
                self._barrier.wait(timeout=10)
            result: Transition = decide(record)
            return result

        return super().update(warning_id, racing, **origin)


def race(record: WarningRecord, actor: Actor, payload: dict[str, Any]) -> list[str]:
    barrier = threading.Barrier(2)
    store = RacingStore(barrier)
    base = api().warnings
    service = WarningActions(store, base._listings, base._policy, time.time)
    action = action_body(payload)
    outcomes: list[str] = []

    def one() -> None:
        try:
            service.act(actor, record.warning_id, action)
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(f"{exc.http_status}:{exc.code}")

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return sorted(outcomes)


def enterprise_actor(enterprise_id: str) -> Actor:
    return Actor(user_id=f"ent-{enterprise_id.lower()}", role=Role.ENTERPRISE, enterprise_id=enterprise_id)


@pytest.mark.parametrize("attempt", range(3))
def test_of_two_concurrent_acknowledges_exactly_one_wins(api_env: ApiEnv, http: Http, attempt: int) -> None:
    record = raise_warning(api_env.registry, "E-HC-03", Level.RED)
    outcomes = race(record, enterprise_actor("E-HC-03"), {"type": "acknowledge"})
    assert outcomes == ["409:wrong_status", "ok"]
    detail = http.get(f"/warnings/{record.warning_id}", DUTY).body
    assert [entry["type"] for entry in detail["timeline"]] == ["raise", "acknowledge"]
    assert http.get(f"/warnings/{record.warning_id}/audit", DUTY).body["ok"] is True


def test_of_two_concurrent_clear_requests_exactly_one_wins(api_env: ApiEnv, http: Http) -> None:
    record = raise_warning(api_env.registry, "E-HC-03", Level.RED)
    user = "ent-e-hc-03"
    ok(http, user, record, {"type": "acknowledge"})
    ok(http, user, record, {"type": "verify", "outcome": "real"})
    ok(http, user, record, {"type": "start_disposal"})
    recover(api_env.registry, record)
    body = {"type": "request_clear", "reason": "disposed", "text": "已处置"}
    assert race(record, enterprise_actor("E-HC-03"), body) == ["409:wrong_status", "ok"]
    assert http.get(f"/warnings/{record.warning_id}/audit", DUTY).body["checked"] == 6


# --- listings --------------------------------------------------------------------------------------------------


def test_an_enterprise_pages_through_its_warnings_newest_first_with_filters(api_env: ApiEnv, http: Http) -> None:
    now = time.time()
    raised = [
        raise_warning(api_env.registry, "E-FR-02", level, raised_at=now - 600 + i)
        for i, level in enumerate((Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED, Level.RED))
    ]
    user = "ent-e-fr-02"
    ok(http, user, raised[4], {"type": "acknowledge"})
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        answer = http.get("/warnings?limit=2" + (f"&cursor={cursor}" if cursor else ""), user).body
        seen += [item["warning_id"] for item in answer["items"]]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == [record.warning_id for record in reversed(raised)]
    assert pages == 3
    red_raised = http.get("/warnings?level=red&status=raised", user).body["items"]
    assert [item["warning_id"] for item in red_raised] == [raised[3].warning_id]
    both = http.get("/warnings?level=red,orange", user).body["items"]
    assert len(both) == 3


def test_the_wall_puts_red_first_then_the_oldest_and_flags_overdue(api_env: ApiEnv, http: Http) -> None:
    now = time.time()
    old_yellow = raise_warning(api_env.registry, "E-CS-01", Level.YELLOW, raised_at=now - 7200)
    # the `test` stage runs seconds-scale deadlines (red: acknowledge within 10 s): raised just now
    new_red = raise_warning(api_env.registry, "E-CS-01", Level.RED, raised_at=now - 1)
    old_red = raise_warning(api_env.registry, "E-CS-01", Level.RED, raised_at=now - 3600)
    items = http.get("/wall?sector=construction&limit=100", "reg-housing-construction").body["items"]
    order = [item["warning_id"] for item in items]
    assert order.index(old_red.warning_id) < order.index(new_red.warning_id) < order.index(old_yellow.warning_id)
    overdue = http.get("/wall?sector=construction&overdue=true&limit=100", DUTY).body["items"]
    flagged = {item["warning_id"]: item["overdue"] for item in overdue}
    assert old_red.warning_id in flagged and old_yellow.warning_id in flagged
    assert new_red.warning_id not in flagged
    assert flagged[old_red.warning_id]["acknowledge"] is True


def test_the_wall_pages_with_a_cursor_without_repeating_or_skipping(api_env: ApiEnv, http: Http) -> None:
    for index in range(5):
        raise_warning(api_env.registry, "E-OG-01", Level.ORANGE, raised_at=time.time() - 100 - index)
    everything = [i["warning_id"] for i in http.get("/wall?sector=oil_gas_pipeline&limit=100", DUTY).body["items"]]
    paged: list[str] = []
    cursor = None
    while True:
        query = "/wall?sector=oil_gas_pipeline&limit=2" + (f"&cursor={cursor}" if cursor else "")
        answer = http.get(query, DUTY).body
        paged += [item["warning_id"] for item in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert paged == everything and len(paged) >= 5


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "cursor=%%%", "cursor=eyJ4IjoxfQ", "status=unknown", "overdue=maybe", "colour=red"],
)
def test_a_bad_listing_parameter_is_a_422(http: Http, query: str) -> None:
    answer = http.get(f"/warnings?{query}", DUTY)
    assert answer.status == 422
    assert answer.code in {"invalid_request", "invalid_cursor"}


# --- the shared errors -----------------------------------------------------------------------------------------


def test_without_a_token_every_route_is_401_and_says_bearer(api_env: ApiEnv, http: Http) -> None:
    record = raise_warning(api_env.registry, "E-HC-01")
    for method, path in [("GET", "/me"), ("GET", "/warnings"), ("POST", f"/warnings/{record.warning_id}/actions")]:
        answer = http.call(method, path, None, {"type": "acknowledge"} if method == "POST" else None)
        assert (answer.status, answer.code) == (401, "unauthenticated")
        assert answer.headers.get("WWW-Authenticate") == "Bearer"
    assert http.get("/health").status == 200


def forged_token(claims: dict[str, Any]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


def test_a_bad_forged_or_foreign_token_is_401(api_env: ApiEnv, http: Http) -> None:
    from local.users import token_for

    genuine = token_for(DUTY)
    claims = jwt.decode(genuine, options={"verify_signature": False})
    header, _payload, signature = genuine.split(".")
    promoted = {**claims, "cognito:groups": ["admin"]}
    tampered = ".".join(
        [header, base64.urlsafe_b64encode(json.dumps(promoted).encode()).decode().rstrip("="), signature]
    )
    for token in ["garbage", forged_token(claims), tampered, forged_token({**claims, "aud": "another-client"})]:
        answer = http.get("/me", None, headers={"Authorization": f"Bearer {token}"})
        assert (answer.status, answer.code) == (401, "invalid_token"), token[:20]


def test_a_user_without_a_role_group_is_403(api_env: ApiEnv, http: Http) -> None:
    from local.users import DEMO_PASSWORD, directory, token_for

    pool = directory()
    pool._cognito.admin_create_user(  # a user created outside the API, in no group
        UserPoolId=api_env.env["DYJ_COGNITO_USER_POOL_ID"], Username="nobody", MessageAction="SUPPRESS"
    )
    pool.set_password("nobody", DEMO_PASSWORD)
    answer = http.get("/me", None, headers={"Authorization": f"Bearer {token_for('nobody')}"})
    assert (answer.status, answer.code) == (403, "no_role")


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"type": "dance"}', 422, "invalid_request"),
        (b'{"type": "verify"}', 422, "invalid_request"),
        (b'{"type": "acknowledge", "by": "someone-else"}', 422, "invalid_request"),
        (b"[]", 422, "invalid_request"),
    ],
)
def test_an_unreadable_or_invalid_action_body_is_refused(
    api_env: ApiEnv, http: Http, raw: bytes, status: int, code: str
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01")
    answer = http.post(f"/warnings/{record.warning_id}/actions", ENTERPRISE, raw)
    assert (answer.status, answer.code) == (status, code)
    assert CHINESE.search(answer.body["message"])


def test_a_missing_warning_and_a_malformed_id_are_both_404(http: Http) -> None:
    assert http.get("/warnings/WNOSUCH", DUTY).status == 404
    assert http.get("/warnings/%20bad%20id", DUTY).status == 404


__all__ = ["api_env", "http"]  # the fixtures this module uses
