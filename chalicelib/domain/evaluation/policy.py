"""[policy] numbers of the evaluation (DOMAIN.md §6): `Policy.evaluation`; a stage overrides any of them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

_POLICY = ConfigDict(extra="forbid", frozen=True)


class ScoreBands(BaseModel):
    """Lower edges (inclusive) of the bands: ≥ blue is blue, ≥ yellow yellow, ≥ orange orange, below red."""

    model_config = _POLICY
    blue: float = 90.0
    yellow: float = 75.0
    orange: float = 60.0

    @model_validator(mode="after")
    def _descending(self) -> ScoreBands:
        if not self.blue > self.yellow > self.orange:
            raise ValueError("band edges must descend: blue > yellow > orange")
        return self


class RectificationPolicy(BaseModel):
    """[policy] Who gets rectification items (整改事项) when a report is published, what counts as a problem, and
    how long the enterprise has (docs/evaluation.md "通报 and rectification")."""

    model_config = _POLICY
    bands: tuple[str, ...] = ("red", "orange")  # enterprises in these bands rectify
    below_score: float | None = None  # and any enterprise scoring below this (None: bands only)
    days: int = Field(default=30, ge=1)  # the deadline: the end of the local day this many days after publishing
    false_alarm_max: float = Field(default=0.3, ge=0, le=1)  # 误报率 above this is a problem
    disposal_min: float = Field(default=0.9, ge=0, le=1)  # 处置率 below this is a problem
    undeclared_outage_hours_max: float = Field(default=0.0, ge=0)  # undeclared-outage hours above this


class EvaluationPolicy(BaseModel):
    model_config = _POLICY
    repeat_window_s: float = Field(default=86400.0, gt=0)  # same device + risk type raised again within this
    online_target: float = Field(default=0.995, gt=0, le=1)  # the national target for 在线率
    # the safety-state score: 100 - static - capped warning points - missed deadlines - data quality
    start_points: float = 100.0
    major_hazard_points: dict[int, float] = Field(default_factory=lambda: {1: 20.0, 2: 15.0, 3: 10.0, 4: 5.0})
    warning_points: dict[str, float] = Field(
        default_factory=lambda: {"red": 10.0, "orange": 5.0, "yellow": 2.0, "blue": 0.5}
    )
    warning_points_cap: float = Field(default=40.0, ge=0)
    missed_deadline_points: float = Field(default=2.0, ge=0)
    missed_deadline_cap: float | None = Field(default=None, ge=0)  # DOMAIN sets none
    # data quality: points per percentage point of 在线率 below the target, per undeclared-outage hour, capped
    online_shortfall_points_per_pct: float = Field(default=2.0, ge=0)
    undeclared_outage_points_per_hour: float = Field(default=0.5, ge=0)
    data_quality_cap: float = Field(default=20.0, ge=0)
    floor: float = 0.0  # the score never goes below this
    bands: ScoreBands = ScoreBands()
    # 重点检查名单 from an annual result: every enterprise in these bands, plus the bottom share of each sector
    priority_bands: tuple[str, ...] = ("red",)
    priority_bottom_share: float = Field(default=0.1, ge=0, le=1)
    rectification: RectificationPolicy = RectificationPolicy()
