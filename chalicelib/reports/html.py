"""The evaluation report as one self-contained Chinese HTML page: no script, no font, no stylesheet fetched from
anywhere (government networks have no internet; the only script is pygal's inline chart config, which
fetches nothing), printable on A4 landscape.

Charts are inline SVG drawn on the server by pygal (pure Python, no dependency but importlib-metadata; its tooltip
script is switched off: `js=[]`): the trend of warnings raised per day by level (stacked bars), 在线率 by sector
(bars from a floor near the lowest; green at or above the target, red below), the score distribution (10-point
bins stacked by band). The worst 20 are a ranked table with bars. Then the tables: enterprises ranked, sectors,
areas, departments, the priority list.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from html import escape
from typing import Any

import pygal
from pygal.style import Style

from chalicelib.domain.evaluation.periods import PeriodKind, period_zh
from chalicelib.domain.evaluation.report import (
    BAND_ORDER,
    SCORE_BINS,
    EvaluationReport,
    Figures,
    Rollup,
    band_zh,
    reason_zh,
)
from chalicelib.domain.texts import local_datetime, short_enterprise
from chalicelib.reports.columns import (
    BAND_FILL,
    BAND_TEXT,
    GOOD_TEXT,
    SHORT_TEXT,
    areas_zh,
    duration_zh,
)

FONTS = (
    '"Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", sans-serif'
)
STACK_ORDER = tuple(reversed(BAND_ORDER))  # blue at the bottom, red on top
ONLINE_OK = "#2E7D5B"
CHART_SIZE = {"trend": (1000, 340), "online": (490, 340), "distribution": (490, 340)}


def render_html(report: EvaluationReport) -> bytes:
    title = _title(report)
    body = "\n".join(
        (
            _header(report, title),
            _summary(report),
            _charts(report),
            _tables(report),
            _notes(report),
        )
    )
    page = f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""
    return page.encode("utf-8")


def _title(report: EvaluationReport) -> str:
    scope = "滨海新区" if report.scope.kind == "all" else report.scope.name
    return f"{scope}{period_zh(report.period)}安全风险监测预警评估报告"


# --- formatting -------------------------------------------------------------------------------------------------


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _band_chip(band: str) -> str:
    return (
        f'<span class="chip" style="background:{BAND_FILL[band]};color:{BAND_TEXT[band]}">{band_zh(band)}</span>'
    )


def _online(value: float | None, target: float) -> str:
    if value is None:
        return "—"
    colour = GOOD_TEXT if value >= target else SHORT_TEXT
    return f'<span style="color:{colour}">{_pct(value, 2)}</span>'


def _raised(figures: Figures) -> str:
    parts = "".join(
        f'<span class="dot" style="background:{BAND_FILL[level]}"></span>{figures.raised[level]}'
        for level in BAND_ORDER
    )
    return f'<span class="raised">{parts}</span>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Collection[int]) -> str:
    """A table; the columns at the `numeric` indexes are right-aligned."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "\n".join(
        "<tr>"
        + "".join(f'<td class="{"num" if i in numeric else ""}">{cell}</td>' for i, cell in enumerate(row))
        + "</tr>"
        for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(headers)}" class="empty">本范围无数据</td></tr>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


# --- parts of the page ------------------------------------------------------------------------------------------


def _header(report: EvaluationReport, title: str) -> str:
    period = report.period
    first, last = local_datetime(period.start)[:10], local_datetime(period.end - 1)[:10]
    if period.kind is PeriodKind.CUSTOM:  # a window of any length: its times, the end exclusive
        first, last = local_datetime(period.start), local_datetime(period.end)
    generated, count = local_datetime(report.generated_at), report.overall.enterprises
    return f"""<header>
<div class="org">天津市滨海新区应急管理局 · 大应急安全风险监测预警平台</div>
<h1>{escape(title)}</h1>
<div class="meta">评估周期：{first} 至 {last}　·　参评企业 {count} 家　·　生成时间：{generated}</div>
</header>"""


