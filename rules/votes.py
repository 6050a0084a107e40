"""k-of-n vote groups of the plant file: confirmed (second level) or unconfirmed (first level).

A member votes while its H or HH is active and it has no fault (bad quality,
out of range, stuck, stale). At least k votes: confirmed; at least one but fewer
than k: unconfirmed. Judged once per evaluation with the state at its end and
timed at the latest member transition of that evaluation (``now`` if none).
"""

from __future__ import annotations

import numpy as np

from hazmon.rules.state import BAD, HH, OOR, STALE, STUCK, H, RulesState, Transitions

__all__ = ["judge_votes"]

_MEMBER_CODES = (HH, H, BAD, OOR, STUCK, STALE)
"""Transitions of a member that can change its vote."""


def judge_votes(st: RulesState, now: int, out: Transitions) -> None:
    """Vote groups whose state changed during this evaluation get a transition."""
    groups = st.model.groups
    members = groups.members
    faulty = st.bad | st.oor | st.stuck | st.stale
    voting = (st.active[H, members] | st.active[HH, members]) & ~faulty[members]
    votes = (
        np.add.reduceat(voting.astype(np.int64), groups.start[:-1]) if members.size else np.zeros(0, np.int64)
    )
    votes = np.where(groups.n > 0, votes, 0)
    confirmed = votes >= groups.k
    unconfirmed = (votes >= 1) & ~confirmed
    changed = np.flatnonzero((st.vote[0] != confirmed) | (st.vote[1] != unconfirmed))
    if changed.size == 0:
        return
    # a vote changes when the last of its members' transitions in this call happened
    last_change: dict[int, int] = {}
    for code, rows, ts, _active, _vals in out.items:
        if code in _MEMBER_CODES:
            for row, t in zip(rows.tolist(), ts.tolist(), strict=True):
                last_change[row] = max(last_change.get(row, t), t)
    for group in changed.tolist():
        group_members = members[groups.start[group] : groups.start[group + 1]].tolist()
        t = max((last_change[row] for row in group_members if row in last_change), default=now)
        for vote_row, new in ((0, confirmed), (1, unconfirmed)):
            if st.vote[vote_row, group] != new[group]:
                out.votes.append((group, t, vote_row == 0, bool(new[group]), int(votes[group])))
    st.vote[0] = confirmed
    st.vote[1] = unconfirmed
