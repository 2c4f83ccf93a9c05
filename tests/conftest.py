"""How `make test` shares the suite among pytest-xdist's workers (`--dist loadgroup --no-loadscope-reorder`).

- A test module is one unit of work: its module fixtures (a moto server each, moto keeping one state per process)
  are set up on one worker. A module that sets `XDIST_SHARDS = n` is dealt out in n units instead (test i to unit
  i mod n), each of which sets up the module's fixtures for itself: for long runs of independent cases.
- Units start longest first, so a long one does not start last and leave the other worker idle at the end. The
  order comes from `EXPECTED_S`, the slowest modules' wall seconds as measured (`--durations`) on the shared, busy
  machine: only their order matters, a module's weight split among its shards. The rest follow in collection
  order: short units that fill the gaps at the end.
- Tests marked `realtime` assert real-time bounds (seconds-scale deadlines, "within 5 s"); `make test` runs them
  after the rest, alone in one process, so that another worker cannot starve them on a busy machine.
"""

from __future__ import annotations

import pytest

EXPECTED_S: dict[str, float] = {
    "tests/e2e/test_api_schemathesis.py": 1000,
    "tests/integration/test_ingest_faults.py": 660,
    "tests/integration/test_ingest_fuzz.py": 250,
    "tests/functional/test_api_listing_reads.py": 240,
    "tests/integration/test_package.py": 200,
    "tests/e2e/test_make_run.py": 150,
    "tests/integration/test_infra_on_moto.py": 100,
    "tests/functional/test_api_lifecycle.py": 80,
    "tests/e2e/test_pipeline.py": 50,
    "tests/e2e/test_console_oidc.py": 50,
    "tests/functional/test_api_scope.py": 55,
    "tests/functional/test_api_evaluations.py": 55,
    "tests/functional/test_api_rectification.py": 55,
    "tests/functional/test_api_errors.py": 50,
    "tests/functional/test_api_devices.py": 45,
    "tests/functional/test_api_admin.py": 40,
    "tests/functional/test_api_audit.py": 40,
    "tests/functional/test_api_rosters.py": 30,
}


def _unit_of(item: pytest.Item, position: int) -> str:
    module = item.nodeid.split("::", 1)[0]
    shards = getattr(getattr(item, "module", None), "XDIST_SHARDS", 1)
    return module if shards <= 1 else f"{module}#{position % shards}"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    position_in_module: dict[str, int] = {}
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        position = position_in_module.get(module, 0)
        position_in_module[module] = position + 1
        unit = _unit_of(item, position)
        item.add_marker(pytest.mark.xdist_group(unit))
        units.setdefault(unit, []).append(item)
    shards = {
        module: sum(1 for unit in units if unit.partition("#")[0] == module) for module in position_in_module
    }

    def expected_s(unit: str) -> float:
        module = unit.partition("#")[0]
        return EXPECTED_S.get(module, 0.0) / shards[module]

    ordered = sorted(units, key=expected_s, reverse=True)  # stable: the unlisted keep their collection order
    items[:] = [item for unit in ordered for item in units[unit]]
