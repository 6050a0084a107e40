"""The `Reading` type every collector produces and every consumer reads.

No asyncua or paho type crosses into the rest of the code: adapters turn protocol
values into `Reading`. Timestamps are integer microseconds since the Unix epoch
(UTC), which PostgreSQL stores exactly; `to_us` / `from_us` convert.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import NamedTuple

__all__ = ["Quality", "Reading", "StaleChange", "from_us", "to_us"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Quality(IntEnum):
    """Quality of one reading, stored as a smallint.

    Follows the OPC UA StatusCode severity (Good / Uncertain / Bad); the finer
    reason (out of range, comm failure…) lives in the rules' findings.
    """

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Reading(NamedTuple):
    """One value of one sensor at one time.

    Attributes:
        tag: the sensor's tag, unique within the plant file.
        ts_us: source timestamp, microseconds since the Unix epoch (UTC).
        value: the value in the sensor's engineering unit.
        quality: the transmitter's or the link's verdict on the value.
    """

    tag: str
    ts_us: int
    value: float
    quality: Quality = Quality.GOOD


class StaleChange(NamedTuple):
    """A sensor stopped (or resumed) reporting: the collector's word to the rules.

    Attributes:
        tag: the sensor's tag.
        stale: True when no reading came for N x its period (or its endpoint is
            down); False when readings resumed.
        ts_us: when it was detected, µs since the epoch.
        reason: e.g. "no reading for 15 s (3 x 5 s)", "endpoint dcs disconnected".
    """

    tag: str
    stale: bool
    ts_us: int
    reason: str = ""


def to_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch for an aware datetime (naive means UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(ts_us: int) -> datetime:
    """Aware UTC datetime for microseconds since the Unix epoch."""
    return datetime.fromtimestamp(ts_us // 1_000_000, tz=UTC).replace(microsecond=ts_us % 1_000_000)
