"""How hard the generative tests push. The defaults keep `make test` quick; `DYJ_TEST_DEPTH=5 make test` runs five
times the examples of every property test and five times the fuzz corpus (a deeper run before a release);
`DYJ_TEST_DEPTH=0.25` for a quick local pass (the fuzz corpus then falls below the 20,000 issue 8 asks of CI)."""

from __future__ import annotations

import os

DEPTH = float(os.environ.get("DYJ_TEST_DEPTH", "1"))


def scaled(count: int) -> int:
    """`count` examples (or records) at the default depth, proportionally more or fewer at another."""
    return max(1, round(count * DEPTH))
