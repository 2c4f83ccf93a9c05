"""`python -m local.publish`: publish one device message to the local platform's MQTT broker (`make run`), on the
device's topic, as the device would (docs/device-protocol.md "Try it locally").

    python -m local.publish --device HC01-T1-V1 --metrics '{"level_pct": 96.5}'   # from the seed, ts = now
    python -m local.publish --device CP02-S1-RTU --events '[{"code": "npw_leak"}]'  # a red warning at once
    python -m local.publish --json '{"device_id": "HC01-T1-V1", ...}' --now        # a whole message, ts = now
    python -m local.publish --file message.json                                   # as written ('-': stdin)

The topic is `dyj/{sector}/{enterprise_id}/{device_id}/telemetry`: `--topic` when given, else the message's own
`sector`, `enterprise_id` and `device_id`, else the seed registration of `--device` (local/seed/binhai.yaml). The
client id is the device id, as on AWS IoT (locally the broker checks nothing: no TLS, no certificate). QoS 1: it
returns once the broker acknowledged the message (PUBACK). Whether the platform graded or quarantined it, the run's
feed and the API say (`GET /wall`, `GET /warnings`).

Exit codes: 0 published, 1 no broker or no acknowledgement, 2 a bad command line (unknown device, bad JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from local.run import DEFAULT_MQTT_PORT, HOST, PORT_ENV, default_port

ACK_TIMEOUT_S = 10.0
EXIT_NOT_PUBLISHED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    client_id: str


class UsageError(Exception):
    pass


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.publish",
        description="Publish one device message to the local platform's broker (docs/device-protocol.md).",
    )
    whole = parser.add_mutually_exclusive_group()
    whole.add_argument("--json", metavar="JSON", help="a whole message, sent as given (but see --now)")
    whole.add_argument(
        "--file", metavar="PATH", help="a whole message from a file, '-' for stdin (bytes as they are)"
    )
    parser.add_argument("--device", metavar="ID", help="the device; without --json/--file the envelope is its own")
    parser.add_argument("--metrics", metavar="JSON", help="the readings, a JSON object (default {})")
    parser.add_argument("--events", metavar="JSON", help="the events, a JSON array")
    parser.add_argument("--context", metavar="JSON", help="the context, a JSON object")
    parser.add_argument("--seq", type=int, help="the sequence number (default: none)")
    parser.add_argument(
        "--now", action="store_true", help="with --json/--file: set `ts` to now (examples as written)"
    )
    parser.add_argument("--topic", help="publish to this topic instead (e.g. to see `spoofed`)")
    parser.add_argument("--host", default=HOST, help=f"the broker's host (default {HOST})")
    parser.add_argument(
        "--port",
        type=int,
        default=default_port("mqtt", DEFAULT_MQTT_PORT),
        help=f"the broker's port (default ${PORT_ENV['mqtt']} or {DEFAULT_MQTT_PORT}, as make run)",
    )
    args = parser.parse_args(argv)
    built = (args.metrics, args.events, args.context, args.seq)
    if args.json is None and args.file is None and not args.device:
        parser.error("give --device (with --metrics/--events/--context), or a whole message with --json or --file")
    if (args.json is not None or args.file is not None) and any(part is not None for part in built):
        parser.error("--metrics, --events, --context and --seq build a message: not with --json or --file")
    return args


def now_ts() -> str:
    """RFC 3339 with the UTC+8 offset the devices of the seed use, to the millisecond."""
    from local.fleet import iso

    return iso(datetime.now(UTC).timestamp())


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not JSON: {exc}") from exc


def _registration(device_id: str | None) -> Any:
    from local.seed import load_seed

    if not device_id:
        raise UsageError("--device is required here")
    registration = load_seed().by_device.get(device_id)
    if registration is None:
        raise UsageError(f"{device_id} is not a device of local/seed/binhai.yaml (give --topic)")
    return registration


def build(args: argparse.Namespace) -> Message:
    """The topic, the payload's bytes and the client id the command line asks for."""
    body: Any
    if args.json is None and args.file is None:
        registration = _registration(args.device)
        body = {
            "device_id": registration.device_id,
            "enterprise_id": registration.enterprise_id,
            "sector": registration.sector.value,
            "ts": now_ts(),
        }
        if args.seq is not None:
            body["seq"] = args.seq
        body["metrics"] = _json(args.metrics or "{}", "--metrics")
        if args.events:
            body["events"] = _json(args.events, "--events")
        if args.context:
            body["context"] = _json(args.context, "--context")
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        if args.json is not None:
            payload = args.json.encode()
        elif args.file == "-":
            payload = sys.stdin.buffer.read()
        else:
            payload = Path(args.file).read_bytes()
        try:
            body = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None  # a malformed message on purpose: sent as it is, to its device's topic
        if args.now:
            if not isinstance(body, dict):
                raise UsageError("--now needs a JSON object")
            body["ts"] = now_ts()
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    fields = body if isinstance(body, dict) else {}
    device_id = args.device or _text(fields.get("device_id"))
    topic = args.topic or _topic_of(fields) or _topic_of_registration(device_id)
    return Message(topic=topic, payload=payload, client_id=device_id or "dyj-local-publish")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _topic_of(fields: dict[str, Any]) -> str | None:
    from local.fleet import topic_for

    parts = [_text(fields.get(key)) for key in ("sector", "enterprise_id", "device_id")]
    if any(part is None or "/" in part or "+" in part or "#" in part for part in parts):
        return None
    sector, enterprise_id, device_id = (str(part) for part in parts)
    return topic_for(sector, enterprise_id, device_id)


def _topic_of_registration(device_id: str | None) -> str:
    from local.fleet import topic_for

    registration = _registration(device_id)
    return topic_for(registration.sector.value, registration.enterprise_id, registration.device_id)


def publish(message: Message, host: str, port: int) -> bool:
    """Publish with QoS 1; True once the broker acknowledged it."""
    from local.mqtt import Publisher

    publisher = Publisher(host, port, client_id=message.client_id)
    try:
        publisher.publish(message.topic, message.payload)
        return publisher.wait_all_published(timeout=ACK_TIMEOUT_S)
    finally:
        publisher.close()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    from local.mqtt import MqttError

    args = parse_args(argv)
    stream = out or sys.stdout
    try:
        message = build(args)
    except (UsageError, OSError) as exc:
        sys.stderr.write(f"python -m local.publish: {exc}\n")
        return EXIT_USAGE
    try:
        acknowledged = publish(message, args.host, args.port)
    except MqttError as exc:
        sys.stderr.write(f"python -m local.publish: {exc} (is `make run` up? --port, ${PORT_ENV['mqtt']})\n")
        return EXIT_NOT_PUBLISHED
    if not acknowledged:
        sys.stderr.write(f"python -m local.publish: no PUBACK within {ACK_TIMEOUT_S:g} s\n")
        return EXIT_NOT_PUBLISHED
    stream.write(f"published {len(message.payload)} bytes to {message.topic} (QoS 1, acknowledged)\n")
    stream.write(f"{message.payload.decode('utf-8', errors='replace')}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
