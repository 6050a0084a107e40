"""10,000 monitored items: created in batched requests, and a burst of 10,000 changes all arrives
(asyncua's iterator-style queue would keep 1,000 of them and drop the rest without a word)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from asyncua import ua

from hazmon.collector import DeadLetters, Metrics, OpcUaSettings, ReadingQueue
from hazmon.collector.opcua import Item, OpcUaConnection, SubscribeInput
from hazmon.plant import OpcUaEndpoint, Reading, from_us
from testkit import big_server, free_port

N = 10_000
T0 = 1_795_860_000_000_000


@pytest.mark.slow
async def test_10000_items_subscribe_in_batches_and_a_full_burst_arrives() -> None:
    port = free_port()
    srv, idx = await big_server(N, port)
    m = Metrics()
    q = ReadingQueue(1_000_000, asyncio.get_running_loop())
    items = [Item(f"S{i}", f"ns={idx};s=S{i}", 1.0) for i in range(N)]
    s = OpcUaSettings(items_per_request=1000)
    inp = SubscribeInput("big", items, queue=q, dead=DeadLetters(m), metrics=m, settings=s)
    conn = OpcUaConnection(
        OpcUaEndpoint("big", f"opc.tcp://127.0.0.1:{port}/big"), inp, s, m, lambda *a: None
    )
    try:
        conn.start()
        async with asyncio.timeout(60):
            await conn.connected.wait()
        assert inp.create_requests == 10 and len(inp.unknown) == 0
        initial: list[Reading] = []
        while len(initial) < N:
            initial += await q.get(N, 10.0)
        ts = from_us(T0).astimezone(UTC)
        for i in range(N):  # the burst: every item changes at once
            await srv.write_attribute_value(  # type: ignore[attr-defined]
                ua.NodeId(f"S{i}", idx),
                ua.DataValue(
                    ua.Variant(i + 0.5, ua.VariantType.Double),
                    SourceTimestamp=ts,
                    ServerTimestamp=datetime.now(UTC),
                ),
            )
        burst: list[Reading] = []
        while len(burst) < N:
            got = await q.get(N, 10.0)
            assert got, f"burst stopped at {len(burst)} of {N}"
            burst += got
    finally:
        await conn.stop()
        await srv.stop()  # type: ignore[attr-defined]
    assert sorted((r.tag, r.ts_us, r.value) for r in burst) == sorted(
        (f"S{i}", T0, i + 0.5) for i in range(N)
    )
    assert m.total("hazmon_opcua_overflow_total") == 0
