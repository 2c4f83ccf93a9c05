"""Wiring: settings + adapters into services, lazily, once per container (and again after `reset()` in tests)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chalicelib.domain.catalog import Policy, build_engine, build_policy
from chalicelib.services.ingest import IngestService
from chalicelib.settings import Settings, get_settings


@dataclass(frozen=True)
class Container:
    settings: Settings
    policy: Policy
    ingest: IngestService
    sns: Any


def _client(service: str, settings: Settings) -> Any:
    import boto3  # heavy: only when a handler first needs AWS

    return boto3.client(service, region_name=settings.region, endpoint_url=settings.aws_endpoint_url)


@lru_cache(maxsize=1)
def container() -> Container:
    from chalicelib.adapters import dynamo
    from chalicelib.adapters.notify import SnsNotifier

    settings = get_settings()
    policy = build_policy(settings.policy)
    dynamo.bind(settings)
    sns = _client("sns", settings)
    ingest = IngestService(
        engine=build_engine(policy),
        policy=policy,
        registry=dynamo.DynamoRegistry(),
        states=dynamo.DynamoStateStore(),
        warnings=dynamo.DynamoWarningStore(),
        quarantine=dynamo.DynamoQuarantine(settings.quarantine_ttl_days),
        notifier=SnsNotifier(sns, settings.warning_topic_arn, settings.sms_enabled),
        workflow=None,
        clock=time.time,
        state_flush_s=settings.state_flush_s,
    )
    return Container(settings=settings, policy=policy, ingest=ingest, sns=sns)


def reset() -> None:
    """Forget the wiring (tests and the local runtime change the environment between runs)."""
    get_settings.cache_clear()
    container.cache_clear()
