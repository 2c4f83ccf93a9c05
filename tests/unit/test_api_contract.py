"""The API's pure parts: claims → actor, the query and cursor conventions, reading a request, the error map and
its catalogue (every code raised in code is documented, in docs/api.md and in the OpenAPI document)."""

from __future__ import annotations

import ast
import base64
import json
import re
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from chalicelib.api.errors import (
    CODES,
    MAX_BODY_BYTES,
    BadRequest,
    InvalidRequest,
    PayloadTooLarge,
    chalice_error,
    error_body,
    field_name,
    validated,
)
from chalicelib.api.identity import actor_from_claims
from chalicelib.api.inputs import json_body, single_values
from chalicelib.api.models import (
    ROUTES,
    ActionBody,
    Department,
    EnterpriseUpsert,
    WarningQuery,
    WarningView,
)
from chalicelib.domain.changes import HEADER_FIELDS
from chalicelib.domain.errors import DomainError, Forbidden, InvalidTransition
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.policy import DEPARTMENT_ZH
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.cursors import decode_cursor, encode_cursor
from chalicelib.services.ports import ConcurrentUpdateError

PROJECT_DIR = Path(__file__).resolve().parents[2]
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def claims(groups: list[str], **attributes: str) -> dict[str, object]:
    return {"sub": "uuid-1", "cognito:username": "u1", "name": "张三", "cognito:groups": groups, **attributes}


def test_a_regulator_gets_the_sectors_of_its_department_from_the_routing_policy() -> None:
    actor = actor_from_claims(claims(["regulator"], **{"custom:department": "planning_resources"}))
    assert (actor.role, actor.sectors) == (Role.REGULATOR, (Sector.CHEM_PIPELINE, Sector.OIL_GAS_PIPELINE))


def test_scope_attributes_that_do_not_belong_to_the_role_are_ignored() -> None:
    actor = actor_from_claims(claims(["duty"], **{"custom:enterprise_id": "E-HC-01", "custom:area_codes": "TEDA"}))
    assert (actor.role, actor.enterprise_id, actor.area_codes) == (Role.DUTY, None, ())


def test_area_codes_are_a_comma_separated_attribute() -> None:
    actor = actor_from_claims(claims(["area"], **{"custom:area_codes": " TEDA, TAIDA ,,TEDA"}))
    assert actor.area_codes == ("TEDA", "TAIDA")


@pytest.mark.parametrize(
    ("groups", "attributes", "code"),
    [
        ([], {}, "no_role"),
        (["duty", "admin"], {}, "no_role"),
        (["system"], {}, "no_role"),
        (["enterprise"], {}, "scope_missing"),
        (["regulator"], {"custom:department": "no_such_department"}, "scope_missing"),
        (["area"], {"custom:area_codes": " , "}, "scope_missing"),
    ],
)
def test_a_token_without_exactly_one_role_or_without_its_scope_is_forbidden(
    groups: list[str], attributes: dict[str, str], code: str
) -> None:
    with pytest.raises(Forbidden) as raised:
        actor_from_claims(claims(groups, **attributes))
    assert raised.value.code == code


def test_other_groups_beside_the_one_role_do_not_matter() -> None:
    assert actor_from_claims(claims(["us-east-1_pool_Google", "emergency"])).role is Role.EMERGENCY


