"""Telling the bureau's staff of each new warning: a queue in PostgreSQL (``bureau_warning_notice``).

`plan` adds a row per (warning not closed, recipient of its region and colour) not yet there;
`claim` takes the due rows — **red and orange first**, then by age — and moves each ahead by a
lease, so two worker processes never send one at once; the caller sends, then `sent` (sets
``notified_at``: never sent again, a restart included) or `failed` (tried again after a backoff,
given up after the last attempt). What is sent and how is the roof's (the alarm notifiers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from hazmon.plant.regions import Scope, prefix

__all__ = ["Due", "Target", "claim", "counts", "failed", "plan", "sent"]

Conn = psycopg.Connection[Any]
_COLOUR = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}


@dataclass(frozen=True, slots=True)
class Target:
    """A recipient as the queue needs it: its name, region and the colours it gets."""

    name: str
    scope: Scope
    colours: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Due:
    """One notice to send now, with what it is about."""

    warning_id: int
    recipient: str
    attempts: int  # this one included
    colour: int
    kind: str
    enterprise_id: str
    enterprise_name: str
    source_id: str | None
    region_code: str
    raised_at: datetime
    text_zh: str
    text_en: str


def plan(conn: Conn, targets: tuple[Target, ...], now: datetime) -> int:
    """Queue a notice for every open warning a target should hear of and has no row for; how many."""
    n = 0
    for t in targets:
        cur = conn.execute(
            "INSERT INTO bureau_warning_notice (warning_id, recipient, colour, created_at, next_at)"
            " SELECT w.id, %s, w.colour, %s, %s FROM bureau_warning w"
            " WHERE w.state <> 'closed' AND w.region_code LIKE %s AND w.colour = ANY(%s)"
            " ON CONFLICT DO NOTHING",
            (t.name, now, now, prefix(t.scope) + "%", [_COLOUR[c] for c in t.colours]),
        )
        n += cur.rowcount
    return n


def claim(conn: Conn, now: datetime, lease_s: float, limit: int = 50) -> list[Due]:
    """The due notices, red and orange first, each leased for ``lease_s`` (one transaction)."""
    with conn.transaction():
        rows = conn.execute(
            """WITH due AS (
                   SELECT warning_id, recipient FROM bureau_warning_notice
                   WHERE notified_at IS NULL AND gave_up_at IS NULL AND next_at <= %s
                   ORDER BY colour DESC, next_at LIMIT %s FOR UPDATE SKIP LOCKED)
               UPDATE bureau_warning_notice n SET next_at = %s, attempts = n.attempts + 1
               FROM due, bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)
               WHERE n.warning_id = due.warning_id AND n.recipient = due.recipient AND w.id = n.warning_id
               RETURNING n.warning_id, n.recipient, n.attempts, w.colour, w.kind, w.enterprise_id, e.name,
                         w.source_id, w.region_code, w.raised_at, w.text_zh, w.text_en""",
            (now, limit, now + timedelta(seconds=lease_s)),
        ).fetchall()
    out = [
        Due(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], str(r[8]).strip(), r[9], r[10], r[11])
        for r in rows
    ]
    return sorted(out, key=lambda d: (-d.colour, d.raised_at, d.warning_id, d.recipient))


def sent(conn: Conn, d: Due, now: datetime) -> None:
    conn.execute(
        "UPDATE bureau_warning_notice SET notified_at = %s, last_error = '' WHERE warning_id = %s"
        " AND recipient = %s",
        (now, d.warning_id, d.recipient),
    )


def failed(conn: Conn, d: Due, error: str, retry_at: datetime | None, now: datetime) -> None:
    """A failed attempt: tried again at ``retry_at``, or given up (None)."""
    conn.execute(
        "UPDATE bureau_warning_notice SET last_error = %s, next_at = coalesce(%s, next_at),"
        " gave_up_at = CASE WHEN %s::timestamptz IS NULL THEN %s END"
        " WHERE warning_id = %s AND recipient = %s",
        (error[:500], retry_at, retry_at, now, d.warning_id, d.recipient),
    )


def counts(conn: Conn) -> dict[str, int]:
    """Notices by state: sent, pending, gave_up (for the metrics)."""
    r = conn.execute(
        "SELECT count(*) FILTER (WHERE notified_at IS NOT NULL),"
        " count(*) FILTER (WHERE notified_at IS NULL AND gave_up_at IS NULL),"
        " count(*) FILTER (WHERE gave_up_at IS NOT NULL) FROM bureau_warning_notice"
    ).fetchone()
    assert r is not None
    return {"sent": int(r[0]), "pending": int(r[1]), "gave_up": int(r[2])}
