"""The subscriber's readiness (pure: paho's callbacks called as its network threads call them).

A worker restarted after an outage gets its bulk session's backlog first: the broker sends up to
``receive_maximum`` queued messages before the catch-all's SUBACK, which waits behind them in the
stream (10 s at the national size with 4,000 in flight). The messages prove the subscription
delivers; the worker is ready from the first of them, not only from the SUBACK.
"""

from __future__ import annotations

import paho.mqtt.client as mqtt

from hazmon.bureau.config import BrokerSettings
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.subscriber import Subscriber
from tests.bureau.helpers import CITY


def _subscriber() -> Subscriber:
    return Subscriber(BrokerSettings(group="g"), "postgresql://unused", Ingestor(CITY, IngestLimits()))


def _message(topic: str) -> mqtt.MQTTMessage:
    m = mqtt.MQTTMessage(mid=7, topic=topic.encode())
    m.payload = b"{}"
    m.qos = 1
    return m


def test_the_bulk_lanes_first_message_makes_the_worker_ready_before_its_suback() -> None:
    s = _subscriber()
    s._on_subscribe(None, "fast", 1, [0], None)  # type: ignore[arg-type]
    assert not s.connected.is_set()  # the bulk lane: neither SUBACK nor a message yet
    s._on_message(None, "bulk", _message("hazmon/v1/E-1/up/aggregates"))  # type: ignore[arg-type]
    assert s.connected.is_set()
    s._on_subscribe(None, "bulk", 2, [0], None)  # type: ignore[arg-type]  # the SUBACK later: still ready
    assert s.connected.is_set()


def test_the_fast_lane_still_needs_its_suback() -> None:
    s = _subscriber()
    s._on_message(None, "bulk", _message("hazmon/v1/E-1/up/aggregates"))  # type: ignore[arg-type]
    assert not s.connected.is_set()  # alarms: not subscribed yet, so not ready
    s._on_subscribe(None, "fast", 1, [0], None)  # type: ignore[arg-type]
    assert s.connected.is_set()


def test_a_refused_subscription_is_never_ready() -> None:
    s = _subscriber()
    s._on_subscribe(None, "fast", 1, [0x87], None)  # type: ignore[arg-type]  # not authorized
    s._on_message(None, "bulk", _message("hazmon/v1/E-1/up/aggregates"))  # type: ignore[arg-type]
    assert not s.connected.is_set()
