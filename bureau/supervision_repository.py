"""Supervision at the bureau in PostgreSQL (psycopg 3): 挂牌督办 opened, stepped, escalated; reads.

What the enterprises report is stored by `hazmon.bureau.supervision_ingest`.

Supervision: `open_supervision` and `step` lock what they change, judge it with the pure
`hazmon.bureau.supervision_flow`, write the row and its event and put a ``supervision``
message in the downlink outbox in one transaction (written and sent, or neither).
`escalate_due` is the daemon's tick: every supervision overdue and never escalated is moved one
level up, once (a unique index on its ``escalated`` event holds even against a race), and a
notice is queued for the staff of its region (`plan_notices`, sent by the roof's notifiers).
Every read is scoped: a supervision or hidden danger outside the caller's region is "not found".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import structlog
from psycopg.rows import dict_row

from hazmon.bureau.downlink import enqueue
from hazmon.bureau.supervision_flow import (
    Refused,
    Supervision,
    apply,
    escalation,
    fold,
    open_problems,
)
from hazmon.bureau.supervision_ingest import _events
from hazmon.plant.link import Supervision as SupervisionMsg
from hazmon.plant.regions import Scope, prefix
from hazmon.plant.supervision_standards import SUPERVISION_MIN_LEVEL

__all__ = [
    "NotFound",
    "NoticeDue",
    "claim_notices",
    "escalate_due",
    "get_supervision",
    "list_hidden_dangers",
    "list_supervisions",
    "notice_failed",
    "notice_sent",
    "open_supervision",
    "plan_notices",
    "step",
]

log = structlog.get_logger("hazmon.bureau")

Conn = psycopg.Connection[Any]


class NotFound:
    """No such supervision or hidden danger in the caller's region."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __str__(self) -> str:
        return self.what


# ---------------------------------------------------------------- supervision


def _scope(scope: Scope, col: str = "region_code") -> tuple[str, list[Any]]:
    return f"{col} LIKE %s", [prefix(scope) + "%"]


def _push(conn: Conn, sid: int, action: str, *, at: datetime, actor: str, comment: str) -> None:
    """The supervision's step into the downlink outbox (the caller's transaction)."""
    r = conn.execute(
        """SELECT enterprise_id, region_code, danger_id, level, deadline, bureau_person, title
           FROM bureau_supervision WHERE id = %s""",
        (sid,),
    ).fetchone()
    assert r is not None
    msg = SupervisionMsg(
        supervision_id=sid, danger_id=r[2], action=action, level=r[3], deadline=r[4],  # type: ignore[arg-type]
        bureau_person=r[5], title=r[6], at=at, actor=actor, comment=comment,
    )  # fmt: skip
    enqueue(conn, r[0], str(r[1]).strip(), msg)


def _insert_event(
    conn: Conn, sid: int, step: str, *, at: datetime, actor: str, comment: str, level: str, deadline: date
) -> int:
    row = conn.execute(
        """INSERT INTO bureau_supervision_event (supervision_id, step, at, actor, origin, comment, level,
               deadline) VALUES (%s, %s, %s, %s, 'bureau', %s, %s, %s) RETURNING id""",
        (sid, step, at, actor, comment, level, deadline),
    ).fetchone()
    assert row is not None
    return int(row[0])


