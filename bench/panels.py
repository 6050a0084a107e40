"""Time every Grafana panel's query on 30 days of 500 sensors at one reading a minute.

Builds a scratch database on the server of ``--dsn`` in storage mode ``--mode`` (plain
PostgreSQL or TimescaleDB): one enterprise, 20 hazard sources of 25 sensors, 21.6 M readings
loaded with `hazmon.store.write_readings` (binary COPY, one day per batch), rollups refreshed a
day at a time on 2 connections (`hazmon.store.refresh_rollups`), 300 alarms with 66 activations
each per 30 days over ``--alarm-days`` of history (400, what the daemon keeps: 264 000 events),
one assessment per hazard source. In plain mode indexes are rebuilt after the load; in
TimescaleDB mode chunks older than the compression age are compressed (raw and rollups) and
the compression ratio is printed, so panels are measured on compressed data as in production.
Then runs each panel's SQL (expanded exactly as Grafana would, `hazmon.grafana.macros`) for
1-hour, 1-day and 30-day ranges ending now: the median of 3 runs after one warm-up. With
``--timescale-dsn`` the same bench also runs on that TimescaleDB server and both are printed
side by side. Goal: every panel under 200 ms at 30 days. The scratch databases are dropped
unless ``--keep``.

Before and after a change: build once with ``--keep --save before.json`` (the kept database's
name is printed), change the code, then ``--reuse <name> --baseline before.json`` migrates the
kept database (applying the new migrations only, as ``hazmon db migrate`` would on a plant),
measures again at the same "now" (the end of its readings) and prints the saved numbers and the
new ones side by side.

    .venv/bin/python bench/panels.py [--days 30] [--sensors 500] [--alarm-days 400] [--keep]
        [--dsn postgresql://postgres@127.0.0.1:5432/postgres] [--mode plain|timescaledb]
        [--timescale-dsn postgresql://postgres:pw@tsdb:5432/postgres]
        [--reuse hazmon_bench_panels_xxxxxxxx] [--save FILE.json] [--baseline FILE.json]
"""

from __future__ import annotations

