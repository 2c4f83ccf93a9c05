"""The one factory of the production boto3 clients, and the PynamoDB connection settings (docs/operations.md
"Retries and timeouts").

Every client retries in botocore's `standard` mode (throttling and transient errors, exponential backoff with
jitter, a retry quota per client) with `settings.aws_max_attempts` attempts in all, and gives up on a connection
after `aws_connect_timeout_s` and on a silent socket after `aws_read_timeout_s`: a Lambda invocation never hangs
for botocore's 60-second defaults on a dead endpoint. boto3 is imported on the first call, not at module import.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chalicelib.settings import Settings

if TYPE_CHECKING:
    from botocore.config import Config

RETRY_MODE = "standard"


def client_config(settings: Settings, **extra: Any) -> Config:
    """The botocore configuration every production client is built with; `extra` adds per-service options."""
    from botocore.config import Config

    return Config(
        retries={"mode": RETRY_MODE, "total_max_attempts": settings.aws_max_attempts},
        connect_timeout=settings.aws_connect_timeout_s,
        read_timeout=settings.aws_read_timeout_s,
        **extra,
    )


def client(service: str, settings: Settings, **extra: Any) -> Any:
    """A boto3 client of `service` in the settings' region and endpoint (moto's server locally)."""
    import boto3  # heavy: only when a handler first needs AWS

    return boto3.client(
        service,
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint_url,
        config=client_config(settings, **extra),
    )


def s3(settings: Settings) -> Any:
    """S3 with SigV4 and path-style addresses (presigned URLs that work on AWS China and on moto alike)."""
    return client("s3", settings, signature_version="s3v4", s3={"addressing_style": "path"})


_sessions = threading.local()


def shared_botocore_session() -> Any:
    """One botocore session per thread for every PynamoDB connection. PynamoDB gives each model (each table) a
    session of its own, and each session parses botocore's endpoint rules and the DynamoDB service model again:
    tens of ms of CPU per table on a cold start (bench/coldstart.py). Per thread, because botocore's client
    creation is not thread-safe (PynamoDB keeps its sessions per thread for the same reason)."""
    session = getattr(_sessions, "session", None)
    if session is None:
        from botocore.session import get_session

        session = _sessions.session = get_session()
    return session


def share_pynamodb_sessions() -> None:
    """Make PynamoDB's connections take `shared_botocore_session` (it calls `get_session` when a connection
    first needs a session, i.e. once per model per thread)."""
    from pynamodb.connection import base

    base.get_session = shared_botocore_session  # type: ignore[attr-defined]


def dynamo_meta(settings: Settings) -> dict[str, Any]:
    """What every PynamoDB model's `Meta` takes from the settings (PynamoDB builds a botocore client from them,
    in standard retry mode with `1 + max_retry_attempts` attempts in all)."""
    return {
        "region": settings.region,
        "host": settings.aws_endpoint_url,
        "max_retry_attempts": settings.dynamo_max_retry_attempts,
        "connect_timeout_seconds": settings.dynamo_connect_timeout_s,
        "read_timeout_seconds": settings.dynamo_read_timeout_s,
    }
