"""Alibaba Cloud SMS (短信服务, API `SendSms` 2017-05-25) through Alibaba's SDK `alibabacloud-dysmsapi20170525`:
a registered signature (签名) and pre-approved templates with parameters, for mainland China mobiles. The SDK is
imported when the channel first sends (it costs ~0.35 s to import; see docs/sms-channels.md), never at module
import. Configuration: `AliyunSmsConfig`; the access key comes from Secrets Manager or SSM (`credentials.py`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.adapters.channels.credentials import (
    DEFAULT_TTL_S,
    AccessKey,
    AccessKeySource,
    AccessKeyUnavailableError,
    access_key_source,
)
from chalicelib.adapters.channels.phones import mainland_mobile
from chalicelib.services.ports import (
    SmsMessage,
    SmsReceipt,
    SmsRejected,
    SmsRejectReason,
    SmsUnavailable,
    SmsUnavailableReason,
)

PROVIDER = "aliyun"
DEFAULT_ENDPOINT = "dysmsapi.aliyuncs.com"
DEFAULT_MAX_PARAM_CHARS = 35  # a notification template's variable (docs/sms-channels.md, "Assumptions")

Reason = SmsRejectReason | SmsUnavailableReason

# The provider's answer codes (`Code` of a SendSms answer, or of an error answer) → our reason. Codes not listed
# follow the prefix rules in `reason_of`. Sources: docs/sms-channels.md.
CODES: Mapping[str, Reason] = {
    "isv.MOBILE_NUMBER_ILLEGAL": SmsRejectReason.INVALID_PHONE,
    "isv.MOBILE_COUNT_OVER_LIMIT": SmsRejectReason.INVALID_PHONE,
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": SmsRejectReason.INVALID_PHONE,
    "isv.TEMPLATE_MISSING_PARAMETERS": SmsRejectReason.MISSING_PARAM,
    "isv.PARAM_LENGTH_LIMIT": SmsRejectReason.PARAM_TOO_LONG,
    "isv.SMS_TEMPLATE_ILLEGAL": SmsRejectReason.TEMPLATE_INVALID,
    "isv.TEMPLATE_PARAMS_ILLEGAL": SmsRejectReason.TEMPLATE_INVALID,
    "isv.INVALID_JSON_PARAM": SmsRejectReason.TEMPLATE_INVALID,
    "isv.SMS_SIGNATURE_ILLEGAL": SmsRejectReason.SIGNATURE_INVALID,
    "isv.SMS_SIGN_ILLEGAL": SmsRejectReason.SIGNATURE_INVALID,
    "isv.SIGN_STATE_ILLEGAL": SmsRejectReason.SIGNATURE_INVALID,
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": SmsRejectReason.SIGNATURE_INVALID,
    "isv.BLACK_KEY_CONTROL_LIMIT": SmsRejectReason.CONTENT_REJECTED,
    "isv.SMS_CONTENT_ILLEGAL": SmsRejectReason.CONTENT_REJECTED,
    "isv.PARAM_NOT_SUPPORT_URL": SmsRejectReason.CONTENT_REJECTED,
    "isv.INVALID_PARAMETERS": SmsRejectReason.INVALID_REQUEST,
    "MissingPhoneNumbers": SmsRejectReason.INVALID_REQUEST,
    "MissingSignName": SmsRejectReason.INVALID_REQUEST,
    "MissingTemplateCode": SmsRejectReason.INVALID_REQUEST,
    "isv.BUSINESS_LIMIT_CONTROL": SmsUnavailableReason.THROTTLED,
    "Throttling": SmsUnavailableReason.THROTTLED,
    "isv.AMOUNT_NOT_ENOUGH": SmsUnavailableReason.ACCOUNT,
    "isv.OUT_OF_SERVICE": SmsUnavailableReason.ACCOUNT,
    "isv.DAY_LIMIT_CONTROL": SmsUnavailableReason.ACCOUNT,
    "isv.MONTH_LIMIT_CONTROL": SmsUnavailableReason.ACCOUNT,
    "isv.ACCOUNT_NOT_EXISTS": SmsUnavailableReason.CREDENTIALS,
    "isp.RAM_PERMISSION_DENY": SmsUnavailableReason.CREDENTIALS,
    "SignatureDoesNotMatch": SmsUnavailableReason.CREDENTIALS,
    "IncompleteSignature": SmsUnavailableReason.CREDENTIALS,
    "Forbidden.RAM": SmsUnavailableReason.CREDENTIALS,
    "Forbidden.AccessKeyDisabled": SmsUnavailableReason.CREDENTIALS,
    "ServiceUnavailable": SmsUnavailableReason.PROVIDER_ERROR,
    "InternalError": SmsUnavailableReason.PROVIDER_ERROR,
}
_PREFIXES: tuple[tuple[str, Reason], ...] = (
    ("isp.", SmsUnavailableReason.PROVIDER_ERROR),  # the service provider's fault
    ("Throttling.", SmsUnavailableReason.THROTTLED),
    ("InvalidAccessKeyId", SmsUnavailableReason.CREDENTIALS),
    ("InvalidSecurityToken", SmsUnavailableReason.CREDENTIALS),
)


def known_reason(code: str) -> Reason | None:
    """Our reason for a provider code in the table or under a known prefix; None for any other code."""
    if code in CODES:
        return CODES[code]
    for prefix, reason in _PREFIXES:
        if code.startswith(prefix):
            return reason
    return None


def reason_of(code: str) -> Reason:
    """Our reason for a provider code: `known_reason`, else a refusal (`isv.*` and other client codes are the
    caller's fault: retrying the same request cannot help)."""
    return known_reason(code) or SmsRejectReason.PROVIDER_REFUSED


# --- configuration ---------------------------------------------------------------------------------------------


class AliyunTemplate(BaseModel):
    """One approved template: its code at the provider and the variables it expects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1)  # e.g. "SMS_465270123"
    params: tuple[str, ...] = ()  # the variable names, e.g. ("level", "enterprise", "point", "deadline")
    max_param_chars: int = Field(default=DEFAULT_MAX_PARAM_CHARS, ge=1)
    param_max_chars: dict[str, int] = Field(default_factory=dict)  # per variable, where it differs

    def limit(self, name: str) -> int:
        return self.param_max_chars.get(name, self.max_param_chars)


class AliyunSmsConfig(BaseModel):
    """What a deployer sets (docs/sms-channels.md, "Configuration")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sign_name: str = Field(min_length=1)  # the approved signature, without 【】
    templates: dict[str, AliyunTemplate]  # our logical template id -> the provider's template
    endpoint: str = DEFAULT_ENDPOINT  # host[:port]
    protocol: Literal["https", "http"] = "https"
    region_id: str = "cn-hangzhou"
    connect_timeout_ms: int = Field(default=2000, ge=1)
    read_timeout_ms: int = Field(default=5000, ge=1)
    access_key_secret_id: str | None = None  # Secrets Manager secret (ARN or name) with the access key JSON
    access_key_parameter: str | None = None  # or an SSM SecureString parameter with the same JSON
    credentials_ttl_s: float = Field(default=DEFAULT_TTL_S, ge=0)

    @model_validator(mode="after")
    def _one_access_key_source(self) -> Self:
        if (self.access_key_secret_id is None) == (self.access_key_parameter is None):
            raise ValueError("set exactly one of access_key_secret_id and access_key_parameter")
        return self


# --- the request -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendSms:
    """A SendSms request as the provider takes it."""

    phone_numbers: str  # the 11-digit mainland number, no country code
    sign_name: str
    template_code: str
    template_param: str | None  # JSON object of strings; None for a template without variables
    out_id: str


def prepare(message: SmsMessage, config: AliyunSmsConfig) -> SendSms:
    """The provider's request for `message`, or SmsRejected when it cannot be valid (no call is made)."""

    def rejected(reason: SmsRejectReason, detail: str) -> SmsRejected:
        return SmsRejected(reason, provider=PROVIDER, detail=detail)

    phone = mainland_mobile(message.phone)
    if phone is None:
        raise rejected(SmsRejectReason.INVALID_PHONE, "not a mainland China mobile in E.164 (+86 1xx xxxx xxxx)")
    template = config.templates.get(message.template_id)
    if template is None:
        raise rejected(SmsRejectReason.UNKNOWN_TEMPLATE, f"no provider template for {message.template_id!r}")
    missing = [name for name in template.params if not message.params.get(name)]
    if missing:
        raise rejected(SmsRejectReason.MISSING_PARAM, f"{message.template_id}: {', '.join(missing)}")
    too_long = [
        f"{name} ({len(message.params[name])} > {template.limit(name)})"
        for name in template.params
        if len(message.params[name]) > template.limit(name)
    ]
    if too_long:
        raise rejected(SmsRejectReason.PARAM_TOO_LONG, f"{message.template_id}: {', '.join(too_long)}")
    params = {name: message.params[name] for name in template.params}
    return SendSms(
        phone_numbers=phone,
        sign_name=config.sign_name,
        template_code=template.code,
        template_param=json.dumps(params, ensure_ascii=False, separators=(",", ":")) if params else None,
        out_id=message.dedupe_key,
    )


# --- the channel -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def sdk() -> SimpleNamespace:
    """Alibaba's SDK, imported at first use (heavy: the credentials chain, aiohttp, requests)."""
    from alibabacloud_dysmsapi20170525.client import Client
    from alibabacloud_dysmsapi20170525.models import SendSmsRequest
    from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException
    from alibabacloud_tea_openapi.utils_models import Config
    from darabonba.exceptions import RetryError, UnretryableException
    from darabonba.runtime import RuntimeOptions

    return SimpleNamespace(
        Client=Client,
        Config=Config,
        SendSmsRequest=SendSmsRequest,
        RuntimeOptions=RuntimeOptions,
        AlibabaCloudException=AlibabaCloudException,
        ThrottlingException=ThrottlingException,
        UnretryableException=UnretryableException,
        RetryError=RetryError,
    )


def sdk_client(config: AliyunSmsConfig, key: AccessKey) -> Any:
    """The SDK's client for one access key: the endpoint and timeouts of `config`, no retries of its own."""
    api = sdk()
    return api.Client(
        api.Config(
            access_key_id=key.access_key_id,
            access_key_secret=key.access_key_secret,
            endpoint=config.endpoint,
            protocol=config.protocol,
            region_id=config.region_id,
            connect_timeout=config.connect_timeout_ms,
            read_timeout=config.read_timeout_ms,
        )
    )


class AliyunSmsChannel:
    """SendSms, one message a call. Validates before calling (a bad message costs no call, no credentials read,
    no SDK import); maps the answer to a receipt or SmsRejected / SmsUnavailable (`reason_of`). A refused access
    key is forgotten, so the retry reads the secret again (a rotated key)."""

    def __init__(
        self,
        config: AliyunSmsConfig,
        access_key: AccessKeySource,
        *,
        client_for: Callable[[AliyunSmsConfig, AccessKey], Any] = sdk_client,
    ) -> None:
        self._config = config
        self._access_key = access_key
        self._client_for = client_for
        self._client: tuple[AccessKey, Any] | None = None

    @classmethod
    def from_config(cls, config: AliyunSmsConfig, aws_client: Callable[[str], Any]) -> AliyunSmsChannel:
        """The channel with its access key read from the configured secret or parameter;
        `aws_client(service)` builds a boto3 client."""
        source = access_key_source(
            aws_client,
            secret_id=config.access_key_secret_id,
            parameter_name=config.access_key_parameter,
            ttl_s=config.credentials_ttl_s,
        )
        return cls(config, source)

    def send(self, message: SmsMessage) -> SmsReceipt:
        request = prepare(message, self._config)
        client = self._client_with_current_key()
        api = sdk()
        try:
            answer = client.send_sms_with_options(
                api.SendSmsRequest(
                    phone_numbers=request.phone_numbers,
                    sign_name=request.sign_name,
                    template_code=request.template_code,
                    template_param=request.template_param,
                    out_id=request.out_id,
                ),
                api.RuntimeOptions(autoretry=False),
            )
        except Exception as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            self._forget_key_if_refused(failure)
            raise failure from exc
        return self._receipt(answer.body)

    def _client_with_current_key(self) -> Any:
        try:
            key = self._access_key.get()
        except AccessKeyUnavailableError as exc:
            raise SmsUnavailable(SmsUnavailableReason.CREDENTIALS, provider=PROVIDER, detail=str(exc)) from exc
        if self._client is None or self._client[0] != key:
            self._client = (key, self._client_for(self._config, key))
        return self._client[1]

    def _forget_key_if_refused(self, failure: SmsRejected | SmsUnavailable) -> None:
        if isinstance(failure, SmsUnavailable) and failure.reason is SmsUnavailableReason.CREDENTIALS:
            self._access_key.invalidate()
            self._client = None

    def _receipt(self, body: Any) -> SmsReceipt:
        code = str(getattr(body, "code", None) or "")
        request_id = getattr(body, "request_id", None)
        if code == "OK" and getattr(body, "biz_id", None):
            return SmsReceipt(provider=PROVIDER, message_id=str(body.biz_id), request_id=request_id)
        failure = _failure(
            reason_of(code) if code else SmsUnavailableReason.PROVIDER_ERROR,
            code=code or None,
            message=getattr(body, "message", None),
            request_id=request_id,
            maybe_sent=code == "OK",  # OK without a BizId: taken, perhaps
        )
        self._forget_key_if_refused(failure)
        raise failure


def _failure(
    reason: Reason,
    *,
    code: str | None,
    message: str | None,
    request_id: str | None,
    detail: str = "",
    maybe_sent: bool = False,
) -> SmsRejected | SmsUnavailable:
    if isinstance(reason, SmsRejectReason):
        return SmsRejected(
            reason,
            provider=PROVIDER,
            provider_code=code,
            provider_message=message,
            request_id=request_id,
            detail=detail,
        )
    return SmsUnavailable(
        reason,
        provider=PROVIDER,
        provider_code=code,
        provider_message=message,
        request_id=request_id,
        detail=detail,
        maybe_sent=maybe_sent,
    )


def failure_of(exc: BaseException) -> SmsRejected | SmsUnavailable | None:
    """An SDK error as SmsRejected / SmsUnavailable; None for anything else (a bug, not the provider)."""
    api = sdk()
    if isinstance(exc, api.AlibabaCloudException):
        return _error_answer(exc, throttled=isinstance(exc, api.ThrottlingException))
    if isinstance(exc, api.UnretryableException):
        inner = exc.inner_exception
        if isinstance(inner, api.RetryError):
            return _transport_failure(inner)
        # the request went out and the answer could not be read (e.g. an HTML error page)
        sent = exc.last_request is not None
        return _failure(
            SmsUnavailableReason.PROVIDER_ERROR,
            code=None,
            message=None,
            request_id=None,
            detail=f"unreadable answer: {type(inner).__name__}",
            maybe_sent=sent,
        )
    return None


def _error_answer(exc: Any, *, throttled: bool) -> SmsRejected | SmsUnavailable:
    """An answer with HTTP 4xx/5xx: by its code, else by its status."""
    raw_code = getattr(exc, "code", None)
    code = None if raw_code in (None, "", "None") else str(raw_code)
    status = int(getattr(exc, "status_code", None) or 0)
    reason: Reason | None = None
    if throttled or status == 429:
        reason = SmsUnavailableReason.THROTTLED
    elif code is not None:
        reason = known_reason(code)
    if reason is None:
        reason = SmsUnavailableReason.PROVIDER_ERROR if status >= 500 else SmsRejectReason.PROVIDER_REFUSED
    request_id = getattr(exc, "request_id", None)
    return _failure(
        reason,
        code=code,
        message=getattr(exc, "message", None),
        request_id=None if request_id in (None, "None") else str(request_id),
        detail=f"HTTP {status}" if status else "",
    )


def _transport_failure(error: BaseException) -> SmsUnavailable:
    """No answer: the SDK wraps the HTTP library's error (requests) in a RetryError."""
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import ConnectTimeout, ReadTimeout

    cause = error.__cause__ or error.__context__
    detail = f"{type(cause).__name__}" if cause is not None else str(error)
    if isinstance(cause, ReadTimeout):
        return SmsUnavailable(SmsUnavailableReason.TIMEOUT, provider=PROVIDER, detail=detail, maybe_sent=True)
    if isinstance(cause, ConnectTimeout) or (
        isinstance(cause, RequestsConnectionError) and _never_connected(cause)
    ):
        return SmsUnavailable(SmsUnavailableReason.CONNECTION, provider=PROVIDER, detail=detail)
    return SmsUnavailable(SmsUnavailableReason.CONNECTION, provider=PROVIDER, detail=detail, maybe_sent=True)


def _never_connected(error: BaseException) -> bool:
    """A connection error raised before the request was written (refused, unresolvable, unreachable)."""
    from urllib3.exceptions import NewConnectionError  # NameResolutionError is one

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        current = getattr(current, "reason", None) or current.__cause__ or current.__context__
    return False
