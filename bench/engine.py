"""Engine figures: messages graded per second on one core from raw JSON bytes, and state size per device.

Run: make bench   (or .venv/bin/python -m bench.engine [--messages N] [--devices N])
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from chalicelib.domain.catalog import build_engine
from chalicelib.domain.registry import DeviceRegistration
from chalicelib.domain.rejections import Rejection
from chalicelib.domain.state import DeviceState, UnitState
from local.fleet import Fleet
from local.seed import SeedRegistry, load_seed

START = 1_764_370_800.0  # 2025-11-29 07:00 local: a day shift, then into the evening


def scaled_registry(base: SeedRegistry, devices: int) -> SeedRegistry:
    """Copies of the demo fleet until `devices` devices (each copy its own ids and units)."""
    regs: list[DeviceRegistration] = []
    copy = 0
    while len(regs) < devices:
        for reg in base.devices:
            if len(regs) == devices:
                break
            suffix = f"-{copy}" if copy else ""
            regs.append(
                reg.model_copy(update={"device_id": reg.device_id + suffix, "unit_id": reg.unit_id + suffix})
            )
        copy += 1
    return SeedRegistry(base.areas, base.people, base.enterprises, tuple(regs), {r.device_id: r for r in regs})


def throughput(messages: int) -> None:
    registry = load_seed()
    fleet = Fleet(registry, seed=3)
    steps = messages // len(registry.devices) + 1
    stream = [(m.payload, m.at) for m in fleet.run(START, steps, 10.0)][:messages]
    engine = build_engine()
    regs = registry.by_device
    states: dict[str, DeviceState] = {d: DeviceState(d) for d in regs}
    units: dict[str, UnitState] = {r.unit_id: UnitState(r.unit_id) for r in regs.values()}
    parse, grade = engine.parse, engine.grade
    changes = rejected = 0
    gc.collect()
    began = time.perf_counter()
    for raw, at in stream:
        msg = parse(raw, at)
        if isinstance(msg, Rejection):
            rejected += 1
            continue
        reg = regs[msg.device_id]
        result = grade(reg, states[msg.device_id], units[reg.unit_id], msg, raw)
        if isinstance(result, Rejection):
            rejected += 1
        else:
            changes += len(result)
    elapsed = time.perf_counter() - began
    print(f"messages graded          {len(stream):>10,}  ({len(regs)} devices, six sectors, {steps} reports each)")
    print(f"warning changes          {changes:>10,}   rejected {rejected}")
    print(f"elapsed                  {elapsed:>10.3f} s")
    print(f"throughput (one core)    {len(stream) / elapsed:>10,.0f} messages/s  (target >= 100,000)")
    print(f"per message              {elapsed / len(stream) * 1e6:>10.2f} µs (validation included)")


def state_size(devices: int, steps: int) -> None:
    registry = scaled_registry(load_seed(), devices)
    fleet = Fleet(registry, seed=5)
    engine = build_engine()
    regs = registry.by_device
    states = {d: DeviceState(d) for d in regs}
    units = {r.unit_id: UnitState(r.unit_id) for r in regs.values()}
    for message in fleet.run(START, steps, 60.0):
        msg = engine.parse(message.payload, message.at)
        if isinstance(msg, Rejection):
            continue
        reg = regs[msg.device_id]
        engine.grade(reg, states[msg.device_id], units[reg.unit_id], msg, message.payload)
    sizes = sorted(len(state.dumps().encode()) for state in states.values())
    unit_sizes = sorted(len(unit.dumps().encode()) for unit in units.values())
    p99 = sizes[int(len(sizes) * 0.99) - 1]
    print(f"devices                  {len(sizes):>10,}  after {steps} reports each (1 per simulated minute)")
    print(
        f"state per device (JSON)  mean {statistics.mean(sizes):,.0f} B   p99 {p99:,} B   max {sizes[-1]:,} B"
        "  (target <= 2 KB)"
    )
    print(f"state per unit (JSON)    mean {statistics.mean(unit_sizes):,.0f} B   max {unit_sizes[-1]:,} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=120_000)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--state-steps", type=int, default=240)
    args = parser.parse_args()
    throughput(args.messages)
    state_size(args.devices, args.state_steps)


if __name__ == "__main__":
    main()
