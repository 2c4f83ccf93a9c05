"""Disposal workflow bench: state transitions of the real ASL (`infra/disposal.asl.json`) on moto,
per scenario, and what Step Functions would cost at list price.

    .venv/bin/python -m bench.workflow [--json PATH]   # about a minute; --json: what bench/costs.py prices

Each scenario is one warning driven through the real app side (`WorkflowService`, `WorkflowTimers`, the
`StepFunctionsExecutions` adapter) and the real domain (lifecycle + `chalicelib/domain/due.py`), on the in-memory
warning store of `chalicelib/services/fakes.py`, with seconds-scale deadlines; timers are real executions on moto
(`execute_state_machine` on) and their due messages are read from the provisioned `WorkflowEventQueue` and handed
to `WorkflowService.handle`.
Transitions are counted as Step Functions bills them: one per state entered (`…StateEntered` history events),
summed over every execution (timer) of the warning, as the demo does.

The production-policy figure (a red missed to tier 3, reminders every 5 min for 2 h) is derived: the number of
timers the domain arms under the production policy (the same service and domain on a simulated clock, fake
executions) × the transitions per timer measured on moto.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import boto3

from chalicelib.adapters.workflow import StepFunctionsExecutions
from chalicelib.domain import due
from chalicelib.domain.catalog import Policy, build_policy
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import Person
from chalicelib.domain.warnings import WarningRecord
from chalicelib.services.fakes import SAMPLE_ENTERPRISE, FakeExecutions, FakeRegistry, FakeWarnings, sample_warning
from chalicelib.services.workflow import WorkflowMessage, WorkflowService, WorkflowTimers
from local.aws import DEFAULT_REGION, Provisioned, provision, start_moto_server
from local.sfn import execution_history, quiet_moto_asl_logging

PRICE_PER_1000_TRANSITIONS = 0.025  # Standard workflows, us-east-1 list price (USD); AWS China is not used
TARGET_IN_TIME = 20
TARGET_TIER3 = 150
TARGET_IDLE = 0

# Seconds-scale deadlines for the moto runs (red: the stages that matter; confirmation 3 s).
BENCH_POLICY = build_policy(
    {
        "deadlines": {
            "red": {"acknowledge_s": 3, "verify_s": 6, "clear_s": 9, "reminder_s": 1, "confirm_s": 3},
            "orange": {"acknowledge_s": 2, "verify_s": 30, "clear_s": 60, "reminder_s": 0, "confirm_s": 3},
            "yellow": {"acknowledge_s": 30, "verify_s": 60, "clear_s": 90, "reminder_s": 0},
        },
        "workflow": {"sweep_grace_s": 1},
    }
)
# The production policy with the reminder interval for a red: every 5 min.
PRODUCTION_POLICY = build_policy({"deadlines": {"red": {"reminder_s": 300}}})

ENTERPRISE_ACTOR = Actor(user_id="bench-enterprise", role=Role.ENTERPRISE, enterprise_id="E1")
DUTY_ACTOR = Actor(user_id="bench-duty", role=Role.DUTY)
ENTERPRISE = SAMPLE_ENTERPRISE
PEOPLE = (
    Person(person_id="D1", name="值守", role="duty", phone="+8613900000002"),
    Person(person_id="M1", name="应急局", role="emergency", phone="+8613900000007"),
)


def plain_record(warning_id: str, level: int, raised_at: float, policy: Policy) -> WarningRecord:
    return sample_warning(warning_id, level, raised_at, policy.deadlines)


@dataclass
class App:
    store: FakeWarnings
    timers: WorkflowTimers
    service: WorkflowService


def build_app(policy: Policy, executions: Any, clock: Callable[[], float]) -> App:
    store = FakeWarnings(deadlines=policy.deadlines, clock=clock)  # the warnings and the escalator, in memory
    directory = FakeRegistry(enterprises=[ENTERPRISE], people=PEOPLE)
    timers = WorkflowTimers(executions, store, clock)
    service = WorkflowService(policy, timers, executions, store, store, store, directory, None, None, clock=clock)
    return App(store, timers, service)


# --- the moto runs -------------------------------------------------------------------------------------------


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=DEFAULT_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Pump(threading.Thread):
    """The local stand-in for the queue's Lambda trigger: due messages → `WorkflowService.handle`."""

    def __init__(self, sqs: Any, url: str, service: WorkflowService) -> None:
        super().__init__(daemon=True)
        self.sqs, self.url, self.service = sqs, url, service
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            messages = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            batch = messages.get("Messages", [])
            if not batch:
                time.sleep(0.1)
                continue
            self.service.handle([WorkflowMessage(m["MessageId"], m["Body"]) for m in batch])
            for m in batch:
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])


