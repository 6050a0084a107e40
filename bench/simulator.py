"""Simulator throughput beside a minimal raw publisher/server, same run (issue 3).

Measures readings per second that the simulator (Simulation -> payload encoding
-> MqttPublisher, or -> SimOpcUaServer) hands over, and beside it, alternately
in the same run, the rate of:

* a minimal paho-mqtt publisher publishing the same number of pre-encoded
  messages of the same size in a tight loop (same broker, same QoS), counted
  when the broker has acknowledged them (QoS 1) or paho has written them (QoS 0).
  It keeps paho's settings of such a publisher (its network thread, 1000
  messages in flight, the rest queued in paho); the simulator keeps 64 in flight
  and waits for room instead (paho scans its in-flight messages on every
  PUBACK), drives paho from its event loop and corks each round into one TCP
  segment. That is why the simulator beats the raw rate with one reading per
  message;
* a minimal asyncua server with the same number of Double variables, writing
  the same number of values with asyncua's direct write
  (``Server.write_attribute_value``, its fastest public write) in a tight loop.

Each simulator rate is measured twice: "live" (the physics runs as it
publishes: what `hazmon simulate --speed max` does) and "replay" (the stream
generated beforehand: what `hazmon replay --speed max` does, the serving path
alone). Live divided by replay is the share of the time the physics costs.

Fairness of the OPC UA comparison: both servers hold the same number of nodes
(the example plant's 25 OPC UA sensors) and write the same number of values,
one write per reading, each a full DataValue (Double value, StatusCode, source
and server timestamp); the simulator writes every reading of a tick in one pass
into its nodes' Value attributes (the same semantics as asyncua's write: Bad
written as null, a data change to every subscribed monitored item), the raw
server one awaited ``write_attribute_value`` per value. Neither has a client
subscribed while it is timed (a client would be the same for both and would
measure asyncua's publishing, not the writers); the tests check that
subscribed clients see every simulated value. The rounds alternate simulator
live, simulator replay and raw, and each line gives the median of the rounds.

MQTT runs against a private Mosquitto started on a free port (the shared broker
is not loaded). Prints each rate and the ratio simulator/raw; the goal is a
ratio of at least 0.7 (the simulator is not what limits the collector benches).
The machine is shared: run it when `uptime` shows a low load, or raise --rounds.

    .venv/bin/python bench/simulator.py [--sim-seconds 3600] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from asyncua import ua
from asyncua.server.server import Server
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from hazmon.plant import MqttBinding, OpcUaBinding, Plant, load
from hazmon.simulators import Simulation
from hazmon.simulators.mqtt_publisher import MqttPublisher
from hazmon.simulators.opcua_server import SimOpcUaServer
from hazmon.simulators.payloads import encode
from hazmon.simulators.runner import Step, serve
from hazmon.simulators.serving import routes

ROOT = Path(__file__).resolve().parent.parent
START = 1_780_000_000_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mosquitto(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 0\n"
    )
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")


def mqtt_plant(plant: Plant, port: int, qos: int, batched: bool) -> Plant:
    p = plant.retarget(mqtt_urls={"gds": f"mqtt://127.0.0.1:{port}"}, topic_prefix="bench")
    p = replace(p, mqtt=tuple(replace(b, qos=qos) for b in p.mqtt))
    if not batched:
        return p

    def rebind(s):  # type: ignore[no-untyped-def]
        if isinstance(s.binding, MqttBinding):
            return replace(
                s, binding=replace(s.binding, topic=f"bench/{s.hazard_source}/batch", payload="batch")
            )
        return s

    hs = tuple(replace(h, sensors=tuple(rebind(s) for s in h.sensors)) for h in p.hazard_sources)
    return replace(p, hazard_sources=hs)


def stream(plant: Plant, sim_s: float, replay: bool) -> Iterable[Step]:
    """The simulation live, or (replay) generated beforehand so only the serving path is timed."""
    steps = Simulation(plant, "normal", 1, START).steps(sim_s)
    return list(steps) if replay else steps


async def sim_mqtt(plant: Plant, sim_s: float, replay: bool = False) -> tuple[int, float]:
    pub = MqttPublisher(plant.mqtt[0], plant, client_id="bench-sim")
    await pub.start()
    steps = stream(plant, sim_s, replay)
    t0 = time.perf_counter()
    counters = await serve(steps, [pub], routes(plant), start_us=START, speed=math.inf)
    while pub.pending > 0:  # noqa: ASYNC110 - paho's thread counts the acknowledgements
        await asyncio.sleep(0.001)
    dt = time.perf_counter() - t0
    await pub.stop()
    lost = pub.counters["queue_full"] + pub.counters["no_conn_dropped"] + pub.counters["errors"]
    assert lost == 0, pub.counters
    return counters["readings"], dt


def raw_mqtt(port: int, qos: int, messages: list[tuple[str, bytes]]) -> float:
    """Seconds a bare paho publisher takes to hand over ``messages``."""
    done = threading.Event()
    acked = [0]
    n = len(messages)

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, p: object) -> None:
        acked[0] += 1
        if acked[0] >= n:
            done.set()

    c = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id="bench-raw",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    c.on_publish = on_publish
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    time.sleep(0.3)
    t0 = time.perf_counter()
    for topic, payload in messages:
        while c.publish(topic, payload, qos=qos).rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            time.sleep(0.001)
    done.wait(120)
    dt = time.perf_counter() - t0
    c.disconnect()
    c.loop_stop()
    return dt


async def sim_opcua(plant: Plant, sim_s: float, tmp: Path, replay: bool = False) -> tuple[int, float]:
    url = f"opc.tcp://127.0.0.1:{free_port()}/bench"
    p = plant.retarget(opcua_urls={"dcs": url})
    server = SimOpcUaServer(p.opcua[0], p, tmp)
    await server.start()
    steps = stream(p, sim_s, replay)
    t0 = time.perf_counter()
    counters = await serve(steps, [server], routes(p), start_us=START, speed=math.inf)
    dt = time.perf_counter() - t0
    await server.stop()
    return server.counters["writes"] or counters["readings"], dt


async def raw_opcua(tags: list[str], n: int) -> float:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{free_port()}/raw")
    idx = await server.register_namespace("urn:bench:raw")
    obj = await server.nodes.objects.add_object(idx, "raw")
    nodes = []
    for t in tags:
        v = await obj.add_variable(ua.NodeId(t, idx), t, 0.0, ua.VariantType.Double)
        nodes.append(v.nodeid)
    await server.start()
    k = len(nodes)
    t0 = time.perf_counter()
    for i in range(n):
        dv = ua.DataValue(
            ua.Variant(float(i), ua.VariantType.Double),
            ua.StatusCode(ua.StatusCodes.Good),
            SourceTimestamp=datetime.now(UTC),
            ServerTimestamp=datetime.now(UTC),
        )
        await server.write_attribute_value(nodes[i % k], dv)
        if i % 64 == 0:
            await asyncio.sleep(0)
    dt = time.perf_counter() - t0
    await server.stop()
    return dt


def pre_encoded(plant: Plant, sim_s: float) -> list[tuple[str, bytes]]:
    """The exact messages the simulator publishes, encoded beforehand (for the raw publisher)."""
    bindings = {s.tag: s.binding for s in plant.sensors() if isinstance(s.binding, MqttBinding)}
    out: list[tuple[str, bytes]] = []
    for _, batch in Simulation(plant, "normal", 1, START).steps(sim_s):
        pubs, _ = encode([r for r in batch if r.tag in bindings], bindings)
        out.extend(pubs)
    return out


def report(name: str, sims: list[float], raws: list[float]) -> None:
    s, r = statistics.median(sims), statistics.median(raws)
    print(f"{name:<36} simulator {s:>10,.0f} readings/s   raw {r:>10,.0f} readings/s   ratio {s / r:.2f}")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim-seconds", type=float, default=3600.0, help="simulated seconds per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    plant = load(ROOT / "examples" / "plant.yaml")
    with tempfile.TemporaryDirectory(prefix="hazmon-bench-") as d:
        proc, port = start_mosquitto(Path(d))
        try:
            for label, qos, batched in (
                ("MQTT json, QoS 1", 1, False),
                ("MQTT json, QoS 0", 0, False),
                ("MQTT batch, QoS 1", 1, True),
            ):
                p = mqtt_plant(plant, port, qos, batched)
                msgs = pre_encoded(p, args.sim_seconds)
                per_msg = 1.0
                sims: list[float] = []
                reps: list[float] = []
                raws: list[float] = []
                for _ in range(args.rounds):
                    n, dt = await sim_mqtt(p, args.sim_seconds)
                    per_msg = n / len(msgs)
                    sims.append(n / dt)
                    n, dt = await sim_mqtt(p, args.sim_seconds, replay=True)
                    reps.append(n / dt)
                    raws.append(n / await asyncio.to_thread(raw_mqtt, port, qos, msgs))
                report(f"{label} ({per_msg:.0f}/msg) live", sims, raws)
                report(f"{label} ({per_msg:.0f}/msg) replay", reps, raws)
        finally:
            proc.terminate()
            proc.wait(10)
        tags = [s.tag for s in plant.sensors() if isinstance(s.binding, OpcUaBinding)]
        sims, reps, raws = [], [], []
        for _ in range(args.rounds):
            n, dt = await sim_opcua(plant, args.sim_seconds, Path(d))
            sims.append(n / dt)
            n, dt = await sim_opcua(plant, args.sim_seconds, Path(d), replay=True)
            reps.append(n / dt)
            raws.append(n / await raw_opcua(tags, n))
        report("OPC UA server writes live", sims, raws)
        report("OPC UA server writes replay", reps, raws)


if __name__ == "__main__":
    asyncio.run(main())
