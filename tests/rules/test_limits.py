"""Absolute limits: HH / H / L / LL with deadband, on-delay and off-delay; gas defaults."""

from __future__ import annotations

import pytest
from rules_helpers import at, feed, rows, runner

from hazmon.plant import Condition, Level, Plant


def _piecewise(*parts: tuple[int, float]) -> object:
    """Value from (start second, value) pairs: the last part whose start <= t."""

    def f(t: int) -> float:
        v = parts[0][1]
        for start, val in parts:
            if t >= start:
                v = val
        return v

    return f


# LT-101: hh 2.04, h 1.92, l 0.36, ll 0.24, deadband 0.02, on 5 s, off 10 s (examples/plant.yaml)
CASES = [
    ("on-delay elapses", {"LT-101": _piecewise((0, 1.95))}, 30, [(5.0, "LT-101", "h", True)]),
    ("excursion shorter than on-delay", {"LT-101": _piecewise((0, 1.95), (4, 1.80))}, 30, []),
    (
        "hovering at the limit gives one alarm, cleared once after deadband and off-delay",
        {"LT-101": lambda t: 1.95 if t < 10 else (1.91 if t % 2 else 1.93) if t < 70 else 1.88},
        100,
        [(5.0, "LT-101", "h", True), (80.0, "LT-101", "h", False)],
    ),
    (
        "inside the deadband does not clear",
        {"LT-101": _piecewise((0, 1.95), (10, 1.905))},
        100,
        [(5.0, "LT-101", "h", True)],
    ),
    (
        "high-high and high together, most severe first",
        {"LT-101": _piecewise((0, 2.10))},
        20,
        [(5.0, "LT-101", "hh", True), (5.0, "LT-101", "h", True)],
    ),
    (
        "low and low-low",
        {"LT-101": _piecewise((0, 1.0), (10, 0.30), (20, 0.20), (40, 1.0))},
        60,
        [
            (15.0, "LT-101", "l", True),
            (25.0, "LT-101", "ll", True),
            (50.0, "LT-101", "ll", False),
            (50.0, "LT-101", "l", False),
        ],
    ),
    (
        "off-delay restarts when the value returns",
        {"LT-101": _piecewise((0, 1.95), (10, 1.85), (15, 1.95), (20, 1.85))},
        60,
        [(5.0, "LT-101", "h", True), (30.0, "LT-101", "h", False)],
    ),
    # GT-201: propane %LEL, no limits in the plant file -> GB/T 50493: 25 / 50 %LEL; on 3 s, off 30 s
    (
        "combustible gas first and second level from the standard",
        {"GT-201": _piecewise((0, 0.0), (10, 30.0), (20, 60.0), (30, 0.0))},
        80,
        [
            (13.0, "GT-201", "gas_first", True),
            (13.0, "lpg-gds", "vote_unconfirmed", True),  # one detector of its 2-of-6 group
            (23.0, "GT-201", "gas_second", True),
            (60.0, "GT-201", "gas_second", False),
            (60.0, "GT-201", "gas_first", False),
            (60.0, "lpg-gds", "vote_unconfirmed", False),
        ],
    ),
]


@pytest.mark.parametrize(("name", "series", "seconds", "expected"), CASES, ids=[c[0] for c in CASES])
def test_limit_table(
    example_plant: Plant, name: str, series: dict[str, object], seconds: int, expected: list[object]
) -> None:
    r = runner(example_plant)
    assert rows(feed(r, series, range(seconds))) == expected  # type: ignore[arg-type]


def test_delay_completes_on_tick_without_new_reading(example_plant: Plant) -> None:
    r = runner(example_plant)
    assert feed(r, {"LT-101": lambda t: 1.95}, [0]) == []
    assert r.tick(at(4.9)) == []
    (f,) = r.tick(at(7))
    assert (f.ts_us, f.condition, f.level, f.active, f.value, f.limit) == (
        at(5),
        Condition.H,
        Level.FIRST,
        True,
        1.95,
        1.92,
    )
    assert r.tick(at(100)) == []  # not repeated while active


