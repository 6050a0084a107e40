"""The database away: the daemon starts anyway, says what is degraded, and logs an outage twice.

PostgreSQL is reached through a TCP proxy the test cuts and restores (tests/daemon/proxy.py);
real Mosquitto, real HTTP server.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import structlog

from hazmon.alarms import AlarmSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant, Reading
from tests.conftest import free_port
from tests.daemon.helpers import Publisher, daemon_config, json_payload, mqtt_only, mqtt_subscribed, wait_for
from tests.daemon.proxy import CuttableProxy


def _via(dsn: str, port: int) -> str:
    return dsn.replace("127.0.0.1:5432", f"127.0.0.1:{port}")


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, json.loads(await resp.text())


def _scalar(dsn: str, sql: str, *args: object) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(sql, args).fetchone()
    assert row is not None
    return int(row[0])


def _topic(plant: Plant, tag: str) -> str:
    return next(s.binding.topic for s in plant.sensors() if s.tag == tag)  # type: ignore[union-attr]


async def test_daemon_starts_with_the_database_down_spools_and_catches_up(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    assert "127.0.0.1:5432" in db_dsn
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    cfg = daemon_config(tmp_path, db_dsn, plant)
    async with Daemon(cfg, plant):  # an earlier run: the registry cache a restart falls back on
        pass
    proxy = CuttableProxy("127.0.0.1", 5432)
    await proxy.start()
    await proxy.cut()  # closed when the daemon starts (a crash and restart during an outage)
    cfg = replace(cfg, database=replace(cfg.database, dsn=_via(db_dsn, proxy.port)))
    d = Daemon(cfg, plant)
    with structlog.testing.capture_logs() as logs:
        await d.start()  # before the fix: OperationalError from the alarm service's writer connection
        try:
            assert d.w is not None
            status, ready = await _get(d.http_port, "/readyz")
            assert status == 503, ready
            assert {"database", "alarms"} <= set(ready["degraded"]), ready
            assert ready["checks"]["alarms"]["started"] is False
            live, _ = await _get(d.http_port, "/healthz")
            assert live == 200  # alive: a restart would not bring the database back

            await mqtt_subscribed(d)
            pub = Publisher(*mqtt_broker)
            now = time.time_ns() // 1000
            normal = [Reading("AT-103", now - 60_000_000 + i * 2_000_000, 0.1) for i in range(20)]
            for r in normal:
                pub.publish(_topic(plant, "AT-103"), json_payload(r))
            # 3 ppm of chlorine, over the GB/T 50493 setpoints, longer than the on-delay: an alarm
            leak = [Reading("AT-102", ts, 3.0) for ts in range(now - 8_000_000, now + 1, 2_000_000)]
            for r in leak:
                pub.publish(_topic(plant, "AT-102"), json_payload(r))
            pub.close()
            w = d.w
            n = len(normal) + len(leak)
            await wait_for(lambda: w.spool.rows >= n, "the readings spooled while the database is down")
            await wait_for(
                lambda: d._failures["alarms_start"].count >= 3, "the alarm service retrying its start"
            )
            assert d._failures["alarms_start"].failing

            await proxy.restore()
            await wait_for(
                lambda: _scalar(db_dsn, "SELECT count(*) FROM readings") == n, "the spooled readings stored"
            )
            await wait_for(d._alarms_started.is_set, "the alarm service started")
            await wait_for(
                lambda: _scalar(db_dsn, "SELECT count(*) FROM alarm WHERE sensor = %s", "AT-102") >= 1,
                "the alarm raised while the database was down recorded",
            )
            await wait_for(lambda: w.writer.db_up, "the writer connected")
            status, ready = await _get(d.http_port, "/readyz")
            assert status == 200, ready
            assert ready["degraded"] == []
        finally:
            await d.stop()
            await proxy.cut()
    waiting = [e for e in logs if e.get("stage") == "alarms_start"]  # one line at each end of the wait
    assert len(waiting) == 2, waiting
    assert "failing" in waiting[0]["event"] and "recovered" in waiting[1]["event"]
    assert waiting[1]["failed_attempts"] >= 3


async def test_a_failing_tick_is_logged_when_it_starts_and_when_it_ends(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    proxy = CuttableProxy("127.0.0.1", 5432)
    await proxy.start()
    cfg = daemon_config(tmp_path, _via(db_dsn, proxy.port), plant)
    # the alarm service re-reads assessments at every tick: the tick needs the database
    cfg = replace(cfg, alarms=AlarmSettings(assessment_check_s=0.5))
    d = Daemon(cfg, plant)
    await d.start()
    try:
        assert d.w is not None
        m = d.w.metrics

        def tick_errors() -> float:
            return m.get("hazmon_pipeline_errors_total", {"stage": "tick"})

        with structlog.testing.capture_logs() as logs:
            await proxy.cut()
            await wait_for(lambda: tick_errors() >= 5, "five failed ticks")
            await proxy.restore()
            seen = tick_errors()
            await wait_for(
                lambda: any("recovered" in str(e["event"]) and e.get("stage") == "tick" for e in logs),
                "a tick that works again",
            )
    finally:
        await d.stop()
        await proxy.cut()
    lines = [e for e in logs if "rules/alarms tick" in str(e["event"])]
    assert len(lines) == 2, [(e["event"], e.get("log_level")) for e in lines]
    start, end = lines
    assert start["log_level"] == "error" and "exc_info" not in start  # an outage, not a bug
    assert end["log_level"] == "info" and end["failed_attempts"] >= 5
    assert seen >= 5  # every failed attempt counted


async def test_readyz_names_the_database_and_a_disconnected_source(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    # the broker is a port nobody listens on: the source stays disconnected
    plant = mqtt_only(
        example_plant.retarget(
            topic_prefix=topic_prefix, mqtt_urls={"gds": f"mqtt://127.0.0.1:{free_port()}"}
        )
    )
    proxy = CuttableProxy("127.0.0.1", 5432)
    await proxy.start()
    cfg = daemon_config(tmp_path, _via(db_dsn, proxy.port), plant)
    d = Daemon(cfg, plant)
    await d.start()
    try:
        await proxy.cut()
        status, ready = await _get(d.http_port, "/readyz")
        assert status == 503, ready
        assert ready["status"] == "degraded"
        assert ready["degraded"] == ["database", "source:gds"], ready
        assert ready["checks"]["source:gds"]["connected"] is False
        assert ready["checks"]["database"]["reachable"] is False
        assert ready["checks"]["spool"]["ok"] is True
        for path in ("/healthz", "/livez"):  # liveness: the process and its tasks run
            live, body = await _get(d.http_port, path)
            assert live == 200, body

        await proxy.restore()
        deadline = time.monotonic() + 30  # the probe keeps its answer for 5 s
        while time.monotonic() < deadline:
            status, ready = await _get(d.http_port, "/readyz")
            if "database" not in ready["degraded"]:
                break
            await asyncio.sleep(0.5)
        assert status == 503 and ready["degraded"] == ["source:gds"], ready
    finally:
        await d.stop()
        await proxy.cut()
