"""`hazmon simulate` exits on SIGINT (and SIGTERM), also when started in the background by a script.

A shell script's background job (``hazmon simulate ... &``) starts with SIGINT ignored;
Python then installs no KeyboardInterrupt handler and asyncio none of its own, and a
``kill -INT`` did nothing. The 8 s are the issue's bound for "it exits", not a speed figure.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from testkit import private_plant_file
from tests.conftest import free_port

EXIT_BOUND_S = 8.0


# what `cmd &` in a non-interactive shell does to the child: SIGINT ignored, then exec
_IGNORING_SIGINT = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_simulate_started_in_the_background_exits_on_signal(
    tmp_path: Path, topic_prefix: str, sig: signal.Signals
) -> None:
    plant_file = private_plant_file(tmp_path, 1883, free_port(), topic_prefix)
    log = tmp_path / "simulate.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-c", _IGNORING_SIGINT, sys.executable, "-m", "hazmon", "--log-json"),
                *("simulate", "-c", str(plant_file), "--data-dir", str(tmp_path / "sim-data")),
            ],
            stdout=out,
            stderr=out,
        )
        try:
            deadline = time.monotonic() + 120  # against hanging: the OPC UA server takes a while to build
            while (
                b"mqtt connected" not in log.read_bytes() or b"opcua server started" not in log.read_bytes()
            ):
                assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.2)
            proc.send_signal(sig)
            try:
                rc = proc.wait(EXIT_BOUND_S)
            except subprocess.TimeoutExpired:
                rc = None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text(errors="replace")
    assert rc is not None, f"no exit within {EXIT_BOUND_S} s of {sig.name}"
    assert rc == 130, text[-3000:]
    assert "opcua server stopped" in text  # a clean stop: servers closed, not killed
    assert "Traceback" not in text
