"""Compression ratio of readings and of the three rollups on a TimescaleDB server, sampled.

Loads ``--days`` of ``--sensors`` sensors at one reading a minute (the same values as
`bench/panels.py`: a per-sensor base, a slow sine, normal noise of 0.01, one reading in 2,000
not good) into a scratch database on ``--dsn``, with INSERT (``INSERT … SELECT unnest(…)``,
never COPY: the PGlite TimescaleDB lane crashes on COPY), refreshes readings_1m, readings_1h
and readings_1d_counts over it, compresses every chunk of the four (as the compression
policies do once the chunks are old enough) and prints, per relation, the size before and
after compression from ``hypertable_compression_stats`` (a rollup through its
materialization hypertable), and the total.

The data sits 10 days in the past and ends on a UTC midnight, so every chunk of readings
(1 day) is whole: its ratio is the one 30 days would give. A rollup's chunks span 7 days
(readings_1m), 60 (readings_1h) and 180 (readings_1d_counts): a sample of 2–3 days puts fewer
rows per sensor in them than 30 days would (compression packs up to 1,000 rows of one sensor
per batch), so their ratios here are lower bounds.

The PGlite TimescaleDB lane (tools/pglite-timescale, test-only):

    node tools/pglite-timescale/server.mjs 55433 &
    .venv/bin/python bench/compression.py --dsn \\
        'postgresql://postgres:postgres@127.0.0.1:55433/postgres?sslmode=disable' --days 2

The values are stored as hazmon's collector stores them (`collector.value_resolution_bits`, 16
by default: a power-of-two step <= 1/65,536 of the sensor's range, `hazmon.plant.reading.storage_step`;
2^-12 m for the bench's 0-20 m sensors), whose low mantissa bits are zero and cost nothing
compressed. ``--full-precision`` stores them as generated (noise in every bit of the double, as
before 2026-12-04); ``--round 3`` at 3 decimals; ``--round -12`` at a binary step of 2^-12.
The bench prints the values' entropy floor too: what no lossless coding goes below.

PGlite serves one database: there the tables are created in it (``--in-place``), so use a
fresh lane. A real server: ``--dsn`` of its ``postgres`` database; the scratch database is
dropped unless ``--keep``.
"""

from __future__ import annotations

import argparse
import math
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from psycopg.conninfo import make_conninfo

from hazmon.plant.reading import quantize, storage_step
from hazmon.store import StorageSettings, migrate, refresh_rollups

RELATIONS = ("readings", "readings_1m", "readings_1h", "readings_1d_counts")
BATCH = 1_000  # rows per INSERT statement (the PGlite lane crashes on messages of 2,000)
MINUTE_US = 60_000_000


def _connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    # PGlite is one backend behind every connection: no server-side prepared statements
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


def _sensors(c: psycopg.Connection[tuple[object, ...]], n: int) -> list[int]:
    c.execute(
        "INSERT INTO enterprise (id, name, name_en, province, city, county, region_code) "
        "VALUES ('bench', '基准化工', 'Bench Chemical', '江苏省', '南京市', '六合区', '320116') "
        "ON CONFLICT DO NOTHING"
    )
    row = c.execute(
        "INSERT INTO hazard_source (enterprise_id, code, name, kind, people_500m, s_value, r_value, grade, "
        "inventory, responsible) "
        "VALUES ('bench', 'hs-bench', '储罐区', 'storage', 100, 3.0, 10, 1, '{}', '{}') RETURNING id"
    ).fetchone()
    assert row is not None
    hs = int(str(row[0]))
    rows = c.execute(
        "INSERT INTO sensor (enterprise_id, hazard_source_id, tag, kind, unit, range_lo, range_hi, period_s) "
        "SELECT 'bench', %s, 'B-' || lpad(g::text, 4, '0'), 'level', 'm', 0, 20, 60 "
        "FROM generate_series(0, %s - 1) g RETURNING id",
        (hs, n),
    ).fetchall()
    return [int(str(r[0])) for r in rows]


NOISE = 0.01  # the readings' noise, standard deviation (as bench/panels.py)


