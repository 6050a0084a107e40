"""The daemon config file: example loads, every problem reported as file:line: path: reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.collector import CollectorSettings
from hazmon.config import DatabaseSettings, HttpSettings, load_config
from hazmon.plant import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_daemon_config_loads_with_its_plant() -> None:
    cfg, plant = load_config(ROOT / "examples" / "hazmon.yaml")
    assert Path(cfg.plant_file).resolve() == (ROOT / "examples" / "plant.yaml").resolve()
    assert Path(cfg.data_dir).resolve() == (ROOT / "var" / "demo" / "data").resolve()
    assert cfg.http == HttpSettings("127.0.0.1", 8470)
    assert cfg.database == DatabaseSettings("", True, "auto", 400)
    assert cfg.collector.flush_interval_s == 1.0 and cfg.collector.stale_factor == 3
    assert len(plant.sensors()) == 43
    # the alarms section is parsed by hazmon.alarms.parse_settings (the hook), not ignored
    assert cfg.alarms is not None


def test_minimal_config_takes_every_default(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    (tmp_path / "hazmon.yaml").write_text("plant: plant.yaml\n")
    cfg, _ = load_config(tmp_path / "hazmon.yaml")
    assert cfg.collector == CollectorSettings()
    assert cfg.http == HttpSettings() and cfg.database == DatabaseSettings()
    assert cfg.data_dir == str(tmp_path / "data")


def test_every_problem_of_the_file_at_once(tmp_path: Path) -> None:
    f = tmp_path / "hazmon.yaml"
    f.write_text(
        "data_dir: /tmp/x\n"
        "http: {port: 70000}\n"
        "database: {retention_days: 10, storage_mode: mongo}\n"
        "collector:\n  flush_interval_s: 5\n"
        "extra: 1\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:1: plant: missing required key 'plant'",
        f"{f}:2: http.port: must be <= 65535, got 70000",
        f"{f}:3: database.retention_days: must be >= 30, got 10",
        f"{f}:3: database.storage_mode: 'mongo' is not one of: auto, plain, timescaledb",
        f"{f}:5: collector.flush_interval_s: must be <= 1 s (readings reach the database within a second), got 5",
        f"{f}:6: extra: unknown key 'extra' (allowed: alarms, collector, data_dir, database, http, instance, "
        "plant, rules)",
    ]


def test_a_broken_plant_file_is_reported_with_its_own_lines(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text("enterprise: 1\n")
    (tmp_path / "hazmon.yaml").write_text("plant: plant.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "hazmon.yaml")
    assert all(p.file == str(tmp_path / "plant.yaml") for p in e.value.problems)


def test_a_problem_is_reported_once_when_the_rest_is_fine(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text("plant: plant.yaml\ncollector: {stale_factor: 0}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [f"{f}:2: collector.stale_factor: must be >= 1, got 0"]


def test_alarms_false_runs_no_alarm_service(tmp_path: Path) -> None:
    """Scale-out: every instance but one says `alarms: false` (one alarm service per plant)."""
    from hazmon.config import parse_config
    from hazmon.plant.yamlnode import parse_document

    def cfg(extra: str) -> object:
        return parse_document(f"plant: plant.yaml\n{extra}", "x.yaml", lambda n: parse_config(n, tmp_path))

    off = cfg("alarms: false\n")
    on = cfg("alarms: {repeat_s: 600}\n")
    assert (off.alarms_enabled, off.alarms) == (False, None)  # type: ignore[attr-defined]
    assert on.alarms_enabled and on.alarms is not None  # type: ignore[attr-defined]


def test_rollup_retention_is_configurable_and_never_shorter_than_the_raw_data(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text(
        "plant: plant.yaml\ndatabase: {retention_days: 400, retention_1m_days: 800, compress_after_days: 3}\n"
    )
    cfg, _ = load_config(f)
    s = cfg.database.storage()
    assert (s.retention_days, s.rollup_1m_days, s.rollup_1h_days, s.compress_after_days) == (
        400,
        800,
        3650,
        3,
    )
    f.write_text("plant: plant.yaml\ndatabase:\n  retention_days: 400\n  retention_1m_days: 300\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:4: database.retention_1m_days: 300 is shorter than the raw readings' retention_days 400"
    ]
