from __future__ import annotations

import psycopg
import pytest
import structlog

from hazmon.store import StorageSettings, connect, migrate, storage_mode
from hazmon.store.migrate import migrations


def test_migrations_twice_in_a_row_apply_once(empty_db: str) -> None:
    with connect(empty_db) as c:
        first = migrate(c)
        second = migrate(c)
        assert first.mode == "plain"  # no timescaledb on this server
        assert first.applied == tuple(m.version for m in migrations())
        assert second.applied == ()
        rows = c.execute("SELECT version, variant FROM schema_migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in migrations()]
        assert ("0002_readings", "plain") in rows
        assert storage_mode(c) == "plain"


def test_one_log_line_says_which_mode(empty_db: str) -> None:
    with structlog.testing.capture_logs() as logs, connect(empty_db) as c:
        migrate(c)
    modes = [e for e in logs if str(e["event"]).startswith("storage mode:")]
    assert len(modes) == 1
    assert "plain PostgreSQL" in modes[0]["event"]
    assert "timescaledb extension is not installed" in modes[0]["event"]


def test_plain_mode_has_the_same_relations_as_timescale(empty_db: str) -> None:
    with connect(empty_db) as c:
        migrate(c)
        for rel in ("readings", "readings_1m", "readings_1h", "sensor", "hazard_source", "assessment"):
            assert c.execute("SELECT to_regclass(%s)", (rel,)).fetchone() == (rel,)
        cols = c.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'readings_1m' "
            "ORDER BY ordinal_position"
        ).fetchall()
        assert [r[0] for r in cols] == ["bucket", "sensor_id", "min", "max", "avg", "last", "n", "bad"]


@pytest.mark.parametrize("days", [0, 7, 29])
def test_retention_under_30_days_is_refused(days: int) -> None:
    with pytest.raises(ValueError, match=f"retention_days: {days} is under the 30 days"):
        StorageSettings(retention_days=days)


def test_retention_function_refuses_under_30_days_in_sql(db_dsn: str) -> None:
    with connect(db_dsn) as c, pytest.raises(psycopg.errors.RaiseException, match="under the 30 days"):
        c.execute("SELECT hazmon_apply_retention(10)")


def test_retention_deletes_only_older_rows(db_dsn: str) -> None:
    with connect(db_dsn) as c:
        sid = c.execute("SELECT id FROM sensor WHERE tag = 'LT-101'").fetchone()
        assert sid is not None
        c.execute(
            "INSERT INTO readings VALUES (now() - interval '40 days', %s, 1, 0), (now() - interval '20 days', %s, 2, 0)",
            (sid[0], sid[0]),
        )
        assert c.execute("SELECT hazmon_apply_retention(30)").fetchone() == (1,)
        assert c.execute("SELECT value FROM readings").fetchall() == [(2.0,)]


def test_requesting_timescaledb_without_it_fails_clearly(empty_db: str) -> None:
    with connect(empty_db) as c, pytest.raises(RuntimeError, match="extension is not installed"):
        migrate(c, StorageSettings(mode="timescaledb"))
