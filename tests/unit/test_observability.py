"""Logs, metrics and traces (docs/operations.md "Observability"): the EMF documents a handler prints, their
dimensions (never an enterprise, device or warning id), the correlation keys on the log lines, and tracing off
outside Lambda without importing the X-Ray SDK."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib import observability
from chalicelib.domain import due
from chalicelib.observability import NAMESPACE, SERVICE, count, flush_dimensioned, logger, observe, swallowed
from chalicelib.services.workflow import WorkflowMessage
from tests.unit.test_ingest_delivery import RAISING_BATCH, World, deliver_until_done
from tests.unit.test_workflow_service import World as WorkflowWorld
from tests.unit.test_workflow_service import record, without_reminders

IDS_NEVER_DIMENSIONS = {"enterprise_id", "device_id", "warning_id", "person_id", "phone", "unit_id"}


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    flush_dimensioned()
    observability.metrics.clear_metrics()
    yield
    flush_dimensioned()
    observability.metrics.clear_metrics()


def emf_documents(text: str) -> list[dict[str, Any]]:
    """The CloudWatch EMF documents among printed lines."""
    documents = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            documents.append(json.loads(line))
    return documents


def metric_points(documents: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(metric name, its dimensions) -> value, summed over the documents."""
    points: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        [names] = directive["Dimensions"]
        dimensions = tuple(sorted((name, str(document[name])) for name in names))
        for metric in directive["Metrics"]:
            value = document[metric["Name"]]
            total = sum(value) if isinstance(value, list) else value
            key = (metric["Name"], dimensions)
            points[key] = points.get(key, 0) + total
    return points


@dataclass
class FakeEvent:
    """What Chalice hands a middleware for a stream or queue event."""

    records: list[dict[str, Any]]
    context: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"Records": self.records}


@dataclass
class FakeContext:
    function_name: str = "dayingji-test-ingest"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:cn-north-1:123456789012:function:dayingji-test-ingest"
    aws_request_id: str = "req-1"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The service logger's JSON lines (its handler keeps the stream it was built with: swap it)."""
    handler: Any = logger.registered_handler
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        yield buffer
    finally:
        handler.setStream(previous)


