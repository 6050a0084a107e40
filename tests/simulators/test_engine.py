"""The in-process simulated plant: determinism, physics, scenarios and faults."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hazmon.plant import Plant, Quality, Reading, effective_limits
from hazmon.plant.model import SensorKind
from hazmon.simulators import Simulation, load_scenario, parse_scenario_text, scenario_names

START = 1_780_000_000_000_000  # 2026-05-28T20:26:40Z


def _series(readings: list[Reading], tag: str) -> list[Reading]:
    return [r for r in readings if r.tag == tag]


def _run(plant: Plant, scenario: str, duration_s: float, seed: int = 1) -> list[Reading]:
    return list(Simulation(plant, scenario, seed=seed, start_us=START).readings(duration_s))


def test_builtin_scenarios_all_load() -> None:
    assert scenario_names() == [
        "alarm-flood",
        "chlorine-leak",
        "lpg-overfill",
        "normal",
        "sensor-faults",
        "sphere-heat",
    ]
    for name in scenario_names():
        assert load_scenario(name).name == name


def test_same_seed_same_values_different_seed_different(example_plant: Plant) -> None:
    a = _run(example_plant, "chlorine-leak", 900, seed=7)
    b = _run(example_plant, "chlorine-leak", 900, seed=7)
    c = _run(example_plant, "chlorine-leak", 900, seed=8)
    assert a == b
    assert len(a) == len(c)
    assert a != c


def test_values_do_not_depend_on_step_size(example_plant: Plant) -> None:
    one = [r for _, batch in Simulation(example_plant, "normal", 3, START).steps(600, 1.0) for r in batch]
    big = [r for _, batch in Simulation(example_plant, "normal", 3, START).steps(600, 37.0) for r in batch]
    assert one == big


def test_steps_yield_simulated_time_and_each_sensor_at_its_period(example_plant: Plant) -> None:
    sim = Simulation(example_plant, "normal", seed=1, start_us=START)
    steps = list(sim.steps(10.0, 1.0))
    assert [now for now, _ in steps] == [START + i * 1_000_000 for i in range(1, 11)]
    for now, batch in steps:
        assert all(now - 1_000_000 < r.ts_us <= now for r in batch)
    counts: dict[str, int] = defaultdict(int)
    for _, batch in steps:
        for r in batch:
            counts[r.tag] += 1
    for s in example_plant.sensors():
        assert counts[s.tag] == int(10 // s.period_s), s.tag
    assert sim.now_us == START + 10_000_000


@pytest.mark.slow
def test_normal_day_stays_inside_every_normal_band(example_plant: Plant) -> None:
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    n = 0
    for r in Simulation(example_plant, "normal", seed=11, start_us=START).readings(86_400):
        assert r.quality is Quality.GOOD, r
        lo[r.tag] = min(lo.get(r.tag, r.value), r.value)
        hi[r.tag] = max(hi.get(r.tag, r.value), r.value)
        n += 1
    assert n > 2_000_000
    for s in example_plant.sensors():
        lim = effective_limits(s)
        top = lim.h if lim.h is not None else lim.hh
        bottom = lim.l if lim.l is not None else lim.ll
        if top is not None:
            assert hi[s.tag] < top, (s.tag, hi[s.tag], top)
        if bottom is not None:
            assert lo[s.tag] > bottom, (s.tag, lo[s.tag], bottom)
    # the plant is alive: levels move (pumps run), temperatures follow the day
    assert hi["LT-301"] - lo["LT-301"] > 1.0
    assert hi["TT-101"] - lo["TT-101"] > 2.0


def test_chlorine_leak_reaches_downwind_detector_not_upwind(example_plant: Plant) -> None:
    readings = _run(example_plant, "chlorine-leak", 3600)
    at101 = next(s for s in example_plant.sensors() if s.tag == "AT-101")
    lim = effective_limits(at101)
    assert lim.h is not None and lim.hh is not None
    series = _series(readings, "AT-101")
    first = next(r.ts_us for r in series if r.value >= lim.h)
    second = next(r.ts_us for r in series if r.value >= lim.hh)
    events = load_scenario("chlorine-leak").events
    leak_at = START + int(min(e.at_s for e in events) * 1e6)  # the leak, then its isolation
    assert leak_at < first < second < START + int(max(e.at_s for e in events) * 1e6)
    # it recovers once the leak is stopped
    assert series[-1].value < lim.h
    for upwind in ("AT-103", "AT-104", "AT-105"):
        assert max(r.value for r in _series(readings, upwind)) < lim.h / 2, upwind


def test_leak_follows_the_wind(example_plant: Plant) -> None:
    text = """
name: east-wind
duration_s: 20m
wind: {from_deg: 90, speed_m_s: 2.0, meander_deg: 0}
events:
  - {at: 0, leak: {id: l, chemical: chlorine, equipment: V-102, rate_g_s: 0.05}}
"""
    readings = list(Simulation(example_plant, parse_scenario_text(text), 1, START).readings(1200))
    west = max(r.value for r in _series(readings, "AT-104"))
    east = max(r.value for r in _series(readings, "AT-101"))
    assert west > 0.5
    assert east <= 0.08  # background noise only (4 sigma)


def test_detector_lags_the_leak(example_plant: Plant) -> None:
    text = """
