"""A stop while findings are being recorded loses none of them (real PostgreSQL, real Mosquitto).

The alarm table is locked by another transaction so that the daemon's alarm service is caught in
the middle of recording an alarm when the stop begins; the lock is let go once the stop is under
way. The alarm must be in the table after the stop. (Before the fix, the stop cancelled the
recording halfway and the findings were neither recorded nor kept for the stop's final pass.)
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg

from hazmon.daemon import Daemon
from hazmon.plant import Plant, Reading
from tests.daemon.helpers import Publisher, daemon_config, json_payload, mqtt_only, wait_for


def _alarms(dsn: str, tag: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM alarm WHERE sensor = %s", (tag,)).fetchone()
    assert row is not None
    return int(row[0])


def _waiting_on_alarm_lock(dsn: str) -> bool:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'alarm'::regclass"
        ).fetchone()
    return row is not None and int(row[0]) > 0


async def test_an_alarm_being_recorded_when_the_stop_begins_is_recorded(
    example_plant: Plant,
    db_dsn: str,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    tag = "AT-102"
    topic = next(s.binding.topic for s in plant.sensors() if s.tag == tag)  # type: ignore[union-attr]
    d = Daemon(daemon_config(tmp_path, db_dsn, plant), plant)
    await d.start()
    blocker = await psycopg.AsyncConnection.connect(db_dsn)
    stopping: asyncio.Task[None] | None = None
    try:
        await blocker.execute("LOCK TABLE alarm IN ACCESS EXCLUSIVE MODE")
        pub = Publisher(*mqtt_broker)
        now = time.time_ns() // 1000
        # 3 ppm of chlorine, over the GB/T 50493 setpoints, for longer than the 3 s on-delay
        for ts in range(now - 8_000_000, now + 1, 2_000_000):
            pub.publish(topic, json_payload(Reading(tag, ts, 3.0)))
        pub.flush()
        pub.c.loop_stop()
        pub.c.disconnect()
        await wait_for(lambda: _waiting_on_alarm_lock(db_dsn), "the alarm service waiting on the lock")
        stopping = asyncio.create_task(d.stop())
        assert d.w is not None
        writer = next(t for t in d._tasks if t.get_name() == "writer")
        await wait_for(writer.done, "the stop past the collectors and the writer")
        await asyncio.sleep(0.5)  # the stop is now at the alarms
        await blocker.rollback()
        done, _ = await asyncio.wait({stopping}, timeout=60)  # a deadline against hanging
        assert done, "the daemon's stop did not end"
        stopping.result()
    finally:
        await blocker.close()
        if stopping is None:
            await d.stop()
    assert _alarms(db_dsn, tag) >= 1
