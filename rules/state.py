"""The rules engine's state and inputs: arrays over all sensors.

`RulesState` holds every per-sensor array the engine remembers (alarm states,
pending transitions, fault flags, the spike ring and the ring of bucket means),
grouped by the rule family that keeps them,
`Batch` the new readings as arrays, `Transitions` what changed during one
evaluation (turned into findings by `hazmon.rules.wording`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from hazmon.rules.model import RulesModel
from hazmon.rules.settings import RulesSettings

__all__ = [
    "BAD",
    "CHAT",
    "CHAT_ROWS",
    "EMPTY_I",
    "F64",
    "HH",
    "I64",
    "LL",
    "NONE",
    "NO_BUCKET",
    "N_PROC",
    "OOR",
    "PHH",
    "PLL",
    "RATE",
    "SPIKE",
    "STAGGER_FROM",
    "STALE",
    "STUCK",
    "B",
    "Batch",
    "H",
    "L",
    "RulesState",
    "Transitions",
    "initial_state",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

NONE = np.iinfo(np.int64).min
"""'No time' in the int64 time arrays."""
NO_BUCKET = np.iinfo(np.int32).min

# Rows of the process bank (delayed state machines).
HH, H, L, LL, RATE, PHH, PLL = range(7)
N_PROC = 7
CHAT_ROWS = 5  # HH, H, L, LL, RATE count towards chattering

# Internal codes of transitions (process rows 0-6 keep their numbers).
OOR, STUCK, BAD, STALE, SPIKE, CHAT = range(7, 13)

EMPTY_I = np.zeros(0, dtype=np.int64)
STAGGER_FROM = 2048


@dataclass(frozen=True, slots=True)
class Batch:
    """New inputs as arrays: readings (sensor row, ts, value, quality) and stale changes.

    Readings may come in any order and several per sensor; the engine sorts them.
    """

    idx: I64
    ts: I64
    value: F64
    quality: NDArray[np.int8]
    stale_idx: I64 = field(default_factory=lambda: EMPTY_I)
    stale_flag: B = field(default_factory=lambda: np.zeros(0, dtype=bool))
    stale_ts: I64 = field(default_factory=lambda: EMPTY_I)
    stale_reason: tuple[str, ...] = ()

    @staticmethod
    def empty() -> Batch:
        return Batch(EMPTY_I, EMPTY_I, np.zeros(0), np.zeros(0, dtype=np.int8))

    @staticmethod
    def of(
        idx: Sequence[int],
        ts: Sequence[int],
        value: Sequence[float],
        quality: Sequence[int] | None = None,
    ) -> Batch:
        n = len(idx)
        return Batch(
            np.asarray(idx, dtype=np.int64),
            np.asarray(ts, dtype=np.int64),
            np.asarray(value, dtype=np.float64),
            np.asarray(quality if quality is not None else [0] * n, dtype=np.int8),
        )


@dataclass(slots=True, eq=False)
class RulesState:
    """Everything the engine remembers, as arrays over N sensors (see module docstring)."""

    model: RulesModel
    settings: RulesSettings
    # process conditions (rows HH, H, L, LL, RATE, PHH, PLL): hazmon.rules.delays
    active: B  # (7, N) condition as reported
    pend: I64  # (7, N) since when the judged condition differs from `active`; NONE: not pending
    last_ts: I64  # time of the last reading taken (judged or faulty)
    last_val: F64  # last value accepted for evaluation
    # sensor faults: hazmon.rules.faults
    bad: B  # bad quality
    oor: B  # out of range
    stuck: B
    stale: B
    stale_own: B  # stale raised by the rules' own stale_factor (cleared by a reading)
    bad_last: I64  # time of the latest bad-quality reading
    bad_first: I64  # first bad reading of the current run of bad readings; NONE: last was not bad
    oor_last: I64  # time of the latest out-of-range reading
    spike: B  # spike fault (hazmon.rules.spikes)
    chat: B  # chattering (hazmon.rules.chattering)
    ref_val: F64  # stuck detection: value and time of the last change
    ref_ts: I64
    # spike test: hazmon.rules.spikes
    ring: NDArray[np.float32]  # (N, K) last accepted raw readings
    ring_pos: NDArray[np.int32]  # next slot of `ring` to write
    ring_n: NDArray[np.int32]  # readings in `ring` (up to K)
    susp: B  # a suspected spike is held back, waiting for the next reading
    susp_med: F64  # the ring's median and robust scale when it was held
    susp_scale: F64
    susp_val: F64  # the held reading
    susp_ts: I64
    spike_last: I64  # time of the latest confirmed spike
    # window of bucket means: hazmon.rules.buckets
    phase_us: I64  # buckets of sensor i close at a staggered phase
    cur_b: I64  # open bucket: its number, sum and count of readings
    cur_sum: F64
    cur_n: NDArray[np.int32]
    bmean: NDArray[np.float32]  # (N, S) bucket means, slot = bucket % S
    bid: NDArray[np.int32]  # (N, S) bucket number of each slot
    rate_val: F64  # last rate of change, per minute (hazmon.rules.rate)
    # trend prediction: hazmon.rules.predict
    pred_level: F64  # last fit: level at the newest bucket
    pred_slope: F64  # per minute
    pred_at: I64  # (2, N) expected crossing of HH / LL
    # chattering: hazmon.rules.chattering
    chat_t: I64  # (5, N, count) last activation times per condition
    chat_pos: NDArray[np.int8]  # (5, N) next slot of `chat_t` to write
    chat_until: I64  # chattering lasts at least until then
    vote: B  # (2, G) confirmed / unconfirmed (hazmon.rules.votes)
    counters: dict[str, int]
    reasons: dict[int, str]  # reason of the latest stale change per sensor row

    def copy(self) -> RulesState:
        kw: dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.copy() if isinstance(v, np.ndarray | dict) else v
        return RulesState(**kw)  # type: ignore[arg-type]

    def window_bytes(self) -> int:
        """Memory of the per-sensor windows (bucket ring and raw spike ring)."""
        return int(self.bmean.nbytes + self.bid.nbytes + self.ring.nbytes)

    def total_bytes(self) -> int:
        """Memory of every array of the state (windows included)."""
        arrays = [getattr(self, f.name) for f in fields(self)]
        return int(sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)))


def initial_state(model: RulesModel, settings: RulesSettings) -> RulesState:
    """A state that has seen nothing yet."""
    n, s, k = model.n, settings.trend_buckets, settings.spike_samples
    bucket_us = round(settings.bucket_s * 1e6)
    # Large plants stagger bucket boundaries over the sensors so that each batch
    # closes (and fits) only a share of them; small ones close all at once, which
    # costs fewer, larger fits.
    step = max(1, round(settings.bucket_s)) if n >= STAGGER_FROM else 1
    phase = (np.arange(n, dtype=np.int64) % step) * (bucket_us // step)
    g = len(model.groups.ids)
    return RulesState(
        model=model,
        settings=settings,
        active=np.zeros((N_PROC, n), dtype=bool),
        pend=np.full((N_PROC, n), NONE, dtype=np.int64),
        last_ts=np.full(n, NONE, dtype=np.int64),
        last_val=np.full(n, np.nan),
        bad=np.zeros(n, dtype=bool),
        oor=np.zeros(n, dtype=bool),
        stuck=np.zeros(n, dtype=bool),
        stale=np.zeros(n, dtype=bool),
        stale_own=np.zeros(n, dtype=bool),
        bad_last=np.full(n, NONE, dtype=np.int64),
        bad_first=np.full(n, NONE, dtype=np.int64),
        oor_last=np.full(n, NONE, dtype=np.int64),
        spike=np.zeros(n, dtype=bool),
        chat=np.zeros(n, dtype=bool),
        ref_val=np.full(n, np.nan),
        ref_ts=np.full(n, NONE, dtype=np.int64),
        ring=np.zeros((n, k), dtype=np.float32),
        ring_pos=np.zeros(n, dtype=np.int32),
        ring_n=np.zeros(n, dtype=np.int32),
        susp=np.zeros(n, dtype=bool),
        susp_med=np.full(n, np.nan),
        susp_scale=np.full(n, np.nan),
        susp_val=np.full(n, np.nan),
        susp_ts=np.full(n, NONE, dtype=np.int64),
        spike_last=np.full(n, NONE, dtype=np.int64),
        phase_us=phase,
        cur_b=np.full(n, NONE, dtype=np.int64),
        cur_sum=np.zeros(n),
        cur_n=np.zeros(n, dtype=np.int32),
        bmean=np.zeros((n, s), dtype=np.float32),
        bid=np.full((n, s), NO_BUCKET, dtype=np.int32),
        rate_val=np.full(n, np.nan),
        pred_level=np.full(n, np.nan),
        pred_slope=np.full(n, np.nan),
        pred_at=np.full((2, n), NONE, dtype=np.int64),
        chat_t=np.full((CHAT_ROWS, n, settings.chattering_count), NONE, dtype=np.int64),
        chat_pos=np.zeros((CHAT_ROWS, n), dtype=np.int8),
        chat_until=np.full(n, NONE, dtype=np.int64),
        vote=np.zeros((2, g), dtype=bool),
        counters={"readings": 0, "evaluated": 0, "late": 0, "faulty": 0, "spikes_held": 0},
        reasons={},
    )


@dataclass(slots=True)
class Transitions:
    """Transitions found during one evaluate call: (code, rows, ts, active, value)."""

    items: list[tuple[int, I64, I64, B, F64]] = field(default_factory=list)
    votes: list[tuple[int, int, bool, bool, int]] = field(default_factory=list)  # (g, ts, conf, act, cnt)

    def add(self, code: int, idx: I64, ts: I64, active: B, value: F64) -> None:
        if idx.size:
            self.items.append((code, idx, ts, active, value))
