"""Emergency plan activations in PostgreSQL (psycopg 3): the I/O edge of `hazmon.weather.plans`.

Every write is one transaction: the activation row and its `plan_event` line together. The
partial unique index ``plan_activation_open`` keeps one open activation per plan (and one
open drill): a start decided twice, or again after a restart, writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from hazmon.weather.plans import Activation, End, LevelUp, Start, level_name

__all__ = [
    "PLANT_TABLES",
    "ActivationRow",
    "StepRow",
    "Tables",
    "activations",
    "confirm_step",
    "end",
    "last_ends",
    "level_up",
    "mark_notified",
    "open_activations",
    "record_event",
    "set_clear",
    "start",
    "steps",
]

Conn = psycopg.Connection[tuple[object, ...]]

_COLS = """id, plan_id, level, drill, started_at, started_by, cause, clear_since, notified_at,
           ended_at, ended_by, end_reason"""


@dataclass(frozen=True, slots=True)
class Tables:
    """The tables of one set of activations: the plant's, or a bureau's own plans'.

    A bureau's own (`hazmon.bureau.plan_repository`) has the same columns and the same writes.
    """

    activation: str
    event: str


PLANT_TABLES = Tables("plan_activation", "plan_event")


@dataclass(frozen=True, slots=True)
class ActivationRow:
    id: int
    plan_id: str
    level: int
    drill: bool
    started_at: datetime
    started_by: str
    cause: str
    clear_since: datetime | None
    notified_at: datetime | None
    ended_at: datetime | None
    ended_by: str | None
    end_reason: str | None

    def activation(self) -> Activation:
        return Activation(
            self.id, self.plan_id, self.level, self.drill, self.started_at, self.started_by == "auto",
            self.clear_since,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StepRow:
    step_id: str
    confirmed_by: str
    role: str
    confirmed_at: datetime
    note: str


def _row(r: tuple[object, ...]) -> ActivationRow:
    return ActivationRow(*r)  # type: ignore[arg-type]  # the columns of _COLS, in order


def activations(conn: Conn, enterprise: str, open_only: bool = False, limit: int = 50) -> list[ActivationRow]:
    """The newest activations first (open ones only when asked)."""
    rows = conn.execute(
        f"""SELECT {_COLS} FROM plan_activation
            WHERE enterprise_id = %s AND (NOT %s OR ended_at IS NULL)
            ORDER BY started_at DESC, id DESC LIMIT %s""",
        (enterprise, open_only, limit),
    ).fetchall()
    return [_row(r) for r in rows]


def open_activations(conn: Conn, enterprise: str) -> list[ActivationRow]:
    return activations(conn, enterprise, open_only=True, limit=1000)


def last_ends(conn: Conn, enterprise: str) -> dict[str, datetime]:
    """Per plan, the end of its last real (not drill) activation."""
    rows = conn.execute(
        """SELECT plan_id, max(ended_at) FROM plan_activation
           WHERE enterprise_id = %s AND NOT drill AND ended_at IS NOT NULL GROUP BY plan_id""",
        (enterprise,),
    ).fetchall()
    return {str(p): t for p, t in rows if isinstance(t, datetime)}


def record_event(  # noqa: PLR0917 - one log line
    conn: Conn,
    activation: int,
    at: datetime,
    kind: str,
    actor: str,
    level: int | None,
    detail: str,
    tables: Tables = PLANT_TABLES,
) -> None:
    """One line of an activation's log (``tables.event``), in the caller's transaction."""
    conn.execute(
        f"""INSERT INTO {tables.event} (activation_id, at, kind, actor, level, detail)
            VALUES (%s, %s, %s, %s, %s, %s)""",
        (activation, at, kind, actor, level, detail),
    )


def start(conn: Conn, enterprise: str, s: Start, *, by: str, drill: bool, now: datetime) -> int | None:
    """Record a start (``by``: "auto" or "<name> (<role>)"); None when the plan is already open."""
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO plan_activation (enterprise_id, plan_id, level, drill, started_at, started_by,
                                            cause, cause_since)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (enterprise_id, plan_id, drill) WHERE ended_at IS NULL DO NOTHING
               RETURNING id""",
            (enterprise, s.plan_id, s.level, drill, now, by, s.cause, None if by != "auto" else s.since),
        ).fetchone()
        if row is None:
            return None
        aid = int(str(row[0]))
        record_event(conn, aid, now, "started", by, s.level, s.cause)
    return aid


def level_up(conn: Conn, u: LevelUp, now: datetime, tables: Tables = PLANT_TABLES) -> None:
    with conn.transaction():
        conn.execute(
            f"UPDATE {tables.activation} SET level = %s, clear_since = NULL"
            " WHERE id = %s AND ended_at IS NULL",
            (u.level, u.activation_id),
        )
        detail = f"level {level_name(u.level)}: {u.cause}"
        record_event(conn, u.activation_id, now, "level", "auto", u.level, detail, tables)


def set_clear(conn: Conn, activation: int, since: datetime | None, tables: Tables = PLANT_TABLES) -> None:
    conn.execute(f"UPDATE {tables.activation} SET clear_since = %s WHERE id = %s", (since, activation))


def end(conn: Conn, e: End, by: str, now: datetime, tables: Tables = PLANT_TABLES) -> bool:
    """Record the end; False when it had already ended."""
    with conn.transaction():
        row = conn.execute(
            f"""UPDATE {tables.activation} SET ended_at = %s, ended_by = %s, end_reason = %s
                WHERE id = %s AND ended_at IS NULL RETURNING id""",
            (now, by, e.reason, e.activation_id),
        ).fetchone()
        if row is None:
            return False
        record_event(conn, e.activation_id, now, "ended", by, None, e.reason, tables)
    return True


def unnotified(conn: Conn, enterprise: str) -> list[ActivationRow]:
    """Activations whose start was not yet told (a crash in between: told after the restart)."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM plan_activation WHERE enterprise_id = %s AND notified_at IS NULL ORDER BY id",
        (enterprise,),
    ).fetchall()
    return [_row(r) for r in rows]


def mark_notified(
    conn: Conn, activation: int, now: datetime, detail: str, tables: Tables = PLANT_TABLES
) -> None:
    with conn.transaction():
        conn.execute(f"UPDATE {tables.activation} SET notified_at = %s WHERE id = %s", (now, activation))
        record_event(conn, activation, now, "notified", "hazmon", None, detail, tables)


def steps(conn: Conn, activation: int) -> list[StepRow]:
    rows = conn.execute(
        """SELECT step_id, confirmed_by, role, confirmed_at, note FROM plan_step
           WHERE activation_id = %s ORDER BY confirmed_at, step_id""",
        (activation,),
    ).fetchall()
    return [StepRow(*r) for r in rows]  # type: ignore[arg-type]


def confirm_step(
    conn: Conn, activation: int, step_id: str, *, by: str, role: str, now: datetime, note: str = ""
) -> bool:
    """Record a confirmed step once; False when it was already confirmed."""
    row = conn.execute(
        """INSERT INTO plan_step (activation_id, step_id, confirmed_by, role, confirmed_at, note)
           VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING step_id""",
        (activation, step_id, by, role, now, note),
    ).fetchone()
    return row is not None
