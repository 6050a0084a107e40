"""`hazmon bureau run` as a process: ready with its database and broker, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testkit.mosquitto import PrivateMosquitto
from tests.conftest import ROOT, free_port


@pytest.mark.slow
def test_run_is_ready_and_stops_on_sigterm(
    tmp_path: Path, empty_db: str, private_mosquitto: PrivateMosquitto
) -> None:
    port = free_port()
    cfg = tmp_path / "bureau.yaml"
    cfg.write_text(
        f"""id: nj-city
name: 南京市应急管理局
region: {{code: "320100", level: city}}
database: {{dsn: "{empty_db}"}}
broker: {{url: "mqtt://127.0.0.1:{private_mosquitto.port}", client_id: bureau-cli}}
http: {{host: 127.0.0.1, port: {port}}}
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "hazmon", "bureau", "run", "-c", str(cfg)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        ready: dict[str, object] = {}
        while time.monotonic() < deadline and ready.get("status") != "ready":
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    ready = json.loads(r.read())
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        assert ready.get("status") == "ready", ready
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=2) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert "bureau daemon stopped" in out and "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
