"""Long lists of the bureau, paged and filtered in PostgreSQL: enterprises, alarms, warnings.

A region can hold thousands of enterprises and tens of thousands of alarms and warnings; the
console's list pages never load them all. Each function takes the reader's `Scope` (the region
filter is always in the SQL, whatever else is asked), the filters, ``limit`` and ``offset``,
and returns one page of rows and the total that matches. The order is stable and served by an
index (``store/migrations/0910_console_list_indexes.sql``): enterprises by id, alarms and
warnings newest first with the id as tie-breaker, so page 2 holds exactly the rows after page 1.

Filters (all optional): ``county`` (a 6-digit code; the caller checks it lies in the scope),
``enterprise`` (an id), ``colours`` (tiers 1-4, red = 4), a ``state``, and ``text``: a
case-insensitive substring of the id, name or message (``%`` and ``_`` are taken literally).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from hazmon.plant.regions import Scope, prefix

__all__ = [
    "ALARM_STATES",
    "SUPERVISION_DUE",
    "WARNING_STATES",
    "AlarmFilter",
    "EnterpriseFilter",
    "SupervisionFilter",
    "WarningFilter",
    "duty_record",
    "open_warning_counts",
    "page_alarms",
    "page_enterprises",
    "page_supervisions",
    "page_warnings",
]

Conn = psycopg.Connection[Any]
# open: not cleared at the plant or not closed by the bureau (the API's `_OPEN`)
_OPEN = "(a.cleared_at IS NULL OR a.bureau_step IS DISTINCT FROM 'closed')"
ALARM_STATES = ("open", "closed")
WARNING_STATES = ("open", "pushed", "verified", "fed_back", "closed")


@dataclass(frozen=True, slots=True)
class EnterpriseFilter:
    county: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class AlarmFilter:
    state: Literal["open", "closed"] | None = None
    colours: Sequence[int] = field(default_factory=tuple)
    county: str | None = None
    enterprise: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class WarningFilter:
    state: str | None = None  # one of WARNING_STATES; "open" is every state but closed
    colours: Sequence[int] = field(default_factory=tuple)
    county: str | None = None
    enterprise: str | None = None
    text: str | None = None


def _like(text: str) -> str:
    """``text`` as an ILIKE pattern matching it anywhere, its wildcards taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(scope: Scope | None, region_col: str) -> tuple[list[str], list[object]]:
    return [f"{region_col} LIKE %s"], [(prefix(scope) if scope else "") + "%"]


def _equal(where: list[str], args: list[object], column: str, value: object) -> None:
    """Only rows whose ``column`` is ``value``, when one is given."""
    if value:
        where.append(f"{column} = %s")
        args.append(value)


def _one_of(where: list[str], args: list[object], column: str, values: Sequence[object]) -> None:
    """Only rows whose ``column`` is one of ``values``, when any are given."""
    if values:
        where.append(f"{column} = ANY(%s)")
        args.append(list(values))


def _containing(where: list[str], args: list[object], columns: Sequence[str], text: str | None) -> None:
    """Only rows with ``text`` in one of ``columns`` (case-insensitive), when it is given."""
    if text:
        where.append("(" + " OR ".join(f"{c} ILIKE %s" for c in columns) + ")")
        args += [_like(text)] * len(columns)


def _page(
    conn: Conn,
    *,
    select: str,
    count: str,
    where: list[str],
    args: list[object],
    order: str,
    limit: int,
    offset: int,
    select_args: Sequence[object] = (),
) -> tuple[list[dict[str, Any]], int]:
    """One page of ``select`` and the total of ``count``; ``select_args`` fill ``select``'s own %s."""
    cond = " WHERE " + " AND ".join(where)
    with conn.cursor(row_factory=dict_row) as cur:
        got = cur.execute(f"{count}{cond}", args).fetchone()
        total = int(got["n"]) if got else 0
        rows = cur.execute(
            f"{select}{cond} ORDER BY {order} LIMIT %s OFFSET %s", [*select_args, *args, limit, offset]
        )
        return rows.fetchall(), total


