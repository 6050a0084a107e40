"""bureau.yaml: the example loads; every problem is reported as file:line: field.path: reason."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hazmon.bureau.config import load_config
from hazmon.plant import ConfigError
from hazmon.plant.regions import Scope
from tests.conftest import ROOT

SHA = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"


def test_the_example_loads() -> None:
    cfg = load_config(ROOT / "examples" / "bureau.yaml")
    assert cfg.scope == Scope("320100", "city")
    assert cfg.limits.max_skew_s == 300 and cfg.limits.max_message_bytes == 256 * 1024
    assert {t.role for t in cfg.tokens} == {"officer", "viewer"}
    assert cfg.tokens[0].digest() == SHA


def _problems(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "bureau.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    return [str(p).replace(str(f), "bureau.yaml") for p in e.value.problems]


def test_problems_name_line_field_and_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HAZMON_TEST_NO_SUCH_TOKEN", raising=False)
    got = _problems(
        tmp_path,
        f"""id: nj-city
name: 南京市应急管理局
region: {{code: "320100", level: city}}
broker: {{url: "http://x", sesion_expiry_s: 5}}
tokens:
  - {{name: a, sha256: {SHA}, role: officer, region: {{code: "330106", level: county}}}}
  - {{name: a, sha256: {SHA}, role: viewer, region: {{code: "320116", level: county}}}}
  - {{name: c, token_env: HAZMON_TEST_NO_SUCH_TOKEN, role: viewer, region: {{code: "320116", level: county}}}}
  - {{name: d, sha256: {SHA}, role: boss, region: {{code: "320116", level: county}}}}
limits: {{max_skew_s: -1}}
""",
    )
    assert got == [
        "bureau.yaml:4: broker.sesion_expiry_s: unknown key 'sesion_expiry_s' (allowed: ca_file, client_id, group, keepalive_s, password_env, retry_max_s, session_expiry_s, url, username)",
        "bureau.yaml:4: broker.url: 'http://x' is not mqtt://host[:port] or mqtts://host[:port]",
        "bureau.yaml:8: tokens[2].token_env: environment variable HAZMON_TEST_NO_SUCH_TOKEN is not set",
        "bureau.yaml:9: tokens[3].role: 'boss' is not one of: viewer, officer",
        "bureau.yaml:10: limits.max_skew_s: must be > 0, got -1",
    ]
    got = _problems(
        tmp_path,
        f"""id: nj-city
name: x
region: {{code: "320100", level: city}}
tokens:
  - {{name: a, sha256: {SHA}, role: officer, region: {{code: "330106", level: county}}}}
  - {{name: a, sha256: {SHA}, role: viewer, region: {{code: "320000", level: province}}}}
""",
    )
    assert got == [
        "bureau.yaml:5: tokens[0].region: county 330106 is not inside this bureau's city 320100",
        "bureau.yaml:6: tokens[1].name: token name 'a' given twice",
        "bureau.yaml:6: tokens[1].region: province 320000 is not inside this bureau's city 320100",
    ]


def _hz(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmon", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_hazmon_bureau_check_and_migrate(tmp_path: Path, empty_db: str) -> None:
    r = _hz("bureau", "check", "-c", "examples/bureau.yaml")
    assert r.returncode == 0 and "ok (bureau nj-city, city 320100" in r.stdout
    bad = tmp_path / "b.yaml"
    bad.write_text('id: x\nname: y\nregion: {code: "32010", level: city}\n')
    r = _hz("bureau", "check", "-c", str(bad))
    assert r.returncode == 1 and "b.yaml:3: region.code: '32010' is not a six-digit region code" in r.stderr
    assert "Traceback" not in r.stderr
    r = _hz("bureau", "migrate", "-c", "examples/bureau.yaml", env={"HAZMON_DSN": empty_db})
    assert r.returncode == 0, r.stderr
    with psycopg.connect(empty_db) as c:
        assert c.execute("SELECT to_regclass('bureau_downlink') IS NOT NULL").fetchone() == (True,)


def test_https_link_and_flood_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "link.pem").write_text("-")
    (tmp_path / "link-key.pem").write_text("-")
    monkeypatch.setenv("HAZMON_TEST_LINK_E2", "pw")
    f = tmp_path / "ok.yaml"
    f.write_text(
        f"""id: nj-city
name: x
region: {{code: "320100", level: city}}
limits: {{flood_rate_per_s: 2.5, flood_burst: 100}}
https_link:
  enabled: true
  port: 8443
  cert_file: {tmp_path / "link.pem"}
  key_file: {tmp_path / "link-key.pem"}
  enterprises:
    - {{id: E1, sha256: {SHA}}}
    - {{id: E2, password_env: HAZMON_TEST_LINK_E2}}
