"""The duty console's static files (this directory: plain ES modules, no build step), served by the local
platform's API server under `/console/` (`python -m local.run`), so the page calls the API on its own origin.

`/console/config.json` tells the page where to sign in (the local Cognito: moto's server) and its app client id;
it is made from the app's environment, as a deployment would write it next to the files."""

from __future__ import annotations

import json
import mimetypes
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from local.api_gateway import EmulatedRequestHandler

CONSOLE_DIR = Path(__file__).resolve().parent
PREFIX = "/console/"
_TYPES = {".js": "text/javascript; charset=utf-8", ".html": "text/html; charset=utf-8", ".css": "text/css"}


def console_file(path: str) -> Path | None:
    """The file a `/console/...` request path names, or None (outside the directory, missing, or Python)."""
    relative = unquote(urlsplit(path).path)[len(PREFIX) :] or "index.html"
    candidate = (CONSOLE_DIR / relative).resolve()
    if not candidate.is_relative_to(CONSOLE_DIR) or not candidate.is_file() or candidate.suffix == ".py":
        return None
    return candidate


def console_config() -> dict[str, str]:
    """What the page needs besides its files: the sign-in endpoint, the app client id, the API's base path."""
    return {
        "auth_endpoint": os.environ["AWS_ENDPOINT_URL"].rstrip("/") + "/",
        "client_id": os.environ["DYJ_COGNITO_CLIENT_ID"],
        "api_base": "",  # the local server has the routes at the root (deployed: the stage's "/api")
    }


class ConsoleRequestHandler(EmulatedRequestHandler):
    """The API's routes as the emulated gateway answers them, and the console's files under `/console/`."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == PREFIX.rstrip("/"):
            self._answer(301, b"", "text/plain", {"Location": PREFIX})
        elif urlsplit(self.path).path == PREFIX + "config.json":
            self._answer(200, json.dumps(console_config()).encode(), "application/json")
        elif self.path.startswith(PREFIX):
            found = console_file(self.path)
            if found is None:
                self._answer(404, "未找到该页面".encode(), "text/plain; charset=utf-8")
            else:
                kind = (
                    _TYPES.get(found.suffix) or mimetypes.guess_type(found.name)[0] or "application/octet-stream"
                )
                self._answer(200, found.read_bytes(), kind)
        else:
            self._generic_handle()

    def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