def entropy_bits(values: np.ndarray, digits: int | None) -> float:
    """Bits per value no lossless coding of these values can go below, on average.

    A value is a smooth part (base, slow sine) plus normal noise of σ = `NOISE`, stored as a
    double (or rounded to ``digits`` decimals). Whatever predicts the smooth part exactly, the
    noise is left, and coding it to the stored step Δ takes at least its differential entropy
    ½·log2(2πe·σ²) − log2(Δ) bits (Cover & Thomas, Elements of Information Theory, §8.3:
    H of a quantized continuous variable ≈ h − log2 Δ for Δ ≪ σ). Δ is the double's spacing
    at each value (`numpy.spacing`) or 10^-digits.
    """
    h = 0.5 * np.log2(2 * np.pi * np.e * NOISE**2)
    if digits is not None:  # a decimal step 10^-digits, or (below 0) a binary step 2^digits
        return float(h + digits * np.log2(10) if digits >= 0 else h - digits)
    return float(h - np.mean(np.log2(np.spacing(np.abs(values)))))


def value_bytes(c: psycopg.Connection[tuple[object, ...]]) -> float:
    """Bytes of ``readings``' compressed ``value`` column, summed over its compressed chunks."""
    chunks = c.execute(
        "SELECT format('%I.%I', cc.schema_name, cc.table_name) FROM _timescaledb_catalog.chunk ch"
        " JOIN _timescaledb_catalog.chunk cc ON cc.id = ch.compressed_chunk_id"
        " JOIN _timescaledb_catalog.hypertable h ON h.id = ch.hypertable_id"
        " WHERE h.table_name = 'readings'"
    ).fetchall()
    total = 0.0
    for (name,) in chunks:
        row = c.execute(f"SELECT coalesce(sum(pg_column_size(value)), 0) FROM {name}").fetchone()
        total += float(str(row[0])) if row else 0.0
    return total


def load(
    c: psycopg.Connection[tuple[object, ...]],
    ids: list[int],
    start_us: int,
    days: int,
    digits: int | None,
    *,
    bits: list[float] | None = None,
) -> int:
    """The readings of `bench/panels.py`, a day at a time, by INSERT (``digits``: rounded so).

    ``bits``: each day's `entropy_bits` per value is appended to it.
    """
    rng = np.random.default_rng(1)
    sid = np.array(ids, dtype=np.int32)
    base = rng.uniform(0.2, 0.6, sid.shape[0])
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    n = 0
    for d in range(days):
        t = start_us + (d * 1440 + np.arange(1440, dtype=np.int64)) * MINUTE_US
        tt = np.tile(t, sid.shape[0])
        ss = np.repeat(sid, t.shape[0])
        vv = np.repeat(base, t.shape[0]) + 0.05 * np.sin(tt / 3.6e9 + ss) + rng.normal(0, NOISE, tt.shape[0])
        qq = np.where(rng.random(tt.shape[0]) < 0.0005, 2, 0).astype(np.int16)
        if digits is not None and digits >= 0:  # a transmitter's resolution, not full double precision
            vv = np.round(vv, digits)
        elif digits is not None:  # a binary step 2^digits: the double's low mantissa bits zero
            vv = quantize(vv, np.full(vv.shape, 2.0**digits))  # as hazmon's collector stores values
        if bits is not None:
            bits.append(entropy_bits(vv, digits))
        times = [epoch + timedelta(microseconds=int(x)) for x in tt.tolist()]
        for i in range(0, tt.shape[0], BATCH):
            c.execute(
                "INSERT INTO readings (time, sensor_id, value, quality) "
                "SELECT * FROM unnest(%s::timestamptz[], %s::int[], %s::float8[], %s::int2[])",
                (
                    times[i : i + BATCH],
                    ss[i : i + BATCH].tolist(),
                    vv[i : i + BATCH].tolist(),
                    qq[i : i + BATCH].tolist(),
                ),
            )
        n += tt.shape[0]
        print(f"  day {d + 1}/{days}: {n:,} readings", flush=True)
    return n


def compress_all(c: psycopg.Connection[tuple[object, ...]]) -> list[tuple[str, float, float]]:
    """Compress every chunk of readings and the rollups; (relation, bytes before, bytes after)."""
    out = []
    for rel in RELATIONS:
        c.execute(
            "SELECT compress_chunk(ch, if_not_compressed => true) FROM show_chunks(%s::regclass) ch", (rel,)
        )
        ht = c.execute(  # a continuous aggregate's stats are its materialization hypertable's
            "SELECT coalesce((SELECT format('%%I.%%I', materialization_hypertable_schema, "
            "materialization_hypertable_name) FROM timescaledb_information.continuous_aggregates "
            "WHERE view_name = %s), %s)",
            (rel, rel),
        ).fetchone()
        assert ht is not None
        row = c.execute(
            "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
            "FROM hypertable_compression_stats(%s::regclass)",
            (str(ht[0]),),
        ).fetchone()
        before = float(str(row[0])) if row and row[0] is not None else 0.0
        after = float(str(row[1])) if row and row[1] is not None else 0.0
        out.append((rel, before, after))
    return out