def lines_of(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


# --- metrics ------------------------------------------------------------------------------------------------


def test_counts_with_different_dimensions_are_written_one_document_per_dimension_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    count("WarningsRaised", level="red", sector="fire")
    count("WarningsRaised", level="red", sector="fire")
    count("WarningsRaised", level="orange", sector="hazchem")
    assert flush_dimensioned() == 2

    points = metric_points(emf_documents(capsys.readouterr().out))
    assert points == {
        ("WarningsRaised", (("level", "red"), ("sector", "fire"), ("service", SERVICE))): 2,
        ("WarningsRaised", (("level", "orange"), ("sector", "hazchem"), ("service", SERVICE))): 1,
    }


def test_a_handler_flushes_its_metrics_at_the_end_of_each_invocation_and_counts_its_cold_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def handler(event: Any) -> str:
        count("MessagesReceived", 3)
        swallowed("test.site")
        return "done"

    assert observe(FakeEvent([{}, {}, {}], FakeContext()), handler) == "done"
    first = metric_points(emf_documents(capsys.readouterr().out))
    assert first[("MessagesReceived", (("service", SERVICE),))] == 3
    assert first[("SwallowedErrors", (("service", SERVICE), ("site", "test.site")))] == 1

    observe(FakeEvent([{}], FakeContext()), handler)
    second = metric_points(emf_documents(capsys.readouterr().out))
    assert second[("MessagesReceived", (("service", SERVICE),))] == 3  # this invocation's, not a running sum
    assert not any(name == "ColdStart" for name, _ in second)


def test_nothing_is_printed_and_nothing_piles_up_when_metrics_are_disabled(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    def handler(event: Any) -> None:
        count("MessagesReceived", 150)
        count("WarningsRaised", level="red", sector="fire")

    for _ in range(3):
        observe(FakeEvent([{}]), handler)
    assert emf_documents(capsys.readouterr().out) == []
    assert observability.metrics.metric_set == {}


def test_a_raise_is_counted_by_level_and_sector_and_each_delivery_by_channel(
    capsys: pytest.CaptureFixture[str],
) -> None:
    world = World()
    deliver_until_done(world.container(), list(RAISING_BATCH))
    flush_dimensioned()
    observability.metrics.flush_metrics()

    points = metric_points(emf_documents(capsys.readouterr().out))
    assert points[("WarningsRaised", (("level", "orange"), ("sector", "hazchem"), ("service", SERVICE)))] == 1
    assert points[("DeliveriesSent", (("channel", "topic"), ("service", SERVICE)))] == 1
    assert points[("DeliveriesSent", (("channel", "sms"), ("service", SERVICE)))] == 3
    assert points[("MessagesReceived", (("service", SERVICE),))] == 2
    assert points[("MessagesGraded", (("service", SERVICE),))] == 2
    for _, dimensions in points:
        assert not {name for name, _ in dimensions} & IDS_NEVER_DIMENSIONS


def test_a_retried_device_counts_its_warning_once_when_the_retry_settles_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from chalicelib.services.ports import DeliveryNotSentError

    world = World()
    world.notifier.faults = [DeliveryNotSentError("throttled")]
    assert deliver_until_done(world.container(), list(RAISING_BATCH)) == 2
    flush_dimensioned()

    points = metric_points(emf_documents(capsys.readouterr().out))
    raised = {dims: value for (name, dims), value in points.items() if name == "WarningsRaised"}
    assert list(raised.values()) == [1]
    assert points[("DeliveriesFailed", (("channel", "topic"), ("outcome", "not_sent"), ("service", SERVICE)))] == 1


def test_quarantined_messages_are_counted_by_reason(capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib.services.ingest import IngestRecord

    World().container().handle([IngestRecord("1", b"not json", 1.0), IngestRecord("2", b"{}", 1.0)])
    flush_dimensioned()

    points = metric_points(emf_documents(capsys.readouterr().out))
    assert points[("MessagesQuarantined", (("reason", "schema"), ("service", SERVICE)))] == 2


def test_an_escalation_is_counted_by_tier_and_stage(capsys: pytest.CaptureFixture[str]) -> None:
    world = WorkflowWorld([without_reminders(record())])  # red, raised 600 s ago: acknowledge missed
    assert world.fire().escalations == 1
    flush_dimensioned()

    points = metric_points(emf_documents(capsys.readouterr().out))
    assert points[("Escalations", (("service", SERVICE), ("stage", "acknowledge"), ("tier", "1")))] == 1
    assert points[("DeliveriesSent", (("channel", "sms"), ("service", SERVICE)))] == 2
    assert points[("DeliveriesSent", (("channel", "escalation_topic"), ("service", SERVICE)))] == 1


def test_a_failing_workflow_message_is_logged_with_its_warning_and_counted(
    capsys: pytest.CaptureFixture[str], log_lines: io.StringIO
) -> None:
    world = WorkflowWorld([without_reminders(record())])

    def broken(*args: Any) -> Any:
        raise RuntimeError("store down")

    world.store.act = broken  # type: ignore[method-assign,assignment]
    times = due.stored(world.store.records["WAAAA"])
    assert times is not None
    version = times.version
    body = json.dumps({"type": "due", "warning_id": "WAAAA", "due_version": version})
    report = world.service.handle([WorkflowMessage("m-1", body)])
    flush_dimensioned()
    observability.metrics.flush_metrics()

    assert report.failed_message_ids == ["m-1"]
    points = metric_points(emf_documents(capsys.readouterr().out))
    assert points[("WorkflowFailed", (("service", SERVICE),))] == 1
    assert points[("SwallowedErrors", (("service", SERVICE), ("site", "workflow.message")))] == 1
    [failed] = [line for line in lines_of(log_lines) if line["message"] == "workflow message failed"]
    assert (failed["warning_id"], failed["due_version"], failed["timer"], failed["message_id"]) == (
        "WAAAA",
        version,
        f"WAAAA-{version}",
        "m-1",
    )
    assert failed["level"] == "ERROR" and "RuntimeError" in failed["exception"]


# --- logs ---------------------------------------------------------------------------------------------------


def test_every_line_of_an_invocation_carries_the_lambda_context_and_no_line_after_it_does(
    log_lines: io.StringIO,
) -> None:
    def handler(event: Any) -> None:
        logger.thread_safe_append_keys(shard_id="shardId-000000000001", batch_size=1)
        logger.info("inside")

    observe(FakeEvent([{}], FakeContext(aws_request_id="req-42")), handler)
    logger.info("outside")

    inside, outside = lines_of(log_lines)
    assert inside["service"] == SERVICE and inside["function_request_id"] == "req-42"
    assert (inside["shard_id"], inside["batch_size"]) == ("shardId-000000000001", 1)
    assert "cold_start" in inside
    assert "shard_id" not in outside


def test_a_warning_change_line_names_the_warning_and_the_device_and_no_line_names_a_phone(
    log_lines: io.StringIO,
) -> None:
    from chalicelib.services.ports import SmsUnavailable, SmsUnavailableReason

    world = World()
    world.delivery.sms.faults = [
        SmsUnavailable(SmsUnavailableReason.TIMEOUT, detail="read timeout on +8613900000001", maybe_sent=True)
    ]
    deliver_until_done(world.container(), list(RAISING_BATCH))

    lines = lines_of(log_lines)
    [change] = [line for line in lines if line["message"] == "warning change recorded"]
    assert change["device_id"] == "HC-T-GT1" and change["warning_id"].startswith("W")
    assert (change["change"], change["warning_level"], change["sector"]) == ("raise", "orange", "hazchem")
    assert any(line["message"].startswith("sms outcome unknown") for line in lines)
    assert "+86139" not in log_lines.getvalue()


@dataclass
class FakeRequest:
    """What Chalice hands a middleware for an API call."""

    lambda_context: Any
    method: str = "GET"

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = self.to_original_event()["requestContext"]
        return context

    def to_original_event(self) -> dict[str, Any]:
        return {"requestContext": {"requestId": "api-req-7", "resourcePath": "/warnings/{warning_id}"}}


@dataclass
class FakeResponse:
    status_code: int


def test_an_api_call_line_has_the_request_id_route_role_and_status(log_lines: io.StringIO) -> None:
    def route(request: Any) -> FakeResponse:
        logger.thread_safe_append_keys(actor_role="duty")
        return FakeResponse(200)

    observe(FakeRequest(FakeContext(function_name="dayingji-test")), route)

    [line] = [line for line in lines_of(log_lines) if line["message"] == "api call answered"]
    assert (line["correlation_id"], line["route"], line["method"], line["status"], line["actor_role"]) == (
        "api-req-7",
        "/warnings/{warning_id}",
        "GET",
        200,
        "duty",
    )
    assert line["function_name"] == "dayingji-test" and "authorization" not in json.dumps(line).lower()


def test_two_handlers_on_two_threads_each_log_their_own_lambda_context(log_lines: io.StringIO) -> None:
    import threading

    inside = threading.Barrier(2)

    def handler(event: Any) -> None:
        inside.wait(timeout=10)  # both invocations are under way before either logs
        logger.info("handled")
        inside.wait(timeout=10)

    threads = [
        threading.Thread(target=observe, args=(FakeEvent([], FakeContext(function_name=name)), handler))
        for name in ("deliver", "workflow_events")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    names = sorted(line["function_name"] for line in lines_of(log_lines) if line["message"] == "handled")
    assert names == ["deliver", "workflow_events"]


# --- tracing ------------------------------------------------------------------------------------------------


def test_tracing_is_off_outside_lambda_and_a_traced_method_is_a_plain_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    observability.tracer.cache_clear()
    try:
        assert observability.tracer() is None

        @observability.traced("test.step")
        def step(value: int) -> int:
            return value + 1

        assert step(1) == 2
    finally:
        observability.tracer.cache_clear()


@pytest.mark.parametrize(
    ("environment", "enabled"),
    [
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_CHALICE_CLI_MODE": "true"}, False),
        ({}, False),
    ],
)
def test_tracing_follows_powertools_rule(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], enabled: bool
) -> None:
    for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_CHALICE_CLI_MODE", "AWS_SAM_LOCAL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert observability.tracing_enabled() is enabled


def test_the_xray_sdk_is_installed_for_the_tracer_it_patches() -> None:
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service=SERVICE, disabled=True, patch_modules=observability.TRACED_MODULES)
    assert tracer.disabled
    with tracer.provider.in_subsegment(name="## nothing"):  # the SDK's recorder, switched off
        pass


def test_a_sector_model_failing_on_a_message_is_quarantined_as_a_model_error_logged_and_counted(
    capsys: pytest.CaptureFixture[str], log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.domain.sectors import Sector
    from tests.unit.test_ingest_service import RAISING
    from tests.unit.test_ingest_service import World as IngestWorld

    world = IngestWorld()
    service = world.container()

    def broken(*_: object) -> object:
        raise ZeroDivisionError("a bug in the model")

    monkeypatch.setattr(service._engine.model(Sector.HAZCHEM), "evaluate", broken)
    report = service.handle(RAISING[:1])
    flush_dimensioned()

    assert report.quarantined == {"model_error": 1} and report.graded == 0
    [row] = world.quarantine.rows.values()
    assert "ZeroDivisionError" in row.detail
    points = metric_points(emf_documents(capsys.readouterr().out))
    assert points[("MessagesQuarantined", (("reason", "model_error"), ("service", SERVICE)))] == 1
    assert points[("SwallowedErrors", (("service", SERVICE), ("site", "ingest.sector_model")))] == 1
    [line] = [line for line in lines_of(log_lines) if line["message"] == "a sector model failed on a message"]
    assert line["device_id"] == "HC-T-GT1"
