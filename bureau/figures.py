"""Daily figures of a bureau: online rate, alarm handling rate, warnings, and a risk ranking.

The definitions (``bureau/WARNINGS.md`` explains them for a bureau officer):

- **Online rate (在线率)** of a sensor for a day: minutes with data (aggregate ``count > 0``) /
  minutes expected. A sensor reporting every ``period_s`` ≤ 60 s is expected every minute; a
  slower one once per period (``window · 60 / period_s`` minutes). The window is the local day
  in the bureau's time zone, cut to the enterprise's registration and to ``now`` (a day still
  running counts only its past). Per hazard source, enterprise and region the minutes are
  summed before dividing (a pooled rate: a 300-sensor plant weighs more than a 3-sensor one).
  A sensor never counts more minutes than expected.
- **Alarm handling rate (报警处置率)**: of the alarms raised that day (``raised_at`` in the
  window), those acknowledged within ``alarm_handled_within_s`` (default 30 min) / those
  decided — an alarm still inside its limit and unacknowledged at ``now`` is pending and
  counts in neither. No decided alarm: no rate (None), not 100 %.
- **Warnings open and overdue** at the end of the window: raised before it and not closed by
  then; overdue when open longer than ``close_within_h`` of its colour.
- **Risk** of an enterprise: ``G × (1 + W) × (2 − O)``: G the weight of its most severe hazard
  source grade (一级 4 … 四级 1, none 1), W the sum of its open warnings' colour weights
  (红 4, 橙 3, 黄 2, 蓝 1), O its online rate (None, i.e. nothing expected or no sensor, counts
  as 0: what the bureau cannot see is not low risk). Ranked highest first.

The arithmetic is pure (`online`, `handling`, `risk`, `rank`); `daily` reads one day from
PostgreSQL with three grouped queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from hazmon.plant.bureau_standards import COLOUR_WEIGHT, GRADE_WEIGHT, WarningSettings
from hazmon.plant.regions import Level, Scope, parent_codes, prefix
from hazmon.plant.standards import Grade, Tier

__all__ = [
    "DayFigures",
    "EnterpriseFigure",
    "RegionFigure",
    "SensorFigure",
    "SourceFigure",
    "daily",
    "day_window",
    "expected_minutes",
    "grade_of",
    "rank",
    "risk",
]

Conn = psycopg.Connection[Any]


def day_window(day: date, timezone: str) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of ``day`` in ``timezone``, as UTC times."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(day, datetime.min.time(), tz)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
    # in UTC: Python subtracts two times of one zone by their wall clocks (24 h on a 23-hour day)
    return start.astimezone(UTC), end.astimezone(UTC)


def expected_minutes(period_s: float, start: datetime, end: datetime) -> float:
    """Minutes with data a sensor reporting every ``period_s`` should have in [start, end)."""
    if end <= start:
        return 0.0
    return (end - start).total_seconds() / max(period_s, 60.0)


def _rate(num: float, den: float) -> float | None:
    return None if den <= 0 else min(1.0, num / den)


_GRADES = {
    "one": Grade.ONE, "two": Grade.TWO, "three": Grade.THREE, "four": Grade.FOUR,
    "1": Grade.ONE, "2": Grade.TWO, "3": Grade.THREE, "4": Grade.FOUR,
    "一级": Grade.ONE, "二级": Grade.TWO, "三级": Grade.THREE, "四级": Grade.FOUR,
    "i": Grade.ONE, "ii": Grade.TWO, "iii": Grade.THREE, "iv": Grade.FOUR,  # as the registration sends it
}  # fmt: skip


def grade_of(text: str | None) -> Grade | None:
    """A registered grade as written: ``I``…``IV``, ``one``…``four``, ``1``…``4``, ``一级``…``四级``."""
    return None if text is None else _GRADES.get(text.strip().lower())


def risk(grade: Grade | None, open_weight: float, online_rate: float | None) -> float:
    """``G × (1 + W) × (2 − O)`` (see the module docstring)."""
    return GRADE_WEIGHT[grade] * (1.0 + open_weight) * (2.0 - (online_rate or 0.0))


@dataclass(frozen=True, slots=True)
class SensorFigure:
    enterprise_id: str
    source_id: str
    tag: str
    minutes_with_data: float
    minutes_expected: float

    @property
    def online_rate(self) -> float | None:
        return _rate(self.minutes_with_data, self.minutes_expected)


@dataclass(frozen=True, slots=True)
class SourceFigure:
    enterprise_id: str
    source_id: str
    grade: Grade | None
    minutes_with_data: float
    minutes_expected: float

    @property
    def online_rate(self) -> float | None:
        return _rate(self.minutes_with_data, self.minutes_expected)


@dataclass(frozen=True, slots=True)
class EnterpriseFigure:
    enterprise_id: str
    name: str
    region_code: str
    grade: Grade | None
    minutes_with_data: float
    minutes_expected: float
    alarms_raised: int
    alarms_handled: int
    alarms_pending: int
    warnings_open: int
    warnings_overdue: int
    open_weight: float

    @property
    def online_rate(self) -> float | None:
        return _rate(self.minutes_with_data, self.minutes_expected)

    @property
    def handling_rate(self) -> float | None:
        return _rate(self.alarms_handled, self.alarms_raised - self.alarms_pending)

    @property
    def risk(self) -> float:
        return risk(self.grade, self.open_weight, self.online_rate)


@dataclass(frozen=True, slots=True)
class RegionFigure:
    """Pooled figures of the enterprises whose code lies under ``region_code``."""

    region_code: str
    level: Level
    enterprises: int
    minutes_with_data: float
    minutes_expected: float
    alarms_raised: int
    alarms_handled: int
    alarms_pending: int
    warnings_open: int
    warnings_overdue: int

    @property
    def online_rate(self) -> float | None:
        return _rate(self.minutes_with_data, self.minutes_expected)

    @property
    def handling_rate(self) -> float | None:
        return _rate(self.alarms_handled, self.alarms_raised - self.alarms_pending)


@dataclass(frozen=True, slots=True)
class DayFigures:
    day: date
    timezone: str
    start: datetime
    end: datetime  # the window's end: the day's end, or ``now`` while the day runs
    sensors: tuple[SensorFigure, ...]
    sources: tuple[SourceFigure, ...]
    enterprises: tuple[EnterpriseFigure, ...]  # ranked by risk, highest first
    regions: dict[Level, tuple[RegionFigure, ...]] = field(default_factory=dict)


def rank(enterprises: list[EnterpriseFigure]) -> list[EnterpriseFigure]:
    """Highest risk first; ties by enterprise id (a stable order)."""
    return sorted(enterprises, key=lambda e: (-e.risk, e.enterprise_id))


def regions(enterprises: list[EnterpriseFigure], level: Level) -> tuple[RegionFigure, ...]:
    """The enterprises pooled by their county, city or province (or the nation)."""
    groups: dict[str, list[EnterpriseFigure]] = defaultdict(list)
    for e in enterprises:
        groups[parent_codes(e.region_code)[level]].append(e)
    return tuple(
        RegionFigure(
            code,
            level,
            len(es),
            sum(e.minutes_with_data for e in es),
            sum(e.minutes_expected for e in es),
            sum(e.alarms_raised for e in es),
            sum(e.alarms_handled for e in es),
            sum(e.alarms_pending for e in es),
            sum(e.warnings_open for e in es),
            sum(e.warnings_overdue for e in es),
        )
        for code, es in sorted(groups.items())
    )


_ENTERPRISES = """
SELECT e.enterprise_id, e.name, e.region_code, e.registered_at,
       array_remove(array_agg(hs.grade), NULL) AS grades