"""
    )
    cfg = load_config(f)
    assert (cfg.limits.flood_rate_per_s, cfg.limits.flood_burst) == (2.5, 100)
    assert cfg.https_link.enabled and cfg.https_link.port == 8443 and not cfg.https_link.insecure
    assert cfg.https_link.digests() == {"E1": SHA, "E2": hashlib.sha256(b"pw").hexdigest()}
    defaults = load_config(ROOT / "examples" / "bureau.yaml")
    assert (defaults.limits.flood_rate_per_s, defaults.limits.flood_burst) == (5.0, 20_000)
    assert not defaults.https_link.enabled

    got = _problems(
        tmp_path,
        """id: nj-city
name: x
region: {code: "320100", level: city}
limits: {flood_rate_per_s: 0, flood_burst: 0}
https_link:
  enabled: true
  key_file: /no/such/key.pem
  enterprises:
    - {id: E1}
    - {id: E1, sha256: abc}
""",
    )
    assert got == [
        "bureau.yaml:4: limits.flood_burst: must be >= 1, got 0",
        "bureau.yaml:4: limits.flood_rate_per_s: must be > 0, got 0",
        "bureau.yaml:7: https_link.key_file: '/no/such/key.pem': no such file",
        "bureau.yaml:9: https_link.enterprises[0]: missing sha256 (or password_env)",
        "bureau.yaml:10: https_link.enterprises[1].sha256: 'abc' is not a hex SHA-256 digest",
    ]
    got = _problems(
        tmp_path,
        f"""id: nj-city
name: x
region: {{code: "320100", level: city}}
https_link:
  enabled: true
  enterprises:
    - {{id: E1, sha256: {SHA}}}
    - {{id: E1, sha256: {SHA}}}
""",
    )
    assert got == [
        "bureau.yaml:5: https_link: HTTPS needs cert_file and key_file (or insecure: true)",
        "bureau.yaml:8: https_link.enterprises[1].id: enterprise 'E1' given twice",
    ]


def test_ingest_section_sets_the_workers_batching(tmp_path: Path) -> None:
    f = tmp_path / "ok.yaml"
    f.write_text(
        """id: nj-city
name: x
region: {code: "320100", level: city}
ingest: {max_messages: 50, max_wait_s: 0.2, fast_max_messages: 5, receive_maximum: 100,
         park_s: 0, park_retry_s: 1}
"""
    )
    got = load_config(f).ingest
    assert (got.max_messages, got.max_wait_s, got.fast_max_messages) == (50, 0.2, 5)
    assert (got.receive_maximum, got.park_s, got.park_retry_s) == (100, 0, 1)
    defaults = load_config(ROOT / "examples" / "bureau.yaml").ingest
    assert (defaults.max_messages, defaults.max_wait_s, defaults.receive_maximum) == (400, 0.05, 4000)
    assert (defaults.fast_max_messages, defaults.park_s, defaults.park_retry_s) == (20, 60.0, 0.5)

    got_problems = _problems(
        tmp_path,
        """id: nj-city
name: x
region: {code: "320100", level: city}
ingest:
  max_messages: 0
  max_wait_s: "0.1"
  fast_max_messages: 1001
  receive_maximum: 70000
  park_s: -1
  park_retry_s: 0
  batch: 5
""",
    )
    assert got_problems == [
        "bureau.yaml:5: ingest.max_messages: must be >= 1, got 0",
        "bureau.yaml:6: ingest.max_wait_s: expected a number, got text '0.1'",
        "bureau.yaml:7: ingest.fast_max_messages: must be <= 1000, got 1001",
        "bureau.yaml:8: ingest.receive_maximum: must be <= 65535, got 70000",
        "bureau.yaml:9: ingest.park_s: must be >= 0, got -1",
        "bureau.yaml:10: ingest.park_retry_s: must be >= 0.01, got 0",
        "bureau.yaml:11: ingest.batch: unknown key 'batch' (allowed: fast_max_messages, max_messages, max_wait_s, park_retry_s, park_s, receive_maximum)",
    ]
    got_problems = _problems(
        tmp_path,
        """id: nj-city
name: x
region: {code: "320100", level: city}
ingest: {max_messages: 500, receive_maximum: 400}
""",
    )
    assert got_problems == [
        "bureau.yaml:4: ingest.receive_maximum: 400 is below max_messages (500): the broker would never let a batch fill",
    ]
