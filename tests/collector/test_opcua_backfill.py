"""A lost OPC UA connection leaves no gap where the server keeps history (real asyncua servers).

The connection runs through a TCP proxy the test cuts: the server stays up and its values go on
changing while the collector is away. After the reconnect the collector reads the gap back with
HistoryRead; every value written during the cut arrives with its own source timestamp. A server
that keeps no history leaves the gap (stale, as before) and says so.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hazmon.collector import DeadLetters, Metrics, ReadingQueue
from hazmon.collector.opcua import OpcUaConnection, inputs_for_plant
from hazmon.plant import Plant, Reading
from hazmon.simulators.opcua_server import SimOpcUaServer
from tests.collector.opcua_helpers import opcua_only
from tests.collector.test_opcua import FAST
from tests.conftest import free_port
from tests.daemon.helpers import wait_for
from tests.daemon.proxy import CuttableProxy


class _Rig:
    def __init__(
        self,
        plant: Plant,
        server: SimOpcUaServer,
        proxy: CuttableProxy,
        conn: OpcUaConnection,
        q: ReadingQueue,
        m: Metrics,
    ) -> None:
        self.plant, self.server, self.proxy, self.conn, self.q, self.m = plant, server, proxy, conn, q, m
        self.got: list[Reading] = []

    async def drain(self) -> None:
        self.got += await self.q.get(100_000, 0.2)

    async def collect_then_cut(self) -> int:
        """Start collecting, see one round arrive, cut the connection; the round's time (µs)."""
        self.conn.start()
        await wait_for(self.conn.connected.is_set, "connected")
        t0 = time.time_ns() // 1000
        first = _round(self.plant, t0, 0)
        await self.server.send(first)
        await self.until(_keys(first), "values before the cut")
        await self.proxy.cut()
        await wait_for(lambda: not self.conn.connected.is_set(), "the collector noticing the cut")
        return t0

    async def until(self, want: set[tuple[str, int, float]], what: str, limit_s: float = 30.0) -> None:
        deadline = time.monotonic() + limit_s
        while not want <= {(r.tag, r.ts_us, r.value) for r in self.got}:
            if time.monotonic() > deadline:
                have = {(r.tag, r.ts_us, r.value) for r in self.got}
                raise AssertionError(f"{what}: {len(want - have)} of {len(want)} values missing")
            await self.drain()


async def _rig(example_plant: Plant, tmp_path: Path, mode: str, history_s: float) -> _Rig:
    served = opcua_only(example_plant, port=free_port(), mode=mode)
    server = SimOpcUaServer(served.opcua[0], served, tmp_path, history_s=history_s)
    await server.start()
    port = int(served.opcua[0].url.split(":")[2].split("/")[0])
    proxy = CuttableProxy("127.0.0.1", port)
    await proxy.start()
    plant = opcua_only(example_plant, port=proxy.port, mode=mode)
    m = Metrics()
    q = ReadingQueue(100_000, asyncio.get_running_loop())
    (conn,) = inputs_for_plant(
        plant, queue=q, dead=DeadLetters(m), metrics=m, settings=FAST, on_state=lambda *a: None
    )
    return _Rig(plant, server, proxy, conn, q, m)


def _round(plant: Plant, ts_us: int, k: int) -> list[Reading]:
    return [Reading(s.tag, ts_us, round(1.0 + k * 0.25 + i * 0.01, 6)) for i, s in enumerate(plant.sensors())]


