"""Demo users in the local user pool (moto's Cognito), one per role and scope of the seed registry, and how they
sign in: exactly as docs/mobile-app.md tells a mobile app to. Local runtime and tests only: every user has the same
known password.

Usernames:
- `ent-<enterprise id>` (lower case): an enterprise user for each enterprise of the seed;
- `duty-01`, `duty-02`: duty officers;  `emg-01`, `emg-02`: the emergency bureau;  `admin`: the administrator;
- `reg-<department>`: one regulator per department (its sectors come from the routing policy);
- `area-<area code>` (lower case): one official per dev zone / street.

Signing in (`sign_in`, `refresh`, `SignedIn`) uses only the app client's public calls, unsigned, as an app without
AWS credentials makes them: `InitiateAuth` with `USER_PASSWORD_AUTH` (answering `NEW_PASSWORD_REQUIRED` with
`RespondToAuthChallenge` when the user still has a temporary password), then `REFRESH_TOKEN_AUTH` before the ID
token expires. Nothing here uses the pool's admin API to log anyone in; only seeding users does (`seed_users`, the
administrator's job).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.adapters.identity import CognitoDirectory
from chalicelib.domain.errors import Conflict
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.policy import DEPARTMENT_ZH
from chalicelib.services.ports import NewUser
from local.seed import SeedRegistry

DEMO_PASSWORD = "Dyj-Local-Demo-2025"  # local only: every demo user has it (docs/api.md)
REFRESH_MARGIN_S = 5 * 60  # refresh this long before the ID token expires (docs/mobile-app.md)


def enterprise_user(enterprise_id: str) -> str:
    return f"ent-{enterprise_id.lower()}"


def regulator_user(department: str) -> str:
    return f"reg-{department.replace('_', '-')}"


def area_user(area_code: str) -> str:
    return f"area-{area_code.lower()}"


DUTY_USER = "duty-01"
EMERGENCY_USER = "emg-01"
ADMIN_USER = "admin"


def demo_users(registry: SeedRegistry) -> list[NewUser]:
    """One user per enterprise, department and area of the seed, plus duty officers, the bureau and an admin."""
    users: list[NewUser] = [
        NewUser(
            username=enterprise_user(enterprise.enterprise_id),
            role=Role.ENTERPRISE,
            name=(enterprise.contacts[0].name if enterprise.contacts else enterprise.name)[:32],
            enterprise_id=enterprise.enterprise_id,
        )
        for enterprise in registry.enterprises
    ]
    users += [
        NewUser(username=f"duty-{index:02d}", role=Role.DUTY, name=person.name[:32], phone=person.phone)
        for index, person in enumerate((p for p in registry.people if p.role == "duty"), start=1)
    ]
    users += [
        NewUser(username=f"emg-{index:02d}", role=Role.EMERGENCY, name=person.name[:32], phone=person.phone)
        for index, person in enumerate((p for p in registry.people if p.role == "emergency"), start=1)
    ]
    regulators = {p.department: p for p in registry.people if p.role == "regulator" and p.department}
    users += [
        NewUser(
            username=regulator_user(department),
            role=Role.REGULATOR,
            name=(regulators[department].name if department in regulators else DEPARTMENT_ZH[department])[:32],
            department=department,
        )
        for department in DEPARTMENT_ZH
    ]
    users += [
        NewUser(username=area_user(area.code), role=Role.AREA, name=area.name[:32], area_codes=(area.code,))
        for area in registry.areas
    ]
    users.append(NewUser(username=ADMIN_USER, role=Role.ADMIN, name="区政府系统管理员"))
    return users


def directory(env: dict[str, str] | None = None) -> CognitoDirectory:
    """The local user pool, from the app's environment (`os.environ` by default)."""
    values = os.environ if env is None else env
    client = boto3.client(
        "cognito-idp",
        endpoint_url=values.get("AWS_ENDPOINT_URL"),
        region_name=values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    return CognitoDirectory(client, values["DYJ_COGNITO_USER_POOL_ID"], values["DYJ_COGNITO_CLIENT_ID"])


def seed_users(users: Iterable[NewUser], env: dict[str, str] | None = None) -> list[str]:
    """Create the users (an existing username is left as it is) with the demo password; their usernames."""
    pool = directory(env)
    created: list[str] = []
    for user in users:
        try:
            pool.create_user(replace(user, suppress_invitation=True, temporary_password=DEMO_PASSWORD))
        except Conflict:
            continue
        pool.set_password(user.username, DEMO_PASSWORD)
        created.append(user.username)
    return created


# --- signing in, as the mobile app does (docs/mobile-app.md) -----------------------------------------------------


class SignInError(Exception):
    """Cognito refused: `code` is its error type (`NotAuthorizedException`, `InvalidPasswordException`, ...), or
    `NEW_PASSWORD_REQUIRED` when the user must choose a password and none was given."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


@dataclass(frozen=True)
class Tokens:
    """What a sign-in answers (`AuthenticationResult`); `expires_at` is the ID token's end by this machine's clock
    (the time of the answer + `ExpiresIn`), so a skewed clock does not matter."""

    id_token: str
    access_token: str
    refresh_token: str
    expires_at: float


_app_clients: dict[tuple[str | None, str], Any] = {}
_app_clients_lock = threading.Lock()


def app_client(env: Mapping[str, str] | None = None) -> Any:
    """A Cognito client that signs nothing (no AWS credentials), like an app: only the app client's public calls
    (`InitiateAuth`, `RespondToAuthChallenge`) work with it. One per endpoint and region, shared (a client is safe
    to use from several threads; building one takes a fifth of a second, and boto3's default session is not safe
    to build clients from in several threads, so it is built once, from a session of its own)."""
    values = os.environ if env is None else env
    endpoint = values.get("AWS_ENDPOINT_URL")
    region = values.get("AWS_REGION") or values.get("AWS_DEFAULT_REGION") or "us-east-1"
    with _app_clients_lock:
        client = _app_clients.get((endpoint, region))
        if client is None:
            client = _app_clients[(endpoint, region)] = boto3.session.Session().client(
                "cognito-idp",
                endpoint_url=endpoint,
                region_name=region,
                config=Config(signature_version=UNSIGNED, retries={"max_attempts": 3, "mode": "standard"}),
            )
        return client


def _client_id(env: Mapping[str, str] | None) -> str:
    return (os.environ if env is None else env)["DYJ_COGNITO_CLIENT_ID"]


def _tokens(result: Mapping[str, Any], received: float, refresh_token: str = "") -> Tokens:
    return Tokens(
        id_token=str(result["IdToken"]),
        access_token=str(result["AccessToken"]),
        refresh_token=str(result.get("RefreshToken") or refresh_token),
        expires_at=received + float(result["ExpiresIn"]),
    )


def _refused(exc: ClientError) -> SignInError:
    error = exc.response.get("Error", {})
    return SignInError(str(error.get("Code", "")), str(error.get("Message", "")))


def sign_in(
    username: str,
    password: str,
    *,
    new_password: str | None = None,
    env: Mapping[str, str] | None = None,
    client: Any = None,
    clock: Callable[[], float] = time.time,
) -> Tokens:
    """`InitiateAuth` with `USER_PASSWORD_AUTH`; on `NEW_PASSWORD_REQUIRED` (first sign-in with a temporary
    password) `RespondToAuthChallenge` with `new_password`, or `SignInError("NEW_PASSWORD_REQUIRED")` without
    one. Any refusal is a `SignInError` with Cognito's code."""
    cognito = client if client is not None else app_client(env)
    client_id = _client_id(env)
    try:
        answer = cognito.initiate_auth(
            ClientId=client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
        if answer.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
            if new_password is None:
                raise SignInError("NEW_PASSWORD_REQUIRED", "the user must choose a new password")
            answer = cognito.respond_to_auth_challenge(
                ClientId=client_id,
                ChallengeName="NEW_PASSWORD_REQUIRED",
                Session=answer["Session"],
                ChallengeResponses={"USERNAME": username, "NEW_PASSWORD": new_password},
            )
    except ClientError as exc:
        raise _refused(exc) from exc
    if "AuthenticationResult" not in answer:
        challenge = str(answer.get("ChallengeName", "unexpected_answer"))
        raise SignInError(challenge, "a challenge this app cannot answer")
    return _tokens(answer["AuthenticationResult"], clock())


def refresh(
    tokens: Tokens,
    *,
    env: Mapping[str, str] | None = None,
    client: Any = None,
    clock: Callable[[], float] = time.time,
) -> Tokens:
    """`InitiateAuth` with `REFRESH_TOKEN_AUTH`: new ID and access tokens, the same refresh token (Cognito answers
    none); `SignInError("NotAuthorizedException")` once the refresh token has expired or was revoked."""
    cognito = client if client is not None else app_client(env)
    try:
        answer = cognito.initiate_auth(
            ClientId=_client_id(env),
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens.refresh_token},
        )
    except ClientError as exc:
        raise _refused(exc) from exc
    return _tokens(answer["AuthenticationResult"], clock(), tokens.refresh_token)


class SignedIn:
    """One user's session on one device: signs in on first use, refreshes `margin_s` before the ID token expires,
    and signs in again when the refresh token is refused. Thread-safe (one sign-in or refresh at a time)."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        new_password: str | None = None,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        margin_s: float = REFRESH_MARGIN_S,
    ) -> None:
        self.username = username
        self._password = password
        self._new_password = new_password
        self._env = dict(os.environ if env is None else env)
        self._clock = clock
        self._margin_s = margin_s
        self._lock = threading.Lock()
        self.tokens: Tokens | None = None

    def id_token(self) -> str:
        """A current ID token: the one held, or refreshed when it is about to expire."""
        with self._lock:
            if self.tokens is None:
                self.tokens = self._sign_in()
            elif self._clock() >= self.tokens.expires_at - self._margin_s:
                self.tokens = self._refresh(self.tokens)
            return self.tokens.id_token

    def renew(self, *, sign_in_again: bool = False) -> str:
        """After the API answered `token_expired` (refresh) or `invalid_token` (`sign_in_again`: new tokens)."""
        with self._lock:
            if self.tokens is None or sign_in_again:
                self.tokens = self._sign_in()
            else:
                self.tokens = self._refresh(self.tokens)
            return self.tokens.id_token

    def _sign_in(self) -> Tokens:
        tokens = sign_in(
            self.username,
            self._password,
            new_password=self._new_password,
            env=self._env,
            clock=self._clock,
        )
        if self._new_password is not None:  # chosen at the first sign-in: the password from now on
            self._password = self._new_password
        return tokens

    def _refresh(self, tokens: Tokens) -> Tokens:
        try:
            return refresh(tokens, env=self._env, clock=self._clock)
        except SignInError as exc:
            if exc.code != "NotAuthorizedException":
                raise
            return self._sign_in()  # the refresh token expired or was revoked: back to the sign-in screen


_sessions: dict[tuple[str, str, str], SignedIn] = {}
_lock = threading.Lock()


def session_for(username: str, env: Mapping[str, str] | None = None) -> SignedIn:
    """The signed-in session of a seeded user (the demo password), one per pool, app client and user."""
    values = os.environ if env is None else env
    key = (values["DYJ_COGNITO_USER_POOL_ID"], values["DYJ_COGNITO_CLIENT_ID"], username)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = SignedIn(username, DEMO_PASSWORD, env=values)
        return session


def token_for(username: str, env: Mapping[str, str] | None = None) -> str:
    """A real ID token of the local pool for a seeded user, signed in as the app does (`session_for`)."""
    return session_for(username, env).id_token()


def bearer(username: str, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`Authorization` header for a seeded user."""
    return {"Authorization": f"Bearer {token_for(username, env)}"}
