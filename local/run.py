"""`python -m local.run` (`make run`): the local platform of the demo (`local.runtime.start`), kept up until
Ctrl-C or SIGTERM, on fixed ports, for device and app integrators (docs/local-platform.md).

It prints what an integrator needs (the MQTT broker and topic, how a device connects, the API base URL, the
moto endpoint, the demo users and how they sign in), then one line per warning change and escalation the audience
queues receive. `--fleet` adds the demo's simulated fleet (every device reporting every `--step`
seconds, the scripted incidents played again every cycle, no bad messages) and its people acting through the API,
without the demo's scripted story: it runs until stopped.

Exit codes: 0 after a clean stop, 1 when the platform could not start (a port in use), 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Protocol, TextIO

if TYPE_CHECKING:
    from local.actors import ActorEvent
    from local.demo.terminal import Console
    from local.feed import EscalationEntry, FeedEntry
    from local.fleet import Fleet
    from local.runtime import LocalPlatform

HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000  # Chalice's own local server default
DEFAULT_MQTT_PORT = 1883  # MQTT's registered port (plain TCP)
DEFAULT_AWS_PORT = 5000  # moto's server default
PORT_ENV = {"api": "DYJ_RUN_API_PORT", "mqtt": "DYJ_RUN_MQTT_PORT", "aws": "DYJ_RUN_AWS_PORT"}
DEFAULT_STEP_S = 10.0
CYCLE_STEPS = 90  # the fleet plays the scripted incidents again every this many steps (15 min at 10 s)
STOP_TIMEOUT_S = 30.0
RED_EXAMPLE_DEVICE = "CP02-S1-RTU"  # a pipeline RTU of the seed: a confirmed leak is red at once
RED_EXAMPLE_EVENTS = '[{"code": "npw_leak"}]'
READY_LINE = "ready: Ctrl-C (or SIGTERM) stops the platform"
EXIT_CANNOT_START = 1
EXIT_USAGE = 2
_QUIET_LOGGERS = ("dayingji", "local", "amqtt", "transitions", "werkzeug", "botocore", "pynamodb")


@dataclass(frozen=True)
class RunOptions:
    api_port: int = DEFAULT_API_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    aws_port: int = DEFAULT_AWS_PORT
    mqtt_bind: str = HOST
    fleet: bool = False
    step_s: float = DEFAULT_STEP_S
    demo_deadlines: bool = False
    colour: bool = False
    verbose: bool = False


def default_port(name: str, fallback: int) -> int:
    """The port from its environment variable (`PORT_ENV`), else the fixed default."""
    value = os.environ.get(PORT_ENV[name], "")
    return int(value) if value.strip().isdigit() else fallback


def parse_args(argv: Sequence[str] | None = None, out: TextIO | None = None) -> RunOptions:
    parser = argparse.ArgumentParser(
        prog="python -m local.run",
        description="The local platform for integrators, up until Ctrl-C (docs/local-platform.md).",
    )
    ports = (
        ("api", DEFAULT_API_PORT, "the API (Chalice's local server; the console under /console/)"),
        ("mqtt", DEFAULT_MQTT_PORT, "the MQTT broker devices publish to"),
        ("aws", DEFAULT_AWS_PORT, "moto's server: the local AWS (Cognito sign-in, AWS CLI)"),
    )
    for name, fallback, what in ports:
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=default_port(name, fallback),
            metavar="PORT",
            help=f"{what}; default ${PORT_ENV[name]} or {fallback}",
        )
    parser.add_argument(
        "--mqtt-bind",
        default=os.environ.get("DYJ_RUN_MQTT_BIND") or HOST,
        metavar="ADDRESS",
        help=f"the broker's listening address: 0.0.0.0 lets devices on the network connect (default "
        f"$DYJ_RUN_MQTT_BIND or {HOST}; anonymous, no TLS: a trusted network only)",
    )
    parser.add_argument(
        "--fleet", action="store_true", help="add the simulated fleet and people (make run FLEET=1)"
    )
    parser.add_argument(
        "--step",
        type=float,
        default=DEFAULT_STEP_S,
        metavar="SECONDS",
        help=f"with --fleet: every device reports once per step (default {DEFAULT_STEP_S:g})",
    )
    parser.add_argument(
        "--demo-deadlines",
        action="store_true",
        help="the demo's seconds-scale deadlines instead of DOMAIN.md's minutes and hours",
    )
    parser.add_argument("--no-colour", "--no-color", action="store_true", help="plain text, no ANSI colours")
    parser.add_argument("--verbose", action="store_true", help="the handlers' logs too (JSON, on stdout)")
    args = parser.parse_args(argv)
    for name in ("api_port", "mqtt_port", "aws_port"):
        if not 0 <= getattr(args, name) <= 65535:
            parser.error(f"--{name.replace('_', '-')} must be a port number")
    if args.step <= 0:
        parser.error("--step must be positive")
    stream = out or sys.stdout
    return RunOptions(
        api_port=args.api_port,
        mqtt_port=args.mqtt_port,
        aws_port=args.aws_port,
        mqtt_bind=args.mqtt_bind,
        fleet=args.fleet,
        step_s=args.step,
        demo_deadlines=args.demo_deadlines,
        colour=not args.no_colour and "NO_COLOR" not in os.environ and stream.isatty(),
        verbose=args.verbose,
    )


def ports_in_use(options: RunOptions) -> list[str]:
    """The flags whose fixed port is taken (moto's server would wait forever for a port it cannot bind)."""
    wanted = {
        "--api-port": (options.api_port, HOST),
        "--mqtt-port": (options.mqtt_port, options.mqtt_bind),
        "--aws-port": (options.aws_port, HOST),
    }
    return [f"{flag} {port}" for flag, (port, host) in wanted.items() if port and not port_free(port, host)]


def port_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


# --- what the integrator reads ---------------------------------------------------------------------------------


def banner_lines(platform: LocalPlatform, options: RunOptions) -> list[str]:
    from local.users import DEMO_PASSWORD, DUTY_USER

    infra = platform.infra
    client_id = os.environ["DYJ_COGNITO_CLIENT_ID"]
    registry = platform.registry
    users = _users_by_kind(platform)
    sign_in = json.dumps(
        {
            "AuthFlow": "USER_PASSWORD_AUTH",
            "ClientId": client_id,
            "AuthParameters": {"USERNAME": DUTY_USER, "PASSWORD": DEMO_PASSWORD},
        },
        separators=(",", ":"),
    )
    deadlines = "the demo's seconds-scale deadlines" if options.demo_deadlines else "DOMAIN.md's deadlines"
    fleet = (
        f"on: {len(registry.devices)} devices every {options.step_s:g} s, people acting (--fleet)"
        if options.fleet
        else "off (make run FLEET=1 adds it)"
    )
    return [
        "dayingji 大应急 local platform (docs/local-platform.md)",
        "",
        f"  API base URL   {platform.api_url}   (routes as in docs/api.md, without /api; --api-port, "
        f"${PORT_ENV['api']})",
        f"  console        {platform.api_url}/console/",
        f"  MQTT broker    {HOST}:{platform.broker.port}   (plain TCP, MQTT 3.1.1; --mqtt-port, "
        f"${PORT_ENV['mqtt']})",
        *_bind_lines(options.mqtt_bind),
        "  topic          dyj/{sector}/{enterprise_id}/{device_id}/telemetry   (QoS 1; docs/device-protocol.md)",
        "  device auth    locally none: no TLS, no certificate, any client id (use the device id); the topic "
        "names the device (on AWS: X.509 certificate, client id = thing name)",
        f"  AWS (moto)     {platform.endpoint_url}   region {infra.region}, any access key "
        f"(--aws-port, ${PORT_ENV['aws']})",
        f"                 aws --endpoint-url {platform.endpoint_url} --region {infra.region} "
        "dynamodb list-tables",
        f"  Cognito        user pool {os.environ['DYJ_COGNITO_USER_POOL_ID']}, app client {client_id} (public, no "
        "secret; USER_PASSWORD_AUTH)",
        f"  deadlines      {deadlines};  fleet {fleet}",
        "",
        f'  users          password {DEMO_PASSWORD} for every one (docs/api.md "Local use"):',
        *[f"                 {kind:<11}{names}" for kind, names in users],
        "",
        "  publish one device message (a device of local/seed/binhai.yaml, ts = now; this one raises a red "
        "warning):",
        f"    .venv/bin/python -m local.publish --port {platform.broker.port} --device {RED_EXAMPLE_DEVICE} "
        f"--events '{RED_EXAMPLE_EVENTS}'",
        "  sign in (docs/mobile-app.md 2.1) and read the wall:",
        f"    TOKEN=$(curl -s {platform.endpoint_url}/ -H 'X-Amz-Target: "
        "AWSCognitoIdentityProviderService.InitiateAuth' -H 'Content-Type: application/x-amz-json-1.1' "
        f"-d '{sign_in}' | python3 -c 'import json,sys; print(json.load(sys.stdin)"
        '["AuthenticationResult"]["IdToken"])\')',
        f'    curl -s -H "Authorization: Bearer $TOKEN" {platform.api_url}/wall',
        "",
        READY_LINE,
    ]


def _bind_lines(address: str) -> list[str]:
    if address == HOST:
        return []
    return [f"                 listening on {address} (--mqtt-bind): from the network, this machine's address"]


def _users_by_kind(platform: LocalPlatform) -> list[tuple[str, str]]:
    from local.users import ADMIN_USER, area_user, enterprise_user, regulator_user

    registry = platform.registry
    enterprises = [enterprise_user(e.enterprise_id) for e in registry.enterprises]
    departments = sorted({p.department for p in registry.people if p.role == "regulator" and p.department})
    return [
        ("duty", "duty-01, duty-02 (值守中心)"),
        ("emergency", "emg-01, emg-02 (应急管理局)"),
        ("admin", ADMIN_USER),
        ("enterprise", f"ent-<enterprise id>: {', '.join(enterprises[:4])} … ({len(enterprises)})"),
        ("regulator", ", ".join(regulator_user(d) for d in departments) if departments else "reg-<department>"),
        ("area", ", ".join(area_user(a.code) for a in registry.areas)),
    ]


# --- the run ---------------------------------------------------------------------------------------------------


class StopSignal:
    """Ctrl-C and SIGTERM set an event the main thread waits on (no KeyboardInterrupt in the middle of a stop)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: str | None = None

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        self.event.set()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    options = parse_args(argv, out)
    stream = out or sys.stdout
    stop = StopSignal()
    stop.install()
    taken = ports_in_use(options)
    if taken:
        sys.stderr.write(f"python -m local.run: port in use: {', '.join(taken)}; choose another with the flag\n")
        return EXIT_CANNOT_START
    from local.demo.terminal import Console

    console = Console(stream, options.colour)
    console.line("starting the local platform (moto, MQTT broker, rule bridge, pollers, API) …")
    with _quiet(options.verbose):
        return _run(options, console, stop)


def _run(options: RunOptions, console: Console, stop: StopSignal) -> int:
    from local import runtime
    from local.demo.deadlines import demo_policy

    began = time.monotonic()
    platform = runtime.start(
        policy_json=json.dumps(demo_policy(fast=False)) if options.demo_deadlines else None,
        aws_port=options.aws_port,
        mqtt_port=options.mqtt_port,
        mqtt_host=options.mqtt_bind,
        api_port=options.api_port,
    )
    parts: list[_Part] = []
    try:
        parts.append(_Feed(platform, console))
        if options.fleet:
            parts.extend(_fleet_and_people(platform, options, console))
        for part in parts:
            part.start()
        console.line(f"up in {time.monotonic() - began:.1f} s")
        if not stop.event.is_set():  # not when stopped while starting
            console.lines(banner_lines(platform, options))
        while not stop.event.wait(1.0):
            pass
        console.line(f"{stop.received or 'stop'}: stopping …")
    finally:
        for part in reversed(parts):
            with contextlib.suppress(Exception):
                part.stop()
        platform.stop()
    console.line("stopped")
    return 0


class _Part(Protocol):
    """Something that runs beside the platform: started after it, stopped before it."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _Feed:
    def __init__(self, platform: LocalPlatform, console: Console) -> None:
        from chalicelib.domain.texts import short_enterprise
        from local.feed import AUDIENCE_QUEUES, WarningFeed, phone_audiences

        self.console = console
        self.names = {e.enterprise_id: short_enterprise(e.name) for e in platform.registry.enterprises}
        urls = {audience: platform.infra.queue_url(logical) for audience, logical in AUDIENCE_QUEUES.items()}
        self.feed = WarningFeed(
            platform.client("sqs"),
            urls,
            platform.sms_messages,
            phone_audiences(platform.registry),
            self._show,
            on_escalation=self._show_escalation,
        )

    def start(self) -> None:
        self.feed.start()

    def stop(self) -> None:
        self.feed.stop()

    def _show(self, entry: FeedEntry) -> None:
        from local.demo.live_lines import INDENT, feed_lines
        from local.demo.terminal import audiences_zh

        # The demo's first line; the second without its SMS count, which the demo fills from the delivery
        # receipts and a run under load has not got yet when the line prints.
        first = feed_lines(entry, self.console)[0]
        delivered = self.console.paint(f"{INDENT}→ 送达 {audiences_zh(entry.delivered_to)}", "dim")
        self.console.lines([first, delivered])

    def _show_escalation(self, entry: EscalationEntry) -> None:
        from local.demo.live_lines import escalation_lines, shows_reminder

        if entry.is_reminder and not shows_reminder(entry.ordinal):
            return
        enterprise = self.names.get(str(entry.body.get("enterprise_id", "")), "")
        self.console.lines(escalation_lines(entry, self.console, enterprise))


class _People:
    def __init__(self, platform: LocalPlatform, console: Console) -> None:
        from chalicelib.domain.texts import short_enterprise
        from local.actors import ActorCrew

        self.console = console
        self.names = {e.enterprise_id: short_enterprise(e.name) for e in platform.registry.enterprises}
        self.crew = ActorCrew(platform.api_url, platform.registry, self._show)

    def start(self) -> None:
        self.crew.start()

    def stop(self) -> None:
        self.crew.stop()

    def _show(self, event: ActorEvent) -> None:
        from local.demo.live_lines import actor_lines

        enterprise = self.names.get(str(event.before.get("enterprise_id", "")), "")
        self.console.lines(actor_lines(event, self.console, enterprise))


class LiveFleet:
    """Every registered device reports once per step until stopped; the scripted incidents play again every
    `CYCLE_STEPS`. Before a step it waits while more than one step of messages is still in flight (a busy machine
    would otherwise pile up a backlog of stale readings), as the demo's fleet does."""

    def __init__(self, platform: LocalPlatform, fleet: Fleet, step_s: float) -> None:
        self.platform = platform
        self.fleet = fleet
        self.step_s = step_s
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fleet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(STOP_TIMEOUT_S)

    def in_flight(self) -> int:
        from local.demo.observations import ingest_totals

        totals = ingest_totals()
        accounted = totals["graded"] + totals["quarantined"] + self.platform.bridge.counters.errored
        return self.published - accounted

    def _loop(self) -> None:
        publisher = self.platform.publisher("dyj-run-fleet")
        try:
            step = 0
            while not self._stop.is_set():
                started, at = time.monotonic(), time.time()
                for message in self.fleet.step(step % CYCLE_STEPS, at, spread_s=self.step_s * 0.9):
                    if self._stop.wait(max(0.0, started + (message.at - at) - time.monotonic())):
                        return
                    publisher.publish(message.topic, message.payload)
                    self.published += 1
                step += 1
                self._stop.wait(max(0.0, started + self.step_s - time.monotonic()))
                while self.in_flight() > len(self.fleet.devices) and not self._stop.wait(0.5):
                    pass
        finally:
            publisher.close()


def _fleet_and_people(platform: LocalPlatform, options: RunOptions, console: Console) -> list[_Part]:
    from local.fleet import Fleet

    return [LiveFleet(platform, Fleet(platform.registry, seed=1), options.step_s), _People(platform, console)]


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """The handlers log every call and print CloudWatch EMF blobs to stdout: the terminal keeps the banner and
    the feed (the console holds the real stream) unless `--verbose`. Warnings still show, on stderr."""
    if verbose:
        yield
        return
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.WARNING))
    with contextlib.redirect_stdout(_Discard()):
        yield


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


if __name__ == "__main__":
    sys.exit(main())
