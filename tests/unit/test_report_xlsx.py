"""The evaluation workbook (chalicelib/reports/xlsx.py) read back with openpyxl: sheets, headers, values, number
formats, frozen panes, filters, widths and the conditional colours. Values from the hand-computed fixture of
test_evaluation_report (E2 100 blue, E3 92 blue, E1 73 orange)."""

from __future__ import annotations

import io
from datetime import time, timedelta
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.periods import PeriodKind, period_zh
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.report import EvaluationReport, build_report
from chalicelib.reports.columns import BAND_FILL, ENTERPRISE_COLUMNS, ROLLUP_COLUMNS
from chalicelib.reports.xlsx import render_xlsx
from local.report_preview import synthetic_report
from tests.unit.test_evaluation_report import AREAS, DAYS, MARCH, PROFILES, WARNINGS

SHEETS = ["企业", "行业", "区域", "部门", "重点检查名单"]


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return build_report(
        MARCH, PeriodKind.MONTH, PROFILES, WARNINGS, DAYS, {}, EvaluationPolicy(), 1.7e9, area_names=AREAS
    )


@pytest.fixture(scope="module")
def book(report: EvaluationReport) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))


def header(sheet: Worksheet) -> list[Any]:
    return [cell.value for cell in sheet[2]]


def row_of(sheet: Worksheet, row: int) -> dict[str, Any]:
    return {title: cell.value for title, cell in zip(header(sheet), sheet[row], strict=False)}


def formats_of(sheet: Worksheet, row: int) -> dict[str, str]:
    return {title: cell.number_format for title, cell in zip(header(sheet), sheet[row], strict=False)}


def test_one_sheet_per_view_with_a_title_and_chinese_headers(book: openpyxl.Workbook) -> None:
    assert book.sheetnames == SHEETS
    enterprises = book["企业"]
    assert str(enterprises["A1"].value).startswith("2025年3月安全风险监测预警评估报告 · 企业")
    assert header(enterprises) == [column.header for column in ENTERPRISE_COLUMNS]
    assert header(enterprises)[:10] == [
        "名次",
        "企业名称",
        "企业编号",
        "行业",
        "区域",
        "监管部门",
        "得分",
        "等级",
        "行业排名",
        "区域排名",
    ]
    assert header(book["行业"]) == [column.header for column in ROLLUP_COLUMNS]
    assert header(book["重点检查名单"]) == [
        "序号",
        "企业名称",
        "企业编号",
        "行业",
        "区域",
        "得分",
        "等级",
        "行业排名",
        "列入原因",
    ]
    assert "非年度评估" in str(book["重点检查名单"]["A1"].value)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            3,
            {
                "名次": 1,
                "企业名称": "化工二厂",
                "得分": 100,
                "等级": "蓝色",
                "行业排名": "1/2",
                "区域排名": "新港街 1/2",
            },
        ),
        (
            4,
            {
                "企业编号": "E3",
                "行业": "消防",
                "监管部门": "区消防救援支队",
                "在线率": 0.99,
                "超时环节": 1,
                "及时率": 0,
                "橙色预警": 1,
            },
        ),
        (
            5,
            {
                "企业名称": "化工一厂",
                "区域": "开发区、新港街",
                "区域排名": "新港街 2/2；开发区 1/1",
                "得分": 73,
                "等级": "橙色",
                "红色预警": 1,
                "黄色预警": 1,
                "预警总数": 2,
                "重大危险源扣分": 15,
                "预警扣分": 12,
                "处置率": None,  # no data: an empty cell, never 0 %
                "平均签收时长": None,
                "车辆上线率": None,
            },
        ),
    ],
)
def test_enterprise_rows_are_ranked_with_their_values(
    book: openpyxl.Workbook, row: int, expected: dict[str, Any]
) -> None:
    values = row_of(book["企业"], row)
    assert {key: values[key] for key in expected} == pytest.approx(expected)