import argparse
import json
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
from hazmon.store import ReadingColumns, StorageSettings, connect, migrate, refresh_rollups, write_readings

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
    """300 alarms, 66 activations each per 30 days over ``days`` of alarm history."""
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
           FROM alarm a, generate_series(1, %s) g""",
        (now_us, days * 86_400_000_000, max(1, round(66 * days / 30))),
    )
    conn.execute(  # messages sent, a third of them to the county bureau
        """INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data)
           SELECT a.id, a.activated_at_us + 600000000, 'notified', 'system',
                  jsonb_build_object('purpose', 'escalation', 'step', 1,
                                     'recipient', CASE WHEN a.id % 3 = 0 THEN 'bureau_county'
                                                       ELSE 'control_room' END)
           FROM alarm a"""
    )


def _refresh(dsn: str, windows: list[tuple[datetime, datetime]], mode: str, now: datetime) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        for f, t in windows:
            refresh_rollups(c, [(to_us(f), to_us(t) - 1)], mode=mode, now=now)


def _compress(conn: psycopg.Connection[tuple[object, ...]], after_days: int) -> str:
    """Compress what the policies would (raw and rollups); the ratio as a line."""
    parts = []
    for rel in ("readings", "readings_1m", "readings_1h", "readings_1d_counts"):
        conn.execute(
            "SELECT compress_chunk(c, if_not_compressed => true) "
            "FROM show_chunks(%s::regclass, older_than => make_interval(days => %s)) c",
            (rel, after_days),
        )
        ht = conn.execute(
            """SELECT coalesce(ca.materialization_hypertable_schema || '.'
                               || ca.materialization_hypertable_name, %s)
               FROM (SELECT 1) x LEFT JOIN timescaledb_information.continuous_aggregates ca
                 ON ca.view_name = %s""",
            (rel, rel),
        ).fetchone()
        assert ht is not None
        row = conn.execute(
            "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
            "FROM hypertable_compression_stats(%s::regclass)",
            (str(ht[0]),),
        ).fetchone()
        if row and row[0] and row[1]:
            b, a = float(str(row[0])), float(str(row[1]))
            parts.append(f"{rel} {b / 1e6:,.1f} MB -> {a / 1e6:,.1f} MB ({b / a:.1f}x)")
        else:
            parts.append(f"{rel}: nothing compressed")
    return f"compression (chunks older than {after_days} days): " + "; ".join(parts)


def build(dsn: str, sensors: int, days: int, now: datetime, mode: str, *, alarm_days: int) -> float:
    """Load the scratch database; returns seconds taken."""
    t0 = time.perf_counter()
    now_us = to_us(now)
    settings = StorageSettings(mode=mode)
    with connect(dsn) as conn:
        res = migrate(conn, settings)
        if res.mode != mode:
            raise SystemExit(f"{dsn}: migrated in {res.mode} mode, not {mode}")
        conn.autocommit = False
        with conn.transaction():
            ids = _registry(conn, sensors)
            _alarms(conn, now_us, alarm_days)
        conn.autocommit = True
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '512MB'")
        # plain: indexes are rebuilt after the load (a sorted build is faster than row-by-row upkeep)
        rebuilt = (
            ("readings_sensor_time", "readings_time_brin", "readings_not_good") if mode == "plain" else ()
        )
        for idx in rebuilt:
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
        if rebuilt:
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
        _refresh(dsn, windows[:2], mode, now)
        conn.execute(
            "ANALYZE readings_1m, readings_1h" if mode == "plain" else "ANALYZE"
        )  # the rollups grow from empty: give the planner sizes
        with ThreadPoolExecutor(REFRESH_WORKERS) as pool:  # days are disjoint: refresh them side by side
            list(
                pool.map(
                    _refresh,
                    [dsn] * REFRESH_WORKERS,
                    [windows[2 + i :: REFRESH_WORKERS] for i in range(REFRESH_WORKERS)],
                    [mode] * REFRESH_WORKERS,
                    [now] * REFRESH_WORKERS,
                )
            )
        compressed = _compress(conn, settings.compress_after_days) if mode == "timescaledb" else ""
        conn.execute("VACUUM ANALYZE")
        total = time.perf_counter() - t0
        print(
            f"[{mode}] loaded {loaded:,} readings of {sid.shape[0]} sensors over {days} days "
            f"in {total:.1f} s "
            f"(COPY {t_copy:.1f} s, indexes {t_index - t_copy:.1f} s, "
            f"rollups + analyze {total - t_index:.1f} s)"
        )
        if compressed:
            print(f"[{mode}] {compressed}")
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
    ap.add_argument(
        "--alarm-days",
        type=int,
        default=400,
        help="days of alarm history (the daemon keeps 400 by default: panels must not slow down with it)",
    )
    ap.add_argument("--keep", action="store_true", help="do not drop the scratch databases")
    ap.add_argument("--dsn", default=ADMIN, help=f"a database on the server to measure (default {ADMIN})")
    ap.add_argument("--mode", choices=("plain", "timescaledb"), default="plain")
    ap.add_argument("--timescale-dsn", help="also measure on this TimescaleDB server, side by side")
    ap.add_argument(
        "--reuse",
        metavar="DATABASE",
        help="measure this database kept by an earlier --keep run on the --dsn server (migrated first, "
        "never dropped) instead of building one",
    )
    ap.add_argument("--save", metavar="FILE", help="write the timings as JSON (for a later --baseline)")
    ap.add_argument(
        "--baseline", metavar="FILE", help="print these saved timings side by side with this run's"
    )
    args = ap.parse_args()
    targets = [(args.mode, args.dsn)]
    if args.timescale_dsn and not args.reuse:
        targets.append(("timescaledb", args.timescale_dsn))
    made: list[tuple[str, str]] = []  # (admin DSN, scratch database)
    try:
        per_target: list[dict[str, dict[str, tuple[float, int]]]] = []
        labels: list[str] = []
        keys: list[str] = []
        for mode, admin in targets:
            if args.reuse:
                dsn = _db_dsn(admin, args.reuse)
                now = _reused(dsn, mode)
            else:
                now = datetime.now(UTC).replace(microsecond=0)
                name = f"hazmon_bench_panels_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(admin, autocommit=True) as a:
                    a.execute(f'CREATE DATABASE "{name}"')
                made.append((admin, name))
                dsn = _db_dsn(admin, name)
                build(dsn, args.sensors, args.days, now, mode, alarm_days=args.alarm_days)
            results = measure(dsn, now)
            keys = keys or [k for k, _ in results]
            per_target.append(dict(results))
            labels.append(mode)
        if args.save:
            with open(args.save, "w", encoding="utf-8") as f:
                json.dump(dict(zip(labels, per_target, strict=True)), f, indent=1)
        if args.baseline:
            with open(args.baseline, encoding="utf-8") as f:
                saved: dict[str, dict[str, dict[str, list[float]]]] = json.load(f)
            old = [
                {k: {n: (float(v[0]), int(v[1])) for n, v in per.items()} for k, per in t.items()}
                for t in saved.values()
            ]
            labels = [f"old {m}" for m in saved] + [f"new {m}" for m in labels]
            per_target = old + per_target
            keys += [k for t in old for k in t if k not in keys]
        _report(keys, labels, per_target)
    finally:
        if not args.keep:
            for admin, name in made:
                with psycopg.connect(admin, autocommit=True) as a:
                    a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                print(f"dropped {name}")
        else:
            for _, name in made:
                print(f"kept {name} (measure it again with --reuse {name})")
    return 0


def _db_dsn(admin: str, name: str) -> str:
    return admin.rsplit("/", 1)[0] + "/" + name + ("?" + admin.split("?", 1)[1] if "?" in admin else "")


def _reused(dsn: str, mode: str) -> datetime:
    """Migrate a kept bench database; its "now" is a minute after its last reading, as when it was built."""
    with connect(dsn) as conn:
        res = migrate(conn, StorageSettings(mode=mode))
        if res.mode != mode:
            raise SystemExit(f"{dsn}: migrated in {res.mode} mode, not {mode}")
        conn.execute("ANALYZE")
        row = conn.execute("SELECT max(time) FROM readings").fetchone()
    if row is None or not isinstance(row[0], datetime):
        raise SystemExit(f"{dsn}: no readings: not a kept bench database")
    last: datetime = row[0]
    print(f"[{mode}] reusing the kept database, measured as of {last + timedelta(minutes=1)}")
    return (last + timedelta(minutes=1)).replace(second=0, microsecond=0)


def _report(
    keys: list[str], modes: list[str], per_target: list[dict[str, dict[str, tuple[float, int]]]]
) -> None:
    width = max(len(k) for k in keys)

    def cell(v: tuple[float, int] | None) -> str:
        if v is None:
            return f"{'-':>14}"
        return f"{v[0]:8.1f} ms {v[1]:>3}" if v[1] < 1000 else f"{v[0]:8.1f} ms 1k+"

    head = "  ".join(
        f"{m.replace('timescaledb', 'tsdb')[:9] + ' ' + n:>14}" for m in modes for n, _ in RANGES
    )
    print(f"{'panel query (dashboard/panel/ref title)':<{width}}  {head}")
    for k in keys:
        print(f"{k:<{width}}  " + "  ".join(cell(t.get(k, {}).get(n)) for t in per_target for n, _ in RANGES))
    for m, t in zip(modes, per_target, strict=True):
        for n, _ in RANGES:
            key, per = max(t.items(), key=lambda kv: kv[1][n][0])
            print(f"[{m}] slowest at {n}: {per[n][0]:.1f} ms  {key}")
        over = [(k, p["30d"][0]) for k, p in t.items() if p["30d"][0] >= GOAL_MS]
        print(
            f"[{m}] goal every panel < {GOAL_MS:.0f} ms at 30 d: "
            + (
                "met"
                if not over
                else f"NOT met by {len(over)}: " + ", ".join(f"{k} {ms:.0f} ms" for k, ms in over)
            )
        )


if __name__ == "__main__":
    raise SystemExit(main())
