"""The whole policy in one document, and the engine built from it.

`Policy` gathers the grading rules, deadlines, routing and every sector model's configuration. A stage overrides
any part with a JSON document (settings.policy) merged over the defaults, key by key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, create_model

from chalicelib.domain.declarations import DeclarationPolicy
from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.evaluation.policy import EvaluationPolicy
from chalicelib.domain.findings import SectorModel
from chalicelib.domain.policy import DeadlinePolicy, GradingPolicy, RoutingPolicy, WorkflowPolicy
from chalicelib.domain.presence import OfflineWatchPolicy
from chalicelib.domain.sectors import Sector


class SectorConfigsBase(BaseModel):
    """Every sector model's configuration, one field per registered sector (`sectors.<code>` in a policy file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def of(self, sector: Sector) -> BaseModel:
        config: BaseModel = getattr(self, sector.value)
        return config


def _sector_configs() -> type[SectorConfigsBase]:
    fields: dict[str, Any] = {sector.value: (sector.spec.config, sector.spec.config()) for sector in Sector}
    return create_model("SectorConfigs", __base__=SectorConfigsBase, **fields)


if TYPE_CHECKING:
    SectorConfigs = SectorConfigsBase
else:
    SectorConfigs = _sector_configs()  # its fields come from the registry, so it is built at import


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    grading: GradingPolicy = GradingPolicy()
    deadlines: DeadlinePolicy = DeadlinePolicy()
    routing: RoutingPolicy = RoutingPolicy()
    workflow: WorkflowPolicy = WorkflowPolicy()
    sectors: SectorConfigs = SectorConfigs()
    declarations: DeclarationPolicy = DeclarationPolicy()
    evaluation: EvaluationPolicy = EvaluationPolicy()
    presence: OfflineWatchPolicy = OfflineWatchPolicy()  # docs/offline-watch.md


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
    return {sector: sector.spec.build(policy.sectors.of(sector)) for sector in Sector}


def build_engine(policy: Policy | None = None) -> RiskEngine:
    policy = policy or Policy()
    return RiskEngine(sector_models(policy), policy.grading)