def test_several_readings_of_one_sensor_in_one_batch_are_taken_in_time_order(example_plant: Plant) -> None:
    from hazmon.plant import Reading

    r = runner(example_plant)
    batch = [Reading("LT-101", at(t), 1.95) for t in reversed(range(11))]
    fs = r.process(batch, [], at(10))
    assert rows(fs) == [(5.0, "LT-101", "h", True)]


def test_gas_defaults_levels_values_and_bilingual_messages(example_plant: Plant) -> None:
    r = runner(example_plant)
    fs = feed(
        r, {"AT-101": lambda t: 0.0 if t < 4 else 0.8, "AT-301": lambda t: 0.0 if t < 4 else 60.0}, range(20)
    )
    got = {(f.sensor, f.condition): f for f in fs if f.sensor in ("AT-101", "AT-301")}
    # chlorine: MAC 1 mg/m3 -> 1 and 2 mg/m3 = 0.3393 / 0.6785 ppm at 20 °C (GB/T 50493 §5.5.2)
    assert got["AT-101", Condition.GAS_FIRST].limit == pytest.approx(1.0 * 24.055 / 70.906)
    assert got["AT-101", Condition.GAS_SECOND].limit == pytest.approx(2.0 * 24.055 / 70.906)
    assert got["AT-101", Condition.GAS_SECOND].level is Level.SECOND
    assert got["AT-101", Condition.GAS_FIRST].level is Level.FIRST
    # methanol in mg/m3: PC-TWA 25 -> 25 / 50 mg/m3
    assert got["AT-301", Condition.GAS_FIRST].limit == 25.0
    assert got["AT-301", Condition.GAS_SECOND].limit == 50.0
    f = got["AT-101", Condition.GAS_SECOND]
    assert f.hazard_source == "cl2-tankfarm"
    assert "second alarm level" in f.message_en and "二级报警值" in f.message_zh
    assert f.message("zh") == f.message_zh


def test_oxygen_defaults_low_and_high() -> None:
    from hazmon.plant import loads

    plant = loads(OXYGEN_PLANT)
    r = runner(plant)
    fs = feed(
        r, {"OT-1": lambda t: 20.9 if t < 10 else 18.0 if t < 30 else 20.9 if t < 60 else 24.0}, range(80)
    )
    assert rows(fs) == [
        (10.0, "OT-1", "l", True),
        (30.0, "OT-1", "l", False),
        (60.0, "OT-1", "gas_first", True),
    ]
    assert [f.limit for f in fs] == [19.5, 19.5, 23.5]


def test_assessment_override_takes_precedence(example_plant: Plant) -> None:
    from hazmon.plant import Limits

    r = runner(example_plant)
    assert feed(r, {"LT-101": lambda t: 1.6}, range(10)) == []
    r.set_overrides({"LT-101": Limits(hh=1.8, h=1.5, deadband=0.02)})
    fs = feed(r, {"LT-101": lambda t: 1.6}, range(10, 20))
    assert rows(fs) == [(10.0, "LT-101", "h", True)]
    assert fs[0].limit == 1.5


OXYGEN_PLANT = """
enterprise: {id: t, name: 测试, name_en: Test, region: {province: 江苏省, city: 南京市, county: 六合区, code: "320116"}}
endpoints:
  mqtt: [{name: gds, url: "mqtt://127.0.0.1:1883"}]
hazard_sources:
  - id: hs1
    name: 测试
    people_within_500m: 0
    chemicals: [{chemical: chlorine, max_t: 10}]
    responsible:
      principal: {name: a}
      technical: {name: b}
      operational: {name: c}
    sensors:
      - {tag: OT-1, kind: oxygen, unit: "%VOL", range: [0, 30], period_s: 1,
         binding: {endpoint: gds, topic: t/OT-1}}
"""
