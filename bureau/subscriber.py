"""The bureau's MQTT subscriber: every enterprise's up topics, acknowledged only once stored.

MQTT 5 with persistent sessions (``clean_start=False`` and a session expiry) and shared
subscriptions at QoS 1: several worker processes (each with its own ``client_id``) share the
feed, the broker hands each message to one of them. Each worker has two lanes, each its own
MQTT session, thread and database connection, so an alarm never waits behind a minute's burst
of aggregates — neither in the broker's in-flight window nor in a queue:

- the **fast** lane (``<client_id>-fast``): every kind of `hazmon.plant.link.UP_KINDS` but
  `BULK_KINDS` (alarm events, feedback, plan events, registrations, and kinds added later), one
  ``$share/<group>/hazmon/v1/+/up/<kind>`` subscription each, taken as they come (what is
  waiting, up to ``fast_max_messages``, no wait);
- the **bulk** lane (``<client_id>``): one catch-all ``$share/<group>/hazmon/v1/+/up/#``, taken in
  batches of up to ``max_messages`` or what arrived within ``max_wait_s`` of the first. It
  stores the kinds every enterprise sends every minute or day (`BULK_KINDS`: aggregates,
  heartbeats, assessments) and dead-letters a kind this bureau does not know (below); the fast
  kinds reach it too, and it acknowledges those copies unstored (``lane_copies``): the fast lane
  stores them.

**A kind this bureau does not know** (a newer enterprise daemon's): MQTT wildcards cannot
exclude, so either one lane takes everything or such a message matches no subscription — and
the broker then answers the enterprise PUBACK 0x10 "no matching subscribers", which its uplink
(``require_subscriber``) takes as not delivered: it keeps that row unsent and replays it, so its
**whole outbox** (alarms too) waits behind that one message until the bureau is upgraded. The
catch-all is on the bulk lane so that what is received twice is the rare fast kinds, never the
aggregates; the unknown kind is dead-lettered ``unknown_kind``, kept whole, and replayed after
the bureau's upgrade (`hazmon.bureau.ingest`). The catch-all is subscribed only once the fast
lane's SUBACK came (each session, after a broker restart too: Mosquitto does not restore shared
subscriptions), so whenever a fast kind reaches the bulk lane, the fast lane's subscription for
it stands and the broker has sent it there as well: dropping the copy loses nothing.

Both store through `hazmon.bureau.batch.BatchIngestor` (one transaction per batch). paho's
``manual_ack`` holds each PUBACK until the batch's transaction has committed (stored, duplicate
or dead-lettered): a crash or a database outage before that leaves the messages unacknowledged,
and the broker sends them again when the session resumes. Storing is idempotent by
``message_id``, so a message handled twice counts once. A message of an enterprise whose
registration is not stored yet is parked (kept unacknowledged and retried, see
`hazmon.bureau.batch`). ``receive_maximum`` bounds the messages in flight per session, and so
the worker's memory after an outage. The settings are bureau.yaml's ``ingest:``
(`hazmon.bureau.config.BatchSettings`).

**PUBACK order.** MQTT 5.0 §4.6 [MQTT-4.6.0-2] says a receiver MUST send its PUBACKs in the
order the PUBLISHes came; a parked message's PUBACK goes out after later messages' (up to
``park_s``), so this subscriber does not. Holding later PUBACKs back behind a parked one would
instead stop the lane: within ``receive_maximum`` unacknowledged messages the broker sends no
more, so one enterprise that never registers would stall every enterprise's aggregates for
``park_s`` each minute. The rule protects nothing the bureau relies on: the order of the
messages is what the broker sends (§4.6 binds the server to that, not to PUBACK order), and
Mosquitto takes a PUBACK by its packet identifier, whatever its place
(``lib/handle_pubackcomp.c``: ``handle__pubackcomp`` gives back the send quota and calls
``db__message_delete_outgoing(db, mosq, mid, ...)``); after a reconnect it sends again only what
was not acknowledged (``tests/bureau/test_subscriber_kinds.py``). EMQX does not require the
order either (emqx/emqx discussion #4703). A broker that did would be a reason to revisit this.

Runs in threads (paho is blocking); the daemon starts `Subscriber.run` with ``asyncio.to_thread``.
"""

from __future__ import annotations

import queue
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

from hazmon.bureau.batch import BatchIngestor, BatchMetrics, Item
from hazmon.bureau.config import BatchSettings, BrokerSettings
from hazmon.bureau.ingest import Ingestor
from hazmon.plant.link import UP_KINDS
from hazmon.plant.link.federation import FED_ROOT
from hazmon.plant.link.messages import TOPIC_ROOT

