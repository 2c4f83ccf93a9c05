"""The floors of docs/architecture.md, read from the imports: nothing imports upward, services never see the API or
an adapter, adapters take values from the domain and `services/ports.py` only, and share no private helpers."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

CHALICELIB = Path(__file__).resolve().parents[2] / "chalicelib"
AWS_LIBRARIES = ("boto3", "botocore", "pynamodb")


def imports(package: str) -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(file, imported module, imported names) for every import in `chalicelib/<package>/`, lazy ones included."""
    for path in sorted((CHALICELIB / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path.name, alias.name, ()
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path.name, node.module, tuple(alias.name for alias in node.names)


def test_the_domain_imports_only_the_domain_and_no_aws_library() -> None:
    outside = [
        (name, module)
        for name, module, _ in imports("domain")
        if (module.startswith("chalicelib.") and not module.startswith("chalicelib.domain"))
        or module.startswith(AWS_LIBRARIES)
    ]
    assert outside == []


@pytest.mark.parametrize("forbidden", ["chalicelib.api", "chalicelib.adapters", "chalicelib.bootstrap"])
def test_services_never_import_the_api_an_adapter_or_the_wiring(forbidden: str) -> None:
    found = [(name, module) for name, module, _ in imports("services") if module.startswith(forbidden)]
    assert found == []


def test_services_use_no_aws_library() -> None:
    assert [(name, module) for name, module, _ in imports("services") if module.startswith(AWS_LIBRARIES)] == []


def test_adapters_take_from_the_services_only_their_ports() -> None:
    found = [
        (name, module)
        for name, module, _ in imports("adapters")
        if module.startswith(("chalicelib.services", "chalicelib.api")) and module != "chalicelib.services.ports"
    ]
    assert found == []


def test_reports_present_the_domain_only_without_aws() -> None:
    """chalicelib/reports renders a domain EvaluationReport to bytes; storing them is an adapter's job."""
    found = [
        (name, module)
        for name, module, _ in imports("reports")
        if module.startswith(AWS_LIBRARIES)
        or (
            module.startswith("chalicelib.") and not module.startswith(("chalicelib.domain", "chalicelib.reports"))
        )
    ]
    assert found == []


def test_no_module_imports_another_modules_private_names() -> None:
    private = [
        (f"{package}/{name}", module, imported)
        for package in ("adapters", "services", "api", "domain", "reports")
        for name, module, names in imports(package)
        if module.startswith("chalicelib.")
        for imported in names
        if imported.startswith("_")
    ]
    assert private == []
