# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""Sensor health: out of range, bad quality, stuck, stale (spikes: `hazmon.rules.spikes`).

A fault is a flag per sensor with no delay of its own (`hazmon.rules.delays.flip`):

- out of range: outside the measuring range widened by the NAMUR NE 43 signal
  band. A value saturated just above the range is a real "at least the top of
  the range" and is judged even when the link marks it bad.
- bad quality: confirmed by a second bad reading in a row (an isolated one is
  dropped); the finding carries the time of the first. ``UNCERTAIN`` is used.
- out of range and bad quality clear after ``fault_off_delay_s`` of good
  readings (one finding for a flickering fault).
- stuck: unchanged (within ``stuck_tolerance`` of the span) for ``stuck_after_s``.
- stale: from the collector (`StaleChange`), or the rules' own ``stale_factor``
  (cleared by the next reading).

While a sensor is faulty its readings are not judged and its pending
transitions are dropped (the engine's paths see to that).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from hazmon.rules.delays import Activations, fire_due_before, flip
from hazmon.rules.state import (
    BAD,
    F64,
    I64,
    NONE,
    OOR,
    SPIKE,
    STALE,
    STUCK,
    B,
    Batch,
    RulesState,
    Transitions,
)

__all__ = [
    "apply_stale_changes",
    "clear_elapsed",
    "clear_elapsed_before",
    "clear_own_stale",
    "judge_signal",
    "judge_stuck",
    "raise_own_stale",
    "stuck_refs",
]


def apply_stale_changes(st: RulesState, batch: Batch, out: Transitions, fired: Activations) -> None:
    """The collector's stale changes of this batch; a sensor turning stale drops its pending transitions."""
    for j in range(batch.stale_idx.size):
        row, flag, t = int(batch.stale_idx[j]), bool(batch.stale_flag[j]), int(batch.stale_ts[j])
        st.stale_own[row] = False
        if st.stale[row] != flag:
            st.stale[row] = flag
            st.reasons[row] = batch.stale_reason[j] if j < len(batch.stale_reason) else ""
            out.add(STALE, np.array([row]), np.array([t]), np.array([flag]), np.array([st.last_val[row]]))
            if flag:
                fire_due_before(st, np.array([row]), np.array([t]), out, fired)
                st.pend[:, row] = NONE


def clear_own_stale(st: RulesState, rows: I64, ts: I64, vals: F64, out: Transitions) -> None:
    """A reading clears the staleness the rules raised themselves (``stale_factor``)."""
    own = st.stale_own[rows]
    if own.any():
        own_rows = rows[own]
        st.stale[own_rows] = False
        st.stale_own[own_rows] = False
        out.add(STALE, own_rows, ts[own], np.zeros(own_rows.size, dtype=bool), vals[own])


def judge_signal(
    st: RulesState, rows: I64, ts: I64, vals: F64, quality: NDArray[np.int8], out: Transitions
) -> B:
    """Out of range and bad quality of one reading per sensor ``rows``; returns the good readings."""
    m = st.model
    off_us = round(st.settings.fault_off_delay_s * 1e6)
    # out of range is judged on every reading (a failure current usually comes with
    # bad quality: the more specific out-of-range is reported, not both)
    finite = np.isfinite(vals)
    oor = finite & ((vals < m.lo_ok[rows]) | (vals > m.hi_ok[rows]))
    # a transmitter saturated above its range (NE 43: up to 20.5 mA) measures "at least
    # the top of the range": a real value (a gas cloud beyond the detector's range must
    # alarm), even when the link marks it bad
    saturated = finite & (vals >= m.range_hi[rows]) & ~oor
    bad = ((quality >= 2) | ~finite) & ~oor & ~saturated  # a Bad status without a value comes as NaN
    # a fault clears only after fault_off_delay_s of good readings (one finding for a
    # flickering fault); the good readings in between are used
    st.oor_last[rows[oor]] = ts[oor]
    st.bad_last[rows[bad]] = ts[bad]
    flip(st.oor, OOR, rows, oor | (st.oor[rows] & (ts - st.oor_last[rows] < off_us)), ts, vals, out)
    # bad quality is confirmed by a second bad reading in a row (an isolated bad
    # reading, e.g. a spike dipping below the range, is dropped but not a fault);
    # the finding carries the time of the first
    first_bad = st.bad_first[rows]
    confirmed = bad & (first_bad != NONE)
    st.bad_first[rows] = np.where(bad, np.where(first_bad == NONE, ts, first_bad), NONE)
    raw_bad = confirmed | (st.bad[rows] & (ts - st.bad_last[rows] < off_us))
    flip(st.bad, BAD, rows, raw_bad, np.where(confirmed, first_bad, ts), vals, out)
    good: B = ~bad & ~oor
    return good


def judge_stuck(st: RulesState, rows: I64, ts: I64, vals: F64, out: Transitions) -> None:
    """Stuck: unchanged (within tolerance) since ``ref_ts``, for the kinds that must move."""
    m, s = st.model, st.settings
    ref = st.ref_val[rows]
    changed = ~(np.abs(vals - ref) <= s.stuck_tolerance * m.span[rows])
    st.ref_val[rows] = np.where(changed, vals, ref)
    st.ref_ts[rows] = np.where(changed, ts, st.ref_ts[rows])
    raw = m.stuck_check[rows] & (ts - st.ref_ts[rows] >= round(s.stuck_after_s * 1e6))
    flip(st.stuck, STUCK, rows, raw, ts, vals, out)


def stuck_refs(st: RulesState, rows: I64, ts: I64, vals: F64, first: B) -> tuple[F64, I64]:
    """For readings sorted by sensor and time: value and time of the last change at each reading.

    ``first`` marks each sensor's first reading (compared with the stored reference).
    """
    tol = st.settings.stuck_tolerance * st.model.span[rows]
    prev = np.where(first, st.ref_val[rows], np.r_[np.nan, vals[:-1]])
    changed = ~(np.abs(vals - prev) <= tol)
    at = np.maximum.accumulate(np.where(changed | first, np.arange(rows.size), -1))
    use_new = changed[at]
    ref_val = np.where(use_new, vals[at], st.ref_val[rows[at]])
    ref_ts = np.where(use_new, ts[at], st.ref_ts[rows[at]])
    return ref_val, ref_ts


def clear_elapsed_before(st: RulesState, rows: I64, ts: I64, out: Transitions) -> None:
    """Fault clears due before readings at ``ts`` (as `clear_elapsed` would have found them at a tick)."""
    s = st.settings
    off_us = round(s.fault_off_delay_s * 1e6)
    hold_us = round(s.spike_hold_s * 1e6)
    for flags, last, code, after in (
        (st.oor, st.oor_last, OOR, off_us),
        (st.bad, st.bad_last, BAD, off_us),
        (st.spike, st.spike_last, SPIKE, hold_us),
    ):
        last_fault = last[rows]
        due = flags[rows] & (last_fault + after <= ts)
        if code != SPIKE:
            due &= st.last_ts[rows] > last_fault
        if due.any():
            due_rows = rows[due]
            flags[due_rows] = False
            out.add(
                code,
                due_rows,
                last_fault[due] + after,
                np.zeros(due_rows.size, dtype=bool),
                st.last_val[due_rows],
            )


def clear_elapsed(st: RulesState, now: int, out: Transitions) -> None:
    """Out of range and bad quality (after a good reading) and spikes whose time ran out by ``now``."""
    s = st.settings
    off_us = round(s.fault_off_delay_s * 1e6)
    for flags, last, code in ((st.oor, st.oor_last, OOR), (st.bad, st.bad_last, BAD)):
        # cleared by time only when a good reading came after the last faulty one
        done = np.flatnonzero(flags & (last + off_us <= now) & (st.last_ts > last))
        if done.size:
            flags[done] = False
            out.add(code, done, last[done] + off_us, np.zeros(done.size, dtype=bool), st.last_val[done])
    hold_us = round(s.spike_hold_s * 1e6)
    done = np.flatnonzero(st.spike & (st.spike_last + hold_us <= now))
    if done.size:
        st.spike[done] = False
        ended = st.spike_last[done] + hold_us
        out.add(SPIKE, done, ended, np.zeros(done.size, dtype=bool), st.last_val[done])


def raise_own_stale(st: RulesState, now: int, out: Transitions, fired: Activations) -> None:
    """With ``stale_factor`` set: sensors silent for factor x their period by ``now`` turn stale."""
    s, m = st.settings, st.model
    if s.stale_factor is None:
        return
    limit = st.last_ts + np.round(s.stale_factor * m.period_us).astype(np.int64)
    silent = np.flatnonzero(~st.stale & (st.last_ts != NONE) & (limit <= now))
    if silent.size:
        fire_due_before(st, silent, limit[silent], out, fired)
        st.stale[silent] = True
        st.stale_own[silent] = True
        st.pend[:, silent] = NONE
        for i in silent.tolist():
            st.reasons[i] = f"no reading for {s.stale_factor:g} x {m.period_us[i] / 1e6:g} s"
        out.add(STALE, silent, limit[silent], np.ones(silent.size, dtype=bool), st.last_val[silent])
