"""Chalice entrypoints: routing only. Each handler parses its event, calls one service, returns."""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import Callable
from datetime import UTC
from types import ModuleType
from typing import TYPE_CHECKING, Any

from chalice.app import Chalice, CloudWatchEvent, Cron, KinesisEvent, Rate, Request, Response, SQSEvent
from pydantic import BaseModel

from chalicelib.api.console_route import PREFIX as CONSOLE_PREFIX
from chalicelib.api.errors import JSON_HEADERS, catalogued_body, chalice_error, error_body, validated
from chalicelib.api.inputs import etag_matches, json_body, require_size, single_values, strong_etag
from chalicelib.bootstrap import (
    api,
    container,
    declarations,
    delivery,
    device_statuses,
    evaluation,
    offline_watch,
    rectifications,
    workflow,
)
from chalicelib.domain.errors import NotFound
from chalicelib.domain.evaluation.periods import PeriodKind
from chalicelib.domain.lifecycle import Actor
from chalicelib.domain.rosters import RosterRole
from chalicelib.observability import logger, observe
from chalicelib.services.ingest import IngestRecord
from chalicelib.services.ports import Origin
from chalicelib.services.workflow import WorkflowMessage
from chalicelib.settings import get_settings


class _OnFirstUse(ModuleType):
    """A module imported when a route first reads one of its names: every function imports app.py, and only the
    API's routes need the views and the request models (and what they import): the ingest's cold start,
    bench/coldstart.py."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self.__name__), name)


if TYPE_CHECKING:
    from chalicelib.api import console, models, views
else:
    console = _OnFirstUse("chalicelib.api.console")
    models = _OnFirstUse("chalicelib.api.models")
    views = _OnFirstUse("chalicelib.api.views")

STAGE = os.environ.get("DYJ_STAGE", "dev")
app = Chalice(app_name="dayingji", configure_logs=False)  # app.log is the Powertools logger (same name): JSON
app.register_middleware(observe, "all")  # Lambda context, correlation ids, metrics flushed, X-Ray segment


@app.on_kinesis_record(
    stream=f"dayingji-{STAGE}-devices",
    batch_size=1000,
    starting_position="TRIM_HORIZON",
    maximum_batching_window_in_seconds=0,  # sizing: docs/costs.md "Lambda sizing"
)
def ingest(event: KinesisEvent) -> dict[str, Any]:
    records = [
        IngestRecord(
            record.sequence_number,
            record.data,
            record.timestamp.replace(tzinfo=UTC).timestamp(),
            str(record.to_dict().get("eventID", "")).rpartition(":")[0],
        )
        for record in event
    ]
    logger.thread_safe_append_keys(
        shard_id=records[0].shard_id if records else None,
        first_sequence=records[0].record_id if records else None,
        batch_size=len(records),
    )
    report = container().ingest.handle(records)
    if report.quarantined or report.failed_record_ids:
        logger.info(
            "batch with rejects",
            extra={"quarantined": dict(report.quarantined), "failed": report.failed_record_ids},
        )
    return {"batchItemFailures": [{"itemIdentifier": record_id} for record_id in report.failed_record_ids]}


@app.on_sqs_message(queue=f"dayingji-{STAGE}-workflow-events", batch_size=10)
def workflow_events(event: SQSEvent) -> dict[str, Any]:
    messages = [WorkflowMessage(record.to_dict()["messageId"], record.body) for record in event]
    logger.thread_safe_append_keys(batch_size=len(messages))
    report = workflow().handle(messages)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in report.failed_message_ids]}


@app.on_sqs_message(queue=f"dayingji-{STAGE}-delivery", batch_size=10)
def deliver(event: SQSEvent) -> dict[str, Any]:
    """One delivery job per message (docs/delivery.md); a job to retry fails its message alone."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    service = delivery()

    def job(record: SQSRecord) -> None:
        service.handle_body(record.body)

    raw = event.to_dict()
    logger.thread_safe_append_keys(batch_size=len(raw.get("Records", [])))
    response = process_partial_response(
        event=raw,
        record_handler=job,
        processor=BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False),
    )
    return dict(response)


