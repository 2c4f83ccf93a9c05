"""The local platform for one e2e module: started, then stopped with moto emptied, the environment it set restored
and the app's wiring forgotten, so the next module starts from nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.bootstrap import reset
from local.aws import reset_moto
from local.runtime import LocalPlatform, start


@contextmanager
def running_platform(**options: Any) -> Iterator[LocalPlatform]:
    """`local.runtime.start(**options)` for the length of the block."""
    saved_environ = dict(os.environ)
    running = start(**options)
    try:
        yield running
    finally:
        reset_moto(running.endpoint_url)
        running.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
        reset()
