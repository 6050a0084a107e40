"""Sensor health: bad quality, out of range, stuck, spikes, stale; a faulty sensor raises no process alarm."""

from __future__ import annotations

import pytest
from rules_helpers import at, feed, rows, runner

from hazmon.plant import Condition, Level, Plant, StaleChange


def _noise(t: int) -> float:
    """Small deterministic wiggle, as a live transmitter shows."""
    return ((t * 7919) % 11 - 5) * 0.0004


CASES = [
    (
        "bad quality: fault from the first of two bad readings, value unused, clears after 60 s good",
        {"LT-101": lambda t: (2.2, 2) if 10 <= t < 20 else 1.0 + _noise(t)},
        100,
        [(10.0, "LT-101", "bad_quality", True), (79.0, "LT-101", "bad_quality", False)],
    ),
    (
        "a Bad status without a value (NaN) is bad quality, not out of range",
        {"LT-101": lambda t: (float("nan"), 2) if 10 <= t < 20 else 1.0 + _noise(t)},
        100,
        [(10.0, "LT-101", "bad_quality", True), (79.0, "LT-101", "bad_quality", False)],
    ),
    (
        "a gas detector saturated above its range alarms even when marked bad",
        {"GT-201": lambda t: (100.5, 2) if t >= 10 else 0.0},
        20,
        [
            (13.0, "GT-201", "gas_second", True),
            (13.0, "GT-201", "gas_first", True),
            (13.0, "lpg-gds", "vote_unconfirmed", True),
        ],
    ),
    (
        "an isolated bad reading is dropped, not a fault",
        {"LT-101": lambda t: (2.2, 2) if t in (10, 30) else 1.0 + _noise(t)},
        100,
        [],
    ),
    (
        "flickering bad quality is one fault",
        {"LT-101": lambda t: (1.0, 2) if t % 20 in (0, 1) and t < 100 else 1.0 + _noise(t)},
        200,
        [(0.0, "LT-101", "bad_quality", True), (141.0, "LT-101", "bad_quality", False)],
    ),
    (
        "uncertain quality is used",
        {"LT-101": lambda t: (1.95, 1)},
        10,
        [(5.0, "LT-101", "h", True)],
    ),
    (
        "out of range (NAMUR NE 43 band) is a fault, not a high-high",
        {"LT-101": lambda t: 3.0 if 10 <= t < 30 else 1.0 + _noise(t)},
        100,
        [(10.0, "LT-101", "out_of_range", True), (89.0, "LT-101", "out_of_range", False)],
    ),
    (
        "inside the NE 43 band above the range is still a value (high-high)",
        {"LT-101": lambda t: 2.45},
        10,
        [(5.0, "LT-101", "hh", True), (5.0, "LT-101", "h", True)],
    ),
    (
        "a single spike is a fault, not an alarm; it clears after the hold time",
        {"LT-101": lambda t: 2.3 if t == 30 else 1.0 + _noise(t)},
        400,
        [(31.0, "LT-101", "spike", True), (331.0, "LT-101", "spike", False)],
    ),
    (
        "a step is not a spike: judged at its own time",
        {"LT-101": lambda t: 2.3 if t >= 30 else 1.0 + _noise(t)},
        40,
        [(35.0, "LT-101", "hh", True), (35.0, "LT-101", "h", True)],
    ),
    (
        "repeated spikes raise the fault once",
        {"LT-101": lambda t: 2.3 if t % 40 == 20 else 1.0 + _noise(t)},
        300,
        [(21.0, "LT-101", "spike", True)],
    ),
]


@pytest.mark.parametrize(("name", "series", "seconds", "expected"), CASES, ids=[c[0] for c in CASES])
def test_fault_table(
    example_plant: Plant, name: str, series: dict[str, object], seconds: int, expected: list[object]
) -> None:
    r = runner(example_plant)
    fs = feed(r, series, range(seconds))  # type: ignore[arg-type]
    assert rows(fs) == expected
    assert all(f.level is Level.FAULT for f in fs if f.condition in (Condition.SPIKE, Condition.BAD_QUALITY))


