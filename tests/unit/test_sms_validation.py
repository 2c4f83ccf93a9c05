"""What the SMS channels check before any call, how they name the provider's answers, and the port's failures.
No I/O, no SDK: `prepare` and `reason_of` are pure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from chalicelib.adapters.channels.aliyun_sms import (
    CODES,
    AliyunSmsConfig,
    AliyunTemplate,
    SendSms,
    prepare,
    reason_of,
)
from chalicelib.adapters.channels.phones import is_e164, mainland_mobile
from chalicelib.adapters.channels.sns_sms import failure_of
from chalicelib.services.ports import (
    SmsMessage,
    SmsRejected,
    SmsRejectReason,
    SmsSendError,
    SmsUnavailable,
    SmsUnavailableReason,
)

CONFIG = AliyunSmsConfig(
    sign_name="滨海大应急",
    templates={
        "warning_raised": AliyunTemplate(code="SMS_1", params=("level", "enterprise", "point")),
        "reminder": AliyunTemplate(
            code="SMS_2", params=("warning_id", "hotline"), param_max_chars={"hotline": 15}
        ),
        "drill": AliyunTemplate(code="SMS_3"),
    },
    access_key_secret_id="dayingji/aliyun-sms",
)
PARAMS = {"level": "红色", "enterprise": "渤化化工", "point": "V-101储罐液位高高报"}


def message(phone: str = "+8613800138000", template_id: str = "warning_raised", **params: str) -> SmsMessage:
    return SmsMessage(phone, template_id, params or PARAMS, "【滨海大应急】…", "W1:1")


def rejection(msg: SmsMessage) -> SmsRejected:
    with pytest.raises(SmsRejected) as caught:
        prepare(msg, CONFIG)
    return caught.value


# --- phones -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "national"),
    [
        ("+8613800138000", "13800138000"),
        ("+8619912345678", "19912345678"),
        ("13800138000", None),  # no country code
        ("+86 138 0013 8000", None),  # not E.164
        ("+86-13800138000", None),
        ("+862283718000", None),  # a Tianjin landline
        ("+8612800138000", None),  # no mobile range starts 12
        ("+861380013800", None),  # 10 digits
        ("+85291234567", None),  # Hong Kong: another API
        ("+12025550123", None),
    ],
)
def test_only_mainland_mobiles_in_e164_become_the_providers_11_digits(phone: str, national: str | None) -> None:
    assert mainland_mobile(phone) == national


@pytest.mark.parametrize(
    ("phone", "valid"),
    [
        ("+8613800138000", True),
        ("+12025550123", True),
        ("13800138000", False),
        ("+0123456789", False),
        ("+1", False),
    ],
)
def test_e164(phone: str, valid: bool) -> None:
    assert is_e164(phone) is valid


# --- Aliyun: the request before any call ------------------------------------------------------------------------


def test_a_valid_message_becomes_the_providers_request() -> None:
    assert prepare(message(), CONFIG) == SendSms(
        phone_numbers="13800138000",
        sign_name="滨海大应急",
        template_code="SMS_1",
        template_param='{"level":"红色","enterprise":"渤化化工","point":"V-101储罐液位高高报"}',
        out_id="W1:1",
    )


def test_parameters_the_template_does_not_name_are_left_out() -> None:
    request = prepare(message(**PARAMS, extra="不用"), CONFIG)
    assert request.template_param is not None
    assert set(json.loads(request.template_param)) == {"level", "enterprise", "point"}


def test_a_template_without_variables_sends_no_template_param() -> None:
    assert prepare(message(template_id="drill"), CONFIG).template_param is None


def test_a_phone_outside_mainland_china_is_rejected() -> None:
    assert rejection(message(phone="+12025550123")).reason is SmsRejectReason.INVALID_PHONE


def test_a_logical_template_without_a_provider_template_is_rejected() -> None:
    failure = rejection(message(template_id="warning_cleared"))
    assert failure.reason is SmsRejectReason.UNKNOWN_TEMPLATE
    assert "warning_cleared" in failure.detail


@pytest.mark.parametrize("params", [{"level": "红色", "enterprise": "渤化化工"}, {**PARAMS, "point": ""}])
def test_a_missing_or_empty_parameter_is_rejected(params: dict[str, str]) -> None:
    failure = rejection(message(**params))
    assert failure.reason is SmsRejectReason.MISSING_PARAM
    assert "point" in failure.detail


def test_thirty_five_characters_fit_a_variable_and_thirty_six_do_not() -> None:
    assert prepare(message(**{**PARAMS, "point": "罐" * 35}), CONFIG)

    failure = rejection(message(**{**PARAMS, "point": "罐" * 36}))

    assert failure.reason is SmsRejectReason.PARAM_TOO_LONG
    assert failure.reason == "param_too_long"
    assert "point (36 > 35)" in failure.detail


def test_a_variable_can_have_its_own_limit() -> None:
    ok = message(template_id="reminder", warning_id="WABCDEFGH", hotline="022-12345678")
    assert prepare(ok, CONFIG).template_code == "SMS_2"

    failure = rejection(message(template_id="reminder", warning_id="WABCDEFGH", hotline="022-1234567890123"))
    assert failure.reason is SmsRejectReason.PARAM_TOO_LONG


# --- Aliyun: configuration --------------------------------------------------------------------------------------


def test_the_configuration_reads_from_json_with_its_defaults() -> None:
    config = AliyunSmsConfig.model_validate_json(
        json.dumps(
            {
                "sign_name": "滨海大应急",
                "templates": {"warning_raised": {"code": "SMS_1", "params": ["level", "enterprise"]}},
                "access_key_parameter": "/dayingji/prod/aliyun-sms",
            }
        )
    )
    assert (config.endpoint, config.protocol, config.connect_timeout_ms, config.read_timeout_ms) == (
        "dysmsapi.aliyuncs.com",
        "https",
        2000,
        5000,
    )
    assert config.templates["warning_raised"].limit("level") == 35


@pytest.mark.parametrize(
    "sources",
    [{}, {"access_key_secret_id": "arn:aws-cn:secretsmanager:x", "access_key_parameter": "/p"}],
)
def test_the_configuration_names_exactly_one_place_for_the_access_key(sources: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        AliyunSmsConfig(sign_name="s", templates={}, **sources)


# --- Aliyun: answer codes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", SmsRejectReason.INVALID_PHONE),
        ("isv.TEMPLATE_MISSING_PARAMETERS", SmsRejectReason.MISSING_PARAM),
        ("isv.SMS_TEMPLATE_ILLEGAL", SmsRejectReason.TEMPLATE_INVALID),
        ("isv.SMS_SIGNATURE_ILLEGAL", SmsRejectReason.SIGNATURE_INVALID),
        ("isv.BUSINESS_LIMIT_CONTROL", SmsUnavailableReason.THROTTLED),
        ("isv.AMOUNT_NOT_ENOUGH", SmsUnavailableReason.ACCOUNT),
        ("isp.SYSTEM_ERROR", SmsUnavailableReason.PROVIDER_ERROR),
        ("isp.ANYTHING", SmsUnavailableReason.PROVIDER_ERROR),
        ("Throttling.User", SmsUnavailableReason.THROTTLED),
        ("InvalidAccessKeyId.NotFound", SmsUnavailableReason.CREDENTIALS),
        ("isv.ANYTHING_ELSE", SmsRejectReason.PROVIDER_REFUSED),
    ],
)
def test_each_provider_code_has_one_reason(code: str, reason: SmsRejectReason | SmsUnavailableReason) -> None:
    assert reason_of(code) is reason


def test_the_code_table_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "sms-channels.md").read_text(encoding="utf-8")
    missing = [code for code, reason in CODES.items() if f"`{code}` | `{reason.value}`" not in doc]
    assert missing == []


# --- the port's failures ----------------------------------------------------------------------------------------


def test_failures_carry_our_reason_and_the_providers_words() -> None:
    failure = SmsRejected("param_too_long", provider="aliyun", provider_code="isv.PARAM_LENGTH_LIMIT", detail="x")

    assert isinstance(failure, SmsSendError)
    assert failure.reason is SmsRejectReason.PARAM_TOO_LONG
    assert "param_too_long" in str(failure) and "isv.PARAM_LENGTH_LIMIT" in str(failure)
    assert SmsUnavailable("timeout", maybe_sent=True).maybe_sent
    assert not SmsUnavailable(SmsUnavailableReason.THROTTLED).maybe_sent
    with pytest.raises(ValueError):
        SmsRejected("no_such_reason")


# --- SNS: botocore errors ---------------------------------------------------------------------------------------


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "R"},
    }
    return ClientError(response, "Publish")


@pytest.mark.parametrize(
    ("code", "status", "kind", "reason"),
    [
        ("Throttling", 400, SmsUnavailable, SmsUnavailableReason.THROTTLED),
        ("InternalError", 500, SmsUnavailable, SmsUnavailableReason.PROVIDER_ERROR),
        ("AuthorizationError", 403, SmsUnavailable, SmsUnavailableReason.CREDENTIALS),
        ("InvalidParameter", 400, SmsRejected, SmsRejectReason.INVALID_REQUEST),
        ("OptedOut", 400, SmsRejected, SmsRejectReason.PROVIDER_REFUSED),
    ],
)
def test_sns_errors_map_by_code_and_status(
    code: str, status: int, kind: type[Exception], reason: SmsRejectReason | SmsUnavailableReason
) -> None:
    failure = failure_of(client_error(code, status))

    assert isinstance(failure, kind)
    assert failure.reason is reason
    assert (failure.provider, failure.provider_code, failure.request_id) == ("sns", code, "R")


def test_an_error_that_is_not_the_providers_is_left_alone() -> None:
    assert failure_of(KeyError("MessageId")) is None
