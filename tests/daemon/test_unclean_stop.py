"""kill -9 of the daemon is not a silent loss: the next start says so, with a system alarm.

Readings acknowledged to the broker but still in memory when the process dies
cannot be recovered by the daemon; what it can do is never let that pass
unnoticed. A marker in the data dir, refreshed every second with how many
readings are held in memory, is removed by a clean stop; finding it at start
raises the alarm. A clean stop (SIGTERM) leaves no marker behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _metric(port: int, name: str) -> float | None:
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


def _wait(cond: Callable[[], bool], what: str, limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_kill_9_is_reported_at_the_next_start_and_a_clean_stop_is_not(
    db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    text = (ROOT / "examples" / "plant.yaml").read_text()
    text = text.replace("topic: plant/", f"topic: {topic_prefix}/plant/")
    text = text.replace("client_id: hazmon-hx-chem", f"client_id: {tmp_path.name[:20]}")
    text = text.replace("opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{free_port()}/hazmon")
    (tmp_path / "plant.yaml").write_text(text)
    port = free_port()
    (tmp_path / "hazmon.yaml").write_text(
        f"plant: plant.yaml\ndata_dir: data\ndatabase: {{dsn: '{db_dsn}', storage_mode: plain}}\n"
        f"http: {{port: {port}}}\n"
    )
    marker = tmp_path / "data" / "running.json"

    def start(n: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "hazmon", "run", "-c", str(tmp_path / "hazmon.yaml")],
            cwd=tmp_path,
            stdout=(tmp_path / f"daemon-{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    first = start(1)
    try:
        _wait(lambda: _metric(port, "hazmon_previous_run_unclean") == 0, "first daemon up")
        _wait(marker.exists, "the running marker")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    assert marker.exists(), "kill -9 leaves the marker behind"

    second = start(2)
    try:
        _wait(lambda: _metric(port, "hazmon_previous_run_unclean") == 1, "second daemon reporting the kill")

        def system_alarm() -> bool:
            with psycopg.connect(db_dsn) as c:
                r = c.execute("SELECT count(*) FROM alarm WHERE condition = 'system'").fetchone()
            return bool(r and r[0])

        _wait(system_alarm, "a system alarm about the unclean stop")
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0
    finally:
        second.kill()
    log2 = (tmp_path / "daemon-2.log").read_text()
    assert "previous run ended uncleanly" in log2
    assert not marker.exists(), "a clean stop removes the marker"

    third = start(3)
    try:
        _wait(lambda: _metric(port, "hazmon_previous_run_unclean") == 0, "third daemon: the stop was clean")
        third.send_signal(signal.SIGTERM)
        assert third.wait(60) == 0
    finally:
        third.kill()
