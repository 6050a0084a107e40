"""Supervision over the bureau link: the register, checks, commitments and progress up; 挂牌督办 down.

`hazmon.supervision` and `hazmon.uplink` are features and know nothing of each other; here they meet:

    hidden_danger_step ─┐
    duty_check ─────────┤  each uplink round: every row not yet in the outbox ──► uplink_outbox ──► bureau
    daily_commitment ───┤  (dedupe key ``<kind>:<enterprise>:<id>[:<seq>]``: enqueued once, whichever
    supervision_progress┘   process wrote the row — the daemon's API or the ``hazmon danger`` CLI)

    bureau ──► supervision (down) ──► record_supervision ──► supervision_notice + a note on the record

The rows are the truth: a step written while the link is off or the daemon down is enqueued at the
next round, in its record's order (``seq``). A row the link's schema refuses is logged and counted
(``malformed``), never allowed to stop the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import structlog
from pydantic import ValidationError

from hazmon.plant import Plant
from hazmon.plant.link import (
    CommitmentReport,
    DangerPlanInfo,
    DutyCheckReport,
    Envelope,
    HiddenDanger,
    Payload,
    Supervision,
    SupervisionProgress,
)
from hazmon.plant.schema import describe
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as srepo
from hazmon.supervision.dangers import Danger, RefusedError, fold
from hazmon.uplink.downlink import Refused
from hazmon.uplink.outbox import enqueue

__all__ = ["danger_payload", "enqueue_supervision", "record_supervision"]

log = structlog.get_logger("hazmon.daemon")

Conn = psycopg.Connection[Any]


def danger_payload(enterprise_id: str, d: Danger) -> HiddenDanger:
    """The record as it stands after its last step (``d`` folded up to that step).

    Raises:
        pydantic.ValidationError: the record does not fit the link's schema.
    """
    s, r = d.steps[-1], d.report
    plan = None
    if d.plan is not None:
        p = d.plan
        signed = next((x for x in reversed(d.steps) if x.action.value == "plan"), None)
        plan = DangerPlanInfo(
            goal=p.goal, measures=p.measures, funds_yuan=None if p.funds is None else float(p.funds),
            materials=p.materials, organisation=p.organisation, persons=list(p.persons), deadline=p.deadline,
            safety_measures=p.safety_measures, contingency_plan=p.contingency_plan,
            signed_by="" if signed is None else signed.actor, signed_at=None if signed is None else signed.at,
        )  # fmt: skip
    return HiddenDanger.model_validate(
        {
            "danger_id": f"{enterprise_id}:{d.id}", "seq": s.seq, "step": s.action.value, "at": s.at,
            "actor": s.actor, "role": s.role, "comment": s.comment, "title": r.title,
            "description": r.description, "hazard_source": r.hazard_source, "unit": r.unit,
            "sensor": r.sensor, "equipment": r.equipment, "found_by": r.found_by.value,
            "level": r.level.value, "criteria": list(r.criteria),
            "alarm_id": None if r.alarm_id is None else f"{enterprise_id}:{r.alarm_id}",
            "state": d.state.value, "plan": plan, "deadline": d.deadline, "found_at": d.found_at,
        }
    )  # fmt: skip


_NOT_SENT = "NOT EXISTS (SELECT 1 FROM uplink_outbox o WHERE o.dedupe_key = {key})"


def _danger_steps(conn: Conn, eid: str) -> list[tuple[int, int]]:
    key = "'hidden_danger:' || d.enterprise_id || ':' || s.danger_id || ':' || s.seq"
    return [
        (int(r[0]), int(r[1]))
        for r in conn.execute(
            f"""SELECT s.danger_id, s.seq FROM hidden_danger_step s JOIN hidden_danger d ON d.id = s.danger_id
                WHERE d.enterprise_id = %s AND {_NOT_SENT.format(key=key)} ORDER BY s.danger_id, s.seq""",
            (eid,),
        ).fetchall()
    ]


def _payloads(conn: Conn, plant: Plant) -> list[tuple[str, Callable[[], Payload]]]:
    """(dedupe key, a builder of the payload) of every supervision row not yet in the outbox, in order."""
    eid = plant.enterprise.id
    out: list[tuple[str, Callable[[], Payload]]] = []
    pending = _danger_steps(conn, eid)
    for did in sorted({d for d, _ in pending}):
        d = srepo.get_danger(conn, eid, did)
        if d is None:
            continue
        for seq in (s for x, s in pending if x == did):
            upto = fold(did, d.steps[:seq])
            out.append((f"hidden_danger:{eid}:{did}:{seq}", lambda upto=upto: danger_payload(eid, upto)))  # type: ignore[misc]
    key = "'duty_check:' || c.enterprise_id || ':' || c.id"
    rows = conn.execute(
        f"""SELECT id, hazard_source, role, person, checked_at, what, findings, recorded_by FROM duty_check c
            WHERE enterprise_id = %s AND {_NOT_SENT.format(key=key)}
            ORDER BY id""",
        (eid,),
    ).fetchall()
    for r in rows:

        def check(r: tuple[Any, ...] = r) -> Payload:
            return DutyCheckReport(
                check_id=r[0], hazard_source=r[1], role=r[2], person=r[3], at=r[4], what=r[5], findings=r[6],
                recorded_by=r[7],
            )  # fmt: skip

        out.append((f"duty_check:{eid}:{r[0]}", check))
    key = "'commitment:' || c.enterprise_id || ':' || c.id"
    rows = conn.execute(
        f"""SELECT id, day, sources, special_work, committed_by, filed_at, note FROM daily_commitment c
            WHERE enterprise_id = %s AND {_NOT_SENT.format(key=key)}
            ORDER BY id""",
        (eid,),
    ).fetchall()
    for r in rows:

        def commit(r: tuple[Any, ...] = r) -> Payload:
            return CommitmentReport(
                commitment_id=r[0], day=r[1], sources=dict(r[2]), special_work=dict(r[3] or {}),
                filed_by=r[4], filed_at=r[5], note=r[6],
            )  # fmt: skip

        out.append((f"commitment:{eid}:{r[0]}", commit))
    key = "'supervision_progress:' || p.enterprise_id || ':' || p.id"
    rows = conn.execute(
        f"""SELECT id, supervision_id, danger_id, actor, at, comment, done FROM supervision_progress p
            WHERE enterprise_id = %s AND {_NOT_SENT.format(key=key)} ORDER BY id""",
        (eid,),
    ).fetchall()
    for r in rows:

        def prog(r: tuple[Any, ...] = r) -> Payload:
            return SupervisionProgress(
                supervision_id=r[1], progress_id=r[0], danger_id=None if r[2] is None else f"{eid}:{r[2]}",
                at=r[4], actor=r[3], comment=r[5], done=r[6],
            )  # fmt: skip

        out.append((f"supervision_progress:{eid}:{r[0]}", prog))
    return out


def enqueue_supervision(conn: Conn, plant: Plant, malformed: list[int] | None = None) -> int:
    """Enqueue every supervision row not yet in the outbox (one transaction); how many were added.

    A row the link's schema refuses is logged and counted in ``malformed[0]`` and left out (it is
    tried again at the next round, so a fixed schema sends it).
    """
    e = plant.enterprise
    added = 0
    with conn.transaction():
        for key, build in _payloads(conn, plant):
            try:
                payload = build()
            except ValidationError as err:
                if malformed is not None:
                    malformed[0] += 1
                log.error("supervision row not sent to the bureau: refused by the link's schema", key=key,
                          reason=describe(err))  # fmt: skip
                continue
            added += enqueue(conn, e.id, e.region.code, payload, dedupe_key=key) is not None
    return added


def record_supervision(conn: Conn, plant: Plant, env: Envelope) -> bool:
    """A ``supervision`` message from the bureau -> `hazmon.supervision.bureau.record_notice`.

    Returns False for a redelivery. Raises `Refused` (dead-lettered) for a hidden danger that is
    not ours.
    """
    p = env.payload
    assert isinstance(p, Supervision)
    try:
        return sbureau.record_notice(conn, plant, p, str(env.message_id))
    except RefusedError as err:
        raise Refused("unknown_danger", f"danger_id: {err}") from None
