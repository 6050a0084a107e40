# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""Rate of change: bucket mean against the bucket ``rate_window_s`` before it, per minute.

Judged when a bucket closes (`hazmon.rules.buckets`), against the plant file's
``rate_rise_per_min`` / ``rate_fall_per_min``; an active rate alarm clears below
``rate_clear_fraction`` of the limit. The delays are the sensor's.
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.delays import Activations, step
from hazmon.rules.state import F64, I64, RATE, B, RulesState, Transitions

__all__ = ["batch_rates", "judge_rate", "judge_rate_at_close"]


def _lag_buckets(st: RulesState) -> int:
    """The rate compares a bucket with the one this many buckets before it."""
    s = st.settings
    return max(1, round(s.rate_window_s / s.bucket_s))


def judge_rate_at_close(
    st: RulesState, rows: I64, closed: I64, ts: I64, out: Transitions, fired: Activations
) -> None:
    """Bucket ``closed`` of sensors ``rows`` (already in the ring) closed at ``ts``: judge their rate."""
    m, s = st.model, st.settings
    has_limit = ~np.isnan(m.rate_rise[rows]) | ~np.isnan(m.rate_fall[rows])
    if not has_limit.any():
        return
    rows, closed, ts = rows[has_limit], closed[has_limit], ts[has_limit]
    lag = _lag_buckets(st)
    nslots = st.bmean.shape[1]
    before = closed - lag
    slot_now, slot_before = closed % nslots, before % nslots
    ok = st.bid[rows, slot_before] == before.astype(np.int32)
    change = st.bmean[rows, slot_now].astype(np.float64) - st.bmean[rows, slot_before]
    rate = change / (lag * s.bucket_s / 60.0)
    judge_rate(st, rows, ts, np.where(ok, rate, np.nan), ok, out, fired)


def judge_rate(
    st: RulesState, rows: I64, ts: I64, rate: F64, ok: B, out: Transitions, fired: Activations
) -> None:
    """Judge rates (per minute) of sensors ``rows`` at ``ts``; ``ok`` False: no bucket to compare with."""
    m, s = st.model, st.settings
    held = st.rate_val[rows]
    st.rate_val[rows] = rate
    rise, fall = m.rate_rise[rows], m.rate_fall[rows]
    active = st.active[RATE, rows]
    clear = s.rate_clear_fraction
    with np.errstate(invalid="ignore"):
        raw_off = np.where(ok, (rate > rise) | (-rate > fall), active)
        raw_on = np.where(ok, (rate > clear * rise) | (-rate > clear * fall), active)
    step(st, RATE, rows, ts, raw_off, raw_on, rate, held, out, fired)


def batch_rates(st: RulesState, rows: I64, closed: I64, means: F64) -> tuple[F64, B]:
    """Rates (per minute) of closes sorted by sensor and time, before they are written to the ring.

    The bucket ``rate_window_s`` before each close is one of these closes or in the ring.
    """
    s = st.settings
    lag = _lag_buckets(st)
    nslots = st.bmean.shape[1]
    keys = (rows << 32) + closed
    before = closed - lag
    before_pos = np.minimum(np.searchsorted(keys, keys - lag), rows.size - 1)
    in_batch = keys[before_pos] == keys - lag
    slot = before % nslots
    in_ring = st.bid[rows, slot] == before.astype(np.int32)
    mean_before = np.where(in_batch, means[before_pos], np.where(in_ring, st.bmean[rows, slot], np.nan))
    ok = in_batch | in_ring
    rate = np.where(ok, (means - mean_before) / (lag * s.bucket_s / 60.0), np.nan)
    return rate, ok
