"""The one error contract of the API: any exception → (HTTP status, `{"code", "message"[, "details"]}`).

- `DomainError` (and `Unauthorized`, `BadRequest`...): its own status, code and Chinese message;
- pydantic `ValidationError` (a body or query that breaks its model): 422 `invalid_request` with
  `details = {"errors": [{"field": "a.b", "code": "missing"}, ...], "total": n}` — at most `MAX_FIELD_ERRORS`
  entries, field names cut to `MAX_FIELD_PART` characters a part; the input is never echoed back;
- `ConcurrentUpdateError` (a conditional write lost its race every time it was retried): 409 `conflict`;
- anything else: 500 `internal`, logged with its traceback; the body says nothing about it.
Nothing branches on message text.

`CODES` is the catalogue of every code the API answers with (status, meaning, what an app should do): docs/api.md
and docs/openapi.json are generated from it (`scripts/gen_docs.py`), and a unit test fails when code raises a code
that the catalogue lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from chalicelib.domain.errors import DomainError, ValidationFailed
from chalicelib.observability import INHERIT, SERVICE, swallowed
from chalicelib.services.ports import ConcurrentUpdateError

logger = Logger(service=SERVICE, child=True, level=INHERIT)

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
MAX_BODY_BYTES = 64 * 1024
"""Request bodies above this are refused (413 `payload_too_large`) before they are read; the largest legitimate
body (a device registration with 50 setpoints) is about 10 KiB. Photos never travel in a body (evidence upload)."""
M = TypeVar("M", bound=BaseModel)
MAX_FIELD_ERRORS = 20
MAX_FIELD_PART = 32


class BadRequest(DomainError):  # noqa: N818 - named after the HTTP status, like its siblings
    """The request cannot be read at all (not UTF-8 JSON, a parameter given twice)."""

    http_status: ClassVar[int] = 400


class PayloadTooLarge(DomainError):  # noqa: N818 - named after the HTTP status, like its siblings
    http_status: ClassVar[int] = 413


class InvalidRequest(ValidationFailed):
    """A body or query that breaks its model: 422 `invalid_request` with the failing fields."""

    def __init__(self, errors: Sequence[tuple[Sequence[Any], str]]) -> None:
        entries = [{"field": field_name(loc), "code": code[:MAX_FIELD_PART]} for loc, code in errors]
        super().__init__(
            "invalid_request",
            "请求参数错误",
            details={"errors": entries[:MAX_FIELD_ERRORS], "total": len(entries)},
        )

    @classmethod
    def of(cls, exc: ValidationError, union_tag: object = None) -> InvalidRequest:
        """From pydantic's errors; `union_tag`: the discriminator value of a tagged union, which pydantic puts
        first in each location and which is not a field of the body."""
        errors = []
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            loc = list(error["loc"])
            if loc and union_tag is not None and loc[0] == union_tag:
                loc = loc[1:]
            errors.append((loc, str(error["type"])))
        return cls(errors)


def field_name(loc: Sequence[Any]) -> str:
    """`("setpoints", "a-very-long-key…", "high")` → `"setpoints.a-very-long-key….high"`, each part cut short:
    a key of the body may be anything the caller sent."""
    parts = []
    for part in loc:
        text = str(part)
        parts.append(text if len(text) <= MAX_FIELD_PART else text[: MAX_FIELD_PART - 1] + "…")
    return ".".join(parts)


def validated(model: type[M], data: Any, union_tag: object = None) -> M:
    """`model.model_validate(data)`, or `InvalidRequest`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest.of(exc, union_tag) from exc


CONFLICT = {"code": "conflict", "message": "操作冲突，请刷新后重试"}
INTERNAL = {"code": "internal", "message": "系统错误"}


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, DomainError):
        return exc.http_status, exc.to_dict()
    if isinstance(exc, ValidationError):
        return 422, InvalidRequest.of(exc).to_dict()
    if isinstance(exc, ConcurrentUpdateError):
        return 409, dict(CONFLICT)
    logger.exception("unhandled error in an API call", exc_info=exc)
    swallowed("api.unhandled")
    return 500, dict(INTERNAL)


# --- the catalogue ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCode:
    status: int
    meaning: str
    app_should: str
    message: str = ""  # the Chinese message, where the code always says the same thing
    from_gateway: bool = False  # answered by the API gateway (or its local emulation), not by the app


