"""End to end: an enterprise's uplink Sender → Mosquitto → the running bureau daemon → its API, and a step back down."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.config import (
    BrokerSettings,
    BureauConfig,
    DatabaseSettings,
    HttpSettings,
    RegionSettings,
    TokenSettings,
)
from hazmon.bureau_daemon import BureauDaemon
from hazmon.plant import Plant
from hazmon.plant.link import BureauStep, parse_envelope
from hazmon.uplink import Sender, UplinkSettings, enqueue
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import Enterprise

TOKENS = {"city-officer": "tok-city", "liuhe-viewer": "tok-liuhe", "jiangning-officer": "tok-jiangning"}


def _token(name: str, role: str, code: str, level: str) -> TokenSettings:
    digest = hashlib.sha256(TOKENS[name].encode()).hexdigest()
    return TokenSettings(name=name, role=role, region=RegionSettings(code, level), sha256=digest)


def bureau_config(dsn: str, port: int) -> BureauConfig:
    return BureauConfig(
        id="nj-city",
        name="南京市应急管理局",
        region=RegionSettings("320100", "city"),
        database=DatabaseSettings(dsn=dsn, migrate=False),
        broker=BrokerSettings(
            url=f"mqtt://127.0.0.1:{port}",
            group="bureau",
            client_id=f"bureau-{uuid.uuid4().hex[:6]}",
            retry_max_s=0.3,
        ),
        http=HttpSettings(port=0),
        tokens=(
            _token("city-officer", "officer", "320100", "city"),
            _token("liuhe-viewer", "viewer", "320116", "county"),  # the example plant's county
            _token("jiangning-officer", "officer", "320115", "county"),  # another county
        ),
    )


async def _until(cond: Callable[[], Any], what: str, within_s: float = 60.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = cond()
        if asyncio.iscoroutine(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Down:
    """The enterprise's side of the down topic: every envelope received."""

    def __init__(self, port: int, eid: str) -> None:
        self.got: list[bytes] = []
        self.ready = threading.Event()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ent-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
        )
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"hazmon/v1/{eid}/down/#", qos=1)
        self.c.on_subscribe = lambda c, u, m, r, p: self.ready.set()
        self.c.on_message = lambda c, u, msg: self.got.append((msg.topic, bytes(msg.payload)))  # type: ignore[arg-type]
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self.ready.wait(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def sender_stop() -> Iterator[list[tuple[threading.Event, threading.Thread]]]:
    started: list[tuple[threading.Event, threading.Thread]] = []
    yield started
    for stop, t in started:
        stop.set()
        t.join(30)


@pytest.mark.slow
async def test_sender_to_daemon_to_api_and_a_step_back_down(
    db_dsn: str,
    make_db: Callable[[], str],
    example_plant: Plant,
    private_mosquitto: PrivateMosquitto,
    sender_stop: list[tuple[threading.Event, threading.Thread]],
) -> None:
    ent = Enterprise(example_plant)
    bureau_dsn = make_db()
    daemon = BureauDaemon(bureau_config(bureau_dsn, private_mosquitto.port))
    await daemon.start()
    down = Down(private_mosquitto.port, ent.id)
    try:
        await _until(daemon.subscriber.connected.is_set, "the bureau's subscription")
        # the enterprise: registration and two events of one alarm through its outbox and Sender
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            enqueue(conn, ent.id, ent.region, ent.registration())
            enqueue(conn, ent.id, ent.region, ent.alarm(42, 100, "raised"))
            enqueue(conn, ent.id, ent.region, ent.alarm(42, 101, "acked", state="active_acked"))
        sender = Sender(
            UplinkSettings(
                enabled=True, url=f"mqtt://127.0.0.1:{private_mosquitto.port}", poll_interval_s=0.05
            ),
            db_dsn,
            ent.id,
        )
        stop = threading.Event()
        t = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        t.start()
        sender_stop.append((stop, t))

        base = f"http://127.0.0.1:{daemon.http_port}/api/v1"

        def auth(name: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {TOKENS[name]}"}

        async with aiohttp.ClientSession() as http:

            async def get(path: str, who: str) -> tuple[int, Any]:
                async with http.get(base + path, headers=auth(who)) as r:
                    return r.status, await r.json()

            async def alarm_with_both_events() -> Any:
                status, body = await get(f"/alarms/{ent.id}:42", "city-officer")
                return body if status == 200 and len(body["events"]) == 2 else None

            alarm = await _until(alarm_with_both_events, "the alarm and its two events at the bureau API")
            assert alarm["state"] == "active_acked" and alarm["tier_name"] == "red"
            assert [e["event"] for e in alarm["events"]] == ["raised", "acked"]

            status, body = await get("/enterprises", "liuhe-viewer")
            assert status == 200 and [e["id"] for e in body["enterprises"]] == [ent.id]
            assert body["enterprises"][0]["open_alarms"] == 1
            status, body = await get(f"/enterprises/{ent.id}", "city-officer")
            assert status == 200 and {s["id"] for s in body["hazard_sources"]} >= {"cl2-tankfarm"}
            status, body = await get("/alarms?tier=red&open=true", "city-officer")
            assert status == 200 and body["count"] == 1
            status, body = await get("/alarms?tier=purple", "city-officer")
            assert status == 400 and body["error"].startswith("query.tier")

            # another county's officer: nothing at all
            status, body = await get("/enterprises", "jiangning-officer")
            assert status == 200 and body["enterprises"] == []
            assert (await get("/alarms", "jiangning-officer"))[1]["alarms"] == []
            assert (await get(f"/alarms/{ent.id}:42", "jiangning-officer"))[0] == 404
            assert (await get(f"/enterprises/{ent.id}", "jiangning-officer"))[0] == 404
            async with http.post(
                f"{base}/alarms/{ent.id}:42/steps",
                headers=auth("jiangning-officer"),
                json={"step": "received"},
            ) as r:
                assert r.status == 404
            # a viewer may not record a step; a bad body names the field
            async with http.post(
                f"{base}/alarms/{ent.id}:42/steps", headers=auth("liuhe-viewer"), json={"step": "received"}
            ) as r:
                assert r.status == 403
            async with http.post(
                f"{base}/alarms/{ent.id}:42/steps", headers=auth("city-officer"), json={"step": "done"}
            ) as r:
                assert r.status == 400 and (await r.json())["error"].startswith("body.step")

            # the city's officer records "received": in the history, and sent down to the enterprise
            async with http.post(
                f"{base}/alarms/{ent.id}:42/steps",
                headers=auth("city-officer"),
                json={"step": "received", "comment": "值班员已接收"},
            ) as r:
                assert r.status == 200, await r.text()
                after = await r.json()
            assert after["bureau_step"] == "received"
            assert (
                after["events"][-1]["origin"] == "bureau" and after["events"][-1]["actor"] == "city-officer"
            )
            async with http.post(
                f"{base}/alarms/{ent.id}:42/steps", headers=auth("city-officer"), json={"step": "received"}
            ) as r:
                assert r.status == 409
            await _until(lambda: down.got, "the step on the enterprise's down topic")
            topic, raw = down.got[0]
            assert topic == f"hazmon/v1/{ent.id}/down/bureau_step"
            env = parse_envelope(raw, topic)
            assert isinstance(env.payload, BureauStep)
            assert (env.payload.alarm_id, env.payload.step, env.payload.actor) == (
                f"{ent.id}:42",
                "received",
                "city-officer",
            )
            assert env.payload.comment == "值班员已接收"

            # the sender counts once the broker's PUBACK is in: maybe after the enterprise has it
            await _until(lambda: daemon.downlink.sent == 1, "the downlink to count the step sent")
            async with http.get(f"http://127.0.0.1:{daemon.http_port}/metrics") as r:
                text = await r.text()
            assert 'hazmon_bureau_messages_total{kind="alarm_event"} 2.0' in text
            assert 'hazmon_bureau_api_refused_total{status="404"}' in text
            assert 'hazmon_bureau_link_state{what="downlink_sent"} 1.0' in text
            async with http.get(f"http://127.0.0.1:{daemon.http_port}/readyz") as r:
                ready = json.loads(await r.text())
            assert r.status == 200 and ready["status"] == "ready", ready
    finally:
        down.close()
        await daemon.stop()


async def test_without_its_broker_the_daemon_is_alive_but_not_ready(make_db: Callable[[], str]) -> None:
    from tests.conftest import free_port

    daemon = BureauDaemon(bureau_config(make_db(), free_port()))  # nothing listens there
    await daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/livez") as r:
                assert r.status == 200
            async with http.get(base + "/readyz") as r:
                body = json.loads(await r.text())
                assert r.status == 503 and body["degraded"] == ["broker"], body
    finally:
        await daemon.stop()
