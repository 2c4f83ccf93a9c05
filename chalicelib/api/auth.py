"""Token verification: ID tokens (RS256 JWT) of a Cognito user pool or of any OIDC provider that issues the same
claims, checked against the provider's JWKS.

One path on AWS and locally: on AWS the JWKS is the pool's `/.well-known/jwks.json`; locally the pool lives in
moto's server, which signs real tokens and serves its JWKS the same way; in the China regions, where Cognito user
pools are not offered, the deployer's OIDC provider (docs/api.md "The token contract"). Role and scope come from
the token's groups and custom attributes, never from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWKClient

from chalicelib.domain.errors import DomainError

ALGORITHMS = ("RS256",)
"""The only signature algorithm accepted; the key is the JWKS key named by the token header's `kid`."""
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub")
TOKEN_USE_CLAIM = "token_use"
TOKEN_USE = "id"
"""`token_use` must say `id`: an access token (Cognito's say `access`) is refused."""
LEEWAY_S = 30.0
"""Clock skew allowed on `exp`, `iat` and `nbf`."""


class Unauthorized(DomainError):  # noqa: N818 - named after the HTTP status, like its siblings
    http_status = 401


@dataclass(frozen=True)
class TokenVerifier:
    issuer: str
    audience: str
    jwks_url: str
    leeway_s: float = LEEWAY_S

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
        if claims.get(TOKEN_USE_CLAIM) != TOKEN_USE:
            raise Unauthorized("invalid_token", "身份令牌无效")
        return claims

    def _decode(self, token: str, key: Any, verify_exp: bool = True) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=list(ALGORITHMS),
            audience=self.audience,
            issuer=self.issuer,
            leeway=self.leeway_s,
            options={"require": list(REQUIRED_CLAIMS), "verify_exp": verify_exp},
        )
        return claims

    def _genuine_but_expired(self, token: str, key: Any) -> None:
        """`token_expired` only for a token that passes every other check (refreshing helps only then)."""
        try:
            claims = self._decode(token, key, verify_exp=False)
        except jwt.PyJWTError as exc:
            raise Unauthorized("invalid_token", "身份令牌无效") from exc
        if claims.get(TOKEN_USE_CLAIM) != TOKEN_USE:
            raise Unauthorized("invalid_token", "身份令牌无效")
