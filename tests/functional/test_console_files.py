"""The duty console served by the app's own routes (docs/console.md "Deployment"), as the packaged API serves it:
the page, its modules and `config.json` made from the stage's settings, with content types and ETags, no token
needed and nothing but the console's own files reachable.

No AWS is needed: the routes read files and settings only (the settings of a deployed Cognito stage here).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from chalice.test import Client

from chalicelib.bootstrap import reset
from local.api_gateway import emulate_gateway

PROJECT_DIR = Path(__file__).resolve().parents[2]
CONSOLE_DIR = PROJECT_DIR / "chalicelib" / "console"
REGION = "cn-north-1"
POOL = f"{REGION}_Console1"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
CLIENT_ID = "console-test-client"


@dataclass(frozen=True)
class Got:
    status: int
    headers: dict[str, str]
    text: str

    def header(self, name: str) -> str:
        return next((value for key, value in self.headers.items() if key.lower() == name.lower()), "")


Get = Callable[..., Got]


@pytest.fixture(scope="module")
def get() -> Iterator[Get]:
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_ENDPOINT_URL", "DYJ_AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        env.setenv("DYJ_COGNITO_USER_POOL_ID", POOL)
        env.setenv("DYJ_COGNITO_ISSUER", ISSUER)
        env.setenv("DYJ_COGNITO_CLIENT_ID", CLIENT_ID)
        env.setenv("POWERTOOLS_METRICS_DISABLED", "true")
        reset()
        from app import app

        with Client(app, stage_name="test", project_dir=str(PROJECT_DIR)) as client:
            emulate_gateway(client)

            def request(path: str, headers: dict[str, str] | None = None) -> Got:
                response = client.http.request("GET", path, headers=headers or {})
                return Got(response.status_code, dict(response.headers), response.body.decode("utf-8"))

            yield request
    reset()


def test_the_entry_leads_to_the_page(get: Get) -> None:
    for entry in ("/console", "/console/"):
        answer = get(entry)
        assert answer.status == 301 and answer.header("Location") == "/console/index.html", entry


def test_the_page_a_module_and_the_stylesheet_are_served_with_their_types(get: Get) -> None:
    page = get("/console/index.html")
    assert page.status == 200 and page.header("Content-Type") == "text/html; charset=utf-8"
    assert "值守大屏" in page.text and '<script type="module" src="./app.js">' in page.text
    module = get("/console/api.js")
    assert module.status == 200 and module.header("Content-Type") == "text/javascript; charset=utf-8"
    assert module.text == (CONSOLE_DIR / "api.js").read_text(encoding="utf-8")
    assert "export class Api" in module.text
    style = get("/console/style.css")
    assert style.status == 200 and style.header("Content-Type") == "text/css; charset=utf-8"


def test_an_unchanged_file_is_a_304_and_every_load_revalidates(get: Get) -> None:
    first = get("/console/wall.js")
    tag = first.header("ETag")
    assert tag.startswith('"') and first.header("Cache-Control") == "no-cache"
    again = get("/console/wall.js", {"If-None-Match": tag})
    assert again.status == 304 and again.text == "" and again.header("ETag") == tag
    other = get("/console/map.js", {"If-None-Match": tag})
    assert other.status == 200 and other.header("ETag") != tag


def test_config_is_made_from_the_stages_settings(get: Get) -> None:
    answer = get("/console/config.json")
    assert answer.status == 200 and answer.header("Content-Type") == "application/json; charset=utf-8"
    assert answer.header("ETag") and answer.header("Cache-Control") == "no-cache"
    assert json.loads(answer.text) == {
        "auth_endpoint": f"https://cognito-idp.{REGION}.amazonaws.com/",
        "issuer": ISSUER,
        "client_id": CLIENT_ID,
        "api_base": "",  # the test client has no stage prefix; deployed "/api": tests/unit/test_console_config.py
    }


@pytest.mark.parametrize(
    "path",
    [
        "/console/..%2Fapp.py",
        "/console/..%2F..%2Fapp.py",
        "/console/%2E%2E%2Fsettings.py",
        "/console/..%5Capp.py",
        "/console/..",
        "/console/__init__.py",
        "/console/missing.js",
        "/console/console.py",
    ],
)
def test_nothing_but_the_consoles_files_is_reachable(get: Get, path: str) -> None:
    answer = get(path)
    assert answer.status == 404 and answer.header("Content-Type").startswith("application/json")
    assert json.loads(answer.text) == {"code": "route_not_found", "message": "接口不存在"}


def test_a_path_through_parent_directories_matches_no_route(get: Get) -> None:
    answer = get("/console/../app.py")
    assert answer.status == 404 and json.loads(answer.text)["message"] == "接口不存在"
