"""Every finding a sector test sees is of a risk type its sector's SectorSpec declares (so it has a Chinese name):
each registered model's `evaluate` is checked during these tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib.domain.findings import Finding
from chalicelib.domain.sectors import Sector

Evaluate = Callable[..., list[Finding]]
MODEL_CLASSES = {type(sector.spec.build()) for sector in Sector}


def _declared_only(evaluate: Evaluate) -> Evaluate:
    def checked(model: Any, reg: Any, msg: Any, scratch: dict[str, Any], now_s: float) -> list[Finding]:
        findings = evaluate(model, reg, msg, scratch, now_s)
        undeclared = {finding.risk_type for finding in findings} - set(Sector(reg.sector).spec.risk_types)
        assert not undeclared, (
            f"{reg.sector} emits {sorted(undeclared)}: declare them in its SectorSpec.risk_types"
        )
        return findings

    return checked


@pytest.fixture(autouse=True)
def _every_finding_is_of_a_declared_risk_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for model_class in MODEL_CLASSES:
        monkeypatch.setattr(model_class, "evaluate", _declared_only(model_class.evaluate))
    yield
