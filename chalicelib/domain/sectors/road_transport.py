"""Road transport (两客一危一货): GNSS position reports and driver-state (DSM) events, DOMAIN.md §2.1.

Implements the seven rows of the §2.1 table as six risk types. Duration, dedup, static/context modifiers,
frequent alarms and the generic unit combination are the grading engine's job (§3); this module returns raw
levels only. A vehicle is its own unit, so there is no sector-specific combination rule.

Risk types (family):
- ``overspeed`` (speed): limit = lower of the road's and the vehicle's limit, hazmat capped; tiers by road class.
- ``night_speed`` (speed): passenger vehicles at night, plus the 02:00–05:00 long-distance coach rule.
- ``continuous_driving`` (driving_time): driving stretch measured from the reports; reset by a long enough stop.
- ``daily_driving`` (driving_time): driving in the rolling 24 h, kept in a ring of time buckets.
- ``driver_state`` (driver): DSM events, held while they are within their windows.
- ``offline_moving`` (offline): hazardous-goods vehicles that went silent while moving, judged when they return.

Scratch keys (all optional; the whole state stays well under 1.5 KB of JSON):
``t`` last report ts; ``m`` moving at the last report; ``s`` stop-since ts (absent while moving); ``c`` driving
seconds of the current stretch; ``r`` length of the last stop that was too short to reset the stretch; ``b`` ts of
the current stretch's first breach; ``p`` ts of a breach in an earlier stretch; ``w``/``k``/``x`` the daily ring
(seconds per bucket, index of the newest bucket, ring total); ``a``/``o``/``g`` the last GNSS fix's latitude,
longitude and report time (every vehicle: the map's position, ``last_fix``); ``z`` restricted-zone flag (hazmat
only); ``ol`` a held offline judgement [level, gap s, distance m, until ts]; ``d`` DSM memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chalicelib.domain.clock import in_window, local_minute_of_day
from chalicelib.domain.findings import Combination, Finding, SectorSpec, UnitAlarm, normal, rising
from chalicelib.domain.levels import Level
from chalicelib.domain.telemetry import STRICT, Envelope

if TYPE_CHECKING:
    from chalicelib.domain.registry import DeviceRegistration, StaticFactors

# --- registration vocabulary and telemetry (JT/T 808 position report + DSM alarms) ----------------------------

VehicleClass = Literal["coach_long_distance", "coach_tour", "bus_intercity", "hazmat", "heavy_freight"]
PASSENGER_VEHICLES = frozenset({"coach_long_distance", "coach_tour", "bus_intercity"})
RoadClass = Literal["expressway", "urban_expressway", "other"]


class RoadTransportMetrics(BaseModel):
    model_config = STRICT
    speed_kmh: Annotated[float, Field(ge=0, le=220)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    road_limit_kmh: Annotated[float, Field(gt=0, le=150)] | None = None
    road_class: RoadClass | None = None
    in_restricted_zone: bool | None = None  # geofence or restricted-time flag from the platform's map match


class DsmEvent(BaseModel):
    """Driver-state monitoring alarm (JT/T 1078 / Su-standard ADAS-DSM)."""

    model_config = STRICT
    code: Literal["fatigue", "phone", "smoking", "distraction", "abnormal_driver"]
    level: Literal[1, 2] = 1


class RoadTransportMessage(Envelope):
    sector: Literal["road_transport"]
    metrics: RoadTransportMetrics = RoadTransportMetrics()
    events: tuple[DsmEvent, ...] = ()


OVERSPEED = "overspeed"
NIGHT_SPEED = "night_speed"
CONTINUOUS_DRIVING = "continuous_driving"
DAILY_DRIVING = "daily_driving"
DRIVER_STATE = "driver_state"
OFFLINE_MOVING = "offline_moving"

_NORMAL_OVERSPEED = normal(OVERSPEED)
_NORMAL_NIGHT_SPEED = normal(NIGHT_SPEED)
_NORMAL_CONTINUOUS = normal(CONTINUOUS_DRIVING)
_NORMAL_DAILY = normal(DAILY_DRIVING)
_NORMAL_DRIVER_STATE = normal(DRIVER_STATE)
_NORMAL_OFFLINE = normal(OFFLINE_MOVING)

_HAZMAT = "hazmat"
_LONG_DISTANCE_COACH = "coach_long_distance"
_EXPRESSWAYS = frozenset({"expressway", "urban_expressway"})
_EARTH_RADIUS_M = 6_371_000.0
_MAX_TITLE_CHARS = 10
_DAY_MIN = 1440

_DSM_ZH = {
    "fatigue": "疲劳驾驶",
    "phone": "接打电话",
    "smoking": "抽烟",
    "distraction": "分神驾驶",
    "abnormal_driver": "驾驶员异常",
}


class RoadTransportConfig(BaseModel):
    """Every number the road-transport model uses; DOMAIN.md §2.1 values as defaults, overridable per stage.

    Registration values (JT/T 808 terminal parameters 0x0055–0x005C) take precedence over the matching defaults.
    Times of day are minutes after local midnight (Asia/Shanghai); windows may wrap past midnight.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- overspeed: limits (facts) and tiers ([policy]; traffic-law penalty tiers 10 / 20 / 50 %) ---
    default_speed_limit_kmh: float = Field(default=100.0, gt=0)  # neither road nor vehicle limit known
    hazmat_max_speed_kmh: float = Field(default=80.0, gt=0)  # hazardous-goods vehicles never above this
    overspeed_margin_kmh: float = Field(default=5.0, ge=0)  # blue this far below the limit (0x005B default)
    speed_band_kmh: float = Field(default=2.0, ge=0)  # hysteresis: a speed level falls once this far below
    default_road_class: RoadClass = "other"  # tiers used when the report carries no road class
    expressway_orange_over_pct: float = Field(default=10.0, gt=0)
    expressway_red_over_pct: float = Field(default=20.0, gt=0)
    other_yellow_over_pct: float = Field(default=10.0, gt=0)  # below this, over the limit is still blue
    other_orange_over_pct: float = Field(default=20.0, gt=0)
    other_red_over_pct: float = Field(default=50.0, gt=0)

    # --- night ([policy] 22:00–06:00) and the long-distance coach 02:00–05:00 rule (第38条) ---
    night_start_minute: int = Field(default=22 * 60, ge=0, lt=_DAY_MIN)
    night_end_minute: int = Field(default=6 * 60, ge=0, lt=_DAY_MIN)
    night_speed_pct: float = Field(default=80.0, gt=0, le=100)  # passenger night limit, % of the day limit
    coach_curfew_start_minute: int = Field(default=2 * 60, ge=0, lt=_DAY_MIN)
    coach_curfew_end_minute: int = Field(default=5 * 60, ge=0, lt=_DAY_MIN)
    moving_speed_kmh: float = Field(default=5.0, gt=0)  # a report at or above this speed means "moving"

    # --- continuous driving (facts: 4 h day / 2 h night, rest >= 20 min; tiers [policy]) ---
    continuous_limit_day_min: int = Field(default=240, gt=0)  # 0x0057 overrides
    continuous_limit_night_min: int = Field(default=120, gt=0)  # at night: the lower of this and the day limit
    fatigue_margin_min: int = Field(default=30, ge=0)  # blue this long before the limit (0x005C default)
    continuous_orange_over_min: int = Field(default=30, gt=0)
    continuous_red_over_min: int = Field(default=60, gt=0)
    min_rest_min: int = Field(default=20, gt=0)  # a stop this long ends the stretch (0x0059 default)
    max_report_gap_s: float = Field(default=300.0, gt=0)  # at most this much of a gap counts as driving
    repeat_breach_window_s: float = Field(default=24 * 3600.0, gt=0)  # "same shift": earlier breach this recent

    # --- driving per rolling 24 h (fact: 8 h; tiers [policy]) ---
    daily_limit_min: int = Field(default=480, gt=0)  # 0x0058 overrides
    daily_blue_before_min: int = Field(default=60, ge=0)  # blue at limit - this (7 h)
    daily_orange_over_min: int = Field(default=60, gt=0)  # orange above limit + this (9 h)
    daily_red_over_min: int = Field(default=120, gt=0)  # red above limit + this (10 h)
    daily_window_min: int = Field(default=_DAY_MIN, gt=0)
    daily_bucket_min: int = Field(default=30, gt=0)  # ring resolution; must divide the window
    daily_band_min: float = Field(default=5.0, ge=0)  # hysteresis on the rolling total

    # --- driver-state (DSM) events ([policy]) ---
    dsm_level1_window_s: float = Field(default=1800.0, gt=0)  # level-1 events count (and blue holds) this long
    dsm_level1_repeat_count: int = Field(default=3, ge=2, le=10)  # this many level-1 events in the window: yellow
    dsm_level2_hold_s: float = Field(default=1800.0, gt=0)  # orange holds this long after a level-2 event
    dsm_fatigue_repeat_window_s: float = Field(default=3600.0, gt=0)
    dsm_fatigue_repeat_count: int = Field(default=2, ge=2, le=10)  # level-2 fatigue events in the window: red
    dsm_abnormal_hold_s: float = Field(default=1800.0, gt=0)  # red holds this long after abnormal_driver

    # --- hazardous-goods vehicle offline while moving ([policy]) ---
    offline_gap_s: float = Field(default=600.0, gt=0)  # blue: silent longer than this after moving
    offline_long_gap_s: float = Field(default=1800.0, gt=0)  # yellow: silent longer than this
    offline_moved_m: float = Field(default=1000.0, gt=0)  # orange: displaced more than this while silent
    offline_hold_s: float = Field(default=600.0, gt=0)  # a judged gap stands this long after the return

    @model_validator(mode="after")
    def _check_consistency(self) -> RoadTransportConfig:
        if self.daily_window_min % self.daily_bucket_min:
            raise ValueError("daily_bucket_min must divide daily_window_min")
        if self.daily_window_min // self.daily_bucket_min > 96:
            raise ValueError("daily ring too fine: at most 96 buckets per window")
        if not self.expressway_orange_over_pct < self.expressway_red_over_pct:
            raise ValueError("expressway overspeed tiers must increase")
        if not self.other_yellow_over_pct < self.other_orange_over_pct < self.other_red_over_pct:
            raise ValueError("other-road overspeed tiers must increase")
        if not self.continuous_orange_over_min < self.continuous_red_over_min:
            raise ValueError("continuous-driving tiers must increase")
        if not self.daily_orange_over_min < self.daily_red_over_min:
            raise ValueError("daily-driving tiers must increase")
        if not self.offline_gap_s < self.offline_long_gap_s:
            raise ValueError("offline_gap_s must be below offline_long_gap_s")
        return self