def test_stuck_value_is_a_fault_after_the_configured_time(example_plant: Plant) -> None:
    r = runner(example_plant, stuck_after_s=600.0)
    # TT-101 reports every 5 s; frozen at 21.3 from t=100 to t=1000, then moving again
    fs = feed(
        r,
        {"TT-101": lambda t: None if t % 5 else (21.3 if 100 <= t < 1000 else 20.0 + _noise(t) * 10)},
        range(1100),
    )
    assert rows(fs) == [(700.0, "TT-101", "stuck", True), (1000.0, "TT-101", "stuck", False)]


def test_gas_detector_at_zero_is_not_stuck(example_plant: Plant) -> None:
    r = runner(example_plant, stuck_after_s=60.0)
    assert feed(r, {"GT-201": lambda t: 0.0}, range(600)) == []


def test_stuck_sensor_raises_no_process_alarm(example_plant: Plant) -> None:
    r = runner(example_plant, stuck_after_s=60.0)
    fs = feed(r, {"LT-101": lambda t: 1.0 + _noise(t) if t < 10 else 1.5}, range(200))
    assert rows(fs) == [(70.0, "LT-101", "stuck", True)]
    # frozen at a high value after being stuck: no high alarm from it
    fs = feed(r, {"LT-101": lambda t: 1.5}, range(200, 300))
    assert fs == []


def test_stale_from_collector_freezes_process_alarms(example_plant: Plant) -> None:
    r = runner(example_plant)
    stale = {
        3: [StaleChange("LT-101", True, at(3), "endpoint dcs disconnected")],
        50: [StaleChange("LT-101", False, at(50), "readings resumed")],
    }
    fs = feed(r, {"LT-101": lambda t: 1.95 if t < 3 or t >= 50 else None}, range(60), stale)
    assert rows(fs) == [
        (3.0, "LT-101", "stale", True),  # the pending high alarm (since t=0) is dropped
        (50.0, "LT-101", "stale", False),
        (55.0, "LT-101", "h", True),
    ]
    assert "endpoint dcs disconnected" in fs[0].message_en
    assert "数据中断" in fs[0].message_zh


def test_active_alarm_is_kept_while_the_sensor_is_faulty(example_plant: Plant) -> None:
    r = runner(example_plant)
    fs = feed(r, {"LT-101": lambda t: 2.1 if t < 20 else (0.5, 2)}, range(100))
    assert rows(fs) == [
        (5.0, "LT-101", "hh", True),
        (5.0, "LT-101", "h", True),
        (20.0, "LT-101", "bad_quality", True),
    ]


def test_own_stale_detection_when_configured(example_plant: Plant) -> None:
    r = runner(example_plant, stale_factor=3.0)
    fs = feed(r, {"LT-101": lambda t: 1.0 + _noise(t) if t < 10 or t >= 30 else None}, range(40))
    assert rows(fs) == [(12.0, "LT-101", "stale", True), (30.0, "LT-101", "stale", False)]
    assert "3 x 1 s" in fs[0].message_en


def test_late_and_unknown_readings_are_counted_and_dropped(example_plant: Plant) -> None:
    from hazmon.plant import Reading

    r = runner(example_plant)
    r.process([Reading("LT-101", at(10), 1.0)], [], at(10))
    assert r.process([Reading("LT-101", at(5), 2.2), Reading("XX-999", at(10), 1.0)], [], at(10)) == []
    c = r.counters
    assert (c["late"], c["unknown_tag"], c["readings"]) == (1, 1, 2)


def test_malformed_readings_are_dropped_and_counted_the_rest_judged(example_plant: Plant) -> None:
    from hazmon.plant import Reading

    r = runner(example_plant)
    bad = Reading("LT-101", at(0), "high")  # type: ignore[arg-type]
    good = [Reading("LT-102", at(t), 1.95) for t in range(6)]
    fs = r.process([bad, *good], [], at(5))
    assert rows(fs) == [(5.0, "LT-102", "h", True)]
    assert (r.counters["bad_value"], r.counters["unknown_tag"], r.counters["readings"]) == (1, 0, 6)
