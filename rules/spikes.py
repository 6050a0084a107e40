"""Spikes: a jump that is a robust outlier and comes back is discarded and is a fault.

Each sensor keeps its last ``spike_samples`` accepted readings in a ring
(``RulesState.ring``). A reading that jumps by more than ``spike_min_step`` of
the span from the last one and lies more than ``spike_z`` robust deviations
(median / MAD of the ring) from the ring's median is held back
(``RulesState.susp``). If the next reading returns towards the median, the held
one was a spike (fault ``spike``, cleared after ``spike_hold_s`` without
another); if not, it was a real step, judged at its own time.
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.state import EMPTY_I, F64, I64, SPIKE, B, RulesState, Transitions

__all__ = ["judge_spikes", "push_ring", "push_ring_runs", "push_ring_where"]


def judge_spikes(st: RulesState, rows: I64, ts: I64, vals: F64, out: Transitions) -> tuple[B, I64]:
    """Spike test of one usable reading per sensor ``rows``.

    Returns:
        Which readings go on to evaluation, and the rows whose held reading
        turned out to be a real step (to be judged first, at its own time).
    """
    s, m = st.settings, st.model
    keep = np.ones(rows.size, dtype=bool)
    steps = EMPTY_I
    waiting = st.susp[rows]  # a reading of these sensors is held back
    if waiting.any():
        held_rows = rows[waiting]
        dist = np.abs(vals[waiting] - st.susp_med[held_rows])
        back = (dist < 0.5 * np.abs(st.susp_val[held_rows] - st.susp_med[held_rows])) & (
            dist <= s.spike_z * st.susp_scale[held_rows]
        )
        st.susp[held_rows] = False
        if back.any():
            spike_rows, spike_ts = held_rows[back], ts[waiting][back]
            st.spike_last[spike_rows] = spike_ts
            new = ~st.spike[spike_rows]
            if new.any():
                st.spike[spike_rows[new]] = True
                out.add(
                    SPIKE,
                    spike_rows[new],
                    spike_ts[new],
                    np.ones(int(new.sum()), dtype=bool),
                    st.susp_val[spike_rows[new]],
                )
        steps = held_rows[~back]
    jumped = (
        ~waiting
        & (st.ring_n[rows] >= s.spike_samples)
        & (np.abs(vals - st.last_val[rows]) > s.spike_min_step * m.span[rows])
    )
    if jumped.any():
        jump_rows = rows[jumped]
        ring = st.ring[jump_rows].astype(np.float64)
        med = np.median(ring, axis=1)
        mad = np.median(np.abs(ring - med[:, None]), axis=1)
        scale = np.maximum(1.4826 * mad, 1e-3 * m.span[jump_rows])
        z = np.abs(vals[jumped] - med) / scale
        outlier = z > s.spike_z
        if outlier.any():
            held = jump_rows[outlier]
            st.susp[held] = True
            st.susp_med[held] = med[outlier]
            st.susp_scale[held] = scale[outlier]
            st.susp_val[held] = vals[jumped][outlier]
            st.susp_ts[held] = ts[jumped][outlier]
            st.counters["spikes_held"] += int(outlier.sum())
            keep[np.flatnonzero(jumped)[outlier]] = False
    return keep, steps


def push_ring(st: RulesState, rows: I64, vals: F64) -> None:
    """One accepted reading per sensor ``rows`` into its ring."""
    size = st.settings.spike_samples
    pos = st.ring_pos[rows]
    st.ring[rows, pos] = vals
    st.ring_pos[rows] = (pos + 1) % size
    st.ring_n[rows] = np.minimum(st.ring_n[rows] + 1, size)


def push_ring_where(st: RulesState, accepted: B, vals: F64) -> None:
    """The accepted readings of a batch over all sensors (``accepted``: mask over rows) into the rings."""
    size = st.settings.spike_samples
    rows = np.flatnonzero(accepted)
    st.ring.reshape(-1)[rows * size + st.ring_pos[rows]] = vals[rows]
    st.ring_pos += accepted
    st.ring_pos[st.ring_pos >= size] = 0
    np.minimum(st.ring_n + accepted, size, out=st.ring_n, casting="unsafe")


def push_ring_runs(st: RulesState, rows: I64, vals: F64, first: B) -> None:
    """Readings sorted by sensor and time (``first``: a sensor's first) into the rings: the last K of each."""
    size = st.settings.spike_samples
    n = rows.size
    starts = np.flatnonzero(first)
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts)
    per_sensor = np.repeat(counts, counts)
    kept = rank >= per_sensor - size
    pos0 = np.repeat(st.ring_pos[rows[starts]].astype(np.int64), counts)[kept]
    st.ring[rows[kept], (pos0 + rank[kept]) % size] = vals[kept]
    sensors = rows[starts]
    st.ring_pos[sensors] = ((st.ring_pos[sensors] + counts) % size).astype(np.int32)
    st.ring_n[sensors] = np.minimum(st.ring_n[sensors] + counts, size).astype(np.int32)
