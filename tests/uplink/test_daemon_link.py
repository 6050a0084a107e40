"""The enterprise daemon's bureau link end to end: a real daemon, a real PostgreSQL, a private Mosquitto
standing for the bureau's broker.

A chlorine leak's alarm events arrive on ``hazmon/v1/<enterprise>/up/alarm_event`` in order with one
``alarm_id``; the bureau's steps come down and are recorded on the same alarm (seen in the plant's
API); refused steps are dead-lettered with their reason; a restart doubles nothing.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.daemon import Daemon
from hazmon.plant import Plant, Reading
from hazmon.plant.link import SCHEMA_VERSION, AlarmEvent, Envelope, parse_envelope, topic
from hazmon.uplink import UplinkSettings
from testkit.mosquitto import PrivateMosquitto
from tests.alarms.helpers import bearer, webhook_settings
from tests.daemon.helpers import Publisher, daemon_config, json_payload, mqtt_only, wait_for

TAG = "AT-102"  # a chlorine detector of the example plant


@dataclass
class BureauBroker:
    """The bureau's side: a persistent QoS 1 subscriber to every ``up`` topic, and a publisher of steps."""

    port: int
    enterprise: str
    got: list[Envelope] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    c: mqtt.Client | None = None

    def start(self) -> None:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bureau-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        subscribed = threading.Event()

        def on_connect(c: mqtt.Client, u: object, f: object, rc: object, p: object) -> None:
            c.subscribe(f"hazmon/v1/{self.enterprise}/up/#", qos=1)

        def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
            env = parse_envelope(msg.payload, msg.topic)  # the enterprise sends nothing the schema refuses
            with self.lock:
                self.got.append(env)

        c.on_connect, c.on_message = on_connect, on_message
        c.on_subscribe = lambda *a: subscribed.set()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        c.connect("127.0.0.1", self.port, 30, clean_start=False, properties=props)
        c.loop_start()
        assert subscribed.wait(10)
        self.c = c

    def stop(self) -> None:
        if self.c is not None:
            self.c.disconnect()
            self.c.loop_stop()

    def events(self) -> list[tuple[int, AlarmEvent]]:
        with self.lock:
            return [(e.seq, e.payload) for e in self.got if isinstance(e.payload, AlarmEvent)]

    def kinds(self) -> list[str]:
        with self.lock:
            return [e.kind for e in self.got]

    def step(self, alarm_id: str, step: str, *, raw: bytes | None = None) -> None:
        """Publish a bureau_step as the bureau does (QoS 1, waiting for the PUBACK)."""
        body = (
            raw
            or Envelope.model_validate(
                {
                    "schema_version": SCHEMA_VERSION,
                    "message_id": str(uuid.uuid4()),
                    "seq": 1,
                    "enterprise_id": self.enterprise,
                    "region_code": "320116",
                    "kind": "bureau_step",
                    "sent_at": datetime.now(UTC).isoformat(),
                    "payload": {
                        "kind": "bureau_step",
                        "alarm_id": alarm_id,
                        "step": step,
                        "at": datetime.now(UTC).isoformat(),
                        "actor": "Officer Wang (Luhe county bureau)",
                        "comment": f"step {step} from the bureau",
                    },
                },
                strict=False,
            )
            .model_dump_json()
            .encode()
        )
        assert self.c is not None
        info = self.c.publish(topic(self.enterprise, "bureau_step"), body, qos=1)
        info.wait_for_publish(10)


def _leak(mqtt_broker: tuple[str, int], plant: Plant) -> None:
    t = next(s.binding.topic for s in plant.sensors() if s.tag == TAG)  # type: ignore[union-attr]
    pub = Publisher(*mqtt_broker)
    now = time.time_ns() // 1000
    # 3 ppm of chlorine, over the GB/T 50493 setpoints, for longer than the 3 s on-delay
    for ts in range(now - 8_000_000, now + 1, 2_000_000):
        pub.publish(t, json_payload(Reading(TAG, ts, 3.0)))
    pub.close()


def _q(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql, args).fetchall()


