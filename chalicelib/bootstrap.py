"""Wiring: settings + adapters into services, lazily, once per container (and again after `reset()` in tests)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:  # each handler's services are imported by the function that wires them (bench/coldstart.py)
    from chalicelib.api.auth import TokenVerifier
    from chalicelib.domain.catalog import Policy
    from chalicelib.domain.lifecycle import Actor
    from chalicelib.domain.policy import RoutingPolicy
    from chalicelib.domain.warnings import WarningRecord
    from chalicelib.services.declarations import Declarations
    from chalicelib.services.delivery import DeliveryService
    from chalicelib.services.device_status import DeviceStatuses
    from chalicelib.services.evaluation import EvaluationService
    from chalicelib.services.ingest import IngestService
    from chalicelib.services.notifications import Notifications
    from chalicelib.services.offline_watch import OfflineWatch
    from chalicelib.services.online_ledger import OnlineLedger
    from chalicelib.services.people import People
    from chalicelib.services.ports import DeliveryJobs, EvidenceStore, Rosters, SmsChannel, Timers, UserDirectory
    from chalicelib.services.rectification import Rectifications
    from chalicelib.services.registry_admin import RegistryAdmin
    from chalicelib.services.rosters import RosterAdmin
    from chalicelib.services.warning_actions import WarningActions
    from chalicelib.services.workflow import WorkflowService, WorkflowTimers


@dataclass(frozen=True)
class Container:
    settings: Settings
    policy: Policy
    ingest: IngestService
    sns: Any


def _client(service: str, settings: Settings) -> Any:
    from chalicelib.adapters import aws_clients  # boto3 only when a handler first needs AWS

    return aws_clients.client(service, settings)


def _s3(settings: Settings) -> Any:
    from chalicelib.adapters import aws_clients

    return aws_clients.s3(settings)


def _timers(settings: Settings, clock: Callable[[], float] | None = None) -> WorkflowTimers | None:
    """The disposal timers (None when this stage has no state machine: warnings are then not followed)."""
    if not settings.disposal_state_machine_arn:
        return None
    from chalicelib.adapters.audit_store import AuditedWarningStore
    from chalicelib.adapters.workflow import StepFunctionsExecutions
    from chalicelib.services.workflow import WorkflowTimers

    executions = StepFunctionsExecutions(_client("stepfunctions", settings), settings.disposal_state_machine_arn)
    return WorkflowTimers(executions, AuditedWarningStore(), clock or time.time)


def _jobs(settings: Settings) -> DeliveryJobs | None:
    """The delivery queue (None when this stage has none: nobody is told)."""
    if not settings.queue_delivery:
        return None
    from chalicelib.adapters.delivery_store import SqsDeliveryJobs

    return SqsDeliveryJobs(_client("sqs", settings), settings.queue_delivery)


@dataclass(frozen=True)
class Base:
    settings: Settings
    policy: Policy


@lru_cache(maxsize=1)
def base() -> Base:
    """The settings, the policy and the tables bound: what every handler needs first."""
    from chalicelib.adapters import audit_store, delivery_store, dynamo, presence
    from chalicelib.domain.catalog import build_policy

    settings = get_settings()
    dynamo.bind(settings)
    audit_store.bind(settings)
    delivery_store.bind(settings)
    presence.bind(settings)
    return Base(settings=settings, policy=build_policy(settings.policy))


def ingest_service(
    settings: Settings,
    policy: Policy,
    sns: Any,
    clock: Callable[[], float] | None = None,
    registry_clock: Callable[[], float] | None = None,
) -> IngestService:
    """The ingest use case over its adapters, as the deployed handler runs it. The clocks are parameters so that a
    bench can run it on simulated time; everything else is what ships. The defaults are looked up at call time
    (`time.time` as the process sees it then: tests freeze it)."""
    clock = clock or time.time
    registry_clock = registry_clock or time.monotonic
    from chalicelib.adapters import audit_store, dynamo
    from chalicelib.adapters.declarations import DynamoDeclarationStore
    from chalicelib.adapters.declarations import bind as bind_declarations
    from chalicelib.adapters.errors import is_transient
    from chalicelib.adapters.notify import SnsNotifier
    from chalicelib.adapters.presence import DynamoPresenceLedger
    from chalicelib.adapters.stream_log import KinesisStreamLog
    from chalicelib.domain.catalog import build_engine
    from chalicelib.services.declarations import OpenDeclarations
    from chalicelib.services.ingest import IngestService
    from chalicelib.services.presence import PresenceTracker

    bind_declarations(settings)
    return IngestService(
        engine=build_engine(policy),
        policy=policy,
        registry=dynamo.DynamoRegistry(clock=registry_clock),
        states=dynamo.DynamoStateStore(),
        warnings=audit_store.AuditedWarningStore(),  # every engine change chained in the audit trail
        quarantine=dynamo.DynamoQuarantine(
            settings.quarantine_ttl_days,
            _s3(settings) if settings.quarantine_bucket else None,
            settings.quarantine_bucket,
        ),
        notifier=SnsNotifier(sns, settings.warning_topic_arn),
        deliveries=dynamo.DynamoDeliveryLedger(),
        workflow=_timers(settings, clock),
        clock=clock,
        is_transient=is_transient,
        state_flush_s=settings.state_flush_s,
        state_touch_s=settings.state_touch_s,
        jobs=_jobs(settings),
        # last sign of life per device in the container, one summary per shard and minute (docs/offline-watch.md)
        presence=PresenceTracker(
            DynamoPresenceLedger(policy.presence.period_s), policy.presence.thresholds(), uuid.uuid4().hex, clock
        ),
        # suppression, 失真 (docs/declarations.md)
        declarations=OpenDeclarations(DynamoDeclarationStore(), clock, policy.declarations.open_cache_s),
        # a cold container reads back what its predecessor's cache may have held (docs/decisions.md)
        stream_log=KinesisStreamLog(_client("kinesis", settings), settings.device_stream),
    )


@lru_cache(maxsize=1)
def container() -> Container:
    """The ingest handler's wiring."""
    settings, policy = base().settings, base().policy
    sns = _client("sns", settings)
    return Container(settings=settings, policy=policy, ingest=ingest_service(settings, policy, sns), sns=sns)