STATUS_ZH: dict[int, str] = {
    400: "请求无法解析",
    401: "未登录或登录已过期",
    403: "无权进行此操作",
    404: "对象不存在或无权查看",
    405: "请求方法不支持",
    409: "状态冲突",
    413: "请求体过大",
    415: "请求格式不支持",
    422: "请求参数错误",
    429: "请求过于频繁",
    500: "系统错误",
    503: "服务暂不可用",
}
"""Every status the API answers with besides 200/201, in Chinese (OpenAPI response descriptions)."""

_FIX = "A client bug: fix the request; repeating it unchanged gives the same answer."
_REREAD = "GET the warning again and offer what `permitted_actions` lists now."

CODES: dict[str, ErrorCode] = {
    # --- the request itself
    "route_not_found": ErrorCode(
        404,
        "No route has this path (any method).",
        _FIX,
        "接口不存在",
        from_gateway=True,
    ),
    "method_not_allowed": ErrorCode(
        405,
        "The path exists but not with this method (the `Allow` header lists the methods). Local runtime; on AWS "
        "API Gateway answers `route_not_found` instead.",
        _FIX,
        "请求方法不支持",
    ),
    "unsupported_media_type": ErrorCode(
        415,
        "A body was sent with a `Content-Type` other than `application/json`.",
        "Send `Content-Type: application/json` (UTF-8).",
        "请求格式不支持，请使用 application/json",
    ),
    "payload_too_large": ErrorCode(
        413,
        f"The body is larger than {MAX_BODY_BYTES // 1024} KiB; it is not read.",
        "Do not retry; no legitimate body is this large (photos go to the evidence upload URL, never in a body).",
        "请求体过大",
    ),
    "invalid_json": ErrorCode(
        400,
        "The body is not one JSON document in UTF-8: bad syntax, bad UTF-8 or a lone surrogate escape, NaN or "
        "Infinity, a number out of range, a key given twice in one object, or nesting deeper than the parser "
        "takes.",
        _FIX,
        "请求体不是有效的JSON",
    ),
    "repeated_parameter": ErrorCode(
        400,
        "A query parameter was given more than once (`?level=red&level=blue`); `details.errors` names it.",
        "Give each parameter once; for several values use one comma-separated value (`?level=red,blue`).",
        "查询参数重复",
    ),
    "invalid_request": ErrorCode(
        422,
        "The body or the query breaks its schema. `details.errors` lists up to 20 `{field, code}` (field: dotted "
        "path, empty for the body itself; code: pydantic's error type such as `missing`, `extra_forbidden`, "
        "`string_too_long`, `literal_error`, `union_tag_invalid`); `details.total` counts them all. Values are "
        "never echoed.",
        "Correct the fields listed; do not retry unchanged.",
        "请求参数错误",
    ),
    "invalid_cursor": ErrorCode(
        422,
        "The `cursor` was damaged or belongs to another listing (wall, open list, newest-first list).",
        "Start the listing again without `cursor`.",
        "分页游标无效",
    ),
    # --- who calls
    "unauthenticated": ErrorCode(
        401, "No `Authorization: Bearer` header.", "Log the user in and send the ID token.", "未登录，请先登录"
    ),
    "token_expired": ErrorCode(
        401,
        "A genuine ID token whose `exp` has passed (30 s leeway).",
        "Refresh the tokens (refresh-token flow, or log in again) and repeat the request once.",
        "登录已过期，请重新登录",
    ),
    "invalid_token": ErrorCode(
        401,
        "The token is not a valid ID token of this pool and app client: bad signature, another pool or client, "
        "an access token, not yet valid, malformed.",
        "Discard the token and log in again; never retry with it.",
        "身份令牌无效",
    ),
    "auth_unavailable": ErrorCode(
        401,
        "This stage has no identity provider configured.",
        "Report to the operator; nothing the user can do.",
        "身份认证未配置",
    ),
    "no_role": ErrorCode(
        403,
        "The account is in no role group, or in several.",
        "Show the message; the administrator must fix the account.",
        "账号未分配角色或角色不唯一，请联系系统管理员",
    ),
    "scope_missing": ErrorCode(
        403,
        "The account's role needs a scope attribute it lacks (enterprise, department, areas).",
        "Show the message; the administrator must fix the account.",
        "账号未配置数据范围，请联系系统管理员",
    ),
    "role_not_permitted": ErrorCode(
        403,
        "The caller's role may never use this route or take this action (whatever the record).",
        "Hide the route or button for this role; do not retry.",
    ),
    "red_level_only": ErrorCode(
        403,
        "The emergency bureau escalates, confirms or rejects a clear request on warnings that reached red only.",
        "Hide the button unless `permitted_actions` offers it.",
    ),
    # --- what is called
    "warning_not_found": ErrorCode(
        404,
        "No such warning, or not in the caller's scope (the same answer for both).",
        "Drop the warning from the local list and refresh the listing.",
        "预警不存在或无权查看",
    ),
    "notification_not_found": ErrorCode(
        404,
        "No such notification in the caller's inbox (another inbox's notification is the same answer).",
        "Drop it from the local list and refresh the notifications.",
        "通知不存在",
    ),
    "enterprise_not_found": ErrorCode(404, "No such enterprise (administrator routes).", _FIX, "企业不存在"),
    "device_not_found": ErrorCode(404, "No such device (administrator routes).", _FIX, "设备不存在"),
    "person_not_found": ErrorCode(404, "No such person (people routes).", _FIX, "人员不存在"),
    "shift_not_found": ErrorCode(404, "No such shift on this roster.", "Refresh the roster.", "班次不存在"),
    # --- the lifecycle (409): the warning is not where the action needs it
    "wrong_status": ErrorCode(
        409,
        "The warning's status does not allow the action; `details.status` is the status now and "
        "`details.allowed` the statuses the action needs. A retried action whose first attempt went through "
        "(e.g. an acknowledge whose response was lost) gets this too: `details.status` is already past it.",
        "GET the warning: if the step is already done (e.g. `details.acknowledged.by` is the caller), treat the "
        "retry as a success; otherwise offer what `permitted_actions` lists now.",
    ),
    "warning_closed": ErrorCode(
        409,
        "The warning is closed: no action but archive (duty), no evidence upload. A retried clear request or "
        "confirmation that went through the first time answers this.",
        "Refresh; if the caller's own request closed it, treat the retry as a success.",
    ),
    "warning_archived": ErrorCode(
        409, "The warning is archived: nothing more can be done.", "Refresh the listing."
    ),
    "warning_open": ErrorCode(409, "Archive needs a closed warning.", _REREAD, "预警尚未关闭，不能归档"),
    "disposal_required": ErrorCode(
        409,
        "A clear request straight after verification, when the verification was not `false_alarm`: start the "
        "disposal first.",
        "Offer `start_disposal` first.",
        "预警核实为真实报警或设备故障，须先开始处置再申请消警",
    ),
    "reason_mismatch": ErrorCode(
        409,
        "The warning was verified as a false alarm: the clear request's reason must be `false_alarm`.",
        "Resend with `reason: false_alarm`.",
        "预警核实为误报，消警原因须为“误报”",
    ),
    "reading_not_normal": ErrorCode(
        409,
        "A clear request (or its confirmation) with reason `disposed` while the reading is still abnormal "
        "(`reading_normal` is false).",
        "Wait until the warning shows `reading_normal: true` (the listing and detail say so), or reject the clear "
        "request (duty).",
    ),
    "already_escalated": ErrorCode(
        409,
        "Manual escalation goes up only; `details.tier` is the tier reached. A retried escalation that went "
        "through answers this.",
        "Refresh; escalate to a higher tier only.",
    ),
    "conflict": ErrorCode(
        409,
        "Concurrent changes to the same record kept winning over this one.",
        _REREAD,
        CONFLICT["message"],
    ),
    "sector_locked": ErrorCode(
        409,
        "The sector of an enterprise that has devices cannot change.",
        "Move or remove its devices first, or keep the sector.",
        "企业已登记设备，不能变更所属行业",
    ),
    "user_exists": ErrorCode(409, "The username is taken.", "Choose another username.", "用户名已存在"),
    # --- rules on the content (422)
    "deadline_not_future": ErrorCode(
        422, "A supervision order's deadline is not after now.", "Pick a later deadline.", "督办期限须晚于当前时间"
    ),
    "evidence_outside_warning": ErrorCode(
        422,
        "An evidence key was not issued for this warning (`POST /warnings/{id}/evidence`).",
        "Upload through this warning's own evidence URL and cite the key it returned.",
        "照片不属于该预警，请通过本预警的上传地址上传",
    ),
    "assignee_not_in_enterprise": ErrorCode(
        422,
        "`reassign`: `assignee_id` is not an enabled enterprise user of the warning's enterprise (or does not "
        "exist: the same answer).",
        "Choose the assignee among the enterprise's users.",
        "改派对象须为该企业的用户",
    ),
    "unknown_enterprise": ErrorCode(
        422, "The enterprise named in the body is not registered.", "Register it first.", "所属企业未登记"
    ),
    "invalid_user": ErrorCode(422, "The user pool refused the user's attributes.", _FIX, "用户信息不符合要求"),
    "invalid_phone": ErrorCode(
        422,
        "`phone` is not an E.164 number (`+` country code and number, 7 to 15 digits).",
        "Ask for the number with its country code, e.g. `+8613800138000`.",
        "手机号码格式不正确，须为国际格式（如 +8613800138000）",
    ),
    "shift_not_after_start": ErrorCode(
        422, "A shift's `ends_at` is not after its `starts_at`.", _FIX, "班次结束时间须晚于开始时间"
    ),
    "shift_too_long": ErrorCode(
        422,
        "A shift is longer than 24 hours.",
        "Split it into shifts of at most 24 hours.",
        "班次时长不得超过 24 小时",
    ),
    "shift_in_past": ErrorCode(
        422,
        "The shift ended more than 7 days ago: the roster is not for rewriting history.",
        "Leave past shifts as they are.",
        "不能登记或修改 7 天以前已结束的班次",
    ),
    "invalid_range": ErrorCode(
        422,
        "A listing window whose `to` is not after `from`, or longer than 31 days.",
        _FIX,
        "查询时段须为开始早于结束、且不超过 31 天",
    ),
    "unknown_person": ErrorCode(
        422, "The shift's `person_id` is not a registered person.", "Register the person first.", "人员未登记"
    ),
    "person_not_on_roster": ErrorCode(
        422,
        "The shift's person is not of the roster's role (the duty roster takes duty officers only).",
        "Choose a person of the roster's role.",
        "该人员不是值守人员，不能排班",
    ),
    "on_duty_not_in_enterprise": ErrorCode(
        422,
        "An on-duty person is not a registered person of role `enterprise` of this enterprise "
        "(`details.person_id` names it), or more than 5 are named.",
        "Register the person with this `enterprise_id` first; name at most 5.",
    ),
    # --- the platform
    "internal": ErrorCode(
        500,
        "An unexpected error, logged with its traceback; the body says nothing more.",
        "Retry later with backoff. An action retried after a 500 may answer `wrong_status`, `warning_closed` or "
        "`already_escalated` if the first attempt went through (see those codes).",
        INTERNAL["message"],
    ),
    "throttled": ErrorCode(
        429,
        "API Gateway's throttle refused the request (AWS only; `infra/resources.json` `ThrottledResponse`).",
        "Retry after a second or two with backoff; the request was not carried out.",
        "请求过于频繁，请稍后重试",
        from_gateway=True,
    ),
    "unavailable": ErrorCode(
        503,
        "API Gateway could not reach the function (AWS only; `Unavailable5xxResponse`).",
        "Retry later with backoff; an action may have gone through (read the warning again first).",
        "服务暂时不可用，请稍后重试",
        from_gateway=True,
    ),
    "evidence_unavailable": ErrorCode(
        503, "This stage has no evidence bucket.", "Report to the operator.", "照片存储未配置"
    ),
    "users_unavailable": ErrorCode(
        503, "This stage has no user directory.", "Report to the operator.", "用户目录未配置"
    ),
}
"""Every code the API answers with. `message` is set where a code always carries the same Chinese message."""

