"""The subscriber's lanes on a real Mosquitto: bureau.yaml's ingest: reaches them; a kind this bureau
does not know is received (dead-lettered whole), never left unsubscribed; nothing is received twice."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.bureau.config import BrokerSettings, load_config
from hazmon.bureau.ingest import IngestLimits, IngestMetrics, Ingestor
from hazmon.bureau.subscriber import Subscriber
from hazmon.bureau_daemon import BureauDaemon
from hazmon.plant.link import AggregateItem, Aggregates
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import CITY, T0, Enterprise, wait_until
from tests.bureau.test_subscriber import Workers, workers  # noqa: F401 - the fixture


def _rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql).fetchall()


def _count(dsn: str, sql: str) -> int:
    return int(_rows(dsn, sql)[0][0])  # type: ignore[call-overload]


class Publisher:
    """An enterprise's MQTT 5 client that keeps each PUBACK's reason code (0x10: no matching subscribers)."""

    def __init__(self, port: int) -> None:
        self.acks: dict[int, int] = {}
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ent-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        self.c.on_publish = self._on_publish
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_publish(self, c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        self.acks[mid] = int(getattr(rc, "value", rc))  # type: ignore[call-overload]

    def publish(self, wires: list[tuple[bytes, str]]) -> list[int]:
        """Each message's PUBACK reason code, in order."""
        infos = [self.c.publish(t, raw, qos=1) for raw, t in wires]
        for i in infos:
            i.wait_for_publish(10)
        wait_until(lambda: all(i.mid in self.acks for i in infos), "the PUBACKs")
        return [self.acks[i.mid] for i in infos]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _aggregates(minute: int) -> Aggregates:
    item = AggregateItem(sensor="LT-101", count=2, min=1.0, mean=1.5, max=2.0, last=2.0, worst_quality="good")
    return Aggregates(window_start=T0 + timedelta(minutes=minute), items=[item])


def _newer_kind(ent: Enterprise, size: int) -> tuple[bytes, str]:
    """What a newer enterprise daemon sends: an envelope of a kind this bureau's link schema lacks."""
    raw, t = ent.wire(ent.envelope(ent.alarm(9, 9)))
    raw = raw.replace(b'"alarm_event"', b'"leak_survey"').replace(b'"system"', b'"' + b"x" * size + b'"')
    return raw, t.replace("/up/alarm_event", "/up/leak_survey")


def _broker(port: int, client_id: str) -> BrokerSettings:
    return BrokerSettings(url=f"mqtt://127.0.0.1:{port}", group="g", client_id=client_id, retry_max_s=0.2)


@pytest.mark.slow
def test_ingest_settings_in_bureau_yaml_reach_the_subscriber(
    tmp_path: Path,
    db_dsn: str,
    enterprise: Enterprise,
    private_mosquitto: PrivateMosquitto,
    workers: Workers,  # noqa: F811
) -> None:
    f = tmp_path / "bureau.yaml"
    f.write_text(
        f"""id: nj-city
name: 南京市应急管理局
region: {{code: "320100", level: city}}
database: {{dsn: "{db_dsn}", migrate: false}}
broker: {{url: "mqtt://127.0.0.1:{private_mosquitto.port}", group: g, client_id: w-ingest, retry_max_s: 0.2}}
http: {{port: 0}}
ingest: {{park_s: 0, receive_maximum: 300, max_messages: 300, fast_max_messages: 3}}
"""
    )
    d = BureauDaemon(load_config(f))
    assert d.subscriber.batch.receive_maximum == 300 and d.subscriber.batch.fast_max_messages == 3
    workers.start(d.subscriber)
    # park_s 0: an aggregate of an enterprise not registered (yet) is dead-lettered at once, not parked 60 s
    pub = Publisher(private_mosquitto.port)
    try:
        assert pub.publish([enterprise.wire(enterprise.envelope(_aggregates(0)))]) == [0]
    finally:
        pub.close()
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_dead_letter") == 1, "the dead letter")
    [(code, reason)] = _rows(db_dsn, "SELECT reason_code, reason FROM bureau_dead_letter")
    assert code == "unknown_enterprise" and "waited 0 s for it" in str(reason)
    assert d.subscriber.stats.parked == 0


