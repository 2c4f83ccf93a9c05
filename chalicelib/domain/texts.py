"""Chinese texts users read: the SMS form (one segment, ≤ 70 characters) and the longer app form (DOMAIN.md §4)."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.levels import LEVEL_ZH, Level
from chalicelib.domain.policy import Deadline
from chalicelib.domain.sectors import Sector

SMS_PREFIX = "【滨海大应急】"
SMS_MAX_CHARS = 70
FLAG_ZH = {
    "frequent": "频繁报警",
    "combined": "多参数组合",
    "static": "重大危险源/高后果区",
    "context": "关联数据离线或联锁旁路",
}


class MissingChineseNameError(LookupError):
    """A code with no Chinese name (a risk type its sector's SectorSpec does not declare): raised, never shown to
    users as the English code."""


def _risk_type_names() -> dict[str, str]:
    names = {DATA_QUALITY: "数据质量"}
    for sector in Sector:
        if DATA_QUALITY in sector.spec.risk_types:
            raise ValueError(f"sector {sector}: {DATA_QUALITY} is the engine's risk type, not a sector's")
        names |= sector.spec.risk_types
    return names


RISK_TYPE_ZH = _risk_type_names()
"""Every risk type a warning can have, in Chinese: the engine's data-quality findings and each registered sector's
risk types (declared in its SectorSpec)."""
_COMPANY_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "项目部")


def risk_name(risk_type: str) -> str:
    """The Chinese name of a risk type; raises instead of showing users an English code."""
    try:
        return RISK_TYPE_ZH[risk_type]
    except KeyError:
        raise MissingChineseNameError(
            f"risk type {risk_type!r} has no Chinese name: declare it in its SectorSpec"
        ) from None


def short_enterprise(name: str) -> str:
    """名称去掉公司类型后缀(滨海捷运长途客运有限公司 -> 滨海捷运长途客运)."""
    for suffix in _COMPANY_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


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
    return "监测值恢复正常"


def _action(change: WarningChange, deadline: Deadline) -> str:
    if change.kind.lowers:
        return "请核实后反馈处置结果。" if change.kind is ChangeKind.RECOVER else "请继续处置。"
    if change.params.get("action") == "stop_pour_evacuate":
        return "立即停止浇筑撤离人员!"
    return f"请{span_zh(deadline.acknowledge_s)}内签收、{span_zh(deadline.verify_s)}内反馈。"


def sms_text(change: WarningChange, deadline: Deadline) -> str:
    """One SMS segment (≤ 70 characters): names shrink first, then the title; never the level, reading or id."""
    recovering = change.kind is ChangeKind.RECOVER
    head = f"{SMS_PREFIX}{_level_phrase(change)} "
    tail = f"{local_clock(change.at)}。{_action(change, deadline)}编号{change.warning_id}"
    title = risk_name(change.risk_type) if recovering or not change.title else change.title
    reading = "" if recovering else _reading(change)
    enterprise, point = short_enterprise(change.enterprise_name), change.point_name
    room = SMS_MAX_CHARS - len(head) - len(tail)

    def body() -> str:
        return " ".join(part for part in (enterprise, point + title, reading) if part) + " "

    while len(body()) > room and len(enterprise) > 4:
        enterprise = enterprise[:-1]
    while len(body()) > room and len(point) > 0:
        point = point[:-1]
    while len(body()) > room and len(title) > 2:
        title = title[:-1]
    return f"{head}{body()}{tail}"


def app_text(change: WarningChange, deadline: Deadline) -> str:
    """The long form shown in the enterprise app and on the duty console."""
    lines = [
        f"{_level_phrase(change)}:{risk_name(change.risk_type)} {change.title}".rstrip(),
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
        lines.append("升级原因:" + "、".join(FLAG_ZH[flag] for flag in change.flags))
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


_STAGE_ASK = {
    ("acknowledge", False): "请值守中心电话/视频连线企业",
    ("verify", False): "请行业主管部门和属地督促,可组织现场核查",
    ("clear", False): "请行业主管部门和属地督促降级或消警",
    ("clear", True): "请应急管理局领导督办",
    ("confirm", True): "请应急管理局督促值守中心确认",
}


def escalation_sms(
    level: int, warning_id: str, enterprise: str, stage: str, stage_zh: str, retold: bool = False
) -> str:
    """A missed stage (签收 / 核实反馈 / 消警 / 确认消警), naming it; `retold`: a level-up tells the new
    level's wider audience of a stage missed before. One segment: the enterprise's name shrinks first."""
    red_or_bureau = stage == "confirm" or (stage == "clear" and level >= Level.RED)
    ask = _STAGE_ASK.get((stage, red_or_bureau), "请督促处置")
    what = f"消警申请超时未{stage_zh}" if stage == "confirm" else f"超时未{stage_zh}"
    head = (
        f"{SMS_PREFIX}预警升为{LEVEL_ZH[Level(level)]}" if retold else f"{SMS_PREFIX}{LEVEL_ZH[Level(level)]}预警"
    )
    tail = f"{'此前' if retold else ''}{what},{ask}。编号{warning_id}"
    name = short_enterprise(enterprise)
    while len(head) + len(name) + 1 + len(tail) > SMS_MAX_CHARS and len(name) > 2:
        name = name[:-1]
    return f"{head} {name}{tail}"[:SMS_MAX_CHARS]


def reminder_sms(level: int, warning_id: str, enterprise: str, acknowledge_by: float) -> str:
    """A reminder to the enterprise while nobody has acknowledged (第十四条)."""
    head = f"{SMS_PREFIX}{LEVEL_ZH[Level(level)]}预警尚未签收 "
    tail = f",请于{local_clock(acknowledge_by)}前签收并核实。编号{warning_id}"
    name = short_enterprise(enterprise)
    while len(head) + len(name) + len(tail) > SMS_MAX_CHARS and len(name) > 2:
        name = name[:-1]
    return f"{head}{name}{tail}"[:SMS_MAX_CHARS]
