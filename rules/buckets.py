# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""The window of bucket means, and what is judged when a bucket closes (rate, trend).

Each sensor sums its accepted readings into an open bucket of ``bucket_s``
(``cur_b`` / ``cur_sum`` / ``cur_n``); the first reading of a later bucket
closes it, and its mean goes into a ring of ``trend_s / bucket_s`` slots
(``bmean``, with the bucket number of each slot in ``bid``; slot = bucket % S).
Large plants close their sensors' buckets at staggered phases (``phase_us``).
A close judges the rate of change (`hazmon.rules.rate`) and the trend
prediction (`hazmon.rules.predict`).

Three ways in, one per path of the engine: one reading per sensor
(`add_readings`), a batch over all sensors as a mask (`add_where`), and runs of
readings sorted by sensor and time (`add_runs`), where one sensor may close
several buckets in one batch.
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.delays import Activations
from hazmon.rules.predict import batch_windows, ends_of, predict, screen
from hazmon.rules.rate import batch_rates, judge_rate, judge_rate_at_close
from hazmon.rules.state import F64, I64, NONE, RATE, B, RulesState, Transitions

__all__ = ["add_readings", "add_runs", "add_where"]


def _bucket_us(st: RulesState) -> int:
    return round(st.settings.bucket_s * 1e6)


def add_readings(st: RulesState, rows: I64, ts: I64, vals: F64, out: Transitions, fired: Activations) -> None:
    """One accepted reading per sensor ``rows`` into its open bucket, closing the one before."""
    bucket = (ts + st.phase_us[rows]) // _bucket_us(st)
    open_bucket = st.cur_b[rows]
    new = bucket != open_bucket
    closing = new & (st.cur_n[rows] > 0)
    if closing.any():
        closed_rows, closed = rows[closing], open_bucket[closing]
        nslots = st.bmean.shape[1]
        slot = closed % nslots
        st.bmean[closed_rows, slot] = st.cur_sum[closed_rows] / st.cur_n[closed_rows]
        st.bid[closed_rows, slot] = closed.astype(np.int32)
        _closed(st, closed_rows, closed, ts[closing], out, fired)
    if new.any():
        new_rows = rows[new]
        st.cur_b[new_rows] = bucket[new]
        st.cur_sum[new_rows] = 0.0
        st.cur_n[new_rows] = 0
    st.cur_sum[rows] += vals
    st.cur_n[rows] += 1


def add_where(st: RulesState, accepted: B, ts: I64, vals: F64, out: Transitions, fired: Activations) -> None:
    """The accepted readings of a batch over all sensors (``accepted``: mask over rows) into their buckets."""
    bucket = (ts + st.phase_us) // _bucket_us(st)
    new = accepted & (bucket != st.cur_b)
    closed_rows = np.flatnonzero(new & (st.cur_n > 0))
    if closed_rows.size:
        closed = st.cur_b[closed_rows]
        nslots = st.bmean.shape[1]
        slot = closed % nslots
        st.bmean[closed_rows, slot] = st.cur_sum[closed_rows] / st.cur_n[closed_rows]
        st.bid[closed_rows, slot] = closed.astype(np.int32)
        _closed(st, closed_rows, closed, ts[closed_rows], out, fired)
    np.copyto(st.cur_b, bucket, where=new)
    np.copyto(st.cur_sum, 0.0, where=new)
    np.copyto(st.cur_n, 0, where=new)
    np.add(st.cur_sum, vals, out=st.cur_sum, where=accepted)
    st.cur_n += accepted


def _closed(st: RulesState, rows: I64, closed: I64, ts: I64, out: Transitions, fired: Activations) -> None:
    """Bucket ``closed`` of sensors ``rows`` (already in the ring) closed at ``ts``: rate and trend."""
    judge_rate_at_close(st, rows, closed, ts, out, fired)
    predicted = st.model.predict[rows]
    if predicted.any():
        predict(st, rows[predicted], closed[predicted], ts[predicted], out)


