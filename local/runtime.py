"""The whole platform on one machine: moto's server as AWS (provisioned from infra/), an MQTT broker, the topic
rule bridge, the stream poller invoking the Chalice handlers, and the seeded registry. Nothing in chalicelib/
knows this exists: the app reaches moto through the same boto3/PynamoDB code path as on AWS.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3

from local.aws import Provisioned, provision_with_identity, start_moto_server
from local.bridge import BridgedRule, RuleBridge
from local.cfn import Template
from local.mqtt import Broker, Publisher, start_broker
from local.poller import (
    FailedDelivery,
    Handler,
    KinesisPoller,
    LambdaContext,
    SqsFailureDestination,
    SqsPoller,
    StreamFailurePolicy,
)
from local.seed import SeedRegistry, load_seed

STAGE = "local"
LONG_POLL_S = 1  # the SQS pollers' WaitTimeSeconds: moto answers as soon as a message arrives
QUEUE_PAUSE_S = 0.02  # after an empty long poll, before the next
STREAM_PAUSE_S = 0.2  # after a stream poll found nothing (Lambda polls a shard once a second; a test waits less)


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
    workflow_poller: SqsPoller | None = None
    delivery_poller: SqsPoller | None = None
    evaluation_poller: SqsPoller | None = None
    scheduler: Scheduler | None = None
    offline_scheduler: Scheduler | None = None
    declaration_scheduler: Scheduler | None = None
    api_server: ApiServer | None = None

    @property
    def failed_records(self) -> int:
        """Stream records the ingest poller gave up on (each entry of `failures` is one discarded batch)."""
        return sum(len(failure.records) for failure in self.failures)

    @property
    def api_url(self) -> str:
        assert self.api_server is not None
        return self.api_server.url

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

    def stop_executions(self) -> None:
        """Stop the running disposal executions (their threads would otherwise call a stopped server)."""
        sfn = self.client("stepfunctions")
        arn = self.infra.state_machine_arn("DisposalStateMachine")
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter="RUNNING"):
            for execution in page["executions"]:
                with contextlib.suppress(Exception):
                    sfn.stop_execution(executionArn=execution["executionArn"])

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_executions()
        parts = [self.poller.stop, self.bridge.stop, self.broker.stop]
        parts += [
            part.stop
            for part in (
                self.api_server,
                self.scheduler,
                self.offline_scheduler,
                self.declaration_scheduler,
                self.workflow_poller,
                self.delivery_poller,
                self.evaluation_poller,
            )
            if part is not None
        ]
        for stop in [*parts, self._server.stop]:
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
    poll_interval: float = STREAM_PAUSE_S,
    on_failure: Callable[[FailedDelivery], None] | None = None,
    sweep_interval_s: float = 30.0,
    aws_port: int = 0,
    mqtt_port: int = 0,
    mqtt_host: str = "127.0.0.1",
    api_port: int = 0,
    offline_watch_interval_s: float = 60.0,
    declaration_sweep_interval_s: float = 60.0,
) -> LocalPlatform:
    """Ports 0 are free ones picked by the system (tests); `python -m local.run` asks for fixed ones, and may bind
    the broker to another address than 127.0.0.1 (`mqtt_host`) for devices on the network.
    The API server serves the duty console's files too (`/console/`: the app's own routes).
    `offline_watch_interval_s`: the offline watch's schedule (every minute as deployed; tests and the demo may
    run it more often: it reads only the minutes it has not read yet). `declaration_sweep_interval_s`: the
    declarations' sweep (expiry, reminders; every 5 minutes as deployed)."""
    server, endpoint_url = start_moto_server(port=aws_port)
    infra = provision_with_identity(endpoint_url, stage=STAGE)  # resources.json + its user pool
    overrides = dict(env_overrides or {})
    if policy_json:
        overrides["DYJ_POLICY_JSON"] = policy_json
    os.environ.update(app_environment(infra, overrides))

    from chalicelib.bootstrap import reset

    reset()
    import app as chalice_app  # the deployed entrypoints, unchanged

    registry = registry or load_seed()
    from chalicelib.adapters import audit_store, dynamo
    from chalicelib.settings import get_settings
    from local.seed import install

    dynamo.bind(get_settings())
    audit_store.bind(get_settings())
    install(registry)  # people, the duty roster and on-duty persons through the audited roster administration
    from local.users import demo_users, seed_users

    seed_users(demo_users(registry))  # one user per role and scope; `local.users.token_for(username)`

    broker = start_broker(port=mqtt_port, host=mqtt_host)
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
    poller = ingest_poller(
        infra, chalice_app.ingest, poll_interval=poll_interval, on_failure=on_failure or failures.append
    )
    poller.start()
    from local.sfn import quiet_moto_asl_logging

    quiet_moto_asl_logging()
    # two batches at once, as Lambda's pollers take several: a handler sleeping off one timer's early wake-up
    # must not hold back a message that falls due meanwhile
    workflow_poller = queue_poller(
        infra, "WorkflowEventQueue", chalice_app.workflow_events, "workflow_events", concurrency=2
    )
    workflow_poller.start()
    # the deliver function's event source: SMS through SNS on moto, inboxes
    delivery_poller = queue_poller(infra, "DeliveryQueue", chalice_app.deliver, "deliver")
    delivery_poller.start()
    # the evaluate_requested function's event source: POST /evaluations' runs
    evaluation = chalice_app.evaluate_requested
    evaluation_poller = queue_poller(infra, "EvaluationQueue", evaluation, "evaluate_requested", batch_size=1)
    evaluation_poller.start()
    scheduler = Scheduler(chalice_app.sweep, sweep_interval_s, region=infra.region)
    scheduler.start()
    offline_scheduler = Scheduler(
        chalice_app.watch_offline, offline_watch_interval_s, region=infra.region, function_name="offline_watch"
    )
    offline_scheduler.start()
    declaration_scheduler = Scheduler(
        chalice_app.declaration_sweep,
        declaration_sweep_interval_s,
        region=infra.region,
        function_name="declaration_sweep",
    )
    declaration_scheduler.start()
    api_server = ApiServer(chalice_app.app, port=api_port)
    return LocalPlatform(
        endpoint_url,
        infra,
        registry,
        broker,
        bridge,
        poller,
        chalice_app,
        server,
        failures,
        workflow_poller=workflow_poller,
        delivery_poller=delivery_poller,
        evaluation_poller=evaluation_poller,
        scheduler=scheduler,
        offline_scheduler=offline_scheduler,
        declaration_scheduler=declaration_scheduler,
        api_server=api_server,
    )