@app.schedule(Rate(5, unit=Rate.MINUTES))
def sweep(event: CloudWatchEvent) -> dict[str, Any]:
    report = workflow().sweep()
    if report.repaired:
        logger.warning("sweep re-armed timers", extra={"repaired": report.repaired})
    return {"repaired": report.repaired}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def declaration_sweep(event: CloudWatchEvent) -> dict[str, Any]:
    report = declarations().sweep()
    if report.failed:
        logger.warning("declaration sweep left some for the next round", extra={"failed": report.failed})
    return {"expired": len(report.expired), "reminded": len(report.reminded), "failed": len(report.failed)}


# Evaluation runs (docs/evaluation.md "Schedules"). EventBridge cron is UTC; a period ends at local (UTC+8)
# midnight. Each runs at about 01:00 local on the day after its period: 17:00 UTC on the period's last day.


def _evaluate(kind: PeriodKind) -> dict[str, Any]:
    service = evaluation()
    entry = service.run_scheduled(kind)
    logger.info("evaluation stored", extra={"report_id": entry.report_id, "counts": dict(entry.counts)})
    return {"report_id": entry.report_id, "keys": dict(entry.keys)}


@app.schedule(Cron(0, 17, "L", "*", "?", "*"))  # 01:00 +08:00 on the 1st of every month
def evaluate_month(event: CloudWatchEvent) -> dict[str, Any]:
    return _evaluate(PeriodKind.MONTH)


@app.schedule(Cron(15, 17, "L", "3,6,9,12", "?", "*"))  # 01:15 +08:00 on 1 Jan, Apr, Jul, Oct
def evaluate_quarter(event: CloudWatchEvent) -> dict[str, Any]:
    return _evaluate(PeriodKind.QUARTER)


@app.schedule(Cron(30, 17, "31", "12", "?", "*"))  # 01:30 +08:00 on 1 January
def evaluate_year(event: CloudWatchEvent) -> dict[str, Any]:
    return _evaluate(PeriodKind.YEAR)


@app.on_sqs_message(queue=f"dayingji-{STAGE}-evaluation-requests", batch_size=1)
def evaluate_requested(event: SQSEvent) -> dict[str, Any]:
    """An on-demand run (POST /evaluations answered 202): one request per message; a failure is raised, so the
    queue retries it once, then keeps it in its dead-letter queue."""
    done = []
    for record in event:
        request = json.loads(record.body)
        entry = evaluation().run_requested(request["report_id"], request["requested_by"])
        logger.info("evaluation stored", extra={"report_id": entry.report_id, "counts": dict(entry.counts)})
        done.append(entry.report_id)
    return {"report_ids": done}


@app.schedule(Rate(1, unit=Rate.MINUTES), name="offline_watch")
def watch_offline(event: CloudWatchEvent) -> dict[str, Any]:
    """Silent devices become offline warnings, returning ones recover (docs/offline-watch.md)."""
    report = offline_watch().run()
    if report.raised or report.recovered or report.failed or report.silent_shards:
        logger.info(
            "offline watch",
            extra={
                "raised": len(report.raised),
                "recovered": len(report.recovered),
                "suppressed": len(report.suppressed),
                "failed": len(report.failed),
                "silent_shards": report.silent_shards,
            },
        )
    return {"minutes": len(report.minutes), "raised": len(report.raised), "recovered": len(report.recovered)}


@app.route("/health")
def health() -> dict[str, str]:
    return {"status": "ok", "stage": STAGE}


# --- the API: every route authenticates and maps its errors through chalicelib/api/errors.py -------------------

View = Callable[..., BaseModel]
_NOT_FOUND = {  # a malformed path id is the same 404 as a missing record, without a lookup
    "warning_id": ("warning_not_found", "预警不存在或无权查看"),
    "enterprise_id": ("enterprise_not_found", "企业不存在"),
    "device_id": ("device_not_found", "设备不存在"),
    "person_id": ("person_not_found", "人员不存在"),
    "shift_id": ("shift_not_found", "班次不存在"),
    "declaration_id": ("declaration_not_found", "申报不存在或无权查看"),
    "notification_id": ("notification_not_found", "通知不存在"),
    "report_id": ("evaluation_not_found", "评估报告不存在"),
    "rectification_id": ("rectification_not_found", "整改事项不存在或无权查看"),
}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(body=text, status_code=status, headers={**JSON_HEADERS, **(headers or {})})


