"""Shared helpers of the daemon tests: config, publishing with checked return codes, polling the DB."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from hazmon.collector import CollectorSettings
from hazmon.config import DaemonConfig, DatabaseSettings, HttpSettings
from hazmon.plant import MqttBinding, Plant, Quality, Reading, Sensor, from_us, load
from hazmon.plant.reading import measuring_band, storage_step
from tests.conftest import EXAMPLE_PLANT


def daemon_config(
    tmp: Path, dsn: str, plant: Plant, collector: CollectorSettings | None = None, instance: str = ""
) -> DaemonConfig:
    return DaemonConfig(
        path=str(tmp / "hazmon.yaml"),
        plant_file=plant.path,
        data_dir=str(tmp / "data"),
        instance=instance,
        database=DatabaseSettings(dsn=dsn, migrate=True, storage_mode="plain"),
        http=HttpSettings("127.0.0.1", 0),
        collector=collector or CollectorSettings(),
    )


def mqtt_only(plant: Plant, client_id: str | None = None) -> Plant:
    """The plant without OPC UA sensors (tests of the MQTT path alone), with a unique client id."""
    sources = tuple(
        replace(hs, sensors=tuple(s for s in hs.sensors if isinstance(s.binding, MqttBinding)))
        for hs in plant.hazard_sources
    )
    cid = client_id or f"hazmon-test-{uuid.uuid4().hex[:8]}"
    return replace(
        plant, opcua=(), hazard_sources=sources, mqtt=tuple(replace(b, client_id=cid) for b in plant.mqtt)
    )


def iso(ts_us: int) -> str:
    return from_us(ts_us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_payload(r: Reading) -> bytes:
    return json.dumps({"ts": iso(r.ts_us), "v": r.value, "q": int(r.quality)}).encode()


class Publisher:
    """A paho publisher that checks every return code and waits for every PUBACK."""

    def __init__(self, host: str, port: int, v5: bool = True) -> None:
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
        )
        self.c.connect(host, port)
        self.c.loop_start()
        self.pending: list[paho.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.c.publish(topic, payload, qos=qos)
        assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS, paho.error_string(info.rc)
        self.pending.append(info)
        if len(self.pending) >= 500:
            self.flush()

    def flush(self) -> None:
        for info in self.pending:
            info.wait_for_publish(10)
            assert info.is_published()
        self.pending.clear()

    def close(self) -> None:
        self.flush()
        self.c.disconnect()
        self.c.loop_stop()


def mqtt_topics(sensors: Iterable[Sensor]) -> dict[str, str]:
    """Tag -> MQTT topic of the sensors bound to MQTT."""
    return {s.tag: s.binding.topic for s in sensors if isinstance(s.binding, MqttBinding)}


def publish_readings(broker: tuple[str, int], topics: dict[str, str], readings: Iterable[Reading]) -> None:
    """Publish ``readings`` (QoS 1, JSON) to their sensors' topics; returns with every PUBACK in."""
    pub = Publisher(*broker)
    for r in readings:
        pub.publish(topics[r.tag], json_payload(r))
    pub.close()


def rows(
    dsn: str,
    sql: str = "SELECT s.tag, r.time, r.value, r.quality FROM readings r "
    "JOIN sensor s ON s.id = r.sensor_id ORDER BY 1, 2",
) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql).fetchall()


def count(dsn: str, sql: str = "SELECT count(*) FROM readings") -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(sql).fetchone()
        assert row is not None
        return int(str(row[0]))


async def wait_for(cond: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    """Wait for a condition (a deadline against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@functools.cache
def _bands() -> dict[str, tuple[float, float]]:
    return {s.tag: measuring_band(s.range) for s in load(EXAMPLE_PLANT).sensors()}


def stored_quality(r: Reading) -> int:
    """The quality the writer stores: OUT_OF_RANGE outside the sensor's measuring band (example plant)."""
    lo, hi = _bands().get(r.tag, (-math.inf, math.inf))
    return int(Quality.OUT_OF_RANGE) if r.value < lo or r.value > hi else int(r.quality)


@functools.cache
def _steps() -> dict[str, float]:
    return {s.tag: storage_step(s.range) for s in load(EXAMPLE_PLANT).sensors()}


def stored_value(tag: str, value: float) -> float:
    """The value the writer stores: rounded to the sensor's step (`storage_step`, example plant).

    Exact: a multiple of a power of two, as `hazmon.plant.reading.quantize` computes it."""
    step = _steps().get(tag, 0.0)
    return round(value / step) * step if step and math.isfinite(value) else value


def as_rows(readings: Iterable[Reading]) -> list[tuple[object, ...]]:
    """The rows the daemon stores for ``readings`` (tag, time, value, quality as stored): a
    measurement at its sensor's step, an out-of-range value as it came."""
    out = []
    for r in readings:
        q = stored_quality(r)
        v = r.value if q == Quality.OUT_OF_RANGE else stored_value(r.tag, r.value)
        out.append((r.tag, from_us(r.ts_us), v, q))
    return sorted(out)


async def mqtt_subscribed(daemon: Any) -> None:
    """Wait until every MQTT input of a started daemon has its subscription: a broker keeps nothing
    published before it (no retained messages), so a test publishing earlier races the daemon's start."""
    assert daemon.w is not None
    for i in daemon.w.inputs:
        if hasattr(i, "subscribed"):
            await wait_for(i.subscribed.is_set, f"the subscription of {i.name}")
