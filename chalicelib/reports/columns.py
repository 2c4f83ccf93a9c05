"""What the workbook and the HTML page show, defined once: the columns of each view (Chinese header, kind of
number, how to read the value), the band colours, and Chinese labels for periods, bands and durations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.evaluation.periods import Period, PeriodKind
from chalicelib.domain.evaluation.report import (
    BAND_ORDER,
    EnterpriseRow,
    EvaluationReport,
    Figures,
    PriorityRow,
    Rollup,
    band_zh,
    reason_zh,
)
from chalicelib.domain.policy import DEPARTMENT_ZH

Row = TypeVar("Row")
Cell = str | float | int | None

# DOMAIN.md §1's four colours, as printed: the band cell's fill and its text colour
BAND_FILL = {"red": "#D7263D", "orange": "#F28C28", "yellow": "#F5D000", "blue": "#1F6FD1"}
BAND_TEXT = {"red": "#FFFFFF", "orange": "#1A1A1A", "yellow": "#1A1A1A", "blue": "#FFFFFF"}
GOOD_TEXT = "#1B7F3B"  # 在线率 at or above the target
SHORT_FILL = "#FBE3E4"  # 在线率 below the target
SHORT_TEXT = "#9C1C28"


class Kind(StrEnum):
    TEXT = "text"
    INT = "int"
    PERCENT = "percent"  # 0.0 %
    ONLINE = "online"  # 0.00 %: the target is 99.5 %
    SCORE = "score"  # one decimal
    HOURS = "hours"  # one decimal, hours
    DURATION = "duration"  # seconds, shown as [h]:mm:ss / 1小时05分
    BAND = "band"  # a band code, shown as 红色 … in its colour


@dataclass(frozen=True)
class Column(Generic[Row]):
    header: str
    kind: Kind
    value: Callable[[EvaluationReport, Row], Cell]
    band: str | None = None  # a count of enterprises in this band (coloured when > 0)


def period_zh(period: Period) -> str:
    """2025年3月, 2025年第1季度, 2025年度; a custom window （2025年3月1日 08:00:00 至 3月3日 08:00:00）, local
    times, in brackets: the titles run on into 安全风险监测预警评估报告."""
    if period.kind is PeriodKind.CUSTOM:
        start, end = (datetime.fromtimestamp(at, SHANGHAI) for at in (period.start, period.end))
        same_day = end.date() == start.date()
        shown_end = f"{end:%H:%M:%S}" if same_day else f"{end.month}月{end.day}日 {end:%H:%M:%S}"
        return f"（{start.year}年{start.month}月{start.day}日 {start:%H:%M:%S} 至 {shown_end}）"
    if period.kind is PeriodKind.MONTH:
        year, month = period.label.split("-")
        return f"{year}年{int(month)}月"
    if period.kind is PeriodKind.QUARTER:
        year, quarter = period.label.split("-Q")
        return f"{year}年第{quarter}季度"
    return f"{period.label}年度"


def duration_zh(seconds: float | None) -> str:
    """A mean time in Chinese: 45秒, 12分30秒, 3小时05分, 2天3小时; "—" for no data."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}秒"
    if whole < 3600:
        return f"{whole // 60}分{whole % 60:02d}秒"
    if whole < 2 * 86400:
        return f"{whole // 3600}小时{whole % 3600 // 60:02d}分"
    return f"{whole // 86400}天{whole % 86400 // 3600}小时"


def areas_zh(report: EvaluationReport, codes: Sequence[str]) -> str:
    return "、".join(report.area_name(code) for code in codes)


def _raised(level: str) -> Callable[[EvaluationReport, Figures], Cell]:
    return lambda _, figures: figures.raised[level]


def _in_band(band: str) -> Callable[[EvaluationReport, Rollup], Cell]:
    return lambda _, rollup: rollup.bands[band]