def _json_unless_unchanged(status: int, body: Any, request: Request) -> Response:
    """The JSON answer with a strong `ETag` of its bytes; 304 and no body when `If-None-Match` names it, so a
    screen polling an unchanged listing downloads nothing (the reads are made all the same: docs/costs.md)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    tag = strong_etag(text)
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(body="", status_code=304, headers={"ETag": tag})
    return Response(body=text, status_code=status, headers={**JSON_HEADERS, "ETag": tag})


def _body(request: Request) -> Any:
    return json_body(request.raw_body)


def _query(model: type[Any], request: Request) -> Any:
    params = request.query_params
    return validated(model, single_values({name: params.getlist(name) for name in params} if params else {}))


def _origin(request: Request) -> Origin:
    identity = (request.context or {}).get("identity") or {}
    app_name = request.headers.get("x-dyj-app") or request.headers.get("user-agent")
    return Origin(source_ip=identity.get("sourceIp"), app=app_name[:128] if app_name else None)


@app.middleware("http")
def one_error_shape(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Chalice answers some requests itself (405 method, 415 content type, 500 unhandled) with
    `{"Code", "Message"}` in English: the same answers in the API's shape."""
    response = get_response(event)
    converted = chalice_error(response.status_code, response.body)
    if converted is None:
        return response
    headers = {name: str(value) for name, value in response.headers.items() if name.lower() == "allow"}
    return _json(response.status_code, converted, headers)


def api_route(
    path: str, methods: tuple[str, ...] = ("GET",), status: int = 200, etag: bool = False
) -> Callable[[View], View]:
    """Register `view(actor, request, **path_params)`: body size, authenticate, check path ids, call, answer
    JSON (`etag`: with an ETag, and 304 for a matching `If-None-Match`)."""

    def register(view: View) -> View:
        def handler(**params: str) -> Response:
            try:
                request = app.current_request
                assert request is not None
                require_size(request.raw_body)
                actor = api().authenticate(request.headers.get("authorization"))
                logger.thread_safe_append_keys(actor_role=actor.role.value)
                for name, value in params.items():
                    if not re.fullmatch(models.ID_PATTERN, value):  # re caches the compiled pattern
                        raise NotFound(*_NOT_FOUND[name])
                logger.thread_safe_append_keys(**params)  # warning_id, enterprise_id or device_id of the path
                answer = view(actor, request, **params).model_dump(mode="json")
                return _json_unless_unchanged(status, answer, request) if etag else _json(status, answer)
            except Exception as exc:  # every error leaves through the one map
                code, body = error_body(exc)
                return _json(code, body, {"WWW-Authenticate": "Bearer"} if code == 401 else None)

        handler.__name__ = view.__name__
        handler.__doc__ = view.__doc__
        app.route(path, methods=list(methods))(handler)
        return view

    return register


@api_route("/me")
def me(actor: Actor, request: Request) -> BaseModel:
    return views.me_view(actor)


@api_route("/me/notifications")
def list_notifications(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.NotificationQuery, request)
    page = api().notifications.page(actor, query.limit, query.cursor, bool(query.unread))
    return views.notification_page(page)


@api_route("/me/notifications/{notification_id}/read", methods=("POST",))
def read_notification(actor: Actor, request: Request, notification_id: str) -> BaseModel:
    return views.notification_view(api().notifications.mark_read(actor, notification_id))


@api_route("/warnings")
def list_warnings(actor: Actor, request: Request) -> BaseModel:
    page = api().warnings.list_warnings(actor, _query(models.WarningQuery, request))
    return views.warning_page(page, actor)


@api_route("/wall", etag=True)
def wall(actor: Actor, request: Request) -> BaseModel:
    return views.warning_page(api().warnings.wall(actor, _query(models.WarningQuery, request)), actor)


@api_route("/warnings/{warning_id}")
def get_warning(actor: Actor, request: Request, warning_id: str) -> BaseModel:
    return views.warning_detail(api().warnings.detail(actor, warning_id), actor)


@api_route("/warnings/{warning_id}/actions", methods=("POST",))
def act(actor: Actor, request: Request, warning_id: str) -> BaseModel:
    action = models.action_body(_body(request))
    return views.warning_view(api().warnings.act(actor, warning_id, action, _origin(request)), actor)


@api_route("/warnings/{warning_id}/evidence", methods=("POST",), status=201)
def evidence_upload(actor: Actor, request: Request, warning_id: str) -> BaseModel:
    body = validated(models.EvidenceRequest, _body(request))
    return views.evidence_ticket(api().warnings.evidence_upload(actor, warning_id, body.content_type))


