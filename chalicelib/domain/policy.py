"""Platform policy (DOMAIN.md §3, §4): grading rules, deadlines per level, routing per level/sector/area.

Every number here is a [policy] default; a stage overrides any of them through settings (a JSON document merged
over these defaults), so nothing below is out of an operator's reach.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chalicelib.domain.levels import Level
from chalicelib.domain.roles import AUDIENCE_ROLES, Role
from chalicelib.domain.sectors import Sector
from chalicelib.domain.tampering import TamperPolicy

_POLICY = ConfigDict(extra="forbid", frozen=True)


class Duration(BaseModel):
    """A breach raises when it has lasted `count` consecutive readings or `seconds`, whichever comes first."""

    model_config = _POLICY
    count: int = Field(default=2, ge=1)
    seconds: float = Field(default=30.0, ge=0)


class GradingPolicy(BaseModel):
    model_config = _POLICY
    default_duration: Duration = Duration()
    durations: dict[str, Duration] = Field(default_factory=dict)  # per risk type
    combination_window_s: float = 600.0
    combination_min_level: int = Level.YELLOW  # an "alarming" parameter for the unit rules
    frequent_window_s: float = 86400.0
    frequent_count: int = 3
    context_min_level: int = Level.YELLOW
    static_bump_major_hazard_grades: tuple[int, ...] = (1, 2)
    static_bump_hca_classes: tuple[int, ...] = (3,)
    max_future_skew_s: float = 300.0
    max_past_age_s: float = 86400.0
    stuck_count: int = 30  # identical readings in a row from a noisy analog sensor
    quality_hold_s: float = 3600.0  # a data-quality finding stays this long after the last fault
    tampering: TamperPolicy = TamperPolicy()  # reported settings vs. the registration, manual / bypass periods

    def duration(self, risk_type: str) -> Duration:
        return self.durations.get(risk_type, self.default_duration)


class Deadline(BaseModel):
    model_config = _POLICY
    acknowledge_s: float = Field(gt=0)
    verify_s: float = Field(gt=0)
    clear_s: float = Field(gt=0)
    reminder_s: float = Field(default=0, ge=0)  # repeat a reminder while not acknowledged (0: none)
    # of those, the first `reminder_sms` since the deadlines were armed also text the enterprise's on-duty person;
    # every reminder goes to the enterprise's inbox (docs/delivery.md "Reminders")
    reminder_sms: int = Field(default=0, ge=0)
    confirm_s: float | None = Field(default=None, gt=0)  # duty confirms a clear request (None: no clock)


class DeadlinePolicy(BaseModel):
    """Per level: acknowledge (签收), verify on site and feed back (核实反馈), lower or clear (降级/消警), and
    the duty centre's confirmation of an orange/red clear request (确认消警); yellow and blue close on request."""

    model_config = _POLICY
    red: Deadline = Deadline(
        acknowledge_s=300, verify_s=900, clear_s=7200, reminder_s=120, reminder_sms=2, confirm_s=1800
    )
    orange: Deadline = Deadline(
        acknowledge_s=600, verify_s=1800, clear_s=14400, reminder_s=300, reminder_sms=1, confirm_s=3600
    )
    yellow: Deadline = Deadline(acknowledge_s=1800, verify_s=7200, clear_s=86400, reminder_s=600, reminder_sms=1)
    blue: Deadline = Deadline(acknowledge_s=7200, verify_s=86400, clear_s=259200, reminder_s=1800)

    def for_level(self, level: int) -> Deadline:
        if level >= Level.RED:
            return self.red
        if level == Level.ORANGE:
            return self.orange
        if level == Level.YELLOW:
            return self.yellow
        return self.blue


class WorkflowPolicy(BaseModel):
    """How the disposal timers follow a warning (docs/disposal-workflow.md)."""

    model_config = _POLICY
    archive_ttl_s: int = Field(default=180 * 86400, ge=60)  # how long an archived warning is kept
    early_s: float = Field(default=0.05, ge=0)  # clock skew tolerated: due items this close count as due now
    # a timer woken at most this much before its due time (whole-second waits round down) sleeps the rest in the
    # handler; one woken earlier re-arms for the remainder
    early_wake_s: float = Field(default=1.5, ge=0, le=5)
    sweep_grace_s: float = Field(default=120.0, ge=0)  # an open warning younger than this is left to its start


