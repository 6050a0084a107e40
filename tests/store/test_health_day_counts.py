"""Plain mode (0404): readings_1d_counts holds each UTC day's sums of readings_1h, kept by triggers,
and hazmon_sensor_health's counts read through it equal the sums over readings_1h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from hazmon.plant import Plant
from hazmon.plant.reading import to_us
from hazmon.store import ReadingColumns, connect, sensor_ids, write_readings

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
        # ranges: over whole days, across midnights without a whole day, inside a day, mid-hour ends
        for f, t in (
            (D0, D0 + timedelta(days=4)),
            (D0 + timedelta(hours=5, minutes=17), D0 + timedelta(days=3, hours=2, minutes=40)),
            (D0 + timedelta(hours=20), D0 + timedelta(days=1, hours=9)),
            (D0 + timedelta(days=1, hours=1), D0 + timedelta(days=1, hours=23, minutes=59)),
            (D0 + timedelta(days=1), D0 + timedelta(days=2)),
        ):
            w_from = f if f.minute == 0 else f.replace(minute=0) + timedelta(hours=1)
            w_to = t.replace(minute=0)
            want = dict(
                c.execute(
                    "SELECT sensor_id, sum(n) FROM readings_1h WHERE bucket >= %s AND bucket < %s GROUP BY 1",
                    (w_from, w_to),
                ).fetchall()
            )
            got = {
                r[0]: r[1]
                for r in c.execute(
                    "SELECT sensor_id, received FROM hazmon_sensor_health(%s, %s) WHERE received > 0", (f, t)
                ).fetchall()
            }
            assert got == want, (f, t)
            assert set(want) == {a, b}
        # retention of the hourly rollup: the days it empties go too
        c.execute("DELETE FROM readings_1h WHERE bucket < %s", (D0 + timedelta(days=1, hours=6),))
        _assert_days_are_the_hours(c)
        assert c.execute("SELECT min(day) FROM readings_1d_counts").fetchone() == (D0 + timedelta(days=1),)