def _summary(report: EvaluationReport) -> str:
    overall = report.overall.figures
    shown = report.enterprises[0].figures if report.scope.kind == "enterprise" and report.enterprises else overall
    tiles = [
        ("在线率", _pct(shown.online, 2), f"目标 ≥ {_pct(report.online_target, 1)}"),
        (
            "预警总数",
            str(shown.raised_total),
            " ".join(f"{band_zh(level)[0]}{shown.raised[level]}" for level in BAND_ORDER),
        ),
        ("处置率", _pct(shown.disposal), "已消警 / 应消警"),
        ("及时率", _pct(shown.timeliness), f"超时环节 {shown.missed_deadlines} 个"),
        ("误报率", _pct(shown.false_alarm), "误报消警 / 消警"),
        ("平均签收时长", duration_zh(shown.acknowledge_mean_s), f"平均消警 {duration_zh(shown.clear_mean_s)}"),
    ]
    if report.scope.kind == "enterprise" and report.enterprises:
        row = report.enterprises[0]
        tiles.insert(0, ("安全状态得分", f"{row.score:.1f}", f"{band_zh(row.band)}等级 · 全区第 {row.rank} 名"))
    bands = " ".join(f"{_band_chip(band)} {report.overall.bands[band]} 家" for band in BAND_ORDER)
    tiles_html = "".join(
        f'<div class="tile"><div class="label">{escape(label)}</div><div class="value">{value}</div>'
        f'<div class="sub">{escape(sub)}</div></div>'
        for label, value, sub in tiles
    )
    scope_note = "" if report.scope.kind == "all" else "（本范围）"
    return f"""<section class="summary">
<h2>总体情况{scope_note}</h2>
<div class="tiles">{tiles_html}</div>
<p class="bands">全区企业等级分布：{bands}</p>
</section>"""


def _style(colours: Sequence[str]) -> Style:
    return Style(
        background="#FFFFFF",
        plot_background="#FFFFFF",
        foreground="#333333",
        foreground_strong="#222222",
        foreground_subtle="#DDDDDD",
        font_family=FONTS,
        colors=tuple(colours),
        opacity="1",
        opacity_hover="0.85",
        title_font_size=15,
        label_font_size=11,
        major_label_font_size=11,
        legend_font_size=12,
        value_font_size=10,
        tooltip_font_size=12,
    )


def _config(name: str, colours: Sequence[str], **extra: Any) -> dict[str, Any]:
    width, height = CHART_SIZE[name]
    return {
        "style": _style(colours),
        "width": width,
        "height": height,
        "js": [],  # pygal's default tooltip script is fetched from the internet
        "disable_xml_declaration": True,
        "no_data_text": "暂无数据",
        "legend_at_bottom": True,
        "legend_box_size": 12,
        "margin": 12,
        **extra,
    }


def _count_ticks(highest: int) -> list[int]:
    """Whole-number ticks for a count axis (pygal would label 0.1, 0.2, … for small counts)."""
    step = next(step for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if highest / step <= 10)
    return list(range(0, max(highest, 1) + step, step))


def _svg(chart: Any) -> str:
    return str(chart.render(is_unicode=True))


def _trend_chart(report: EvaluationReport) -> str:
    """A month labels every day; a quarter every Monday; a year the first of each month."""
    trend = report.charts.trend
    many = len(trend.days) > 40
    labels = [f"{day.month}/{day.day}" if many else str(day.day) for day in trend.days]
    if many:  # the others blank: pygal's major/minor labels would overlap the legend
        labels = [
            label if (day.day == 1 if len(trend.days) > 100 else day.weekday() == 0) else ""
            for label, day in zip(labels, trend.days, strict=True)
        ]
    chart = pygal.StackedBar(
        **_config(
            "trend",
            [BAND_FILL[level] for level in STACK_ORDER],
            truncate_label=-1,
            y_title="预警数（条）",
            y_labels=_count_ticks(max(map(sum, zip(*trend.by_level.values(), strict=True)), default=0)),
            print_values=False,
            spacing=1 if many else 6,
            show_legend=False,  # an HTML legend above: pygal's would overlap sparse day labels
        )
    )
    chart.x_labels = labels
    for level in STACK_ORDER:
        chart.add(f"{band_zh(level)}预警", list(trend.by_level[level]))
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{BAND_FILL[level]}"></span>{band_zh(level)}预警'
        f"（{sum(trend.by_level[level])}）</span>"
        for level in BAND_ORDER
    )
    return f'<div class="legend">{legend}</div>{_svg(chart)}'


