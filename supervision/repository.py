"""Hidden dangers, duty checks and commitments in PostgreSQL (psycopg 3); the I/O edge.

Every write is one transaction: a step is checked against the record folded from
its stored steps (the row is locked first, so two writers cannot both move it),
then the step, its plan or attachment and the projection row are written
together, or nothing is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from hazmon.plant.model import Plant
from hazmon.plant.standards import Level
from hazmon.supervision.attachments import Attachment, check_attachment
from hazmon.supervision.dangers import (
    Action,
    Danger,
    DangerLevel,
    FoundBy,
    Plan,
    RefusedError,
    Report,
    Step,
    decide,
    fold,
)
from hazmon.supervision.duty import (
    Commitment,
    DutyCheck,
    commitment_problems,
    duty_check_problems,
)
from hazmon.supervision.findings import SupervisionState, Sweep, Told, supervision_findings
from hazmon.supervision.supervised import Notice, supervised_accept_problems

__all__ = [
    "add_check",
    "add_danger",
    "add_step",
    "alarm_subject",
    "attach",
    "attachment_content",
    "attachments",
    "ensure_started",
    "file_commitment",
    "get_danger",
    "list_checks",
    "list_commitments",
    "list_dangers",
    "load_state",
    "mark_told",
    "notices",
    "page_dangers",
    "responsible_of",
    "save_told",
    "sweep_once",
]

Conn = psycopg.Connection[tuple[Any, ...]]


def responsible_of(plant: Plant) -> dict[str, dict[str, str]]:
    """Hazard source id -> role -> the responsible person's name (plant file)."""
    return {
        hs.id: {
            "principal": hs.responsible.principal.name,
            "technical": hs.responsible.technical.name,
            "operational": hs.responsible.operational.name,
        }
        for hs in plant.hazard_sources
    }


_SKEW = timedelta(minutes=5)


def _not_in_future(at: datetime) -> None:
    """Steps are recorded when (or after) they happen; a time ahead of the clock is a typing error."""
    if at.tzinfo is not None and at > datetime.now(UTC) + _SKEW:
        raise RefusedError([f"time: {at.isoformat()} is in the future"])


def ensure_started(conn: Conn, enterprise_id: str, now: datetime | None = None) -> datetime:
    """When supervision began for the enterprise.

    Set on first use to ``now``: the caller's clock, the one that later judges the periods
    (the database's clock only when none is given).
    """
    with conn.transaction():
        conn.execute(
            "INSERT INTO supervision_start (enterprise_id, started_at) VALUES (%s, coalesce(%s, now())) "
            "ON CONFLICT DO NOTHING",
            (enterprise_id, now),
        )
        row = conn.execute(
            "SELECT started_at FROM supervision_start WHERE enterprise_id = %s", (enterprise_id,)
        ).fetchone()
    assert row is not None
    started: datetime = row[0]
    return started


# --------------------------------------------------------------------------- hidden dangers


def _step_row(danger_id: int, seq: int, s: Step) -> tuple[Any, ...]:
    return (danger_id, seq, s.action.value, s.actor, s.role, s.at, s.comment, Jsonb(dict(s.data)))


