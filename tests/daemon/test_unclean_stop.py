"""kill -9 of the daemon: MQTT QoS 1 loses nothing, and the next start says what happened.

With ``ack: durable`` (the default) a QoS 1 message is acknowledged only once its
readings are committed or spooled, so the broker delivers again whatever the
killed process held in memory: the whole stream ends up in the database once.
Readings that no broker keeps for us (OPC UA, QoS 0, ``ack: received``) die with
the process; that must never pass unnoticed. A marker in the data dir, refreshed
every second with how many readings are held in memory, is removed by a clean
stop; finding it at start raises the alarm. A clean stop (SIGTERM) leaves no
marker behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from hazmon.plant import MqttBinding, OpcUaBinding, Reading, load
from hazmon.simulators.opcua_server import SimOpcUaServer
from tests.conftest import PrivateMosquitto, free_port
from tests.daemon.helpers import Publisher, as_rows, count, json_payload, mqtt_topics, rows

ROOT = Path(__file__).resolve().parents[2]


def _metric(port: int, name: str) -> float | None:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


def _wait(cond: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _config(tmp_path: Path, db_dsn: str, http_port: int, extra: str = "") -> None:
    (tmp_path / "hazmon.yaml").write_text(
        f"plant: plant.yaml\ndata_dir: data\ndatabase: {{dsn: '{db_dsn}', storage_mode: plain}}\n"
        f"http: {{port: {http_port}}}\n" + extra
    )


def _start(tmp_path: Path, n: int) -> subprocess.Popen[bytes]:
    """`hazmon run` as a process of its own (so it can be killed with SIGKILL), logging to daemon-n.log."""
    return subprocess.Popen(
        [sys.executable, "-m", "hazmon", "run", "-c", str(tmp_path / "hazmon.yaml")],
        cwd=tmp_path,
        stdout=(tmp_path / f"daemon-{n}.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _kill_9_then_restart(
    tmp_path: Path,
    db_dsn: str,
    port: int,
    *,
    up: Callable[[], bool],
    feed: threading.Thread,
    kill_at: Callable[[], bool],
    fed: threading.Event,
    n: int,
    read_at_end: str,
) -> tuple[int, float]:
    """A first daemon until ``up``; ``feed`` starts; SIGKILL at ``kill_at``; a second daemon until
    ``fed`` and ``n`` readings stored, then SIGTERM (a clean stop).

    Returns (readings stored by the first, the ``read_at_end`` metric of the second).
    """
    first = _start(tmp_path, 1)
    try:
        _wait(up, "first daemon up")
        feed.start()
        _wait(kill_at, "the moment to kill")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    stored_by_first = count(db_dsn)
    second = _start(tmp_path, 2)
    try:
        _wait(fed.is_set, "the stream sent", 120)
        _wait(lambda: count(db_dsn) >= n, "every reading stored", 120)
        at_end = _metric(port, read_at_end) or 0
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        second.kill()
        feed.join(60)
    return stored_by_first, at_end


@pytest.mark.slow
def test_kill_9_is_reported_at_the_next_start_and_a_clean_stop_is_not(
    db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    text = (ROOT / "examples" / "plant.yaml").read_text()
    text = text.replace("topic: plant/", f"topic: {topic_prefix}/plant/")
    text = text.replace("client_id: hazmon-hx-chem", f"client_id: {tmp_path.name[:20]}")
    text = text.replace("opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{free_port()}/hazmon")
    (tmp_path / "plant.yaml").write_text(text)
    port = free_port()
    _config(tmp_path, db_dsn, port)
    marker = tmp_path / "data" / "running.json"

    first = _start(tmp_path, 1)
    try:
        _wait(lambda: _metric(port, "hazmon_previous_run_unclean") == 0, "first daemon up")
        _wait(marker.exists, "the running marker")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    assert marker.exists(), "kill -9 leaves the marker behind"

    second = _start(tmp_path, 2)
    try:
        _wait(lambda: _metric(port, "hazmon_previous_run_unclean") == 1, "second daemon reporting the kill")

        def system_alarm() -> bool:
            with psycopg.connect(db_dsn) as c:
                r = c.execute("SELECT count(*) FROM alarm WHERE condition = 'system'").fetchone()
            return bool(r and r[0])

        _wait(system_alarm, "a system alarm about the unclean stop")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        second.kill()
    log2 = (tmp_path / "daemon-2.log").read_text()
    assert "previous run ended uncleanly" in log2
    assert not marker.exists(), "a clean stop removes the marker"

    third = _start(tmp_path, 3)
    try:
        _wait(lambda: _metric(port, "hazmon_previous_run_unclean") == 0, "third daemon: the stop was clean")
        third.send_signal(signal.SIGTERM)
        assert third.wait(60) == 0
    finally:
        third.kill()


@pytest.mark.slow
def test_kill_9_during_a_qos1_stream_loses_no_reading(db_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    broker = PrivateMosquitto(tmp_path / "broker")  # persistent: it keeps our session and our messages
    broker.start()
    try:
        _kill_9_mid_stream(broker, db_dsn, tmp_path)
    finally:
        broker.stop()


def _kill_9_mid_stream(broker: PrivateMosquitto, db_dsn: str, tmp_path: Path) -> None:
    text = (ROOT / "examples" / "plant.yaml").read_text()
    text = text.replace("mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{broker.port}")
    text = text.replace("client_id: hazmon-hx-chem", f"client_id: {tmp_path.name[:20]}")
    text = text.replace("opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{free_port()}/hazmon")
    (tmp_path / "plant.yaml").write_text(text)
    sensors = [s for s in load(tmp_path / "plant.yaml").sensors() if isinstance(s.binding, MqttBinding)]
    t0 = 1_795_860_000_000_000
    stream = [
        Reading(s.tag, t0 + k * 1_000_000 + i, round(k * 0.37 + i * 1.1, 6))
        for k in range(400)
        for i, s in enumerate(sensors)
    ]
    topic = mqtt_topics(sensors)
    port = free_port()
    _config(tmp_path, db_dsn, port, "alarms: false\n")

    done = threading.Event()

    def publish() -> None:
        pub = Publisher("127.0.0.1", broker.port)
        for r in stream:
            pub.publish(topic[r.tag], json_payload(r))
        pub.close()  # every PUBACK in: the broker owns every message
        done.set()

    publisher = threading.Thread(target=publish)
    stored_by_first, redelivered = _kill_9_then_restart(
        tmp_path,
        db_dsn,
        port,
        up=lambda: _metric(port, "hazmon_mqtt_subscribed") == 1,
        feed=publisher,
        # kill it mid-stream, while it holds messages it has not acknowledged
        kill_at=lambda: (
            (_metric(port, "hazmon_readings_received_total") or 0) > len(stream) // 3
            and (_metric(port, "hazmon_mqtt_unacked_messages") or 0) > 0
        ),
        fed=done,
        n=len(stream),
        read_at_end="hazmon_mqtt_duplicates_received_total",
    )
    assert 0 < stored_by_first < len(stream)
    assert rows(db_dsn) == as_rows(stream), "every reading once: none lost, none twice"
    assert redelivered > 0, "the broker delivered again what the killed daemon had not acknowledged"
    assert "previous run ended uncleanly" in (tmp_path / "daemon-2.log").read_text()


@pytest.mark.slow
def test_kill_9_during_opcua_collection_loses_nothing_the_server_historized(
    db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    """OPC UA has no redelivery: the next start reads the gap back from the server's history.

    The gap starts at the newest reading stored before the kill, so the readings that died in
    memory with the process come back too.
    """
    text = (ROOT / "examples" / "plant.yaml").read_text()
    text = text.replace("topic: plant/", f"topic: {topic_prefix}/plant/")
    text = text.replace("client_id: hazmon-hx-chem", f"client_id: {tmp_path.name[:20]}")
    text = text.replace("opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{free_port()}/hazmon")
    (tmp_path / "plant.yaml").write_text(text)
    plant = load(tmp_path / "plant.yaml")
    sensors = [s for s in plant.sensors() if isinstance(s.binding, OpcUaBinding)]
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    server = SimOpcUaServer(plant.opcua[0], plant, tmp_path / "srv", history_s=3600)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    t0 = time.time_ns() // 1000
    rounds = [
        [Reading(s.tag, t0 + k * 200_000 + i, round(k * 0.37 + i * 1.1, 6)) for i, s in enumerate(sensors)]
        for k in range(100)
    ]
    stream = [r for rnd in rounds for r in rnd]
    port = free_port()
    _config(tmp_path, db_dsn, port, "alarms: false\n")
    received = 'hazmon_readings_received_total{source="dcs"}'
    done = threading.Event()

    def send() -> None:  # 5 rounds a second: the subscription (queue 10, 1 s publishing) keeps each
        for rnd in rounds:
            asyncio.run_coroutine_threadsafe(server.send(rnd), loop).result(30)
            time.sleep(0.2)
        done.set()

    try:
        stored_by_first, backfilled = _kill_9_then_restart(
            tmp_path,
            db_dsn,
            port,
            up=lambda: _metric(port, 'hazmon_source_connected{source="dcs"}') == 1,
            feed=threading.Thread(target=send),
            kill_at=lambda: (_metric(port, received) or 0) > len(stream) // 3,
            fed=done,
            n=len(stream),
            read_at_end='hazmon_opcua_backfilled_total{source="dcs"}',
        )
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
    assert 0 < stored_by_first < len(stream)
    assert rows(db_dsn) == as_rows(stream), "every reading once: none lost, none twice"
    assert backfilled > 0, "the second daemon read the gap back from the server's history"
    assert "opcua gap read back from history" in (tmp_path / "daemon-2.log").read_text()
