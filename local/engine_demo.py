"""The engine on its own: a simulated mixed-sector stream graded in memory, warnings printed as they happen
(the Chinese SMS form), then a per-level, per-sector summary. No AWS, no network."""

from __future__ import annotations

import time
from collections import Counter

from chalicelib.domain.catalog import build_policy, sector_models
from chalicelib.domain.changes import ChangeKind
from chalicelib.domain.engine import RiskEngine
from chalicelib.domain.levels import Level, Sector
from chalicelib.domain.rejections import Rejection
from chalicelib.domain.state import DeviceState, UnitState
from chalicelib.domain.texts import sms_text
from local.fleet import Fleet
from local.seed import load_seed

COLOURS = {Level.BLUE: "\033[34m", Level.YELLOW: "\033[33m", Level.ORANGE: "\033[38;5;208m", Level.RED: "\033[31m"}
RESET = "\033[0m"


def run(steps: int = 40, interval_s: float = 10.0, colour: bool = True) -> Counter[tuple[Sector, int]]:
    policy = build_policy()
    engine = RiskEngine(sector_models(policy), policy.grading)
    registry = load_seed()
    fleet = Fleet(registry, seed=11)
    states = {reg.device_id: DeviceState(reg.device_id) for reg in registry.devices}
    units = {reg.unit_id: UnitState(reg.unit_id) for reg in registry.devices}
    raised: Counter[tuple[Sector, int]] = Counter()
    kinds: Counter[str] = Counter()
    start = time.time() - steps * interval_s
    graded = 0
    for message in fleet.run(start, steps, interval_s):
        parsed = engine.parse(message.payload, message.at)
        if isinstance(parsed, Rejection):
            continue
        reg = registry.by_device[parsed.device_id]
        result = engine.grade(reg, states[reg.device_id], units[reg.unit_id], parsed, message.payload)
        if isinstance(result, Rejection):
            continue
        graded += 1
        for change in result:
            kinds[change.kind.value] += 1
            if change.kind in (ChangeKind.RAISE, ChangeKind.LEVEL_UP):
                raised[(change.sector, change.level)] += 1
            level = Level(change.level if change.level else change.previous_level)
            text = sms_text(change, policy.deadlines.for_level(change.level))
            prefix = COLOURS.get(level, "") if colour else ""
            print(f"{prefix}{change.sector.zh:<6} {text}{RESET if colour else ''}")
    print()
    print(f"graded {graded} messages from {len(registry.devices)} devices; changes: {dict(kinds)}")
    header = f"{'sector':<18}" + "".join(f"{Level(lv).zh:>6}" for lv in range(1, 5))
    print(header)
    for sector in Sector:
        row = "".join(f"{raised[(sector, level)]:>8}" for level in range(1, 5))
        print(f"{sector.value:<18}{row}")
    return raised


if __name__ == "__main__":
    run()
