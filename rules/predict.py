# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""Trend prediction: a robust straight line reaching HH / LL within the horizon.

When a bucket closes (`hazmon.rules.buckets`), the window of bucket means of the
sensors that get predictions is screened (`screen`: only windows whose crude
end-to-end slope comes near a limit, or whose prediction is engaged, are fitted)
and fitted with `hazmon.rules.trend.robust_trend`. A prediction is a delayed
condition (``predict_on_delay_s`` / ``predict_off_delay_s``) and clears at once
when the limit it predicted is reached (`clear_reached`).
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.delays import step
from hazmon.rules.state import F64, HH, I64, LL, NONE, PHH, PLL, B, RulesState, Transitions
from hazmon.rules.trend import robust_trend

__all__ = ["batch_windows", "clear_reached", "ends_of", "predict", "screen"]

Window = tuple[F64, F64]
"""Bucket means of trend windows, one row per window (NaN: empty), and their age in buckets."""


def windows(st: RulesState, rows: I64, newest: I64) -> Window:
    """Trend windows ending with bucket ``newest`` of sensors ``rows``, in ring-slot order.

    Returns:
        Bucket means (NaN: empty or outside the window) and their age in buckets
        before ``newest``. Slot order needs no reordering (see `robust_trend`).
    """
    nslots = st.bmean.shape[1]
    means = st.bmean[rows].astype(np.float64)
    age = (newest[:, None] - st.bid[rows]).astype(np.float64)
    means[(age < 0) | (age >= nslots)] = np.nan
    return means, age


def batch_windows(st: RulesState, rows: I64, buckets: I64, means: F64, rank: I64, predicted: I64) -> Window:
    """Trend windows of closes ``predicted``: the ring as it was, overlaid with this batch's closes.

    The closes (``rows``, ``buckets``, ``means``) are sorted by sensor and time;
    ``rank`` is each close's place among its sensor's closes of this batch. The
    window of a close holds this batch's closes up to it, not after it.
    """
    nslots = st.bmean.shape[1]
    window, age = windows(st, rows[predicted], buckets[predicted])
    window[age <= 0] = np.nan  # buckets at or after this batch's first close: from the closes
    predicted_rank = rank[predicted]
    for back in range(int(predicted_rank.max()) + 1):
        has = np.flatnonzero(predicted_rank >= back)
        src = predicted[has] - back  # the close `back` before, same sensor (ranks are consecutive)
        ago = buckets[predicted[has]] - buckets[src]
        in_window = ago < nslots
        slot = buckets[src] % nslots
        window[has[in_window], slot[in_window]] = means[src[in_window]]
        age[has[in_window], slot[in_window]] = ago[in_window]
    return window, age


def _ends(st: RulesState, rows: I64, newest: I64) -> tuple[F64, F64]:
    """Mean of the oldest and of the newest few buckets of each window (NaN if a bucket is missing)."""
    nslots = st.bmean.shape[1]
    width = _ends_width(nslots)
    ids = newest[:, None] - np.r_[np.arange(nslots - width, nslots), np.arange(width)][None, :]
    flat = rows[:, None] * nslots + ids % nslots
    means = st.bmean.reshape(-1).take(flat).astype(np.float64)
    means[st.bid.reshape(-1).take(flat) != ids] = np.nan
    return means[:, :width].mean(axis=1), means[:, width:].mean(axis=1)


