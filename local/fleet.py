"""Device fleet simulator: realistic normal telemetry for every registered device, scripted incidents that reach
every level in every sector, and bad messages of every kind (for the quarantine).

Time is counted in report steps, so the same script plays in a 3-minute live demo (a step of a few seconds) and in
a long simulated run (a step of 10 s of simulated time).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain.clock import SHANGHAI, local_minute_of_day
from chalicelib.domain.levels import Sector
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.rejections import RejectReason
from local.seed import SeedRegistry

REPLAY_AFTER_S = 6.0
"""The bad-message replay is resent this long after its original."""


def topic_for(sector: str, enterprise_id: str, device_id: str) -> str:
    return f"dyj/{sector}/{enterprise_id}/{device_id}/telemetry"


def iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(SHANGHAI).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Incident:
    device_id: str
    start_step: int
    steps: int
    metrics: dict[str, Any] = field(default_factory=dict)
    events: tuple[dict[str, Any], ...] = ()  # sent at the first step of the incident
    context: dict[str, Any] | None = None
    label: str = ""


@dataclass(frozen=True)
class SimMessage:
    device_id: str
    topic: str
    payload: bytes
    at: float  # when the device sends it: the payload's ts, except for a message resent later
    expected_reject: str | None = None  # the quarantine reason a bad message must get


# Each sector reaches blue, yellow, orange and red (the unit's static factors are chosen so the level shows as is
# where the label says so; hazchem unit U-HC01-* is a grade-2 major hazard and shows +1).
INCIDENTS: tuple[Incident, ...] = (
    # road transport: expressway limit 100 km/h unless hazmat (80)
    Incident("RT01-V01", 3, 3, {"speed_kmh": 97.0}, label="blue: within 5 km/h of the limit"),
    Incident("RT03-V01", 5, 3, {"speed_kmh": 105.0}, label="yellow: over < 10 %"),
    Incident("RT06-V01", 7, 3, {"speed_kmh": 113.0}, label="orange: 10-20 % over"),
    Incident("RT07-V01", 9, 3, {"speed_kmh": 126.0}, label="red: >= 20 % over"),
    Incident("RT08-V02", 11, 2, events=({"code": "phone", "level": 1},), label="blue: one DSM level-1 event"),
    Incident("RT02-V02", 13, 2, events=({"code": "fatigue", "level": 2},), label="orange: DSM level-2"),
    Incident("RT04-V02", 15, 2, events=({"code": "abnormal_driver", "level": 2},), label="red: abnormal driver"),
    # hazardous chemicals
    Incident("HC04-T1-GT1", 3, 4, {"gas_lel_pct": 12.0}, label="blue: >= 10 %LEL"),
    Incident("HC04-T2-GT2", 5, 4, {"gas_lel_pct": 31.0}, label="yellow: level-1"),
    Incident("HC03-T1-GT1", 8, 4, {"gas_lel_pct": 56.0}, label="orange: level-2"),
    Incident("HC06-T1-GT1", 12, 5, {"gas_lel_pct": 58.0}, label="orange then red: level-2 on two detectors"),
    Incident("HC06-T1-GT2", 13, 4, {"gas_lel_pct": 61.0}, label="red: level-2 on two detectors"),
    Incident("HC01-T1-V1", 16, 4, {"level_pct": 91.5}, label="HH on a grade-2 major hazard: orange +1 = red"),
    # fire
    Incident("FR05-B1-FAC", 3, 2, events=({"code": "supervisory", "zone": "1", "point": "S-12"},), label="blue"),
    Incident("FR06-B1-WP", 5, 4, {"static_pressure_mpa": 0.064}, label="yellow: below the minimum 0.07 MPa"),
    Incident("FR03-B1-WP", 8, 4, {"static_pressure_mpa": 0.03}, label="orange: < 50 % of the minimum"),
    Incident(
        "FR01-B1-FAC", 12, 2, events=({"code": "fire_confirmed", "zone": "3", "point": "D-301"},), label="red"
    ),
    # construction
    Incident("CS01-TC1", 3, 4, {"wind_ms": 6.2}, label="blue: wind >= 5.5 m/s"),
    Incident("CS02-TC1", 5, 4, {"wind_ms": 9.1}, label="yellow: wind >= 8.0 m/s"),
    Incident("CS03-TC1", 8, 4, {"load_pct": 104.0}, label="orange: load 100-110 %"),
    Incident("CS04-TC1", 11, 3, {"load_pct": 113.0}, label="red: load >= 110 %"),
    Incident("CS05-FW", 14, 4, {"axial_force_kn": 36.0}, context={"pouring": True}, label="orange during a pour"),
    Incident("CS06-PIT", 16, 2, events=({"code": "collapse"},), label="red: GB 50497 8.0.9 collapse"),
    # hazardous-chemical pipelines
    Incident(
        "CP02-S1-FOS",
        3,
        2,
        events=({"code": "third_party", "kind": "blasting", "distance_m": 120.0, "permit": False},),
        label="blue: blasting 50-200 m without permit",
    ),
    Incident(
        "CP02-S2-FOS",
        5,
        2,
        events=({"code": "third_party", "kind": "works", "distance_m": 22.0},),
        label="yellow: works 5-50 m",
    ),
    Incident(
        "CP03-S1-FOS",
        8,
        2,
        events=({"code": "third_party", "kind": "digging", "distance_m": 3.0},),
        label="orange: digging <= 5 m",
    ),
    Incident("CP02-S1-RTU", 12, 2, events=({"code": "npw_leak"},), label="red: leak confirmed"),
    # long-distance oil and gas pipelines
    Incident("OG02-S2-RTU", 3, 4, {"pressure_mpa": 6.66}, label="blue: pressure +5 %"),
    Incident("OG02-S2-PG", 5, 4, {"gas_lel_pct": 30.0}, label="yellow: valve-pit gas level-1"),
    Incident("OG03-S2-RTU", 8, 4, {"pressure_mpa": 8.3}, label="orange: above MAOP"),
    Incident(
        "OG03-S2-FOS",
        12,
        2,
        events=({"code": "third_party", "kind": "damage", "distance_m": 1.0},),
        label="red: damage",
    ),
)


class Fleet:
    """Generates one report per device per step, in time order, with incidents and bad messages mixed in."""

    def __init__(self, registry: SeedRegistry, seed: int = 1, incidents: tuple[Incident, ...] = INCIDENTS) -> None:
        self.registry = registry
        self.devices = registry.devices
        self._rng = random.Random(seed)
        self._seq: dict[str, int] = {}
        self._phase = {d.device_id: self._rng.random() for d in self.devices}
        self._incidents: dict[str, list[Incident]] = {}
        for incident in incidents:
            self._incidents.setdefault(incident.device_id, []).append(incident)
        self._position: dict[str, tuple[float, float]] = {
            d.device_id: (38.95 + self._rng.random() * 0.3, 117.5 + self._rng.random() * 0.4) for d in self.devices
        }

    # --- normal data -----------------------------------------------------------------------------------------

    def _normal_metrics(self, reg: DeviceRegistration, step: int, at: float) -> dict[str, Any]:
        rng = self._rng
        kind = reg.kind
        phase = self._phase[reg.device_id]
        if kind == "gnss_terminal":
            limit = min(reg.static.max_speed_kmh or 100.0, 80.0 if reg.static.vehicle_class == "hazmat" else 999.0)
            cycle_min = ((at / 60.0) + phase * 105) % 105  # 80 min driving, 25 min rest
            hour = local_minute_of_day(at) / 60
            night = hour >= 22 or hour < 6
            ceiling = min(limit - 8, 0.8 * limit - 6 if night else limit - 8)
            speed = 0.0 if cycle_min >= 80 else max(0.0, min(ceiling, rng.gauss(ceiling - 12, 5)))
            lat, lon = self._position[reg.device_id]
            lat += speed / 3600 * 0.0001 * 10
            self._position[reg.device_id] = (lat, lon)
            return {
                "speed_kmh": round(speed, 1),
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "road_limit_kmh": limit,
                "road_class": "expressway",
            }
        if kind == "gas_detector":
            return {"gas_lel_pct": round(abs(rng.gauss(0.4, 0.4)), 2)}
        if kind == "toxic_detector":
            return {"toxic_ppm": round(abs(rng.gauss(0.3, 0.2)), 2)}
        if kind == "oxygen_detector":
            return {"o2_pct_vol": round(rng.gauss(20.9, 0.05), 2)}
        if kind == "tank_gauge":
            wave = math.sin(step / 40 + phase * 6)
            return {
                "level_pct": round(55 + 10 * wave + rng.gauss(0, 0.2), 2),
                "temperature_c": round(24 + 2 * wave + rng.gauss(0, 0.1), 2),
                "pressure_kpa": round(112 + 5 * wave + rng.gauss(0, 0.5), 2),
                "interlock_ok": True,
            }
        if kind == "fire_controller":
            return {}
        if kind == "water_pressure":
            return {"static_pressure_mpa": round(rng.gauss(0.32, 0.004), 4)}
        if kind == "tower_crane":
            working = rng.random() < 0.7
            return {
                "load_pct": round(rng.uniform(20, 70) if working else rng.uniform(0, 5), 1),
                "moment_pct": round(rng.uniform(20, 70) if working else rng.uniform(0, 5), 1),
                "wind_ms": round(min(4.8, abs(rng.gauss(2.8, 0.8))), 2),
            }
        if kind == "pit_monitor":
            return {
                "cumulative_mm": round(9 + rng.gauss(0, 0.3), 2),
                "rate_mm_d": round(abs(rng.gauss(0.4, 0.1)), 2),
            }
        if kind == "formwork_monitor":
            return {
                "axial_force_kn": round(18 + rng.gauss(0, 0.8), 2),
                "tilt_permille": round(rng.gauss(0.3, 0.1), 3),
            }
        if kind == "pipeline_rtu":
            return {"pressure_mpa": round(rng.gauss(6.3, 0.03), 3), "flow_m3h": round(rng.gauss(500, 3), 1)}
        if kind == "pit_gas":
            return {"gas_lel_pct": round(abs(rng.gauss(0.3, 0.3)), 2)}
        return {}  # fibre sensors report events only; a heartbeat keeps them online

    def _context(self, reg: DeviceRegistration) -> dict[str, Any] | None:
        if reg.kind == "tower_crane":
            return {"operating": True}
        return None

    # --- messages --------------------------------------------------------------------------------------------

    def _payload(
        self, reg: DeviceRegistration, at: float, metrics: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        seq = self._seq.get(reg.device_id, 0) + 1
        self._seq[reg.device_id] = seq
        body: dict[str, Any] = {
            "device_id": reg.device_id,
            "enterprise_id": reg.enterprise_id,
            "sector": reg.sector.value,
            "ts": iso(at),
            "seq": seq,
            "metrics": metrics,
        }
        for key, value in extra.items():
            if value:
                body[key] = value
        return body

    def report(self, reg: DeviceRegistration, step: int, at: float) -> SimMessage:
        metrics = self._normal_metrics(reg, step, at)
        events: list[dict[str, Any]] = []
        context = self._context(reg)
        for incident in self._incidents.get(reg.device_id, ()):
            if incident.start_step <= step < incident.start_step + incident.steps:
                metrics.update(incident.metrics)
                if step == incident.start_step:
                    events.extend(incident.events)
                if incident.context:
                    context = {**(context or {}), **incident.context}
        body = self._payload(reg, at, metrics, events=events, context=context)
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return SimMessage(reg.device_id, topic_for(reg.sector.value, reg.enterprise_id, reg.device_id), data, at)

    def step(self, step: int, at: float, spread_s: float = 0.0) -> Iterator[SimMessage]:
        """One report from every device; with `spread_s`, reports are spread over the step like a real fleet."""
        for index, reg in enumerate(self.devices):
            offset = spread_s * index / max(1, len(self.devices))
            yield self.report(reg, step, at + offset)

    def run(self, start_s: float, steps: int, interval_s: float) -> Iterator[SimMessage]:
        for step in range(steps):
            yield from self.step(step, start_s + step * interval_s, spread_s=interval_s * 0.9)

    # --- bad messages ----------------------------------------------------------------------------------------

    def bad_messages(self, at: float) -> list[SimMessage]:
        """One message of every kind the platform must quarantine, in the order they must be published.

        `expected_reject` names the reason each must be quarantined with; "" marks a good message that a bad one
        needs before it (the original of a replay, the in-order reading before a clock step back): it is graded.
        All are sent at `at` except the replay, which its device resends `REPLAY_AFTER_S` later (after its next
        regular report, in another batch: the platform must catch it against the device's stored state).
        """
        bad = _BadMessages(self, at)
        original = bad.good_reading()
        return [
            original,
            bad.replay_of(original, after_s=REPLAY_AFTER_S),
            *bad.clock_step_back(),
            bad.truncated_json(),
            bad.not_json(),
            bad.metrics_not_an_object(),
            bad.out_of_range(),
            bad.nan_value(),
            bad.unknown_metric(),
            bad.unknown_sector(),
            bad.unknown_event(),
            bad.clock_ahead(),
            bad.clock_behind(),
            bad.unknown_device(),
            bad.foreign_enterprise_topic(),
            bad.spoofed(),
            bad.oversized(),
        ]


class _BadMessages:
    """Constructors of bad messages, one per kind, each tagged with the quarantine reason it must get.

    They use the first gas detector, tank gauge, oxygen detector and vehicle of the registry, plus a gas detector
    of another enterprise; readings that must pass the schema advance the device's sequence like real reports do.
    """

    def __init__(self, fleet: Fleet, at: float) -> None:
        devices = fleet.devices
        self._fleet = fleet
        self._at = at
        self.gas = next(d for d in devices if d.kind == "gas_detector")
        self.tank = next(d for d in devices if d.kind == "tank_gauge")
        self.vehicle = next(d for d in devices if d.sector is Sector.ROAD_TRANSPORT)
        self.oxygen = next(d for d in devices if d.kind == "oxygen_detector")  # only the replay pair uses it
        gas = self.gas
        self.neighbour = next(
            d
            for d in devices
            if d.kind == "gas_detector" and d.sector is gas.sector and d.enterprise_id != gas.enterprise_id
        )

    # --- building blocks

    def _body(
        self, reg: DeviceRegistration, metrics: dict[str, Any], at: float | None = None, **extra: Any
    ) -> dict[str, Any]:
        return self._fleet._payload(reg, self._at if at is None else at, metrics, **extra)

    def _message(self, reg: DeviceRegistration, data: bytes, reason: str, topic: str | None = None) -> SimMessage:
        """`reg` publishes unless `topic` names another device (the simulated sender is the topic's device)."""
        topic = topic or topic_for(reg.sector.value, reg.enterprise_id, reg.device_id)
        return SimMessage(topic.split("/")[3], topic, data, self._at, expected_reject=reason)

    @staticmethod
    def _json(body: dict[str, Any]) -> bytes:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=True).encode()

    # --- good messages the bad ones need

    def good_reading(self) -> SimMessage:
        """A normal oxygen reading: graded (its replay follows later)."""
        return self._message(self.oxygen, self._json(self._body(self.oxygen, {"o2_pct_vol": 20.9})), "")

    # --- sequence and clock

    def replay_of(self, original: SimMessage, after_s: float) -> SimMessage:
        """The same bytes again (same seq and ts), resent `after_s` later: a replay."""
        return replace(original, at=original.at + after_s, expected_reject=RejectReason.REPLAYED.value)

    def clock_step_back(self) -> tuple[SimMessage, SimMessage]:
        """A tank reading, then one two minutes older with the next seq: the device clock stepped back."""
        now = self._message(self.tank, self._json(self._body(self.tank, {"level_pct": 55.0})), "")
        older = self._json(self._body(self.tank, {"level_pct": 50.0}, at=self._at - 120))
        return now, self._message(self.tank, older, RejectReason.OUT_OF_ORDER.value)

    def clock_ahead(self) -> SimMessage:
        body = self._body(self.gas, {"gas_lel_pct": 0.4}, at=self._at + 3600)
        return self._message(self.gas, self._json(body), RejectReason.TIMESTAMP_FUTURE.value)

    def clock_behind(self) -> SimMessage:
        body = self._body(self.gas, {"gas_lel_pct": 0.4}, at=self._at - 3 * 86400)
        return self._message(self.gas, self._json(body), RejectReason.TIMESTAMP_PAST.value)

    # --- not the envelope

    def truncated_json(self) -> SimMessage:
        """A message cut off mid-object."""
        whole = self._json(self._body(self.gas, {"gas_lel_pct": 0.5}))
        return self._message(self.gas, whole[: whole.index(b'"metrics"') + 11], RejectReason.SCHEMA.value)

    def not_json(self) -> SimMessage:
        return self._message(self.gas, b"\xff\xfe not json at all", RejectReason.SCHEMA.value)

    def metrics_not_an_object(self) -> SimMessage:
        body = self._body(self.gas, {}) | {"metrics": None}
        return self._message(self.gas, self._json(body), RejectReason.SCHEMA.value)

    # --- values and names

    def out_of_range(self) -> SimMessage:
        """250 %LEL: beyond any detector's physical range."""
        body = self._body(self.gas, {"gas_lel_pct": 250.0})
        return self._message(self.gas, self._json(body), RejectReason.OUT_OF_RANGE.value)

    def nan_value(self) -> SimMessage:
        """A bare NaN token where the reading belongs."""
        body = self._body(self.gas, {"gas_lel_pct": math.nan})
        return self._message(self.gas, self._json(body), RejectReason.NAN_INF.value)

    def unknown_metric(self) -> SimMessage:
        body = self._body(self.gas, {"radiation_usv": 3.0})
        return self._message(self.gas, self._json(body), RejectReason.UNKNOWN_METRIC.value)

    def unknown_sector(self) -> SimMessage:
        body = self._body(self.gas, {"gas_lel_pct": 0.4}) | {"sector": "nuclear"}
        return self._message(self.gas, self._json(body), RejectReason.UNKNOWN_SECTOR.value)

    def unknown_event(self) -> SimMessage:
        body = self._body(self.vehicle, {}, events=[{"code": "teleport", "level": 1}])
        return self._message(self.vehicle, self._json(body), RejectReason.UNKNOWN_EVENT.value)

    # --- identity

    def unknown_device(self) -> SimMessage:
        """A device nobody registered, on its own consistent topic."""
        ghost = "GHOST-001"
        body = self._body(self.gas, {"gas_lel_pct": 0.4}) | {"device_id": ghost}
        topic = topic_for(self.gas.sector.value, self.gas.enterprise_id, ghost)
        return self._message(self.gas, self._json(body), RejectReason.UNKNOWN_DEVICE.value, topic)

    def oversized(self) -> SimMessage:
        """A well-formed reading padded past the 128 KiB a device message may carry."""
        body = self._body(self.gas, {"gas_lel_pct": 0.4}) | {"msg_id": "x", "padding": "0" * (130 * 1024)}
        return self._message(self.gas, self._json(body), RejectReason.OVERSIZED.value)

    def foreign_enterprise_topic(self) -> SimMessage:
        """A registered device reporting (topic and payload agree) as another enterprise's: spoofed."""
        enterprise = self.neighbour.enterprise_id
        body = self._body(self.gas, {"gas_lel_pct": 0.4}) | {"enterprise_id": enterprise}
        topic = topic_for(self.gas.sector.value, enterprise, self.gas.device_id)
        return self._message(self.gas, self._json(body), RejectReason.SPOOFED.value, topic)

    def spoofed(self) -> SimMessage:
        """Another enterprise's device id in the payload, on this device's topic (which names one device)."""
        body = self._body(self.neighbour, {"gas_lel_pct": 1.0})
        return self._message(self.gas, self._json(body), RejectReason.SPOOFED.value)
