"""The duty console's files (值守大屏, docs/console.md): plain ES modules, HTML and CSS in `chalicelib/console/`,
packaged with the app (Chalice zips all of `chalicelib/`) and served by the API's own routes, so the page and the
API share an origin (the API sends no CORS headers). The local platform serves them through the same routes.

No route here reads data or needs a token: the files are the same for everyone, and `config.json` says only what
every sign-in page shows anyway (the sign-in endpoint, the public app client's id, the API's base path)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib.api.console_route import PREFIX
from chalicelib.api.inputs import strong_etag
from chalicelib.settings import Settings

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console"
INDEX = "index.html"
CONFIG = "config.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
CACHE_CONTROL = "no-cache"
"""Every load revalidates (a deployment's new files show at once); an unchanged file is a 304 without a body."""


@dataclass(frozen=True)
class ConsoleFile:
    body: str
    content_type: str

    @property
    def etag(self) -> str:
        return strong_etag(self.body)


def console_file(name: str) -> ConsoleFile | None:
    """The console's file `name` (one path segment as the route captured it), or None: only the names listed in
    the directory with a served suffix, so `..`, an encoded slash or a Python file name nothing."""
    served = {path.name: path for path in CONSOLE_DIR.iterdir() if path.suffix in CONTENT_TYPES}
    found = served.get(name)
    if found is None:
        return None
    return ConsoleFile(found.read_text(encoding="utf-8"), CONTENT_TYPES[found.suffix])


def base_path(request_path: str, route_path: str) -> str:
    """The path the API is mounted under, from the path the caller used (API Gateway's `requestContext.path`:
    `/api/console/config.json` on the stage's own host, the base path mapping's on a custom domain, no prefix
    locally) and the route's own path."""
    path = request_path.rstrip("/")
    return path[: -len(route_path)] if path.endswith(route_path) else ""


def sign_in_endpoint(settings: Settings) -> str:
    """Where the page sends its unsigned Cognito calls (docs/mobile-app.md 2) when the issuer is a Cognito user
    pool: its region's endpoint, moto's server locally. Empty when the issuer is another OIDC provider (the China
    regions): the page then signs in at the provider's own page (the authorization code flow with PKCE)."""
    issuer = urlsplit(settings.cognito_issuer)
    if not (issuer.hostname or "").startswith("cognito-idp."):
        return ""
    if settings.aws_endpoint_url:
        return settings.aws_endpoint_url.rstrip("/") + "/"
    return f"{issuer.scheme}://{issuer.netloc}/"


def console_config(settings: Settings, api_base: str) -> dict[str, str]:
    """`config.json`: what the page needs besides its files."""
    return {
        "auth_endpoint": sign_in_endpoint(settings),
        "issuer": settings.cognito_issuer,
        "client_id": settings.cognito_client_id,
        "api_base": api_base,
    }


def served(name: str, request_path: str, settings: Settings) -> ConsoleFile | None:
    """What `GET /console/{name}` answers: `config.json` made for this stage and mount, or one of the files."""
    if name != CONFIG:
        return console_file(name)
    config = console_config(settings, base_path(request_path, f"{PREFIX}/{CONFIG}"))
    return ConsoleFile(json.dumps(config, separators=(",", ":")), "application/json; charset=utf-8")
