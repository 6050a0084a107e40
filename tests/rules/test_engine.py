"""The engine's paths agree: dense, sparse and reading-by-reading give the same findings and state."""

from __future__ import annotations

import numpy as np
import pytest

from hazmon.plant import Plant
from hazmon.rules import Batch, RulesSettings, build_model, evaluate, initial_state
from hazmon.rules import engine as eng

T0 = 1_800_000_000_000_000


def _batches(plant: Plant, seconds: int, seed: int) -> list[tuple[int, Batch]]:
    """Random walks near the limits, with bad readings, spikes and gaps: every path gets work."""
    rng = np.random.default_rng(seed)
    sensors = plant.sensors()
    n = len(sensors)
    lo = np.array([s.range[0] for s in sensors])
    hi = np.array([s.range[1] for s in sensors])
    v = lo + (hi - lo) * rng.uniform(0.3, 0.9, n)
    out = []
    for t in range(seconds):
        v = np.clip(v + (hi - lo) * rng.normal(0, 0.004, n), lo, hi)
        val = v.copy()
        spike = rng.random(n) < 0.01
        val[spike] += (hi - lo)[spike] * 0.3
        q = np.where(rng.random(n) < 0.01, 2, 0).astype(np.int8)
        present = rng.random(n) < 0.9
        idx = np.flatnonzero(present)
        order = rng.permutation(idx.size)
        ts = np.full(idx.size, T0 + t * 1_000_000, dtype=np.int64)
        out.append((T0 + t * 1_000_000, Batch(idx[order], ts, val[idx][order], q[idx][order])))
    return out


def _run(
    plant: Plant, batches: list[tuple[int, Batch]], dense_from: float
) -> tuple[list[object], eng.RulesState]:
    settings = RulesSettings(stuck_after_s=30.0, horizon_s=600.0)
    st = initial_state(build_model(plant, settings), settings)
    old = eng._DENSE_FROM
    eng._DENSE_FROM = dense_from
    try:
        found = []
        for now, b in batches:
            st, fs = evaluate(st, b, now)
            found += fs
    finally:
        eng._DENSE_FROM = old
    return found, st


@pytest.mark.parametrize("seed", [1, 2])
def test_dense_and_sparse_paths_agree(example_plant: Plant, seed: int) -> None:
    bs = _batches(example_plant, 400, seed)
    dense, a = _run(example_plant, bs, 0.0)
    sparse, b = _run(example_plant, bs, 2.0)
    assert len(dense) > 20  # the walk does raise things
    assert dense == sparse
    for f in ("active", "pend", "last_val", "ring", "bmean", "bid", "cur_sum", "ref_ts", "bad", "spike"):
        assert np.array_equal(getattr(a, f), getattr(b, f), equal_nan=True), f


def test_multi_reading_batches_agree_with_one_reading_per_batch(example_plant: Plant) -> None:
    bs = _batches(example_plant, 300, 3)
    one_by_one, a = _run(example_plant, bs, 0.25)
    merged = []
    for k in range(0, len(bs), 10):
        chunk = bs[k : k + 10]
        merged.append(
            (
                chunk[-1][0],
                Batch(
                    np.concatenate([b.idx for _, b in chunk]),
                    np.concatenate([b.ts for _, b in chunk]),
                    np.concatenate([b.value for _, b in chunk]),
                    np.concatenate([b.quality for _, b in chunk]),
                ),
            )
        )
    together, b = _run(example_plant, merged, 0.25)
    key = lambda f: (f.ts_us, f.sensor, f.condition, f.active)  # noqa: E731
    # the same transitions at the same times (votes are judged per batch, so they may differ)
    assert sorted(map(key, [f for f in one_by_one if not f.condition.startswith("vote")])) == sorted(
        map(key, [f for f in together if not f.condition.startswith("vote")])
    )
    assert np.array_equal(a.bmean, b.bmean) and np.array_equal(a.active, b.active)
