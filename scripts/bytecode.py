"""Add bytecode to the deployment zip that `chalice package` wrote, for the runtime the template names.

Lambda's `/var/task` is read-only, so Python never caches bytecode there, and the zip holds sources only (the app
as sources, the dependencies' wheels unpacked without `.pyc`): every cold start would compile each module it
imports, ≈ 0.5 s of CPU for the ingest's (docs/costs.md "Cold start"). The `.pyc` files are unchecked-hash based
(PEP 552): valid whatever the files' times, never rewritten.

Run (scripts/package.sh does): .venv/bin/python -m scripts.bytecode OUT/deployment.zip OUT/sam.json
"""

from __future__ import annotations

import importlib.util
import json
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path


def runtimes(template: Path) -> set[str]:
    resources = json.loads(template.read_text(encoding="utf-8"))["Resources"]
    return {
        str(resource["Properties"]["Runtime"])
        for resource in resources.values()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def add_bytecode(package: Path) -> tuple[int, int]:
    """Compile every `.py` of the zip into its `__pycache__`; (compiled, skipped: sources that do not compile)."""
    compiled = skipped = 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with zipfile.ZipFile(package) as source:
            source.extractall(root)
        for module in sorted(root.rglob("*.py")):
            try:
                py_compile.compile(
                    str(module),
                    cfile=importlib.util.cache_from_source(str(module)),
                    dfile=str(module.relative_to(root)),
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
                compiled += 1
            except py_compile.PyCompileError:
                skipped += 1  # e.g. a package's template files named .py: Python would not import them either
        rewritten = package.with_suffix(".bytecode.zip")
        with zipfile.ZipFile(rewritten, "w", zipfile.ZIP_DEFLATED) as target:
            for file in sorted(path for path in root.rglob("*") if path.is_file()):
                target.write(file, file.relative_to(root))
        rewritten.replace(package)
    return compiled, skipped


def main(argv: list[str]) -> int:
    package, template = Path(argv[0]), Path(argv[1])
    mine = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtimes(template) != {mine}:
        print(f"bytecode: the template's runtimes {sorted(runtimes(template))}, not {mine}", file=sys.stderr)
        return 1
    compiled, skipped = add_bytecode(package)
    print(f"bytecode: {compiled} modules compiled for {mine} into {package} ({skipped} not Python: left)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
