"""The API's pure parts: claims → actor, the query and cursor conventions, the error map."""

from __future__ import annotations

import typing

import pytest
from pydantic import ValidationError

from chalicelib.api.errors import error_body
from chalicelib.api.identity import actor_from_claims
from chalicelib.api.models import Department, WarningQuery, decode_cursor, encode_cursor
from chalicelib.domain.errors import DomainError, Forbidden, InvalidTransition
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.policy import DEPARTMENT_ZH
from chalicelib.domain.warnings import WarningStatus
from chalicelib.services.ports import ConcurrentUpdateError


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
    for cursor in [
        "***",
        encode_cursor({"warning_id": "WABC"}),
        encode_cursor({"urgency": "", "warning_id": "W"}),
    ]:
        with pytest.raises(DomainError) as raised:
            decode_cursor(cursor, ("urgency", "warning_id"))
        assert (raised.value.http_status, raised.value.code) == (422, "invalid_cursor")


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
    assert (status, body["code"], body["details"][0]["loc"]) == (422, "invalid_request", ["limit"])
    assert error_body(RuntimeError("secret table name")) == (500, {"code": "internal", "message": "系统错误"})
