"""Logs, metrics and traces (AWS Lambda Powertools), one service name for all (docs/operations.md "Observability").

- `logger`: the service's Powertools logger (JSON on stdout). Modules log through child loggers,
  `Logger(service=SERVICE, child=True, level=INHERIT)`, which write through this one and follow its level.
  Chalice's own `app.log` is the same logger (same name), so its lines are JSON too.
- `count(name, value, **dimensions)`: a CloudWatch metric (EMF). Without dimensions it goes to the shared
  `Metrics` set; with dimensions it is summed per dimension set and written as one EMF document per set, because
  a Powertools `Metrics` document has one dimension set for all its metrics. Dimension values are small closed sets
  (level, sector, reason, channel, tier, stage, site), never an enterprise, device, warning or person.
- `observe`: the Chalice middleware of every handler: Lambda context and correlation keys on every line (what
  `inject_lambda_context` adds, kept context-local), the invocation's metrics flushed at its end (`log_metrics`,
  cold start counted), and an X-Ray segment (`capture_lambda_handler`) when tracing is on.
- Tracing is on only inside Lambda (Powertools' rule, `POWERTOOLS_TRACE_DISABLED=true` turns it off); the X-Ray
  SDK is imported and botocore patched on the first traced invocation, so `import app` never pays for it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.metrics import EphemeralMetrics, Metrics, MetricUnit
from aws_lambda_powertools.utilities import jmespath_utils

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "dayingji"
INHERIT = logging.NOTSET  # child loggers follow the service logger's level
NAMESPACE = "dayingji"
TRACED_MODULES = ("botocore",)  # boto3 and PynamoDB (which calls DynamoDB through botocore) alike

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# An API call or a quiet schedule often counts nothing: that is not worth a warning per invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish", module="aws_lambda_powertools")

P = ParamSpec("P")
R = TypeVar("R")
Dimensions = tuple[tuple[str, str], ...]

_lock = threading.Lock()
_dimensioned: dict[Dimensions, dict[str, float]] = {}


# --- metrics ------------------------------------------------------------------------------------------------


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Add `value` to the metric `name` under `dimensions` (flushed at the end of the invocation)."""
    if not dimensions:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return
    key = tuple(sorted((dimension, str(label)) for dimension, label in dimensions.items()))
    with _lock:
        counts = _dimensioned.setdefault(key, {})
        counts[name] = counts.get(name, 0) + value


def swallowed(site: str) -> None:
    """Count an exception that was handled without reaching the caller (`SwallowedErrors`, by `site`)."""
    count("SwallowedErrors", site=site)


def flush_dimensioned() -> int:
    """Write one EMF document per dimension set counted since the last flush; returns how many."""
    with _lock:
        pending = dict(_dimensioned)
        _dimensioned.clear()
    for dimensions, counts in pending.items():
        document = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        for dimension, label in dimensions:
            document.add_dimension(name=dimension, value=label)
        for name, value in counts.items():
            document.add_metric(name=name, unit=MetricUnit.Count, value=value)
        document.flush_metrics()
    return len(pending)


# --- tracing ------------------------------------------------------------------------------------------------


def tracing_enabled() -> bool:
    """Powertools' own rule: inside Lambda, not under SAM or Chalice local, unless POWERTOOLS_TRACE_DISABLED."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in {"1", "true", "yes", "on"}:
        return False
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    return in_lambda and not (os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))


@functools.lru_cache(maxsize=1)
def tracer() -> Tracer | None:
    """The service's tracer (botocore patched), or None when tracing is off; built on first use."""
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE, patch_modules=TRACED_MODULES)


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """An X-Ray subsegment `## {name}` around each call when tracing is on (a plain call otherwise)."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            active = tracer()
            if active is None:
                return function(*args, **kwargs)
            with active.provider.in_subsegment(name=f"## {name}"):
                return function(*args, **kwargs)

        return call

    return decorate


# --- correlation keys ---------------------------------------------------------------------------------------


@contextmanager
def correlated(**keys: Any) -> Iterator[None]:
    """Add `keys` to every log line of this thread until the block ends (the local runtime runs handlers on
    several threads, so per-invocation keys are context-local, never the shared formatter's)."""
    keys = {key: value for key, value in keys.items() if value is not None}
    logger.thread_safe_append_keys(**keys)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(keys)


# --- the handler middleware ---------------------------------------------------------------------------------


class _NoContext:
    """Stands in for the Lambda context when a caller passes none (a test or a bench calling a handler)."""

    function_name = "local"
    memory_limit_in_mb = 0
    invoked_function_arn = "local"
    aws_request_id = "local"


_COLD = {"start": True}
_COLD_LOCK = threading.Lock()


def _cold_start() -> bool:
    """True for this process's first invocation only."""
    with _COLD_LOCK:
        cold, _COLD["start"] = _COLD["start"], False
        return cold


def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware (`app.register_middleware(observe, "all")`) for routes and event handlers alike."""
    logger.thread_safe_clear_keys()
    if hasattr(event, "to_original_event"):  # an API request
        original, context, http = event.to_original_event(), event.lambda_context, True
    else:
        original, context, http = event.to_dict(), event.context, False

    def handler(_event: Any, _context: Any) -> Any:
        try:
            if http:
                return _answer(event, get_response)
            return get_response(event)
        finally:
            flush_dimensioned()

    wrapped = metrics.log_metrics(handler, capture_cold_start_metric=True)
    active = tracer()
    if active is not None:
        wrapped = active.capture_lambda_handler(wrapped, capture_response=False, capture_error=False)
    context = context or _NoContext()
    # what `logger.inject_lambda_context` adds, but context-local: its keys live in the formatter every thread
    # shares, so the local runtime's handlers (one thread each) would tag each other's lines
    logger.thread_safe_append_keys(cold_start=_cold_start(), **build_lambda_context_model(context).__dict__)
    if http:
        logger.thread_safe_append_keys(
            correlation_id=jmespath_utils.query(envelope=correlation_paths.API_GATEWAY_REST, data=original)
        )
    try:
        return wrapped(original, context)
    finally:
        metrics.clear_metrics()  # flush does not clear when POWERTOOLS_METRICS_DISABLED (the local runtime)
        logger.thread_safe_clear_keys()


def _answer(request: Any, get_response: Callable[[Any], Any]) -> Any:
    """Route and method on every line of the call, and one line with the status and the time it took."""
    context = request.context or {}
    started = time.perf_counter()
    with correlated(route=context.get("resourcePath"), method=request.method):
        response = get_response(request)
        status = int(getattr(response, "status_code", 200))
        line = logger.error if status >= 500 else logger.info
        line("api call answered", extra={"status": status, "ms": round((time.perf_counter() - started) * 1000)})
    return response
