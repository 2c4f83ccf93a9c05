"""Cold start of the ingest function: the CPU of `import app` and of the first `app.ingest` call in a fresh Python
process, which modules the ingest loads that only the API needs, and what the first batch after a cold start
takes on the configured memory by the cost model (CPU scaled to the memory's vCPU share, 1,769 MB = 1 vCPU, plus
one round trip per AWS call).

Run: .venv/bin/python -m bench.coldstart [--runs N] [--records R]

The parent starts moto's server, provisions infra/resources.json and seeds the registry (bench.ingest's `prepare`),
writes a Kinesis event of R fleet messages (default: the ingest's configured batch size) to a file, and starts N
fresh interpreters with the deployed function's environment. Each child reads the event with the standard library
only, then times `import app` and the first and second `app.ingest` calls (`time.process_time`: the child's own
CPU; moto answers in the parent) and counts its AWS requests. Figures: the median over the runs.

The children import the app from a copy of what the package ships of it (app.py and chalicelib/), in two forms:
as sources, which Python compiles on every cold start (Lambda's /var/task is read-only, so no bytecode is ever
cached there), and with every module's .pyc beside it (unchecked-hash: valid whatever the files' times). The
dependencies come from the virtualenv, precompiled by pip; `scripts/package.sh` compiles the package's modules
(`scripts/bytecode.py`), so the targets are judged on the second form; each child also reports what compiling the
dependencies' loaded modules would cost a package without bytecode (after its timings).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_CPU_S = 0.300  # import app + the first ingest call, CPU on this machine
TARGET_FIRST_BATCH_S = 1.0  # by the cost model on the configured memory
SOURCES, PRECOMPILED = "sources", "precompiled"  # the two forms of the app the children import
# Modules only the API's routes need (views, request models, console, auth, reports and the services behind them):
# the ingest function should not load them. (Some of the evaluation's domain modules come in through the policy,
# domain/catalog.py, which every function builds; chalicelib.services.declarations is the ingest's too.)
API_ONLY_PREFIXES = (
    "chalicelib.api.views",
    "chalicelib.api.models",
    "chalicelib.api.console",
    "chalicelib.api.auth",
    "chalicelib.reports",
    "chalicelib.services.warning_actions",
    "chalicelib.services.evaluation",
    "chalicelib.services.rectification",
    "chalicelib.services.registry_admin",
    "openpyxl",
    "jwt",
)

CHILD = r"""
import json, sys, time
event = json.load(open(sys.argv[1]))
began = time.process_time()
import app
imported = time.process_time()
import botocore.endpoint
requests = 0
operations = {}
send = botocore.endpoint.Endpoint._send
def counting(self, request):
    global requests
    requests += 1
    target = request.headers.get("X-Amz-Target", b"")
    target = target.decode() if isinstance(target, bytes) else str(target)
    name = target.rpartition(".")[2] or request.url.rsplit("/", 1)[-1][:40] or "?"
    if requests_counting_first:
        operations[name] = operations.get(name, 0) + 1
    return send(self, request)
requests_counting_first = True
botocore.endpoint.Endpoint._send = counting
class Context:
    function_name = "dayingji-coldstart-ingest"
    aws_request_id = "coldstart"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:dayingji-coldstart-ingest"
    memory_limit_in_mb = 1024
    def get_remaining_time_in_millis(self): return 60000
before_first = time.process_time()
first = app.ingest(event, Context())
after_first = time.process_time()
first_requests = requests
requests_counting_first = False
second = app.ingest(event, Context())
after_second = time.process_time()
compiled = {"modules": 0, "cpu_s": 0.0}
if sys.argv[2] == "measure-compile":  # what a package without the dependencies' .pyc adds to a cold start
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if "site-packages" in path and path.endswith(".py"):
            source = open(path, "rb").read()
            start = time.process_time()
            compile(source, path, "exec", dont_inherit=True)
            compiled["cpu_s"] += time.process_time() - start
            compiled["modules"] += 1
