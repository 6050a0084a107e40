# ruff: noqa: PLR0917 - helpers take parallel arrays (rows, times, values) positionally
"""Delayed state machines: on-delay, off-delay and the transitions they hold back.

The process conditions (HH, H, L, LL, rate, predicted HH / LL) are rows of
``RulesState.active`` and ``RulesState.pend``: ``active[cond, row]`` is the
condition as reported, ``pend[cond, row]`` since when the judged condition has
differed from it (``NONE``: it has not). A transition fires once it has differed
for the on-delay (to activate) or the off-delay (to clear). The fault flags have
no delay of their own (`flip`).

Every activation of HH, H, L, LL or rate is also recorded in an `Activations`
list for the chattering check (`hazmon.rules.chattering`).
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np

from hazmon.rules.state import CHAT_ROWS, F64, I64, N_PROC, NONE, PHH, PLL, RATE, B, RulesState, Transitions

__all__ = ["Activations", "fire_due_before", "fire_due_by", "flip", "held_value", "step"]

Activations: TypeAlias = list[tuple[int, I64, I64]]
"""Activations found during one evaluation: (condition row, sensor rows, times)."""


def flip(flags: B, code: int, rows: I64, raw: B, ts: I64, vals: F64, out: Transitions) -> None:
    """Immediate (undelayed) condition: set ``flags[rows] = raw`` and record the changes."""
    changed = flags[rows] != raw
    if changed.any():
        flags[rows[changed]] = raw[changed]
        out.add(code, rows[changed], ts[changed], raw[changed], vals[changed])


def _delays_us(st: RulesState, cond: int, rows: I64) -> tuple[I64, I64]:
    """On- and off-delay (µs) of condition ``cond`` for sensors ``rows``."""
    if cond in (PHH, PLL):
        on = np.full(rows.size, round(st.settings.predict_on_delay_s * 1e6), dtype=np.int64)
        off = np.full(rows.size, round(st.settings.predict_off_delay_s * 1e6), dtype=np.int64)
        return on, off
    return st.model.on_us[rows], st.model.off_us[rows]


def step(
    st: RulesState,
    cond: int,
    rows: I64,
    ts: I64,
    raw_off: B,
    raw_on: B,
    vals: F64,
    held: F64,
    out: Transitions,
    fired: Activations | None = None,
) -> None:
    """Advance the delayed state machine of process row ``cond`` for one reading per row.

    ``raw_off`` / ``raw_on`` are the condition as judged from an inactive / active
    state (the deadband makes them differ). A transition pending since before
    the reading whose delay elapsed in between fires at ``pending + delay`` with
    the held (previous) value; then the reading itself is judged.
    """
    active = st.active[cond, rows]
    pending = st.pend[cond, rows]
    on, off = _delays_us(st, cond, rows)
    delay = np.where(active, off, on)
    due = (pending != NONE) & (ts >= pending + delay)
    if due.any():
        out.add(cond, rows[due], (pending + delay)[due], ~active[due], held[due])
        if fired is not None:
            fired.append((cond, rows[due & ~active], (pending + delay)[due & ~active]))
        active = active ^ due
        pending = np.where(due, NONE, pending)
    raw = np.where(active, raw_on, raw_off)
    differs = raw != active
    pending = np.where(differs, np.where(pending == NONE, ts, pending), NONE)
    fire = differs & (ts - pending >= np.where(active, off, on))
    if fire.any():
        out.add(cond, rows[fire], ts[fire], ~active[fire], vals[fire])
        if fired is not None:
            fired.append((cond, rows[fire & ~active], ts[fire & ~active]))
        active = active ^ fire
        pending = np.where(fire, NONE, pending)
    st.active[cond, rows] = active
    st.pend[cond, rows] = pending


def fire_due_by(st: RulesState, now: int, out: Transitions, fired: Activations) -> None:
    """Transitions whose delay elapsed by ``now`` without a new reading (value held)."""
    flat = np.flatnonzero(st.pend.ravel() != NONE)
    if flat.size == 0:
        return
    conds, rows = np.divmod(flat, st.pend.shape[1])
    for cond in np.unique(conds).tolist():
        cond_rows = rows[conds == cond]
        on, off = _delays_us(st, cond, cond_rows)
        active = st.active[cond, cond_rows]
        when = st.pend[cond, cond_rows] + np.where(active, off, on)
        due = when <= now
        if due.any():
            due_rows = cond_rows[due]
            out.add(cond, due_rows, when[due], ~active[due], held_value(st, cond, due_rows))
            if cond < CHAT_ROWS:
                fired.append((cond, due_rows[~active[due]], when[due][~active[due]]))
            st.active[cond, due_rows] = ~active[due]
            st.pend[cond, due_rows] = NONE


def fire_due_before(st: RulesState, rows: I64, ts: I64, out: Transitions, fired: Activations) -> None:
    """Transitions of sensors ``rows`` whose delay elapsed by ``ts`` (before a reading or fault at ``ts``)."""
    pending = st.pend[:, rows]
    if not (pending != NONE).any():
        return
    for cond in range(N_PROC):
        since = pending[cond]
        has = since != NONE
        if not has.any():
            continue
        cond_rows, cond_since, cond_ts = rows[has], since[has], ts[has]
        on, off = _delays_us(st, cond, cond_rows)
        active = st.active[cond, cond_rows]
        when = cond_since + np.where(active, off, on)
        due = when <= cond_ts
        if due.any():
            due_rows = cond_rows[due]
            out.add(cond, due_rows, when[due], ~active[due], held_value(st, cond, due_rows))
            if cond < CHAT_ROWS:
                fired.append((cond, due_rows[~active[due]], when[due][~active[due]]))
            st.active[cond, due_rows] = ~active[due]
            st.pend[cond, due_rows] = NONE


def held_value(st: RulesState, cond: int, rows: I64) -> F64:
    """The value a transition fired without a new reading carries: the last one judged for ``cond``."""
    if cond == RATE:
        return st.rate_val[rows]
    if cond in (PHH, PLL):
        return st.pred_level[rows]
    return st.last_val[rows]