def open_supervision(
    conn: Conn,
    scope: Scope,
    *,
    actor: str,
    danger_id: str | None,
    enterprise_id: str | None,
    deadline: date | None,
    bureau_person: str,
    comment: str,
    now: datetime,
    tz: ZoneInfo,
    min_level: Mapping[str, str] = SUPERVISION_MIN_LEVEL,
) -> dict[str, Any] | list[Refused] | NotFound:
    """Open 挂牌督办 at the caller's level on a hidden danger (or an enterprise) of its region."""
    with conn.transaction():
        if danger_id is not None:
            d = conn.execute(
                """SELECT d.enterprise_id, e.region_code, d.level, d.state, d.title
                   FROM bureau_hidden_danger d JOIN bureau_enterprise e USING (enterprise_id)
                   WHERE d.danger_id = %s FOR UPDATE OF d""",
                (danger_id,),
            ).fetchone()
            if d is None or not str(d[1]).startswith(prefix(scope)):
                return NotFound(f"danger_id: no hidden danger {danger_id} in this bureau's region")
            if enterprise_id is not None and enterprise_id != d[0]:
                return [
                    Refused("enterprise_id", f"{danger_id} is a hidden danger of {d[0]}, not {enterprise_id}")
                ]
            eid, region, level, state, title = str(d[0]), str(d[1]).strip(), str(d[2]), str(d[3]), str(d[4])
            busy = conn.execute(
                "SELECT 1 FROM bureau_supervision WHERE danger_id = %s AND state <> 'closed'", (danger_id,)
            ).fetchone()
        else:
            if enterprise_id is None:
                return [
                    Refused(
                        "danger_id", "name the hidden danger (danger_id) or the enterprise (enterprise_id)"
                    )
                ]
            e = conn.execute(
                "SELECT region_code, name FROM bureau_enterprise WHERE enterprise_id = %s", (enterprise_id,)
            ).fetchone()
            if e is None or not str(e[0]).startswith(prefix(scope)):
                return NotFound(f"enterprise_id: no enterprise {enterprise_id} in this bureau's region")
            eid, region, level, state, title, busy = (
                enterprise_id,
                str(e[0]).strip(),
                None,
                None,
                str(e[1]),
                None,
            )
        why = open_problems(
            scope.level, level, state, deadline, now, tz,
            bureau_person=bureau_person, already_open=busy is not None, min_level=min_level,
        )  # fmt: skip
        if why:
            return why
        assert deadline is not None
        row = conn.execute(
            """INSERT INTO bureau_supervision (enterprise_id, danger_id, region_code, title, level,
                   opened_level, state, deadline, bureau_person, opened_at, opened_by, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s) RETURNING id""",
            (eid, danger_id, region, title, scope.level, scope.level, deadline, bureau_person.strip(), now,
             actor, now),
        ).fetchone()  # fmt: skip
        assert row is not None
        sid = int(row[0])
        _insert_event(
            conn, sid, "opened", at=now, actor=actor, comment=comment, level=scope.level, deadline=deadline
        )
        _push(conn, sid, "opened", at=now, actor=actor, comment=comment)
    got = get_supervision(conn, sid, scope)
    assert isinstance(got, dict)
    return got


def step(
    conn: Conn, sid: int, step_name: str, *, actor: str, comment: str, now: datetime, scope: Scope
) -> dict[str, Any] | Refused | NotFound:
    """A bureau officer's step (request_progress, accept, close) on supervision ``sid``."""
    with conn.transaction():
        r = conn.execute(
            "SELECT region_code FROM bureau_supervision WHERE id = %s FOR UPDATE", (sid,)
        ).fetchone()
        if r is None or not str(r[0]).startswith(prefix(scope)):
            return NotFound(f"no supervision {sid} in this bureau's region")
        sv = fold(_events(conn, sid))
        t = apply(sv, step_name, actor, scope.level, at=now, comment=comment)
        if isinstance(t, Refused):
            return t
        _insert_event(
            conn, sid, t.event, at=now, actor=t.actor, comment=comment, level=sv.level, deadline=sv.deadline
        )
        conn.execute(
            "UPDATE bureau_supervision SET state = %s, updated_at = %s,"
            " closed_at = CASE WHEN %s = 'closed' THEN %s END WHERE id = %s",
            (t.after.value, now, t.after.value, now, sid),
        )
        _push(conn, sid, t.event, at=now, actor=t.actor, comment=comment)
    got = get_supervision(conn, sid, scope)
    assert isinstance(got, dict)
    return got


_ESCALATE_LOCK = 0x7375_7076  # pg_advisory_xact_lock: one escalation pass at a time


