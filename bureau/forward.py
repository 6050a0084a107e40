"""Federation, the child's side: what this bureau stores goes on to its parent bureau, store-and-forward.

Every envelope the bureau stores the first time (by ``message_id``: a duplicate is not stored,
so not forwarded again) is put in ``bureau_forward`` (migration 0810) **in the transaction that
stores it** (`enqueue`, wired as the `hazmon.bureau.ingest.Ingestor`'s ``on_stored``). The
`Forwarder` publishes the rows in order, QoS 1, to the parent's broker on
``hazmon/v1/fed/<username>/<enterprise>/up/<kind>`` — the bytes exactly as the enterprise sent
them (same ``message_id``, ``seq``, ``region_code``) — and marks a row sent only on its PUBACK
(`hazmon.store.outbox.OutboxSender`, the machinery the enterprise's uplink uses) — and only when
that PUBACK does not say "no matching subscribers" (0x10: the parent's subscription is not
there, e.g. just after its broker restarted; the row is replayed). An outage of
the parent or its broker leaves the rows unsent; they are replayed in order when it returns, and
the parent stores each once by its id. Of several workers on one database, one forwards at a
time (a PostgreSQL advisory lock); the others stand by.

Messages stored before ``parent:`` was set were never queued: `backfill` (``hazmon bureau forward
backfill --since``) queues them, in the order they were received, once (a re-run queues nothing
again). Their bytes were not kept, so each envelope is rebuilt from ``bureau_message``: the same
``message_id``, ``seq``, ``enterprise_id``, ``kind``, ``sent_at`` and payload, the ``region_code``
of the enterprise's registration at that ``seq`` — equal for the parent, not byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg

from hazmon.bureau.config import ParentSettings
from hazmon.plant.link import Envelope, LinkError, parse_envelope, topic
from hazmon.plant.link.federation import fed_topic
from hazmon.store.outbox import MalformedRowError, Outbox, OutboxSender, Row

__all__ = ["FORWARD_OUTBOX", "Backfill", "Forwarder", "backfill", "enqueue", "pending"]

Conn = psycopg.Connection[tuple[object, ...]]
FORWARD_OUTBOX = Outbox("bureau_forward", ("message_id", "enterprise_id", "kind", "body"))
_LOCK_KEY = 0x6675_7277  # pg_try_advisory_lock: one forwarder per bureau database


def enqueue(conn: Conn, env: Envelope, raw: bytes) -> None:
    """Queue ``raw`` (the envelope ``env`` as received) for the parent, in the caller's transaction."""
    conn.execute(
        "INSERT INTO bureau_forward (message_id, enterprise_id, kind, body) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (message_id) DO NOTHING",
        (env.message_id, env.enterprise_id, env.kind, raw),
    )


def pending(conn: Conn) -> int:
    """How many messages wait to go to the parent."""
    return FORWARD_OUTBOX.pending(conn)


@dataclass(frozen=True, slots=True)
class Backfill:
    """What `backfill` did: ``queued`` now, ``already`` queued before, ``unbuilt`` (message id, why)."""

    queued: int
    already: int
    unbuilt: tuple[tuple[str, str], ...]


# the messages stored since a time and not queued yet, in the order they were received (an
# enterprise's by its seq), each with the region code its envelope carried: that of the
# enterprise's registration at or before it (a registration names its own)
_UNQUEUED = """
SELECT m.message_id, m.enterprise_id, m.seq, m.kind, m.sent_at, m.payload,
       coalesce((SELECT r.payload -> 'enterprise' ->> 'region_code' FROM bureau_message r
                 WHERE r.enterprise_id = m.enterprise_id AND r.kind = 'registration' AND r.seq <= m.seq
                 ORDER BY r.seq DESC LIMIT 1),
                (SELECT e.region_code FROM bureau_enterprise e WHERE e.enterprise_id = m.enterprise_id))
FROM bureau_message m
WHERE m.received_at >= %s
  AND NOT EXISTS (SELECT 1 FROM bureau_forward f WHERE f.message_id = m.message_id)
ORDER BY m.received_at, m.enterprise_id, m.seq
"""


