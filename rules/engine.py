# ruff: noqa: PLR0917 - private helpers take parallel arrays (rows, times, values) positionally
"""The rules engine: ``evaluate(state, batch, now_us) -> (state, findings)``.

Deterministic, no I/O, no clock: the same state, batch and ``now_us`` always give
the same findings. Every condition is an array over all sensors (numpy); the
per-sensor windows are ring buffers in arrays. Python objects are made only for
findings (a condition that activates or clears), which are rare.

For speed the state's arrays are updated in place and the same object is
returned: a caller must use the returned state and drop the one it passed
(`RulesState.copy` exists for tests that want to compare).

Conditions per sensor, in the order a reading meets them:

1. out of range (outside the measuring range widened by the NAMUR NE 43 signal
   band): fault; the value is not used.
2. bad quality (``Quality.BAD``, value in range): fault; the value is not used.
   ``UNCERTAIN`` values are used.
3. stuck (unchanged for ``stuck_after_s``, for the kinds that must move): fault.
4. stale (from the collector's `StaleChange`, or the rules' own ``stale_factor``): fault.
5. spike: a reading that jumps by more than ``spike_min_step`` of the span and
   is a robust outlier (median / MAD of the last readings) is held back; if the
   next reading returns, it was a spike (fault, cleared after ``spike_hold_s``
   without spikes), otherwise it was a real step and evaluation continues.
6. HH / H / L / LL with deadband, on-delay and off-delay; a gas detector's H / HH
   are reported as gas first / second level.
7. when a window bucket closes: rate of change over ``rate_window_s`` and the
   robust trend (see `hazmon.rules.trend`) predicting HH / LL within the horizon.

A sensor with an active fault raises no process alarm; process alarms already
active stay as they are (a dead sensor does not clear an alarm) and pending
transitions are cancelled. Then k-of-n vote groups and chattering (N activations
of one condition within a window) are evaluated, and time-based transitions
(delays elapsing, spike hold, chattering ending, own staleness) at ``now_us``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hazmon.plant.findings import Finding
from hazmon.rules.state import (
    BAD,
    CHAT,
    CHAT_ROWS,
    EMPTY_I,
    F64,
    HH,
    I64,
    LL,
    N_PROC,
    NONE,
    OOR,
    PHH,
    PLL,
    RATE,
    SPIKE,
    STALE,
    STUCK,
    B,
    Batch,
    H,
    L,
    RulesState,
    Transitions,
    initial_state,
)
from hazmon.rules.trend import robust_trend
from hazmon.rules.wording import findings as _findings

__all__ = ["NONE", "Batch", "RulesState", "evaluate", "initial_state"]

_DENSE_FROM = 0.25
"""A batch with one reading for at least this share of the sensors is handled densely."""


def _flip(flags: B, code: int, idx: I64, raw: B, ts: I64, val: F64, out: Transitions) -> None:
    """Immediate (undelayed) condition: set ``flags[idx] = raw`` and record the changes."""
    ch = flags[idx] != raw
    if ch.any():
        flags[idx[ch]] = raw[ch]
        out.add(code, idx[ch], ts[ch], raw[ch], val[ch])


def _delays(st: RulesState, c: int, idx: I64) -> tuple[I64, I64]:
    if c in (PHH, PLL):
        on = np.full(idx.size, round(st.settings.predict_on_delay_s * 1e6), dtype=np.int64)
        off = np.full(idx.size, round(st.settings.predict_off_delay_s * 1e6), dtype=np.int64)
        return on, off
    return st.model.on_us[idx], st.model.off_us[idx]


def _step(
    st: RulesState,
    c: int,
    idx: I64,
    t: I64,
    raw_off: B,
    raw_on: B,
    val: F64,
    held: F64,
    out: Transitions,
    fired: list[tuple[int, I64, I64]] | None = None,
) -> None:
    """Advance the delayed state machine of process row ``c`` for one reading per row.

    ``raw_off`` / ``raw_on`` are the condition as judged from an inactive / active
    state (the deadband makes them differ). A transition pending since before
    the reading whose delay elapsed in between fires at ``pend + delay`` with the
    held (previous) value; then the reading itself is judged.
    """
    act = st.active[c, idx]
    pend = st.pend[c, idx]
    on, off = _delays(st, c, idx)
    delay = np.where(act, off, on)
    due = (pend != NONE) & (t >= pend + delay)
    if due.any():
        out.add(c, idx[due], (pend + delay)[due], ~act[due], held[due])
        if fired is not None:
            fired.append((c, idx[due & ~act], (pend + delay)[due & ~act]))
        act = act ^ due
        pend = np.where(due, NONE, pend)
    raw = np.where(act, raw_on, raw_off)
    differs = raw != act
    pend = np.where(differs, np.where(pend == NONE, t, pend), NONE)
    fire = differs & (t - pend >= np.where(act, off, on))
    if fire.any():
        out.add(c, idx[fire], t[fire], ~act[fire], val[fire])
        if fired is not None:
            fired.append((c, idx[fire & ~act], t[fire & ~act]))
        act = act ^ fire
        pend = np.where(fire, NONE, pend)
    st.active[c, idx] = act
    st.pend[c, idx] = pend


def _sweep(st: RulesState, now: int, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    """Transitions whose delay elapsed by ``now`` without a new reading (value held)."""
    flat = np.flatnonzero(st.pend.ravel() != NONE)
    if flat.size == 0:
        return
    rows, idx = np.divmod(flat, st.pend.shape[1])
    for c in np.unique(rows):
        ci = idx[rows == c]
        on, off = _delays(st, int(c), ci)
        act = st.active[c, ci]
        when = st.pend[c, ci] + np.where(act, off, on)
        due = when <= now
        if due.any():
            di = ci[due]
            out.add(int(c), di, when[due], ~act[due], _value_for(st, int(c), di))
            if int(c) < CHAT_ROWS:
                fired.append((int(c), di[~act[due]], when[due][~act[due]]))
            st.active[c, di] = ~act[due]
            st.pend[c, di] = NONE


def _due(st: RulesState, idx: I64, t: I64, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    """Transitions of sensors ``idx`` whose delay elapsed by ``t`` (before a reading or fault at ``t``)."""
    pend = st.pend[:, idx]
    if not (pend != NONE).any():
        return
    for c in range(N_PROC):
        p = pend[c]
        has = p != NONE
        if not has.any():
            continue
        ci, pc, tc = idx[has], p[has], t[has]
        on, off = _delays(st, c, ci)
        act = st.active[c, ci]
        when = pc + np.where(act, off, on)
        due = when <= tc
        if due.any():
            di = ci[due]
            out.add(c, di, when[due], ~act[due], _value_for(st, c, di))
            if c < CHAT_ROWS:
                fired.append((c, di[~act[due]], when[due][~act[due]]))
            st.active[c, di] = ~act[due]
            st.pend[c, di] = NONE


def _value_for(st: RulesState, c: int, idx: I64) -> F64:
    if c == RATE:
        return st.rate_val[idx]
    if c in (PHH, PLL):
        return st.pred_level[idx]
    return st.last_val[idx]


# --------------------------------------------------------------------------- #
# Evaluation                                                                   #
# --------------------------------------------------------------------------- #


def evaluate(state: RulesState, batch: Batch, now_us: int) -> tuple[RulesState, list[Finding]]:
    """Judge a batch of readings and stale changes at ``now_us``; return the state and findings.

    Findings are transitions only: a condition that activates (``active=True``)
    or clears (``active=False``); nothing is repeated while a condition holds.
    They are sorted by time, the more severe first at equal times.
    """
    st, out = state, Transitions()
    fired: list[tuple[int, I64, I64]] = []
    _stale_changes(st, batch, out, fired)
    if batch.idx.size:
        _readings(st, batch, out, fired)
    _timed(st, now_us, out, fired)
    _sweep(st, now_us, out, fired)
    _superseded(st, now_us, out)
    _chattering(st, fired, out)
    if st.settings.votes and st.model.groups.ids:
        _votes(st, now_us, out)
    return st, _findings(st, out)


def _readings(st: RulesState, batch: Batch, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    """Sort the readings per sensor and time, drop late ones, then judge them.

    Sensors for which nothing can happen in this batch (no alarm active or
    pending, no fault, every value clear of its limits, no jump, moving) take
    the quiet path: their windows are updated for all their readings at once.
    The others are judged reading by reading, one round per reading rank.
    """
    st.counters["readings"] += int(batch.idx.size)
    if batch.idx.size and int(np.bincount(batch.idx, minlength=st.model.n).max()) <= 1:
        if batch.idx.size >= _DENSE_FROM * st.model.n:
            _dense(st, batch, out, fired)
        else:
            _single(st, batch, out, fired)
        return
    order = np.lexsort((batch.ts, batch.idx))
    idx, ts = batch.idx[order], batch.ts[order]
    val, q = batch.value[order], batch.quality[order]
    first = np.r_[True, idx[1:] != idx[:-1]]
    late = (ts <= st.last_ts[idx]) | (~first & (ts == np.r_[NONE, ts[:-1]]))
    if late.any():
        st.counters["late"] += int(late.sum())
        keep = ~late
        idx, ts, val, q = idx[keep], ts[keep], val[keep], q[keep]
        first = np.r_[True, idx[1:] != idx[:-1]] if idx.size else first[:0]
    if idx.size == 0:
        return
    quiet = _quiet(st, idx, ts, val, q, first, _stuck_refs(st, idx, ts, val, first)[1])
    if quiet.any():
        _bulk(st, idx[quiet], ts[quiet], val[quiet], out, fired)
        rest = ~quiet
        idx, ts, val, q = idx[rest], ts[rest], val[rest], q[rest]
        if idx.size == 0:
            return
        first = np.r_[True, idx[1:] != idx[:-1]]
    starts = np.flatnonzero(first)
    rank = np.arange(idx.size) - np.repeat(starts, np.diff(np.r_[starts, idx.size]))
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        if r == 0 and sel.all():
            _round(st, idx, ts, val, q, out, fired)
        else:
            _round(st, idx[sel], ts[sel], val[sel], q[sel], out, fired)


def _dense(st: RulesState, batch: Batch, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    """One reading for many sensors: whole-array operations instead of gathers.

    Same results as `_single` (tests/rules/test_engine.py checks it); the
    readings are scattered into arrays over all sensors with a ``present`` mask.
    """
    m, s = st.model, st.settings
    n = m.n
    if batch.idx.size == n and bool(np.all(batch.idx[1:] > batch.idx[:-1])):
        present = np.ones(n, dtype=bool)  # every sensor, in row order: no scatter
        ts, val, q = batch.ts, batch.value, batch.quality
    else:
        present = np.zeros(n, dtype=bool)
        present[batch.idx] = True
        ts = np.full(n, NONE, dtype=np.int64)
        ts[batch.idx] = batch.ts
        val = np.full(n, np.nan)
        val[batch.idx] = batch.value
        q = np.zeros(n, dtype=np.int8)
        q[batch.idx] = batch.quality
    late = present & (ts <= st.last_ts)
    if late.any():
        st.counters["late"] += int(late.sum())
        present &= ~late
    changed = ~(np.abs(val - st.ref_val) <= s.stuck_tolerance * m.span)
    ref_ts = np.where(changed, ts, st.ref_ts)
    with np.errstate(invalid="ignore"):
        clean = present & ~(
            (q >= 2)
            | ~(val >= m.lo_ok)
            | ~(val <= m.hi_ok)
            | (np.abs(val - st.last_val) > m.spike_step)
            | (m.stuck_check & (ts - ref_ts >= round(s.stuck_after_s * 1e6)))
            | st.bad
            | st.oor
            | st.stuck
            | st.stale
            | st.susp
            | (st.bad_first != NONE)
        )
        idle = (val >= m.quiet_lo) & (val < m.quiet_hi) & ~st.active[:4].any(axis=0)
        idle &= ~(st.pend[:4] != NONE).any(axis=0)
    quiet = clean & idle
    # a standing alarm whose reading keeps every limit where it is is quiet too
    cand = np.flatnonzero(clean & ~idle)
    if cand.size:
        quiet[cand[_steady(st, cand, val[cand])]] = True
    busy = ~quiet
    nq = int(np.count_nonzero(quiet))
    st.counters["evaluated"] += nq
    if nq:
        np.copyto(st.last_ts, ts, where=quiet)
        upd = quiet & changed
        np.copyto(st.ref_val, val, where=upd)
        np.copyto(st.ref_ts, ts, where=upd)
        np.copyto(st.bad_first, NONE, where=quiet)
        np.copyto(st.last_val, val, where=quiet)
        k = s.spike_samples
        rows = np.flatnonzero(quiet)
        st.ring.reshape(-1)[rows * k + st.ring_pos[rows]] = val[rows]
        st.ring_pos += quiet
        st.ring_pos[st.ring_pos >= k] = 0
        np.minimum(st.ring_n + quiet, k, out=st.ring_n, casting="unsafe")
        _dense_buckets(st, quiet, ts, val, out, fired)
    rest = np.flatnonzero(present & busy)
    if rest.size:
        _round(st, rest, ts[rest], val[rest], q[rest], out, fired)


def _steady(st: RulesState, idx: I64, val: F64) -> B:
    """Readings that change no limit state: each limit judged from its state equals it, none pending."""
    lim = st.model.limits[:, idx]
    db = st.model.deadband[idx]
    act = st.active[:4, idx]
    with np.errstate(invalid="ignore"):
        raw = np.stack(
            [
                np.where(act[0], val >= lim[0] - db, val >= lim[0]),
                np.where(act[1], val >= lim[1] - db, val >= lim[1]),
                np.where(act[2], val <= lim[2] + db, val <= lim[2]),
                np.where(act[3], val <= lim[3] + db, val <= lim[3]),
            ]
        )
    steady: B = (raw == act).all(axis=0) & (st.pend[:4, idx] == NONE).all(axis=0)
    return steady


def _dense_buckets(
    st: RulesState, quiet: B, ts: I64, val: F64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    bucket_us = round(st.settings.bucket_s * 1e6)
    b = (ts + st.phase_us) // bucket_us
    new = quiet & (b != st.cur_b)
    ci = np.flatnonzero(new & (st.cur_n > 0))
    if ci.size:
        cb = st.cur_b[ci]
        nslots = st.bmean.shape[1]
        slot = cb % nslots
        st.bmean[ci, slot] = st.cur_sum[ci] / st.cur_n[ci]
        st.bid[ci, slot] = cb.astype(np.int32)
        _closed(st, ci, cb, ts[ci], out, fired)
    np.copyto(st.cur_b, b, where=new)
    np.copyto(st.cur_sum, 0.0, where=new)
    np.copyto(st.cur_n, 0, where=new)
    np.add(st.cur_sum, val, out=st.cur_sum, where=quiet)
    st.cur_n += quiet


def _single(st: RulesState, batch: Batch, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    """At most one reading per sensor (the usual batch): no sorting, quiet ones in one go."""
    idx, ts, val, q = batch.idx, batch.ts, batch.value, batch.quality
    late = ts <= st.last_ts[idx]
    if late.any():
        st.counters["late"] += int(late.sum())
        keep = ~late
        idx, ts, val, q = idx[keep], ts[keep], val[keep], q[keep]
    first = np.ones(idx.size, dtype=bool)
    ref_val, ref_ts = st.ref_val[idx], st.ref_ts[idx]
    changed = ~(np.abs(val - ref_val) <= st.settings.stuck_tolerance * st.model.span[idx])
    ref_val = np.where(changed, val, ref_val)
    ref_ts = np.where(changed, ts, ref_ts)
    quiet = _quiet(st, idx, ts, val, q, first, ref_ts)
    if quiet.all():
        qi, qt, qv = idx, ts, val
        rest = None
    else:
        qi, qt, qv = idx[quiet], ts[quiet], val[quiet]
        rest = ~quiet
        ref_val, ref_ts = ref_val[quiet], ref_ts[quiet]
    st.counters["evaluated"] += int(qi.size)
    st.last_ts[qi] = qt
    st.ref_val[qi] = ref_val
    st.ref_ts[qi] = ref_ts
    st.bad_first[qi] = NONE
    _accept(st, qi, qt, qv, out, fired)
    if rest is not None:
        _round(st, idx[rest], ts[rest], val[rest], q[rest], out, fired)


def _quiet(st: RulesState, idx: I64, ts: I64, val: F64, q: NDArray[np.int8], first: B, ref_ts: I64) -> B:
    """Readings of sensors for which this batch can change nothing but the windows."""
    m, s = st.model, st.settings
    prev = st.last_val[idx] if first.all() else np.where(first, st.last_val[idx], np.r_[np.nan, val[:-1]])
    with np.errstate(invalid="ignore"):
        busy = (
            (q >= 2)
            | ~(val >= m.lo_ok[idx])  # NaN or below the range
            | ~(val <= m.hi_ok[idx])
            | (np.abs(val - prev) > m.spike_step[idx])
            | st.bad[idx]
            | st.oor[idx]
            | st.stuck[idx]
            | st.stale[idx]
            | st.susp[idx]
            | (st.bad_first[idx] != NONE)
        )
        limits = ~((val >= m.quiet_lo[idx]) & (val < m.quiet_hi[idx]))
    stuck_due = ts - ref_ts >= round(s.stuck_after_s * 1e6)
    if stuck_due.any():
        busy |= m.stuck_check[idx] & stuck_due
    limits |= st.active[:4, idx].any(axis=0) | (st.pend[:4, idx] != NONE).any(axis=0)
    cand = np.flatnonzero(limits & ~busy)
    if cand.size:
        # a standing alarm whose readings keep every limit where it is stays quiet
        limits[cand[_steady(st, idx[cand], val[cand])]] = False
    busy |= limits
    sensor_busy = busy
    if busy.any() and not first.all():
        # a sensor is busy when any of its readings is
        grp = np.cumsum(first) - 1
        any_busy = np.zeros(int(grp[-1]) + 1, dtype=bool)
        any_busy[grp[busy]] = True
        sensor_busy = any_busy[grp]
    quiet: B = ~sensor_busy
    return quiet


def _stuck_refs(st: RulesState, idx: I64, ts: I64, val: F64, first: B) -> tuple[F64, I64]:
    """For readings sorted by sensor and time: value and time of the last change at each reading."""
    tol = st.settings.stuck_tolerance * st.model.span[idx]
    prev = np.where(first, st.ref_val[idx], np.r_[np.nan, val[:-1]])
    changed = ~(np.abs(val - prev) <= tol)
    at = np.maximum.accumulate(np.where(changed | first, np.arange(idx.size), -1))
    use_new = changed[at]
    ref_val = np.where(use_new, val[at], st.ref_val[idx[at]])
    ref_ts = np.where(use_new, ts[at], st.ref_ts[idx[at]])
    return ref_val, ref_ts


def _bulk(
    st: RulesState, idx: I64, ts: I64, val: F64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    """Quiet path: windows, stuck reference and bucket closes for all readings at once."""
    n = idx.size
    first = np.r_[True, idx[1:] != idx[:-1]]
    last = np.r_[idx[1:] != idx[:-1], True]
    li, lt, lv = idx[last], ts[last], val[last]
    st.counters["evaluated"] += n
    st.last_ts[li] = lt
    st.last_val[li] = lv
    ref_val, ref_ts = _stuck_refs(st, idx, ts, val, first)
    st.ref_val[li] = ref_val[last]
    st.ref_ts[li] = ref_ts[last]
    st.bad_first[li] = NONE
    _bulk_ring(st, idx, val, first)
    _bulk_buckets(st, idx, ts, val, first, out, fired)


def _bulk_ring(st: RulesState, idx: I64, val: F64, first: B) -> None:
    """The last K readings of each sensor into its spike ring."""
    s = st.settings
    n = idx.size
    k = s.spike_samples
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    cnt = np.repeat(counts, counts)
    w = rank >= cnt - k
    wi = idx[w]
    pos0 = np.repeat(st.ring_pos[idx[starts]].astype(np.int64), counts)[w]
    st.ring[wi, (pos0 + rank[w]) % k] = val[w]
    gi = idx[starts]
    st.ring_pos[gi] = ((st.ring_pos[gi] + counts) % k).astype(np.int32)
    st.ring_n[gi] = np.minimum(st.ring_n[gi] + counts, k).astype(np.int32)


def _bulk_buckets(
    st: RulesState, idx: I64, ts: I64, val: F64, first: B, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    s = st.settings
    n = idx.size
    # buckets: segments of equal bucket number within each sensor
    bucket_us = round(s.bucket_s * 1e6)
    b = (ts + st.phase_us[idx]) // bucket_us
    seg = first | (b != np.r_[NONE, b[:-1]])
    seg_pos = np.flatnonzero(seg)
    seg_sum = np.add.reduceat(val, seg_pos)
    seg_n = np.diff(np.r_[seg_pos, n])
    seg_i, seg_b, seg_t = idx[seg_pos], b[seg_pos], ts[seg_pos]
    seg_first = first[seg_pos]
    seg_last = np.r_[seg_first[1:], True]
    carry = seg_first & (seg_b == st.cur_b[seg_i])
    seg_sum = seg_sum + np.where(carry, st.cur_sum[seg_i], 0.0)
    seg_n = seg_n + np.where(carry, st.cur_n[seg_i], 0)
    # closes: the carried-over bucket when a sensor's first segment starts a new one,
    # and every segment but the last of each sensor (closed by the next one's first reading)
    old = seg_first & ~carry & (st.cur_n[seg_i] > 0)
    oi = seg_i[old]
    c_i = [oi, seg_i[~seg_last]]
    c_b = [st.cur_b[oi], seg_b[~seg_last]]
    c_mean = [st.cur_sum[oi] / st.cur_n[oi], seg_sum[~seg_last] / seg_n[~seg_last]]
    c_t = [seg_t[old], np.r_[seg_t[1:], NONE][~seg_last]]
    # the last segment of each sensor is its open bucket
    st.cur_b[seg_i[seg_last]] = seg_b[seg_last]
    st.cur_sum[seg_i[seg_last]] = seg_sum[seg_last]
    st.cur_n[seg_i[seg_last]] = seg_n[seg_last].astype(np.int32)
    ci, cb = np.concatenate(c_i), np.concatenate(c_b)
    if ci.size == 0:
        return
    _bulk_closes(st, ci, cb, np.concatenate(c_mean), np.concatenate(c_t), out, fired)


def _bulk_closes(
    st: RulesState, ci: I64, cb: I64, cm: F64, ct: I64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    """Closes found by the quiet path (several per sensor possible), in time order."""
    order = np.lexsort((ct, ci))
    ci, cb, cm, ct = ci[order], cb[order], cm[order], ct[order]
    cfirst = np.r_[True, ci[1:] != ci[:-1]]
    cstarts = np.flatnonzero(cfirst)
    crank = np.arange(ci.size) - np.repeat(cstarts, np.diff(np.r_[cstarts, ci.size]))
    nslots = st.bmean.shape[1]
    # one trend fit for every predictive close of the batch: the window of close j
    # is the ring as it was, overlaid with this batch's closes up to j
    pm = st.model.predict[ci]
    y: F64 | None = None
    age: F64 | None = None
    pos = np.flatnonzero(pm)
    if pos.size:
        y, age = _batch_windows(st, ci, cb, cm, crank, pos)
    # rate of change of every close at once: the bucket k before is one of this
    # batch's closes or in the ring as it was
    rate, ok = _batch_rates(st, ci, cb, cm)
    has = ~np.isnan(st.model.rate_rise[ci]) | ~np.isnan(st.model.rate_fall[ci])
    rise, fall = st.model.rate_rise[ci], st.model.rate_fall[ci]
    with np.errstate(invalid="ignore"):
        could = ok & ((rate > rise) | (-rate > fall))
    counts = np.diff(np.r_[cstarts, ci.size])
    engaged = st.active[RATE, ci[cstarts]] | (st.pend[RATE, ci[cstarts]] != NONE)
    engaged |= np.logical_or.reduceat(could, cstarts)
    rate_ev = has & np.repeat(engaged, counts)  # sensors whose rate state may change: in order
    last_ev = np.r_[cstarts[1:] - 1, ci.size - 1]
    st.rate_val[ci[last_ev]] = rate[last_ev]
    pred_ev = np.zeros(ci.size, dtype=bool)
    if y is not None and age is not None:
        need = _screen(st, ci[pos], *_ends_of(y, age))
        any_need = np.zeros(ci.size, dtype=bool)
        any_need[pos[need]] = True
        pred_ev[pos] = np.repeat(np.logical_or.reduceat(any_need, cstarts), counts)[pos]
    busy = rate_ev | pred_ev
    if busy.any():
        ranks = crank[busy]
        for r in range(int(ranks.max()) + 1):
            sel = np.flatnonzero(busy & (crank == r))
            rs = sel[rate_ev[sel]]
            if rs.size:
                _rate_step(st, ci[rs], ct[rs], rate[rs], ok[rs], out, fired)
            ps = sel[pred_ev[sel]]
            if ps.size and y is not None and age is not None:
                k = np.searchsorted(pos, ps)
                _predict(st, ci[ps], cb[ps], ct[ps], out, (y[k], age[k]))
    # the ring: the last S closes of each sensor (older ones would be overwritten)
    w = crank >= np.repeat(counts, counts) - nslots
    st.bmean[ci[w], cb[w] % nslots] = cm[w]
    st.bid[ci[w], cb[w] % nslots] = cb[w].astype(np.int32)


def _batch_windows(st: RulesState, ci: I64, cb: I64, cm: F64, crank: I64, pos: I64) -> tuple[F64, F64]:
    """Trend windows of closes ``pos``: the ring as it was, overlaid with this batch's closes up to each."""
    nslots = st.bmean.shape[1]
    y, age = _windows(st, ci[pos], cb[pos])
    y[age <= 0] = np.nan  # buckets at or after this batch's first close: from the closes
    prank = crank[pos]
    for d in range(int(prank.max()) + 1):
        e = np.flatnonzero(prank >= d)
        src = pos[e] - d  # the close d before, same sensor (ranks are consecutive)
        ago = cb[pos[e]] - cb[src]
        ok = ago < nslots
        slot = cb[src] % nslots
        y[e[ok], slot[ok]] = cm[src[ok]]
        age[e[ok], slot[ok]] = ago[ok]
    return y, age


