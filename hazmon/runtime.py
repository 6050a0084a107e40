"""The interpreter settings of a daemon process: `hazmon run` and the tests' in-process daemons.

One function, called by ``hazmon run`` before its event loop starts and by the test suite
(``tests/conftest.py``) before any daemon runs in-process, so the tests run the daemon as it
runs in production. The other process-level setting, freezing the objects built at start out
of the collector's sight (`gc.freeze`), is made by `hazmon.daemon.Daemon.start` itself, after
the wiring is built: both get it there.
"""

from __future__ import annotations

import sys

__all__ = ["SWITCH_INTERVAL_S", "apply_process_settings"]

# The collectors' network threads and the alarm service's thread wait for the GIL while the
# event loop works; at Python's default 5 ms switch interval those waits were a large part of
# the alarm latency's tail (bench/alarm_latency.py --switch-interval-ms: p99 425 vs 588 ms
# under load, 79 vs 94 ms quiet) and slow the writer's COPY round trips under decoding load.
SWITCH_INTERVAL_S = 0.001


def apply_process_settings() -> float:
    """Set the daemon's interpreter settings; returns the switch interval it replaced."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return before
