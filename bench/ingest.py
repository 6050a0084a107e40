"""End-to-end ingest: readings/s published to the broker -> committed in PostgreSQL, beside raw COPY.

Everything is measured side by side in one run on this machine, against a
scratch database (created and dropped) and a private Mosquitto
(``max_queued_messages 0``); the daemon runs as a separate `hazmon run`
process so its CPU and memory are its own (read from /proc).

Phases:
  1. raw COPY: `write_readings` of pre-built batches into ``readings`` (the ceiling);
  2. batched MQTT payloads (500 readings per message) through the daemon;
  3. a bare paho subscriber receiving single-reading messages (the ceiling for 4);
  4. single-reading JSON messages through the daemon;
  5. 10,000 OPC UA items changing at 1 Hz (asyncua server in this process): daemon CPU.

Usage: .venv/bin/python bench/ingest.py [--sensors 10000] [--batch-readings 1000000]
       [--single 60000] [--opcua-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from hazmon.plant import load
from hazmon.plant.reading import from_us
from hazmon.store import ReadingColumns, StorageSettings, migrate, sync_registry, write_readings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # testkit: helpers shared with the tests
from testkit import PrivateMosquitto, free_port  # noqa: E402

ADMIN = os.environ.get("HAZMON_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RESPONSIBLE = """    responsible:
      principal: {name: 张建国, phone: "13800000001"}
      technical: {name: 李明, phone: "13800000002"}
      operational: {name: 王强, phone: "13800000003"}
"""


def plant_yaml(n: int, mqtt_port: int, opcua_port: int, prefix: str, opcua: bool) -> str:
    head = (ROOT / "examples" / "plant.yaml").read_text().split("hazard_sources:")[0]
    head = head.replace("mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{mqtt_port}")
    head = head.replace("client_id: hazmon-hx-chem", f"client_id: bench-{prefix[-8:]}")
    head = head.replace("opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{opcua_port}/big")
    out = [
        head,
        "hazard_sources:\n  - id: bench\n    name: 基准测试罐区\n    kind: storage\n",
        "    people_within_500m: 10\n    chemicals:\n      - {chemical: methanol, max_t: 100}\n",
        RESPONSIBLE,
        "    sensors:\n",
    ]
    for i in range(n):
        if opcua:
            b = f'{{endpoint: dcs, node: "ns=2;s=S{i}"}}'
        elif i % 2 == 0:
            b = f"{{endpoint: gds, topic: {prefix}/batch/all, payload: batch}}"
        else:
            b = f"{{endpoint: gds, topic: {prefix}/single/B{i:05d}}}"
        # MQTT sensors are fed in bursts here (each phase feeds half of them): a 1 h period keeps
        # the unfed half from going stale mid-bench (3 x 60 s did, and the daemon then measured
        # 5,000 sensor-fault alarms instead of ingest); OPC UA items sample at 1 s
        period = 1 if opcua else 3600
        out.append(
            f'      - {{tag: B{i:05d}, kind: temperature, unit: "°C", range: [-40, 80], period_s: {period}, '
            f"binding: {b}}}\n"
        )
    return "".join(out)


def daemon_argv(config: Path) -> list[str]:
    """`hazmon run` as its own process (its CPU and memory are read from /proc)."""
    return [sys.executable, "-m", "hazmon", "--log-level", "warning", "run", "-c", str(config)]


def proc_cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def proc_mem_mb(pid: int) -> tuple[float, float]:
    st = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(st["VmRSS"].split()[0]) / 1024, int(st["VmHWM"].split()[0]) / 1024


def count(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        r = c.execute("SELECT count(*) FROM readings").fetchone()
        return int(str(r[0])) if r else 0


def written(port: int) -> float:
    """Rows the daemon has committed (its own counter: cheaper than count(*) on a growing table)."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith("hazmon_readings_written_total "):
            return float(line.split()[1])
    return 0.0


TRACE = (
    "hazmon_readings_received_total",
    "hazmon_queue_readings",
    "hazmon_writer_buffer_readings",
    "hazmon_readings_written_total",
    "hazmon_write_duration_seconds_sum",
)


