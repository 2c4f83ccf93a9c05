"""Demo users in the local user pool (moto's Cognito), one per role and scope of the seed registry, and real
ID tokens for them (`token_for`). Local runtime and tests only: every user has the same known password.

Usernames:
- `ent-<enterprise id>` (lower case): an enterprise user for each enterprise of the seed;
- `duty-01`, `duty-02`: duty officers;  `emg-01`, `emg-02`: the emergency bureau;  `admin`: the administrator;
- `reg-<department>`: one regulator per department (its sectors come from the routing policy);
- `area-<area code>` (lower case): one official per dev zone / street.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import replace

import boto3

from chalicelib.adapters.identity import CognitoDirectory
from chalicelib.domain.errors import Conflict
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.policy import DEPARTMENT_ZH
from chalicelib.services.ports import NewUser
from local.seed import SeedRegistry

DEMO_PASSWORD = "Dyj-Local-Demo-2025"  # local only: every demo user has it (docs/api.md)
TOKEN_REUSE_S = 45 * 60  # moto's ID tokens live 60 min


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


_tokens: dict[tuple[str, str], tuple[float, str]] = {}
_lock = threading.Lock()


def token_for(username: str, env: dict[str, str] | None = None) -> str:
    """A real ID token of the local pool for a seeded user (logged in with ADMIN_USER_PASSWORD_AUTH), reused for
    45 minutes."""
    values = os.environ if env is None else env
    cache_key = (values["DYJ_COGNITO_USER_POOL_ID"], username)
    with _lock:
        cached = _tokens.get(cache_key)
        if cached is not None and time.monotonic() - cached[0] < TOKEN_REUSE_S:
            return cached[1]
    token = directory(env).login(username, DEMO_PASSWORD)
    with _lock:
        _tokens[cache_key] = (time.monotonic(), token)
    return token


def bearer(username: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """`Authorization` header for a seeded user."""
    return {"Authorization": f"Bearer {token_for(username, env)}"}
