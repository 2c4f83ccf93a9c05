"""Load the readable demo registry (local/seed/binhai.yaml) into domain objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chalicelib.domain.registry import Area, Contact, DeviceRegistration, Enterprise, Person, StaticFactors

SEED_FILE = Path(__file__).parent / "seed" / "binhai.yaml"


@dataclass(frozen=True)
class SeedRegistry:
    areas: tuple[Area, ...]
    people: tuple[Person, ...]
    enterprises: tuple[Enterprise, ...]
    devices: tuple[DeviceRegistration, ...]
    by_device: dict[str, DeviceRegistration] = field(default_factory=dict)

    def enterprise(self, enterprise_id: str) -> Enterprise:
        return next(e for e in self.enterprises if e.enterprise_id == enterprise_id)


def load_seed(path: Path = SEED_FILE) -> SeedRegistry:
    doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    areas = tuple(Area.model_validate(area) for area in doc["areas"])
    people = tuple(
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
    )
    enterprises: list[Enterprise] = []
    devices: list[DeviceRegistration] = []
    for e in doc["enterprises"]:
        enterprise = Enterprise(
            enterprise_id=e["id"],
            name=e["name"],
            sector=e["sector"],
            area_codes=tuple(e["areas"]),
            contacts=tuple(Contact.model_validate(c) for c in e.get("contacts", ())),
        )
        enterprises.append(enterprise)
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
                    )
                )
    return SeedRegistry(
        areas=areas,
        people=people,
        enterprises=tuple(enterprises),
        devices=tuple(devices),
        by_device={device.device_id: device for device in devices},
    )