name: step
wind: {from_deg: 270, speed_m_s: 2.0, meander_deg: 0}
events:
  - {at: 0, leak: {id: l, chemical: chlorine, equipment: V-102, rate_g_s: 0.1}}
"""
    readings = _series(
        list(Simulation(example_plant, parse_scenario_text(text), 1, START).readings(600)), "AT-101"
    )
    final = readings[-1].value
    at_10s = next(r.value for r in readings if r.ts_us == START + 10_000_000)
    at_60s = next(r.value for r in readings if r.ts_us == START + 60_000_000)
    assert at_10s < 0.5 * final  # tens of seconds of response time, not instant
    assert at_60s > 0.8 * final


def test_sphere_pressure_rises_with_temperature(example_plant: Plant) -> None:
    readings = _run(example_plant, "sphere-heat", 3 * 3600)
    t = _series(readings, "TT-201")
    p = _series(readings, "PT-201")
    # hourly means rise together
    hours = [(START + h * 3_600_000_000, START + (h + 1) * 3_600_000_000) for h in range(3)]
    tm = [
        sum(r.value for r in t if a < r.ts_us <= b) / len([r for r in t if a < r.ts_us <= b])
        for a, b in hours
    ]
    pm = [
        sum(r.value for r in p if a < r.ts_us <= b) / len([r for r in p if a < r.ts_us <= b])
        for a, b in hours
    ]
    assert tm[0] < tm[1] < tm[2]
    assert pm[0] < pm[1] < pm[2]
    assert max(r.value for r in p) > 1.6  # through HH
    # the other sphere, not heated, stays at its vapour pressure
    assert max(r.value for r in _series(readings, "PT-202")) < 1.2


def test_lpg_overfill_rises_slowly_through_h_then_hh(example_plant: Plant) -> None:
    series = _series(_run(example_plant, "lpg-overfill", 7200), "LT-201")
    h = next(r.ts_us for r in series if r.value >= 9.8)
    hh = next(r.ts_us for r in series if r.value >= 10.5)
    assert hh - h > 20 * 60_000_000  # a trend to see long before HH
    before = [r for r in series if r.ts_us <= hh]
    per_min = [(b.value - a.value) for a, b in zip(before[::60], before[60::60], strict=False)]
    assert max(per_min) < 0.05  # slow: below the 0.1 m/min rate-of-change limit


def test_pumps_move_levels_within_a_vessel(example_plant: Plant) -> None:
    text = """
name: pump
operation: manual
initial: {T-301: {level_m: 5.0}}
events:
  - {at: 0, pump: {equipment: T-301, in_m3_h: 125.8}}
  - {at: 1h, pump: {equipment: T-301, in_m3_h: 0, out_m3_h: 251.6}}
"""
    sim = Simulation(example_plant, parse_scenario_text(text), 1, START)
    list(sim.steps(3600, 60))
    assert sim.vessel_state("T-301")["level_m"] == pytest.approx(6.0, abs=0.01)
    list(sim.steps(1800, 60))
    assert sim.vessel_state("T-301")["level_m"] == pytest.approx(5.0, abs=0.01)


def test_bad_quality_outside_range(example_plant: Plant) -> None:
    """A detector driven beyond its range saturates (NAMUR NE 43) with BAD quality."""
    text = """
name: big
wind: {from_deg: 270, speed_m_s: 1.0, meander_deg: 0}
events:
  - {at: 0, leak: {id: l, chemical: chlorine, equipment: V-102, rate_g_s: 5}}
