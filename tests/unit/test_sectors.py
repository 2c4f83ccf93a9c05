"""The sector registry (chalicelib/domain/sectors/__init__.py): one line per sector, from which the message union,
the policy's sector section, the engine's models, the default regulators and the Chinese names all derive; and a
sector without a Chinese name cannot be registered."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from chalicelib.domain import levels
from chalicelib.domain.catalog import Policy, build_engine, build_policy, sector_models
from chalicelib.domain.changes import DATA_QUALITY, OFFLINE
from chalicelib.domain.findings import Finding, SectorSpec
from chalicelib.domain.policy import DEPARTMENT_ZH, RoutingPolicy
from chalicelib.domain.sectors import MESSAGE_ADAPTER, DeviceMessage, Sector, SectorEnum, check_registry
from chalicelib.domain.sectors.fire import FireConfig, FireModel
from chalicelib.domain.sectors.pipeline import PipelineConfig, PipelineModel
from chalicelib.domain.state import FLAG_NAMES
from chalicelib.domain.telemetry import STRICT, Envelope
from chalicelib.domain.texts import FLAG_ZH, RISK_TYPE_ZH, MissingChineseNameError, risk_name

CHINESE = re.compile(r"[\u4e00-\u9fff]")
SIX = ("road_transport", "hazchem", "fire", "construction", "chem_pipeline", "oil_gas_pipeline")


def minimal_message(sector: Sector) -> dict[str, Any]:
    return {
        "device_id": "D-1",
        "enterprise_id": "E-1",
        "sector": sector.value,
        "ts": datetime(2026, 6, 1, 2, 0, tzinfo=UTC).isoformat(),
    }


# --- Chinese names: walked over everything a registered sector can emit ------------------------------------------


@pytest.mark.parametrize("sector", list(Sector), ids=str)
def test_every_registered_sector_and_each_of_its_risk_types_has_a_chinese_name(sector: Sector) -> None:
    assert CHINESE.search(sector.zh), sector
    assert sector.spec.risk_types, f"{sector} declares no risk types"
    for risk_type in sector.spec.risk_types:
        name = risk_name(risk_type)
        assert CHINESE.search(name) and name != risk_type, (sector, risk_type)


def test_the_chinese_risk_names_are_exactly_the_declared_risk_types_data_quality_and_offline() -> None:
    declared = {risk_type for sector in Sector for risk_type in sector.spec.risk_types}
    assert set(RISK_TYPE_ZH) == declared | {DATA_QUALITY, OFFLINE}
    assert all(CHINESE.search(name) for name in RISK_TYPE_ZH.values())


def test_a_risk_type_without_a_chinese_name_raises_instead_of_showing_the_code() -> None:
    with pytest.raises(MissingChineseNameError, match="mystery_risk"):
        risk_name("mystery_risk")


def test_every_escalation_flag_has_a_chinese_name() -> None:
    assert set(FLAG_ZH) == set(FLAG_NAMES.values())


# --- derived: the message union, the policy section, the engine's models, the regulators -------------------------


def test_the_registry_holds_the_six_sectors_of_domain_md_first_each_named_by_its_code() -> None:
    assert tuple(sector.value for sector in Sector)[: len(SIX)] == SIX
    assert [sector.name for sector in Sector] == [sector.value.upper() for sector in Sector]
    assert levels.Sector is Sector  # older imports keep working


def test_the_message_union_has_exactly_one_member_per_registered_sector() -> None:
    (union, discriminator) = get_args(DeviceMessage)
    assert get_args(union) == tuple(sector.spec.message for sector in Sector)
    assert discriminator.discriminator == "sector"
    for sector in Sector:
        parsed = MESSAGE_ADAPTER.validate_python(minimal_message(sector))
        assert type(parsed) is sector.spec.message
        assert parsed.sector == sector


def test_an_unregistered_sector_is_no_message() -> None:
    with pytest.raises(ValidationError) as caught:
        MESSAGE_ADAPTER.validate_python({**minimal_message(Sector.FIRE), "sector": "nuclear"})
    assert caught.value.errors()[0]["type"] == "union_tag_invalid"


def test_the_policy_has_one_sector_section_per_registered_sector_with_its_config_defaults() -> None:
    policy = Policy()
    assert tuple(type(policy.sectors).model_fields) == tuple(sector.value for sector in Sector)
    for sector in Sector:
        assert policy.sectors.of(sector) == sector.spec.config()
    with pytest.raises(ValidationError, match="nuclear"):
        build_policy({"sectors": {"nuclear": {}}})


def test_the_engine_has_one_model_per_registered_sector() -> None:
    models = sector_models(Policy())
    assert list(models) == list(Sector)
    assert all(type(models[sector]) is type(sector.spec.build()) for sector in Sector)
    assert build_engine().model(Sector.FIRE).__class__ is FireModel


def test_a_policy_override_reaches_its_sector_model_only() -> None:
    policy = build_policy({"sectors": {"fire": {"empty_pipe_mpa": 0.02}}})
    fire = sector_models(policy)[Sector.FIRE]
    assert isinstance(fire, FireModel) and fire.config == FireConfig(empty_pipe_mpa=0.02)
    assert policy.sectors.of(Sector.HAZCHEM) == Sector.HAZCHEM.spec.config()


def test_the_two_pipeline_sectors_share_one_model_class_with_a_config_each() -> None:
    policy = build_policy({"sectors": {"oil_gas_pipeline": {"near_zone_m": 8.0}}})
    models = sector_models(policy)
    chem, oil_gas = models[Sector.CHEM_PIPELINE], models[Sector.OIL_GAS_PIPELINE]
    assert isinstance(chem, PipelineModel) and isinstance(oil_gas, PipelineModel)
    assert (chem.sector, oil_gas.sector) == (Sector.CHEM_PIPELINE, Sector.OIL_GAS_PIPELINE)
    assert chem.config == PipelineConfig()
    assert oil_gas.config == PipelineConfig(near_zone_m=8.0)


def test_the_default_regulators_of_each_sector_come_from_its_spec() -> None:
    regulators = RoutingPolicy().regulators
    assert regulators == {sector: sector.spec.regulators for sector in Sector}
    assert all(regulators[sector] and set(regulators[sector]) <= set(DEPARTMENT_ZH) for sector in Sector)


# --- a bad registration fails at import --------------------------------------------------------------------------


class ToyMetrics(BaseModel):
    model_config = STRICT
    level_pct: float | None = None


class ToyMessage(Envelope):
    sector: Literal["toy"]
    metrics: ToyMetrics = ToyMetrics()


class OtherToyMessage(Envelope):
    sector: Literal["other_toy"]
    metrics: ToyMetrics = ToyMetrics()


class ToyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    threshold: float = 90.0


class ToyModel:
    stuck_metrics: tuple[str, ...] = ()
    durable_memory: tuple[str, ...] = ()

    def __init__(self, config: ToyConfig | None = None) -> None:
        self.config = config or ToyConfig()

    def evaluate(self, reg: Any, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        return []

    def combine(self, finding: Finding, others: Any) -> None:
        return None


def toy_spec(**changes: Any) -> SectorSpec[ToyConfig]:
    fields: dict[str, Any] = {
        "zh": "玩具",
        "message": ToyMessage,
        "config": ToyConfig,
        "model": ToyModel,
        "risk_types": {"toy_level": "玩具液位"},
        "regulators": ("emergency_bureau",),
    }
    return SectorSpec(**(fields | changes))


def test_a_spec_takes_its_code_from_its_message_literal() -> None:
    spec = toy_spec()
    assert spec.code == "toy"
    assert spec.metric_names == ("level_pct",)
    assert spec.event_codes == ()
    assert isinstance(spec.build(), ToyModel)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"zh": ""}, "sector toy: a Chinese name is required"),
        ({"zh": "Toy"}, "sector toy: a Chinese name is required"),
        ({"risk_types": {"toy_level": ""}}, "risk type toy_level: a Chinese name is required"),
        ({"risk_types": {"toy_level": "toy level"}}, "risk type toy_level: a Chinese name is required"),
        ({"risk_types": {}}, "declare the risk types"),
        ({"risk_types": {"Toy Level": "玩具液位"}}, "lower_snake_case"),
    ],
)
def test_a_spec_without_chinese_names_cannot_be_declared(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        toy_spec(**changes)


def test_a_message_without_a_single_sector_literal_cannot_be_declared() -> None:
    class Loose(Envelope):
        metrics: ToyMetrics = ToyMetrics()

    class Twice(Envelope):
        sector: Literal["a", "b"]

    for message in (Loose, Twice, ToyMetrics):
        with pytest.raises(TypeError):
            toy_spec(message=message)


def test_the_registry_refuses_a_name_other_than_the_code_in_capitals() -> None:
    class Registry(SectorEnum):
        TOYS = toy_spec()

    with pytest.raises(ValueError, match="register toy as TOY"):
        check_registry(Registry)


def test_the_registry_refuses_one_risk_type_with_two_chinese_names() -> None:
    class Registry(SectorEnum):
        TOY = toy_spec()
        OTHER_TOY = toy_spec(message=OtherToyMessage, risk_types={"toy_level": "玩具水位"})

    with pytest.raises(ValueError, match="risk type toy_level is 玩具液位 in toy but 玩具水位 in other_toy"):
        check_registry(Registry)


def test_the_registry_refuses_one_sector_registered_twice() -> None:
    class Registry(SectorEnum):
        TOY = toy_spec()
        OTHER_TOY = toy_spec(zh="另一个玩具")  # the same message, so the same code: an alias of TOY

    with pytest.raises(ValueError, match="OTHER_TOY"):
        check_registry(Registry)


def test_a_sector_is_registered_with_its_spec_only() -> None:
    with pytest.raises(TypeError, match="SectorSpec"):

        class Registry(SectorEnum):
            TOY = "toy"
