"""Bureau warnings in PostgreSQL (psycopg 3): load the inputs, apply an evaluation, record steps.

`tick` is one transaction: it takes a transaction-scoped advisory lock (two workers or a
restarted daemon never evaluate at once), loads the inputs from the 0800 tables and the
warnings not closed, runs `hazmon.bureau.warnings.evaluate` and writes its changes. Run twice on
the same data it changes nothing; the partial unique index on ``cause_key`` makes a second open
warning for one cause impossible even by hand.

`step` locks the warning's row, checks the step with `hazmon.bureau.warning_flow.apply` and
writes the new state and the event together. Every event of a warning (raised, cause_cleared,
recurred, verify, feedback, close) is also put in the downlink outbox (`push_down`, a
``bureau_warning`` message to the enterprise) in the same transaction: written and sent, or
neither. `list_warnings` and `get_warning` see only the
regions a `Scope` covers; a warning outside it is "not found", never "forbidden".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from hazmon.bureau.downlink import enqueue
from hazmon.bureau.warning_flow import Refused, State, Transition, apply
from hazmon.bureau.warnings import (
    AlarmIn,
    AssessmentIn,
    Change,
    EnterpriseIn,
    Inputs,
    OpenWarning,
    RepeatIn,
    SourceIn,
    evaluate,
)
from hazmon.plant.bureau_standards import WarningSettings
from hazmon.plant.link import BureauWarning
from hazmon.plant.regions import Scope, prefix
from hazmon.plant.schema import describe
from hazmon.plant.standards import Tier

__all__ = [
    "NotFound",
    "get_warning",
    "list_warnings",
    "load_inputs",
    "load_open",
    "push_down",
    "step",
    "tick",
]

log = structlog.get_logger("hazmon.bureau")

Conn = psycopg.Connection[Any]
_LOCK = 0x6275_7761_726E  # 'buwarn': one evaluation at a time per database
BUREAU_ACTOR = "bureau"


@dataclass(frozen=True, slots=True)
class NotFound:
    warning_id: int


_ENTERPRISES = """
SELECT e.enterprise_id, e.name, e.region_code, e.registered_at, e.last_message_at,
       h.last_heartbeat_at, coalesce(h.endpoints, 0) AS endpoints, coalesce(h.connected, 0) AS connected,
       h.last_reading_at, coalesce(s.sensors, 0) AS sensors
FROM bureau_enterprise e
LEFT JOIN (SELECT enterprise_id, max(received_at) AS last_heartbeat_at, count(*) AS endpoints,
                  count(*) FILTER (WHERE connected) AS connected, max(last_reading_at) AS last_reading_at
           FROM bureau_heartbeat GROUP BY enterprise_id) h USING (enterprise_id)
LEFT JOIN (SELECT enterprise_id, count(*) AS sensors FROM bureau_sensor GROUP BY enterprise_id) s
       USING (enterprise_id)
ORDER BY e.enterprise_id
"""

# The newest minute with data per sensor, looked for only back to %(since)s (the PK index serves it).
_SOURCES = """
SELECT hs.enterprise_id, hs.source_id, hs.name, count(bs.tag) AS sensors,
       max(last.bucket) + interval '1 minute' AS last_data_at
FROM bureau_hazard_source hs
LEFT JOIN bureau_sensor bs ON bs.enterprise_id = hs.enterprise_id AND bs.source_id = hs.source_id
LEFT JOIN LATERAL (
    SELECT a.bucket FROM bureau_aggregate a
    WHERE a.enterprise_id = bs.enterprise_id AND a.sensor = bs.tag AND a.count > 0
      AND a.bucket >= %(since)s AND a.bucket <= %(now)s
    ORDER BY a.bucket DESC LIMIT 1
) last ON true
GROUP BY hs.enterprise_id, hs.source_id, hs.name
ORDER BY hs.enterprise_id, hs.source_id
"""

_RED_UNACKED = """
SELECT alarm_id, enterprise_id, source_id, sensor, condition, raised_at
FROM bureau_alarm
WHERE tier = %(red)s AND acked_at IS NULL AND bureau_step IS DISTINCT FROM 'closed' AND raised_at <= %(now)s
  AND condition <> 'bureau_warning'  -- the plant's copy of a bureau warning: never a warning of its own
