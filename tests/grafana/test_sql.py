"""The SQL functions and views of migrations 0400-0401, against a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.plant.assessment import AssessmentRecord, assessment_status
from hazmon.plant.reading import to_us
from hazmon.plant.standards import FILING_DAYS, REASSESSMENT_YEARS, STALE_AFTER_PERIODS, STALE_MIN_S, Grade
from hazmon.store import ReadingColumns, connect, sensor_ids, write_readings


def test_constants_agree_with_the_standards_table(db_dsn: str) -> None:
    with psycopg.connect(db_dsn) as c:
        row = c.execute("SELECT hazmon_reassessment_years(), hazmon_filing_days()").fetchone()
    assert row == (REASSESSMENT_YEARS, FILING_DAYS)


@pytest.mark.parametrize("period_s", [0.5, 1.0, 2.0, 5.0, 60.0, 600.0])
def test_stale_threshold_follows_the_standards_table(db_dsn: str, period_s: float) -> None:
    with psycopg.connect(db_dsn) as c:
        row = c.execute("SELECT hazmon_stale_after_s(%s)", (period_s,)).fetchone()
    assert row == (max(STALE_AFTER_PERIODS * period_s, STALE_MIN_S),)


@pytest.mark.parametrize(
    ("width", "ts", "bucket"),
    [
        ("300.000s", "2026-11-28 10:07:13+00", "2026-11-28 10:05:00+00"),
        ("3600.000s", "2026-11-28 10:59:59.9+00", "2026-11-28 10:00:00+00"),
        ("1 day", "2026-11-28 23:00:00+00", "2026-11-28 00:00:00+00"),
        ("7 days", "2026-11-28 12:00:00+00", "2026-11-23 00:00:00+00"),  # Monday, as TimescaleDB
        ("0.500s", "2026-11-28 10:00:00.7+00", "2026-11-28 10:00:00.5+00"),
    ],
)
def test_time_bucket_matches_timescaledb(db_dsn: str, width: str, ts: str, bucket: str) -> None:
    with psycopg.connect(db_dsn) as c:
        row = c.execute(
            "SELECT time_bucket(%s::text::interval, %s::timestamptz) = %s::timestamptz", (width, ts, bucket)
        ).fetchone()
        # Grafana writes the width as an untyped literal: time_bucket('300.000s', col)
        c.execute("SELECT time_bucket('300.000s', now())").fetchone()
    assert row == (True,)


def test_series_reads_the_store_that_fits_the_step(db_dsn: str, example_plant: Plant) -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    start = now - timedelta(days=2)
    with connect(db_dsn) as c:
        sid = sensor_ids(c, example_plant.enterprise.id)["LT-101"]
        t = np.arange(to_us(start), to_us(now), 10_000_000, dtype=np.int64)
        n = t.shape[0]
        write_readings(
            c, ReadingColumns(np.full(n, sid, np.int32), t, np.full(n, 1.0), np.zeros(n, np.int16))
        )
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (start, now))
        # mark each store so the answer tells which one was read
        c.execute("UPDATE readings_1m SET avg = 2.0 WHERE sensor_id = %s", (sid,))
        c.execute("UPDATE readings_1h SET avg = 3.0 WHERE sensor_id = %s", (sid,))
        c.commit()

        def series(step_ms: int, span: timedelta) -> set[float]:
            rows = c.execute(
                "SELECT DISTINCT avg FROM hazmon_series(ARRAY[%s], %s, %s, %s)",
                (sid, now - span, now, step_ms),
            ).fetchall()
            return {float(str(r[0])) for r in rows}

        assert series(5_000, timedelta(hours=1)) == {1.0}
        assert series(59_999, timedelta(hours=1)) == {1.0}
        assert series(60_000, timedelta(hours=6)) == {2.0}
        assert series(120_000, timedelta(days=1)) == {2.0}
        assert series(3_600_000, timedelta(days=2)) == {3.0}
        assert series(7_200_000, timedelta(days=2)) == {3.0}
        count = c.execute(
            "SELECT count(*) FROM hazmon_series(ARRAY[%s], %s, %s, 7200000)",
            (sid, now - timedelta(days=1), now),
        ).fetchone()
        assert count == (12,)  # 2-hour buckets 12:00 yesterday .. 10:00 today (the data ends before 12:00)


TODAY = date(2026, 11, 28)
CASES = [
    # (report, filed, assessed inventory, today)
    (None, None, None, TODAY),
    (date(2023, 11, 27), date(2023, 12, 1), {"chlorine": 60.0}, TODAY),  # 3 years + 1 day ago: overdue
    (date(2023, 11, 29), date(2023, 12, 14), {"chlorine": 60.0}, TODAY),  # filed on the 15th day: in time
    (date(2024, 2, 29), date(2024, 3, 20), {"chlorine": 60.0}, date(2027, 2, 28)),  # late filing, due 28 Feb
    (date(2026, 11, 10), None, {"chlorine": 60.0}, TODAY),  # not filed yet, deadline 25 Nov passed
    (date(2026, 11, 20), None, {}, TODAY),  # not filed, deadline not reached; inventory not recorded
    (date(2025, 5, 1), date(2025, 5, 2), {"chlorine": 40.0}, TODAY),  # inventory changed since
]


@pytest.mark.parametrize(("report", "filed", "inventory", "today"), CASES)
def test_register_matches_assessment_status(
    db_dsn: str,
    example_plant: Plant,
    report: date | None,
    filed: date | None,
    inventory: dict[str, float] | None,
    today: date,
) -> None:
    hs = example_plant.hazard_source("cl2-tankfarm")
    rec = None
    with connect(db_dsn) as c:
        if report is not None:
            c.execute(
                """INSERT INTO assessment (hazard_source_id, report_date, assessor, r_value, grade, filed_on,
                       inventory) SELECT id, %s, 'x', 96, 2, %s, %s FROM hazard_source WHERE code = %s""",
                (report, filed, json.dumps(inventory or {}), hs.id),
            )
            rec = AssessmentRecord(hs.id, report, "x", 96.0, Grade.TWO, filed, dict(inventory or {}))
        row = c.execute(
            """SELECT next_due, filing_deadline, reassessment_overdue, filing_overdue, inventory_changed
               FROM hazmon_assessment_register(%s) WHERE code = %s""",
            (today, hs.id),
        ).fetchone()
    st = assessment_status(rec, hs, today)
    assert row == (
        st.next_due,
        st.filing_deadline,
        st.reassessment_overdue,
        st.filing_overdue,
        st.inventory_changed,
    )


def test_register_ignores_reports_after_the_day(db_dsn: str) -> None:
    with connect(db_dsn) as c:
        c.execute("""INSERT INTO assessment (hazard_source_id, report_date, assessor, r_value, grade)
                     SELECT id, '2026-12-01', 'x', 1, 3 FROM hazard_source WHERE code = 'lpg-spheres'""")
        row = c.execute(
            "SELECT assessment_id FROM hazmon_assessment_register('2026-11-28') WHERE code = 'lpg-spheres'"
        ).fetchone()
    assert row == (None,)


@pytest.mark.parametrize(
    ("code", "flt", "match"),
    [
        ("320116", "000000", True),
        ("320116", "", True),
        ("320116", "320000", True),
        ("320116", "320100", True),
        ("320116", "320116", True),
        ("320116", "320200", False),
        ("320116", "110000", False),
        ("320116", "320115", False),
    ],
)
def test_region_match(db_dsn: str, code: str, flt: str, match: bool) -> None:
    with psycopg.connect(db_dsn) as c:
        assert c.execute("SELECT hazmon_region_match(%s, %s)", (code, flt)).fetchone() == (match,)


@pytest.mark.parametrize(
    ("v", "state"),
    [(2.1, "hh"), (2.04, "hh"), (1.95, "h"), (1.0, "normal"), (0.36, "l"), (0.2, "ll"), (None, None)],
)
def test_limit_state(db_dsn: str, v: float | None, state: str | None) -> None:
    with psycopg.connect(db_dsn) as c:
        row = c.execute("SELECT hazmon_limit_state(%s, 2.04, 1.92, 0.36, 0.24)", (v,)).fetchone()
    assert row == (state,)