print(json.dumps({
    "dependencies_compile": compiled,
    "import_s": imported - began,
    "first_s": after_first - before_first,
    "second_s": after_second - after_first,
    "first_requests": first_requests,
    "first_operations": operations,
    "failures": len(first["batchItemFailures"]),
    "modules": sorted(sys.modules),
}))
"""


def packaged_app(directory: Path, precompiled: bool) -> Path:
    """What the package ships of the app (app.py, chalicelib/) copied under `directory`, without any bytecode the
    working tree may hold; `precompiled`: with each module's .pyc beside it, as a package step could ship them."""
    shutil.copy2(ROOT / "app.py", directory / "app.py")
    shutil.copytree(ROOT / "chalicelib", directory / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    if precompiled:
        mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
        compileall.compile_dir(directory / "chalicelib", quiet=1, invalidation_mode=mode)
        compileall.compile_file(directory / "app.py", quiet=1, invalidation_mode=mode)
    return directory


def child_run(event_path: str, env: dict[str, str], app_dir: Path, measure_compile: bool) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", CHILD, event_path, "measure-compile" if measure_compile else "-"],
        cwd=app_dir,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},  # the sources stay sources, as on Lambda
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main() -> None:
    from bench.costs import AWS_CALL_RTT_S, IngestSizing
    from bench.ingest import kinesis_event, prepare
    from local.aws import start_moto_server
    from local.fleet import Fleet, SimMessage
    from local.seed import load_seed

    sizing = IngestSizing.deployed()
    parser = argparse.ArgumentParser(description="Ingest cold start (bench/coldstart.py).")
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters (default 5)")
    parser.add_argument("--records", type=int, default=sizing.batch_size, help="records in the first batch")
    args = parser.parse_args()

    registry = load_seed()
    server, endpoint_url = start_moto_server()
    try:
        env = prepare(endpoint_url, registry)
        fleet = Fleet(registry, seed=7, incidents=())
        messages: list[SimMessage] = []
        step = 0
        while len(messages) < args.records:
            messages += list(fleet.step(step, 1_764_370_800.0 + step * 10.0, spread_s=9.0))
            step += 1
        event = kinesis_event(messages[: args.records], 1, env.infra)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "event.json")
            Path(path).write_text(json.dumps(event), encoding="utf-8")
            child_env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "false"}
            forms: dict[str, Path] = {}
            for form in (SOURCES, PRECOMPILED):
                os.makedirs(Path(directory, form))
                forms[form] = packaged_app(Path(directory, form), precompiled=form == PRECOMPILED)
            runs: dict[str, list[dict[str, Any]]] = {form: [] for form in forms}
            for _ in range(args.runs):
                for form, app_dir in forms.items():  # alternated: a drift of the shared machine hits both
                    runs[form].append(child_run(path, child_env, app_dir, measure_compile=form == PRECOMPILED))
                    prepare(endpoint_url, registry)  # an empty device state again: the next child starts as cold
    finally:
        server.stop()

    def median(form: str, key: str) -> float:
        return statistics.median(float(run[key]) for run in runs[form])

    figures = {
        form: (median(form, "import_s"), median(form, "first_s"), median(form, "second_s")) for form in runs
    }
    requests = median(SOURCES, "first_requests")
    compile_s = statistics.median(run["dependencies_compile"]["cpu_s"] for run in runs[PRECOMPILED])
    compiled_modules = runs[PRECOMPILED][0]["dependencies_compile"]["modules"]
    loaded = sorted(
        {
            m
            for form_runs in runs.values()
            for run in form_runs
            for m in run["modules"]
            if any(m == p or m.startswith(p + ".") for p in API_ONLY_PREFIXES)
        }
    )
    print(
        f"Ingest cold start: {args.runs} fresh interpreters per form of the app, a first batch of {args.records} "
        f"fleet messages (moto at {endpoint_url}; median CPU of the child process, time.process_time)"
    )
    print(f"  {'':28}{'app as sources':>16}{'app with .pyc':>16}")
    for label, index in (("import app", 0), ("first app.ingest call", 1), ("second app.ingest call", 2)):
        cells = "".join(f"{figures[form][index] * 1e3:>10.0f} ms CPU" for form in (SOURCES, PRECOMPILED))
        print(f"  {label:28}{cells}")
    operations = runs[SOURCES][len(runs[SOURCES]) // 2]["first_operations"]
    by_operation = ", ".join(f"{name} {count}" for name, count in sorted(operations.items(), key=lambda i: -i[1]))
    print(f"  first call's AWS requests   {requests:.0f} ({by_operation}); the second call: the same records")
    print(
        f"  batch-item failures         {max(run['failures'] for form_runs in runs.values() for run in form_runs)}"
    )
    print(f"  API-only modules loaded     {', '.join(loaded) if loaded else 'none'}")
    print(
        f"  compiling the dependencies' {compiled_modules} loaded modules: {compile_s * 1e3:.0f} ms CPU "
        "(a package without bytecode would make Lambda do it on every cold start: not in the figures above)"
    )
    sources_cpu = sum(figures[SOURCES][:2])
    precompiled_cpu = sum(figures[PRECOMPILED][:2])
    rtt = requests * AWS_CALL_RTT_S
    print(f"  first batch after a cold start at {sizing.memory_mb} MB ({sizing.vcpu:.3f} vCPU), by the model:")
    print(
        f"    all as sources (no bytecode):      ({sources_cpu * 1e3:.0f} + {compile_s * 1e3:.0f}) ms / "
        f"{sizing.vcpu:.3f} + {requests:.0f} x {AWS_CALL_RTT_S * 1e3:.0f} ms = "
        f"{((sources_cpu + compile_s) / sizing.vcpu + rtt) * 1e3:.0f} ms"
    )
    modelled = precompiled_cpu / sizing.vcpu + rtt
    print(
        f"    all with .pyc (the package):       {precompiled_cpu * 1e3:.0f} ms / {sizing.vcpu:.3f} + "
        f"{requests:.0f} x {AWS_CALL_RTT_S * 1e3:.0f} ms = {modelled * 1e3:.0f} ms"
    )
    print("\ntargets (the package as scripts/package.sh builds it: every module with its .pyc)")
    print(
        f"  import app + first ingest call <= {TARGET_CPU_S * 1e3:.0f} ms CPU: {precompiled_cpu * 1e3:.0f} ms  "
        f"{'PASS' if precompiled_cpu <= TARGET_CPU_S else 'FAIL'}"
    )
    print(
        f"  first batch after a cold start <= {TARGET_FIRST_BATCH_S:.0f} s (model, {sizing.memory_mb} MB): "
        f"{modelled:.2f} s  {'PASS' if modelled <= TARGET_FIRST_BATCH_S else 'FAIL'}"
    )
    print(f"  API-only modules loaded by the ingest: {len(loaded)}  {'PASS' if not loaded else 'FAIL'}")
    print(f"\nbench time {time.perf_counter() - began_at:.0f} s")


began_at = time.perf_counter()

if __name__ == "__main__":
    main()