@pytest.mark.slow
def test_a_kind_this_bureau_does_not_know_is_taken_and_kept_whole_and_the_feed_goes_on(
    db_dsn: str,
    enterprise: Enterprise,
    private_mosquitto: PrivateMosquitto,
    workers: Workers,  # noqa: F811
) -> None:
    metrics = IngestMetrics()
    ws = [
        workers.start(
            Subscriber(
                _broker(private_mosquitto.port, f"w{i}"), db_dsn, Ingestor(CITY, IngestLimits(), metrics)
            )
        )
        for i in (1, 2)
    ]
    pub = Publisher(private_mosquitto.port)
    try:
        assert pub.publish([enterprise.wire(enterprise.envelope(enterprise.registration()))]) == [0]
        wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") == 1, "the registration")
        newer = _newer_kind(enterprise, 100_000)  # over the 64 KiB other dead letters are cut at
        codes = pub.publish([
            newer,
            enterprise.wire(enterprise.envelope(enterprise.alarm(1, 1))),
            enterprise.wire(enterprise.envelope(_aggregates(0))),
        ])  # fmt: skip
    finally:
        pub.close()
    # delivered (PUBACK 0), not "no matching subscribers" (0x10), which keeps the enterprise's whole
    # outbox waiting behind that one message (hazmon.store.outbox, require_subscriber)
    assert codes == [0, 0, 0]
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_dead_letter") == 1, "the dead letter")
    [(code, reason, kept, where)] = _rows(
        db_dsn, "SELECT reason_code, reason, payload, topic FROM bureau_dead_letter"
    )
    assert code == "unknown_kind" and "'leak_survey'" in str(reason)
    assert kept == newer[0] and where == newer[1]  # whole: replayable once the bureau knows the kind
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_alarm") == 1, "the alarm after it")
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == 1, "the aggregate")
    wait_until(lambda: sum(w.stats.acked for w in ws) == 4, "every message acknowledged")
    assert metrics.refused.labels(reason_code="unknown_kind")._value.get() == 1
    # each known message received once per lane it is for: the two fast ones (registration, alarm)
    # also reached the bulk lane's catch-all and were acknowledged there unstored
    wait_until(lambda: sum(w.stats.lane_copies for w in ws) == 2, "the copies of the fast ones")
    assert sum(w.stats.received for w in ws) == 4
    assert metrics.duplicates._value.get() == 0
    assert _count(db_dsn, "SELECT count(*) FROM bureau_message") == 3


@pytest.mark.slow
def test_a_bulk_session_of_before_the_catch_all_does_not_receive_aggregates_twice(
    db_dsn: str,
    enterprise: Enterprise,
    private_mosquitto: PrivateMosquitto,
    workers: Workers,  # noqa: F811
) -> None:
    # the persistent bulk session as the previous version left it: one subscription per bulk kind
    old = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="w-old", protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 3600
    subscribed = threading.Event()
    old.on_subscribe = lambda *a: subscribed.set()
    old.connect("127.0.0.1", private_mosquitto.port, clean_start=False, properties=props)
    old.loop_start()
    old.subscribe([(f"$share/g/hazmon/v1/+/up/{k}", 1) for k in ("aggregates", "heartbeat", "assessments")])
    assert subscribed.wait(10)
    old.disconnect()
    old.loop_stop()
    metrics = IngestMetrics()
    w = workers.start(
        Subscriber(_broker(private_mosquitto.port, "w-old"), db_dsn, Ingestor(CITY, IngestLimits(), metrics))
    )
    pub = Publisher(private_mosquitto.port)
    try:
        pub.publish([enterprise.wire(enterprise.envelope(enterprise.registration()))])
        wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") == 1, "the registration")
        pub.publish([enterprise.wire(enterprise.envelope(_aggregates(m))) for m in range(5)])
    finally:
        pub.close()
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == 5, "the aggregates")
    wait_until(lambda: w.stats.acked == 6, "every message acknowledged")
    assert w.stats.received == 6  # five aggregates once each and the registration
    wait_until(lambda: w.stats.lane_copies == 1, "the registration's copy on the bulk lane")
    assert metrics.duplicates._value.get() == 0


@pytest.mark.slow
def test_acknowledgements_out_of_receive_order_are_honoured_by_mosquitto(
    db_dsn: str,
    enterprise: Enterprise,
    private_mosquitto: PrivateMosquitto,
    workers: Workers,  # noqa: F811
) -> None:
    """A parked message stays unacknowledged while later ones of the same session are acknowledged
    (MQTT 5.0 [MQTT-4.6.0-2] asks for PUBACKs in receive order): Mosquitto takes each PUBACK by its
    packet id, so after a reconnect it sends again the parked message alone."""
    newcomer = Enterprise(enterprise.plant, "nj-late")  # registers only later
    first = workers.start(
        Subscriber(_broker(private_mosquitto.port, "w-order"), db_dsn, Ingestor(CITY, IngestLimits()))
    )
    pub = Publisher(private_mosquitto.port)
    try:
        pub.publish([enterprise.wire(enterprise.envelope(enterprise.registration()))])
        wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_enterprise") == 1, "the registration")
        late = newcomer.wire(newcomer.envelope(_aggregates(0)))
        pub.publish([late] + [enterprise.wire(enterprise.envelope(_aggregates(m))) for m in range(3)])
        wait_until(
            lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == 3, "the later ones stored"
        )
        wait_until(lambda: first.stats.acked == 4 and first.stats.parked == 1, "the later ones acknowledged")
        workers.stop(first)  # the parked one is still unacknowledged
        metrics = IngestMetrics()
        second = workers.start(
            Subscriber(
                _broker(private_mosquitto.port, "w-order"), db_dsn, Ingestor(CITY, IngestLimits(), metrics)
            )
        )
        wait_until(lambda: second.stats.parked == 1, "the parked message sent again")
        pub.publish([newcomer.wire(newcomer.envelope(newcomer.registration()))])
    finally:
        pub.close()
    wait_until(lambda: _count(db_dsn, "SELECT count(*) FROM bureau_aggregate") == 4, "the parked one stored")
    wait_until(lambda: second.stats.acked == 2, "it and the registration acknowledged")
    # the broker sent again only what was not acknowledged: not the three acknowledged after it
    assert second.stats.received == 2  # the parked aggregate and the registration
    wait_until(lambda: second.stats.lane_copies == 1, "the registration's copy")
    assert metrics.duplicates._value.get() == 0
    assert _count(db_dsn, "SELECT count(*) FROM bureau_message") == 6
    assert _count(db_dsn, "SELECT count(*) FROM bureau_dead_letter") == 0
