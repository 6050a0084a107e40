"""The `Reading` type every collector produces and every consumer reads.

No asyncua or paho type crosses into the rest of the code: adapters turn protocol
values into `Reading`. Timestamps are integer microseconds since the Unix epoch
(UTC), which PostgreSQL stores exactly; `to_us` / `from_us` convert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from hazmon.plant.standards import NAMUR_NE43_HIGH_FRACTION, NAMUR_NE43_LOW_FRACTION

__all__ = [
    "STORE_RESOLUTION_BITS",
    "Quality",
    "Reading",
    "ReadingBatch",
    "StaleChange",
    "from_us",
    "measuring_band",
    "quantize",
    "storage_step",
    "to_us",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Quality(IntEnum):
    """Quality of one reading, stored as a smallint.

    Follows the OPC UA StatusCode severity (Good / Uncertain / Bad); the finer
    reason (comm failure…) lives in the rules' findings.

    ``OUT_OF_RANGE`` is never sent by a source: the writer stores it for a value
    outside its sensor's measuring range widened by the NAMUR NE 43 signal band
    (`measuring_band`), e.g. ``1e308`` on a 0-10 ppm detector. Such a value is kept
    (what the transmitter said) but is not a measurement: trends, rollups and
    Grafana leave it out. The rules see the value as it came and raise their
    out-of-range finding.
    """

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2
    OUT_OF_RANGE = 3


def measuring_band(range_: tuple[float, float]) -> tuple[float, float]:
    """(lowest, highest) value that is still a measurement for a sensor of measuring range ``range_``.

    The range widened by the NAMUR NE 43 (2003) measurement band of a 4-20 mA loop,
    3.8 to 20.5 mA: 0.2/16 of the span below its low end, 0.5/16 above its high end
    (the same band the rules' out-of-range check uses). Outside it the signal means
    a failure, not a process value.
    """
    lo, hi = range_
    span = hi - lo
    return lo - NAMUR_NE43_LOW_FRACTION * span, hi + NAMUR_NE43_HIGH_FRACTION * span


STORE_RESOLUTION_BITS = 16
"""A value is stored at 1/2^16 of its sensor's measuring range (a power-of-two step, `storage_step`)."""


def storage_step(range_: tuple[float, float], bits: int = STORE_RESOLUTION_BITS) -> float:
    """The step a sensor's values are stored at: the largest power of two <= span / 2^``bits``.

    0.0 (full precision) for ``bits`` 0 or a range without a finite positive span. At 16 bits
    the step is 1/65,536 to 1/131,072 of the span: no coarser than a 16-bit converter's and at
    least 26 times finer than a good transmitter's accuracy (0.04-0.1 % of span), so nothing measured is
    lost; what goes is the noise below it, in a double's low mantissa bits, which no compression
    can shrink (TimescaleDB's Gorilla coding drops the zero bits a power-of-two step leaves:
    `bench/compression.py`, store/README.md).
    """
    lo, hi = range_
    span = hi - lo
    if bits == 0 or not (math.isfinite(span) and span > 0):
        return 0.0
    return math.ldexp(1.0, math.floor(math.log2(span)) - bits)


def quantize(values: NDArray[np.float64], steps: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` rounded to the nearest multiple of their ``steps`` (0: kept as they are).

    A power-of-two step makes the division and the product exact: the result is the multiple
    itself, within half a step of the value. Non-finite values pass unchanged, and so do values
    of 2^52 steps or more (a multiple already: their own spacing is the step or coarser; dividing
    1e308 by a small step would overflow).
    """
    out = values.copy()
    m = (steps > 0) & (np.abs(values) < steps * 2.0**52)
    out[m] = np.round(values[m] / steps[m]) * steps[m]
    return out


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


@dataclass(frozen=True, slots=True, eq=False)
class ReadingBatch:
    """Readings as columns, in arrival order: what flows from collectors to consumers.

    Collectors decode a message of 500 readings straight into these columns, and
    the writer (COPY) and the rules (numpy) consume columns, so no per-reading
    Python object is built on the hot path. ``batch.readings()`` gives the
    `Reading` view for code that wants one value at a time.

    Attributes:
        tags: the sensor tag of each row.
        ts_us: source timestamps, µs since the epoch (int64).
        value: values in engineering units (float64, finite).
        quality: `Quality` codes (int8).
    """

    tags: Sequence[str]
    ts_us: NDArray[np.int64]
    value: NDArray[np.float64]
    quality: NDArray[np.int8]

    def __len__(self) -> int:
        return len(self.tags)

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls([], np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int8))

    @classmethod
    def from_readings(cls, readings: Sequence[Reading]) -> ReadingBatch:
        """Columns of ``readings`` (raises TypeError / ValueError / OverflowError on a malformed one)."""
        if not readings:
            return cls.empty()
        tags, ts, vals, qs = zip(*readings, strict=True)
        return cls(
            list(tags),
            np.array(ts, dtype=np.int64),
            np.array(vals, dtype=np.float64),
            np.array(qs, dtype=np.int8),
        )

    @classmethod
    def concat(cls, batches: Iterable[ReadingBatch]) -> ReadingBatch:
        bs = [b for b in batches if len(b)]
        if not bs:
            return cls.empty()
        if len(bs) == 1:
            return bs[0]
        tags: list[str] = []
        for b in bs:
            tags.extend(b.tags)
        return cls(
            tags,
            np.concatenate([b.ts_us for b in bs]),
            np.concatenate([b.value for b in bs]),
            np.concatenate([b.quality for b in bs]),
        )

    def slice(self, lo: int, hi: int) -> ReadingBatch:
        return ReadingBatch(self.tags[lo:hi], self.ts_us[lo:hi], self.value[lo:hi], self.quality[lo:hi])

    def take(self, rows: NDArray[np.intp]) -> ReadingBatch:
        """The rows at ``rows`` (a boolean mask or indices), in that order."""
        idx = np.flatnonzero(rows) if rows.dtype == np.bool_ else rows
        return ReadingBatch(
            [self.tags[i] for i in idx.tolist()], self.ts_us[idx], self.value[idx], self.quality[idx]
        )

    def readings(self) -> list[Reading]:
        """One `Reading` per row (for tests and one-at-a-time code; not the hot path)."""
        return [
            Reading(t, ts, v, Quality(q))
            for t, ts, v, q in zip(
                self.tags, self.ts_us.tolist(), self.value.tolist(), self.quality.tolist(), strict=True
            )
        ]


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
