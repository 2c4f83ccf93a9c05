"""A minimal OIDC provider for the console's sign-in where the stage trusts one instead of Cognito (the China
regions, docs/api.md "The token contract"): discovery, an authorization endpoint that signs one configured user in
at once (no login page) and answers with a code, a token endpoint (authorization code with PKCE S256, refresh
token) issuing RS256 ID tokens with the contract's claims, and its JWKS. CORS open, as a provider configured with
the console's origin would answer. Test-only: no consent, no client registry, codes and refresh tokens in memory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

KEY_ID = "test-oidc-1"


class OidcProvider:
    def __init__(self, claims: dict[str, Any]) -> None:
        """`claims`: the signed-in user's claims beside the standard ones (`cognito:groups`, `name`…)."""
        self.claims = claims
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes: dict[str, dict[str, str]] = {}  # code -> client_id, redirect_uri, code_challenge
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> client_id
        self.token_requests: list[dict[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc", daemon=True)
        self._thread.start()

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def id_token(self, client_id: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": client_id,
            "sub": str(self.claims.get("cognito:username", "user")),
            "iat": now,
            "exp": now + 3600,
            "token_use": "id",
            **self.claims,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KEY_ID})

    def _jwks(self) -> dict[str, Any]:
        public = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        client_id = form.get("client_id", "")
        if form.get("grant_type") == "authorization_code":
            issued = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if (
                issued is None
                or issued["client_id"] != client_id
                or issued["redirect_uri"] != form.get("redirect_uri")
                or issued["code_challenge"] != challenge
            ):
                return 400, {"error": "invalid_grant"}
        elif form.get("grant_type") == "refresh_token":
            if self.refresh_tokens.get(form.get("refresh_token", "")) != client_id:
                return 400, {"error": "invalid_grant"}
        else:
            return 400, {"error": "unsupported_grant_type"}
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = client_id
        answer = {"id_token": self.id_token(client_id), "token_type": "Bearer", "expires_in": 3600}
        return 200, {**answer, "refresh_token": refresh, "access_token": secrets.token_urlsafe(24)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {name: values[0] for name, values in parse_qs(url.query).items()}
                if url.path == "/.well-known/openid-configuration":
                    self._json(
                        200,
                        {
                            "issuer": provider.issuer,
                            "authorization_endpoint": f"{provider.issuer}/authorize",
                            "token_endpoint": f"{provider.issuer}/token",
                            "jwks_uri": provider.jwks_url,
                            "code_challenge_methods_supported": ["S256"],
                        },
                    )
                elif url.path == "/jwks":
                    self._json(200, provider._jwks())
                elif url.path == "/authorize":
                    if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
                        answer = {"error": "invalid_request", "state": query.get("state", "")}
                    else:
                        code = secrets.token_urlsafe(16)
                        provider.codes[code] = {
                            "client_id": query.get("client_id", ""),
                            "redirect_uri": query.get("redirect_uri", ""),
                            "code_challenge": query["code_challenge"],
                        }
                        answer = {"code": code, "state": query.get("state", "")}
                    self.send_response(302)
                    self.send_header("Location", f"{query.get('redirect_uri', '')}?{urlencode(answer)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = {name: values[0] for name, values in parse_qs(self.rfile.read(length).decode()).items()}
                if urlsplit(self.path).path == "/token":
                    self._json(*provider._token(form))
                else:
                    self._json(404, {"error": "not_found"})

        return Handler
