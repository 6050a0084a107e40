"""Every panel's SQL on TimescaleDB (PGlite build, test-only): hypertable, continuous
aggregates and TimescaleDB's own time_bucket instead of the plain-mode tables.

PGlite crashes on COPY, so a few readings go in with INSERT; the point is that
every query plans and runs on the continuous aggregates without error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hazmon.grafana.build import BOARDS, render_json
from hazmon.grafana.macros import TimeRange
from hazmon.grafana.queries import panel_queries, variable_combinations
from hazmon.plant import Plant
from hazmon.store import StorageSettings, migrate, sync_registry
from tests.store.test_timescale import timescale_dsn

__all__ = ["timescale_dsn"]  # the fixture, shared with the store's TimescaleDB test


@pytest.mark.slow
def test_every_panel_query_runs_on_timescaledb(timescale_dsn: str, example_plant: Plant) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(timescale_dsn, autocommit=True) as c:
        res = migrate(c, StorageSettings())
        assert res.mode == "timescaledb"
        c.autocommit = False
        ids = sync_registry(c, example_plant)
        c.commit()
        c.autocommit = True
        for tag in ("LT-101", "AT-101", "GT-201"):
            for k in range(30):
                c.execute(
                    "INSERT INTO readings (time, sensor_id, value, quality) VALUES (%s, %s, %s, 0) "
                    "ON CONFLICT DO NOTHING",
                    (now - timedelta(minutes=k), ids[tag], 1.0 + k / 100),
                )
        for view in ("readings_1m", "readings_1h"):
            c.execute(f"CALL refresh_continuous_aggregate('{view}', NULL, NULL)")
        # $__timeGroup with the TimescaleDB option resolves to the extension's function
        assert c.execute("SELECT time_bucket('300.000s', now()) IS NOT NULL").fetchone() == (True,)

        def run(sql: str) -> list[tuple[Any, ...]]:
            return c.execute(sql.encode()).fetchall()

        failures: list[str] = []
        executed = 0
        for span in (timedelta(hours=1), timedelta(days=30)):
            rng = TimeRange(now - span, now)
            for b in BOARDS:
                model = render_json(b, "zh")
                for combo in variable_combinations(model, rng, run, limit=3):
                    for q in panel_queries(model):
                        try:
                            run(q.expand(rng, combo))
                            executed += 1
                        except psycopg.Error as e:
                            failures.append(f"{q.key} {span}: {str(e).strip()}")
        assert failures == []
        assert executed >= 2 * sum(len(panel_queries(render_json(b, "zh"))) for b in BOARDS)
        series = run(
            f"SELECT count(*) FROM hazmon_series(ARRAY[{ids['LT-101']}], now() - interval '2 hours', now(), 60000)"
        )
        assert series[0][0] >= 29  # one-minute buckets from the continuous aggregate
