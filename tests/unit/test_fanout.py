"""Who is told of a warning change (DOMAIN.md §4): audiences by level, regulators by sector, areas by the
enterprise's codes, and the routing rules an operator adds."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.domain.catalog import Policy, build_policy
from chalicelib.domain.changes import DATA_QUALITY, ChangeKind, WarningChange
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.policy import Audience, RoutingRule
from chalicelib.domain.registry import Contact, Enterprise, Person
from chalicelib.domain.roles import AUDIENCE_ROLES, Role
from chalicelib.services.fanout import notification_for, recipients, route_for

ALL = ("enterprise", "duty", "regulator", "area", "emergency")

ENTERPRISE = Enterprise(
    enterprise_id="E-HC-T",
    name="渤化测试化工",
    sector=Sector.HAZCHEM,
    area_codes=("TEDA", "TAIDA"),
    contacts=(
        Contact(name="安全负责人 李娜", phone="+8613900000001"),
        Contact(name="值班员 何欣", phone="+8613900000002", role="on_duty"),
    ),
)


def people() -> tuple[Person, ...]:
    """A small directory: two duty officers, regulators of several departments, area officials, a leader."""
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("duty-1", "duty", {}),
        ("duty-2", "duty", {}),
        ("reg-emergency-bureau", "regulator", {"department": "emergency_bureau", "sectors": ("hazchem",)}),
        ("reg-transport", "regulator", {"department": "transport_bureau", "sectors": ("road_transport",)}),
        ("reg-traffic-police", "regulator", {"department": "traffic_police", "sectors": ("road_transport",)}),
        ("reg-fire", "regulator", {"department": "fire_rescue", "sectors": ("fire",)}),
        ("reg-planning", "regulator", {"department": "planning_resources"}),
        ("area-teda", "area", {"area_codes": ("TEDA",)}),
        ("area-taida", "area", {"area_codes": ("TAIDA",)}),
        ("area-tanggu", "area", {"area_codes": ("TANGGU",)}),
        ("emergency-leader", "emergency", {}),
        ("admin", "admin", {}),
    ]
    return tuple(
        Person(person_id=person_id, name=person_id, role=role, phone=f"+86139100000{index:02d}", **fields)
        for index, (person_id, role, fields) in enumerate(specs)
    )


PEOPLE = people()


def change(
    level: int,
    *,
    kind: ChangeKind = ChangeKind.RAISE,
    previous: int = Level.NONE,
    sector: Sector = Sector.HAZCHEM,
    risk_type: str = "combustible_gas",
    area_codes: tuple[str, ...] = ("TEDA", "TAIDA"),
) -> WarningChange:
    return WarningChange(
        kind=kind,
        warning_id="WTEST0001",
        device_id="HC-T-GT1",
        enterprise_id=ENTERPRISE.enterprise_id,
        enterprise_name=ENTERPRISE.name,
        sector=sector,
        unit_id="U-HC-T",
        unit_name="罐区一",
        point_name="GT-1",
        area_codes=area_codes,
        risk_type=risk_type,
        level=level,
        previous_level=previous,
        base_level=level,
        reason="gas_l2",
        title="可燃气体二级报警",
        value=56.0,
        unit="%LEL",
        at=1_764_000_000.0,
        raised_at=1_764_000_000.0,
    )


def told(policy: Policy, warning: WarningChange) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """(audiences, [(audience, person or contact name)]) of the notification for `warning`."""
    notification = notification_for(policy, warning, ENTERPRISE, PEOPLE)
    return (
        tuple(audience.value for audience in notification.route.audiences),
        [(r.audience, r.name) for r in notification.recipients],
    )


ENTERPRISE_CONTACTS = [("enterprise", "安全负责人 李娜"), ("enterprise", "值班员 何欣")]
DUTY = [("duty", "duty-1"), ("duty", "duty-2")]


def test_red_tells_all_five_audiences_with_the_sectors_regulators_and_the_enterprises_areas() -> None:
    audiences, people_told = told(Policy(), change(Level.RED))

    assert audiences == ALL
    assert people_told == [
        *ENTERPRISE_CONTACTS,
        *DUTY,
        ("regulator", "reg-emergency-bureau"),
        ("area", "area-teda"),
        ("area", "area-taida"),
        ("emergency", "emergency-leader"),
    ]


def test_orange_tells_regulators_and_areas_but_not_the_emergency_bureau() -> None:
    audiences, people_told = told(Policy(), change(Level.ORANGE))

    assert audiences == ("enterprise", "duty", "regulator", "area")
    assert ("emergency", "emergency-leader") not in people_told
    assert {name for audience, name in people_told if audience in ("regulator", "area")} == {
        "reg-emergency-bureau",
        "area-teda",
        "area-taida",
    }


def test_yellow_tells_the_enterprise_and_the_duty_centre() -> None:
    assert told(Policy(), change(Level.YELLOW)) == (("enterprise", "duty"), [*ENTERPRISE_CONTACTS, *DUTY])


def test_blue_tells_the_enterprise_only() -> None:
    assert told(Policy(), change(Level.BLUE)) == (("enterprise",), ENTERPRISE_CONTACTS)


@pytest.mark.parametrize(
    ("kind", "level", "previous"),
    [
        (ChangeKind.LEVEL_DOWN, Level.YELLOW, Level.RED),
        (ChangeKind.LEVEL_DOWN, Level.BLUE, Level.ORANGE),
        (ChangeKind.RECOVER, Level.NONE, Level.RED),
    ],
)
def test_a_lowering_tells_the_enterprise_and_the_duty_centre_only(
    kind: ChangeKind, level: int, previous: int
) -> None:
    route = route_for(Policy(), change(level, kind=kind, previous=previous))

    assert route.audiences == (Audience.ENTERPRISE, Audience.DUTY)
    assert (route.regulators, route.areas) == ((), ())


def test_a_level_up_to_red_is_told_like_a_red_raise() -> None:
    up = change(Level.RED, kind=ChangeKind.LEVEL_UP, previous=Level.YELLOW)

    assert told(Policy(), up) == told(Policy(), change(Level.RED))


@pytest.mark.parametrize("kind", [ChangeKind.RAISE, ChangeKind.RECOVER])
def test_a_data_quality_finding_tells_the_enterprise_only(kind: ChangeKind) -> None:
    finding = change(
        Level.BLUE if kind is ChangeKind.RAISE else Level.NONE,
        kind=kind,
        previous=Level.NONE if kind is ChangeKind.RAISE else Level.BLUE,
        risk_type=DATA_QUALITY,
    )

    assert told(Policy(), finding) == (("enterprise",), ENTERPRISE_CONTACTS)


@pytest.mark.parametrize(
    ("sector", "regulators"),
    [
        (Sector.HAZCHEM, ["reg-emergency-bureau"]),
        (Sector.ROAD_TRANSPORT, ["reg-transport", "reg-traffic-police"]),
        (Sector.FIRE, ["reg-fire"]),
        (Sector.CHEM_PIPELINE, ["reg-emergency-bureau", "reg-planning"]),
        (Sector.CONSTRUCTION, []),  # nobody of housing_construction in this directory
    ],
)
def test_regulators_are_chosen_by_the_sectors_departments(sector: Sector, regulators: list[str]) -> None:
    _, people_told = told(Policy(), change(Level.RED, sector=sector))

    assert [name for audience, name in people_told if audience == "regulator"] == regulators


def test_area_officials_are_chosen_by_the_warnings_area_codes() -> None:
    _, people_told = told(Policy(), change(Level.RED, area_codes=("TANGGU",)))

    assert [name for audience, name in people_told if audience == "area"] == ["area-tanggu"]


def test_an_enterprise_without_areas_tells_no_area_official() -> None:
    _, people_told = told(Policy(), change(Level.RED, area_codes=()))

    assert [name for audience, name in people_told if audience == "area"] == []


def test_a_routing_rule_adds_the_emergency_bureau_to_orange_in_hazchem_only() -> None:
    policy = build_policy({"routing": {"rules": [{"level": 3, "sector": "hazchem", "add": ["emergency"]}]}})

    hazchem, hazchem_people = told(policy, change(Level.ORANGE, sector=Sector.HAZCHEM))
    fire, _ = told(policy, change(Level.ORANGE, sector=Sector.FIRE))
    yellow, _ = told(policy, change(Level.YELLOW, sector=Sector.HAZCHEM))

    assert hazchem == ("enterprise", "duty", "regulator", "area", "emergency")
    assert ("emergency", "emergency-leader") in hazchem_people
    assert fire == ("enterprise", "duty", "regulator", "area")
    assert yellow == ("enterprise", "duty")


def test_a_routing_rule_for_one_area_removes_an_audience_there_only() -> None:
    rule = RoutingRule(level=Level.YELLOW, area_code="TANGGU", remove=(Audience.DUTY,))
    policy = Policy.model_validate({"routing": {"rules": [rule.model_dump()]}})

    assert route_for(policy, change(Level.YELLOW, area_codes=("TANGGU",))).audiences == (Audience.ENTERPRISE,)
    assert route_for(policy, change(Level.YELLOW)).audiences == (Audience.ENTERPRISE, Audience.DUTY)


def test_one_phone_in_two_audiences_gets_one_message() -> None:
    shared = Person(person_id="both", name="兼任", role="duty", phone=ENTERPRISE.contacts[0].phone)
    route = route_for(Policy(), change(Level.YELLOW))

    found = recipients(route, ENTERPRISE, (shared, *PEOPLE))

    assert [r.phone for r in found].count(ENTERPRISE.contacts[0].phone) == 1
    assert [r.name for r in found if r.audience == "duty"] == ["duty-1", "duty-2"]


def test_no_enterprise_profile_still_tells_the_authorities() -> None:
    route = route_for(Policy(), change(Level.RED))

    found = recipients(route, None, PEOPLE)

    assert "enterprise" not in {r.audience for r in found}
    assert {r.audience for r in found} == {"duty", "regulator", "area", "emergency"}


def test_the_notification_carries_the_chinese_sms_with_the_levels_deadlines() -> None:
    notification = notification_for(Policy(), change(Level.RED), ENTERPRISE, PEOPLE)

    assert notification.sms.startswith("【滨海大应急】红色预警")
    assert "5分钟内签收" in notification.sms
    assert "WTEST0001" in notification.sms


def test_an_audience_is_a_receiving_role_with_the_role_name() -> None:
    assert Audience is Role
    assert tuple(role.value for role in sorted(AUDIENCE_ROLES)) == tuple(sorted(ALL))
    assert [Audience(name).zh for name in ALL] == ["企业", "值守中心", "行业主管部门", "属地", "应急管理局"]


@pytest.mark.parametrize("never_told", ["admin", "system"])
def test_routing_refuses_a_role_that_is_never_told_of_warnings(never_told: str) -> None:
    with pytest.raises(ValidationError, match="never told of warnings"):
        build_policy({"routing": {"rules": [{"level": Level.RED, "add": [never_told]}]}})
    with pytest.raises(ValidationError, match="never told of warnings"):
        build_policy({"routing": {"by_level": {Level.RED: ["enterprise", never_told]}}})
