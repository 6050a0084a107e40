"""The console's pure parts and its config section: hashes, expiry, words, file:line errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hazmon.config import load_config
from hazmon.console.config import ConsoleSettings
from hazmon.console.i18n import WORDS
from hazmon.console.passwords import hash_password, hash_problem, verify
from hazmon.console.sessions import Session, expiry
from hazmon.plant import ConfigError
from tests.conftest import ROOT

T = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_password_hashes_verify_and_refuse() -> None:
    h = hash_password("correct horse", log_n=10)
    assert hash_problem(h) is None
    assert verify("correct horse", h)
    assert not verify("correct horsE", h)
    assert hash_password("correct horse", log_n=10) != h  # salted
    assert not verify("x", "plain-text-password")
    assert hash_problem("scrypt$30$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 44) is not None


def test_expiry_idle_and_absolute() -> None:
    s = Session("x", "王强", "operator", "c", T, T)
    assert expiry(s, T + timedelta(seconds=1799), 1800, 43200) is None
    assert expiry(s, T + timedelta(seconds=1800), 1800, 43200) == "idle"
    busy = Session("x", "王强", "operator", "c", T, T + timedelta(hours=12) - timedelta(seconds=1))
    assert expiry(busy, T + timedelta(hours=12), 1800, 43200) == "absolute"


def test_every_word_of_every_template_is_translated() -> None:
    keys: set[str] = set()
    for f in (ROOT / "console" / "templates").rglob("*.html"):  # the bureau's pages too
        keys |= set(re.findall(r"t\('([a-z_]+)'\)", f.read_text(encoding="utf-8")))
    assert keys and keys - set(WORDS) == set()
    assert all(zh and en for zh, en in WORDS.values())


def test_the_example_config_has_a_user_per_role() -> None:
    cfg, _ = load_config(ROOT / "examples" / "hazmon.yaml", create_files=False)
    assert {u.role for u in cfg.console.users} == {"operator", "plant_manager", "bureau"}
    assert verify("demo-operator-1", cfg.console.users[0].password_hash)


def test_console_section_problems_at_their_lines(tmp_path: Path) -> None:
    (tmp_path / "plant.yaml").write_text((ROOT / "examples" / "plant.yaml").read_text())
    f = tmp_path / "hazmon.yaml"
    f.write_text(
        "plant: plant.yaml\n"
        "console:\n"
        "  session_idle_s: 5\n"
        "  users:\n"
        "    - {name: a, role: chief, password_hash: 'x'}\n"
        "    - {name: b, role: bureau, password_hash: '" + hash_password("pw", log_n=10) + "'}\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(f)
    text = str(e.value)
    assert f"{f}:3: console.session_idle_s: must be >= 60" in text
    assert f"{f}:5: console.users[0].role: 'chief' is not one of: operator, plant_manager, bureau" in text
    assert f"{f}:5: console.users[0].password_hash: not a password hash" in text
    assert ":6: console.users[1]" in text and "needs level" in text


def test_no_users_no_console() -> None:
    assert ConsoleSettings().users == ()


def test_every_word_built_from_a_value_is_translated() -> None:
    from hazmon.alarms.lifecycle import EventKind
    from hazmon.plant.standards import Tier
    from hazmon.plant.supervision_standards import DUTY_ROLES, Period
    from hazmon.supervision import Action, State
    from hazmon.supervision.duty import SOURCE_STATES

    keys = {f"a_{s.value}" for s in State} | {f"s_{a.value}" for a in Action}
    keys |= {f"p_{p.value}" for p in Period} | {"d_done", "d_due", "d_overdue"}
    keys |= {f"e_{k.value}" for k in EventKind}
    keys |= {t.colour for t in Tier} | set(DUTY_ROLES) | set(SOURCE_STATES) | {"general", "major"}
    assert keys - set(WORDS) == set()


def test_passwd_prints_a_hash_that_verifies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse
    import io

    from hazmon.cmd_console import _passwd  # the handler itself: main() would configure the process's logging

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert _passwd(argparse.Namespace(stdin=True)) == 0
    h = capsys.readouterr().out.strip()
    assert hash_problem(h) is None and verify("a-long-password", h)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert _passwd(argparse.Namespace(stdin=True)) == 2
