"""`RulesRunner`: the daemon's handle on the rules, a thin stateful wrapper over `evaluate`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import structlog
from numpy.typing import NDArray

from hazmon.plant.findings import Finding
from hazmon.plant.model import Limits, Plant
from hazmon.plant.reading import Reading, ReadingBatch, StaleChange
from hazmon.rules.engine import Batch, RulesState, evaluate, initial_state
from hazmon.rules.model import build_model
from hazmon.rules.settings import RulesSettings

__all__ = ["RulesRunner"]

log = structlog.get_logger("hazmon.rules")


class RulesRunner:
    """Keeps the rules state of one plant and turns readings into findings.

    Args:
        plant: the plant (sensors, limits, vote groups).
        settings: the daemon config's ``rules:`` section (defaults if None).
        overrides: assessment limit overrides by tag (take precedence over the plant file).

    Counters (``counters``): readings, evaluated, late (older than or equal to
    the sensor's last reading: dropped), faulty (readings not used because the
    sensor has a fault), spikes_held, unknown_tag (readings for tags not in the
    plant: dropped and logged once per tag), bad_value (a reading whose time,
    value or quality is not a number: dropped and logged), findings.
    """

    def __init__(
        self,
        plant: Plant,
        settings: RulesSettings | None = None,
        overrides: Mapping[str, Limits] | None = None,
    ) -> None:
        self.plant = plant
        self.settings = settings or RulesSettings()
        self._overrides: dict[str, Limits] = dict(overrides or {})
        self._state: RulesState = initial_state(
            build_model(plant, self.settings, self._overrides), self.settings
        )
        self._index = self._state.model.index
        self._unknown: dict[str, int] = {}
        self._bad_values = 0
        self._findings = 0

    @property
    def state(self) -> RulesState:
        return self._state

    @property
    def counters(self) -> dict[str, int]:
        c = dict(self._state.counters)
        c["bad_value"] = self._bad_values
        c["unknown_tag"] = sum(self._unknown.values())
        c["findings"] = self._findings
        return c

    def process(
        self, readings: Sequence[Reading] | ReadingBatch, stale: Sequence[StaleChange], now_us: int
    ) -> list[Finding]:
        """Evaluate new readings (`Reading`s or columns) and stale changes at ``now_us``; their findings."""
        index = self._index
        if isinstance(readings, ReadingBatch):
            tags = readings.tags
            try:
                idx = np.array(list(map(index.__getitem__, tags)), dtype=np.int64).reshape(-1)
            except KeyError:
                idx = np.fromiter((index.get(t, -1) for t in tags), dtype=np.int64, count=len(tags))
            ts, val, q = readings.ts_us, readings.value, readings.quality
            known = idx >= 0
            if not known.all():
                for j in np.flatnonzero(~known).tolist():
                    self._unknown_tag(tags[j])
                idx, ts, val, q = idx[known], ts[known], val[known], q[known]
        elif readings:
            tags, tss, vals, qs = zip(*readings, strict=True)
            idx = np.fromiter((index.get(t, -1) for t in tags), dtype=np.int64, count=len(tags))
            try:
                ts = np.array(tss, dtype=np.int64)
                val = np.array(vals, dtype=np.float64)
                q = np.array(qs, dtype=np.int8)
            except (TypeError, ValueError, OverflowError):
                ts, val, q, idx = self._one_by_one(readings, idx)
            known = idx >= 0
            if not known.all():
                for j in np.flatnonzero(idx == -1).tolist():
                    self._unknown_tag(tags[j])
                idx, ts, val, q = idx[known], ts[known], val[known], q[known]
        else:
            idx, ts, val, q = (np.zeros(0, dtype=np.int64),) * 2 + (np.zeros(0), np.zeros(0, dtype=np.int8))
        s_idx, s_flag, s_ts, s_reason = [], [], [], []
        for c in stale:
            i = index.get(c.tag)
            if i is None:
                self._unknown_tag(c.tag)
                continue
            s_idx.append(i)
            s_flag.append(c.stale)
            s_ts.append(c.ts_us)
            s_reason.append(c.reason)
        batch = Batch(
            idx,
            ts,
            val,
            q,
            np.asarray(s_idx, dtype=np.int64),
            np.asarray(s_flag, dtype=bool),
            np.asarray(s_ts, dtype=np.int64),
            tuple(s_reason),
        )
        return self._run(batch, now_us)

    def _one_by_one(
        self, readings: Sequence[Reading], idx: NDArray[np.int64]
    ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.int8], NDArray[np.int64]]:
        """Arrays from readings of which some are malformed: those are dropped, counted and logged."""
        ts = np.zeros(len(readings), dtype=np.int64)
        val = np.zeros(len(readings))
        q = np.zeros(len(readings), dtype=np.int8)
        idx = idx.copy()
        for j, r in enumerate(readings):
            try:
                ts[j], val[j], q[j] = int(r.ts_us), float(r.value), int(r.quality)
                if not 0 <= q[j] <= 2:
                    raise ValueError(f"quality {r.quality!r}")
            except (TypeError, ValueError, OverflowError) as e:
                idx[j] = -2  # not counted as an unknown tag
                self._bad_values += 1
                log.warning("bad_reading", tag=r.tag, reason=str(e), dropped=True)
        return ts, val, q, idx

    def tick(self, now_us: int) -> list[Finding]:
        """Time-based transitions at ``now_us`` (delays elapsing, spike hold, chattering ending…)."""
        return self._run(Batch.empty(), now_us)

    def set_overrides(self, overrides: Mapping[str, Limits]) -> None:
        """Replace the assessment overrides; the next readings are judged against the new limits.

        Alarm states are kept: an alarm active under the old limits clears (or
        not) with the next reading, after its off-delay.
        """
        self._overrides = dict(overrides)
        self._state.model = build_model(self.plant, self.settings, self._overrides)

    def _run(self, batch: Batch, now_us: int) -> list[Finding]:
        self._state, findings = evaluate(self._state, batch, now_us)
        self._findings += len(findings)
        return findings

    def _unknown_tag(self, tag: str) -> None:
        seen = self._unknown.get(tag, 0)
        self._unknown[tag] = seen + 1
        if seen == 0:
            log.warning("unknown_tag", tag=tag, reason="not a sensor of the plant file; readings dropped")
