"""`hazmon opcua browse --write-sensors` on a real asyncua server: its output passes `hazmon check`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from asyncua import Server, ua

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.slow


async def _server(port: int) -> Server:
    """Two tanks with the same display names in each folder, one variable without unit or range."""
    s = Server()
    await s.init()
    s.set_endpoint(f"opc.tcp://127.0.0.1:{port}/t")
    ns = await s.register_namespace("urn:test:browse")
    plant = await s.nodes.objects.add_folder(ns, "Plant")
    for tank in ("Tank1", "Tank2"):
        f = await plant.add_folder(ns, tank)
        for name, unit, rng in (
            ("Level", "m", (0.0, 12.0)),
            ("Temperature", "°C", (-40.0, 80.0)),
            ("Gas", "", None),
        ):
            v = await f.add_variable(ua.NodeId(f"{tank}.{name}", ns), name, 1.0)
            if unit:
                eu = ua.EUInformation(DisplayName=ua.LocalizedText(unit))
                await v.add_property(ns, "EngineeringUnits", eu)
            if rng:
                await v.add_property(ns, "EURange", ua.Range(Low=rng[0], High=rng[1]))
        await f.add_variable(ua.NodeId(f"{tank}.cl2", ns), "氯气", 0.0)  # a Chinese display name
    await s.start()
    return s


async def test_written_sensors_pass_check(tmp_path: Path) -> None:
    port = free_port()
    server = await _server(port)
    try:
        p = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hazmon", "opcua", "browse", f"opc.tcp://127.0.0.1:{port}/t", "--write-sensors",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await p.communicate()
    finally:
        await server.stop()
    assert p.returncode == 0, err.decode()
    plant = tmp_path / "plant.yaml"
    plant.write_bytes(out)
    r = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hazmon", "check", str(plant)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr + out.decode()
    assert r.stdout.strip().startswith(f"{plant}: ok (2 hazard sources, 8 sensors, ")
    text = out.decode()
    for tag in (
        "Tank1-Level",
        "Tank2-Level",
        "Tank1-Temperature",
        "Tank2-Temperature",
        "Tank1-Gas",
        "Tank2-Gas",
    ):
        assert f"- tag: {tag}" in text
    assert 'kind: temperature\n        unit: "°C"' in text  # derived from the unit the server gives
    # what the server cannot tell is marked, and check names each place
    warnings = [ln for ln in r.stderr.splitlines() if ": warning: TODO" in ln]
    assert any("no EngineeringUnits on the server" in w for w in warnings)
    assert any("no EURange on the server" in w for w in warnings)
