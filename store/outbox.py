"""An outbox table published to an MQTT broker in order, each row marked sent only on its PUBACK.

The transactional-outbox machinery both ends of the link share: the enterprise's uplink
(``uplink_outbox``, `hazmon.uplink`) and a bureau forwarding to its parent bureau
(``bureau_forward``, `hazmon.bureau.forward`). A row is written in the transaction of what it
reports; `OutboxSender` claims the unsent rows in ``seq`` order, publishes them with QoS 1 and
marks sent only the prefix the broker acknowledged. Anything else (no connection, a PUBACK
missing after ``ack_timeout_s``, a refusal reason code) drops the client: the next pass
reconnects and replays from the first unsent row, unchanged (same ``message_id``), so a
receiver storing by id counts each message once. At least once, in order the first time.

The session is persistent (MQTT 5 ``clean_start=False`` with a session expiry, or 3.1.1
``clean_session=False``). Runs in a thread (paho is blocking): ``asyncio.to_thread(sender.run, stop)``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import paho.mqtt.client as mqtt
import psycopg
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql

from hazmon.store.db import connect

__all__ = [
    "MalformedRowError",
    "Outbox",
    "OutboxSender",
    "PublisherSettings",
    "Row",
    "SenderStats",
    "next_backoff",
]

log = structlog.get_logger("hazmon.store.outbox")

Conn = psycopg.Connection[tuple[object, ...]]
Row = tuple[object, ...]  # (seq, attempts, *the outbox's columns)


def next_backoff(prev: float, cap: float) -> float:
    """The wait after one more failure in a row: 0.1 s, then doubled each time, at most ``cap``."""
    return min(max(prev * 2, 0.1), cap)


# ---------------------------------------------------------------- the table


@dataclass(frozen=True, slots=True)
class Outbox:
    """One outbox table: ``seq`` (send order), ``attempts``, ``sent_at`` and the ``columns`` a row carries."""

    table: str
    columns: tuple[str, ...]

    def claim(self, conn: Conn, limit: int) -> list[Row]:
        """The first ``limit`` unsent rows in ``seq`` order as (seq, attempts, *columns), attempts counted up.

        Commit after it (autocommit) so the attempt is counted even when the publish fails.
        """
        t = sql.Identifier(self.table)
        q = sql.SQL(
            "UPDATE {t} SET attempts = attempts + 1 WHERE seq IN"
            " (SELECT seq FROM {t} WHERE sent_at IS NULL ORDER BY seq LIMIT %s)"
            " RETURNING seq, attempts, {cols}"
        ).format(t=t, cols=sql.SQL(", ").join(map(sql.Identifier, self.columns)))
        rows = conn.execute(q, (limit,)).fetchall()
        return sorted(rows, key=lambda r: int(r[0]))  # type: ignore[call-overload]  # RETURNING has no order

    def mark_sent(self, conn: Conn, seqs: Sequence[int]) -> int:
        """Mark rows acknowledged by the broker; how many were still unsent."""
        if not seqs:
            return 0
        q = sql.SQL("UPDATE {t} SET sent_at = now() WHERE seq = ANY(%s) AND sent_at IS NULL").format(
            t=sql.Identifier(self.table)
        )
        return conn.execute(q, (list(seqs),)).rowcount

    def pending(self, conn: Conn) -> int:
        """How many rows wait to be sent."""
        q = sql.SQL("SELECT count(*) FROM {t} WHERE sent_at IS NULL").format(t=sql.Identifier(self.table))
        row = conn.execute(q).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]


# ---------------------------------------------------------------- the sender


class PublisherSettings(Protocol):
    """What `OutboxSender` reads of its settings (the uplink's and the bureau's ``parent:``)."""

    @property
    def url(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def tls(self) -> bool: ...
    @property
    def username(self) -> str | None: ...
    @property
    def ca_file(self) -> str | None: ...
    @property
    def cert_file(self) -> str | None: ...
    @property
    def key_file(self) -> str | None: ...
    @property
    def protocol(self) -> str: ...
    @property
    def session_expiry_s(self) -> int: ...
    @property
    def keepalive_s(self) -> int: ...
    @property
    def batch(self) -> int: ...
    @property
    def ack_timeout_s(self) -> float: ...
    @property
    def poll_interval_s(self) -> float: ...
    @property
    def retry_max_s(self) -> float: ...
    def password(self) -> str | None: ...


class MalformedRowError(ValueError):
    """A row that cannot be published (its payload no longer fits the schema): logged and skipped."""


# a claimed row and now -> (topic, body); raises MalformedRowError for a row that cannot go out
Render = Callable[[Row, datetime], tuple[str, bytes]]


@dataclass(slots=True)
class SenderStats:
    """Counters (visible in the log; the daemons export them as metrics)."""

    published: int = 0  # PUBLISH packets handed to the broker, replays included
    acked: int = 0  # rows marked sent on their PUBACK
    replayed: int = 0  # publishes of rows already published once (after an outage)
    connects: int = 0
    connect_failures: int = 0
    refused: int = 0  # PUBACKs with an error reason code (MQTT 5: e.g. 0x87 not authorized)
    malformed: int = 0  # rows whose payload no longer fits the schema: logged and skipped
    failures: int = 0  # passes that ended without all acknowledged (broker or database away): retried
    no_subscriber: int = 0  # PUBACK 0x10 "no matching subscribers" while require_subscriber: replayed
    throttled: int = 0  # HTTPS transport: 429 answers (the bureau's flood limit); sent again later


_NO_MATCHING_SUBSCRIBERS = 0x10  # MQTT 5 PUBACK reason code


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


class OutboxSender:
    """Sends one database's outbox to a broker, in ``seq`` order, at least once.

    ``name`` starts its log lines and errors (``uplink``, ``forward``). ``lock_key``: a
    PostgreSQL advisory lock held by the sender's session while it works, so of several
    processes on one database only one sends (the others stand by, `standby`).
    ``require_subscriber`` (MQTT 5): a PUBACK with reason code 0x10 "no matching subscribers"
    is not an acknowledgement — the broker kept the message for nobody (Mosquitto 2.0 does not
    restore *shared* subscriptions of offline sessions after a restart, so until the receiver
    subscribes again a message would be dropped): the row stays unsent and is replayed.
    """

    def __init__(
        self,
        settings: PublisherSettings,
        dsn: str,
        outbox: Outbox,
        render: Render,
        *,
        client_id: str,
        name: str = "outbox",
        lock_key: int | None = None,
        require_subscriber: bool = False,
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.outbox = outbox
        self.render = render
        self.client_id = client_id
        self.name = name
        self.lock_key = lock_key
        self.require_subscriber = require_subscriber
        self.stats = SenderStats()
        self.standby = False  # another process holds the lock and sends
        self.last_error = ""  # why the link is down ("" while it works)
        self._client: mqtt.Client | None = None
        self._link: _Link | None = None
        self._conn: Conn | None = None
        self._locked = False

    @property
    def connected(self) -> bool:
        """Connected to the broker now."""
        link = self._link
        return link is not None and link.connected.is_set() and not link.lost.is_set()

    # ------------------------------------------------------------ connections

    def _db(self) -> Conn:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = connect(self.dsn, autocommit=True)
            self._locked = False
        return self._conn

    def _holds_lock(self) -> bool:
        if self.lock_key is None or self._locked:
            return True
        row = self._db().execute("SELECT pg_try_advisory_lock(%s)", (self.lock_key,)).fetchone()
        self._locked = bool(row and row[0])
        self.standby = not self._locked
        return self._locked

    def _connect(self) -> tuple[mqtt.Client, _Link]:
        if self._client is not None and self._link is not None and not self._link.lost.is_set():
            return self._client, self._link
        self._drop()
        s = self.settings
        v5 = s.protocol == "5"
        link = _Link()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
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
            raise ConnectionError(f"{self.name} broker {s.url}: {e}") from e
        c.loop_start()
        self._client, self._link = c, link
        deadline = time.monotonic() + s.ack_timeout_s
        while not link.connected.wait(0.01):
            if link.lost.is_set() or time.monotonic() > deadline:
                self.stats.connect_failures += 1
                self._drop()
                raise ConnectionError(
                    f"{self.name} broker {s.url} refused or did not answer (rc {link.connect_rc})"
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
            if self._locked and self.lock_key is not None and not self._conn.broken:
                # released now, not when the server gets round to ending the session: another
                # process trying at once after this returns takes it over (it stood by until then)
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.lock_key,))
            self._conn.close()  # ends the session: the advisory lock goes with it
            self._conn = None
            self._locked = False

    # ------------------------------------------------------------ sending

    def send_pending(self) -> int:
        """Send every unsent row, in order; how many were acknowledged (0 while standing by).

        Raises:
            ConnectionError: the broker is unreachable or stopped acknowledging; the rows not
                acknowledged stay unsent and the next call replays them.
        """
        total = 0
        while True:
            if not self._holds_lock():
                self._drop()
                return total
            c, link = self._connect()  # before claiming: an outage does not count as an attempt
            rows = self.outbox.claim(self._db(), self.settings.batch)
            if not rows:
                return total
            with link.lock:
                link.acks.clear()
            mids: list[int] = []
            topics: dict[int, str] = {}  # mid -> topic (for what the log and the error name)
            skip: list[int] = []
            now = datetime.now(UTC)
            for r in rows:
                seq, attempts = int(r[0]), int(r[1])  # type: ignore[call-overload]
                try:
                    where, body = self.render(r, now)
                except MalformedRowError as e:
                    self.stats.malformed += 1
                    log.error(f"{self.name} row malformed, skipped", seq=seq, reason=str(e))
                    skip.append(seq)
                    mids.append(-1)
                    continue
                info = c.publish(where, body, qos=1)
                self.stats.published += 1
                if attempts > 1:
                    self.stats.replayed += 1
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                mids.append(info.mid)
                topics[info.mid] = where
            unmatched: list[str] = []
            done = self._acked_prefix(rows, mids, link, topics, unmatched)
            self.outbox.mark_sent(self._db(), done + skip)
            self.stats.acked += len(done)
            total += len(done)
            if len(done) + len(skip) < len(rows):
                self._drop()
                if unmatched:
                    raise ConnectionError(
                        f"{self.name} broker {self.settings.url}: no subscriber for {unmatched[0]} (PUBACK"
                        " 0x10): the receiver's subscription is away (a broker restart), or the receiver"
                        " does not take this kind (older than this sender); it and the messages after it"
                        " are kept and replayed"
                    )
                raise ConnectionError(
                    f"{self.name} broker {self.settings.url}: {len(rows) - len(done) - len(skip)} of "
                    f"{len(rows)} messages not acknowledged (or no subscriber there yet); they are"
                    " replayed on reconnect"
                )

    def _acked_prefix(
        self, rows: list[Row], mids: list[int], link: _Link, topics: dict[int, str], unmatched: list[str]
    ) -> list[int]:
        """The seqs of the leading rows acknowledged with success, waiting up to ``ack_timeout_s``.

        The topic of a message answered 0x10 "no matching subscribers" goes into ``unmatched``.
        """
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
                    log.error(f"{self.name} message refused by the broker", seq=r[0], reason_code=rc)
                    break
                if rc == _NO_MATCHING_SUBSCRIBERS and self.require_subscriber:
                    self.stats.no_subscriber += 1
                    unmatched.append(topics.get(m, ""))
                    log.warning(
                        f"{self.name} broker has no subscriber for it (PUBACK 0x10): kept, replayed",
                        seq=r[0],
                        topic=topics.get(m),
                    )
                    break
                done.append(int(r[0]))  # type: ignore[call-overload]
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
                backoff = next_backoff(backoff, self.settings.retry_max_s)
                self.stats.failures += 1
                self.last_error = str(e)
                log.warning(f"{self.name} down, retrying", error=str(e), retry_in_s=backoff)
                if self._conn is not None and self._conn.broken:
                    self._conn = None
                    self._locked = False
                stop.wait(backoff)
        self.close()