def _warning_actions(
    policy: Policy,
    users: UserDirectory | None = None,
    evidence: EvidenceStore | None = None,
    timers: Timers | None = None,
) -> WarningActions:
    from chalicelib.adapters.audit_store import AuditedWarningStore
    from chalicelib.adapters.warning_index import DynamoWarningListings
    from chalicelib.services.warning_actions import WarningActions

    return WarningActions(
        AuditedWarningStore(),
        DynamoWarningListings(),
        policy,
        time.time,
        users=users,
        evidence=evidence,
        timers=timers,
    )


@dataclass(frozen=True)
class Api:
    """What the API routes need: the token verifier (None when this stage has no identity provider) and the use
    cases. Built on the first API call: the other handlers never import jwt or build a Cognito client."""

    verifier: TokenVerifier | None
    warnings: WarningActions
    registry: RegistryAdmin
    people: People
    rosters: RosterAdmin
    routing: RoutingPolicy
    notifications: Notifications

    def authenticate(self, authorization: str | None) -> Actor:
        from chalicelib.api.auth import Unauthorized
        from chalicelib.api.identity import actor_from_claims

        if self.verifier is None:
            raise Unauthorized("auth_unavailable", "身份认证未配置")
        return actor_from_claims(self.verifier.claims(authorization), self.routing)


@lru_cache(maxsize=1)
def api() -> Api:
    from chalicelib.adapters.audit_store import AuditedRegistry
    from chalicelib.adapters.delivery_store import DynamoInbox
    from chalicelib.adapters.evidence import S3Evidence
    from chalicelib.adapters.identity import CognitoDirectory
    from chalicelib.api.auth import TokenVerifier
    from chalicelib.services.notifications import Notifications
    from chalicelib.services.people import People
    from chalicelib.services.registry_admin import RegistryAdmin
    from chalicelib.services.rosters import RosterAdmin

    settings, policy = base().settings, base().policy
    verifier = None
    if settings.cognito_issuer and settings.cognito_client_id and settings.cognito_jwks_url:
        verifier = TokenVerifier(settings.cognito_issuer, settings.cognito_client_id, settings.cognito_jwks_url)
    users = None
    if settings.cognito_user_pool_id:
        users = CognitoDirectory(
            _client("cognito-idp", settings), settings.cognito_user_pool_id, settings.cognito_client_id
        )
    evidence = None
    if settings.evidence_bucket:
        evidence = S3Evidence(_s3(settings), settings.evidence_bucket)
    registry = AuditedRegistry()
    return Api(
        verifier=verifier,
        warnings=_warning_actions(policy, users, evidence, _timers(settings)),
        registry=RegistryAdmin(registry, time.time),
        people=People(users, registry),
        rosters=RosterAdmin(registry, time.time),
        routing=policy.routing,
        notifications=Notifications(DynamoInbox(), time.time),
    )


