"""Evaluation-run figures against moto's server (docs/evaluation.md "Costs"): one monthly run over a fleet of
5,000 enterprises, 250,000 devices and 100,000 warnings in the month (issue 13: `--scale 1`), or a scaled fleet,
with its wall time, this process's CPU and moto's, the items it read, the read units that costs on DynamoDB, and
the quarter's run from its months' tallies.

Run: .venv/bin/python -m bench.evaluation [--scale 1] [--offline-share 0.01] [--history-share 0.2] [--plain-moto]

The tables and the bucket come from infra/resources.json (`local.aws.provision`). Seeded with batch writes: the
enterprises (six sectors, two areas each) and their devices (50 each, a major-hazard grade on a tenth); the month's
warnings, spread over March 2025, most acknowledged, verified and closed (a tenth as false alarms), 5 % still open,
3 % with a level change (its engine event written); a fifth as many older warnings (the history the run must not
read: closed before the month), of which 1 % still open; the devices offline now
(`OFFLINE#…`, 1 %). Then `EvaluationService.run` as `bootstrap.evaluation()` wires it (the adapters of
`adapters/evaluation_store.py`, the report module's build and renderers), timed; then the first quarter from its
months' stored tallies (January and February, empty, are run on the way the first time; the second run is timed).

moto (bench/moto_speed.py) runs in a child process, so its time is not this process's CPU time. Two of its costs
are moto's, not DynamoDB's, and are cut there, in the bench's child only (never in the tests' fixtures or the
runtime): the seeding's BatchWriteItem calls are built by the adapters as usual but captured before they are sent
(`CapturedWrites`) and put into moto's backend in its own process (`MotoChild.load`: moto's `put_item`, what its
BatchWriteItem handler calls) — over HTTP the full fleet took more than 50 minutes; and moto's Query, which sorts
and walks the whole table for every page, runs over a partition index (`moto_speed.install`: same answers, checked
by tests/integration/test_moto_speed.py). The evaluation's reads go over HTTP through the real adapters.
`--plain-moto` serves them with unpatched moto (for comparison at a small scale).

Counting: a botocore hook on the DynamoDB clients, per operation and table: items returned, items evaluated
(`ScannedCount`), and read units with bench/ingest.py's rules (a page costs its items' size / 4 KB, half when
eventually consistent; the items a filter dropped are charged at the page's mean item size; a BatchGet key not
found at the minimum). Time: this process's CPU time is what the run itself spends — what a Lambda-sized process
(1 vCPU) would; the wall time on moto includes moto's own CPU (per item, it deep-copies, projects and serializes
through botocore's shapes: far slower than parsing). The DynamoDB pages' latency on AWS is estimated at `--page-ms`
each, with the parallelism of the adapters (six sector queries, four scan segments, eight offline readers, sixteen
level-change readers); at a scale below 1 the figures are also extrapolated linearly to full size.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.awsrequest import AWSResponse

from bench.ingest import item_size, read_units
from chalicelib.adapters import aws_clients, dynamo, presence
from chalicelib.adapters.declarations import DeclarationItem
from chalicelib.adapters.dynamo import RegistryItem, WarningEventItem, WarningItem, fill_item
from chalicelib.adapters.evaluation_store import DynamoEvaluationFacts, S3ReportArchive, reader
from chalicelib.adapters.online_ledger import OutageDayItem
from chalicelib.bootstrap import online_ledger
from chalicelib.domain.catalog import build_policy
from chalicelib.domain.due import restamp
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.registry import DeviceRegistration, Enterprise, StaticFactors
from chalicelib.domain.warnings import WarningRecord, WarningStatus
from chalicelib.services.evaluation import DomainReportRenderer, EvaluationService, RunFigures
from chalicelib.services.ports import ReportEntry
from chalicelib.settings import Settings
from local.aws import DEFAULT_REGION, fake_aws_environ, provision

FULL = {"enterprises": 5000, "devices": 250_000, "warnings": 100_000}
MARCH = periods.month(2025, 3)
Q1 = periods.quarter(2025, 1)
NOW = MARCH.end + 3600.0  # the monthly schedule's run: 1 April 01:00 local
SECTORS = list(Sector)
LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
LEVEL_WEIGHTS = (40, 35, 18, 7)


@dataclass
class Meter:
    """Per (operation, table): calls, items returned, items evaluated, read units (in half units, as integers)."""

    calls: Counter[str] = field(default_factory=Counter)
    items: Counter[str] = field(default_factory=Counter)
    scanned: Counter[str] = field(default_factory=Counter)
    rcu: Counter[str] = field(default_factory=Counter)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def reset(self) -> None:
        for counter in (self.calls, self.items, self.scanned, self.rcu):
            counter.clear()

    @staticmethod
    def _before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_request"] = json.loads(params.get("body") or b"{}")

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        operation = str(model.name)
        if operation not in {"Query", "Scan", "BatchGetItem", "GetItem"}:
            return
        request = context.get("bench_request", {})
        consistent = bool(request.get("ConsistentRead"))
        if operation == "BatchGetItem":
            for table, wanted in request.get("RequestItems", {}).items():
                key = f"{operation} {table_label(table)}"
                found = parsed.get("Responses", {}).get(table, [])
                missing = len(wanted.get("Keys", [])) - len(found)
                self.calls[key] += 1
                self.items[key] += len(found)
                self.scanned[key] += len(found)
                consistent = bool(wanted.get("ConsistentRead"))
                self.rcu[key] += sum(round(2 * read_units(item_size(i), consistent)) for i in found)
                self.rcu[key] += round(2 * read_units(0, consistent)) * missing
            return
        key = f"{operation} {table_label(request.get('TableName', ''))}"
        self.calls[key] += 1
        if operation == "GetItem":
            item = parsed.get("Item")
            self.items[key] += 1 if item else 0
            self.rcu[key] += round(2 * read_units(item_size(item) if item else 0, consistent))
            return
        items = parsed.get("Items", [])
        sizes = sum(item_size(item) for item in items)
        scanned = int(parsed.get("ScannedCount", len(items)))
        mean = sizes / len(items) if items else 100.0  # a page its filter emptied: the closure index's entries
        self.items[key] += len(items)
        self.scanned[key] += scanned
        self.rcu[key] += round(2 * read_units(int(sizes + mean * (scanned - len(items))), consistent))

    @property
    def read_units(self) -> float:
        return sum(self.rcu.values()) / 2


def table_label(name: str) -> str:
    return name.removeprefix("dayingji-test-")


def enterprises_and_devices(
    count: int, per: int, rng: random.Random
) -> tuple[list[Enterprise], list[DeviceRegistration]]:
    enterprises, devices = [], []
    for n in range(count):
        sector = SECTORS[n % len(SECTORS)]
        areas = (f"AREA{n % 20:02d}", f"STREET{n % 97:02d}")
        enterprise = Enterprise(enterprise_id=f"E{n:05d}", name=f"企业{n:05d}", sector=sector, area_codes=areas)
        enterprises.append(enterprise)
        for d in range(per):
            grade = rng.choice((1, 2, 3, 4)) if d == 0 and n % 10 == 0 else None
            devices.append(
                DeviceRegistration(
                    device_id=f"D{n:05d}-{d:03d}",
                    enterprise_id=enterprise.enterprise_id,
                    enterprise_name=enterprise.name,
                    sector=sector,
                    unit_id=f"U{n:05d}",
                    unit_name="单元",
                    kind="sensor",
                    area_codes=areas,
                    static=StaticFactors(major_hazard_grade=grade),
                )
            )
    return enterprises, devices


def warning(n: int, raised: float, device: DeviceRegistration, rng: random.Random, policy: Any) -> WarningRecord:
    level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
    record = WarningRecord(
        warning_id=f"W{n:07d}",
        device_id=device.device_id,
        enterprise_id=device.enterprise_id,
        enterprise_name=device.enterprise_name,
        sector=device.sector,
        unit_id=device.unit_id,
        unit_name=device.unit_name,
        point_name="测点",
        area_codes=device.area_codes,
        risk_type="gas_concentration",
        level=level,
        peak_level=level,
        status=WarningStatus.RAISED,
        reading_normal=False,
        raised_at=raised,
        updated_at=raised,
        title="浓度超限",
        reason="gas_high",
        value=52.0,
        unit="%LEL",
    )
    record = restamp(record, policy.deadlines)
    if rng.random() < 0.05:
        return record  # still open
    ack = raised + rng.uniform(60, 3600)
    verify = ack + rng.uniform(60, 3600)
    close = verify + rng.uniform(600, 48 * 3600)
    reason = "false_alarm" if rng.random() < 0.1 else "disposed"
    details = {
        **record.details,
        "acknowledged": {"at": ack, "by": "p"},
        "verification": {"at": verify, "outcome": "false_alarm" if reason == "false_alarm" else "real"},
        "closure": {"at": close, "reason": reason},
    }
    return replace(record, status=WarningStatus.CLOSED, details=details, updated_at=close)


def seed(scale: float, offline_share: float, history_share: float, rng: random.Random) -> dict[str, int]:
    policy = build_policy({})
    count = max(1, round(FULL["enterprises"] * scale))
    per = FULL["devices"] // FULL["enterprises"]
    enterprises, devices = enterprises_and_devices(count, per, rng)
    dynamo.DynamoRegistry.put_many(devices, enterprises, [])
    month_warnings = round(FULL["warnings"] * scale)
    history = round(month_warnings * history_share)
    items, events = [], []
    for n in range(month_warnings + history):
        device = devices[rng.randrange(len(devices))]
        if n < month_warnings:
            raised = rng.uniform(MARCH.start, MARCH.end - 1)
        else:
            raised = rng.uniform(MARCH.start - 60 * 86400, MARCH.start - 20 * 86400)  # February and before
        record = warning(n, raised, device, rng, policy)
        if n >= month_warnings and record.is_open and rng.random() < 0.8:
            closure = {"at": raised + 3600, "reason": "disposed"}  # most old ones closed long before March
            record = replace(record, status=WarningStatus.CLOSED, details={**record.details, "closure": closure})
        item = WarningItem(record.warning_id, level_seq=0)
        fill_item(item, record)
        if rng.random() < 0.03:
            item.level_seq = 1
            change = {"previous_level": "yellow", "level": Level(record.level).code, "at": raised + 300}
            events.append(
                WarningEventItem(record.warning_id, 1, type="engine.level_up", at=raised + 300, data=change)
            )
        items.append(item)
    with WarningItem.batch_write() as batch:
        for item in items:
            batch.save(item)
    with WarningEventItem.batch_write() as batch:
        for event in events:
            batch.save(event)
    offline = rng.sample(devices, round(len(devices) * offline_share))
    with presence.OfflineItem.batch_write() as batch:
        for n, device in enumerate(offline):
            since = rng.uniform(MARCH.start - 5 * 86400, MARCH.end)
            batch.save(
                presence.OfflineItem(
                    f"OFFLINE#{device.device_id}", 0, since=since, suppressed_by="DCL" if n % 4 == 0 else None
                )
            )
    return {
        "enterprises": len(enterprises),
        "devices": len(devices),
        "warnings in March": month_warnings,
        "older warnings": history,
        "offline devices": len(offline),
    }


@dataclass
class MotoChild:
    """moto's server in a child process (`bench.moto_speed`): its time is not this process's CPU time (what a
    Lambda would spend); `load` puts captured batch writes straight into its backend."""

    process: subprocess.Popen[str]
    endpoint_url: str

    def load(self, path: str) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"load {path}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().split()
        if answer[:1] != ["loaded"]:
            raise RuntimeError(f"moto's child did not load {path}: {answer}")
        return int(answer[1])

    def cpu_s(self) -> float:
        """moto's CPU time so far (Linux: /proc)."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def moto_in_its_own_process(patched: bool) -> MotoChild:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.moto_speed", str(port), *(() if patched else ("--plain",))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    child = MotoChild(process, f"http://127.0.0.1:{port}")
    os.environ.update(fake_aws_environ(DEFAULT_REGION))
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{child.endpoint_url}/moto-api/", timeout=1).close()
            return child
        except OSError:
            if time.monotonic() > deadline:
                child.stop()
                raise
            time.sleep(0.2)


