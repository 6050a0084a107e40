"""The bureau at scale (issue 15): a simulated fleet into one bureau with 2 worker processes, side by side.

Everything runs in one go on this machine against a scratch database (created and dropped) and
a private Mosquitto; the bureau is two `hazmon bureau run` processes (their own client ids, one
shared subscription), so their CPU and memory are their own (RSS read from /proc).

Phases:
  1. stored rows/s: the fleet's 1-minute aggregates for ``--minutes`` minutes, published as fast
     as the broker takes them, until every row is in ``bureau_aggregate`` (live: the fleet's
     publisher shares the CPUs); then as many minutes queued while both workers are paused
     (SIGSTOP, still connected) and stored after they resume (the bureau's own rate); beside a
     raw COPY of the same rows into the same table, text and binary format, each the best of two
     (goal: ratio to the faster ≥ 0.5);
  2. alarm latency: with the aggregates flowing at ``--speed`` × real time, ``--alarms`` red
     alarms published one by one, each timed until ``GET /api/v1/alarms/{id}`` shows it
     (goal: p99 < 1 s);
  3. backlog drain: both workers stopped for ``--outage`` seconds while the fleet goes on at
     real time, then restarted together (migrations done); the time from the restart until the
     backlog is stored, the workers' start included (goal: ≥ 10× real time);
  4. bureau RSS, the largest seen per worker during the run (goal < 1 GB).

Usage: .venv/bin/python bench/bureau.py [--enterprises 200] [--sensors 220] [--minutes 3]
       [--alarms 100] [--speed 2] [--outage 120]
       The issue's full size: --enterprises 2000 --sensors 220 --outage 600   (440,000 sensors)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from hazmon.plant.link import Aggregates, Envelope
from hazmon.simulators.fleet import FleetEnterprise, FleetPublisher, FleetSpec, build_fleet, fleet_minutes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # testkit: helpers shared with the tests
from testkit import PrivateMosquitto, free_port  # noqa: E402

ADMIN = os.environ.get("HAZMON_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = "bench-token"


def config(work: Path, dsn: str, broker_port: int, worker: int, http_port: int, *, ingest: str) -> Path:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    p = work / f"bureau-{worker}.yaml"
    p.write_text(
        f"""id: bench
name: 基准测试市应急管理局
region: {{code: "320100", level: city}}
database: {{dsn: "{dsn}", storage_mode: auto, migrate: {"true" if worker == 1 else "false"}}}
broker: {{url: "mqtt://127.0.0.1:{broker_port}", group: bench, client_id: bench-worker-{worker}}}
http: {{host: 127.0.0.1, port: {http_port}}}
ingest: {{{ingest}}}
tokens:
  - {{name: bench, sha256: {digest}, role: officer, region: {{code: "320100", level: city}}}}
"""
    )
    return p


class Workers:
    """The two `hazmon bureau run` processes, and the largest RSS each had."""

    def __init__(self, work: Path, dsn: str, broker_port: int, ingest: str = "") -> None:
        self.ports = [free_port(), free_port()]
        self.cfgs = [config(work, dsn, broker_port, i + 1, self.ports[i], ingest=ingest) for i in range(2)]
        self.work = work
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ready_at: list[float] = []
        self.rss_max = [0, 0]
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def start(self, together: bool = False) -> None:
        """Start both workers: one after the other (worker 1 migrates first), or ``together`` (a
        restart, migrations done: as a service manager restarts them)."""
        for i, cfg in enumerate(self.cfgs):
            log = (self.work / f"worker-{i + 1}.log").open("ab")
            cmd = [sys.executable, "-m", "hazmon", "bureau", "run", "-c", str(cfg)]
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            if not together:
                self._ready(self.ports[i])
                self.ready_at.append(time.monotonic())
        if together:
            for port in self.ports:
                self._ready(port)
                self.ready_at.append(time.monotonic())

    def pause(self) -> None:
        """SIGSTOP both workers: connected, they take nothing; the broker queues for their sessions."""
        for p in self.procs:
            p.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGCONT)

    def _ready(self, port: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, urllib.error.URLError):
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"a bureau worker did not get ready (logs in {self.work})")

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(60)
        self.procs = []
        self.ready_at = []

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for i, p in enumerate(list(self.procs)):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            self.rss_max[i] = max(self.rss_max[i], int(line.split()[1]) * 1024)

    def close(self) -> None:
        self._stop.set()
        self.stop()


def cpu_seconds(names: tuple[str, ...]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the processes whose command line names each of ``names``."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(names, 0.0)
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (d / "stat").read_text().rsplit(")", 1)[1].split()
            for name in names:
                if name in cmd:
                    out[name] += (int(stat[11]) + int(stat[12])) / tick
                    break
    return out


def stored_rows(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Aggregate rows stored, by the message log: each aggregates message's item count, committed
    in the transaction of its rows (`hazmon.bureau.batch`).

    Not ``count(*)`` of bureau_aggregate while the workers store: at the national size each count
    is a scan of millions of rows, and polled every 50 ms (as this bench did until 2026-12-04) it
    took PostgreSQL CPU from the workers it measured. `wait_rows` checks the table once at the end.
    """
    t = time.monotonic()
    row = conn.execute(
        "SELECT coalesce(sum((payload->>'items')::bigint), 0) FROM bureau_message WHERE kind = 'aggregates'"
    ).fetchone()
    POLL_S[0] += time.monotonic() - t
    return int(row[0]) if row else 0  # type: ignore[call-overload]