def test_filters_take_comma_separated_values_and_booleans_as_text() -> None:
    query = WarningQuery.model_validate({"status": "raised,acknowledged", "level": "red", "overdue": "true"})
    assert query.status == [WarningStatus.RAISED, WarningStatus.ACKNOWLEDGED]
    assert (query.level, query.overdue, query.limit) == (["red"], True, 20)


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "101"}, {"status": "gone"}, {"level": ""}, {"unknown": "x"}]
)
def test_an_out_of_range_or_unknown_parameter_is_invalid(params: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        WarningQuery.model_validate(params)


def test_a_cursor_round_trips_and_a_foreign_or_damaged_one_is_refused() -> None:
    key = {"urgency": "0#2025-11-25T00:00:00.000Z", "warning_id": "WABC"}
    assert decode_cursor(encode_cursor(key), ("urgency", "warning_id")) == key
    nested = base64.urlsafe_b64encode(b"[" * 1500).decode()
    surrogate = base64.urlsafe_b64encode(b'{"urgency": "\\ud800", "warning_id": "W"}').decode()
    for cursor in [
        "***",
        encode_cursor({"warning_id": "WABC"}),
        encode_cursor({"urgency": "", "warning_id": "W"}),
        nested,
        surrogate,
    ]:
        with pytest.raises(DomainError) as raised:
            decode_cursor(cursor, ("urgency", "warning_id"))
        assert (raised.value.http_status, raised.value.code) == (422, "invalid_cursor")


def test_a_warning_view_begins_with_the_warning_header_and_its_sector_in_chinese() -> None:
    """The view lists the header's fields again (a pydantic model cannot inherit the slotted dataclass): they must
    stay the header's, in its order, with `sector_zh` the only field among them."""
    leading = list(WarningView.model_fields)[: len(HEADER_FIELDS) + 1]
    assert [name for name in leading if name != "sector_zh"] == list(HEADER_FIELDS)
    assert leading[leading.index("sector") + 1] == "sector_zh"


def test_the_department_literal_lists_exactly_the_policy_departments() -> None:
    assert set(typing.get_args(Department)) == set(DEPARTMENT_ZH)


def test_the_error_map_gives_each_kind_its_status_and_says_nothing_about_internal_errors() -> None:
    assert error_body(InvalidTransition("wrong_status", "不能签收")) == (
        409,
        {"code": "wrong_status", "message": "不能签收"},
    )
    assert error_body(ConcurrentUpdateError("W1"))[0] == 409
    try:
        WarningQuery.model_validate({"limit": "x"})
    except ValidationError as exc:
        status, body = error_body(exc)
    assert (status, body["code"]) == (422, "invalid_request")
    assert body["details"] == {"errors": [{"field": "limit", "code": "int_parsing"}], "total": 1}
    assert error_body(RuntimeError("secret table name")) == (500, {"code": "internal", "message": "系统错误"})


# --- one shape for every validation error ----------------------------------------------------------------------


def test_a_validation_error_lists_at_most_twenty_fields_and_never_echoes_what_was_sent() -> None:
    secret = "S" * 5000
    body = {f"{secret}{index}": secret for index in range(1000)}
    with pytest.raises(InvalidRequest) as raised:
        validated(EnterpriseUpsert, {**body, "name": secret})
    status, answer = error_body(raised.value)
    details = answer["details"]
    assert (status, answer["code"], details["total"]) == (422, "invalid_request", 1000 + 2)  # + name, + sector
    assert len(details["errors"]) == 20
    assert all(set(entry) == {"field", "code"} and len(entry["field"]) <= 32 for entry in details["errors"])
    assert len(json.dumps(answer)) < 2000
    assert "S" * 40 not in json.dumps(answer)


def test_an_action_error_names_the_body_field_not_the_union_tag() -> None:
    with pytest.raises(InvalidRequest) as raised:
        validated(ActionBody, {"type": "verify"}, union_tag="verify")
    assert raised.value.details["errors"] == [{"field": "outcome", "code": "missing"}]
    with pytest.raises(InvalidRequest) as tag:
        validated(ActionBody, {"type": "dance"}, union_tag="dance")
    assert tag.value.details["errors"] == [{"field": "", "code": "union_tag_invalid"}]


def test_a_field_path_is_dotted_and_each_part_cut_short() -> None:
    assert field_name(["setpoints", "k" * 100, "high"]) == "setpoints." + "k" * 31 + "….high"
    assert field_name(["status", 0]) == "status.0"


# --- reading a request -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 30_000 + b"]" * 30_000, "nesting"),  # under the size cap: [×100000 is a 413
        (b'{"a": "\xff"}', "utf8"),
        (b'{"note": "\\ud800"}', "unicode"),
        (b'{"v": NaN}', "syntax"),
        (b'{"v": 1e999}', "syntax"),
        (b'{"v": ' + b"9" * 5000 + b"}", "syntax"),
        (b'{"type": "acknowledge", "type": "archive"}', "syntax"),
        (b"{not json", "syntax"),
        ("{}".encode("utf-16"), "utf8"),
    ],
    ids=["deep", "bad-utf8", "lone-surrogate", "nan", "overflow", "huge-int", "duplicate-key", "syntax", "utf16"],
)
def test_any_body_that_is_not_strict_utf8_json_is_a_400_invalid_json(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRequest) as raised:
        json_body(raw)
    assert (raised.value.http_status, raised.value.code, raised.value.details["reason"]) == (
        400,
        "invalid_json",
        reason,
    )


def test_a_body_over_the_cap_is_refused_before_it_is_read_and_one_at_the_cap_is_read() -> None:
    at_cap = b'{"note": "' + b"x" * (MAX_BODY_BYTES - 12) + b'"}'
    assert len(at_cap) == MAX_BODY_BYTES
    assert json_body(at_cap)["note"].startswith("xxx")
    with pytest.raises(PayloadTooLarge) as raised:
        json_body(at_cap + b" ")
    assert (raised.value.http_status, raised.value.code) == (413, "payload_too_large")
    assert json_body(b"") is None