def trace_line(port: int, t0: float) -> str:
    """One line of the pipeline's counters (--trace): where readings wait."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    got = dict.fromkeys(TRACE, 0.0)
    for line in body.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in got:
            got[name] += float(line.rsplit(" ", 1)[1])
    r, q, b, w, ws = got.values()
    return (
        f"  t={time.perf_counter() - t0:5.2f}s received {r:>10,.0f} queue {q:>8,.0f} "
        f"writer {b:>8,.0f} written {w:>10,.0f} in-COPY {ws:6.2f}s"
    )


def wait_written(port: int, n: float, limit_s: float = 600, trace_from: float | None = None) -> float:
    deadline = time.monotonic() + limit_s
    next_trace = 0.0
    while (c := written(port)) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {c:.0f} of {n:.0f} readings committed after {limit_s} s")
        if trace_from is not None and time.monotonic() >= next_trace:
            print(trace_line(port, trace_from))
            next_trace = time.monotonic() + 0.25
        time.sleep(0.02)
    return time.perf_counter()


class Pub:
    def __init__(self, port: int) -> None:
        self.c = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv5
        )
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.infos: list[paho.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.c.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:  # every return code checked: never a silent drop
            raise SystemExit(f"publish failed: {paho.error_string(info.rc)}")
        self.infos.append(info)

    def close(self) -> None:
        for i in self.infos:
            i.wait_for_publish(60)
        self.c.disconnect()
        self.c.loop_stop()


def iso(us: int) -> str:
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main() -> None:  # noqa: PLR0912 - the phases read top to bottom
    ap = argparse.ArgumentParser()
    ap.add_argument("--sensors", type=int, default=10_000)
    ap.add_argument("--batch-readings", type=int, default=1_000_000)
    ap.add_argument("--single", type=int, default=60_000)
    ap.add_argument("--opcua-seconds", type=float, default=20.0)
    ap.add_argument("--only-opcua", action="store_true", help="skip the MQTT and COPY phases")
    ap.add_argument(
        "--trace", action="store_true", help="print the pipeline's counters during the MQTT phases"
    )
    a = ap.parse_args()
    n = a.sensors
    work = Path(tempfile.mkdtemp(prefix="hazmon-bench-"))
    broker = PrivateMosquitto(work)
    broker.start()
    db = f"hazmon_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    dsn = ADMIN.rsplit("/", 1)[0] + "/" + db
    prefix = f"bench/{uuid.uuid4().hex[:8]}"
    opcua_port = free_port()
    (work / "plant.yaml").write_text(plant_yaml(n, broker.port, opcua_port, prefix, opcua=False))
    plant = load(work / "plant.yaml")
    with psycopg.connect(dsn) as c:
        migrate(c, StorageSettings(mode="plain"))
        c.autocommit = False
        ids = sync_registry(c, plant)
        c.commit()
    tags = sorted(ids)
    base = (time.time_ns() // 1000) - 86_400_000_000
    print(
        f"hazmon ingest bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, {n} sensors, "
        "plain PostgreSQL, private Mosquitto, MQTT acks on commit (the default ack: durable)"
    )
    daemon: subprocess.Popen[bytes] | None = None
    try:
        if a.only_opcua:
            asyncio.run(opcua_phase(work, dsn, n, broker.port, opcua_port, prefix, a.opcua_seconds))
            return
        # 1. raw COPY into the same table
        total = a.batch_readings
        per = 20_000
        sid = np.array([ids[t] for t in tags], dtype=np.int32)
        batches = []
        for k in range(total // per):
            rows = np.arange(k * per, (k + 1) * per)
            batches.append(
                ReadingColumns(
                    sid[rows % n],
                    base + (rows // n).astype(np.int64) * 1_000_000,
                    rows.astype(np.float64) / 7,
                    np.zeros(per, dtype=np.int16),
                )
            )
        with psycopg.connect(dsn, autocommit=True) as c:
            t0 = time.perf_counter()
            for b in batches:
                write_readings(c, b)
            raw = total / (time.perf_counter() - t0)
        print(f"raw COPY (write_readings, {per} rows/batch):          {raw:>10,.0f} readings/s")

        # the daemon, as its own process
        port = free_port()
        (work / "hazmon.yaml").write_text(
            f"plant: plant.yaml\ndata_dir: data\ndatabase: {{dsn: '{dsn}', storage_mode: plain}}\n"
            f"http: {{port: {port}}}\ncollector: {{batch_max_readings: 20000}}\n"
        )
        log = (work / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            daemon_argv(work / "hazmon.yaml"),
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                if 'hazmon_mqtt_subscribed{source="gds"} 1' in body:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit(f"daemon did not start; see {work / 'daemon.log'}")
            time.sleep(0.2)
        pid = daemon.pid
        before = written(port)

        # 2. batched payloads
        batch_tags = [t for i, t in enumerate(tags) if i % 2 == 0]
        per_msg = 500
        msgs = []
        t_base = base + 200 * 86_400 * 1000  # clear of phase 1's timestamps
        for k in range(total // per_msg):
            rs = [
                {
                    "tag": batch_tags[(k * per_msg + j) % len(batch_tags)],
                    "ts": iso(t_base + ((k * per_msg + j) // len(batch_tags)) * 1_000_000),
                    # in range and smooth: the bench measures ingest, not an alarm storm
                    "v": 20 + ((k * per_msg + j) // len(batch_tags)) * 0.01 + j % 7,
                }
                for j in range(per_msg)
            ]
            msgs.append(json.dumps({"readings": rs}).encode())
        cpu0 = proc_cpu_s(pid)
        pub = Pub(broker.port)
        t0 = time.perf_counter()
        for m in msgs:
            pub.publish(f"{prefix}/batch/all", m)
        pub.close()
        t_pub = time.perf_counter() - t0
        t1 = wait_written(port, before + total, trace_from=t0 if a.trace else None)
        batched = total / (t1 - t0)
        cpu_b = (proc_cpu_s(pid) - cpu0) / (t1 - t0)
        before += total
        print(
            f"daemon, batched JSON ({per_msg}/message) published->committed: {batched:>10,.0f} readings/s"
            f"   ratio to raw COPY {batched / raw:.2f} (goal >= 0.5)"
        )
        print(
            f"  daemon CPU {cpu_b * 100:.0f} % of a core = {cpu_b / (batched / 10_000) * 100:.1f} % per 10k "
            f"readings/s; publishing alone took {t_pub:.1f} s of the {t1 - t0:.1f} s"
        )

        # 3. bare paho subscriber, single messages
        single_tags = [t for i, t in enumerate(tags) if i % 2 == 1]
        ns = a.single
        t_single = base + 400 * 86_400 * 1000
        payloads = [
            (
                f"{prefix}/single/{single_tags[i % len(single_tags)]}",
                json.dumps(
                    {"ts": iso(t_single + (i // len(single_tags)) * 1_000_000), "v": 20 + i % 11}
                ).encode(),
            )
            for i in range(ns)
        ]
        got = 0
        done = threading.Event()

        def on_msg(c: paho.Client, u: object, m: paho.MQTTMessage) -> None:
            nonlocal got
            got += 1
            if got >= ns:
                done.set()

        sub = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-bare-{uuid.uuid4().hex[:6]}", protocol=paho.MQTTv5
        )
        sub.on_message = on_msg
        sub.connect("127.0.0.1", broker.port)
        sub.subscribe(f"{prefix}/bare/+", qos=1)
        sub.loop_start()
        time.sleep(0.5)
        pub = Pub(broker.port)
        t0 = time.perf_counter()
        for topic, p in payloads:
            pub.publish(topic.replace("/single/", "/bare/"), p)
        done.wait(300)
        bare = ns / (time.perf_counter() - t0)
        pub.close()
        sub.disconnect()
        sub.loop_stop()
        print(f"bare paho subscriber, single JSON messages:          {bare:>10,.0f} messages/s")

        # 4. daemon, single messages
        cpu0 = proc_cpu_s(pid)
        pub = Pub(broker.port)
        t0 = time.perf_counter()
        for topic, p in payloads:
            pub.publish(topic, p)
        pub.close()
        t1 = wait_written(port, before + ns)
        single = ns / (t1 - t0)
        cpu_s = (proc_cpu_s(pid) - cpu0) / (t1 - t0)
        before += ns
        assert count(dsn) == total + int(before), "every reading committed once"
        print(
            f"daemon, single JSON messages published->committed:   {single:>10,.0f} readings/s"
            f"   ratio to bare paho {single / bare:.2f} (goal >= 0.8)"
        )
        print(
            f"  daemon CPU {cpu_s * 100:.0f} % of a core = "
            f"{cpu_s / (single / 10_000) * 100:.1f} % per 10k readings/s"
        )
        rss, hwm = proc_mem_mb(pid)
        print(f"daemon memory with {n} MQTT sensors: RSS {rss:.0f} MB, peak {hwm:.0f} MB (goal < 300 MB)")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        daemon = None

        # 5. OPC UA: 10,000 items at 1 Hz
        if a.opcua_seconds > 0:
            asyncio.run(opcua_phase(work, dsn, n, broker.port, opcua_port, prefix, a.opcua_seconds))
    finally:
        if daemon is not None:
            daemon.kill()
        broker.stop()
        with psycopg.connect(ADMIN, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


_OPCUA_SERVER = """
import asyncio, sys, time
from datetime import UTC, datetime
from asyncua import ua
from asyncua.server.monitored_item_service import MonitoredItemValues
from testkit import big_server, write_tick
from hazmon.plant.asyncua_internals import value_attribute

