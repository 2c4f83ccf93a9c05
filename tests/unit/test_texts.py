"""Chinese texts: one SMS segment that always keeps the level, the reading and the warning id."""

from __future__ import annotations

from datetime import datetime

import pytest

from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.policy import DeadlinePolicy
from chalicelib.domain.texts import (
    PARAM_MAX_CHARS,
    SMS_MAX_CHARS,
    TEMPLATES,
    Template,
    app_text,
    fit,
    short_enterprise,
    sms_text,
    span_zh,
)

DEADLINES = DeadlinePolicy()
AT = datetime(2025, 11, 29, 10, 12, tzinfo=SHANGHAI).timestamp()


def change(kind: ChangeKind = ChangeKind.RAISE, level: int = Level.RED, **overrides: object) -> WarningChange:
    values: dict[str, object] = {
        "kind": kind,
        "warning_id": "WABCDEFGH",
        "device_id": "HC01-T1-V1",
        "enterprise_id": "E-HC-01",
        "enterprise_name": "津港石化储运有限公司",
        "sector": Sector.HAZCHEM,
        "unit_id": "U1",
        "unit_name": "一号罐区",
        "point_name": "V-101储罐",
        "area_codes": ("TJFTZ",),
        "risk_type": "tank_level",
        "level": level,
        "previous_level": Level.NONE,
        "base_level": level,
        "reason": "tank_level_hh",
        "title": "液位高高报",
        "value": 95.2,
        "unit": "%",
        "at": AT,
        "raised_at": AT,
    }
    values.update(overrides)
    return WarningChange(**values)  # type: ignore[arg-type]


def test_the_red_sms_reads_like_the_spec_example() -> None:
    text = sms_text(change(enterprise_name="渤化化工有限公司"), DEADLINES.red)
    expected = "【滨海大应急】红色预警 渤化化工 V-101储罐液位高高报 95.2% 10:12。请5分钟内签收、15分钟内反馈。编号WABCDEFGH"  # noqa: E501
    assert text == expected
    assert len(text) <= SMS_MAX_CHARS


@pytest.mark.parametrize("kind", list(ChangeKind))
@pytest.mark.parametrize("level", [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED])
def test_long_names_shrink_and_the_level_reading_and_id_survive(kind: ChangeKind, level: int) -> None:
    long = change(
        kind,
        Level.NONE if kind is ChangeKind.RECOVER else level,
        previous_level=level,
        enterprise_name="天津滨海新区临港经济区超长名称精细化工新材料股份有限公司",
        point_name="三号罐区东侧第二排V-1203A原料储罐",
        title="液位高高报联锁未动作",
    )
    text = sms_text(long, DEADLINES.for_level(level))
    assert len(text) <= SMS_MAX_CHARS
    assert text.startswith("【滨海大应急】") and text.endswith("编号WABCDEFGH")
    if kind is not ChangeKind.RECOVER:
        assert Level(level).zh in text and "95.2%" in text


def test_a_pour_warning_tells_to_stop_pouring_and_evacuate() -> None:
    pour = change(params={"action": "stop_pour_evacuate"}, title="高支模超限停浇撤离")
    assert "立即停止浇筑撤离人员" in sms_text(pour, DEADLINES.orange)
    assert "立即停止浇筑" in app_text(pour, DEADLINES.orange)


def test_the_app_text_carries_the_deadlines_and_the_escalation_reasons() -> None:
    text = app_text(change(flags=("static", "frequent")), DEADLINES.red)
    assert "5分钟内签收" in text and "2小时内降级或消警" in text
    assert "重大危险源/高后果区" in text and "频繁报警" in text


@pytest.mark.parametrize(
    ("seconds", "text"), [(30, "30秒"), (300, "5分钟"), (7200, "2小时"), (86400, "1天"), (259200, "3天")]
)
def test_deadlines_read_in_chinese(seconds: float, text: str) -> None:
    assert span_zh(seconds) == text


def test_company_suffixes_are_dropped_for_the_sms() -> None:
    assert short_enterprise("滨海捷运长途客运有限公司") == "滨海捷运长途客运"
    assert short_enterprise("泰达时代广场") == "泰达时代广场"


@pytest.mark.parametrize("template", list(TEMPLATES.values()), ids=lambda t: t.template_id)
def test_every_template_renders_one_segment_with_worst_case_parameters(template: Template) -> None:
    worst = dict.fromkeys(template.fields, "滨" * 80)
    text = fit(template, worst)
    assert len(text.render()) <= SMS_MAX_CHARS
    assert all(0 < len(value) <= PARAM_MAX_CHARS for value in text.params.values())
    assert all(len(text.params[name]) <= longest for name, longest in template.fixed.items())


@pytest.mark.parametrize("template", list(TEMPLATES.values()), ids=lambda t: t.template_id)
def test_an_empty_parameter_is_never_sent_to_a_template_provider(template: Template) -> None:
    text = fit(template, {})
    assert all(text.params[name] for name in template.fields)