def _figure_columns() -> list[Column[Figures]]:
    """The indicators of a tally, in the order both the enterprise and the rollup views show them."""
    return [
        Column("在线率", Kind.ONLINE, lambda _, f: f.online),
        Column("未报备离线(小时)", Kind.HOURS, lambda _, f: f.undeclared_outage_h),
        Column("预警总数", Kind.INT, lambda _, f: f.raised_total),
        *(Column(f"{band_zh(level)}预警", Kind.INT, _raised(level)) for level in BAND_ORDER),
        Column("处置率", Kind.PERCENT, lambda _, f: f.disposal),
        Column("及时率", Kind.PERCENT, lambda _, f: f.timeliness),
        Column("超时环节", Kind.INT, lambda _, f: f.missed_deadlines),
        Column("误报率", Kind.PERCENT, lambda _, f: f.false_alarm),
        Column("平均签收时长", Kind.DURATION, lambda _, f: f.acknowledge_mean_s),
        Column("平均消警时长", Kind.DURATION, lambda _, f: f.clear_mean_s),
        Column("升级率", Kind.PERCENT, lambda _, f: f.escalation),
        Column("重复报警率", Kind.PERCENT, lambda _, f: f.repeat),
        Column("车辆上线率", Kind.PERCENT, lambda _, f: f.road_online),
        Column("数据合格率", Kind.PERCENT, lambda _, f: f.road_data_quality),
        Column("轨迹完整率", Kind.PERCENT, lambda _, f: f.road_track),
        Column("漂移率", Kind.PERCENT, lambda _, f: f.road_drift),
        Column("入网率", Kind.PERCENT, lambda _, f: f.road_network),
    ]


def _of_row(column: Column[Figures]) -> Column[EnterpriseRow]:
    return Column(column.header, column.kind, lambda report, row: column.value(report, row.figures))


def _of_rollup(column: Column[Figures]) -> Column[Rollup]:
    return Column(column.header, column.kind, lambda report, r: column.value(report, r.figures))


def _rank(position: int, of: int) -> str:
    return f"{position}/{of}"


ENTERPRISE_COLUMNS: list[Column[EnterpriseRow]] = [
    Column("名次", Kind.INT, lambda _, row: row.rank),
    Column("企业名称", Kind.TEXT, lambda _, row: row.name),
    Column("企业编号", Kind.TEXT, lambda _, row: row.enterprise_id),
    Column("行业", Kind.TEXT, lambda _, row: row.sector.zh),
    Column("区域", Kind.TEXT, lambda report, row: areas_zh(report, row.area_codes)),
    Column("监管部门", Kind.TEXT, lambda _, row: "、".join(DEPARTMENT_ZH.get(d, d) for d in row.departments)),
    Column("得分", Kind.SCORE, lambda _, row: row.score),
    Column("等级", Kind.BAND, lambda _, row: row.band),
    Column("行业排名", Kind.TEXT, lambda _, row: _rank(row.sector_rank.position, row.sector_rank.of)),
    Column(
        "区域排名",
        Kind.TEXT,
        lambda report, row: "；".join(
            f"{report.area_name(r.scope)} {_rank(r.position, r.of)}" for r in row.area_ranks
        ),
    ),
    *(_of_row(column) for column in _figure_columns()),
    Column("重大危险源扣分", Kind.SCORE, lambda _, row: row.card.static_points),
    Column("预警扣分", Kind.SCORE, lambda _, row: row.card.warning_points),
    Column("超时扣分", Kind.SCORE, lambda _, row: row.card.deadline_points),
    Column("数据质量扣分", Kind.SCORE, lambda _, row: row.card.data_quality_points),
]

ROLLUP_COLUMNS: list[Column[Rollup]] = [
    Column("名称", Kind.TEXT, lambda _, r: r.name),
    Column("代码", Kind.TEXT, lambda _, r: r.key),
    Column("企业数", Kind.INT, lambda _, r: r.enterprises),
    *(Column(f"{band_zh(band)}等级企业", Kind.INT, _in_band(band), band=band) for band in BAND_ORDER),
    *(_of_rollup(column) for column in _figure_columns()),
]

PRIORITY_COLUMNS: list[Column[PriorityRow]] = [
    Column("序号", Kind.INT, lambda _, p: p.position),
    Column("企业名称", Kind.TEXT, lambda _, p: p.name),
    Column("企业编号", Kind.TEXT, lambda _, p: p.enterprise_id),
    Column("行业", Kind.TEXT, lambda _, p: p.sector.zh),
    Column("区域", Kind.TEXT, lambda report, p: areas_zh(report, p.area_codes)),
    Column("得分", Kind.SCORE, lambda _, p: p.score),
    Column("等级", Kind.BAND, lambda _, p: p.band),
    Column("行业排名", Kind.TEXT, lambda _, p: _rank(p.sector_rank.position, p.sector_rank.of)),
    Column("列入原因", Kind.TEXT, lambda _, p: "、".join(reason_zh(reason) for reason in p.reasons)),
]