@lru_cache(maxsize=1)
def rosters() -> Rosters:
    """Who a message for a role reaches now (the delivery path's `Rosters`): people, shifts and enterprises'
    on-duty persons from the registry table, cached per container for 60 s (a change shows within that)."""
    from chalicelib.adapters.rosters import DynamoRosters

    base()
    return DynamoRosters()


class _OpenWarnings:
    def open_warnings(self) -> Iterator[WarningRecord]:
        from chalicelib.adapters.audit_store import AuditedWarningStore
        from chalicelib.domain.levels import Sector

        for record, _key in AuditedWarningStore.open_in_sectors(list(Sector)):
            yield record


@lru_cache(maxsize=1)
def workflow() -> WorkflowService:
    """What the disposal timers hand back (the workflow queue), and the sweeper. What fell due is recorded through
    the warning actions built here, without the API's verifier or user directory (no Cognito client)."""
    from chalicelib.adapters.audit_store import AuditedWarningStore
    from chalicelib.adapters.dynamo import DynamoRegistry
    from chalicelib.adapters.workflow import SnsTopic, StepFunctionsExecutions
    from chalicelib.services.warning_actions import SystemActions
    from chalicelib.services.workflow import WorkflowService, WorkflowTimers

    settings, policy = base().settings, base().policy
    sns = _client("sns", settings)
    executions = StepFunctionsExecutions(_client("stepfunctions", settings), settings.disposal_state_machine_arn)
    warnings = AuditedWarningStore()
    return WorkflowService(
        policy=policy,
        timers=WorkflowTimers(executions, warnings, time.time),
        executions=executions,
        escalator=SystemActions(_warning_actions(policy)),
        warnings=warnings,
        open_warnings=_OpenWarnings(),
        directory=DynamoRegistry(),
        jobs=_jobs(settings),
        publisher=SnsTopic(sns, settings.escalation_topic_arn) if settings.escalation_topic_arn else None,
        clock=time.time,
    )


@lru_cache(maxsize=1)
def declarations() -> Declarations:
    """Outage declarations: the API's routes and the `declaration_sweep` schedule. The registry table (the
    declarations, their devices), the audit log, the findings they suppressed (warning-event table), and the
    delivery queue for the reminders and decisions (`DeclarationNoticeJobs`; logged only where the stage has no
    queue)."""
    from chalicelib.adapters import declarations as declaration_store
    from chalicelib.adapters.audit_store import AuditedRegistry
    from chalicelib.adapters.dynamo import DynamoSuppressedFindings
    from chalicelib.services.declarations import DeclarationNoticeJobs, Declarations
    from chalicelib.services.ports import DeclarationNotices

    settings, policy = base().settings, base().policy
    declaration_store.bind(settings)
    jobs = _jobs(settings)
    notices: DeclarationNotices = (
        DeclarationNoticeJobs(jobs) if jobs is not None else declaration_store.LoggedDeclarationNotices()
    )
    return Declarations(
        declaration_store.DynamoDeclarationStore(),
        AuditedRegistry(),
        notices,
        policy.declarations,
        time.time,
        suppressed=DynamoSuppressedFindings(),
    )


