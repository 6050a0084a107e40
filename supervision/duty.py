"""Responsible persons' duty checks and the daily safety commitment (pure).

**What "at least once a week / a quarter" means here** (the arithmetic is the ground's,
`hazmon.plant.duty_periods`, so the bureau judges the same way). A period is a *calendar*
period in the plant's local time zone: a week runs from Monday 00:00 to the next
Monday 00:00 (the ISO 8601 / GB/T 7408 week, the one Chinese calendars and duty
rosters use), a month from the 1st, a quarter from 1 January, 1 April, 1 July or
1 October. A duty is met for a period when at least one check of that role on that
hazard source is recorded with a time inside it. This is how an inspector audits
the records ("show me this quarter's check") and how quarterly statistics are
counted (Order 16); a rolling window ("within 90 days of the last check") would
make the due date drift with every check and could not be read off a calendar.
Boundaries are computed in local time and compared as instants, so a check at
2028-03-31T16:30Z (00:30 on 1 April in Shanghai) counts for the second quarter.

A period that ends without a check makes the duty **overdue** from that end until
a check is recorded (a late check clears it and also counts for the period it
falls in). Periods are counted from when supervision began for the enterprise
(``started``); a period that ends before it is not counted.

The **daily commitment** (安全承诺) is due each local day by a configured local
time (10:00 by default). It is missing from that time until a commitment for that
day, or a later one, is filed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hazmon.plant.duty_periods import period_bounds, period_status
from hazmon.plant.supervision_standards import DUTY_ROLES, SPECIAL_WORK, Period

__all__ = [
    "SOURCE_STATES",
    "Commitment",
    "CommitmentStatus",
    "DutyCheck",
    "DutyStatus",
    "commitment_problems",
    "commitment_status",
    "duty_check_problems",
    "duty_status",
    "period_bounds",
]

SOURCE_STATES = ("running", "stopped", "maintenance")
"""The state of a hazard source in a daily commitment: 运行 / 停用 / 检维修."""


@dataclass(frozen=True, slots=True)
class DutyCheck:
    """One responsible person's check of one hazard source.

    Attributes:
        hazard_source: id of the hazard source.
        role: principal | technical | operational.
        person: who checked (the person named for that role in the plant file).
        at: when the check was done (aware).
        what: what was checked.
        findings: what was found ("" = nothing); hidden dangers found are reported
            separately and link back with ``dangers``.
        recorded_by: who entered it, with ``recorded_role`` (operator | plant_manager).
        dangers: ids of hidden dangers raised from this check.
        id: database id.
    """

    hazard_source: str
    role: str
    person: str
    at: datetime
    what: str
    findings: str = ""
    recorded_by: str = ""
    recorded_role: str = "operator"
    dangers: tuple[int, ...] = ()
    id: int | None = None


def duty_check_problems(
    c: DutyCheck, responsible: Mapping[str, Mapping[str, str]], now: datetime
) -> list[str]:
    """Every problem of a check about to be recorded.

    Args:
        c: the check.
        responsible: hazard source id -> role -> the person's name (from the plant file).
        now: the time it is recorded; a check may not be in the future.
    """
    out: list[str] = []
    if c.at.tzinfo is None:
        return ["time: must carry a time zone"]
    if c.hazard_source not in responsible:
        out.append(f"hazard source: '{c.hazard_source}' is not in the plant file")
    if c.role not in DUTY_ROLES:
        out.append(f"role: '{c.role}' is not one of {', '.join(DUTY_ROLES)}")
    if not out:
        named = responsible[c.hazard_source][c.role]
        if c.person.strip() != named:
            out.append(
                f"person: the {c.role} responsible person ({DUTY_ROLES[c.role].zh}) of "
                f"{c.hazard_source} is {named}, not '{c.person}'"
            )
    if not c.what.strip():
        out.append("what: say what was checked")
    if c.at > now + timedelta(minutes=5):
        out.append(f"time: {c.at.isoformat()} is in the future")
    if c.recorded_role not in ("operator", "plant_manager"):
        out.append(f"recorded by: a {c.recorded_role} may not record duty checks (operator, plant_manager)")
    return out


@dataclass(frozen=True, slots=True)
class DutyStatus:
    """Where one role's duty on one hazard source stands at ``now``.

    Attributes:
        status: ``done`` (checked in the current period), ``due`` (not yet, the
            period is still running) or ``overdue`` (a period ended without a check
            and none was recorded since).
        period_start / period_end: the current period.
        last_check: the latest check at or before now.
        missed_deadline: when overdue, the end of the period that was missed (the
            deadline the alarm is about).
    """

    hazard_source: str
    role: str
    period: Period
    status: str
    period_start: datetime
    period_end: datetime
    last_check: datetime | None
    missed_deadline: datetime | None = None


def duty_status(
    hazard_source: str,
    role: str,
    period: Period,
    *,
    checks: Iterable[DutyCheck],
    started: datetime,
    now: datetime,
    tz: ZoneInfo,
) -> DutyStatus:
    """The duty's status at ``now`` (see the module docstring)."""
    times = [c.at for c in checks if c.hazard_source == hazard_source and c.role == role and c.at <= now]
    last = max(times, default=None)
    st = period_status(period, last, started=started, now=now, tz=tz)  # the ground's, shared with the bureau
    return DutyStatus(
        hazard_source, role, period, st.status, st.period_start, st.period_end, last, st.missed_deadline
    )


