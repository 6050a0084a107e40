"""The simulated plant over the network: real Mosquitto, real asyncua servers and clients."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hazmon.plant import MqttBinding, Plant, Quality, Reading, to_us
from hazmon.simulators import Simulation, parse_scenario_text
from hazmon.simulators.mqtt_publisher import MqttPublisher, MqttPublishError
from hazmon.simulators.opcua_server import NAMESPACE_URI, SimOpcUaServer
from hazmon.simulators.runner import serve
from hazmon.simulators.serving import build_sinks, run_stream
from tests.conftest import PrivateMosquitto, free_port

START = 1_780_000_000_000_000


class Subscriber:
    """A plain paho subscriber collecting (topic, payload) on a topic filter."""

    def __init__(self, host: str, port: int, topic: str, client_id: str = "", clean: bool = True) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._subscribed = threading.Event()
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=clean,
        )
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.subacks = 0
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self._suback()
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.reconnect_delay_set(1, 2)
        self.c.connect(host, port)
        self.c.loop_start()
        assert self._subscribed.wait(10), "no SUBACK"

    def _suback(self) -> None:
        self.subacks += 1
        self._subscribed.set()

    def wait_for(self, n: int, timeout_s: float = 30.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def subscriber_factory() -> Iterator[list[Subscriber]]:
    subs: list[Subscriber] = []
    yield subs
    for s in subs:
        s.close()


def _ts(text: str) -> int:
    return to_us(datetime.fromisoformat(text.replace("Z", "+00:00")))


def _mqtt_tags(plant: Plant) -> dict[str, MqttBinding]:
    return {s.tag: s.binding for s in plant.sensors() if isinstance(s.binding, MqttBinding)}


@pytest.mark.parametrize(("protocol", "qos"), [("5", 1), ("3.1.1", 0)])
async def test_mqtt_json_carries_exactly_the_in_process_readings(
    example_plant: Plant,
    private_mosquitto: PrivateMosquitto,
    topic_prefix: str,
    subscriber_factory: list[Subscriber],
    protocol: str,
    qos: int,
) -> None:
    # a broker of our own: the shared one queues at most 1000 messages per slow subscriber
    host, port = "127.0.0.1", private_mosquitto.port
    plant = example_plant.retarget(mqtt_urls={"gds": f"mqtt://{host}:{port}"}, topic_prefix=topic_prefix)
    plant = replace(plant, mqtt=tuple(replace(b, protocol=protocol, qos=qos) for b in plant.mqtt))
    bound = _mqtt_tags(plant)
    expected = [r for r in Simulation(plant, "chlorine-leak", 5, START).readings(900) if r.tag in bound]
    sub = Subscriber(host, port, f"{topic_prefix}/#")
    subscriber_factory.append(sub)
    pub = MqttPublisher(plant.mqtt[0], plant)
    sim = Simulation(plant, "chlorine-leak", 5, START)
    counters = await run_stream(sim.steps(900), plant, [pub], start_us=START, speed=math.inf)
    got = sub.wait_for(len(expected))
    assert counters["readings"] == len(expected)
    assert pub.counters["queue_full"] == pub.counters["no_conn_dropped"] == pub.counters["errors"] == 0
    by_topic = {b.topic: tag for tag, b in bound.items()}
    decoded = []
    for topic, payload in got:
        body = json.loads(payload)
        decoded.append(Reading(by_topic[topic], _ts(body["ts"]), body["v"], Quality(body["q"])))
    assert sorted(decoded) == sorted(expected)
    # the leak shows over the network too
    assert max(r.value for r in decoded if r.tag == "AT-101") > 0.678


async def test_mqtt_batch_number_and_nested_field_formats(
    example_plant: Plant,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    subscriber_factory: list[Subscriber],
) -> None:
    host, port = mqtt_broker

    def rebind(s):  # type: ignore[no-untyped-def]
        if s.tag.startswith("GT-2"):
            return replace(s, binding=MqttBinding("gds", "plant/lpg-spheres/batch", "v", "batch"))
        if s.tag.startswith("GT-3"):
            return replace(s, binding=MqttBinding("gds", f"plant/meoh/{s.tag}", "", "number"))
        if s.tag == "AT-301":
            return replace(s, binding=MqttBinding("gds", "plant/meoh/AT-301", "data.value", "json"))
        return s

    hs = tuple(replace(h, sensors=tuple(rebind(s) for s in h.sensors)) for h in example_plant.hazard_sources)
    plant = replace(example_plant, hazard_sources=hs).retarget(
        mqtt_urls={"gds": f"mqtt://{host}:{port}"}, topic_prefix=topic_prefix
    )
    sub = Subscriber(host, port, f"{topic_prefix}/#")
    subscriber_factory.append(sub)
    expected = list(Simulation(plant, "normal", 2, START).readings(10))
    pub = MqttPublisher(plant.mqtt[0], plant)
    await run_stream(
        Simulation(plant, "normal", 2, START).steps(10), plant, [pub], start_us=START, speed=math.inf
    )
    # 10 s: 5 rounds with GT-2xx readings -> 5 batch messages; 4 number sensors x 5; AT-301 x 5; AT-1xx 6 x 5
    got = sub.wait_for(5 + 20 + 5 + 30 + 5)
    batches = [json.loads(p) for t, p in got if t.endswith("/plant/lpg-spheres/batch")]
    assert len(batches) == 5
    assert [r["tag"] for r in batches[0]["readings"]] == [
        "GT-201",
        "GT-202",
        "GT-203",
        "GT-204",
        "GT-205",
        "GT-206",
    ]
    exp = {(r.tag, r.ts_us): r for r in expected}
    for b in batches:
        for item in b["readings"]:
            r = exp[(item["tag"], _ts(item["ts"]))]
            assert (item["v"], item["q"]) == (r.value, int(r.quality))
    numbers = [(t.rsplit("/", 1)[1], float(p.decode())) for t, p in got if "/plant/meoh/GT-3" in t]
    assert len(numbers) == 20
    assert sorted(numbers) == sorted((r.tag, r.value) for r in expected if r.tag.startswith("GT-3"))
    nested = [json.loads(p) for t, p in got if t.endswith("/plant/meoh/AT-301")]
    assert len(nested) == 5 and set(nested[0]) == {"ts", "data", "q"} and "value" in nested[0]["data"]


async def _client_read(url: str, tag: str, **login: str) -> tuple[ua.DataValue, int]:
    client = Client(url, timeout=10)
    if "security" in login:
        await client.set_security_string(login["security"])
    if "user" in login:
        client.set_user(login["user"])
        client.set_password(login["password"])
    async with client:
        ns = await client.get_namespace_index(NAMESPACE_URI)
        dv = await client.get_node(f"ns=2;s={tag}").read_data_value()
        return dv, ns


async def test_opcua_address_space_values_status_and_source_timestamps(
    example_plant: Plant, tmp_path: Path
) -> None:
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/hazmon"
    plant = example_plant.retarget(opcua_urls={"dcs": url})
    server = SimOpcUaServer(plant.opcua[0], plant, tmp_path)
    await server.start()
    try:
        sim = Simulation(plant, "normal", 3, START)
        last: dict[str, Reading] = {}
        for _, batch in sim.steps(30):
            await server.send(batch)
            last.update({r.tag: r for r in batch if r.tag in server._nodes})
        client = Client(url, timeout=10)
        async with client:
            assert await client.get_namespace_index(NAMESPACE_URI) == 2
            node = await client.nodes.objects.get_child(["2:hx-chem", "2:cl2-tankfarm", "2:LT-101"])
            assert node.nodeid == ua.NodeId("LT-101", 2)
            for tag in ("LT-101", "PT-201", "TT-304", "FT-302"):
                dv = await client.get_node(f"ns=2;s={tag}").read_data_value()
                r = last[tag]
                assert dv.Value.Value == r.value
                assert dv.StatusCode.is_good()
                assert to_us(dv.SourceTimestamp) == r.ts_us
            rng = await (await node.get_child("0:EURange")).read_value()
            assert (rng.Low, rng.High) == (0.0, 2.4)
            eu = await (await node.get_child("0:EngineeringUnits")).read_value()
            assert eu.DisplayName.Text == "m" and eu.UnitId == 0x4D5452  # UNECE "MTR"
            # quality maps to the StatusCode
            await server.send([Reading("LT-101", START + 31_000_000, 2.47, Quality.BAD)])
            await server.send([Reading("PT-101", START + 31_000_000, 0.5, Quality.UNCERTAIN)])
            dv = await client.get_node("ns=2;s=LT-101").read_data_value(raise_on_bad_status=False)
            assert dv.StatusCode.is_bad()  # OPC UA servers do not hand out the value of a Bad item
            assert to_us(dv.SourceTimestamp) == START + 31_000_000
            dv = await client.get_node("ns=2;s=PT-101").read_data_value(raise_on_bad_status=False)
            assert dv.StatusCode.is_uncertain() and dv.Value.Value == 0.5
    finally:
        await server.stop()


async def test_opcua_history_read_by_asyncuas_own_client(example_plant: Plant, tmp_path: Path) -> None:
    """`--opcua-history`: every value written is there for HistoryRead, and the nodes say so."""
    url = f"opc.tcp://127.0.0.1:{free_port()}/hazmon"
    plant = example_plant.retarget(opcua_urls={"dcs": url})
    (server,) = build_sinks(plant, tmp_path, mqtt=False, opcua_history_s=600)
    assert isinstance(server, SimOpcUaServer)
    await server.start()
    try:
        t0 = to_us(datetime.now(UTC)) - 5_000_000
        for k in range(4):
            await server.send([Reading("LT-101", t0 + k * 1_000_000, 1.0 + k)])
        async with Client(url, timeout=10) as client:
            node = client.get_node("ns=2;s=LT-101")
            level = await node.read_attribute(ua.AttributeIds.AccessLevel)
            assert level.Value.Value & 0x04, "AccessLevel has HistoryRead"
            assert (await node.read_attribute(ua.AttributeIds.Historizing)).Value.Value is True
            history = await node.read_raw_history(
                datetime.fromtimestamp(t0 / 1e6 - 1, UTC), datetime.now(UTC), return_bounds=False
            )
    finally:
        await server.stop()
    got = [(to_us(dv.SourceTimestamp), dv.Value.Value) for dv in history if dv.StatusCode.is_good()]
    assert got == [(t0 + k * 1_000_000, 1.0 + k) for k in range(4)]


async def test_opcua_subscription_sees_simulated_source_timestamps(
    example_plant: Plant, tmp_path: Path
) -> None:
    """The collector subscribes: data changes carry the simulated source time, in order."""
    url = f"opc.tcp://127.0.0.1:{free_port()}/hazmon"
    plant = example_plant.retarget(opcua_urls={"dcs": url})
    server = SimOpcUaServer(plant.opcua[0], plant, tmp_path)
    seen: list[tuple[float, int]] = []

    class Handler:
        def datachange_notification(self, node: object, val: float, data: object) -> None:
            dv = data.monitored_item.Value  # type: ignore[attr-defined]
            seen.append((val, to_us(dv.SourceTimestamp)))

    await server.start()
    try:
        client = Client(url, timeout=10)
        async with client:
            subscription = await client.create_subscription(20, Handler())
            await subscription.subscribe_data_change(client.get_node("ns=2;s=PT-101"))
            sim = Simulation(plant, "sphere-heat", 1, START)
            await serve(
                sim.steps(20), [server], {s.tag: "dcs" for s in plant.sensors()}, start_us=START, speed=20.0
            )
            await _until(lambda: bool(seen) and seen[-1][1] == START + 20_000_000, 10)
        written = {
            r.ts_us: r.value
            for r in Simulation(plant, "sphere-heat", 1, START).readings(20)
            if r.tag == "PT-101"
        }
        data = [
            (v, t) for v, t in seen if t in written
        ]  # the initial BadWaitingForInitialData value is skipped
        assert data and data[-1][1] == START + 20_000_000
        assert all(written[t] == v for v, t in data)
        assert [t for _, t in data] == sorted({t for _, t in data})
    finally:
        await server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sign", "sign_and_encrypt"])
async def test_opcua_secure_endpoint_with_login(
    example_plant: Plant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    port = free_port()
    url = f"opc.tcp://127.0.0.1:{port}/hazmon"
    monkeypatch.setenv("HAZMON_TEST_OPCUA_PW", "s3cret-pw")
    plant = example_plant.retarget(opcua_urls={"dcs": url})
    ep = replace(
        plant.opcua[0],
        security=mode,
        username="operator",
        password_env="HAZMON_TEST_OPCUA_PW",
        server_certificate=str(tmp_path / "trust" / "dcs-server.der"),
    )
    plant = replace(plant, opcua=(ep,))
    server = SimOpcUaServer(ep, plant, tmp_path / "data")
    await server.start()
    try:
        assert (tmp_path / "data" / "opcua" / "dcs" / "server-cert.der").exists()
        assert (tmp_path / "trust" / "dcs-server.der").read_bytes() == (
            tmp_path / "data" / "opcua" / "dcs" / "server-cert.der"
        ).read_bytes()
        await server.send([Reading("LT-101", START, 1.25, Quality.GOOD)])
        ckey, ccert = tmp_path / "client-key.pem", tmp_path / "client-cert.der"
        await setup_self_signed_certificate(
            ckey,
            ccert,
            "urn:hazmon:test-client",
            "localhost",
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "hazmon test client"},
        )
        policy = "Sign" if mode == "sign" else "SignAndEncrypt"
        sec = f"Basic256Sha256,{policy},{ccert},{ckey}"
        dv, ns = await _client_read(url, "LT-101", security=sec, user="operator", password="s3cret-pw")
        assert (dv.Value.Value, ns) == (1.25, 2)
        with pytest.raises(Exception):  # noqa: B017 - asyncua raises several kinds for a refused session
            await _client_read(url, "LT-101", security=sec, user="operator", password="wrong")
        with pytest.raises(Exception):  # noqa: B017 - no unsecured endpoint is offered
            await _client_read(url, "LT-101")
        # a restart reuses the certificate generated on first start
        before = (tmp_path / "data" / "opcua" / "dcs" / "server-cert.der").read_bytes()
        await server.stop()
        await server.start()
        assert (tmp_path / "data" / "opcua" / "dcs" / "server-cert.der").read_bytes() == before
        dv, _ = await _client_read(url, "LT-101", security=sec, user="operator", password="s3cret-pw")
        assert dv.Value.Value == 1.25  # the last value survives the restart
    finally:
        await server.stop()


async def test_endpoint_outages_stop_and_restart_servers(
    example_plant: Plant,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    tmp_path: Path,
    subscriber_factory: list[Subscriber],
) -> None:
    host, port = mqtt_broker
    url = f"opc.tcp://127.0.0.1:{free_port()}/hazmon"
    plant = example_plant.retarget(
        opcua_urls={"dcs": url}, mqtt_urls={"gds": f"mqtt://{host}:{port}"}, topic_prefix=topic_prefix
    )
    text = """
