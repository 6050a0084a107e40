"""stderr has one format: every line of the daemon and the simulator is a JSON object, no traceback.

A real simulator serves OPC UA (asyncua server), a real daemon reads it; the simulator is
stopped while the daemon is connected (a clean server shutdown), then the daemon. Before
the fix asyncua's own lines were plain text in between the JSON lines (each node added,
each request served), and an expected event (the peer closed the session) came with a
traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit import private_plant_file
from tests.conftest import free_port


def _hazmon(*args: str, out: Path) -> subprocess.Popen[bytes]:
    with out.open("wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "hazmon", "--log-json", *args], stdout=subprocess.DEVNULL, stderr=f
        )


def _wait_for_line(p: subprocess.Popen[bytes], log: Path, text: str, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s  # against hanging, not a timing assertion
    while text not in log.read_text(errors="replace"):
        assert p.poll() is None, (
            f"exited while waiting for {text!r}:\n" + log.read_text(errors="replace")[-3000:]
        )
        assert time.monotonic() < deadline, f"no {text!r} in:\n" + log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


def _stop(p: subprocess.Popen[bytes]) -> int:
    p.send_signal(signal.SIGINT)
    try:
        return p.wait(60)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait()


def _not_json(text: str) -> list[str]:
    bad = []
    for line in text.splitlines():
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    return bad


@pytest.mark.slow
def test_daemon_and_simulator_write_json_lines_only_across_a_server_shutdown(
    tmp_path: Path, db_dsn: str, topic_prefix: str
) -> None:
    plant_file = private_plant_file(tmp_path, 1883, free_port(), topic_prefix)
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text(
        f"plant: {plant_file}\ndata_dir: data\n"
        f"database: {{dsn: '{db_dsn}', storage_mode: plain}}\nhttp: {{host: 127.0.0.1, port: 0}}\n"
    )
    sim_log, d_log = tmp_path / "simulate.log", tmp_path / "daemon.log"
    sim = _hazmon(
        "simulate", "-c", str(plant_file), "--no-mqtt", "--data-dir", str(tmp_path / "s"), out=sim_log
    )
    d: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_line(sim, sim_log, "opcua server started")
        d = _hazmon("run", "-c", str(cfg), out=d_log)
        _wait_for_line(d, d_log, "hazmon daemon running")
        _wait_for_line(d, d_log, '"database connected"')  # OPC UA readings came in and were written
        _stop(sim)  # a clean server shutdown under a connected client
        _wait_for_line(d, d_log, "opcua endpoint unavailable")
        time.sleep(2)  # a few reconnect attempts against the closed port
        assert _stop(d) == 0, d_log.read_text(errors="replace")[-3000:]
    finally:
        for p in (sim, d):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    for log in (sim_log, d_log):
        text = log.read_text(errors="replace")
        assert _not_json(text) == [], f"{log.name}: plain lines among the JSON ones"
        assert "Traceback" not in text, f"{log.name}: {text[-3000:]}"
        chatter = [ln for ln in text.splitlines() if '"logger": "asyncua' in ln and '"level": "info"' in ln]
        assert chatter == [], f"{log.name}: asyncua INFO lines"


_EXPECTED_EVENT = """
import logging
from asyncua import ua
from hazmon.logs import configure_logging

configure_logging("info", json=True)
lib = logging.getLogger("asyncua.client.ua_session.UaSession")
lib.info("add_node: while adding node %s", "i=1")  # chatter: below WARNING
try:  # what a client's publish loop gets from a server shutting down
    raise ua.UaStatusCodeError(ua.StatusCodes.BadSessionClosed)
except ua.UaStatusCodeError:
    lib.exception("Publish iteration crashed; retrying in 1s")
try:
    raise ValueError("a bug")
except ValueError:
    lib.exception("Connection supervisor iteration crashed; retrying in 1s")
"""


def test_an_expected_library_event_is_one_warning_line_and_a_bug_keeps_its_traceback() -> None:
    p = subprocess.run([sys.executable, "-c", _EXPECTED_EVENT], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(ln) for ln in p.stderr.splitlines()]
    assert len(lines) == 2, p.stderr
    closed, bug = lines
    assert closed["level"] == "warning" and closed["logger"] == "asyncua.client.ua_session.UaSession"
    assert "BadSessionClosed" in closed["event"] and "exception" not in closed
    assert bug["level"] == "error" and "ValueError: a bug" in bug["exception"]
