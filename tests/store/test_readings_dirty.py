"""The committed ranges the rollups need are recorded with the readings (readings_dirty, 0406).

A write records its source-time ranges in its own transaction; a refresher started later (a
new process after a crash: no memory of what was written) brings the rollups up to date over
exactly those ranges, whole buckets, and consumes the rows. Plain PostgreSQL here; the
TimescaleDB side is in test_timescale.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.plant.reading import from_us, to_us
from hazmon.store import ReadingColumns, connect, dirty_ranges_sql, refresh_dirty, sensor_ids, write_readings
from hazmon.store.rollups import MINUTE_US

H4 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)
NOW = H4 + timedelta(hours=6, seconds=30)  # the refresher's clock: passed in


def _cols(sid: int, t0_us: int, n: int, step_us: int) -> ReadingColumns:
    t = t0_us + np.arange(n, dtype=np.int64) * step_us
    return ReadingColumns(np.full(n, sid, np.int32), t, np.arange(n, dtype=np.float64), np.zeros(n, np.int16))


def _dirty(c: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return c.execute("SELECT lo, hi FROM readings_dirty ORDER BY lo").fetchall()


def test_a_batch_records_each_cluster_of_times_it_wrote() -> None:
    live = to_us(H4 + timedelta(hours=3)) + np.arange(0, 30_000_000, 1_000_000, dtype=np.int64)
    late = to_us(H4) + np.arange(0, 30 * MINUTE_US, MINUTE_US, dtype=np.int64)
    sql = dirty_ranges_sql(np.concatenate([live, late])).decode()
    assert sql == (
        "INSERT INTO readings_dirty (lo, hi) VALUES "
        "('2026-11-28T04:00:00+00:00'::timestamptz, '2026-11-28T04:29:00+00:00'::timestamptz), "
        "('2026-11-28T07:00:00+00:00'::timestamptz, '2026-11-28T07:00:29+00:00'::timestamptz)"
    )


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
def test_rollups_catch_up_after_a_crash_from_the_recorded_ranges(
    db_dsn: str, example_plant: Plant, autocommit: bool
) -> None:
    """Committed, then the process is gone: a new refresher makes every bucket whole."""
    with connect(db_dsn, autocommit=autocommit) as w:
        ids = sensor_ids(w, example_plant.enterprise.id)
        a, b = ids["LT-101"], ids["PT-201"]
        # 07:00-09:59 at 1 s, and a backfill 04:30-05:59 at 1/min
        write_readings(w, _cols(a, to_us(H4 + timedelta(hours=3)), 3 * 3600, 1_000_000))
        write_readings(w, _cols(b, to_us(H4 + timedelta(minutes=30)), 90, MINUTE_US))
        if not autocommit:
            w.commit()
    # the writer's process ends here; the refresher is a new one and knows nothing of it
    with connect(db_dsn, autocommit=True) as c:
        assert len(_dirty(c)) == 2
        assert refresh_dirty(c, mode="plain", now=NOW) == 2  # two ranges, not the 3 hours between
        assert _dirty(c) == []
        per_hour = c.execute(
            "SELECT sensor_id, date_trunc('hour', time), count(*) FROM readings GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        assert c.execute("SELECT sensor_id, bucket, n FROM readings_1h ORDER BY 1, 2").fetchall() == per_hour
        assert c.execute("SELECT sum(n), count(*) FROM readings_1m").fetchone() == (3 * 3600 + 90, 180 + 90)
        assert refresh_dirty(c, mode="plain", now=NOW) == 0  # consumed


def test_a_late_batch_rewrites_its_hour_whole(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = sensor_ids(c, example_plant.enterprise.id)["LT-101"]
        write_readings(c, _cols(sid, to_us(H4), 3000, 1_000_000))  # 04:00 to 04:49:59
        refresh_dirty(c, mode="plain", now=NOW)
        late = _cols(sid, to_us(H4) + 3000 * 1_000_000, 600, 1_000_000)  # the last 10 minutes
        write_readings(c, late)
        assert _dirty(c) == [(H4 + timedelta(minutes=50), H4 + timedelta(minutes=59, seconds=59))]
        refresh_dirty(c, mode="plain", now=NOW)
        assert c.execute("SELECT n FROM readings_1h").fetchall() == [(3600,)]


def test_a_failed_write_records_nothing_and_a_duplicate_batch_is_recorded(
    db_dsn: str, example_plant: Plant
) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = sensor_ids(c, example_plant.enterprise.id)["LT-101"]
        cols = _cols(sid, to_us(H4), 60, 1_000_000)
        c.execute("ALTER TABLE readings ADD CONSTRAINT test_no_big CHECK (value < 30)")
        with pytest.raises(psycopg.errors.CheckViolation):
            write_readings(c, cols)
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # usable again
        assert _dirty(c) == [] and c.execute("SELECT count(*) FROM readings").fetchone() == (0,)
        c.execute("ALTER TABLE readings DROP CONSTRAINT test_no_big")
        assert write_readings(c, cols) == 60
        assert write_readings(c, cols) == 0  # the staged merge (a replay): recorded too, harmlessly
        assert len(_dirty(c)) == 2


def test_ranges_older_than_the_raw_retention_are_consumed_without_a_refresh(
    db_dsn: str, example_plant: Plant
) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = sensor_ids(c, example_plant.enterprise.id)["LT-101"]
        write_readings(c, _cols(sid, to_us(H4), 60, MINUTE_US))
        assert refresh_dirty(c, mode="plain", keep_days=30, now=H4 + timedelta(days=40)) == 0
        assert _dirty(c) == [] and c.execute("SELECT count(*) FROM readings_1h").fetchone() == (0,)


def test_a_refresh_that_fails_leaves_the_ranges_for_the_next_round(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = sensor_ids(c, example_plant.enterprise.id)["LT-101"]
        write_readings(c, _cols(sid, to_us(H4), 120, 1_000_000))
        c.execute("ALTER TABLE readings_1m ADD CONSTRAINT test_fail CHECK (n < 0) NOT VALID")
        with pytest.raises(psycopg.errors.CheckViolation):
            refresh_dirty(c, mode="plain", now=NOW)
        assert _dirty(c) == [(H4, from_us(to_us(H4) + 119_000_000))]
        c.execute("ALTER TABLE readings_1m DROP CONSTRAINT test_fail")
        assert refresh_dirty(c, mode="plain", now=NOW) == 1
        assert c.execute("SELECT n FROM readings_1h").fetchall() == [(120,)]
