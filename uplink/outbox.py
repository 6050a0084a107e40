"""The uplink outbox (table ``uplink_outbox``, migration 0600): enqueue in order, claim in order, mark sent.

One sender per enterprise database claims the unsent rows in ``seq`` order; a row is marked
sent only once the broker acknowledged it, so a crash or an outage replays it with the same
``message_id`` and ``seq`` (the bureau stores it once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg

from hazmon.plant.link import SCHEMA_VERSION, Envelope, Payload

__all__ = ["OutboxRow", "claim", "enqueue", "enqueue_async", "mark_sent", "pending"]

Conn = psycopg.Connection[tuple[object, ...]]
AsyncConn = psycopg.AsyncConnection[tuple[object, ...]]

_INSERT = (
    "INSERT INTO uplink_outbox (message_id, enterprise_id, region_code, kind, payload, dedupe_key)"
    " VALUES (%s, %s, %s, %s, %s::jsonb, %s) ON CONFLICT (dedupe_key) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    seq: int
    message_id: uuid.UUID
    enterprise_id: str
    region_code: str
    kind: str
    payload: dict[str, object]
    attempts: int

    def envelope(self, sent_at: datetime) -> Envelope:
        """The envelope to publish (validated again: a row edited by hand cannot go out malformed).

        Raises:
            pydantic.ValidationError: the stored payload no longer fits the schema.
        """
        return Envelope.model_validate(
            {
                "schema_version": SCHEMA_VERSION,
                "message_id": str(self.message_id),
                "seq": self.seq,
                "enterprise_id": self.enterprise_id,
                "region_code": self.region_code,
                "kind": self.kind,
                "sent_at": sent_at.isoformat(),
                "payload": self.payload,
            },
            strict=False,
        )


def enqueue(
    conn: Conn, enterprise_id: str, region_code: str, payload: Payload, dedupe_key: str | None = None
) -> int | None:
    """Add ``payload`` to the outbox; its ``seq``, or None when ``dedupe_key`` is already there.

    Runs in the caller's transaction, so a message can be enqueued atomically with what it reports.
    """
    row = conn.execute(
        _INSERT + " RETURNING seq", _params(enterprise_id, region_code, payload, dedupe_key)
    ).fetchone()
    return None if row is None else int(row[0])  # type: ignore[call-overload]


async def enqueue_async(
    conn: AsyncConn, enterprise_id: str, region_code: str, payload: Payload, dedupe_key: str | None = None
) -> None:
    """`enqueue` on an async connection, in the caller's transaction, without waiting for an answer.

    Pipeline-friendly (the alarm recorder's transactions are pipelined): nothing is fetched.
    """
    await conn.execute(_INSERT, _params(enterprise_id, region_code, payload, dedupe_key))


def _params(
    enterprise_id: str, region_code: str, payload: Payload, dedupe_key: str | None
) -> tuple[object, ...]:
    return (uuid.uuid4(), enterprise_id, region_code, payload.kind, payload.model_dump_json(), dedupe_key)


def claim(conn: Conn, limit: int) -> list[OutboxRow]:
    """The first ``limit`` unsent rows in ``seq`` order, their ``attempts`` counted up.

    Commit after it so the attempt is counted even when the publish fails.
    """
    rows = conn.execute(
        "UPDATE uplink_outbox SET attempts = attempts + 1 WHERE seq IN"
        " (SELECT seq FROM uplink_outbox WHERE sent_at IS NULL ORDER BY seq LIMIT %s)"
        " RETURNING seq, message_id, enterprise_id, region_code, kind, payload, attempts",
        (limit,),
    ).fetchall()
    out = [
        OutboxRow(
            int(r[0]),  # type: ignore[call-overload]
            r[1],  # type: ignore[arg-type]
            str(r[2]),
            str(r[3]),
            str(r[4]),
            r[5] if isinstance(r[5], dict) else orjson.loads(str(r[5])),
            int(r[6]),  # type: ignore[call-overload]
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: r.seq)  # RETURNING has no order of its own


def mark_sent(conn: Conn, seqs: list[int]) -> int:
    """Mark rows acknowledged by the broker; how many were still unsent."""
    if not seqs:
        return 0
    cur = conn.execute(
        "UPDATE uplink_outbox SET sent_at = now() WHERE seq = ANY(%s) AND sent_at IS NULL", (seqs,)
    )
    return cur.rowcount


def pending(conn: Conn) -> int:
    """How many rows wait to be sent."""
    row = conn.execute("SELECT count(*) FROM uplink_outbox WHERE sent_at IS NULL").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
