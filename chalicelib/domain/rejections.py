"""Typed rejections: why a message was not graded (it is quarantined with this reason and its original bytes)."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    REGISTRATION_MISMATCH = "registration_mismatch"  # enterprise or sector differs from the registration
    SPOOFED = "spoofed"  # the topic's identity differs from the payload's or the registration's

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
    RejectReason.REGISTRATION_MISMATCH: "与注册信息不符",
    RejectReason.SPOOFED: "身份冒用(主题与设备不符)",
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
    return Rejection(reason, f"{where}: {first['msg']}"[:300], raw, claimed_device_id(raw))


def claimed_device_id(raw: bytes) -> str | None:
    """Best-effort device id from a payload that failed validation (for data-quality accounting)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(data, dict):
        device_id = data.get("device_id")
        if isinstance(device_id, str) and 0 < len(device_id) <= 64:
            return device_id
    return None
