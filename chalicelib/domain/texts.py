"""Chinese texts users read: the SMS form (one segment, ≤ 70 characters) and the longer app form (DOMAIN.md §4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from string import Formatter

from chalicelib.domain.changes import DATA_QUALITY, OFFLINE, ChangeKind, WarningChange
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
    names = {DATA_QUALITY: "数据质量", OFFLINE: "设备离线"}
    for sector in Sector:
        for own in (DATA_QUALITY, OFFLINE):
            if own in sector.spec.risk_types:
                raise ValueError(f"sector {sector}: {own} is the platform's risk type, not a sector's")
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


def local_day_clock(epoch_s: float) -> str:
    """Day and time (UTC+8) for a window that may span days: 11-30 08:00."""
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(SHANGHAI).strftime("%m-%d %H:%M")


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
    """One SMS segment (≤ 70 characters): names shrink first, then the title; never the level or id."""
    return change_text(change, deadline).render()


def change_text(change: WarningChange, deadline: Deadline) -> SmsText:
    """A warning change as a template and its parameters (`WARNING_CHANGE`, or `WARNING_CHANGE_BRIEF` without a
    reading), fitted to one segment."""
    recovering = change.kind is ChangeKind.RECOVER
    title = risk_name(change.risk_type) if recovering or not change.title else change.title
    reading = "" if recovering else _reading(change)
    params = {
        "phrase": _level_phrase(change),
        "enterprise": short_enterprise(change.enterprise_name),
        "what": change.point_name + title,
        "clock": local_clock(change.at),
        "ask": _action(change, deadline),
        "warning_id": change.warning_id,
    }
    if reading:
        return fit(WARNING_CHANGE, {**params, "reading": reading})
    return fit(WARNING_CHANGE_BRIEF, params)


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
        lines.append(_QUALITY_NOTES.get(change.reason, _QUALITY_NOTE))
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


_QUALITY_NOTE = "说明:设备数据异常(数据质量问题),请检查设备,不作为安全报警。"
_LONG_PERIOD_NOTE = "说明:设备长时间处于手动、屏蔽或旁路状态,请尽快恢复或申报,不作为安全报警。"
_QUALITY_NOTES = {
    "config_mismatch": "说明:设备上报的设定值与登记不符,请核查;变更设定值须经登记(第十六条),不作为安全报警。",
    "long_manual": _LONG_PERIOD_NOTE,
    "long_isolation": _LONG_PERIOD_NOTE,
    "long_interlock_bypass": _LONG_PERIOD_NOTE,
}

_STAGE_ASK = {
    ("acknowledge", False): "请值守中心电话/视频连线企业",
    ("verify", False): "请行业主管部门和属地督促,可组织现场核查",
    ("clear", False): "请行业主管部门和属地督促降级或消警",
    ("clear", True): "请应急管理局领导督办",
    ("confirm", True): "请应急管理局督促值守中心确认",
}


def escalation_text(
    level: int, warning_id: str, enterprise: str, stage: str, stage_zh: str, retold: bool = False
) -> SmsText:
    """A missed stage (签收 / 核实反馈 / 消警 / 确认消警), naming it; `retold`: a level-up tells the new
    level's wider audience of a stage missed before. One segment: the enterprise's name shrinks first."""
    red_or_bureau = stage == "confirm" or (stage == "clear" and level >= Level.RED)
    params = {
        "level": LEVEL_ZH[Level(level)],
        "enterprise": short_enterprise(enterprise),
        "overdue": f"消警申请超时未{stage_zh}" if stage == "confirm" else f"超时未{stage_zh}",
        "ask": _STAGE_ASK.get((stage, red_or_bureau), "请督促处置"),
        "warning_id": warning_id,
    }
    return fit(WARNING_ESCALATED_RETOLD if retold else WARNING_ESCALATED, params)


def escalation_sms(
    level: int, warning_id: str, enterprise: str, stage: str, stage_zh: str, retold: bool = False
) -> str:
    return escalation_text(level, warning_id, enterprise, stage, stage_zh, retold).render()


def reminder_text(level: int, warning_id: str, enterprise: str, acknowledge_by: float) -> SmsText:
    """A reminder to the enterprise while nobody has acknowledged (第十四条)."""
    params = {
        "level": LEVEL_ZH[Level(level)],
        "enterprise": short_enterprise(enterprise),
        "deadline": local_clock(acknowledge_by),
        "warning_id": warning_id,
    }
    return fit(WARNING_REMINDER, params)


def reminder_sms(level: int, warning_id: str, enterprise: str, acknowledge_by: float) -> str:
    return reminder_text(level, warning_id, enterprise, acknowledge_by).render()


def declaration_reminder_text(enterprise: str, reason_zh: str, ends_at: float, declaration_id: str) -> SmsText:
    """The declarer's window ends soon (第十六条): data must be back by then, or a new declaration is needed."""
    params = {
        "enterprise": short_enterprise(enterprise),
        "reason": reason_zh,
        "deadline": local_day_clock(ends_at),
        "declaration_id": declaration_id,
    }
    return fit(DECLARATION_REMINDER, params)


