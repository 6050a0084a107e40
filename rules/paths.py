# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""The ways a batch's readings take through the rule families, fastest first.

- quiet: a sensor for which nothing can happen in this batch (no fault, no
  alarm active or pending, every value clear of its limits or keeping each
  limit where it is, no jump, moving) only updates its windows. `quiet_mask`
  tells which; `accept_quiet_runs` takes many readings per sensor at once and
  `accept_dense` / `accept_single` one reading per sensor.
- rounds: the others are judged one reading per sensor at a time
  (`judge_round`), through every rule family in the order a reading meets them:
  time-based clears, delayed transitions due before it, out of range and bad
  quality, stuck, the spike test, the limits, then the windows (rate and trend
  when a bucket closes).

The engine (`hazmon.rules.engine`) chooses the path per batch; every path gives
the same findings and state (tests/rules/test_engine.py checks it).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hazmon.rules import buckets, chattering, faults, spikes
from hazmon.rules.delays import Activations, fire_due_before
from hazmon.rules.limits import N_LIMITS, judge_limits, steady
from hazmon.rules.state import F64, I64, NONE, B, Batch, RulesState, Transitions

__all__ = ["accept_dense", "accept_quiet_runs", "accept_single", "judge_round", "quiet_mask"]

Quality = NDArray[np.int8]


def accept_dense(st: RulesState, batch: Batch, out: Transitions, fired: Activations) -> None:
    """One reading for many sensors: whole-array operations instead of gathers.

    Same results as `accept_single` (tests/rules/test_engine.py checks it); the
    readings are scattered into arrays over all sensors with a ``present`` mask.
    """
    m, s = st.model, st.settings
    n = m.n
    if batch.idx.size == n and bool(np.all(batch.idx[1:] > batch.idx[:-1])):
        present = np.ones(n, dtype=bool)  # every sensor, in row order: no scatter
        ts, vals, quality = batch.ts, batch.value, batch.quality
    else:
        present = np.zeros(n, dtype=bool)
        present[batch.idx] = True
        ts = np.full(n, NONE, dtype=np.int64)
        ts[batch.idx] = batch.ts
        vals = np.full(n, np.nan)
        vals[batch.idx] = batch.value
        quality = np.zeros(n, dtype=np.int8)
        quality[batch.idx] = batch.quality
    late = present & (ts <= st.last_ts)
    if late.any():
        st.counters["late"] += int(late.sum())
        present &= ~late
    changed = ~(np.abs(vals - st.ref_val) <= s.stuck_tolerance * m.span)
    ref_ts = np.where(changed, ts, st.ref_ts)
    with np.errstate(invalid="ignore"):
        clean = present & ~(
            (quality >= 2)
            | ~(vals >= m.lo_ok)
            | ~(vals <= m.hi_ok)
            | (np.abs(vals - st.last_val) > m.spike_step)
            | (m.stuck_check & (ts - ref_ts >= round(s.stuck_after_s * 1e6)))
            | st.bad
            | st.oor
            | st.stuck
            | st.stale
            | st.susp
            | (st.bad_first != NONE)
        )
        idle = (vals >= m.quiet_lo) & (vals < m.quiet_hi) & ~st.active[:N_LIMITS].any(axis=0)
        idle &= ~(st.pend[:N_LIMITS] != NONE).any(axis=0)
    quiet = clean & idle
    # a standing alarm whose reading keeps every limit where it is is quiet too
    standing = np.flatnonzero(clean & ~idle)
    if standing.size:
        quiet[standing[steady(st, standing, vals[standing])]] = True
    n_quiet = int(np.count_nonzero(quiet))
    st.counters["evaluated"] += n_quiet
    if n_quiet:
        np.copyto(st.last_ts, ts, where=quiet)
        moved = quiet & changed
        np.copyto(st.ref_val, vals, where=moved)
        np.copyto(st.ref_ts, ts, where=moved)
        np.copyto(st.bad_first, NONE, where=quiet)
        np.copyto(st.last_val, vals, where=quiet)
        spikes.push_ring_where(st, quiet, vals)
        buckets.add_where(st, quiet, ts, vals, out, fired)
    rest = np.flatnonzero(present & ~quiet)
    if rest.size:
        judge_round(st, rest, ts[rest], vals[rest], quality[rest], out, fired)


def accept_single(st: RulesState, batch: Batch, out: Transitions, fired: Activations) -> None:
    """At most one reading per sensor (the usual batch): no sorting, quiet ones in one go."""
    rows, ts, vals, quality = batch.idx, batch.ts, batch.value, batch.quality
    late = ts <= st.last_ts[rows]
    if late.any():
        st.counters["late"] += int(late.sum())
        keep = ~late
        rows, ts, vals, quality = rows[keep], ts[keep], vals[keep], quality[keep]
    first = np.ones(rows.size, dtype=bool)
    ref_val, ref_ts = st.ref_val[rows], st.ref_ts[rows]
    changed = ~(np.abs(vals - ref_val) <= st.settings.stuck_tolerance * st.model.span[rows])
    ref_val = np.where(changed, vals, ref_val)
    ref_ts = np.where(changed, ts, ref_ts)
    quiet = quiet_mask(st, rows, ts, vals, quality, first, ref_ts)
    if quiet.all():
        quiet_rows, quiet_ts, quiet_vals = rows, ts, vals
        rest = None
    else:
        quiet_rows, quiet_ts, quiet_vals = rows[quiet], ts[quiet], vals[quiet]
        rest = ~quiet
        ref_val, ref_ts = ref_val[quiet], ref_ts[quiet]
    st.counters["evaluated"] += int(quiet_rows.size)
    st.last_ts[quiet_rows] = quiet_ts
    st.ref_val[quiet_rows] = ref_val
    st.ref_ts[quiet_rows] = ref_ts
    st.bad_first[quiet_rows] = NONE
    accept(st, quiet_rows, quiet_ts, quiet_vals, out, fired)
    if rest is not None:
        judge_round(st, rows[rest], ts[rest], vals[rest], quality[rest], out, fired)


