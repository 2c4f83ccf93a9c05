"""Functional tier: the Chalice app through `chalice.test.Client`, with AWS played by moto's server.

The server is provisioned from infra/resources.json and the demo registry is seeded, so the handlers run the exact
code path they run on AWS: settings from the environment, PynamoDB and boto3 through `AWS_ENDPOINT_URL`.
"""

from collections.abc import Iterator

import pytest

from chalicelib.adapters import dynamo
from chalicelib.adapters.dynamo import DynamoRegistry
from chalicelib.bootstrap import reset
from chalicelib.settings import Settings
from local.aws import Provisioned, provision, reset_moto, start_moto_server
from local.seed import SeedRegistry, load_seed

STAGE = "test"


@pytest.fixture(scope="module")
def infra() -> Iterator[Provisioned]:
    """moto's server, provisioned and seeded, with the app's environment set for the module (restored after).

    Moto keeps its state per process, not per server, so the state is wiped before and after the module.
    """
    server, endpoint_url = start_moto_server()
    reset_moto(endpoint_url)
    try:
        with pytest.MonkeyPatch.context() as env:
            provisioned = provision(endpoint_url, stage=STAGE)
            for name, value in {
                **provisioned.aws_env(),
                **provisioned.env(),
                "DYJ_STAGE": STAGE,
                "POWERTOOLS_METRICS_DISABLED": "true",
            }.items():
                env.setenv(name, value)
            reset()  # the container rewires from this environment on the next invoke
            yield provisioned
        reset()
    finally:
        reset_moto(endpoint_url)
        server.stop()


@pytest.fixture(scope="module")
def seed(infra: Provisioned) -> SeedRegistry:
    registry = load_seed()
    dynamo.bind(Settings.from_env())
    DynamoRegistry.put_many(registry.devices, registry.enterprises, registry.people)
    return registry
