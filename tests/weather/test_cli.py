"""`hazmon weather ingest|scan|status` end to end on a real database."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.alarms.helpers import rows
from tests.supervision.test_cli import ROOT, hz
from tests.weather.test_cap import DATA, XXE
from tests.weather.test_state import YELLOW

NOON = "2026-08-04T12:00:00+08:00"


def test_ingest_then_status_then_duplicate(db_dsn: str, tmp_path: Path) -> None:
    y = str(DATA / "lightning_yellow.xml")
    r = hz("weather", "ingest", "-c", "examples/plant.yaml", "--at", NOON, y, dsn=db_dsn)
    assert (r.returncode, r.stderr) == (0, "")
    assert f"stored {YELLOW}" in r.stdout and "1 stored" in r.stdout
    r = hz("weather", "status", "-c", "examples/plant.yaml", "--at", NOON, dsn=db_dsn)
    assert r.returncode == 0
    assert "lpg-spheres: 黄色雷电预警" in r.stdout and "24小时值班" in r.stdout
    bad = tmp_path / "xxe.xml"
    bad.write_bytes(XXE)
    r = hz("weather", "ingest", "-c", "examples/plant.yaml", "--at", NOON, y, str(bad), dsn=db_dsn)
    assert r.returncode == 2
    assert "refused duplicate" in r.stderr and "refused dtd" in r.stderr
    assert "0 stored; dtd 1, duplicate 1" in r.stdout
    r = hz("weather", "status", "-c", "examples/plant.yaml", "--at", "2026-08-04T22:15:00+08:00", dsn=db_dsn)
    assert r.stdout.strip() == "no weather warning in force"


def test_scan_and_bad_arguments(db_dsn: str, tmp_path: Path) -> None:
    shutil.copy(DATA / "lightning_yellow.xml", tmp_path / "a.xml")
    r = hz("weather", "scan", "-c", "examples/plant.yaml", "--at", NOON, str(tmp_path), dsn=db_dsn)
    assert r.returncode == 0 and (tmp_path / "done" / "a.xml").exists()
    r = hz("weather", "scan", "-c", "examples/plant.yaml", str(tmp_path / "nope"), dsn=db_dsn)
    assert r.returncode == 2 and "not a directory" in r.stderr
    r = hz("weather", "ingest", "-c", "examples/plant.yaml", "--at", "noon", "x.xml", dsn=db_dsn)
    assert r.returncode == 2 and "--at" in r.stderr
    r = hz("weather", "ingest", "-c", "examples/plant.yaml", str(tmp_path / "missing.xml"), dsn=db_dsn)
    assert r.returncode == 2 and "cannot read" in r.stderr


def test_no_traceback_from_the_real_command(db_dsn: str, tmp_path: Path) -> None:
    bad = tmp_path / "lol.xml"
    bad.write_bytes(b"<alert")
    r = subprocess.run(
        [sys.executable, "-m", "hazmon", "weather", "ingest", "-c", "examples/plant.yaml", "--dsn", db_dsn, str(bad)],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "refused malformed" in r.stderr and "Traceback" not in r.stderr


def test_a_duty_is_confirmed_once_with_who(db_dsn: str) -> None:

    with psycopg.connect(db_dsn, autocommit=True) as c:
        c.execute(
            """INSERT INTO weather_duty (enterprise_id, hazard_source, kind, duty, identifier, started_at)
               VALUES ('hx-chem', 'lpg-spheres', 'heat', 'cooling_check', 'w', now())"""
        )
    (n,) = rows(db_dsn, "SELECT id FROM weather_duty")[0]
    r = hz("weather", "status", "-c", "examples/plant.yaml", dsn=db_dsn)
    assert f"#{n} lpg-spheres heat: 检查喷淋冷却系统 — to confirm" in r.stdout
    r = hz("weather", "confirm", str(n), "--by", "孙涛", "-c", "examples/plant.yaml", dsn=db_dsn)
    assert (r.returncode, r.stderr) == (0, "")
    r = hz("weather", "confirm", str(n), "--by", "孙涛", "-c", "examples/plant.yaml", dsn=db_dsn)
    assert (r.returncode, r.stderr.strip()) == (2, f"refused: duty #{n} is not open or is already confirmed")
    assert rows(db_dsn, "SELECT confirmed_by FROM weather_duty") == [("孙涛",)]
