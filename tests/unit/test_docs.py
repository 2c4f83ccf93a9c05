"""Documents derived from code stay in step with it."""

from __future__ import annotations

import pytest

from scripts.gen_docs import DOCS, DOCUMENTS


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_generated_document_is_current(name: str) -> None:
    committed = (DOCS / name).read_text(encoding="utf-8")
    assert committed == DOCUMENTS[name](), f"docs/{name} is stale: run .venv/bin/python -m scripts.gen_docs"
