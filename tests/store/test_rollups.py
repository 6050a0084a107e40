"""Rollups on plain PostgreSQL: whole buckets, quality counts, late data, per-rollup retention;
and the pure parts of hazmon.store.rollups (ranges, bucket windows, job health)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.plant.reading import to_us
from hazmon.store import (
    DirtyRanges,
    ReadingColumns,
    StorageSettings,
    connect,
    refresh_rollups,
    sensor_ids,
    write_readings,
)
from hazmon.store.rollups import HOUR_US, MINUTE_US, JobRow, assess_jobs, bucket_window

H4 = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)  # a whole hour; the functions under test never read the clock


def _write(
    c: psycopg.Connection[tuple[object, ...]], sid: int, t0_us: int, n: int, step_us: int, bad_every: int = 0
) -> None:
    t = t0_us + np.arange(n, dtype=np.int64) * step_us
    q = np.zeros(n, np.int16)
    if bad_every:
        q[::bad_every] = 2
    write_readings(c, ReadingColumns(np.full(n, sid, np.int32), t, np.arange(n, dtype=np.float64), q))


def _sid(c: psycopg.Connection[tuple[object, ...]], plant: Plant, tag: str = "LT-101") -> int:
    return sensor_ids(c, plant.enterprise.id)[tag]


def test_refresh_ending_inside_an_hour_keeps_the_hour_whole(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        _write(c, sid, to_us(H4), 3600, 1_000_000)  # the whole 04:00 hour at 1 s
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(hours=1)))
        assert c.execute("SELECT n FROM readings_1h WHERE bucket = %s", (H4,)).fetchone() == (3600,)
        # a later refresh of part of the hour (a late batch) ends inside a minute and an hour
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(minutes=2, seconds=30)))
        assert c.execute("SELECT n FROM readings_1h WHERE bucket = %s", (H4,)).fetchone() == (3600,)
        assert c.execute(
            "SELECT n FROM readings_1m WHERE bucket = %s", (H4 + timedelta(minutes=2),)
        ).fetchone() == (60,)


def test_rollups_count_non_good_readings(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        _write(c, sid, to_us(H4), 120, 1_000_000, bad_every=10)  # 12 bad of 120
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(minutes=2)))
        assert c.execute("SELECT bad FROM readings_1m ORDER BY bucket").fetchall() == [(6,), (6,)]
        assert c.execute("SELECT n, bad FROM readings_1h").fetchall() == [(120, 12)]


def test_late_data_reaches_both_rollups_over_the_range_written(db_dsn: str, example_plant: Plant) -> None:
    """A 30-minute gap filled 3 hours late (spool replay, OPC UA backfill): 30 of 30 buckets."""
    now = H4 + timedelta(hours=6, seconds=30)
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        dirty = DirtyRanges()
        live0 = to_us(H4 + timedelta(hours=3))
        _write(c, sid, live0, 180, MINUTE_US)  # 07:00-09:59 live, the gap 06:00-06:30 missing
        dirty.add(live0, live0 + 179 * MINUTE_US)
        refresh_rollups(c, dirty.take(), mode="plain", now=now)
        gap0 = to_us(H4 + timedelta(hours=2))
        _write(c, sid, gap0, 30, MINUTE_US)  # the gap arrives late
        dirty.add(gap0, gap0 + 29 * MINUTE_US)
        live1 = to_us(now) - 20_000_000
        _write(c, sid, live1, 1, MINUTE_US)  # and a live reading in the same round
        dirty.add(live1, live1)
        ranges = dirty.take()
        assert ranges == [(gap0, gap0 + 29 * MINUTE_US), (live1, live1)]  # two ranges, not 4 hours
        assert refresh_rollups(c, ranges, mode="plain", now=now) == 2
        got = c.execute(
            "SELECT count(*), sum(n) FROM readings_1m WHERE bucket >= %s AND bucket < %s",
            (H4 + timedelta(hours=2), H4 + timedelta(hours=2, minutes=30)),
        ).fetchone()
        assert got == (30, 30)
        assert c.execute(
            "SELECT n FROM readings_1h WHERE bucket = %s", (H4 + timedelta(hours=2),)
        ).fetchone() == (30,)
        assert c.execute("SELECT sum(n) FROM readings_1h").fetchone() == (211,)
        # and the newest buckets are those of the newest reading: not one behind
        top = datetime.fromtimestamp(live1 / 1e6, UTC)
        newest = c.execute(
            "SELECT (SELECT max(bucket) FROM readings_1m), (SELECT max(bucket) FROM readings_1h)"
        )
        assert newest.fetchone() == (
            top.replace(second=0, microsecond=0),
            top.replace(minute=0, second=0, microsecond=0),
        )


def test_refresh_leaves_history_older_than_the_raw_retention_alone(db_dsn: str, example_plant: Plant) -> None:
    now = H4 + timedelta(days=40)
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        _write(c, sid, to_us(H4), 60, MINUTE_US)
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(hours=1)))
        c.execute("DELETE FROM readings WHERE time >= %s", (H4 + timedelta(minutes=1),))  # retention ran
        t = to_us(H4)
        assert refresh_rollups(c, [(t, t)], mode="plain", keep_days=30, now=now) == 0
        assert c.execute("SELECT n FROM readings_1h").fetchall() == [(60,)]


def test_retention_keeps_each_rollup_for_its_own_period(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        c.execute(
            """INSERT INTO readings VALUES (now() - interval '40 days', %s, 1, 0), (now() - interval '1 day', %s, 2, 0)""",
            (sid, sid),
        )
        for table in ("readings_1m", "readings_1h"):
            c.execute(
                f"""INSERT INTO {table} (bucket, sensor_id, min, max, avg, last, n)
                    SELECT now() - make_interval(days => d), %s, 1, 1, 1, 1, 1 FROM unnest(ARRAY[40, 70, 100]) d""",
                (sid,),
            )
        assert c.execute("SELECT hazmon_apply_retention(30, 60, 90)").fetchone() == (1,)
        assert c.execute("SELECT count(*) FROM readings").fetchone() == (1,)
        assert c.execute("SELECT count(*) FROM readings_1m").fetchone() == (
            1,
        )  # 40 days kept, 70 and 100 gone
        assert c.execute("SELECT count(*) FROM readings_1h").fetchone() == (2,)  # 40 and 70 kept
        # the daemon's older one-argument call keeps the configured rollup retention (730 / 3650 days)
        c.execute("SELECT hazmon_apply_retention(30)")
        assert c.execute("SELECT count(*) FROM readings_1m").fetchone() == (1,)
        with pytest.raises(psycopg.errors.RaiseException, match="must not be shorter"):
            c.execute("SELECT hazmon_apply_retention(30, 20, 90)")


def test_rollup_retention_shorter_than_the_raw_data_is_refused() -> None:
    assert StorageSettings(retention_days=400).rollup_1m_days == 730
    assert StorageSettings(retention_days=1000).rollup_1m_days == 1000
    assert StorageSettings(retention_1m_days=900).rollup_1h_days == 3650
    with pytest.raises(ValueError, match="retention_1m_days: 300 is shorter"):
        StorageSettings(retention_days=400, retention_1m_days=300)
    with pytest.raises(ValueError, match="retention_1h_days: 500 is shorter"):
        StorageSettings(retention_1m_days=800, retention_1h_days=500)


# -- pure ------------------------------------------------------------------------------------


def test_dirty_ranges_merge_only_what_is_close_and_stay_bounded() -> None:
    d = DirtyRanges(merge_gap_us=MINUTE_US, max_ranges=3)
    d.add(100 * MINUTE_US, 110 * MINUTE_US)
    d.add(111 * MINUTE_US, 115 * MINUTE_US)  # adjacent: merges
    d.add(0, 5 * MINUTE_US)
    assert d.take() == [(0, 5 * MINUTE_US), (100 * MINUTE_US, 115 * MINUTE_US)]
    assert d.take() == [] and not d
    for k in range(5):
        d.add(k * 100 * MINUTE_US, k * 100 * MINUTE_US)
    assert len(d.take()) == 3


def test_bucket_window_covers_whole_buckets_and_ends_at_the_last_complete_one() -> None:
    now = 10 * HOUR_US + 30 * MINUTE_US
    w = bucket_window(HOUR_US + 5, 2 * HOUR_US + 7, HOUR_US, now_us=now, floor_us=None, complete_only=True)
    assert w == (HOUR_US, 3 * HOUR_US)
    # the current hour is left to real-time aggregation
    assert (
        bucket_window(10 * HOUR_US + 1, now, HOUR_US, now_us=now, floor_us=None, complete_only=True) is None
    )
    assert bucket_window(10 * HOUR_US + 1, now, HOUR_US, now_us=now, floor_us=None, complete_only=False) == (
        10 * HOUR_US,
        11 * HOUR_US,
    )
    # nothing before the first whole bucket after the retention edge
    assert bucket_window(0, 5 * HOUR_US, HOUR_US, now_us=now, floor_us=HOUR_US + 1, complete_only=True) == (
        2 * HOUR_US,
        5 * HOUR_US + HOUR_US,
    )


def _row(job_id: int, proc: str, rel: str | None, **kw: object) -> JobRow:
    base: dict[str, object] = {
        "schedule_interval": timedelta(minutes=1),
        "scheduled": True,
        "config": {},
        "last_successful_finish": None,
        "last_run_status": None,
        "total_runs": 0,
        "total_failures": 0,
        "next_start": None,
    }
    base.update(kw)
    return JobRow(job_id, proc, rel, **base)  # type: ignore[arg-type]


def test_job_health_names_failing_late_and_paused_jobs() -> None:
    now = datetime(2026, 12, 4, 7, 2, tzinfo=UTC)
    rows = [
        _row(
            1,
            "policy_refresh_continuous_aggregate",
            "readings_1m",
            last_successful_finish=now - timedelta(seconds=50),
            last_run_status="Success",
            total_runs=10,
            next_start=now + timedelta(seconds=10),
        ),
        _row(
            2,
            "policy_refresh_continuous_aggregate",
            "readings_1h",
            schedule_interval=timedelta(minutes=30),
            last_successful_finish=now - timedelta(hours=2),
            last_run_status="Failed",
            total_runs=9,
            total_failures=4,
            last_error='cannot drop portal "" while it is being set up',
        ),
        _row(
            3,
            "policy_retention",
            "readings",
            schedule_interval=timedelta(days=1),
            last_successful_finish=now - timedelta(days=3),
            last_run_status="Success",
            total_runs=5,
        ),
        _row(
            4,
            "policy_compression",
            "readings",
            schedule_interval=timedelta(hours=12),
            next_start=now + timedelta(hours=1),
        ),  # new, not due yet
        _row(5, "policy_compression", "readings_1m", scheduled=False),
    ]
    h = assess_jobs(rows, now)
    assert not h.ok
    by = {j.name: j for j in h.jobs}
    assert by["refresh:readings_1m"].problem is None
    assert by["refresh:readings_1h"].failing and by["refresh:readings_1h"].total_failures == 4
    assert "cannot drop portal" in (by["refresh:readings_1h"].problem or "")
    assert by["retention:readings"].late and not by["retention:readings"].failing
    assert by["compression:readings"].problem is None
    assert by["compression:readings_1m"].problem == "compression:readings_1m: paused"
    assert len(h.problems) == 3
    never = assess_jobs(
        [_row(6, "policy_retention", "readings_1h", next_start=now - timedelta(hours=1))], now
    )
    assert never.problems == (
        f"retention:readings_1h: never ran (due since {(now - timedelta(hours=1)).isoformat()})",
    )
    assert assess_jobs(rows[:1], now).ok


@pytest.mark.parametrize("hours", [2, 8])
def test_sensor_health_counts_non_good_readings_from_the_rollups(
    db_dsn: str, example_plant: Plant, hours: int
) -> None:
    """Minute (≤ 6 h) and hourly ranges: whole buckets from the rollups, the ends from finer data."""
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        _write(c, sid, to_us(H4), hours * 360 + 720, 10_000_000, bad_every=7)  # every 10 s, 1 in 7 bad
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(hours=hours + 3)))
        p_from = H4 + timedelta(minutes=20, seconds=25)
        p_to = p_from + timedelta(hours=hours, minutes=7, seconds=13)
        count_from = p_from if hours <= 6 else p_from.replace(second=0) + timedelta(minutes=1)
        want = c.execute(
            "SELECT count(*) FROM readings WHERE sensor_id = %s AND quality <> 0 AND time >= %s AND time < %s",
            (sid, count_from, p_to),
        ).fetchone()
        got = c.execute(
            "SELECT not_good FROM hazmon_sensor_health(%s, %s) WHERE sensor_id = %s", (p_from, p_to, sid)
        ).fetchone()
        assert got == want and want is not None and int(str(want[0])) > 0


def test_a_batch_of_live_and_backfilled_readings_marks_two_ranges() -> None:
    d = DirtyRanges()
    live = 1_000 * HOUR_US + np.arange(0, 30_000_000, 1_000_000, dtype=np.int64)
    late = 997 * HOUR_US + np.arange(0, 30 * MINUTE_US, MINUTE_US, dtype=np.int64)
    d.add_times(np.concatenate([live, late]))
    assert d.take() == [(int(late[0]), int(late[-1])), (int(live[0]), int(live[-1]))]
    d.add_times(live)
    assert d.take() == [(int(live[0]), int(live[-1]))]
    d.add_times(np.array([], dtype=np.int64))
    assert d.take() == []


def test_upgrading_a_plain_database_counts_the_bad_readings_already_rolled_up(
    empty_db: str, example_plant: Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from hazmon.store import sync_registry

    migrate_module = importlib.import_module("hazmon.store.migrate")

    every = migrate_module.migrations()
    monkeypatch.setattr(
        migrate_module,
        "migrations",
        # the schema before issue 13 and before out-of-range readings (0411 replaces 0003's refresh;
        # 0404's day counts sum 0003's bad column)
        lambda: [
            m
            for m in every
            if m.version
            not in (
                "0003_rollups",
                "0403_sensor_health_rollups",
                "0404_health_day_counts",
                "0410_out_of_range",
                "0411_out_of_range_rollups",
            )
        ],
    )
    with connect(empty_db) as c:
        migrate_module.migrate(c, StorageSettings(mode="plain"))  # the schema before issue 13
        c.autocommit = False
        sid = sync_registry(c, example_plant)["LT-101"]
        c.commit()
        c.autocommit = True
        _write(c, sid, to_us(H4), 120, 1_000_000, bad_every=10)
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(minutes=2)))
        monkeypatch.setattr(migrate_module, "migrations", lambda: every)
        res = migrate_module.migrate(c, StorageSettings(mode="plain"))
        assert res.applied == (
            "0003_rollups",
            "0403_sensor_health_rollups",
            "0404_health_day_counts",
            "0410_out_of_range",
            "0411_out_of_range_rollups",
        )
        assert c.execute("SELECT n, bad FROM readings_1m ORDER BY bucket").fetchall() == [(60, 6), (60, 6)]
        assert c.execute("SELECT n, bad FROM readings_1h").fetchall() == [(120, 12)]
        assert c.execute("SELECT n, bad FROM readings_1d_counts").fetchall() == [(120, 12)]


def test_out_of_range_readings_are_counted_bad_but_not_measured(db_dsn: str, example_plant: Plant) -> None:
    """Quality 3 (out of range) stays out of min/max/avg/last/n, is counted in bad, and a partial refresh
    still writes whole buckets (the two rollup migrations' rules together)."""
    with connect(db_dsn, autocommit=True) as c:
        sid = _sid(c, example_plant)
        _write(c, sid, to_us(H4), 120, 1_000_000)  # 04:00-04:02 at 1 s, value as _write gives it
        c.execute(
            "UPDATE readings SET value = 1e308, quality = 3 WHERE sensor_id = %s AND time = %s",
            (sid, H4 + timedelta(seconds=30)),
        )
        c.execute(
            "UPDATE readings SET value = -5e30, quality = 3 WHERE sensor_id = %s AND time = %s",
            (sid, H4 + timedelta(seconds=119)),
        )
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (H4, H4 + timedelta(minutes=2)))
        got = c.execute("SELECT n, bad, max < 1e300, min > -1e30 FROM readings_1m ORDER BY bucket").fetchall()
        assert got == [(59, 1, True, True), (59, 1, True, True)]
        # a late refresh ending inside the second minute rewrites it whole, still without quality 3
        c.execute(
            "SELECT hazmon_refresh_rollups(%s, %s)", (H4 + timedelta(minutes=1), H4 + timedelta(seconds=75))
        )
        assert c.execute("SELECT n, bad, max < 1e300 FROM readings_1h").fetchall() == [(118, 2, True)]
        last = c.execute(
            "SELECT last FROM readings_1m WHERE bucket = %s", (H4 + timedelta(minutes=1),)
        ).fetchone()
        assert last is not None and last[0] is not None and -1e30 < last[0] < 1e300


def test_a_timescaledb_update_left_pending_is_named() -> None:
    from hazmon.store.migrate import timescaledb_update_pending

    assert timescaledb_update_pending("2.28.3", "2.28.3") is None
    assert timescaledb_update_pending(None, "2.28.3") is None
    warning = timescaledb_update_pending("2.27.2", "2.28.3")
    assert warning is not None
    assert warning.startswith("TimescaleDB 2.27.2 is installed in this database but the server has 2.28.3")
    assert "ALTER EXTENSION timescaledb UPDATE" in warning
