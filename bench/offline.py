"""Offline-watch figures against moto's server (docs/offline-watch.md "Costs"): what the presence summaries cost
the ingest per 1,000 messages, what one detector run reads and writes (a steady minute, a minute with transitions),
and the extrapolation to 1,000,000 devices.

Run: .venv/bin/python -m bench.offline [--devices N] [--shards S] [--minutes M] [--silent-share F] [--silent-shard]

The warning-event table comes from infra/resources.json (`local.aws.provision`, as bench/ingest.py). N devices on S
shards report every 60 s (each at its own second of the minute); every shard's container (`PresenceTracker`, one
per shard, on the simulated clock) sees a batch every 10 s and writes through `adapters/presence.py`;
`OfflineWatch` runs over the same adapters five seconds after every simulated minute. A share F (1 %) of the
devices goes silent at minute M/5 and speaks again at minute 4M/5; with `--silent-shard` the first shard also stops
entirely at M/5.

Counting: a botocore hook on the presence models' clients, per operation and per item kind (the partition prefix),
with bench/ingest.py's capacity rules (item size ~ the JSON of the attribute map, binary values as base64 — an
over-estimate of a blob's billed bytes by a third; write ceil(size / 1 KB); read ceil(size / 4 KB), half when
eventually consistent, Query on the sum of its items, a BatchGet key not found at the minimum).
"""

from __future__ import annotations

import argparse
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.ingest import item_size, read_units, write_units
from chalicelib.adapters import presence
from chalicelib.adapters.presence import DynamoOfflineState, DynamoPresenceLedger
from chalicelib.domain.presence import PresencePolicy
from chalicelib.services.offline_watch import OfflineWatch, WatchReport
from chalicelib.services.presence import PresenceTracker, Sighting
from chalicelib.services.presence_fakes import FakeOfflineSink
from chalicelib.settings import Settings
from local.aws import provision, reset_moto, start_moto_server

START = 1_764_370_800.0  # 2025-11-29 07:00 local, as bench/ingest.py
INTERVAL_S = 60.0
BATCH_EVERY_S = 10.0
WATCH_AFTER_S = 5.0
KINDS = ("PRESENCE#", "ROSTER#", "OFFLINE-WATCH", "OFFLINE#")


def kind_of(partition: str) -> str:
    for kind in KINDS:
        if partition.startswith(kind):
            return kind.rstrip("#")
    return "other"


