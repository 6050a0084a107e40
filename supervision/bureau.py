"""The bureau's supervised rectification (挂牌督办) at the plant: what the bureau sent, and our progress.

A ``supervision`` message from the bureau (opened, progress_requested, accepted, closed 销号,
escalated) is kept in ``supervision_notice`` once per message, and — when it is about one of
our hidden dangers — written into that record's history as a ``note`` by the bureau's person, so
the register shows the same steps as the bureau. The plant files progress on a supervision
(`file_progress`: ``supervision_progress``, a note on the record too); the roof sends both kinds
of row up the link (``hazmon/supervision_link.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from hazmon.plant.link import Supervision
from hazmon.plant.model import Plant
from hazmon.supervision.dangers import Action, RefusedError, Step, decide
from hazmon.supervision.repository import _locked, _not_in_future, _write_step

__all__ = ["ACTIONS_ZH", "file_progress", "local_danger", "record_notice", "supervisions"]

Conn = psycopg.Connection[tuple[Any, ...]]

ACTIONS_ZH = {
    "opened": "挂牌督办",
    "progress_requested": "催报整改进展",
    "accepted": "现场验收",
    "closed": "销号",
    "escalated": "逾期提级督办",
}
LEVELS_ZH = {"county": "县级", "city": "市级", "province": "省级"}


def local_danger(plant: Plant, danger_id: str | None) -> int | None:
    """Our ``hidden_danger.id`` of a link ``danger_id`` (``<enterprise>:<id>``); None: not given.

    Raises:
        RefusedError: the id is another enterprise's.
    """
    if danger_id is None:
        return None
    prefix, _, local = danger_id.rpartition(":")
    if prefix != plant.enterprise.id or not local.isdigit():
        raise RefusedError([f"danger_id: {danger_id!r} is no hidden danger of {plant.enterprise.id}"])
    return int(local)


def record_notice(conn: Conn, plant: Plant, p: Supervision, message_id: str) -> bool:
    """Keep the bureau's step; False when this message was recorded before (a redelivery).

    Raises:
        RefusedError: a hidden danger that is not ours or unknown; nothing is written.
    """
    eid = plant.enterprise.id
    did = local_danger(plant, p.danger_id)
    with conn.transaction():
        d = None if did is None else _locked(conn, eid, did)  # RefusedError for a record we do not have
        row = conn.execute(
            """INSERT INTO supervision_notice (enterprise_id, message_id, supervision_id, danger_id, action,
                   level, deadline, bureau_person, title, actor, at, comment)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (message_id) DO NOTHING RETURNING id""",
            (
                eid, message_id, p.supervision_id, did, p.action, p.level, p.deadline, p.bureau_person,
                p.title, p.actor, p.at, p.comment,
            ),
        ).fetchone()  # fmt: skip
        if row is None:
            return False
        if d is not None:
            comment = (
                f"{ACTIONS_ZH[p.action]} ({LEVELS_ZH[p.level]} {p.level}, supervision {p.supervision_id}, "
                f"整改期限 deadline {p.deadline}, 督办责任人 {p.bureau_person})"
                + (f": {p.comment}" if p.comment else "")
            )
            at = max(p.at, d.steps[-1].at)  # the bureau's clock may trail ours: the history stays in order
            data = {
                "via": "uplink",
                "message_id": message_id,
                "bureau_at": p.at.isoformat(),
                "supervision": p.model_dump(mode="json"),
            }
            step = Step(Action.NOTE, p.actor, "bureau", at, comment, data)
            decide(d, step, ZoneInfo(plant.enterprise.timezone))
            _write_step(conn, d, step)
    return True


def _last_notice(conn: Conn, eid: str, supervision_id: int) -> tuple[Any, ...] | None:
    return conn.execute(
        """SELECT action, danger_id FROM supervision_notice WHERE enterprise_id = %s AND supervision_id = %s
           ORDER BY id DESC LIMIT 1""",
        (eid, supervision_id),
    ).fetchone()


def file_progress(
    conn: Conn,
    plant: Plant,
    supervision_id: int,
    *,
    actor: str,
    role: str,
    at: datetime,
    comment: str,
    done: bool = False,
) -> int:
    """Report progress on a supervision the bureau opened; the report's id (sent up by the roof).

    Raises:
        RefusedError: no such supervision received, closed already, empty comment; nothing written.
    """
    eid = plant.enterprise.id
    why: list[str] = []
    if not comment.strip():
        why.append("comment: say what was done")
    if not actor.strip():
        why.append("by: who reports is missing")
    if role not in ("operator", "plant_manager"):
        why.append(f"role: a {role} does not report progress (operator, plant_manager)")
    _not_in_future(at)
    with conn.transaction():
        last = _last_notice(conn, eid, supervision_id)
        if last is None:
            why.append(f"supervision: no supervision {supervision_id} received from the bureau")
        elif last[0] == "closed":
            why.append(f"supervision: {supervision_id} is closed (销号) by the bureau")
        if why:
            raise RefusedError(why)
        assert last is not None
        did = None if last[1] is None else int(last[1])
        row = conn.execute(
            """INSERT INTO supervision_progress (enterprise_id, supervision_id, danger_id, actor, at, comment,
                   done) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (eid, supervision_id, did, actor.strip(), at, comment, done),
        ).fetchone()
        assert row is not None
        if did is not None:
            d = _locked(conn, eid, did)
            what = "整改完成，申请验收 done, asks for acceptance" if done else "督办进展 progress"
            step = Step(
                Action.NOTE, actor.strip(), role, max(at, d.steps[-1].at),
                f"{what} (supervision {supervision_id}): {comment}",
                {"supervision_progress": int(row[0]), "supervision_id": supervision_id, "done": done},
            )  # fmt: skip
            decide(d, step, ZoneInfo(plant.enterprise.timezone))
            _write_step(conn, d, step)
    return int(row[0])


def supervisions(conn: Conn, enterprise_id: str) -> list[dict[str, Any]]:
    """Every supervision received: latest level, deadline and action; the bureau's steps; our reports."""
    out: dict[int, dict[str, Any]] = {}
    for r in conn.execute(
        """SELECT supervision_id, danger_id, action, level, deadline, bureau_person, title, actor, at, comment
           FROM supervision_notice WHERE enterprise_id = %s ORDER BY id""",
        (enterprise_id,),
    ).fetchall():
        s = out.setdefault(int(r[0]), {"supervision_id": int(r[0]), "steps": [], "progress": []})
        s.update(
            danger_id=r[1], action=r[2], level=r[3], deadline=r[4].isoformat(), bureau_person=r[5], title=r[6]
        )
        s["steps"].append(
            {"action": r[2], "level": r[3], "actor": r[7], "at": r[8].isoformat(), "comment": r[9]}
        )
    for r in conn.execute(
        """SELECT id, supervision_id, actor, at, comment, done FROM supervision_progress
           WHERE enterprise_id = %s ORDER BY id""",
        (enterprise_id,),
    ).fetchall():
        if int(r[1]) in out:
            out[int(r[1])]["progress"].append(
                {"id": int(r[0]), "actor": r[2], "at": r[3].isoformat(), "comment": r[4], "done": r[5]}
            )
    return sorted(out.values(), key=lambda s: -int(s["supervision_id"]))