def _ends_width(nslots: int) -> int:
    """Buckets averaged at each end of the window for the crude slope of `screen`."""
    return max(1, nslots // 20)


def ends_of(window: F64, age: F64) -> tuple[F64, F64]:
    """`_ends` of windows already gathered (the newest end NaN if any bucket is missing)."""
    nslots = window.shape[1]
    width = _ends_width(nslots)
    oldest = np.where(age >= nslots - width, window, 0.0).sum(axis=1) / width
    newest = np.where(age < width, window, 0.0).sum(axis=1) / width
    return oldest, np.where(np.isnan(window).any(axis=1), np.nan, newest)


def screen(st: RulesState, rows: I64, oldest: F64, newest: F64) -> B:
    """Rows worth a robust fit; the others cannot predict anything.

    Worth it: predictions active or pending, windows with gaps (NaN ends), and
    windows whose crude end-to-end slope (mean of the newest few buckets minus
    mean of the oldest few) would reach HH / LL within three horizons.
    """
    s, m = st.settings, st.model
    nslots = st.bmean.shape[1]
    width = _ends_width(nslots)
    slope = (newest - oldest) / (nslots - width)  # per bucket
    far = 3.0 * s.horizon_s / s.bucket_s
    with np.errstate(invalid="ignore"):
        near_hh = (slope > 0) & (m.limits[HH, rows] - newest <= slope * far)
        near_ll = (slope < 0) & (m.limits[LL, rows] - newest >= slope * far)
    engaged = (
        st.active[PHH, rows]
        | st.active[PLL, rows]
        | (st.pend[PHH, rows] != NONE)
        | (st.pend[PLL, rows] != NONE)
    )
    need: B = ~np.isfinite(slope) | near_hh | near_ll | engaged
    return need


def predict(
    st: RulesState, rows: I64, closed: I64, ts: I64, out: Transitions, window: Window | None = None
) -> None:
    """Trend prediction of HH / LL for sensors ``rows`` whose bucket ``closed`` closed at ``ts``.

    ``window``: the trend windows when the caller has them (`batch_windows`);
    None: read from the ring.
    """
    s, m = st.settings, st.model
    nslots = st.bmean.shape[1]
    bucket_us = round(s.bucket_s * 1e6)
    if window is None:
        need = screen(st, rows, *_ends(st, rows, closed))
        rows, closed, ts = rows[need], closed[need], ts[need]
        if rows.size == 0:
            return
        means, age = windows(st, rows, closed)
    else:
        means, age = window
        need = screen(st, rows, *ends_of(means, age))
        if not need.all():
            rows, closed, ts, means, age = rows[need], closed[need], ts[need], means[need], age[need]
            if rows.size == 0:
                return
    fit = robust_trend(means, age)
    enough = fit.pairs >= s.min_fill * (nslots // 2)
    per_us = fit.slope / bucket_us
    t_ref = (closed * bucket_us + bucket_us // 2) - st.phase_us[rows]  # middle of the newest bucket
    held = st.pred_level[rows]
    st.pred_level[rows] = fit.level
    st.pred_slope[rows] = fit.slope * 60e6 / bucket_us
    horizon = s.horizon_s * 1e6
    trend = (fit.consistency >= s.consistency) & (fit.ratio >= s.fit_ratio)
    for at_row, cond, limit_row, sign in ((0, PHH, HH, 1.0), (1, PLL, LL, -1.0)):
        gap = m.limits[limit_row, rows] - fit.level
        with np.errstate(divide="ignore", invalid="ignore"):
            eta_at = t_ref + gap / per_us
        eta = eta_at - ts
        moving = (sign * per_us > 0) & (sign * gap > 0) & np.isfinite(eta)
        already = st.active[limit_row, rows]
        raw_off = enough & moving & trend & (eta <= horizon) & ~already
        raw_on = enough & moving & (eta <= 1.25 * horizon) & ~already
        finite = np.isfinite(eta_at) & (np.abs(eta_at) < 4e18)
        st.pred_at[at_row, rows] = np.where(finite, np.where(finite, eta_at, 0.0).astype(np.int64), NONE)
        step(st, cond, rows, ts, raw_off, raw_on, fit.level, held, out)


def clear_reached(st: RulesState, now: int, out: Transitions) -> None:
    """A prediction clears (at once) when the limit it predicted is reached."""
    for cond, limit_row in ((PHH, HH), (PLL, LL)):
        done = np.flatnonzero(st.active[cond] & st.active[limit_row])
        if done.size:
            st.active[cond, done] = False
            st.pend[cond, done] = NONE
            out.add(
                cond,
                done,
                np.full(done.size, now, dtype=np.int64),
                np.zeros(done.size, dtype=bool),
                st.last_val[done],
            )