def keep_value(self, cur_val):
    # asyncua's server deep-copies every written DataValue per monitored item (two thirds of this
    # process's CPU at 10,000 items: it could not write 1 Hz, and the daemon saw 3-6 s gaps, i.e.
    # stale sensors). This load generator builds a new DataValue per write and never changes one.
    self.old_dvalue, self.current_dvalue = self.current_dvalue, cur_val

MonitoredItemValues.set_current_datavalue = keep_value

async def main(n, port, seconds, settle):
    srv, idx = await big_server(n, port)
    print("ready", flush=True)  # and updating from now on, as a plant does while the daemon subscribes
    attrs = [value_attribute(srv, ua.NodeId(f"S{i}", idx)) for i in range(n)]
    t0, k = time.perf_counter(), 0
    k1, t1 = None, t0
    while time.perf_counter() - t0 < settle + seconds:
        tick = time.perf_counter()
        await write_tick(attrs, k, datetime.now(UTC))  # (alarms: bench/alarm_latency.py)
        k += 1
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
        if k1 is None and time.perf_counter() - t0 >= settle:
            k1, t1 = k, time.perf_counter()  # the measured part
    print(f"updates {k - k1} {time.perf_counter() - t1:.3f}", flush=True)
    await asyncio.sleep(5)
    await srv.stop()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