def add_runs(
    st: RulesState, rows: I64, ts: I64, vals: F64, first: B, out: Transitions, fired: Activations
) -> None:
    """Readings sorted by sensor and time (``first``: a sensor's first) into their buckets."""
    n = rows.size
    # segments: runs of equal bucket number within each sensor
    bucket = (ts + st.phase_us[rows]) // _bucket_us(st)
    seg = first | (bucket != np.r_[NONE, bucket[:-1]])
    seg_pos = np.flatnonzero(seg)
    seg_sum = np.add.reduceat(vals, seg_pos)
    seg_n = np.diff(np.r_[seg_pos, n])
    seg_rows, seg_bucket, seg_ts = rows[seg_pos], bucket[seg_pos], ts[seg_pos]
    seg_first = first[seg_pos]
    seg_last = np.r_[seg_first[1:], True]
    carry = seg_first & (seg_bucket == st.cur_b[seg_rows])
    seg_sum = seg_sum + np.where(carry, st.cur_sum[seg_rows], 0.0)
    seg_n = seg_n + np.where(carry, st.cur_n[seg_rows], 0)
    # closes: the carried-over bucket when a sensor's first segment starts a new one,
    # and every segment but the last of each sensor (closed by the next one's first reading)
    old = seg_first & ~carry & (st.cur_n[seg_rows] > 0)
    old_rows = seg_rows[old]
    close_rows = [old_rows, seg_rows[~seg_last]]
    close_buckets = [st.cur_b[old_rows], seg_bucket[~seg_last]]
    close_means = [st.cur_sum[old_rows] / st.cur_n[old_rows], seg_sum[~seg_last] / seg_n[~seg_last]]
    close_ts = [seg_ts[old], np.r_[seg_ts[1:], NONE][~seg_last]]
    # the last segment of each sensor is its open bucket
    st.cur_b[seg_rows[seg_last]] = seg_bucket[seg_last]
    st.cur_sum[seg_rows[seg_last]] = seg_sum[seg_last]
    st.cur_n[seg_rows[seg_last]] = seg_n[seg_last].astype(np.int32)
    closed_rows, closed = np.concatenate(close_rows), np.concatenate(close_buckets)
    if closed_rows.size == 0:
        return
    _closes_of_runs(
        st, closed_rows, closed, np.concatenate(close_means), np.concatenate(close_ts), out, fired
    )


def _closes_of_runs(
    st: RulesState, rows: I64, closed: I64, means: F64, ts: I64, out: Transitions, fired: Activations
) -> None:
    """Closes found by `add_runs` (several per sensor possible): judged in time order, then into the ring."""
    order = np.lexsort((ts, rows))
    rows, closed, means, ts = rows[order], closed[order], means[order], ts[order]
    first = np.r_[True, rows[1:] != rows[:-1]]
    starts = np.flatnonzero(first)
    rank = np.arange(rows.size) - np.repeat(starts, np.diff(np.r_[starts, rows.size]))
    nslots = st.bmean.shape[1]
    # one trend fit for every predictive close of the batch: the window of close j
    # is the ring as it was, overlaid with this batch's closes up to j
    predicted = np.flatnonzero(st.model.predict[rows])
    window: tuple[F64, F64] | None = None
    if predicted.size:
        window = batch_windows(st, rows, closed, means, rank, predicted)
    # rate of change of every close at once: the bucket rate_window_s before is one
    # of this batch's closes or in the ring as it was
    rate, ok = batch_rates(st, rows, closed, means)
    rise, fall = st.model.rate_rise[rows], st.model.rate_fall[rows]
    has_limit = ~np.isnan(rise) | ~np.isnan(fall)
    with np.errstate(invalid="ignore"):
        could = ok & ((rate > rise) | (-rate > fall))
    counts = np.diff(np.r_[starts, rows.size])
    engaged = st.active[RATE, rows[starts]] | (st.pend[RATE, rows[starts]] != NONE)
    engaged |= np.logical_or.reduceat(could, starts)
    judge_rates = has_limit & np.repeat(engaged, counts)  # sensors whose rate state may change: in order
    last = np.r_[starts[1:] - 1, rows.size - 1]
    st.rate_val[rows[last]] = rate[last]
    judge_trends = np.zeros(rows.size, dtype=bool)
    if window is not None:
        need = screen(st, rows[predicted], *ends_of(*window))
        any_need = np.zeros(rows.size, dtype=bool)
        any_need[predicted[need]] = True
        judge_trends[predicted] = np.repeat(np.logical_or.reduceat(any_need, starts), counts)[predicted]
    busy = judge_rates | judge_trends
    if busy.any():
        for r in range(int(rank[busy].max()) + 1):
            sel = np.flatnonzero(busy & (rank == r))
            rate_sel = sel[judge_rates[sel]]
            if rate_sel.size:
                judge_rate(st, rows[rate_sel], ts[rate_sel], rate[rate_sel], ok[rate_sel], out, fired)
            trend_sel = sel[judge_trends[sel]]
            if trend_sel.size and window is not None:
                at = np.searchsorted(predicted, trend_sel)  # their place among the predicted closes
                trend_window = (window[0][at], window[1][at])
                predict(st, rows[trend_sel], closed[trend_sel], ts[trend_sel], out, trend_window)
    # the ring: the last S closes of each sensor (older ones would be overwritten)
    kept = rank >= np.repeat(counts, counts) - nslots
    st.bmean[rows[kept], closed[kept] % nslots] = means[kept]
    st.bid[rows[kept], closed[kept] % nslots] = closed[kept].astype(np.int32)
