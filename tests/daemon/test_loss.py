"""Nothing lost: database outage (spool + replay), broker restart, daemon restart."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from hazmon.collector import CollectorSettings, SpoolSettings
from hazmon.daemon import Daemon
from hazmon.plant import MqttBinding, Plant, Reading
from tests.conftest import PrivateMosquitto
from tests.daemon.helpers import (
    Publisher,
    as_rows,
    count,
    daemon_config,
    json_payload,
    mqtt_only,
    mqtt_topics,
    rows,
    wait_for,
)
from tests.daemon.proxy import CuttableProxy

T0 = 1_795_860_000_000_000
CHECKSUM = (
    "SELECT count(*), sum(r.value * r.sensor_id), sum(extract(epoch from r.time) * 1e6 % 1e9) FROM readings r"
)


def _stream(plant: Plant, n_rounds: int, start: int = 0) -> list[Reading]:
    sensors = plant.sensors()
    return [
        Reading(s.tag, T0 + k * 1_000_000 + i, round(k * 0.37 + i * 1.1, 6))
        for k in range(start, start + n_rounds)
        for i, s in enumerate(sensors)
    ]


def _via(plant: Plant, port: int) -> Plant:
    """The example plant's MQTT sensors alone, reading from the broker (or proxy) on ``port``."""
    return mqtt_only(plant.retarget(mqtt_urls={"gds": f"mqtt://127.0.0.1:{port}"}))