# --------------------------------------------------------------------------- commitment


@dataclass(frozen=True, slots=True)
class Commitment:
    """A daily safety commitment (安全承诺) of the enterprise.

    Attributes:
        day: the local day it is for (the local date it was filed).
        by: who filed it (the enterprise's principal or their deputy).
        at: when it was filed (aware).
        sources: hazard source id -> running | stopped | maintenance (every source of the plant).
        special_work: kind (`SPECIAL_WORK`) -> how many under way (omitted: none).
        note: free text.
        id: database id.
    """

    day: date
    by: str
    at: datetime
    sources: Mapping[str, str]
    special_work: Mapping[str, int] = field(default_factory=dict)
    note: str = ""
    id: int | None = None


def commitment_problems(c: Commitment, source_ids: Sequence[str], tz: ZoneInfo, role: str) -> list[str]:
    out: list[str] = []
    if c.at.tzinfo is None:
        return ["time: must carry a time zone"]
    if role != "plant_manager":
        out.append(f"role: a {role} may not file the daily commitment (plant_manager)")
    if not c.by.strip():
        out.append("by: who commits is missing")
    if c.day != c.at.astimezone(tz).date():
        out.append(f"day: a commitment is filed on its own day ({c.at.astimezone(tz).date()}), not {c.day}")
    missing = [s for s in source_ids if s not in c.sources]
    if missing:
        out.append(f"sources: no state given for {', '.join(missing)} (running, stopped, maintenance)")
    unknown = [s for s in c.sources if s not in source_ids]
    if unknown:
        out.append(f"sources: {', '.join(unknown)} not in the plant file")
    bad = [f"{s}={v}" for s, v in c.sources.items() if v not in SOURCE_STATES]
    if bad:
        out.append(f"sources: {', '.join(bad)}: the state is one of {', '.join(SOURCE_STATES)}")
    for k, n in c.special_work.items():
        if k not in SPECIAL_WORK:
            out.append(f"special work: '{k}' is not one of {', '.join(SPECIAL_WORK)}")
        elif n < 0:
            out.append(f"special work: {k} count must be >= 0, got {n}")
    return out


@dataclass(frozen=True, slots=True)
class CommitmentStatus:
    """The daily commitment at ``now``.

    Attributes:
        today: the plant's local day.
        due_at: today's deadline.
        filed_today: today's commitment, if filed.
        missing_day: the day whose commitment is missing and overdue (None when in order).
        missing_since: that day's deadline.
    """

    today: date
    due_at: datetime
    filed_today: Commitment | None
    missing_day: date | None
    missing_since: datetime | None


def commitment_status(
    commitments: Iterable[Commitment], due: time, started: datetime, now: datetime, tz: ZoneInfo
) -> CommitmentStatus:
    """Whether the commitment is missing at ``now`` (see the module docstring)."""
    today = now.astimezone(tz).date()
    due_today = datetime.combine(today, due, tz)
    filed = {c.day: c for c in commitments if c.at <= now}
    relevant = today if now >= due_today else today - timedelta(days=1)
    relevant_due = datetime.combine(relevant, due, tz)
    missing = relevant_due > started and relevant not in filed and today not in filed
    return CommitmentStatus(
        today,
        due_today,
        filed.get(today),
        relevant if missing else None,
        relevant_due if missing else None,
    )
