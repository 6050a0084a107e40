"""Report periods of the bureau's figures: a month, a quarter or a year, in its local time.

A period is written ``2026-03`` (March 2026), ``2026-Q3`` (July to September 2026) or ``2026``
(the year). Its bounds are the local midnights that open it and the next one, in the bureau's
time zone (``warnings.timezone`` of bureau.yaml, Asia/Shanghai by default): [start, end).
February has 29 days in a leap year (2028-02 ends at 1 March 2028 00:00 local); the first
quarter ends at 1 April 00:00 local, i.e. 31 March 16:00 UTC in Shanghai. The same bounds are
computed in SQL by ``bureau_period_bounds`` (migration 0890) for the Grafana panels; the tests
keep both equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = ["PERIOD_PATTERN", "PeriodError", "ReportPeriod", "parse_period"]

PeriodKind = Literal["month", "quarter", "year"]
PERIOD_PATTERN = r"^[0-9]{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^([0-9]{4})-Q([1-4])$")
_YEAR = re.compile(r"^([0-9]{4})$")


class PeriodError(ValueError):
    """A period that is not ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY``."""


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """One month (``n`` 1-12), quarter (``n`` 1-4) or year (``n`` 0) of the calendar."""

    kind: PeriodKind
    year: int
    n: int = 0

    def __post_init__(self) -> None:
        top = {"month": 12, "quarter": 4, "year": 0}[self.kind]
        if not (1 <= self.year <= 9998) or not ((1 if top else 0) <= self.n <= top):
            raise PeriodError(f"{self.kind} {self.year}/{self.n} is not a period of the calendar")

    @property
    def text(self) -> str:
        """As written: 2026-03, 2026-Q3, 2026."""
        if self.kind == "month":
            return f"{self.year:04d}-{self.n:02d}"
        if self.kind == "quarter":
            return f"{self.year:04d}-Q{self.n}"
        return f"{self.year:04d}"

    @property
    def label_zh(self) -> str:
        if self.kind == "month":
            return f"{self.year}年{self.n}月"
        if self.kind == "quarter":
            return f"{self.year}年第{'一二三四'[self.n - 1]}季度"
        return f"{self.year}年"

    def first_day(self) -> date:
        month = {"month": self.n, "quarter": 3 * (self.n - 1) + 1, "year": 1}[self.kind]
        return date(self.year, month, 1)

    def next_first_day(self) -> date:
        """The first day after the period (1 January of the next year after December)."""
        first = self.first_day()
        months = {"month": 1, "quarter": 3, "year": 12}[self.kind]
        m = first.month - 1 + months
        return date(first.year + m // 12, m % 12 + 1, 1)

    def bounds(self, timezone: str) -> tuple[datetime, datetime]:
        """[local midnight of the first day, local midnight after the last day), in UTC."""
        tz = ZoneInfo(timezone)
        start = datetime.combine(self.first_day(), time(0, 0), tz)
        end = datetime.combine(self.next_first_day(), time(0, 0), tz)
        return start.astimezone(UTC), end.astimezone(UTC)


def parse_period(text: str) -> ReportPeriod:
    """``2026-03``, ``2026-Q3`` or ``2026``; anything else is a `PeriodError` saying what fits."""
    s = text.strip()
    try:
        if m := _MONTH.match(s):
            return ReportPeriod("month", int(m[1]), int(m[2]))
        if m := _QUARTER.match(s):
            return ReportPeriod("quarter", int(m[1]), int(m[2]))
        if m := _YEAR.match(s):
            return ReportPeriod("year", int(m[1]))
    except PeriodError:
        pass  # year 0000 or 9999: the same answer
    raise PeriodError(f"'{text}' is not a period: write a month 2026-03, a quarter 2026-Q3 or a year 2026")
