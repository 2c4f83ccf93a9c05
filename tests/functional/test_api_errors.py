"""The one error contract through the app (docs/api.md "Conventions", "Error codes"): bodies that cannot be read,
bodies too large, schema violations in one shape on every route, unknown routes and methods, content types,
repeated query parameters, and an expired token apart from a forged one. Every answer is JSON
`{"code", "message" (中文)[, "details"]}`; none is a 5xx."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import jwt
import pytest
from moto.utilities.utils import load_resource

from chalicelib.api.errors import CODES, MAX_BODY_BYTES
from chalicelib.domain.levels import Level
from local.users import token_for
from tests.functional.api_fixtures import Answer, ApiEnv, Http, api_env, http, raise_warning

ENTERPRISE, DUTY, ADMIN = "ent-e-hc-01", "duty-01", "admin"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def in_the_contract(answer: Answer, status: int, code: str) -> None:
    assert (answer.status, answer.code) == (status, code), answer
    assert answer.headers.get("Content-Type", "").startswith("application/json"), answer.headers
    assert set(answer.body) <= {"code", "message", "details"}
    assert CHINESE.search(answer.body["message"]), answer.body
    assert CODES[code].status == status


@pytest.fixture(scope="module")
def warning_id(api_env: ApiEnv) -> str:
    return raise_warning(api_env.registry, "E-HC-01", Level.RED).warning_id


# --- bodies ----------------------------------------------------------------------------------------------------


def test_the_issues_deeply_nested_body_is_refused_by_size_not_by_a_500(http: Http, warning_id: str) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    in_the_contract(http.post(f"/warnings/{warning_id}/actions", ENTERPRISE, nested), 413, "payload_too_large")
    in_the_contract(http.post(f"/warnings/{warning_id}/actions", None, nested), 413, "payload_too_large")


@pytest.mark.parametrize(
    "path", ["/warnings/{id}/actions", "/warnings/{id}/evidence", "/admin/users", "/admin/enterprises/E-HC-01"]
)
def test_nesting_deeper_than_the_parser_takes_is_a_400_on_every_route_with_a_body(
    http: Http, warning_id: str, path: str
) -> None:
    nested = b"[" * 30_000 + b"]" * 30_000  # under the size cap
    method = "PUT" if path.startswith("/admin/enterprises") else "POST"
    answer = http.call(method, path.format(id=warning_id), ADMIN if "admin" in path else ENTERPRISE, nested)
    in_the_contract(answer, 400, "invalid_json")
    assert answer.body["details"] == {"reason": "nesting"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"type": "acknowledge", "note": "\xff"}', "utf8"),
        (b'{"type": "acknowledge", "note": "\\ud800"}', "unicode"),
        (b'{"type": "acknowledge", "type": "acknowledge"}', "syntax"),
        (b'{"type": "issue_supervision", "order": "o", "deadline": NaN}', "syntax"),
    ],
    ids=["bad-utf8", "lone-surrogate", "duplicate-key", "nan"],
)
def test_a_body_that_is_not_strict_json_is_a_400_and_changes_nothing(
    api_env: ApiEnv, http: Http, raw: bytes, reason: str
) -> None:
    record = raise_warning(api_env.registry, "E-HC-01", Level.RED)
    answer = http.post(f"/warnings/{record.warning_id}/actions", ENTERPRISE, raw)
    in_the_contract(answer, 400, "invalid_json")
    assert answer.body["details"]["reason"] == reason
    assert http.get(f"/warnings/{record.warning_id}", DUTY).body["warning"]["status"] == "raised"


def test_a_megabyte_of_unknown_keys_is_refused_unread_and_a_body_at_the_cap_gets_a_short_answer(
    http: Http, warning_id: str
) -> None:
    megabyte = {f"key-{index:06d}-{'k' * 40}": "v" * 40 for index in range(12_000)}
    in_the_contract(http.post(f"/warnings/{warning_id}/actions", ENTERPRISE, megabyte), 413, "payload_too_large")

    keys_at_the_cap = {f"{index:05d}{'k' * 200}": 1 for index in range((MAX_BODY_BYTES - 100) // 215)}
    raw = json.dumps({"type": "acknowledge", **keys_at_the_cap}).encode()
    assert MAX_BODY_BYTES - 2000 < len(raw) <= MAX_BODY_BYTES
    answer = http.post(f"/warnings/{warning_id}/actions", ENTERPRISE, raw)
    in_the_contract(answer, 422, "invalid_request")
    assert answer.body["details"]["total"] == len(keys_at_the_cap)
    assert len(answer.body["details"]["errors"]) == 20
    assert len(json.dumps(answer.body)) < 2500
    assert "k" * 40 not in json.dumps(answer.body)


VALIDATION_ERRORS: list[tuple[str, str, str, Any, dict[str, str]]] = [
    ("POST", "/warnings/{id}/actions", ENTERPRISE, {"type": "verify"}, {"field": "outcome", "code": "missing"}),
    ("POST", "/warnings/{id}/evidence", ENTERPRISE, {"content_type": "text/html"}, {"field": "content_type"}),
    ("PUT", "/admin/enterprises/E-HC-01", ADMIN, {"name": "n", "sector": "mining"}, {"field": "sector"}),
    ("PUT", "/admin/devices/D-1", ADMIN, {"unit_id": "U"}, {"field": "enterprise_id", "code": "missing"}),
    ("POST", "/admin/users", ADMIN, {"username": "x"}, {"field": "username", "code": "string_too_short"}),
    ("GET", "/warnings?limit=0", DUTY, None, {"field": "limit", "code": "greater_than_equal"}),
    ("GET", "/wall?colour=red", DUTY, None, {"field": "colour", "code": "extra_forbidden"}),
    ("GET", "/admin/users?role=king", ADMIN, None, {"field": "role.0", "code": "literal_error"}),
]


@pytest.mark.parametrize(
    ("method", "path", "user", "body", "entry"),
    VALIDATION_ERRORS,
    ids=[f"{m} {p}" for m, p, *_ in VALIDATION_ERRORS],
)
def test_a_schema_violation_is_the_same_422_shape_on_every_route(
    http: Http, warning_id: str, method: str, path: str, user: str, body: Any, entry: dict[str, str]
) -> None:
    answer = http.call(method, path.format(id=warning_id), user, body)
    in_the_contract(answer, 422, "invalid_request")
    details = answer.body["details"]
    assert set(details) == {"errors", "total"} and 1 <= len(details["errors"]) <= 20
    assert all(set(error) == {"field", "code"} for error in details["errors"])
    assert any(entry.items() <= error.items() for error in details["errors"]), details


# --- routes, methods, content types, parameters ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/warnings/W1/actions/extra", "/admin", "/admin/nothing/here"])
def test_an_unknown_route_is_a_404_in_the_api_shape(http: Http, path: str) -> None:
    in_the_contract(http.get(path, DUTY), 404, "route_not_found")
    in_the_contract(http.get(path), 404, "route_not_found")  # with or without a token


def test_a_known_path_with_another_method_is_a_405_that_lists_the_allowed_ones(
    http: Http, warning_id: str
) -> None:
    answer = http.call("DELETE", f"/warnings/{warning_id}", DUTY)
    in_the_contract(answer, 405, "method_not_allowed")
    assert answer.headers.get("Allow") == "GET"


def test_a_body_that_is_not_declared_json_is_a_415_in_the_api_shape(http: Http, warning_id: str) -> None:
    answer = http.post(
        f"/warnings/{warning_id}/actions", ENTERPRISE, b"type=acknowledge", headers={"Content-Type": "text/plain"}
    )
    in_the_contract(answer, 415, "unsupported_media_type")


def test_a_repeated_query_parameter_is_a_400_not_the_last_value(http: Http) -> None:
    answer = http.get("/warnings?level=red&level=blue", DUTY)
    in_the_contract(answer, 400, "repeated_parameter")
    assert answer.body["details"]["errors"] == [{"field": "level", "code": "repeated"}]
    assert http.get("/warnings?level=red,blue", DUTY).status == 200


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/warnings/bad%20id", "warning_not_found"),
        ("/admin/devices/bad%20id", "device_not_found"),
        ("/admin/enterprises/bad%20id", "enterprise_not_found"),
    ],
)
def test_a_malformed_path_id_is_the_404_of_its_kind_of_record(http: Http, path: str, code: str) -> None:
    in_the_contract(http.get(path, ADMIN), 404, code)


# --- tokens ----------------------------------------------------------------------------------------------------


def moto_signed(claims: dict[str, Any]) -> str:
    """Signed with the local pool's own key (moto's): a genuine token of the pool."""
    key = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": "dummy"})


def test_an_expired_genuine_token_is_token_expired_and_any_other_bad_token_invalid_token(http: Http) -> None:
    claims = jwt.decode(token_for(DUTY), options={"verify_signature": False})
    assert http.get("/me", None, headers={"Authorization": f"Bearer {moto_signed(claims)}"}).status == 200

    past = {**claims, "iat": time.time() - 7200, "exp": time.time() - 3600}
    expired = http.get("/me", None, headers={"Authorization": f"Bearer {moto_signed(past)}"})
    in_the_contract(expired, 401, "token_expired")
    assert expired.headers.get("WWW-Authenticate") == "Bearer"

    for bad in [{**past, "aud": "another-client"}, {**past, "token_use": "access"}]:
        answer = http.get("/me", None, headers={"Authorization": f"Bearer {moto_signed(bad)}"})
        in_the_contract(answer, 401, "invalid_token")
    in_the_contract(http.get("/me", None, headers={"Authorization": "Bearer garbage"}), 401, "invalid_token")
    in_the_contract(http.get("/me"), 401, "unauthenticated")


__all__ = ["api_env", "http"]  # the fixtures this module uses
