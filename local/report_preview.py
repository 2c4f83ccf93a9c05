"""`python -m local.report_preview [--period 2025-03|2025-Q1|2025] [--enterprises N] [--out DIR]`: an evaluation
report of a synthetic district (seeded, so every run writes the same figures) rendered as the workbook and the HTML
page, written to build/report-preview/ (report.xlsx, report.html, report.json) for people to look at.

`synthetic_report` is also the fixture of the renderers' tests: a few dozen enterprises in every sector and area,
warnings of every level with on-time and missed stages, device-days with declared and undeclared outages, and a
road-transport fleet."""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from chalicelib.domain.due import Stage
from chalicelib.domain.evaluation import periods
from chalicelib.domain.evaluation.facts import DeviceDay, FleetFacts, StageFact, WarningFacts
from chalicelib.domain.evaluation.indicators import EnterpriseProfile
from chalicelib.domain.evaluation.periods import Period
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.evaluation.report import EvaluationReport, build_report, period_days
from chalicelib.domain.levels import Level
from chalicelib.domain.lifecycle import ClearReason
from chalicelib.domain.sectors import Sector
from chalicelib.reports.html import render_html
from chalicelib.reports.xlsx import render_xlsx

OUT = Path("build/report-preview")
AREAS = {
    "TEDA": "泰达经济技术开发区",
    "LGZ": "临港经济区",
    "XGJ": "新港街道",
    "HZD": "杭州道街道",
    "DGJ": "大港街道",
    "HGJ": "汉沽街道",
}
DEV_ZONES = ("TEDA", "LGZ")
STREETS = ("XGJ", "HZD", "DGJ", "HGJ")
PLACES = ("滨海", "临港", "泰达", "大港", "汉沽", "塘沽", "新港", "海河", "渤海", "津南", "港城", "北塘")
SUFFIX = {
    Sector.HAZCHEM: ("化工有限公司", "石化储运有限公司", "精细化工股份有限公司"),
    Sector.ROAD_TRANSPORT: ("危货运输有限公司", "物流运输有限公司"),
    Sector.FIRE: ("商业广场", "国际酒店", "综合体"),
    Sector.CONSTRUCTION: ("建工集团项目部", "地铁施工项目部"),
    Sector.CHEM_PIPELINE: ("化工管道有限公司",),
    Sector.OIL_GAS_PIPELINE: ("燃气管网有限公司", "输油管道有限公司"),
}
LEVELS = (Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED)
LEVEL_WEIGHTS = (45, 30, 17, 8)
ACK_DUE_S = {Level.BLUE: 3600, Level.YELLOW: 1800, Level.ORANGE: 900, Level.RED: 300}


def parse_period(text: str) -> Period:
    if match := re.fullmatch(r"(\d{4})-(\d{2})", text):
        return periods.month(int(match[1]), int(match[2]))
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", text):
        return periods.quarter(int(match[1]), int(match[2]))
    if re.fullmatch(r"\d{4}", text):
        return periods.year(int(text))
    raise argparse.ArgumentTypeError(f"a period is 2025-03, 2025-Q1 or 2025, not {text!r}")


