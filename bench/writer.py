"""Batch writer vs plain server-side COPY, same rows, same run (issue: foundation).

Writes N readings (default 2,000,000) of the example plant's sensors through
hazmon's writer (Reading objects -> columns -> binary COPY, in batches as the
daemon flushes them) and, alternately in the same run, the same rows with a
server-side ``COPY readings FROM '<file>' (FORMAT binary)``. Each round starts
from an empty, vacuumed table. Prints rows/s of both and their ratio; the goal
is a ratio of at least 0.8.

    .venv/bin/python bench/writer.py [--rows 2000000] [--batch 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid

import psycopg

from hazmon.plant import Quality, Reading, load
from hazmon.store import (
    ReadingColumns,
    StorageSettings,
    encode_copy_binary,
    migrate,
    sync_registry,
    write_readings,
)

ADMIN = os.environ.get("HAZMON_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def readings(tags: list[str], n: int) -> list[Reading]:
    t0 = 1_764_320_400_000_000
    k = len(tags)
    return [
        Reading(tags[i % k], t0 + (i // k) * 1_000_000, (i % 1000) * 0.01, Quality.GOOD) for i in range(n)
    ]


def reset(c: psycopg.Connection[tuple[object, ...]]) -> None:
    c.execute("TRUNCATE readings")
    c.execute("VACUUM ANALYZE readings")
    c.execute("CHECKPOINT")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    name = f"hazmon_bench_{uuid.uuid4().hex[:8]}"
    base = ADMIN.rsplit("/", 1)[0]
    with psycopg.connect(ADMIN, autocommit=True) as adm:
        adm.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(f"{base}/{name}") as c:
            migrate(c, StorageSettings(mode="plain"))
            c.autocommit = False
            ids = sync_registry(c, load("examples/plant.yaml"))
            c.commit()
            rs = readings(sorted(ids), a.rows)
            with tempfile.NamedTemporaryFile(suffix=".copy", delete=False, dir="/tmp") as f:
                f.write(encode_copy_binary(ReadingColumns.from_readings(rs, ids)))
                path = f.name
            os.chmod(path, 0o644)
            c.autocommit = True
            writer_s: list[float] = []
            copy_s: list[float] = []
            for _ in range(a.rounds):
                reset(c)
                t = time.perf_counter()
                c.execute(f"COPY readings (time, sensor_id, value, quality) FROM '{path}' (FORMAT BINARY)")
                copy_s.append(time.perf_counter() - t)
                assert c.execute("SELECT count(*) FROM readings").fetchone() == (a.rows,)

                reset(c)
                c.autocommit = False
                t = time.perf_counter()
                for i in range(0, a.rows, a.batch):
                    write_readings(c, ReadingColumns.from_readings(rs[i : i + a.batch], ids))
                writer_s.append(time.perf_counter() - t)
                c.autocommit = True
                assert c.execute("SELECT count(*) FROM readings").fetchone() == (a.rows,)
            os.unlink(path)
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as adm:
            adm.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    w, cp = statistics.median(writer_s), statistics.median(copy_s)
    print(
        f"rows: {a.rows:,}  batch: {a.batch:,}  rounds: {a.rounds} "
        "(medians; index (sensor_id, time) in place)"
    )
    print(
        f"server-side COPY : {a.rows / cp:12,.0f} rows/s  ({cp:.2f} s)  runs: {[round(x, 2) for x in copy_s]}"
    )
    print(
        f"hazmon writer    : {a.rows / w:12,.0f} rows/s  ({w:.2f} s)  runs: {[round(x, 2) for x in writer_s]}"
    )
    print(f"ratio writer / COPY: {cp / w:.2f}  (goal >= 0.80)")


if __name__ == "__main__":
    main()
