"""`hazmon simulate --list`, `hazmon record` (simulator and database) and `hazmon replay`."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from hazmon.cli import main
from hazmon.plant import Plant, Quality, Reading, load
from hazmon.simulators import Simulation, scenario_names
from hazmon.simulators.recording import RecordingError, RecordingWriter, read_header, read_recording, steps_of
from hazmon.store import ReadingColumns, connect, sensor_ids, write_readings
from testkit import private_plant_file
from tests.conftest import EXAMPLE_PLANT, PrivateMosquitto, free_port
from tests.simulators.test_serving import Subscriber, _ts

START = 1_780_000_000_000_000
START_ISO = "2026-05-28T20:26:40Z"


def test_list_prints_one_line_per_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == scenario_names()
    assert all(len(ln.split(maxsplit=1)) == 2 for ln in lines)


def test_record_from_the_simulator_is_the_simulation(tmp_path: Path, example_plant: Plant) -> None:
    out = tmp_path / "leak.hzrec.gz"
    args = ["record", "-c", str(EXAMPLE_PLANT), "-o", str(out), "--scenario", "chlorine-leak"]
    assert main([*args, "--seed", "4", "--start", START_ISO, "--duration", "10m"]) == 0
    header = read_header(out)
    assert header["scenario"] == "chlorine-leak" and header["seed"] == 4 and header["start_us"] == START
    expected = list(Simulation(example_plant, "chlorine-leak", 4, START).readings(600))
    assert list(read_recording(out)) == expected
    with gzip.open(out, "rt") as f:
        f.readline()
        assert re.fullmatch(r"\d{16}\t[A-Z]+-\d+\t-?\d+(\.\d+)?(e-?\d+)?\t[012]\n", f.readline())


def test_recording_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "x.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(RecordingError, match="not a gzip-compressed hazmon recording"):
        read_header(bad)
    other = tmp_path / "y.gz"
    with gzip.open(other, "wt") as f:
        f.write('{"format": "something-else"}\n')
    with pytest.raises(RecordingError, match=r"y\.gz:1: not a hazmon recording"):
        read_header(other)
    damaged = tmp_path / "z.gz"
    with RecordingWriter(damaged, {"start_us": START}) as w:
        w.write([Reading("LT-101", START + 1, 1.0)])
    with gzip.open(damaged, "at") as f:
        f.write("123\tLT-101\tnot-a-number\t0\n")
    with pytest.raises(RecordingError, match=r"z\.gz:3: could not convert"):
        list(read_recording(damaged))


def test_steps_of_groups_by_simulated_second() -> None:
    rs = [
        Reading("A", START + 500_000, 1.0),
        Reading("A", START + 1_000_000, 2.0),
        Reading("A", START + 2_500_000, 3.0),
    ]
    assert list(steps_of(rs, START)) == [
        (START + 1_000_000, rs[:2]),
        (START + 2_000_000, []),
        (START + 3_000_000, rs[2:]),
    ]


def test_record_from_the_database(tmp_path: Path, db_dsn: str, example_plant: Plant) -> None:
    readings = list(Simulation(example_plant, "sensor-faults", 2, START).readings(120))
    with connect(db_dsn) as conn:
        ids = sensor_ids(conn, example_plant.enterprise.id)
        write_readings(conn, ReadingColumns.from_readings(readings, ids))
    out = tmp_path / "db.gz"
    args = ["record", "-c", str(EXAMPLE_PLANT), "-o", str(out), "--from-db", db_dsn]
    assert main([*args, "--start", START_ISO, "--duration", "60"]) == 0
    got = list(read_recording(out))
    want = sorted((r for r in readings if r.ts_us < START + 60_000_000), key=lambda r: (r.ts_us, r.tag))
    assert got == want
    assert read_header(out)["source"] == "database"


@pytest.mark.slow
def test_replay_plays_the_recording_over_mqtt(
    tmp_path: Path, private_mosquitto: PrivateMosquitto, topic_prefix: str
) -> None:
    plant_file = private_plant_file(tmp_path, private_mosquitto.port, free_port(), topic_prefix)
    plant = load(plant_file)
    rec = tmp_path / "r.gz"
    assert (
        main(["record", "-c", str(plant_file), "-o", str(rec), "--start", START_ISO, "--duration", "120"])
        == 0
    )
    recorded = [r for r in read_recording(rec) if r.tag.startswith(("AT-", "GT-"))]
    sub = Subscriber("127.0.0.1", private_mosquitto.port, f"{topic_prefix}/#")
    try:
        args = ["replay", str(rec), "-c", str(plant_file), "--speed", "max", "--no-opcua"]
        assert main([*args, "--data-dir", str(tmp_path / "d")]) == 0
        got = sub.wait_for(len(recorded))
    finally:
        sub.close()
    by_topic = {s.binding.topic: s.tag for s in plant.sensors() if hasattr(s.binding, "topic")}
    decoded = []
    for t, p in got:
        body = json.loads(p)
        decoded.append(Reading(by_topic[t], _ts(body["ts"]), body["v"], Quality(body["q"])))
    decoded.sort()
    assert decoded == sorted(recorded)


@pytest.mark.slow
def test_simulate_serves_both_sides_and_records_what_it_served(
    tmp_path: Path, private_mosquitto: PrivateMosquitto, topic_prefix: str, example_plant: Plant
) -> None:
    opcua_port = free_port()
    plant_file = private_plant_file(tmp_path, private_mosquitto.port, opcua_port, topic_prefix)
    rec = tmp_path / "served.gz"
    sub = Subscriber("127.0.0.1", private_mosquitto.port, f"{topic_prefix}/#")
    try:
        args = [
            "simulate",
            "-c",
            str(plant_file),
            "--scenario",
            "chlorine-leak",
            "--seed",
            "3",
            "--start",
            START_ISO,
        ]
        args += [
            "--duration",
            "60",
            "--speed",
            "max",
            "--data-dir",
            str(tmp_path / "d"),
            "--record",
            str(rec),
        ]
        assert main(args) == 0
        expected = list(Simulation(example_plant, "chlorine-leak", 3, START).readings(60))
        gds = [r for r in expected if r.tag.startswith(("AT-", "GT-"))]
        got = sub.wait_for(len(gds))
    finally:
        sub.close()
    assert list(read_recording(rec)) == expected
    assert len(got) == len(gds)
