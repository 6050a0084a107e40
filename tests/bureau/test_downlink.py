"""The downlink outbox: a step enqueued while the broker is away goes out once it is back; nothing lost."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.bureau.config import BrokerSettings
from hazmon.bureau.downlink import DownlinkSender, enqueue, pending
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant.link import BureauStep, parse_envelope
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import CITY, T0, Enterprise, wait_until


@pytest.mark.slow
def test_a_step_waits_out_a_broker_outage(
    db_dsn: str, enterprise: Enterprise, private_mosquitto: PrivateMosquitto
) -> None:
    ing = Ingestor(CITY, IngestLimits())
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ing.handle(conn, *enterprise.wire(enterprise.envelope(enterprise.registration())), T0)
        ing.handle(conn, *enterprise.wire(enterprise.envelope(enterprise.alarm(3, 1))), T0)

    # the enterprise listens on its down topic with a persistent session
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    ent = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"ent-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    ent.on_connect = lambda c, u, f, rc, p: c.subscribe(f"hazmon/v1/{enterprise.id}/down/#", qos=1)
    ent.on_subscribe = lambda c, u, m, r, p: subscribed.set()
    ent.on_message = lambda c, u, msg: got.append((msg.topic, bytes(msg.payload)))
    ent.reconnect_delay_set(0.1, 0.5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    ent.connect("127.0.0.1", private_mosquitto.port, clean_start=False, properties=props)
    ent.loop_start()
    assert subscribed.wait(10)

    private_mosquitto.stop()
    sender = DownlinkSender(
        BrokerSettings(
            url=f"mqtt://127.0.0.1:{private_mosquitto.port}", client_id="bureau-t", retry_max_s=0.2
        ),
        db_dsn,
        poll_interval_s=0.05,
    )
    stop = threading.Event()
    t = threading.Thread(target=sender.run, args=(stop,), daemon=True)
    t.start()
    try:
        step = BureauStep(
            alarm_id=f"{enterprise.id}:3", step="verified", at=T0, actor="officer", comment="核查"
        )
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            enqueue(conn, enterprise.id, enterprise.region, step)
            wait_until(lambda: sender.failures >= 2, "the sender to meet the outage")
            assert pending(conn) == 1  # not lost, not marked sent
            private_mosquitto.start()
            wait_until(lambda: pending(conn) == 0, "the step sent once the broker is back")
        wait_until(lambda: got, "the step at the enterprise")
        topic, raw = got[0]
        env = parse_envelope(raw, topic)
        assert env.payload == step and topic == f"hazmon/v1/{enterprise.id}/down/bureau_step"
    finally:
        stop.set()
        sender.wake()
        t.join(30)
        ent.loop_stop()
        ent.disconnect()
