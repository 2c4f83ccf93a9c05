"""Load the readable demo registry (local/seed/binhai.yaml) into domain objects, and install it: devices and
enterprises as registry items, and people, the duty roster and each enterprise's on-duty person through the
roster administration (audited, as an administrator would through the API)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from chalicelib.domain.clock import SHANGHAI
from chalicelib.domain.lifecycle import Actor, Role
from chalicelib.domain.registry import (
    Area,
    Contact,
    DeviceRegistration,
    Enterprise,
    Location,
    Person,
    StaticFactors,
)
from chalicelib.domain.rosters import Shift

SEED_FILE = Path(__file__).parent / "seed" / "binhai.yaml"
SEED_ACTOR = Actor(user_id="seed", role=Role.ADMIN, name="演示数据装载")
SEED_REASON = "演示数据"


@dataclass(frozen=True)
class DutyRota:
    """Officers taking turns in shifts of `shift_hours`, the first starting at `first_start` (HH:MM, UTC+8) the
    evening before the run's day."""

    officers: tuple[str, ...]
    shift_hours: int = 12
    first_start: str = "20:00"
    shifts: int = 7

    def shifts_for(self, now: float) -> tuple[Shift, ...]:
        day = datetime.fromtimestamp(now, SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        hour, minute = (int(part) for part in self.first_start.split(":"))
        first = day - timedelta(days=1) + timedelta(hours=hour, minutes=minute)
        found = []
        for index in range(self.shifts):
            start = first + timedelta(hours=self.shift_hours * index)
            found.append(
                Shift(
                    shift_id=f"D{start:%Y%m%d-%H%M}",
                    person_id=self.officers[index % len(self.officers)],
                    starts_at=int(start.timestamp()),
                    ends_at=int((start + timedelta(hours=self.shift_hours)).timestamp()),
                    note="演示排班",
                )
            )
        return tuple(found)


@dataclass(frozen=True)
class SeedRegistry:
    areas: tuple[Area, ...]
    people: tuple[Person, ...]
    enterprises: tuple[Enterprise, ...]
    devices: tuple[DeviceRegistration, ...]
    by_device: dict[str, DeviceRegistration] = field(default_factory=dict)
    duty_rota: DutyRota | None = None
    on_duty: dict[str, tuple[str, ...]] = field(default_factory=dict)  # enterprise id: its on-duty person ids

    def enterprise(self, enterprise_id: str) -> Enterprise:
        return next(e for e in self.enterprises if e.enterprise_id == enterprise_id)


def enterprise_person_id(enterprise_id: str) -> str:
    """The person id of an enterprise's on-duty person: its demo user's name (`local.users.enterprise_user`)."""
    return f"ent-{enterprise_id.lower()}"


def load_seed(path: Path = SEED_FILE) -> SeedRegistry:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    areas = tuple(Area.model_validate(area) for area in doc["areas"])
    people = [
        Person(
            person_id=p["id"],
            name=p["name"],
            role=p["role"],
            phone=p["phone"],
            department=p.get("department"),
            sectors=tuple(p.get("sectors", ())),
            area_codes=tuple(p.get("areas", ())),
            enterprise_id=p.get("enterprise_id"),
        )
        for p in doc["people"]
    ]
    enterprises: list[Enterprise] = []
    devices: list[DeviceRegistration] = []
    on_duty: dict[str, tuple[str, ...]] = {}
    for e in doc["enterprises"]:
        enterprise = Enterprise(
            enterprise_id=e["id"],
            name=e["name"],
            sector=e["sector"],
            area_codes=tuple(e["areas"]),
            contacts=tuple(Contact.model_validate(c) for c in e.get("contacts", ())),
        )
        enterprises.append(enterprise)
        watch = next((c for c in enterprise.contacts if c.role == "on_duty"), None)
        if watch is not None:
            person_id = enterprise_person_id(enterprise.enterprise_id)
            people.append(
                Person(
                    person_id=person_id,
                    name=watch.name,
                    role="enterprise",
                    phone=watch.phone,
                    enterprise_id=enterprise.enterprise_id,
                )
            )
            on_duty[enterprise.enterprise_id] = (person_id,)
        for unit in e["units"]:
            for d in unit["devices"]:
                static = {**unit.get("static", {}), **d.get("static", {})}
                devices.append(
                    DeviceRegistration(
                        device_id=d["id"],
                        enterprise_id=enterprise.enterprise_id,
                        enterprise_name=enterprise.name,
                        sector=enterprise.sector,
                        unit_id=unit["id"],
                        unit_name=unit["name"],
                        point_name=d.get("point", ""),
                        kind=d["kind"],
                        area_codes=enterprise.area_codes,
                        setpoints=d.get("setpoints", {}),
                        static=StaticFactors.model_validate(static),
                        location=_location(d.get("location") or unit.get("location")),
                    )
                )
    duty = (doc.get("rosters") or {}).get("duty")
    return SeedRegistry(
        areas=areas,
        people=tuple(people),
        enterprises=tuple(enterprises),
        devices=tuple(devices),
        by_device={device.device_id: device for device in devices},
        duty_rota=DutyRota(**{**duty, "officers": tuple(duty["officers"])}) if duty else None,
        on_duty=on_duty,
    )


def _location(value: dict[str, float] | None) -> Location | None:
    return Location.model_validate(value) if value else None


def install(seed: SeedRegistry, now: float | None = None) -> None:
    """Write the seed into the bound tables (`dynamo.bind`, `audit_store.bind`): devices and enterprises as
    items; people, the duty shifts around `now` and the enterprises' on-duty persons through `RosterAdmin` over
    the audited registry, each change chained in its subject's audit trail as an administrator's would be."""
    from chalicelib.adapters.audit_store import AuditedRegistry
    from chalicelib.adapters.dynamo import DynamoRegistry
    from chalicelib.services.rosters import RosterAdmin

    DynamoRegistry.put_many(seed.devices, seed.enterprises, (), seed.areas)
    admin = RosterAdmin(AuditedRegistry(), time.time)
    for person in seed.people:
        admin.put_person(SEED_ACTOR, person.model_dump(mode="json"), SEED_REASON)
    if seed.duty_rota is not None:
        for shift in seed.duty_rota.shifts_for(time.time() if now is None else now):
            admin.put_shift(SEED_ACTOR, shift, SEED_REASON)
    for enterprise_id, person_ids in seed.on_duty.items():
        admin.name_on_duty(SEED_ACTOR, enterprise_id, person_ids, SEED_REASON)
