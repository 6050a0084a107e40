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
"""

from __future__ import annotations

from datetime import datetime

import psycopg

from hazmon.bureau.config import ParentSettings
from hazmon.plant.link import Envelope, LinkError, parse_envelope, topic
from hazmon.plant.link.federation import fed_topic
from hazmon.store.outbox import MalformedRowError, Outbox, OutboxSender, Row

__all__ = ["FORWARD_OUTBOX", "Forwarder", "enqueue", "pending"]

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
