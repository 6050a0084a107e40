"""The uplink outbox (table ``uplink_outbox``, migration 0600): enqueue in order, claim in order, mark sent.

One sender per enterprise database claims the unsent rows in ``seq`` order; a row is marked
sent only once the broker acknowledged it, so a crash or an outage replays it with the same
``message_id`` and ``seq`` (the bureau stores it once). The table machinery is the ground's
(`hazmon.store.outbox`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson
import psycopg

from hazmon.plant.link import SCHEMA_VERSION, Envelope, Payload
from hazmon.store.outbox import Outbox, Row

__all__ = [
    "UPLINK_OUTBOX",
    "OutboxRow",
    "claim",
    "enqueue",
    "enqueue_async",
    "mark_sent",
    "outbox_row",
    "pending",
]

Conn = psycopg.Connection[tuple[object, ...]]
AsyncConn = psycopg.AsyncConnection[tuple[object, ...]]

# the generic outbox machinery (hazmon.store.outbox) over this table
UPLINK_OUTBOX = Outbox("uplink_outbox", ("message_id", "enterprise_id", "region_code", "kind", "payload"))

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
    return [outbox_row(r) for r in UPLINK_OUTBOX.claim(conn, limit)]


def outbox_row(r: Row) -> OutboxRow:
    """A claimed row (seq, attempts, *UPLINK_OUTBOX.columns) as an `OutboxRow`."""
    return OutboxRow(
        int(r[0]),  # type: ignore[call-overload]
        r[2],  # type: ignore[arg-type]
        str(r[3]),
        str(r[4]),
        str(r[5]),
        r[6] if isinstance(r[6], dict) else orjson.loads(str(r[6])),
        int(r[1]),  # type: ignore[call-overload]
    )


def mark_sent(conn: Conn, seqs: list[int]) -> int:
    """Mark rows acknowledged by the broker; how many were still unsent."""
    return UPLINK_OUTBOX.mark_sent(conn, seqs)


def pending(conn: Conn) -> int:
    """How many rows wait to be sent."""
    return UPLINK_OUTBOX.pending(conn)