def _profiles(rng: random.Random, count: int) -> list[EnterpriseProfile]:
    sectors = list(SUFFIX)
    profiles = []
    for index in range(count):
        sector = sectors[index % len(sectors)]
        areas = (rng.choice(DEV_ZONES), rng.choice(STREETS)) if rng.random() < 0.3 else (rng.choice(STREETS),)
        grades = (rng.choice((1, 2, 3, 4)),) if sector.value.endswith(("hazchem", "pipeline")) else ()
        place = PLACES[index % len(PLACES)] + "甲乙丙丁戊己庚辛"[index // len(PLACES) % 8]
        name = place + rng.choice(SUFFIX[sector])
        profiles.append(
            EnterpriseProfile(
                enterprise_id=f"E{index + 1:04d}",
                name=name,
                sector=sector,
                area_codes=areas,
                major_hazard_grades=grades if rng.random() < 0.6 else (),
            )
        )
    return profiles


def _warning(
    rng: random.Random, profile: EnterpriseProfile, device: str, raised: float, sloppy: float
) -> WarningFacts:
    level = rng.choices(LEVELS, LEVEL_WEIGHTS)[0]
    ack_due = raised + ACK_DUE_S[level]
    late = rng.random() < sloppy
    acknowledged = ack_due + rng.uniform(60, 3600) if late else raised + rng.uniform(30, ACK_DUE_S[level])
    closed = acknowledged + rng.uniform(600, 36 * 3600)
    stages = (
        StageFact(
            stage=Stage.ACKNOWLEDGE,
            due_at=ack_due,
            done_at=acknowledged,
            settled_at=ack_due if late else acknowledged,
            on_time=not late,
        ),
        StageFact(stage=Stage.CLEAR, due_at=raised + 72 * 3600, done_at=closed, settled_at=closed, on_time=True),
    )
    reason = rng.choices(list(ClearReason), (70, 20, 7, 3))[0]
    return WarningFacts(
        warning_id=f"W-{profile.enterprise_id}-{raised:.0f}",
        device_id=device,
        enterprise_id=profile.enterprise_id,
        sector=profile.sector,
        area_codes=profile.area_codes,
        risk_type="synthetic",
        level=level,
        peak_level=level,
        raised_at=raised,
        acknowledged_at=acknowledged,
        closed_at=closed,
        clear_reason=reason,
        escalated_at=ack_due if late else None,
        stages=stages,
    )


class SyntheticFacts(NamedTuple):
    profiles: list[EnterpriseProfile]
    warnings: list[WarningFacts]
    device_days: list[DeviceDay]
    fleets: dict[str, FleetFacts]


def synthetic_report(
    period: Period, enterprises: int = 48, seed: int = 18, generated_at: float | None = None
) -> EvaluationReport:
    return report_of(period, synthetic_facts(period, enterprises, seed), generated_at)


def report_of(period: Period, facts: SyntheticFacts, generated_at: float | None = None) -> EvaluationReport:
    return build_report(
        period,
        period.kind,
        facts.profiles,
        facts.warnings,
        facts.device_days,
        facts.fleets,
        EvaluationPolicy(),
        generated_at if generated_at is not None else period.end + 3600,
        area_names=AREAS,
    )


def synthetic_facts(period: Period, enterprises: int, seed: int = 18) -> SyntheticFacts:
    rng = random.Random(seed)
    profiles = _profiles(rng, enterprises)
    days = period_days(period)
    warnings: list[WarningFacts] = []
    device_days: list[DeviceDay] = []
    fleets: dict[str, FleetFacts] = {}
    for profile in profiles:
        devices = [f"{profile.enterprise_id}-D{n}" for n in range(1, rng.randint(2, 4) + 1)]
        if profile.sector is Sector.ROAD_TRANSPORT:
            fleets[profile.enterprise_id] = FleetFacts(
                enterprise_id=profile.enterprise_id, vehicles_networked=len(devices)
            )
        trouble = rng.random() ** 3  # most enterprises do well, a few badly
        span = period.end - period.start
        for _ in range(int(trouble * 24 * len(days) / 31)):
            warnings.append(
                _warning(rng, profile, rng.choice(devices), period.start + rng.uniform(0, span), trouble)
            )
        for device in devices:
            for day in days:
                outage = rng.uniform(0, 6 * 3600) if rng.random() < trouble * 0.15 else 0.0
                declared = outage if rng.random() < 0.4 else 0.0
                device_days.append(
                    DeviceDay(
                        device_id=device,
                        enterprise_id=profile.enterprise_id,
                        sector=profile.sector,
                        area_codes=profile.area_codes,
                        day=day,
                        expected_s=86400,
                        online_s=86400 - outage,
                        declared_outage_s=declared,
                        undeclared_outage_s=outage - declared,
                    )
                )
    return SyntheticFacts(profiles, warnings, device_days, fleets)


def write_preview(report: EvaluationReport, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "report.xlsx": render_xlsx(report),
        "report.html": render_html(report),
        "report.json": report.model_dump_json().encode(),
    }
    for name, content in files.items():
        (out / name).write_bytes(content)
    return [out / name for name in files]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=parse_period, default=periods.month(2025, 3))
    parser.add_argument("--enterprises", type=int, default=48)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    facts = synthetic_facts(args.period, args.enterprises)
    started = time.perf_counter()
    report = report_of(args.period, facts)
    built = time.perf_counter()
    workbook = render_xlsx(report)
    rendered_xlsx = time.perf_counter()
    render_html(report)
    rendered_html = time.perf_counter()
    paths = write_preview(report, args.out)
    print(
        f"{args.period.label}: {len(facts.profiles)} enterprises, {len(facts.warnings)} warnings,"
        f" {len(facts.device_days)} device-days"
    )
    print(
        f"build_report {built - started:.2f} s, render_xlsx {rendered_xlsx - built:.2f} s"
        f" ({len(workbook):,} bytes), render_html {rendered_html - rendered_xlsx:.2f} s"
    )
    for path in paths:
        print(f"  {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
