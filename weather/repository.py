"""Weather warnings in PostgreSQL (psycopg 3): each stored once by identifier; the I/O edge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from hazmon.plant.standards import Level
from hazmon.weather.cap import Alert, parse

__all__ = [
    "Duty",
    "Effect",
    "confirm_duty",
    "duties_by_id",
    "effects",
    "end_duties",
    "flag_of",
    "known",
    "load_alerts",
    "open_duties",
    "start_duties",
    "store",
]

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class Effect:
    """What one warning does at one hazard source (a row of weather_effect)."""

    hazard_source: str
    level: Level
    duties: tuple[str, ...]


def store(  # noqa: PLR0917 - one row and its context
    conn: Conn,
    alert: Alert,
    enterprise_id: str,
    effects: Sequence[Effect],
    received_at: datetime,
    flag: str = "",
) -> bool:
    """Store an alert and its effects in one transaction.

    Returns:
        False, nothing written, when its identifier is already stored.
    """
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO weather_warning (identifier, sender, sent, status, msg_type, refs, kind, colour,
                                            expires, flag, xml, received_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (identifier) DO NOTHING RETURNING identifier""",
            (
                alert.identifier,
                alert.sender,
                alert.sent,
                alert.status,
                alert.msg_type,
                [r[1] for r in alert.references],
                alert.kind.value if alert.kind else None,
                int(alert.colour) if alert.colour else None,
                alert.expires,
                flag,
                alert.xml,
                received_at,
            ),
        ).fetchone()
        if row is None:
            return False
        for e in effects:
            conn.execute(
                """INSERT INTO weather_effect (identifier, enterprise_id, hazard_source, level, duties)
                   VALUES (%s, %s, %s, %s, %s)""",
                (alert.identifier, enterprise_id, e.hazard_source, e.level.value, list(e.duties)),
            )
    return True


def known(conn: Conn, identifiers: Sequence[str]) -> set[str]:
    """Which of these identifiers are stored."""
    rows = conn.execute(
        "SELECT identifier FROM weather_warning WHERE identifier = ANY(%s)", (list(identifiers),)
    ).fetchall()
    return {str(r[0]) for r in rows}


def load_alerts(conn: Conn, since: datetime | None = None) -> list[Alert]:
    """Stored alerts (re-parsed from their XML), by sent time; `since`: expiring after it or never."""
    rows = conn.execute(
        """SELECT identifier, xml FROM weather_warning
           WHERE %s::timestamptz IS NULL OR expires IS NULL OR expires > %s
           ORDER BY sent, identifier""",
        (since, since),
    ).fetchall()
    out = []
    for ident, xml in rows:
        a = parse(bytes(xml) if isinstance(xml, bytes | memoryview) else b"", f"weather_warning {ident}")
        if isinstance(a, Alert):  # stored only after a successful parse
            out.append(a)
    return out


def flag_of(conn: Conn, identifier: str) -> str | None:
    row = conn.execute("SELECT flag FROM weather_warning WHERE identifier = %s", (identifier,)).fetchone()
    return None if row is None else str(row[0])


def effects(conn: Conn, identifier: str, enterprise_id: str) -> list[Effect]:
    rows = conn.execute(
        """SELECT hazard_source, level, duties FROM weather_effect
           WHERE identifier = %s AND enterprise_id = %s ORDER BY hazard_source""",
        (identifier, enterprise_id),
    ).fetchall()
    return [
        Effect(str(h), Level(str(lv)), tuple(str(d) for d in ds) if isinstance(ds, list) else ())
        for h, lv, ds in rows
    ]


@dataclass(frozen=True, slots=True)
class Duty:
    """A duty to confirm while a warning is in force (a row of weather_duty)."""

    id: int
    hazard_source: str
    kind: str
    duty: str
    identifier: str
    started_at: datetime
    confirmed_by: str | None
    confirmed_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None = None


_DUTY = """SELECT id, hazard_source, kind, duty, identifier, started_at, confirmed_by, confirmed_at,
                  ended_at, end_reason FROM weather_duty"""


def open_duties(conn: Conn, enterprise_id: str) -> list[Duty]:
    rows = conn.execute(
        f"{_DUTY} WHERE enterprise_id = %s AND ended_at IS NULL ORDER BY hazard_source, kind, id",
        (enterprise_id,),
    ).fetchall()
    return [Duty(*r) for r in rows]  # type: ignore[arg-type]


def duties_by_id(conn: Conn, enterprise_id: str, ids: Sequence[int]) -> list[Duty]:
    """These tasks as they stand now (open or ended), by id."""
    rows = conn.execute(
        f"{_DUTY} WHERE enterprise_id = %s AND id = ANY(%s) ORDER BY id", (enterprise_id, list(ids))
    ).fetchall()
    return [Duty(*r) for r in rows]  # type: ignore[arg-type]


def start_duties(  # noqa: PLR0917 - one warning kind at one hazard source
    conn: Conn,
    enterprise_id: str,
    hazard_source: str,
    kind: str,
    duties: Sequence[str],
    identifier: str,
    now: datetime,
) -> int:
    """Open a task per duty not open yet; returns how many were opened."""
    n = 0
    for d in duties:
        row = conn.execute(
            """INSERT INTO weather_duty (enterprise_id, hazard_source, kind, duty, identifier, started_at)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (enterprise_id, hazard_source, kind, duty) WHERE ended_at IS NULL DO NOTHING
               RETURNING id""",
            (enterprise_id, hazard_source, kind, d, identifier, now),
        ).fetchone()
        n += row is not None
    return n


def end_duties(  # noqa: PLR0917 - one warning kind at one hazard source
    conn: Conn, enterprise_id: str, hazard_source: str, kind: str, now: datetime, reason: str
) -> int:
    """End the open tasks of a warning kind at a hazard source (recorded, confirmed or not)."""
    cur = conn.execute(
        """UPDATE weather_duty SET ended_at = %s, end_reason = %s
           WHERE enterprise_id = %s AND hazard_source = %s AND kind = %s AND ended_at IS NULL""",
        (now, reason, enterprise_id, hazard_source, kind),
    )
    return cur.rowcount


def confirm_duty(conn: Conn, enterprise_id: str, duty_id: int, by: str, now: datetime) -> bool:
    """Confirm an open task once; False when it is not open or already confirmed."""
    row = conn.execute(
        """UPDATE weather_duty SET confirmed_by = %s, confirmed_at = %s
           WHERE id = %s AND enterprise_id = %s AND ended_at IS NULL AND confirmed_at IS NULL RETURNING id""",
        (by, now, duty_id, enterprise_id),
    ).fetchone()
    return row is not None
