"""The SMS channels against something that speaks their provider's protocol.

Alibaba Cloud: the real SDK (`alibabacloud-dysmsapi20170525`) with its endpoint overridden to a local HTTP server
that records each request and answers with canned JSON. The request's shape is checked as the provider reads it
(action and version, query parameters, the ACS3-HMAC-SHA256 signature recomputed from what arrived), and every
answer the provider can give is mapped to a receipt, SmsRejected or SmsUnavailable.

Amazon SNS: `SnsSmsChannel` against moto (`mock_aws`): the text reaches moto's sent-SMS list, and refusals map.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import pytest
from botocore.config import Config as BotoConfig
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from chalicelib.adapters.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig, AliyunTemplate
from chalicelib.adapters.channels.credentials import AccessKey
from chalicelib.adapters.channels.sns_sms import SnsSmsChannel
from chalicelib.services.ports import (
    SmsMessage,
    SmsReceipt,
    SmsRejected,
    SmsRejectReason,
    SmsUnavailable,
    SmsUnavailableReason,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = AccessKey("LTAI5tTestKeyId", "test-secret-do-not-use")
SIGN_NAME = "滨海大应急"
TEMPLATES = {
    "warning_raised": AliyunTemplate(code="SMS_465270001", params=("level", "enterprise", "point", "ack_within")),
    "reminder": AliyunTemplate(code="SMS_465270002", params=("warning_id",)),
}
MESSAGE = SmsMessage(
    phone="+8613800138000",
    template_id="warning_raised",
    params={
        "level": "红色",
        "enterprise": "渤化化工",
        "point": "V-101储罐液位高高报 95.2%",
        "ack_within": "5分钟",
    },
    text="【滨海大应急】红色预警 渤化化工 V-101储罐液位高高报 95.2% 10:12。请5分钟内签收。",
    dedupe_key="WABCDEFGH:17000000000001",
)
OK = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5-B967-440B-8683"}


# --- a local endpoint that records what the SDK sends ---------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Canned:
    status: int = 200
    body: bytes = json.dumps(OK).encode()
    content_type: str = "application/json;charset=utf-8"
    delay_s: float = 0.0


@dataclass
class FakeProvider:
    """What arrived, in order; the answers to give, in order (then OK)."""

    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    answers: list[Canned] = field(default_factory=list)

    def answer(
        self, status: int = 200, body: Any = None, *, raw: bytes | None = None, delay_s: float = 0.0
    ) -> None:
        payload = raw if raw is not None else json.dumps(OK if body is None else body).encode()
        content_type = "text/html" if raw is not None else "application/json;charset=utf-8"
        self.answers.append(Canned(status, payload, content_type, delay_s))


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeProvider()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            url = urlsplit(self.path)
            fake.requests.append(
                Recorded(
                    method=self.command,
                    path=url.path,
                    query=dict(parse_qsl(url.query, keep_blank_values=True)),
                    raw_query=url.query,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
            )
            canned = fake.answers.pop(0) if fake.answers else Canned()
            if canned.delay_s:
                time.sleep(canned.delay_s)
            try:
                self.send_response(canned.status)
                self.send_header("content-type", canned.content_type)
                self.send_header("content-length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)
            except OSError:
                pass  # the client gave up (the timeout case)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


class FixedKey:
    """An access key source that counts its reads and invalidations."""

    def __init__(self, *keys: AccessKey) -> None:
        self._keys = list(keys) or [KEY]
        self.reads = 0
        self.invalidations = 0
        self._current: AccessKey | None = None

    def get(self) -> AccessKey:
        if self._current is None:
            self._current = self._keys[min(self.reads, len(self._keys) - 1)]
            self.reads += 1
        return self._current

    def invalidate(self) -> None:
        self.invalidations += 1
        self._current = None


def aliyun(port: int, source: Any = None, **overrides: Any) -> AliyunSmsChannel:
    config = AliyunSmsConfig(
        sign_name=SIGN_NAME,
        templates=TEMPLATES,
        endpoint=f"127.0.0.1:{port}",
        protocol="http",
        access_key_secret_id="arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:dayingji/aliyun-sms",
        **overrides,
    )
    return AliyunSmsChannel(config, source or FixedKey())


def canonical_query(query: dict[str, str]) -> str:
    return "&".join(f"{name}={quote(query[name], safe='~')}" for name in sorted(query))


def verify_acs3_signature(request: Recorded, key: AccessKey) -> None:
    """Recompute Alibaba Cloud's V3 signature (ACS3-HMAC-SHA256) from the request as it arrived."""
    algorithm, _, fields = request.headers["authorization"].partition(" ")
    parts = dict(part.split("=", 1) for part in fields.split(","))
    assert algorithm == "ACS3-HMAC-SHA256"
    assert parts["Credential"] == key.access_key_id
    signed = parts["SignedHeaders"].split(";")
    assert {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce"} <= set(signed)
    payload_hash = hashlib.sha256(request.body).hexdigest()
    assert request.headers["x-acs-content-sha256"] == payload_hash
    canonical_headers = "".join(f"{name}:{request.headers[name].strip()}\n" for name in signed)
    signed_names = ";".join(signed)
    canonical = "\n".join(
        [
            request.method,
            request.path,
            canonical_query(request.query),
            canonical_headers,
            signed_names,
            payload_hash,
        ]
    )
    to_sign = f"{algorithm}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(key.access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["Signature"], expected)


# --- Alibaba Cloud: the request ---------------------------------------------------------------------------------


def test_a_warning_sms_goes_out_as_one_signed_send_sms_call_with_the_template_and_its_parameters(
    provider: FakeProvider,
) -> None:
    receipt = aliyun(provider.port).send(MESSAGE)

    assert receipt == SmsReceipt(provider="aliyun", message_id=OK["BizId"], request_id=OK["RequestId"])
    [request] = provider.requests
    assert (request.method, request.path) == ("POST", "/")
    assert request.headers["x-acs-action"] == "SendSms"
    assert request.headers["x-acs-version"] == "2017-05-25"
    assert request.headers["host"] == f"127.0.0.1:{provider.port}"
    assert request.query["PhoneNumbers"] == "13800138000"
    assert request.query["SignName"] == SIGN_NAME
    assert request.query["TemplateCode"] == "SMS_465270001"
    assert request.query["OutId"] == MESSAGE.dedupe_key
    assert json.loads(request.query["TemplateParam"]) == dict(MESSAGE.params)
    assert set(request.query) == {"PhoneNumbers", "SignName", "TemplateCode", "TemplateParam", "OutId"}
    verify_acs3_signature(request, KEY)


def test_the_sdk_makes_one_attempt_and_reuses_its_client_while_the_key_holds(provider: FakeProvider) -> None:
    source = FixedKey()
    channel = aliyun(provider.port, source)
    provider.answer(500, {"Code": "isp.SYSTEM_ERROR", "Message": "system error", "RequestId": "R1"})

    with pytest.raises(SmsUnavailable):
        channel.send(MESSAGE)
    channel.send(MESSAGE)

    assert len(provider.requests) == 2  # no retry inside the SDK: the delivery queue retries
    assert source.reads == 1


# --- Alibaba Cloud: answers → receipt / SmsRejected / SmsUnavailable -------------------------------------------

REJECTED_CODES = [
    ("isv.MOBILE_NUMBER_ILLEGAL", SmsRejectReason.INVALID_PHONE),
    ("isv.TEMPLATE_MISSING_PARAMETERS", SmsRejectReason.MISSING_PARAM),
    ("isv.SMS_TEMPLATE_ILLEGAL", SmsRejectReason.TEMPLATE_INVALID),
    ("isv.SMS_SIGNATURE_ILLEGAL", SmsRejectReason.SIGNATURE_INVALID),
    ("isv.PARAM_LENGTH_LIMIT", SmsRejectReason.PARAM_TOO_LONG),
    ("isv.BLACK_KEY_CONTROL_LIMIT", SmsRejectReason.CONTENT_REJECTED),
    ("isv.INVALID_PARAMETERS", SmsRejectReason.INVALID_REQUEST),
    ("isv.SOMETHING_NEW", SmsRejectReason.PROVIDER_REFUSED),
]
UNAVAILABLE_CODES = [
    ("isv.BUSINESS_LIMIT_CONTROL", SmsUnavailableReason.THROTTLED),
    ("isv.AMOUNT_NOT_ENOUGH", SmsUnavailableReason.ACCOUNT),
    ("isv.DAY_LIMIT_CONTROL", SmsUnavailableReason.ACCOUNT),
    ("isp.SYSTEM_ERROR", SmsUnavailableReason.PROVIDER_ERROR),
    ("isp.SOMETHING_NEW", SmsUnavailableReason.PROVIDER_ERROR),
]


@pytest.mark.parametrize(("code", "reason"), REJECTED_CODES)
def test_a_refusal_in_the_answer_is_permanent(provider: FakeProvider, code: str, reason: SmsRejectReason) -> None:
    provider.answer(200, {"Code": code, "Message": "说明", "RequestId": "REQ-1"})

    with pytest.raises(SmsRejected) as caught:
        aliyun(provider.port).send(MESSAGE)

    assert (caught.value.reason, caught.value.provider_code) == (reason, code)
    assert (caught.value.provider, caught.value.request_id, caught.value.provider_message) == (
        "aliyun",
        "REQ-1",
        "说明",
    )


@pytest.mark.parametrize(("code", "reason"), UNAVAILABLE_CODES)
def test_a_limit_or_a_provider_fault_in_the_answer_is_retried(
    provider: FakeProvider, code: str, reason: SmsUnavailableReason
) -> None:
    provider.answer(200, {"Code": code, "Message": "说明", "RequestId": "REQ-2"})

    with pytest.raises(SmsUnavailable) as caught:
        aliyun(provider.port).send(MESSAGE)

    assert (caught.value.reason, caught.value.provider_code, caught.value.maybe_sent) == (reason, code, False)


def test_http_500_with_the_providers_error_body_is_retried(provider: FakeProvider) -> None:
    provider.answer(500, {"Code": "isp.SYSTEM_ERROR", "Message": "system error", "RequestId": "REQ-3"})

    with pytest.raises(SmsUnavailable) as caught:
        aliyun(provider.port).send(MESSAGE)

    assert caught.value.reason is SmsUnavailableReason.PROVIDER_ERROR
    assert (caught.value.provider_code, caught.value.request_id) == ("isp.SYSTEM_ERROR", "REQ-3")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_an_http_5xx_without_a_readable_body_is_retried_and_may_have_been_sent(
    provider: FakeProvider, status: int
) -> None:
    provider.answer(status, raw=b"<html>Bad Gateway</html>")

    with pytest.raises(SmsUnavailable) as caught:
        aliyun(provider.port).send(MESSAGE)

    assert caught.value.reason is SmsUnavailableReason.PROVIDER_ERROR
    assert caught.value.maybe_sent


def test_http_4xx_throttling_is_retried(provider: FakeProvider) -> None:
    provider.answer(400, {"Code": "Throttling.User", "Message": "Request was denied due to user flow control."})

    with pytest.raises(SmsUnavailable) as caught:
        aliyun(provider.port).send(MESSAGE)

    assert caught.value.reason is SmsUnavailableReason.THROTTLED


def test_an_unknown_http_4xx_is_a_refusal(provider: FakeProvider) -> None:
    provider.answer(400, {"Code": "MissingSomething", "Message": "missing", "RequestId": "REQ-4"})

    with pytest.raises(SmsRejected) as caught:
        aliyun(provider.port).send(MESSAGE)

    assert (caught.value.reason, caught.value.provider_code) == (
        SmsRejectReason.PROVIDER_REFUSED,
        "MissingSomething",
    )


def test_a_refused_access_key_is_forgotten_so_the_retry_reads_the_rotated_one(provider: FakeProvider) -> None:
    rotated = AccessKey("LTAI5tRotatedKeyId", "rotated-secret")
    source = FixedKey(KEY, rotated)
    channel = aliyun(provider.port, source)
    provider.answer(404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."})

    with pytest.raises(SmsUnavailable) as caught:
        channel.send(MESSAGE)
    assert caught.value.reason is SmsUnavailableReason.CREDENTIALS
    assert source.invalidations == 1

    channel.send(MESSAGE)
    verify_acs3_signature(provider.requests[-1], rotated)


def test_no_answer_within_the_read_timeout_is_retried_and_may_have_been_sent(provider: FakeProvider) -> None:
    provider.answer(200, OK, delay_s=2.0)
    channel = aliyun(provider.port, read_timeout_ms=300)

    started = time.monotonic()
    with pytest.raises(SmsUnavailable) as caught:
        channel.send(MESSAGE)

    assert time.monotonic() - started < 1.5
    assert (caught.value.reason, caught.value.maybe_sent) == (SmsUnavailableReason.TIMEOUT, True)


def test_no_connection_is_retried_and_was_not_sent(provider: FakeProvider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(SmsUnavailable) as caught:
        aliyun(closed_port, connect_timeout_ms=500).send(MESSAGE)

    assert (caught.value.reason, caught.value.maybe_sent) == (SmsUnavailableReason.CONNECTION, False)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (SmsMessage("+12025550123", "warning_raised", MESSAGE.params, "x", "k"), SmsRejectReason.INVALID_PHONE),
        (SmsMessage("+8613800138000", "no_such", MESSAGE.params, "x", "k"), SmsRejectReason.UNKNOWN_TEMPLATE),
        (
            SmsMessage("+8613800138000", "warning_raised", {**MESSAGE.params, "point": "长" * 36}, "x", "k"),
            SmsRejectReason.PARAM_TOO_LONG,
        ),
    ],
)
def test_a_message_that_cannot_be_valid_costs_no_call(
    provider: FakeProvider, message: SmsMessage, reason: SmsRejectReason
) -> None:
    source = FixedKey()
    with pytest.raises(SmsRejected) as caught:
        aliyun(provider.port, source).send(message)

    assert caught.value.reason is reason
    assert provider.requests == []
    assert source.reads == 0


# --- Alibaba Cloud: the access key from Secrets Manager, end to end ---------------------------------------------


def test_the_channel_signs_with_the_access_key_held_in_secrets_manager(
    provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="cn-north-1")
        arn = secrets.create_secret(
            Name="dayingji/aliyun-sms",
            SecretString=json.dumps({"access_key_id": "LTAI5tFromSecret", "access_key_secret": "from-secret"}),
        )["ARN"]
        config = AliyunSmsConfig(
            sign_name=SIGN_NAME,
            templates=TEMPLATES,
            endpoint=f"127.0.0.1:{provider.port}",
            protocol="http",
            access_key_secret_id=arn,
        )
        channel = AliyunSmsChannel.from_config(
            config, lambda service: boto3.client(service, region_name="cn-north-1")
        )

        channel.send(MESSAGE)

    verify_acs3_signature(provider.requests[0], AccessKey("LTAI5tFromSecret", "from-secret"))


# --- cold start -------------------------------------------------------------------------------------------------


def test_importing_the_aliyun_channel_does_not_import_the_sdk() -> None:
    sdk_modules = {"alibabacloud_dysmsapi20170525", "alibabacloud_tea_openapi", "darabonba", "Tea", "aiohttp"}
    code = (
        "import sys, chalicelib.adapters.channels.aliyun_sms\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {sorted(sdk_modules | {'requests'})!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# --- Amazon SNS on moto -----------------------------------------------------------------------------------------


@pytest.fixture
def sns(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("sns", region_name="ap-northeast-1")


def sent_sms() -> dict[str, tuple[str, str]]:
    return dict(sns_backends[DEFAULT_ACCOUNT_ID]["ap-northeast-1"].sms_messages)


def test_sns_sends_the_rendered_text_to_the_phone(sns: Any) -> None:
    receipt = SnsSmsChannel(sns).send(MESSAGE)

    assert receipt.provider == "sns"
    assert sent_sms() == {receipt.message_id: (MESSAGE.phone, MESSAGE.text)}


def test_sns_refuses_a_phone_that_is_not_e164_without_a_call(sns: Any) -> None:
    with pytest.raises(SmsRejected) as caught:
        SnsSmsChannel(sns).send(SmsMessage("13800138000", "warning_raised", {}, MESSAGE.text, "k"))

    assert caught.value.reason is SmsRejectReason.INVALID_PHONE
    assert sent_sms() == {}


def test_sns_refuses_a_text_longer_than_one_segment(sns: Any) -> None:
    with pytest.raises(SmsRejected) as caught:
        SnsSmsChannel(sns).send(SmsMessage(MESSAGE.phone, "warning_raised", {}, "长" * 71, "k"))

    assert caught.value.reason is SmsRejectReason.TEXT_TOO_LONG
    assert sent_sms() == {}


def test_what_sns_itself_refuses_is_permanent(sns: Any) -> None:
    with pytest.raises(SmsRejected) as caught:
        SnsSmsChannel(sns, max_chars=None).send(SmsMessage(MESSAGE.phone, "warning_raised", {}, "长" * 1700, "k"))

    assert (caught.value.reason, caught.value.provider_code) == (
        SmsRejectReason.INVALID_REQUEST,
        "InvalidParameter",
    )


def test_sns_unreachable_is_retried_and_was_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    client = boto3.client(
        "sns",
        region_name="ap-northeast-1",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=BotoConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1),
    )

    with pytest.raises(SmsUnavailable) as caught:
        SnsSmsChannel(client).send(MESSAGE)

    assert (caught.value.reason, caught.value.maybe_sent) == (SmsUnavailableReason.CONNECTION, False)