@pytest.mark.slow
async def test_database_outage_spools_and_replays_every_reading_once(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    proxy = CuttableProxy("127.0.0.1", 5432)
    await proxy.start()
    dsn = db_dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    cs = CollectorSettings(batch_max_readings=200, flush_interval_s=0.2, write_timeout_s=1.0, retry_max_s=0.5)
    topics = mqtt_topics(plant.sensors())
    before, during, after = _stream(plant, 20), _stream(plant, 30, 20), _stream(plant, 20, 50)
    async with Daemon(daemon_config(tmp_path, dsn, plant, cs), plant) as d:
        assert d.w is not None
        await wait_for(d.w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
        pub = Publisher(*mqtt_broker)
        for r in before:
            pub.publish(topics[r.tag], json_payload(r))
        pub.flush()
        await wait_for(lambda: count(db_dsn) == len(before), "readings before the outage")
        await proxy.cut()
        for r in during:
            pub.publish(topics[r.tag], json_payload(r))
        pub.flush()
        w = d.w
        await wait_for(lambda: w.metrics.total("hazmon_readings_spooled_total") >= len(during), "spooling")
        assert count(db_dsn) == len(before)
        assert w.writer.db_up is False
        await proxy.restore()
        for r in after:
            pub.publish(topics[r.tag], json_payload(r))
        pub.close()
        await wait_for(lambda: count(db_dsn) >= len(before) + len(during) + len(after), "replay")
        await wait_for(lambda: w.spool.rows == 0, "spool drained")
        replayed = w.metrics.total("hazmon_readings_replayed_total")
        dropped = w.metrics.total("hazmon_readings_dropped_total")
    await proxy.cut()
    sent = before + during + after
    assert rows(db_dsn) == as_rows(sent)  # each exactly once, values and timestamps exact
    assert count(db_dsn, "SELECT count(DISTINCT (sensor_id, time)) FROM readings") == len(sent)
    assert replayed >= len(during) and dropped == 0
    assert list((tmp_path / "data" / "spool").glob("*.spool")) == []


@pytest.mark.slow
async def test_full_spool_drops_counted_and_raises_a_system_finding(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    proxy = CuttableProxy("127.0.0.1", 5432)
    await proxy.start()
    dsn = db_dsn.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    # 18 sensors x 22 bytes + 12 per batch of one round: room for about 2 batches
    cs = CollectorSettings(
        batch_max_readings=18,
        flush_interval_s=0.1,
        write_timeout_s=1.0,
        retry_max_s=0.5,
        spool=SpoolSettings(max_mb=900 / (1 << 20)),
    )
    topics = mqtt_topics(plant.sensors())
    stream = _stream(plant, 10)
    async with Daemon(daemon_config(tmp_path, dsn, plant, cs), plant) as d:
        assert d.w is not None
        w = d.w
        await wait_for(w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
        await proxy.cut()
        pub = Publisher(*mqtt_broker)
        for r in stream:
            pub.publish(topics[r.tag], json_payload(r))
        pub.close()
        await wait_for(
            lambda: (
                w.metrics.total("hazmon_readings_spooled_total")
                + w.metrics.total("hazmon_readings_dropped_total")
                >= len(stream)
            ),
            "all readings spooled or dropped",
        )
        spooled = w.metrics.total("hazmon_readings_spooled_total")
        dropped = w.metrics.get("hazmon_readings_dropped_total", {"reason": "spool_full"})
        system = [(f.condition, f.sensor, f.active) for f in w.system_findings]
        message = w.system_findings[0].message_en if w.system_findings else ""
        gauge = w.metrics.get("hazmon_system_condition", {"key": "spool_full"})
        await proxy.restore()
        await wait_for(lambda: count(db_dsn) >= spooled, "replay")
    await proxy.cut()
    assert spooled + dropped == len(stream) and dropped > 0 and spooled > 0
    assert count(db_dsn) == spooled
    assert system[0] == ("system", None, True)
    assert message.startswith("spool full")
    assert gauge == 1


@pytest.mark.slow
async def test_broker_restart_during_a_qos1_stream_loses_nothing(
    example_plant: Plant, db_dsn: str, private_mosquitto: object, tmp_path: Path
) -> None:
    """Readings the broker holds for the daemon's session survive the broker's restart.

    The daemon reaches the broker through a proxy the test cuts, so the middle
    part of the stream is certainly queued in the broker for the daemon's session
    (not already delivered) when the broker restarts.
    """
    broker = private_mosquitto
    proxy = CuttableProxy("127.0.0.1", broker.port)  # type: ignore[attr-defined]
    await proxy.start()
    plant = _via(example_plant, proxy.port)
    topics = mqtt_topics(plant.sensors())
    first, held, second = _stream(plant, 20), _stream(plant, 20, 20), _stream(plant, 20, 40)

    def publish(readings: list[Reading]) -> None:
        pub = Publisher("127.0.0.1", broker.port)  # type: ignore[attr-defined]
        for r in readings:
            pub.publish(topics[r.tag], json_payload(r))
        pub.close()  # every PUBACK in: the broker owns them now

    async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as d:
        assert d.w is not None
        w = d.w
        mq = w.inputs[0]
        await wait_for(mq.subscribed.is_set, "subscription")  # type: ignore[attr-defined]
        publish(first)
        await wait_for(lambda: count(db_dsn) >= len(first), "the first part stored")
        await proxy.cut()  # the daemon is away; its session stays on the broker
        await wait_for(lambda: not mq.connected.is_set(), "daemon sees the broker gone")  # type: ignore[attr-defined]
        publish(held)  # queued for the daemon's session
        broker.stop()  # type: ignore[attr-defined]
        broker.start()  # type: ignore[attr-defined]
        await proxy.restore()
        await wait_for(mq.subscribed.is_set, "resubscribed after the restart", 30)  # type: ignore[attr-defined]
        publish(second)
        await wait_for(lambda: count(db_dsn) >= len(first) + len(held) + len(second), "every reading stored")
        reconnects = w.metrics.total("hazmon_source_reconnects_total")
        lost_sessions = w.metrics.total("hazmon_mqtt_sessions_lost_total")
    await proxy.cut()
    assert rows(db_dsn) == as_rows(first + held + second)
    assert reconnects >= 1
    assert lost_sessions == 0, "the broker kept the session across its restart"


async def test_a_session_the_broker_did_not_keep_is_reported(
    example_plant: Plant, db_dsn: str, tmp_path: Path
) -> None:
    """A broker restarted without persistence forgets the session: that loss is counted, not silent."""
    (tmp_path / "broker").mkdir()
    broker = PrivateMosquitto(tmp_path / "broker", "persistence false\n")
    broker.start()
    try:
        plant = _via(example_plant, broker.port)
        async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as d:
            assert d.w is not None
            mq = d.w.inputs[0]
            await wait_for(mq.subscribed.is_set, "subscription")  # type: ignore[attr-defined]
            assert d.w.metrics.total("hazmon_mqtt_sessions_lost_total") == 0
            broker.stop()
            await wait_for(lambda: not mq.connected.is_set(), "daemon sees the broker gone")  # type: ignore[attr-defined]
            broker.start()
            await wait_for(mq.subscribed.is_set, "resubscribed after the restart", 30)  # type: ignore[attr-defined]
            assert d.w.metrics.total("hazmon_mqtt_sessions_lost_total") == 1
    finally:
        broker.stop()


@pytest.mark.slow
async def test_daemon_restart_during_a_qos1_stream_loses_nothing(
    example_plant: Plant, db_dsn: str, private_mosquitto: object, tmp_path: Path
) -> None:
    broker = private_mosquitto
    plant = _via(example_plant, broker.port)  # type: ignore[attr-defined]
    topics = mqtt_topics(plant.sensors())
    stream = _stream(plant, 150)
    half = threading.Event()
    done = threading.Event()

    def publish() -> None:
        pub = Publisher("127.0.0.1", broker.port)  # type: ignore[attr-defined]
        for i, r in enumerate(stream):
            pub.publish(topics[r.tag], json_payload(r))
            if i == len(stream) // 3:
                half.set()
            if i % 18 == 0:
                threading.Event().wait(0.005)
        pub.close()
        done.set()

    cfg = daemon_config(tmp_path, db_dsn, plant)
    d1 = Daemon(cfg, plant)
    await d1.start()
    assert d1.w is not None
    await wait_for(d1.w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
    t = threading.Thread(target=publish)
    t.start()
    await wait_for(half.is_set, "a third published")
    await d1.stop()  # mid-stream: the broker keeps queueing for the persistent session
    stored_by_first = count(db_dsn)
    async with Daemon(cfg, plant):
        await wait_for(done.is_set, "publisher done")
        await wait_for(lambda: count(db_dsn) >= len(stream), "every reading stored")
    await asyncio.to_thread(t.join)
    assert 0 < stored_by_first < len(stream)
    assert rows(db_dsn) == as_rows(stream)


async def test_a_clean_stop_acknowledges_everything_it_stored(
    example_plant: Plant, db_dsn: str, private_mosquitto: object, tmp_path: Path
) -> None:
    """Acks on commit go out before the disconnect: the next start gets nothing a second time."""
    broker = private_mosquitto
    plant = _via(example_plant, broker.port)  # type: ignore[attr-defined]
    topics = mqtt_topics(plant.sensors())
    stream = _stream(plant, 30)
    cfg = daemon_config(tmp_path, db_dsn, plant)
    async with Daemon(cfg, plant) as d:
        assert d.w is not None
        w = d.w
        await wait_for(w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
        pub = Publisher("127.0.0.1", broker.port)  # type: ignore[attr-defined]
        for r in stream:
            pub.publish(topics[r.tag], json_payload(r))
        pub.close()
        # stop as soon as every message is in: some are still waiting for their commit and ack
        await wait_for(
            lambda: w.metrics.total("hazmon_messages_received_total") >= len(stream), "every message received"
        )
    assert count(db_dsn) == len(stream), "the stop drained the queue and the writer"
    async with Daemon(cfg, plant) as d:
        assert d.w is not None
        w = d.w
        await wait_for(w.inputs[0].subscribed.is_set, "subscription after the restart")  # type: ignore[attr-defined]
        await asyncio.sleep(1.0)  # anything the broker still held for the session arrives now
        again = w.metrics.total("hazmon_messages_received_total")
    assert again == 0, f"{again} messages came a second time: their acks did not go out at the stop"
    assert rows(db_dsn) == as_rows(stream)


async def test_stop_completes_while_a_qos0_stream_keeps_coming(
    example_plant: Plant, db_dsn: str, private_mosquitto: object, tmp_path: Path
) -> None:
    """A paused input takes nothing new, so the drain ends even if the plant keeps publishing."""
    broker = private_mosquitto
    plant = _via(example_plant, broker.port)  # type: ignore[attr-defined]
    plant = replace(plant, mqtt=tuple(replace(b, qos=0) for b in plant.mqtt))
    sensor = next(s for s in plant.sensors() if isinstance(s.binding, MqttBinding))
    assert isinstance(sensor.binding, MqttBinding)
    stop_publishing = threading.Event()

    def publish() -> None:
        pub = Publisher("127.0.0.1", broker.port)  # type: ignore[attr-defined]
        k = 0
        while not stop_publishing.is_set():
            pub.publish(sensor.binding.topic, json_payload(Reading(sensor.tag, T0 + k, 1.0)), qos=0)  # type: ignore[union-attr]
            k += 1
        pub.close()

    d = Daemon(daemon_config(tmp_path, db_dsn, plant), plant)
    await d.start()
    assert d.w is not None
    w = d.w
    publisher = threading.Thread(target=publish)
    try:
        await wait_for(w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
        publisher.start()
        await wait_for(lambda: w.metrics.total("hazmon_readings_written_total") > 100, "the stream flowing")
        async with asyncio.timeout(30):  # the stream goes on all the while
            await d.stop()
        discarded = w.metrics.total("hazmon_mqtt_qos0_discarded_total")
    finally:
        stop_publishing.set()
        await asyncio.to_thread(publisher.join, 30)
        await d.stop()
    assert discarded > 0, "QoS 0 messages that came during the stop are counted"