ORDER BY alarm_id
"""

_REPEATS = """
SELECT enterprise_id, min(source_id) AS source_id, sensor, count(*) AS count, max(raised_at) AS last_raised_at
FROM bureau_alarm
WHERE sensor IS NOT NULL AND raised_at > %(since)s AND raised_at <= %(now)s AND condition <> 'bureau_warning'
GROUP BY enterprise_id, sensor
HAVING count(*) >= %(n)s
"""

_ASSESSMENTS = """
SELECT a.enterprise_id, a.source_id, a.next_due, a.reassessment_overdue, a.filing_overdue
FROM bureau_assessment a
JOIN bureau_hazard_source hs USING (enterprise_id, source_id)
ORDER BY a.enterprise_id, a.source_id
"""


def load_inputs(conn: Conn, settings: WarningSettings, now: datetime) -> Inputs:
    """What `evaluate` needs, read from the 0800 tables as of ``now``."""
    with conn.cursor(row_factory=dict_row) as cur:
        ents = cur.execute(_ENTERPRISES).fetchall()
        since = now - timedelta(seconds=settings.lookback_s)
        srcs = cur.execute(_SOURCES, {"since": since, "now": now}).fetchall()
        reds = cur.execute(_RED_UNACKED, {"red": int(Tier.RED), "now": now}).fetchall()
        reps = cur.execute(
            _REPEATS,
            {
                "since": now - timedelta(seconds=settings.repeated_window_s),
                "now": now,
                "n": settings.repeated_count,
            },
        ).fetchall()
        asms = cur.execute(_ASSESSMENTS).fetchall()
    last_data: dict[str, datetime] = {}
    for r in srcs:
        t = r["last_data_at"]
        if t is not None and (r["enterprise_id"] not in last_data or t > last_data[r["enterprise_id"]]):
            last_data[r["enterprise_id"]] = t
    return Inputs(
        enterprises=tuple(
            EnterpriseIn(
                r["enterprise_id"],
                r["name"],
                r["region_code"],
                r["registered_at"],
                r["last_message_at"],
                r["last_heartbeat_at"],
                r["endpoints"],
                r["connected"],
                r["last_reading_at"],
                last_data.get(r["enterprise_id"]),
                r["sensors"],
            )
            for r in ents
        ),
        sources=tuple(
            SourceIn(r["enterprise_id"], r["source_id"], r["name"], r["last_data_at"], r["sensors"])
            for r in srcs
        ),
        red_unacked=tuple(
            AlarmIn(
                r["alarm_id"], r["enterprise_id"], r["source_id"], r["sensor"], r["condition"], r["raised_at"]
            )
            for r in reds
        ),
        repeats=tuple(
            RepeatIn(r["enterprise_id"], r["source_id"], r["sensor"], r["count"], r["last_raised_at"])
            for r in reps
        ),
        assessments=tuple(
            AssessmentIn(
                r["enterprise_id"],
                r["source_id"],
                r["next_due"],
                r["reassessment_overdue"],
                r["filing_overdue"],
            )
            for r in asms
        ),
    )


def load_open(conn: Conn) -> list[OpenWarning]:
    rows = conn.execute(
        "SELECT id, cause_key, cleared_at FROM bureau_warning WHERE state <> 'closed' ORDER BY id"
    ).fetchall()
    return [OpenWarning(int(r[0]), str(r[1]), r[2]) for r in rows]


_ACTION = {
    "raised": "raised",
    "cause_cleared": "cause_cleared",
    "recurred": "recurred",
    "verify": "verified",
    "feedback": "fed_back",
    "close": "closed",
}
"""A warning's event -> the ``action`` of the ``bureau_warning`` message sent down."""


def push_down(conn: Conn, wid: int, event: str, *, at: datetime, actor: str, comment: str) -> int | None:
    """Put the ``bureau_warning`` message of one event of ``wid`` in the downlink; its ``seq``.

    In the caller's transaction: the event and its message are written together, or neither. A
    message the link's schema refuses (a row written by hand) is logged and left out (None): the
    warning itself is never held up by its message.
    """
    r = conn.execute(
        "SELECT enterprise_id, region_code, kind, colour, text_zh, text_en, source_id, alarm_id"
        " FROM bureau_warning WHERE id = %s",
        (wid,),
    ).fetchone()
    assert r is not None
    try:
        msg = _message(wid, r, event, at=at, actor=actor, comment=comment)
    except ValidationError as e:
        log.error(
            "bureau warning not sent down: refused by the link's schema", warning=wid, reason=describe(e)
        )
        return None
    return enqueue(conn, str(r[0]), str(r[1]).strip(), msg)


def _message(wid: int, r: Any, event: str, *, at: datetime, actor: str, comment: str) -> BureauWarning:
    return BureauWarning(
        warning_id=wid,
        warning_kind=r[2],
        colour=Tier(int(r[3])).colour,  # type: ignore[arg-type]
        text_zh=r[4],
        text_en=r[5],
        hazard_source=r[6],
        alarm_id=r[7],
        action=_ACTION[event],  # type: ignore[arg-type]
        at=at,
        actor=actor,
        comment=comment,
    )


def _event(conn: Conn, wid: int, event: str, *, at: datetime, actor: str, comment: str, state: str) -> None:
    conn.execute(
        "INSERT INTO bureau_warning_event (warning_id, event, at, actor, comment, state_after)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        (wid, event, at, actor, comment, state),
    )
    push_down(conn, wid, event, at=at, actor=actor, comment=comment)