POLL_S = [0.0]  # seconds the polls of `stored_rows` took (printed: the bench's own load on PostgreSQL)


def table_rows(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT count(*) FROM bureau_aggregate").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]


def wait_count(conn: psycopg.Connection[tuple[object, ...]], table: str, want: int) -> None:
    deadline = time.monotonic() + 600
    while (row := conn.execute(f"SELECT count(*) FROM {table}").fetchone()) and int(row[0]) < want:  # type: ignore[call-overload]
        if time.monotonic() > deadline:
            raise RuntimeError(f"{table}: {row[0]} of {want}")
        time.sleep(0.1)


def wait_rows(conn: psycopg.Connection[tuple[object, ...]], want: int, within_s: float = 3600) -> float:
    deadline = time.monotonic() + within_s
    while (n := stored_rows(conn)) < want:
        dead = conn.execute("SELECT count(*), min(reason) FROM bureau_dead_letter").fetchone()
        if time.monotonic() > deadline or (dead and dead[0]):
            raise RuntimeError(f"only {n} of {want} aggregate rows stored; dead letters: {dead}")
        time.sleep(0.1)
    t = time.monotonic()
    if (rows := table_rows(conn)) != n:  # the log and the table agree: nothing counted unstored
        raise RuntimeError(f"the message log counts {n:,} aggregate rows, bureau_aggregate holds {rows:,}")
    return t


def aggregate_rows(envs: list[Envelope], shift: timedelta) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for env in envs:
        p = env.payload
        if isinstance(p, Aggregates):
            b = p.window_start + shift
            for it in p.items:
                out.append((env.enterprise_id, it.sensor, b, it.count, it.min, it.mean, it.max, it.last,
                            it.worst_quality))  # fmt: skip
    return out


_COLS = "enterprise_id, sensor, bucket, count, min, mean, max, last, worst_quality"
_TYPES = ["text", "text", "timestamptz", "int4", "float8", "float8", "float8", "float8", "text"]


def copy_rows(
    conn: psycopg.Connection[tuple[object, ...]], rows: list[tuple[object, ...]], binary: bool
) -> float:
    """Seconds to COPY ``rows`` into bureau_aggregate (one transaction), in the text or binary format."""
    t0 = time.monotonic()
    fmt = " (FORMAT BINARY)" if binary else ""
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(f"COPY bureau_aggregate ({_COLS}) FROM STDIN{fmt}") as cp,
    ):
        if binary:
            cp.set_types(_TYPES)
        for r in rows:
            cp.write_row(r)
    return time.monotonic() - t0


