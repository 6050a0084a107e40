"""OPC UA backfill: how fast a gap is read back from a server's history (HistoryRead raw).

A server process of its own holds ``--items`` historized Double nodes (AccessLevel with
HistoryRead) and writes each of them once a second for ``--gap-s`` seconds before the collector
connects. The collector then reads that gap back (`PollInput.backfill`, the code the daemon runs
after a reconnect or at start) while a task drains the queue, as the daemon's consumer would.
Printed: values read back per second and the collector's CPU; side by side, the rate of plain
Reads of the same nodes (the live path of a polling collector) in the same run.

Usage: .venv/bin/python bench/backfill.py [--items 10000] [--gap-s 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

from asyncua.client.client import Client

from hazmon.collector import DeadLetters, Metrics, OpcUaSettings, ReadingQueue
from hazmon.collector.opcua import Item, PollInput

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # testkit: helpers shared with the tests
from testkit import free_port  # noqa: E402

_SERVER = """
import asyncio, sys, time
from datetime import UTC, datetime, timedelta
from asyncua import ua
from testkit import big_server, write_tick
from hazmon.plant.asyncua_internals import value_attribute

async def main(n, port, gap_s):
    srv, idx = await big_server(n, port)
    nodes = [srv.get_node(ua.NodeId(f"S{i}", idx)) for i in range(n)]
    for node in nodes:
        access = ua.DataValue(ua.Variant(5, ua.VariantType.Byte))  # CurrentRead | HistoryRead
        await node.write_attribute(ua.AttributeIds.AccessLevel, access)
    await srv.historize_node_data_change(nodes, period=timedelta(hours=1))
    attrs = [value_attribute(srv, node.nodeid) for node in nodes]
    t_start = datetime.now(UTC) - timedelta(seconds=gap_s)
    for k in range(int(gap_s)):  # the gap, written as fast as the server takes it
        await write_tick(attrs, k, t_start + timedelta(seconds=k))
        await asyncio.sleep(0)
    await asyncio.sleep(3)  # the history subscription publishes what is queued
    print("ready", int(t_start.timestamp() * 1e6), flush=True)
    await asyncio.Event().wait()

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
"""


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--gap-s", type=float, default=60.0)
    a = ap.parse_args()
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SERVER, str(a.items), str(port), str(a.gap_s),
        cwd=ROOT, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT / "tools")},
    )  # fmt: skip
    assert server.stdout is not None
    while not (line := (await server.stdout.readline()).decode()).startswith("ready"):
        if not line:
            raise SystemExit("the server process ended")
    since = int(line.split()[1])
    m = Metrics()
    q = ReadingQueue(200_000, asyncio.get_running_loop())
    items = [Item(f"S{i}", f"ns=2;s=S{i}", 1.0) for i in range(a.items)]
    inp = PollInput("big", items, queue=q, dead=DeadLetters(m), metrics=m, settings=OpcUaSettings())
    drained = 0

    async def drain() -> None:
        nonlocal drained
        while True:
            drained += len(await q.get_batch(50_000, 0.1))

    # the collector's own patience (asyncua's 1 s connection probe dropped a busy session)
    client = Client(f"opc.tcp://127.0.0.1:{port}/big", timeout=120, watchdog_intervall=120)
    drainer = asyncio.create_task(drain())
    try:
        async with client:
            c0, t0 = cpu_s(), time.perf_counter()
            n = await inp.backfill(client, since - 1_000_000, time.time_ns() // 1000)
            el, cpu = time.perf_counter() - t0, cpu_s() - c0
            await inp.attach(client)
            c1, t1, polled = cpu_s(), time.perf_counter(), 0
            while time.perf_counter() - t1 < min(el, 20.0):
                inp._last_ts.clear()  # every value counts as new: the read path, not the dedup
                polled += await inp.poll_once(client)
            el2, cpu2 = time.perf_counter() - t1, cpu_s() - c1
    finally:
        drainer.cancel()
        server.kill()
        await server.wait()
    # the gap's values, and each node's value from when its history began (inside the window)
    expected = a.items * (int(a.gap_s) + 1)
    print(
        f"hazmon OPC UA backfill bench: {a.items} items, {a.gap_s:.0f} s gap at 1 Hz "
        f"({expected:,} values in the server's history for the gap)"
    )
    print(
        f"HistoryRead backfill: {n:,} values in {el:.1f} s = {n / el:,.0f} values/s, "
        f"collector CPU {cpu / el * 100:.0f} % of a core (server in its own process)"
    )
    print(f"plain Read (poll) of the same nodes: {polled / el2:,.0f} values/s, CPU {cpu2 / el2 * 100:.0f} %")
    print(f"ratio backfill / poll: {n / el / max(polled / el2, 1e-9):.2f}")
    if n != expected:
        print(f"WARNING: {n:,} values read back, {expected:,} in the history")


if __name__ == "__main__":
    asyncio.run(main())
