"""Plain mode (0404): readings_1d_counts holds each UTC day's sums of readings_1h, kept by triggers,
and hazmon_sensor_health's counts read through it equal the sums over readings_1h.

`assert_health_is_the_hours` and the ranges are shared with the TimescaleDB lane
(tests/store/test_timescale_health_days.py, 0405: the same function over a hierarchical
continuous aggregate), so both modes are held to the same direct computation."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from hazmon.plant import Plant
from hazmon.plant.reading import to_us
from hazmon.store import ReadingColumns, connect, sensor_ids, write_readings
from tests.conftest import ROOT

D0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)  # a UTC midnight; nothing here reads the clock
MIN_US = 60_000_000


def _write(
    c: psycopg.Connection[tuple[object, ...]], sid: int, t0: datetime, minutes: int, bad_every: int
) -> None:
    t = to_us(t0) + np.arange(minutes, dtype=np.int64) * MIN_US
    q = np.zeros(minutes, np.int16)
    q[::bad_every] = 2
    write_readings(c, ReadingColumns(np.full(minutes, sid, np.int32), t, np.ones(minutes), q))


def _assert_days_are_the_hours(c: psycopg.Connection[tuple[object, ...]]) -> None:
    want = c.execute(
        "SELECT sensor_id, date_trunc('day', bucket, 'UTC'), sum(n), sum(bad) FROM readings_1h "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    got = c.execute("SELECT sensor_id, day, n, bad FROM readings_1d_counts ORDER BY 1, 2").fetchall()
    assert got == want
    assert want


def health_ranges(d0: datetime) -> list[tuple[datetime, datetime]]:
    """Ranges over data from d0 (a UTC midnight) to d0 + 4 days: over whole days, across midnights
    without a whole day, inside a day, mid-hour and mid-minute ends, one hour and a bit."""
    return [
        (d0, d0 + timedelta(days=4)),
        (d0 + timedelta(hours=5, minutes=17), d0 + timedelta(days=3, hours=2, minutes=40)),
        (d0 + timedelta(hours=20), d0 + timedelta(days=1, hours=9)),
        (d0 + timedelta(days=1, hours=1), d0 + timedelta(days=1, hours=23, minutes=59)),
        (d0 + timedelta(days=1), d0 + timedelta(days=2)),
        (d0 + timedelta(hours=23, minutes=1), d0 + timedelta(days=3, minutes=30, seconds=20)),
    ]


def assert_health_is_the_hours(
    c: psycopg.Connection[tuple[object, ...]], f: datetime, t: datetime, sensors: set[int]
) -> None:
    """hazmon_sensor_health(f, t) against a direct computation: `received` is readings_1h's sum(n)
    over the whole hours inside [f, t); `not_good` every non-good raw reading in [f, t) (f is on a
    minute: the function leaves out only a leading part-minute)."""
    assert f.second == 0 and f.microsecond == 0
    w_from = f if f.minute == 0 else f.replace(minute=0) + timedelta(hours=1)
    w_to = t.replace(minute=0, second=0, microsecond=0)
    received = dict(
        c.execute(
            "SELECT sensor_id, sum(n)::bigint FROM readings_1h WHERE bucket >= %s AND bucket < %s GROUP BY 1",
            (w_from, w_to),
        ).fetchall()
    )
    bad = dict(
        c.execute(
            "SELECT sensor_id, count(*) FROM readings WHERE quality <> 0 AND time >= %s AND time < %s GROUP BY 1",
            (f, t),
        ).fetchall()
    )
    got = {
        r[0]: (r[1], r[2])
        for r in c.execute(
            "SELECT sensor_id, received, not_good FROM hazmon_sensor_health(%s, %s) "
            "WHERE received > 0 OR not_good > 0",
            (f, t),
        ).fetchall()
    }
    want = {s: (received.get(s, 0), bad.get(s, 0)) for s in received.keys() | bad.keys()}
    assert got == want, (f, t)
    assert set(want) == sensors, (f, t)


def _health_function(path: str) -> str:
    text = (ROOT / "store" / "migrations" / path).read_text(encoding="utf-8")
    m = re.search(r"^CREATE OR REPLACE FUNCTION hazmon_sensor_health\(.*?^\$\$;$", text, re.S | re.M)
    assert m is not None, path
    return m.group(0)


def test_both_modes_define_the_same_health_function() -> None:
    """0405 (TimescaleDB) re-creates 0404's function (plain) over its own readings_1d_counts."""
    plain = _health_function("0404_health_day_counts.plain.sql")
    assert "readings_1d_counts" in plain
    assert _health_function("0405_health_day_counts_timescale.timescale.sql") == plain


def test_day_counts_follow_readings_1h_and_health_reads_them(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn, autocommit=True) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        a, b = ids["LT-101"], ids["AT-101"]
        # four days at one a minute, with a gap on day 2 (10:00-14:00) filled late
        _write(c, a, D0, 4 * 1440, 7)
        _write(c, b, D0, 1440 + 600, 11)
        _write(c, b, D0 + timedelta(days=1, hours=14), 2 * 1440 + 600, 13)
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (D0, D0 + timedelta(days=4)))
        _assert_days_are_the_hours(c)
        before = c.execute(
            "SELECT n FROM readings_1d_counts WHERE sensor_id = %s AND day = %s", (b, D0 + timedelta(days=1))
        ).fetchone()
        _write(c, b, D0 + timedelta(days=1, hours=10), 240, 3)  # the late backfill
        c.execute(
            "SELECT hazmon_refresh_rollups(%s, %s)",
            (D0 + timedelta(days=1, hours=10), D0 + timedelta(days=1, hours=14)),
        )
        after = c.execute(
            "SELECT n FROM readings_1d_counts WHERE sensor_id = %s AND day = %s", (b, D0 + timedelta(days=1))
        ).fetchone()
        assert before is not None and after == (int(str(before[0])) + 240,)
        _assert_days_are_the_hours(c)
        # received against readings_1h, not_good against the raw readings, over every shape of range
        for f, t in health_ranges(D0):
            assert_health_is_the_hours(c, f, t, {a, b})
        # retention of the hourly rollup: the days it empties go too
        c.execute("DELETE FROM readings_1h WHERE bucket < %s", (D0 + timedelta(days=1, hours=6),))
        _assert_days_are_the_hours(c)
        assert c.execute("SELECT min(day) FROM readings_1d_counts").fetchone() == (D0 + timedelta(days=1),)
