"""Recordings carry endpoint outages, and a replay reproduces them (OPC UA server restart, broker disconnect)."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys
from pathlib import Path

import pytest

from hazmon.cli import main
from hazmon.plant import Plant, load
from hazmon.simulators import Simulation, parse_scenario_text
from hazmon.simulators.engine import OutageChange
from hazmon.simulators.mqtt_publisher import MqttPublisher
from hazmon.simulators.opcua_server import SimOpcUaServer
from hazmon.simulators.recording import RecordingError, RecordingWriter, Replay, read_outages, read_recording
from hazmon.simulators.serving import run_stream
from testkit import private_plant_file
from tests.conftest import PrivateMosquitto, free_port
from tests.simulators.test_cli_recording import START, START_ISO

S = 1_000_000
SCENARIO = """
name: outages
description: the DCS server restarts, later the GDS broker goes away
duration_s: 120
events:
  - {at: 20, outage: {endpoint: dcs, duration_s: 30}}
  - {at: 70, outage: {endpoint: gds, duration_s: 20}}
"""
EXPECTED_CHANGES = [
    OutageChange(START + 20 * S, "dcs", True),
    OutageChange(START + 50 * S, "dcs", False),
    OutageChange(START + 70 * S, "gds", True),
    OutageChange(START + 90 * S, "gds", False),
]


def _record(plant: Plant, path: Path, step_s: float = 60.0) -> None:
    sim = Simulation(plant, parse_scenario_text(SCENARIO), 2, START)
    with RecordingWriter(path, {"start_us": START}) as w:
        for _, batch in sim.steps(120, step_s):
            w.write(batch, sim.outage_changes())


def test_simulation_reports_each_outage_change_at_its_tick(example_plant: Plant) -> None:
    sim = Simulation(example_plant, parse_scenario_text(SCENARIO), 2, START)
    seen: list[OutageChange] = []
    for now, _ in sim.steps(120, 7.0):
        changes = sim.outage_changes()
        assert all(now - 7 * S < c.ts_us <= now for c in changes)
        seen += changes
    assert seen == EXPECTED_CHANGES
    assert sim.outage_changes() == []  # taken once


@pytest.mark.parametrize("step_s", [1.0, 60.0])
def test_replay_steps_and_outages_are_the_simulations(
    example_plant: Plant, tmp_path: Path, step_s: float
) -> None:
    rec = tmp_path / "outages.hzrec.gz"
    _record(example_plant, rec, step_s)
    assert read_outages(rec) == EXPECTED_CHANGES
    expected = list(Simulation(example_plant, parse_scenario_text(SCENARIO), 2, START).readings(120))
    assert list(read_recording(rec)) == expected  # readers of readings skip the outage lines
    # the file stays in time order: each outage line sits between the readings before and after it
    with gzip.open(rec, "rt") as f:
        f.readline()
        stamps = [int(line.split("\t", 1)[0]) for line in f]
    assert stamps == sorted(stamps)
    # step by step, the replay hands out what the live simulation did, with the same endpoints away
    sim = Simulation(example_plant, parse_scenario_text(SCENARIO), 2, START)
    replay = Replay(rec, START)
    live = [(now, batch, sim.down_endpoints) for now, batch in sim.steps(120, 1.0)]
    played = [(now, batch, replay.down_endpoints) for now, batch in replay.steps()]
    assert played == live
    assert [now for now, _, down in played if down == {"dcs"}] == [START + t * S for t in range(20, 50)]
    assert [now for now, _, down in played if down == {"gds"}] == [START + t * S for t in range(70, 90)]


def test_outage_lines_are_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gz"
    with RecordingWriter(bad, {"start_us": START}) as w:
        w.write([], [OutageChange(START + S, "dcs", True)])
    with gzip.open(bad, "rt") as f:
        text = f.read().replace("\tdown\n", "\tsideways\n")
    with gzip.open(bad, "wt") as f:
        f.write(text)
    with pytest.raises(RecordingError, match=r"bad\.gz:2: outage state is 'sideways'"):
        read_outages(bad)


def test_version_1_recordings_still_replay(tmp_path: Path) -> None:
    old = tmp_path / "v1.gz"
    with gzip.open(old, "wt") as f:
        f.write(f'{{"format": "hazmon-recording", "version": 1, "start_us": {START}}}\n')
        f.write(f"{START + S}\tLT-101\t1.5\t0\n")
    assert [(now, [r.value for r in rs]) for now, rs in Replay(old, START).steps()] == [(START + S, [1.5])]


@pytest.mark.slow
async def test_replay_stops_and_restarts_the_servers_where_the_recording_did(
    tmp_path: Path, private_mosquitto: PrivateMosquitto, topic_prefix: str
) -> None:
    plant_file = private_plant_file(tmp_path, private_mosquitto.port, free_port(), topic_prefix)
    scenario = tmp_path / "outages.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    rec = tmp_path / "outages.hzrec.gz"
    args = ["record", "-c", str(plant_file), "-o", str(rec), "--scenario", str(scenario), "--seed", "2"]
    assert main([*args, "--start", START_ISO]) == 0
    assert read_outages(rec) == EXPECTED_CHANGES

    plant = load(plant_file)
    server = SimOpcUaServer(plant.opcua[0], plant, tmp_path / "d")
    pub = MqttPublisher(plant.mqtt[0], plant)
    states: list[tuple[int, bool, bool]] = []
    replay = Replay(rec, START)
    await run_stream(
        replay.steps(),
        plant,
        [server, pub],
        start_us=START,
        speed=math.inf,
        down=lambda: replay.down_endpoints,
        progress=lambda now: states.append((now, server.running, pub.connected)),
    )
    assert server.counters["starts"] == 2 and server.counters["stops"] == 2
    assert pub.counters["connects"] == 2 and pub.counters["disconnects"] == 2
    dcs_away = [now for now, running, _ in states if not running]
    gds_away = [now for now, _, connected in states if not connected]
    assert sorted(set(dcs_away)) == [START + t * S for t in range(20, 50)]
    assert sorted(set(gds_away)) == [START + t * S for t in range(70, 90)]


def _hazmon(*args: str) -> str:
    """Run the real CLI in a process of its own (its logging must not outlive this test's streams)."""
    done = subprocess.run(
        [sys.executable, "-m", "hazmon", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


@pytest.mark.slow
def test_hazmon_replay_reproduces_the_recorded_outages(
    tmp_path: Path, private_mosquitto: PrivateMosquitto, topic_prefix: str
) -> None:
    plant_file = private_plant_file(tmp_path, private_mosquitto.port, free_port(), topic_prefix)
    scenario = tmp_path / "outages.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    rec = tmp_path / "served.hzrec.gz"
    data = str(tmp_path / "d")
    # recorded while serving (hazmon simulate --record), replayed with hazmon replay
    _hazmon(
        *(
            "simulate",
            "-c",
            str(plant_file),
            "--scenario",
            str(scenario),
            "--seed",
            "2",
            "--start",
            START_ISO,
        ),
        *("--duration", "120", "--speed", "max", "--data-dir", data, "--record", str(rec)),
    )
    assert read_outages(rec) == EXPECTED_CHANGES
    err = _hazmon("replay", str(rec), "-c", str(plant_file), "--speed", "max", "--data-dir", data)
    report = err.strip().splitlines()[-1]
    assert "outages=2" in report, report
    assert "starts=2 stops=2" in report and "connects=2 disconnects=2" in report, report
