"""Device registration: what a device is, where it belongs, and the values its owner set (DOMAIN.md §2)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.domain.sectors import Sector
from chalicelib.domain.sectors.fire import BuildingClass
from chalicelib.domain.sectors.road_transport import VehicleClass
from chalicelib.domain.telemetry import DeviceId, EnterpriseId, ReportedSetpoint

_MODEL = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Setpoint(ReportedSetpoint):
    """Values the owner registers for one metric; any may be absent (then the sector default applies). The same
    names a device reports in its `config.setpoints` (`ReportedSetpoint`), so that the two compare field by field.

    - tanks (DCS/SIS tag list): ``h``, ``hh``, ``l``, ``ll``
    - gas detectors (GB/T 50493 §5.5.2): ``l1``, ``l2`` (level-1 / level-2 alarm setpoints)
    - pits and formwork (GB 50497 design control values): ``control`` (cumulative), ``rate_control`` (per day)
    - pipelines: ``normal`` (normal operating value), ``maop`` (maximum allowable operating pressure)
    """

    model_config = _MODEL


class StaticFactors(BaseModel):
    """Static risk factors and terminal parameters (JT/T 808 0x0055–0x005C)."""

    model_config = _MODEL
    major_hazard_grade: Annotated[int, Field(ge=1, le=4)] | None = None  # GB 18218
    hca_class: Annotated[int, Field(ge=1, le=3)] | None = None  # GB 32167 高后果区
    vehicle_class: VehicleClass | None = None
    building_class: BuildingClass | None = None
    building_height_m: Annotated[float, Field(ge=0)] | None = None
    building_volume_m3: Annotated[float, Field(ge=0)] | None = None
    max_speed_kmh: Annotated[float, Field(gt=0, le=150)] | None = None  # 0x0055
    continuous_driving_limit_min: Annotated[int, Field(gt=0)] | None = None  # 0x0057
    daily_driving_limit_min: Annotated[int, Field(gt=0)] | None = None  # 0x0058
    min_rest_min: Annotated[int, Field(gt=0)] | None = None  # 0x0059
    overspeed_margin_kmh: Annotated[float, Field(ge=0)] | None = None  # 0x005B
    fatigue_margin_min: Annotated[int, Field(ge=0)] | None = None  # 0x005C
    oel_ppm: Annotated[float, Field(gt=0)] | None = None  # toxic gas occupational exposure limit


class Location(BaseModel):
    """Where a fixed device is (WGS-84 degrees): the site, tank farm, building or valve chamber. A vehicle's
    terminal has none: it reports its position (GNSS) in its messages."""

    model_config = _MODEL
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class DeviceRegistration(BaseModel):
    """A registered device: the enterprise, the unit it belongs to, its kind, areas, setpoints and static factors.

    The unit is the tank farm, building, site, pipeline segment or vehicle; combination rules work within a unit.
    """

    model_config = _MODEL
    device_id: DeviceId
    enterprise_id: EnterpriseId
    enterprise_name: str = Field(min_length=1, max_length=64)
    sector: Sector
    unit_id: str = Field(min_length=1, max_length=64)
    unit_name: str = Field(min_length=1, max_length=32)
    point_name: str = Field(default="", max_length=32)  # e.g. "V-101储罐", "3#塔吊", "津A12345"
    kind: str = Field(min_length=1, max_length=32)
    area_codes: tuple[str, ...] = ()
    setpoints: dict[str, Setpoint] = Field(default_factory=dict)
    static: StaticFactors = StaticFactors()
    location: Location | None = None

    def setpoint(self, metric: str) -> Setpoint:
        return self.setpoints.get(metric) or _NO_SETPOINT

    @property
    def display_name(self) -> str:
        return self.point_name or self.unit_name


_NO_SETPOINT = Setpoint()


Role = Literal["enterprise", "duty", "regulator", "area", "emergency", "admin"]


class Contact(BaseModel):
    """A person at an enterprise who receives its warnings (安全负责人, 值班员)."""

    model_config = _MODEL
    name: str = Field(min_length=1, max_length=32)
    phone: str = Field(pattern=r"^\+?[0-9]{6,15}$")
    role: str = "safety_manager"


class Enterprise(BaseModel):
    model_config = _MODEL
    enterprise_id: EnterpriseId
    name: str = Field(min_length=1, max_length=64)
    sector: Sector
    area_codes: tuple[str, ...] = ()
    contacts: tuple[Contact, ...] = ()
    on_duty: tuple[str, ...] = ()
    """The person ids (role `enterprise`, this enterprise) of its on-duty person(s) (专人, 第十四条), who
    handle its warnings around the clock; empty: none named (its contacts are told)."""


class Person(BaseModel):
    """Someone behind an audience: duty officer, regulator (by department and sectors), area official, bureau, an
    enterprise's on-duty person. For staff, `person_id` is their API user id (the Cognito username), so what the
    delivery path writes for a person (inbox, receipts) is found under the id the API authenticates."""

    model_config = _MODEL
    person_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=32)
    role: Role
    phone: str = Field(pattern=r"^\+?[0-9]{6,15}$")
    department: str | None = None
    sectors: tuple[Sector, ...] = ()
    area_codes: tuple[str, ...] = ()
    enterprise_id: str | None = None


class Area(BaseModel):
    model_config = _MODEL
    code: str = Field(min_length=1, max_length=32)
    name: str
    kind: Literal["dev_zone", "street"]
