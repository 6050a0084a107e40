"""The daemon's wall clock, in µs since the epoch (the unit of `hazmon.plant.Reading` times)."""

from __future__ import annotations

import time

__all__ = ["now_us"]


def now_us() -> int:
    return time.time_ns() // 1000
