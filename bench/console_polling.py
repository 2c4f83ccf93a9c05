"""Console polling bench: what one poll of the duty console's wall costs (`GET /wall?limit=100`, what
`chalicelib/console/wall.js` asks every 3 s), and what 50 screens polling all day cost in API calls, DynamoDB
reads and money.

    .venv/bin/python -m bench.console_polling [--open 0,20,100] [--polls 20] [--screens 50]

Against moto's server provisioned from infra/ and seeded (local/seed/binhai.yaml, its users), with `--open` open
warnings (mixed levels, spread over the seed's devices and so over every sector and area) stored as the ingest
stores them, the API (`app.py` through Chalice's test client, as the functional tests call it) answers the wall
`--polls` times as the duty officer (all six sector partitions) and as a regulator (two). Counted below PynamoDB
(every DynamoDB call the handler makes, as tests/functional/test_api_listing_reads.py counts): calls, items read
and read request units by bench/ingest.py's rules (a Query costs ceil(bytes of the items returned / 4 KB), half
for an eventually consistent read); the answer's bytes, and whether a poll with the last ETag answers 304 (no
body); the handler's CPU per call (this thread's: Chalice's test client runs the handler in it, moto's server
answers in its own threads). Prices and the Lambda duration model are bench/ingest.py's (docs/costs.md "Prices
used"), plus API Gateway REST requests and data transfer out (assumed below).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chalice.test import Client
from pynamodb.connection.base import Connection

from bench.ingest import (
    AWS_CALL_RTT_S,
    LAMBDA_FULL_VCPU_MB,
    LAMBDA_MEMORY_MB,
    PRICE_DDB_RRU,
    PRICE_LAMBDA_GB_S,
    PRICE_LAMBDA_REQUEST,
    item_size,
    read_units,
)
from chalicelib.adapters import audit_store, dynamo
from chalicelib.adapters.audit_store import AuditedWarningStore
from chalicelib.bootstrap import reset
from chalicelib.domain.changes import ChangeKind, WarningChange, warning_id_for
from chalicelib.domain.levels import Level
from chalicelib.domain.warnings import WarningRecord
from chalicelib.settings import Settings
from local.aws import provision_with_identity, reset_moto, start_moto_server
from local.runtime import app_environment
from local.seed import SeedRegistry, install, load_seed
from local.users import DUTY_USER, bearer, demo_users, seed_users

PROJECT_DIR = Path(__file__).resolve().parents[1]
PRICE_API_GATEWAY_REST = 3.50 / 1e6  # assumed: REST API requests, first 333 M/month (us-east-1)
PRICE_TRANSFER_OUT_GB = 0.09  # assumed: data transfer out to the internet, first 10 TB/month (us-east-1)
POLL_PERIODS_S = (3, 5)  # the console's period (a change shows within 5 s), and the 5 s the issue names
REGULATOR = "reg-planning-resources"  # chemical and oil/gas pipelines: two sector partitions
DAY_S = 86_400
LEVELS = (Level.RED, Level.ORANGE, Level.YELLOW, Level.BLUE)


@dataclass
class Reads:
    calls: int = 0
    items: int = 0
    rru: float = 0.0
    operations: set[str] = field(default_factory=set)

    def record(self, operation: str, kwargs: dict[str, Any], response: dict[str, Any]) -> None:
        consistent = bool(kwargs.get("ConsistentRead"))
        if operation in {"Query", "Scan"}:
            items = response.get("Items", [])
            self.items += int(response.get("ScannedCount", len(items)))
            self.rru += read_units(sum(item_size(item) for item in items), consistent)
        elif operation == "GetItem":
            item = response.get("Item")
            self.items += 1 if item else 0
            self.rru += read_units(item_size(item) if item else 0, consistent)
        elif operation == "BatchGetItem":
            for found in response.get("Responses", {}).values():
                self.items += len(found)
                self.rru += sum(read_units(item_size(item), consistent) for item in found)
        self.calls += 1
        self.operations.add(operation)


@contextmanager
def counted() -> Iterator[list[Reads]]:
    """Every DynamoDB call PynamoDB makes goes to the innermost `Reads` of the yielded stack."""
    stack: list[Reads] = []
    original = Connection._make_api_call

    def counting(self: Connection, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = original(self, operation, kwargs)
        if stack:
            stack[-1].record(operation, kwargs, response)
        return response

    Connection._make_api_call = counting  # type: ignore[method-assign,assignment]
    try:
        yield stack
    finally:
        Connection._make_api_call = original  # type: ignore[method-assign]


def open_warnings(registry: SeedRegistry, count: int, now: float) -> None:
    """`count` open warnings as the ingest stores them (a chained raise), over the seed's devices in turn."""
    store = AuditedWarningStore()
    devices = registry.devices
    step = max(1, len(devices) // max(count, 1))
    for index in range(count):
        device = devices[(index * step) % len(devices)]
        level = LEVELS[index % len(LEVELS)]
        at = now - 3600 + index
        change = WarningChange(
            kind=ChangeKind.RAISE,
            warning_id=warning_id_for(device.device_id, f"bench_{index}", at),
            device_id=device.device_id,
            enterprise_id=device.enterprise_id,
            enterprise_name=device.enterprise_name,
            sector=device.sector,
            unit_id=device.unit_id,
            unit_name=device.unit_name,
            point_name=device.point_name,
            area_codes=device.area_codes,
            risk_type=f"bench_{index}",
            level=level,
            previous_level=Level.NONE,
            base_level=level,
            reason="bench",
            title=f"测试预警 {Level(level).zh}",
            value=1.0,
            unit="%",
            at=at,
            raised_at=at,
        )
        assert store.create(WarningRecord.raised(change))


@dataclass(frozen=True)
class PollFigures:
    user: str
    open_count: int
    listed: int
    calls: float
    items: float
    rru: float
    answer_bytes: float
    cpu_ms: float
    unchanged_304: bool

    @property
    def lambda_s(self) -> float:
        """Modelled billed duration (bench/ingest.py's model): CPU at 128 MB's share plus a round trip per call."""
        share = min(1.0, LAMBDA_MEMORY_MB / LAMBDA_FULL_VCPU_MB)
        return self.cpu_ms / 1000 / share + self.calls * AWS_CALL_RTT_S


def poll(client: Client, stack: list[Reads], user: str, polls: int, open_count: int) -> PollFigures:
    headers = {**bearer(user), "Accept": "application/json"}
    client.http.get("/wall?limit=100", headers=headers)  # warm: the JWKS fetched, the registry cached
    runs: list[Reads] = []
    cpu: list[float] = []
    sizes: list[int] = []
    listed = 0
    for _ in range(polls):
        stack.append(Reads())
        started = time.thread_time()  # the handler runs in this thread; moto's server in its own
        answer = client.http.get("/wall?limit=100", headers=headers)
        cpu.append((time.thread_time() - started) * 1000)
        runs.append(stack.pop())
        assert answer.status_code == 200, answer.body
        body = json.loads(answer.body)
        assert body["next_cursor"] is None
        listed = len(body["items"])
        sizes.append(len(answer.body))
    tag = next(value for name, value in answer.headers.items() if name.lower() == "etag")
    conditional = client.http.get("/wall?limit=100", headers={**headers, "If-None-Match": tag})
    return PollFigures(
        user=user,
        open_count=open_count,
        listed=listed,
        calls=statistics.mean(r.calls for r in runs),
        items=statistics.mean(r.items for r in runs),
        rru=statistics.mean(r.rru for r in runs),
        answer_bytes=statistics.mean(sizes),
        cpu_ms=statistics.median(cpu),
        unchanged_304=conditional.status_code == 304 and not conditional.body,
    )


def per_day(figures: PollFigures, screens: int, period_s: int) -> dict[str, float]:
    """A day of polls; `gb` without the ETag, the ETag's answers being empty while the wall does not change."""
    polls = screens * DAY_S / period_s
    gb_s = polls * figures.lambda_s * LAMBDA_MEMORY_MB / 1024
    usd = (
        polls * PRICE_API_GATEWAY_REST
        + polls * PRICE_LAMBDA_REQUEST
        + gb_s * PRICE_LAMBDA_GB_S
        + polls * figures.rru * PRICE_DDB_RRU
    )
    gb = polls * figures.answer_bytes / 1e9
    return {
        "requests": polls,
        "dynamo_calls": polls * figures.calls,
        "rru": polls * figures.rru,
        "gb": gb,
        "usd_etag": usd,
        "usd": usd + gb * PRICE_TRANSFER_OUT_GB,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", default="0,20,100", help="open warnings to measure with, comma-separated")
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--screens", type=int, default=50)
    args = parser.parse_args(argv)
    counts = sorted(int(n) for n in args.open.split(","))
    started = time.monotonic()

    server, endpoint_url = start_moto_server()
    saved = dict(os.environ)
    results: list[PollFigures] = []
    try:
        reset_moto(endpoint_url)
        infra = provision_with_identity(endpoint_url, stage="test")
        os.environ.update(app_environment(infra, {"DYJ_STAGE": "test"}))
        reset()
        registry = load_seed()
        settings = Settings.from_env()
        dynamo.bind(settings)
        audit_store.bind(settings)
        install(registry)
        seed_users(demo_users(registry))
        from app import app

        stored = 0
        with counted() as stack, Client(app, stage_name="test", project_dir=str(PROJECT_DIR)) as client:
            for count in counts:
                open_warnings_added = count - stored
                if open_warnings_added:
                    now = time.time()
                    open_warnings(registry, open_warnings_added, now - stored)
                    stored = count
                for user in (DUTY_USER, REGULATOR):
                    results.append(poll(client, stack, user, args.polls, count))
    finally:
        reset()
        os.environ.clear()
        os.environ.update(saved)
        reset_moto(endpoint_url)
        server.stop()

    print(f"GET /wall?limit=100, mean of {args.polls} polls per row (moto, this machine)")
    print(
        f"{'caller':<24}{'open':>6}{'listed':>8}{'DDB calls':>11}{'items read':>12}{'RRU':>8}{'answer KB':>11}"
        f"{'CPU ms':>8}{'  with its ETag'}"
    )
    for f in results:
        print(
            f"{f.user:<24}{f.open_count:>6}{f.listed:>8}{f.calls:>11.1f}{f.items:>12.1f}{f.rru:>8.1f}"
            f"{f.answer_bytes / 1024:>11.1f}{f.cpu_ms:>8.1f}  {'304, no body' if f.unchanged_304 else 'NOT 304'}"
        )
    print()
    print(f"{args.screens} duty screens polling all day (24 h), as the duty officer")
    print(
        f"{'open':>6}{'every':>7}{'API requests':>14}{'DDB calls':>13}{'RRU':>13}{'GB out':>8}"
        f"{'USD/day':>9}{'with ETag':>11}{'USD/month':>11}"
    )
    for f in results:
        if f.user != DUTY_USER:
            continue
        for period in POLL_PERIODS_S:
            day = per_day(f, args.screens, period)
            print(
                f"{f.open_count:>6}{period:>6}s{day['requests']:>14,.0f}{day['dynamo_calls']:>13,.0f}"
                f"{day['rru']:>13,.0f}{day['gb']:>8.2f}{day['usd']:>9.2f}{day['usd_etag']:>11.2f}"
                f"{day['usd_etag'] * 30:>11.2f}"
            )
    print()
    print(
        f"prices: API Gateway REST ${PRICE_API_GATEWAY_REST * 1e6:.2f}/M requests (assumed), Lambda "
        f"${PRICE_LAMBDA_REQUEST * 1e6:.2f}/M + ${PRICE_LAMBDA_GB_S}/GB-s at {LAMBDA_MEMORY_MB} MB, DynamoDB "
        f"${PRICE_DDB_RRU * 1e6:.3f}/M RRU, transfer out ${PRICE_TRANSFER_OUT_GB:.2f}/GB (assumed); "
        "'with ETag': an unchanged wall answers 304 with no body (USD/month: with ETag, 30 days)"
    )
    print(f"bench wall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
