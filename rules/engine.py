"""The rules engine: ``evaluate(state, batch, now_us) -> (state, findings)``.

Deterministic, no I/O, no clock: the same state, batch and ``now_us`` always give
the same findings. Every condition is an array over all sensors (numpy); the
per-sensor windows are ring buffers in arrays. Python objects are made only for
findings (a condition that activates or clears), which are rare.

For speed the state's arrays are updated in place and the same object is
returned: a caller must use the returned state and drop the one it passed
(`RulesState.copy` exists for tests that want to compare).

This module composes the rule families, one module each:

- `hazmon.rules.faults`: out of range, bad quality, stuck, stale;
- `hazmon.rules.spikes`: the spike test and its ring of raw readings;
- `hazmon.rules.limits`: HH / H / L / LL with deadband (a gas detector's H / HH
  are its first / second level);
- `hazmon.rules.delays`: the on- and off-delays of the process conditions;
- `hazmon.rules.buckets`: the window of bucket means; a closing bucket judges
  `hazmon.rules.rate` (rate of change) and `hazmon.rules.predict` (the robust
  trend of `hazmon.rules.trend` reaching HH / LL within the horizon);
- `hazmon.rules.chattering` and `hazmon.rules.votes`: judged per evaluation,
  over what the others found.

`hazmon.rules.paths` routes a batch's readings through them (a quiet path that
only updates the windows, and reading-by-reading rounds), in the order a
reading meets them:

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

from hazmon.plant.findings import Finding
from hazmon.rules import chattering, faults, paths
from hazmon.rules.delays import Activations, fire_due_by
from hazmon.rules.predict import clear_reached
from hazmon.rules.state import NONE, Batch, RulesState, Transitions, initial_state
from hazmon.rules.votes import judge_votes
from hazmon.rules.wording import findings as _findings

__all__ = ["NONE", "Batch", "RulesState", "evaluate", "initial_state"]

_DENSE_FROM = 0.25
"""A batch with one reading for at least this share of the sensors is handled densely."""


def evaluate(state: RulesState, batch: Batch, now_us: int) -> tuple[RulesState, list[Finding]]:
    """Judge a batch of readings and stale changes at ``now_us``; return the state and findings.

    Findings are transitions only: a condition that activates (``active=True``)
    or clears (``active=False``); nothing is repeated while a condition holds.
    They are sorted by time, the more severe first at equal times.
    """
    st, out = state, Transitions()
    fired: Activations = []
    faults.apply_stale_changes(st, batch, out, fired)
    if batch.idx.size:
        _readings(st, batch, out, fired)
    # what time alone changes by now_us
    faults.clear_elapsed(st, now_us, out)
    chattering.end_elapsed(st, now_us, out)
    faults.raise_own_stale(st, now_us, out, fired)
    fire_due_by(st, now_us, out, fired)
    clear_reached(st, now_us, out)
    # over what the families found
    chattering.count_activations(st, fired, out)
    if st.settings.votes and st.model.groups.ids:
        judge_votes(st, now_us, out)
    return st, _findings(st, out)


def _readings(st: RulesState, batch: Batch, out: Transitions, fired: Activations) -> None:
    """Sort the readings per sensor and time, drop late ones, then judge them.

    Sensors for which nothing can happen in this batch (no alarm active or
    pending, no fault, every value clear of its limits, no jump, moving) take
    the quiet path: their windows are updated for all their readings at once.
    The others are judged reading by reading, one round per reading rank.
    """
    st.counters["readings"] += int(batch.idx.size)
    if batch.idx.size and int(np.bincount(batch.idx, minlength=st.model.n).max()) <= 1:
        if batch.idx.size >= _DENSE_FROM * st.model.n:
            paths.accept_dense(st, batch, out, fired)
        else:
            paths.accept_single(st, batch, out, fired)
        return
    order = np.lexsort((batch.ts, batch.idx))
    rows, ts = batch.idx[order], batch.ts[order]
    vals, quality = batch.value[order], batch.quality[order]
    first = np.r_[True, rows[1:] != rows[:-1]]
    late = (ts <= st.last_ts[rows]) | (~first & (ts == np.r_[NONE, ts[:-1]]))
    if late.any():
        st.counters["late"] += int(late.sum())
        keep = ~late
        rows, ts, vals, quality = rows[keep], ts[keep], vals[keep], quality[keep]
        first = np.r_[True, rows[1:] != rows[:-1]] if rows.size else first[:0]
    if rows.size == 0:
        return
    ref_ts = faults.stuck_refs(st, rows, ts, vals, first)[1]
    quiet = paths.quiet_mask(st, rows, ts, vals, quality, first, ref_ts)
    if quiet.any():
        paths.accept_quiet_runs(st, rows[quiet], ts[quiet], vals[quiet], out, fired)
        rest = ~quiet
        rows, ts, vals, quality = rows[rest], ts[rest], vals[rest], quality[rest]
        if rows.size == 0:
            return
        first = np.r_[True, rows[1:] != rows[:-1]]
    starts = np.flatnonzero(first)
    rank = np.arange(rows.size) - np.repeat(starts, np.diff(np.r_[starts, rows.size]))
    for r in range(int(rank.max()) + 1):
        sel = rank == r
        if r == 0 and sel.all():
            paths.judge_round(st, rows, ts, vals, quality, out, fired)
        else:
            paths.judge_round(st, rows[sel], ts[sel], vals[sel], quality[sel], out, fired)