CODES.update(
    {
        # --- outage declarations (docs/declarations.md)
        "declaration_not_found": ErrorCode(
            404,
            "No such declaration, or not in the caller's scope (the same answer for both).",
            "Drop it from the local list and refresh the listing.",
            "申报不存在或无权查看",
        ),
        "other_enterprise": ErrorCode(
            403,
            "An enterprise user named another enterprise in a declaration.",
            "Leave `enterprise_id` out (an enterprise user declares for its own).",
            "只能为本企业申报",
        ),
        "device_not_in_enterprise": ErrorCode(
            422,
            "A declared device (or unit) is not a registered device of the enterprise; `details` names them. "
            "Unknown devices answer the same.",
            "Choose among the enterprise's devices.",
            "设备或单元不属于本企业",
        ),
        "too_many_devices": ErrorCode(
            422, "More devices than one declaration may hold (policy).", "Split the declaration.", ""
        ),
        "invalid_window": ErrorCode(422, "`ends_at` is not after `starts_at`.", _FIX, "结束时间须晚于开始时间"),
        "window_too_long": ErrorCode(
            422,
            "The window is longer than the policy allows (default 7 days); `details.max_window_s`.",
            "Declare up to the limit; an extension is a new declaration, verified again.",
        ),
        "retroactive_window": ErrorCode(
            422,
            "The window has ended, a planned stop starts in the past, or an unplanned outage started longer ago "
            "than the policy allows to declare it late (default 2 h).",
            "Correct the window; an outage not declared in time stays on the record as undeclared.",
        ),
        "declaration_overlaps": ErrorCode(
            409,
            "A pending or approved declaration covers one of the devices in an overlapping window; "
            "`details.declaration_id` names it, `details.device_ids` the shared devices. A retried declaration "
            "whose first attempt went through answers this, naming the first.",
            "Show the other declaration; withdraw it first, or declare the window after it.",
            "所选设备在该时段已有申报",
        ),
        "declaration_not_pending": ErrorCode(
            409,
            "The declaration is no longer pending (approved, rejected, withdrawn or its window has ended); "
            "`details.status`. A retried decision that went through answers this.",
            "GET the declaration and show its status.",
        ),
        "rejection_reason_required": ErrorCode(
            422, "A rejection without a reason.", "Ask the regulator for the reason.", "驳回须说明理由"
        ),
        "declaration_started": ErrorCode(
            409,
            "A declaration whose window has started cannot be withdrawn.",
            "Let it run to its end.",
            "申报时段已开始，不能撤回",
        ),
        # --- evaluation reports (docs/evaluation.md)
        "evaluation_not_found": ErrorCode(
            404,
            "No report for this period (never run), or a malformed report id.",
            "Pick one from the index.",
            "评估报告不存在",
        ),
        "invalid_period": ErrorCode(
            422,
            "The period does not exist (a month outside 1..12, a quarter outside 1..4, no number), or a custom "
            "window is shorter than a minute or longer than 31 days.",
            _FIX,
            "评估期无效",
        ),
        "period_not_ended": ErrorCode(
            422,
            "The period has not ended: a report evaluates ended periods only.",
            "Wait for the period to end.",
            "评估期尚未结束",
        ),
        "report_download_scoped": ErrorCode(
            403,
            "The whole workbook and HTML are for the duty centre, the bureau and administrators; other roles read "
            "their part of the report as JSON (`GET /evaluations/{report_id}`).",
            "Read the scoped report instead.",
            "评估报告全文仅限值守中心、应急管理局和管理员下载，请在线查看本单位范围的评估结果",
        ),
        "evaluation_unavailable": ErrorCode(
            503, "This stage has no evaluation bucket.", "Report to the operator.", "评估报告存储未配置"
        ),
        # --- 通报 and rectification (docs/evaluation.md "通报 and rectification")
        "rectification_not_found": ErrorCode(
            404,
            "No such rectification item, or not in the caller's scope (the same answer for both).",
            "Drop it from the local list and refresh the listing.",
            "整改事项不存在或无权查看",
        ),
        "rectification_not_answerable": ErrorCode(
            409,
            "The item is answered (awaiting review) or accepted; `details.status`. A retried answer that went "
            "through answers this.",
            "GET the item and show its status.",
        ),
        "rectification_not_answered": ErrorCode(
            409,
            "Only an answered item is accepted or returned (it is open, returned or accepted); `details.status`.",
            "GET the item and show its status.",
        ),
        "answer_note_required": ErrorCode(
            422, "An answer without a note of what was done.", _FIX, "整改答复须说明整改情况"
        ),
        "return_reason_required": ErrorCode(422, "A return without a reason.", _FIX, "退回须说明理由"),
        "evidence_outside_rectification": ErrorCode(
            422,
            "An evidence key was not issued for this item (`POST /rectifications/{id}/evidence`).",
            "Upload through the item's own upload URL and cite the key it gave.",
            "附件不属于该整改事项，请通过本事项的上传地址上传",
        ),
        "too_much_evidence": ErrorCode(422, "More evidence keys than an answer may cite (9).", _FIX),
    }
)


def catalogued_body(code: str) -> dict[str, Any]:
    """The body of a code whose message never varies."""
    return {"code": code, "message": CODES[code].message}


_CHALICE_STATUSES = {405: "method_not_allowed", 415: "unsupported_media_type"}


def chalice_error(status: int, body: Any) -> dict[str, Any] | None:
    """The API's body for an error Chalice answered itself (`{"Code": ..., "Message": ...}` in English: an
    unserved method, a content type the route does not take, an exception outside the routes' own handling);
    None for any other answer."""
    if not (isinstance(body, dict) and set(body) == {"Code", "Message"}):
        return None
    if status in _CHALICE_STATUSES:
        return catalogued_body(_CHALICE_STATUSES[status])
    if status >= 500:
        return dict(INTERNAL)
    return None
