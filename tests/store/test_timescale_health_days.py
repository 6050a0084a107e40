"""TimescaleDB mode (0405): readings_1d_counts is a hierarchical continuous aggregate on readings_1h,
kept by the daemon's refresh (after readings_1h) and its own policies, and hazmon_sensor_health
reads whole days from it with the same result as the plain path: the direct computation over
readings_1h and the raw readings (PGlite TimescaleDB build, test-only; it crashes on COPY, so
readings go in with INSERT; its own server, so a fresh database)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from hazmon.plant import load
from hazmon.plant.reading import to_us
from hazmon.store import DirtyRanges, StorageSettings, job_health, migrate, refresh_rollups, sync_registry
from tests.conftest import EXAMPLE_PLANT
from tests.store.test_health_day_counts import assert_health_is_the_hours, health_ranges
from tests.store.test_timescale import timescale_dsn

__all__ = ["timescale_dsn"]

SETTINGS = StorageSettings(retention_days=90, compress_after_days=3)
Conn = psycopg.Connection[tuple[object, ...]]


def _insert(c: Conn, sid: int, t0: datetime, minutes: int, bad_every: int) -> None:
    """One reading a minute from t0, every bad_every-th one of bad quality (server-side, no COPY)."""
    c.execute(
        "INSERT INTO readings (time, sensor_id, value, quality) "
        "SELECT %s + g * interval '1 minute', %s, 1.0, CASE WHEN g %% %s = 0 THEN 2 ELSE 0 END "
        "FROM generate_series(0, %s - 1) g",
        (t0, sid, bad_every, minutes),
    )


def _refresh(c: Conn, t0: datetime, minutes: int, now: datetime) -> None:
    """What the daemon does with the range a write committed."""
    dirty = DirtyRanges()
    dirty.add(to_us(t0), to_us(t0 + timedelta(minutes=minutes - 1)))
    refresh_rollups(c, dirty.take(), mode="timescaledb", keep_days=SETTINGS.retention_days, now=now)


def _days_from_hours(c: Conn, table: str) -> None:
    """Each (sensor, UTC day) in `table` equals readings_1h's sums over that day."""
    want = c.execute(
        "SELECT sensor_id, time_bucket('1 day', bucket), sum(n)::bigint, sum(bad)::bigint FROM readings_1h "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()
    got = c.execute(f"SELECT sensor_id, day, n, bad FROM {table} ORDER BY 1, 2").fetchall()
    assert got == want, table
    assert want


def _at(c: Conn, expr: str) -> datetime:
    row = c.execute(f"SELECT {expr}").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]


def _mat_table(c: Conn) -> str:
    row = c.execute(
        "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name) "
        "FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_1d_counts'"
    ).fetchone()
    assert row is not None
    return str(row[0])


def test_day_counts_aggregate_has_its_policies_once(timescale_dsn: str) -> None:
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as c:
        migrate(c, SETTINGS)
        cagg = c.execute(
            "SELECT materialized_only, compression_enabled FROM timescaledb_information.continuous_aggregates "
            "WHERE view_name = 'readings_1d_counts'"
        ).fetchone()
        assert cagg == (False, True)  # real-time, like readings_1m / readings_1h

        def jobs() -> dict[str, tuple[int, dict[str, object]]]:
            rows = c.execute(
                # jobs.hypertable_name: the view (2.23) or its materialization hypertable (older)
                "SELECT j.proc_name::text, j.job_id, j.config FROM timescaledb_information.jobs j "
                "LEFT JOIN timescaledb_information.continuous_aggregates ca "
                "ON ca.materialization_hypertable_name = j.hypertable_name "
                "WHERE coalesce(ca.view_name, j.hypertable_name) = 'readings_1d_counts'"
            ).fetchall()
            out: dict[str, tuple[int, dict[str, object]]] = {}
            for proc, job, cfg in rows:
                assert isinstance(cfg, dict)
                out[str(proc)] = (int(str(job)), cfg)
            return out

        before = jobs()
        assert set(before) == {
            "policy_refresh_continuous_aggregate",
            "policy_compression",
            "policy_retention",
        }
        assert before["policy_retention"][1]["drop_after"] == "3650 days"  # as long as readings_1h
        assert before["policy_compression"][1]["compress_after"] == "3 days"
        migrate(c, SETTINGS)
        assert jobs() == before  # a start with the same settings keeps the jobs
        migrate(c, StorageSettings(retention_days=90, compress_after_days=5, retention_1h_days=4000))
        after = jobs()
        assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}  # changed in place
        assert after["policy_retention"][1]["drop_after"] == "4000 days"
        assert after["policy_compression"][1]["compress_after"] == "5 days"
        migrate(c, SETTINGS)
        # the policy runs (this build has no scheduler: by hand) and job health names it
        c.execute("CALL run_job(%s)", (before["policy_refresh_continuous_aggregate"][0],))
        assert "refresh:readings_1d_counts" in {j.name for j in job_health(c).jobs}


def test_health_reads_whole_days_from_the_hierarchical_aggregate(timescale_dsn: str) -> None:
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as c:
        migrate(c, SETTINGS)
        c.autocommit = False
        ids = sync_registry(c, load(EXAMPLE_PLANT))
        c.commit()
        c.autocommit = True
        a, b = ids["PT-101"], ids["TT-101"]
        now = _at(c, "now()")
        d0 = _at(c, "date_trunc('day', now(), 'UTC') - interval '8 days'")  # a UTC midnight
        # four days at one a minute; b has a gap on day 2 (10:00-14:00), filled late
        _insert(c, a, d0, 4 * 1440, 7)
        _refresh(c, d0, 4 * 1440, now)
        _insert(c, b, d0, 1440 + 600, 11)
        _refresh(c, d0, 1440 + 600, now)
        t1 = d0 + timedelta(days=1, hours=14)
        _insert(c, b, t1, 2 * 1440 + 600, 13)
        _refresh(c, t1, 2 * 1440 + 600, now)
        # materialized by the daemon's refresh (not only computed in real time), and right
        mat = _mat_table(c)
        _days_from_hours(c, mat)
        _days_from_hours(c, "readings_1d_counts")
        # late data into compressed chunks (older than the compression age): it lands in its day
        for view in ("readings", "readings_1m", "readings_1h", "readings_1d_counts"):
            c.execute(
                f"SELECT compress_chunk(ch) FROM show_chunks('{view}', older_than => INTERVAL '4 days') ch"
            )
        day2 = d0 + timedelta(days=1)
        q = f"SELECT n FROM {mat} WHERE sensor_id = %s AND day = %s"
        before = c.execute(q, (b, day2)).fetchone()
        assert before is not None
        late = d0 + timedelta(days=1, hours=10)
        _insert(c, b, late, 240, 3)
        _refresh(c, late, 240, now)
        assert c.execute(q, (b, day2)).fetchone() == (int(str(before[0])) + 240,)
        _days_from_hours(c, mat)
        for f, t in health_ranges(d0):
            assert_health_is_the_hours(c, f, t, {a, b})
        # days newer than the aggregate's last refresh: computed from readings_1h in real time
        d4 = d0 + timedelta(days=4)
        _insert(c, a, d4, 2 * 1440, 5)  # not refreshed
        assert c.execute(f"SELECT count(*) FROM {mat} WHERE day >= %s", (d4,)).fetchone() == (0,)
        _days_from_hours(c, "readings_1d_counts")
        assert_health_is_the_hours(
            c, d0 + timedelta(hours=3), d4 + timedelta(days=1, hours=7, minutes=5), {a, b}
        )
        assert_health_is_the_hours(c, d4, d4 + timedelta(days=2), {a})
