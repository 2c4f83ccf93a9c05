"""API Gateway's own answers as the deployed stage should configure them (gateway responses), for Chalice's local
server and test client.

Chalice's local gateway answers a path no route has like a bare API Gateway: 403 `{"message": "Missing
Authentication Token"}`. With the gateway response `MISSING_AUTHENTICATION_TOKEN` set to 404 and the API's error
body (docs/api.md "Error codes", `route_not_found`), the deployed API says 404 in the API's shape; this module
makes the local runtime and the tests say the same. (This app has no Chalice authorizers, so the local gateway's
`ForbiddenError` can only mean "no such route".)
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    ForbiddenError,
    LocalDevServer,
    LocalGateway,
    LocalGatewayException,
)

from chalicelib.api.errors import JSON_HEADERS, catalogued_body


class RouteNotFound(LocalGatewayException):
    CODE = 404


class EmulatedGateway(LocalGateway):
    """Chalice's local gateway with the deployed stage's gateway responses."""

    def handle_request(self, method: str, path: str, headers: Any, body: bytes | None) -> Any:
        try:
            return super().handle_request(method, path, headers, body)
        except ForbiddenError as exc:
            text = json.dumps(catalogued_body("route_not_found"), ensure_ascii=False, separators=(",", ":"))
            raise RouteNotFound(dict(JSON_HEADERS), text.encode("utf-8")) from exc


class EmulatedRequestHandler(ChaliceRequestHandler):
    def __init__(
        self,
        request: bytes,
        client_address: tuple[str, int],
        server: HTTPServer,
        app_object: Chalice,
        config: Config,
    ) -> None:
        self.local_gateway = EmulatedGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)  # type: ignore[arg-type]


def local_server(
    app_object: Chalice,
    config: Config,
    host: str = "127.0.0.1",
    port: int = 0,
    handler: type[EmulatedRequestHandler] = EmulatedRequestHandler,
) -> LocalDevServer:
    """Chalice's local server (real HTTP) with the deployed stage's gateway responses (`handler`)."""
    return LocalDevServer(app_object, config, host, port, handler_cls=handler)


def emulate_gateway(test_client: Any) -> None:
    """Give a `chalice.test.Client`'s HTTP client the deployed stage's gateway responses."""
    http = test_client.http
    http._local_gateway = EmulatedGateway(http._app, http._config)
