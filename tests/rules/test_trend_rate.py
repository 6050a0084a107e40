"""Rate of change and trend prediction; quiet on day/night cycles, pump cycles and noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rules_helpers import T0, S, feed, feed_chunks, rows, runner

from hazmon.plant import Condition, Level, Plant
from hazmon.rules import robust_trend


def test_rate_of_rise_alarm_at_exact_time(example_plant: Plant) -> None:
    # LT-101 (row 0, buckets aligned to whole tens): rate limit 0.05 m/min, on 5 s off 10 s.
    # Ramp 0.1 m/min from t=0: the 60 s rate exists when bucket 6 closes (t=70): pending
    # from 70, fires at 75. The ramp stops at t=120; bucket k (10k..10k+9) closing at
    # 10(k+1) compares with bucket k-6: flat 1.2 m minus the ramp's mean at 10(k-6)+4.5
    # falls to the clear level 0.8 x 0.05 m/min first for k=16 (close at 170): cleared
    # after the 10 s off-delay at 180.
    r = runner(example_plant)
    fs = feed(r, {"LT-101": lambda t: 1.0 + 0.1 / 60 * min(t, 120)}, range(300))
    assert rows(fs) == [(75.0, "LT-101", "rate", True), (180.0, "LT-101", "rate", False)]
    assert fs[0].value == pytest.approx(0.1, rel=1e-4)
    assert fs[0].limit == 0.05
    assert fs[0].level is Level.FIRST
    assert "rising" in fs[0].message_en and "上升" in fs[0].message_zh


def test_prediction_of_high_high_with_expected_time(example_plant: Plant) -> None:
    # LT-101 HH 2.04 m; 0.01 m/min from 1.5 m reaches HH at t = 3240 s. Bucket means of a
    # line are its value at t=10k+4.5 while the fit places them at the bucket middle 10k+5,
    # so the expected crossing is 3240.5 s. Within 30 min first at the close at t=1450,
    # fired after the 30 s on-delay at 1480; cleared when HH itself activates.
    r = runner(example_plant)
    fs = feed(r, {"LT-101": lambda t: 1.5 + 0.01 / 60 * t}, range(3300))
    got = rows(fs)
    assert got[0] == (1480.0, "LT-101", "predict_hh", True)
    p = fs[0]
    assert p.level is Level.PREDICTIVE
    assert p.expected_at_us is not None
    assert (p.expected_at_us - T0) / S == pytest.approx(3240.5, abs=0.05)
    assert p.limit == 2.04
    assert "will reach HH 2.04 m in about 29 min" in p.message_en
    assert "预计约 29 分钟后达到高高限" in p.message_zh
    # H 1.92 m at t=2520 and HH 2.04 m at t=3240, each after its 5 s on-delay; the
    # prediction clears as soon as HH is reached.
    assert got[1:] == [
        (2525.0, "LT-101", "h", True),
        (3245.0, "LT-101", "hh", True),
        (3245.0, "LT-101", "predict_hh", False),
    ]


def test_prediction_of_low_low(example_plant: Plant) -> None:
    r = runner(example_plant)
    fs = feed(r, {"LT-101": lambda t: 1.0 - 0.01 / 60 * t}, range(3000))
    # LL 0.24 m at t = 4560 s (4560.5 as fitted); within 30 min from the close at
    # t=2770 (4560.5 - 1800 = 2760.5), fired after the on-delay
    assert rows(fs) == [(2800.0, "LT-101", "predict_ll", True)]
    assert (fs[0].expected_at_us - T0) / S == pytest.approx(4560.5, abs=0.05)  # type: ignore[operator]
    assert fs[0].condition is Condition.PREDICT_LL


QUIET = [
    (
        "pump cycle shorter than the window: fill 4 min, empty 4 min, just below H",
        "LT-101",
        lambda t: 1.62 + 0.18 * (1 - abs(((t % 480) / 240.0) - 1)),
        5 * 3600,
    ),
    (
        "day/night temperature swing of ±12 °C with noise",
        "TT-101",
        lambda t: 20 + 12 * math.sin(2 * math.pi * t / 86400) + 0.3 * math.sin(t * 1.7),
        2 * 86400,
    ),
    ("noise only", "PT-101", lambda t: 0.9 + 0.01 * math.sin(t * 2.3) + 0.005 * math.sin(t * 0.71), 4 * 3600),
]


@pytest.mark.parametrize(("name", "tag", "fn", "seconds"), QUIET, ids=[q[0] for q in QUIET])
def test_quiet_on_cycles_and_noise(
    example_plant: Plant, name: str, tag: str, fn: object, seconds: int
) -> None:
    r = runner(example_plant)
    period = int(example_plant.sensor(tag).period_s)
    fs = feed_chunks(r, {tag: fn}, range(0, seconds, period), 120)  # type: ignore[dict-item]
    assert rows(fs) == []


def test_robust_trend_ignores_spikes_and_reports_consistency() -> None:
    x = np.arange(60, dtype=np.float64)
    line = 2.0 + 0.5 * x
    spiky = line.copy()
    spiky[[5, 17, 40]] = [90.0, -50.0, 300.0]
    holes = line.copy()
    holes[10:20] = np.nan
    cycle = np.sin(2 * np.pi * x / 30)
    fit = robust_trend(np.vstack([line, spiky, holes, cycle]))
    assert fit.slope[:3] == pytest.approx([0.5, 0.5, 0.5])
    assert fit.level[:3] == pytest.approx([2.0 + 0.5 * 59] * 3)
    assert fit.pairs.tolist() == [30, 30, 20, 30]
    assert fit.consistency[0] == 1.0
    assert fit.consistency[3] < 0.6
