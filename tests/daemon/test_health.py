"""/healthz answers 503 naming the part of the pipeline that stopped, and 200 while all run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from hazmon.daemon import Daemon
from hazmon.plant import Plant
from tests.daemon.helpers import daemon_config, mqtt_only


async def _health(port: int) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as resp:
        return resp.status, json.loads(await resp.text())


async def test_healthz_is_503_when_a_pipeline_task_has_stopped(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as d:
        status, body = await _health(d.http_port)
        assert status == 200, body
        assert body["stopped_tasks"] == []
        tick = next(t for t in d._tasks if t.get_name() == "tick")
        tick.cancel()  # what a crashed staleness/escalation ticker looks like from outside
        await asyncio.sleep(0.1)
        status, body = await _health(d.http_port)
        assert status == 503, body
        assert body["stopped_tasks"] == ["tick"]
