"""Batches over a real Mosquitto: an enterprise's aggregates ahead of its registration wait for it; a killed worker loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.config import BrokerSettings
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.subscriber import BatchSettings, Subscriber
from hazmon.plant.link import AggregateItem, Aggregates
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.bureau.test_subscriber import Workers, workers  # noqa: F401 - the fixture
from tests.conftest import ROOT, free_port


def _wait(cond: Callable[[], object], what: str, within_s: float = 120.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(sql).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]


def _publish(port: int, wires: list[tuple[bytes, str]]) -> None:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"ent-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    c.max_inflight_messages_set(200)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = [c.publish(topic, raw, qos=1) for raw, topic in wires]
    for i in infos:
        i.wait_for_publish(60)
    c.loop_stop()
    c.disconnect()


def _aggregates(minute: int, sensors: int) -> Aggregates:
    items = [
        AggregateItem(
            sensor=f"S-{i:03d}", count=2, min=1.0, mean=1.5, max=2.0, last=2.0, worst_quality="good"
        )
        for i in range(sensors)
    ]
    return Aggregates(window_start=T0 + timedelta(minutes=minute), items=items)


@pytest.mark.slow
def test_aggregates_ahead_of_their_registration_wait_for_it_and_are_stored(
    db_dsn: str,
    enterprise: Enterprise,
    private_mosquitto: PrivateMosquitto,
    workers: Workers,  # noqa: F811
) -> None:
    # the race of `hazmon simulate fleet` with two workers, made certain: every aggregate first
    ws = [
        workers.start(
            Subscriber(
                BrokerSettings(url=f"mqtt://127.0.0.1:{private_mosquitto.port}", group="g",
                               client_id=f"bureau-w{i}", retry_max_s=0.2),
                db_dsn,
                Ingestor(CITY, IngestLimits()),
                batch=BatchSettings(park_retry_s=0.1),
            )
        )
        for i in (1, 2)
    ]  # fmt: skip
    ents = [Enterprise(enterprise.plant, f"early-{k:02d}") for k in range(6)]
    _publish(private_mosquitto.port, [e.wire(e.envelope(_aggregates(m, 10))) for e in ents for m in range(5)])
    _wait(lambda: sum(w.stats.parked for w in ws) == 30, "every aggregates message parked")
    assert _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == 0
    assert sum(w.stats.acked for w in ws) == 0  # parked: not acknowledged (a crash would lose nothing)
    _publish(private_mosquitto.port, [e.wire(e.envelope(e.registration())) for e in ents])
    _wait(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == 6 * 5 * 10, "every row stored")
    _wait(lambda: sum(w.stats.acked for w in ws) == 36, "every message acknowledged")
    assert _count(db_dsn, "SELECT count(*) FROM bureau_dead_letter") == 0
    assert _count(db_dsn, "SELECT count(*) FROM bureau_message") == 36
    assert sum(w.batcher.metrics.parked_total._value.get() for w in ws) >= 30
    _wait(lambda: sum(w.stats.parked for w in ws) == 0, "none parked any more")


def _config(tmp_path: Path, dsn: str, broker_port: int, http_port: int) -> Path:
    cfg = tmp_path / "bureau.yaml"
    cfg.write_text(
        f"""id: nj-city
name: 南京市应急管理局
region: {{code: "320100", level: city}}
database: {{dsn: "{dsn}", migrate: false}}
broker: {{url: "mqtt://127.0.0.1:{broker_port}", group: g, client_id: bureau-kill}}
http: {{host: 127.0.0.1, port: {http_port}}}
"""
    )
    return cfg


def _run(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hazmon", "bureau", "run", "-c", str(cfg)],
        cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ},
    )  # fmt: skip


def _ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> bool:
    assert proc.poll() is None, log.read_text()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_its_batches_loses_nothing(
    tmp_path: Path, db_dsn: str, enterprise: Enterprise, private_mosquitto: PrivateMosquitto
) -> None:
    port = free_port()
    cfg = _config(tmp_path, db_dsn, private_mosquitto.port, port)
    log = tmp_path / "bureau.log"
    proc = _run(cfg, log)
    try:
        _wait(lambda: _ready(port, proc, log), "the worker subscribed (its sessions made)")
        # the worker's sessions (and subscriptions) exist; the registration is stored
        _publish(private_mosquitto.port, [enterprise.wire(enterprise.envelope(enterprise.registration()))])
        _wait(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") == 1, "the registration")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        # a backlog while it is down: 1,000 minutes of 50 sensors
        n, sensors = 1000, 50
        _publish(
            private_mosquitto.port,
            [enterprise.wire(enterprise.envelope(_aggregates(m, sensors))) for m in range(n)],
        )
        proc = _run(cfg, log)
        _wait(
            lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") > 0, "the first batch committed"
        )
        proc.send_signal(signal.SIGKILL)  # mid-drain: batches received, some being stored, none acknowledged
        proc.wait(30)
        at_kill = _count(db_dsn, "SELECT count(*) FROM bureau_aggregate")
        assert at_kill < n * sensors, "the backlog was drained before the kill: nothing tested"
        proc = _run(cfg, log)
        _wait(
            lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == n * sensors, "every row stored"
        )
        # nothing lost, nothing twice (the broker sent the unacknowledged messages again)
        assert _count(db_dsn, "SELECT count(*) FROM bureau_message WHERE kind = 'aggregates'") == n
        assert _count(db_dsn, "SELECT count(*) FROM bureau_dead_letter") == 0
        assert _count(db_dsn, "SELECT sum(count) FROM bureau_aggregate") == n * sensors * 2
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
