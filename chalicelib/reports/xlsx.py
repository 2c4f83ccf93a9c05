"""The evaluation workbook (XlsxWriter: write-only, pure Python, no dependencies; docs/evaluation.md "Reports").

One sheet per view: 企业, 行业, 区域, 部门, 重点检查名单. Each has a title row, a header row (frozen, with an
autofilter), number formats by column kind (percentages, one-decimal scores, hours, [h]:mm:ss durations), widths
fitted to the Chinese text, and conditional colours: the score and band cells in the band's colour (the report's
own band edges), 在线率 green at or above the target and red below, the band-count columns of the rollups coloured
when not zero. The rollup sheets end with the district's total (全区) below the filtered range.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Sequence
from typing import Any, TypeVar

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_rowcol_to_cell
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from chalicelib.domain.evaluation.periods import PeriodKind, period_zh
from chalicelib.domain.evaluation.report import BAND_ORDER, EvaluationReport, band_zh
from chalicelib.domain.texts import local_datetime
from chalicelib.reports.columns import (
    BAND_FILL,
    BAND_TEXT,
    ENTERPRISE_COLUMNS,
    GOOD_TEXT,
    PRIORITY_COLUMNS,
    ROLLUP_COLUMNS,
    SHORT_FILL,
    SHORT_TEXT,
    Column,
    Kind,
)

Row = TypeVar("Row")
TITLE_ROW, HEADER_ROW, FIRST_DATA_ROW = 0, 1, 2
NUMBER_FORMATS = {
    Kind.INT: "0",
    Kind.PERCENT: "0.0%",
    Kind.ONLINE: "0.00%",
    Kind.SCORE: "0.0",
    Kind.HOURS: "0.0",
    Kind.DURATION: "[h]:mm:ss",
}
NUMBER_WIDTH = {Kind.INT: 8, Kind.DURATION: 11, Kind.ONLINE: 9}
MAX_WIDTH = 40
FONT = "Microsoft YaHei"


def render_xlsx(report: EvaluationReport) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer, {"in_memory": True, "strings_to_urls": False, "strings_to_formulas": False}
    )
    workbook.set_properties(
        {"title": _title(report, "评估报告"), "author": "滨海新区大应急平台", "comments": report.period.label}
    )
    styles = _Styles(workbook)
    _sheet(workbook, styles, report, "企业", ENTERPRISE_COLUMNS, report.enterprises, freeze_columns=2)
    for name, rollups in (("行业", report.sectors), ("区域", report.areas), ("部门", report.departments)):
        _sheet(workbook, styles, report, name, ROLLUP_COLUMNS, rollups, freeze_columns=1, total=report.overall)
    note = "" if report.kind is PeriodKind.YEAR else "（非年度评估，仅供参考）"
    _sheet(
        workbook, styles, report, "重点检查名单", PRIORITY_COLUMNS, report.priority, freeze_columns=2, note=note
    )
    workbook.close()
    return buffer.getvalue()


def _title(report: EvaluationReport, what: str) -> str:
    scope = "" if report.scope.kind == "all" else f"{report.scope.name} "
    return f"{scope}{period_zh(report.period)}安全风险监测预警{what}"


class _Styles:
    def __init__(self, workbook: Workbook) -> None:
        base = {"font_name": FONT, "font_size": 10, "valign": "vcenter"}
        self.title = workbook.add_format({**base, "bold": True, "font_size": 14})
        self.header = workbook.add_format(
            {**base, "bold": True, "bg_color": "#E8EDF3", "border": 1, "text_wrap": True, "align": "center"}
        )
        self.cells = {
            kind: workbook.add_format({**base, "num_format": fmt}) for kind, fmt in NUMBER_FORMATS.items()
        }
        self.cells[Kind.TEXT] = workbook.add_format(base)
        self.cells[Kind.BAND] = workbook.add_format({**base, "align": "center"})
        self.totals = {
            kind: workbook.add_format({**base, "num_format": fmt, "bold": True, "top": 1})
            for kind, fmt in {**NUMBER_FORMATS, Kind.TEXT: "General", Kind.BAND: "General"}.items()
        }
        self.band = {
            band: workbook.add_format({"bg_color": BAND_FILL[band], "font_color": BAND_TEXT[band]})
            for band in BAND_ORDER
        }
        self.online_good = workbook.add_format({"font_color": GOOD_TEXT})
        self.online_short = workbook.add_format({"bg_color": SHORT_FILL, "font_color": SHORT_TEXT})


def _value(kind: Kind, value: Any) -> Any:
    if kind is Kind.DURATION and value is not None:
        return value / 86400  # Excel's durations are days
    if kind is Kind.BAND and value is not None:
        return band_zh(value)
    return value


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _sheet(
    workbook: Workbook,
    styles: _Styles,
    report: EvaluationReport,
    name: str,
    columns: Sequence[Column[Row]],
    rows: Sequence[Row],
    freeze_columns: int,
    total: Row | None = None,
    note: str = "",
) -> None:
    sheet = workbook.add_worksheet(name)
    generated = local_datetime(report.generated_at)
    sheet.write(TITLE_ROW, 0, f"{_title(report, '评估报告')} · {name}{note}（生成于 {generated}）", styles.title)
    sheet.set_row(HEADER_ROW, 30)
    widths = [_display_width(column.header) // 2 + 2 for column in columns]
    for index, column in enumerate(columns):
        sheet.write(HEADER_ROW, index, column.header, styles.header)
    for offset, row in enumerate(rows):
        for index, column in enumerate(columns):
            value = _value(column.kind, column.value(report, row))
            _write(sheet, FIRST_DATA_ROW + offset, index, value, styles.cells[column.kind])
            if column.kind in (Kind.TEXT, Kind.BAND) and value is not None:
                widths[index] = max(widths[index], _display_width(str(value)) + 2)
    last_row = FIRST_DATA_ROW + len(rows) - 1
    if total is not None:
        for index, column in enumerate(columns):
            value = _value(column.kind, column.value(report, total))
            _write(sheet, last_row + 2, index, value, styles.totals[column.kind])
    for index, column in enumerate(columns):
        width = max(widths[index], NUMBER_WIDTH.get(column.kind, 8))
        sheet.set_column(index, index, min(width, MAX_WIDTH))
    sheet.freeze_panes(FIRST_DATA_ROW, freeze_columns)
    sheet.autofilter(HEADER_ROW, 0, max(last_row, HEADER_ROW), len(columns) - 1)
    if rows:
        _conditional(sheet, styles, report, columns, last_row)


def _write(sheet: Worksheet, row: int, column: int, value: Any, style: Format) -> None:
    if value is None:
        sheet.write_blank(row, column, None, style)
    else:
        sheet.write(row, column, value, style)


def _conditional(
    sheet: Worksheet, styles: _Styles, report: EvaluationReport, columns: Sequence[Column[Row]], last_row: int
) -> None:
    kinds = [column.kind for column in columns]
    edges = report.bands
    lower = {"blue": edges.blue, "yellow": edges.yellow, "orange": edges.orange}
    upper = {"yellow": edges.blue, "orange": edges.yellow, "red": edges.orange}
    for index, column in enumerate(columns):
        cells = (FIRST_DATA_ROW, index, last_row, index)
        if column.kind is Kind.SCORE and Kind.BAND in kinds and column.header == "得分":
            for band in BAND_ORDER:
                _score_band(sheet, cells, lower.get(band), upper.get(band), styles.band[band])
        elif column.kind is Kind.BAND:
            for band in BAND_ORDER:
                criteria = {"type": "cell", "criteria": "==", "value": f'"{band_zh(band)}"'}
                sheet.conditional_format(*cells, {**criteria, "format": styles.band[band]})
        elif column.kind is Kind.ONLINE:
            first = xl_rowcol_to_cell(FIRST_DATA_ROW, index)
            target = report.online_target
            sheet.conditional_format(
                *cells,
                {
                    "type": "formula",
                    "criteria": f"=AND(ISNUMBER({first}),{first}<{target})",
                    "format": styles.online_short,
                },
            )
            sheet.conditional_format(
                *cells,
                {
                    "type": "formula",
                    "criteria": f"=AND(ISNUMBER({first}),{first}>={target})",
                    "format": styles.online_good,
                },
            )
        elif column.band is not None:
            sheet.conditional_format(
                *cells, {"type": "cell", "criteria": ">", "value": 0, "format": styles.band[column.band]}
            )


def _score_band(
    sheet: Worksheet, cells: tuple[int, int, int, int], low: float | None, high: float | None, style: Format
) -> None:
    """A band is [low, high) on the score, like score.band: the edge belongs to the better band."""
    first = xl_rowcol_to_cell(cells[0], cells[1])
    tests = [f"ISNUMBER({first})"]
    if low is not None:
        tests.append(f"{first}>={low}")
    if high is not None:
        tests.append(f"{first}<{high}")
    sheet.conditional_format(*cells, {"type": "formula", "criteria": f"=AND({','.join(tests)})", "format": style})
