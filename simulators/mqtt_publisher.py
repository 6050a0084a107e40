"""Publish simulated readings to one MQTT broker (paho-mqtt), as the plant's GDS gateway would.

Every paho return code is checked: a message refused because paho's queue is
full (``MQTT_ERR_QUEUE_SIZE``), dropped while disconnected at QoS 0
(``MQTT_ERR_NO_CONN``) or failing otherwise is counted and logged, never
silently ignored. QoS 1 messages published while the connection is down stay
in paho's queue and go out after the automatic reconnect (counted as
``queued_offline``). Publishing waits (back-pressure) while ``max_pending``
messages are not yet handed to the broker, so a fast run slows down instead of
losing data.

The window is small on purpose: paho scans every message it holds on each
PUBACK (``Client._update_inflight``), so with 1000 in flight and more queued a
QoS 1 publisher spends its time in that scan (4 500 messages/s here, against
17 000/s with 50 in flight and nothing queued behind them). The publisher
therefore keeps ``max_pending`` (default: paho's in-flight window of 64) and
waits, woken by the acknowledgements, instead of queueing in paho.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from hazmon.plant.aio import cancel_and_wait
from hazmon.plant.model import MqttBinding, MqttBroker, Plant
from hazmon.plant.reading import Reading
from hazmon.simulators.payloads import encode

__all__ = ["MqttPublishError", "MqttPublisher"]

log = structlog.get_logger("hazmon.simulators")

_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only
_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux only


class MqttPublishError(Exception):
    """The broker cannot be reached or refused the connection."""


class MqttPublisher:
    """One connection to one broker, publishing the readings of the sensors bound to it.

    Args:
        broker: the broker as in the plant file (url, protocol, qos, credentials).
        plant: the plant; its MQTT bindings on this broker decide topics and formats.
        client_id: the simulator's own client id (never the collector's).
        max_inflight: paho's in-flight window (QoS 1 messages sent, not yet acknowledged).
        max_pending: back-pressure threshold of messages not yet handed over (default
            ``max_inflight``: nothing waits in paho's queue while connected).
        max_queued: paho's queue limit; beyond it publishing fails with MQTT_ERR_QUEUE_SIZE.
    """

    def __init__(
        self,
        broker: MqttBroker,
        plant: Plant,
        client_id: str | None = None,
        *,
        max_pending: int | None = None,
        max_queued: int = 200_000,
        max_inflight: int = 64,
    ) -> None:
        self.broker = broker
        self.name = broker.name
        self.bindings: dict[str, MqttBinding] = {
            s.tag: s.binding
            for s in plant.sensors()
            if isinstance(s.binding, MqttBinding) and s.binding.endpoint == broker.name
        }
        self.qos = broker.qos
        self.max_inflight = max_inflight
        self.max_pending = max_pending if max_pending is not None else max_inflight
        self.max_queued = max_queued
        self.client_id = client_id or f"hazmon-sim-{broker.name}-{os.getpid()}"
        u = urlparse(broker.url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (8883 if u.scheme == "mqtts" else 1883)
        self.tls = u.scheme == "mqtts"
        self.v5 = broker.protocol == "5"
        self._client: mqtt.Client | None = None
        self._connected = False
        self._up = asyncio.Event()  # set while connected
        self._task: asyncio.Task[None] | None = None
        self._fd: int | None = None  # the socket the event loop watches
        self._corked = False
        self._loop_thread = 0
        self._sent = 0
        self._acked = 0
        self._last_error_log = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drained = asyncio.Event()  # set when the window has room again
        self._waiting = False
        self._tcp: socket.socket | None = None  # the connection's TCP socket
        self.counters: dict[str, int] = {
            "messages": 0,
            "readings": 0,
            "unencodable": 0,
            "queue_full": 0,
            "no_conn_dropped": 0,
            "queued_offline": 0,
            "errors": 0,
            "connects": 0,
            "disconnects": 0,
        }

    # -------------------------------------------------------------- connection

    def _make_client(self) -> mqtt.Client:
        c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
        )
        if self.broker.username:
            pw = os.environ.get(self.broker.password_env or "", None)
            c.username_pw_set(self.broker.username, pw)
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.broker.ca_file)
            c.tls_set_context(ctx)
        c.max_inflight_messages_set(self.max_inflight)
        c.max_queued_messages_set(self.max_queued)
        # an exception in one of our callbacks (a log stream closed under us) must not
        # escape into the event loop's reader: log it and go on
        c.suppress_exceptions = True
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        return c

    # paho runs in the event loop's thread (its "external event loop" mode): the socket is
    # read when readable, publish() writes at once, a task keeps the connection alive and
    # reconnects. paho's own network thread cost a wake-up through a socket pair, a select
    # and two GIL hand-overs per message: two thirds of the simulator's CPU at --speed 1000.

    def _in_loop(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` in the event loop's thread (paho calls back from a connecting thread too)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    def _on_socket_open(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        fd = sock.fileno() if isinstance(sock, socket.socket) else -1

        def watch() -> None:
            if client is self._client and fd >= 0 and self._loop is not None:
                self._fd = fd
                self._loop.add_reader(fd, self._readable, client)

        self._in_loop(watch)

    def _on_socket_close(self, client: mqtt.Client, userdata: object, sock: object) -> None:
        fd = self._fd

        def unwatch() -> None:
            if fd is not None and self._loop is not None:
                self._loop.remove_reader(fd)
                if self._fd == fd:
                    self._fd = None

        self._in_loop(unwatch)

    def _readable(self, client: mqtt.Client) -> None:
        client.loop_read()  # CONNACK, PUBACKs: the callbacks run here
        sock = client.socket()
        while isinstance(sock, ssl.SSLSocket) and sock.pending():  # decrypted, not yet read
            client.loop_read()
            sock = client.socket()
        if client.want_write():
            client.loop_write()

    async def _keep_connected(self, client: mqtt.Client) -> None:
        """Keepalive, writes left over by a full socket buffer, and reconnecting (1 s, doubling to 10 s)."""
        delay = 1.0
        while True:
            if self._fd is not None:  # connected, or waiting for the CONNACK
                client.loop_misc()
                if client.want_write():
                    client.loop_write()
                await asyncio.sleep(1.0)
                continue
            try:
                # the TCP (and TLS) handshake blocks: off the loop, so the OPC UA side goes on
                await asyncio.to_thread(client.reconnect)
            except (OSError, ValueError) as e:
                log.warning("mqtt connect failed", broker=self.name, url=self.broker.url, error=str(e))
            await asyncio.sleep(delay)  # meanwhile the CONNACK (or a refusal) comes through the reader
            delay = 1.0 if self._connected else min(10.0, delay * 2)

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        if getattr(rc, "is_failure", False):
            log.error("mqtt connect refused", broker=self.name, reason=str(rc))
            return
        sock = client.socket()
        if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # paho leaves Nagle on
            self._tcp = sock
        self.counters["connects"] += 1
        self._connected = True
        self._up.set()
        log.info("mqtt connected", broker=self.name, url=self.broker.url)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        self._connected = False
        self._up.clear()
        self._tcp = None
        self._corked = False
        self.counters["disconnects"] += 1
        self._wake()
        log.warning("mqtt disconnected", broker=self.name, reason=str(rc))

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        self._acked += 1
        if not self._waiting:
            return
        if self._tcp is not None and _QUICKACK is not None:
            # Mosquitto holds back small PUBACKs (Nagle) until its previous one is ACKed, and
            # Linux delays that ACK up to 40 ms while we have nothing to send: a publisher
            # waiting for room stalled 40 ms per window (2 000 messages/s at --speed 1000,
            # a simulated hour in 16 s). TCP_QUICKACK sends the pending ACK now.
            try:
                self._tcp.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:
                self._tcp = None
        if self.pending <= self.max_pending // 2:
            self._wake()

    def _wake(self) -> None:
        """Wake a publish waiting for room."""
        if self._waiting:
            self._waiting = False
            self._in_loop(self._drained.set)

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def pending(self) -> int:
        return self._sent - self._acked

    async def start(self, timeout_s: float = 10.0) -> None:
        """Connect (and keep reconnecting afterwards while started).

        Raises:
            MqttPublishError: not connected within ``timeout_s``.
        """
        if self._client is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client = c = self._make_client()
        try:
            c.connect_async(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as e:
            self._client = None
            raise MqttPublishError(f"mqtt {self.name} ({self.broker.url}): {e}") from e
        self._task = asyncio.create_task(self._keep_connected(c), name=f"mqtt-{self.name}")
        try:
            async with asyncio.timeout(timeout_s):
                await self._up.wait()
        except TimeoutError:
            await self._close(c)
            raise MqttPublishError(
                f"mqtt {self.name} ({self.broker.url}): not connected after {timeout_s} s"
            ) from None

    async def _close(self, c: mqtt.Client) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._connected:
            c.disconnect()  # queues DISCONNECT and writes it; paho then closes the socket
            if c.want_write():
                c.loop_write()
        self._client = None
        fd, self._fd = self._fd, None
        if fd is not None and self._loop is not None:
            self._loop.remove_reader(fd)
        sock = c.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._connected = False
        self._up.clear()

    async def stop(self, flush_timeout_s: float = 10.0) -> None:
        """Hand over what is pending (up to ``flush_timeout_s``), then disconnect."""
        c = self._client
        if c is None:
            return
        deadline = time.monotonic() + flush_timeout_s
        while self.pending > 0 and self.connected and time.monotonic() < deadline:  # noqa: ASYNC110 - the reader counts the PUBACKs
            await asyncio.sleep(0.01)
        await self._close(c)
        # messages never handed to the broker are lost with this client
        self._sent = self._acked

    # -------------------------------------------------------------- publishing

    async def send(self, readings: Sequence[Reading]) -> None:
        """Publish ``readings`` in the formats of their bindings (waits while too much is pending)."""
        pubs, skipped = encode(readings, self.bindings)
        self.counters["unencodable"] += skipped
        self.counters["readings"] += len(readings) - skipped
        # one TCP segment for the round instead of one per message: a send with TCP_NODELAY
        # costs a segment and a broker wake-up, 25 µs of the ~60 µs a QoS 1 message took
        self._cork(True)
        try:
            for topic, payload in pubs:
                await self.publish(topic, payload)
        finally:
            self._cork(False)

    def _cork(self, on: bool) -> None:
        if self._tcp is not None and _CORK is not None and self._corked != on:
            try:
                self._tcp.setsockopt(socket.IPPROTO_TCP, _CORK, 1 if on else 0)
                self._corked = on
            except OSError:
                self._tcp = None

    async def publish(self, topic: str, payload: bytes) -> None:
        c = self._client
        if c is None:
            raise MqttPublishError(f"mqtt {self.name}: not started")
        while self.pending >= self.max_pending and self.connected:
            self._cork(False)  # what waits in the socket must go out for the PUBACKs to come
            # woken by the acknowledgement that halves the window (or a disconnect); the
            # timeout only guards against a wake-up lost between the check and the wait
            self._drained.clear()
            self._waiting = True
            if self.pending < self.max_pending:
                self._waiting = False
                break
            try:
                async with asyncio.timeout(0.1):
                    await self._drained.wait()
            except TimeoutError:
                self._waiting = False
        info = c.publish(topic, payload, qos=self.qos)
        rc = info.rc
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._sent += 1
            self.counters["messages"] += 1
        elif rc == MQTTErrorCode.MQTT_ERR_NO_CONN and self.qos > 0:
            self._sent += 1  # stays in paho's queue until the reconnect
            self.counters["queued_offline"] += 1
            self.counters["messages"] += 1
        elif rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            self._count_loss("no_conn_dropped", topic, rc)
        elif rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self._count_loss("queue_full", topic, rc)
        else:
            self._count_loss("errors", topic, rc)

    def _count_loss(self, key: str, topic: str, rc: MQTTErrorCode) -> None:
        self.counters[key] += 1
        now = time.monotonic()
        if now - self._last_error_log > 5.0:  # one line per 5 s, the counters say how many
            self._last_error_log = now
            log.error(
                "mqtt publish failed",
                broker=self.name,
                topic=topic,
                reason=mqtt.error_string(rc),
                lost=self.counters[key],
            )
