"""A bureau's own emergency plans in PostgreSQL (migration 0831): the I/O edge of `hazmon.bureau.plans`.

Every write is one transaction with its ``bureau_own_plan_event`` line. The partial unique
index ``bureau_own_plan_open`` keeps one open activation per plan (and one open drill): a start
decided twice, or again after a restart, writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from hazmon.weather import plan_repository as plant
from hazmon.weather.plan_repository import ActivationRow, Tables
from hazmon.weather.plans import End, LevelUp, Start

__all__ = ["ActivationRow", "StepRow", "activations", "confirm_step", "end", "last_ends", "level_up",
           "mark_notified", "open_activations", "set_clear", "start", "steps", "unnotified"]  # fmt: skip

Conn = psycopg.Connection[Any]
_TABLES = Tables("bureau_own_plan_activation", "bureau_own_plan_event")
# the columns of `ActivationRow` (the plant's activations' row: the same columns), in order
_COLS = """id, plan_id, level, drill, started_at, started_by, cause, clear_since, notified_at, ended_at,
           ended_by, end_reason"""


@dataclass(frozen=True, slots=True)
class StepRow:
    step_id: str
    confirmed_by: str
    confirmed_at: datetime
    note: str


def activations(conn: Conn, open_only: bool = False, limit: int = 50) -> list[ActivationRow]:
    rows = conn.execute(
        f"""SELECT {_COLS} FROM bureau_own_plan_activation WHERE NOT %s OR ended_at IS NULL
            ORDER BY started_at DESC, id DESC LIMIT %s""",
        (open_only, limit),
    ).fetchall()
    return [ActivationRow(*r) for r in rows]


def open_activations(conn: Conn) -> list[ActivationRow]:
    return activations(conn, open_only=True, limit=1000)


def unnotified(conn: Conn) -> list[ActivationRow]:
    rows = conn.execute(
        f"SELECT {_COLS} FROM bureau_own_plan_activation WHERE notified_at IS NULL ORDER BY id"
    ).fetchall()
    return [ActivationRow(*r) for r in rows]


def last_ends(conn: Conn) -> dict[str, datetime]:
    """Per plan, the end of its last real (not drill) activation."""
    rows = conn.execute(
        """SELECT plan_id, max(ended_at) FROM bureau_own_plan_activation
           WHERE NOT drill AND ended_at IS NOT NULL GROUP BY plan_id"""
    ).fetchall()
    return {str(p): t for p, t in rows if isinstance(t, datetime)}


def start(conn: Conn, s: Start, *, by: str, drill: bool, now: datetime) -> int | None:
    """Record a start (``by``: "auto" or the officer's name); None when the plan is already open."""
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO bureau_own_plan_activation (plan_id, level, drill, started_at, started_by, cause,
                                                       cause_since)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (plan_id, drill) WHERE ended_at IS NULL DO NOTHING RETURNING id""",
            (s.plan_id, s.level, drill, now, by, s.cause, s.since if by == "auto" else None),
        ).fetchone()
        if row is None:
            return None
        aid = int(row[0])
        plant.record_event(conn, aid, now, "started", by, s.level, s.cause, _TABLES)
    return aid


def level_up(conn: Conn, u: LevelUp, now: datetime) -> None:
    plant.level_up(conn, u, now, _TABLES)


def set_clear(conn: Conn, activation: int, since: datetime | None) -> None:
    plant.set_clear(conn, activation, since, _TABLES)


def end(conn: Conn, e: End, by: str, now: datetime) -> bool:
    """Record the end; False when it had already ended."""
    return plant.end(conn, e, by, now, _TABLES)


def mark_notified(conn: Conn, activation: int, now: datetime, detail: str) -> None:
    plant.mark_notified(conn, activation, now, detail, _TABLES)


def steps(conn: Conn, activation: int) -> list[StepRow]:
    rows = conn.execute(
        """SELECT step_id, confirmed_by, confirmed_at, note FROM bureau_own_plan_step
           WHERE activation_id = %s ORDER BY confirmed_at, step_id""",
        (activation,),
    ).fetchall()
    return [StepRow(*r) for r in rows]


def confirm_step(
    conn: Conn, activation: int, step_id: str, *, by: str, now: datetime, note: str = ""
) -> bool:
    """Record a confirmed step once; False when it was already confirmed."""
    row = conn.execute(
        """INSERT INTO bureau_own_plan_step (activation_id, step_id, confirmed_by, confirmed_at, note)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING step_id""",
        (activation, step_id, by, now, note),
    ).fetchone()
    return row is not None