def test_a_query_parameter_given_twice_is_refused_and_named() -> None:
    assert single_values({"level": ["red,blue"], "limit": ["5"]}) == {"level": "red,blue", "limit": "5"}
    with pytest.raises(BadRequest) as raised:
        single_values({"level": ["red", "blue"], "limit": ["5"]})
    assert (raised.value.http_status, raised.value.code) == (400, "repeated_parameter")
    assert raised.value.details["errors"] == [{"field": "level", "code": "repeated"}]


@pytest.mark.parametrize(
    ("status", "code"), [(405, "method_not_allowed"), (415, "unsupported_media_type"), (500, "internal")]
)
def test_what_chalice_answers_itself_takes_the_api_shape(status: int, code: str) -> None:
    converted = chalice_error(status, {"Code": "Whatever", "Message": "in English"})
    assert converted is not None and converted["code"] == code
    assert CHINESE.search(converted["message"])
    assert chalice_error(200, {"items": []}) is None


# --- the catalogue ---------------------------------------------------------------------------------------------

SOURCES = [PROJECT_DIR / "app.py", *sorted((PROJECT_DIR / "chalicelib").rglob("*.py"))]
NOT_FROM_THE_API = {
    "invalid_action": "domain.lifecycle.parse_action: the API validates actions as ActionBody (invalid_request)",
    "user_not_found": "adapters.identity.user: the API turns it into assignee_not_in_enterprise",
}


def _error_classes() -> set[str]:
    names = {"DomainError"}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {base.id for base in node.bases if isinstance(base, ast.Name)}
                if bases & names or bases & ERROR_BASES:
                    names.add(node.name)
    return names | ERROR_BASES


ERROR_BASES = {"DomainError", "InvalidTransition", "Forbidden", "NotFound", "ValidationFailed", "Conflict"}


def _assigns_code(node: ast.AST) -> bool:
    """`code = "a" if ... else "b"` (a code chosen before the raise)."""
    if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.IfExp)):
        return False
    return [getattr(target, "id", "") for target in node.targets] == ["code"]


def codes_raised_in_code() -> set[str]:
    """Every literal code given to a DomainError class: `Forbidden("no_role", ...)`, `code = "a" if x else "b"`."""
    classes = _error_classes()
    codes: set[str] = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    codes.add(first.value)
                elif isinstance(first, ast.JoinedStr):
                    raise AssertionError(f"{path}:{node.lineno}: an error code must be a literal")
            if _assigns_code(node):
                assert isinstance(node, ast.Assign) and isinstance(node.value, ast.IfExp)
                for branch in (node.value.body, node.value.orelse):
                    if isinstance(branch, ast.Constant) and isinstance(branch.value, str):
                        codes.add(branch.value)
    return codes


def test_every_error_code_raised_in_code_is_in_the_catalogue() -> None:
    raised = codes_raised_in_code()
    assert {
        "wrong_status",
        "reading_not_normal",
        "already_escalated",
        "token_expired",
        "warning_archived",
    } <= raised
    assert raised - set(CODES) - set(NOT_FROM_THE_API) == set()


def test_every_catalogued_code_is_documented_in_api_md_and_the_openapi_document() -> None:
    markdown = (PROJECT_DIR / "docs" / "api.md").read_text(encoding="utf-8")
    openapi = json.loads((PROJECT_DIR / "docs" / "openapi.json").read_text(encoding="utf-8"))
    documented = {
        entry["const"]: entry["description"] for entry in openapi["components"]["schemas"]["ErrorCode"]["oneOf"]
    }
    for code, entry in CODES.items():
        assert re.search(rf"\| {entry.status} \| `{code}`", markdown), code
        assert documented.get(code, "").startswith(f"HTTP {entry.status}."), code
        assert entry.meaning and entry.app_should, code


def test_every_operation_documents_the_codes_it_may_answer_and_every_code_has_an_operation() -> None:
    per_route = {code for route in ROUTES for code in route.error_codes}
    assert per_route <= set(CODES)
    # any path, not one operation: the gateway's answers
    assert set(CODES) - per_route == {"route_not_found", "method_not_allowed", "throttled", "unavailable"}
    openapi = json.loads((PROJECT_DIR / "docs" / "openapi.json").read_text(encoding="utf-8"))
    act = openapi["paths"]["/warnings/{warning_id}/actions"]["post"]["responses"]
    for code in (
        "wrong_status",
        "reading_not_normal",
        "disposal_required",
        "reason_mismatch",
        "already_escalated",
    ):
        assert f"`{code}`" in act["409"]["description"]
    assert {"400", "401", "403", "404", "409", "413", "415", "422", "500"} <= set(act)
