"""The plant as arrays: one row per sensor, built once (and again when limits change).

`RulesModel` holds what does not change from reading to reading: tags, hazard
sources, kinds, measuring ranges, effective limits (assessment override >
plant file > GB/T 50493 defaults), delays and vote groups. The engine indexes
these arrays by sensor number; Python objects are used only to word findings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hazmon.plant.limits import effective_limits
from hazmon.plant.model import Limits, Plant, Sensor
from hazmon.plant.standards import NAMUR_NE43_HIGH_FRACTION, NAMUR_NE43_LOW_FRACTION
from hazmon.rules.settings import RulesSettings

__all__ = ["HIGH", "LIMIT_NAMES", "LOW", "RulesModel", "VoteGroups", "build_model"]

LIMIT_NAMES = ("hh", "h", "l", "ll")
"""Row order of the limit arrays (HH, H, L, LL)."""
HIGH = (0, 1)
LOW = (2, 3)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class VoteGroups:
    """k-of-n groups as flat arrays: members of group g are ``members[start[g]:start[g+1]]``."""

    ids: tuple[str, ...]
    hazard_sources: tuple[str, ...]
    k: NDArray[np.int64]
    n: NDArray[np.int64]
    start: NDArray[np.int64]
    members: NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class RulesModel:
    """Static description of N sensors (row i is sensor i).

    Attributes:
        sensors: the plant's sensors (wording of findings only).
        tags / index: tag of row i, row of a tag.
        limits: (4, N) HH, H, L, LL in the sensor's unit; NaN where not set.
        deadband: (N,) deadband of the absolute limits.
        on_us / off_us: (N,) on- and off-delay, µs.
        rate_rise / rate_fall: (N,) maximum rise / fall per minute; NaN: none.
        lo_ok / hi_ok: (N,) readings outside this band are out of range
            (measuring range widened by the NAMUR NE 43 signal band).
        span: (N,) range high minus range low.
        period_us: (N,) reporting period.
        gas: (N,) gas detector, oxygen included (H/HH become gas first/second).
        quiet_lo / quiet_hi: (N,) a value strictly inside (quiet_lo, quiet_hi) is
            in range and clear of every limit (the engine's quiet path).
        spike_step: (N,) a jump larger than this may be a spike.
        range_hi: (N,) top of the measuring range.
        predict / stuck_check: (N,) which sensors get predictions / stuck checks.
        groups: vote groups.
    """

    sensors: tuple[Sensor, ...]
    tags: tuple[str, ...]
    index: Mapping[str, int]
    limits: F64
    deadband: F64
    on_us: I64
    off_us: I64
    rate_rise: F64
    rate_fall: F64
    lo_ok: F64
    hi_ok: F64
    span: F64
    period_us: I64
    gas: B
    predict: B
    stuck_check: B
    groups: VoteGroups
    effective: tuple[Limits, ...]
    quiet_lo: F64
    quiet_hi: F64
    spike_step: F64
    range_hi: F64

    @property
    def n(self) -> int:
        return len(self.tags)


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)


def build_model(
    plant: Plant, settings: RulesSettings, overrides: Mapping[str, Limits] | None = None
) -> RulesModel:
    """Arrays for every sensor of ``plant`` with its effective limits."""
    return model_from_sensors(
        plant.sensors(),
        settings,
        overrides,
        [(hs.id, g.id, g.sensors, g.k) for hs in plant.hazard_sources for g in hs.vote_groups],
    )


def model_from_sensors(
    sensors: Sequence[Sensor],
    settings: RulesSettings,
    overrides: Mapping[str, Limits] | None = None,
    groups: Sequence[tuple[str, str, Sequence[str], int]] = (),
) -> RulesModel:
    """Like `build_model` for any list of sensors (tests, benchmarks)."""
    ov = overrides or {}
    eff = tuple(effective_limits(s, ov.get(s.tag)) for s in sensors)
    n = len(sensors)
    lim = np.full((4, n), np.nan)
    for i, e in enumerate(eff):
        lim[:, i] = (_nan(e.hh), _nan(e.h), _nan(e.l), _nan(e.ll))
    lo = np.array([s.range[0] for s in sensors], dtype=np.float64)
    hi = np.array([s.range[1] for s in sensors], dtype=np.float64)
    span = hi - lo
    index = {s.tag: i for i, s in enumerate(sensors)}
    starts = [0]
    members: list[int] = []
    for _hs, _gid, tags, _k in groups:
        members += [index[t] for t in tags]
        starts.append(len(members))
    vg = VoteGroups(
        ids=tuple(g[1] for g in groups),
        hazard_sources=tuple(g[0] for g in groups),
        k=np.array([g[3] for g in groups], dtype=np.int64),
        n=np.array([len(g[2]) for g in groups], dtype=np.int64),
        start=np.array(starts, dtype=np.int64),
        members=np.array(members, dtype=np.int64),
    )
    kinds = [s.kind for s in sensors]
    lo_ok = lo - NAMUR_NE43_LOW_FRACTION * span
    hi_ok = hi + NAMUR_NE43_HIGH_FRACTION * span
    with np.errstate(invalid="ignore"):
        quiet_hi = np.fmin(np.fmin(lim[0], lim[1]), hi_ok)  # fmin ignores NaN (unset limits)
        quiet_lo = np.fmax(np.fmax(lim[2], lim[3]), lo_ok)
    # the quiet path asks for value > quiet_lo strictly; a low limit is reached at <=
    quiet_lo = np.nextafter(quiet_lo, np.inf)
    quiet_lo = np.where(np.isnan(np.fmax(lim[2], lim[3])), lo_ok, quiet_lo)
    has_hhll = ~np.isnan(lim[0]) | ~np.isnan(lim[3])
    return RulesModel(
        sensors=tuple(sensors),
        tags=tuple(s.tag for s in sensors),
        index=index,
        limits=lim,
        deadband=np.array([e.deadband for e in eff], dtype=np.float64),
        on_us=np.array([round(e.on_delay_s * 1e6) for e in eff], dtype=np.int64),
        off_us=np.array([round(e.off_delay_s * 1e6) for e in eff], dtype=np.int64),
        rate_rise=np.array([_nan(e.rate_rise_per_min) for e in eff], dtype=np.float64),
        rate_fall=np.array([_nan(e.rate_fall_per_min) for e in eff], dtype=np.float64),
        lo_ok=lo_ok,
        hi_ok=hi_ok,
        span=span,
        period_us=np.array([round(s.period_s * 1e6) for s in sensors], dtype=np.int64),
        gas=np.array([k.is_gas for k in kinds], dtype=bool),
        predict=np.array([k in settings.predict_kinds for k in kinds], dtype=bool) & has_hhll,
        stuck_check=np.array([k in settings.stuck_kinds for k in kinds], dtype=bool),
        groups=vg,
        effective=eff,
        quiet_lo=quiet_lo,
        quiet_hi=quiet_hi,
        spike_step=settings.spike_min_step * span,
        range_hi=hi,
    )