def _write(conn: Conn, ch: Change) -> Change | None:
    if ch.action == "raise":
        c = ch.cause
        assert c is not None
        row = conn.execute(
            """INSERT INTO bureau_warning (cause_key, kind, colour, enterprise_id, source_id, sensor,
                   alarm_id, region_code, since, raised_at, updated_at, text_zh, text_en, detail)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (cause_key) WHERE state <> 'closed' DO NOTHING RETURNING id""",
            (
                c.key,
                c.kind.value,
                int(c.colour),
                c.enterprise_id,
                c.source_id,
                c.sensor,
                c.alarm_id,
                c.region_code,
                c.since,
                ch.at,
                ch.at,
                c.text_zh,
                c.text_en,
                Jsonb(c.detail),
            ),
        ).fetchone()
        if row is None:
            return None
        wid = int(row[0])
        _event(conn, wid, "raised", at=ch.at, actor=BUREAU_ACTOR, comment=c.text_zh, state=State.PUSHED.value)
        return replace(ch, warning_id=wid)
    assert ch.warning_id is not None
    cleared = ch.at if ch.action == "cause_cleared" else None
    row = conn.execute(
        "UPDATE bureau_warning SET cleared_at = %s, updated_at = %s WHERE id = %s AND state <> 'closed'"
        " RETURNING state",
        (cleared, ch.at, ch.warning_id),
    ).fetchone()
    if row is None:
        return None
    comment = "" if ch.cause is None else ch.cause.text_zh
    _event(conn, ch.warning_id, ch.action, at=ch.at, actor=BUREAU_ACTOR, comment=comment, state=str(row[0]))
    return ch


def tick(conn: Conn, settings: WarningSettings, now: datetime) -> list[Change]:
    """One evaluation at ``now``, applied in one transaction; the changes written (raises with ids)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        changes = evaluate(load_inputs(conn, settings, now), load_open(conn), settings, now)
        done = [_write(conn, ch) for ch in changes]
    return [c for c in done if c is not None]


def _scope_sql(scope: Scope | None) -> tuple[str, list[Any]]:
    if scope is None or not prefix(scope):
        return "", []
    return " AND w.region_code LIKE %s", [prefix(scope) + "%"]


_COLUMNS = """w.id, w.cause_key, w.kind, w.colour, w.enterprise_id, e.name AS enterprise_name, w.source_id,
    w.sensor, w.alarm_id, w.region_code, w.since, w.raised_at, w.state, w.cleared_at, w.verified_at,
    w.fed_back_at, w.closed_at, w.updated_at, w.text_zh, w.text_en, w.detail"""


def list_warnings(
    conn: Conn,
    scope: Scope | None,
    *,
    open_only: bool = True,
    enterprise_id: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Warnings in ``scope`` (None: all), newest first."""
    where, args = _scope_sql(scope)
    if open_only:
        where += " AND w.state <> 'closed'"
    if enterprise_id is not None:
        where += " AND w.enterprise_id = %s"
        args.append(enterprise_id)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)"
            f" WHERE true{where} ORDER BY w.raised_at DESC, w.id DESC LIMIT %s",
            [*args, limit],
        ).fetchall()


def get_warning(conn: Conn, warning_id: int, scope: Scope | None) -> dict[str, Any] | None:
    """One warning with its ``events`` and ``notices``, or None when missing or outside ``scope``.

    ``events``: its history, oldest first; ``notices``: who of the staff was told, and when.
    """
    where, args = _scope_sql(scope)
    with conn.cursor(row_factory=dict_row) as cur:
        w = cur.execute(
            f"SELECT {_COLUMNS} FROM bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)"
            f" WHERE w.id = %s{where}",
            [warning_id, *args],
        ).fetchone()
        if w is None:
            return None
        w["events"] = cur.execute(
            "SELECT event, at, actor, comment, state_after FROM bureau_warning_event"
            " WHERE warning_id = %s ORDER BY id",
            (warning_id,),
        ).fetchall()
        w["notices"] = cur.execute(
            "SELECT recipient, notified_at, attempts, last_error, gave_up_at FROM bureau_warning_notice"
            " WHERE warning_id = %s ORDER BY recipient",
            (warning_id,),
        ).fetchall()
    return w


_STAMP = {State.VERIFIED: "verified_at", State.FED_BACK: "fed_back_at", State.CLOSED: "closed_at"}


def step(
    conn: Conn,
    warning_id: int,
    step_name: str,
    *,
    actor: str,
    comment: str,
    now: datetime,
    scope: Scope | None,
) -> Transition | Refused | NotFound:
    """Record one handling step (verify, feedback, close) on a warning in ``scope``, in one transaction."""
    where, args = _scope_sql(scope)
    with conn.transaction():
        row = conn.execute(
            "SELECT w.state, w.cleared_at,"
            " (SELECT max(at) FROM bureau_warning_event WHERE warning_id = w.id)"
            f" FROM bureau_warning w WHERE w.id = %s{where} FOR UPDATE",
            [warning_id, *args],
        ).fetchone()
        if row is None:
            return NotFound(warning_id)
        t = apply(
            State(row[0]), step_name, actor, now, comment, last_at=row[2], cause_cleared=row[1] is not None
        )
        if isinstance(t, Refused):
            return t
        conn.execute(
            f"UPDATE bureau_warning SET state = %s, {_STAMP[t.after]} = %s, updated_at = %s WHERE id = %s",
            (t.after.value, now, now, warning_id),
        )
        _event(conn, warning_id, t.step.value, at=now, actor=t.actor, comment=comment, state=t.after.value)
    return t
