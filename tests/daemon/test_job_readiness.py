"""A failing or late TimescaleDB job shows in the daemon's readiness answer, and a late refresh
policy's work is done by the daemon itself.

`hazmon.store.job_health` reads timescaledb_information views that only a real server fills
(the PGlite lane has no background scheduler and empty job_stats), so the readiness wiring is
tested with job rows put in front of it (`assess_jobs`, pure); the daemon's own refresh of an
overdue policy runs on the lane, where no policy ever ran.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg

from hazmon.collector import Metrics
from hazmon.config import DatabaseSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.plant.reading import to_us
from hazmon.store import StorageSettings, migrate, refresh_rollups, sync_registry
from hazmon.store.rollups import JobRow, assess_jobs
from hazmon.upkeep import Upkeep
from tests.conftest import EXAMPLE_PLANT
from tests.daemon.helpers import daemon_config, mqtt_only, mqtt_subscribed
from tests.store.test_timescale import timescale_dsn

__all__ = ["timescale_dsn"]  # the PGlite TimescaleDB fixture

NOW = datetime(2026, 12, 4, 7, 2, tzinfo=UTC)
PORTAL = 'cannot drop portal "" while it is being set up'


def _job(job_id: int, proc: str, rel: str, every: timedelta, **kw: object) -> JobRow:
    base: dict[str, object] = {
        "scheduled": True,
        "config": {},
        "last_successful_finish": NOW - every / 2,
        "last_run_status": "Success",
        "total_runs": 10,
        "total_failures": 0,
        "next_start": NOW + every / 2,
    }
    base.update(kw)
    return JobRow(job_id, proc, rel, every, **base)  # type: ignore[arg-type]


REFRESH_1M = _job(1000, "policy_refresh_continuous_aggregate", "readings_1m", timedelta(minutes=1))
REFRESH_1H_FAILING = _job(
    1001,
    "policy_refresh_continuous_aggregate",
    "readings_1h",
    timedelta(minutes=30),
    last_successful_finish=None,
    last_run_status="Failed",
    total_runs=7,
    total_failures=7,
    last_error=PORTAL,
)
COMPRESSION_OK = _job(1002, "policy_compression", "readings", timedelta(hours=12))
COMPRESSION_LATE = _job(
    1002,
    "policy_compression",
    "readings",
    timedelta(hours=12),
    last_successful_finish=NOW - timedelta(days=2),
    total_runs=3,
)


async def _ready(port: int) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as resp:
        return resp.status, json.loads(await resp.text())


async def _metrics(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        return await resp.text()


async def test_the_readiness_answer_names_failing_and_late_jobs(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as d:
        await mqtt_subscribed(d)
        assert d.upkeep is not None
        status, body = await _ready(d.http_port)
        checks = body["checks"]
        assert isinstance(checks, dict) and checks["db_jobs"]["ok"] is True  # nothing read yet

        # a refresh policy failing (the error seen on TimescaleDB 2.28.3): shown, still ready
        d.upkeep.job_health = assess_jobs([REFRESH_1M, REFRESH_1H_FAILING, COMPRESSION_OK], NOW)
        d.upkeep.refreshed_overdue = ("readings_1h",)
        status, body = await _ready(d.http_port)
        jobs = body["checks"]["db_jobs"]  # type: ignore[index]
        assert status == 200 and body["status"] == "ready"
        assert jobs == {
            "ok": True,
            "detail": "refresh:readings_1h: failing (last success never, 7 of 7 runs failed, "
            f"last error: {PORTAL})",
            "refreshed_by_daemon": ["readings_1h"],
        }
        metrics = await _metrics(d.http_port)
        assert 'hazmon_db_job_problem{job="refresh:readings_1h"} 1.0' in metrics
        assert 'hazmon_db_job_failures{job="refresh:readings_1h"} 7.0' in metrics
        assert 'hazmon_db_job_problem{job="refresh:readings_1m"} 0.0' in metrics

        # compression two days behind a 12-hour schedule: the daemon cannot do that work, not ready
        d.upkeep.job_health = assess_jobs([REFRESH_1M, COMPRESSION_LATE], NOW)
        d.upkeep.refreshed_overdue = ()
        status, body = await _ready(d.http_port)
        assert status == 503 and body["degraded"] == ["db_jobs"]
        late = (NOW - timedelta(days=2)).isoformat()
        assert body["checks"]["db_jobs"] == {  # type: ignore[index]
            "ok": False,
            "detail": f"compression:readings: late (last success {late}, 0 of 3 runs failed)",
        }

        d.upkeep.job_health = assess_jobs([REFRESH_1M, COMPRESSION_OK], NOW)
        status, body = await _ready(d.http_port)
        assert status == 200 and body["checks"]["db_jobs"] == {  # type: ignore[index]
            "ok": True,
            "detail": "2 TimescaleDB jobs on time",
        }


async def test_the_daemon_refreshes_a_rollup_whose_policy_has_not_run(timescale_dsn: str) -> None:
    """On the lane no policy ever runs (no scheduler): every refresh policy is late, and one
    upkeep round does their work, so a late minute inside the 1-minute policy's window lands."""
    from hazmon.plant import load

    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as c:
        migrate(c, StorageSettings(retention_days=90, compress_after_days=3))
        c.autocommit = False
        sid = sync_registry(c, load(EXAMPLE_PLANT))["GT-301"]
        c.commit()
        c.autocommit = True
        row = c.execute("SELECT now()").fetchone()
        assert row is not None and isinstance(row[0], datetime)
        now = row[0]
        recent = now - timedelta(minutes=2)
        ins = "INSERT INTO readings (time, sensor_id, value, quality) VALUES (%s, %s, 1.0, 0)"
        c.execute(ins, (recent, sid))
        refresh_rollups(c, [(to_us(recent), to_us(recent))], mode="timescaledb", now=now)  # watermark
        t = (now - timedelta(minutes=90)).replace(second=0, microsecond=0)
        c.execute(ins, (t, sid))  # written without a readings_dirty row: only a policy would see it
        c.execute("DELETE FROM readings_dirty")
        q = "SELECT count(*) FROM readings_1m WHERE sensor_id = %s AND bucket = %s"
        assert c.execute(q, (sid, t)).fetchone() == (0,)
    upkeep = Upkeep(DatabaseSettings(dsn=timescale_dsn, retention_days=90), Metrics(), "timescaledb")
    await upkeep.once()
    assert set(upkeep.refreshed_overdue) == {"readings_1m", "readings_1h", "readings_1d_counts"}
    with psycopg.connect(timescale_dsn, autocommit=True, prepare_threshold=None) as c:
        assert c.execute(q, (sid, t)).fetchone() == (1,)
    ok, detail = upkeep.jobs_ready()
    assert not ok  # compression and retention never ran either: the daemon cannot do that work
    assert "refresh:readings_1m: never ran" in str(detail["detail"])
    assert detail["refreshed_by_daemon"] == list(upkeep.refreshed_overdue)
