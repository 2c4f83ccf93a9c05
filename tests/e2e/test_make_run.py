"""`make run` as an integrator uses it (docs/local-platform.md): start `python -m local.run` on free ports, read
its banner, publish docs/device-protocol.md's first example with the documented command (`python -m
local.publish`), sign in as the duty officer with the documented flow (docs/mobile-app.md 2.1, plain HTTP against
the printed Cognito endpoint), read the red warning on the wall through the HTTP API, then stop it with SIGTERM:
exit 0 within a bound, every port released.

One run is shared by the module (~15 s on a quiet machine: ~7 s start-up, ~1 s per publish, ~5 s to stop).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.run import READY_LINE, port_free
from local.users import DEMO_PASSWORD, DUTY_USER
from local.waiting import wait_until

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 120.0  # start-up is ~7 s on a quiet machine; a busy one is slower, not wrong
WALL_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


@dataclass
class Run:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        return "\n".join(self.lines)

    def banner(self, label: str) -> str:
        """The first word after `label` on the banner's line for it."""
        found = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", self.output(), re.MULTILINE)
        assert found, f"no {label!r} in the banner:\n{self.output()}"
        return found.group(1)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    api, mqtt, aws = _free_ports(3)
    command = [sys.executable, "-m", "local.run", "--no-colour"]
    command += ["--api-port", str(api), "--mqtt-port", str(mqtt), "--aws-port", str(aws)]
    process = subprocess.Popen(
        command, cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert process.stdout is not None
    running = Run(process, {"api": api, "mqtt": mqtt, "aws": aws})
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            running.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, name="local-run-stdout", daemon=True)
    reader.start()
    try:
        wait_until(
            lambda: READY_LINE in running.lines or process.poll() is not None,
            timeout_s=START_TIMEOUT_S,
            what="python -m local.run printed its banner",
        )
        assert process.poll() is None, f"local.run exited {process.returncode}:\n{running.output()}"
        yield running
    finally:
        if process.poll() is None:
            process.kill()  # a test that failed before stopping it
            process.wait(STOP_TIMEOUT_S)
        reader.join(STOP_TIMEOUT_S)


def _device_protocol_example() -> dict[str, Any]:
    text = (REPOSITORY / "docs" / "device-protocol.md").read_text(encoding="utf-8")
    first = re.search(r"## Examples\s+```json\n(.*?)```", text, re.DOTALL)
    assert first, "docs/device-protocol.md has no JSON example"
    example: dict[str, Any] = json.loads(first.group(1))
    return example


def _publish(run: Run, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "local.publish", "--port", str(run.ports["mqtt"]), *args]
    return subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, timeout=60, check=False)


def _http(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _sign_in(run: Run, username: str) -> str:
    """docs/mobile-app.md 2.1 as written: an unsigned InitiateAuth to the sign-in endpoint the banner prints."""
    body = {
        "AuthFlow": "USER_PASSWORD_AUTH",
        "ClientId": _client_id(run),
        "AuthParameters": {"USERNAME": username, "PASSWORD": DEMO_PASSWORD},
    }
    status, answer = _http(
        run.banner("AWS (moto)") + "/",
        data=json.dumps(body).encode(),
        headers={
            "X-Amz-Target": "AWSCognitoIdentityProviderService.InitiateAuth",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    assert status == 200, answer
    return str(json.loads(answer)["AuthenticationResult"]["IdToken"])


def _client_id(run: Run) -> str:
    found = re.search(r"app client (\S+)", run.output())
    assert found, run.output()
    return found.group(1).rstrip(",")


def test_the_banner_tells_an_integrator_where_everything_is(run: Run) -> None:
    assert run.banner("API base URL") == f"http://127.0.0.1:{run.ports['api']}"
    assert run.banner("MQTT broker") == f"127.0.0.1:{run.ports['mqtt']}"
    assert run.banner("AWS (moto)") == f"http://127.0.0.1:{run.ports['aws']}"
    assert run.banner("topic") == "dyj/{sector}/{enterprise_id}/{device_id}/telemetry"
    assert DEMO_PASSWORD in run.output()
    assert DUTY_USER in run.output()
    assert "python -m local.publish" in run.output()
    status, page = _http(run.banner("console"))
    assert status == 200
    assert "值守大屏" in page.decode()


def test_a_published_red_reading_reaches_the_duty_officer_through_the_api(run: Run) -> None:
    example = _device_protocol_example()
    assert example["device_id"] == "HC01-T1-V1"  # HH on a grade-2 major hazard: red (local/seed/binhai.yaml)
    for _ in range(2):  # a breach raises on its second consecutive reading (docs/device-protocol.md)
        published = _publish(run, "--json", json.dumps(example), "--now")
        assert published.returncode == 0, published.stderr
        assert "dyj/hazchem/E-HC-01/HC01-T1-V1/telemetry" in published.stdout
    token = _sign_in(run, DUTY_USER)

    def red_on_the_wall() -> dict[str, Any] | None:
        status, body = _http(f"{run.banner('API base URL')}/wall", headers={"Authorization": f"Bearer {token}"})
        assert status == 200, body
        items = json.loads(body)["items"]
        return next((w for w in items if w["device_id"] == "HC01-T1-V1" and w["level"] == "red"), None)

    warning = wait_until(red_on_the_wall, timeout_s=WALL_TIMEOUT_S, what="the red warning on the duty wall")
    assert warning["status"] == "raised"
    assert warning["value"] == example["metrics"]["level_pct"]
    wait_until(
        lambda: any("红色" in line and warning["warning_id"] in line for line in run.lines),
        timeout_s=WALL_TIMEOUT_S,
        what="the run's feed printed the raise",
    )


def test_sigterm_stops_it_cleanly_and_frees_the_ports(run: Run) -> None:
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(STOP_TIMEOUT_S) == 0, run.output()
    wait_until(lambda: run.lines and run.lines[-1] == "stopped", timeout_s=5, what="the last line says stopped")
    for name, port in run.ports.items():
        assert port_free(port), f"the {name} port {port} is still bound"