FROM bureau_enterprise e LEFT JOIN bureau_hazard_source hs USING (enterprise_id)
WHERE e.region_code LIKE %(prefix)s AND e.registered_at < %(end)s
GROUP BY e.enterprise_id ORDER BY e.enterprise_id
"""

_SENSORS = """
WITH a AS (
    SELECT a.enterprise_id, a.sensor, count(*) AS with_data
    FROM bureau_aggregate a JOIN bureau_enterprise e USING (enterprise_id)
    WHERE a.bucket >= %(start)s AND a.bucket < %(end)s AND a.count > 0
      AND a.bucket >= date_trunc('minute', e.registered_at) AND e.region_code LIKE %(prefix)s
    GROUP BY a.enterprise_id, a.sensor
)
SELECT bs.enterprise_id, bs.source_id, bs.tag, bs.period_s, coalesce(a.with_data, 0) AS with_data
FROM bureau_sensor bs JOIN bureau_enterprise e USING (enterprise_id)
LEFT JOIN a ON a.enterprise_id = bs.enterprise_id AND a.sensor = bs.tag
WHERE e.region_code LIKE %(prefix)s
ORDER BY bs.enterprise_id, bs.source_id, bs.tag
"""

_ALARMS = """
SELECT a.enterprise_id,
       count(*) AS raised,
       count(*) FILTER (WHERE a.acked_at IS NOT NULL AND a.acked_at <= a.raised_at + %(limit)s) AS handled,
       count(*) FILTER (WHERE (a.acked_at IS NULL OR a.acked_at > a.raised_at + %(limit)s)
                          AND a.raised_at + %(limit)s > %(now)s) AS pending
