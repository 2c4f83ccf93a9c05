"""The sector registry: every sector the platform grades, registered by one line each in `Sector` below.

A sector is one module of this package that ends with a `SectorSpec` (findings.py): its message class, model
config, risk model and Chinese names. Its line here, `NAME = module.SPEC` with NAME its code in capitals (and the
module in the import), is the only other place that names it; everything per sector is derived from this enum:

- the device message union: `DeviceMessage`, `MESSAGE_ADAPTER` (and docs/device-message.schema.json), and its
  msgspec mirror for the fast decode path (`FAST_DECODE`, fast_messages.py);
- the policy's `sectors.<code>` section and the engine's models (catalog.SectorConfigs, catalog.sector_models);
- the Chinese names: `Sector.zh` and texts.risk_name;
- the default regulators per sector (policy.RoutingPolicy.regulators), hence what a department's regulators may
  read and act on (access.sectors_for_department);
- every API model, table key and policy rule that takes a `Sector`.

How to add one: docs/adding-a-sector.md.
"""

from __future__ import annotations

from enum import StrEnum, unique
from typing import Annotated, Any, Self, Union

from pydantic import Field, TypeAdapter

from chalicelib.domain.fast_messages import fast_decoder
from chalicelib.domain.findings import SectorSpec
from chalicelib.domain.sectors import construction, fire, hazchem, pipeline, road_transport
from chalicelib.domain.telemetry import Envelope


class SectorEnum(StrEnum):
    """A StrEnum whose members are declared with their `SectorSpec`: the value is the spec's code."""

    _value_: str
    _spec: SectorSpec[Any]

    def __new__(cls, spec: SectorSpec[Any] | str) -> Self:
        # only called while the class is built; afterwards Sector("fire") looks the member up by its code
        if not isinstance(spec, SectorSpec):
            raise TypeError(f"a sector is registered with its module's SectorSpec, not {spec!r}")
        member = str.__new__(cls, spec.code)
        member._value_ = spec.code
        member._spec = spec
        return member

    @property
    def spec(self) -> SectorSpec[Any]:
        return self._spec

    @property
    def zh(self) -> str:
        return self._spec.zh


@unique
class Sector(SectorEnum):
    ROAD_TRANSPORT = road_transport.SECTOR
    HAZCHEM = hazchem.SECTOR
    FIRE = fire.SECTOR
    CONSTRUCTION = construction.SECTOR
    CHEM_PIPELINE = pipeline.CHEM_PIPELINE
    OIL_GAS_PIPELINE = pipeline.OIL_GAS_PIPELINE


def check_registry(sectors: type[SectorEnum]) -> None:
    """What one spec cannot check alone: each sector is registered once, under its code in capitals, and a risk
    type shared by two sectors has one Chinese name. Raises ValueError at import: bad registrations never ship."""
    if aliases := sorted(set(sectors.__members__) - {sector.name for sector in sectors}):
        raise ValueError(f"{aliases} register a sector a second time")
    risk_zh: dict[str, tuple[str, str]] = {}
    for sector in sectors:
        spec = sector.spec
        if sector.name != spec.code.upper():
            raise ValueError(f"register {spec.code} as {spec.code.upper()} = ..., not {sector.name}")
        for risk_type, name in spec.risk_types.items():
            owner, known = risk_zh.setdefault(risk_type, (spec.code, name))
            if known != name:
                raise ValueError(f"risk type {risk_type} is {known} in {owner} but {name} in {spec.code}")


check_registry(Sector)

DeviceMessage: Any = Annotated[
    Union[tuple(sector.spec.message for sector in Sector)],
    Field(discriminator="sector"),
]
"""One message of any registered sector, told apart by its `sector` field (statically: telemetry.AnyMessage)."""
MESSAGE_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(DeviceMessage)
FAST_DECODE, FAST_SECTORS = fast_decoder([sector.spec.message for sector in Sector])
"""The same union's fast decode path (fast_messages.py): a message, or None for `MESSAGE_ADAPTER` to judge."""
