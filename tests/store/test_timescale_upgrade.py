"""An existing TimescaleDB database (aggregates without the quality count) upgraded in place:
the aggregates are re-created, materialized over the readings already there, and get their
policies once (PGlite TimescaleDB build, test-only; its own server, so a fresh database)."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta

import psycopg
import pytest

from hazmon.plant import load
from hazmon.store import StorageSettings, sync_registry
from tests.conftest import EXAMPLE_PLANT
from tests.store.test_timescale import timescale_dsn

__all__ = ["timescale_dsn"]


def test_an_existing_timescaledb_database_is_upgraded_with_its_history(
    timescale_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mig = importlib.import_module("hazmon.store.migrate")
    every = mig.migrations()
    # 0405 builds readings_1d_counts on the readings_1h 0003 re-creates: it comes after, as in a real upgrade
    later = ("0003_rollups", "0403_sensor_health_rollups", "0405_health_day_counts_timescale")
    monkeypatch.setattr(mig, "migrations", lambda: [m for m in every if m.version not in later])
    monkeypatch.setattr(mig, "ensure_policies", lambda conn, s: [])  # the old start did its own
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as c:
        mig.migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        c.execute("SELECT add_compression_policy('readings', compress_after => INTERVAL '3 days')")
        c.execute("SELECT add_retention_policy('readings', drop_after => INTERVAL '90 days')")
        c.autocommit = False
        sid = sync_registry(c, load(EXAMPLE_PLANT))["LT-101"]
        c.commit()
        c.autocommit = True
        row = c.execute("SELECT date_trunc('hour', now()) - interval '5 hours'").fetchone()
        assert row is not None and isinstance(row[0], datetime)
        t0 = row[0]
        with c.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings (time, sensor_id, value, quality) VALUES (%s, %s, 1.0, %s)",
                [(t0 + timedelta(minutes=k), sid, 2 if k % 10 == 0 else 0) for k in range(120)],
            )
        c.execute("CALL refresh_continuous_aggregate('readings_1m', NULL, date_trunc('minute', now()))")
        old_jobs = {r[0] for r in c.execute("SELECT job_id FROM timescaledb_information.jobs").fetchall()}
        monkeypatch.undo()
        res = mig.migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        assert res.applied == later
        # the history is in the new aggregates, materialized (not only computed in real time)
        got = c.execute(
            "SELECT count(*), sum(n), sum(bad) FROM readings_1m WHERE sensor_id = %s", (sid,)
        ).fetchone()
        assert got == (120, 120, 12)
        mat = c.execute(
            "SELECT materialization_hypertable_schema || '.' || materialization_hypertable_name "
            "FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_1m'"
        ).fetchone()
        assert mat is not None
        assert c.execute(f"SELECT count(*) FROM {mat[0]}").fetchone() == (120,)
        assert c.execute(
            "SELECT sum(n), sum(bad) FROM readings_1h WHERE sensor_id = %s", (sid,)
        ).fetchone() == (120, 12)
        # and the day counts (0405, real-time over what is not materialized: today's hours)
        assert c.execute(
            "SELECT sum(n), sum(bad) FROM readings_1d_counts WHERE sensor_id = %s", (sid,)
        ).fetchone() == (120, 12)
        # one refresh policy per aggregate (the old ones went with the old aggregates)
        refresh = c.execute(
            "SELECT count(*) FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ).fetchone()
        assert refresh == (3,)
        new_jobs = {r[0] for r in c.execute("SELECT job_id FROM timescaledb_information.jobs").fetchall()}
        # refresh x3 (new), compression and retention of each rollup (readings_1d_counts included)
        assert len(new_jobs - old_jobs) == 9
        assert len(old_jobs - new_jobs) == 2  # the old refresh policies; the raw data's jobs are kept
