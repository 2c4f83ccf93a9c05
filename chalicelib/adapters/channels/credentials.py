"""A provider's access key (an id and a secret), kept out of the repository and the template: read from AWS
Secrets Manager (a secret) or SSM Parameter Store (a SecureString), both holding
`{"access_key_id": "...", "access_key_secret": "..."}`, and cached per container for a while."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

logger = logging.getLogger(__name__)

DEFAULT_TTL_S = 300.0


class AccessKeyUnavailableError(Exception):
    """The access key could not be read: the store failed or refused, or the value is not of the expected shape."""


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    access_key_secret: str = field(repr=False)

    @classmethod
    def from_json(cls, text: str, source: str) -> AccessKey:
        try:
            value = json.loads(text)
            key = cls(access_key_id=str(value["access_key_id"]), access_key_secret=str(value["access_key_secret"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise AccessKeyUnavailableError(
                f"{source}: expected JSON {{access_key_id, access_key_secret}} ({type(exc).__name__})"
            ) from None
        if not key.access_key_id or not key.access_key_secret:
            raise AccessKeyUnavailableError(f"{source}: an empty access_key_id or access_key_secret")
        return key


class AccessKeySource(Protocol):
    """Where a channel gets its access key (`CachedAccessKey`, or a fixed key in tests)."""

    def get(self) -> AccessKey:
        """The current key; AccessKeyUnavailableError when it cannot be read."""
        ...

    def invalidate(self) -> None:
        """The provider refused the key: read it again next time."""
        ...


def secrets_manager_reader(client: Any, secret_id: str) -> Callable[[], str]:
    """The current version of a Secrets Manager secret (`SecretString`), by ARN or name."""

    def read() -> str:
        return str(client.get_secret_value(SecretId=secret_id)["SecretString"])

    return read


def ssm_parameter_reader(client: Any, name: str) -> Callable[[], str]:
    """An SSM parameter's value, decrypted (a SecureString)."""

    def read() -> str:
        return str(client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])

    return read


class CachedAccessKey:
    """The access key, read at first use and again once `ttl_s` has passed (a rotated key is picked up within the
    TTL) or after `invalidate()` (the provider refused the key). When a refresh fails, the key read before is
    kept for another `retry_s` (a store's hiccup does not stop the texts); with no key read yet, the failure is
    raised as AccessKeyUnavailableError."""

    def __init__(
        self,
        read: Callable[[], str],
        source: str,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        retry_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._source = source
        self._ttl_s = ttl_s
        self._retry_s = retry_s
        self._clock = clock
        self._key: AccessKey | None = None
        self._fresh_until = 0.0

    def get(self) -> AccessKey:
        now = self._clock()
        if self._key is not None and now < self._fresh_until:
            return self._key
        try:
            key = AccessKey.from_json(self._read(), self._source)
        except Exception as exc:
            if self._key is None:
                if isinstance(exc, AccessKeyUnavailableError):
                    raise
                raise AccessKeyUnavailableError(f"{self._source}: {type(exc).__name__}: {exc}") from exc
            logger.warning(
                "access key refresh failed, keeping the one read before: %s",
                type(exc).__name__,
                extra={"source": self._source},
            )
            self._fresh_until = now + self._retry_s
            return self._key
        self._key = key
        self._fresh_until = now + self._ttl_s
        return key

    def invalidate(self) -> None:
        """Forget the key: the next `get` reads it again."""
        self._key = None
        self._fresh_until = 0.0


def access_key_source(
    client_factory: Callable[[str], Any],
    *,
    secret_id: str | None = None,
    parameter_name: str | None = None,
    ttl_s: float = DEFAULT_TTL_S,
) -> CachedAccessKey:
    """The cached access key from a Secrets Manager secret or an SSM parameter (exactly one of them);
    `client_factory(service)` builds the boto3 client (called once, here)."""
    if secret_id is not None and parameter_name is None:
        return CachedAccessKey(
            secrets_manager_reader(client_factory("secretsmanager"), secret_id), secret_id, ttl_s=ttl_s
        )
    if parameter_name is not None and secret_id is None:
        return CachedAccessKey(
            ssm_parameter_reader(client_factory("ssm"), parameter_name), parameter_name, ttl_s=ttl_s
        )
    raise ValueError("give exactly one of secret_id and parameter_name")
