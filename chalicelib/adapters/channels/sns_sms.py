"""Amazon SNS direct SMS (`Publish` with `PhoneNumber`): free text, transactional. For regions that have SNS SMS
(not the China regions) and for the local runtime on moto. See docs/sms-channels.md."""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.channels.phones import is_e164
from chalicelib.adapters.errors import is_transient, not_sent
from chalicelib.services.ports import (
    SmsMessage,
    SmsReceipt,
    SmsRejected,
    SmsRejectReason,
    SmsUnavailable,
    SmsUnavailableReason,
)

PROVIDER = "sns"
ONE_SEGMENT_CHARS = 70  # one UCS-2 (Chinese) segment; longer texts are split and billed per segment

_THROTTLE_CODES = frozenset(
    {"Throttling", "ThrottlingException", "Throttled", "ThrottledException", "TooManyRequestsException"}
)
_INVALID_REQUEST_CODES = frozenset({"InvalidParameter", "InvalidParameterValue", "ValidationError"})
_CREDENTIAL_CODES = frozenset(
    {
        "AuthorizationError",
        "AccessDenied",
        "AccessDeniedException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
    }
)


class SnsSmsChannel:
    """One SMS per call through an SNS client (boto3, built by the wiring). No retries here beyond botocore's
    own: the delivery queue retries what this raises as SmsUnavailable."""

    def __init__(
        self,
        sns: Any,
        *,
        sender_id: str | None = None,
        sms_type: str = "Transactional",
        max_chars: int | None = ONE_SEGMENT_CHARS,
    ) -> None:
        self._sns = sns
        self._attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type}}
        if sender_id:
            self._attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
        self._max_chars = max_chars

    def send(self, message: SmsMessage) -> SmsReceipt:
        self._check(message)
        try:
            answer = self._sns.publish(
                PhoneNumber=message.phone, Message=message.text, MessageAttributes=self._attributes
            )
        except Exception as exc:
            failure = failure_of(exc)
            if failure is None:
                raise
            raise failure from exc
        return SmsReceipt(
            provider=PROVIDER,
            message_id=str(answer["MessageId"]),
            request_id=answer.get("ResponseMetadata", {}).get("RequestId"),
        )

    def _check(self, message: SmsMessage) -> None:
        if not is_e164(message.phone):
            raise SmsRejected(SmsRejectReason.INVALID_PHONE, provider=PROVIDER, detail="not E.164")
        if not message.text:
            raise SmsRejected(SmsRejectReason.INVALID_REQUEST, provider=PROVIDER, detail="empty text")
        if self._max_chars is not None and len(message.text) > self._max_chars:
            raise SmsRejected(
                SmsRejectReason.TEXT_TOO_LONG,
                provider=PROVIDER,
                detail=f"{len(message.text)} > {self._max_chars} characters",
            )


def failure_of(exc: Exception) -> SmsRejected | SmsUnavailable | None:
    """A botocore error as SmsRejected / SmsUnavailable; None for anything else (a bug, not the provider)."""
    from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

    if isinstance(exc, ClientError):
        return _answered(exc)
    if isinstance(exc, ReadTimeoutError):
        return SmsUnavailable(SmsUnavailableReason.TIMEOUT, provider=PROVIDER, detail=str(exc), maybe_sent=True)
    if isinstance(exc, BotoCoreError) and is_transient(exc):
        return SmsUnavailable(
            SmsUnavailableReason.CONNECTION, provider=PROVIDER, detail=str(exc), maybe_sent=not not_sent(exc)
        )
    return None


def _answered(exc: Any) -> SmsRejected | SmsUnavailable:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    message = error.get("Message")
    request_id = exc.response.get("ResponseMetadata", {}).get("RequestId")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _THROTTLE_CODES or status == 429:
        reason: SmsUnavailableReason | None = SmsUnavailableReason.THROTTLED
    elif is_transient(exc):
        reason = SmsUnavailableReason.PROVIDER_ERROR
    elif code in _CREDENTIAL_CODES:
        reason = SmsUnavailableReason.CREDENTIALS
    else:
        reason = None
    if reason is not None:
        return SmsUnavailable(
            reason, provider=PROVIDER, provider_code=code, provider_message=message, request_id=request_id
        )
    refusal = (
        SmsRejectReason.INVALID_REQUEST if code in _INVALID_REQUEST_CODES else SmsRejectReason.PROVIDER_REFUSED
    )
    return SmsRejected(
        refusal, provider=PROVIDER, provider_code=code, provider_message=message, request_id=request_id
    )
