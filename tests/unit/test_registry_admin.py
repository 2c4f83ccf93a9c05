"""The administrator's use cases over the shared fakes: the registry (`RegistryAdmin`: enterprises and devices,
every change audited per subject, an enterprise's devices following it) and the users (`People`). Who may use them
is `test_access_matrix.py`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from chalicelib.domain.audit import verify_chain
from chalicelib.domain.errors import Conflict, NotConfigured, NotFound, ValidationFailed
from chalicelib.domain.levels import Sector
from chalicelib.domain.lifecycle import Role
from chalicelib.domain.registry import Enterprise, Location, Setpoint, StaticFactors
from chalicelib.services.fakes import FakeRegistry, FakeUsers
from chalicelib.services.people import People
from chalicelib.services.ports import NewUser, Origin
from chalicelib.services.registry_admin import RegistryAdmin
from tests.unit.test_lifecycle import ADMIN, T0

ENTERPRISE = Enterprise(
    enterprise_id="E1", name="津港石化储运有限公司", sector=Sector.HAZCHEM, area_codes=("TEDA",)
)
CONSOLE = Origin(source_ip="10.9.8.7", app="admin-console")


@dataclass(frozen=True)
class DeviceForm:
    enterprise_id: str = "E1"
    unit_id: str = "U1"
    unit_name: str = "一号罐区"
    point_name: str = "V-101储罐"
    kind: str = "tank_level"
    setpoints: dict[str, Setpoint] = field(default_factory=lambda: {"level_pct": Setpoint(h=85.0, hh=90.0)})
    static: StaticFactors = field(default_factory=StaticFactors)
    location: Location | None = None
    reason: str = "新装液位计"


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def admin(registry: FakeRegistry) -> RegistryAdmin:
    return RegistryAdmin(registry, lambda: T0)


# --- the registry ------------------------------------------------------------------------------------------------


def test_a_new_enterprise_is_registered_with_its_audit_event_and_putting_it_again_changes_nothing(
    admin: RegistryAdmin, registry: FakeRegistry
) -> None:
    first = admin.put_enterprise(ADMIN, ENTERPRISE, reason="新企业接入", origin=CONSOLE)
    again = admin.put_enterprise(ADMIN, ENTERPRISE)

    assert (first.changed, first.audit_seq, again.changed, again.audit_seq) == (True, 1, False, 1)
    [event] = registry.log("enterprise:E1").events
    assert (event.type, event.actor, event.role, event.at) == ("enterprise_registered", "u-admin", "admin", T0)
    assert (event.reason, event.source_ip, event.app) == ("新企业接入", "10.9.8.7", "admin-console")
    assert event.before == {} and event.after["name"] == ENTERPRISE.name


def test_a_device_takes_its_enterprises_name_sector_and_areas(admin: RegistryAdmin) -> None:
    admin.put_enterprise(ADMIN, ENTERPRISE)

    change = admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm())

    device = change.subject
    assert (device.enterprise_name, device.sector, device.area_codes) == (
        ENTERPRISE.name,
        Sector.HAZCHEM,
        ("TEDA",),
    )
    assert device.setpoints["level_pct"].hh == 90.0 and change.audit_seq == 1
    assert admin.device(ADMIN, "HC01-T1-V1") == device


def test_a_devices_location_is_registered_and_a_move_is_an_audited_change(admin: RegistryAdmin) -> None:
    admin.put_enterprise(ADMIN, ENTERPRISE)
    site = Location(lat=39.0163, lon=117.7704)
    assert admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm(location=site)).subject.location == site

    moved = admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm(location=Location(lat=39.02, lon=117.77)))

    assert moved.changed and moved.audit_seq == 2
    assert admin.device(ADMIN, "HC01-T1-V1").location == Location(lat=39.02, lon=117.77)


def test_a_device_of_an_unregistered_enterprise_is_refused(admin: RegistryAdmin) -> None:
    with pytest.raises(ValidationFailed) as refused:
        admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm(enterprise_id="E-NOPE"))

    assert refused.value.code == "unknown_enterprise"


def test_an_enterprise_change_reaches_its_devices_each_audited(
    admin: RegistryAdmin, registry: FakeRegistry
) -> None:
    admin.put_enterprise(ADMIN, ENTERPRISE)
    admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm())
    admin.put_device(ADMIN, "HC01-T1-V2", DeviceForm())
    renamed = ENTERPRISE.model_copy(update={"name": "津港石化储运集团", "area_codes": ("TEDA", "GULIN")})

    change = admin.put_enterprise(ADMIN, renamed, reason="更名")

    assert (change.changed, change.audit_seq, change.devices_updated) == (True, 2, 2)
    device = admin.device(ADMIN, "HC01-T1-V2")
    assert (device.enterprise_name, device.area_codes) == ("津港石化储运集团", ("TEDA", "GULIN"))
    followed = registry.log("device:HC01-T1-V2").events[-1]
    assert (followed.type, followed.reason) == ("device_updated", "企业信息变更同步: 更名")


def test_an_enterprise_with_devices_keeps_its_sector(admin: RegistryAdmin) -> None:
    admin.put_enterprise(ADMIN, ENTERPRISE)
    admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm())

    with pytest.raises(Conflict) as refused:
        admin.put_enterprise(ADMIN, ENTERPRISE.model_copy(update={"sector": Sector.FIRE}))

    assert refused.value.code == "sector_locked"
    assert admin.enterprise(ADMIN, "E1").sector is Sector.HAZCHEM


def test_a_subjects_trail_verifies_and_a_missing_one_is_404(admin: RegistryAdmin) -> None:
    admin.put_enterprise(ADMIN, ENTERPRISE)
    admin.put_enterprise(ADMIN, ENTERPRISE.model_copy(update={"name": "改名一"}))
    admin.put_enterprise(ADMIN, ENTERPRISE.model_copy(update={"name": "改名二"}))

    log = admin.subject_audit(ADMIN, "enterprise", "E1")

    assert [e.seq for e in log.events] == [1, 2, 3] and verify_chain(log.events, log.head).ok
    for kind, code in (("enterprise", "enterprise_not_found"), ("device", "device_not_found")):
        with pytest.raises(NotFound) as missing:
            admin.subject_audit(ADMIN, kind, "NOPE")
        assert missing.value.code == code


def test_a_tampered_registry_trail_fails_the_chain_check(admin: RegistryAdmin, registry: FakeRegistry) -> None:
    admin.put_enterprise(ADMIN, ENTERPRISE)
    admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm())
    admin.put_device(ADMIN, "HC01-T1-V1", DeviceForm(setpoints={"level_pct": Setpoint(h=95.0, hh=99.0)}))
    events = registry.events["device:HC01-T1-V1"]
    events[0] = replace(events[0], after={**events[0].after, "setpoints": {}})

    log = admin.subject_audit(ADMIN, "device", "HC01-T1-V1")

    report = verify_chain(log.events, log.head)
    assert (report.ok, report.first_bad_seq, report.reason) == (False, 1, "hash_mismatch")


def test_reading_a_missing_enterprise_or_device_is_404(admin: RegistryAdmin) -> None:
    with pytest.raises(NotFound):
        admin.enterprise(ADMIN, "E-NOPE")
    with pytest.raises(NotFound):
        admin.device(ADMIN, "NOPE")


# --- people ----------------------------------------------------------------------------------------------------


@pytest.fixture
def people(registry: FakeRegistry, admin: RegistryAdmin) -> People:
    admin.put_enterprise(ADMIN, ENTERPRISE)
    return People(FakeUsers(), registry)


def test_a_new_user_keeps_the_scope_of_its_role_only(people: People) -> None:
    account = people.create_user(
        ADMIN, NewUser(username="ent-1", role=Role.ENTERPRISE, name="张工", enterprise_id="E1", department="x")
    )

    assert (account.role, account.enterprise_id, account.department) == (Role.ENTERPRISE, "E1", None)


def test_an_enterprise_user_of_an_unregistered_enterprise_is_refused(people: People) -> None:
    with pytest.raises(ValidationFailed) as refused:
        people.create_user(ADMIN, NewUser(username="ent-x", role=Role.ENTERPRISE, name="某人", enterprise_id="E9"))

    assert refused.value.code == "unknown_enterprise"


def test_a_username_is_taken_once(people: People) -> None:
    people.create_user(ADMIN, NewUser(username="duty-1", role=Role.DUTY, name="值班员"))

    with pytest.raises(Conflict) as refused:
        people.create_user(ADMIN, NewUser(username="duty-1", role=Role.AREA, name="别人", area_codes=("TEDA",)))

    assert refused.value.code == "user_exists"


def test_users_are_listed_by_role_in_pages(people: People) -> None:
    for index in range(3):
        people.create_user(ADMIN, NewUser(username=f"duty-{index}", role=Role.DUTY, name="值班员"))
    people.create_user(ADMIN, NewUser(username="area-1", role=Role.AREA, name="街镇", area_codes=("TEDA",)))

    first = people.list_users(ADMIN, ["duty"], limit=2)
    second = people.list_users(ADMIN, ["duty"], limit=2, cursor=first.next_token)
    everyone = people.list_users(ADMIN, None, limit=10)

    assert [u.username for u in first.users + second.users] == ["duty-0", "duty-1", "duty-2"]
    assert second.next_token is None
    assert {u.username for u in everyone.users} == {"duty-0", "duty-1", "duty-2", "area-1"}


def test_without_a_user_directory_users_are_not_configured(registry: FakeRegistry) -> None:
    people = People(None, registry)

    with pytest.raises(NotConfigured):
        people.list_users(ADMIN, None, limit=10)