__all__ = [
    "BULK_KINDS",
    "BatchSettings",
    "Subscriber",
    "SubscriberStats",
    "fed_shared_topic",
    "lane_topics",
    "mqtt_client",
    "shared_topic",
]

log = structlog.get_logger("hazmon.bureau.subscriber")

Conn = psycopg.Connection[tuple[object, ...]]
Clock = Callable[[], datetime]


def shared_topic(group: str) -> str:
    """``$share/<group>/hazmon/v1/+/up/#``: every enterprise's up topics, shared by the group's workers."""
    return f"$share/{group}/{TOPIC_ROOT}/+/up/#"


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


BULK_KINDS = ("aggregates", "heartbeat", "assessments")
"""Sent by every enterprise every minute (or day): batched, never ahead of an alarm."""


def fed_shared_topic(group: str) -> str:
    """``$share/<group>/hazmon/v1/fed/+/+/up/#``: what child bureaus forward (a parent with ``children:``)."""
    return f"$share/{group}/{FED_ROOT}/+/+/up/#"


def _roots(federation: bool) -> list[str]:
    return [f"{TOPIC_ROOT}/+"] + ([f"{FED_ROOT}/+/+"] if federation else [])


def lane_topics(group: str, federation: bool = False) -> dict[str, list[str]]:
    """The shared subscriptions of the two lanes.

    fast: each up kind of `hazmon.plant.link.UP_KINDS` but `BULK_KINDS`, one subscription each;
    bulk: everything (``.../up/#``) — the bulk kinds, the kinds this bureau does not know (a newer
    enterprise daemon's: dead-lettered ``unknown_kind``, kept whole for a replay after the bureau's
    upgrade) and a copy of the fast kinds, acknowledged unstored (`Subscriber`).
    ``federation``: also as child bureaus forward them (``hazmon/v1/fed/<child>/<enterprise>/up/<kind>``).
    """
    roots = _roots(federation)
    return {
        "bulk": [f"$share/{group}/{root}/up/#" for root in roots],
        "fast": [f"$share/{group}/{root}/up/{k}" for root in roots for k in UP_KINDS if k not in BULK_KINDS],
    }


def _legacy_bulk_topics(group: str, federation: bool) -> list[str]:
    """The bulk lane's per-kind subscriptions of before the catch-all (a persistent session keeps them)."""
    return [f"$share/{group}/{root}/up/{k}" for root in _roots(federation) for k in BULK_KINDS]


def connect_props(s: BrokerSettings, receive_maximum: int | None = None) -> Properties:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = s.session_expiry_s
    if receive_maximum is not None:
        props.ReceiveMaximum = receive_maximum
    return props


@dataclass(slots=True)
class SubscriberStats:
    received: int = 0  # to store (the bulk lane's copies of fast-lane messages: lane_copies)
    acked: int = 0
    connects: int = 0
    connect_failures: int = 0
    db_failures: int = 0  # messages left unacknowledged because the database was away
    parked: int = 0  # messages waiting now for their enterprise's registration
    lane_copies: int = 0  # fast kinds also received on the bulk lane's catch-all: acknowledged unstored


@dataclass(frozen=True, slots=True)
class _Token:
    client: mqtt.Client
    mid: int
    qos: int
    generation: int  # the session it came in (acknowledged only on that one)
    copy: bool = False  # the bulk lane's copy of a fast-lane message: acknowledged, not stored