def declaration_approved_text(
    enterprise: str, reason_zh: str, starts_at: float, ends_at: float, declaration_id: str
) -> SmsText:
    params = {
        "enterprise": short_enterprise(enterprise),
        "reason": reason_zh,
        "window": f"{local_day_clock(starts_at)}至{local_day_clock(ends_at)}",
        "declaration_id": declaration_id,
    }
    return fit(DECLARATION_APPROVED, params)


def declaration_rejected_text(enterprise: str, reason_zh: str, why: str, declaration_id: str) -> SmsText:
    params = {
        "enterprise": short_enterprise(enterprise),
        "reason": reason_zh,
        "why": why,
        "declaration_id": declaration_id,
    }
    return fit(DECLARATION_REJECTED, params)


def evaluation_result_text(
    enterprise: str, period_zh: str, score: float, band_zh: str, rank: int, of: int, items: int, deadline: float
) -> SmsText:
    """A published report's result for one enterprise (通报): its score, band and district rank, and how many
    problems it must rectify by when."""
    params = {
        "enterprise": short_enterprise(enterprise),
        "period": period_zh,
        "score": f"{score:g}",
        "band": band_zh,
        "rank": f"{rank}/{of}",
        "rectify": f"须整改{items}项,{local_day_clock(deadline)[:5]}前答复" if items else "详见平台",
    }
    return fit(EVALUATION_RESULT, params)


def evaluation_summary_text(
    scope_zh: str, period_zh: str, enterprises: int, bands: Mapping[str, int], rectifying: int
) -> SmsText:
    """A published report's summary for a regulator, an area, the duty centre or the bureau (inbox)."""
    params = {
        "scope": scope_zh,
        "period": period_zh,
        "count": str(enterprises),
        "red": str(bands.get("red", 0)),
        "orange": str(bands.get("orange", 0)),
        "yellow": str(bands.get("yellow", 0)),
        "blue": str(bands.get("blue", 0)),
        "rectifying": str(rectifying),
    }
    return fit(EVALUATION_SUMMARY, params)


def rectification_notice_text(
    change: str, enterprise: str, what: str, rectification_id: str, deadline: float | None = None
) -> SmsText:
    """A rectification item changed (`answered`: to its regulator; `returned`, `accepted`: to the enterprise)."""
    params = {"enterprise": short_enterprise(enterprise), "what": what, "rectification_id": rectification_id}
    if change == "returned":
        deadline_text = local_day_clock(deadline)[:5] if deadline is not None else "-"
        return fit(RECTIFICATION_RETURNED, {**params, "deadline": deadline_text})
    return fit(RECTIFICATION_ANSWERED if change == "answered" else RECTIFICATION_ACCEPTED, params)