def escalate_due(conn: Conn, tz: ZoneInfo, now: datetime, actor: str = "bureau") -> list[int]:
    """Escalate every supervision overdue at ``now`` and never escalated; the ids escalated.

    One transaction: the supervision's row, its ``escalated`` event (at most one, by a unique
    index), the message down to the enterprise and the staff's notices are written together.
    """
    done: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ESCALATE_LOCK,))
        ids = [
            int(r[0])
            for r in conn.execute(
                """SELECT id FROM bureau_supervision WHERE state IN ('open', 'progress_requested')
                   AND escalated_at IS NULL AND deadline < %s ORDER BY id FOR UPDATE""",
                (now.astimezone(tz).date(),),
            ).fetchall()
        ]
        for sid in ids:
            sv: Supervision = fold(_events(conn, sid))
            esc = escalation(sv, now, tz)
            if esc is None:
                continue
            eid = _insert_event(
                conn, sid, "escalated", at=now, actor=actor, comment=esc.comment,
                level=esc.level_after, deadline=sv.deadline,
            )  # fmt: skip
            conn.execute(
                "UPDATE bureau_supervision SET level = %s, escalated_at = %s, updated_at = %s WHERE id = %s",
                (esc.level_after, now, now, sid),
            )
            _push(conn, sid, "escalated", at=now, actor=actor, comment=esc.comment)
            done.append(sid)
            log.info(
                "supervision escalated",
                supervision=sid,
                event_id=eid,
                level=esc.level_after,
                deadline=str(sv.deadline),
            )
    return done


# ---------------------------------------------------------------- notices of escalations


@dataclass(frozen=True, slots=True)
class NoticeDue:
    event_id: int
    recipient: str
    attempts: int
    supervision_id: int
    enterprise_id: str
    enterprise_name: str
    danger_id: str | None
    title: str
    region_code: str
    level: str
    deadline: date
    bureau_person: str
    comment: str
    at: datetime


def plan_notices(conn: Conn, targets: Sequence[tuple[str, Scope]], now: datetime) -> int:
    """Queue a notice of every escalation for each (recipient, scope) whose region covers it."""
    n = 0
    for name, sc in targets:
        cur = conn.execute(
            """INSERT INTO bureau_supervision_notice (event_id, recipient, created_at, next_at)
               SELECT ev.id, %s, %s, %s FROM bureau_supervision_event ev
               JOIN bureau_supervision s ON s.id = ev.supervision_id
               WHERE ev.step = 'escalated' AND s.region_code LIKE %s ON CONFLICT DO NOTHING""",
            (name, now, now, prefix(sc) + "%"),
        )
        n += cur.rowcount
    return n


def claim_notices(conn: Conn, now: datetime, lease_s: float, limit: int = 50) -> list[NoticeDue]:
    with conn.transaction():
        rows = conn.execute(
            """WITH due AS (
                   SELECT event_id, recipient FROM bureau_supervision_notice
                   WHERE notified_at IS NULL AND gave_up_at IS NULL AND next_at <= %s
                   ORDER BY next_at LIMIT %s FOR UPDATE SKIP LOCKED)
               UPDATE bureau_supervision_notice n SET next_at = %s, attempts = n.attempts + 1
               FROM due, bureau_supervision_event ev, bureau_supervision s
                    JOIN bureau_enterprise e USING (enterprise_id)
               WHERE n.event_id = due.event_id AND n.recipient = due.recipient AND ev.id = n.event_id
                 AND s.id = ev.supervision_id
               RETURNING n.event_id, n.recipient, n.attempts, s.id, s.enterprise_id, e.name, s.danger_id,
                         s.title, s.region_code, ev.level, ev.deadline, s.bureau_person, ev.comment, ev.at""",
            (now, limit, now + timedelta(seconds=lease_s)),
        ).fetchall()
    return [
        NoticeDue(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            str(r[8]).strip(),
            r[9],
            r[10],
            r[11],
            r[12],
            r[13],
        )
        for r in rows
    ]


def notice_sent(conn: Conn, d: NoticeDue, now: datetime) -> None:
    conn.execute(
        "UPDATE bureau_supervision_notice SET notified_at = %s, last_error = '' WHERE event_id = %s"
        " AND recipient = %s",
        (now, d.event_id, d.recipient),
    )


