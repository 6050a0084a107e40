"""An impossible value (1e308, -5e30 on a 0-10 ppm detector) is stored as out of range, never drawn.

End to end: real Mosquitto, the daemon, PostgreSQL. The value is kept with quality
OUT_OF_RANGE (3); the raw series, the rollups and the latest-reading view leave it out
as a measurement; the rules' out-of-range finding still becomes an alarm. A value in
the NAMUR NE 43 band just above the range (a saturated transmitter) is a measurement.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from hazmon.daemon import Daemon
from hazmon.plant import Plant, Quality, Reading, from_us
from hazmon.plant.reading import measuring_band
from tests.daemon.helpers import (
    Publisher,
    count,
    daemon_config,
    json_payload,
    mqtt_only,
    mqtt_subscribed,
    stored_value,
    wait_for,
)

TAG = "AT-103"  # chlorine, 0-10 ppm


def _one(dsn: str, sql: str, *args: object) -> tuple[object, ...]:
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute(sql, args).fetchone()
    assert row is not None
    return tuple(row)


def test_measuring_band_is_the_range_widened_by_namur_ne43() -> None:
    lo, hi = measuring_band((0.0, 16.0))  # a 16 ppm span: 1 ppm per mA
    assert (lo, hi) == (-0.2, 16.5)  # 3.8 mA and 20.5 mA


async def test_impossible_values_are_stored_out_of_range_and_left_out_of_trends(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    sensor = next(s for s in plant.sensors() if s.tag == TAG)
    assert sensor.range == (0.0, 10.0)
    topic = sensor.binding.topic  # type: ignore[union-attr]
    now = time.time_ns() // 1000
    sent = {0.5: Quality.GOOD, 1e308: Quality.OUT_OF_RANGE, -5e30: Quality.OUT_OF_RANGE}
    sent |= {0.6: Quality.GOOD, 10.2: Quality.GOOD}  # 10.2: saturated, inside the NE 43 band
    sent |= {-5.0: Quality.OUT_OF_RANGE, 1e308 / 2: Quality.OUT_OF_RANGE}
    readings = [Reading(TAG, now - 20_000_000 + i * 2_000_000, v) for i, v in enumerate(sent)]
    async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as daemon:
        await mqtt_subscribed(daemon)
        pub = Publisher(*mqtt_broker)
        for r in readings:
            pub.publish(topic, json_payload(r))
        pub.close()
        await wait_for(lambda: count(db_dsn) == len(readings), "every reading stored")
        await wait_for(
            lambda: (
                _one(
                    db_dsn,
                    "SELECT count(*) FROM alarm WHERE sensor = %s AND condition = %s",
                    TAG,
                    "out_of_range",
                )[0]
                == 1
            ),
            "the out-of-range finding recorded as an alarm",
        )
    with psycopg.connect(db_dsn, autocommit=True) as c:
        stored = dict(
            c.execute(
                "SELECT r.value, r.quality FROM readings r JOIN sensor s ON s.id = r.sensor_id WHERE s.tag = %s",
                (TAG,),
            ).fetchall()
        )
        # a measurement at its step (`storage_step`), an out-of-range value as it came
        assert stored == {stored_value(TAG, v) if q == Quality.GOOD else v: int(q) for v, q in sent.items()}
        sid = _one(db_dsn, "SELECT id FROM sensor WHERE tag = %s", TAG)[0]
        t0, t1 = from_us(readings[0].ts_us - 1), from_us(readings[-1].ts_us + 1)
        raw = c.execute(
            "SELECT min(min), max(max), sum(1) FROM hazmon_series(%s, %s, %s, 1000)", ([sid], t0, t1)
        ).fetchone()
        top = stored_value(TAG, 10.2)
        assert raw is not None and (raw[0], raw[1]) == (0.5, top), raw
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (t0, t1))
        rolled = c.execute(
            "SELECT min(min), max(max), sum(n) FROM readings_1m WHERE sensor_id = %s", (sid,)
        ).fetchone()
        assert rolled is not None and (rolled[0], rolled[1], rolled[2]) == (0.5, top, 3), rolled
        minute = c.execute(
            "SELECT min(min), max(max) FROM hazmon_series(%s, %s, %s, 60000)", ([sid], t0, t1)
        ).fetchone()
        assert minute is not None and (minute[0], minute[1]) == (0.5, top), minute
        latest = c.execute(
            "SELECT value, status, limit_state FROM hazmon_sensor_latest WHERE tag = %s", (TAG,)
        ).fetchone()
        assert latest is not None and latest[1:] == ("out_of_range", None), latest