def test_number_formats_by_kind(book: openpyxl.Workbook) -> None:
    formats = formats_of(book["企业"], 4)
    assert (formats["在线率"], formats["及时率"], formats["得分"], formats["超时环节"]) == (
        "0.00%",
        "0.0%",
        "0.0",
        "0",
    )
    assert (formats["未报备离线(小时)"], formats["平均签收时长"], formats["处置率"]) == (
        "0.0",
        "[h]:mm:ss",
        "0.0%",
    )


def seconds(value: time | timedelta) -> float:
    """openpyxl reads a [h]:mm:ss cell (a fraction of a day) back as a time or, past a day, a timedelta."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6


def test_durations_are_excel_days_formatted_as_hours() -> None:
    report = synthetic_report(periods.month(2025, 3), enterprises=12)
    sheet = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))["企业"]
    timed = next(r for r in report.enterprises if r.figures.acknowledge_mean_s is not None)
    values, formats = row_of(sheet, 2 + timed.rank), formats_of(sheet, 2 + timed.rank)
    assert values["企业编号"] == timed.enterprise_id
    assert seconds(values["平均签收时长"]) == pytest.approx(timed.figures.acknowledge_mean_s, abs=0.01)
    assert formats["平均签收时长"] == "[h]:mm:ss"


def test_rollup_sheets_list_each_key_then_the_district_total(book: openpyxl.Workbook) -> None:
    sectors = book["行业"]
    assert [row_of(sectors, r)["名称"] for r in (3, 4)] == ["消防", "危险化学品"]
    hazchem = row_of(sectors, 4)
    assert (hazchem["企业数"], hazchem["蓝色等级企业"], hazchem["橙色等级企业"], hazchem["在线率"]) == (2, 1, 1, 1)
    assert row_of(sectors, 5)["名称"] is None
    total = row_of(sectors, 6)
    assert (total["名称"], total["代码"], total["企业数"], total["预警总数"]) == ("全区", "all", 3, 3)
    assert sectors.cell(6, 1).font.bold
    assert [row_of(book["区域"], r)["名称"] for r in (3, 4, 5)] == ["新港街", "泰达街", "开发区"]
    assert [row_of(book["部门"], r)["名称"] for r in (3, 4)] == ["区应急局", "区消防救援支队"]


def test_the_priority_sheet_lists_the_worst_first_with_reasons(book: openpyxl.Workbook) -> None:
    sheet = book["重点检查名单"]
    listed = [
        (row_of(sheet, r)["序号"], row_of(sheet, r)["企业编号"], row_of(sheet, r)["列入原因"]) for r in (3, 4)
    ]
    assert listed == [(1, "E1", "行业排名末位"), (2, "E3", "行业排名末位")]


@pytest.mark.parametrize(
    ("name", "panes", "filtered"),
    [
        ("企业", "C3", "A2:AI5"),
        ("行业", "B3", "A2:AA4"),
        ("区域", "B3", "A2:AA5"),
        ("部门", "B3", "A2:AA4"),
        ("重点检查名单", "C3", "A2:I4"),
    ],
)
def test_header_rows_are_frozen_and_filtered(
    book: openpyxl.Workbook, name: str, panes: str, filtered: str
) -> None:
    sheet = book[name]
    assert (sheet.freeze_panes, sheet.auto_filter.ref) == (panes, filtered)
    assert sheet["A2"].font.bold and sheet["A2"].fill.fgColor.rgb == "FFE8EDF3"


def test_columns_are_wide_enough_for_the_chinese_text(book: openpyxl.Workbook) -> None:
    widths = book["企业"].column_dimensions
    assert widths["B"].width >= 10  # 企业名称: 4 Chinese characters, two units each
    assert widths["J"].width >= 22  # 区域排名 "新港街 2/2；开发区 1/1"
    assert widths["G"].width >= 8


def rules(sheet: Worksheet) -> dict[str, list[tuple[str, str, str | None]]]:
    """Column range → [(a formula, fill, font colour)] of its conditional formats."""
    found: dict[str, list[tuple[str, str, str | None]]] = {}
    for formatting in sheet.conditional_formatting:
        for rule in formatting.rules:
            fill = rule.dxf.fill.bgColor.rgb if rule.dxf.fill is not None else None
            font = rule.dxf.font.color.rgb if rule.dxf.font is not None and rule.dxf.font.color else None
            found.setdefault(str(formatting.sqref), []).append((rule.formula[0], fill, font))
    return found


def argb(colour: str) -> str:
    return "FF" + colour.removeprefix("#").upper()


def test_score_and_band_cells_take_the_band_colours(book: openpyxl.Workbook) -> None:
    found = rules(book["企业"])
    assert found["G3:G5"] == [
        ("AND(ISNUMBER(G3),G3<60.0)", argb(BAND_FILL["red"]), "FFFFFFFF"),
        ("AND(ISNUMBER(G3),G3>=60.0,G3<75.0)", argb(BAND_FILL["orange"]), "FF1A1A1A"),
        ("AND(ISNUMBER(G3),G3>=75.0,G3<90.0)", argb(BAND_FILL["yellow"]), "FF1A1A1A"),
        ("AND(ISNUMBER(G3),G3>=90.0)", argb(BAND_FILL["blue"]), "FFFFFFFF"),
    ]
    assert [(formula, fill) for formula, fill, _ in found["H3:H5"]] == [
        ('"红色"', argb(BAND_FILL["red"])),
        ('"橙色"', argb(BAND_FILL["orange"])),
        ('"黄色"', argb(BAND_FILL["yellow"])),
        ('"蓝色"', argb(BAND_FILL["blue"])),
    ]
    assert found["K3:K5"] == [
        ("AND(ISNUMBER(K3),K3<0.995)", "FFFBE3E4", "FF9C1C28"),  # 在线率 below the target
        ("AND(ISNUMBER(K3),K3>=0.995)", None, "FF1B7F3B"),  # at or above: green
    ]
    priority = rules(book["重点检查名单"])["F3:F4"]
    assert [fill for _, fill, _ in priority] == [fill for _, fill, _ in found["G3:G5"]]
    assert priority[1][0] == "AND(ISNUMBER(F3),F3>=60.0,F3<75.0)"


def test_rollup_band_counts_are_coloured_when_not_zero(book: openpyxl.Workbook) -> None:
    found = rules(book["行业"])
    assert found["D3:D4"] == [("0", argb(BAND_FILL["red"]), "FFFFFFFF")]
    assert found["G3:G4"] == [("0", argb(BAND_FILL["blue"]), "FFFFFFFF")]


def test_a_scoped_report_and_an_empty_one_render(report: EvaluationReport) -> None:
    own = openpyxl.load_workbook(io.BytesIO(render_xlsx(report.for_enterprise("E1"))))
    assert str(own["企业"]["A1"].value).startswith("化工一厂 2025年3月")
    assert [own["企业"].cell(3, 3).value, own["企业"].cell(4, 3).value] == ["E1", None]
    assert own["行业"].cell(3, 1).value is None and own["行业"].cell(4, 1).value == "全区"
    empty = build_report(MARCH, PeriodKind.MONTH, [], [], [], {}, EvaluationPolicy(), 0.0)
    assert openpyxl.load_workbook(io.BytesIO(render_xlsx(empty))).sheetnames == SHEETS


def test_a_custom_window_is_titled_by_its_local_times() -> None:
    start = periods.month(2025, 3).start + 8 * 3600  # 2025-03-01 08:00 local
    assert period_zh(periods.custom(start + 2412, start + 2610)) == "（2025年3月1日 08:40:12 至 08:43:30）"
    assert period_zh(periods.custom(start, start + 2 * 86400)) == "（2025年3月1日 08:00:00 至 3月3日 08:00:00）"
    window = periods.custom(start, start + 3600)
    report = build_report(window, PeriodKind.CUSTOM, PROFILES, WARNINGS, [], {}, EvaluationPolicy(), window.end)
    title = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))["企业"]["A1"].value
    assert str(title).startswith("（2025年3月1日 08:00:00 至 09:00:00）安全风险监测预警评估报告"), title