def page_enterprises(
    conn: Conn, scope: Scope | None, f: EnterpriseFilter, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Enterprises by id, with their open alarms and open warnings counted."""
    where, args = _where(scope, "e.region_code")
    _equal(where, args, "e.region_code", f.county)
    _containing(where, args, ("e.enterprise_id", "e.name"), f.text)
    select = (
        "SELECT e.enterprise_id AS id, e.name, e.region_code, e.registered_at,"
        " e.last_message_at AS last_seen, (SELECT count(*) FROM bureau_alarm a"
        f" WHERE a.enterprise_id = e.enterprise_id AND {_OPEN}) AS open_alarms,"
        " (SELECT count(*) FROM bureau_warning w"
        " WHERE w.enterprise_id = e.enterprise_id AND w.state <> 'closed') AS open_warnings"
        " FROM bureau_enterprise e"
    )
    count = "SELECT count(*) AS n FROM bureau_enterprise e"
    return _page(
        conn,
        select=select,
        count=count,
        where=where,
        args=args,
        order="e.enterprise_id",
        limit=limit,
        offset=offset,
    )


def page_alarms(
    conn: Conn, scope: Scope | None, f: AlarmFilter, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Alarms newest first (the API's order: raised_at, then id)."""
    where, args = _where(scope, "e.region_code")
    if f.state is not None:
        where.append(_OPEN if f.state == "open" else f"NOT {_OPEN}")
    _one_of(where, args, "a.tier", f.colours)
    _equal(where, args, "e.region_code", f.county)
    _equal(where, args, "a.enterprise_id", f.enterprise)
    _containing(where, args, ("a.alarm_id", "e.name", "a.sensor", "a.message_zh", "a.message_en"), f.text)
    select = (
        "SELECT a.alarm_id AS id, a.enterprise_id AS enterprise, e.name AS enterprise_name, e.region_code,"
        " a.source_id AS hazard_source, a.sensor, a.condition, a.tier, a.tier_name, a.state, a.raised_at,"
        f" a.acked_at, a.cleared_at, a.bureau_step, a.message_zh, a.message_en, {_OPEN} AS open"
        " FROM bureau_alarm a JOIN bureau_enterprise e USING (enterprise_id)"
    )
    count = "SELECT count(*) AS n FROM bureau_alarm a JOIN bureau_enterprise e USING (enterprise_id)"
    return _page(
        conn,
        select=select,
        count=count,
        where=where,
        args=args,
        order="a.raised_at DESC, a.alarm_id",
        limit=limit,
        offset=offset,
    )


def page_warnings(
    conn: Conn, scope: Scope | None, f: WarningFilter, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Warnings newest first (raised_at, then id: the order of `warning_repository.list_warnings`)."""
    where, args = _where(scope, "w.region_code")
    if f.state == "open":
        where.append("w.state <> 'closed'")
    else:
        _equal(where, args, "w.state", f.state)
    _one_of(where, args, "w.colour", f.colours)
    _equal(where, args, "w.region_code", f.county)
    _equal(where, args, "w.enterprise_id", f.enterprise)
    _containing(where, args, ("w.enterprise_id", "e.name", "w.text_zh", "w.text_en"), f.text)
    select = (
        "SELECT w.id, w.kind, w.colour, w.enterprise_id, e.name AS enterprise_name, w.region_code,"
        " w.source_id, w.sensor, w.raised_at, w.state, w.text_zh, w.text_en"
        " FROM bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)"
    )
    count = "SELECT count(*) AS n FROM bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)"
    return _page(
        conn,
        select=select,
        count=count,
        where=where,
        args=args,
        order="w.raised_at DESC, w.id DESC",
        limit=limit,
        offset=offset,
    )


def open_warning_counts(conn: Conn, scope: Scope | None, now: datetime) -> dict[tuple[int, str], int]:
    """Open warnings counted by (colour, age): raised under an hour, a day, a week ago, or older."""
    where, args = _where(scope, "w.region_code")
    sql = (
        "SELECT w.colour, CASE WHEN w.raised_at > %s - interval '1 hour' THEN 'age_1h'"
        " WHEN w.raised_at > %s - interval '1 day' THEN 'age_1d'"
        " WHEN w.raised_at > %s - interval '7 days' THEN 'age_7d' ELSE 'age_older' END AS age, count(*)"
        f" FROM bureau_warning w WHERE {' AND '.join(where)} AND w.state <> 'closed' GROUP BY 1, 2"
    )
    rows = conn.execute(sql, [now, now, now, *args]).fetchall()
    return {(int(colour), str(age)): int(n) for colour, age, n in rows}


# ---------------------------------------------------------------- supervision (挂牌督办) and duties

SUPERVISION_DUE = ("overdue", "week", "open")
_UNSETTLED = "s.state NOT IN ('accepted', 'closed')"


@dataclass(frozen=True, slots=True)
class SupervisionFilter:
    """What the supervision list shows.

    ``due``: overdue (the deadline day is past, not accepted or closed), week (due within 7 days)
    or open (not closed); ``level`` the level supervising now (county, city, province).
    """

    due: str | None = None
    level: str | None = None
    county: str | None = None
    enterprise: str | None = None
    text: str | None = None


def page_supervisions(
    conn: Conn, scope: Scope | None, f: SupervisionFilter, today: date, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """Supervisions by deadline, the nearest first; ``today`` is the bureau's local day."""
    where, args = _where(scope, "s.region_code")
    if f.due == "overdue":
        where.append(f"s.deadline < %s AND {_UNSETTLED}")
        args.append(today)
    elif f.due == "week":
        where.append(f"s.deadline >= %s AND s.deadline <= %s AND {_UNSETTLED}")
        args += [today, today + timedelta(days=7)]
    elif f.due == "open":
        where.append("s.state <> 'closed'")
    _equal(where, args, "s.level", f.level)
    _equal(where, args, "s.region_code", f.county)
    _equal(where, args, "s.enterprise_id", f.enterprise)
    _containing(where, args, ("s.enterprise_id", "e.name", "s.title", "s.bureau_person"), f.text)
    select = (
        "SELECT s.id, s.enterprise_id, e.name AS enterprise_name, s.region_code, s.danger_id, s.title,"
        " s.level, s.opened_level, s.state, s.deadline, s.bureau_person, s.opened_at, s.escalated_at,"
        f" (s.deadline < %s AND {_UNSETTLED}) AS overdue"
        " FROM bureau_supervision s JOIN bureau_enterprise e USING (enterprise_id)"
    )
    count = "SELECT count(*) AS n FROM bureau_supervision s JOIN bureau_enterprise e USING (enterprise_id)"
    rows, total = _page(
        conn,
        select=select,
        count=count,
        where=where,
        args=args,
        order="s.deadline, s.id",
        limit=limit,
        offset=offset,
        select_args=[today],
    )
    for r in rows:
        r["region_code"] = str(r["region_code"]).strip()
    return rows, total


def duty_record(conn: Conn, scope: Scope | None, enterprise_id: str, recent: int = 20) -> dict[str, Any]:
    """An enterprise's duty checks (包保责任人) and daily commitments (安全承诺), as received.

    ``last``: the newest check per hazard source and role; ``checks``: the newest ``recent``;
    ``commitments``: the newest 14 days filed.
    """
    where, args = _where(scope, "e.region_code")
    cond = " AND ".join(where)
    with conn.cursor(row_factory=dict_row) as cur:
        last = cur.execute(
            "SELECT DISTINCT ON (c.hazard_source, c.role) c.hazard_source, c.role, c.person, c.checked_at,"
            " c.what"
            f" FROM bureau_duty_check c JOIN bureau_enterprise e USING (enterprise_id)"
            f" WHERE c.enterprise_id = %s AND {cond} ORDER BY c.hazard_source, c.role, c.checked_at DESC",
            [enterprise_id, *args],
        ).fetchall()
        checks = cur.execute(
            "SELECT c.check_id, c.hazard_source, c.role, c.person, c.checked_at, c.what, c.findings,"
            " c.recorded_by"
            f" FROM bureau_duty_check c JOIN bureau_enterprise e USING (enterprise_id)"
            f" WHERE c.enterprise_id = %s AND {cond} ORDER BY c.checked_at DESC, c.check_id DESC LIMIT %s",
            [enterprise_id, *args, recent],
        ).fetchall()
        commitments = cur.execute(
            "SELECT m.day, m.sources, m.special_work, m.filed_by, m.filed_at, m.note"
            f" FROM bureau_commitment m JOIN bureau_enterprise e USING (enterprise_id)"
            f" WHERE m.enterprise_id = %s AND {cond} ORDER BY m.day DESC LIMIT 14",
            [enterprise_id, *args],
        ).fetchall()
    return {"last": last, "checks": checks, "commitments": commitments}
