"""Each handler's wiring builds only what that handler uses: the workflow handlers (the timers' due messages, the
sweeper) and the ingest never build the API's token verifier (jwt) or its user directory (a Cognito client).

Each case wires one handler in a fresh interpreter (a cold container) with every feature configured, records the
boto3 clients built, and reads which modules were imported. The API's own wiring is the control: there, both show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]

WIRE = """
import json, sys
import boto3

built = []
real_client = boto3.client


def spy(service, *args, **kwargs):
    built.append(service)
    return real_client(service, *args, **kwargs)


boto3.client = spy
from chalicelib import bootstrap

getattr(bootstrap, sys.argv[1])()
modules = sorted(m for m in sys.modules if m == "jwt" or m.startswith(("jwt.", "chalicelib.")))
print(json.dumps({"clients": built, "modules": modules}))
"""

ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: wiring makes no calls
    "DYJ_COGNITO_USER_POOL_ID": "ap-northeast-1_pool",
    "DYJ_COGNITO_CLIENT_ID": "client",
    "DYJ_COGNITO_ISSUER": "https://cognito-idp.ap-northeast-1.amazonaws.com/ap-northeast-1_pool",
    "DYJ_COGNITO_JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
    "DYJ_EVIDENCE_BUCKET": "evidence",
    "DYJ_QUARANTINE_BUCKET": "quarantine",
    "DYJ_DISPOSAL_STATE_MACHINE_ARN": "arn:aws:states:ap-northeast-1:123456789012:stateMachine:disposal",
    "DYJ_WARNING_TOPIC_ARN": "arn:aws:sns:ap-northeast-1:123456789012:warnings",
    "DYJ_ESCALATION_TOPIC_ARN": "arn:aws:sns:ap-northeast-1:123456789012:escalations",
}


def wire(handler: str) -> dict[str, Any]:
    """Build `bootstrap.<handler>()` in a fresh interpreter: the clients it built and the modules it imported."""
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("DYJ_", "AWS_"))},
        **ENVIRONMENT,
        "PYTHONPATH": str(PROJECT_DIR),
    }
    done = subprocess.run(
        [sys.executable, "-c", WIRE, handler],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


API_ONLY = ("jwt.", "chalicelib.api", "chalicelib.adapters.identity")


def api_parts(modules: list[str]) -> list[str]:
    return [module for module in modules if module == "jwt" or module.startswith(API_ONLY)]


@pytest.mark.parametrize("handler", ["workflow", "container", "offline_watch"])
def test_the_workflow_and_ingest_wiring_build_no_token_verifier_and_no_cognito_client(handler: str) -> None:
    wired = wire(handler)
    assert "cognito-idp" not in wired["clients"]
    assert api_parts(wired["modules"]) == []


def test_the_workflow_wiring_records_what_fell_due_through_the_warning_actions() -> None:
    wired = wire("workflow")
    assert {"sns", "stepfunctions"} <= set(wired["clients"])
    assert "chalicelib.services.warning_actions" in wired["modules"]


def test_the_api_wiring_builds_its_token_verifier_and_the_user_directory() -> None:
    """The control: the same probe sees jwt and the Cognito client where they belong."""
    wired = wire("api")
    assert "cognito-idp" in wired["clients"]
    assert {"jwt", "chalicelib.api.auth", "chalicelib.adapters.identity"} <= set(wired["modules"])


def test_the_offline_watch_tells_its_warnings_through_the_warning_path_and_the_ingest_tracks_presence() -> None:
    wired = wire("offline_watch")
    assert {"sns", "stepfunctions"} <= set(wired["clients"])
    assert {"chalicelib.services.offline_warnings", "chalicelib.adapters.presence"} <= set(wired["modules"])
    assert "chalicelib.services.presence" in wire("container")["modules"]