Audience = Role
"""Who is told of a warning: a receiving role (`roles.AUDIENCE_ROLES`); `RoutedAudience` validates it."""


def _receives_warnings(role: Role) -> Role:
    if role not in AUDIENCE_ROLES:
        raise ValueError(f"{role.value} is never told of warnings")
    return role


RoutedAudience = Annotated[Role, AfterValidator(_receives_warnings)]


class RoutingRule(BaseModel):
    """Adds or removes audiences for a level, optionally only for one sector and/or area."""

    model_config = _POLICY
    level: int = Field(ge=Level.BLUE, le=Level.RED)
    sector: Sector | None = None
    area_code: str | None = None
    add: tuple[RoutedAudience, ...] = ()
    remove: tuple[RoutedAudience, ...] = ()


class Route(BaseModel):
    model_config = _POLICY
    audiences: tuple[RoutedAudience, ...]
    regulators: tuple[str, ...]  # department codes
    areas: tuple[str, ...]


_LEVEL_AUDIENCES: dict[int, tuple[Audience, ...]] = {
    Level.RED: (Audience.ENTERPRISE, Audience.DUTY, Audience.REGULATOR, Audience.AREA, Audience.EMERGENCY),
    Level.ORANGE: (Audience.ENTERPRISE, Audience.DUTY, Audience.REGULATOR, Audience.AREA),
    Level.YELLOW: (Audience.ENTERPRISE, Audience.DUTY),
    Level.BLUE: (Audience.ENTERPRISE,),
}
DEPARTMENT_ZH = {
    "transport_bureau": "区交通运输局",
    "traffic_police": "区公安交管支队",
    "emergency_bureau": "区应急局",
    "fire_rescue": "区消防救援支队",
    "housing_construction": "区住房建设委",
    "development_reform": "区发展改革委",
    "planning_resources": "市规划资源局滨海新区分局",
}


def _sector_regulators() -> dict[Sector, tuple[str, ...]]:
    """Each registered sector's regulators (from its SectorSpec); an unknown department fails the import."""
    regulators = {sector: sector.spec.regulators for sector in Sector}
    for sector, departments in regulators.items():
        if unknown := sorted(set(departments) - set(DEPARTMENT_ZH)):
            raise ValueError(
                f"sector {sector}: unknown regulator departments {unknown} (add them to DEPARTMENT_ZH)"
            )
    return regulators


_SECTOR_REGULATORS = _sector_regulators()
LOWERING_AUDIENCES = (Audience.ENTERPRISE, Audience.DUTY)


class RoutingPolicy(BaseModel):
    model_config = _POLICY
    by_level: dict[int, tuple[RoutedAudience, ...]] = Field(default_factory=lambda: dict(_LEVEL_AUDIENCES))
    regulators: dict[Sector, tuple[str, ...]] = Field(default_factory=lambda: dict(_SECTOR_REGULATORS))
    rules: tuple[RoutingRule, ...] = ()
    data_quality_audiences: tuple[RoutedAudience, ...] = (Audience.ENTERPRISE,)

    def route(self, level: int, sector: Sector, area_codes: tuple[str, ...], lowering: bool = False) -> Route:
        """Who is told of a warning at `level`; a lowering or recovery tells the enterprise and duty only."""
        if lowering:
            audiences = list(LOWERING_AUDIENCES)
        else:
            audiences = list(self.by_level.get(min(level, Level.RED), ()))
            for rule in self.rules:
                if rule.level != level or (rule.sector and rule.sector != sector):
                    continue
                if rule.area_code and rule.area_code not in area_codes:
                    continue
                audiences += [audience for audience in rule.add if audience not in audiences]
                audiences = [audience for audience in audiences if audience not in rule.remove]
        regulators = self.regulators.get(sector, ()) if Audience.REGULATOR in audiences else ()
        areas = area_codes if Audience.AREA in audiences else ()
        return Route(audiences=tuple(audiences), regulators=regulators, areas=areas)