class CapturedWrites:
    """Answers the seeding's BatchWriteItem calls without sending them, keeping their bodies (one JSON a line) for
    `MotoChild.load`: the items are what the adapters serialize, stored by moto's own `put_item`, without the
    HTTP round trip per 25 items (an hour at full size on this machine)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def attach(self, client: Any) -> None:
        client.meta.events.register_first("before-call.dynamodb.BatchWriteItem", self._kept)

    def _kept(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = params["body"]
        self._file.write((body.decode() if isinstance(body, bytes) else body) + "\n")
        return AWSResponse("", 200, {}, None), {"UnprocessedItems": {}}

    def close(self) -> None:
        self._file.close()


def print_month(
    entry: ReportEntry,
    figures: RunFigures,
    times: tuple[float, float, float],
    meter: Meter,
    scale: float,
    page_ms: float,
) -> None:
    """The month's run, printed as soon as it is measured (a full-size bench takes a while to finish)."""
    wall_s, cpu_s, moto_cpu_s = times
    factor = 1 / scale
    pages = sum(meter.calls.values())
    print(
        f"report {entry.report_id}: {figures.enterprises:,} enterprises, {figures.devices:,} devices, "
        f"{figures.warnings:,} warnings read, {figures.device_days:,} device-day rows"
    )
    print(
        f"the run: wall {wall_s:.1f} s on moto (moto's own time: a separate process, {moto_cpu_s:.1f} s of CPU), "
        f"CPU of this process {cpu_s:.1f} s"
    )
    print("reads by operation and table (calls / items returned / items evaluated / read units):")
    for key in sorted(meter.calls):
        print(
            f"  {key:28s} {meter.calls[key]:7,} {meter.items[key]:9,} {meter.scanned[key]:9,} "
            f"{meter.rcu[key] / 2:10,.1f}"
        )
    items = sum(meter.items.values())
    print(f"  {'total':28s} {pages:7,} {items:9,} {sum(meter.scanned.values()):9,} {meter.read_units:10,.1f}")
    full_units = meter.read_units * factor
    # on DynamoDB the six sector queries run side by side, the registry scan in 4 segments, the offline reads 8 at
    # a time, the level-change queries 16: the pages' latency divides accordingly (an estimate, not a measurement)
    parallel = {"Query warnings": len(SECTORS), "Scan registry": 4, "BatchGetItem warning-events": 8}
    parallel["Query warning-events"] = 16
    io_s = sum(meter.calls[key] * factor / parallel.get(key, len(SECTORS)) for key in meter.calls) * page_ms / 1000
    print(
        f"extrapolated to full size (x{factor:g}): {items * factor:,.0f} items read, {full_units:,.0f} read units "
        f"(~${full_units * 0.25 / 1e6:.3f} on demand at $0.25 per million), CPU ~{cpu_s * factor:.0f} s, "
        f"DynamoDB pages ~{io_s:.0f} s at {page_ms:g} ms a page: ~{cpu_s * factor + io_s:.0f} s in all if "
        "they do not overlap (target 60 s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="fraction of the full fleet (1.0 = issue 13's)")
    parser.add_argument("--offline-share", type=float, default=0.01)
    parser.add_argument("--history-share", type=float, default=0.2)
    parser.add_argument("--page-ms", type=float, default=30.0, help="assumed DynamoDB latency of one page")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--plain-moto", action="store_true", help="moto without bench.moto_speed's partition index (slow)"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    moto = moto_in_its_own_process(patched=not args.plain_moto)
    try:
        infra = provision(moto.endpoint_url, stage="test")
        settings = Settings.from_env(
            {**infra.aws_env(), **infra.env(), "DYJ_STAGE": "test", "DYJ_DYNAMO_READ_TIMEOUT_S": "60"}
        )  # moto walks a whole table per page
        dynamo.bind(settings)
        presence.bind(settings)
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="bench-evaluation-") as folder:
            captured = CapturedWrites(os.path.join(folder, "writes.jsonl"))
            for written in (WarningItem, WarningEventItem, RegistryItem, presence.OfflineItem):
                captured.attach(written._get_connection().connection.client)
            try:
                seeded = seed(args.scale, args.offline_share, args.history_share, rng)
            finally:
                captured.close()
            generated_s = time.perf_counter() - began
            loaded = moto.load(captured.path)
        seeding_s = time.perf_counter() - began
        print(
            f"seeded in {seeding_s:.1f} s ({generated_s:.1f} s building the adapters' batch writes, "
            f"{loaded:,} items put into moto's backend in its process): "
            + ", ".join(f"{v:,} {k}" for k, v in seeded.items())
        )
        print(f"moto: {'plain' if args.plain_moto else 'with bench.moto_speed partition index'}", flush=True)

        ledger = online_ledger(settings, clock=lambda: NOW)  # binds the ledger's and the declarations' tables
        meter = Meter()
        for model in (
            WarningItem,
            WarningEventItem,
            RegistryItem,
            presence.OfflineItem,
            OutageDayItem,
            DeclarationItem,
        ):
            meter.attach(model._get_connection().connection.client)
        for model in (WarningItem, WarningEventItem, RegistryItem):
            meter.attach(reader(model))  # the evaluation's own clients (answers decoded by json)
        policy = build_policy({})
        facts = DynamoEvaluationFacts(policy.deadlines)
        archive = S3ReportArchive(aws_clients.s3(settings), settings.evaluation_bucket)
        service = EvaluationService(
            facts,
            ledger,
            DomainReportRenderer(policy.evaluation, policy.routing),
            archive,
            policy.evaluation,
            lambda: NOW,
        )
        meter.reset()
        began, cpu, moto_cpu = time.perf_counter(), time.process_time(), moto.cpu_s()
        entry = service.run(PeriodKind.MONTH, MARCH, "bench")
        wall_s, cpu_s = time.perf_counter() - began, time.process_time() - cpu
        moto_cpu_s = moto.cpu_s() - moto_cpu
        figures = service.last_run
        assert figures is not None
        print_month(entry, figures, (wall_s, cpu_s, moto_cpu_s), meter, args.scale, args.page_ms)

        # the same run's evaluation and rendering alone: the facts as read, through the fakes
        fleet = facts.fleet()
        warnings = list(facts.warnings(MARCH, NOW, MARCH.start - policy.evaluation.repeat_window_s))
        days = list(ledger.device_days(MARCH, fleet, NOW))
        renderer = DomainReportRenderer(policy.evaluation, policy.routing)
        began = time.process_time()
        renderer.render(MARCH, fleet, warnings, days, NOW)
        render_s = time.process_time() - began
        print(f"of which evaluating and rendering (the facts as read, no I/O): {render_s:.1f} s", flush=True)

        # the quarter from its months' tallies: January and February are run on the way the first time (nothing
        # was seeded in them); the second run is what the quarter's schedule costs once its months are stored
        service.run(PeriodKind.QUARTER, Q1, "bench")
        meter.reset()
        began, cpu, moto_cpu = time.perf_counter(), time.process_time(), moto.cpu_s()
        quarter = service.run(PeriodKind.QUARTER, Q1, "bench")
        quarter_wall_s, quarter_cpu_s = time.perf_counter() - began, time.process_time() - cpu
        quarter_moto_cpu_s = moto.cpu_s() - moto_cpu
        assert service.last_run is not None
        quarter_reread = service.last_run.warnings
        quarter_calls, quarter_items = sum(meter.calls.values()), sum(meter.items.values())
    finally:
        moto.stop()

    print(
        f"{quarter.report_id} from its months' tallies (stored): wall {quarter_wall_s:.1f} s, "
        f"CPU {quarter_cpu_s:.1f} s (moto {quarter_moto_cpu_s:.1f} s), "
        f"{quarter_calls:,} DynamoDB calls, {quarter_items:,} items (the fleet's scan and "
        f"{quarter_reread:,} warnings the months carried, read again)"
    )
    expected = seeded["warnings in March"] * 1.0
    print(f"read every warning of March (±5 %): {math.isclose(figures.warnings, expected, rel_tol=0.05)}")


if __name__ == "__main__":
    main()
