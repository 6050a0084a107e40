"""The daemon config's ``uplink:`` section: disabled by default, every problem as file:line: path: reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.config import load_config
from hazmon.plant import ConfigError
from hazmon.uplink import UplinkSettings

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, uplink: str) -> Path:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text("plant: plant.yaml\n" + uplink)
    return f


def test_uplink_is_disabled_by_default(tmp_path: Path) -> None:
    cfg, _ = load_config(_write(tmp_path, ""))
    assert cfg.uplink == UplinkSettings() and cfg.uplink.enabled is False


def test_uplink_section_is_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPLINK_PW", "s3cret")
    cfg, _ = load_config(
        _write(
            tmp_path,
            "uplink:\n  enabled: true\n  url: mqtts://bureau.example\n  username: E1\n"
            "  password_env: UPLINK_PW\n  ca_file: ca.pem\n  protocol: 3.1.1\n  batch: 50\n",
        )
    )
    u = cfg.uplink
    assert (u.enabled, u.host, u.port, u.tls, u.username, u.password(), u.protocol, u.batch) == (
        True,
        "bureau.example",
        8883,
        True,
        "E1",
        "s3cret",
        "3.1.1",
        50,
    )


def test_uplink_problems_name_file_line_and_field(tmp_path: Path) -> None:
    f = _write(
        tmp_path,
        "uplink:\n"
        "  url: http://bureau.example\n"
        "  protocol: 4\n"
        "  batch: 0\n"
        "  cert_file: c.pem\n"
        "  password_env: PW\n"
        "  colour: red\n",
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:3: uplink.url: 'http://bureau.example' is not mqtt://host[:port] or mqtts://host[:port]",
        f"{f}:4: uplink.protocol: '4' is not one of: 5, 3.1.1",
        f"{f}:5: uplink.batch: must be >= 1, got 0",
        f"{f}:6: uplink.cert_file: cert_file and key_file go together",
        f"{f}:7: uplink.password_env: a password needs a username",
        f"{f}:8: uplink.colour: unknown key 'colour' (allowed: ack_timeout_s, aggregate_catchup_h, "
        "aggregate_delay_s, batch, ca_file, cert_file, client_id, down_poll_s, enabled, heartbeat_interval_s, insecure, keepalive_s, key_file, password_env, poll_interval_s, "
        "protocol, require_subscriber, retry_max_s, session_expiry_s, transport, url, username)",
    ]


def test_https_transport_is_parsed_and_its_mistakes_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPLINK_PW", "s3cret")
    cfg, _ = load_config(
        _write(
            tmp_path,
            "uplink:\n  enabled: true\n  transport: https\n  url: https://bureau.example:8443\n"
            "  password_env: UPLINK_PW\n  ca_file: ca.pem\n  down_poll_s: 2\n",
        )
    )
    u = cfg.uplink
    assert (u.transport, u.url, u.username, u.password(), u.down_poll_s, u.insecure) == (
        "https", "https://bureau.example:8443", None, "s3cret", 2.0, False
    )  # fmt: skip
    f = _write(tmp_path, "uplink:\n  transport: https\n  url: http://bureau.example\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:3: uplink.transport: transport https needs password_env (HTTP Basic password)",
        f"{f}:4: uplink.url: plain http:// sends the password in clear: use https:// (or insecure: true)",
    ]
    f = _write(tmp_path, "uplink:\n  transport: https\n  url: mqtts://bureau.example\n  password_env: PW\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:4: uplink.url: 'mqtts://bureau.example' is not https://host[:port] or http://host[:port] "
        "(transport: https)",
    ]
    f = _write(tmp_path, "uplink:\n  transport: pigeon\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert [str(p) for p in e.value.problems] == [
        f"{f}:3: uplink.transport: 'pigeon' is not one of: mqtt, https"
    ]
