"""hazmon's TimescaleDB migrations on a real TimescaleDB 2.x (PGlite build, test-only).

PGlite with TimescaleDB runs the DDL (hypertable, compression, continuous
aggregates, policies) but crashes on COPY, so it is used for migrations only.
Skipped, with the reason shown, on a machine without Node.js.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from unittest.mock import ANY

import psycopg
import pytest

from hazmon.plant.reading import to_us
from hazmon.store import (
    DirtyRanges,
    StorageSettings,
    dirty_ranges_sql,
    job_health,
    migrate,
    refresh_dirty,
    refresh_overdue,
    refresh_rollups,
    storage_mode,
    sync_registry,
)
from tests.conftest import EXAMPLE_PLANT, ROOT, free_port

PGLITE = ROOT / "tools" / "pglite-timescale"


def _install(node_dir: Path) -> None:
    if (node_dir / "node_modules" / "@unni-craftsman" / "pglite").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm not installed: cannot fetch the PGlite TimescaleDB build")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir, check=True, timeout=300
    )


@pytest.fixture(scope="module")
def timescale_dsn() -> Iterator[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js not installed: the TimescaleDB migration check needs PGlite")
    _install(PGLITE)
    port = free_port()
    proc = subprocess.Popen(
        [node, "server.mjs", str(port)],
        cwd=PGLITE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and not line.startswith("listening"):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError(f"PGlite server exited with {proc.returncode}")
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        proc.terminate()
        proc.wait(10)


def test_timescaledb_migrations_create_hypertable_aggregates_and_policies(
    timescale_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(timescale_dsn, autocommit=True) as c:
        res = migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        assert res.mode == "timescaledb"
        assert res.timescaledb_version and res.timescaledb_version.startswith("2.")
        assert storage_mode(c) == "timescaledb"
        hyper = c.execute("SELECT hypertable_name FROM timescaledb_information.hypertables").fetchall()
        assert ("readings",) in hyper
        caggs = {
            r[0]
            for r in c.execute(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            ).fetchall()
        }
        assert {"readings_1m", "readings_1h"} <= caggs
        jobs = c.execute(
            "SELECT proc_name, config->>'compress_after', config->>'drop_after' "
            "FROM timescaledb_information.jobs WHERE hypertable_name = 'readings' ORDER BY proc_name"
        ).fetchall()
        assert ("policy_compression", "3 days", None) in jobs
        assert ("policy_retention", None, "90 days") in jobs
        seg = c.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index "
            "FROM timescaledb_information.compression_settings WHERE hypertable_name = 'readings' "
            "ORDER BY attname"
        ).fetchall()
        assert ("sensor_id", 1, None) in seg and ("time", None, 1) in seg
        # idempotent, and a changed retention replaces the policy
        again = migrate(c, StorageSettings(retention_days=400, compress_after_days=3))
        assert again.applied == ()
        drops = c.execute(
            "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_name = 'readings'"
        ).fetchall()
        assert drops == [("400 days",)]
        # same registry code path as plain mode
        c.autocommit = False
        from hazmon.plant import load

        ids = sync_registry(c, load(EXAMPLE_PLANT))
        assert len(ids) == 43


def _conn(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    # PGlite is one backend behind every connection: psycopg's prepared statements would clash
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


def _jobs(c: psycopg.Connection[tuple[object, ...]]) -> dict[tuple[str, str], tuple[int, object]]:
    rows = c.execute(
        """SELECT coalesce(ca.view_name::text, j.hypertable_name::text), j.proc_name::text, j.job_id, j.config
           FROM timescaledb_information.jobs j
           LEFT JOIN timescaledb_information.continuous_aggregates ca
                  ON ca.materialization_hypertable_name = j.hypertable_name
           WHERE j.hypertable_name IS NOT NULL"""
    ).fetchall()
    return {(str(r[0]), str(r[1])): (int(str(r[2])), r[3]) for r in rows}


def test_policies_are_created_once_and_changed_only_when_settings_change(timescale_dsn: str) -> None:
    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        before = _jobs(c)
        for rel in ("readings", "readings_1m", "readings_1h", "readings_1d_counts"):
            assert (rel, "policy_compression") in before and (rel, "policy_retention") in before
        for view in ("readings_1m", "readings_1h", "readings_1d_counts"):
            assert (view, "policy_refresh_continuous_aggregate") in before
        assert before[("readings_1m", "policy_retention")][1] == {
            "drop_after": "730 days",
            "hypertable_id": ANY,
        }
        caggs = c.execute(
            "SELECT view_name, materialized_only, compression_enabled "
            "FROM timescaledb_information.continuous_aggregates ORDER BY 1"
        ).fetchall()
        assert caggs == [
            ("readings_1d_counts", False, True),  # 0405, on readings_1h
            ("readings_1h", False, True),
            ("readings_1m", False, True),
        ]
        # a start with the same settings keeps every job (and so its run history)
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        assert _jobs(c) == before
        # a changed setting changes that job in place, nothing else
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3, retention_1m_days=800))
        after = _jobs(c)
        assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
        changed = {k for k in after if after[k][1] != before[k][1]}
        assert changed == {("readings_1m", "policy_retention")}
        cfg = after[("readings_1m", "policy_retention")][1]
        assert isinstance(cfg, dict) and cfg["drop_after"] == "800 days"
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))  # back, for the tests after


def _now(c: psycopg.Connection[tuple[object, ...]]) -> datetime:
    row = c.execute("SELECT now()").fetchone()
    assert row is not None and isinstance(row[0], datetime)
    return row[0]


def _registry(c: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    from hazmon.plant import load

    c.autocommit = False
    ids = sync_registry(c, load(EXAMPLE_PLANT))
    c.commit()
    c.autocommit = True
    return ids


def _insert(
    c: psycopg.Connection[tuple[object, ...]], sid: int, times: list[datetime], quality: int = 0
) -> None:
    with c.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, sensor_id, value, quality) VALUES (%s, %s, 1.0, %s) ON CONFLICT DO NOTHING",
            [(t, sid, quality) for t in times],
        )


def test_newest_buckets_are_there_and_late_data_lands_on_timescaledb(timescale_dsn: str) -> None:
    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        sid = _registry(c)["TT-101"]
        now = _now(c)
        live = [now - timedelta(minutes=k, seconds=1) for k in range(10)]
        _insert(c, sid, live)
        us = [to_us(t) for t in live]
        refresh_rollups(c, [(min(us), max(us))], mode="timescaledb", now=now)
        newest = c.execute(
            "SELECT (SELECT max(bucket) FROM readings_1m WHERE sensor_id = %s), "
            "(SELECT max(bucket) FROM readings_1h WHERE sensor_id = %s)",
            (sid, sid),
        ).fetchone()
        assert newest is not None
        top = max(live)
        assert newest[0] == top.replace(second=0, microsecond=0)  # real-time aggregation: not behind
        assert newest[1] == top.replace(minute=0, second=0, microsecond=0)
        # a 30-minute gap filled 3 hours late
        g0 = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
        gap = [g0 + timedelta(minutes=k) for k in range(30)]
        _insert(c, sid, gap)
        window = (g0, g0 + timedelta(minutes=30))
        q1m = "SELECT count(*), sum(n) FROM readings_1m WHERE sensor_id = %s AND bucket >= %s AND bucket < %s"
        assert c.execute(q1m, (sid, *window)).fetchone() == (0, None)  # below the watermark: not yet
        dirty = DirtyRanges()
        dirty.add(to_us(gap[0]), to_us(gap[-1]))
        refresh_rollups(c, dirty.take(), mode="timescaledb", keep_days=90, now=now)
        assert c.execute(q1m, (sid, *window)).fetchone() == (30, 30)
        h = c.execute(
            "SELECT sum(n) FROM readings_1h WHERE sensor_id = %s AND bucket >= %s AND bucket < %s",
            # the hours the gap touches, and none of the live minutes (an end at now - 1 h took in the
            # live readings of the hour before whenever the test ran in the first 10 minutes of an hour)
            (sid, g0.replace(minute=0), gap[-1].replace(minute=0) + timedelta(hours=1)),
        ).fetchone()
        assert h == (30,)


def test_recorded_ranges_bring_the_aggregates_up_to_date_after_a_crash(timescale_dsn: str) -> None:
    """The writer's transaction records what it wrote (readings_dirty); a new refresher refreshes it.

    Late data below the watermark (5 hours back, outside every refresh policy's window) committed
    by a process that is then gone: `refresh_dirty` in a new session refreshes readings_1m,
    readings_1h and readings_1d_counts over that range, whole buckets, and consumes the rows.
    (INSERT stands in for the writer's COPY, which this build cannot run.)
    """
    import numpy as np

    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        sid = _registry(c)["FT-301"]
        now = _now(c)
        recent = now - timedelta(minutes=3)  # a live reading, refreshed: the watermark moves past the gap
        _insert(c, sid, [recent])
        refresh_rollups(c, [(to_us(recent), to_us(recent))], mode="timescaledb", now=now)
        c.execute("DELETE FROM readings_dirty")  # what the other tests' inserts left (they record nothing)
        t0 = now.replace(minute=30, second=0, microsecond=0) - timedelta(hours=5)
        late = [t0 + timedelta(minutes=k) for k in range(90)]  # 90 minutes across an hour boundary
        with c.transaction():  # what write_readings does: the readings and their ranges, one commit
            _insert(c, sid, late)
            c.execute(dirty_ranges_sql(np.array([to_us(t) for t in late], dtype=np.int64)))
    with _conn(timescale_dsn) as c:  # a new process: it knows only what the database recorded
        q1m = "SELECT count(*), sum(n) FROM readings_1m WHERE sensor_id = %s AND bucket >= %s AND bucket < %s"
        window = (t0, t0 + timedelta(minutes=90))
        assert c.execute(q1m, (sid, *window)).fetchone() == (0, None)  # below the watermark: not yet
        assert refresh_dirty(c, mode="timescaledb", keep_days=90, now=now) >= 2
        assert c.execute(q1m, (sid, *window)).fetchone() == (90, 90)
        hours = c.execute(
            "SELECT bucket, n FROM readings_1h WHERE sensor_id = %s AND bucket >= %s AND bucket < %s "
            "ORDER BY 1",
            (sid, t0.replace(minute=0), t0 + timedelta(hours=2)),
        ).fetchall()
        assert hours == [(t0.replace(minute=0), 30), (t0.replace(minute=0) + timedelta(hours=1), 60)]
        assert c.execute("SELECT count(*) FROM readings_dirty").fetchone() == (0,)
        assert refresh_dirty(c, mode="timescaledb", keep_days=90, now=now) == 0


def test_health_counts_bad_quality_on_compressed_chunks(timescale_dsn: str) -> None:
    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        sid = _registry(c)["PT-101"]
        now = _now(c)
        t0 = (now - timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
        _insert(c, sid, [t0 + timedelta(minutes=k) for k in range(0, 120, 2)])
        _insert(c, sid, [t0 + timedelta(minutes=k) for k in range(1, 120, 2)], quality=2)  # 60 bad
        refresh_rollups(c, [(to_us(t0), to_us(t0 + timedelta(hours=2)))], mode="timescaledb", now=now)
        c.execute(
            "SELECT compress_chunk(ch) FROM show_chunks('readings', older_than => INTERVAL '4 days') ch"
        )
        c.execute(
            "SELECT compress_chunk(ch) FROM show_chunks('readings_1h', older_than => INTERVAL '4 days') ch"
        )
        # hourly buckets inside the range, raw readings (compressed) at its two ends
        for start in (t0, t0 + timedelta(minutes=30)):
            row = c.execute(
                "SELECT not_good, received FROM hazmon_sensor_health(%s, %s) WHERE sensor_id = %s",
                (start, now, sid),
            ).fetchone()
            assert row is not None
            bad_before = 0 if start == t0 else 15
            assert row[0] == 60 - bad_before


def test_rollups_have_their_own_retention_longer_than_raw(timescale_dsn: str) -> None:
    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        sid = _registry(c)["LT-102"]
        now = _now(c)
        old = (now - timedelta(days=800)).replace(minute=0, second=0, microsecond=0)
        mid = (now - timedelta(days=200)).replace(minute=0, second=0, microsecond=0)
        for t in (old, mid):
            _insert(c, sid, [t + timedelta(minutes=k) for k in range(5)])
            refresh_rollups(c, [(to_us(t), to_us(t + timedelta(minutes=5)))], mode="timescaledb", now=now)
        jobs = _jobs(c)
        for rel in ("readings", "readings_1m", "readings_1h", "readings_1d_counts"):
            c.execute("CALL run_job(%s)", (jobs[(rel, "policy_retention")][0],))
        count = "SELECT count(*) FROM {} WHERE sensor_id = %s AND {} < %s"
        assert c.execute(count.format("readings", "time"), (sid, now - timedelta(days=100))).fetchone() == (
            0,
        )
        # 1-minute rollups: kept 730 days (the 200-day-old ones stay, the 800-day-old ones go)
        m = c.execute(
            "SELECT min(bucket) FROM readings_1m WHERE sensor_id = %s AND bucket < %s",
            (sid, now - timedelta(days=100)),
        ).fetchone()
        assert m == (mid,)
        # hourly rollups: kept 3650 days
        h = c.execute(
            "SELECT count(*) FROM readings_1h WHERE sensor_id = %s AND bucket IN (%s, %s)", (sid, old, mid)
        ).fetchone()
        assert h == (2,)
        # daily counts (0405): kept as long as readings_1h
        d = c.execute(
            "SELECT count(*) FROM readings_1d_counts WHERE sensor_id = %s AND day IN "
            "(time_bucket('1 day', %s::timestamptz), time_bucket('1 day', %s::timestamptz))",
            (sid, old, mid),
        ).fetchone()
        assert d == (2,)


def test_job_health_reads_the_jobs_and_the_daemon_does_a_late_refresh(timescale_dsn: str) -> None:
    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        sid = _registry(c)["LT-201"]
        h = job_health(c)
        names = {j.name for j in h.jobs}
        assert {
            "refresh:readings_1m",
            "refresh:readings_1h",
            "retention:readings_1m",
            "compression:readings",
        } <= names
        # no background scheduler in this build: nothing ever ran, so every job is late
        late = {j.name for j in h.jobs if j.late}
        assert "refresh:readings_1m" in late and not h.ok
        now = _now(c)
        t = (now - timedelta(minutes=90)).replace(second=0, microsecond=0)
        recent = now - timedelta(minutes=2)  # materialized: moves the watermark past t
        _insert(c, sid, [recent])
        refresh_rollups(c, [(to_us(recent), to_us(recent))], mode="timescaledb", now=now)
        _insert(c, sid, [t])
        q = "SELECT count(*) FROM readings_1m WHERE sensor_id = %s AND bucket = %s"
        assert c.execute(q, (sid, t)).fetchone() == (0,)
        assert sorted(refresh_overdue(c, h)) == ["readings_1d_counts", "readings_1h", "readings_1m"]
        assert c.execute(q, (sid, t)).fetchone() == (1,)


def test_out_of_range_readings_stay_out_of_the_continuous_aggregates(timescale_dsn: str) -> None:
    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        sid = _registry(c)["AT-101"]
        now = _now(c)
        t0 = (now - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        _insert(c, sid, [t0 + timedelta(seconds=k) for k in range(0, 60, 2)])  # 30 good, value 1.0
        with c.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings (time, sensor_id, value, quality) VALUES (%s, %s, %s, 3)",
                [(t0 + timedelta(seconds=1), sid, 1e308), (t0 + timedelta(seconds=59), sid, -5e30)],
            )
        refresh_rollups(c, [(to_us(t0), to_us(t0 + timedelta(minutes=1)))], mode="timescaledb", now=now)
        for view in ("readings_1m", "readings_1h"):
            got = c.execute(
                f"SELECT n, bad, min, max, avg, last FROM {view} WHERE sensor_id = %s AND bucket = %s",
                (sid, t0),
            ).fetchone()
            assert got == (30, 2, 1.0, 1.0, 1.0, 1.0), view


def test_alarm_kpi_rollup_is_kept_on_timescaledb(timescale_dsn: str) -> None:
    """0305's rollup (plain tables and triggers) gives the views' rows on TimescaleDB too, late events included."""
    from hazmon.plant import load

    with _conn(timescale_dsn) as c:
        migrate(c, StorageSettings())
        c.autocommit = False
        sync_registry(c, load(EXAMPLE_PLANT))
        c.commit()
        c.autocommit = True
        ids = [
            int(str(r[0]))
            for r in c.execute(
                """INSERT INTO alarm (enterprise_id, hazard_source, sensor, condition, region_code, level, tier,
                       tier_name, state, active, acked, activated_at_us, last_seen_us, folded, position)
                   SELECT 'hx-chem', 'hs-01', 'KPI-' || g, 'h', '320116', 'first', 1 + g % 4, 'blue', 'normal',
                          false, true, 0, 0, '{}', CASE WHEN g % 2 = 0 THEN 'control-room' ELSE 'tank-farm' END
                   FROM generate_series(0, 5) g
                   ON CONFLICT (enterprise_id, hazard_source, sensor, condition) DO UPDATE SET tier = EXCLUDED.tier
                   RETURNING id"""
            ).fetchall()
        ]
        t0 = 1_772_323_200_000_000  # 2026-03-01 00:00 UTC, in µs
        # every alarm: one activation every 7 minutes for a day; alarm 0 also chatters at each 5th
        c.execute(
            """INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data)
               SELECT a, %s + g::bigint * 420000000 + a, 'raised', 'system', jsonb_build_object('tier', 1 + g %% 4)
               FROM unnest(%s::bigint[]) a, generate_series(0, 205) g""",
            (t0, ids),
        )
        c.execute(
            """INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data)
               SELECT %s, %s + g::bigint * 2100000000 + k * 20000000, 'raised', 'system', '{"tier": 4}'
               FROM generate_series(0, 40) g, generate_series(1, 2) k""",
            (ids[0], t0),
        )
        # late: a burst across 05:00, and consequences of a lost link (left out)
        for at, data in (
            (t0 + 5 * 3_600_000_000 - 30_000_000, '{"tier": 3}'),
            (t0 + 5 * 3_600_000_000 - 10_000_000, '{"tier": 3}'),
            (t0 + 5 * 3_600_000_000 + 10_000_000, '{"tier": 3}'),
            (t0 + 6 * 3_600_000_000, '{"tier": 2, "cause": "link_lost:dcs"}'),
        ):
            c.execute(
                "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) "
                "VALUES (%s, %s, 'raised', 'system', %s::jsonb)",
                (ids[3], at, data),
            )
        want = c.execute(
            """SELECT h.enterprise_id, h.position, h.hour, h.alarms, h.red, h.orange, h.yellow, h.blue,
                      coalesce(k.chattering_alarms, 0)
               FROM alarm_kpi_hourly h LEFT JOIN alarm_kpi_chattering k USING (enterprise_id, position, hour)
               ORDER BY 1, 2, 3"""
        ).fetchall()
        got = c.execute(
            "SELECT enterprise_id, position, hour, alarms, red, orange, yellow, blue, chattering_alarms "
            "FROM alarm_kpi_hour ORDER BY 1, 2, 3"
        ).fetchall()
        assert got == want
        assert any(int(str(r[8])) > 0 for r in got)  # chattering counted
        fn = c.execute(
            "SELECT * FROM alarm_kpi_hourly_in(to_timestamp(%s / 1e6), to_timestamp(%s / 1e6)) ORDER BY 1, 2, 3",
            (t0 + 3_600_000_000, t0 + 10 * 3_600_000_000),
        ).fetchall()
        assert fn == [
            r[:8] for r in want if t0 + 3_600_000_000 <= r[2].timestamp() * 1e6 <= t0 + 10 * 3_600_000_000
        ]
        assert fn
