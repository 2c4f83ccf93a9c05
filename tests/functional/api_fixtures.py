"""Fixtures for the API tests: moto's server provisioned from infra/ (resources.json and identity.json), the seed
registry and the demo users in it, the app's environment, and a small HTTP helper over Chalice's test client
that logs in as a seeded user (real RS256 ID tokens from moto's Cognito).

Import them explicitly: `from tests.functional.api_fixtures import api_env, http, ...` (the functional tier's
conftest.py belongs to the ingest tests; moto keeps one state per process, so a module uses one or the other).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from chalice.test import Client

from chalicelib.adapters import audit_store, dynamo
from chalicelib.adapters.audit_store import AuditedWarningStore
from chalicelib.bootstrap import reset
from chalicelib.domain.changes import ChangeKind, WarningChange, warning_id_for
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord
from chalicelib.settings import Settings
from local.api_gateway import emulate_gateway
from local.aws import Provisioned, provision_with_identity, reset_moto, start_moto_server
from local.seed import SeedRegistry, install, load_seed
from local.users import bearer, demo_users, seed_users

PROJECT_DIR = Path(__file__).resolve().parents[2]
STAGE = "test"


@dataclass(frozen=True)
class ApiEnv:
    infra: Provisioned
    registry: SeedRegistry
    env: dict[str, str]


@pytest.fixture(scope="module")
def api_env() -> Iterator[ApiEnv]:
    """A provisioned, seeded moto server with the app's environment set for the module (restored after)."""
    server, endpoint_url = start_moto_server()
    reset_moto(endpoint_url)
    try:
        with pytest.MonkeyPatch.context() as patch:
            infra = provision_with_identity(endpoint_url, stage=STAGE)
            env = {**infra.aws_env(), **infra.env(), "DYJ_STAGE": STAGE, "POWERTOOLS_METRICS_DISABLED": "true"}
            for name, value in env.items():
                patch.setenv(name, value)
            reset()
            registry = load_seed()
            settings = Settings.from_env()
            dynamo.bind(settings)
            audit_store.bind(settings)
            install_seed(infra, registry)
            seed_users(demo_users(registry))
            yield ApiEnv(infra, registry, env)
        reset()
    finally:
        reset_moto(endpoint_url)
        server.stop()


# The items the audited seed writes, by table, once per worker process and Shanghai day (the duty shifts are
# the day's): the next module's tables get the same items in a few batch writes instead of the seed's ~650 calls.
_SEEDED_ITEMS: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}


def install_seed(infra: Provisioned, registry: SeedRegistry) -> None:
    """`local.seed.install` into the freshly provisioned tables, or the items it wrote earlier today, restored."""
    dynamodb = boto3.client("dynamodb", endpoint_url=infra.endpoint_url, region_name=infra.region)
    tables = sorted(r.ref for r in infra.resources.values() if r.type == "AWS::DynamoDB::Table")
    key = (infra.stage, datetime.now(SHANGHAI).strftime("%Y-%m-%d"))
    items = _SEEDED_ITEMS.get(key)
    if items is None:
        install(registry)
        scans = {table: dynamodb.get_paginator("scan").paginate(TableName=table) for table in tables}
        _SEEDED_ITEMS[key] = {
            table: [item for page in pages for item in page["Items"]] for table, pages in scans.items()
        }
        return
    for table, table_items in items.items():
        for start in range(0, len(table_items), 25):  # BatchWriteItem's limit
            writes = [{"PutRequest": {"Item": item}} for item in table_items[start : start + 25]]
            unprocessed: dict[str, Any] = {table: writes}
            while unprocessed:
                unprocessed = dynamodb.batch_write_item(RequestItems=unprocessed).get("UnprocessedItems", {})


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class Http:
    """JSON calls through Chalice's test client, as a seeded user (`user=None`: no Authorization header)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def call(
        self,
        method: str,
        path: str,
        user: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        sent = {"Content-Type": "application/json", **(bearer(user) if user else {}), **(headers or {})}
        raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        response = self._client.http.request(method, path, headers=sent, body=raw)
        text = response.body.decode("utf-8") if response.body else ""
        return Answer(response.status_code, json.loads(text) if text else None, dict(response.headers))

    def get(self, path: str, user: str | None = None, **kwargs: Any) -> Answer:
        return self.call("GET", path, user, **kwargs)

    def post(self, path: str, user: str | None, body: Any, **kwargs: Any) -> Answer:
        return self.call("POST", path, user, body, **kwargs)

    def put(self, path: str, user: str | None, body: Any, **kwargs: Any) -> Answer:
        return self.call("PUT", path, user, body, **kwargs)


@pytest.fixture(scope="module")
def http(api_env: ApiEnv) -> Iterator[Http]:
    from app import app

    with Client(app, stage_name=STAGE, project_dir=str(PROJECT_DIR)) as client:
        emulate_gateway(client)  # unknown routes answer as the deployed stage's gateway responses say
        yield Http(client)


_raised = iter(range(1, 1_000_000))


def raise_warning(
    registry: SeedRegistry,
    enterprise_id: str,
    level: int = Level.RED,
    *,
    raised_at: float | None = None,
    risk_type: str = "test_risk",
) -> WarningRecord:
    """A new warning on the enterprise's first device, stored the way the ingest stores one (chained `raise`)."""
    device = next(d for d in registry.devices if d.enterprise_id == enterprise_id)
    at = raised_at if raised_at is not None else time.time() - 60 + next(_raised) / 1000
    change = engine_change(ChangeKind.RAISE, device.device_id, enterprise_id, level, at, at, registry, risk_type)
    record = WarningRecord.raised(change)
    assert AuditedWarningStore().create(record)
    return record


def engine_change(
    kind: ChangeKind,
    device_id: str,
    enterprise_id: str,
    level: int,
    at: float,
    raised_at: float,
    registry: SeedRegistry,
    risk_type: str = "test_risk",
    previous: int = Level.NONE,
) -> WarningChange:
    device = registry.by_device[device_id]
    return WarningChange(
        kind=kind,
        warning_id=warning_id_for(device_id, risk_type, raised_at),
        device_id=device_id,
        enterprise_id=enterprise_id,
        enterprise_name=device.enterprise_name,
        sector=device.sector,
        unit_id=device.unit_id,
        unit_name=device.unit_name,
        point_name=device.point_name,
        area_codes=device.area_codes,
        risk_type=risk_type,
        level=level,
        previous_level=previous,
        base_level=level,
        reason="test",
        title=f"测试预警 {Level(level).zh}" if level else "恢复正常",
        value=1.0,
        unit="%",
        at=at,
        raised_at=raised_at,
    )


def recover(registry: SeedRegistry, record: WarningRecord, at: float | None = None) -> None:
    """The engine says the reading is normal again (a `recover` change, chained)."""
    change = engine_change(
        ChangeKind.RECOVER,
        record.device_id,
        record.enterprise_id,
        Level.NONE,
        at if at is not None else time.time(),
        record.raised_at,
        registry,
        record.risk_type,
        previous=record.level,
    )
    assert AuditedWarningStore().apply_change(change)
