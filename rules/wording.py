# ruff: noqa: PLR0917 - one transition is (state, code, row, time, active, value)
"""Findings from transitions: which condition, which level, which words (English and Chinese)."""

from __future__ import annotations

import numpy as np

from hazmon.plant.findings import Condition, Finding, Level
from hazmon.rules import messages
from hazmon.rules.model import LIMIT_NAMES
from hazmon.rules.state import (
    BAD,
    CHAT,
    HH,
    LL,
    NONE,
    OOR,
    PHH,
    PLL,
    RATE,
    SPIKE,
    STALE,
    STUCK,
    H,
    L,
    RulesState,
    Transitions,
)

__all__ = ["findings"]

_FAULT_NAME = {OOR: "out_of_range", STUCK: "stuck", BAD: "bad_quality", STALE: "stale", SPIKE: "spike"}
_FAULT_COND = {
    OOR: Condition.OUT_OF_RANGE,
    STUCK: Condition.STUCK,
    BAD: Condition.BAD_QUALITY,
    STALE: Condition.STALE,
    SPIKE: Condition.SPIKE,
    CHAT: Condition.CHATTERING,
}
_SORT = {HH: 0, LL: 0, H: 1, L: 1, RATE: 2, PHH: 3, PLL: 3}


def findings(st: RulesState, out: Transitions) -> list[Finding]:
    m = st.model
    res: list[tuple[int, int, Finding]] = []
    for code, idx, ts, act, val in out.items:
        for j in range(idx.size):
            i, t, a, v = int(idx[j]), int(ts[j]), bool(act[j]), float(val[j])
            f = _finding(st, code, i, t, a, v)
            res.append((t, _SORT.get(code, 5), f))
    for gi, t, confirmed, a, cnt in out.votes:
        g = m.groups
        en, zh = messages.vote_text(g.ids[gi], confirmed, a, cnt, int(g.k[gi]), int(g.n[gi]))
        f = Finding(
            hazard_source=g.hazard_sources[gi],
            sensor=g.ids[gi],
            condition=Condition.VOTE_CONFIRMED if confirmed else Condition.VOTE_UNCONFIRMED,
            level=Level.SECOND if confirmed else Level.FIRST,
            active=a,
            ts_us=t,
            value=float(cnt),
            limit=float(g.k[gi]),
            message_en=en,
            message_zh=zh,
        )
        res.append((t, 4, f))
    res.sort(key=lambda x: (x[0], x[1], x[2].hazard_source, x[2].sensor or "", x[2].condition, x[2].active))
    return [f for _, _, f in res]


def _finding(st: RulesState, code: int, i: int, t: int, a: bool, v: float) -> Finding:
    m = st.model
    s = m.sensors[i]
    hs = s.hazard_source
    vv = None if np.isnan(v) else v
    if code in (HH, H, L, LL):
        name = LIMIT_NAMES[code]
        lim = float(m.limits[code, i])
        gas = bool(m.gas[i])
        if gas and code in (HH, H):
            cond = Condition.GAS_SECOND if code == HH else Condition.GAS_FIRST
        else:
            cond = Condition(name)
        en, zh = messages.limit_text(s, name, a, v, lim, gas)
        lvl = Level.SECOND if code in (HH, LL) else Level.FIRST
        return Finding(hs, s.tag, cond, lvl, a, t, vv, lim, None, en, zh)
    if code == RATE:
        lim = float(m.rate_rise[i] if (np.isnan(v) or v >= 0) else m.rate_fall[i])
        if np.isnan(lim):
            lim = float(np.nanmax([m.rate_rise[i], m.rate_fall[i]]))
        en, zh = messages.rate_text(s, a, 0.0 if np.isnan(v) else v, lim)
        return Finding(hs, s.tag, Condition.RATE, Level.FIRST, a, t, vv, lim, None, en, zh)
    if code in (PHH, PLL):
        row = 0 if code == PHH else 1
        lim = float(m.limits[0 if code == PHH else 3, i])
        at = int(st.pred_at[row, i])
        exp = at if (a and at != NONE) else None
        eta_s = (at - t) / 1e6 if at != NONE else float("nan")
        en, zh = messages.predict_text(
            s, "hh" if code == PHH else "ll", a, v, float(st.pred_slope[i]), lim, eta_s
        )
        cond = Condition.PREDICT_HH if code == PHH else Condition.PREDICT_LL
        return Finding(hs, s.tag, cond, Level.PREDICTIVE, a, t, vv, lim, exp, en, zh)
    detail = ""
    if code == STUCK:
        detail = f"{st.settings.stuck_after_s / 60:g} min"
    elif code == STALE:
        detail = st.reasons.get(i, "") or "no reading"
    elif code == CHAT:
        detail = f"{st.settings.chattering_count}/{st.settings.chattering_window_s:g}"
    kind = "chattering" if code == CHAT else _FAULT_NAME[code]
    en, zh = messages.fault_text(s, kind, a, v, detail)
    lim_v: float | None = None
    if code == OOR and vv is not None:
        lim_v = float(m.hi_ok[i] if vv > m.hi_ok[i] else m.lo_ok[i])
    return Finding(hs, s.tag, _FAULT_COND[code], Level.FAULT, a, t, vv, lim_v, None, en, zh)
