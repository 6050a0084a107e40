"""Chattering: one condition activating ``chattering_count`` times within ``chattering_window_s``.

ISA-18.2 / EEMUA 191. The activations of HH, H, L, LL and rate (`Activations`
collected while judging) go into a small ring of times per condition and
sensor; chattering is a fault of the sensor and ends once a window has passed
without another activation.
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.delays import Activations
from hazmon.rules.state import CHAT, CHAT_ROWS, I64, NONE, RulesState, Transitions

__all__ = ["count_activations", "end_elapsed", "end_elapsed_before"]


def count_activations(st: RulesState, fired: Activations, out: Transitions) -> None:
    """N activations of one condition within the window: chattering, until a window passes without any."""
    s = st.settings
    count, window_us = s.chattering_count, round(s.chattering_window_s * 1e6)
    for cond, rows, ts in fired:
        if cond >= CHAT_ROWS or rows.size == 0:
            continue
        pos = st.chat_pos[cond, rows].astype(np.int64)
        st.chat_t[cond, rows, pos] = ts
        nxt = (pos + 1) % count
        st.chat_pos[cond, rows] = nxt
        oldest = st.chat_t[cond, rows, nxt]
        hit = (oldest != NONE) & (ts - oldest <= window_us)
        extend = hit | st.chat[rows]
        st.chat_until[rows[extend]] = np.maximum(st.chat_until[rows[extend]], ts[extend] + window_us)
        new = hit & ~st.chat[rows]
        if new.any():
            new_rows = rows[new]
            st.chat[new_rows] = True
            out.add(CHAT, new_rows, ts[new], np.ones(new_rows.size, dtype=bool), st.last_val[new_rows])


def end_elapsed_before(st: RulesState, rows: I64, ts: I64, out: Transitions) -> None:
    """Chattering of sensors ``rows`` that ended before their readings at ``ts``."""
    until = st.chat_until[rows]
    due = st.chat[rows] & (until <= ts)
    if due.any():
        due_rows = rows[due]
        st.chat[due_rows] = False
        out.add(CHAT, due_rows, until[due], np.zeros(due_rows.size, dtype=bool), st.last_val[due_rows])


def end_elapsed(st: RulesState, now: int, out: Transitions) -> None:
    """Chattering that ended by ``now``."""
    done = np.flatnonzero(st.chat & (st.chat_until <= now))
    if done.size:
        st.chat[done] = False
        out.add(CHAT, done, st.chat_until[done], np.zeros(done.size, dtype=bool), st.last_val[done])
