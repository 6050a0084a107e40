"""Time every Grafana panel's query on 30 days of 500 sensors at one reading a minute.

Builds a scratch database (plain PostgreSQL mode): one enterprise, 20 hazard
sources of 25 sensors, 21.6 M readings loaded with `hazmon.store.write_readings`
(binary COPY, one day per batch, indexes rebuilt after the load), rollups
refreshed a day at a time on 2 connections, 300 alarms with 20 000 events, one
assessment per hazard source. Then runs each panel's SQL (expanded exactly as Grafana would, `hazmon.grafana.
macros`) for 1-hour, 1-day and 30-day ranges ending now: the median of 3 runs
after one warm-up. Prints the load time, a table, and the slowest panel.
Goal: every panel under 200 ms at 30 days. The scratch database is dropped.

    .venv/bin/python bench/panels.py [--days 30] [--sensors 500] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from hazmon.grafana.build import BOARDS, render_json
from hazmon.grafana.macros import TimeRange
from hazmon.grafana.queries import panel_queries, variable_combinations
from hazmon.plant.reading import to_us
from hazmon.store import ReadingColumns, StorageSettings, connect, migrate, write_readings

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
GOAL_MS = 200.0
REFRESH_WORKERS = 2  # the machine has 2 cores
RANGES = (("1h", timedelta(hours=1)), ("1d", timedelta(days=1)), ("30d", timedelta(days=30)))
KINDS = (  # kind, unit, range, hh, h, l, ll
    ("level", "m", (0.0, 20.0), 18.0, 17.0, 2.0, 1.0),
    ("temperature", "°C", (-40.0, 80.0), 50.0, 40.0, -10.0, -20.0),
    ("pressure", "MPa", (0.0, 2.5), 1.6, 1.4, 0.1, None),
    ("gas_combustible", "%LEL", (0.0, 100.0), 50.0, 25.0, None, None),
    ("gas_toxic", "ppm", (0.0, 10.0), 2.0, 1.0, None, None),
)


def _registry(conn: psycopg.Connection[tuple[object, ...]], sensors: int) -> list[int]:
    conn.execute(
        """INSERT INTO enterprise (id, name, name_en, province, city, county, region_code)
           VALUES ('bench', '基准化工', 'Bench Chemical', '江苏省', '南京市', '六合区', '320116')"""
    )
    per_source = 25
    ids: list[int] = []
    for h in range((sensors + per_source - 1) // per_source):
        row = conn.execute(
            """INSERT INTO hazard_source (enterprise_id, code, name, kind, people_500m, s_value, r_value,
                   grade, inventory, responsible)
               VALUES ('bench', %s, %s, 'storage', 100, 3.0, %s, %s, '{}', '{}') RETURNING id""",
            (f"hs-{h:02d}", f"储罐区 {h:02d}", 10.0 + 10 * h, 1 + h % 4),
        ).fetchone()
        assert row is not None
        hs_id = int(str(row[0]))
        for i in range(per_source):
            n = h * per_source + i
            if n >= sensors:
                break
            kind, unit, (lo, hi), hh, hv, lv, ll = KINDS[i % len(KINDS)]
            r = conn.execute(
                """INSERT INTO sensor (enterprise_id, hazard_source_id, tag, kind, unit, range_lo, range_hi,
                       period_s, is_key, hh, h, l, ll)
                   VALUES ('bench', %s, %s, %s, %s, %s, %s, 60, %s, %s, %s, %s, %s) RETURNING id""",
                (hs_id, f"X-{n:04d}", kind, unit, lo, hi, i < 2, hh, hv, lv, ll),
            ).fetchone()
            assert r is not None
            ids.append(int(str(r[0])))
        conn.execute(
            """INSERT INTO assessment (hazard_source_id, report_date, assessor, r_value, grade, filed_on)
               VALUES (%s, current_date - %s, 'bench', 50, 2, current_date - %s + 10)""",
            (hs_id, 200 * h, 200 * h),
        )
    return ids


def _alarms(conn: psycopg.Connection[tuple[object, ...]], now_us: int, days: int) -> None:
    conn.execute(
        """INSERT INTO alarm (enterprise_id, hazard_source, sensor, condition, region_code, level, tier,
               tier_name, state, active, acked, bureau_step, activations, activated_at_us,
               last_seen_us, folded)
           SELECT 'bench', 'hs-' || lpad((g %% 20)::text, 2, '0'), 'X-' || lpad(g::text, 4, '0'), 'h',
                  '320116',
                  'first', 1 + g %% 4, (ARRAY['blue','yellow','orange','red'])[1 + g %% 4],
                  CASE WHEN g %% 10 = 0 THEN 'active_unacked' ELSE 'normal' END, g %% 10 = 0, g %% 10 <> 0,
                  CASE WHEN g %% 7 = 0 THEN 'received' END, 1,
                  %s - (g::bigint * 3600000000), %s, '{}'
           FROM generate_series(0, 299) g""",
        (now_us, now_us),
    )
    conn.execute(
        """INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data)
           SELECT a.id, %s - (random() * %s)::bigint, 'raised', 'system', jsonb_build_object('tier', a.tier)
           FROM alarm a, generate_series(1, 66) g""",
        (now_us, days * 86_400_000_000),
    )
    conn.execute(  # messages sent, a third of them to the county bureau
        """INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data)
           SELECT a.id, a.activated_at_us + 600000000, 'notified', 'system',
                  jsonb_build_object('purpose', 'escalation', 'step', 1,
                                     'recipient', CASE WHEN a.id % 3 = 0 THEN 'bureau_county'
                                                       ELSE 'control_room' END)
           FROM alarm a"""
    )


def _refresh(dsn: str, windows: list[tuple[datetime, datetime]]) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for f, t in windows:
            c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (f, t))


def build(dsn: str, sensors: int, days: int, now: datetime) -> float:
    """Load the scratch database; returns seconds taken."""
    t0 = time.perf_counter()
    now_us = to_us(now)
    with connect(dsn) as conn:
        migrate(conn, StorageSettings(mode="plain"))
        conn.autocommit = False
        with conn.transaction():
            ids = _registry(conn, sensors)
            _alarms(conn, now_us, days)
        conn.autocommit = True
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        # indexes are rebuilt after the load (a sorted build is faster than row-by-row upkeep)
        for idx in ("readings_sensor_time", "readings_time_brin", "readings_not_good"):
            conn.execute(f"DROP INDEX {idx}")
        conn.autocommit = False
        rng = np.random.default_rng(1)
        sid = np.array(ids, dtype=np.int32)
        base = rng.uniform(0.2, 0.6, sid.shape[0])
        minute = 60_000_000
        start = (now_us // minute) * minute - days * 1440 * minute
        loaded = 0
        for d in range(days):
            t = start + (d * 1440 + np.arange(1440, dtype=np.int64)) * minute
            tt = np.tile(t, sid.shape[0])
            ss = np.repeat(sid, t.shape[0])
            vv = (
                np.repeat(base, t.shape[0])
                + 0.05 * np.sin(tt / 3.6e9 + ss)
                + rng.normal(0, 0.01, tt.shape[0])
            )
            qq = np.where(rng.random(tt.shape[0]) < 0.0005, 2, 0).astype(np.int16)
            loaded += write_readings(conn, ReadingColumns(ss, tt, vv, qq))
        t_copy = time.perf_counter() - t0
        conn.autocommit = True
        conn.execute("CREATE UNIQUE INDEX readings_sensor_time ON readings (sensor_id, time)")
        conn.execute("CREATE INDEX readings_time_brin ON readings USING brin (time)")
        conn.execute("CREATE INDEX readings_not_good ON readings (time, sensor_id) WHERE quality <> 0")
        # without statistics the planner reads all 21.6 M rows for each day's rollup refresh
        conn.execute("ANALYZE readings")
        t_index = time.perf_counter() - t0
        first = datetime.fromtimestamp(start / 1e6, UTC)
        windows = [
            (first + timedelta(days=d), min(first + timedelta(days=d + 1), now)) for d in range(days + 1)
        ]
        _refresh(dsn, windows[:2])
        conn.execute(
            "ANALYZE readings_1m, readings_1h"
        )  # the rollups grow from empty: give the planner sizes
        with ThreadPoolExecutor(REFRESH_WORKERS) as pool:  # days are disjoint: refresh them side by side
            list(
                pool.map(
                    _refresh,
                    [dsn] * REFRESH_WORKERS,
                    [windows[2 + i :: REFRESH_WORKERS] for i in range(REFRESH_WORKERS)],
                )
            )
        conn.execute("VACUUM ANALYZE")
        total = time.perf_counter() - t0
        print(
            f"loaded {loaded:,} readings of {sid.shape[0]} sensors over {days} days in {total:.1f} s "
            f"(COPY {t_copy:.1f} s, indexes {t_index - t_copy:.1f} s, "
            f"rollups + analyze {total - t_index:.1f} s)"
        )
    return total


def _time(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> tuple[float, int]:
    conn.execute(sql.encode()).fetchall()  # warm-up
    runs: list[float] = []
    rows = 0
    for _ in range(3):
        t0 = time.perf_counter()
        rows = len(conn.execute(sql.encode()).fetchall())
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), rows


def measure(dsn: str, now: datetime) -> list[tuple[str, dict[str, tuple[float, int]]]]:
    results: list[tuple[str, dict[str, tuple[float, int]]]] = []
    with psycopg.connect(dsn, autocommit=True) as conn:

        def run(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql.encode()).fetchall()

        for b in BOARDS:
            model = render_json(b, "en")
            for q in panel_queries(model):
                per: dict[str, tuple[float, int]] = {}
                for name, span in RANGES:
                    rng = TimeRange(now - span, now)
                    combo = variable_combinations(model, rng, run, limit=1)[0]
                    per[name] = _time(conn, q.expand(rng, combo))
                results.append((q.key, per))
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--sensors", type=int, default=500)
    ap.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    args = ap.parse_args()
    name = f"hazmon_bench_panels_{uuid.uuid4().hex[:8]}"
    dsn = ADMIN.rsplit("/", 1)[0] + "/" + name
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(ADMIN, autocommit=True) as a:
        a.execute(f'CREATE DATABASE "{name}"')
    try:
        build(dsn, args.sensors, args.days, now)
        results = measure(dsn, now)
        width = max(len(k) for k, _ in results)
        print(
            f"{'panel query (dashboard/panel/ref title)':<{width}}  "
            + "  ".join(f"{n:>14}" for n, _ in RANGES)
        )
        for key, per in results:
            cells = "  ".join(
                f"{per[n][0]:8.1f} ms {per[n][1]:>3}" if per[n][1] < 1000 else f"{per[n][0]:8.1f} ms 1k+"
                for n, _ in RANGES
            )
            print(f"{key:<{width}}  {cells}")
        for n, _ in RANGES:
            key, per = max(results, key=lambda kv: kv[1][n][0])
            print(f"slowest at {n}: {per[n][0]:.1f} ms  {key}")
        over = [(k, p["30d"][0]) for k, p in results if p["30d"][0] >= GOAL_MS]
        print(
            f"goal every panel < {GOAL_MS:.0f} ms at 30 d: "
            + (
                "met"
                if not over
                else f"NOT met by {len(over)}: " + ", ".join(f"{k} {ms:.0f} ms" for k, ms in over)
            )
        )
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as a:
                a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