def _fit_title(*candidates: str) -> str:
    """The first candidate short enough for an SMS title (the last one is the fallback)."""
    for candidate in candidates:
        if len(candidate) <= _MAX_TITLE_CHARS:
            return candidate
    return candidates[-1][:_MAX_TITLE_CHARS]


def _number(value: float) -> str:
    """1 -> "1", 2.5 -> "2.5", 1.6667 -> "1.7"."""
    return f"{value:.1f}".removesuffix(".0")


def _hours(minutes: float) -> str:
    return _number(minutes / 60)


def _clock(minute: int) -> str:
    """A time of day for a title: 120 -> "2", 150 -> "2:30"."""
    hour, rest = divmod(minute, 60)
    return f"{hour}" if rest == 0 else f"{hour}:{rest:02d}"


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular distance; ample for the kilometre scale of "moved while offline"."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) * 0.5))
    y = math.radians(lat2 - lat1)
    return _EARTH_RADIUS_M * math.hypot(x, y)


class RoadTransportModel:
    """Risk model for road transport vehicles (DOMAIN.md §2.1): coaches, buses, hazmat and heavy freight.

    One device is one vehicle terminal (JT/T 808). Position reports drive the speed rules and the driving-time
    state machine; DSM events drive ``driver_state``. Driving time is a left sum over consecutive reports: the
    interval since the previous report counts as driving when that report was moving, capped at
    ``max_report_gap_s`` (the rest of a longer gap counts as stopped). A stop ends the stretch once it has lasted
    the minimum rest.
    """

    stuck_metrics: tuple[str, ...] = ()  # speed 0 while parked is legitimate
    # Written at once when they change: moving/stopped, stop start, rest, breaches, DSM and zone memory. The
    # running sums (last report, stretch, daily ring) ride on the coalesced state writes: after a restart the
    # stored last report is older, and the gap since it counts as driving while moving (capped), as designed.
    durable_memory: tuple[str, ...] = ("m", "s", "r", "p", "b", "d", "ol", "z")

    def __init__(self, config: RoadTransportConfig | None = None) -> None:
        cfg = self.config = config or RoadTransportConfig()
        self._default_limit = cfg.default_speed_limit_kmh
        self._hazmat_max = cfg.hazmat_max_speed_kmh
        self._margin = cfg.overspeed_margin_kmh
        self._speed_band = cfg.speed_band_kmh
        self._default_expressway = cfg.default_road_class in _EXPRESSWAYS
        self._moving_kmh = cfg.moving_speed_kmh
        self._night = (cfg.night_start_minute, cfg.night_end_minute)
        self._curfew = (cfg.coach_curfew_start_minute, cfg.coach_curfew_end_minute)
        self._night_pct = cfg.night_speed_pct
        self._max_gap = cfg.max_report_gap_s
        self._min_rest_min = cfg.min_rest_min
        self._bucket_s = cfg.daily_bucket_min * 60.0
        self._ring_size = cfg.daily_window_min // cfg.daily_bucket_min + 1  # window + the partial oldest bucket
        self._daily_band_s = cfg.daily_band_min * 60.0
        self._offline_gap_s = cfg.offline_gap_s
        self._continuous_day_min = cfg.continuous_limit_day_min
        self._continuous_night_min = cfg.continuous_limit_night_min
        self._fatigue_margin_min = cfg.fatigue_margin_min
        self._daily_limit_min = cfg.daily_limit_min
        self._daily_blue_before_s = cfg.daily_blue_before_min * 60

        express_orange, express_red = cfg.expressway_orange_over_pct, cfg.expressway_red_over_pct
        other_yellow, other_orange, other_red = (
            cfg.other_yellow_over_pct,
            cfg.other_orange_over_pct,
            cfg.other_red_over_pct,
        )
        near = ("overspeed_near_limit", "接近限速")
        # (reason, title) per level; index 0 is unused.
        self._express_labels = (
            ("", ""),
            near,
            ("overspeed_minor", f"超速{_number(express_orange)}%以下"),
            ("overspeed_moderate", f"超速{_number(express_orange)}%至{_number(express_red)}%"),
            ("overspeed_serious", f"超速{_number(express_red)}%以上"),
        )
        self._other_labels = (
            ("", ""),
            near,
            ("overspeed_moderate", f"超速{_number(other_yellow)}%至{_number(other_orange)}%"),
            ("overspeed_serious", f"超速{_number(other_orange)}%至{_number(other_red)}%"),
            ("overspeed_extreme", f"超速{_number(other_red)}%以上"),
        )
        self._other_minor = ("overspeed_minor", f"超速{_number(other_yellow)}%以下")
        self._express_pcts = (express_orange, express_red)
        self._other_pcts = (other_yellow, other_orange, other_red)
        self._curfew_title = _fit_title(
            f"凌晨{_clock(cfg.coach_curfew_start_minute)}-{_clock(cfg.coach_curfew_end_minute)}时行车",
            "禁行时段行车",
        )
        self._offline_long_title = _fit_title(
            f"危货车辆离线超{_number(cfg.offline_long_gap_s / 60)}分", "危货车辆长时离线"
        )

    # --- the SectorModel contract ---------------------------------------------------------------------------

    def evaluate(
        self, reg: DeviceRegistration, msg: RoadTransportMessage, scratch: dict[str, Any], now_s: float
    ) -> list[Finding]:
        """Grade one report: speed rules when it carries a speed, driving time, DSM state, hazmat offline."""
        static = reg.static
        vehicle = static.vehicle_class
        metrics = msg.metrics
        speed = metrics.speed_kmh
        hazmat = vehicle == _HAZMAT
        minute = local_minute_of_day(now_s)
        start, end = self._night
        night = (
            (start <= minute < end) if start <= end else (minute >= start or minute < end)
        )  # in_window, inlined
        findings: list[Finding] = []
        if speed is not None:
            limit = self._speed_limit(static, metrics.road_limit_kmh, hazmat)
            findings.append(self._overspeed(static, metrics, speed, limit))
            if vehicle in PASSENGER_VEHICLES:
                findings.append(self._night_speed(vehicle, speed, limit, night, minute))
        self._track(static, metrics, speed, hazmat, scratch, now_s)
        findings.append(self._continuous(static, scratch, now_s, night))
        findings.append(self._daily(static, scratch, now_s))
        events = msg.events
        if events or "d" in scratch:
            findings.append(self._driver_state(events, scratch, now_s))
        else:
            findings.append(_NORMAL_DRIVER_STATE)
        if hazmat:
            findings.append(self._offline(scratch, now_s))
        return findings

    def combine(self, finding: Finding, others: Sequence[UnitAlarm]) -> Combination | None:
        """No sector-specific unit rule: a vehicle is its own unit."""
        return None

    def silence_level(self, reg: DeviceRegistration, scratch: dict[str, Any], now_s: float) -> Finding:
        """Grade a hazardous-goods vehicle that has not reported since its last report (scheduled detector).

        Silent for more than ``offline_gap_s`` after a moving report -> blue, more than ``offline_long_gap_s`` ->
        yellow; red when the last report was inside a restricted zone or time. Pure: ``scratch`` is only read.
        """
        last_ts = scratch.get("t")
        if reg.static.vehicle_class != _HAZMAT or last_ts is None or not scratch.get("m"):
            return _NORMAL_OFFLINE
        silent_s = now_s - last_ts
        cfg = self.config
        if silent_s <= cfg.offline_gap_s:
            return _NORMAL_OFFLINE
        level = Level.YELLOW if silent_s > cfg.offline_long_gap_s else Level.BLUE
        if scratch.get("z"):
            level = Level.RED
        return self._offline_finding(level, silent_s, None)

    # --- speed ----------------------------------------------------------------------------------------------

    def _speed_limit(self, static: StaticFactors, road_limit: float | None, hazmat: bool) -> float:
        vehicle_limit = static.max_speed_kmh
        if road_limit is None:
            limit = self._default_limit if vehicle_limit is None else vehicle_limit
        elif vehicle_limit is not None and vehicle_limit < road_limit:
            limit = vehicle_limit
        else:
            limit = road_limit
        if hazmat and limit > self._hazmat_max:
            return self._hazmat_max
        return limit

    def _overspeed(
        self, static: StaticFactors, metrics: RoadTransportMetrics, speed: float, limit: float
    ) -> Finding:
        margin = static.overspeed_margin_kmh
        if margin is None:
            margin = self._margin
        band = self._speed_band
        near = limit - margin
        if speed + band < near:
            return _NORMAL_OVERSPEED
        road_class = metrics.road_class
        expressway = self._default_expressway if road_class is None else road_class in _EXPRESSWAYS
        if expressway:
            orange_pct, red_pct = self._express_pcts
            thresholds = (
                near,
                math.nextafter(limit, math.inf),
                limit + limit * orange_pct / 100,
                limit + limit * red_pct / 100,
            )
            labels = self._express_labels
        else:
            yellow_pct, orange_pct, red_pct = self._other_pcts
            thresholds = (
                near,
                limit + limit * yellow_pct / 100,
                limit + limit * orange_pct / 100,
                limit + limit * red_pct / 100,
            )
            labels = self._other_labels
        level, hold = rising(speed, thresholds, band)
        if level == Level.NONE:
            return Finding(OVERSPEED, Level.NONE, hold, family="speed", tag="overspeed")
        reason, title = labels[level]
        if level == Level.BLUE and speed > limit and not expressway:
            reason, title = self._other_minor
        return Finding(
            OVERSPEED,
            level,
            hold,
            reason=reason,
            title=title,
            value=speed,
            unit="km/h",
            family="speed",
            tag="overspeed",
            params={
                "speed": speed,
                "limit": limit,
                "over_pct": round((speed - limit) * 100 / limit, 1),
                "road_class": road_class or self.config.default_road_class,
            },
        )

    def _night_speed(self, vehicle: str | None, speed: float, limit: float, night: bool, minute: int) -> Finding:
        curfew_start, curfew_end = self._curfew
        curfew = (
            vehicle == _LONG_DISTANCE_COACH
            and speed >= self._moving_kmh
            and in_window(minute, curfew_start, curfew_end)
        )
        night_limit = limit * self._night_pct / 100
        if not curfew and (not night or speed + self._speed_band <= night_limit):
            return _NORMAL_NIGHT_SPEED
        level: int = Level.NONE
        hold: int = Level.NONE
        if night:
            level, hold = rising(
                speed,
                (None, math.nextafter(night_limit, math.inf), math.nextafter(limit, math.inf)),
                self._speed_band,
            )
        if curfew:
            level = hold = Level.RED
        if level == Level.NONE:
            if hold == Level.NONE:
                return _NORMAL_NIGHT_SPEED
            return Finding(NIGHT_SPEED, Level.NONE, hold, family="speed", tag="night_speed")
        if curfew:
            reason, title, tag = "coach_night_curfew_driving", self._curfew_title, "curfew"
        elif level == Level.ORANGE:
            reason, title, tag = "night_speed_over_day_limit", "夜间超日间限速", "night_speed"
        else:
            reason, title, tag = "night_speed_over_night_limit", "夜间超速", "night_speed"
        return Finding(
            NIGHT_SPEED,
            level,
            hold,
            reason=reason,
            title=title,
            value=speed,
            unit="km/h",
            family="speed",
            tag=tag,
            params={"speed": speed, "night_limit": round(night_limit, 1), "day_limit": limit},
        )

    # --- driving time: the report-driven state machine -------------------------------------------------------

    def _track(
        self,
        static: StaticFactors,
        metrics: RoadTransportMetrics,
        speed: float | None,
        hazmat: bool,
        scratch: dict[str, Any],
        now_s: float,
    ) -> None:
        """Advance the moving/stopped state machine, the stretch, the daily ring and (hazmat) the offline check."""
        last_ts = scratch.get("t")
        was_moving: bool = scratch.get("m", False)
        moving = was_moving if speed is None else speed >= self._moving_kmh
        if last_ts is None:
            scratch["t"] = now_s
            scratch["m"] = moving
            if not moving:
                scratch["s"] = now_s
            self._remember_position(metrics, scratch, hazmat, now_s)
            return
        gap = now_s - last_ts
        if gap <= 0:  # a duplicate or a late report: the newer state stands
            return
        if hazmat and gap > self._offline_gap_s:
            self._judge_gap(metrics, scratch, gap, was_moving, now_s)
        self._remember_position(metrics, scratch, hazmat, now_s)
        driven = 0.0
        if was_moving:
            max_gap = self._max_gap
            if gap > max_gap:
                driven = max_gap
                scratch["s"] = last_ts + max_gap  # the uncounted rest of the gap counts as a stop
            else:
                driven = gap
            scratch["c"] = scratch.get("c", 0.0) + driven
        if driven or "w" in scratch:
            self._add_daily(scratch, driven, now_s)
        stop_since = scratch.get("s")
        if stop_since is not None:
            rest = now_s - stop_since
            rest_min = static.min_rest_min or self._min_rest_min
            rested = rest >= rest_min * 60
            if rested and "c" in scratch:
                self._end_stretch(scratch)
            if moving:
                del scratch["s"]
                if not rested and "c" in scratch:
                    scratch["r"] = rest
        elif not moving:
            scratch["s"] = now_s
        scratch["t"] = now_s
        scratch["m"] = moving

    @staticmethod
    def _end_stretch(scratch: dict[str, Any]) -> None:
        """A full rest: the stretch is over; a breach in it becomes the earlier breach of the shift."""
        scratch.pop("c", None)
        scratch.pop("r", None)
        breach = scratch.pop("b", None)
        if breach is not None:
            scratch["p"] = breach

    def _add_daily(self, scratch: dict[str, Any], driven: float, now_s: float) -> None:
        """Add driving seconds to the ring of buckets covering the rolling window; drop the ring when empty."""
        bucket = int(now_s // self._bucket_s)
        size = self._ring_size
        ring: list[float] | None = scratch.get("w")
        if ring is None:
            ring = scratch["w"] = [0] * size
            scratch["k"] = bucket
            scratch["x"] = 0
        newest = scratch["k"]
        if bucket > newest:
            if bucket - newest >= size:
                ring[:] = [0] * size
            else:
                closed = newest % size
                ring[closed] = round(ring[closed])  # closed buckets keep whole seconds: short JSON
                for index in range(newest + 1, bucket + 1):
                    ring[index % size] = 0
            scratch["k"] = bucket
            total = sum(ring)  # recomputed at each bucket change so float drift never builds up
            if not driven and total <= 0:
                del scratch["w"], scratch["k"], scratch["x"]
                return
            scratch["x"] = total
        elif bucket < newest:
            bucket = newest  # a late report: book it in the newest bucket
        if driven:
            ring[bucket % size] += driven
            scratch["x"] += driven

    def _continuous(self, static: StaticFactors, scratch: dict[str, Any], now_s: float, night: bool) -> Finding:
        driven_s: float | None = scratch.get("c")
        if driven_s is None:
            return _NORMAL_CONTINUOUS
        limit_min = static.continuous_driving_limit_min or self._continuous_day_min
        if night and self._continuous_night_min < limit_min:
            limit_min = self._continuous_night_min
        margin_min = static.fatigue_margin_min
        if margin_min is None:
            margin_min = self._fatigue_margin_min
        limit_s = limit_min * 60
        if driven_s < limit_s - margin_min * 60:
            return _NORMAL_CONTINUOUS
        cfg = self.config
        if driven_s > limit_s + cfg.continuous_red_over_min * 60:
            level, over_min = Level.RED, cfg.continuous_red_over_min
        elif driven_s > limit_s + cfg.continuous_orange_over_min * 60:
            level, over_min = Level.ORANGE, cfg.continuous_orange_over_min
        elif driven_s > limit_s:
            level, over_min = Level.YELLOW, 0
        else:
            level, over_min = Level.BLUE, 0
        params: dict[str, Any] = {"driving_min": round(driven_s / 60, 1), "limit_min": limit_min, "night": night}
        short_rest = scratch.get("r")
        if short_rest is not None:
            params["short_rest_min"] = round(short_rest / 60, 1)
        if level == Level.BLUE:
            reason = "continuous_driving_near_limit"
            title = _fit_title(f"连续驾驶近{_hours(limit_min)}小时", "连续驾驶将超时")
        else:
            if "b" not in scratch:
                scratch["b"] = now_s
            earlier = scratch.get("p")
            if earlier is not None and now_s - earlier > cfg.repeat_breach_window_s:
                del scratch["p"]
                earlier = None
            if earlier is not None:
                level = Level.RED
                reason, title = "continuous_driving_repeat", "同班次重复超时驾驶"
                params["earlier_breach_ts"] = earlier
            else:
                reason = (
                    "continuous_driving_over_limit",
                    "continuous_driving_well_over_limit",
                    "continuous_driving_far_over_limit",
                )[level - Level.YELLOW]
                title = _fit_title(f"连续驾驶超{_hours(limit_min + over_min)}小时", "连续驾驶超时")
        return Finding(
            CONTINUOUS_DRIVING,
            level,
            level,
            reason=reason,
            title=title,
            value=round(driven_s / 60, 1),
            unit="min",
            family="driving_time",
            tag="continuous",
            params=params,
        )

    def _daily(self, static: StaticFactors, scratch: dict[str, Any], now_s: float) -> Finding:
        ring: list[float] | None = scratch.get("w")
        if ring is None:
            return _NORMAL_DAILY
        bucket_s = self._bucket_s
        newest = scratch["k"]
        into_bucket = now_s - newest * bucket_s
        # The oldest bucket straddles the window's start: count only its part inside, assuming even spread.
        outside = into_bucket / bucket_s if 0 <= into_bucket < bucket_s else 0.0
        driven_s: float = scratch["x"] - ring[(newest + 1) % self._ring_size] * outside
        limit_min = static.daily_driving_limit_min or self._daily_limit_min
        limit_s = limit_min * 60
        band = self._daily_band_s
        blue_s = limit_s - self._daily_blue_before_s
        if driven_s + band < blue_s:
            return _NORMAL_DAILY
        cfg = self.config
        thresholds = (
            blue_s,
            math.nextafter(limit_s, math.inf),
            math.nextafter(limit_s + cfg.daily_orange_over_min * 60, math.inf),
            math.nextafter(limit_s + cfg.daily_red_over_min * 60, math.inf),
        )
        level, hold = rising(driven_s, thresholds, band)
        if level == Level.NONE:
            return Finding(DAILY_DRIVING, Level.NONE, hold, family="driving_time", tag="daily")
        tier_min = (
            limit_min - cfg.daily_blue_before_min,
            limit_min,
            limit_min + cfg.daily_orange_over_min,
            limit_min + cfg.daily_red_over_min,
        )[level - 1]
        verb = "达" if level == Level.BLUE else "超"
        reason = (
            "daily_driving_near_limit",
            "daily_driving_over_limit",
            "daily_driving_well_over_limit",
            "daily_driving_far_over_limit",
        )[level - 1]
        title = _fit_title(
            f"24小时驾驶{verb}{_hours(tier_min)}小时", f"24h驾驶{verb}{_hours(tier_min)}小时", "24小时驾驶超时"
        )
        return Finding(
            DAILY_DRIVING,
            level,
            hold,
            reason=reason,
            title=title,
            value=round(driven_s / 60, 1),
            unit="min",
            family="driving_time",
            tag="daily",
            params={"driving_min": round(driven_s / 60, 1), "limit_min": limit_min},
        )

    # --- driver-state events --------------------------------------------------------------------------------

    def _driver_state(self, events: tuple[DsmEvent, ...], scratch: dict[str, Any], now_s: float) -> Finding:
        """DSM memory ``scratch["d"]``: ``1`` level-1 event ts (capped), ``c1`` last level-1 code, ``2`` last
        level-2 ts, ``c2`` its code, ``f`` level-2 fatigue ts (capped), ``a`` last abnormal_driver ts."""
        cfg = self.config
        memory: dict[str, Any] = scratch.setdefault("d", {})
        for event in events:
            code = event.code
            if code == "abnormal_driver":
                memory["a"] = max(now_s, memory.get("a", now_s))
            elif event.level == 2:
                memory["2"] = now_s
                memory["c2"] = code
                if code == "fatigue":
                    fatigue: list[float] = memory.setdefault("f", [])
                    fatigue.append(now_s)
                    del fatigue[: -cfg.dsm_fatigue_repeat_count]
            else:
                level1: list[float] = memory.setdefault("1", [])
                level1.append(now_s)
                del level1[: -cfg.dsm_level1_repeat_count]
                memory["c1"] = code

        level1_recent = [ts for ts in memory.get("1", ()) if now_s - ts <= cfg.dsm_level1_window_s]
        fatigue_recent = [ts for ts in memory.get("f", ()) if now_s - ts <= cfg.dsm_fatigue_repeat_window_s]
        abnormal_ts = memory.get("a")
        if abnormal_ts is not None and now_s - abnormal_ts > cfg.dsm_abnormal_hold_s:
            del memory["a"]
            abnormal_ts = None
        level2_ts = memory.get("2")
        if level2_ts is not None and now_s - level2_ts > cfg.dsm_level2_hold_s:
            del memory["2"], memory["c2"]
            level2_ts = None
        if level1_recent:
            memory["1"] = level1_recent
        else:
            memory.pop("1", None)
            memory.pop("c1", None)
        if fatigue_recent:
            memory["f"] = fatigue_recent
        else:
            memory.pop("f", None)
        if not memory:
            del scratch["d"]
            return _NORMAL_DRIVER_STATE

        if abnormal_ts is not None:
            level, reason, title, code = Level.RED, "dsm_abnormal_driver", "驾驶员异常", "abnormal_driver"
        elif len(fatigue_recent) >= cfg.dsm_fatigue_repeat_count:
            level, reason, title, code = Level.RED, "dsm_fatigue_repeated", "重复重度疲劳驾驶", "fatigue"
        elif level2_ts is not None:
            code = memory["c2"]
            level, reason, title = Level.ORANGE, "dsm_level2_event", f"{_DSM_ZH[code]}二级报警"
        elif len(level1_recent) >= cfg.dsm_level1_repeat_count:
            code = memory["c1"]
            level, reason, title = Level.YELLOW, "dsm_level1_repeated", "驾驶行为频繁报警"
        elif level1_recent:
            code = memory["c1"]
            level, reason, title = Level.BLUE, "dsm_level1_event", f"{_DSM_ZH[code]}一级报警"
        else:  # only expired-but-kept entries remain (e.g. a single old fatigue ts): nothing stands
            return _NORMAL_DRIVER_STATE
        return Finding(
            DRIVER_STATE,
            level,
            level,
            reason=reason,
            title=title,
            family="driver",
            tag=code,
            immediate=True,
            params={"code": code, "level1_events": len(level1_recent), "level2_fatigue": len(fatigue_recent)},
        )

    # --- hazardous-goods vehicle offline while moving ---------------------------------------------------------

    @staticmethod
    def _remember_position(
        metrics: RoadTransportMetrics, scratch: dict[str, Any], hazmat: bool, now_s: float
    ) -> None:
        lat, lon = metrics.lat, metrics.lon
        if lat is not None and lon is not None:
            scratch["a"] = lat
            scratch["o"] = lon
            scratch["g"] = now_s
        zone = metrics.in_restricted_zone
        if hazmat and zone is not None:
            scratch["z"] = zone

    def _judge_gap(
        self,
        metrics: RoadTransportMetrics,
        scratch: dict[str, Any],
        gap: float,
        was_moving: bool,
        now_s: float,
    ) -> None:
        """A hazmat vehicle is back after more than ``offline_gap_s``: judge the gap (before positions update)."""
        cfg = self.config
        distance: float | None = None
        last_lat, last_lon = scratch.get("a"), scratch.get("o")
        if last_lat is not None and last_lon is not None and metrics.lat is not None and metrics.lon is not None:
            distance = _distance_m(last_lat, last_lon, metrics.lat, metrics.lon)
        moved = distance is not None and distance > cfg.offline_moved_m
        if not (was_moving or moved):
            return
        level = Level.YELLOW if gap > cfg.offline_long_gap_s else Level.BLUE
        if moved:
            level = Level.ORANGE
        if scratch.get("z") or metrics.in_restricted_zone:
            level = Level.RED
        scratch["ol"] = [
            int(level),
            round(gap),
            None if distance is None else round(distance),
            now_s + cfg.offline_hold_s,
        ]

    def _offline(self, scratch: dict[str, Any], now_s: float) -> Finding:
        judged: list[Any] | None = scratch.get("ol")
        if judged is None:
            return _NORMAL_OFFLINE
        level, gap_s, distance_m, until = judged
        if now_s >= until:
            del scratch["ol"]
            return _NORMAL_OFFLINE
        return self._offline_finding(level, gap_s, distance_m)

    def _offline_finding(self, level: int, gap_s: float, distance_m: float | None) -> Finding:
        if level == Level.RED:
            reason, title = "offline_restricted", "限行区域时段离线"
        elif level == Level.ORANGE:
            reason, title = "offline_moved", "离线期间车辆移动"
        elif level == Level.YELLOW:
            reason, title = "offline_moving_long", self._offline_long_title
        else:
            reason, title = "offline_moving", "危货车辆离线"
        params: dict[str, Any] = {"offline_min": round(gap_s / 60, 1)}
        if distance_m is not None:
            params["moved_m"] = distance_m
        return Finding(
            OFFLINE_MOVING,
            level,
            level,
            reason=reason,
            title=title,
            value=round(gap_s / 60, 1),
            unit="min",
            family="offline",
            tag="offline",
            immediate=True,
            params=params,
        )


SECTOR = SectorSpec(
    zh="道路运输",
    message=RoadTransportMessage,
    config=RoadTransportConfig,
    model=RoadTransportModel,
    risk_types={
        OVERSPEED: "超速",
        NIGHT_SPEED: "夜间超速",
        CONTINUOUS_DRIVING: "连续驾驶超时",
        DAILY_DRIVING: "日累计驾驶超时",
        DRIVER_STATE: "驾驶员状态异常",
        OFFLINE_MOVING: "危货车辆行驶中离线",
    },
    regulators=("transport_bureau", "traffic_police"),
)


@dataclass(frozen=True, slots=True)
class GnssFix:
    """A vehicle's last reported position (WGS-84 degrees) and the time of the report that carried it."""

    lat: float
    lon: float
    at: float  # epoch s


def last_fix(scratch: Mapping[str, Any]) -> GnssFix | None:
    """The last fix the model remembers (a road-transport device state's scratch), or None (no position yet)."""
    lat, lon = scratch.get("a"), scratch.get("o")
    if lat is None or lon is None:
        return None
    at = scratch.get("g", scratch.get("t", 0.0))  # a state written before "g" existed: its last report's time
    return GnssFix(float(lat), float(lon), float(at))