"""


async def opcua_phase(  # noqa: PLR0917 - a bench script's one call site
    work: Path, dsn: str, n: int, mqtt_port: int, opcua_port: int, prefix: str, seconds: float
) -> None:
    """The OPC UA server runs in a process of its own (in this one its writes starved its publishing)."""
    (work / "plant-opcua.yaml").write_text(plant_yaml(n, mqtt_port, opcua_port, prefix, opcua=True))
    port = free_port()
    (work / "hazmon-opcua.yaml").write_text(
        f"plant: plant-opcua.yaml\ndata_dir: data-opcua\ndatabase: {{dsn: '{dsn}', storage_mode: plain}}\n"
        f"http: {{port: {port}}}\n"
    )
    settle = 60.0
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _OPCUA_SERVER,
        str(n),
        str(opcua_port),
        str(seconds),
        str(settle),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT / "tools")},
    )
    assert server.stdout is not None
    while b"ready" not in await server.stdout.readline():
        pass
    log = (work / "daemon-opcua.log").open("wb")
    daemon = await asyncio.create_subprocess_exec(
        *daemon_argv(work / "hazmon-opcua.yaml"),
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        start = time.perf_counter()
        while True:  # daemon up, every item subscribed, the first values committed
            try:
                if written(port) >= n:
                    break
            except OSError:
                pass
            if time.perf_counter() - start > settle - 5:
                raise SystemExit("OPC UA daemon did not subscribe and store the first values in time")
            await asyncio.sleep(0.2)
        ready_s = time.perf_counter() - start
        await asyncio.sleep(max(0.0, settle - ready_s + 3))  # into the server's measured updates
        cpu0, t0, c0 = proc_cpu_s(daemon.pid), time.perf_counter(), written(port)
        await asyncio.sleep(seconds - 6)
        el = time.perf_counter() - t0
        cpu = (proc_cpu_s(daemon.pid) - cpu0) / el
        stored = written(port) - c0
        rss, hwm = proc_mem_mb(daemon.pid)
        line = (await server.stdout.readline()).decode().split()
        ok = bool(line) and line[0] == "updates"
        hz = int(line[1]) / float(line[2]) if ok else float("nan")
        print(
            f"OPC UA {n} items, server updating all at {hz:.2f} Hz (its own process): "
            f"{stored / el:,.0f} readings/s committed, daemon CPU {cpu * 100:.0f} % of one core "
            f"(goal < 40 % at 1 Hz) = {cpu / max(stored / el / 10_000, 1e-9) * 100:.0f} % per 10k "
            "readings/s; "
            f"RSS {rss:.0f} MB, peak {hwm:.0f} MB; start to {n} first values committed {ready_s:.1f} s"
        )
    finally:
        daemon.send_signal(signal.SIGTERM)
        await daemon.wait()
        try:  # it stops by itself 5 s after its last update (kill() on an ended one raised)
            async with asyncio.timeout(30):
                await server.wait()
        except TimeoutError:
            server.kill()
            await server.wait()


if __name__ == "__main__":
    main()