FROM bureau_alarm a JOIN bureau_enterprise e USING (enterprise_id)
WHERE a.raised_at >= %(start)s AND a.raised_at < %(end)s AND e.region_code LIKE %(prefix)s
GROUP BY a.enterprise_id
"""

_WARNINGS = """
SELECT w.enterprise_id, w.colour, w.raised_at
FROM bureau_warning w
WHERE w.raised_at < %(end)s AND (w.closed_at IS NULL OR w.closed_at > %(end)s)
  AND w.region_code LIKE %(prefix)s
"""


def daily(conn: Conn, day: date, settings: WarningSettings, now: datetime, scope: Scope | None) -> DayFigures:
    """The figures of ``day`` (local, ``settings.timezone``) for the enterprises in ``scope``."""
    start, day_end = day_window(day, settings.timezone)
    end = max(start, min(day_end, now))
    args = {"start": start, "end": end, "prefix": (prefix(scope) if scope else "") + "%", "now": now}
    ents = conn.execute(_ENTERPRISES, args).fetchall()
    registered = {str(r[0]): max(start, r[3].replace(second=0, microsecond=0)) for r in ents}
    sensors: list[SensorFigure] = []
    for eid, sid, tag, period_s, with_data in conn.execute(_SENSORS, args).fetchall():
        if eid not in registered:
            continue
        exp = expected_minutes(float(period_s), registered[eid], end)
        sensors.append(SensorFigure(eid, sid, tag, min(float(with_data), exp), exp))
    limit = timedelta(seconds=settings.alarm_handled_within_s)
    alarms = {
        str(r[0]): (int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(_ALARMS, {**args, "limit": limit})
    }
    warn: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for eid, colour, raised_at in conn.execute(_WARNINGS, args).fetchall():
        tier = Tier(int(colour))
        overdue = (end - raised_at).total_seconds() > settings.close_within_s(tier)
        warn[str(eid)].append((int(overdue), COLOUR_WEIGHT[tier]))
    sources = _sources(conn, sensors, args)
    out: list[EnterpriseFigure] = []
    for eid, name, region, _, grades in ents:
        mine = [s for s in sensors if s.enterprise_id == eid]
        known = [g for g in (grade_of(x) for x in grades) if g is not None]
        raised, handled, pending = alarms.get(eid, (0, 0, 0))
        ws = warn.get(eid, [])
        out.append(
            EnterpriseFigure(
                eid,
                name,
                region,
                min(known) if known else None,
                sum(s.minutes_with_data for s in mine),
                sum(s.minutes_expected for s in mine),
                raised,
                handled,
                pending,
                len(ws),
                sum(o for o, _ in ws),
                sum(w for _, w in ws),
            )
        )
    ranked = rank(out)
    levels: tuple[Level, ...] = ("county", "city", "province", "nation")
    return DayFigures(
        day,
        settings.timezone,
        start,
        end,
        tuple(sensors),
        sources,
        tuple(ranked),
        {lv: regions(ranked, lv) for lv in levels},
    )


def _sources(conn: Conn, sensors: list[SensorFigure], args: dict[str, Any]) -> tuple[SourceFigure, ...]:
    rows = conn.execute(
        "SELECT hs.enterprise_id, hs.source_id, hs.grade FROM bureau_hazard_source hs"
        " JOIN bureau_enterprise e USING (enterprise_id) WHERE e.region_code LIKE %(prefix)s"
        " ORDER BY hs.enterprise_id, hs.source_id",
        args,
    ).fetchall()
    sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in sensors:
        acc = sums[(s.enterprise_id, s.source_id)]
        acc[0] += s.minutes_with_data
        acc[1] += s.minutes_expected
    return tuple(
        SourceFigure(eid, sid, grade_of(g), *sums.get((eid, sid), [0.0, 0.0])) for eid, sid, g in rows
    )
