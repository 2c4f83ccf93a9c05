"""Chinese texts users read: the SMS form (one segment, ≤ 70 characters) and the longer app form (DOMAIN.md §4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.levels import LEVEL_ZH, Level
from chalicelib.domain.policy import Deadline

SMS_PREFIX = "【滨海大应急】"
SMS_MAX_CHARS = 70
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
FLAG_ZH = {
    "frequent": "频繁报警",
    "combined": "多参数组合",
    "static": "重大危险源/高后果区",
    "context": "关联数据离线或联锁旁路",
}


def local_clock(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(SHANGHAI).strftime("%H:%M")


def local_datetime(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def span_zh(seconds: float) -> str:
    """A deadline in Chinese: 5分钟, 2小时, 3天, 30秒 (test stages use seconds)."""
    if seconds < 60:
        return f"{seconds:g}秒"
    if seconds < 3600:
        return f"{seconds / 60:g}分钟"
    if seconds < 86400 * 2 and seconds % 86400:
        return f"{seconds / 3600:g}小时"
    return f"{seconds / 86400:g}天"


def _reading(change: WarningChange) -> str:
    if change.value is None:
        return ""
    return f"{change.value:g}{change.unit}"


def _level_phrase(change: WarningChange) -> str:
    if change.kind is ChangeKind.RAISE:
        return f"{LEVEL_ZH[Level(change.level)]}预警"
    if change.kind is ChangeKind.LEVEL_UP:
        return f"预警升为{LEVEL_ZH[Level(change.level)]}"
    if change.kind is ChangeKind.LEVEL_DOWN:
        return f"预警降为{LEVEL_ZH[Level(change.level)]}"
    return "预警数据恢复"


def _action(change: WarningChange, deadline: Deadline) -> str:
    if change.kind.lowers:
        return "请核实后反馈处置结果。" if change.kind is ChangeKind.RECOVER else "请继续处置。"
    if change.params.get("action") == "stop_pour_evacuate":
        return "立即停止浇筑撤离人员!"
    return f"请{span_zh(deadline.acknowledge_s)}内签收,{span_zh(deadline.verify_s)}内核实反馈。"


def sms_text(change: WarningChange, deadline: Deadline) -> str:
    """One SMS segment: the enterprise name is shortened first, then the point name, never the level or the id."""
    head = f"{SMS_PREFIX}{_level_phrase(change)} "
    title = change.title or change.risk_type
    detail = f"{title} {_reading(change)} {local_clock(change.at)}。".replace("  ", " ")
    tail = f"{_action(change, deadline)}编号{change.warning_id}"
    enterprise, point = change.enterprise_name, change.point_name
    room = SMS_MAX_CHARS - len(head) - len(detail) - len(tail) - 1
    if len(enterprise) + len(point) > room:
        point = point[: max(0, min(len(point), room - min(len(enterprise), 8)))]
        enterprise = enterprise[: max(0, room - len(point))]
    text = f"{head}{enterprise} {point}{detail}{tail}".replace("  ", " ")
    return text[:SMS_MAX_CHARS]


def app_text(change: WarningChange, deadline: Deadline) -> str:
    """The long form shown in the enterprise app and on the duty console."""
    lines = [
        f"{_level_phrase(change)}:{change.title or change.risk_type}",
        f"企业:{change.enterprise_name}",
        f"位置:{change.unit_name} {change.point_name}".rstrip(),
        f"时间:{local_datetime(change.at)}",
    ]
    if change.value is not None:
        lines.append(f"监测值:{_reading(change)}")
    if change.params:
        shown = ",".join(f"{key}={value}" for key, value in change.params.items() if key != "action")
        if shown:
            lines.append(f"关键参数:{shown}")
    if change.flags:
        lines.append("升级原因:" + "、".join(FLAG_ZH.get(flag, flag) for flag in change.flags))
    if change.risk_type == DATA_QUALITY:
        lines.append("说明:设备数据异常(数据质量问题),请检查设备,不作为安全报警。")
    if change.kind.lowers:
        lines.append(f"原等级:{LEVEL_ZH[Level(change.previous_level)]}")
        lines.append(_action(change, deadline))
    else:
        if change.params.get("action") == "stop_pour_evacuate":
            lines.append("要求:立即停止浇筑,撤离作业人员。")
        lines.append(
            f"要求:{span_zh(deadline.acknowledge_s)}内签收,{span_zh(deadline.verify_s)}内现场核实并反馈,"
            f"{span_zh(deadline.clear_s)}内降级或消警。"
        )
    lines.append(f"编号:{change.warning_id}")
    return "\n".join(lines)