async def test_alarm_events_go_up_in_order_bureau_steps_come_down_restart_doubles_nothing(
    example_plant: Plant,
    db_dsn: str,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    private_mosquitto: PrivateMosquitto,
    tmp_path: Path,
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    e = plant.enterprise.id
    cfg = replace(
        daemon_config(tmp_path, db_dsn, plant),
        alarms=webhook_settings("http://127.0.0.1:9/unused", repeat_s=0),
        uplink=UplinkSettings(
            enabled=True,
            url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
            heartbeat_interval_s=1.0,
            poll_interval_s=0.05,
            ack_timeout_s=5,
        ),
    )
    bureau = BureauBroker(private_mosquitto.port, e)
    bureau.start()
    try:
        async with Daemon(cfg, plant) as d:
            assert d.w is not None and d.w.uplink is not None and d.w.uplink.downlink is not None
            down = d.w.uplink.downlink
            await wait_for(down.subscribed.is_set, "the downlink's subscription")
            await wait_for(lambda: "registration" in bureau.kinds(), "the registration at the bureau")
            await wait_for(lambda: "assessments" in bureau.kinds(), "the assessment register at the bureau")
            _leak(mqtt_broker, plant)
            await wait_for(
                lambda: any(ev.event == "raised" and ev.sensor == TAG for _, ev in bureau.events()),
                "a raised alarm event at the bureau",
            )
            raised = next(ev for _, ev in bureau.events() if ev.event == "raised" and ev.sensor == TAG)
            alarm_id = raised.alarm_id
            local = int(alarm_id.rsplit(":", 1)[1])
            assert alarm_id == f"{e}:{local}" and raised.tier_name in ("red", "orange", "yellow", "blue")
            base = f"http://127.0.0.1:{d.http_port}/api/v1/alarms/{local}"
            async with aiohttp.ClientSession() as http:
                op = {"Authorization": f"Bearer {bearer('op1')}"}
                async with http.post(f"{base}/ack", headers=op, json={"comment": "leak isolated"}) as r:
                    assert r.status == 200, await r.text()
                await wait_for(
                    lambda: any(ev.event == "acked" and ev.alarm_id == alarm_id for _, ev in bureau.events()),
                    "the acknowledgement at the bureau",
                )

                def reading_seen() -> bool:  # a heartbeat says when the plant's broker last gave a reading
                    with bureau.lock:
                        beats = [e.payload for e in bureau.got if e.kind == "heartbeat"]
                    return any(ep.last_reading_at is not None for b in beats for ep in b.endpoints)  # type: ignore[union-attr]

                await wait_for(reading_seen, "a heartbeat with the last reading's time")

                # the bureau's steps come down and are recorded on the same alarm
                bureau.step(alarm_id, "received")
                bureau.step(alarm_id, "received")  # a second delivery of the same step: recorded once
                bureau.step(alarm_id, "verified")
                bureau.step(alarm_id, "closed")  # out of order: the enterprise's feedback comes first
                bureau.step(f"{e}:999999", "received")  # no such alarm at this plant
                bureau.step(alarm_id, "received", raw=b'{"schema_version": 1, "kind": "bureau_step"}')
                st = down.stats
                await wait_for(
                    lambda: st.applied + st.duplicates + st.refused + st.failed >= 6,
                    "six bureau messages handled",
                )
                async with http.get(base, headers=op) as r:
                    detail = await r.json()
                steps = [
                    (ev["kind"], ev["actor"], ev["comment"])
                    for ev in detail["events"]
                    if "bureau" in ev["kind"]
                ]
                assert steps == [
                    ("bureau_received", "Officer Wang (Luhe county bureau)", "step received from the bureau"),
                    ("bureau_verified", "Officer Wang (Luhe county bureau)", "step verified from the bureau"),
                ]
                assert detail["bureau_step"] == "verified"
                assert (down.stats.applied, down.stats.duplicates, down.stats.refused) == (2, 1, 3)

                # the enterprise's feedback (API), then the bureau closes: in order now
                boss = {"Authorization": f"Bearer {bearer('boss')}"}
                async with http.post(f"{base}/bureau/feedback", headers=boss, json={"comment": "done"}) as r:
                    assert r.status == 200, await r.text()
                bureau.step(alarm_id, "closed")
                await wait_for(lambda: down.stats.applied >= 3, "the closing step recorded")
                async with http.get(f"http://127.0.0.1:{d.http_port}/metrics") as r:
                    metrics = await r.text()
                async with http.get(f"http://127.0.0.1:{d.http_port}/readyz") as r:
                    ready = await r.json()
            assert 'hazmon_uplink_counters{counter="down_refused"} 3.0' in metrics
            assert "hazmon_uplink_connected 1.0" in metrics
            assert ready["checks"]["uplink"]["ok"] is True, ready
            await wait_for(
                lambda: any(ev.event == "bureau_closed" for _, ev in bureau.events()),
                "the plant's record of the closing back at the bureau",
            )
        # refused messages are kept with their reason (written by the daemon's batch writer)
        reasons = sorted(
            str(r[0]) for r in _q(db_dsn, "SELECT reason FROM collector_dead_letter WHERE source = 'uplink'")
        )
        assert reasons == ["link_refused", "step_refused", "unknown_alarm"]

        first_run = bureau.events()
        mine = [(seq, ev) for seq, ev in first_run if ev.alarm_id == alarm_id]
        assert [ev.event for _, ev in mine if ev.event not in ("updated", "notified")][:2] == [
            "raised",
            "acked",
        ]
        assert [ev.event for _, ev in mine if ev.event.startswith("bureau_")] == [
            "bureau_received",
            "bureau_verified",
            "bureau_feedback",
            "bureau_closed",
        ]
        seqs = [seq for seq, _ in first_run]
        assert seqs == sorted(seqs)  # in order
        ids = [ev.event_id for _, ev in first_run]
        assert len(ids) == len(set(ids))  # once each
        # every lifecycle event recorded for the alarm went up, in the transaction that recorded it
        recorded = [
            int(r[0])
            for r in _q(
                db_dsn,
                "SELECT id FROM alarm_event WHERE alarm_id = %s AND kind <> "
                "ALL('{notified,notify_failed}') ORDER BY id",
                local,
            )
        ]
        assert [ev.event_id for _, ev in mine] == recorded

        # a restart (same database, same plant): nothing doubled, the link goes on
        heartbeats = bureau.kinds().count("heartbeat")
        async with Daemon(cfg, plant):
            await wait_for(
                lambda: bureau.kinds().count("heartbeat") > heartbeats, "a heartbeat of the second run"
            )
        ids = [ev.event_id for _, ev in bureau.events()]
        assert len(ids) == len(set(ids))
        assert bureau.kinds().count("registration") == 1
        assert bureau.kinds().count("assessments") == 1
        outbox = _q(
            db_dsn,
            "SELECT count(*), count(DISTINCT dedupe_key) FROM uplink_outbox WHERE kind = 'alarm_event'",
        )
        assert outbox[0][0] == outbox[0][1] == len(ids)
    finally:
        bureau.stop()


async def test_a_bureau_outage_leaves_the_daemon_ready_and_the_outbox_drains_when_it_is_back(
    example_plant: Plant,
    db_dsn: str,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    private_mosquitto: PrivateMosquitto,
    tmp_path: Path,
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    cfg = replace(
        daemon_config(tmp_path, db_dsn, plant),
        uplink=UplinkSettings(
            enabled=True,
            url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
            heartbeat_interval_s=1.0,
            poll_interval_s=0.05,
            ack_timeout_s=2,
            retry_max_s=0.5,
        ),
    )
    private_mosquitto.stop()  # the bureau's broker is away when the plant starts
    async with Daemon(cfg, plant) as d:
        assert d.w is not None and d.w.uplink is not None
        svc = d.w.uplink
        await wait_for(
            lambda: (svc.outbox_pending or 0) >= 3, "registration, register and heartbeats waiting"
        )
        states = d.w.sources.states
        await wait_for(lambda: states.get("gds", (False, ""))[0], "the plant's broker connected")
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{d.http_port}/readyz") as r:
            ready = await r.json()
            status = r.status
        link = ready["checks"]["uplink"]
        assert link["ok"] is True and link["connected"] is False and link["last_error"], link
        assert "uplink" not in ready["degraded"]
        assert status == 200, ready  # a bureau outage is not a plant outage

        waiting = [
            int(r[0]) for r in _q(db_dsn, "SELECT seq FROM uplink_outbox WHERE sent_at IS NULL ORDER BY seq")
        ]
        bureau = BureauBroker(private_mosquitto.port, plant.enterprise.id)
        private_mosquitto.start()
        bureau.start()

        def got_seqs() -> list[int]:
            with bureau.lock:
                return [e.seq for e in bureau.got]

        try:
            await wait_for(lambda: set(waiting) <= set(got_seqs()), "what waited, at the bureau")
            assert got_seqs()[: len(waiting)] == waiting  # in order
            assert svc.sender.connected
            await wait_for(lambda: "heartbeat" in bureau.kinds(), "a heartbeat at the bureau")
            with bureau.lock:
                beat = next(e.payload for e in bureau.got if e.kind == "heartbeat")
            assert [(ep.endpoint, ep.protocol) for ep in beat.endpoints] == [("gds", "mqtt")]  # type: ignore[union-attr]
        finally:
            bureau.stop()