def offline_watch_service(settings: Settings, policy: Policy, clock: Callable[[], float]) -> OfflineWatch:
    """The offline watch as the `offline_watch` schedule runs it (docs/offline-watch.md): the presence summaries
    and the offline devices in the warning-event table, the open declarations (one index read per run), and the
    offline warnings through the ingest's warning path (store, timers, topic, delivery queue). The clock is a
    parameter so that tests and benches run it on simulated time."""
    from chalicelib.adapters import declarations as declaration_store
    from chalicelib.adapters.audit_store import AuditedWarningStore
    from chalicelib.adapters.dynamo import DynamoDeliveryLedger, DynamoRegistry, DynamoStateStore
    from chalicelib.adapters.notify import SnsNotifier
    from chalicelib.adapters.presence import DynamoOfflineState, DynamoPresenceLedger
    from chalicelib.domain.catalog import sector_models
    from chalicelib.domain.levels import Sector
    from chalicelib.domain.sectors.road_transport import RoadTransportModel
    from chalicelib.services.offline_warnings import OfflineWarnings
    from chalicelib.services.offline_watch import OfflineWatch

    declaration_store.bind(settings)
    road = sector_models(policy)[Sector.ROAD_TRANSPORT]
    sink = OfflineWarnings(
        policy,
        DynamoRegistry(clock=clock),
        DynamoStateStore(),
        AuditedWarningStore(),
        SnsNotifier(_client("sns", settings), settings.warning_topic_arn),
        DynamoDeliveryLedger(),
        _timers(settings, clock),
        _jobs(settings),
        clock,
        road=road if isinstance(road, RoadTransportModel) else None,
    )
    presence = policy.presence
    return OfflineWatch(
        DynamoPresenceLedger(presence.period_s),
        DynamoOfflineState(),
        sink,
        declaration_store.DynamoDeclarationStore().open,
        clock,
        shard_silence_s=presence.shard_silence_s,
        lag_min=presence.lag_periods,
        disconnect_grace_s=presence.disconnect_grace_s,
        outage_ended=online_ledger(settings, clock).closed,
        period_s=presence.period_s,
    )


def online_ledger(settings: Settings, clock: Callable[[], float] | None = None) -> OnlineLedger:
    """The online-time ledger (在线率): `closed` for the offline watch, `days` (`DeviceDaySource`) for the
    evaluation. Reads the registry (index), the warning-event table and the declarations."""
    from chalicelib.adapters import declarations as declaration_store
    from chalicelib.adapters import online_ledger as ledger_store
    from chalicelib.adapters.dynamo import DynamoRegistry
    from chalicelib.adapters.presence import DynamoOfflineState
    from chalicelib.services.online_ledger import OnlineLedger

    declaration_store.bind(settings)
    ledger_store.bind(settings)
    return OnlineLedger(
        ledger_store.DynamoOutageLedger(),
        DynamoRegistry(clock=clock),
        ledger_store.DynamoDeviceDirectory(),
        DynamoOfflineState(consistent=False),  # reports and people may lag the watch by a second
        declaration_store.DynamoDeclarationStore.of_enterprise,
        clock or time.time,
    )


@lru_cache(maxsize=1)
def offline_watch() -> OfflineWatch:
    """The `offline_watch` schedule's wiring (every minute)."""
    return offline_watch_service(base().settings, base().policy, time.time)


@lru_cache(maxsize=1)
def device_statuses() -> DeviceStatuses:
    """GET /devices: the registry index, device states, offline records and open declarations (read only)."""
    from chalicelib.adapters import declarations as declaration_store
    from chalicelib.adapters import online_ledger as ledger_store
    from chalicelib.adapters.dynamo import DynamoStateStore
    from chalicelib.adapters.presence import DynamoOfflineState
    from chalicelib.services.device_status import DeviceStatuses

    settings = base().settings
    declaration_store.bind(settings)
    return DeviceStatuses(
        ledger_store.DynamoDeviceDirectory(ttl_s=60.0),  # as the ingest's registry: it seldom changes
        DynamoStateStore(),
        DynamoOfflineState(consistent=False),  # people may lag the watch by a second (half the read units)
        declaration_store.DynamoDeclarationStore().open,
        time.time,
    )


def sms_channel(settings: Settings) -> SmsChannel | None:
    """The SMS provider of this stage (docs/sms-channels.md); None when SMS are switched off."""
    if not settings.sms_enabled:
        return None
    if settings.sms_provider == "aliyun":
        from chalicelib.adapters.channels.aliyun_sms import AliyunSmsChannel, AliyunSmsConfig

        config = AliyunSmsConfig(
            sign_name=settings.aliyun_sms_sign_name,
            templates=settings.aliyun_sms_templates,
            endpoint=settings.aliyun_sms_endpoint,
            region_id=settings.aliyun_sms_region_id,
            connect_timeout_ms=settings.aliyun_sms_connect_timeout_ms,
            read_timeout_ms=settings.aliyun_sms_read_timeout_ms,
            access_key_secret_id=settings.aliyun_sms_access_key_secret_id,
            access_key_parameter=settings.aliyun_sms_access_key_parameter,
        )
        return AliyunSmsChannel.from_config(config, lambda service: _client(service, settings))
    from chalicelib.adapters.channels.sns_sms import SnsSmsChannel

    return SnsSmsChannel(_client("sns", settings))


