"""One settings model, built from the environment once per container and validated (ARCHITECTURE.md).

Every field is read from `DYJ_<FIELD>` (pydantic-settings, case-insensitive), except:
- `region`: `DYJ_REGION`, else Lambda's own `AWS_REGION`;
- `aws_endpoint_url`: `DYJ_AWS_ENDPOINT_URL`, else `AWS_ENDPOINT_URL` (moto's server locally; unset on AWS);
- `policy`: the JSON object in `DYJ_POLICY_JSON`, or in the file named by `DYJ_POLICY_FILE` (the file wins).
A value that does not fit its field (an unknown stage, a negative timeout, a policy that is not a JSON object, a
policy file that cannot be read) stops the container at start with an error naming the variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

Stage = Literal["dev", "test", "prod", "local"]
ENV_PREFIX = "DYJ_"

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("dyj_settings_environ", default=None)


class _Environment(EnvSettingsSource):
    """The process environment, or the mapping `Settings.from_env` was given."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        environ = _ENVIRON.get()
        if environ is None:
            return super()._load_env_vars()
        return parse_env_vars(environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_default=True,
    )

    stage: Stage = "dev"
    region: str = Field(
        default="ap-northeast-1", min_length=1, validation_alias=AliasChoices("DYJ_REGION", "AWS_REGION", "region")
    )
    aws_endpoint_url: str | None = Field(  # moto's server locally; None on AWS
        default=None,
        validation_alias=AliasChoices("DYJ_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL", "aws_endpoint_url"),
    )
    table_device_state: str = "dayingji-dev-device-state"
    table_unit_state: str = "dayingji-dev-unit-state"
    table_registry: str = "dayingji-dev-registry"
    table_warning: str = "dayingji-dev-warning"
    table_warning_event: str = "dayingji-dev-warning-event"
    table_quarantine: str = "dayingji-dev-quarantine"
    warning_topic_arn: str = ""
    escalation_topic_arn: str = ""
    device_stream: str = "dayingji-dev-devices"
    state_flush_s: float = Field(default=300.0, ge=0)  # coalesce watermark-only state writes per device
    state_touch_s: float = Field(default=7200.0, ge=0)  # a device's stored last_seen at most this far behind
    quarantine_ttl_days: int = Field(default=90, ge=1)
    sms_enabled: bool = True
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""  # the app client: the `aud` of the ID tokens the API accepts
    cognito_issuer: str = ""  # https://cognito-idp.{region}.amazonaws.com/{pool id}
    cognito_jwks_url: str = ""  # {issuer}/.well-known/jwks.json on AWS; moto's server serves it locally
    evidence_bucket: str = ""  # photos attached to warnings (presigned uploads)
    evaluation_bucket: str = (
        ""  # evaluation reports (evaluations/{kind}/{label}/report.{json,xlsx,html}), versioned
    )
    quarantine_bucket: str = ""  # quarantined payloads too large for their row (prefix quarantine/)
    disposal_state_machine_arn: str = ""  # one execution per warning follows its deadlines (empty: not followed)
    queue_workflow_events: str = ""  # the disposal timers report due versions here
    queue_delivery: str = ""  # delivery jobs (messages for people): the ingest and the workflow enqueue here
    queue_evaluation: str = ""  # on-demand evaluation runs (POST /evaluations) for the evaluate_requested function
    delivery_lease_s: float = Field(default=120.0, gt=0)  # a delivery claim older than this is taken over
    # SMS (docs/sms-channels.md): SNS direct publish (regions with SNS SMS, moto locally) or Alibaba Cloud (China)
    sms_provider: Literal["sns", "aliyun"] = "sns"
    aliyun_sms_sign_name: str = ""  # the approved signature, without 【】
    aliyun_sms_templates: Annotated[dict[str, Any], NoDecode] = Field(default_factory=dict)  # JSON: id -> template
    aliyun_sms_endpoint: str = "dysmsapi.aliyuncs.com"
    aliyun_sms_region_id: str = "cn-hangzhou"
    aliyun_sms_connect_timeout_ms: int = Field(default=2000, ge=1)
    aliyun_sms_read_timeout_ms: int = Field(default=5000, ge=1)
    aliyun_sms_access_key_secret_id: str | None = None  # Secrets Manager secret holding the access key JSON
    aliyun_sms_access_key_parameter: str | None = None  # or an SSM SecureString parameter (exactly one of the two)
    # AWS clients (docs/operations.md "Retries and timeouts"): botocore standard retry mode for every boto3 client
    aws_max_attempts: int = Field(default=3, ge=1, le=10)  # attempts in all, the first included
    aws_connect_timeout_s: float = Field(default=2.0, gt=0, le=60)
    aws_read_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # PynamoDB (every table model): retries after the first attempt, and its own timeouts
    dynamo_max_retry_attempts: int = Field(default=3, ge=0, le=10)
    dynamo_connect_timeout_s: float = Field(default=2.0, gt=0, le=60)
    dynamo_read_timeout_s: float = Field(default=5.0, gt=0, le=60)
    policy: Annotated[dict[str, Any], NoDecode] = Field(  # overrides merged over chalicelib.domain.policy defaults
        default_factory=dict, validation_alias=AliasChoices("DYJ_POLICY_JSON", "policy")
    )
    policy_file: Path | None = None  # DYJ_POLICY_FILE: the policy document in a file (wins over DYJ_POLICY_JSON)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment; no dotenv file or secrets directory (a stage sets its variables in
        .chalice/config.json and infra/)."""
        return init_settings, _Environment(settings_cls)

    @model_validator(mode="before")
    @classmethod
    def _policy_file_wins(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("policy_file"):
            path = Path(str(data["policy_file"]))
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"DYJ_POLICY_FILE {path}: {type(exc).__name__}: {exc}") from exc
            data = {key: value for key, value in data.items() if key not in {"DYJ_POLICY_JSON", "policy"}}
            data["policy"] = document
        return data

    @field_validator("aliyun_sms_templates", mode="before")
    @classmethod
    def _templates_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ValueError(f"DYJ_ALIYUN_SMS_TEMPLATES is not JSON: {exc}") from exc
        return value

    @model_validator(mode="after")
    def _aliyun_configured(self) -> Settings:
        if self.sms_provider == "aliyun":
            if not self.aliyun_sms_sign_name or not self.aliyun_sms_templates:
                raise ValueError("sms_provider aliyun needs DYJ_ALIYUN_SMS_SIGN_NAME and DYJ_ALIYUN_SMS_TEMPLATES")
            if (self.aliyun_sms_access_key_secret_id is None) == (self.aliyun_sms_access_key_parameter is None):
                raise ValueError(
                    "sms_provider aliyun needs exactly one of DYJ_ALIYUN_SMS_ACCESS_KEY_SECRET_ID and "
                    "DYJ_ALIYUN_SMS_ACCESS_KEY_PARAMETER"
                )
        return self

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError as exc:
                raise ValueError(f"DYJ_POLICY_JSON is not JSON: {exc}") from exc
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """From `environ` (default: the process environment) alone."""
        with _reading(os.environ if environ is None else environ):
            return cls()


@contextmanager
def _reading(environ: Mapping[str, str]) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
