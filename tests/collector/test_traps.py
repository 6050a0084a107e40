"""Silent-loss traps measured on this machine, each pinned by a test."""

from __future__ import annotations

import tempfile
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.collector.mqtt import MqttPublishError, publish_checked
from hazmon.daemon import Daemon
from hazmon.plant import MqttBinding, Plant, Reading
from tests.conftest import PrivateMosquitto
from tests.daemon.helpers import Publisher, count, daemon_config, json_payload, mqtt_only, wait_for

T0 = 1_795_860_000_000_000


def test_paho_queue_full_is_only_a_return_code_and_publish_checked_raises() -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="trap", protocol=paho.MQTTv5)
    c.max_queued_messages_set(3)  # not connected: QoS 1 messages queue up to the limit, then paho drops
    infos = [publish_checked(c, "t", b"1") for _ in range(3)]
    assert [i.rc for i in infos] == [paho.MQTT_ERR_NO_CONN] * 3  # kept, sent after the connect
    dropped = c.publish("t", b"1", qos=1)
    assert dropped.rc == paho.MQTT_ERR_QUEUE_SIZE  # no exception, no log: only this code
    with pytest.raises(MqttPublishError, match="rc 15"):
        publish_checked(c, "t", b"1")


@pytest.mark.slow
@pytest.mark.parametrize(("broker_conf", "expect_all"), [("max_queued_messages 100\n", False), ("", True)])
async def test_mosquitto_max_queued_messages_drops_for_an_absent_session_unless_unbounded(
    example_plant: Plant, db_dsn: str, tmp_path: Path, broker_conf: str, expect_all: bool
) -> None:
    """The broker, not hazmon, drops here; the only trace is its log. Hence the required
    `max_queued_messages 0` (collector/README.md): with it, everything arrives."""
    with tempfile.TemporaryDirectory(prefix="hazmon-mosq-") as d:
        broker = PrivateMosquitto(Path(d), broker_conf)  # later lines override the fixture's defaults
        broker.start()
        try:
            plant = mqtt_only(example_plant.retarget(mqtt_urls={"gds": f"mqtt://127.0.0.1:{broker.port}"}))
            cfg = daemon_config(tmp_path, db_dsn, plant)
            async with Daemon(cfg, plant) as dm:  # creates the persistent session, then goes away
                assert dm.w is not None
                await wait_for(dm.w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
            sensors = [s for s in plant.sensors() if isinstance(s.binding, MqttBinding)]
            sent = [Reading(s.tag, T0 + k * 1_000_000, float(k)) for k in range(20) for s in sensors]
            pub = Publisher("127.0.0.1", broker.port)
            for r in sent:
                pub.publish(plant.sensor(r.tag).binding.topic, json_payload(r))  # type: ignore[union-attr]
            pub.close()  # every PUBACK received: the publisher believes all 360 are safe
            async with Daemon(cfg, plant) as dm:
                assert dm.w is not None
                w = dm.w
                await wait_for(w.inputs[0].subscribed.is_set, "subscription")  # type: ignore[attr-defined]
                await wait_for(
                    lambda: w.metrics.total("hazmon_readings_received_total") >= 100, "queued messages"
                )
                await wait_for(
                    lambda: count(db_dsn) >= w.metrics.total("hazmon_readings_received_total"), "stored"
                )
                if expect_all:
                    await wait_for(lambda: count(db_dsn) >= len(sent), "everything")
        finally:
            broker.stop()
    stored = count(db_dsn)
    if expect_all:
        assert stored == len(sent)
    else:
        assert stored < len(sent)  # lost at the broker, silently for publisher and subscriber
