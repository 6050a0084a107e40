"""The bureau's aggregates as a TimescaleDB hypertable (PGlite TimescaleDB build, as tests/store/test_timescale.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from hazmon.store import StorageSettings, migrate
from tests.store.test_timescale import timescale_dsn

__all__ = ["timescale_dsn"]  # the module's fixture: PGlite with TimescaleDB, skipped without Node.js


def test_bureau_aggregate_is_a_compressed_hypertable_with_retention(timescale_dsn: str) -> None:
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as c:
        res = migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        assert res.mode == "timescaledb"
        hyper = {
            r[0]
            for r in c.execute("SELECT hypertable_name FROM timescaledb_information.hypertables").fetchall()
        }
        assert "bureau_aggregate" in hyper
        dims = c.execute(
            "SELECT column_name, time_interval FROM timescaledb_information.dimensions"
            " WHERE hypertable_name = 'bureau_aggregate'"
        ).fetchall()
        assert dims == [("bucket", timedelta(days=7))]
        seg = c.execute(
            "SELECT attname, segmentby_column_index, orderby_column_index"
            " FROM timescaledb_information.compression_settings WHERE hypertable_name = 'bureau_aggregate'"
            " ORDER BY attname"
        ).fetchall()
        assert ("enterprise_id", 1, None) in seg and ("sensor", 2, None) in seg and ("bucket", None, 1) in seg
        jobs = c.execute(
            "SELECT proc_name, config->>'compress_after', config->>'drop_after' FROM timescaledb_information.jobs"
            " WHERE hypertable_name = 'bureau_aggregate' ORDER BY proc_name"
        ).fetchall()
        assert jobs == [("policy_compression", "7 days", None), ("policy_retention", None, "730 days")]
        # the ingest's insert, twice (a replay): stored once, also into a compressed chunk
        t = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
        sql = (
            "INSERT INTO bureau_aggregate (enterprise_id, sensor, bucket, count, min, mean, max, last,"
            " worst_quality) VALUES ('e1', 'TT-101', %s, 60, 1, 2, 3, 2, 'good')"
            " ON CONFLICT (enterprise_id, sensor, bucket) DO NOTHING"
        )
        c.execute(sql, (t,))
        c.execute("SELECT compress_chunk(ch) FROM show_chunks('bureau_aggregate') ch")
        c.execute(sql, (t,))
        c.execute(sql, (t + timedelta(minutes=1),))
        assert c.execute("SELECT count(*) FROM bureau_aggregate").fetchone() == (2,)
        assert migrate(c, StorageSettings(retention_days=90, compress_after_days=3)).applied == ()
