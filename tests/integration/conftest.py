"""Shared fixtures for tests against moto's server."""

from collections.abc import Iterator

import pytest

from local.aws import reset_moto, start_moto_server


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """A moto server on a free port for one test module; yields its endpoint URL.

    Moto keeps its state per process, not per server, so the state is wiped before and after the module.
    """
    server, endpoint_url = start_moto_server()
    reset_moto(endpoint_url)
    try:
        yield endpoint_url
    finally:
        reset_moto(endpoint_url)
        server.stop()