@api_route("/warnings/{warning_id}/audit")
def verify_warning_chain(actor: Actor, request: Request, warning_id: str) -> BaseModel:
    return views.report_view(api().warnings.verify(actor, warning_id))


@api_route("/admin/enterprises/{enterprise_id}")
def get_enterprise(actor: Actor, request: Request, enterprise_id: str) -> BaseModel:
    return api().registry.enterprise(actor, enterprise_id)


@api_route("/admin/enterprises/{enterprise_id}", methods=("PUT",))
def put_enterprise(actor: Actor, request: Request, enterprise_id: str) -> BaseModel:
    body = validated(models.EnterpriseUpsert, _body(request))
    change = api().registry.put_enterprise(actor, body.enterprise(enterprise_id), body.reason, _origin(request))
    return views.enterprise_change(change)


@api_route("/admin/enterprises/{enterprise_id}/audit")
def enterprise_audit(actor: Actor, request: Request, enterprise_id: str) -> BaseModel:
    log = api().registry.subject_audit(actor, "enterprise", enterprise_id)
    return views.subject_audit("enterprise", enterprise_id, log)


@api_route("/admin/devices/{device_id}")
def get_device(actor: Actor, request: Request, device_id: str) -> BaseModel:
    return api().registry.device(actor, device_id)


@api_route("/admin/devices/{device_id}", methods=("PUT",))
def put_device(actor: Actor, request: Request, device_id: str) -> BaseModel:
    body = validated(models.DeviceUpsert, _body(request))
    return views.device_change(api().registry.put_device(actor, device_id, body, _origin(request)))


@api_route("/admin/devices/{device_id}/audit")
def device_audit(actor: Actor, request: Request, device_id: str) -> BaseModel:
    log = api().registry.subject_audit(actor, "device", device_id)
    return views.subject_audit("device", device_id, log)


@api_route("/admin/users", methods=("POST",), status=201)
def create_user(actor: Actor, request: Request) -> BaseModel:
    user = validated(models.UserCreate, _body(request)).new_user()
    return views.user_view(api().people.create_user(actor, user))


@api_route("/admin/users")
def list_users(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.UserQuery, request)
    return views.user_page(api().people.list_users(actor, query.role, query.limit, query.cursor))


# --- people and rosters (docs/rosters.md) ----------------------------------------------------------------------


@api_route("/admin/people")
def list_people(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.PeopleQuery, request)
    return views.people_page(api().rosters.people(actor, query.role, query.limit, query.cursor))


@api_route("/admin/people/{person_id}")
def get_person(actor: Actor, request: Request, person_id: str) -> BaseModel:
    return api().rosters.person(actor, person_id)


@api_route("/admin/people/{person_id}", methods=("PUT",))
def put_person(actor: Actor, request: Request, person_id: str) -> BaseModel:
    body = validated(models.PersonUpsert, _body(request))
    change = api().rosters.put_person(actor, body.fields(person_id), body.reason, _origin(request))
    return views.person_change(change)


@api_route("/admin/people/{person_id}/audit")
def person_audit(actor: Actor, request: Request, person_id: str) -> BaseModel:
    return views.subject_audit("person", person_id, api().rosters.subject_audit(actor, "person", person_id))


@api_route("/admin/rosters/duty/shifts")
def list_duty_shifts(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.ShiftQuery, request)
    return views.shift_page(api().rosters.shifts(actor, RosterRole.DUTY, query.start, query.to))


@api_route("/admin/rosters/duty/shifts/{shift_id}", methods=("PUT",))
def put_duty_shift(actor: Actor, request: Request, shift_id: str) -> BaseModel:
    body = validated(models.ShiftUpsert, _body(request))
    change = api().rosters.put_shift(actor, body.shift(shift_id), body.reason, _origin(request))
    return views.shift_change(change)


@api_route("/admin/rosters/duty/shifts/{shift_id}", methods=("DELETE",))
def delete_duty_shift(actor: Actor, request: Request, shift_id: str) -> BaseModel:
    body = validated(models.ReasonBody, _body(request) or {})
    change = api().rosters.delete_shift(actor, RosterRole.DUTY, shift_id, body.reason, _origin(request))
    return views.shift_change(change, deleted=True)


@api_route("/admin/rosters/duty/shifts/{shift_id}/audit")
def duty_shift_audit(actor: Actor, request: Request, shift_id: str) -> BaseModel:
    return views.subject_audit("shift", shift_id, api().rosters.subject_audit(actor, "shift", shift_id))