def _online_bars(report: EvaluationReport) -> list[tuple[str, float]]:
    """(label, 在线率) per sector; an enterprise's page compares its own with the district's."""
    if report.scope.kind == "enterprise" and report.enterprises:
        own = report.enterprises[0]
        pairs = [(short_enterprise(own.name), own.figures.online), ("全区", report.overall.figures.online)]
    else:
        pairs = [(entry.name, entry.online) for entry in report.charts.online_by_sector]
    return [(label, value) for label, value in pairs if value is not None]


def _online_chart(report: EvaluationReport) -> str:
    entries = _online_bars(report)
    if not entries:
        return '<p class="empty">本范围无在线率数据</p>'
    low = min(value for _, value in entries) * 100
    floor = max(0.0, min(95.0, math.floor(low - 0.5)))
    chart = pygal.Bar(
        **_config(
            "online",
            [ONLINE_OK],
            range=(floor, 100),
            zero=floor,
            show_legend=False,
            print_values=True,
            print_values_position="top",
            value_formatter=lambda value: f"{value:.2f}%",
            y_title=f"在线率（%），目标 ≥ {report.online_target * 100:.1f}%",
            truncate_label=-1,
            spacing=14,
        )
    )
    chart.x_labels = [label for label, _ in entries]
    target = report.online_target
    chart.add(
        "在线率",
        [
            {"value": value * 100, "color": ONLINE_OK if value >= target else BAND_FILL["red"]}
            for _, value in entries
        ],
    )
    return _svg(chart)


def _distribution_chart(report: EvaluationReport) -> str:
    distribution = report.charts.score_distribution
    chart = pygal.StackedBar(
        **_config(
            "distribution",
            [BAND_FILL[band] for band in STACK_ORDER],
            y_title="企业数（家）",
            y_labels=_count_ticks(max(distribution.bins, default=0)),
            x_title="得分区间",
            truncate_label=-1,
            spacing=4,
        )
    )
    chart.x_labels = [f"{10 * i}–{10 * i + 10}" for i in range(SCORE_BINS)]
    for band in STACK_ORDER:
        chart.add(f"{band_zh(band)}（{distribution.by_band[band]}家）", list(distribution.bins_by_band[band]))
    return _svg(chart)


def _bar_style(score: float, band: str) -> str:
    return f"width:{max(score, 0.5):.1f}%;background:{BAND_FILL[band]}"


def _worst_table(report: EvaluationReport) -> str:
    worst = report.charts.worst
    if not worst:
        return '<p class="empty">本范围无企业</p>'
    rows = "\n".join(
        f'<tr><td class="num">{index}</td><td>{escape(entry.name)}</td><td>{escape(entry.sector_name)}</td>'
        f'<td class="barcell"><div class="bar" style="{_bar_style(entry.score, entry.band)}"></div></td>'
        f'<td class="num">{entry.score:.1f}</td><td>{_band_chip(entry.band)}</td></tr>'
        for index, entry in enumerate(worst, start=1)
    )
    return (
        '<table class="worst"><thead><tr><th>序</th><th>企业名称</th><th>行业</th>'
        '<th class="barhead">得分（0–100）</th><th>得分</th><th>等级</th></tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table>"
    )


def _charts(report: EvaluationReport) -> str:
    online_title = "在线率（本企业与全区）" if report.scope.kind == "enterprise" else "各行业在线率"
    worst_title = (
        "得分最低的企业" if report.scope.kind == "enterprise" else f"得分最低的 {len(report.charts.worst)} 家企业"
    )
    return f"""<section class="chart" id="trend"><h2>一、每日预警趋势（按等级）</h2>
{_trend_chart(report)}</section>
<div class="pair">
<section class="chart" id="online"><h2>二、{online_title}</h2>{_online_chart(report)}</section>
<section class="chart" id="distribution"><h2>三、安全状态得分分布</h2>{_distribution_chart(report)}</section>
</div>
<section class="chart" id="worst"><h2>四、{worst_title}</h2>{_worst_table(report)}</section>"""


