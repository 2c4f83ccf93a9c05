"""The access key read from the stores a deployer puts it in, on moto: a Secrets Manager secret (by ARN) or an
SSM SecureString parameter, each holding `{"access_key_id", "access_key_secret"}`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.adapters.channels.credentials import AccessKey, AccessKeyUnavailableError, access_key_source

REGION = "cn-north-1"
VALUE = {"access_key_id": "LTAI5tFromStore", "access_key_secret": "from-store"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


def test_the_key_is_read_from_a_secrets_manager_secret_by_arn(aws: Any) -> None:
    secrets = aws("secretsmanager")
    arn = secrets.create_secret(Name="dayingji/aliyun-sms", SecretString=json.dumps(VALUE))["ARN"]

    keys = access_key_source(aws, secret_id=arn)

    assert keys.get() == AccessKey("LTAI5tFromStore", "from-store")


def test_a_rotated_secret_is_read_after_invalidation(aws: Any) -> None:
    secrets = aws("secretsmanager")
    arn = secrets.create_secret(Name="dayingji/aliyun-sms", SecretString=json.dumps(VALUE))["ARN"]
    keys = access_key_source(aws, secret_id=arn)
    keys.get()

    secrets.put_secret_value(
        SecretId=arn, SecretString=json.dumps({"access_key_id": "LTAI5tRotated", "access_key_secret": "r"})
    )
    assert keys.get().access_key_id == "LTAI5tFromStore"  # cached within the TTL
    keys.invalidate()

    assert keys.get().access_key_id == "LTAI5tRotated"


def test_the_key_is_read_from_an_ssm_securestring(aws: Any) -> None:
    aws("ssm").put_parameter(Name="/dayingji/prod/aliyun-sms", Value=json.dumps(VALUE), Type="SecureString")

    keys = access_key_source(aws, parameter_name="/dayingji/prod/aliyun-sms")

    assert keys.get() == AccessKey("LTAI5tFromStore", "from-store")


@pytest.mark.parametrize("source", [{"secret_id": "dayingji/missing"}, {"parameter_name": "/dayingji/missing"}])
def test_a_missing_secret_or_parameter_is_access_key_unavailable(aws: Any, source: dict[str, str]) -> None:
    with pytest.raises(AccessKeyUnavailableError):
        access_key_source(aws, **source).get()