@api_route("/admin/enterprises/{enterprise_id}/on-duty")
def get_on_duty(actor: Actor, request: Request, enterprise_id: str) -> BaseModel:
    return views.on_duty_view(api().rosters.on_duty(actor, enterprise_id))


@api_route("/admin/enterprises/{enterprise_id}/on-duty", methods=("PUT",))
def put_on_duty(actor: Actor, request: Request, enterprise_id: str) -> BaseModel:
    body = validated(models.OnDutyUpsert, _body(request))
    on_duty, change = api().rosters.name_on_duty(
        actor, enterprise_id, body.person_ids, body.reason, _origin(request)
    )
    return views.on_duty_view(on_duty, change)


# --- outage declarations (申报): docs/declarations.md


@api_route("/declarations", methods=("POST",), status=201)
def declare(actor: Actor, request: Request) -> BaseModel:
    body = validated(models.DeclarationCreate, _body(request))
    return views.declaration_view(declarations().declare(actor, body, _origin(request)), time.time())


@api_route("/declarations")
def list_declarations(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.DeclarationQuery, request)
    found = declarations().list(actor, query.status, query.enterprise_id, query.limit, query.cursor)
    return views.declaration_list(found, time.time())


@api_route("/declarations/{declaration_id}")
def get_declaration(actor: Actor, request: Request, declaration_id: str) -> BaseModel:
    return views.declaration_view(declarations().get(actor, declaration_id), time.time())


@api_route("/declarations/{declaration_id}/approve", methods=("POST",))
def approve_declaration(actor: Actor, request: Request, declaration_id: str) -> BaseModel:
    body = validated(models.DeclarationDecision, _body(request) if request.raw_body else {})
    found = declarations().approve(actor, declaration_id, body.note, _origin(request))
    return views.declaration_view(found, time.time())


@api_route("/declarations/{declaration_id}/reject", methods=("POST",))
def reject_declaration(actor: Actor, request: Request, declaration_id: str) -> BaseModel:
    body = validated(models.DeclarationRejection, _body(request))
    found = declarations().reject(actor, declaration_id, body.reason, _origin(request))
    return views.declaration_view(found, time.time())


@api_route("/declarations/{declaration_id}/withdraw", methods=("POST",))
def withdraw_declaration(actor: Actor, request: Request, declaration_id: str) -> BaseModel:
    body = validated(models.DeclarationDecision, _body(request) if request.raw_body else {})
    found = declarations().withdraw(actor, declaration_id, body.note, _origin(request))
    return views.declaration_view(found, time.time())


@api_route("/declarations/{declaration_id}/findings")
def declaration_findings(actor: Actor, request: Request, declaration_id: str) -> BaseModel:
    limit = _query(models.SuppressedFindingQuery, request).limit
    declaration, found = declarations().suppressed(actor, declaration_id, limit + 1)
    return views.suppressed_findings(declaration, found, limit)


@api_route("/declarations/{declaration_id}/audit")
def declaration_audit(actor: Actor, request: Request, declaration_id: str) -> BaseModel:
    return views.declaration_audit(declaration_id, declarations().audit(actor, declaration_id))


# --- evaluation reports (评估报告): docs/evaluation.md


@api_route("/evaluations", methods=("POST",), status=202)
def run_evaluation(actor: Actor, request: Request) -> BaseModel:
    body = validated(models.EvaluationCreate, _body(request))
    if body.start is not None and body.end is not None:  # kind custom (the model allows no other way)
        entry = evaluation().request_custom(actor, body.start, body.end)
    else:
        entry = evaluation().request(actor, PeriodKind(body.kind), body.year or 0, body.number)
    return views.evaluation_entry_view(entry)


@api_route("/evaluations")
def list_evaluations(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.EvaluationQuery, request)
    return views.evaluation_list(evaluation().entries(actor, query.limit))


@api_route("/evaluations/{report_id}")
def get_evaluation(actor: Actor, request: Request, report_id: str) -> BaseModel:
    entry, report = evaluation().read(actor, report_id)
    return views.evaluation_report_view(entry, report)


@api_route("/evaluations/{report_id}/download")
def download_evaluation(actor: Actor, request: Request, report_id: str) -> BaseModel:
    query = _query(models.EvaluationDownloadQuery, request)
    entry, url, expires_in = evaluation().download(actor, report_id, query.format)
    return views.evaluation_download(entry, query.format, url, expires_in)


