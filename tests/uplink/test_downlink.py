"""The downlink against a real Mosquitto: a step not recordable now is delivered again (not acknowledged),
a refused one is dead-lettered once and never again, the session keeps what came while the plant was away."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.plant.link import SCHEMA_VERSION, BureauStep, Envelope, topic
from hazmon.uplink import UplinkSettings
from hazmon.uplink.downlink import Downlink, Refused
from testkit.mosquitto import PrivateMosquitto

E = "hx-chem"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _step(alarm: int) -> bytes:
    return (
        Envelope(
            schema_version=SCHEMA_VERSION,
            message_id=uuid.uuid4(),
            seq=alarm,
            enterprise_id=E,
            region_code="320116",
            kind="bureau_step",
            sent_at=T0,
            payload=BureauStep(alarm_id=f"{E}:{alarm}", step="received", at=T0, actor="officer"),
        )
        .model_dump_json()
        .encode()
    )


def _publish(port: int, bodies: list[bytes]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bureau-{uuid.uuid4().hex[:6]}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    for b in bodies:
        c.publish(topic(E, "bureau_step"), b, qos=1).wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def _wait(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_not_recorded_is_delivered_again_refused_is_kept_once(private_mosquitto: PrivateMosquitto) -> None:
    recorded: list[str] = []
    refused: list[tuple[str, str]] = []
    down_once = [True]

    def on_step(env: Envelope) -> bool:
        assert isinstance(env.payload, BureauStep)
        if env.payload.alarm_id.endswith(":2"):
            raise Refused("unknown_alarm", "no such alarm")
        if down_once[0]:  # the database is away the first time
            down_once[0] = False
            raise ConnectionError("database away")
        recorded.append(env.payload.alarm_id)
        return True

    settings = UplinkSettings(enabled=True, url=f"mqtt://127.0.0.1:{private_mosquitto.port}", retry_max_s=0.2)
    link = Downlink(settings, E, on_step, lambda t, r, d, p: refused.append((t, r)))
    stop = threading.Event()
    t = threading.Thread(target=link.run, args=(stop,))
    t.start()
    try:
        _wait(link.subscribed.is_set, "the subscription")
        stop.set()  # the plant goes away; the broker keeps its session
        t.join(30)
        _publish(private_mosquitto.port, [_step(1), _step(2), _step(3)])
        stop.clear()
        t = threading.Thread(target=link.run, args=(stop,))
        t.start()
        _wait(lambda: len(recorded) == 2, "both recordable steps recorded")
        assert recorded == [f"{E}:1", f"{E}:3"]  # 1 again after its failure, before 3 (in order)
        assert refused == [(topic(E, "bureau_step"), "unknown_alarm")]
        assert (link.stats.applied, link.stats.refused, link.stats.failed) == (2, 1, 1)
        # a reconnect delivers nothing again: all three were acknowledged
        stop.set()
        t.join(30)
        stop.clear()
        received = link.stats.received
        t = threading.Thread(target=link.run, args=(stop,))
        t.start()
        _wait(link.subscribed.is_set, "the subscription again")
        _publish(private_mosquitto.port, [_step(4)])
        _wait(lambda: len(recorded) == 3, "the next step")
        assert link.stats.received == received + 1 and refused == [(topic(E, "bureau_step"), "unknown_alarm")]
    finally:
        stop.set()
        t.join(30)
