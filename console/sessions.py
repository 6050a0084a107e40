"""Server-side sessions and the console's audit trail (PostgreSQL, psycopg 3).

The browser holds only a random session id (256 bits) in an HttpOnly, SameSite=Strict
cookie; the table keeps its SHA-256, the user, the CSRF token of the session and the
times. `expiry` is the pure rule every request passes through: a session ends after
``idle_s`` without a request or ``max_s`` after sign-in, whichever comes first, and a
session that ended (logout, expiry) never comes back.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

__all__ = ["Session", "audit", "create", "end", "ended", "expiry", "find", "locked", "new_csrf", "touch"]

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Session:
    id_sha256: str
    username: str
    role: str
    csrf: str
    created_at: datetime
    last_seen_at: datetime


def _sha(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def expiry(s: Session, now: datetime, idle_s: float, max_s: float) -> str | None:
    """Why the session has expired at ``now`` ("idle" or "absolute"), None while it holds."""
    if now - s.created_at >= timedelta(seconds=max_s):
        return "absolute"
    if now - s.last_seen_at >= timedelta(seconds=idle_s):
        return "idle"
    return None


LOCK_FAILURES = 5
LOCK_WINDOW = timedelta(minutes=15)


def locked(failures: list[datetime], now: datetime) -> bool:
    """Whether a name is locked: `LOCK_FAILURES` failed sign-ins within `LOCK_WINDOW` (OWASP ASVS 2.2.1).

    ``failures`` is pruned to the window in place; the lock lifts by itself as they age out.
    """
    failures[:] = [t for t in failures if now - t < LOCK_WINDOW]
    return len(failures) >= LOCK_FAILURES


def create(conn: Conn, username: str, role: str, now: datetime) -> tuple[str, Session]:
    """A new session; returns (the id for the cookie, the session). Sessions ended 90 days ago go."""
    conn.execute("DELETE FROM console_session WHERE ended_at < %s", (now - timedelta(days=90),))
    sid = secrets.token_urlsafe(32)
    s = Session(_sha(sid), username, role, new_csrf(), now, now)
    conn.execute(
        """INSERT INTO console_session (id_sha256, username, role, csrf_token, created_at, last_seen_at)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (s.id_sha256, s.username, s.role, s.csrf, now, now),
    )
    return sid, s


def find(conn: Conn, sid: str) -> Session | None:
    """The open session of this cookie value, or None (unknown or ended)."""
    if not sid or len(sid) > 128:
        return None
    row = conn.execute(
        """SELECT id_sha256, username, role, csrf_token, created_at, last_seen_at FROM console_session
           WHERE id_sha256 = %s AND ended_at IS NULL""",
        (_sha(sid),),
    ).fetchone()
    return None if row is None else Session(*row)


def ended(conn: Conn, sid: str) -> str | None:
    """Why the session of this cookie value ended (logout, idle, absolute), None if unknown or open."""
    if not sid or len(sid) > 128:
        return None
    row = conn.execute(
        "SELECT end_reason FROM console_session WHERE id_sha256 = %s AND ended_at IS NOT NULL", (_sha(sid),)
    ).fetchone()
    return None if row is None else str(row[0])


def touch(conn: Conn, s: Session, now: datetime) -> None:
    conn.execute(
        "UPDATE console_session SET last_seen_at = greatest(last_seen_at, %s) WHERE id_sha256 = %s",
        (now, s.id_sha256),
    )


def end(conn: Conn, s: Session, now: datetime, reason: str) -> None:
    conn.execute(
        "UPDATE console_session SET ended_at = %s, end_reason = %s WHERE id_sha256 = %s AND ended_at IS NULL",
        (now, reason, s.id_sha256),
    )


def audit(  # noqa: PLR0917 - one audit line's columns
    conn: Conn, at: datetime, actor: str, action: str, target: str = "", detail: str = "", remote: str = ""
) -> None:
    """One line of the console's audit trail (who, what, on what, when, from where)."""
    conn.execute(
        "INSERT INTO console_audit (at, actor, action, target, detail, remote)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (at, actor, action, target, detail[:2000], remote),
    )