def _keys(readings: list[Reading]) -> set[tuple[str, int, float]]:
    return {(r.tag, r.ts_us, r.value) for r in readings}


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_the_gap_of_a_lost_connection_is_read_back_from_history(
    example_plant: Plant, tmp_path: Path, mode: str
) -> None:
    rig = await _rig(example_plant, tmp_path, mode, history_s=3600)
    try:
        t0 = await rig.collect_then_cut()
        during: list[Reading] = []
        for k in range(1, 6):  # five rounds the collector never sees live (polling would see one)
            r = _round(rig.plant, t0 + k * 200_000, k)
            await rig.server.send(r)
            during += r
            await asyncio.sleep(0.05)
        await rig.proxy.restore()
        await wait_for(rig.conn.connected.is_set, "reconnected")
        await rig.until(_keys(during), "values written during the cut")
    finally:
        await rig.conn.stop()
        await rig.proxy.cut()
        await rig.server.stop()
    assert rig.m.total("hazmon_opcua_backfilled_total") >= len(during)
    assert rig.m.total("hazmon_opcua_gaps_pending") == 0
    # every value with its own source timestamp (the last one also came live: a duplicate)
    for s in rig.plant.sensors():
        assert len({r.ts_us for r in rig.got if r.tag == s.tag and r.ts_us > t0}) == 5


async def test_a_server_without_history_leaves_the_gap_and_says_so(
    example_plant: Plant, tmp_path: Path
) -> None:
    rig = await _rig(example_plant, tmp_path, "subscribe", history_s=0)
    try:
        t0 = await rig.collect_then_cut()
        lost = _round(rig.plant, t0 + 200_000, 1)
        await rig.server.send(lost)
        await rig.server.send(_round(rig.plant, t0 + 400_000, 2))
        await rig.proxy.restore()
        await wait_for(rig.conn.connected.is_set, "reconnected")
        await rig.until(_keys(_round(rig.plant, t0 + 400_000, 2)), "the current values")
        await wait_for(lambda: rig.m.total("hazmon_opcua_gaps_pending") == 0, "the gap looked at")
    finally:
        await rig.conn.stop()
        await rig.proxy.cut()
        await rig.server.stop()
    assert not _keys(lost) & _keys(rig.got), "nothing made up for the gap"
    assert rig.m.total("hazmon_opcua_backfilled_total") == 0
    assert rig.m.total("hazmon_opcua_history_unavailable_items") == len(rig.plant.sensors())


async def test_backfill_off_reads_no_history(example_plant: Plant, tmp_path: Path) -> None:
    rig = await _rig(example_plant, tmp_path, "subscribe", history_s=3600)
    rig.conn.settings = replace(FAST, backfill_max_s=0)
    try:
        rig.conn.start(backfill_from_us=time.time_ns() // 1000 - 60_000_000)
        await wait_for(rig.conn.connected.is_set, "connected")
        t0 = time.time_ns() // 1000
        await rig.server.send(_round(rig.plant, t0, 0))
        await rig.until(_keys(_round(rig.plant, t0, 0)), "live values")
    finally:
        await rig.conn.stop()
        await rig.proxy.cut()
        await rig.server.stop()
    assert rig.m.total("hazmon_opcua_backfilled_total") == 0


async def test_a_failing_history_read_keeps_the_live_values_and_the_gap_pending(
    example_plant: Plant, tmp_path: Path
) -> None:
    """The server's HistoryRead breaks (a fault injected into the real server): live values go on."""
    rig = await _rig(example_plant, tmp_path, "subscribe", history_s=3600)
    try:
        t0 = await rig.collect_then_cut()
        assert rig.server._server is not None

        async def broken(*_a: object) -> None:
            raise RuntimeError("historian offline")

        rig.server._server.iserver.history_manager.read_history = broken  # type: ignore[method-assign]
        await rig.proxy.restore()
        await wait_for(rig.conn.connected.is_set, "reconnected")
        after = _round(rig.plant, t0 + 1_000_000, 9)
        await rig.server.send(after)
        await rig.until(_keys(after), "live values after the failed history read")
        await asyncio.sleep(1.0)  # the failed read is behind us: the session must still be the same
    finally:
        await rig.conn.stop()
        await rig.proxy.cut()
        await rig.server.stop()
    assert rig.conn.sessions == 2, "the failing history read did not take the connection down"
    assert rig.m.total("hazmon_opcua_gaps_pending") == 1, "the gap is kept for the next connection"
