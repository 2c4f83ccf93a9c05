"""`python -m local.run` and `python -m local.publish` without a platform: the command lines, the message and
topic the publisher builds, and the refusals (a port in use, no broker). tests/e2e/test_make_run.py runs them."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from local import publish, run

REPOSITORY = Path(__file__).resolve().parents[2]


def _message(*argv: str) -> publish.Message:
    return publish.build(publish.parse_args(list(argv)))


def _doc_example() -> str:
    text = (REPOSITORY / "docs" / "device-protocol.md").read_text(encoding="utf-8")
    found = re.search(r"## Examples\s+```json\n(.*?)```", text, re.DOTALL)
    assert found
    return found.group(1)


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_metrics_are_wrapped_in_the_registered_devices_envelope_on_its_topic() -> None:
    message = _message("--device", "HC01-T1-V1", "--metrics", '{"level_pct": 96.5}', "--seq", "7")
    body = json.loads(message.payload)
    assert message.topic == "dyj/hazchem/E-HC-01/HC01-T1-V1/telemetry"
    assert message.client_id == "HC01-T1-V1"
    assert body["enterprise_id"] == "E-HC-01"
    assert body["sector"] == "hazchem"
    assert body["metrics"] == {"level_pct": 96.5}
    assert body["seq"] == 7
    assert abs(datetime.fromisoformat(body["ts"]).timestamp() - datetime.now().timestamp()) < 60


def test_a_documented_example_keeps_everything_but_its_timestamp_with_now() -> None:
    example = json.loads(_doc_example())
    as_written = _message("--json", json.dumps(example))
    assert json.loads(as_written.payload) == example
    now = json.loads(_message("--json", json.dumps(example), "--now").payload)
    assert now["ts"] != example["ts"]
    assert {k: v for k, v in now.items() if k != "ts"} == {k: v for k, v in example.items() if k != "ts"}
    assert as_written.topic == "dyj/hazchem/E-HC-01/HC01-T1-V1/telemetry"


def test_a_malformed_message_goes_as_it_is_to_its_devices_topic(tmp_path: Path) -> None:
    path = tmp_path / "truncated.json"
    path.write_bytes(b'{"device_id": "HC01-T1-V1", "metr')
    message = _message("--file", str(path), "--device", "HC01-T1-V1")
    assert message.payload == path.read_bytes()
    assert message.topic == "dyj/hazchem/E-HC-01/HC01-T1-V1/telemetry"


def test_an_explicit_topic_wins_over_the_payload() -> None:
    topic = "dyj/hazchem/E-HC-02/HC01-T1-V1/telemetry"
    assert _message("--json", _doc_example(), "--topic", topic).topic == topic


def test_an_unregistered_device_or_bad_json_is_a_usage_error() -> None:
    with pytest.raises(publish.UsageError, match="not a device"):
        _message("--device", "NO-SUCH-DEVICE", "--metrics", "{}")
    with pytest.raises(publish.UsageError, match="not JSON"):
        _message("--device", "HC01-T1-V1", "--metrics", "{level")


def test_publishing_without_a_broker_fails_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    code = publish.main(["--port", str(closed_port), "--device", "HC01-T1-V1", "--metrics", "{}"], io.StringIO())
    assert code == publish.EXIT_NOT_PUBLISHED
    assert "make run" in capsys.readouterr().err


def test_ports_come_from_flags_then_environment_then_the_fixed_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DYJ_RUN_API_PORT", raising=False)
    monkeypatch.setenv("DYJ_RUN_MQTT_PORT", "21883")
    options = run.parse_args(["--aws-port", "25000"], io.StringIO())
    assert (options.api_port, options.mqtt_port, options.aws_port) == (run.DEFAULT_API_PORT, 21883, 25000)
    assert publish.parse_args(["--device", "X", "--metrics", "{}"]).port == 21883
    assert not options.fleet
    assert run.parse_args(["--fleet"], io.StringIO()).fleet


def test_a_port_in_use_stops_the_run_before_anything_starts(
    listening: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(run.StopSignal, "install", lambda self: None)  # keep pytest's own signal handlers
    code = run.main(["--mqtt-port", str(listening), "--api-port", "0", "--aws-port", "0"], io.StringIO())
    assert code == run.EXIT_CANNOT_START
    assert f"--mqtt-port {listening}" in capsys.readouterr().err
