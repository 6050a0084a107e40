"""OPC UA adapter pieces against real asyncua servers started here."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from hazmon.collector import DeadLetters, Metrics, OpcUaSettings, ReadingQueue
from hazmon.collector.opcua import (
    Item,
    OpcUaConnection,
    PollInput,
    SubscribeInput,
    inputs_for_plant,
    quality_of,
)
from hazmon.plant import OpcUaBinding, Plant, Quality, Reading
from tests.collector.opcua_helpers import opcua_only, server_for
from tests.daemon.helpers import wait_for

T0 = 1_795_860_000_000_000


async def _gather(q: ReadingQueue, n: int, limit_s: float = 30.0) -> list[Reading]:
    """At least ``n`` readings from the queue, or a failure naming how many came (never a hang)."""
    got: list[Reading] = []
    deadline = asyncio.get_running_loop().time() + limit_s
    while len(got) < n:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(got)} of {n} readings arrived within {limit_s} s")
        got += await q.get(1000, 1.0)
    return got


FAST = OpcUaSettings(reconnect_min_s=0.2, reconnect_max_s=1.0, watchdog_s=0.5, timeout_s=3.0)


def test_status_code_severity_gives_quality() -> None:
    assert [
        quality_of(c)
        for c in (0x00000000, 0x00960000, 0x40000000, 0x408F0000, 0x80000000, 0x80340000, 0xC0000000)
    ] == [
        Quality.GOOD,
        Quality.GOOD,
        Quality.UNCERTAIN,
        Quality.UNCERTAIN,
        Quality.BAD,
        Quality.BAD,
        Quality.BAD,
    ]


async def _collect(plant: Plant, settings: OpcUaSettings = FAST) -> tuple[object, ReadingQueue, Metrics]:
    m = Metrics()
    q = ReadingQueue(100_000, asyncio.get_running_loop())
    states: list[tuple[str, bool, str]] = []
    (conn,) = inputs_for_plant(
        plant,
        queue=q,
        dead=DeadLetters(m),
        metrics=m,
        settings=settings,
        on_state=lambda *a: states.append(a),
    )
    return conn, q, m


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_unknown_node_ids_reported_once_by_name_and_the_rest_keep_working(
    example_plant: Plant, tmp_path: Path, mode: str
) -> None:
    plant = opcua_only(example_plant, mode=mode)
    server = server_for(plant, tmp_path)
    await server.start()
    # the daemon's plant names two nodes the server does not have, and one malformed id
    hs = plant.hazard_sources[0]
    ghost = replace(hs.sensors[0], tag="LT-999", binding=OpcUaBinding("dcs", "ns=2;s=LT-999"))
    bad = replace(hs.sensors[0], tag="LT-998", binding=OpcUaBinding("dcs", "ns=2;x=?"))
    daemon_plant = replace(
        plant, hazard_sources=(replace(hs, sensors=(*hs.sensors, ghost, bad)), *plant.hazard_sources[1:])
    )
    conn, q, m = await _collect(daemon_plant)
    try:
        conn.start()  # type: ignore[attr-defined]
        await wait_for(conn.connected.is_set, "connected")  # type: ignore[attr-defined]
        await server.send([Reading(s.tag, T0, 1.25) for s in plant.sensors()])
        got = await _gather(q, len(plant.sensors()))
    finally:
        await conn.stop()  # type: ignore[attr-defined]
        await server.stop()
    assert sorted(r.tag for r in got) == sorted(s.tag for s in plant.sensors())
    assert conn.input.unknown == {"LT-999", "LT-998"}  # type: ignore[attr-defined]
    assert m.total("hazmon_opcua_item_errors_total") == 2


@pytest.mark.parametrize("mode", ["subscribe", "poll"])
async def test_a_refused_node_is_named_in_its_sensors_stale_reason(
    example_plant: Plant, tmp_path: Path, mode: str
) -> None:
    """One cause, one alarm, and the right one: a sensor whose node the server refuses alarms on its
    own (its endpoint is up), and its alarm says which node and why, not just "no reading for 6 s"."""
    from hazmon.collector import StaleTracker

    plant = opcua_only(example_plant, mode=mode)
    server = server_for(plant, tmp_path)
    await server.start()
    hs = plant.hazard_sources[0]
    ghost = replace(hs.sensors[0], tag="LT-999", binding=OpcUaBinding("dcs", "ns=2;s=LT-999"))
    daemon_plant = replace(
        plant, hazard_sources=(replace(hs, sensors=(*hs.sensors, ghost)), *plant.hazard_sources[1:])
    )
    stale = StaleTracker({s.tag: s.period_s for s in daemon_plant.sensors()}, 3.0, 0)
    m = Metrics()
    q = ReadingQueue(100_000, asyncio.get_running_loop())
    (conn,) = inputs_for_plant(
        daemon_plant,
        queue=q,
        dead=DeadLetters(m),
        metrics=m,
        settings=FAST,
        on_state=lambda *a: None,
        on_item_problem=stale.explain,
    )
    try:
        conn.start()
        await wait_for(conn.connected.is_set, "connected")
        await server.send([Reading(s.tag, T0, 1.25) for s in plant.sensors()])
        await _gather(q, len(plant.sensors()))
    finally:
        await conn.stop()
        await server.stop()
    stale.seen([s.tag for s in plant.sensors()], 10**12)
    changes = {c.tag: c.reason for c in stale.check(10**12)}  # the others just reported
    assert changes == {
        "LT-999": f"node ns=2;s=LT-999 of dcs refused by the server: BadNodeIdUnknown; no reading for "
        f"{3 * ghost.period_s:g} s (3 x {ghost.period_s:g} s)"
    }


class _LosesOneCancel(PollInput):
    """Polls as usual but loses its first cancel, as a task inside asyncua's requests can on
    Python 3.11 (asyncio.wait_for, CPython gh-86296; see hazmon.plant.aio)."""

    lost = 0
    ended = False

    async def run(self, client: Any) -> None:
        try:
            while True:
                try:
                    await super().run(client)
                except asyncio.CancelledError:
                    if self.lost:
                        raise
                    self.lost += 1
        finally:
            self.ended = True


async def test_stop_ends_even_when_the_input_loses_a_cancel(example_plant: Plant, tmp_path: Path) -> None:
    """CI hung 300 s in a collector stop: the watchdog lost its cancel in wait_for and looped on."""
    plant = opcua_only(example_plant, mode="poll")
    server = server_for(plant, tmp_path)
    await server.start()
    m = Metrics()
    q = ReadingQueue(100_000, asyncio.get_running_loop())
    (plain,) = inputs_for_plant(
        plant, queue=q, dead=DeadLetters(m), metrics=m, settings=FAST, on_state=lambda *a: None
    )
    inp = _LosesOneCancel("dcs", plain.input.items, queue=q, dead=DeadLetters(m), metrics=m, settings=FAST)
    conn = OpcUaConnection(plant.opcua[0], inp, FAST, m, lambda *a: None)
    try:
        conn.start()
        await wait_for(conn.connected.is_set, "connected")
        await server.send([Reading(s.tag, T0, 1.5) for s in plant.sensors()])
        await _gather(q, 1)  # polling
        stopping = asyncio.create_task(conn.stop())
        # a deadline against hanging (pytest's is 300 s), not a timing assertion; not
        # asyncio.timeout: the old stop() swallowed the cancel that would have reported it
        done, _ = await asyncio.wait({stopping}, timeout=30)
        assert done, "the collector's stop() did not end"
        stopping.result()
    finally:
        await server.stop()
    assert inp.lost == 1 and inp.ended


async def test_revised_queue_sizes_and_intervals_are_read_back(example_plant: Plant, tmp_path: Path) -> None:
    plant = opcua_only(example_plant)
    server = server_for(plant, tmp_path)
    await server.start()
    conn, _q, m = await _collect(plant, replace(FAST, queue_size=5000, items_per_request=7))
    try:
        conn.start()  # type: ignore[attr-defined]
        await wait_for(conn.connected.is_set, "connected")  # type: ignore[attr-defined]
    finally:
        await conn.stop()  # type: ignore[attr-defined]
        await server.stop()
    rev = conn.input.revised  # type: ignore[attr-defined]
    assert rev["publishing_interval_ms"] == 1000.0
    # asyncua's server ignores the 5,000 ms asked for the 5 s temperature sensors: we see what it granted
    assert rev["sampling_ms_min"] == 1000.0 and rev["sampling_ms_max"] == 1000.0
    # what the server granted is what we export, whatever it is
    assert (
        m.get("hazmon_opcua_revised", {"source": "dcs", "parameter": "queue_size_max"})
        == rev["queue_size_max"]
    )
    assert 1 <= rev["queue_size_min"] <= 5000


@pytest.mark.slow
@pytest.mark.parametrize("security", ["sign", "sign_and_encrypt"])
async def test_basic256sha256_with_certificate_files_and_username(
    example_plant: Plant, tmp_path: Path, security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "client-cert.der", tmp_path / "client-key.pem"
    await setup_self_signed_certificate(
        key,
        cert,
        "urn:hazmon:collector:test",
        "localhost",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"commonName": "hazmon collector test"},
    )
    monkeypatch.setenv("HAZMON_TEST_OPCUA_PW", "s3cret")
    plant = opcua_only(
        example_plant,
        security=security,
        certificate=str(cert),
        private_key=str(key),
        server_certificate=str(tmp_path / "server-cert.der"),
        username="hazmon",
        password_env="HAZMON_TEST_OPCUA_PW",
    )
    server = server_for(plant, tmp_path / "srv")
    await server.start()  # copies its certificate to server_certificate for us to trust
    conn, q, _m = await _collect(plant)
    try:
        conn.start()  # type: ignore[attr-defined]
        await wait_for(conn.connected.is_set, "secure session", 20)  # type: ignore[attr-defined]
        await server.send([Reading(s.tag, T0 + 5, 2.5) for s in plant.sensors()])
        got = await _gather(q, len(plant.sensors()))
    finally:
        await conn.stop()  # type: ignore[attr-defined]
        await server.stop()
    assert {(r.ts_us, r.value) for r in got} == {(T0 + 5, 2.5)}


async def test_wrong_password_keeps_retrying_and_reports_down(
    example_plant: Plant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAZMON_TEST_OPCUA_PW", "right")
    plant = opcua_only(example_plant, username="hazmon", password_env="HAZMON_TEST_OPCUA_PW")
    server = server_for(plant, tmp_path)
    await server.start()
    monkeypatch.setenv("HAZMON_TEST_OPCUA_PW", "wrong")
    m = Metrics()
    states: list[tuple[str, bool, str]] = []
    (conn,) = inputs_for_plant(
        plant,
        queue=ReadingQueue(10, asyncio.get_running_loop()),
        dead=DeadLetters(m),
        metrics=m,
        settings=FAST,
        on_state=lambda *a: states.append(a),
    )
    try:
        conn.start()
        await wait_for(lambda: len(states) >= 1, "reported down")
        await asyncio.sleep(0)
    finally:
        await conn.stop()
        await server.stop()
    assert states[0][:2] == ("dcs", False) and not conn.connected.is_set()


@pytest.mark.slow
def test_browse_lists_variables_and_writes_sensor_entries(example_plant: Plant, tmp_path: Path) -> None:
    plant = opcua_only(example_plant)
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from hazmon.plant import load\n"
        "from tests.collector.opcua_helpers import opcua_only, server_for\n"
        f"plant = opcua_only(load({example_plant.path!r}), port={plant.opcua[0].url.split(':')[2].split('/')[0]})\n"
        "async def main():\n"
        f"    s = server_for(plant, Path({str(tmp_path)!r})); await s.start()\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[2]
    srv = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join((str(root), str(root / "tools")))},  # tests + testkit
    )
    try:
        assert srv.stdout is not None
        while "ready" not in srv.stdout.readline():  # log lines first
            assert srv.poll() is None
        hz = [sys.executable, "-m", "hazmon", "opcua", "browse", plant.opcua[0].url]
        table = subprocess.run(hz, capture_output=True, text=True, check=True, timeout=60).stdout
        yaml_out = subprocess.run(
            [*hz, "--write-sensors"], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    finally:
        srv.terminate()
        srv.wait(10)
    lines = table.splitlines()
    assert lines[-1] == f"{len(plant.sensors())} variable(s)"
    row = next(x for x in lines if x.startswith("ns=2;s=LT-101 "))
    assert row.split() == ["ns=2;s=LT-101", "m", "[0,", "2.4]", "/hx-chem/cl2-tankfarm/LT-101"]
    assert '    binding: {endpoint: dcs, node: "ns=2;s=LT-101"}' in yaml_out
    assert "  - tag: TT-101" in yaml_out and '    unit: "°C"' in yaml_out


_ = (Item, PollInput, SubscribeInput)
