"""The one factory of production AWS clients: standard retries and explicit timeouts on every boto3 client, and
PynamoDB's retries and timeouts from the settings (docs/operations.md "Retries and timeouts")."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import bootstrap
from chalicelib.adapters import audit_store, aws_clients, dynamo
from chalicelib.settings import Settings

SETTINGS = Settings(
    region="cn-north-1",
    aws_max_attempts=4,
    aws_connect_timeout_s=1.5,
    aws_read_timeout_s=7.0,
    dynamo_max_retry_attempts=2,
    dynamo_connect_timeout_s=1.0,
    dynamo_read_timeout_s=3.0,
)


def test_the_client_config_retries_in_standard_mode_and_times_out() -> None:
    config = aws_clients.client_config(SETTINGS)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)


def test_the_defaults_are_the_documented_ones() -> None:
    config = aws_clients.client_config(Settings.from_env({}))
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 5.0)


@pytest.mark.parametrize("service", ["sns", "stepfunctions", "cognito-idp"])
def test_every_client_bootstrap_builds_has_the_factorys_config(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client: Any = bootstrap._client(service, SETTINGS)
    config = client.meta.config
    assert config.retries["mode"] == "standard" and config.retries["total_max_attempts"] == 4
    assert (config.connect_timeout, config.read_timeout) == (1.5, 7.0)
    assert client.meta.region_name == "cn-north-1"


def test_the_s3_client_keeps_sigv4_and_path_style_with_the_same_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    config = bootstrap._s3(SETTINGS).meta.config
    assert (config.signature_version, config.s3) == ("s3v4", {"addressing_style": "path"})
    assert config.retries["mode"] == "standard" and (config.connect_timeout, config.read_timeout) == (1.5, 7.0)


def test_every_table_model_takes_pynamodbs_retries_and_timeouts_from_the_settings() -> None:
    dynamo.bind(SETTINGS)
    audit_store.bind(SETTINGS)
    try:
        models = [model for model, _ in dynamo._BINDINGS] + [audit_store.ChainEventItem, audit_store.AuditHeadItem]
        for model in models:
            meta: Any = model.Meta
            assert (meta.max_retry_attempts, meta.connect_timeout_seconds, meta.read_timeout_seconds) == (
                2,
                1.0,
                3.0,
            )
            assert meta.region == "cn-north-1"
        connection: Any = dynamo.WarningItem._get_connection().connection
        assert connection._max_retry_attempts_exception == 2
        assert (connection._connect_timeout_seconds, connection._read_timeout_seconds) == (1.0, 3.0)
    finally:
        dynamo.bind(Settings.from_env())
        audit_store.bind(Settings.from_env())
