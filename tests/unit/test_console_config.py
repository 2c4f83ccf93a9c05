"""The console's `config.json` (chalicelib/api/console.py): where the page signs in and where the API is, for the
stage's settings and wherever the API is mounted."""

from __future__ import annotations

import pytest

from chalicelib.api.console import base_path, console_config, console_file
from chalicelib.settings import Settings

ISSUER = "https://cognito-idp.cn-north-1.amazonaws.com/cn-north-1_Abc"


@pytest.mark.parametrize(
    ("request_path", "expected"),
    [
        ("/api/console/config.json", "/api"),  # the stage's own host: the stage is the base path
        ("/dyj/v1/console/config.json", "/dyj/v1"),  # a custom domain's base path mapping
        ("/console/config.json", ""),  # the local server, or a mapping at the root
        ("", ""),
    ],
)
def test_the_api_base_is_where_the_config_was_asked_for(request_path: str, expected: str) -> None:
    assert base_path(request_path, "/console/config.json") == expected


def test_a_cognito_stage_signs_in_at_its_regions_endpoint() -> None:
    settings = Settings(cognito_issuer=ISSUER, cognito_client_id="app", aws_endpoint_url=None)
    config = console_config(settings, "/api")
    assert config == {
        "auth_endpoint": "https://cognito-idp.cn-north-1.amazonaws.com/",
        "issuer": ISSUER,
        "client_id": "app",
        "api_base": "/api",
    }


def test_locally_the_page_signs_in_at_moto_and_with_another_provider_at_its_page() -> None:
    local = Settings(aws_endpoint_url="http://127.0.0.1:5000", cognito_issuer=ISSUER, cognito_client_id="app")
    assert console_config(local, "")["auth_endpoint"] == "http://127.0.0.1:5000/"
    for endpoint in (None, "http://127.0.0.1:5000"):  # a provider of its own, deployed or local
        oidc = Settings(aws_endpoint_url=endpoint, cognito_issuer="https://sso.example.cn/realms/dyj")
        assert console_config(oidc, "/api")["auth_endpoint"] == ""  # the page goes to the issuer's own page


def test_only_the_directorys_own_files_are_served() -> None:
    assert console_file("index.html") is not None
    for name in ("..", "../app.py", "..%2Fapp.py", "__init__.py", "missing.js", ""):
        assert console_file(name) is None, name
