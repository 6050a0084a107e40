"""Every input answers the daemon's `Input` protocol alike: start with a backfill point, prepare to stop, stop.

The daemon used to ask which class an input was (OPC UA got the backfill point) and reach past
the protocol for an MQTT input's ``pause`` and ``manual_ack``; these tests pin what each input
answers now that the protocol says it.
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import replace

from hazmon.collector import DeadLetters, Input, Metrics, MqttInput, MqttSettings, ReadingQueue, TopicMap
from hazmon.collector.opcua import OpcUaConnection, inputs_for_plant
from hazmon.plant import Plant
from tests.collector.opcua_helpers import opcua_only
from tests.collector.test_opcua import FAST


def _mqtt(plant: Plant, ack: str, loop: asyncio.AbstractEventLoop) -> MqttInput:
    m = Metrics()
    broker = plant.mqtt[0]
    return MqttInput(
        broker,
        topics=TopicMap.from_plant(plant, broker.name),
        queue=ReadingQueue(10, loop),
        dead=DeadLetters(m),
        metrics=m,
        settings=replace(MqttSettings(), ack=ack),
        on_state=lambda *a: None,
    )


def test_every_input_has_what_the_protocol_asks() -> None:
    members = {n for n in dir(Input) if not n.startswith("_")}
    assert {"start", "prepare_stop", "stop"} <= members
    for cls in (MqttInput, OpcUaConnection):
        for name in ("start", "prepare_stop", "stop"):
            assert callable(getattr(cls, name, None)), f"{cls.__name__}.{name}"
        assert "backfill_from_us" in inspect.signature(cls.start).parameters, cls.__name__
        assert inspect.iscoroutinefunction(cls.stop), cls.__name__


def test_an_mqtt_input_acknowledging_on_commit_pauses_and_asks_to_be_stopped_after_the_writer(
    example_plant: Plant,
) -> None:
    loop = asyncio.new_event_loop()
    try:
        durable = _mqtt(example_plant, "durable", loop)
        assert durable.prepare_stop() is True
        assert durable._draining  # paused: new messages are left unacknowledged for the broker
        at_once = _mqtt(example_plant, "received", loop)
        assert at_once.prepare_stop() is False
        assert not at_once._draining
    finally:
        loop.close()


def test_an_opcua_input_asks_to_be_stopped_at_once(example_plant: Plant) -> None:
    """It acknowledges nothing: the server keeps what is new, and history covers the gap."""
    m = Metrics()
    loop = asyncio.new_event_loop()
    try:
        (conn,) = inputs_for_plant(
            opcua_only(example_plant),
            queue=ReadingQueue(10, loop),
            dead=DeadLetters(m),
            metrics=m,
            settings=FAST,
            on_state=lambda *a: None,
        )
        inp: Input = conn
        assert inp.prepare_stop() is False
    finally:
        loop.close()
