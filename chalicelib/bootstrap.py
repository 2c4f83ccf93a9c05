"""Wiring: settings + adapters into services, lazily, once per container (and again after `reset()` in tests)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.domain.catalog import Policy, build_engine, build_policy
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Actor
from chalicelib.domain.policy import RoutingPolicy
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.ingest import IngestService
from chalicelib.services.workflow import WorkflowService, WorkflowTimers
from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.api.auth import TokenVerifier
    from chalicelib.services.disposal import DisposalService


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


def _timers(settings: Settings) -> WorkflowTimers | None:
    """The disposal timers (None when this stage has no state machine: warnings are then not followed)."""
    if not settings.disposal_state_machine_arn:
        return None
    from chalicelib.adapters.audit_store import AuditedWarningStore
    from chalicelib.adapters.workflow import StepFunctionsExecutions

    executions = StepFunctionsExecutions(_client("stepfunctions", settings), settings.disposal_state_machine_arn)
    return WorkflowTimers(executions, AuditedWarningStore(), time.time)


@lru_cache(maxsize=1)
def container() -> Container:
    from chalicelib.adapters import audit_store, dynamo
    from chalicelib.adapters.errors import is_transient
    from chalicelib.adapters.notify import SnsNotifier

    settings = get_settings()
    policy = build_policy(settings.policy)
    dynamo.bind(settings)
    audit_store.bind(settings)
    sns = _client("sns", settings)
    ingest = IngestService(
        engine=build_engine(policy),
        policy=policy,
        registry=dynamo.DynamoRegistry(),
        states=dynamo.DynamoStateStore(),
        warnings=audit_store.AuditedWarningStore(),  # every engine change chained in the audit trail
        quarantine=dynamo.DynamoQuarantine(
            settings.quarantine_ttl_days,
            _s3(settings) if settings.quarantine_bucket else None,
            settings.quarantine_bucket,
        ),
        notifier=SnsNotifier(sns, settings.warning_topic_arn, settings.sms_enabled),
        deliveries=dynamo.DynamoDeliveryLedger(),
        workflow=_timers(settings),
        clock=time.time,
        is_transient=is_transient,
        state_flush_s=settings.state_flush_s,
    )
    return Container(settings=settings, policy=policy, ingest=ingest, sns=sns)


@dataclass(frozen=True)
class Api:
    """What the API routes need: the token verifier (None when this stage has no identity provider) and the
    disposal use cases. Built on the first API call, so the stream handlers never import jwt or Cognito."""

    verifier: TokenVerifier | None
    disposal: DisposalService
    routing: RoutingPolicy

    def authenticate(self, authorization: str | None) -> Actor:
        from chalicelib.api.auth import Unauthorized
        from chalicelib.api.identity import actor_from_claims

        if self.verifier is None:
            raise Unauthorized("auth_unavailable", "身份认证未配置")
        return actor_from_claims(self.verifier.claims(authorization), self.routing)


@lru_cache(maxsize=1)
def api() -> Api:

    from chalicelib.adapters.audit_store import AuditedRegistry, AuditedWarningStore
    from chalicelib.adapters.evidence import S3Evidence
    from chalicelib.adapters.identity import CognitoDirectory
    from chalicelib.adapters.warning_index import DynamoWarningListings
    from chalicelib.api.auth import TokenVerifier
    from chalicelib.services.disposal import DisposalService

    base = container()
    settings = base.settings
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
    disposal = DisposalService(
        warnings=AuditedWarningStore(),
        registry=AuditedRegistry(),
        users=users,
        evidence=evidence,
        policy=base.policy,
        clock=time.time,
        listings=DynamoWarningListings(),
        timers=_timers(settings),
    )
    return Api(verifier=verifier, disposal=disposal, routing=base.policy.routing)


class _OpenWarnings:
    def open_warnings(self) -> Iterator[WarningRecord]:
        from chalicelib.adapters.audit_store import AuditedWarningStore

        for record, _key in AuditedWarningStore.open_in_sectors(list(Sector)):
            yield record


@lru_cache(maxsize=1)
def workflow() -> WorkflowService:
    """What the disposal executions hand back, and the sweeper (built on first use by those handlers)."""
    from chalicelib.adapters.audit_store import AuditedWarningStore
    from chalicelib.adapters.dynamo import DynamoRegistry
    from chalicelib.adapters.workflow import SnsSms, SnsTopic, StepFunctionsExecutions

    base = container()
    settings = base.settings
    disposal = api().disposal
    executions = StepFunctionsExecutions(_client("stepfunctions", settings), settings.disposal_state_machine_arn)
    warnings = AuditedWarningStore()
    return WorkflowService(
        policy=base.policy,
        timers=WorkflowTimers(executions, warnings, time.time),
        executions=executions,
        escalator=disposal,
        warnings=warnings,
        open_warnings=_OpenWarnings(),
        directory=DynamoRegistry(),
        sms=SnsSms(base.sns, settings.sms_enabled),
        publisher=SnsTopic(base.sns, settings.escalation_topic_arn) if settings.escalation_topic_arn else None,
        clock=time.time,
    )


def reset() -> None:
    """Forget the wiring (tests and the local runtime change the environment between runs)."""
    get_settings.cache_clear()
    container.cache_clear()
    api.cache_clear()
    workflow.cache_clear()
