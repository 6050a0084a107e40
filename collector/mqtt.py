"""The MQTT input: paho-mqtt 2.x behind an adapter that hands out `Reading`s only.

One `MqttInput` per broker of the plant file. It keeps a persistent session
(fixed client id, clean start off, session expiry from the plant file) and
subscribes at QoS 1 (or the broker's configured QoS), so messages published
while the daemon is away are delivered when it returns; it resubscribes on every
(re)connect and checks every paho return code and every SUBACK reason code.

paho runs its network loop in a thread. Payloads are decoded there (pure
`hazmon.collector.payload.decode`) and readings are put on the bounded
`ReadingQueue`; when the queue is full the thread waits, which pushes back on
the broker instead of dropping anything here.

With ``ack: durable`` (the default) a QoS 1 message is acknowledged only when
its readings are committed or fsynced in the spool: the queue runs its PUBACK
once the writer has settled everything up to it, in arrival order. A crash or
kill -9 then loses nothing: the broker delivers the unacknowledged messages
again, and the writes are idempotent. An ack is sent only on the connection the
message came in on; after a reconnect the broker redelivers instead. On stop
the input is paused first (new messages are left with the broker) and stays
connected until the writer has settled what was queued, so the acks go out.
``ack: received`` restores paho's own behaviour (ack when the callback returns).
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlparse

import paho.mqtt.client as paho
import structlog
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hazmon.collector.deadletter import DeadLetters
from hazmon.collector.metrics import DROP_REASONS, Metrics
from hazmon.collector.payload import TopicMap, decode, subscription_filters
from hazmon.collector.queue import ReadingQueue
from hazmon.collector.settings import MqttSettings
from hazmon.plant.model import MqttBroker
from hazmon.plant.reading import ReadingBatch

__all__ = ["MqttInput", "MqttPublishError", "SourceState", "publish_checked"]

# hazmon_mqtt_errors_total{what}: the paho calls checked, CONNACK and SUBACK refusals
_CHECKED = ("loop_start", "disconnect", "subscribe", "ack", "connack", "suback")

log = structlog.get_logger("hazmon.collector.mqtt")

SourceState = Callable[[str, bool, str], None]
"""(source name, connected, reason): called from any thread when a source connects or drops."""


class MqttInput:
    """A streaming input: `start` connects and keeps reconnecting, `stop` disconnects."""

    kind = "mqtt"

    def __init__(
        self,
        broker: MqttBroker,
        *,
        topics: TopicMap,
        queue: ReadingQueue,
        dead: DeadLetters,
        metrics: Metrics,
        settings: MqttSettings,
        on_state: SourceState,
        client_id_suffix: str = "",
    ) -> None:
        self.broker = broker
        self.name = broker.name
        self.topics = topics
        self.tags = topics.tags()
        self.queue = queue
        self.dead = dead
        self.metrics = metrics
        self.settings = settings
        self.on_state = on_state
        self.client_id = broker.client_id + client_id_suffix
        self.filters = subscription_filters(topics.routes, broker.shared_group)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._max_future_us = int(settings.max_future_s * 1_000_000)
        self._labels = {"source": self.name}
        self._client: paho.Client | None = None
        self.manual_ack = settings.ack == "durable"
        self._gen = 0  # connection generation: an ack is only sent on the connection it came in on
        self._draining = False  # stopping: new messages are left unacknowledged for the broker
        src, mine = ("source",), [self._labels]  # this source's children exist from the first scrape
        # per message: the children are kept (a lookup by name and labels costs three times more)
        self._m_readings = metrics.counter(
            "hazmon_readings_received_total", "Readings decoded, by source", src, mine
        ).labels(**self._labels)
        self._m_messages = metrics.counter(
            "hazmon_messages_received_total", "Messages received, by source", src, mine
        ).labels(**self._labels)
        metrics.gauge("hazmon_source_connected", "1 while the source is connected", src, mine)
        metrics.counter(
            "hazmon_source_reconnects_total", "Connections made after the first, by source", src, mine
        )
        metrics.counter(
            "hazmon_mqtt_errors_total",
            "paho return codes and SUBACK failures, by source and what",
            ("source", "what"),
            [{**self._labels, "what": w} for w in _CHECKED],
        )
        metrics.gauge(
            "hazmon_mqtt_subscribed", "1 while every topic filter is subscribed (SUBACK ok)", src, mine
        )
        metrics.counter(
            "hazmon_mqtt_duplicates_received_total",
            "QoS 1 messages the broker delivered again (DUP: sent before, not acknowledged), by source",
            src,
            mine,
        )
        metrics.counter(
            "hazmon_mqtt_redelivery_total",
            "QoS 1 messages left unacknowledged for the broker to deliver again, by source and why",
            ("source", "why"),
            [{**self._labels, "why": w} for w in ("reconnected", "stopping")],
        )
        metrics.counter(
            "hazmon_mqtt_qos0_discarded_total",
            "QoS 0 messages that arrived while the input was stopping (QoS 0 is never delivered again)",
            src,
            mine,
        )
        metrics.counter(
            "hazmon_mqtt_sessions_lost_total",
            "Reconnects on which the broker no longer had our session (what it held for us is lost)",
            src,
            mine,
        )
        metrics.counter(
            "hazmon_readings_dropped_total", "Readings lost, by reason", ("reason",), DROP_REASONS
        )
        metrics.set("hazmon_source_connected", 0, self._labels)
        metrics.set("hazmon_mqtt_subscribed", 0, self._labels)
        self._connects = 0

    # -- lifecycle -----------------------------------------------------------------------
    def _make_client(self) -> paho.Client:
        b = self.broker
        v5 = b.protocol == "5"
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=self.manual_ack,
        )
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.reconnect_delay_set(
            max(1, round(self.settings.reconnect_min_s)), max(1, round(self.settings.reconnect_max_s))
        )
        if b.username:
            pw = os.environ.get(b.password_env or "", None) if b.password_env else None
            if b.password_env and pw is None:
                raise RuntimeError(
                    f"mqtt broker {b.name}: environment variable {b.password_env} (password_env) is not set"
                )
            c.username_pw_set(b.username, pw)
        if urlparse(b.url).scheme == "mqtts":
            c.tls_set(ca_certs=b.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        return c

    def start(self, backfill_from_us: int | None = None) -> None:
        """Connect in the background (paho's thread keeps reconnecting with capped backoff).

        ``backfill_from_us`` is not used: the broker keeps our session's messages while we are
        away and delivers them when we come back (nothing to read back).
        """
        u = urlparse(self.broker.url)
        host = u.hostname or "127.0.0.1"
        port = u.port or (8883 if u.scheme == "mqtts" else 1883)
        self._client = c = self._make_client()
        props = None
        if self.broker.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = self.broker.session_expiry_s
            props.ReceiveMaximum = self.settings.max_inflight
            c.connect_async(host, port, self.settings.keepalive_s, clean_start=False, properties=props)
        else:
            c.connect_async(host, port, self.settings.keepalive_s)
        rc = c.loop_start()
        self._check(rc, "loop_start")
        log.info(
            "mqtt input starting",
            source=self.name,
            url=self.broker.url,
            client_id=self.client_id,
            filters=self.filters,
            protocol=self.broker.protocol,
            qos=self.broker.qos,
        )

    async def stop(self) -> None:
        """Disconnect (the broker keeps the session and queues for us) and join the thread."""
        await asyncio.to_thread(self._stop_blocking)

    def _stop_blocking(self) -> None:
        c, self._client = self._client, None
        if c is None:
            return
        rc = c.disconnect()
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._check(rc, "disconnect")
        c.loop_stop()
        self.connected.clear()
        self.metrics.set("hazmon_source_connected", 0, self._labels)

    # -- paho callbacks (network thread) ---------------------------------------------------
    def _check(self, rc: MQTTErrorCode | int, what: str) -> bool:
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            return True
        self.metrics.inc("hazmon_mqtt_errors_total", 1, {**self._labels, "what": what})
        log.error(
            "mqtt call failed", source=self.name, what=what, rc=int(rc), error=paho.error_string(int(rc))
        )
        return False

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.metrics.inc("hazmon_mqtt_errors_total", 1, {**self._labels, "what": "connack"})
            log.error("mqtt connection refused", source=self.name, reason=str(reason))
            return
        self._gen += 1  # acks still due for the previous connection are not sent on this one
        self._connects += 1
        if self._connects > 1:
            self.metrics.inc("hazmon_source_reconnects_total", 1, self._labels)
            if not flags.session_present:
                # we asked to resume (clean start off): the broker restarted without persistence, or
                # our session expired. Whatever it was holding for us while we were away is gone.
                self.metrics.inc("hazmon_mqtt_sessions_lost_total", 1, self._labels)
                log.error(
                    "mqtt broker did not keep our session: readings published while we were "
                    "disconnected are lost (check the broker's persistence and session expiry)",
                    source=self.name,
                    session_expiry_s=self.broker.session_expiry_s,
                )
        rc, _mid = client.subscribe([(f, self.broker.qos) for f in self.filters])
        self._check(rc, "subscribe")
        self.connected.set()
        self.metrics.set("hazmon_source_connected", 1, self._labels)
        log.info("mqtt connected", source=self.name, session_present=flags.session_present)
        self.on_state(self.name, True, "connected")

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        bad = [
            (f, str(r))
            for f, r in zip(self.filters, reasons, strict=False)
            if r.is_failure or r.value < self.broker.qos
        ]
        if bad:
            self.metrics.inc("hazmon_mqtt_errors_total", len(bad), {**self._labels, "what": "suback"})
            log.error("mqtt subscription refused or downgraded", source=self.name, filters=bad)
        else:
            self.subscribed.set()
            self.metrics.set("hazmon_mqtt_subscribed", 1, self._labels)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self.metrics.set("hazmon_source_connected", 0, self._labels)
        self.metrics.set("hazmon_mqtt_subscribed", 0, self._labels)
        if self._client is None:  # our own stop()
            return
        log.warning("mqtt disconnected; reconnecting", source=self.name, reason=str(reason))
        self.on_state(self.name, False, f"broker {self.name} disconnected: {reason}")

    def prepare_stop(self) -> bool:
        """At the daemon's stop: `pause` and True when acknowledging on commit, else False.

        True: stop it after the writer has committed, so the acks of what it queued go out.
        """
        if self.manual_ack:
            self.pause()
        return self.manual_ack

    def pause(self) -> None:
        """Stop taking messages but stay connected (the daemon's stop, before the writer drains).

        QoS 1 messages arriving from now on are not acknowledged: the broker keeps them
        for our session and delivers them again (QoS 0 ones are counted and dropped, as
        they would be lost while we are disconnected). The connection stays up so the acks of
        what is already queued reach the broker once it is committed.
        """
        self._draining = True

    def _ack(self, gen: int, mid: int, qos: int) -> None:
        """PUBACK one message, from the writer's thread, once its readings are settled."""
        c = self._client
        if c is None or gen != self._gen:
            # the connection it came in on is gone: the broker delivers it again (stored once)
            self.metrics.inc("hazmon_mqtt_redelivery_total", 1, {**self._labels, "why": "reconnected"})
            return
        rc = c.ack(mid, qos)
        if rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            self._check(rc, "ack")

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        if msg.dup:
            self.metrics.inc("hazmon_mqtt_duplicates_received_total", 1, self._labels)
        if self._draining:  # stopping: the queue drains to the writer and takes nothing new
            if msg.qos > 0:  # unacknowledged: the broker delivers it again
                self.metrics.inc("hazmon_mqtt_redelivery_total", 1, {**self._labels, "why": "stopping"})
            else:  # QoS 0 is never delivered again: lost, as it would be while we are disconnected
                self.metrics.inc("hazmon_mqtt_qos0_discarded_total", 1, self._labels)
            return
        ack = None
        if self.manual_ack and msg.qos > 0:
            ack = functools.partial(self._ack, self._gen, msg.mid, msg.qos)
        try:
            if not self.handle(msg.topic, bytes(msg.payload), time.time_ns() // 1000, ack):
                # the queue closed before this input stopped: cannot happen in the daemon's
                # stop order (inputs first), but it must not pass silently if it does
                self.metrics.inc("hazmon_readings_dropped_total", 1, {"reason": "queue_closed"})
                log.error("reading dropped: queue closed before the input stopped", topic=msg.topic)
        except Exception:  # never let one message stop the network thread
            log.exception("mqtt message handling failed", source=self.name, topic=msg.topic)
            self.dead.add(
                self.name,
                msg.topic,
                reason="bad_shape",
                detail="internal error while decoding",
                tag=None,
                payload=bytes(msg.payload),
                now_us=time.time_ns() // 1000,
            )
            if ack is not None:  # kept as a dead letter: acknowledged in turn
                self.queue.put_threadsafe(ReadingBatch.empty(), ack)

    def handle(self, topic: str, payload: bytes, now_us: int, ack: Callable[[], None] | None = None) -> bool:
        """Decode one message and queue its readings (waits while the queue is full).

        ``ack`` (the message's PUBACK) runs once its readings are committed or
        spooled; a message without readings (all dead letters) is acknowledged in turn.
        Returns False only when the queue was closed and the readings were not queued.
        """
        self._m_messages.inc()
        d = decode(self.topics.routes.get(topic), topic, payload, now_us, self._max_future_us)
        for rej in d.rejects:
            self.dead.add(
                self.name,
                topic,
                reason=rej.reason,
                detail=rej.detail,
                tag=rej.tag,
                payload=payload,
                now_us=now_us,
            )
        n = d.count()
        if n:
            self._m_readings.inc(n)
            return self.queue.put_threadsafe(d.batch(), ack)
        return self.queue.put_threadsafe(ReadingBatch.empty(), ack)


class MqttPublishError(RuntimeError):
    """paho refused a publish (its only report is the return code)."""


def publish_checked(client: paho.Client, topic: str, payload: bytes, qos: int = 1) -> paho.MQTTMessageInfo:
    """Publish and raise when paho did not take the message.

    paho drops a QoS >= 1 publish when its queue of unacknowledged messages is
    full (65,535 in flight, or ``max_queued_messages_set``) and says so only in
    the return code (``MQTT_ERR_QUEUE_SIZE``): every publisher of ours checks it.

    Raises:
        MqttPublishError: paho did not take the message (QUEUE_SIZE, PAYLOAD_SIZE, ...).
    """
    info = client.publish(topic, payload, qos=qos)
    # NO_CONN with QoS >= 1: paho keeps the message and sends it after the reconnect
    queued = qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not queued:
        raise MqttPublishError(
            f"publish to {topic} refused: {paho.error_string(info.rc)} (rc {int(info.rc)})"
        )
    return info
