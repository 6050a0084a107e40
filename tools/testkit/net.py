"""Ports on 127.0.0.1 for tests and benches: pick a free one, wait for a listener."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

__all__ = ["free_port", "wait_port"]


# not the module-level generator: pytest-randomly seeds that one alike in every xdist worker,
# which would then pick the same ports
_RNG = random.SystemRandom()


def _outside_ephemeral() -> range:
    """Ports the kernel never hands out as an outgoing connection's source port.

    A port picked with ``bind(0)`` lies in the ephemeral range: once the test's server stops
    (an outage test), any outgoing connection of another process may take it as its source
    port and the restart fails with EADDRINUSE (seen once in a loaded run).
    """
    try:
        lo, hi = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999  # Linux's default
    if lo - 10_000 >= 2_000:
        return range(10_000, lo)
    return range(hi + 1, 65_536)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (call it when the test runs), outside the ephemeral range."""
    ports = _outside_ephemeral()
    for _ in range(200):
        port = _RNG.choice(ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # that range is full: any free port
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
