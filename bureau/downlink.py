"""The bureau's downlink: steps on an alarm and warnings sent down to the enterprise through an outbox.

`enqueue` adds a message (a `BureauStep` or a `BureauWarning`) to ``bureau_downlink`` in the
caller's transaction (the one that records the step or the warning's change), so the change and
its sending are one. `DownlinkSender` publishes the unsent rows in ``seq`` order on
``hazmon/v1/<enterprise>/down/<kind>`` at QoS 1 and marks a row sent only on its PUBACK: a
broker outage leaves the rows unsent and the next pass replays them with the same
``message_id``. One sender at a time works the outbox (a transaction-level advisory lock), so
several worker processes may each run one.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
import structlog
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from hazmon.bureau.config import BrokerSettings
from hazmon.bureau.subscriber import mqtt_client
from hazmon.plant.link import SCHEMA_VERSION, BureauStep, BureauWarning, Envelope, Supervision, topic
from hazmon.plant.schema import describe

__all__ = ["DownlinkSender", "enqueue", "pending"]

log = structlog.get_logger("hazmon.bureau.downlink")

Conn = psycopg.Connection[tuple[object, ...]]
_LOCK_KEY = 0x6275_646C  # pg_advisory_xact_lock: one downlink sender at a time


def enqueue(
    conn: Conn, enterprise_id: str, region_code: str, payload: BureauStep | BureauWarning | Supervision
) -> int:
    """Add ``payload`` to the downlink outbox (caller's transaction); its ``seq``."""
    row = conn.execute(
        "INSERT INTO bureau_downlink (message_id, enterprise_id, region_code, kind, payload)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING seq",
        (uuid.uuid4(), enterprise_id, region_code, payload.kind, Jsonb(payload.model_dump(mode="json"))),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def pending(conn: Conn) -> int:
    row = conn.execute("SELECT count(*) FROM bureau_downlink WHERE sent_at IS NULL").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


class DownlinkSender:
    """Publishes the downlink outbox; `wake` makes it look now instead of at its next poll."""

    def __init__(self, settings: BrokerSettings, dsn: str, poll_interval_s: float = 1.0) -> None:
        self.settings = settings
        self.dsn = dsn
        self.poll_interval_s = poll_interval_s
        self.ack_timeout_s = 10.0
        self.sent = 0
        self.failures = 0
        self.malformed = 0
        self._wake = threading.Event()
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._lost = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def _connect(self) -> mqtt.Client:
        if self._client is not None and not self._lost.is_set():
            return self._client
        self._drop()
        s = self.settings
        c = mqtt_client(s, f"{s.client_id}-down")
        self._connected.clear()
        self._lost.clear()

        def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            if int(getattr(rc, "value", rc)) == 0:  # type: ignore[call-overload]
                self._connected.set()
            else:
                self._lost.set()

        def on_disconnect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            self._lost.set()

        c.on_connect, c.on_disconnect = on_connect, on_disconnect
        try:
            c.connect(s.host, s.port, s.keepalive_s)
        except OSError as e:
            raise ConnectionError(f"bureau broker {s.url}: {e}") from e
        c.loop_start()
        self._client = c
        deadline = time.monotonic() + self.ack_timeout_s
        while not self._connected.wait(0.01):
            if self._lost.is_set() or time.monotonic() > deadline:
                self._drop()
                raise ConnectionError(f"bureau broker {s.url} refused or did not answer")
        return c

    def _drop(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            c.disconnect()
            c.loop_stop()

    def send_pending(self, conn: Conn, batch: int = 100) -> int:
        """Publish the unsent rows in order, marking each sent on its PUBACK; how many were sent.

        Raises:
            ConnectionError: the broker is away or stopped acknowledging (the rest stay unsent).
        """
        c = self._connect()
        total = 0
        while True:
            with conn.transaction():
                got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,)).fetchone()
                if not got or not got[0]:
                    return total  # another worker is sending
                rows = conn.execute(
                    "UPDATE bureau_downlink SET attempts = attempts + 1 WHERE seq IN (SELECT seq FROM"
                    " bureau_downlink WHERE sent_at IS NULL ORDER BY seq LIMIT %s)"
                    " RETURNING seq, message_id, enterprise_id, region_code, kind, payload",
                    (batch,),
                ).fetchall()
                rows.sort(key=lambda r: int(r[0]))  # type: ignore[call-overload]
                done: list[int] = []
                failed: ConnectionError | None = None
                for seq, mid, eid, region, kind, payload in rows:
                    try:
                        env = self._envelope((seq, mid, eid, region, kind, payload))
                    except ValidationError as e:  # a row edited by hand: logged and skipped
                        self.malformed += 1
                        log.error("bureau downlink row malformed, skipped", seq=seq, reason=describe(e))
                        done.append(int(str(seq)))
                        continue
                    info = c.publish(topic(str(eid), str(kind)), env.model_dump_json().encode(), qos=1)
                    try:
                        info.wait_for_publish(self.ack_timeout_s)
                    except (RuntimeError, ValueError) as e:
                        failed = ConnectionError(f"bureau broker {self.settings.url}: {e}")
                    if failed is None and not info.is_published():
                        failed = ConnectionError(
                            f"bureau broker {self.settings.url}: no PUBACK for seq {seq}"
                        )
                    if failed is not None:
                        break
                    done.append(int(seq))  # type: ignore[call-overload]
                # the acknowledged prefix is marked sent (and the attempts counted) even when
                # the broker went away in the middle: the rest is replayed on the next pass
                self._mark(conn, done)
            if failed is not None:
                self._drop()
                raise failed
            total += len(done)
            self.sent += len(done)
            if len(rows) < batch:
                return total

    @staticmethod
    def _envelope(row: tuple[object, ...]) -> Envelope:
        seq, mid, eid, region, kind, payload = row
        return Envelope.model_validate(
            {
                "schema_version": SCHEMA_VERSION,
                "message_id": str(mid),
                "seq": seq,
                "enterprise_id": eid,
                "region_code": region,
                "kind": kind,
                "sent_at": datetime.now(UTC).isoformat(),
                "payload": payload,
            },
            strict=False,
        )

    @staticmethod
    def _mark(conn: Conn, seqs: list[int]) -> None:
        if seqs:
            conn.execute("UPDATE bureau_downlink SET sent_at = now() WHERE seq = ANY(%s)", (seqs,))

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set; back off while the broker or the database is away."""
        backoff = 0.0
        conn: Conn | None = None
        while not stop.is_set():
            try:
                if conn is None or conn.closed or conn.broken:
                    conn = psycopg.connect(
                        self.dsn, autocommit=True, connect_timeout=5, application_name="hazmon-bureau"
                    )
                self.send_pending(conn)
                backoff = 0.0
                self._wake.wait(self.poll_interval_s)
                self._wake.clear()
            except (ConnectionError, OSError, psycopg.Error) as e:
                self.failures += 1
                backoff = min(max(backoff * 2, 0.1), self.settings.retry_max_s)
                log.warning("bureau downlink down, retrying", error=str(e).strip(), retry_in_s=backoff)
                if conn is not None and conn.broken:
                    conn = None
                stop.wait(backoff)
        self._drop()
        if conn is not None:
            conn.close()