_INSERT_STEP = """INSERT INTO hidden_danger_step (danger_id, seq, action, actor, role, at, comment, data)
                  VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""


def _check_source(plant: Plant, r: Report) -> list[str]:
    out: list[str] = []
    hs_ids = {hs.id for hs in plant.hazard_sources}
    if r.hazard_source is not None and r.hazard_source not in hs_ids:
        out.append(f"hazard source: '{r.hazard_source}' is not in the plant file")
    if r.sensor is not None:
        try:
            s = plant.sensor(r.sensor)
        except KeyError:
            out.append(f"sensor: '{r.sensor}' is not in the plant file")
        else:
            if r.hazard_source is not None and s.hazard_source != r.hazard_source:
                out.append(f"sensor: {r.sensor} belongs to {s.hazard_source}, not {r.hazard_source}")
    return out


def add_danger(conn: Conn, plant: Plant, step: Step) -> Danger:
    """Report a new hidden danger (a ``report`` step); returns it with its id.

    Raises:
        RefusedError: every problem of the report.
    """
    tz = ZoneInfo(plant.enterprise.timezone)
    _not_in_future(step.at)
    if step.action is not Action.REPORT:
        raise RefusedError([f"{step.action.value}: a new hidden danger starts with 'report'"])
    decide(None, step, tz)
    r = Report.from_json(step.data)
    problems = _check_source(plant, r)
    if problems:
        raise RefusedError(problems)
    with conn.transaction():
        if r.alarm_id is not None:
            a = conn.execute(
                "SELECT 1 FROM alarm WHERE id = %s AND enterprise_id = %s", (r.alarm_id, plant.enterprise.id)
            ).fetchone()
            if a is None:
                raise RefusedError([f"alarm: no alarm {r.alarm_id} of {plant.enterprise.id}"])
        if r.duty_check_id is not None:
            c = conn.execute(
                "SELECT 1 FROM duty_check WHERE id = %s AND enterprise_id = %s",
                (r.duty_check_id, plant.enterprise.id),
            ).fetchone()
            if c is None:
                raise RefusedError([f"duty check: no duty check {r.duty_check_id} of {plant.enterprise.id}"])
        row = conn.execute(
            """INSERT INTO hidden_danger (enterprise_id, hazard_source, title, level, found_by, criteria,
                   alarm_id, duty_check_id, state, found_at, updated_at, last_seq)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'found', %s, %s, 1) RETURNING id""",
            (
                plant.enterprise.id,
                r.hazard_source,
                r.title,
                r.level.value,
                r.found_by.value,
                list(r.criteria),
                r.alarm_id,
                r.duty_check_id,
                step.at,
                step.at,
            ),
        ).fetchone()
        assert row is not None
        did = int(row[0])
        conn.execute(_INSERT_STEP, _step_row(did, 1, step))
    return fold(did, [Step(step.action, step.actor, step.role, step.at, step.comment, step.data, 1)])


def alarm_subject(conn: Conn, plant: Plant, alarm_id: int) -> Report | None:
    """A report prefilled from an alarm (hazard source, sensor, its message), to turn it into a record."""
    row = conn.execute(
        """SELECT hazard_source, sensor, condition, message_zh, message_en FROM alarm
           WHERE id = %s AND enterprise_id = %s""",
        (alarm_id, plant.enterprise.id),
    ).fetchone()
    if row is None:
        return None
    hs, sensor, condition, zh, en = row
    hs_ids = {h.id for h in plant.hazard_sources}
    tags = {s.tag for s in plant.sensors()}
    title = (zh if plant.enterprise.locale == "zh" else en) or f"alarm {alarm_id}: {condition}"
    return Report(
        title=str(title),
        level=DangerLevel.GENERAL,
        found_by=FoundBy.ALARM,
        hazard_source=hs if hs in hs_ids else None,
        sensor=sensor if sensor in tags else None,
        alarm_id=alarm_id,
    )


def _steps(conn: Conn, danger_id: int) -> list[Step]:
    rows = conn.execute(
        """SELECT seq, action, actor, role, at, comment, data FROM hidden_danger_step
           WHERE danger_id = %s ORDER BY seq""",
        (danger_id,),
    ).fetchall()
    return [Step(Action(r[1]), r[2], r[3], r[4], r[5], r[6] or {}, int(r[0])) for r in rows]


def _locked(conn: Conn, enterprise_id: str, danger_id: int) -> Danger:
    row = conn.execute(
        "SELECT id FROM hidden_danger WHERE id = %s AND enterprise_id = %s FOR UPDATE",
        (danger_id, enterprise_id),
    ).fetchone()
    if row is None:
        raise RefusedError([f"hidden danger {danger_id}: no such record for {enterprise_id}"])
    return fold(danger_id, _steps(conn, danger_id))


def _write_step(conn: Conn, d: Danger, step: Step) -> Danger:
    seq = d.steps[-1].seq + 1
    stored = Step(step.action, step.actor, step.role, step.at, step.comment, step.data, seq)
    conn.execute(_INSERT_STEP, _step_row(d.id, seq, stored))
    after = fold(d.id, (*d.steps, stored))
    if step.action is Action.PLAN:
        p = Plan.from_json(step.data)
        conn.execute(
            """INSERT INTO hidden_danger_plan (danger_id, seq, goal, measures, funds_yuan, materials,
                   organisation, persons, deadline, safety_measures, contingency_plan, signed_by, signed_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                d.id,
                seq,
                p.goal,
                p.measures,
                p.funds,
                p.materials,
                p.organisation,
                list(p.persons),
                p.deadline,
                p.safety_measures,
                p.contingency_plan,
                step.actor,
                step.at,
            ),
        )
    conn.execute(
        "UPDATE hidden_danger SET state = %s, deadline = %s, updated_at = %s, last_seq = %s WHERE id = %s",
        (after.state.value, after.deadline, step.at, seq, d.id),
    )
    return after


