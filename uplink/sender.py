"""The uplink sender: publishes the outbox to the bureau's broker, in order, marking rows sent on PUBACK.

One pass (`Sender.send_pending`) claims up to ``batch`` unsent rows in ``seq`` order, publishes
them with QoS 1 on ``hazmon/v1/<enterprise>/up/<kind>`` and waits for their PUBACKs; only the
acknowledged prefix is marked sent. Anything else (no connection, a PUBACK missing after
``ack_timeout_s``, a refusal) drops the client: the next pass reconnects and replays from the
first unsent row with the same ``message_id`` and ``seq``. A receiver may see a message twice
(at least once), never out of order the first time it sees it, and counts each once by its id.

The session is persistent (MQTT 5 ``clean_start=False`` with a session expiry, or 3.1.1
``clean_session=False``) so the bureau's subscription queue survives a bureau restart.
Runs in a thread (paho is blocking); the daemon starts `Sender.run` with ``asyncio.to_thread``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

from hazmon.plant.link import topic
from hazmon.plant.schema import describe
from hazmon.store.db import connect
from hazmon.uplink.config import UplinkSettings
from hazmon.uplink.outbox import Conn, OutboxRow, claim, mark_sent

__all__ = ["Sender", "SenderStats"]

log = structlog.get_logger("hazmon.uplink")


@dataclass(slots=True)
class SenderStats:
    """Counters (visible in the log; the daemon exports them as metrics when wired)."""

    published: int = 0  # PUBLISH packets handed to the broker, replays included
    acked: int = 0  # rows marked sent on their PUBACK
    replayed: int = 0  # publishes of rows already published once (after an outage)
    connects: int = 0
    connect_failures: int = 0
    refused: int = 0  # PUBACKs with an error reason code (MQTT 5: e.g. 0x87 not authorized)
    malformed: int = 0  # rows whose payload no longer fits the schema: logged and skipped
    throttled: int = 0  # HTTPS transport: 429 answers (the bureau's flood limit); sent again later


class _Link:
    """One paho client and what its callbacks reported."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.acks: dict[int, int] = {}  # mid -> reason code
        self.connected = threading.Event()
        self.connect_rc: int | None = None
        self.lost = threading.Event()

    def on_connect(self, c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        self.connect_rc = int(getattr(rc, "value", rc))  # type: ignore[call-overload]
        if self.connect_rc == 0:
            self.connected.set()
        else:
            self.lost.set()

    def on_disconnect(self, c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
        self.lost.set()

    def on_publish(self, c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        with self.lock:
            self.acks[mid] = int(getattr(rc, "value", rc))  # type: ignore[call-overload]


class Sender:
    """Sends one enterprise database's outbox to the bureau's broker."""

    def __init__(self, settings: UplinkSettings, dsn: str, enterprise_id: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.enterprise_id = enterprise_id
        self.stats = SenderStats()
        self._client: mqtt.Client | None = None
        self._link: _Link | None = None
        self._conn: Conn | None = None
        self.last_error = ""  # why the link is down ("" while it works)

    @property
    def connected(self) -> bool:
        """Connected to the bureau's broker now."""
        link = self._link
        return link is not None and link.connected.is_set() and not link.lost.is_set()

    # ------------------------------------------------------------ connection

    def _db(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, autocommit=True)
        return self._conn

    def _connect(self) -> tuple[mqtt.Client, _Link]:
        if self._client is not None and self._link is not None and not self._link.lost.is_set():
            return self._client, self._link
        self._drop()
        s = self.settings
        v5 = s.protocol == "5"
        link = _Link()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id or f"hazmon-uplink-{self.enterprise_id}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        c.on_connect = link.on_connect
        c.on_disconnect = link.on_disconnect
        c.on_publish = link.on_publish
        c.max_inflight_messages_set(max(s.batch, 1))
        c.max_queued_messages_set(0)
        if s.username:
            c.username_pw_set(s.username, s.password())
        if s.tls:
            c.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = s.session_expiry_s
        self.stats.connects += 1
        try:
            if v5:
                c.connect(s.host, s.port, s.keepalive_s, clean_start=False, properties=props)
            else:
                c.connect(s.host, s.port, s.keepalive_s)
        except OSError as e:
            self.stats.connect_failures += 1
            raise ConnectionError(f"uplink broker {s.url}: {e}") from e
        c.loop_start()
        self._client, self._link = c, link
        deadline = time.monotonic() + s.ack_timeout_s
        while not link.connected.wait(0.01):
            if link.lost.is_set() or time.monotonic() > deadline:
                self.stats.connect_failures += 1
                self._drop()
                raise ConnectionError(
                    f"uplink broker {s.url} refused or did not answer (rc {link.connect_rc})"
                )
        return c, link

    def _drop(self) -> None:
        c, self._client, self._link = self._client, None, None
        if c is not None:
            c.disconnect()
            c.loop_stop()

    def close(self) -> None:
        self._drop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # ------------------------------------------------------------ sending

    def send_pending(self) -> int:
        """Send every unsent row, in order; how many were acknowledged.

        Raises:
            ConnectionError: the broker is unreachable or stopped acknowledging; the rows not
                acknowledged stay unsent and the next call replays them.
        """
        total = 0
        while True:
            c, link = self._connect()  # before claiming: an outage does not count as an attempt
            rows = claim(self._db(), self.settings.batch)
            if not rows:
                return total
            with link.lock:
                link.acks.clear()
            mids: list[int] = []
            skip: list[int] = []
            now = datetime.now(UTC)
            for r in rows:
                try:
                    body = r.envelope(now).model_dump_json().encode()
                except ValidationError as e:
                    self.stats.malformed += 1
                    log.error("uplink row malformed, skipped", seq=r.seq, reason=describe(e))
                    skip.append(r.seq)
                    mids.append(-1)
                    continue
                info = c.publish(topic(r.enterprise_id, r.kind), body, qos=1)
                self.stats.published += 1
                if r.attempts > 1:
                    self.stats.replayed += 1
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                mids.append(info.mid)
            done = self._acked_prefix(rows, mids, link)
            mark_sent(self._db(), done + skip)
            self.stats.acked += len(done)
            total += len(done)
            if len(done) + len(skip) < len(rows):
                self._drop()
                raise ConnectionError(
                    f"uplink broker {self.settings.url}: {len(rows) - len(done) - len(skip)} of "
                    f"{len(rows)} messages not acknowledged; they are replayed on reconnect"
                )

    def _acked_prefix(self, rows: list[OutboxRow], mids: list[int], link: _Link) -> list[int]:
        """The seqs of the leading rows acknowledged with success, waiting up to ``ack_timeout_s``."""
        deadline = time.monotonic() + self.settings.ack_timeout_s
        wanted = [m for m in mids if m >= 0]
        while time.monotonic() < deadline and not link.lost.is_set():
            with link.lock:
                if all(m in link.acks for m in wanted):
                    break
            time.sleep(0.005)
        done: list[int] = []
        with link.lock:
            for r, m in zip(rows, mids, strict=False):
                if m < 0:
                    continue
                rc = link.acks.get(m)
                if rc is None:
                    break
                if rc >= 0x80:
                    self.stats.refused += 1
                    log.error("uplink message refused by the broker", seq=r.seq, reason_code=rc)
                    break
                done.append(r.seq)
        return done

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set: poll the outbox, reconnect with back-off after an outage."""
        backoff = 0.0
        while not stop.is_set():
            try:
                self.send_pending()
                self.last_error = ""
                backoff = 0.0
                stop.wait(self.settings.poll_interval_s)
            except (ConnectionError, OSError, psycopg.OperationalError) as e:
                backoff = min(max(backoff * 2, 0.1), self.settings.retry_max_s)
                self.last_error = str(e)
                log.warning("uplink down, retrying", error=str(e), retry_in_s=backoff)
                if self._conn is not None and self._conn.broken:
                    self._conn = None
                stop.wait(backoff)
        self.close()
