"""docs/mobile-app.md, step by step, as a mobile app does it: the guide's marked examples
(`<!-- example: name -->`) are sent as written, placeholders filled in, to the local Cognito (moto's server; plain
unsigned HTTP calls with `X-Amz-Target`) and to the API (Chalice's test client), and the answers have the fields
the guide shows.

Then the local sign-in (`local.users`) the demo's people use, and the token checker for OIDC providers.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import pytest
from moto.utilities.utils import load_resource

from chalicelib.domain.lifecycle import Role
from chalicelib.services.ports import NewUser
from local.actors import ApiClient, ApiResponse
from local.users import DEMO_PASSWORD, SignedIn, SignInError, directory, session_for, sign_in
from scripts import check_token
from tests.functional.api_fixtures import Answer, ApiEnv, Http, api_env, http, raise_warning, recover

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "mobile-app.md"
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```http\n(.*?)\n```", re.S)
PLACEHOLDER = re.compile(r"<([a-z][a-z -]*)>")
API_BASE_PATH = "/api"  # the deployed stage's base path; the local API serves the routes without it

REPLAYED = {
    "sign-in",
    "sign-in-answer",
    "new-password-challenge",
    "new-password",
    "refresh",
    "refresh-answer",
    "wrong-password-answer",
    "me",
    "me-answer",
    "open-warnings",
    "acknowledge",
    "verify",
    "start-disposal",
    "request-clear",
    "evidence",
    "evidence-answer",
    "token-expired-answer",
}

NEW_USER = "mobile-e-hc-02"
ENTERPRISE = "E-HC-02"
TEMPORARY_PASSWORD = "Temporary-Pass-2025"
NEW_PASSWORD = "Chosen-Mobile-2025"


@dataclass(frozen=True)
class Example:
    """One HTTP message of the guide: a request (`POST / HTTP/1.1`) or an answer (`HTTP/1.1 200 OK`)."""

    start_line: str
    headers: dict[str, str]
    body: str

    @property
    def status(self) -> int:
        return int(self.start_line.split()[1])

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def filled(self, values: Mapping[str, str]) -> Example:
        def value(match: re.Match[str]) -> str:
            assert match.group(1) in values, f"the guide's placeholder <{match.group(1)}> has no value in the test"
            return values[match.group(1)]

        return Example(
            PLACEHOLDER.sub(value, self.start_line),
            {name: PLACEHOLDER.sub(value, text) for name, text in self.headers.items()},
            PLACEHOLDER.sub(value, self.body),
        )


@cache
def examples() -> dict[str, Example]:
    found: dict[str, Example] = {}
    for name, text in EXAMPLE.findall(GUIDE.read_text(encoding="utf-8")):
        head, _, body = text.partition("\n\n")
        start_line, *header_lines = head.splitlines()
        headers = dict(line.split(": ", 1) for line in header_lines)
        found[name] = Example(start_line, headers, body.strip())
    return found


def example(name: str) -> Example:
    assert name in REPLAYED, f"add {name} to REPLAYED"
    return examples()[name]


# --- sending the guide's requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CognitoAnswer:
    status: int
    body: dict[str, Any]


class Guide:
    """Sends the guide's requests: to Cognito (moto) over plain HTTP, to the API through Chalice's test client."""

    def __init__(self, api_env: ApiEnv, http: Http) -> None:
        self.env = api_env.env
        self.http = http
        self.values: dict[str, str] = {
            "client id": self.env["DYJ_COGNITO_CLIENT_ID"],
            "region": self.env["AWS_REGION"],
            "api-id": "local",  # the Host header is dropped: the requests go to moto / the test client
        }

    def cognito(self, name: str, **values: str) -> CognitoAnswer:
        request = example(name).filled({**self.values, **values})
        assert request.start_line == "POST / HTTP/1.1"
        headers = {key: text for key, text in request.headers.items() if key != "Host"}
        assert "Authorization" not in headers  # unsigned: the app has no AWS credentials
        sent = urllib.request.Request(
            f"{self.env['AWS_ENDPOINT_URL']}/", data=request.body.encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(sent, timeout=30) as response:
                return CognitoAnswer(response.status, json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            return CognitoAnswer(exc.code, json.loads(exc.read()))

    def api(self, name: str, **values: str) -> Answer:
        request = example(name).filled({**self.values, **values})
        method, target, _version = request.start_line.split()
        assert target.startswith(API_BASE_PATH + "/")
        headers = {key: text for key, text in request.headers.items() if key != "Host"}
        body = request.body.encode() if request.body else None
        return self.http.call(method, target.removeprefix(API_BASE_PATH), None, body, headers)

    def sign_in(self, username: str, password: str) -> CognitoAnswer:
        return self.cognito("sign-in", username=username, password=password)


def same_fields(answered: Mapping[str, Any], documented: Mapping[str, Any]) -> None:
    """The answer has the fields the guide shows (moto leaves out an empty `ChallengeParameters`; AWS sends it)."""
    assert set(answered) <= set(documented), f"fields the guide does not show: {set(answered) - set(documented)}"
    for key in ("AuthenticationResult",):
        if key in documented:
            assert set(answered[key]) == set(documented[key])


def tokens_of(answer: CognitoAnswer, shown: str) -> dict[str, Any]:
    assert answer.status == example(shown).status, answer.body
    same_fields(answer.body, example(shown).json())
    result: dict[str, Any] = answer.body["AuthenticationResult"]
    return result


@pytest.fixture(scope="module")
def guide(api_env: ApiEnv, http: Http) -> Guide:
    return Guide(api_env, http)


def created_user(username: str) -> str:
    """An enterprise user the administrator created with a temporary password (no invitation sent)."""
    directory().create_user(
        NewUser(
            username=username,
            role=Role.ENTERPRISE,
            name="移动端测试",
            enterprise_id=ENTERPRISE,
            temporary_password=TEMPORARY_PASSWORD,
            suppress_invitation=True,
        )
    )
    return username


@pytest.fixture(scope="module")
def new_user(api_env: ApiEnv) -> str:
    return created_user(NEW_USER)


@pytest.fixture(scope="module")
def photo_user(api_env: ApiEnv) -> str:
    """Another new user, so that the photo test does not depend on the first sign-in test having run first."""
    return created_user(NEW_USER + "-photo")


def test_every_example_of_the_guide_is_replayed_here() -> None:
    assert set(examples()) == REPLAYED


# --- the guide, step by step ------------------------------------------------------------------------------------


def test_first_sign_in_sets_a_password_then_the_app_calls_refreshes_and_calls_again(
    guide: Guide, new_user: str
) -> None:
    # Given an account the administrator just created: signing in with the temporary password is a challenge
    challenge = guide.sign_in(new_user, TEMPORARY_PASSWORD)
    assert challenge.status == example("new-password-challenge").status
    same_fields(challenge.body, example("new-password-challenge").json())
    assert challenge.body["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert "AuthenticationResult" not in challenge.body

    # When the app answers it with the new password
    answer = guide.cognito(
        "new-password", username=new_user, session=challenge.body["Session"], **{"new password": NEW_PASSWORD}
    )
    tokens = tokens_of(answer, "sign-in-answer")
    assert (tokens["TokenType"], tokens["ExpiresIn"]) == ("Bearer", 3600)

    # Then the ID token opens the API
    me = guide.api("me", **{"id token": tokens["IdToken"]})
    assert me.status == example("me-answer").status
    assert set(me.body) == set(example("me-answer").json())
    assert (me.body["user_id"], me.body["role"], me.body["enterprise_id"]) == (new_user, "enterprise", ENTERPRISE)

    # And a refresh gives a new ID token (and no new refresh token), which the API takes as well
    refreshed = tokens_of(guide.cognito("refresh", **{"refresh token": tokens["RefreshToken"]}), "refresh-answer")
    assert "RefreshToken" not in refreshed
    assert refreshed["IdToken"] != tokens["IdToken"]
    again = guide.api("me", **{"id token": refreshed["IdToken"]})
    assert (again.status, again.body) == (200, me.body)

    # From now on the new password signs in at once, and the temporary one no longer does
    tokens_of(guide.sign_in(new_user, NEW_PASSWORD), "sign-in-answer")
    assert guide.sign_in(new_user, TEMPORARY_PASSWORD).status == 400


def signed_in_with_new_password(guide: Guide, user: str) -> str:
    """A new user's ID token, its first sign-in's challenge answered with the new password."""
    challenge = guide.sign_in(user, TEMPORARY_PASSWORD)
    assert challenge.body.get("ChallengeName") == "NEW_PASSWORD_REQUIRED", challenge.body
    fields = {"new password": NEW_PASSWORD}
    answer = guide.cognito("new-password", username=user, session=challenge.body["Session"], **fields)
    return str(tokens_of(answer, "sign-in-answer")["IdToken"])


def test_the_app_works_a_warning_through_with_a_photo(guide: Guide, api_env: ApiEnv, photo_user: str) -> None:
    token = signed_in_with_new_password(guide, photo_user)
    record = raise_warning(api_env.registry, ENTERPRISE, level=2)
    values = {"id token": token, "warning id": record.warning_id}

    inbox = guide.api("open-warnings", **values)
    assert inbox.status == 200
    assert record.warning_id in {item["warning_id"] for item in inbox.body["items"]}

    statuses = []
    for step in ("acknowledge", "verify", "start-disposal"):
        answer = guide.api(step, **values)
        assert answer.status == 200, (step, answer.body)
        statuses.append(answer.body["status"])
    assert statuses == ["acknowledged", "verified", "disposing"]

    ticket = guide.api("evidence", **values)
    assert ticket.status == example("evidence-answer").status, ticket.body
    assert set(ticket.body) == set(example("evidence-answer").json())
    assert (ticket.body["method"], ticket.body["headers"], ticket.body["expires_in"]) == (
        "PUT",
        {"Content-Type": "image/jpeg"},
        300,
    )
    upload = urllib.request.Request(ticket.body["url"], data=b"\xff\xd8\xff\xe0 jpeg", method="PUT")
    for name, text in ticket.body["headers"].items():
        upload.add_header(name, text)
    with urllib.request.urlopen(upload, timeout=30) as response:
        assert response.status == 200

    recover(api_env.registry, record)  # the reading is normal again: `disposed` may be the reason
    cleared = guide.api("request-clear", **values, **{"evidence key": ticket.body["key"]})
    assert cleared.status == 200, cleared.body
    assert cleared.body["status"] == "closed"  # yellow, reading normal: no confirmation needed
    assert cleared.body["details"]["clear_request"]["evidence_keys"] == [ticket.body["key"]]


def test_a_wrong_password_is_refused_without_tokens(guide: Guide) -> None:
    answer = guide.sign_in("ent-e-hc-01", "Wrong-Password-2025")
    documented = example("wrong-password-answer")
    assert answer.status == documented.status
    assert answer.body["__type"].rpartition("#")[2] == documented.json()["__type"]
    assert "AuthenticationResult" not in answer.body


def moto_signed(claims: dict[str, Any]) -> str:
    """Signed with the local pool's own key (moto's): a genuine token of the pool."""
    key = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json"))
    return jwt.encode(claims, key.key, algorithm="RS256", headers={"kid": "dummy"})


def test_an_expired_id_token_is_token_expired_and_a_refresh_cures_it(guide: Guide) -> None:
    tokens = tokens_of(guide.sign_in("ent-e-hc-01", DEMO_PASSWORD), "sign-in-answer")
    claims = jwt.decode(tokens["IdToken"], options={"verify_signature": False})
    expired = moto_signed({**claims, "iat": time.time() - 7200, "exp": time.time() - 3600})

    answer = guide.api("me", **{"id token": expired})
    documented = example("token-expired-answer")
    assert (answer.status, answer.body) == (documented.status, documented.json())
    assert answer.headers.get("WWW-Authenticate") == documented.headers["WWW-Authenticate"]

    refreshed = tokens_of(guide.cognito("refresh", **{"refresh token": tokens["RefreshToken"]}), "refresh-answer")
    assert guide.api("me", **{"id token": refreshed["IdToken"]}).status == 200


@pytest.mark.parametrize("which", ["garbled", "access token", "refresh token"])
def test_anything_but_a_genuine_id_token_is_invalid_token(guide: Guide, which: str) -> None:
    tokens = tokens_of(guide.sign_in("ent-e-hc-01", DEMO_PASSWORD), "sign-in-answer")
    token = {
        "garbled": tokens["IdToken"][:-12] + "AAAAAAAAAAAA",
        "access token": tokens["AccessToken"],
        "refresh token": tokens["RefreshToken"],
    }[which]
    answer = guide.api("me", **{"id token": token})
    assert (answer.status, answer.code) == (401, "invalid_token")


def test_a_refresh_token_cognito_never_issued_is_not_authorized(guide: Guide) -> None:
    answer = guide.cognito("refresh", **{"refresh token": "not-a-refresh-token"})
    assert (answer.status, answer.body["__type"]) == (400, "NotAuthorizedException")


# --- local.users: how the demo's people sign in -----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_sign_in_needs_the_new_password_when_the_password_is_temporary(api_env: ApiEnv) -> None:
    directory().create_user(
        NewUser(
            username="mobile-e-hc-03",
            role=Role.ENTERPRISE,
            name="移动端测试",
            enterprise_id="E-HC-03",
            temporary_password=TEMPORARY_PASSWORD,
            suppress_invitation=True,
        )
    )
    with pytest.raises(SignInError) as refused:
        sign_in("mobile-e-hc-03", TEMPORARY_PASSWORD)
    assert refused.value.code == "NEW_PASSWORD_REQUIRED"
    with pytest.raises(SignInError) as weak:
        sign_in("mobile-e-hc-03", TEMPORARY_PASSWORD, new_password="short")
    assert weak.value.code == "InvalidPasswordException"

    tokens = sign_in("mobile-e-hc-03", TEMPORARY_PASSWORD, new_password=NEW_PASSWORD)
    assert jwt.decode(tokens.id_token, options={"verify_signature": False})["custom:enterprise_id"] == "E-HC-03"
    assert sign_in("mobile-e-hc-03", NEW_PASSWORD).refresh_token
    with pytest.raises(SignInError) as wrong:
        sign_in("mobile-e-hc-03", TEMPORARY_PASSWORD)
    assert wrong.value.code == "NotAuthorizedException"


def test_sign_in_needs_no_aws_credentials(api_env: ApiEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    assert sign_in("duty-01", DEMO_PASSWORD).id_token


def test_a_session_refreshes_before_the_id_token_expires_and_signs_in_again_when_refresh_is_refused(
    api_env: ApiEnv,
) -> None:
    clock = Clock()
    session = SignedIn("ent-e-hc-01", DEMO_PASSWORD, clock=clock, margin_s=300)
    first = session.id_token()
    assert session.tokens is not None
    signed_in = session.tokens

    clock.now = signed_in.expires_at - 301
    assert session.id_token() == first  # still fresh: no call

    clock.now = signed_in.expires_at - 299
    second = session.id_token()
    assert second != first
    assert session.tokens.refresh_token == signed_in.refresh_token  # REFRESH_TOKEN_AUTH keeps it

    session.tokens = replace(session.tokens, refresh_token="revoked", expires_at=clock.now)
    third = session.id_token()
    assert third not in (first, second)
    assert session.tokens.refresh_token not in ("revoked", signed_in.refresh_token)  # a new sign-in


def test_the_demo_app_refreshes_and_repeats_once_on_token_expired(api_env: ApiEnv) -> None:
    class Recording(ApiClient):
        def __init__(self) -> None:
            super().__init__("http://api.invalid", "ent-e-hc-04", "test")
            self.sent: list[str] = []

        def _send(self, method: str, path: str, data: bytes | None, id_token: str) -> ApiResponse:
            self.sent.append(id_token)
            if len(self.sent) == 1:
                return ApiResponse(401, {"code": "token_expired", "message": "登录已过期，请重新登录"})
            return ApiResponse(200, {"user_id": "ent-e-hc-04"})

    client = Recording()
    assert client.get("/me").ok
    assert len(client.sent) == 2
    assert client.sent[0] != client.sent[1]
    assert client.sent[1] == session_for("ent-e-hc-04").id_token()


# --- checking another provider's tokens ----------------------------------------------------------------------


def test_the_token_checker_shows_the_caller_or_the_api_error(
    api_env: ApiEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env = api_env.env
    flags = ["--issuer", env["DYJ_COGNITO_ISSUER"], "--client-id", env["DYJ_COGNITO_CLIENT_ID"]]
    flags += ["--jwks-url", env["DYJ_COGNITO_JWKS_URL"]]

    assert check_token.main([*flags, sign_in("reg-fire-rescue", DEMO_PASSWORD).id_token]) == 0
    caller = json.loads(capsys.readouterr().out)
    assert (caller["role"], caller["department"]) == ("regulator", "fire_rescue")
    assert caller["sectors"]

    other_issuer = ["--issuer", "https://idp.example.cn/realms/dayingji", *flags[2:]]
    assert check_token.main([*other_issuer, sign_in("duty-01", DEMO_PASSWORD).id_token]) == 1
    refused = json.loads(capsys.readouterr().out)
    assert (refused["status"], refused["code"]) == (401, "invalid_token")
    assert "InvalidIssuerError" in refused["reason"]


__all__ = ["api_env", "http"]  # the fixtures this module uses