def queue_poller(
    infra: Provisioned,
    queue: str,
    handler: Handler,
    function_name: str,
    *,
    batch_size: int = 10,
    concurrency: int = 1,
) -> SqsPoller:
    """A function's SQS event source mapping, run locally on one of the template's queues (by logical id): long
    polling (1 s), as Lambda's pollers do, so a message is handled as soon as it arrives and an idle queue costs
    one request a second. A failed message comes back after 1 s instead of its queue's visibility timeout (the
    retry, sooner)."""
    return SqsPoller(
        boto3.client("sqs", endpoint_url=infra.endpoint_url, region_name=infra.region),
        infra.queue_url(queue),
        handler,
        batch_size=batch_size,
        region=infra.region,
        function_name=function_name,
        poll_interval=QUEUE_PAUSE_S,
        wait_time_seconds=LONG_POLL_S,
        retry_visibility_timeout=1,
        concurrency=concurrency,
    )


def ingest_poller(
    infra: Provisioned,
    handler: Handler,
    *,
    poll_interval: float = STREAM_PAUSE_S,
    on_failure: Callable[[FailedDelivery], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> KinesisPoller:
    """The ingest handler's event source mapping, run locally: the device stream in batches of 100, with the
    failure handling the template declares for it (`DeviceStream`'s `dayingji:EventSourceMapping`, the values the
    packaged mapping gets) and its on-failure queue on moto; `on_failure` also hears of every discarded batch."""
    (stream,) = [r.logical_id for r in infra.resources.values() if r.type == "AWS::Kinesis::Stream"]
    mapping = Template.load().event_source_mapping(stream)
    policy = (
        StreamFailurePolicy()
        if mapping is None
        else StreamFailurePolicy.from_event_source_mapping(mapping.properties)
    )
    listeners: list[Callable[[FailedDelivery], None]] = []
    if mapping is not None and mapping.on_failure_queue is not None:
        sqs = boto3.client("sqs", endpoint_url=infra.endpoint_url, region_name=infra.region)
        listeners.append(SqsFailureDestination(sqs, infra.queue_url(mapping.on_failure_queue), clock))
    if on_failure is not None:
        listeners.append(on_failure)

    def tell_listeners(failure: FailedDelivery) -> None:
        for listener in listeners:
            listener(failure)

    return KinesisPoller(
        boto3.client("kinesis", endpoint_url=infra.endpoint_url, region_name=infra.region),
        infra.stream_name,
        handler,
        batch_size=100,
        region=infra.region,
        account=infra.account_id,
        failure_policy=policy,
        on_failure=tell_listeners,
        function_name="ingest",
        poll_interval=poll_interval,
        clock=clock,
    )


class ApiServer:
    """The Chalice app's routes on a local port (Chalice's own local server, real HTTP)."""

    def __init__(self, chalice_app: Any, port: int = 0) -> None:
        from pathlib import Path

        from chalice.test import Client

        from local.api_gateway import local_server

        project_dir = str(Path(__file__).resolve().parent.parent)
        config = Client(chalice_app, stage_name="dev", project_dir=project_dir)._chalice_config
        from chalice.local import ChaliceRequestHandler

        ChaliceRequestHandler.log_message = lambda *_args: None  # no access log
        self._server = local_server(chalice_app, config, port=port)  # the stage's gateway responses
        self._thread = threading.Thread(target=self._server.server.serve_forever, name="api", daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server.server_close()  # release the port now, not when the process ends


class Scheduler:
    """Fires a Chalice `@app.schedule` handler every `interval_s` (moto's EventBridge does not run schedules)."""

    def __init__(
        self,
        handler: Callable[[dict[str, Any], Any], Any],
        interval_s: float,
        region: str,
        function_name: str = "sweep",
    ) -> None:
        self._handler = handler
        self._function_name = function_name
        self._interval_s = interval_s
        self._region = region
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"scheduler-{function_name}", daemon=True)
        self.fired = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def fire(self) -> Any:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self._region,
            "resources": [],
            "detail": {},
        }
        self.fired += 1
        return self._handler(event, LambdaContext(function_name=self._function_name))

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.fire()
            except Exception as exc:  # a failing sweep is logged and retried at the next tick, as on AWS
                print(f"scheduler: {self._function_name} raised {type(exc).__name__}: {exc}")
