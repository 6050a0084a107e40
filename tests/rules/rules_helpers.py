"""Feeding synthetic series to a RulesRunner in simulated time (no clock, no sleep)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hazmon.plant import Finding, Plant, Quality, Reading, StaleChange
from hazmon.rules import RulesRunner, RulesSettings

T0 = 1_800_000_000_000_000  # a whole multiple of 10 s: bucket boundaries fall on whole tens
S = 1_000_000

Row = tuple[float, str, str, bool]

Series = Callable[[int], float | tuple[float, int] | None]


def at(t_s: float) -> int:
    return T0 + round(t_s * S)


def feed(
    runner: RulesRunner,
    series: dict[str, Series],
    seconds: Iterable[int],
    stale: dict[int, list[StaleChange]] | None = None,
) -> list[Finding]:
    """Every second t: the reading series[tag](t) of each tag (None: no reading), then process at t."""
    out: list[Finding] = []
    for t in seconds:
        rs: list[Reading] = []
        for tag, fn in series.items():
            v = fn(t)
            if v is None:
                continue
            val, q = (v, 0) if isinstance(v, float | int) else v
            rs.append(Reading(tag, at(t), float(val), Quality(q)))
        out += runner.process(rs, (stale or {}).get(t, []), at(t))
    return out


def feed_chunks(
    runner: RulesRunner, series: dict[str, Series], seconds: range, chunk_s: int
) -> list[Finding]:
    """Like `feed`, but the readings of ``chunk_s`` seconds go in one batch (as a busy collector sends them)."""
    out: list[Finding] = []
    items = list(seconds)
    for k in range(0, len(items), chunk_s):
        rs: list[Reading] = []
        for t in items[k : k + chunk_s]:
            for tag, fn in series.items():
                v = fn(t)
                if v is None:
                    continue
                val, q = (v, 0) if isinstance(v, float | int) else v
                rs.append(Reading(tag, at(t), float(val), Quality(q)))
        out += runner.process(rs, [], at(items[min(k + chunk_s, len(items)) - 1]))
    return out


def rows(findings: Iterable[Finding]) -> list[Row]:
    """(seconds since T0, sensor, condition, active) of each finding."""
    return [((f.ts_us - T0) / S, f.sensor or "", str(f.condition), f.active) for f in findings]


def runner(plant: Plant, **kw: object) -> RulesRunner:
    return RulesRunner(plant, RulesSettings(**kw))  # type: ignore[arg-type]
