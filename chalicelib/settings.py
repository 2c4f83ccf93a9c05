"""One settings model, built from the environment once per container and validated (ARCHITECTURE.md)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Stage = Literal["dev", "test", "prod", "local"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    stage: Stage = "dev"
    region: str = "ap-northeast-1"
    aws_endpoint_url: str | None = None  # moto's server locally; None on AWS
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
    quarantine_ttl_days: int = Field(default=90, ge=1)
    sms_enabled: bool = True
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""  # the app client: the `aud` of the ID tokens the API accepts
    cognito_issuer: str = ""  # https://cognito-idp.{region}.amazonaws.com/{pool id}
    cognito_jwks_url: str = ""  # {issuer}/.well-known/jwks.json on AWS; moto's server serves it locally
    evidence_bucket: str = ""  # photos attached to warnings (presigned uploads)
    quarantine_bucket: str = ""  # quarantined payloads too large for their row (prefix quarantine/)
    disposal_state_machine_arn: str = ""  # one execution per warning follows its deadlines (empty: not followed)
    queue_workflow_events: str = ""  # the disposal timers report due versions here
    policy: dict[str, Any] = Field(default_factory=dict)  # overrides merged over chalicelib.domain.policy defaults

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            key = f"DYJ_{name.upper()}"
            if key in env and name != "policy":
                values[name] = env[key]
        if "AWS_ENDPOINT_URL" in env and "aws_endpoint_url" not in values:
            values["aws_endpoint_url"] = env["AWS_ENDPOINT_URL"]
        if "AWS_REGION" in env and "region" not in values:
            values["region"] = env["AWS_REGION"]
        policy_text = env.get("DYJ_POLICY_JSON")
        policy_file = env.get("DYJ_POLICY_FILE")
        if policy_file:
            policy_text = Path(policy_file).read_text(encoding="utf-8")
        if policy_text:
            values["policy"] = json.loads(policy_text)
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
