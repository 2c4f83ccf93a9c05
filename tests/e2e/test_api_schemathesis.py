"""Schemathesis against docs/openapi.json on the local API (Chalice's `LocalDevServer` over real HTTP, AWS played
by moto's server): whatever it generates, valid or not, no operation answers 5xx, and every answer is JSON with the
error convention. Valid (positive) and invalid (negative) inputs, as the duty centre, the administrator and an
enterprise. Bounded: a fixed number of derandomized examples per operation, role and mode (≤ ~60 s in all)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from local.users import bearer
from tests.functional.api_fixtures import PROJECT_DIR, ApiEnv, api_env, raise_warning

pytestmark = pytest.mark.e2e

SCHEMA = schemathesis.openapi.from_path(Path(PROJECT_DIR) / "docs" / "openapi.json")
OPERATIONS = {result.ok().label: result.ok() for result in SCHEMA.get_all_operations() if isinstance(result, Ok)}
assert len(OPERATIONS) == sum(len(ops) for ops in SCHEMA.raw_schema["paths"].values()), (
    "an operation failed to load"
)
USERS = ("duty-01", "admin", "ent-e-hc-01")
EXAMPLES = 20
NO_INPUT = {"GET /health", "GET /me"}  # nothing to make invalid
XDIST_SHARDS = 4  # independent cases: dealt out to both workers in four units (tests/conftest.py)
CASES = [
    (label, user, mode)
    for label in sorted(OPERATIONS)
    for user in USERS
    for mode in schemathesis.GenerationMode
    if not (mode is schemathesis.GenerationMode.NEGATIVE and label in NO_INPUT)
]


@pytest.fixture(scope="module")
def base_url(api_env: ApiEnv) -> Iterator[str]:
    from chalice.local import LocalDevServer
    from chalice.test import Client

    from app import app

    config = Client(app, stage_name="test", project_dir=str(PROJECT_DIR))._chalice_config
    server = LocalDevServer(app, config, "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    for level in (1, 2, 3, 4):
        raise_warning(api_env.registry, "E-HC-01", level)
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.mark.parametrize(("label", "user", "mode"), CASES, ids=[f"{c[0]}-{c[1]}-{c[2].value}" for c in CASES])
def test_no_generated_request_makes_the_api_fail(
    base_url: str, label: str, user: str, mode: schemathesis.GenerationMode
) -> None:
    headers = bearer(user)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @given(case=OPERATIONS[label].as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        assert response.status_code < 500, (case.path, case.body, response.text[:300])
        assert response.headers.get("content-type", [""])[0].startswith("application/json"), response.headers
        if response.status_code >= 400 and response.status_code != 415:
            body = response.json()
            assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), body

    check()


__all__ = ["api_env"]  # the fixtures this module uses
