"""Properties of the whole engine (every registered sector model): it never raises, levels stay in range, and every
warning's history is consistent with its events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.domain.catalog import build_engine
from chalicelib.domain.changes import ChangeKind, WarningChange
from chalicelib.domain.levels import Level
from chalicelib.domain.rejections import Rejection
from chalicelib.domain.sectors import Sector
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.texts import risk_name
from local.seed import load_seed
from tests.depth import scaled

REGISTRY = load_seed()
ENGINE = build_engine()
# one device of every kind, several sharing units
UNITS = {"U-RT04-V01", "U-HC01-T1", "U-FR01-B1", "U-CS01", "U-CP01-S1", "U-OG01-S1"}
# and for a sector registered later, the devices of its first unit in the seed
UNITS |= {
    next(d.unit_id for d in REGISTRY.devices if d.sector is sector)
    for sector in set(Sector) - {d.sector for d in REGISTRY.devices if d.unit_id in UNITS}
    if any(d.sector is sector for d in REGISTRY.devices)
}
DEVICES = [d for d in REGISTRY.devices if d.unit_id in UNITS]
T0 = 1_764_370_800.0

METRIC_FIELDS = {sector.value: list(sector.spec.metric_names) for sector in Sector}
EVENT_CODES = {sector.value: list(sector.spec.event_codes) for sector in Sector}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
plausible_number = st.one_of(
    st.floats(min_value=-5, max_value=300, allow_nan=False),
    st.sampled_from([0.0, 5.5, 8.0, 10.8, 13.8, 25.0, 50.0, 90.0, 91.5, 100.0, 110.0, 0.07, 0.1, 6.3, 8.3]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@st.composite
def device_message(draw: st.DrawFn, t: float) -> bytes:
    device = draw(st.sampled_from(DEVICES))
    sector = device.sector.value
    metrics: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(METRIC_FIELDS[sector]), max_size=4, unique=True)):
        if name in ("road_class",):
            metrics[name] = draw(st.sampled_from(["expressway", "urban_expressway", "other", "dirt"]))
        elif name in ("interlock_ok", "limiter_bypassed", "in_restricted_zone"):
            metrics[name] = draw(st.booleans())
        else:
            metrics[name] = draw(plausible_number)
    events = [
        {
            "code": draw(st.sampled_from(EVENT_CODES[sector])),
            **draw(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "level": st.sampled_from([1, 2]),
                        "zone": st.just("1"),
                        "point": st.sampled_from(["A", "B"]),
                        "kind": st.sampled_from(["digging", "damage", "intrusion"]),
                        "distance_m": st.floats(0, 300),
                    },
                )
            ),
        }
        for _ in range(draw(st.integers(0, 2 if EVENT_CODES[sector] else 0)))
    ]
    body: dict[str, Any] = {
        "device_id": device.device_id,
        "enterprise_id": device.enterprise_id,
        "sector": sector,
        "ts": datetime.fromtimestamp(t, UTC).isoformat(),
        "seq": draw(st.integers(0, 50)),
        "metrics": metrics,
    }
    if events:
        body["events"] = events
    if draw(st.booleans()):
        body["context"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "related_offline": st.booleans(),
                    "isolated": st.booleans(),
                    "pouring": st.booleans(),
                    "operating": st.booleans(),
                },
            )
        )
    return json.dumps(body).encode()


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[float, bytes]]:
    t = T0
    out: list[tuple[float, bytes]] = []
    for _ in range(draw(st.integers(1, 60))):
        t += draw(st.sampled_from([0.0, 1.0, 5.0, 30.0, 200.0, 900.0, 4000.0]))
        if draw(st.integers(0, 9)) == 0:
            out.append((t, json.dumps(draw(json_values)).encode()))
        else:
            out.append((t, draw(device_message(t))))
    return out


def run(stream: list[tuple[float, bytes]]) -> list[WarningChange]:
    states = {d.device_id: DeviceState(d.device_id) for d in DEVICES}
    units = {d.unit_id: UnitState(d.unit_id) for d in DEVICES}
    changes: list[WarningChange] = []
    for now, raw in stream:
        parsed = ENGINE.parse(raw, now)
        if isinstance(parsed, Rejection):
            reg = REGISTRY.by_device.get(parsed.device_id or "")
            changes.extend(ENGINE.reject(reg, states.get(parsed.device_id or ""), parsed, now))
            continue
        reg = REGISTRY.by_device[parsed.device_id]
        result = ENGINE.grade(reg, states[reg.device_id], units[reg.unit_id], parsed, raw)
        if not isinstance(result, Rejection):
            changes.extend(result)
    for state in states.values():  # state always round-trips through its stored form
        assert DeviceState.loads(state.device_id, state.dumps()).to_dict() == state.to_dict()
    return changes


@settings(max_examples=scaled(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)))
def test_parse_never_raises_on_any_json_value_or_bytes(raw: bytes) -> None:
    parsed = ENGINE.parse(raw, T0)
    assert isinstance(parsed, Rejection) or parsed.device_id


@settings(
    max_examples=scaled(80),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(streams())
def test_levels_stay_within_blue_to_red_and_every_history_is_consistent(stream: list[tuple[float, bytes]]) -> None:
    changes = run(stream)
    history: dict[str, list[WarningChange]] = {}
    for change in changes:
        assert Level.NONE <= change.level <= Level.RED
        assert Level.NONE <= change.previous_level <= Level.RED
        assert risk_name(change.risk_type) != change.risk_type  # a declared risk type, with its Chinese name
        history.setdefault(change.warning_id, []).append(change)
    for warning_id, events in history.items():
        first, *rest = events
        assert first.kind is ChangeKind.RAISE and first.previous_level == Level.NONE, warning_id
        assert Level.BLUE <= first.level <= Level.RED
        previous = first
        for event in rest:
            assert previous.kind is not ChangeKind.RECOVER, "nothing follows a recovery on the same warning"
            assert event.previous_level == previous.level
            assert event.kind is not ChangeKind.RAISE
            if event.kind is ChangeKind.LEVEL_UP:
                assert event.level > event.previous_level
            elif event.kind is ChangeKind.LEVEL_DOWN:
                assert Level.BLUE <= event.level < event.previous_level
            else:
                assert event.level == Level.NONE
            previous = event
