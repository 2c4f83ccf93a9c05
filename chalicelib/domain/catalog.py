"""The whole policy in one document, and the engine built from it.

`Policy` gathers the grading rules, deadlines, routing and every sector model's configuration. A stage overrides
any part with a JSON document (settings.policy) merged over the defaults, key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.findings import SectorModel
from chalicelib.domain.levels import Sector
from chalicelib.domain.policy import DeadlinePolicy, GradingPolicy, RoutingPolicy, WorkflowPolicy
from chalicelib.domain.sectors.construction import ConstructionConfig, ConstructionModel
from chalicelib.domain.sectors.fire import FireConfig, FireModel
from chalicelib.domain.sectors.hazchem import HazchemConfig, HazchemModel
from chalicelib.domain.sectors.pipeline import PipelineConfig, PipelineModel
from chalicelib.domain.sectors.road_transport import RoadTransportConfig, RoadTransportModel


class SectorConfigs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    road_transport: RoadTransportConfig = RoadTransportConfig()
    hazchem: HazchemConfig = HazchemConfig()
    fire: FireConfig = FireConfig()
    construction: ConstructionConfig = ConstructionConfig()
    chem_pipeline: PipelineConfig = PipelineConfig()
    oil_gas_pipeline: PipelineConfig = PipelineConfig()


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    grading: GradingPolicy = GradingPolicy()
    deadlines: DeadlinePolicy = DeadlinePolicy()
    routing: RoutingPolicy = RoutingPolicy()
    workflow: WorkflowPolicy = WorkflowPolicy()
    sectors: SectorConfigs = SectorConfigs()


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_policy(overrides: Mapping[str, Any] | None = None) -> Policy:
    """The default policy with a stage's overrides merged in (validated: a wrong key is an error at start)."""
    if not overrides:
        return Policy()
    return Policy.model_validate(_merge(Policy().model_dump(), overrides))


def sector_models(policy: Policy) -> dict[Sector, SectorModel]:
    configs = policy.sectors
    return {
        Sector.ROAD_TRANSPORT: RoadTransportModel(configs.road_transport),
        Sector.HAZCHEM: HazchemModel(configs.hazchem),
        Sector.FIRE: FireModel(configs.fire),
        Sector.CONSTRUCTION: ConstructionModel(configs.construction),
        Sector.CHEM_PIPELINE: PipelineModel(Sector.CHEM_PIPELINE, configs.chem_pipeline),
        Sector.OIL_GAS_PIPELINE: PipelineModel(Sector.OIL_GAS_PIPELINE, configs.oil_gas_pipeline),
    }


def build_engine(policy: Policy | None = None) -> RiskEngine:
    policy = policy or Policy()
    return RiskEngine(sector_models(policy), policy.grading)
