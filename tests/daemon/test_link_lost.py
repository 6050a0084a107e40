"""One cause, one alarm, end to end: a real asyncua server behind a proxy the test cuts (issue 12).

The daemon reads the example plant's OPC UA endpoint through a TCP proxy; the alarms
go to a real webhook receiver. Cutting the proxy must give ONE link-lost alarm for the
endpoint, notified; its sensors' stale conditions are recorded and shown as its
consequences (API), never notified; after the link is restored they clear with it and
no stale alarm waits for acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hazmon.collector import CollectorSettings, OpcUaSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant, Reading
from hazmon.simulators.opcua_server import SimOpcUaServer
from tests.alarms.helpers import SECRET, assess_all, bearer, webhook_settings
from tests.alarms.receivers import HttpReceiver
from tests.collector.opcua_helpers import opcua_only
from tests.conftest import free_port
from tests.daemon.helpers import daemon_config, wait_for
from tests.daemon.proxy import CuttableProxy

FAST = CollectorSettings(
    flush_interval_s=0.2,
    stale_factor=3,
    opcua=OpcUaSettings(reconnect_min_s=0.2, reconnect_max_s=0.5, watchdog_s=0.5, timeout_s=2.0),
)


async def _feed(server: SimOpcUaServer, plant: Plant) -> None:
    """Every sensor at the middle of its range, twice a second (nothing goes stale on its own)."""
    while True:
        now = time.time_ns() // 1000
        await server.send([Reading(s.tag, now, (s.range[0] + s.range[1]) / 2) for s in plant.sensors()])
        await asyncio.sleep(0.5)


@pytest.mark.slow
async def test_an_endpoint_cut_is_one_link_alarm_and_its_stale_sensors_clear_with_it(
    example_plant: Plant, db_dsn: str, tmp_path: Path
) -> None:
    served = opcua_only(example_plant, port=free_port())
    server = SimOpcUaServer(served.opcua[0], served, tmp_path / "srv")
    await server.start()
    proxy = CuttableProxy("127.0.0.1", int(served.opcua[0].url.split(":")[2].split("/")[0]))
    await proxy.start()
    plant = opcua_only(example_plant, port=proxy.port)
    tags = {s.tag for s in plant.sensors()}
    hook = HttpReceiver(secret=SECRET)
    await hook.start()
    assess_all(plant, db_dsn)
    alarms = webhook_settings(f"http://127.0.0.1:{hook.port}/hook", repeat_s=0)
    config = replace(daemon_config(tmp_path, db_dsn, plant, FAST), alarms=alarms)
    feeder = asyncio.create_task(_feed(server, plant))
    try:
        async with Daemon(config, plant) as d:
            assert d.w is not None and d.w.alarms is not None
            svc: Any = d.w.alarms
            conn: Any = d.w.inputs[0]
            await wait_for(conn.connected.is_set, "session")
            await asyncio.sleep(2.0)  # readings flowing: every sensor heard from

            def link() -> Any:
                return next(
                    (a for a in svc.alarms() if a.condition == "link_lost" and a.sensor == "dcs"), None
                )

            def consequences() -> list[Any]:
                return [
                    a for a in svc.alarms() if a.condition == "stale" and a.state.cause == "link_lost:dcs"
                ]

            await proxy.cut()
            await wait_for(lambda: link() is not None and link().state.active, "the link-lost alarm")
            await wait_for(
                lambda: len(consequences()) == len(tags), "every sensor's stale condition, as consequences"
            )
            await wait_for(
                lambda: any(any(a["condition"] == "link_lost" for a in p["alarms"]) for p in hook.payloads()),
                "the link-lost alarm notified",
            )
            assert "endpoint dcs unavailable" in link().state.message_en
            api = f"http://127.0.0.1:{d.http_port}/api/v1/alarms"
            async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {bearer('op1')}"}) as http:
                async with http.get(api, params={"condition": "stale"}) as r:
                    shown = (await r.json())["alarms"]
                assert {a["sensor"] for a in shown} == tags
                assert {(a["state"], a["cause"], a["acked"]) for a in shown} == {
                    ("suppressed", "link_lost:dcs", True)
                }

                await proxy.restore()
                await wait_for(lambda: not link().state.active, "the link-lost alarm cleared", 60)
                await wait_for(lambda: not consequences(), "the consequences cleared with it")
                await asyncio.sleep(
                    3 * 2.0 + 2.0
                )  # a full stale limit after the reconnect: all reported again
                async with http.get(api, params={"state": "active_unacked,rtn_unacked"}) as r:
                    waiting = (await r.json())["alarms"]
            assert [
                (a["condition"], a["sensor"]) for a in waiting if a["condition"] in ("stale", "link_lost")
            ] == [("link_lost", "dcs")]
            stale_alarms = [a for a in svc.alarms() if a.condition == "stale"]
            assert stale_alarms and all(not a.state.showing_active for a in stale_alarms)
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await proxy.cut()
        await server.stop()
        await hook.stop()
    told = [{a["condition"] for a in p["alarms"]} for p in hook.payloads()]
    assert not [c for c in told if "stale" in c], told  # 0 stale notifications
    assert len([c for c in told if "link_lost" in c]) >= 1
