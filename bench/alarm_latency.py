"""Alarm latency through the whole daemon under load (issue 6).

Time from publishing a limit-crossing reading to the MQTT broker to the webhook
receiving its notification, p50 / p99 over --alarms alarms, while a background
publisher sends --load readings/s (batch payloads) that the same daemon collects,
stores and evaluates. Beside it, in the same run and under the same load, the
broker's own round trip (publish -> this process's subscription) is measured.

Set-up, all on this machine: a scratch database (dropped at the end); the daemon
(`hazmon.daemon.Daemon`: collector, writer, rules, alarm service) in a process of
its own; the load publisher in another; this process publishes the probes, runs
the webhook receiver and measures. The plant is the example plant's enterprise
with its sensors replaced by --load-sensors load sensors (one batch topic) and
--alarms probe sensors (one JSON topic each, an H limit of 50 and no delays);
each probe sensor crosses its limit once, so every probe is a new alarm. The
flood summary is switched off (flood.count very high): a flood would, by design,
replace per-alarm messages with one summary.

    .venv/bin/python bench/alarm_latency.py [--alarms 200] [--load 50000] [--interval 0.25] [--trace]

``--trace`` says where the time goes, p50 / p99 per stage of the path: the daemon
process stamps each probe's arrival (`MqttInput.handle`) and the rules call that
raised its finding (`RulesRunner.process`, wrapped in that process only), and the
alarm service keeps its own stages through the hook installed on it
(`hazmon.alarms.trace.LatencyTrace`: handed over, write lock taken, committed,
dispatcher claim, sent); all clocks are this machine's wall clock.

Goals (issue 6): p99 < 250 ms, p50 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing as mp
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psycopg
from aiohttp import web
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.alarms import AlarmSettings, NotifierConfig, Recipient
from hazmon.alarms.notify_webhook import WebhookSettings
from hazmon.collector import CollectorSettings
from hazmon.config import DaemonConfig, DatabaseSettings, HttpSettings
from hazmon.plant import Limits, MqttBinding, Plant, Sensor, SensorKind, load
from hazmon.plant.reading import from_us
from hazmon.runtime import SWITCH_INTERVAL_S

ADMIN = os.environ.get("HAZMON_BENCH_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parent.parent
MQTT = ("127.0.0.1", int(os.environ.get("HAZMON_BENCH_MQTT_PORT", "1883")))


def now_us() -> int:
    return time.time_ns() // 1000


def iso(us: int) -> str:
    return from_us(us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bench_plant(n_load: int, n_probe: int, prefix: str) -> Plant:
    base = load(ROOT / "examples" / "plant.yaml")
    broker = replace(base.mqtt[0], url=f"mqtt://{MQTT[0]}:{MQTT[1]}", client_id=f"hazmon-bench-{prefix[-8:]}")
    hs0 = base.hazard_sources[1]  # lpg-spheres: its grade sets the tier
    load_sensors = tuple(
        Sensor(
            f"LD-{i:05d}",
            SensorKind.LEVEL,
            "m",
            (0.0, 100.0),
            1.0,
            MqttBinding(broker.name, f"{prefix}/load/batch", payload="batch"),
            hs0.id,
            limits=Limits(hh=95.0, h=90.0),
            limits_given=True,
        )
        for i in range(n_load)
    )
    probes = tuple(
        Sensor(
            f"PB-{i:04d}",
            SensorKind.LEVEL,
            "m",
            (0.0, 100.0),
            3600.0,  # one reading an hour is normal: no stale alarm while the bench runs
            MqttBinding(broker.name, f"{prefix}/probe/PB-{i:04d}"),
            hs0.id,
            limits=Limits(h=50.0),
            limits_given=True,
        )
        for i in range(n_probe)
    )
    sources = tuple(
        replace(hs, sensors=(load_sensors + probes) if hs.id == hs0.id else (), vote_groups=(), equipment=())
        for hs in base.hazard_sources
    )
    return replace(base, opcua=(), mqtt=(broker,), hazard_sources=sources)


def _instrument(arrived: dict[str, int], raised: dict[str, tuple[int, int]]) -> None:
    """In the daemon's process: stamp each probe's arrival and the rules call that raised it."""
    from hazmon.collector import MqttInput  # noqa: PLC0415 - imported in the child process
    from hazmon.rules import RulesRunner  # noqa: PLC0415

    handle = MqttInput.handle
    process = RulesRunner.process

    def stamped_handle(self: MqttInput, topic: str, payload: bytes, now_us: int, *rest: Any) -> bool:
        if "/probe/" in topic:  # the last message of a probe is its limit crossing
            arrived[topic.rsplit("/", 1)[1]] = time.time_ns() // 1000
        return handle(self, topic, payload, now_us, *rest)  # rest: the collector's ack, if any

    def stamped_process(self: RulesRunner, *args: Any, **kw: Any) -> Any:
        t_in = time.time_ns() // 1000
        found = process(self, *args, **kw)
        t_out = time.time_ns() // 1000
        for f in found:
            if f.sensor and f.sensor.startswith("PB-") and f.active and f.condition.value == "h":
                raised.setdefault(f.sensor, (t_in, t_out))
        return found

    MqttInput.handle = stamped_handle  # type: ignore[method-assign]
    RulesRunner.process = stamped_process  # type: ignore[method-assign]


def run_daemon(
    config: DaemonConfig, plant: Plant, ready: Any, stop: Any, paths: tuple[str, str], *, switch_s: float
) -> None:
    """The daemon in this process until ``stop``; ``paths``: its log and trace files ('': no trace).

    ``switch_s``: the interpreter's thread switch interval (0: Python's default, 5 ms); the
    collector's network thread and the alarm service's thread wait up to this long for the GIL.
    """
    if switch_s > 0:
        sys.setswitchinterval(switch_s)
    from hazmon.alarms import AlarmService  # noqa: PLC0415 - imported in the child process
    from hazmon.alarms.trace import LatencyTrace  # noqa: PLC0415
    from hazmon.daemon import Daemon  # noqa: PLC0415
    from hazmon.logs import configure_logging  # noqa: PLC0415

    log_path, trace_path = paths
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)  # the daemon's log goes to a file; the bench summarises it
    configure_logging("warning", True)
    arrived: dict[str, int] = {}
    raised: dict[str, tuple[int, int]] = {}
    stalls: list[tuple[int, int]] = []
    gcs: list[tuple[int, float]] = []  # (generation, pause ms) of every cyclic collection
    tracer = LatencyTrace()  # installed on the alarm service with --trace
    if trace_path:
        _instrument(arrived, raised)
        gc_t0 = [0.0]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                gc_t0[0] = time.perf_counter()
            else:
                gcs.append((info["generation"], (time.perf_counter() - gc_t0[0]) * 1000))

        gc.callbacks.append(on_gc)

    async def watch_loop() -> None:  # when the daemon's event loop could not run a 2 ms timer on time
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.002)
            late = time.monotonic() - t - 0.002
            if late > 0.005:
                end = time.time_ns() // 1000
                stalls.append((end - round(late * 1e6), end))

    async def main() -> None:
        async with Daemon(config, plant) as d:
            svc = d.w.alarms if d.w is not None else None
            if trace_path and isinstance(svc, AlarmService):  # before the first probe is sent
                svc.tracer = tracer
            watcher = asyncio.create_task(watch_loop()) if trace_path else None
            ready.set()
            while not stop.is_set():  # noqa: ASYNC110 - a multiprocessing event, not awaitable
                await asyncio.sleep(0.1)
        if trace_path:
            traces = list(tracer.traces)  # the service's thread has stopped: safe to read
            if watcher is not None:
                watcher.cancel()
            doc = {"arrived": arrived, "raised": raised, "alarms": traces, "stalls": stalls, "gc": gcs}
            await asyncio.to_thread(Path(trace_path).write_text, json.dumps(doc))

    asyncio.run(main())


STAGES = (
    ("publish -> daemon received (broker, paho thread)", "publish", "arrived"),
    ("received -> rules called (queue, consumer gather)", "arrived", "rules_in"),
    ("rules call (the whole batch)", "rules_in", "rules_out"),
    ("finding -> handle() (alarms task wake-up)", "rules_out", "handed_us"),
    ("handle() -> write lock (waits for tick/API)", "handed_us", "locked_us"),
    ("alarm statements issued (alarm row round trip)", "locked_us", "issued_us"),
    ("commit (WAL flush, pipeline results)", "issued_us", "committed_us"),
    ("committed -> dispatcher claim starts", "committed_us", "dispatch_us"),
    ("claim round trip (none: claimed by the commit)", "dispatch_us", "claimed_us"),
    ("claimed -> webhook received (render, POST)", "claimed_us", "webhook"),
)


def print_trace(trace_path: str, sent_at: dict[str, float], got: dict[str, float]) -> None:
    """p50 / p99 of each stage of the path, and the five slowest probes stage by stage."""
    if not trace_path:
        return
    path = Path(trace_path)
    if not path.exists():
        print("trace: the daemon wrote no trace (did it stop cleanly? see its log)")
        return
    doc = json.loads(path.read_text())
    by_sensor = {t["sensor"]: t for t in doc["alarms"]}
    rows: dict[str, dict[str, float]] = {}
    for s, t0 in sent_at.items():
        t = by_sensor.get(s, {})
        r = doc["raised"].get(s)
        stamps = {
            "publish": t0 * 1e6,
            "arrived": doc["arrived"].get(s),
            "rules_in": r[0] if r else None,
            "rules_out": r[1] if r else None,
            "webhook": got[s] * 1e6 if s in got else None,
            **{k: v for k, v in t.items() if k.endswith("_us")},
        }
        rows[s] = {k: float(v) for k, v in stamps.items() if v is not None}
    complete = [s for s, st in rows.items() if all(k in st for _, a, b in STAGES for k in (a, b))]
    print(f"trace: {len(complete)} of {len(sent_at)} probes traced at every stage (ms)")
    for name, a, b in STAGES:
        xs = [(rows[s][b] - rows[s][a]) / 1000 for s in complete]
        if xs:
            print(f"  {name:<52} p50 {pct(xs, 50):7.1f}   p99 {pct(xs, 99):7.1f}   max {max(xs):7.1f}")
    for name, a, b in (
        ("before the alarm service: publish -> handle()", "publish", "handed_us"),
        ("the alarm service: handle() -> webhook received", "handed_us", "webhook"),
    ):
        xs = [(rows[s][b] - rows[s][a]) / 1000 for s in complete]
        if xs:
            print(f"  {name:<52} p50 {pct(xs, 50):7.1f}   p99 {pct(xs, 99):7.1f}   max {max(xs):7.1f}")
    stalls = [(int(a), int(b)) for a, b in doc.get("stalls", [])]

    def stalled_ms(a_us: float, b_us: float) -> float:
        return sum(max(0.0, min(b, b_us) - max(a, a_us)) for a, b in stalls) / 1000

    for name, a, b in (
        ("alarm transaction", "locked_us", "committed_us"),
        ("whole path", "arrived", "webhook"),
    ):
        xs = [stalled_ms(rows[s][a], rows[s][b]) for s in complete]
        if xs:
            print(
                f"  daemon event loop stalled (>5 ms) during the {name:<18} p50 {pct(xs, 50):7.1f}   "
                f"p99 {pct(xs, 99):7.1f}   max {max(xs):7.1f}"
            )
    gcs = doc.get("gc", [])
    for g in (0, 1, 2):
        ms = [p for gen, p in gcs if gen == g]
        if ms:
            print(
                f"  garbage collections of generation {g}: {len(ms):6d}, pause p99 {pct(ms, 99):6.1f} ms, "
                f"max {max(ms):6.1f} ms, total {sum(ms) / 1000:6.2f} s"
            )
    slow = sorted(complete, key=lambda s: rows[s]["webhook"] - rows[s]["publish"])[-5:]
    print("  slowest probes, ms per stage in the order above:")
    for s in reversed(slow):
        st = rows[s]
        parts = " ".join(f"{(st[b] - st[a]) / 1000:6.1f}" for _, a, b in STAGES)
        print(f"    {s} total {(st['webhook'] - st['publish']) / 1000:6.1f}: {parts}")


def run_load(prefix: str, n_load: int, rate: int, stop: Any, sent: Any) -> None:
    """rate readings/s as batch messages of up to 1,000 readings, paced every 20 ms."""
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"load-{uuid.uuid4().hex[:8]}")
    c.max_queued_messages_set(0)
    c.connect(*MQTT)
    c.loop_start()
    topic = f"{prefix}/load/batch"
    tick = 0.02
    per_tick = max(1, round(rate * tick))
    k = 0
    start = time.monotonic()
    n = 0
    while not stop.is_set():
        t = now_us()
        ts = iso(t)
        for lo in range(0, per_tick, 1000):
            m = min(1000, per_tick - lo)
            rs = [
                {"tag": f"LD-{(k + j) % n_load:05d}", "ts": ts, "v": 40.0 + (k + j) % 7, "q": 0}
                for j in range(m)
            ]
            k += m
            c.publish(topic, json.dumps({"readings": rs}), qos=0)
            n += m
        sent.value = n
        start += tick
        delay = start - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    c.loop_stop()
    c.disconnect()


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


async def bench(args: argparse.Namespace, dsn: str, tmp: Path) -> None:
    prefix = f"hazmon-bench/{uuid.uuid4().hex[:8]}"
    plant = bench_plant(args.load_sensors, args.alarms, prefix)
    got: dict[str, float] = {}
    arrived: dict[str, asyncio.Event] = {}

    async def hook(request: web.Request) -> web.Response:
        t = time.time()
        body = await request.json()
        for a in body.get("alarms", []):
            s = a.get("sensor")
            if s and s.startswith("PB-") and a.get("condition") == "h" and s not in got:
                got[s] = t
                if s in arrived:
                    arrived[s].set()
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = AlarmSettings(
        notifiers=(
            NotifierConfig(
                "hook",
                "webhook",
                (Recipient.CONTROL_ROOM,),
                WebhookSettings(f"http://127.0.0.1:{port}/hook", b"b"),
            ),
        ),
        flood_count=1_000_000,
        repeat_s=0,
        synchronous_commit=not args.async_commit,
        own_thread=not args.shared_loop,
    )
    config = DaemonConfig(
        path=str(tmp / "hazmon.yaml"),
        plant_file=plant.path,
        data_dir=str(tmp / "data"),
        database=DatabaseSettings(dsn=dsn, migrate=True, storage_mode="plain"),
        http=HttpSettings("127.0.0.1", 0),
        collector=CollectorSettings(),
        alarms=settings,
    )
    ctx = mp.get_context("spawn")
    ready, stop, sent = ctx.Event(), ctx.Event(), ctx.Value("q", 0)
    log_path = str(tmp / "daemon.log")
    trace_path = str(tmp / "trace.json") if args.trace else ""
    daemon = ctx.Process(
        target=run_daemon,
        args=(config, plant, ready, stop, (log_path, trace_path)),
        kwargs={"switch_s": args.switch_interval_ms / 1000},
        daemon=True,
    )
    daemon.start()
    if not await asyncio.to_thread(ready.wait, 120):
        raise SystemExit("the daemon did not start within 120 s")
    loader = ctx.Process(
        target=run_load, args=(prefix, args.load_sensors, args.load, stop, sent), daemon=True
    )

    rtt: list[float] = []
    rtt_wait: dict[str, float] = {}
    rtt_lock = threading.Lock()
    rtt_topic = f"{prefix}/rtt"

    def on_message(c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        if m.topic == rtt_topic:
            t = time.time()
            with rtt_lock:
                t0 = rtt_wait.pop(m.payload.decode(), None)
            if t0 is not None:
                rtt.append(t - t0)

    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}")
    pub.on_message = on_message
    subscribed = threading.Event()
    pub.on_subscribe = lambda *a: subscribed.set()
    pub.connect(*MQTT)
    pub.loop_start()
    pub.subscribe(rtt_topic, qos=1)
    subscribed.wait(10)
    # every probe sensor's first (normal) reading, so the rules know it before it crosses
    t = now_us()
    for i in range(args.alarms):
        pub.publish(
            f"{prefix}/probe/PB-{i:04d}", json.dumps({"ts": iso(t), "v": 10.0}), qos=1
        ).wait_for_publish(10)
    loader.start()
    await asyncio.sleep(args.warmup)
    lat: list[float] = []
    sent_at: dict[str, float] = {}
    missing = 0
    t_load0, n_load0 = time.time(), sent.value
    deadline = time.monotonic() + args.budget_s
    for i in range(args.alarms):
        if time.monotonic() > deadline:
            print(f"time budget of {args.budget_s:g} s used up after {i} probes; reporting what was measured")
            break
        tag = f"PB-{i:04d}"
        arrived[tag] = asyncio.Event()
        key = uuid.uuid4().hex
        with rtt_lock:
            rtt_wait[key] = time.time()
        pub.publish(rtt_topic, key, qos=1)
        t0 = time.time()
        sent_at[tag] = t0
        pub.publish(f"{prefix}/probe/{tag}", json.dumps({"ts": iso(now_us()), "v": 80.0}), qos=1)
        try:
            async with asyncio.timeout(args.timeout):
                await arrived[tag].wait()
            lat.append(got[tag] - t0)
        except TimeoutError:
            missing += 1
            if missing >= 5 and not lat:
                print(
                    f"no notification for the first {missing} probes: the daemon is not keeping up; stopping"
                )
                break
        if (i + 1) % 50 == 0:
            print(f"  {i + 1} probes, {len(lat)} notified", flush=True)
        await asyncio.sleep(args.interval)
    load_rate = (sent.value - n_load0) / (time.time() - t_load0)
    stop.set()
    loader.join(20)
    daemon.join(60)
    pub.loop_stop()
    pub.disconnect()
    await runner.cleanup()
    with psycopg.connect(dsn) as c:
        stored = c.execute("SELECT count(*) FROM readings").fetchone()
        recorded = c.execute(
            "SELECT a.sensor, extract(epoch FROM e.recorded_at)::float8 FROM alarm_event e "
            "JOIN alarm a ON a.id = e.alarm_id WHERE a.sensor LIKE 'PB-%%' AND e.kind = 'raised'"
        ).fetchall()
        raised = (len(recorded),)
    events: dict[str, int] = {}
    for line in (await asyncio.to_thread(Path(log_path).read_text, errors="replace")).splitlines():
        with contextlib.suppress(json.JSONDecodeError, AttributeError):
            ev = str(json.loads(line).get("event", ""))
            events[ev] = events.get(ev, 0) + 1
    noteworthy = {k: v for k, v in events.items() if k not in ("sensor stale", "sensor fresh")}
    print(f"daemon log: {sum(events.values())} warnings/errors {noteworthy or ''}")
    how = "asynchronously" if args.async_commit else "durably (synchronous_commit on)"
    switch = f"{args.switch_interval_ms:g} ms" if args.switch_interval_ms > 0 else "Python's default"
    where = "the daemon's event loop" if args.shared_loop else "its own thread and loop"
    print(f"alarm events committed {how}; daemon thread switch interval {switch}; alarm service on {where}")
    ms = [x * 1000 for x in lat]
    rtt_ms = [x * 1000 for x in rtt]
    print(
        f"load: {load_rate:,.0f} readings/s offered by the load publisher during the probes "
        f"(target {args.load:,}); {stored[0] if stored else 0:,} readings stored in total"
    )
    print(
        f"alarms: {len(ms)} notified of {args.alarms} probes ({missing} not within {args.timeout:g} s); "
        f"{raised[0] if raised else 0} raised in alarm_event"
    )
    if ms:
        print(
            f"publish -> webhook   p50 {pct(ms, 50):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   "
            f"mean {statistics.fmean(ms):7.1f} ms   max {max(ms):7.1f} ms"
        )
    split = [
        ((rec - sent_at[s]) * 1000, (got[s] - rec) * 1000) for s, rec in recorded if s in sent_at and s in got
    ]
    if split:
        a_ms, b_ms = [x for x, _ in split], [y for _, y in split]
        print(
            "  of which publish -> alarm recorded (broker, collector, rules, alarm txn)   "
            f"p50 {pct(a_ms, 50):7.1f} ms   p99 {pct(a_ms, 99):7.1f} ms"
        )
        print(
            "  of which recorded -> webhook received (outbox claim, HTTP POST)          "
            f"p50 {pct(b_ms, 50):7.1f} ms   p99 {pct(b_ms, 99):7.1f} ms"
        )
    if rtt_ms:
        print(
            f"broker round trip    p50 {pct(rtt_ms, 50):7.1f} ms   p99 {pct(rtt_ms, 99):7.1f} ms   "
            f"(n={len(rtt_ms)}, same run, same load)"
        )
    if ms and rtt_ms:
        print(
            f"ratio alarm/broker   p50 {pct(ms, 50) / max(pct(rtt_ms, 50), 1e-3):.1f}x   "
            f"p99 {pct(ms, 99) / max(pct(rtt_ms, 99), 1e-3):.1f}x"
        )
        print(
            f"goals (issue 6): p99 < 250 ms: {'met' if pct(ms, 99) < 250 else 'NOT met'}; "
            f"p50 < 50 ms: {'met' if pct(ms, 50) < 50 else 'NOT met'}"
        )
    print_trace(trace_path, sent_at, got)
    print(f"load average during the run: {os.getloadavg()[0]:.2f} (1 min)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alarms", type=int, default=200)
    ap.add_argument("--load", type=int, default=50_000, help="background readings/s")
    ap.add_argument("--load-sensors", type=int, default=5_000)
    ap.add_argument("--interval", type=float, default=0.25, help="s between probes")
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=10.0, help="s to wait for one notification")
    ap.add_argument(
        "--async-commit", action="store_true", help="alarms.synchronous_commit: false (see alarms/README.md)"
    )
    ap.add_argument("--budget-s", type=float, default=300.0, help="stop probing after this many s")
    ap.add_argument("--trace", action="store_true", help="p50 / p99 of each stage of the path")
    ap.add_argument(
        "--shared-loop",
        action="store_true",
        help="alarms.own_thread: false (the alarm service on the daemon's event loop, as before)",
    )
    ap.add_argument(
        "--switch-interval-ms",
        type=float,
        default=SWITCH_INTERVAL_S * 1000,
        help="sys.setswitchinterval in the daemon's process (default: `hazmon run`'s, hazmon.runtime; "
        "0: Python's default of 5 ms)",
    )
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still drop the scratch database
    name = f"hazmon_bench_alarms_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as adm:
        adm.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix="hazmon-bench-") as d:
            asyncio.run(bench(a, ADMIN.rsplit("/", 1)[0] + "/" + name, Path(d)))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as adm, contextlib.suppress(psycopg.Error):
            adm.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
