"""/metrics of a real daemon: fixed label names from the first scrape, latency histograms that count.

Real PostgreSQL, Mosquitto, an asyncua simulator behind a cuttable proxy and a webhook receiver.
The first scrape is taken before the OPC UA source ever connects; the second after it connected,
lost its connection and reconnected, readings were committed and a red alarm was notified.
(Before prometheus_client: ``hazmon_source_reconnects_total`` and ``hazmon_opcua_gaps_pending``
showed one bare sample first, then a ``source`` label.)
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from hazmon.collector import CollectorSettings, OpcUaSettings
from hazmon.daemon import Daemon
from hazmon.plant import OpcUaBinding, Plant, Reading
from hazmon.simulators.opcua_server import SimOpcUaServer
from tests.alarms.helpers import assess_all, webhook_settings
from tests.alarms.receivers import HttpReceiver
from tests.conftest import free_port
from tests.daemon.helpers import Publisher, count, daemon_config, json_payload, mqtt_subscribed, wait_for
from tests.daemon.proxy import CuttableProxy

FAST = CollectorSettings(
    flush_interval_s=0.2,
    opcua=OpcUaSettings(reconnect_min_s=0.2, reconnect_max_s=1.0, watchdog_s=0.5, timeout_s=2.0),
)

# families whose label values are open-ended (a server's status code, a refusal reason, a revised
# parameter): no child can exist before the first one happens. Their label NAMES are fixed all the same.
_OPEN_ENDED = {"hazmon_dead_letters", "hazmon_opcua_item_errors", "hazmon_opcua_revised"}

Families = dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]


async def _scrape(port: int) -> Families:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {
        f.name: (f.type, [(s.name, s.labels, s.value) for s in f.samples])
        for f in text_string_to_metric_families(text)
    }


def _label_names(fam: tuple[str, list[tuple[str, dict[str, str], float]]]) -> set[frozenset[str]]:
    """The label-name sets of a family's samples (a histogram's ``le`` aside)."""
    return {frozenset(k for k in labels if k != "le") for _, labels, _ in fam[1]}


def _value(fams: Families, family: str, sample: str, **labels: str) -> float:
    return next(v for n, lab, v in fams[family][1] if n == sample and lab == labels)


async def test_every_family_keeps_its_label_names_and_the_histograms_count(
    example_plant: Plant,
    db_dsn: str,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    hook = HttpReceiver()
    url = await hook.start()
    assess_all(example_plant, db_dsn)
    opc_port = free_port()
    proxy = CuttableProxy("127.0.0.1", opc_port)
    await proxy.start()
    base = example_plant.retarget(topic_prefix=topic_prefix)
    cid = f"hazmon-test-{uuid.uuid4().hex[:8]}"
    plant = replace(
        base,
        opcua=tuple(replace(e, url=f"opc.tcp://127.0.0.1:{proxy.port}/hazmon") for e in base.opcua),
        mqtt=tuple(replace(b, client_id=cid) for b in base.mqtt),
    )
    served = replace(
        plant, opcua=tuple(replace(e, url=f"opc.tcp://127.0.0.1:{opc_port}/hazmon") for e in plant.opcua)
    )
    server = SimOpcUaServer(served.opcua[0], served, tmp_path / "srv")
    config = replace(daemon_config(tmp_path, db_dsn, plant, FAST), alarms=webhook_settings(url))
    try:
        async with Daemon(config, plant) as d:
            assert d.w is not None
            first = await _scrape(d.http_port)  # no OPC UA server yet: "dcs" has never connected
            assert _value(first, "hazmon_source_connected", "hazmon_source_connected", source="dcs") == 0

            await server.start()
            await wait_for(
                lambda: (
                    d.w is not None and d.w.metrics.get("hazmon_source_connected", {"source": "dcs"}) == 1
                ),
                "the OPC UA source connected",
            )
            now = time.time_ns() // 1000
            opc = [Reading(s.tag, now, 0.5) for s in served.sensors() if isinstance(s.binding, OpcUaBinding)]
            await server.send(opc)
            # 3 ppm of chlorine, over the GB/T 50493 setpoints, for longer than the on-delay: a red alarm
            topic = next(s.binding.topic for s in plant.sensors() if s.tag == "AT-101")  # type: ignore[union-attr]
            await mqtt_subscribed(d)
            pub = Publisher(*mqtt_broker)
            gas = [Reading("AT-101", ts, 3.0) for ts in range(now - 8_000_000, now + 1, 2_000_000)]
            for r in gas:
                pub.publish(topic, json_payload(r))
            pub.close()
            await wait_for(lambda: count(db_dsn) >= len(opc) + len(gas), "the readings committed")

            await proxy.cut()
            await wait_for(
                lambda: (
                    d.w is not None and d.w.metrics.get("hazmon_source_connected", {"source": "dcs"}) == 0
                ),
                "the cut noticed",
            )
            await proxy.restore()
            await wait_for(
                lambda: (
                    d.w is not None
                    and d.w.metrics.get("hazmon_source_reconnects_total", {"source": "dcs"}) >= 1
                ),
                "the OPC UA source reconnected",
                120,
            )
            await wait_for(
                lambda: (
                    d.w is not None and d.w.metrics.get("hazmon_alarm_to_notification_seconds_count") >= 1
                ),
                "the red alarm notified",
            )
            second = await _scrape(d.http_port)
    finally:
        await server.stop()
        await proxy.cut()
        await hook.stop()

    assert set(first) == set(second), "every family is declared before the first scrape"
    for name, fam in second.items():
        assert len(_label_names(fam)) <= 1, f"{name}: samples with different label names {_label_names(fam)}"
        if fam[1] and not first[name][1]:
            assert name in _OPEN_ENDED, f"{name}: no sample in the first scrape (children not pre-created)"
        elif first[name][1]:
            assert _label_names(first[name]) == _label_names(fam), f"{name}: label names changed"
    # issue 12: these two appeared first bare, then with a source label
    for name in ("hazmon_source_reconnects", "hazmon_opcua_gaps_pending"):
        assert _label_names(first[name]) == {frozenset({"source"})}, name

    for hist in ("hazmon_ingest_to_commit_seconds", "hazmon_alarm_to_notification_seconds"):
        assert second[hist][0] == "histogram"
        assert _value(first, hist, hist + "_count") == 0
        n = _value(second, hist, hist + "_count")
        assert n >= 1, hist
        assert _value(second, hist, hist + "_bucket", le="+Inf") == n
    assert _value(second, "hazmon_source_reconnects", "hazmon_source_reconnects_total", source="dcs") >= 1
