"""The one error map of the API: any exception → (HTTP status, `{"code", "message"[, "details"]}`).

- `DomainError` (and `Unauthorized`): its own status, code and Chinese message;
- pydantic `ValidationError`: 422 `invalid_request` with the failing fields (location and error type only: the
  input is never echoed back);
- `ConcurrentUpdateError` (a conditional write lost its race every time it was retried): 409 `conflict`;
- anything else: 500 `internal`, logged with its traceback; the body says nothing about it.
Nothing branches on message text.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from pydantic import ValidationError

from chalicelib.domain.errors import DomainError
from chalicelib.services.ports import ConcurrentUpdateError

logger = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class BadRequest(DomainError):  # noqa: N818 - named after the HTTP status, like its siblings
    """The request cannot be read at all (not JSON, not an object)."""

    http_status: ClassVar[int] = 400


INVALID_REQUEST = {"code": "invalid_request", "message": "请求参数错误"}
CONFLICT = {"code": "conflict", "message": "操作冲突,请刷新后重试"}
INTERNAL = {"code": "internal", "message": "系统错误"}

ERROR_CODES: dict[int, str] = {
    400: "请求无法解析",
    401: "未登录或登录已过期",
    403: "无权进行此操作",
    404: "对象不存在或无权查看",
    409: "状态冲突",
    422: "请求参数错误",
    500: "系统错误",
}
"""Every status the API answers with besides 200/201 (for the OpenAPI document)."""


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in error["loc"]], "type": error["type"]}
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, DomainError):
        return exc.http_status, exc.to_dict()
    if isinstance(exc, ValidationError):
        return 422, {**INVALID_REQUEST, "details": validation_details(exc)}
    if isinstance(exc, ConcurrentUpdateError):
        return 409, dict(CONFLICT)
    logger.exception("unhandled error in an API call", exc_info=exc)
    return 500, dict(INTERNAL)