def _batch_rates(st: RulesState, ci: I64, cb: I64, cm: F64) -> tuple[F64, B]:
    """Rates (per minute) of closes sorted by sensor and time, before they are written to the ring."""
    s = st.settings
    k = max(1, round(s.rate_window_s / s.bucket_s))
    nslots = st.bmean.shape[1]
    keys = (ci << 32) + cb
    prev_b = cb - k
    j = np.minimum(np.searchsorted(keys, keys - k), ci.size - 1)
    in_batch = keys[j] == keys - k
    slot = prev_b % nslots
    in_ring = st.bid[ci, slot] == prev_b.astype(np.int32)
    prev = np.where(in_batch, cm[j], np.where(in_ring, st.bmean[ci, slot], np.nan))
    ok = in_batch | in_ring
    rate = np.where(ok, (cm - prev) / (k * s.bucket_s / 60.0), np.nan)
    return rate, ok


def _stale_changes(st: RulesState, batch: Batch, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    for j in range(batch.stale_idx.size):
        i, flag, t = int(batch.stale_idx[j]), bool(batch.stale_flag[j]), int(batch.stale_ts[j])
        st.stale_own[i] = False
        if st.stale[i] != flag:
            st.stale[i] = flag
            st.reasons[i] = batch.stale_reason[j] if j < len(batch.stale_reason) else ""
            out.add(STALE, np.array([i]), np.array([t]), np.array([flag]), np.array([st.last_val[i]]))
            if flag:
                _due(st, np.array([i]), np.array([t]), out, fired)
                st.pend[:, i] = NONE


def _round(
    st: RulesState,
    idx: I64,
    ts: I64,
    val: F64,
    q: NDArray[np.int8],
    out: Transitions,
    fired: list[tuple[int, I64, I64]],
) -> None:
    """One reading per sensor (rows unique)."""
    m, s = st.model, st.settings
    _expire(st, idx, ts, out)
    _due(st, idx, ts, out, fired)
    st.last_ts[idx] = ts
    own = st.stale_own[idx]
    if own.any():
        oi = idx[own]
        st.stale[oi] = False
        st.stale_own[oi] = False
        out.add(STALE, oi, ts[own], np.zeros(oi.size, dtype=bool), val[own])

    # out of range is judged on every reading (a failure current usually comes with
    # bad quality: the more specific out-of-range is reported, not both)
    finite = np.isfinite(val)
    oor = finite & ((val < m.lo_ok[idx]) | (val > m.hi_ok[idx]))
    # a transmitter saturated above its range (NE 43: up to 20.5 mA) measures "at least
    # the top of the range": a real value (a gas cloud beyond the detector's range must
    # alarm), even when the link marks it bad
    saturated = finite & (val >= m.range_hi[idx]) & ~oor
    bad = ((q >= 2) | ~finite) & ~oor & ~saturated  # a Bad status without a value comes as NaN
    # a fault clears only after fault_off_delay_s of good readings (one finding for a
    # flickering fault); the good readings in between are used
    off = round(s.fault_off_delay_s * 1e6)
    st.oor_last[idx[oor]] = ts[oor]
    st.bad_last[idx[bad]] = ts[bad]
    _flip(st.oor, OOR, idx, oor | (st.oor[idx] & (ts - st.oor_last[idx] < off)), ts, val, out)
    # bad quality is confirmed by a second bad reading in a row (an isolated bad
    # reading, e.g. a spike dipping below the range, is dropped but not a fault);
    # the finding carries the time of the first
    first = st.bad_first[idx]
    confirmed = bad & (first != NONE)
    st.bad_first[idx] = np.where(bad, np.where(first == NONE, ts, first), NONE)
    raw_bad = confirmed | (st.bad[idx] & (ts - st.bad_last[idx] < off))
    _flip(st.bad, BAD, idx, raw_bad, np.where(confirmed, first, ts), val, out)
    good = ~bad & ~oor
    gi, gt, gv = idx[good], ts[good], val[good]

    # stuck: unchanged (within tolerance) since ref_ts
    ref = st.ref_val[gi]
    changed = ~(np.abs(gv - ref) <= s.stuck_tolerance * m.span[gi])
    st.ref_val[gi] = np.where(changed, gv, ref)
    st.ref_ts[gi] = np.where(changed, gt, st.ref_ts[gi])
    stuck_raw = m.stuck_check[gi] & (gt - st.ref_ts[gi] >= round(s.stuck_after_s * 1e6))
    _flip(st.stuck, STUCK, gi, stuck_raw, gt, gv, out)

    usable = ~st.stuck[gi] & ~st.stale[gi]
    ui, ut, uv = gi[usable], gt[usable], gv[usable]

    # sensors whose reading is not usable: no process evaluation, pending transitions dropped
    faulty = np.setdiff1d(idx, ui, assume_unique=True)
    if faulty.size:
        st.counters["faulty"] += int(faulty.size)
        st.pend[:, faulty] = NONE
        st.susp[faulty] = False

    keep, steps = _spikes(st, ui, ut, uv, out)
    if steps.size:  # a held reading was a real step: judge it at its own time first
        _limits(st, steps, st.susp_ts[steps], st.susp_val[steps], st.last_val[steps], out, fired)
        st.last_val[steps] = st.susp_val[steps]
    ei, et, ev = ui[keep], ut[keep], uv[keep]
    st.counters["evaluated"] += int(ei.size)
    _limits(st, ei, et, ev, st.last_val[ei], out, fired)

    _accept(st, ei, et, ev, out, fired)


def _accept(
    st: RulesState, ei: I64, et: I64, ev: F64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    """One judged reading per sensor ``ei`` goes into the windows (spike ring, buckets)."""
    k = st.settings.spike_samples
    st.last_val[ei] = ev
    pos = st.ring_pos[ei]
    st.ring[ei, pos] = ev
    st.ring_pos[ei] = (pos + 1) % k
    st.ring_n[ei] = np.minimum(st.ring_n[ei] + 1, k)
    _buckets(st, ei, et, ev, out, fired)


def _limits(
    st: RulesState, ei: I64, et: I64, ev: F64, held: F64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    lim = st.model.limits[:, ei]
    db = st.model.deadband[ei]
    for c in (HH, H):
        _step(st, c, ei, et, ev >= lim[c], ev >= lim[c] - db, ev, held, out, fired)
    for c in (L, LL):
        _step(st, c, ei, et, ev <= lim[c], ev <= lim[c] + db, ev, held, out, fired)


def _spikes(st: RulesState, ui: I64, ut: I64, uv: F64, out: Transitions) -> tuple[B, I64]:
    """Spike test.

    Returns:
        Which usable readings go on to evaluation, and the rows whose held
        reading turned out to be a real step (to be judged first, at its own time).
    """
    s, m = st.settings, st.model
    keep = np.ones(ui.size, dtype=bool)
    steps = EMPTY_I
    pend = st.susp[ui]
    if pend.any():
        j = ui[pend]
        dist = np.abs(uv[pend] - st.susp_med[j])
        back = (dist < 0.5 * np.abs(st.susp_val[j] - st.susp_med[j])) & (dist <= s.spike_z * st.susp_scale[j])
        st.susp[j] = False
        if back.any():
            bj, bt = j[back], ut[pend][back]
            st.spike_last[bj] = bt
            new = ~st.spike[bj]
            if new.any():
                st.spike[bj[new]] = True
                out.add(SPIKE, bj[new], bt[new], np.ones(int(new.sum()), dtype=bool), st.susp_val[bj[new]])
        steps = j[~back]
    cand = (
        ~pend
        & (st.ring_n[ui] >= s.spike_samples)
        & (np.abs(uv - st.last_val[ui]) > s.spike_min_step * m.span[ui])
    )
    if cand.any():
        ci = ui[cand]
        r = st.ring[ci].astype(np.float64)
        med = np.median(r, axis=1)
        mad = np.median(np.abs(r - med[:, None]), axis=1)
        scale = np.maximum(1.4826 * mad, 1e-3 * m.span[ci])
        z = np.abs(uv[cand] - med) / scale
        sus = z > s.spike_z
        if sus.any():
            si = ci[sus]
            st.susp[si] = True
            st.susp_med[si] = med[sus]
            st.susp_scale[si] = scale[sus]
            st.susp_val[si] = uv[cand][sus]
            st.susp_ts[si] = ut[cand][sus]
            st.counters["spikes_held"] += int(sus.sum())
            keep[np.flatnonzero(cand)[sus]] = False
    return keep, steps


def _buckets(
    st: RulesState, ei: I64, et: I64, ev: F64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    s = st.settings
    bucket_us = round(s.bucket_s * 1e6)
    b = (et + st.phase_us[ei]) // bucket_us
    cur = st.cur_b[ei]
    new = b != cur
    closing = new & (st.cur_n[ei] > 0)
    if closing.any():
        ci, cb = ei[closing], cur[closing]
        nslots = st.bmean.shape[1]
        slot = cb % nslots
        st.bmean[ci, slot] = st.cur_sum[ci] / st.cur_n[ci]
        st.bid[ci, slot] = cb.astype(np.int32)
        _closed(st, ci, cb, et[closing], out, fired)
    if new.any():
        ni = ei[new]
        st.cur_b[ni] = b[new]
        st.cur_sum[ni] = 0.0
        st.cur_n[ni] = 0
    st.cur_sum[ei] += ev
    st.cur_n[ei] += 1


def _closed(
    st: RulesState, ci: I64, cb: I64, t: I64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    """Bucket ``cb`` of sensors ``ci`` closed at ``t``: rate of change and trend."""
    _rate(st, ci, cb, t, out, fired)
    pm = st.model.predict[ci]
    if pm.any():
        _predict(st, ci[pm], cb[pm], t[pm], out)


def _rate(
    st: RulesState, ci: I64, cb: I64, t: I64, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    m, s = st.model, st.settings
    has = ~np.isnan(m.rate_rise[ci]) | ~np.isnan(m.rate_fall[ci])
    if not has.any():
        return
    ci, cb, t = ci[has], cb[has], t[has]
    k = max(1, round(s.rate_window_s / s.bucket_s))
    nslots = st.bmean.shape[1]
    prev_b = cb - k
    slot_now, slot_prev = cb % nslots, prev_b % nslots
    ok = st.bid[ci, slot_prev] == prev_b.astype(np.int32)
    rate = (st.bmean[ci, slot_now].astype(np.float64) - st.bmean[ci, slot_prev]) / (k * s.bucket_s / 60.0)
    _rate_step(st, ci, t, np.where(ok, rate, np.nan), ok, out, fired)


def _rate_step(
    st: RulesState, ci: I64, t: I64, rate: F64, ok: B, out: Transitions, fired: list[tuple[int, I64, I64]]
) -> None:
    m, s = st.model, st.settings
    held = st.rate_val[ci]
    st.rate_val[ci] = rate
    rise, fall = m.rate_rise[ci], m.rate_fall[ci]
    act = st.active[RATE, ci]
    cf = s.rate_clear_fraction
    with np.errstate(invalid="ignore"):
        raw_off = np.where(ok, (rate > rise) | (-rate > fall), act)
        raw_on = np.where(ok, (rate > cf * rise) | (-rate > cf * fall), act)
    _step(st, RATE, ci, t, raw_off, raw_on, rate, held, out, fired)


def _windows(st: RulesState, ci: I64, cb: I64) -> tuple[F64, F64]:
    """Trend windows ending with bucket ``cb`` of sensors ``ci``, in ring-slot order.

    Returns:
        Bucket means (NaN: empty or outside the window) and their age in buckets
        before ``cb``. Slot order needs no reordering (see `robust_trend`).
    """
    nslots = st.bmean.shape[1]
    y = st.bmean[ci].astype(np.float64)
    age = (cb[:, None] - st.bid[ci]).astype(np.float64)
    y[(age < 0) | (age >= nslots)] = np.nan
    return y, age


def _ends(st: RulesState, ci: I64, cb: I64) -> tuple[F64, F64]:
    """Mean of the oldest and of the newest few buckets of each window (NaN if a bucket is missing)."""
    nslots = st.bmean.shape[1]
    q = _ends_width(nslots)
    ids = cb[:, None] - np.r_[np.arange(nslots - q, nslots), np.arange(q)][None, :]
    flat = ci[:, None] * nslots + ids % nslots
    v = st.bmean.reshape(-1).take(flat).astype(np.float64)
    v[st.bid.reshape(-1).take(flat) != ids] = np.nan
    return v[:, :q].mean(axis=1), v[:, q:].mean(axis=1)


def _ends_width(nslots: int) -> int:
    """Buckets averaged at each end of the window for the crude slope of `_screen`."""
    return max(1, nslots // 20)


def _ends_of(y: F64, age: F64) -> tuple[F64, F64]:
    nb = y.shape[1]
    q = _ends_width(nb)
    a = np.where(age >= nb - q, y, 0.0).sum(axis=1) / q
    b = np.where(age < q, y, 0.0).sum(axis=1) / q
    return a, np.where(np.isnan(y).any(axis=1), np.nan, b)


def _screen(st: RulesState, ci: I64, a: F64, b: F64) -> B:
    """Rows worth a robust fit; the others cannot predict anything.

    Worth it: predictions active or pending, windows with gaps (NaN ends), and
    windows whose crude end-to-end slope (mean of the newest few buckets minus
    mean of the oldest few) would reach HH / LL within three horizons.
    """
    s, m = st.settings, st.model
    nb = st.bmean.shape[1]
    q = _ends_width(nb)
    slope = (b - a) / (nb - q)  # per bucket
    far = 3.0 * s.horizon_s / s.bucket_s
    with np.errstate(invalid="ignore"):
        near_hh = (slope > 0) & (m.limits[0, ci] - b <= slope * far)
        near_ll = (slope < 0) & (m.limits[3, ci] - b >= slope * far)
    engaged = (
        st.active[PHH, ci] | st.active[PLL, ci] | (st.pend[PHH, ci] != NONE) | (st.pend[PLL, ci] != NONE)
    )
    need: B = ~np.isfinite(slope) | near_hh | near_ll | engaged
    return need


def _predict(
    st: RulesState, ci: I64, cb: I64, t: I64, out: Transitions, win: tuple[F64, F64] | None = None
) -> None:
    """Trend prediction of HH / LL for sensors ``ci`` whose bucket ``cb`` closed at ``t``."""
    s, m = st.settings, st.model
    nslots = st.bmean.shape[1]
    bucket_us = round(s.bucket_s * 1e6)
    if win is None:
        need = _screen(st, ci, *_ends(st, ci, cb))
        ci, cb, t = ci[need], cb[need], t[need]
        if ci.size == 0:
            return
        y, age = _windows(st, ci, cb)
    else:
        y, age = win
        need = _screen(st, ci, *_ends_of(y, age))
        if not need.all():
            ci, cb, t, y, age = ci[need], cb[need], t[need], y[need], age[need]
            if ci.size == 0:
                return
    fit = robust_trend(y, age)
    enough = fit.pairs >= s.min_fill * (nslots // 2)
    per_us = fit.slope / bucket_us
    t_ref = (cb * bucket_us + bucket_us // 2) - st.phase_us[ci]  # middle of the newest bucket
    held = st.pred_level[ci]
    st.pred_level[ci] = fit.level
    st.pred_slope[ci] = fit.slope * 60e6 / bucket_us
    horizon = s.horizon_s * 1e6
    trend = (fit.consistency >= s.consistency) & (fit.ratio >= s.fit_ratio)
    for row, c, lim_row, sign in ((0, PHH, 0, 1.0), (1, PLL, 3, -1.0)):
        lim = m.limits[lim_row, ci]
        gap = lim - fit.level
        with np.errstate(divide="ignore", invalid="ignore"):
            eta_at = t_ref + gap / per_us
        eta = eta_at - t
        moving = (sign * per_us > 0) & (sign * gap > 0) & np.isfinite(eta)
        already = st.active[HH if c == PHH else LL, ci]
        raw_off = enough & moving & trend & (eta <= horizon) & ~already
        raw_on = enough & moving & (eta <= 1.25 * horizon) & ~already
        finite = np.isfinite(eta_at) & (np.abs(eta_at) < 4e18)
        st.pred_at[row, ci] = np.where(finite, np.where(finite, eta_at, 0.0).astype(np.int64), NONE)
        _step(st, c, ci, t, raw_off, raw_on, fit.level, held, out)


def _expire(st: RulesState, idx: I64, t: I64, out: Transitions) -> None:
    """Time-based clears due before readings at ``t`` (as `_timed` would have found them at a tick)."""
    s = st.settings
    off = round(s.fault_off_delay_s * 1e6)
    hold = round(s.spike_hold_s * 1e6)
    for flags, last, code, lim in (
        (st.oor, st.oor_last, OOR, off),
        (st.bad, st.bad_last, BAD, off),
        (st.spike, st.spike_last, SPIKE, hold),
    ):
        li = last[idx]
        due = flags[idx] & (li + lim <= t)
        if code != SPIKE:
            due &= st.last_ts[idx] > li
        if due.any():
            di = idx[due]
            flags[di] = False
            out.add(code, di, li[due] + lim, np.zeros(di.size, dtype=bool), st.last_val[di])
    cu = st.chat_until[idx]
    due = st.chat[idx] & (cu <= t)
    if due.any():
        di = idx[due]
        st.chat[di] = False
        out.add(CHAT, di, cu[due], np.zeros(di.size, dtype=bool), st.last_val[di])


def _timed(st: RulesState, now: int, out: Transitions, fired: list[tuple[int, I64, I64]]) -> None:
    s, m = st.settings, st.model
    off = round(s.fault_off_delay_s * 1e6)
    for flags, last, code in ((st.oor, st.oor_last, OOR), (st.bad, st.bad_last, BAD)):
        # cleared by time only when a good reading came after the last faulty one
        done = np.flatnonzero(flags & (last + off <= now) & (st.last_ts > last))
        if done.size:
            flags[done] = False
            out.add(code, done, last[done] + off, np.zeros(done.size, dtype=bool), st.last_val[done])
    hold = round(s.spike_hold_s * 1e6)
    sp = np.flatnonzero(st.spike & (st.spike_last + hold <= now))
    if sp.size:
        st.spike[sp] = False
        out.add(SPIKE, sp, st.spike_last[sp] + hold, np.zeros(sp.size, dtype=bool), st.last_val[sp])
    ch = np.flatnonzero(st.chat & (st.chat_until <= now))
    if ch.size:
        st.chat[ch] = False
        out.add(CHAT, ch, st.chat_until[ch], np.zeros(ch.size, dtype=bool), st.last_val[ch])
    if s.stale_factor is not None:
        limit = st.last_ts + np.round(s.stale_factor * m.period_us).astype(np.int64)
        silent = np.flatnonzero(~st.stale & (st.last_ts != NONE) & (limit <= now))
        if silent.size:
            _due(st, silent, limit[silent], out, fired)
            st.stale[silent] = True
            st.stale_own[silent] = True
            st.pend[:, silent] = NONE
            for i in silent.tolist():
                st.reasons[i] = f"no reading for {s.stale_factor:g} x {m.period_us[i] / 1e6:g} s"
            out.add(STALE, silent, limit[silent], np.ones(silent.size, dtype=bool), st.last_val[silent])


def _superseded(st: RulesState, now: int, out: Transitions) -> None:
    """A prediction clears (at once) when the limit it predicted is reached."""
    for c, lim in ((PHH, HH), (PLL, LL)):
        done = np.flatnonzero(st.active[c] & st.active[lim])
        if done.size:
            st.active[c, done] = False
            st.pend[c, done] = NONE
            out.add(
                c,
                done,
                np.full(done.size, now, dtype=np.int64),
                np.zeros(done.size, dtype=bool),
                st.last_val[done],
            )


def _chattering(st: RulesState, fired: list[tuple[int, I64, I64]], out: Transitions) -> None:
    """N activations of one condition within the window: chattering, until a window passes without any."""
    s = st.settings
    count, window = s.chattering_count, round(s.chattering_window_s * 1e6)
    for c, idx, t in fired:
        if c >= CHAT_ROWS or idx.size == 0:
            continue
        pos = st.chat_pos[c, idx].astype(np.int64)
        st.chat_t[c, idx, pos] = t
        nxt = (pos + 1) % count
        st.chat_pos[c, idx] = nxt
        oldest = st.chat_t[c, idx, nxt]
        hit = (oldest != NONE) & (t - oldest <= window)
        ext = hit | st.chat[idx]
        st.chat_until[idx[ext]] = np.maximum(st.chat_until[idx[ext]], t[ext] + window)
        new = hit & ~st.chat[idx]
        if new.any():
            ni = idx[new]
            st.chat[ni] = True
            out.add(CHAT, ni, t[new], np.ones(ni.size, dtype=bool), st.last_val[ni])


def _votes(st: RulesState, now: int, out: Transitions) -> None:
    g = st.model.groups
    mem = g.members
    up = (st.active[H, mem] | st.active[HH, mem]) & ~(st.bad | st.oor | st.stuck | st.stale)[mem]
    counts = np.add.reduceat(up.astype(np.int64), g.start[:-1]) if mem.size else np.zeros(0, np.int64)
    counts = np.where(g.n > 0, counts, 0)
    conf = counts >= g.k
    unconf = (counts >= 1) & ~conf
    changed = np.flatnonzero((st.vote[0] != conf) | (st.vote[1] != unconf))
    if changed.size == 0:
        return
    # a vote changes when the last of its members' transitions in this call happened
    last: dict[int, int] = {}
    for code, idx, ts, _act, _val in out.items:
        if code in (HH, H, BAD, OOR, STUCK, STALE):
            for i, t in zip(idx.tolist(), ts.tolist(), strict=True):
                last[i] = max(last.get(i, t), t)
    for gi in changed.tolist():
        members = mem[g.start[gi] : g.start[gi + 1]].tolist()
        t = max((last[i] for i in members if i in last), default=now)
        for row, new in ((0, conf), (1, unconf)):
            if st.vote[row, gi] != new[gi]:
                out.votes.append((gi, t, row == 0, bool(new[gi]), int(counts[gi])))
    st.vote[0] = conf
    st.vote[1] = unconf