@dataclass
class Meter:
    """Units, calls and items per item kind."""

    wcu: Counter[str] = field(default_factory=Counter)  # whole units (Counter's values)
    rcu: Counter[str] = field(default_factory=Counter)  # half units: counted x 2
    calls: Counter[str] = field(default_factory=Counter)
    items_read: Counter[str] = field(default_factory=Counter)
    items_written: Counter[str] = field(default_factory=Counter)
    bytes_written: Counter[str] = field(default_factory=Counter)

    def snapshot(self) -> Meter:
        return Meter(*(Counter(getattr(self, name)) for name in self.__dataclass_fields__))

    def since(self, before: Meter) -> Meter:
        delta = Meter()
        for name in self.__dataclass_fields__:
            counter: Counter[str] = Counter(getattr(self, name))
            counter.subtract(getattr(before, name))
            setattr(delta, name, +counter)
        return delta

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    @staticmethod
    def _before(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = params

    def _after(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        params: dict[str, Any] = context.get("bench_params", {})
        operation = str(model.name)
        if operation == "Scan":
            raise AssertionError("the presence store never scans")
        if operation == "PutItem":
            kind = kind_of(params["Item"]["warning_id"]["S"])
            size = item_size(params["Item"])
            self.wcu[kind] += write_units(size)
            self.items_written[kind] += 1
            self.bytes_written[kind] += size
        elif operation == "DeleteItem":
            kind = kind_of(params["Key"]["warning_id"]["S"])
            self.wcu[kind] += 1  # an OFFLINE# item: well under 1 KB
            self.items_written[kind] += 1
        elif operation == "GetItem":
            kind = kind_of(params["Key"]["warning_id"]["S"])
            item = parsed.get("Item")
            self.rcu[kind] += round(
                2 * read_units(item_size(item) if item else 0, bool(params.get("ConsistentRead")))
            )
            self.items_read[kind] += 1 if item else 0
        elif operation == "BatchGetItem":
            for request in params["RequestItems"].values():
                consistent = bool(request.get("ConsistentRead"))
                kind = kind_of(request["Keys"][0]["warning_id"]["S"])
                found = [item for table in parsed.get("Responses", {}).values() for item in table]
                self.rcu[kind] += sum(round(2 * read_units(item_size(item), consistent)) for item in found)
                self.rcu[kind] += round(2 * read_units(0, consistent)) * (len(request["Keys"]) - len(found))
                self.items_read[kind] += len(found)
        elif operation == "Query":
            values = params.get("ExpressionAttributeValues", {})
            partition = next(v["S"] for v in values.values() if "S" in v)
            kind = kind_of(partition)
            items = parsed.get("Items", [])
            consistent = bool(params.get("ConsistentRead"))
            self.rcu[kind] += round(2 * read_units(sum(item_size(item) for item in items), consistent))
            self.items_read[kind] += len(items)
        self.calls[f"{operation} {kind_of_call(params)}"] += 1


def kind_of_call(params: Mapping[str, Any]) -> str:
    if "Item" in params:
        return kind_of(params["Item"]["warning_id"]["S"])
    if "Key" in params:
        return kind_of(params["Key"]["warning_id"]["S"])
    if "RequestItems" in params:
        request = next(iter(params["RequestItems"].values()))
        return kind_of(request["Keys"][0]["warning_id"]["S"])
    values = params.get("ExpressionAttributeValues", {})
    return kind_of(next((v["S"] for v in values.values() if "S" in v), ""))


class SimClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Run:
    minute: int
    report: WatchReport
    meter: Meter


@dataclass
class Result:
    devices: int
    shards: int
    minutes: int
    messages: int = 0
    ingest: Meter = field(default_factory=Meter)
    ingest_minutes: list[Meter] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    wall_s: float = 0.0


def simulate(
    endpoint_url: str, devices: int, shards: int, minutes: int, share: float, silent_shard: bool
) -> Result:
    reset_moto(endpoint_url)
    infra = provision(endpoint_url)
    presence.bind(
        Settings(
            region=infra.region,
            aws_endpoint_url=endpoint_url,
            table_warning_event=infra.table("WarningEventTable"),
        )
    )
    meter = Meter()
    attached: set[int] = set()
    for model in presence.MODELS:
        client = model._get_connection().connection.client
        if id(client) not in attached:
            attached.add(id(client))
            meter.attach(client)

    rng = random.Random(12)
    policy = PresencePolicy()
    threshold = policy.threshold_s("hazchem", "gas", INTERVAL_S)
    ids = [f"dev-{i:07d}" for i in range(devices)]
    shard_ids = [f"shardId-{s:012d}" for s in range(shards)]
    shard_of = {d: shard_ids[i % shards] for i, d in enumerate(ids)}
    offset = {d: rng.uniform(0, INTERVAL_S) for d in ids}
    silent = set(rng.sample(ids, round(devices * share)))
    quiet_from, back_at = minutes // 5, minutes * 4 // 5

    clock = SimClock(START)
    ledger, state, sink = DynamoPresenceLedger(), DynamoOfflineState(), FakeOfflineSink()
    trackers = {s: PresenceTracker(ledger, policy, f"container-{s[-2:]}", clock) for s in shard_ids}
    watch = OfflineWatch(ledger, state, sink, lambda: (), clock)
    result = Result(devices, shards, minutes)
    started = time.perf_counter()
    for m in range(minutes):
        base = START + m * 60
        steps = int(60 // BATCH_EVERY_S)
        batches: dict[tuple[str, int], list[Sighting]] = {}
        for device in ids:
            if device in silent and quiet_from <= m < back_at:
                continue
            shard = shard_of[device]
            if silent_shard and shard == shard_ids[0] and m >= quiet_from:
                continue
            at = base + offset[device]
            batches.setdefault((shard, int(offset[device] // BATCH_EVERY_S)), []).append(
                Sighting(shard, device, at, threshold)
            )
        before = meter.snapshot()
        for step in range(steps):
            clock.now = base + (step + 1) * BATCH_EVERY_S
            for shard in shard_ids:
                batch = batches.get((shard, step))
                if batch:
                    result.messages += len(batch)
                    trackers[shard].observe(batch)
        result.ingest_minutes.append(meter.since(before))
        result.ingest = _add(result.ingest, result.ingest_minutes[-1])
        clock.now = base + 60 + WATCH_AFTER_S
        before = meter.snapshot()
        report = watch.run()
        result.runs.append(Run(m, report, meter.since(before)))
    result.wall_s = time.perf_counter() - started
    return result


def _add(total: Meter, delta: Meter) -> Meter:
    for name in total.__dataclass_fields__:
        getattr(total, name).update(getattr(delta, name))
    return total


# --- the figures -----------------------------------------------------------------------------------------------


def _units(meter: Meter) -> str:
    return (
        f"{sum(meter.rcu.values()) / 2:g} RCU, {sum(meter.wcu.values()):g} WCU, {sum(meter.calls.values())} calls"
    )


def _items(meter: Meter) -> str:
    read = ", ".join(f"{k} {v}" for k, v in sorted(meter.items_read.items())) or "-"
    written = ", ".join(f"{k} {v}" for k, v in sorted(meter.items_written.items())) or "-"
    return f"items read: {read}; written: {written}"


def _run_line(label: str, run: Run) -> list[str]:
    r = run.report
    what = (
        f"minutes {len(r.minutes)}, summaries {r.summaries}, candidates {r.candidates}, raised {len(r.raised)}, "
        f"recovered {len(r.recovered)}, silent shards {len(r.silent_shards)}"
    )
    calls = ", ".join(f"{k} {v}" for k, v in sorted(run.meter.calls.items()))
    return [
        f"  {label} (minute {run.minute}): {what}",
        f"    {_units(run.meter)} [{calls}]",
        f"    {_items(run.meter)}",
    ]


def figures(result: Result) -> list[str]:
    ingest, runs = result.ingest, result.runs
    per_k = 1000 / max(1, result.messages)
    summary_wcu, roster_wcu = ingest.wcu["PRESENCE"], ingest.wcu["ROSTER"]
    summaries = ingest.items_written["PRESENCE"]
    rosters = ingest.items_written["ROSTER"]
    roster_bytes = ingest.bytes_written["ROSTER"]
    lines = [
        f"devices {result.devices}, shards {result.shards}, minutes {result.minutes}, messages {result.messages} "
        f"(wall {result.wall_s:.1f} s)",
        "ingest (PresenceTracker -> DynamoPresenceLedger):",
        f"  summaries: {summaries} items, {summary_wcu:g} WCU = {summary_wcu * per_k:.3f} WCU per 1,000 messages",
        f"  rosters: {rosters} items, {roster_wcu:g} WCU, {roster_bytes / max(1, result.devices):.1f} B per "
        f"device (one per shard-hour: {roster_wcu / max(1, result.messages / result.minutes * 60) * 1000:.4f} "
        "WCU per 1,000 messages at one report a minute)",
        f"  reads: {sum(ingest.rcu.values()) / 2:g} RCU, {ingest.items_read['ROSTER']} rosters "
        "(the roster query of each container's first batch)",
    ]
    quiet = min(
        (m for m in result.ingest_minutes[2:] if m.items_written["PRESENCE"]),
        key=lambda m: m.bytes_written["PRESENCE"],
    )
    quiet_items = quiet.items_written["PRESENCE"]
    lines.append(
        f"  a quiet minute: {quiet_items} summaries, {quiet.wcu['PRESENCE']:g} WCU, "
        f"~{quiet.bytes_written['PRESENCE'] / max(1, quiet_items):.0f} B each "
        f"({quiet.wcu['PRESENCE'] / (result.messages / result.minutes) * 1000:.3f} WCU per 1,000 messages); "
        "the rest is the fresh containers' first minute (every device `back`) and the transitions"
    )
    first = max(runs, key=lambda r: 0 if r.report.raised or r.report.recovered else r.report.candidates)
    steady = [
        r for r in runs[1:] if r.report.candidates == 0 and r.report.summaries and not r.report.silent_shards
    ]
    raising = [r for r in runs if r.report.raised and r is not first]
    recovering = [r for r in runs if r.report.recovered]
    shard_runs = [r for r in runs if r.report.silent_shards]
    lines.append("detector (OfflineWatch over DynamoOfflineState + DynamoPresenceLedger), per run:")
    lines += _run_line("cold (the fresh containers named every device once)", first)
    if steady:
        lines += _run_line("steady", steady[len(steady) // 2])
    for run in raising[:1]:
        lines += _run_line("with transitions (raise)", run)
    for run in recovering[:1]:
        lines += _run_line("with transitions (recover)", run)
    for run in shard_runs[:1]:
        lines += _run_line("a shard fell silent (roster read)", run)
    lines += extrapolation(result, steady, raising)
    return lines


def extrapolation(result: Result, steady: list[Run], raising: list[Run]) -> list[str]:
    """Per-shard terms from the steady run, per-transition terms from the raising run, per-device terms from the
    rosters: each scaled to 1,000,000 devices on 100 shards with 1 % silent."""
    if not steady or not raising:
        return ["extrapolation: needs a steady run and a run with transitions (more minutes?)"]
    devices, shards, silent = 1_000_000, 100, 10_000
    steady_run, raise_run = steady[len(steady) // 2], raising[0]
    steady_rcu = sum(steady_run.meter.rcu.values()) / 2
    quiet = min(
        (m for m in result.ingest_minutes[2:] if m.items_written["PRESENCE"]),
        key=lambda m: m.bytes_written["PRESENCE"],
    )
    summary_bytes = quiet.bytes_written["PRESENCE"] / max(1, quiet.items_written["PRESENCE"])
    state_bytes = steady_run.meter.bytes_written["OFFLINE-WATCH"]
    shard_state_b = max(0.0, (state_bytes - 60) / result.shards)
    transitions = len(raise_run.report.raised)
    per_transition_rcu = raise_run.meter.rcu["OFFLINE"] / 2 / max(1, transitions)
    per_transition_wcu = raise_run.meter.wcu["OFFLINE"] / max(1, transitions)
    roster_b = result.ingest.bytes_written["ROSTER"] / max(1, result.devices)
    quiet_query = math.ceil(shards * summary_bytes / 4096) / 2
    steady_1m = 1 + quiet_query  # state GetItem (consistent) + one summary query per minute
    state_wcu = math.ceil((60 + shards * shard_state_b) / 1024)
    roster_wcu_hour = devices * roster_b / 1024
    msgs_per_min = devices  # one report a minute
    return [
        "extrapolation to 1,000,000 devices, 100 shards, 1 % (10,000) silent, one report a minute:",
        f"  measured: steady run {steady_rcu:g} RCU; summary item ~{summary_bytes:.0f} B; state item "
        f"~{shard_state_b:.0f} B per shard; per transition {per_transition_rcu:g} RCU + {per_transition_wcu:g} "
        f"WCU; roster ~{roster_b:.1f} B per device",
        f"  ingest summaries (x shards): {shards} WCU a minute / {msgs_per_min // 1000:,} thousand messages = "
        f"{shards / (msgs_per_min / 1000):.3f} WCU per 1,000 messages",
        f"  ingest rosters (x devices): {devices:,} x {roster_b:.1f} B / 1 KB = {roster_wcu_hour:,.0f} WCU an "
        f"hour = {roster_wcu_hour / (msgs_per_min * 60 / 1000):.4f} WCU per 1,000 messages",
        f"  detector steady run (x shards): 1 (state, consistent) + ceil({shards} x {summary_bytes:.0f} B / 4 KB) "
        f"/ 2 = {steady_1m:g} RCU; state item write ceil(({60} + {shards} x {shard_state_b:.0f} B) / 1 KB) = "
        f"{state_wcu} WCU",
        f"  detector transitions (x transitions): {per_transition_rcu:g} RCU (BatchGet, consistent) + "
        f"{per_transition_wcu:g} WCU (OFFLINE# put/delete) each, plus ~{_silent_entry_bytes(result):.0f} B "
        "in the summary per device named (inline JSON; zlib over 1 KB)",
        f"  10,000 devices silent in one minute: {silent * per_transition_rcu:,.0f} RCU + "
        f"{silent * per_transition_wcu:,.0f} WCU once ({math.ceil(silent / 100)} BatchGets), and the same "
        "again when they come back",
        f"  a month of steady runs: 43,200 x {steady_1m:g} RCU = {43_200 * steady_1m:,.0f} RCU (a scan of 1 M "
        "state items every minute: ~5.4 billion)",
    ]


def _silent_entry_bytes(result: Result) -> float:
    """Bytes per (device, time) pair in a summary's inline list."""
    return len(presence._compact([["dev-0000000", START + 300.123]])) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description="Offline-watch figures against moto's server (bench/offline.py).")
    parser.add_argument("--devices", type=int, default=10_000, help="fleet size (default 10,000)")
    parser.add_argument("--shards", type=int, default=4, help="stream shards (default 4)")
    parser.add_argument("--minutes", type=int, default=15, help="simulated minutes (default 15)")
    parser.add_argument("--silent-share", type=float, default=0.01, help="share going silent (default 0.01)")
    parser.add_argument("--silent-shard", action="store_true", help="the first shard also stops at M/5")
    args = parser.parse_args()
    logging.getLogger("dayingji").setLevel(logging.CRITICAL)
    server, endpoint_url = start_moto_server()
    try:
        result = simulate(
            endpoint_url, args.devices, args.shards, args.minutes, args.silent_share, args.silent_shard
        )
    finally:
        server.stop()
    print("\n".join(figures(result)))


if __name__ == "__main__":
    main()
