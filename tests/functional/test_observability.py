"""The app's log lines through Chalice's test client (docs/operations.md "Logs"): an ingest line about a warning
carries the shard, the device and the warning; an API call's line carries the request id, the route, the caller's
role and the path's warning id, and never the token."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.domain.levels import Level
from chalicelib.observability import SERVICE, logger
from local.seed import SeedRegistry
from tests.functional.api_fixtures import ApiEnv, Http, api_env, http, raise_warning
from tests.functional.test_ingest_handler import client, invoke, outbox, twice, warnings_of

__all__ = ["api_env", "client", "http", "outbox"]  # fixtures


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    handler: Any = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def test_a_raise_is_logged_with_its_shard_device_and_warning_and_the_invocations_request_id(
    client: Client, seed: SeedRegistry, log_lines: io.StringIO
) -> None:
    device = "CS04-TC1"
    invoke(client, twice(seed, device, load_pct=113.0))
    [warning] = warnings_of(device)

    [line] = [line for line in lines_of(log_lines) if line["message"] == "warning change recorded"]
    assert (line["service"], line["device_id"], line["warning_id"]) == (SERVICE, device, warning.warning_id)
    assert (line["change"], line["warning_level"], line["sector"]) == ("raise", "red", "construction")
    assert line["shard_id"] == "shardId-000000000000" and line["batch_size"] == 2
    assert line["function_request_id"] and "cold_start" in line


def test_an_api_call_is_logged_with_request_id_route_role_and_warning_and_never_the_token(
    api_env: ApiEnv, http: Http, log_lines: io.StringIO
) -> None:
    warning_id = raise_warning(api_env.registry, "E-HC-01", Level.RED).warning_id
    assert http.get(f"/warnings/{warning_id}", "duty-01").status == 200

    [line] = [line for line in lines_of(log_lines) if line["message"] == "api call answered"]
    assert (line["route"], line["method"], line["status"]) == ("/warnings/{warning_id}", "GET", 200)
    assert (line["actor_role"], line["warning_id"]) == ("duty", warning_id)
    assert line["function_request_id"]  # (Chalice's local events have no API Gateway request id to correlate by)
    assert "eyJ" not in log_lines.getvalue() and "Bearer" not in log_lines.getvalue()