# --- 通报 and rectification (整改事项): docs/evaluation.md "通报 and rectification"


@api_route("/evaluations/{report_id}/publish", methods=("POST",))
def publish_evaluation(actor: Actor, request: Request, report_id: str) -> BaseModel:
    published = rectifications().publish(actor, report_id, _origin(request))
    return views.publication_view(published.publication, published.already)


@api_route("/rectifications")
def list_rectifications(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.RectificationQuery, request)
    found = rectifications().list(
        actor, query.status, query.enterprise_id, query.report_id, query.overdue, query.limit, query.cursor
    )
    return views.rectification_list(found, time.time())


@api_route("/rectifications/{rectification_id}")
def get_rectification(actor: Actor, request: Request, rectification_id: str) -> BaseModel:
    return views.rectification_view(rectifications().get(actor, rectification_id), time.time())


@api_route("/rectifications/{rectification_id}/evidence", methods=("POST",), status=201)
def rectification_evidence(actor: Actor, request: Request, rectification_id: str) -> BaseModel:
    body = validated(models.EvidenceRequest, _body(request))
    return views.evidence_ticket(rectifications().evidence_upload(actor, rectification_id, body.content_type))


@api_route("/rectifications/{rectification_id}/answer", methods=("POST",))
def answer_rectification(actor: Actor, request: Request, rectification_id: str) -> BaseModel:
    body = validated(models.RectificationAnswerBody, _body(request))
    found = rectifications().answer(actor, rectification_id, body.note, body.evidence_keys, _origin(request))
    return views.rectification_view(found, time.time())


@api_route("/rectifications/{rectification_id}/accept", methods=("POST",))
def accept_rectification(actor: Actor, request: Request, rectification_id: str) -> BaseModel:
    body = validated(models.RectificationAcceptBody, _body(request) if request.raw_body else {})
    found = rectifications().accept(actor, rectification_id, body.note, _origin(request))
    return views.rectification_view(found, time.time())


@api_route("/rectifications/{rectification_id}/return", methods=("POST",))
def return_rectification(actor: Actor, request: Request, rectification_id: str) -> BaseModel:
    body = validated(models.RectificationReturnBody, _body(request))
    found = rectifications().return_(actor, rectification_id, body.reason, _origin(request))
    return views.rectification_view(found, time.time())


@api_route("/rectifications/{rectification_id}/audit")
def rectification_audit(actor: Actor, request: Request, rectification_id: str) -> BaseModel:
    return views.rectification_audit(rectification_id, rectifications().audit(actor, rectification_id))


# --- device status (docs/offline-watch.md "Device status") ------------------------------------------------------


@api_route("/devices")
def list_devices(actor: Actor, request: Request) -> BaseModel:
    query = _query(models.DeviceStatusQuery, request)
    page = device_statuses().list(actor, query.status, query.enterprise_id, query.limit, query.cursor)
    return views.device_status_page(page)


# --- the duty console's files (docs/console.md "Deployment"): public and static; the page signs in itself -------


def _request_path(request: Request) -> str:
    return str((request.context or {}).get("path") or "")


@app.route(CONSOLE_PREFIX)
def console_entry() -> Response:
    """To the page, wherever the API is mounted (`/api/console` → `/api/console/index.html`)."""
    request = app.current_request
    assert request is not None
    base = console.base_path(_request_path(request), CONSOLE_PREFIX)
    location = f"{base}{CONSOLE_PREFIX}/{console.INDEX}"
    return Response(
        body="",
        status_code=301,
        headers={"Location": location, "Cache-Control": console.CACHE_CONTROL, "Content-Type": "text/plain"},
    )


@app.route(CONSOLE_PREFIX + "/{name}")
def console_asset(name: str) -> Response:
    """A file of the console, or `config.json` made from the settings; an ETag of the bytes, 304 when unchanged."""
    request = app.current_request
    assert request is not None
    found = console.served(name, _request_path(request), get_settings())
    if found is None:
        return _json(404, catalogued_body("route_not_found"))
    tag = found.etag
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(body="", status_code=304, headers={"ETag": tag, "Cache-Control": console.CACHE_CONTROL})
    return Response(
        body=found.body,
        status_code=200,
        headers={"Content-Type": found.content_type, "ETag": tag, "Cache-Control": console.CACHE_CONTROL},
    )