def settings(c: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """The compression settings in force (segmentby / orderby), per hypertable."""
    rows = c.execute(
        "SELECT hypertable_name, attname, segmentby_column_index, orderby_column_index, orderby_asc "
        "FROM timescaledb_information.compression_settings ORDER BY 1, 3 NULLS LAST, 4"
    ).fetchall()
    return [
        f"{r[0]}: {r[1]} " + ("segmentby" if r[2] else f"orderby {'ASC' if r[4] else 'DESC'}") for r in rows
    ]


def run(dsn: str, sensors: int, days: int, digits: int | None = None) -> None:
    with _connect(dsn) as c:
        res = migrate(c, StorageSettings(mode="timescaledb", retention_days=400))
        resolution = (
            "full precision"
            if digits is None
            else f"values rounded to {digits} decimals"
            if digits >= 0
            else f"values rounded to a step of 2^{digits}"
        )
        print(
            f"TimescaleDB {res.timescaledb_version}; {sensors} sensors x {days} days at 1/min, {resolution}"
        )
        now = c.execute("SELECT now()").fetchone()
        assert now is not None and isinstance(now[0], datetime)
        end = now[0].astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
        start_us = (end - timedelta(days=days) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
            microseconds=1
        )
        ids = _sensors(c, sensors)
        t0 = time.perf_counter()
        bits: list[float] = []
        n = load(c, ids, start_us, days, digits, bits=bits)
        t_load = time.perf_counter() - t0
        refresh_rollups(
            c, [(start_us, start_us + days * 1440 * MINUTE_US - 1)], mode="timescaledb", now=now[0]
        )
        t_refresh = time.perf_counter() - t0 - t_load
        stats = compress_all(c)
        t_compress = time.perf_counter() - t0 - t_load - t_refresh
        print(
            f"loaded {n:,} readings in {t_load:.0f} s, refreshed in {t_refresh:.0f} s, "
            f"compressed in {t_compress:.0f} s"
        )
        for line in settings(c):
            print("  " + line)
        tb = ta = 0.0
        for rel, b, a in stats:
            tb, ta = tb + b, ta + a
            ratio = f"{b / a:5.1f}x" if a else "  n/a"
            print(f"{rel:<20} {b / 1e6:10.1f} MB -> {a / 1e6:8.1f} MB  {ratio}  ({a / n:5.1f} B per reading)")
        print(f"{'total':<20} {tb / 1e6:10.1f} MB -> {ta / 1e6:8.1f} MB  {tb / ta:5.1f}x")
        # what the values alone decide: readings' ratio if `value` were coded at its entropy, the
        # other columns (time, quality, the batches' metadata) as compressed here
        before, after = stats[0][1], stats[0][2]
        vb = value_bytes(c)
        floor = n * float(np.mean(bits)) / 8
        print(
            f"readings' value column compressed: {vb / 1e6:.1f} of {after / 1e6:.1f} MB, {vb / n:.2f} B per"
            f" reading; its entropy (no lossless coding goes below): {floor / n:.2f} B per reading;"
            f" readings' ratio with value at that floor: {before / (after - vb + floor):.1f}x"
            f" (with value costing nothing: {before / (after - vb):.1f}x)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--dsn", required=True, help="a TimescaleDB server (its postgres database, or the PGlite lane)"
    )
    p.add_argument("--sensors", type=int, default=500)
    p.add_argument("--days", type=int, default=2)
    p.add_argument(
        "--in-place", action="store_true", help="use the --dsn database itself (PGlite has only one)"
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    p.add_argument(
        "--round",
        type=int,
        default=None,
        metavar="DIGITS",
        help="round values to DIGITS decimals, or below 0 to a step of 2^DIGITS (default: full precision)",
    )
    p.add_argument(
        "--full-precision",
        action="store_true",
        help="store the values as generated, not at the step hazmon's collector stores them at",
    )
    a = p.parse_args()
    if a.round is None and not a.full_precision:
        # as the collector stores them (collector.value_resolution_bits): the bench's sensors
        # have a 0-20 m range, so a step of 2^-12 m
        a.round = int(math.log2(storage_step((0.0, 20.0))))
    if a.in_place:
        run(a.dsn, a.sensors, a.days, a.round)
        return
    name = f"hazmon_bench_compression_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(a.dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        run(make_conninfo(a.dsn, dbname=name), a.sensors, a.days, a.round)
    finally:
        if a.keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(a.dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
