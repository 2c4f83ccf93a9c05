"""The duty console where the stage trusts another OIDC provider instead of Cognito (the China regions;
docs/console.md "Deployment", docs/api.md "The token contract"), in headless Chromium: `config.json` names no
Cognito endpoint, the page sends the officer to the provider's sign-in page (authorization code flow with PKCE),
takes the code back, exchanges it for an ID token the API accepts, and comes back to the page and filters it was
opened with; a reload keeps the tab signed in through the refresh token grant; a forged code is refused. The
provider is a minimal one (`oidc_provider.py`).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.runtime import LocalPlatform
from tests.e2e import test_console_wall as first_slice
from tests.e2e.oidc_provider import OidcProvider
from tests.e2e.platform import running_platform

pytestmark = [pytest.mark.e2e]

browser = first_slice.browser
API_TIMEOUT_S = first_slice.API_TIMEOUT_S
OFFICER = {"cognito:groups": ["duty"], "cognito:username": "duty-oidc-01", "name": "值守员 王芳"}


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    running = OidcProvider(OFFICER)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def platform(provider: OidcProvider) -> Iterator[LocalPlatform]:
    overrides = {"DYJ_COGNITO_ISSUER": provider.issuer, "DYJ_COGNITO_JWKS_URL": provider.jwks_url}
    with running_platform(env_overrides=overrides) as running:
        yield running


def test_the_officer_signs_in_at_the_provider_and_stays_signed_in(
    platform: LocalPlatform, provider: OidcProvider, browser: Any
) -> None:
    with urllib.request.urlopen(f"{platform.api_url}/console/config.json", timeout=30) as answer:
        config = json.loads(answer.read())
    assert config["auth_endpoint"] == "" and config["issuer"] == provider.issuer

    page = browser.new_page(viewport={"width": 1500, "height": 600}, locale="zh-CN")
    page.goto(f"{platform.api_url}/console/#/wall?level=red")
    submit = "#sign-in-form button[type=submit]"
    page.wait_for_selector(f"{submit}:text('统一身份认证登录')")
    assert page.is_hidden("#password")
    page.click(submit)

    page.wait_for_selector("#console:not([hidden])", timeout=API_TIMEOUT_S * 1000)
    assert "值守员 王芳" in page.inner_text("#who") and "值守中心" in page.inner_text("#who")
    assert page.url == f"{platform.api_url}/console/index.html#/wall?level=red"  # the code left the address
    page.wait_for_selector('#filters [data-field="level"] [data-value="red"][aria-pressed="true"]')
    grants = [request["grant_type"] for request in provider.token_requests]
    assert grants == ["authorization_code"]

    page.reload()  # the tab stays signed in: the refresh token grant, no second visit to the provider
    page.wait_for_selector("#console:not([hidden])", timeout=API_TIMEOUT_S * 1000)
    assert [request["grant_type"] for request in provider.token_requests] == [*grants, "refresh_token"]
    page.close()


def test_a_code_that_does_not_match_the_flow_is_refused(platform: LocalPlatform, browser: Any) -> None:
    page = browser.new_page(locale="zh-CN")
    page.goto(f"{platform.api_url}/console/index.html?code=forged&state=forged")
    page.wait_for_selector("#sign-in:not([hidden])", timeout=API_TIMEOUT_S * 1000)
    page.wait_for_function("() => document.getElementById('sign-in-error').textContent !== ''")
    assert page.inner_text("#sign-in-error") == "登录已过期或来源不明，请重新登录"
    assert page.is_hidden("#console")
    page.close()