@lru_cache(maxsize=1)
def delivery() -> DeliveryService:
    """The delivery handler's wiring: the ledger, receipts and inboxes (DynamoDB), who is on duty (the rosters),
    the SMS provider of the stage. No Step Functions, no topics."""
    from chalicelib.adapters.delivery_store import DynamoInbox, DynamoReceipts
    from chalicelib.adapters.dynamo import DynamoDeliveryLedger, DynamoRegistry
    from chalicelib.services.delivery import DeliveryService

    settings = base().settings
    return DeliveryService(
        ledger=DynamoDeliveryLedger(),
        receipts=DynamoReceipts(),
        rosters=rosters(),
        directory=DynamoRegistry(),
        sms=sms_channel(settings),
        inbox=DynamoInbox(),
        clock=time.time,
        lease_s=settings.delivery_lease_s,
    )


@lru_cache(maxsize=1)
def evaluation() -> EvaluationService:
    """Evaluation runs (the monthly, quarterly and annual schedules; the API's on-demand runs and report reads):
    the warning table's indexes, the registry, the offline watch's state, the report module
    (domain/evaluation/report.py, chalicelib/reports/), the evaluation bucket."""
    from chalicelib.adapters import presence, rectification
    from chalicelib.adapters.evaluation_store import DynamoEvaluationFacts, S3ReportArchive, SqsEvaluationRequests
    from chalicelib.domain.errors import NotConfigured
    from chalicelib.services.evaluation import DomainReportRenderer, EvaluationService

    settings, policy = base().settings, base().policy
    if not settings.evaluation_bucket:
        raise NotConfigured("evaluation_unavailable", "评估报告存储未配置")
    presence.bind(settings)  # the offline watch's items, read for the device-days
    rectification.bind(settings)  # 整改事项 overdue at the period's end (a column of the report)
    return EvaluationService(
        facts=DynamoEvaluationFacts(policy.deadlines),
        ledger=online_ledger(settings),
        renderer=DomainReportRenderer(policy.evaluation, policy.routing),
        archive=S3ReportArchive(_s3(settings), settings.evaluation_bucket),
        policy=policy.evaluation,
        clock=time.time,
        rectifications=rectification.DynamoRectificationStore(),
        # on-demand runs go to the evaluate_requested function (a stage without the queue runs them in the API)
        requests=SqsEvaluationRequests(_client("sqs", settings), settings.queue_evaluation)
        if settings.queue_evaluation
        else None,
    )


@lru_cache(maxsize=1)
def rectifications() -> Rectifications:
    """通报 and rectification (the API's routes): the report archive (reads), the rectification items and
    publications in the registry table, the delivery queue (logged only where the stage has none), the evidence
    bucket for the answers' photos."""
    from chalicelib.adapters import rectification
    from chalicelib.adapters.evaluation_store import S3ReportArchive
    from chalicelib.adapters.evidence import S3Evidence
    from chalicelib.domain.errors import NotConfigured
    from chalicelib.services.rectification import Rectifications

    settings, policy = base().settings, base().policy
    if not settings.evaluation_bucket:
        raise NotConfigured("evaluation_unavailable", "评估报告存储未配置")
    rectification.bind(settings)
    return Rectifications(
        archive=S3ReportArchive(_s3(settings), settings.evaluation_bucket),
        store=rectification.DynamoRectificationStore(),
        jobs=_jobs(settings),
        policy=policy.evaluation,
        clock=time.time,
        evidence=S3Evidence(_s3(settings), settings.evidence_bucket) if settings.evidence_bucket else None,
        routing=policy.routing,
    )


def reset() -> None:
    """Forget the wiring (tests and the local runtime change the environment between runs)."""
    get_settings.cache_clear()
    base.cache_clear()
    container.cache_clear()
    api.cache_clear()
    rosters.cache_clear()
    workflow.cache_clear()
    declarations.cache_clear()
    delivery.cache_clear()
    evaluation.cache_clear()
    rectifications.cache_clear()
    offline_watch.cache_clear()
    device_statuses.cache_clear()
