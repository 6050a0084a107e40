"""Issue 3: a `normal` run at `--speed 1000` over the network, every reading arriving inside its band.

`hazmon simulate` runs as a subprocess (the real CLI) on the example plant,
publishing to a Mosquitto of this test's own and serving OPC UA on a free port.
A `mosquitto_sub` (C, so the test's own receiving does not compete with the
simulator for the CPU of a loaded 2-core machine) records every MQTT message,
and an asyncua client reads every OPC UA node while the day runs. Every value
received must lie inside its sensor's normal band (between L and H, gas below
its first level), and every MQTT reading of the run must arrive.

Six simulated hours (21.6 s of nominal pacing) run the same code as a day; the
issue's timing goal (a whole day in under two minutes of wall time) is a speed
goal, measured by `bench/network_day.py`, not asserted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asyncua import Client, ua

from hazmon.plant import MqttBinding, OpcUaBinding, Plant, Sensor, effective_limits, load, to_us
from testkit import private_plant_file
from tests.conftest import PrivateMosquitto, free_port
from tests.simulators.test_cli_recording import START, START_ISO
from tests.simulators.test_serving import _ts

RUN_S = 6 * 3600
SPEED = 1000
SEED = 11  # the seed of the in-process day test (test_engine.py), so a failure here is the network's


def _band(s: Sensor) -> tuple[float | None, float | None]:
    """(bottom, top) of the normal band: strictly above L (or LL), strictly below H (or HH)."""
    lim = effective_limits(s)
    top = lim.h if lim.h is not None else lim.hh
    bottom = lim.l if lim.l is not None else lim.ll
    return bottom, top


def _outside(value: float, band: tuple[float | None, float | None]) -> bool:
    bottom, top = band
    return (top is not None and value >= top) or (bottom is not None and value <= bottom)


def _start_subscriber(port: int, prefix: str, out: Path) -> subprocess.Popen[bytes]:
    """mosquitto_sub writing 'topic payload' lines to ``out``; returns once it is subscribed."""
    exe = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    pub = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"
    f = out.open("wb")
    proc = subprocess.Popen(
        [exe, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-v", "-t", f"{prefix}/#"],
        stdout=f,
        stderr=subprocess.DEVNULL,
    )
    f.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # a probe message shows the subscription is in place
        subprocess.run(
            [pub, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", f"{prefix}/probe", "-m", "probe"],
            check=True,
            timeout=10,
        )
        time.sleep(0.2)
        if b"probe" in out.read_bytes():
            return proc
    proc.terminate()
    raise AssertionError("mosquitto_sub did not receive its probe within 20 s")


def _lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


async def _read_opcua_until(
    url: str, sensors: list[Sensor], done: asyncio.Event, seen: dict[str, list[tuple[float, int, int]]]
) -> None:
    """Read every OPC UA node about five times a second until ``done``: (value, status, source µs)."""
    client: Client | None = None
    try:
        while not done.is_set():
            try:
                client = Client(url, timeout=10)
                await client.connect()
                break
            except (TimeoutError, OSError, ua.UaError):
                client = None
                await asyncio.sleep(0.2)
        if client is None:
            return
        nodes = [client.get_node(s.binding.node) for s in sensors if isinstance(s.binding, OpcUaBinding)]
        while not done.is_set():
            try:
                dvs = await client.read_attributes(nodes, ua.AttributeIds.Value)
            except (TimeoutError, OSError, ua.UaError, ConnectionError):
                break  # the simulator stopped its server at the end of the day
            for s, dv in zip(sensors, dvs, strict=True):
                ts = to_us(dv.SourceTimestamp) if dv.SourceTimestamp is not None else 0
                value = dv.Value.Value if dv.Value is not None else None
                seen[s.tag].append((float("nan") if value is None else value, dv.StatusCode.value, ts))
            await asyncio.sleep(0.2)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):  # the server may be gone already
                await client.disconnect()


@pytest.mark.slow
async def test_normal_at_speed_1000_over_the_network(
    tmp_path: Path, private_mosquitto: PrivateMosquitto, topic_prefix: str
) -> None:
    opcua_port = free_port()
    plant_file = private_plant_file(tmp_path, private_mosquitto.port, opcua_port, topic_prefix)
    plant: Plant = load(plant_file)
    mqtt_sensors = {s.binding.topic: s for s in plant.sensors() if isinstance(s.binding, MqttBinding)}
    opcua_sensors = [s for s in plant.sensors() if isinstance(s.binding, OpcUaBinding)]
    assert all(
        s.binding.payload == "json" for s in mqtt_sensors.values() if isinstance(s.binding, MqttBinding)
    )
    expected_messages = sum(int(RUN_S / s.period_s) for s in mqtt_sensors.values())

    received = tmp_path / "mqtt.txt"
    sub = _start_subscriber(private_mosquitto.port, topic_prefix, received)
    seen: dict[str, list[tuple[float, int, int]]] = {s.tag: [] for s in opcua_sensors}
    done = asyncio.Event()
    log = (tmp_path / "simulate.log").open("wb")
    try:
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hazmon",
            "simulate",
            "-c",
            str(plant_file),
            "--scenario",
            "normal",
            "--seed",
            str(SEED),
            "--start",
            START_ISO,
            "--duration",
            "6h",
            "--speed",
            str(SPEED),
            "--data-dir",
            str(tmp_path / "sim-data"),
            stdout=log,
            stderr=log,
        )
        reader = asyncio.create_task(
            _read_opcua_until(f"opc.tcp://127.0.0.1:{opcua_port}/hazmon", opcua_sensors, done, seen)
        )
        try:
            async with asyncio.timeout(280):
                rc = await proc.wait()
        finally:
            elapsed = time.monotonic() - t0
            done.set()
            await reader
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        output = (tmp_path / "simulate.log").read_text(errors="replace")
        assert rc == 0, output[-3000:]
        # the subscriber may still be draining the broker's queue
        deadline = time.monotonic() + 60
        # + 1: the probe; the file grows from another process
        while _lines(received) < expected_messages + 1 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    finally:
        log.close()
        sub.terminate()
        sub.wait(10)

    # every MQTT reading of the run arrived, each inside its sensor's band
    n = 0
    outside: list[str] = []
    last_ts = 0
    with received.open("rb") as f:
        for line in f:
            topic, _, payload = line.rstrip(b"\n").partition(b" ")
            s = mqtt_sensors.get(topic.decode())
            if s is None:
                continue  # the probe
            body = json.loads(payload)
            n += 1
            if body["q"] != 0 or _outside(body["v"], _band(s)):
                outside.append(f"{s.tag} {body}")
            last_ts = max(last_ts, _ts(body["ts"]))
    assert outside == [], f"{len(outside)} MQTT values outside their normal band, e.g. {outside[:5]}"
    assert n == expected_messages, f"{n} MQTT messages received, {expected_messages} published"
    assert last_ts == START + RUN_S * 1_000_000

    # the OPC UA client read the run as it went, every value good and inside its band
    for s in opcua_sensors:
        values = [(v, st, ts) for v, st, ts in seen[s.tag] if st != ua.StatusCodes.BadWaitingForInitialData]
        assert len(values) > 20, f"{s.tag}: only {len(values)} OPC UA reads in the run"
        bad = [(v, st, ts) for v, st, ts in values if st != ua.StatusCodes.Good or _outside(v, _band(s))]
        assert bad == [], f"{s.tag}: OPC UA values outside the normal band or not good: {bad[:5]}"
        stamps = [ts for _, _, ts in values]
        assert stamps == sorted(stamps) and stamps[-1] - stamps[0] > 0.8 * RUN_S * 1_000_000, s.tag

    print(
        f"\n{RUN_S / 3600:.0f} simulated hours at --speed {SPEED}: {elapsed:.1f} s wall ({n} MQTT messages)"
    )
