"""How close to its due time a disposal timer wakes the app: the real ASL on moto, measured, not asserted.

Timers are started the way the app arms them (`WorkflowTimers`: `wait_s` = whole seconds rounded down, half a
second short, so a timer wakes 0.5–1.5 s early), with due times spread over fractions of a second. A reader polls
the workflow queue every `POLL_S` (on AWS the Lambda trigger long-polls) and notes when each due message arrives.
The handler sleeps the rest when a message comes early (`WorkflowPolicy.early_wake_s`), so the
moment it acts is `max(arrival, due_at)`: the lateness printed is that moment minus the stored due time. The
handler's own reads and writes come on top (a few milliseconds against DynamoDB; more on moto).

Run: `python -m bench.timers [count]` (default 40 timers). Figures depend on the machine's load: run it quiet.
"""

from __future__ import annotations

import json
import statistics
import sys
import threading
import time
from typing import Any

import boto3

from chalicelib.domain import due
from chalicelib.domain.catalog import build_policy
from local.aws import DEFAULT_REGION, provision, start_moto_server
from local.sfn import quiet_moto_asl_logging, start_timer

POLL_S = 0.2  # local/runtime.py: the workflow queue poller's tick
SPREAD_S = 3.0  # due times fall between 1 s and 1 s + SPREAD_S after the start


def client(service: str, endpoint_url: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=DEFAULT_REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(count: int = 40) -> None:
    quiet_moto_asl_logging()
    early_wake_s = build_policy().workflow.early_wake_s
    server, endpoint_url = start_moto_server()
    try:
        infra = provision(endpoint_url, stage="bench")
        sfn, sqs = client("stepfunctions", endpoint_url), client("sqs", endpoint_url)
        machine = infra.state_machine_arn("DisposalStateMachine")
        queue = infra.queue_url("WorkflowEventQueue")
        arrivals: dict[str, float] = {}
        due_at: dict[str, float] = {}
        stopping = threading.Event()

        def read() -> None:
            while not stopping.is_set():
                batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
                now = time.time()
                for message in batch.get("Messages", []):
                    body = json.loads(message["Body"])
                    arrivals[body["warning_id"]] = now
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
                stopping.wait(POLL_S)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        began = time.time()
        for index in range(count):
            warning_id = f"WT{index:04d}"
            now = time.time()
            due_at[warning_id] = began + 1.0 + SPREAD_S * index / count
            payload = {
                "warning_id": warning_id,
                "due_version": 1,
                "wait_s": due.wait_seconds(due_at[warning_id], now),
                "due_at": due_at[warning_id],
            }
            start_timer(sfn, machine, f"{warning_id}-1", payload)
        deadline = time.monotonic() + 60 + SPREAD_S
        while len(arrivals) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        stopping.set()
        reader.join(timeout=5)
    finally:
        server.stop()

    early = [due_at[w] - arrivals[w] for w in arrivals if arrivals[w] < due_at[w]]
    too_early = [e for e in early if e > early_wake_s]
    lateness = [max(arrivals[w], due_at[w]) - due_at[w] for w in arrivals]
    print(f"Disposal timer precision: {count} timers of the real ASL on moto, queue polled every {POLL_S:.1f} s")
    print(f"  arrived: {len(arrivals)} of {count}; early (the handler sleeps the rest): {len(early)}")
    if early:
        print(f"  earliest arrival: {max(early):.2f} s before the due time (early_wake_s = {early_wake_s})")
    print(f"  woken more than early_wake_s early (would re-arm): {len(too_early)}")
    if lateness:
        print(
            f"  lateness after the due time: median {statistics.median(lateness):.2f} s, "
            f"p95 {percentile(lateness, 0.95):.2f} s, max {max(lateness):.2f} s "
            f"(bound: 1 s + one tick = {1 + POLL_S:.1f} s)"
        )
    if len(arrivals) < count:
        raise SystemExit(f"{count - len(arrivals)} timers never reported")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
