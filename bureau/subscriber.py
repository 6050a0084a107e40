"""The bureau's MQTT subscriber: every enterprise's up topics, acknowledged only once stored.

MQTT 5 with a persistent session (``clean_start=False`` and a session expiry) and the shared
subscription ``$share/<group>/hazmon/v1/+/up/#`` at QoS 1: several worker processes (each with
its own ``client_id``) share the feed, the broker hands each message to one of them. paho's
``manual_ack`` holds the PUBACK until `hazmon.bureau.ingest.Ingestor.handle` has committed the
message (stored, duplicate or dead-lettered): a crash or a database outage before that leaves
it unacknowledged, and the broker sends it again when the session resumes. Storing is
idempotent by ``message_id``, so a message handled twice counts once.

Runs in a thread (paho is blocking); the daemon starts `Subscriber.run` with ``asyncio.to_thread``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.bureau.config import BrokerSettings
from hazmon.bureau.ingest import Ingestor
from hazmon.plant.link.federation import FED_ROOT
from hazmon.plant.link.messages import TOPIC_ROOT

__all__ = ["Subscriber", "SubscriberStats", "fed_shared_topic", "mqtt_client", "shared_topic"]

log = structlog.get_logger("hazmon.bureau.subscriber")

Conn = psycopg.Connection[tuple[object, ...]]
Clock = Callable[[], datetime]


def shared_topic(group: str) -> str:
    """``$share/<group>/hazmon/v1/+/up/#``: every enterprise's up topics, shared by the group's workers."""
    return f"$share/{group}/{TOPIC_ROOT}/+/up/#"


def fed_shared_topic(group: str) -> str:
    """``$share/<group>/hazmon/v1/fed/+/+/up/#``: what child bureaus forward (a parent with ``children:``)."""
    return f"$share/{group}/{FED_ROOT}/+/+/up/#"


def mqtt_client(s: BrokerSettings, client_id: str, manual_ack: bool = False) -> mqtt.Client:
    """A paho MQTT 5 client for the bureau's broker (credentials and TLS set; not connected yet)."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
    )
    if s.username:
        c.username_pw_set(s.username, s.password())
    if s.tls:
        c.tls_set(ca_certs=s.ca_file)
    return c


def connect_props(s: BrokerSettings) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = s.session_expiry_s
    return props


@dataclass(slots=True)
class SubscriberStats:
    received: int = 0
    acked: int = 0
    connects: int = 0
    connect_failures: int = 0
    db_failures: int = 0  # messages left unacknowledged because the database was away


class Subscriber:
    """One worker's share of the feed: receive, store, then acknowledge."""

    def __init__(
        self,
        settings: BrokerSettings,
        dsn: str,
        ingestor: Ingestor,
        clock: Clock | None = None,
        *,
        federation: bool = False,  # also the children's forwarded messages (hazmon/v1/fed/...)
    ) -> None:
        self.settings = settings
        self.topics = [shared_topic(settings.group)]
        if federation:
            self.topics.append(fed_shared_topic(settings.group))
        self.dsn = dsn
        self.ingestor = ingestor
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stats = SubscriberStats()
        self.connected = threading.Event()  # subscribed and receiving (readiness)
        self._lost = threading.Event()
        self._conn: Conn | None = None

    def _db(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(
                self.dsn, autocommit=True, connect_timeout=5, application_name="hazmon-bureau"
            )
        return self._conn

    # ------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        code = int(getattr(rc, "value", rc))  # type: ignore[call-overload]
        if code != 0:
            log.error("bureau broker refused the connection", reason_code=code)
            self._lost.set()
            return
        c.subscribe([(t, 1) for t in self.topics])

    def _on_subscribe(self, c: mqtt.Client, u: object, mid: int, rcs: object, props: object) -> None:
        codes = [int(getattr(r, "value", r)) for r in rcs]  # type: ignore[attr-defined]
        if any(code >= 0x80 for code in codes):
            log.error("bureau subscription refused", reason_codes=codes, topics=self.topics)
            self._lost.set()
            return
        self.connected.set()
        log.info("bureau subscribed", topics=self.topics)

    def _on_disconnect(self, c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        self.connected.clear()
        self._lost.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        try:
            self.ingestor.handle(self._db(), bytes(msg.payload), msg.topic, self.clock())
        except (psycopg.Error, OSError) as e:
            # not acknowledged: the broker sends it again when the session resumes
            self.stats.db_failures += 1
            log.warning("bureau database away, message left unacknowledged", error=str(e).strip())
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._lost.set()
            return
        except Exception:  # never let paho's network thread die silently: reconnect instead
            log.exception("bureau subscriber failed on a message, reconnecting", topic=msg.topic)
            self._lost.set()
            return
        c.ack(msg.mid, msg.qos)
        self.stats.acked += 1

    # ------------------------------------------------------------ the loop

    def _session(self, stop: threading.Event) -> None:
        s = self.settings
        c = mqtt_client(s, s.client_id, manual_ack=True)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        self._lost.clear()
        self.stats.connects += 1
        try:
            c.connect(s.host, s.port, s.keepalive_s, clean_start=False, properties=connect_props(s))
        except OSError as e:
            self.stats.connect_failures += 1
            raise ConnectionError(f"bureau broker {s.url}: {e}") from e
        c.loop_start()
        try:
            while not stop.is_set() and not self._lost.is_set():
                stop.wait(0.05)
        finally:
            self.connected.clear()
            c.disconnect()
            c.loop_stop()

    def run(self, stop: threading.Event) -> None:
        """Receive until ``stop`` is set; reconnect with back-off after a broker or database outage."""
        backoff = 0.0
        while not stop.is_set():
            started = time.monotonic()
            try:
                self._session(stop)
            except ConnectionError as e:
                log.warning("bureau broker away, retrying", error=str(e))
            if stop.is_set():
                break
            backoff = (
                0.0
                if time.monotonic() - started > 30
                else min(max(backoff * 2, 0.1), self.settings.retry_max_s)
            )
            stop.wait(backoff)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