def quiet_mask(st: RulesState, rows: I64, ts: I64, vals: F64, quality: Quality, first: B, ref_ts: I64) -> B:
    """Readings of sensors for which this batch can change nothing but the windows.

    The readings are sorted by sensor and time (``first``: a sensor's first);
    ``ref_ts``: time of the last change at each reading (`faults.stuck_refs`).
    """
    m, s = st.model, st.settings
    prev = st.last_val[rows] if first.all() else np.where(first, st.last_val[rows], np.r_[np.nan, vals[:-1]])
    with np.errstate(invalid="ignore"):
        busy = (
            (quality >= 2)
            | ~(vals >= m.lo_ok[rows])  # NaN or below the range
            | ~(vals <= m.hi_ok[rows])
            | (np.abs(vals - prev) > m.spike_step[rows])
            | st.bad[rows]
            | st.oor[rows]
            | st.stuck[rows]
            | st.stale[rows]
            | st.susp[rows]
            | (st.bad_first[rows] != NONE)
        )
        near_limit = ~((vals >= m.quiet_lo[rows]) & (vals < m.quiet_hi[rows]))
    stuck_due = ts - ref_ts >= round(s.stuck_after_s * 1e6)
    if stuck_due.any():
        busy |= m.stuck_check[rows] & stuck_due
    near_limit |= st.active[:N_LIMITS, rows].any(axis=0) | (st.pend[:N_LIMITS, rows] != NONE).any(axis=0)
    standing = np.flatnonzero(near_limit & ~busy)
    if standing.size:
        # a standing alarm whose readings keep every limit where it is stays quiet
        near_limit[standing[steady(st, rows[standing], vals[standing])]] = False
    busy |= near_limit
    sensor_busy = busy
    if busy.any() and not first.all():
        # a sensor is busy when any of its readings is
        sensor = np.cumsum(first) - 1
        any_busy = np.zeros(int(sensor[-1]) + 1, dtype=bool)
        any_busy[sensor[busy]] = True
        sensor_busy = any_busy[sensor]
    quiet: B = ~sensor_busy
    return quiet


def accept_quiet_runs(
    st: RulesState, rows: I64, ts: I64, vals: F64, out: Transitions, fired: Activations
) -> None:
    """Quiet readings sorted by sensor and time: windows, stuck reference and bucket closes at once."""
    first = np.r_[True, rows[1:] != rows[:-1]]
    last = np.r_[rows[1:] != rows[:-1], True]
    last_rows = rows[last]
    st.counters["evaluated"] += rows.size
    st.last_ts[last_rows] = ts[last]
    st.last_val[last_rows] = vals[last]
    ref_val, ref_ts = faults.stuck_refs(st, rows, ts, vals, first)
    st.ref_val[last_rows] = ref_val[last]
    st.ref_ts[last_rows] = ref_ts[last]
    st.bad_first[last_rows] = NONE
    spikes.push_ring_runs(st, rows, vals, first)
    buckets.add_runs(st, rows, ts, vals, first, out, fired)


def judge_round(
    st: RulesState, rows: I64, ts: I64, vals: F64, quality: Quality, out: Transitions, fired: Activations
) -> None:
    """One reading per sensor (rows unique), through every rule family."""
    faults.clear_elapsed_before(st, rows, ts, out)
    chattering.end_elapsed_before(st, rows, ts, out)
    fire_due_before(st, rows, ts, out, fired)
    st.last_ts[rows] = ts
    faults.clear_own_stale(st, rows, ts, vals, out)

    good = faults.judge_signal(st, rows, ts, vals, quality, out)
    good_rows, good_ts, good_vals = rows[good], ts[good], vals[good]
    faults.judge_stuck(st, good_rows, good_ts, good_vals, out)

    usable = ~st.stuck[good_rows] & ~st.stale[good_rows]
    usable_rows, usable_ts, usable_vals = good_rows[usable], good_ts[usable], good_vals[usable]

    # sensors whose reading is not usable: no process evaluation, pending transitions dropped
    faulty = np.setdiff1d(rows, usable_rows, assume_unique=True)
    if faulty.size:
        st.counters["faulty"] += int(faulty.size)
        st.pend[:, faulty] = NONE
        st.susp[faulty] = False

    keep, steps = spikes.judge_spikes(st, usable_rows, usable_ts, usable_vals, out)
    if steps.size:  # a held reading was a real step: judge it at its own time first
        judge_limits(st, steps, st.susp_ts[steps], st.susp_val[steps], st.last_val[steps], out, fired)
        st.last_val[steps] = st.susp_val[steps]
    judged_rows, judged_ts, judged_vals = usable_rows[keep], usable_ts[keep], usable_vals[keep]
    st.counters["evaluated"] += int(judged_rows.size)
    judge_limits(st, judged_rows, judged_ts, judged_vals, st.last_val[judged_rows], out, fired)
    accept(st, judged_rows, judged_ts, judged_vals, out, fired)


def accept(st: RulesState, rows: I64, ts: I64, vals: F64, out: Transitions, fired: Activations) -> None:
    """One judged reading per sensor ``rows`` goes into the windows (spike ring, buckets)."""
    st.last_val[rows] = vals
    spikes.push_ring(st, rows, vals)
    buckets.add_readings(st, rows, ts, vals, out, fired)
