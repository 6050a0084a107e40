"""A Mosquitto of one test's or bench's own, on a free port, that it may stop and start."""

from __future__ import annotations

import getpass
import shutil
import subprocess
from pathlib import Path

from testkit.net import free_port, wait_port

__all__ = ["PrivateMosquitto"]


class PrivateMosquitto:
    """A Mosquitto of this test's own, on a free port, that the test may stop and start."""

    def __init__(self, workdir: Path, extra_conf: str = "") -> None:
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"persistence true\npersistence_location {workdir}/\n"
            "max_queued_messages 0\nmax_inflight_messages 0\n"
            # started as root, Mosquitto switches to user mosquitto, cannot write its persistence
            # file here and (silently) keeps no session across a restart: stay this test's user
            f"user {getpass.getuser()}\n" + extra_conf
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [exe, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