def _rollup_rows(report: EvaluationReport, rollups: Sequence[Rollup]) -> list[list[str]]:
    return [
        [
            escape(r.name),
            str(r.enterprises),
            " ".join(
                f'<span class="count" style="border-color:{BAND_FILL[b]}">{r.bands[b]}</span>' for b in BAND_ORDER
            ),
            _online(r.figures.online, report.online_target),
            f"{r.figures.undeclared_outage_h:.1f}",
            _raised(r.figures),
            _pct(r.figures.disposal),
            _pct(r.figures.timeliness),
            str(r.figures.missed_deadlines),
            _pct(r.figures.false_alarm),
            duration_zh(r.figures.acknowledge_mean_s),
            duration_zh(r.figures.clear_mean_s),
        ]
        for r in rollups
    ]


ROLLUP_HEADERS = (
    "名称",
    "企业数",
    "等级分布（红/橙/黄/蓝）",
    "在线率",
    "未报备离线(小时)",
    "预警（红/橙/黄/蓝）",
    "处置率",
    "及时率",
    "超时环节",
    "误报率",
    "平均签收",
    "平均消警",
)


ROLLUP_NUMERIC = {1, 3, 4, 6, 7, 8, 9, 10, 11}


def _tables(report: EvaluationReport) -> str:
    enterprises = [
        [
            str(row.rank),
            escape(row.name),
            escape(row.sector.zh),
            escape(areas_zh(report, row.area_codes)),
            f"{row.score:.1f}",
            _band_chip(row.band),
            f"{row.sector_rank.position}/{row.sector_rank.of}",
            _online(row.figures.online, report.online_target),
            _raised(row.figures),
            _pct(row.figures.disposal),
            _pct(row.figures.timeliness),
            _pct(row.figures.false_alarm),
            duration_zh(row.figures.acknowledge_mean_s),
            duration_zh(row.figures.clear_mean_s),
            str(row.overdue_rectifications),
        ]
        for row in report.enterprises
    ]
    parts = [
        '<section class="tables">',
        "<h2>五、企业排名</h2>",
        _table(
            (
                "名次",
                "企业名称",
                "行业",
                "区域",
                "得分",
                "等级",
                "行业排名",
                "在线率",
                "预警（红/橙/黄/蓝）",
                "处置率",
                "及时率",
                "误报率",
                "平均签收",
                "平均消警",
                "逾期整改",
            ),
            enterprises,
            numeric={0, 4, 6, 7, 9, 10, 11, 12, 13, 14},
        ),
    ]
    rollups = (
        ("六、行业汇总", report.sectors),
        ("七、区域汇总", report.areas),
        ("八、监管部门汇总", report.departments),
    )
    for title, group in rollups:
        if report.scope.kind != "enterprise":
            parts += [
                f"<h2>{title}</h2>",
                _table(ROLLUP_HEADERS, _rollup_rows(report, [*group, report.overall]), ROLLUP_NUMERIC),
            ]
    note = "" if report.kind is PeriodKind.YEAR else "（非年度评估，仅供参考；下一年度重点检查名单以年度评估为准）"
    priority = [
        [
            str(p.position),
            escape(p.name),
            escape(p.sector.zh),
            escape(areas_zh(report, p.area_codes)),
            f"{p.score:.1f}",
            _band_chip(p.band),
            f"{p.sector_rank.position}/{p.sector_rank.of}",
            escape("、".join(reason_zh(reason) for reason in p.reasons)),
        ]
        for p in report.priority
    ]
    parts += [
        f"<h2>九、重点检查名单{note}</h2>",
        _table(("序号", "企业名称", "行业", "区域", "得分", "等级", "行业排名", "列入原因"), priority, {0, 4, 6}),
        "</section>",
    ]
    return "\n".join(parts)


