# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""HH / H / L / LL with deadband, on-delay and off-delay.

A high limit is reached at ``value >= limit`` and, once active, clears below
``limit - deadband``; a low limit mirrors it. The delays are those of the
sensor's plant-file ``limits:`` (`hazmon.rules.delays`). A gas detector's H / HH
are worded as gas first / second level (`hazmon.rules.wording`).
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.delays import Activations, step
from hazmon.rules.state import F64, HH, I64, LL, NONE, B, H, L, RulesState, Transitions

__all__ = ["N_LIMITS", "judge_limits", "steady"]

N_LIMITS = 4
"""HH, H, L, LL are the first four process rows."""


def judge_limits(
    st: RulesState, rows: I64, ts: I64, vals: F64, held: F64, out: Transitions, fired: Activations
) -> None:
    """Judge one reading per sensor ``rows`` against its four limits."""
    limits = st.model.limits[:, rows]
    deadband = st.model.deadband[rows]
    for cond in (HH, H):
        reached, still = vals >= limits[cond], vals >= limits[cond] - deadband
        step(st, cond, rows, ts, reached, still, vals, held, out, fired)
    for cond in (L, LL):
        reached, still = vals <= limits[cond], vals <= limits[cond] + deadband
        step(st, cond, rows, ts, reached, still, vals, held, out, fired)


def steady(st: RulesState, rows: I64, vals: F64) -> B:
    """Readings that change no limit state: each limit judged from its state equals it, none pending."""
    limits = st.model.limits[:, rows]
    deadband = st.model.deadband[rows]
    active = st.active[:N_LIMITS, rows]
    with np.errstate(invalid="ignore"):
        raw = np.stack(
            [
                np.where(active[HH], vals >= limits[HH] - deadband, vals >= limits[HH]),
                np.where(active[H], vals >= limits[H] - deadband, vals >= limits[H]),
                np.where(active[L], vals <= limits[L] + deadband, vals <= limits[L]),
                np.where(active[LL], vals <= limits[LL] + deadband, vals <= limits[LL]),
            ]
        )
    unchanged: B = (raw == active).all(axis=0) & (st.pend[:N_LIMITS, rows] == NONE).all(axis=0)
    return unchanged