def notice_failed(conn: Conn, d: NoticeDue, error: str, retry_at: datetime | None, now: datetime) -> None:
    conn.execute(
        "UPDATE bureau_supervision_notice SET last_error = %s, next_at = coalesce(%s, next_at),"
        " gave_up_at = CASE WHEN %s::timestamptz IS NULL THEN %s END WHERE event_id = %s AND recipient = %s",
        (error[:500], retry_at, retry_at, now, d.event_id, d.recipient),
    )


# ---------------------------------------------------------------- reading


def list_supervisions(
    conn: Conn, scope: Scope, *, open_only: bool = False, enterprise_id: str | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    where, args = _scope(scope, "s.region_code")
    if open_only:
        where += " AND s.state <> 'closed'"
    if enterprise_id:
        where += " AND s.enterprise_id = %s"
        args.append(enterprise_id)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""SELECT s.*, e.name AS enterprise_name, d.level AS danger_level, d.state AS danger_state
                FROM bureau_supervision s JOIN bureau_enterprise e USING (enterprise_id)
                LEFT JOIN bureau_hidden_danger d ON d.danger_id = s.danger_id
                WHERE {where} ORDER BY s.opened_at DESC, s.id DESC LIMIT %s""",
            [*args, limit],
        )
        return [_clean(r) for r in cur.fetchall()]


def _clean(r: dict[str, Any]) -> dict[str, Any]:
    if "region_code" in r and isinstance(r["region_code"], str):
        r["region_code"] = r["region_code"].strip()
    return r


def get_supervision(conn: Conn, sid: int, scope: Scope) -> dict[str, Any] | None:
    """The supervision, its history and its hidden danger's history, or None outside ``scope``."""
    where, args = _scope(scope, "s.region_code")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""SELECT s.*, e.name AS enterprise_name FROM bureau_supervision s
                JOIN bureau_enterprise e USING (enterprise_id) WHERE s.id = %s AND {where}""",
            [sid, *args],
        )
        row = cur.fetchone()
        if row is None:
            return None
        out = _clean(dict(row))
        cur.execute(
            "SELECT id, step, at, actor, origin, comment, level, deadline, data FROM bureau_supervision_event"
            " WHERE supervision_id = %s ORDER BY id",
            (sid,),
        )
        out["events"] = cur.fetchall()
        out["hidden_danger"] = None
        if out["danger_id"] is not None:
            out["hidden_danger"] = _danger(cur, str(out["danger_id"]))
    return out


def _danger(cur: psycopg.Cursor[dict[str, Any]], danger_id: str) -> dict[str, Any] | None:
    cur.execute("SELECT * FROM bureau_hidden_danger WHERE danger_id = %s", (danger_id,))
    d = cur.fetchone()
    if d is None:
        return None
    out = dict(d)
    cur.execute(
        "SELECT seq, step, at, actor, role, comment, state_after FROM bureau_hidden_danger_step"
        " WHERE danger_id = %s ORDER BY seq",
        (danger_id,),
    )
    out["steps"] = cur.fetchall()
    return out


def list_hidden_dangers(
    conn: Conn,
    scope: Scope,
    *,
    level: str | None = None,
    open_only: bool = False,
    enterprise_id: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    where, args = _scope(scope, "e.region_code")
    if level:
        where += " AND d.level = %s"
        args.append(level)
    if open_only:
        where += " AND d.state <> 'accepted'"
    if enterprise_id:
        where += " AND d.enterprise_id = %s"
        args.append(enterprise_id)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""SELECT d.*, e.name AS enterprise_name, e.region_code,
                       (SELECT s.id FROM bureau_supervision s WHERE s.danger_id = d.danger_id
                        AND s.state <> 'closed') AS supervision_id
                FROM bureau_hidden_danger d JOIN bureau_enterprise e USING (enterprise_id)
                WHERE {where} ORDER BY d.found_at DESC LIMIT %s""",
            [*args, limit],
        )
        return [_clean(r) for r in cur.fetchall()]
