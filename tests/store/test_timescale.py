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
from pathlib import Path

import psycopg
import pytest

from hazmon.store import StorageSettings, migrate, storage_mode, sync_registry
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