class Subscriber:
    """One worker's share of the feed: receive, store in batches, then acknowledge."""

    def __init__(
        self,
        settings: BrokerSettings,
        dsn: str,
        ingestor: Ingestor,
        clock: Clock | None = None,
        *,
        batch: BatchSettings | None = None,
        batch_metrics: BatchMetrics | None = None,
        federation: bool = False,  # also the children's forwarded messages (hazmon/v1/fed/...)
    ) -> None:
        self.settings = settings
        self.topics = lane_topics(settings.group, federation)
        self._legacy = _legacy_bulk_topics(settings.group, federation)
        self._fast_filters = [t.split("/", 2)[2] for t in self.topics["fast"]]  # without $share/<group>/
        self.dsn = dsn
        self.ingestor = ingestor
        self.clock = clock or (lambda: datetime.now(UTC))
        self.batch = batch or BatchSettings()
        self.batcher = BatchIngestor(ingestor, self.batch.park_s, batch_metrics)
        self.stats = SubscriberStats()
        self.connected = threading.Event()  # subscribed and receiving (readiness)
        self._lost = threading.Event()
        self._lock = threading.Lock()
        self._generation = 0
        self._subscribed: set[str] = set()
        self._clients: dict[str, mqtt.Client] = {}
        self._bulk_connected = False
        self._bulk_sent = False  # the catch-all SUBSCRIBE sent in this session
        self._queues: dict[str, queue.Queue[Item[_Token]]] = {"bulk": queue.Queue(), "fast": queue.Queue()}
        self._parked: dict[str, int] = {"bulk": 0, "fast": 0}

    # ------------------------------------------------------------ paho callbacks (network threads)

    def _on_connect(self, c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        code = int(getattr(rc, "value", rc))  # type: ignore[call-overload]
        if code != 0:
            log.error("bureau broker refused the connection", reason_code=code)
            self._lost.set()
            return
        lane = str(u)
        if lane == "fast":
            c.subscribe([(t, 1) for t in self.topics[lane]])
            return
        # a session of before the catch-all had each bulk kind on its own: not any more (twice else)
        c.unsubscribe(self._legacy)
        with self._lock:
            self._bulk_connected = True
        self._subscribe_bulk_after_fast()

    def _subscribe_bulk_after_fast(self) -> None:
        """Subscribe the bulk lane's catch-all once its session is up and the fast lane's SUBACK came.

        Called on both events, whichever comes last subscribes (once a session). So a fast kind
        that reaches the bulk lane always reaches the fast lane too (the copy is acknowledged
        unstored), even after a broker restart that dropped every shared subscription.
        """
        with self._lock:
            now = self._bulk_connected and "fast" in self._subscribed and not self._bulk_sent
            self._bulk_sent = self._bulk_sent or now
        if now:
            self._clients["bulk"].subscribe([(t, 1) for t in self.topics["bulk"]])

    def _on_subscribe(self, c: mqtt.Client, u: object, mid: int, rcs: object, props: object) -> None:
        codes = [int(getattr(r, "value", r)) for r in rcs]  # type: ignore[attr-defined]
        lane = str(u)
        if any(code >= 0x80 for code in codes):
            log.error(
                "bureau subscription refused",
                reason_codes=codes,
                topics=self.topics[lane],
            )
            self._lost.set()
            return
        with self._lock:
            self._ready(lane)
        if lane == "fast":
            self._subscribe_bulk_after_fast()

    def _ready(self, lane: str) -> None:
        """``lane`` receives (under the lock): ready (/readyz) once both lanes do.

        The fast lane by its SUBACK. The bulk lane by its SUBACK or its first message, whichever
        comes first: a worker restarted after an outage gets its session's backlog before the
        catch-all's SUBACK, which waits behind up to ``receive_maximum`` queued messages in the
        stream (measured: /readyz 11–12 s after the start at the national size with 4,000 in
        flight, the worker storing all the while); a message delivered proves the subscription.
        """
        if lane in self._subscribed:
            return
        self._subscribed.add(lane)
        if self._subscribed == {"bulk", "fast"}:
            self.connected.set()
            log.info("bureau subscribed", group=self.settings.group)

    def _on_disconnect(self, c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        self.connected.clear()
        self._lost.set()

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        lane = str(u)
        copy = (
            lane == "bulk"
            and msg.topic.rsplit("/", 1)[-1] not in BULK_KINDS
            and any(mqtt.topic_matches_sub(f, msg.topic) for f in self._fast_filters)
        )
        with self._lock:
            if copy:
                self.stats.lane_copies += 1
            else:
                self.stats.received += 1
            gen = self._generation
            if lane == "bulk":
                self._ready(lane)
        token = _Token(c, msg.mid, msg.qos, gen, copy)
        self._queues[lane].put(Item(bytes(msg.payload), msg.topic, self.clock(), token))

    # ------------------------------------------------------------ the lanes (one thread each)

    def _take(self, lane: str, stop: threading.Event, timeout: float) -> list[Item[_Token]]:
        q = self._queues[lane]
        bulk = lane == "bulk"
        most = self.batch.max_messages if bulk else self.batch.fast_max_messages
        try:
            items = [q.get(timeout=timeout)]
        except queue.Empty:
            return []
        until = time.monotonic() + (self.batch.max_wait_s if bulk else 0.0)
        while len(items) < most and not stop.is_set():
            try:
                left = until - time.monotonic()
                items.append(q.get(timeout=left) if left > 0 else q.get_nowait())
            except queue.Empty:
                break
        return items

    def _lane(self, lane: str, stop: threading.Event) -> None:
        conn: Conn | None = None
        parked: list[Item[_Token]] = []
        retry_at = 0.0
        try:
            while not stop.is_set():
                items = self._take(lane, stop, 0.05 if parked else 0.2)
                gen = self._generation
                parked = [p for p in parked if p.token.generation == gen]
                items = [i for i in items if i.token.generation == gen]  # older: sent again anyway
                items = self._ack_copies(items)
                retry = bool(parked) and (bool(items) or time.monotonic() >= retry_at)
                batch, parked = (parked + items, []) if retry else (items, parked)
                if not batch:
                    self._set_parked(lane, len(parked))
                    continue
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = psycopg.connect(
                            self.dsn,
                            autocommit=True,
                            connect_timeout=5,
                            application_name=f"hazmon-bureau-{lane}",
                        )
                    result = self.batcher.handle(conn, batch, self.clock())
                except (psycopg.Error, OSError) as e:
                    # not acknowledged: the broker sends them again when the session resumes
                    with self._lock:
                        self.stats.db_failures += len(batch)
                    log.warning("bureau database away, messages left unacknowledged",
                                lane=lane, messages=len(batch), error=str(e).strip())  # fmt: skip
                    if conn is not None:
                        conn.close()
                    conn, parked = None, []
                    self._set_parked(lane, 0)
                    self._lost.set()
                    continue
                except Exception:  # never let a lane die silently: reconnect instead
                    log.exception("bureau subscriber failed on a batch, reconnecting", lane=lane)
                    parked = []
                    self._set_parked(lane, 0)
                    self._lost.set()
                    continue
                acked = 0
                for it, _ in result.done:
                    if it.token.generation == self._generation:
                        it.token.client.ack(it.token.mid, it.token.qos)
                        acked += 1
                with self._lock:
                    self.stats.acked += acked
                parked += result.parked
                if result.parked:
                    retry_at = time.monotonic() + self.batch.park_retry_s
                self._set_parked(lane, len(parked))
        finally:
            if conn is not None:
                conn.close()

    def _ack_copies(self, items: list[Item[_Token]]) -> list[Item[_Token]]:
        """Acknowledge the bulk lane's copies of fast-lane messages (the fast lane stores those)."""
        copies = [i for i in items if i.token.copy]
        for it in copies:
            it.token.client.ack(it.token.mid, it.token.qos)
        return [i for i in items if not i.token.copy] if copies else items

    def _set_parked(self, lane: str, n: int) -> None:
        with self._lock:
            self._parked[lane] = n
            self.stats.parked = sum(self._parked.values())
        self.batcher.metrics.parked.set(self.stats.parked)

    # ------------------------------------------------------------ the loop

    def _client(self, lane: str) -> mqtt.Client:
        s = self.settings
        c = mqtt_client(s, s.client_id if lane == "bulk" else f"{s.client_id}-fast", manual_ack=True)
        c.user_data_set(lane)
        c.on_connect = self._on_connect
        c.on_subscribe = self._on_subscribe
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        return c

    def _session(self, stop: threading.Event) -> None:
        s = self.settings
        with self._lock:
            self._generation += 1
            self._subscribed.clear()
            self._bulk_connected = self._bulk_sent = False
        for q in self._queues.values():  # the last session's messages come again in this one
            while not q.empty():
                q.get_nowait()
        self._lost.clear()
        self.stats.connects += 1
        clients: list[mqtt.Client] = []
        try:
            for lane in ("bulk", "fast"):
                c = self._client(lane)
                self._clients[lane] = c
                try:
                    c.connect(s.host, s.port, s.keepalive_s, clean_start=False,
                              properties=connect_props(s, self.batch.receive_maximum))  # fmt: skip
                except OSError as e:
                    self.stats.connect_failures += 1
                    raise ConnectionError(f"bureau broker {s.url}: {e}") from e
                c.loop_start()
                clients.append(c)
            while not stop.is_set() and not self._lost.is_set():
                stop.wait(0.05)
        finally:
            self.connected.clear()
            for c in clients:
                c.disconnect()
                c.loop_stop()

    def run(self, stop: threading.Event) -> None:
        """Receive until ``stop`` is set; reconnect with back-off after a broker or database outage."""
        halt = threading.Event()  # the lanes end after the sessions
        lanes = [threading.Thread(target=self._lane, args=(lane, halt), name=f"bureau-{lane}", daemon=True)
                 for lane in ("bulk", "fast")]  # fmt: skip
        for t in lanes:
            t.start()
        backoff = 0.0
        try:
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
        finally:
            halt.set()
            for t in lanes:
                t.join(30)
