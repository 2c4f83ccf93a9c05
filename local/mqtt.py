"""Embedded MQTT broker (amqtt) and a small QoS-1 publisher (paho-mqtt) for the local runtime.

The broker stands in for AWS IoT Core's message broker: it listens on 127.0.0.1 only, allows anonymous clients,
and runs on its own asyncio loop in a daemon thread so that synchronous code (tests, the simulator, the bridge) can
use it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["Broker", "MqttError", "Publisher", "connect_client", "start_broker"]

logger = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_PRUNE_THRESHOLD = 1024


class MqttError(RuntimeError):
    """The broker could not start, or a client could not connect or publish."""


def _broker_config(host: str, port: int) -> dict[str, Any]:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "timeout_disconnect_delay": 0,
        # Only the anonymous auth plugin: no $SYS topics, no packet logging, no websockets listener.
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


class Broker:
    """A running embedded broker. Create it with `start_broker`; call `stop()` when done."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"mqtt-broker-{port}", daemon=True)
        self._amqtt: Any = None
        self._stopped = False

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start_async(), self._loop)
        try:
            self.port = future.result(timeout=_START_TIMEOUT_S)
        except Exception as exc:
            self._stop_loop()
            raise MqttError(f"MQTT broker did not start on {self.host}:{self.port}: {exc}") from exc
        logger.info("MQTT broker listening on %s:%d", self.host, self.port)

    async def _start_async(self) -> int:
        from amqtt.broker import Broker as AmqttBroker

        self._amqtt = AmqttBroker(_broker_config(self.host, self.port), loop=self._loop)
        await self._amqtt.start()
        return self._bound_port()

    def _bound_port(self) -> int:
        """The port the listener really bound (differs from the requested one when that was 0)."""
        server = self._amqtt._servers["default"]
        sockets = server.instance.sockets
        return int(sockets[0].getsockname()[1])

    def stop(self) -> None:
        """Shut the broker down and join its thread. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._amqtt is not None:
            future = asyncio.run_coroutine_threadsafe(self._amqtt.shutdown(), self._loop)
            try:
                future.result(timeout=_STOP_TIMEOUT_S)
            except Exception:
                logger.exception("MQTT broker shutdown failed")
        self._stop_loop()
        logger.info("MQTT broker on %s:%d stopped", self.host, self.port)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=_STOP_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_broker(port: int = 0, host: str = "127.0.0.1") -> Broker:
    """Start an embedded broker on `host:port` (port 0 picks a free one) and return once it accepts connections."""
    broker = Broker(host, port)
    broker._start()
    return broker


def connect_client(
    host: str,
    port: int,
    client_id: str,
    on_connect: Callable[[paho.Client], None] | None = None,
    timeout: float = _START_TIMEOUT_S,
    configure: Callable[[paho.Client], None] | None = None,
) -> paho.Client:
    """A connected paho client (MQTT 3.1.1, clean session) with its network loop running in a thread.

    `configure` runs before connecting (set `on_message`/`on_subscribe` there, or a fast SUBACK can beat them);
    `on_connect` runs on every successful (re)connection, which is where subscriptions belong.
    """
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=True,
    )
    connected = threading.Event()
    failure: list[str] = []

    def _on_connect(
        cli: paho.Client, _userdata: Any, _flags: paho.ConnectFlags, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            failure.append(str(reason))
        elif on_connect is not None:
            on_connect(cli)
        connected.set()

    if configure is not None:
        configure(client)
    client.on_connect = _on_connect
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise MqttError(f"cannot connect to MQTT broker {host}:{port}: {exc}") from exc
    client.loop_start()
    if not connected.wait(timeout) or failure:
        client.loop_stop()
        client.disconnect()
        raise MqttError(f"MQTT connection to {host}:{port} refused or timed out: {failure or 'timeout'}")
    return client


class Publisher:
    """Publishes with QoS 1 and can wait until every in-flight message has been acknowledged (PUBACK)."""

    def __init__(self, host: str, port: int, client_id: str | None = None) -> None:
        self.client_id = client_id or f"dyj-pub-{uuid.uuid4().hex[:12]}"
        self._client = connect_client(host, port, self.client_id)
        self._lock = threading.Lock()
        self._in_flight: list[paho.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Queue one message; paho sends it in order from its network thread."""
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic!r} failed: {paho.error_string(info.rc)}")
        with self._lock:
            self._in_flight.append(info)
            if len(self._in_flight) >= _PRUNE_THRESHOLD:
                self._in_flight = [i for i in self._in_flight if not i.is_published()]

    def wait_all_published(self, timeout: float = 10.0) -> bool:
        """Block until the broker has acknowledged every message published so far; False on timeout."""
        with self._lock:
            pending = list(self._in_flight)
        deadline = time.monotonic() + timeout
        for info in pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                info.wait_for_publish(timeout=remaining)
            except RuntimeError:
                return False
            if not info.is_published():
                return False
        with self._lock:
            self._in_flight = [i for i in self._in_flight if not i.is_published()]
        return True

    def close(self) -> None:
        """Disconnect and stop the network thread (messages not yet sent are dropped)."""
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
