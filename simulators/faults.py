"""Sensor faults: what a failing transmitter does to its readings.

Each active fault changes the measured value or quality of one sensor's
readings (or suppresses them) between its start and end; `apply_faults` is
called for each reading the sensor would have produced.

* stuck - the value freezes at the first reading after the fault starts.
* drift - the value walks away at ``amount`` units per hour.
* spikes - now and then (mean interval ``every_s``) a single reading jumps by
  ``amount`` x span, up or down.
* dropout - the sensor stops reporting.
* out_of_range - the transmitter signals a failure (broken wire, failed cell):
  NAMUR NE 43 failure current (3.6 mA / 21 mA), a value beyond the measuring
  band on ``amount``'s side, so the reading is BAD.
* bad_quality - the value goes on but carries quality ``amount`` (1 or 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from hazmon.plant.reading import Quality

__all__ = ["ActiveFault", "apply_faults"]

# NAMUR NE 43 failure signals: <= 3.6 mA or >= 21 mA on a 4-20 mA loop, i.e.
# 2.5 % of span below the range or 6.25 % above it (beyond the measuring band).
_FAIL_LOW, _FAIL_HIGH = 0.4 / 16.0, 1.0 / 16.0


@dataclass(slots=True)
class ActiveFault:
    kind: str
    start_us: int
    end_us: int | None
    amount: float
    every_s: float
    held: float | None = None  # stuck: the frozen value


def apply_faults(
    faults: list[ActiveFault],
    value: float,
    quality: Quality,
    *,
    ts_us: int,
    lo: float,
    hi: float,
    period_s: float,
    uniform: float,
    sign: float,
) -> tuple[float, Quality] | None:
    """The faulty reading for a measured ``value``; None when the sensor reports nothing.

    Args:
        faults: active faults of this sensor, in the order they started.
        value: the measured value (noise included).
        quality: the quality so far.
        ts_us: the reading's timestamp.
        lo: range low end.
        hi: range high end.
        period_s: the sensor's reporting period.
        uniform: a uniform random number in [0, 1) for this reading (spikes).
        sign: +1.0 or -1.0 at random (spike direction).
    """
    span = hi - lo
    for f in faults:
        if f.kind == "dropout":
            return None
        if f.kind == "stuck":
            if f.held is None:
                f.held = value
            value = f.held
        elif f.kind == "drift":
            value += f.amount * (ts_us - f.start_us) / 3.6e9
        elif f.kind == "spikes":
            if uniform < min(1.0, period_s / f.every_s):
                value += sign * f.amount * span
        elif f.kind == "out_of_range":
            value = hi + _FAIL_HIGH * span if f.amount > 0 else lo - _FAIL_LOW * span
        elif f.kind == "bad_quality":
            quality = Quality(int(f.amount))
    return value, quality
