"""The uplink sender against a real Mosquitto: outage and replay, nothing lost, ids count each once; the ACL."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.plant import Plant
from hazmon.plant.link import Feedback, LinkError, parse_envelope
from hazmon.uplink import Sender, UplinkSettings, enqueue, pending
from testkit.mosquitto import PrivateMosquitto

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@dataclass
class Bureau:
    """A subscriber standing in for the bureau: persistent session, QoS 1, every envelope it got."""

    port: int
    username: str | None = None
    password: str | None = None
    got: list[tuple[int, uuid.UUID, str]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, pattern: str) -> mqtt.Client:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bureau-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        if self.username:
            c.username_pw_set(self.username, self.password)
        subscribed = threading.Event()

        def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            c.subscribe(pattern, qos=1)

        def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: object, p: object) -> None:
            subscribed.set()

        def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            try:
                env = parse_envelope(msg.payload, msg.topic)
            except LinkError as e:
                with self.lock:
                    self.refused.append(f"{msg.topic}: {e}")
                return
            with self.lock:
                self.got.append((env.seq, env.message_id, msg.topic))

        c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
        c.reconnect_delay_set(0.1, 0.5)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", self.port, 30, clean_start=False, properties=props)
        c.loop_start()
        assert subscribed.wait(10)
        return c


def _wait(cond: object, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Runner:
    """Runs senders in threads (as the daemon would, with asyncio.to_thread) and stops them after the test."""

    def __init__(self) -> None:
        self.started: list[tuple[threading.Event, threading.Thread]] = []

    def start(self, s: Sender) -> None:
        stop = threading.Event()
        t = threading.Thread(target=s.run, args=(stop,), daemon=True)
        t.start()
        self.started.append((stop, t))

    def stop(self) -> None:
        for stop, t in self.started:
            stop.set()
            t.join(30)
            assert not t.is_alive()


@pytest.fixture
def sender_thread() -> Iterator[Runner]:
    r = Runner()
    yield r
    r.stop()


def _settings(port: int, **kw: object) -> UplinkSettings:
    return UplinkSettings(
        enabled=True,
        url=f"mqtt://127.0.0.1:{port}",
        batch=7,
        ack_timeout_s=3.0,
        poll_interval_s=0.02,
        retry_max_s=0.3,
        **kw,  # type: ignore[arg-type]
    )


def _enqueue(dsn: str, plant: Plant, n: int, start: int = 0) -> list[int]:
    e = plant.enterprise
    with psycopg.connect(dsn, autocommit=True) as conn:
        out = [
            enqueue(
                conn, e.id, e.region.code, Feedback(alarm_id=f"{e.id}:{i}", at=T0, actor="op", comment=str(i))
            )
            for i in range(start, start + n)
        ]
    return [s for s in out if s is not None]


def _pending(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return pending(conn)


@pytest.mark.slow
def test_broker_outage_replays_in_order_nothing_lost(
    db_dsn: str, example_plant: Plant, private_mosquitto: PrivateMosquitto, sender_thread: Runner
) -> None:
    eid = example_plant.enterprise.id
    bureau = Bureau(private_mosquitto.port)
    sub = bureau.start(f"hazmon/v1/{eid}/up/#")
    sender = Sender(_settings(private_mosquitto.port), db_dsn, eid)
    seqs = _enqueue(db_dsn, example_plant, 300)  # batches of 7: still going out when the broker stops
    sender_thread.start(sender)
    # stop the broker while the stream is still going out
    _wait(lambda: sender.stats.acked >= 10, "the first acknowledgements")
    private_mosquitto.stop()
    seqs += _enqueue(db_dsn, example_plant, 40, start=300)
    _wait(lambda: sender.stats.connect_failures >= 2, "the sender to notice the outage")
    assert _pending(db_dsn) >= 40  # nothing was marked sent while the broker was away
    private_mosquitto.start()
    _wait(lambda: _pending(db_dsn) == 0, "the outbox to drain after the restart")
    with psycopg.connect(db_dsn) as conn:
        ids = {int(s): m for s, m in conn.execute("SELECT seq, message_id FROM uplink_outbox").fetchall()}  # type: ignore[call-overload]
    _wait(lambda: {s for s, _, _ in bureau.got} >= set(seqs), "every message at the bureau")
    sub.loop_stop()
    sub.disconnect()

    got = list(bureau.got)
    assert bureau.refused == []
    # at least once, and the ids let the bureau count each exactly once
    first_seen: dict[uuid.UUID, int] = {}
    for seq, mid, _ in got:
        assert ids[seq] == mid  # a replay carries the id the row was given at enqueue
        first_seen.setdefault(mid, seq)
    assert sorted(first_seen.values()) == seqs
    # in order: the first time the bureau sees a message, it is the next one
    assert list(first_seen.values()) == seqs
    assert sender.stats.connects >= 2


def test_no_subscriber_is_no_delivery_the_outbox_waits_for_the_bureau(
    db_dsn: str, example_plant: Plant, private_mosquitto: PrivateMosquitto, sender_thread: Runner
) -> None:
    """Mosquitto answers PUBACK 0x10 while the bureau's shared subscription is away (it is not
    restored after a broker restart): those rows stay unsent and go out once the bureau is back."""
    eid = example_plant.enterprise.id
    sender = Sender(_settings(private_mosquitto.port), db_dsn, eid)
    assert sender.require_subscriber  # the default
    seqs = _enqueue(db_dsn, example_plant, 20)
    sender_thread.start(sender)
    _wait(lambda: sender.stats.no_subscriber >= 1, "a PUBACK with no matching subscribers")
    assert _pending(db_dsn) == 20  # nothing marked sent while nobody could receive it
    # the plant's readiness line (uplink.last_error) names the topic nobody takes
    _wait(lambda: f"no subscriber for hazmon/v1/{eid}/up/" in sender.last_error, "the error naming the topic")
    bureau = Bureau(private_mosquitto.port)
    sub = bureau.start(f"$share/hazmon-bureau/hazmon/v1/{eid}/up/#")
    _wait(lambda: _pending(db_dsn) == 0, "the outbox to drain once the bureau subscribed")
    _wait(lambda: {s for s, _, _ in bureau.got} >= set(seqs), "every message at the bureau")
    sub.loop_stop()
    sub.disconnect()
    assert sorted({s for s, _, _ in bureau.got}) == seqs
    assert bureau.refused == []


def _passwd(workdir: Path, users: dict[str, str]) -> Path:
    f = workdir / "passwd"
    f.touch()
    for u, p in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(f), u, p], check=True, capture_output=True)
    return f


@pytest.mark.slow
def test_acl_an_enterprise_publishes_only_under_its_own_id(
    tmp_path: Path, db_dsn: str, example_plant: Plant, sender_thread: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    eid = example_plant.enterprise.id
    acl = tmp_path / "acl"
    acl.write_text(
        "user bureau\ntopic read hazmon/v1/+/up/#\ntopic write hazmon/v1/+/down/#\n\n"
        # the lines plant/link/README.md gives for every enterprise's username
        "pattern write hazmon/v1/%u/up/#\npattern read hazmon/v1/%u/down/#\n"
    )
    passwd = _passwd(tmp_path, {eid: "e-secret", "OTHER": "o-secret", "bureau": "b-secret"})
    broker = PrivateMosquitto(tmp_path, f"allow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n")
    broker.start()
    try:
        bureau = Bureau(broker.port, "bureau", "b-secret")
        sub = bureau.start("hazmon/v1/+/up/#")

        # logged in as eid, publishing under OTHER's id: the broker drops it
        forger = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="forger", protocol=mqtt.MQTTv311)
        forger.username_pw_set(eid, "e-secret")
        forger.connect("127.0.0.1", broker.port)
        forger.loop_start()
        forged = Feedback(alarm_id="OTHER:1", at=T0, actor="x", comment="forged")
        body = (
            f'{{"schema_version":1,"message_id":"{uuid.uuid4()}","seq":1,"enterprise_id":"OTHER",'
            f'"region_code":"330102","kind":"feedback","sent_at":"2026-03-01T08:00:00Z",'
            f'"payload":{forged.model_dump_json()}}}'
        )
        forger.publish("hazmon/v1/OTHER/up/feedback", body, qos=1).wait_for_publish(10)
        forger.loop_stop()
        forger.disconnect()

        # the same enterprise's sender, under its own id and username, goes through
        # a wrong password: refused at connect, nothing marked sent
        seqs = _enqueue(db_dsn, example_plant, 3)
        monkeypatch.setenv("HAZMON_TEST_UPLINK_PW", "wrong")
        wrong = Sender(
            _settings(broker.port, username=eid, password_env="HAZMON_TEST_UPLINK_PW"), db_dsn, eid
        )
        with pytest.raises(ConnectionError, match="refused or did not answer"):
            wrong.send_pending()
        wrong.close()
        assert _pending(db_dsn) == 3 and wrong.stats.connect_failures == 1

        monkeypatch.setenv("HAZMON_TEST_UPLINK_PW", "e-secret")
        sender = Sender(
            _settings(broker.port, username=eid, password_env="HAZMON_TEST_UPLINK_PW"), db_dsn, eid
        )
        sender_thread.start(sender)
        _wait(lambda: {s for s, _, _ in bureau.got} >= set(seqs), "the enterprise's own messages")
        sub.loop_stop()
        sub.disconnect()
        topics = {t for _, _, t in bureau.got}
        assert topics == {f"hazmon/v1/{eid}/up/feedback"}
        assert not any("OTHER" in t for t in topics)
    finally:
        broker.stop()
