"""The whole platform on one machine: moto's server as AWS (provisioned from infra/), an MQTT broker, the topic
rule bridge, the stream poller invoking the Chalice handlers, and the seeded registry. Nothing in chalicelib/
knows this exists: the app reaches moto through the same boto3/PynamoDB code path as on AWS.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.aws import Provisioned, provision_with_identity, start_moto_server
from local.bridge import BridgedRule, RuleBridge
from local.mqtt import Broker, Publisher, start_broker
from local.poller import FailedDelivery, KinesisPoller
from local.seed import SeedRegistry, load_seed

STAGE = "local"


@dataclass
class LocalPlatform:
    endpoint_url: str
    infra: Provisioned
    registry: SeedRegistry
    broker: Broker
    bridge: RuleBridge
    poller: KinesisPoller
    app: Any
    _server: Any
    failures: list[FailedDelivery] = field(default_factory=list)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.infra.region)

    def publisher(self, client_id: str | None = None) -> Publisher:
        return Publisher("127.0.0.1", self.broker.port, client_id=client_id)

    def sms_messages(self) -> list[tuple[str, str]]:
        """(phone, text) of every SMS sent through SNS (moto keeps them instead of sending)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.sns.models import sns_backends

        backend = sns_backends[DEFAULT_ACCOUNT_ID][self.infra.region]
        return [(phone, text) for phone, text in backend.sms_messages.values()]

    def stop(self) -> None:
        for stop in (self.poller.stop, self.bridge.stop, self.broker.stop, self._server.stop):
            with contextlib.suppress(Exception):  # shut down everything even if one part fails
                stop()


def app_environment(infra: Provisioned, overrides: dict[str, str] | None = None) -> dict[str, str]:
    env = {**infra.aws_env(), **infra.env(), "DYJ_STAGE": STAGE, "POWERTOOLS_METRICS_DISABLED": "true"}
    env.update(overrides or {})
    return env


def start(
    *,
    policy_json: str | None = None,
    env_overrides: dict[str, str] | None = None,
    registry: SeedRegistry | None = None,
    poll_interval: float = 0.05,
    on_failure: Callable[[FailedDelivery], None] | None = None,
) -> LocalPlatform:
    server, endpoint_url = start_moto_server()
    infra = provision_with_identity(endpoint_url, stage=STAGE)  # resources.json + its user pool
    overrides = dict(env_overrides or {})
    if policy_json:
        overrides["DYJ_POLICY_JSON"] = policy_json
    os.environ.update(app_environment(infra, overrides))

    from chalicelib.adapters.dynamo import DynamoRegistry
    from chalicelib.bootstrap import reset

    reset()
    import app as chalice_app  # the deployed entrypoints, unchanged

    registry = registry or load_seed()
    from chalicelib.adapters import dynamo
    from chalicelib.settings import get_settings

    dynamo.bind(get_settings())
    DynamoRegistry.put_many(registry.devices, registry.enterprises, registry.people)
    from local.users import demo_users, seed_users

    seed_users(demo_users(registry))  # one user per role and scope; `local.users.token_for(username)`

    broker = start_broker()
    rules = [
        BridgedRule(rule.name, rule.sql, rule.kinesis_stream, rule.partition_key, rule.error_queue_url)
        for rule in infra.rules.values()
        if rule.kinesis_stream and rule.partition_key
    ]
    bridge = RuleBridge(
        "127.0.0.1",
        broker.port,
        rules,
        boto3.client("kinesis", endpoint_url=endpoint_url),
        boto3.client("sqs", endpoint_url=endpoint_url),
    )
    bridge.start()
    failures: list[FailedDelivery] = []
    poller = KinesisPoller(
        boto3.client("kinesis", endpoint_url=endpoint_url),
        infra.stream_name,
        chalice_app.ingest,
        batch_size=100,
        region=infra.region,
        poll_interval=poll_interval,
        on_failure=on_failure or failures.append,
    )
    poller.start()
    return LocalPlatform(endpoint_url, infra, registry, broker, bridge, poller, chalice_app, server, failures)