name: outages
events:
  - {at: 10, outage: {endpoint: dcs, duration_s: 20}}
  - {at: 40, outage: {endpoint: gds, duration_s: 20}}
"""
    sim = Simulation(plant, parse_scenario_text(text), 1, START)
    sub = Subscriber(host, port, f"{topic_prefix}/plant/cl2-tankfarm/AT-101")
    subscriber_factory.append(sub)
    server = SimOpcUaServer(plant.opcua[0], plant, tmp_path)
    pub = MqttPublisher(plant.mqtt[0], plant)
    await run_stream(
        sim.steps(80), plant, [server, pub], start_us=START, speed=math.inf, down=lambda: sim.down_endpoints
    )
    assert server.counters["starts"] == 2 and server.counters["stops"] == 2
    assert pub.counters["connects"] == 2 and pub.counters["disconnects"] == 2
    got = sub.wait_for(30)
    ts = sorted(_ts(json.loads(p)["ts"]) for _, p in got)
    gap = [t for t in ts if START + 40_000_000 <= t < START + 60_000_000]
    assert gap == [] and len(ts) == 30  # 80 s / 2 s = 40 readings minus 10 in the outage


def _wait(cond: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


async def _until(cond: Callable[[], bool], timeout_s: float) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("qos", [1, 0])
async def test_broker_restart_qos1_queues_and_resends_qos0_counts_losses(
    example_plant: Plant, private_mosquitto: PrivateMosquitto, topic_prefix: str, qos: int
) -> None:
    port = private_mosquitto.port
    plant = example_plant.retarget(mqtt_urls={"gds": f"mqtt://127.0.0.1:{port}"}, topic_prefix=topic_prefix)
    plant = replace(plant, mqtt=tuple(replace(b, qos=qos) for b in plant.mqtt))
    sim = Simulation(plant, "normal", 9, START)
    steps = sim.steps(40, 10)
    pub = MqttPublisher(plant.mqtt[0], plant)
    sub = Subscriber(
        "127.0.0.1", port, f"{topic_prefix}/#", client_id=f"sub-{topic_prefix[-10:]}", clean=False
    )
    await pub.start()
    try:
        _, a = next(steps)
        a = [r for r in a if r.tag in pub.bindings]
        await pub.send(a)
        assert len(sub.wait_for(len(a))) == len(a)
        private_mosquitto.stop()
        await _until(lambda: not pub.connected, 10)
        assert not pub.connected
        _, b = next(steps)
        b = [r for r in b if r.tag in pub.bindings]
        await pub.send(b)
        if qos == 1:
            assert pub.counters["queued_offline"] == len(b)
        else:
            assert pub.counters["no_conn_dropped"] == len(b)
        private_mosquitto.start()
        await _until(lambda: pub.connected, 20)
        # the broker acknowledged everything published while it was away (QoS 1)
        await _until(lambda: pub.pending == 0, 20)
        assert pub.pending == 0
        assert pub.counters["connects"] == 2
        # and publishing goes on once the subscriber is back
        await asyncio.to_thread(_wait, lambda: sub.subacks >= 2, 20)
        _, c = next(steps)
        c = [r for r in c if r.tag in pub.bindings]
        await pub.send(c)
        want = {(r.tag, r.ts_us) for r in a + c}

        def received() -> set[tuple[str, int]]:
            return {(t.rsplit("/", 1)[1], _ts(json.loads(p)["ts"])) for t, p in list(sub.messages)}

        await asyncio.to_thread(_wait, lambda: want <= received(), 30)
        assert want <= received()
    finally:
        await pub.stop()
        sub.close()


def _password_file(user: str, password: str) -> Path:
    """A mosquitto password file where mosquitto (started as root, running as user mosquitto) can read it."""
    shared = Path(tempfile.mkdtemp(prefix="hazmon-mqtt-pw-"))
    shared.chmod(0o755)
    pwfile = shared / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), user, password], check=True)
    pwfile.chmod(0o644)
    return pwfile


@pytest.mark.slow
async def test_mqtt_login_with_password_from_environment(
    example_plant: Plant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, topic_prefix: str
) -> None:
    pwfile = _password_file("gds-sim", "pa55")
    shared = pwfile.parent
    broker = PrivateMosquitto(tmp_path, extra_conf=f"password_file {pwfile}\n")
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    broker.start()
    try:
        plant = example_plant.retarget(
            mqtt_urls={"gds": f"mqtt://127.0.0.1:{broker.port}"}, topic_prefix=topic_prefix
        )
        ep = replace(plant.mqtt[0], username="gds-sim", password_env="HAZMON_TEST_MQTT_PW")
        plant = replace(plant, mqtt=(ep,))
        monkeypatch.setenv("HAZMON_TEST_MQTT_PW", "wrong")
        refused = MqttPublisher(ep, plant)
        with pytest.raises(MqttPublishError, match="not connected after 2"):
            await refused.start(timeout_s=2.0)
        monkeypatch.setenv("HAZMON_TEST_MQTT_PW", "pa55")
        pub = MqttPublisher(ep, plant)
        await pub.start()
        await pub.send([Reading("AT-101", START, 0.5)])
        await _until(lambda: pub.pending == 0, 10)
        assert pub.counters["messages"] == 1 and pub.pending == 0
        await pub.stop()
    finally:
        broker.stop()
        shutil.rmtree(shared, ignore_errors=True)