"""
    series = _series(
        list(Simulation(example_plant, parse_scenario_text(text), 1, START).readings(600)), "AT-101"
    )
    last = series[-1]
    assert last.quality is Quality.BAD
    assert last.value == pytest.approx(10.0 * (1 + 0.5 / 16), abs=0.001)


def test_each_fault_appears(example_plant: Plant) -> None:
    sim = Simulation(example_plant, "sensor-faults", seed=1, start_us=START)
    readings = list(sim.readings(3600))
    m = 60_000_000

    def window(tag: str, a_min: float, b_min: float) -> list[Reading]:
        return [r for r in readings if r.tag == tag and START + a_min * m < r.ts_us <= START + b_min * m]

    # stuck: LT-102 frozen for 10 min from 2 min
    assert len({r.value for r in window("LT-102", 2, 11.9)}) == 1
    assert len({r.value for r in window("LT-102", 13, 20)}) > 1
    # drift: TT-301 walks 20 °C/h from 5 min for 30 min
    drift = window("TT-301", 5, 34.9)
    assert drift[-1].value - drift[0].value > 8.0
    # spikes: PT-202 jumps by 0.3 x span now and then
    jumps = [
        abs(b.value - a.value)
        for a, b in zip(window("PT-202", 8, 17.99), window("PT-202", 8, 17.99)[1:], strict=False)
    ]
    assert sum(j > 0.5 for j in jumps) >= 10
    assert (
        max(
            abs(b.value - a.value)
            for a, b in zip(window("PT-202", 20, 30), window("PT-202", 20, 30)[1:], strict=False)
        )
        < 0.05
    )
    # dropout: AT-103 silent for 5 min
    assert window("AT-103", 10, 14.99) == []
    assert len(window("AT-103", 15, 16)) == 30
    # out of range high: LT-302 BAD beyond its range
    oor = window("LT-302", 12, 16.99)
    assert oor and all(r.quality is Quality.BAD and r.value > 15.9 for r in oor)
    assert all(r.quality is Quality.GOOD for r in window("LT-302", 17, 20))
    # out of range low: TT-202 BAD below -40
    assert all(r.quality is Quality.BAD and r.value < -40 for r in window("TT-202", 25, 27.99))
    # bad and uncertain quality
    assert {r.quality for r in window("GT-205", 14, 18.99)} == {Quality.BAD}
    assert {r.quality for r in window("PT-101", 28, 30.99)} == {Quality.UNCERTAIN}
    # endpoint outages: nothing from dcs sensors during 16-17 min, nothing from gds during 20-21
    dcs = {s.tag for s in example_plant.sensors() if s.binding.endpoint == "dcs"}
    gds = {s.tag for s in example_plant.sensors() if s.binding.endpoint == "gds"}
    during_dcs = [r for r in readings if START + 16 * m < r.ts_us < START + 17 * m]
    assert during_dcs and not any(r.tag in dcs for r in during_dcs)
    during_gds = [r for r in readings if START + 20 * m < r.ts_us < START + 21 * m]
    assert during_gds and not any(r.tag in gds for r in during_gds)
    assert sim.counters["outage"] > 0 and sim.counters["dropout"] == 150


def test_alarm_flood_drives_many_detectors_over_their_levels(example_plant: Plant) -> None:
    readings = _run(example_plant, "alarm-flood", 15 * 60)
    over = set()
    for s in example_plant.sensors():
        if s.kind in (SensorKind.GAS_COMBUSTIBLE, SensorKind.GAS_TOXIC):
            lim = effective_limits(s)
            assert lim.h is not None
            if any(r.value >= lim.h for r in _series(readings, s.tag)):
                over.add(s.tag)
    bad = {r.tag for r in readings if r.quality is not Quality.GOOD}
    assert len(over) + len(bad) > 10


def test_unknown_names_in_a_scenario_are_all_reported_at_construction(example_plant: Plant) -> None:
    text = """name: x
events:
  - {at: 0, fault: {sensor: NOPE-1, kind: stuck}}
  - {at: 90, pump: {equipment: T-999, in_m3_h: 5}}
  - {at: 120, outage: {endpoint: scada, duration_s: 5}}
  - {at: 130, leak: {id: l, chemical: chlorine, equipment: V-999, rate_g_s: 1}}
"""
    with pytest.raises(ValueError) as e:
        Simulation(example_plant, parse_scenario_text(text, "x.yaml"), 1, START)
    assert str(e.value).splitlines() == [
        "x.yaml: event at 0 s: fault on unknown sensor NOPE-1",
        "x.yaml: event at 90 s: unknown equipment T-999",
        "x.yaml: event at 120 s: outage of unknown endpoint scada",
        "x.yaml: event at 130 s: leak l: unknown equipment V-999",
    ]


def test_plant_without_equipment_still_simulates(example_plant: Plant) -> None:
    hs = tuple(replace(h, equipment=()) for h in example_plant.hazard_sources)
    plant = replace(example_plant, hazard_sources=hs)
    readings = list(Simulation(plant, "normal", 1, START).readings(60))
    assert {r.tag for r in readings} == {s.tag for s in plant.sensors()}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rate=st.floats(0.0, 50.0),
    from_deg=st.floats(0.0, 359.0),
    fault=st.sampled_from(["stuck", "drift", "spikes", "out_of_range", "bad_quality"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_reading_is_good_inside_its_range_or_flagged(
    example_plant: Plant, rate: float, from_deg: float, fault: str, seed: int
) -> None:
    text = f"""
name: prop
wind: {{from_deg: {from_deg:.3f}, speed_m_s: 1.5}}
events:
  - {{at: 0, leak: {{id: l, chemical: chlorine, equipment: V-102, rate_g_s: {rate:.6f}}}}}
  - {{at: 10, fault: {{sensor: AT-101, kind: {fault}, amount: 100}}}}
  - {{at: 10, fault: {{sensor: LT-101, kind: {fault}, amount: 100}}}}
"""
    ranges = {s.tag: s.range for s in example_plant.sensors()}
    for r in Simulation(example_plant, parse_scenario_text(text), seed, START).readings(120):
        lo, hi = ranges[r.tag]
        span = hi - lo
        if r.quality is Quality.GOOD:
            assert lo <= r.value <= hi, r
        else:
            assert r.quality is Quality.BAD or (fault == "bad_quality" and r.quality is Quality.UNCERTAIN), r
            assert lo - span * 0.4 / 16 - 1e-9 <= r.value <= hi + span / 16 + 1e-9, r
