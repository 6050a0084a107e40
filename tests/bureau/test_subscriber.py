"""The subscriber on a real Mosquitto: acknowledged only after the commit, so nothing is lost; workers share the feed."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.config import BrokerSettings
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.subscriber import Subscriber
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import CITY, T0, Enterprise, wait_until
from tests.conftest import dsn_for


class Workers:
    def __init__(self) -> None:
        self.running: dict[int, tuple[threading.Event, threading.Thread]] = {}

    def start(self, s: Subscriber) -> Subscriber:
        stop = threading.Event()
        t = threading.Thread(target=s.run, args=(stop,), daemon=True)
        t.start()
        self.running[id(s)] = (stop, t)
        wait_until(s.connected.is_set, "the subscription") if "no_such" not in s.dsn else None
        return s

    def stop(self, s: Subscriber) -> None:
        stop, t = self.running.pop(id(s))
        stop.set()
        t.join(30)
        assert not t.is_alive()


@pytest.fixture
def workers() -> Iterator[Workers]:
    w = Workers()
    yield w
    for stop, t in w.running.values():
        stop.set()
        t.join(30)


def _publish(port: int, wires: list[tuple[bytes, str]]) -> None:
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"ent-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    c.connect("127.0.0.1", port)
    c.loop_start()
    for raw, topic in wires:
        c.publish(topic, raw, qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def _count(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(sql).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]


def _broker(port: int, client_id: str) -> BrokerSettings:
    return BrokerSettings(url=f"mqtt://127.0.0.1:{port}", group="g", client_id=client_id, retry_max_s=0.2)


@pytest.mark.slow
def test_a_message_the_database_did_not_take_is_not_acknowledged_and_comes_again(
    db_dsn: str, enterprise: Enterprise, private_mosquitto: PrivateMosquitto, workers: Workers
) -> None:
    broker = _broker(private_mosquitto.port, "bureau-w1")
    # the worker's session exists (its subscription too) before the enterprise publishes
    first = workers.start(Subscriber(broker, db_dsn, Ingestor(CITY, IngestLimits())))
    workers.stop(first)
    # the same worker, its database away: it receives, cannot commit, acknowledges nothing
    away = workers.start(Subscriber(broker, dsn_for("no_such_db_bureau"), Ingestor(CITY, IngestLimits())))
    _publish(private_mosquitto.port, [enterprise.wire(enterprise.envelope(enterprise.registration()))])
    wait_until(lambda: away.stats.db_failures >= 2, "the worker to fail on the database (and get it again)")
    assert away.stats.acked == 0
    workers.stop(away)  # "crash"
    # back with its database: the broker hands the unacknowledged message over again
    back = workers.start(Subscriber(broker, db_dsn, Ingestor(CITY, IngestLimits())))
    wait_until(
        lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") == 1, "the registration stored"
    )
    wait_until(lambda: back.stats.acked >= 1, "the acknowledgement after the commit")
    assert _count(db_dsn, "SELECT count(*) FROM bureau_message") == 1


@pytest.mark.slow
def test_two_workers_share_the_feed_each_message_stored_once(
    db_dsn: str, enterprise: Enterprise, private_mosquitto: PrivateMosquitto, workers: Workers
) -> None:
    ws = [
        workers.start(
            Subscriber(
                _broker(private_mosquitto.port, f"bureau-w{i}"), db_dsn, Ingestor(CITY, IngestLimits())
            )
        )
        for i in (1, 2)
    ]
    wires = [enterprise.wire(enterprise.envelope(enterprise.registration()))]
    # 40 alarm events, published after the registration was stored (an event needs its enterprise)
    _publish(private_mosquitto.port, wires)
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") == 1, "the registration")
    events = [enterprise.wire(enterprise.envelope(enterprise.alarm(i, i, at=T0))) for i in range(1, 41)]
    _publish(private_mosquitto.port, events + events[:5])  # five replayed
    wait_until(lambda: sum(w.stats.acked for w in ws) >= 46, "every message acknowledged")
    assert _count(db_dsn, "SELECT count(*) FROM bureau_alarm") == 40
    assert _count(db_dsn, "SELECT count(*) FROM bureau_message") == 41
    assert all(w.stats.received > 0 for w in ws), [w.stats for w in ws]
    assert sum(w.ingestor.metrics.duplicates._value.get() for w in ws) == 5


@pytest.mark.slow
def test_with_the_readme_acl_the_bureau_receives_and_a_forger_is_dropped(
    tmp_path: Path, db_dsn: str, enterprise: Enterprise, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    acl = tmp_path / "acl"
    acl.write_text(
        "pattern write hazmon/v1/%u/up/#\npattern read hazmon/v1/%u/down/#\n\n"
        "user bureau\ntopic read hazmon/v1/+/up/#\ntopic read $share/hazmon-bureau/hazmon/v1/+/up/#\n"
        "topic write hazmon/v1/+/down/#\n"
    )
    passwd = tmp_path / "passwd"
    passwd.touch()
    for u, p in {enterprise.id: "e-secret", "bureau": "b-secret"}.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), u, p], check=True, capture_output=True)
    broker = PrivateMosquitto(tmp_path, f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")
    broker.start()
    try:
        monkeypatch.setenv("HAZMON_TEST_BUREAU_PW", "b-secret")
        settings = BrokerSettings(
            url=f"mqtt://127.0.0.1:{broker.port}", username="bureau", password_env="HAZMON_TEST_BUREAU_PW",
            group="hazmon-bureau", client_id="bureau-acl", retry_max_s=0.2,
        )  # fmt: skip
        sub = workers.start(Subscriber(settings, db_dsn, Ingestor(CITY, IngestLimits())))

        def publish(user: str, pw: str, wire: tuple[bytes, str]) -> None:
            c = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
            )
            c.username_pw_set(user, pw)
            c.connect("127.0.0.1", broker.port)
            c.loop_start()
            c.publish(wire[1], wire[0], qos=1).wait_for_publish(10)
            c.loop_stop()
            c.disconnect()

        other = Enterprise(enterprise.plant, "forged-co")
        publish(
            enterprise.id, "e-secret", other.wire(other.envelope(other.registration()))
        )  # dropped by the ACL
        publish(enterprise.id, "e-secret", enterprise.wire(enterprise.envelope(enterprise.registration())))
        wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") >= 1, "the registration")
        wait_until(lambda: sub.stats.acked >= 1, "the acknowledgement")
        assert sub.stats.received == 1
        with psycopg.connect(db_dsn) as c:
            assert c.execute("SELECT enterprise_id FROM bureau_enterprise").fetchall() == [(enterprise.id,)]
    finally:
        broker.stop()


@pytest.mark.slow
def test_what_arrives_while_the_bureau_is_down_waits_in_its_session(
    db_dsn: str, enterprise: Enterprise, private_mosquitto: PrivateMosquitto, workers: Workers
) -> None:
    broker = _broker(private_mosquitto.port, "bureau-persistent")
    workers.stop(workers.start(Subscriber(broker, db_dsn, Ingestor(CITY, IngestLimits()))))
    wires = [enterprise.wire(enterprise.envelope(enterprise.registration()))]
    wires += [enterprise.wire(enterprise.envelope(enterprise.alarm(i, i))) for i in (1, 2, 3)]
    _publish(private_mosquitto.port, wires)  # the bureau is down
    back = workers.start(Subscriber(broker, db_dsn, Ingestor(CITY, IngestLimits())))
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_alarm") == 3, "the queued alarms")
    wait_until(lambda: back.stats.acked == 4, "every queued message acknowledged")