# --- templates: what every SMS and inbox line is made of ------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """One SMS template: `pattern` (str.format fields, without the signature), the longest value each `fixed`
    parameter may have, and the `elastic` parameters in the order they shrink, each with the least it keeps in
    the first round and the side it keeps (`"head"`: cut the end; `"tail"`: cut the start)."""

    template_id: str
    pattern: str
    fixed: Mapping[str, int]
    elastic: tuple[tuple[str, int, str], ...]

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(name for _, name, _, _ in Formatter().parse(self.pattern) if name)

    @property
    def literal_chars(self) -> int:
        return len(SMS_PREFIX) + sum(len(text) for text, _, _, _ in Formatter().parse(self.pattern))


@dataclass(frozen=True)
class SmsText:
    """A text as a template id and its (fitted) parameters: what a template provider sends; `render()` is what a
    free-text provider sends and what the inbox shows."""

    template_id: str
    params: Mapping[str, str]

    def render(self) -> str:
        return SMS_PREFIX + TEMPLATES[self.template_id].pattern.format(**self.params)


PARAM_MAX_CHARS = 35  # a template variable's limit at the provider (docs/sms-channels.md)
WARNING_CHANGE = Template(
    "warning_change",
    "{phrase} {enterprise} {what} {reading} {clock}。{ask}编号{warning_id}",
    {"phrase": 6, "clock": 5, "ask": 24, "warning_id": 12},
    (("enterprise", 4, "head"), ("what", 2, "tail"), ("reading", 1, "head")),
)
WARNING_CHANGE_BRIEF = Template(
    "warning_change_brief",
    "{phrase} {enterprise} {what} {clock}。{ask}编号{warning_id}",
    {"phrase": 7, "clock": 5, "ask": 24, "warning_id": 12},
    (("enterprise", 4, "head"), ("what", 2, "tail")),
)
WARNING_REMINDER = Template(
    "warning_reminder",
    "{level}预警尚未签收 {enterprise},请于{deadline}前签收并核实。编号{warning_id}",
    {"level": 2, "deadline": 5, "warning_id": 12},
    (("enterprise", 2, "head"),),
)
WARNING_ESCALATED = Template(
    "warning_escalated",
    "{level}预警 {enterprise}{overdue},{ask}。编号{warning_id}",
    {"level": 2, "overdue": 12, "ask": 24, "warning_id": 12},
    (("enterprise", 2, "head"),),
)
WARNING_ESCALATED_RETOLD = Template(
    "warning_escalated_retold",
    "预警升为{level} {enterprise}此前{overdue},{ask}。编号{warning_id}",
    {"level": 2, "overdue": 12, "ask": 24, "warning_id": 12},
    (("enterprise", 2, "head"),),
)
DECLARATION_ID_CHARS = 20  # DCL- and 16 hex digits (services.declarations.new_declaration_id)
DECLARATION_REMINDER = Template(
    "declaration_reminder",
    "{enterprise}{reason}申报{deadline}到期,届时数据未恢复请重新申报。编号{declaration_id}",
    {"reason": 4, "deadline": 11, "declaration_id": DECLARATION_ID_CHARS},
    (("enterprise", 2, "head"),),
)
DECLARATION_APPROVED = Template(
    "declaration_approved",
    "{enterprise}{reason}申报已核准,{window}。编号{declaration_id}",
    {"reason": 4, "window": 23, "declaration_id": DECLARATION_ID_CHARS},
    (("enterprise", 2, "head"),),
)
DECLARATION_REJECTED = Template(
    "declaration_rejected",
    "{enterprise}{reason}申报被驳回:{why}。请按时恢复数据。编号{declaration_id}",
    {"reason": 4, "declaration_id": DECLARATION_ID_CHARS},
    (("enterprise", 4, "head"), ("why", 4, "head")),
)
EVALUATION_RESULT = Template(
    "evaluation_result",
    "{enterprise}{period}评估得分{score}({band}),全区第{rank}名。{rectify}",
    {"period": 11, "score": 6, "band": 2, "rank": 11, "rectify": 16},
    (("enterprise", 2, "head"),),
)
EVALUATION_SUMMARY = Template(
    "evaluation_summary",
    "{scope}{period}评估:{count}家企业,红{red}橙{orange}黄{yellow}蓝{blue},须整改{rectifying}家。详见平台",
    {"period": 11, "count": 5, "red": 4, "orange": 4, "yellow": 4, "blue": 4, "rectifying": 4},
    (("scope", 2, "head"),),
)
RECTIFICATION_ID_CHARS = 20  # RCT- and 16 hex digits (domain.evaluation.rectification.rectification_id)
RECTIFICATION_RETURNED = Template(
    "rectification_returned",
    "{enterprise}整改答复被退回:{what}。请于{deadline}前重新答复。编号{rectification_id}",
    {"deadline": 5, "rectification_id": RECTIFICATION_ID_CHARS},
    (("enterprise", 4, "head"), ("what", 4, "head")),
)
RECTIFICATION_ANSWERED = Template(
    "rectification_answered",
    "{enterprise}已答复整改事项:{what},请验收。编号{rectification_id}",
    {"rectification_id": RECTIFICATION_ID_CHARS},
    (("enterprise", 4, "head"), ("what", 4, "head")),
)
RECTIFICATION_ACCEPTED = Template(
    "rectification_accepted",
    "{enterprise}整改事项已验收:{what}。编号{rectification_id}",
    {"rectification_id": RECTIFICATION_ID_CHARS},
    (("enterprise", 4, "head"), ("what", 4, "head")),
)
TEMPLATES: Mapping[str, Template] = {
    template.template_id: template
    for template in (
        WARNING_CHANGE,
        WARNING_CHANGE_BRIEF,
        WARNING_REMINDER,
        WARNING_ESCALATED,
        WARNING_ESCALATED_RETOLD,
        DECLARATION_REMINDER,
        DECLARATION_APPROVED,
        DECLARATION_REJECTED,
        EVALUATION_RESULT,
        EVALUATION_SUMMARY,
        RECTIFICATION_RETURNED,
        RECTIFICATION_ANSWERED,
        RECTIFICATION_ACCEPTED,
    )
}


def _check(template: Template) -> Template:
    """Every template fits one segment when each fixed parameter is at its longest and each elastic one is
    down to one character."""
    if template.fields != set(template.fixed) | {name for name, _, _ in template.elastic}:
        raise ValueError(f"template {template.template_id}: fields and parameters differ")
    worst = template.literal_chars + sum(template.fixed.values()) + len(template.elastic)
    if worst > SMS_MAX_CHARS:
        raise ValueError(f"template {template.template_id}: {worst} characters at worst")
    return template


for _template in TEMPLATES.values():
    _check(_template)


def _cut(value: str, keep: int, side: str) -> str:
    return value[len(value) - keep :] if side == "tail" else value[:keep]


def fit(template: Template, params: Mapping[str, str]) -> SmsText:
    """The rule that makes every text one segment (the channel never cuts): each value loses control characters
    and is capped at `PARAM_MAX_CHARS`, a fixed one at its declared longest; then the elastic ones shrink in
    their order, first down to their minimum, then (a last resort) down to one character. Never empty: template
    providers refuse an empty variable."""
    values: dict[str, str] = {}
    for name in template.fields:
        text = " ".join(str(params.get(name) or "").split()) or "-"
        values[name] = text[: min(PARAM_MAX_CHARS, template.fixed.get(name, PARAM_MAX_CHARS))]

    def over() -> int:
        return len(SmsText(template.template_id, values).render()) - SMS_MAX_CHARS

    for floor in (None, 1):
        for name, least, side in template.elastic:
            excess = over()
            if excess <= 0:
                break
            keep = max(floor or least, len(values[name]) - excess)
            values[name] = _cut(values[name], min(keep, len(values[name])), side)
    return SmsText(template.template_id, values)