def api_sees(port: int, alarm_id: str) -> bool:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/alarms/{alarm_id}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status == 200
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def bench(a: argparse.Namespace, dsn: str, work: Path) -> None:
    broker = PrivateMosquitto(work)
    broker.start()
    workers = Workers(work, dsn, broker.port, a.ingest)
    total_minutes = 1 + a.minutes + 10_000
    start = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    spec = FleetSpec(a.enterprises, a.sensors, start, total_minutes, seed=a.seed)
    fleet = build_fleet(spec)
    index = {e.id: i for i, e in enumerate(fleet)}
    minutes = fleet_minutes(spec, fleet)
    pub = FleetPublisher(
        spec, f"mqtt://127.0.0.1:{broker.port}", connections=a.connections, client_id="bench"
    )
    per_minute = a.enterprises * a.sensors
    try:
        workers.start()
        conn = psycopg.connect(dsn, autocommit=True)
        print(f"fleet: {a.enterprises} enterprises x {a.sensors} sensors = {per_minute:,} rows a minute;"
              f" bureau: 2 workers (pids {[p.pid for p in workers.procs]})")  # fmt: skip

        # 1. stored rows/s vs raw COPY
        m, out = next(minutes)  # registrations first: two workers may take the next message before it
        pub.publish_minute(m, [x for x in out if x[1].kind == "registration"], index)
        wait_count(conn, "bureau_enterprise", a.enterprises)
        pub.publish_minute(m, [x for x in out if x[1].kind != "registration"], index)
        wait_rows(conn, per_minute)
        sent: list[Envelope] = []
        t0 = time.monotonic()
        for _ in range(a.minutes):
            m, out = next(minutes)
            pub.publish_minute(m, out, index)
            sent.extend(env for _, env in out)
        t_pub = time.monotonic() - t0
        t_end = wait_rows(conn, per_minute * (1 + a.minutes))
        n = per_minute * a.minutes
        live_rate = n / (t_end - t0)
        done = per_minute * (1 + a.minutes)
        # 1b. the bureau's own rate: the same amount queued while both workers are paused (connected,
        # SIGSTOP), then resumed; the fleet's publishing (2,000 other machines in the real system)
        # no longer shares these 2 CPUs with the bureau
        workers.pause()
        for _ in range(a.minutes):
            m, out = next(minutes)
            pub.publish_minute(m, out, index)
        pub.flush(600)
        who = ("bureau run", "postgres", "mosquitto")
        cpu0 = cpu_seconds(who)
        t0 = time.monotonic()
        workers.resume()
        t_end = wait_rows(conn, done + n)
        cpu1 = cpu_seconds(who)
        done += n
        stored_rate = n / (t_end - t0)
        busy = ", ".join(f"{k} {(cpu1[k] - cpu0[k]) / (t_end - t0):.2f}" for k in who)
        rows = aggregate_rows(sent, timedelta(days=3650))
        copies = {}
        for binary in (False, True, False, True):  # twice each, the best kept (a noisy shared machine)
            secs = copy_rows(conn, rows, binary)
            copies[binary] = max(copies.get(binary, 0.0), len(rows) / secs)
            conn.execute("DELETE FROM bureau_aggregate WHERE bucket > %s", (start + timedelta(days=3000),))
        ref = max(copies.values())
        print(f"1. stored at the bureau, {n:,} rows: {live_rate:,.0f} rows/s while the fleet publishes on"
              f" the same CPUs (published in {t_pub:.1f} s); {stored_rate:,.0f} rows/s from a backlog"
              f" queued while the workers were paused ({t_end - t0:.1f} s).\n"
              f"   Raw COPY of the same rows into the same table: text {copies[False]:,.0f} rows/s,"
              f" binary {copies[True]:,.0f} rows/s. Ratio to the faster: {stored_rate / ref:.2f} from the"
              f" backlog, {live_rate / ref:.2f} live (goal >= 0.5)\n"
              f"   CPUs busy while storing the backlog (of 2): {busy}")  # fmt: skip

        # 2. alarm latency with the aggregates flowing at --speed x real time
        flowing = threading.Event()
        flow_minutes = [0]

        def flow() -> None:
            t = time.monotonic()
            k = 0
            while not flowing.is_set():
                m2, out2 = next(minutes)
                pub.publish_minute(m2, out2, index)
                k += 1
                flow_minutes[0] = k
                flowing.wait(max(0.0, t + k * 60 / a.speed - time.monotonic()))

        flow_thread = threading.Thread(target=flow, daemon=True)
        flow_thread.start()
        alarm_fleet = build_fleet(FleetSpec(a.enterprises, 1, start, 1, seed=a.seed + 1_000_000))  # own ids
        senders = FleetPublisher(
            FleetSpec(a.enterprises, 1, start, 1),
            f"mqtt://127.0.0.1:{broker.port}",
            connections=1,
            client_id="bench-alarms",
        )
        lat: list[float] = []
        for k in range(a.alarms):
            e: FleetEnterprise = alarm_fleet[(k * 7919) % len(alarm_fleet)]
            e.seq = 10_000_000 + k
            fe = fleet[index[e.id]]
            e.sensors = fe.sensors
            env = e.envelope(e.leak_alarm(datetime.now(UTC), event_id=10_000 + k), datetime.now(UTC))
            t = time.monotonic()
            senders.shared[0].publish(env)
            aid = env.payload.alarm_id  # type: ignore[union-attr]
            while not api_sees(workers.ports[k % 2], aid):
                if time.monotonic() - t > 30:
                    raise RuntimeError(f"{aid} not visible after 30 s")
                time.sleep(0.005)
            lat.append(time.monotonic() - t)
            time.sleep(a.alarm_interval)
        flowing.set()
        flow_thread.join()
        senders.close()
        done += per_minute * flow_minutes[0]
        wait_rows(conn, done)
        p50, p99 = statistics.median(lat) * 1000, pct(lat, 0.99) * 1000
        print(f"2. alarm publish -> visible in the bureau API, {len(lat)} alarms, {flow_minutes[0]} minutes"
              f" of aggregates flowing at {a.speed:g}x real time: p50 {p50:.0f} ms, p99 {p99:.0f} ms,"
              f" max {max(lat) * 1000:.0f} ms (goal: p99 < 1 s)")  # fmt: skip

        # 3. backlog drain after an outage
        workers.stop()
        t0 = time.monotonic()
        k = 0
        while k * 60 < a.outage:  # real time: a minute of aggregates every 60 s
            m, out = next(minutes)
            pub.publish_minute(m, out, index)
            k += 1
            time.sleep(max(0.0, t0 + min(k * 60, a.outage) - time.monotonic()))
        pub.flush(600)
        cpu0 = cpu_seconds(who)
        t_restart = time.monotonic()
        workers.start(together=True)  # migrations done: both start at once, as a service manager would
        t_ready = min(workers.ready_at)
        t_drained = wait_rows(conn, done + per_minute * k)
        drain_s = t_drained - t_restart
        cpu1 = cpu_seconds(who)
        busy = ", ".join(f"{k} {(cpu1[k] - cpu0[k]) / drain_s:.2f}" for k in who)
        rate_after = per_minute * k / max(1e-3, t_drained - t_ready)
        print(f"3. outage of {t_restart - t0:.0f} s: backlog {k} minutes = {per_minute * k:,} rows;"
              f" drained in {drain_s:.1f} s after the restart (both workers' start included) ="
              f" {k * 60 / drain_s:.1f}x real time (goal >= 10x);"
              f" {rate_after:,.0f} rows/s from the first worker up"
              f" ({t_ready - t_restart:.1f} s to start it)\n"
              f"   CPUs busy while draining (of 2): {busy}")  # fmt: skip
        rss = workers.rss_max
        print(f"4. bureau RSS, largest seen: worker 1 {rss[0] / 2**20:.0f} MiB, 2: {rss[1] / 2**20:.0f} MiB"
              f" (goal < 1 GB each)")  # fmt: skip
        print(f"   the bench's polls for progress took {POLL_S[0]:.1f} s in all")
        dead = conn.execute("SELECT count(*) FROM bureau_dead_letter").fetchone()
        print(f"   dead letters: {dead[0] if dead else '?'}; load average now: {os.getloadavg()}")
        conn.close()
    finally:
        pub.close()
        workers.close()
        broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--enterprises", type=int, default=200)
    ap.add_argument("--sensors", type=int, default=220, help="sensors per enterprise")
    ap.add_argument("--minutes", type=int, default=3, help="minutes of aggregates for phase 1")
    ap.add_argument("--alarms", type=int, default=100)
    ap.add_argument("--alarm-interval", type=float, default=0.2, help="seconds between two alarms")
    ap.add_argument("--speed", type=float, default=2.0, help="aggregates flow at N x real time in phase 2")
    ap.add_argument("--outage", type=float, default=120.0, help="bureau outage, seconds (the issue: 600)")
    ap.add_argument("--connections", type=int, default=4, help="the fleet's MQTT connections")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--ingest", default="", help="the workers' bureau.yaml ingest: settings, e.g. 'receive_maximum: 4000'"
    )
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # killed: still drop the scratch database
    name = f"hazmon_bench_bureau_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN, autocommit=True) as adm:
        adm.execute(f'CREATE DATABASE "{name}"')
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {os.getloadavg()}; {os.cpu_count()} CPUs")
    try:
        with tempfile.TemporaryDirectory(prefix="hazmon-bench-") as d:
            bench(a, ADMIN.rsplit("/", 1)[0] + "/" + name, Path(d))
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as adm, contextlib.suppress(psycopg.Error):
            adm.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
