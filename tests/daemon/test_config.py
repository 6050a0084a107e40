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
        f"{f}:6: extra: unknown key 'extra' (allowed: alarms, collector, console, data_dir, database, http, instance, "
        "plant, rules, uplink, weather)",
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


SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

# (alarms/database section, the exact problem): refused at load, one line each
BROKEN_SECTIONS = [
    (
        f'alarms:\n  tokens:\n    - {{name: luhe, role: bureau, level: county, region: "320100", sha256: {SHA}}}\n',
        "4: alarms.tokens[0].region: region '320100' is a city code, not a county one: a county code does not "
        "end in 00",
    ),
    (
        f'alarms:\n  tokens:\n    - {{name: nj, role: bureau, level: city, region: "320116", sha256: {SHA}}}\n',
        "4: alarms.tokens[0].region: region '320116' is a county code, not a city one: a city code is XXXX00 "
        "(e.g. 320100 for this county)",
    ),
    (
        f'alarms:\n  tokens:\n    - {{name: js, role: bureau, level: province, region: "320100", sha256: {SHA}}}\n',
        "4: alarms.tokens[0].region: region '320100' is a city code, not a province one: a province code is "
        "XX0000 (e.g. 320000 for this city)",
    ),
    (
        'alarms:\n  notifiers:\n    - {name: p, kind: mqtt, url: "mqtt://127.0.0.1:1883", topic: "whp/+/alarm",\n'
        "       recipients: [bureau_county]}\n",
        "4: alarms.notifiers[0].topic: 'whp/+/alarm' is not a topic to publish to (no '+' or '#' wildcard, "
        "not empty)",
    ),
    (
        'alarms:\n  notifiers:\n    - {name: p, kind: mqtt, url: "mqtt://127.0.0.1:1883", topic: "whp/#",\n'
        "       recipients: [bureau_county]}\n",
        "4: alarms.notifiers[0].topic: 'whp/#' is not a topic to publish to (no '+' or '#' wildcard, not empty)",
    ),
    (
        'alarms:\n  notifiers:\n    - {name: p, kind: mqtt, url: "mqtt://127.0.0.1:99999", recipients: [bureau_county]}\n',
        "4: alarms.notifiers[0].url: port 99999 in 'mqtt://127.0.0.1:99999' is not a TCP port (1-65535)",
    ),
    (
        "alarms:\n  api_url: http://10.0.0.5:99999/api/v1\n",
        "3: alarms.api_url: port 99999 in 'http://10.0.0.5:99999/api/v1' is not a TCP port (1-65535)",
    ),
    (
        "alarms:\n  notifiers:\n    - {name: m, kind: email, host: smtp.example.com, port: 99999, from: a@b.c,\n"
        "       recipients: [principal]}\n",
        "4: alarms.notifiers[0].port: must be <= 65535, got 99999",
    ),
    (
        'database: {dsn: "postgresql://hz:secret@db:99999/hazmon"}\n',
        "2: database.dsn: port 99999 in 'the dsn' is not a TCP port (1-65535)",
    ),
]


@pytest.mark.parametrize(("section", "problem"), BROKEN_SECTIONS)
def test_a_bad_section_is_refused_with_its_line(tmp_path: Path, section: str, problem: str) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text("plant: plant.yaml\n" + section)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [f"{f}:{problem}"]


def test_tokens_at_their_own_level_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text(
        "plant: plant.yaml\nalarms:\n  tokens:\n"
        + "".join(
            f'    - {{name: {n}, role: bureau, level: {lv}, region: "{rg}", sha256: {i}{SHA[1:]}}}\n'
            for i, (n, lv, rg) in enumerate(
                (("luhe", "county", "320116"), ("nj", "city", "320100"), ("js", "province", "320000"))
            )
        )
        + '  notifiers:\n    - {name: p, kind: mqtt, url: "mqtts://p.example.gov.cn:8883", topic: "whp/alarm/{region}",\n'
        "       recipients: [bureau_county]}\n"
    )
    cfg, _ = load_config(f)
    assert cfg.alarms is not None
    assert [(t.level, t.region) for t in cfg.alarms.tokens] == [
        ("county", "320116"),
        ("city", "320100"),
        ("province", "320000"),
    ]


def test_a_token_file_region_must_match_its_level(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    (tmp_path / "tokens.yaml").write_text(
        '- {name: luhe, role: bureau, level: county, region: "320100", token: hzm_0123456789abcdef}\n'
    )
    f = tmp_path / "hazmon.yaml"
    f.write_text("plant: plant.yaml\nalarms:\n  token_file: tokens.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:3: alarms.token_file: {tmp_path / 'tokens.yaml'}: entry 1 (luhe): region '320100' is a city code, "
        "not a county one: a county code does not end in 00"
    ]


def test_a_daemon_config_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_bytes("plant: plant.yaml\n# 液氯储罐区\n".encode("gbk"))
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:2: (file): not UTF-8: byte 0xc2 at column 5 (byte offset 22); it reads as GBK (GB18030), as saved "
        "on a Chinese Windows machine: convert it with `iconv -f GBK -t UTF-8 hazmon.yaml > hazmon.utf8.yaml` "
        "and use that file"
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"- {name: a, role: operator, token: [\n", "not a valid token file: while parsing a flow node"),
        (b"- " + b"[" * 3000 + b"]" * 3000 + b"\n", "not a valid token file: "),
    ],
)
def test_a_broken_token_file_is_one_line(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    (tmp_path / "tokens.yaml").write_bytes(content)
    f = tmp_path / "hazmon.yaml"
    f.write_text("plant: plant.yaml\nalarms:\n  token_file: tokens.yaml\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    [problem] = [str(p) for p in e.value.problems]
    assert problem.startswith(f"{f}:3: alarms.token_file: {tmp_path / 'tokens.yaml'}: {reason}")
    assert "\n" not in problem


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
