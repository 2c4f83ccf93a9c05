"""Token verification: Cognito user-pool ID tokens (RS256 JWT), checked against the pool's JWKS.

One path on AWS and locally: on AWS the JWKS is the pool's `/.well-known/jwks.json`; locally the pool lives in
moto's server, which signs real tokens and serves its JWKS the same way. Role and scope come from the token's
groups and custom attributes, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient

from chalicelib.domain.errors import DomainError


class Unauthorized(DomainError):  # noqa: N818 - named after the HTTP status, like its siblings
    http_status = 401


@dataclass(frozen=True)
class TokenVerifier:
    issuer: str
    audience: str
    jwks_url: str
    leeway_s: float = 30.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "_jwks", PyJWKClient(self.jwks_url, cache_keys=True, lifespan=3600))

    def claims(self, authorization: str | None) -> dict[str, Any]:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise Unauthorized("unauthenticated", "未登录，请先登录")
        token = authorization.split(" ", 1)[1].strip()
        try:
            key = self._jwks.get_signing_key_from_jwt(token)  # type: ignore[attr-defined]
            claims = self._decode(token, key.key)
        except jwt.ExpiredSignatureError as exc:
            self._genuine_but_expired(token, key.key)
            raise Unauthorized("token_expired", "登录已过期，请重新登录") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid_token", "身份令牌无效") from exc
        if claims.get("token_use") != "id":
            raise Unauthorized("invalid_token", "身份令牌无效")
        return claims

    def _decode(self, token: str, key: Any, verify_exp: bool = True) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_s,
            options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": verify_exp},
        )
        return claims

    def _genuine_but_expired(self, token: str, key: Any) -> None:
        """`token_expired` only for a token that passes every other check (refreshing helps only then)."""
        try:
            claims = self._decode(token, key, verify_exp=False)
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid_token", "身份令牌无效") from exc
        if claims.get("token_use") != "id":
            raise Unauthorized("invalid_token", "身份令牌无效")
