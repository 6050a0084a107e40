from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hz(*args: str, dsn: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if dsn:
        env["HAZMON_DSN"] = dsn
    return subprocess.run(
        [sys.executable, "-m", "hazmon", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )


def test_plant_json_for_scripts() -> None:
    r = hz("plant", "examples/plant.yaml", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    got = {h["id"]: (h["s"], h["alpha"], h["r"], h["grade"], h["grade_zh"]) for h in data["hazard_sources"]}
    assert got == {
        "cl2-tankfarm": (12.0, 2.0, 96.0, 2, "二级"),
        "lpg-spheres": (16.0, 1.5, 36.0, 3, "三级"),
        "meoh-tankfarm": (12.0, 1.0, 12.0, 3, "三级"),
    }
    assert data["lel_reference"].startswith("IEC 60079-20-1")


def test_plant_table_reports_not_major(tmp_path: Path) -> None:
    text = (ROOT / "tests/plant/broken/_base.yaml.txt").read_text().replace("max_t: 30", "max_t: 2")
    f = tmp_path / "small.yaml"
    f.write_text(text)
    r = hz("plant", str(f))
    assert r.returncode == 0, r.stderr
    assert "not a major hazard source (S < 1)" in r.stdout


def test_migrate_load_and_assessments_through_the_cli(empty_db: str) -> None:
    r = hz("db", "migrate", dsn=empty_db)
    assert r.returncode == 0, r.stderr
    assert "storage mode plain; applied" in r.stdout
    again = hz("db", "migrate", dsn=empty_db)
    assert "applied 0 migration(s)" in again.stdout
    assert hz("db", "migrate", "--retention-days", "20", dsn=empty_db).returncode == 2
    r = hz("db", "load", "examples/plant.yaml", dsn=empty_db)
    assert r.stdout.strip() == "loaded hx-chem: 3 hazard sources, 43 sensors"
    r = hz(
        "assessment",
        "add",
        "-c",
        "examples/plant.yaml",
        "--hazard-source",
        "cl2-tankfarm",
        "--report-date",
        "2023-04-01",
        "--assessor",
        "评价公司",
        "--r",
        "96",
        "--grade",
        "2",
        "--filed-on",
        "2023-04-20",
        dsn=empty_db,
    )
    assert r.returncode == 0, r.stderr
    r = hz("assessment", "list", "-c", "examples/plant.yaml", "--today", "2026-05-01", dsn=empty_db)
    lines = r.stdout.splitlines()
    cl2 = next(line for line in lines if "cl2-tankfarm" in line)
    assert "2026-04-01" in cl2
    assert "REASSESSMENT OVERDUE (3 years after the report)" in cl2
    assert "FILING OVERDUE (deadline 2023-04-16)" in cl2
    assert sum("NO ASSESSMENT ON RECORD" in line for line in lines) == 2
    bad = hz(
        "assessment",
        "add",
        "-c",
        "examples/plant.yaml",
        "--hazard-source",
        "nope",
        "--report-date",
        "2023-04-01",
        "--assessor",
        "x",
        "--r",
        "1",
        "--grade",
        "4",
        dsn=empty_db,
    )
    assert bad.returncode == 2
    assert "--hazard-source: 'nope' is not in examples/plant.yaml" in bad.stderr


def test_plant_json_grades_exact_boundaries_and_refuses_infinity(tmp_path: Path) -> None:
    base = (ROOT / "tests/plant/broken/_base.yaml.txt").read_text()
    # S = 3/5 + 3/10 + 0.5/5 = 1 exactly: a major hazard source (a float sum gives 0.9999999999999999)
    f = tmp_path / "s1.yaml"
    f.write_text(
        base.replace(
            "      - {chemical: chlorine, max_t: 30}",
            "      - {chemical: chlorine, max_t: 3}\n      - {chemical: ammonia, max_t: 3}\n"
            "      - {chemical: hydrogen, max_t: 0.5}",
        )
    )
    r = hz("plant", str(f), "--json")
    assert r.returncode == 0, r.stderr
    hs = json.loads(r.stdout)["hazard_sources"][0]
    assert (hs["s"], hs["major_hazard_source"], hs["grade"]) == (1.0, True, 4)
    f.write_text(base.replace("max_t: 30", "max_t: .inf"))
    r = hz("plant", str(f), "--json")
    assert r.returncode == 1
    assert r.stdout == ""
    assert f"{f}:15: hazard_sources[0].chemicals[0].max_t: expected a finite number, got '.inf'" in r.stderr


def test_check_names_a_gbk_file_without_a_traceback() -> None:
    path = ROOT / "tests/plant/broken/gbk_encoded.yaml"
    r = hz("check", str(path))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0].startswith(f"{path}:3: (file): not UTF-8: byte 0xb2")
    assert "iconv -f GBK -t UTF-8" in r.stderr


def test_check_takes_a_daemon_config_with_its_plant_file(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples/plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text(
        "plant: plant.yaml\nalarms:\n  tokens:\n"
        '    - {name: luhe, role: bureau, level: county, region: "320100", sha256: ' + "a" * 64 + "}\n"
        "  notifiers:\n"
        '    - {name: p, kind: mqtt, url: "mqtt://127.0.0.1:1883", topic: "whp/#", recipients: [bureau_county]}\n'
    )
    r = hz("check", str(f))
    assert r.returncode == 1, r.stdout
    assert r.stderr.splitlines() == [
        f"{f}:4: alarms.tokens[0].region: region '320100' is a city code, not a county one: a county code "
        "does not end in 00",
        f"{f}:6: alarms.notifiers[0].topic: 'whp/#' is not a topic to publish to (no '+' or '#' wildcard, "
        "not empty)",
        f"{f}: 2 problem(s)",
    ]
    f.write_text("plant: plant.yaml\n")
    r = hz("check", str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{f}: ok (daemon config; plant {tmp_path / 'plant.yaml'}: 3 hazard sources, 43 sensors)"
