"""Supervision messages at the bureau's ingest: hidden dangers, duty checks, commitments, progress.

Called from `hazmon.bureau.ingest.apply`, in its transaction, once per message:
`hidden_danger` keeps each record as of its newest step and every step in its history;
`duty_check` and `commitment` keep one row each; `progress` adds the enterprise's report to a
supervision's history (a report on a supervision the bureau does not have is refused first by
`progress_refusal`, before anything is stored).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hazmon.bureau.supervision_flow import Event, fold
from hazmon.plant.link import CommitmentReport, DutyCheckReport, Envelope, HiddenDanger, SupervisionProgress

__all__ = ["commitment", "duty_check", "hidden_danger", "ingest", "progress", "progress_refusal"]

Conn = psycopg.Connection[Any]


def _events(conn: Conn, sid: int) -> list[Event]:
    rows = conn.execute(
        """SELECT step, at, actor, level, deadline, comment, coalesce((data->>'done')::boolean, false)
           FROM bureau_supervision_event WHERE supervision_id = %s ORDER BY id""",
        (sid,),
    ).fetchall()
    return [Event(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6])) for r in rows]


# ---------------------------------------------------------------- ingest


def ingest(
    conn: Conn, env: Envelope, p: HiddenDanger | DutyCheckReport | CommitmentReport | SupervisionProgress
) -> None:
    """Apply one supervision message (stored once in ``bureau_message`` by the caller)."""
    if isinstance(p, HiddenDanger):
        hidden_danger(conn, env, p)
    elif isinstance(p, DutyCheckReport):
        duty_check(conn, env, p)
    elif isinstance(p, CommitmentReport):
        commitment(conn, env, p)
    else:
        progress(conn, env, p)


def hidden_danger(conn: Conn, env: Envelope, p: HiddenDanger) -> None:
    """A hidden danger's step: the record as of its newest step (an older one never rolls it back)."""
    plan = None if p.plan is None else Jsonb(p.plan.model_dump(mode="json"))
    rectified = p.at if p.state == "accepted" else None
    conn.execute(
        """INSERT INTO bureau_hidden_danger AS b (danger_id, enterprise_id, hazard_source, unit, sensor,
               equipment, title, description, found_by, alarm_id, level, criteria, state, plan, deadline,
               found_at, rectified_at, last_seq, updated_at)
           VALUES (%(id)s, %(e)s, %(hs)s, %(unit)s, %(sensor)s, %(eq)s, %(title)s, %(desc)s, %(found_by)s,
                   %(alarm)s, %(level)s, %(criteria)s, %(state)s, %(plan)s, %(deadline)s, %(found_at)s,
                   %(rectified)s, %(seq)s, %(at)s)
           ON CONFLICT (danger_id) DO UPDATE SET
               hazard_source = EXCLUDED.hazard_source, unit = EXCLUDED.unit, sensor = EXCLUDED.sensor,
               equipment = EXCLUDED.equipment, title = EXCLUDED.title, description = EXCLUDED.description,
               level = EXCLUDED.level, criteria = EXCLUDED.criteria, state = EXCLUDED.state,
               plan = EXCLUDED.plan, deadline = EXCLUDED.deadline,
               rectified_at = coalesce(b.rectified_at, EXCLUDED.rectified_at),
               last_seq = EXCLUDED.last_seq, updated_at = EXCLUDED.updated_at
           WHERE EXCLUDED.last_seq > b.last_seq""",
        {
            "id": p.danger_id, "e": env.enterprise_id, "hs": p.hazard_source, "unit": p.unit,
            "sensor": p.sensor, "eq": p.equipment, "title": p.title, "desc": p.description,
            "found_by": p.found_by, "alarm": p.alarm_id, "level": p.level, "criteria": list(p.criteria),
            "state": p.state, "plan": plan, "deadline": p.deadline, "found_at": p.found_at,
            "rectified": rectified, "seq": p.seq, "at": p.at,
        },
    )  # fmt: skip
    conn.execute(
        """INSERT INTO bureau_hidden_danger_step (danger_id, seq, step, at, actor, role, comment, state_after,
               message_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (p.danger_id, p.seq, p.step, p.at, p.actor, p.role, p.comment, p.state, env.message_id),
    )


def duty_check(conn: Conn, env: Envelope, p: DutyCheckReport) -> None:
    conn.execute(
        """INSERT INTO bureau_duty_check (enterprise_id, check_id, hazard_source, role, person, checked_at,
               what, findings, recorded_by, message_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (
            env.enterprise_id, p.check_id, p.hazard_source, p.role, p.person, p.at, p.what, p.findings,
            p.recorded_by, env.message_id,
        ),
    )  # fmt: skip


def commitment(conn: Conn, env: Envelope, p: CommitmentReport) -> None:
    conn.execute(
        """INSERT INTO bureau_commitment (enterprise_id, day, commitment_id, sources, special_work, filed_by,
               filed_at, note, message_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (
            env.enterprise_id, p.day, p.commitment_id, Jsonb(dict(p.sources)), Jsonb(dict(p.special_work)),
            p.filed_by, p.filed_at, p.note, env.message_id,
        ),
    )  # fmt: skip


def progress_refusal(conn: Conn, enterprise_id: str, p: SupervisionProgress) -> str | None:
    """Why a progress report is refused (no such supervision of that enterprise), or None."""
    row = conn.execute(
        "SELECT 1 FROM bureau_supervision WHERE id = %s AND enterprise_id = %s",
        (p.supervision_id, enterprise_id),
    ).fetchone()
    if row is None:
        return (
            f"payload.supervision_id: no supervision {p.supervision_id} of {enterprise_id!r} at this bureau"
        )
    return None


def progress(conn: Conn, env: Envelope, p: SupervisionProgress) -> None:
    """The enterprise's progress report into its supervision's history (checked by `progress_refusal`)."""
    row = conn.execute(
        "SELECT level, deadline FROM bureau_supervision WHERE id = %s AND enterprise_id = %s FOR UPDATE",
        (p.supervision_id, env.enterprise_id),
    ).fetchone()
    assert row is not None
    evs = _events(conn, p.supervision_id)
    before = fold(evs)
    after = fold([*evs, Event("progress", p.at, p.actor, row[0], row[1], p.comment, p.done)])
    conn.execute(
        """INSERT INTO bureau_supervision_event (supervision_id, step, at, actor, origin, comment, level,
               deadline, data, message_id) VALUES (%s, 'progress', %s, %s, 'enterprise', %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (
            p.supervision_id, p.at, p.actor, p.comment, row[0], row[1],
            Jsonb({"done": p.done, "progress_id": p.progress_id}), env.message_id,
        ),
    )  # fmt: skip
    if after.state is not before.state:
        conn.execute(
            "UPDATE bureau_supervision SET state = %s, updated_at = greatest(updated_at, %s) WHERE id = %s",
            (after.state.value, p.at, p.supervision_id),
        )
