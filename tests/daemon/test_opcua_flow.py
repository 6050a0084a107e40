"""OPC UA into readings, exact; server restart: readings resume, the gap is stale."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from hazmon.collector import CollectorSettings, OpcUaSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant, Quality, Reading
from tests.collector.opcua_helpers import opcua_only, server_for
from tests.daemon.helpers import as_rows, count, daemon_config, rows, wait_for

T0 = 1_795_860_000_000_000
FAST = CollectorSettings(
    flush_interval_s=0.2,
    stale_factor=3,
    opcua=OpcUaSettings(reconnect_min_s=0.2, reconnect_max_s=1.0, watchdog_s=0.5, timeout_s=2.0),
)


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_example_plant_over_opcua_flows_into_readings_exactly(
    example_plant: Plant, db_dsn: str, tmp_path: Path, mode: str
) -> None:
    plant = opcua_only(example_plant, mode=mode)
    server = server_for(plant, tmp_path / "srv")
    await server.start()
    try:
        async with Daemon(daemon_config(tmp_path, db_dsn, plant, FAST), plant) as d:
            assert d.w is not None
            conn = d.w.inputs[0]
            await wait_for(conn.connected.is_set, "session")  # type: ignore[attr-defined]
            sent: list[Reading] = []
            for k in range(3):
                batch = [
                    Reading(
                        s.tag,
                        T0 + k * 1_000_000 + i * 7,
                        0.5 * i + k,
                        Quality(i % 3) if i % 5 == 0 else Quality.GOOD,
                    )
                    for i, s in enumerate(plant.sensors())
                ]
                await server.send(batch)
                sent += batch
                n = len(sent)
                await wait_for(lambda n=n: count(db_dsn) >= n, f"round {k} stored")  # type: ignore[misc]
    finally:
        await server.stop()
    # a Bad status carries no value over OPC UA: stored as NaN with quality bad, never a made-up number
    arrived = [r._replace(value=math.nan) if r.quality == Quality.BAD else r for r in sent]
    expected = [(t, ts, None if q == Quality.BAD else v, q) for t, ts, v, q in as_rows(arrived)]
    got = [(t, ts, None if math.isnan(v) else v, q) for t, ts, v, q in rows(db_dsn)]
    assert got == expected


@pytest.mark.slow
async def test_server_restart_readings_resume_and_the_gap_is_stale(
    example_plant: Plant, db_dsn: str, tmp_path: Path
) -> None:
    plant = opcua_only(example_plant)
    server = server_for(plant, tmp_path / "srv")
    await server.start()
    tags = [s.tag for s in plant.sensors()]
    try:
        async with Daemon(daemon_config(tmp_path, db_dsn, plant, FAST), plant) as d:
            assert d.w is not None
            w = d.w
            conn = w.inputs[0]
            await wait_for(conn.connected.is_set, "session")  # type: ignore[attr-defined]
            await server.send([Reading(t, T0, 1.0) for t in tags])
            await wait_for(lambda: count(db_dsn) >= len(tags), "first values")
            await server.stop()
            await wait_for(
                lambda: w.stale.stale_count == len(tags), "every sensor stale while the server is away"
            )
            server = replace_server = server_for(plant, tmp_path / "srv")
            await replace_server.start()
            await replace_server.send([Reading(t, T0 + 60_000_000, 2.0) for t in tags])
            await wait_for(lambda: count(db_dsn) >= 2 * len(tags), "readings resumed", 10)
            await wait_for(lambda: w.stale.stale_count == 0, "fresh again")
            sessions = conn.sessions  # type: ignore[attr-defined]
    finally:
        await server.stop()
    assert sessions >= 2
    values = rows(db_dsn, "SELECT r.time, r.value FROM readings r ORDER BY 1, 2")
    # nothing was stored for the gap: only the values sent before and after
    assert sorted({v for _, v in values}) == [1.0, 2.0]
