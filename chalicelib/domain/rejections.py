"""Typed rejections: why a message was not graded (it is quarantined with this reason and its original bytes)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError


class RejectReason(StrEnum):
    SCHEMA = "schema"  # not JSON, or not the envelope
    UNKNOWN_SECTOR = "unknown_sector"
    UNKNOWN_METRIC = "unknown_metric"
    UNKNOWN_EVENT = "unknown_event"
    OUT_OF_RANGE = "out_of_range"  # outside the sensor's physical range
    NAN_INF = "nan_inf"
    TIMESTAMP_FUTURE = "timestamp_future"
    TIMESTAMP_PAST = "timestamp_past"
    REPLAYED = "replayed"  # sequence (or timestamp) already seen
    OUT_OF_ORDER = "out_of_order"  # older than the device's newest accepted reading
    UNKNOWN_DEVICE = "unknown_device"
    SPOOFED = "spoofed"  # the topic's identity differs from the payload's or the registration's
    OVERSIZED = "oversized"  # the stream record exceeds the largest message a device may send
    UNSTORABLE_VALUE = (
        "unstorable_value"  # valid JSON whose content the store cannot hold (caught at the boundary)
    )
    MODEL_ERROR = "model_error"  # a sector model raised on a valid message: a platform bug, kept to replay
    DECLARED_DISTORTION = "declared_distortion"  # inside a 数据失真 declaration: kept, never graded

    @property
    def zh(self) -> str:
        return REJECT_REASON_ZH[self]

    @property
    def is_sensor_fault(self) -> bool:
        """Reasons that say the device itself is faulty: a data-quality finding for a registered device."""
        return self in SENSOR_FAULTS


REJECT_REASON_ZH = {
    RejectReason.SCHEMA: "报文格式错误",
    RejectReason.UNKNOWN_SECTOR: "未知行业",
    RejectReason.UNKNOWN_METRIC: "未知监测参数",
    RejectReason.UNKNOWN_EVENT: "未知事件类型",
    RejectReason.OUT_OF_RANGE: "数值超出物理量程",
    RejectReason.NAN_INF: "数值非法(NaN/无穷)",
    RejectReason.TIMESTAMP_FUTURE: "时间戳超前(设备时钟偏差)",
    RejectReason.TIMESTAMP_PAST: "时间戳过旧(设备时钟偏差)",
    RejectReason.REPLAYED: "重复报文",
    RejectReason.OUT_OF_ORDER: "乱序报文",
    RejectReason.UNKNOWN_DEVICE: "未注册设备",
    RejectReason.SPOOFED: "身份冒用(主题与设备不符)",
    RejectReason.OVERSIZED: "报文过大",
    RejectReason.UNSTORABLE_VALUE: "内容无法存储",
    RejectReason.MODEL_ERROR: "平台评估模型异常",
    RejectReason.DECLARED_DISTORTION: "已申报数据失真,不评估",
}
SENSOR_FAULTS = frozenset(
    {
        RejectReason.OUT_OF_RANGE,
        RejectReason.NAN_INF,
        RejectReason.TIMESTAMP_FUTURE,
        RejectReason.TIMESTAMP_PAST,
    }
)


@dataclass(slots=True, frozen=True)
class Rejection:
    reason: RejectReason
    detail: str
    raw: bytes
    device_id: str | None = None
    at: float | None = None  # the message's own time when it could be read (a data-quality finding's time)


def safe_text(text: str, limit: int = 500) -> str:
    """Text any store can hold: lone surrogates and control characters escaped, at most `limit` characters."""
    cut = text[:limit]
    if cut.isprintable():
        return cut
    escaped = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in cut)
    return escaped.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


# When a payload has several errors, the most telling one names the rejection.
_PRIORITY = (
    RejectReason.NAN_INF,
    RejectReason.OUT_OF_RANGE,
    RejectReason.UNKNOWN_SECTOR,
    RejectReason.UNKNOWN_METRIC,
    RejectReason.UNKNOWN_EVENT,
    RejectReason.SCHEMA,
)
_RANGE_ERRORS = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})


def _reason_of(error: Any) -> RejectReason:
    kind = error["type"]
    loc = error["loc"]
    in_metrics = len(loc) >= 2 and loc[1] == "metrics"
    in_events = len(loc) >= 2 and loc[1] == "events"
    if kind == "finite_number":
        return RejectReason.NAN_INF
    if kind in _RANGE_ERRORS and in_metrics:
        return RejectReason.OUT_OF_RANGE
    if kind == "union_tag_invalid":
        return RejectReason.UNKNOWN_SECTOR
    if kind == "extra_forbidden" and in_metrics and len(loc) == 3:
        return RejectReason.UNKNOWN_METRIC
    if kind == "literal_error" and in_events and loc[-1] == "code":
        return RejectReason.UNKNOWN_EVENT
    return RejectReason.SCHEMA


def rejection_from_validation(exc: ValidationError, raw: bytes) -> Rejection:
    errors = exc.errors(include_url=False, include_input=False)
    reasons = {_reason_of(error) for error in errors}
    reason = next((candidate for candidate in _PRIORITY if candidate in reasons), RejectReason.SCHEMA)
    first = next(error for error in errors if _reason_of(error) is reason)
    where = ".".join(str(part) for part in first["loc"])
    device_id, at = claimed_identity(raw)
    return Rejection(reason, safe_text(f"{where}: {first['msg']}", 300), raw, device_id, at)


def claimed_identity(raw: bytes) -> tuple[str | None, float | None]:
    """Best-effort device id and message time from a payload that failed validation (for data-quality
    accounting): the id only when it is a well-formed device id, the time only when it is an aware ISO time."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    device_id = data.get("device_id")
    if not (isinstance(device_id, str) and _DEVICE_ID.fullmatch(device_id)):
        device_id = None
    return device_id, _aware_epoch(data.get("ts"))


_DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _aware_epoch(value: Any) -> float | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
