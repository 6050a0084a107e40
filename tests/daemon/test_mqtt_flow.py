"""The example plant's MQTT sensors flow into `readings` with exact values and timestamps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from hazmon.daemon import Daemon
from hazmon.plant import Plant, Quality, Reading
from tests.daemon.helpers import (
    as_rows,
    count,
    daemon_config,
    mqtt_only,
    mqtt_topics,
    publish_readings,
    rows,
    wait_for,
)

T0 = 1_795_860_000_123_456  # 2026-11-28T...: µs precision on purpose


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_example_plant_mqtt_flows_into_readings_exactly(
    example_plant: Plant,
    db_dsn: str,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    tmp_path: Path,
    protocol: str,
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    plant = replace(plant, mqtt=tuple(replace(b, protocol=protocol) for b in plant.mqtt))
    sensors = plant.sensors()
    sent: list[Reading] = []
    for k in range(5):
        for i, s in enumerate(sensors):
            q = Quality(k % 3) if i % 7 == 0 else Quality.GOOD
            sent.append(Reading(s.tag, T0 + k * 1_000_000 + i, 0.1 * i + k / 3, q))
    async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as d:
        mq = d.w.inputs[0]  # type: ignore[union-attr]
        await wait_for(mq.subscribed.is_set, "subscription")  # type: ignore[attr-defined]
        publish_readings(mqtt_broker, mqtt_topics(sensors), sent)
        await wait_for(lambda: count(db_dsn) >= len(sent), "all readings in the database")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{d.http_port}/metrics") as resp:
                body = await resp.text()
            async with http.get(f"http://127.0.0.1:{d.http_port}/healthz") as resp:
                health = await resp.text()
        await d.upkeep_once()  # what the plain-mode upkeep task does every minute
    assert rows(db_dsn) == as_rows(sent)
    # the rollups cover exactly what was committed (late or replayed minutes included)
    assert count(db_dsn, "SELECT sum(n) FROM readings_1m") == len(sent)
    assert count(db_dsn, "SELECT sum(n) FROM readings_1h") == len(sent)
    assert f'hazmon_readings_received_total{{source="gds"}} {float(len(sent))}' in body  # exposition floats
    assert '"status": "ok"' in health
    assert '"gds": true' in health
