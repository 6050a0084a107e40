"""The step a value is stored at (pure): a power of two under 1/65,536 of the span, exact rounding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hazmon.plant.reading import quantize, storage_step


@pytest.mark.parametrize(
    ("range_", "step"),
    [
        ((0.0, 20.0), 2.0**-12),  # 20/65536 = 0.000305 -> 0.000244
        ((0.0, 100.0), 2.0**-10),  # 100/65536 = 0.00153 -> 0.000977
        ((0.0, 65536.0), 1.0),  # a span of exactly 2^16: the step is span / 2^16 itself
        ((-40.0, 60.0), 2.0**-10),
        ((0.0, 0.01), 2.0**-23),  # a 10 Pa range in kPa: 1.2e-7
    ],
)
def test_the_step_is_the_largest_power_of_two_within_span_over_2_16(
    range_: tuple[float, float], step: float
) -> None:
    s = storage_step(range_)
    assert s == step
    span = range_[1] - range_[0]
    assert span / 2**17 < s <= span / 2**16


@pytest.mark.parametrize("range_", [(0.0, 0.0), (5.0, 1.0), (0.0, math.inf), (math.nan, 1.0)])
def test_no_finite_positive_span_or_bits_0_is_full_precision(range_: tuple[float, float]) -> None:
    assert storage_step(range_) == 0.0
    assert storage_step((0.0, 20.0), bits=0) == 0.0


def test_quantize_is_exact_within_half_a_step_and_leaves_the_rest() -> None:
    rng = np.random.default_rng(7)
    v = rng.uniform(-3.0, 23.0, 10_000)
    step = 2.0**-12
    q = quantize(v, np.full(v.shape, step))
    assert np.all(np.abs(q - v) <= step / 2)
    assert np.all(q / step == np.round(q / step))  # exact multiples
    # the low mantissa bits are zero: what lets compression drop them
    mant = q.view(np.uint64) & np.uint64((1 << 52) - 1)
    nz = q != 0
    assert np.all((mant[nz] & np.uint64((1 << 20) - 1)) == 0)
    # step 0 or a value that is not finite: unchanged
    w = np.array([0.123456789, np.nan, np.inf, 1e308, -5e30])
    out = quantize(w, np.array([0.0, step, step, step, step]))
    assert out[0] == w[0] and np.isnan(out[1]) and out[2] == np.inf
    assert out[3] == 1e308 and out[4] == -5e30  # huge: no overflow to inf, kept (a multiple already)
    assert quantize(v, np.zeros(v.shape)) is not v  # a copy: the caller's column is not changed
