"""Readings committed by one daemon reach the rollups through the next one (issue 13).

The ranges the rollups must be refreshed over are recorded in the database with the readings
(readings_dirty), not in the daemon's memory: a daemon that stops before its upkeep round (a
crash, a kill, a stop right after the commit) leaves them to the next daemon, whose first
round makes every bucket whole. Before, the next daemon started with an empty memory and the
buckets of those readings were never written.
"""

from __future__ import annotations

import time
from pathlib import Path

from hazmon.daemon import Daemon
from hazmon.plant import Plant, Quality, Reading
from tests.daemon.helpers import (
    count,
    daemon_config,
    mqtt_only,
    mqtt_subscribed,
    mqtt_topics,
    publish_readings,
    rows,
    wait_for,
)

HOUR_US = 3_600_000_000
# what the rollups must hold: per sensor and hour, n (out-of-range readings left out) and bad
RAW_HOURS = (
    "SELECT sensor_id, date_trunc('hour', time), count(*) FILTER (WHERE quality <> 3), "
    "count(*) FILTER (WHERE quality <> 0) FROM readings GROUP BY 1, 2 ORDER BY 1, 2"
)


async def test_the_next_daemon_refreshes_what_the_previous_one_committed(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    sensors = plant.sensors()
    # 90 minutes across an hour boundary, 3 hours back: a backfill / spool replay. Relative to the
    # clock only so that it stays inside the raw retention the upkeep applies (400 days).
    t0 = (time.time_ns() // 1000 // HOUR_US - 3) * HOUR_US + HOUR_US // 2
    sent = [
        Reading(s.tag, t0 + k * 120_000_000 + i, 1.0 + k % 3, Quality.BAD if k % 10 == 0 else Quality.GOOD)
        for k in range(45)
        for i, s in enumerate(sensors)
    ]
    config = daemon_config(tmp_path, db_dsn, plant)
    async with Daemon(config, plant) as first:
        await mqtt_subscribed(first)
        publish_readings(mqtt_broker, mqtt_topics(sensors), sent)
        await wait_for(lambda: count(db_dsn) >= len(sent), "all readings in the database")
    # the first daemon is gone before any upkeep round: what it knew in memory is lost
    assert count(db_dsn, "SELECT count(*) FROM readings_1m") == 0
    async with Daemon(config, plant) as second:
        await second.upkeep_once()
    assert count(db_dsn) == len(sent)
    assert rows(db_dsn, "SELECT sensor_id, bucket, n, bad FROM readings_1h ORDER BY 1, 2") == rows(
        db_dsn, RAW_HOURS
    )
    assert count(db_dsn, "SELECT count(DISTINCT bucket) FROM readings_1h") == 2  # both hours, each whole
    assert count(db_dsn, "SELECT sum(n) + sum(bad) FROM readings_1m") == count(
        db_dsn,
        "SELECT count(*) FILTER (WHERE quality <> 3) + count(*) FILTER (WHERE quality <> 0) FROM readings",
    )
    assert count(db_dsn, "SELECT count(*) FROM readings_dirty") == 0  # consumed
