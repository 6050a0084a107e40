"""The calendar arithmetic of the responsible persons' check periods (pure; the plant and the bureau).

A period is a *calendar* period in the plant's local time zone: a week runs from Monday 00:00
to the next Monday 00:00 (ISO 8601 / GB/T 7408), a month from the 1st, a quarter from 1
January, 1 April, 1 July or 1 October (`hazmon.plant.supervision_standards.Period`; why
calendar periods and not rolling windows: `hazmon.supervision.duty`). A duty is **done** for
the current period when a check falls inside it, **due** while the period runs without one,
and **overdue** when the previous period ended without a check and none was recorded since —
counted only for periods ending after ``started`` (when supervision began).

The plant's duty status (`hazmon.supervision.duty.duty_status`) and the bureau's view of an
enterprise's duties (`hazmon.bureau.duty_due`) both use `period_status`, so the two never
disagree on the same checks, period, zone and time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hazmon.plant.supervision_standards import Period

__all__ = ["PeriodStatus", "period_bounds", "period_status"]


def _first_of_quarter(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def _add_months(d: date, n: int) -> date:
    m = d.month - 1 + n
    return date(d.year + m // 12, m % 12 + 1, 1)


def period_bounds(period: Period, at: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar period (local time ``tz``) that contains the instant ``at``: [start, end)."""
    day = at.astimezone(tz).date()
    if period is Period.WEEK:
        first = day - timedelta(days=day.weekday())
        nxt = first + timedelta(days=7)
    elif period is Period.MONTH:
        first = day.replace(day=1)
        nxt = _add_months(first, 1)
    else:
        first = _first_of_quarter(day)
        nxt = _add_months(first, 3)
    midnight = time(0, 0)
    return datetime.combine(first, midnight, tz), datetime.combine(nxt, midnight, tz)


@dataclass(frozen=True, slots=True)
class PeriodStatus:
    """``done`` | ``due`` | ``overdue`` at ``now``; the current period; the deadline missed (overdue)."""

    status: str
    period_start: datetime
    period_end: datetime
    missed_deadline: datetime | None = None


def period_status(
    period: Period, last_check: datetime | None, *, started: datetime, now: datetime, tz: ZoneInfo
) -> PeriodStatus:
    """Where a duty stands at ``now`` given its latest check at or before ``now`` (see the module text)."""
    ps, pe = period_bounds(period, now, tz)
    prev_s, prev_e = period_bounds(period, ps - timedelta(seconds=1), tz)
    if prev_e > started and (last_check is None or last_check < prev_s):
        return PeriodStatus("overdue", ps, pe, prev_e)
    return PeriodStatus("done" if last_check is not None and last_check >= ps else "due", ps, pe)