def add_step(conn: Conn, plant: Plant, danger_id: int, step: Step) -> Danger:
    """Take one step on a hidden danger; returns the record after it.

    Raises:
        RefusedError: the step is not allowed (state, role, plan, time); nothing is written.
    """
    if step.action in (Action.REPORT, Action.ATTACH):
        raise RefusedError([f"{step.action.value}: use add_danger / attach"])
    tz = ZoneInfo(plant.enterprise.timezone)
    _not_in_future(step.at)
    with conn.transaction():
        d = _locked(conn, plant.enterprise.id, danger_id)
        why = supervised_accept_problems(step, notices(conn, plant.enterprise.id, danger_id))
        try:
            decide(d, step, tz)
        except RefusedError as e:
            raise RefusedError([*e.reasons, *why]) from None
        if why:  # Order 16: a supervised record's 销号 is the bureau's (its close over the link)
            raise RefusedError(why)
        return _write_step(conn, d, step)


def notices(conn: Conn, enterprise_id: str, danger_id: int) -> list[Notice]:
    """The bureau's supervision steps received about the record, in the order received."""
    rows = conn.execute(
        """SELECT supervision_id, action, level, bureau_person FROM supervision_notice
           WHERE enterprise_id = %s AND danger_id = %s ORDER BY id""",
        (enterprise_id, danger_id),
    ).fetchall()
    return [Notice(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def attach(
    conn: Conn,
    plant: Plant,
    danger_id: int,
    step: Step,
    *,
    filename: str,
    content: bytes,
    content_type: str | None = None,
) -> tuple[Danger, int, Attachment]:
    """Attach a file with an ``attach`` step; returns (record, attachment id, description).

    Raises:
        AttachmentError: wrong type, too large, empty; nothing is written.
        RefusedError: the step is not allowed; nothing is written.
    """
    meta = check_attachment(filename, content, content_type)
    _not_in_future(step.at)
    data = {**step.data, "filename": meta.filename, "content_type": meta.content_type, "size": meta.size}
    step = Step(Action.ATTACH, step.actor, step.role, step.at, step.comment, data | {"sha256": meta.sha256})
    tz = ZoneInfo(plant.enterprise.timezone)
    with conn.transaction():
        d = _locked(conn, plant.enterprise.id, danger_id)
        decide(d, step, tz)
        after = _write_step(conn, d, step)
        row = conn.execute(
            """INSERT INTO hidden_danger_attachment (danger_id, seq, filename, content_type, size, sha256,
                   content) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (d.id, after.steps[-1].seq, meta.filename, meta.content_type, meta.size, meta.sha256, content),
        ).fetchone()
        assert row is not None
    return after, int(row[0]), meta


def attachments(conn: Conn, danger_id: int) -> list[tuple[int, Attachment]]:
    rows = conn.execute(
        """SELECT id, filename, content_type, size, sha256 FROM hidden_danger_attachment
           WHERE danger_id = %s ORDER BY id""",
        (danger_id,),
    ).fetchall()
    return [(int(r[0]), Attachment(r[1], r[2], int(r[3]), r[4])) for r in rows]


def attachment_content(conn: Conn, enterprise_id: str, attachment_id: int) -> tuple[Attachment, bytes] | None:
    row = conn.execute(
        """SELECT a.filename, a.content_type, a.size, a.sha256, a.content FROM hidden_danger_attachment a
           JOIN hidden_danger d ON d.id = a.danger_id WHERE a.id = %s AND d.enterprise_id = %s""",
        (attachment_id, enterprise_id),
    ).fetchone()
    if row is None:
        return None
    return Attachment(row[0], row[1], int(row[2]), row[3]), bytes(row[4])


def get_danger(conn: Conn, enterprise_id: str, danger_id: int) -> Danger | None:
    row = conn.execute(
        "SELECT 1 FROM hidden_danger WHERE id = %s AND enterprise_id = %s", (danger_id, enterprise_id)
    ).fetchone()
    if row is None:
        return None
    return fold(danger_id, _steps(conn, danger_id))


def _where(  # noqa: PLR0917 - the filters, in list_dangers' order
    enterprise_id: str,
    states: Sequence[str],
    hazard_source: str | None,
    level: str | None,
    alarm_id: int | None,
    title: str | None = None,
) -> tuple[str, list[Any]]:
    sql = " WHERE enterprise_id = %s"
    params: list[Any] = [enterprise_id]
    if states:
        sql += " AND state = ANY(%s)"
        params.append(list(states))
    if hazard_source:
        sql += " AND hazard_source = %s"
        params.append(hazard_source)
    if level:
        sql += " AND level = %s"
        params.append(level)
    if alarm_id is not None:  # the alarm -> hidden danger direction of the link
        sql += " AND alarm_id = %s"
        params.append(alarm_id)
    if title:
        sql += " AND strpos(lower(title), lower(%s)) > 0"
        params.append(title)
    return sql, params


def _folded(conn: Conn, ids: list[int]) -> list[Danger]:
    """The records of ``ids`` in that order, folded from their steps (one query for all steps)."""
    if not ids:
        return []
    rows = conn.execute(
        """SELECT danger_id, seq, action, actor, role, at, comment, data FROM hidden_danger_step
           WHERE danger_id = ANY(%s) ORDER BY danger_id, seq""",
        (ids,),
    ).fetchall()
    steps: dict[int, list[Step]] = {}
    for r in rows:
        step = Step(Action(r[2]), r[3], r[4], r[5], r[6], r[7] or {}, int(r[1]))
        steps.setdefault(int(r[0]), []).append(step)
    return [fold(i, steps[i]) for i in ids]


def list_dangers(
    conn: Conn,
    enterprise_id: str,
    states: Sequence[str] = (),
    *,
    hazard_source: str | None = None,
    level: str | None = None,
    alarm_id: int | None = None,
) -> list[Danger]:
    """Records of the enterprise (newest first), folded from their steps (one query for all steps)."""
    where, params = _where(enterprise_id, states, hazard_source, level, alarm_id)
    ids = [int(r[0]) for r in conn.execute(f"SELECT id FROM hidden_danger{where} ORDER BY id DESC", params)]
    return _folded(conn, ids)


def page_dangers(
    conn: Conn,
    enterprise_id: str,
    states: Sequence[str] = (),
    *,
    hazard_source: str | None = None,
    level: str | None = None,
    title: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Danger], int]:
    """One page of the register (newest first) and how many records match: filtered and paged in SQL.

    ``title``: only records whose title contains this text (case-insensitive).
    """
    where, params = _where(enterprise_id, states, hazard_source, level, None, title)
    row = conn.execute(f"SELECT count(*) FROM hidden_danger{where}", params).fetchone()
    total = int(row[0]) if row else 0
    ids = [
        int(r[0])
        for r in conn.execute(
            f"SELECT id FROM hidden_danger{where} ORDER BY id DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
    ]
    return _folded(conn, ids), total


# --------------------------------------------------------------------------- duty checks


def add_check(conn: Conn, plant: Plant, check: DutyCheck, now: datetime) -> int:
    """Record a responsible person's check.

    Raises:
        RefusedError: every problem of the check; nothing is written.
    """
    problems = duty_check_problems(check, responsible_of(plant), now)
    if problems:
        raise RefusedError(problems)
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO duty_check (enterprise_id, hazard_source, role, person, checked_at, what, findings,
                   recorded_by, recorded_role) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (
                plant.enterprise.id,
                check.hazard_source,
                check.role,
                check.person.strip(),
                check.at,
                check.what,
                check.findings,
                check.recorded_by,
                check.recorded_role,
            ),
        ).fetchone()
    assert row is not None
    return int(row[0])


def list_checks(conn: Conn, enterprise_id: str, hazard_source: str | None = None) -> list[DutyCheck]:
    sql = """SELECT id, hazard_source, role, person, checked_at, what, findings, recorded_by, recorded_role
             FROM duty_check WHERE enterprise_id = %s"""
    params: list[Any] = [enterprise_id]
    if hazard_source:
        sql += " AND hazard_source = %s"
        params.append(hazard_source)
    rows = conn.execute(sql + " ORDER BY checked_at DESC, id DESC", params).fetchall()
    return [DutyCheck(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], id=int(r[0])) for r in rows]


# --------------------------------------------------------------------------- commitments


def file_commitment(conn: Conn, plant: Plant, c: Commitment, role: str) -> int:
    """File the day's commitment.

    Raises:
        RefusedError: every problem (a second commitment for the same day included); nothing is written.
    """
    tz = ZoneInfo(plant.enterprise.timezone)
    problems = commitment_problems(c, [hs.id for hs in plant.hazard_sources], tz, role)
    if problems:
        raise RefusedError(problems)
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO daily_commitment (enterprise_id, day, committed_by, filed_at, sources,
                   special_work, note) VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (enterprise_id, day) DO NOTHING RETURNING id""",
            (
                plant.enterprise.id,
                c.day,
                c.by,
                c.at,
                Jsonb(dict(c.sources)),
                Jsonb(dict(c.special_work)),
                c.note,
            ),
        ).fetchone()
    if row is None:
        raise RefusedError([f"day: the commitment for {c.day} is already filed"])
    return int(row[0])


def list_commitments(conn: Conn, enterprise_id: str, limit: int | None = None) -> list[Commitment]:
    sql = """SELECT id, day, committed_by, filed_at, sources, special_work, note FROM daily_commitment
             WHERE enterprise_id = %s ORDER BY day DESC"""
    params: list[Any] = [enterprise_id]
    if limit is not None:
        sql += " LIMIT %s"
        params.append(limit)
    out = []
    for r in conn.execute(sql, params).fetchall():
        work = {str(k): int(v) for k, v in (r[5] or {}).items()}
        out.append(Commitment(r[1], r[2], r[3], dict(r[4]), work, r[6], int(r[0])))
    return out


# --------------------------------------------------------------------------- alarms


def load_state(
    conn: Conn, plant: Plant, commitment_days: int = 3, now: datetime | None = None
) -> SupervisionState:
    """Everything `supervision_findings` needs: open and recently closed records, checks, commitments."""
    eid = plant.enterprise.id
    started = ensure_started(conn, eid, now)
    told = {
        str(r[0]): Told(bool(r[1]), str(r[2]), Level(r[3]))
        for r in conn.execute(
            "SELECT key, active, episode, level FROM supervision_told WHERE enterprise_id = %s", (eid,)
        ).fetchall()
    }
    dangers = list_dangers(conn, eid, states=("found", "plan", "rectifying", "applied"))
    # accepted records whose alarm may still need its clearing finding
    told_ids = {
        int(k.split("|")[1].split("/")[1]) for k, t in told.items() if t.active and "|hidden-danger/" in k
    }
    open_ids = {d.id for d in dangers}
    for i in sorted(told_ids - open_ids):
        d = get_danger(conn, eid, i)
        if d is not None:
            dangers.append(d)
    return SupervisionState(
        enterprise=eid,
        tz=ZoneInfo(plant.enterprise.timezone),
        settings=plant.supervision,
        sources=responsible_of(plant),
        started=started,
        dangers=tuple(dangers),
        checks=tuple(_latest_checks(conn, eid)),
        commitments=tuple(list_commitments(conn, eid, commitment_days)),
        told=told,
    )


def _latest_checks(conn: Conn, enterprise_id: str) -> list[DutyCheck]:
    """The latest check of each (hazard source, role): all the duty status needs."""
    rows = conn.execute(
        """SELECT DISTINCT ON (hazard_source, role) id, hazard_source, role, person, checked_at, what,
                  findings, recorded_by, recorded_role
           FROM duty_check WHERE enterprise_id = %s
           ORDER BY hazard_source, role, checked_at DESC""",
        (enterprise_id,),
    ).fetchall()
    return [DutyCheck(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], id=int(r[0])) for r in rows]


def save_told(conn: Conn, enterprise_id: str, told: Mapping[str, Told]) -> None:
    """Store what the alarms have been told (after handing them the sweep's findings)."""
    with conn.transaction():
        for k, t in told.items():
            conn.execute(
                """INSERT INTO supervision_told (enterprise_id, key, active, episode, level)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (enterprise_id, key) DO UPDATE SET active = EXCLUDED.active,
                       episode = EXCLUDED.episode, level = EXCLUDED.level, updated_at = now()""",
                (enterprise_id, k, t.active, t.episode, t.level.value),
            )


def sweep_once(dsn: str, plant: Plant, now: datetime) -> Sweep:
    """Load the state, compute the findings at ``now`` (the daemon runs this in a thread)."""
    with psycopg.connect(dsn, autocommit=True, application_name="hazmon", connect_timeout=10) as conn:
        return supervision_findings(load_state(conn, plant, now=now), now)


def mark_told(dsn: str, plant: Plant, sweep: Sweep) -> None:
    """Store ``sweep.told`` once its findings are with the alarms: a restart then repeats nothing."""
    with psycopg.connect(dsn, autocommit=True, application_name="hazmon", connect_timeout=10) as conn:
        save_told(conn, plant.enterprise.id, sweep.told)
