"""The HTML evaluation report (chalicelib/reports/html.py): self-contained (nothing fetched), Chinese, scoped
copies render; and in headless Chromium (Debian's `chromium`; .ci/run installs it) the four charts draw: the
screenshot shows each chart's colours in its own area."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from PIL import Image

from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.report import EvaluationReport
from chalicelib.reports.columns import BAND_FILL
from chalicelib.reports.html import ONLINE_OK, render_html
from local.report_preview import synthetic_report

CHART_IDS = ("trend", "online", "distribution", "worst")
SECTION_PX = 600  # each chart gets a fixed-height band in the screenshot
WIDTH_PX = 1100
# keep only the charts, one under the other, each in a band of SECTION_PX
CHARTS_ONLY_CSS = f"""<style>
body, main {{ margin: 0 !important; padding: 0 !important; max-width: none !important; }}
header, .summary, .tables, .notes {{ display: none !important; }}
.pair {{ display: block !important; }}
section.chart {{ height: {SECTION_PX}px; overflow: hidden; margin: 0 !important; }}
section.chart h2 {{ margin: 0 !important; }}
section.chart svg {{ width: 900px !important; }}
</style>"""


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    return synthetic_report(periods.month(2025, 3), enterprises=36)


@pytest.fixture(scope="module")
def page(report: EvaluationReport) -> str:
    return render_html(report).decode("utf-8")


def test_the_page_is_chinese_and_fetches_nothing(page: str) -> None:
    assert (
        page.startswith("<!DOCTYPE html>") and '<html lang="zh-CN">' in page and '<meta charset="utf-8">' in page
    )
    assert "滨海新区2025年3月安全风险监测预警评估报告" in page
    fetching = re.findall(
        r"""(?:src|href)\s*=\s*["'](?!#)[^"']*|@import|url\(\s*["']?(?:https?:)?//|<link""", page
    )
    assert fetching == []
    assert "kozea.github.io" not in page and "<script src" not in page
    assert page.count("<svg") == 3  # trend, 在线率, distribution; the worst 20 are a table with bars
    for title in (
        "每日预警趋势",
        "各行业在线率",
        "安全状态得分分布",
        "得分最低的 20 家企业",
        "企业排名",
        "重点检查名单",
    ):
        assert title in page


def test_scoped_pages_show_only_their_scope(report: EvaluationReport) -> None:
    own_row = report.enterprises[-1]
    other = report.enterprises[0]
    own = render_html(report.for_enterprise(own_row.enterprise_id)).decode("utf-8")
    assert own_row.name in own and other.name not in own
    assert "安全状态得分" in own and "行业汇总" not in own
    sector = report.enterprises[0].sector
    scoped = render_html(report.for_sector(sector)).decode("utf-8")
    outsiders = [row.name for row in report.enterprises if row.sector is not sector]
    assert not [name for name in outsiders if f"<td>{name}</td>" in scoped]
    assert f"{sector.zh}2025年3月" in scoped


def rgb(colour: str) -> tuple[int, int, int]:
    value = colour.removeprefix("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def pixels_of(image: Image.Image, colour: str, tolerance: int = 6) -> int:
    target = rgb(colour)
    colours: Iterable[tuple[int, tuple[int, int, int]]] = (
        image.getcolors(maxcolors=image.width * image.height) or []
    )
    return sum(
        count
        for count, pixel in colours
        if all(abs(a - b) <= tolerance for a, b in zip(pixel, target, strict=True))
    )


def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    return found


def screenshot(html: str, directory: Path, height: int) -> Image.Image:
    source, shot = directory / "page.html", directory / "page.png"
    source.write_text(html, encoding="utf-8")
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            f"--user-data-dir={directory / 'profile'}",
            f"--window-size={WIDTH_PX},{height}",
            f"--screenshot={shot}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")


def test_the_charts_draw_in_headless_chromium(report: EvaluationReport, page: str, tmp_path: Path) -> None:
    charts_only = page.replace("</head>", f"{CHARTS_ONLY_CSS}</head>")
    image = screenshot(charts_only, tmp_path, SECTION_PX * len(CHART_IDS))
    area = {
        chart: image.crop((0, index * SECTION_PX, WIDTH_PX, (index + 1) * SECTION_PX))
        for index, chart in enumerate(CHART_IDS)
    }
    trend = {level: pixels_of(area["trend"], BAND_FILL[level]) for level in BAND_FILL}
    assert all(count > 1000 for count in trend.values()), trend  # the four levels' stacked bars
    assert pixels_of(area["online"], ONLINE_OK) > 5000
    drawn_bands = {band for band, count in report.charts.score_distribution.by_band.items() if count}
    distribution = {band: pixels_of(area["distribution"], BAND_FILL[band]) for band in drawn_bands}
    assert all(count > 500 for count in distribution.values()), distribution
    worst_bands = {entry.band for entry in report.charts.worst}
    worst = {band: pixels_of(area["worst"], BAND_FILL[band]) for band in worst_bands}
    assert all(count > 500 for count in worst.values()), worst  # the bars and chips of the worst 20


def test_a_custom_window_shows_its_times() -> None:
    from chalicelib.domain.evaluation.periods import PeriodKind
    from chalicelib.domain.evaluation.policy import EvaluationPolicy
    from chalicelib.domain.evaluation.report import build_report
    from tests.unit.test_evaluation_report import PROFILES, WARNINGS

    start = periods.month(2025, 3).start + 8 * 3600 + 2412  # 2025-03-01 08:40:12 local
    window = periods.custom(start, start + 198)
    report = build_report(window, PeriodKind.CUSTOM, PROFILES, WARNINGS, [], {}, EvaluationPolicy(), 1.8e9)
    page = render_html(report).decode("utf-8")
    assert "（2025年3月1日 08:40:12 至 08:43:30）安全风险监测预警评估报告" in page
    assert "评估周期：2025-03-01 08:40:12 至 2025-03-01 08:43:30" in page