@dataclass
class Measured:
    scenario: str
    timers: int
    transitions: int
    per_timer: list[int]
    note: str = ""


class Bench:
    def __init__(self, endpoint_url: str, infra: Provisioned) -> None:
        self.sfn = client("stepfunctions", endpoint_url)
        self.machine = infra.state_machine_arn("DisposalStateMachine")
        self.executions = StepFunctionsExecutions(self.sfn, self.machine)
        self.app = build_app(BENCH_POLICY, self.executions, time.time)
        self.pump = Pump(client("sqs", endpoint_url), infra.queue_url("WorkflowEventQueue"), self.app.service)

    def raise_warning(self, warning_id: str, level: int) -> None:
        self.app.store.put(plain_record(warning_id, level, time.time(), BENCH_POLICY))
        self.app.timers.track(warning_id)

    def act(self, warning_id: str, actor: Actor, payload: dict[str, Any]) -> None:
        before = self.app.store.get(warning_id)
        if payload["type"] == "request_clear" and before is not None and not before.reading_normal:
            self.app.store.put(replace(before, reading_normal=True))  # the reading recovered (the engine's part)
        times = due.stored(before) if before else None
        record = self.app.store.act(actor, warning_id, payload)
        self.app.timers.superseding(self.app.store.get(warning_id) or record, times.version if times else 0)

    def level_up(self, warning_id: str, level: int) -> None:
        record = self.app.store.get(warning_id)
        assert record is not None
        self.app.store.put(replace(record, level=level, peak_level=level, updated_at=time.time()))
        self.app.timers.track(warning_id)

    def executions_of(self, warning_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.machine):
            found.extend(e for e in page["executions"] if str(e["name"]).startswith(f"{warning_id}-"))
        return found

    def settle(self, warning_id: str, timeout_s: float = 30.0) -> None:
        """Until the warning has no running timer (its last one reported) or `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not any(e["status"] == "RUNNING" for e in self.executions_of(warning_id)):
                return
            time.sleep(0.2)

    def measure(self, scenario: str, warning_id: str, note: str = "", since: float | None = None) -> Measured:
        per_timer = []
        for execution in self.executions_of(warning_id):
            events = execution_history(self.sfn, execution["executionArn"])
            per_timer.append(
                sum(
                    1
                    for e in events
                    if str(e["type"]).endswith("StateEntered")
                    and (since is None or e["timestamp"].timestamp() >= since)
                )
            )
        return Measured(scenario, len(per_timer), sum(per_timer), per_timer, note)


def handled_in_time(bench: Bench, wid: str) -> Measured:
    bench.raise_warning(wid, Level.RED)
    for payload, actor in (
        ({"type": "acknowledge"}, ENTERPRISE_ACTOR),
        ({"type": "verify", "outcome": "real"}, ENTERPRISE_ACTOR),
        ({"type": "start_disposal", "note": "关阀泄压"}, ENTERPRISE_ACTOR),
        ({"type": "request_clear", "reason": "disposed", "text": "已处置，液位恢复"}, ENTERPRISE_ACTOR),
        ({"type": "confirm_closure"}, DUTY_ACTOR),
    ):
        time.sleep(0.3)
        bench.act(wid, actor, payload)
    bench.settle(wid)
    time.sleep(1.0)
    return bench.measure("handled in time (red: ack, verify, dispose, clear, confirm, archive)", wid)


def missed_to_tier3(bench: Bench, wid: str) -> Measured:
    bench.raise_warning(wid, Level.RED)
    time.sleep(BENCH_POLICY.deadlines.red.clear_s + 2)
    bench.settle(wid, 5)
    return bench.measure("red missed to tier 3, reminders (bench: every 1 s for 9 s)", wid)


def level_up_midway(bench: Bench, wid: str) -> Measured:
    bench.raise_warning(wid, Level.ORANGE)
    time.sleep(3.0)  # orange acknowledge (2 s) missed: tier 1
    bench.level_up(wid, Level.RED)  # re-arm at red; the tier 1 re-told to red's audience
    time.sleep(1.5)
    for payload, actor in (
        ({"type": "acknowledge"}, ENTERPRISE_ACTOR),
        ({"type": "verify", "outcome": "real"}, ENTERPRISE_ACTOR),
        ({"type": "start_disposal", "note": "关阀泄压"}, ENTERPRISE_ACTOR),
        ({"type": "request_clear", "reason": "disposed", "text": "已处置"}, ENTERPRISE_ACTOR),
        ({"type": "confirm_closure"}, DUTY_ACTOR),
    ):
        time.sleep(0.3)
        bench.act(wid, actor, payload)
    bench.settle(wid)
    time.sleep(1.0)
    return bench.measure("level-up mid-way (orange tier 1 missed → red, then handled)", wid)


def clear_awaiting_confirmation(bench: Bench, wid: str) -> Measured:
    bench.raise_warning(wid, Level.RED)
    for payload in (
        {"type": "acknowledge"},
        {"type": "verify", "outcome": "real"},
        {"type": "start_disposal", "note": "关阀泄压"},
        {"type": "request_clear", "reason": "disposed", "text": "已处置"},
    ):
        time.sleep(0.2)
        bench.act(wid, ENTERPRISE_ACTOR, payload)
    time.sleep(BENCH_POLICY.deadlines.red.clear_s + 1)  # confirm (3 s) and clear (9 s) both missed
    bench.settle(wid, 5)
    return bench.measure("clear awaiting confirmation (confirm → tier 3, clear → tier 3)", wid)


def repaired(bench: Bench, wid: str) -> Measured:
    bench.raise_warning(wid, Level.RED)
    time.sleep(0.3)
    bench.act(wid, ENTERPRISE_ACTOR, {"type": "acknowledge"})
    record = bench.app.store.get(wid)
    times = due.stored(record) if record else None
    assert times is not None and times.timer is not None
    time.sleep(0.3)
    bench.executions.stop(times.timer)  # the timer is lost
    time.sleep(BENCH_POLICY.workflow.sweep_grace_s + 0.2)
    report = bench.app.service.sweep()
    note = f"sweeper repaired {len(report.repaired)}"
    for payload, actor in (
        ({"type": "verify", "outcome": "real"}, ENTERPRISE_ACTOR),
        ({"type": "start_disposal", "note": "关阀泄压"}, ENTERPRISE_ACTOR),
        ({"type": "request_clear", "reason": "disposed", "text": "已处置"}, ENTERPRISE_ACTOR),
        ({"type": "confirm_closure"}, DUTY_ACTOR),
    ):
        time.sleep(0.3)
        bench.act(wid, actor, payload)
    bench.settle(wid)
    time.sleep(1.0)
    return bench.measure("repaired execution (timer stopped, sweeper re-arms, handled)", wid, note)


IDLE_S = 8.0


def idle(bench: Bench, wid: str) -> Measured:
    bench.raise_warning(wid, Level.YELLOW)  # acknowledge due in 30 s, no reminders: nothing due for 30 s
    time.sleep(1.0)
    since = time.time()
    time.sleep(IDLE_S)
    measured = bench.measure(f"nothing due ({IDLE_S:.0f} s of a yellow's 30 s to acknowledge)", wid, since=since)
    bench.executions.stop(f"{wid}-1")
    return measured


# --- the production policy on a simulated clock ----------------------------------------------------------------


def simulated_timers(level: int, horizon_s: float, acknowledge_after_s: float | None = None) -> int:
    """Timers the app arms for one warning under the production policy over `horizon_s` after the raise (the real
    service and domain, fake executions, the clock jumping to each next due time)."""
    now = [1_800_000_000.0]
    executions = FakeExecutions()
    app = build_app(PRODUCTION_POLICY, executions, lambda: now[0])
    start = now[0]
    app.store.put(plain_record("WSIM", level, start, PRODUCTION_POLICY))
    app.timers.track("WSIM")
    acknowledged = acknowledge_after_s is None
    while True:
        record = app.store.get("WSIM")
        times = due.stored(record) if record else None
        if times is None or times.next_due is None:
            break
        if not acknowledged and start + (acknowledge_after_s or 0) < times.next_due:
            now[0] = start + (acknowledge_after_s or 0)
            version = times.version
            app.store.act(ENTERPRISE_ACTOR, "WSIM", {"type": "acknowledge"})
            fresh = app.store.get("WSIM")
            assert fresh is not None
            app.timers.superseding(fresh, version)
            acknowledged = True
            continue
        if times.next_due > start + horizon_s:
            break
        now[0] = max(now[0], times.next_due)
        body = json.dumps({"type": "due", "warning_id": "WSIM", "due_version": times.version})
        app.service.handle([WorkflowMessage("m", body)])
    return len(executions.started)


# --- report ----------------------------------------------------------------------------------------------------


def usd(transitions: float) -> str:
    return f"${transitions / 1000 * PRICE_PER_1000_TRANSITIONS:,.2f}"


MIX = (  # assumed share of warnings per month
    ("handled in time", 0.70),
    ("level-up mid-way", 0.10),
    ("clear awaiting confirmation", 0.05),
    ("repaired execution", 0.05),
    ("red missed to tier 3 (production)", 0.10),
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Disposal workflow bench (bench/workflow.py).")
    parser.add_argument("--json", metavar="PATH", help="also write the transitions per warning as JSON")
    args = parser.parse_args()
    began = time.perf_counter()
    quiet_moto_asl_logging()
    server, endpoint_url = start_moto_server()
    try:
        infra = provision(endpoint_url, stage="bench")
        bench = Bench(endpoint_url, infra)
        bench.pump.start()
        scenarios: dict[str, Callable[[Bench, str], Measured]] = {
            "in_time": handled_in_time,
            "tier3": missed_to_tier3,
            "level_up": level_up_midway,
            "confirm": clear_awaiting_confirmation,
            "repaired": repaired,
            "idle": idle,
        }
        results: dict[str, Measured] = {}

        def run(key: str, index: int) -> None:
            results[key] = scenarios[key](bench, f"WB{index:03d}")

        threads = [threading.Thread(target=run, args=(k, i)) for i, k in enumerate(scenarios)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bench.pump.stopping.set()
        bench.pump.join(timeout=5)
        for name in bench.executions.running_names():  # timers would report to a server that is going away
            bench.executions.stop(name)
    finally:
        server.stop()

    complete = [n for m in results.values() for n in m.per_timer if n >= 3]
    per_timer = max(complete) if complete else 3
    tier3_timers = simulated_timers(Level.RED, PRODUCTION_POLICY.deadlines.red.clear_s)
    tier3_transitions = tier3_timers * per_timer
    red = PRODUCTION_POLICY.deadlines.red

    print(
        "Disposal workflow bench: the real ASL on moto 5.2.5 (execute_state_machine on), one warning per scenario "
        "through WorkflowService; transitions = …StateEntered events summed over the warning's timers"
    )
    print(f"  bench deadlines (red): {BENCH_POLICY.deadlines.red.model_dump()}")
    print()
    header = f"{'scenario':<72} {'timers':>6} {'transitions':>11} {'target':>7}  result"
    print(header)
    print("-" * len(header))
    rows: list[tuple[str, int, int, int | None]] = [
        (results["in_time"].scenario, results["in_time"].timers, results["in_time"].transitions, TARGET_IN_TIME),
        (results["tier3"].scenario, results["tier3"].timers, results["tier3"].transitions, None),
        (
            f"red missed to tier 3, reminders every {red.reminder_s / 60:.0f} min for {red.clear_s / 3600:.0f} h "
            "(production, derived*)",
            tier3_timers,
            tier3_transitions,
            TARGET_TIER3,
        ),
        (results["level_up"].scenario, results["level_up"].timers, results["level_up"].transitions, None),
        (results["confirm"].scenario, results["confirm"].timers, results["confirm"].transitions, None),
        (results["repaired"].scenario, results["repaired"].timers, results["repaired"].transitions, None),
        (results["idle"].scenario, results["idle"].timers, results["idle"].transitions, TARGET_IDLE),
    ]
    for name, timers, transitions, target in rows:
        verdict = "" if target is None else ("PASS" if transitions <= target else "FAIL")
        print(f"{name:<72} {timers:>6} {transitions:>11} {'' if target is None else f'≤ {target}':>7}  {verdict}")
    print(
        f"  * {tier3_timers} timers armed by the domain (chalicelib/domain/due.py through WorkflowService, "
        f"simulated clock, production policy, red reminder_s = {red.reminder_s:.0f}) × {per_timer} transitions "
        "per timer measured on moto"
    )
    print(f"  repaired: {results['repaired'].note}; per-timer transitions there: {results['repaired'].per_timer}")
    print()

    per_warning = {
        "handled in time": results["in_time"].transitions,
        "level-up mid-way": results["level_up"].transitions,
        "clear awaiting confirmation": results["confirm"].transitions,
        "repaired execution": results["repaired"].transitions,
        "red missed to tier 3 (production)": tier3_transitions,
    }
    mean = sum(share * per_warning[name] for name, share in MIX)
    print(
        f"Step Functions cost (Standard, ${PRICE_PER_1000_TRANSITIONS} per 1,000 transitions, "
        "us-east-1 list price; AWS China prices not used, see docs/costs.md)"
    )
    print("  assumed mix: " + ", ".join(f"{name} {share:.0%} ({per_warning[name]})" for name, share in MIX))
    print(f"  mean transitions per warning: {mean:.1f}")
    for warnings in (10_000, 1_000_000):
        print(
            f"  {warnings:>9,} warnings/month: {mean * warnings:>13,.0f} transitions"
            f"  {usd(mean * warnings):>10}/month"
        )
    day = 86_400.0
    acked = simulated_timers(Level.RED, day, acknowledge_after_s=60)
    never = simulated_timers(Level.RED, day)
    print("  10,000 warnings kept open for a day (production policy, simulated clock, × per-timer transitions):")
    for label, timers in (
        ("red acknowledged at 1 min, never cleared", acked),
        (f"red never acknowledged (a reminder every {red.reminder_s / 60:.0f} min all day)", never),
    ):
        transitions = timers * per_timer * 10_000
        print(
            f"    {label:<62} {timers:>4} timers/warning  {transitions:>12,.0f} transitions"
            f"  {usd(transitions):>9}/day"
            f"  {usd(transitions * 30):>10}/month"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            figures = {"mean_transitions_per_warning": mean, "per_warning": per_warning, "mix": dict(MIX)}
            json.dump(figures, out, indent=2)
    print(f"\nbench wall time {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