def rebuild(row: tuple[object, ...]) -> tuple[Envelope, bytes]:
    """A ``_UNQUEUED`` row → the envelope the enterprise sent and its JSON bytes.

    Raises:
        LinkError: the stored message no longer makes a valid envelope (or has no region code).
    """
    mid, eid, seq, kind, sent_at, payload, region = row
    if region is None:
        raise LinkError("region_code: no registration of this enterprise is stored")
    doc = {
        "schema_version": 1,
        "message_id": str(mid),
        "seq": seq,
        "enterprise_id": eid,
        "region_code": region,
        "kind": kind,
        "sent_at": sent_at.isoformat() if isinstance(sent_at, datetime) else sent_at,
        "payload": payload,
    }
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    return parse_envelope(raw, topic(str(eid), str(kind))), raw


def backfill(read: Conn, write: Conn, since: datetime, batch: int = 500) -> Backfill:
    """Queue for the parent every message stored at or after ``since`` and not queued yet.

    ``read`` streams the messages (a server-side cursor in its own transaction); ``write``
    (autocommit) queues them ``batch`` at a time, each batch committed: an interrupted run is
    continued by the next, and a message already queued is never queued twice
    (``ON CONFLICT (message_id) DO NOTHING``).
    """
    row = write.execute(
        "SELECT count(*) FROM bureau_forward f JOIN bureau_message m USING (message_id)"
        " WHERE m.received_at >= %s",
        (since,),
    ).fetchone()
    already = int(str(row[0])) if row else 0
    queued, unbuilt = 0, []
    todo: list[tuple[object, ...]] = []

    def flush() -> int:
        if not todo:
            return 0
        with write.transaction(), write.cursor() as cur:
            cur.executemany(
                "INSERT INTO bureau_forward (message_id, enterprise_id, kind, body) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (message_id) DO NOTHING RETURNING seq",
                todo,
                returning=True,
            )
            n = 0
            while True:
                n += len(cur.fetchall())
                if not cur.nextset():
                    break
        todo.clear()
        return n

    with read.transaction(), read.cursor(name="hazmon_forward_backfill") as cur:
        cur.itersize = batch
        cur.execute(_UNQUEUED, (since,))
        for r in cur:
            try:
                env, raw = rebuild(r)
            except LinkError as e:
                unbuilt.append((str(r[0]), str(e)))
                continue
            todo.append((env.message_id, env.enterprise_id, env.kind, raw))
            if len(todo) >= batch:
                queued += flush()
        queued += flush()
    return Backfill(queued, already, tuple(unbuilt))


def render(child: str, r: Row) -> tuple[str, bytes]:
    """A claimed row (seq, attempts, message_id, enterprise_id, kind, body) → (fed topic, the same bytes).

    Raises:
        MalformedRowError: the stored bytes are no longer this enterprise's envelope of that kind
            (a row edited by hand never goes out).
    """
    eid, kind, body = str(r[3]), str(r[4]), bytes(r[5])  # type: ignore[call-overload]
    try:
        env = parse_envelope(body, topic(eid, kind))
    except LinkError as e:
        raise MalformedRowError(str(e)) from e
    if str(env.message_id) != str(r[2]):
        raise MalformedRowError(f"message_id: {env.message_id} differs from the row's {r[2]}")
    return fed_topic(child, eid, kind), body


class Forwarder(OutboxSender):
    """Publishes ``bureau_forward`` to the parent bureau's broker (the ``parent:`` section)."""

    def __init__(self, settings: ParentSettings, dsn: str) -> None:
        child = settings.username

        def _render(r: Row, now: datetime) -> tuple[str, bytes]:
            return render(child, r)

        super().__init__(
            settings,
            dsn,
            FORWARD_OUTBOX,
            _render,
            client_id=settings.sender_id,
            name="forward",
            lock_key=_LOCK_KEY,
            require_subscriber=True,  # the parent's broker had the parent's session to deliver it to
        )
        self.pending: int | None = None  # unsent rows at the last look (None: not read yet)

    def send_pending(self) -> int:
        try:
            return super().send_pending()
        finally:
            conn = self._conn
            if conn is not None and not conn.closed and not conn.broken:
                try:
                    self.pending = pending(conn)
                except psycopg.Error:
                    self.pending = None