def _notes(report: EvaluationReport) -> str:
    edges = report.bands
    notes = (
        f"在线率 = 在线时长 ÷（应在线时长 − 已报备离线时长）；全国目标 ≥ {report.online_target * 100:.1f}%。",
        "处置率 = 已消警预警 ÷ 本期应消警预警；及时率 = 按时完成的签收、核实反馈、消警环节 ÷ 本期到期环节；"
        "误报率 = 以误报消警 ÷ 本期消警。",
        "安全状态得分 = 100 − 重大危险源扣分 − 预警扣分（红10、橙5、黄2、蓝0.5，上限40）− 超时环节每个2分 − "
        "数据质量扣分。",
        f"等级：≥ {edges.blue:g} 蓝色，{edges.yellow:g}–{edges.blue:g} 黄色，"
        f"{edges.orange:g}–{edges.yellow:g} 橙色，< {edges.orange:g} 红色。"
        "排名：得分高者在前，同分比较超时环节、预警扣分。",
        "比率为各企业分子、分母合计后相除，不取平均；“—”表示无数据。",
    )
    items = "\n".join(f"<li>{escape(note)}</li>" for note in notes)
    return f"""<section class="notes">
<h2>指标说明</h2>
<ul>
{items}
</ul>
</section>"""


CSS = f"""
@page {{ size: A4 landscape; margin: 12mm; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; background: #F3F5F8; color: #1F2933; font-family: {FONTS}; font-size: 13px; }}
main {{ max-width: 1080px; margin: 0 auto; background: #FFFFFF; padding: 28px 36px 36px; }}
header {{ border-bottom: 3px solid #B3262E; padding-bottom: 12px; margin-bottom: 18px; }}
header .org {{ color: #B3262E; font-weight: 600; letter-spacing: 1px; }}
h1 {{ font-size: 24px; margin: 6px 0; }}
h2 {{ font-size: 16px; margin: 22px 0 10px; padding-left: 8px; border-left: 4px solid #1F6FD1; }}
.meta {{ color: #52606D; }}
.tiles {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr)); gap: 10px; }}
.tile {{ border: 1px solid #E4E7EB; border-radius: 6px; padding: 10px 12px; background: #FAFBFC; }}
.tile .label {{ color: #52606D; font-size: 12px; }}
.tile .value {{ font-size: 22px; font-weight: 700; margin: 4px 0; }}
.tile .sub {{ color: #7B8794; font-size: 11px; }}
.bands {{ margin: 10px 0 0; }}
.chip {{ display: inline-block; min-width: 36px; padding: 1px 6px; border-radius: 3px; text-align: center;
  font-size: 12px; }}
.pair {{ display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }}
.chart svg {{ width: 100%; height: auto; display: block; }}
.chart, .pair {{ break-inside: avoid; }}
table {{ width: 100%; border-collapse: collapse; font-size: 12px; margin-bottom: 8px; }}
thead {{ display: table-header-group; }}
th {{ background: #E8EDF3; font-weight: 600; padding: 5px 6px; border: 1px solid #D3DAE3; white-space: nowrap; }}
td {{ padding: 4px 6px; border: 1px solid #E4E7EB; }}
tr {{ break-inside: avoid; }}
tbody tr:nth-child(even) {{ background: #FAFBFC; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }}
td.empty, p.empty {{ color: #7B8794; text-align: center; padding: 16px; }}
.raised {{ white-space: nowrap; }}
.dot {{ display: inline-block; width: 8px; height: 8px; border-radius: 50%; margin: 0 2px 0 6px; }}
.count {{ display: inline-block; min-width: 22px; border-bottom: 3px solid; text-align: center;
  margin-right: 2px; }}
table.worst td.barcell {{ width: 45%; }}
.bar {{ height: 14px; border-radius: 2px; }}
.legend {{ margin: 0 0 4px 48px; font-size: 12px; }}
.key {{ margin-right: 18px; white-space: nowrap; }}
.swatch {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }}
.notes ul {{ color: #52606D; padding-left: 20px; line-height: 1.7; }}
@media print {{ body {{ background: #FFFFFF; }} main {{ padding: 0; max-width: none; }} }}
"""
