"""At the bureau: each responsible person's check of each hazard source — done, due or overdue.

The periods come with the enterprise's registration (each hazard source's optional
``duty_periods``, kept in ``bureau_hazard_source.info``); the checks with its duty check reports
(``bureau_duty_check``). The judgement is the plant's own (`hazmon.plant.duty_periods.period_status`):
calendar periods in the enterprise's local time zone (its registration's ``timezone``; Asia/Shanghai
when it is not a zone this machine knows). Periods are counted from when the bureau first heard of
the enterprise (``bureau_enterprise.registered_at``): a period that ended before the bureau knew it
is not held against it. A hazard source whose registration carries no periods (an older sender)
has status ``unknown`` with its last check still shown.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from hazmon.plant.duty_periods import period_status
from hazmon.plant.regions import Scope, prefix
from hazmon.plant.supervision_standards import DEFAULT_TIMEZONE, DUTY_ROLES, Period, valid_timezone

__all__ = ["duty_due"]

Conn = psycopg.Connection[Any]


def _last_day(end: datetime, tz: ZoneInfo) -> date:
    """The last local day of a period ending (exclusive) at ``end``."""
    return (end - timedelta(seconds=1)).astimezone(tz).date()


def duty_due(conn: Conn, scope: Scope | None, enterprise_id: str, now: datetime) -> list[dict[str, Any]]:
    """One row per hazard source and role (`DUTY_ROLES` order): the person, period, status, last check."""
    e = conn.execute(
        "SELECT registration->'enterprise'->>'timezone', registered_at FROM bureau_enterprise"
        " WHERE enterprise_id = %s AND region_code LIKE %s",
        (enterprise_id, (prefix(scope) if scope else "") + "%"),
    ).fetchone()
    if e is None:
        return []
    tz = ZoneInfo(e[0] if isinstance(e[0], str) and valid_timezone(e[0]) else DEFAULT_TIMEZONE)
    started: datetime = e[1]
    sources = conn.execute(
        "SELECT source_id, info->'duty_periods', info->'responsible' FROM bureau_hazard_source"
        " WHERE enterprise_id = %s ORDER BY source_id",
        (enterprise_id,),
    ).fetchall()
    last = {
        (str(hs), str(role)): (at, str(person))
        for hs, role, at, person in conn.execute(
            "SELECT DISTINCT ON (hazard_source, role) hazard_source, role, checked_at, person"
            " FROM bureau_duty_check WHERE enterprise_id = %s AND checked_at <= %s"
            " ORDER BY hazard_source, role, checked_at DESC",
            (enterprise_id, now),
        ).fetchall()
    }
    out = []
    for sid, periods, responsible in sources:
        for role in DUTY_ROLES:
            at, by = last.get((str(sid), role), (None, ""))
            raw = (periods or {}).get(role)
            row: dict[str, Any] = {
                "hazard_source": str(sid),
                "role": role,
                "person": ((responsible or {}).get(role) or {}).get("name", ""),
                "period": raw,
                "last_check": at,
                "last_person": by,
                "status": "unknown",
                "period_end": None,
                "due_by": None,
                "missed_deadline": None,
                "missed_by": None,
            }
            if raw in {p.value for p in Period}:
                st = period_status(Period(raw), at, started=started, now=now, tz=tz)
                row |= {
                    "status": st.status,
                    "period_end": st.period_end,
                    "due_by": _last_day(st.period_end, tz),
                    "missed_deadline": st.missed_deadline,
                    "missed_by": _last_day(st.missed_deadline, tz) if st.missed_deadline else None,
                }
            out.append(row)
    return out
