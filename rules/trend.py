"""Robust straight-line fit over many windows at once (vectorised Theil–Sen).

For each row of bucket means ``y`` (oldest first, NaN where a bucket is empty)
the slope is the median of the half-window pair slopes
``(y[j + m] - y[j]) / m`` (m = half the window): Theil–Sen restricted to pairs a
half window apart, which keeps it robust against spikes while costing one
sort of m values per row instead of m². The level at the newest bucket is the
median of the points projected along that slope. Two numbers tell a trend (a
tank being overfilled, a vessel heating) from noise and from a pump cycle that
rises and falls within the window: the share of pair slopes agreeing in sign
with the median, and how far the line moves over the window compared with
the robust scatter of the points around it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

__all__ = ["Trend", "nan_median_rows", "robust_trend"]

F64 = NDArray[np.float64]


class Trend(NamedTuple):
    """Per-row fit.

    Attributes:
        slope: per bucket.
        level: fitted value at the newest bucket.
        pairs: pair slopes used (both buckets present).
        consistency: share of pair slopes agreeing in sign with ``slope``.
        ratio: change of the fitted line over the window divided by the robust
            scale of the residuals (1.4826 MAD): a trend stands out of the
            scatter around it; a cycle shorter than the window does not.
    """

    slope: F64
    level: F64
    pairs: NDArray[np.int64]
    consistency: F64
    ratio: F64


def nan_median_rows(x: F64) -> tuple[F64, NDArray[np.int64]]:
    """Median of each row ignoring NaN (NaN where a row has none), and the count used."""
    s = np.sort(x, axis=1)  # NaN sort last
    cnt = np.count_nonzero(~np.isnan(x), axis=1).astype(np.int64)
    lo = np.maximum(cnt - 1, 0) // 2
    hi = np.minimum(cnt // 2, x.shape[1] - 1)
    a = np.take_along_axis(s, lo[:, None], axis=1)[:, 0]
    b = np.take_along_axis(s, hi[:, None], axis=1)[:, 0]
    med = np.where(cnt > 0, (a + b) / 2.0, np.nan)
    return med, cnt


def robust_trend(y: F64, age: F64 | None = None) -> Trend:
    """Fit every row of ``y`` (shape (rows, S), S even).

    Args:
        y: bucket means; NaN where a bucket is empty.
        age: buckets between each column and the newest bucket (0 = newest);
            None: columns are oldest first. Columns j and j + S/2 must be S/2
            buckets apart (true of a ring buffer of S slots read in slot order,
            so windows need no reordering).
    """
    s = y.shape[1]
    m = s // 2
    if age is None:
        age = np.broadcast_to((s - 1 - np.arange(s, dtype=np.float64))[None, :], y.shape)
    d = (y[:, :m] - y[:, m : 2 * m]) / (age[:, m : 2 * m] - age[:, :m])
    slope, pairs = nan_median_rows(d)
    sign = np.sign(slope)
    agree = np.count_nonzero((d * sign[:, None]) > 0, axis=1)
    consistency = np.where(pairs > 0, agree / np.maximum(pairs, 1), 0.0)
    s0 = np.nan_to_num(slope)[:, None]
    level, _ = nan_median_rows(y + s0 * age)
    resid = y - (level[:, None] - s0 * age)
    mad, _ = nan_median_rows(np.abs(resid))
    rise = np.abs(slope) * (s - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rise > 0, rise / (1.4826 * mad), 0.0)
    return Trend(slope, level, pairs, consistency, np.nan_to_num(ratio, nan=0.0, posinf=np.inf))
