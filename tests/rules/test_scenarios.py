"""The rules on the simulators' scenarios (in-process `Simulation`, fixed seeds, simulated time).

The collector is not in the loop, so the rules' own staleness (``stale_factor``)
stands in for its `StaleChange` messages.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from hazmon.plant import Condition, Finding, Level, Plant
from hazmon.rules import RulesRunner, RulesSettings
from hazmon.simulators import Simulation

T0 = 1_800_000_000_000_000
PROCESS = {Level.FIRST, Level.SECOND, Level.PREDICTIVE}


def run(plant: Plant, scenario: str, seconds: float, seed: int = 1, step_s: float = 60.0) -> list[Finding]:
    sim = Simulation(plant, scenario, seed=seed, start_us=T0)
    r = RulesRunner(plant, RulesSettings(stale_factor=3.0))
    out: list[Finding] = []
    for now, batch in sim.steps(seconds, step_s=step_s):
        out += r.process(batch, [], now)
    return out


def first_at(fs: list[Finding], sensor: str, cond: Condition) -> int:
    (t,) = [f.ts_us for f in fs if f.sensor == sensor and f.condition is cond and f.active][:1] or [0]
    return t


@pytest.mark.slow
def test_chlorine_leak_first_then_second_level_downwind_only(example_plant: Plant) -> None:
    fs = run(example_plant, "chlorine-leak", 3600)
    gas = [f for f in fs if f.condition in (Condition.GAS_FIRST, Condition.GAS_SECOND)]
    raised = [(f.sensor, f.condition) for f in gas if f.active]
    # wind from the west: AT-101, east of the tanks, is downwind; first level, then second
    assert raised[:2] == [("AT-101", Condition.GAS_FIRST), ("AT-101", Condition.GAS_SECOND)]
    for tag in {t for t, _ in raised}:
        assert first_at(fs, tag, Condition.GAS_FIRST) < first_at(fs, tag, Condition.GAS_SECOND) or (
            first_at(fs, tag, Condition.GAS_SECOND) == 0
        )
    # the upwind detectors stay quiet, nothing is a sensor fault
    assert not {t for t, _ in raised} & {"AT-103", "AT-104", "AT-105"}
    assert [f for f in fs if f.level is Level.FAULT] == []
    # the leak is isolated at 35 min: everything clears, second level before first
    cleared = [(f.sensor, f.condition) for f in gas if not f.active]
    assert cleared[:2] == [("AT-101", Condition.GAS_SECOND), ("AT-101", Condition.GAS_FIRST)]
    # one detector of the 2-of-6 ring: unconfirmed, timed with the detector's own alarm
    # (batches of a minute: the vote takes the time of the member's transition)
    vote = next(f for f in fs if f.condition is Condition.VOTE_UNCONFIRMED and f.active)
    assert vote.ts_us == first_at(fs, "AT-101", Condition.GAS_FIRST)
    assert not [f for f in fs if f.condition is Condition.VOTE_CONFIRMED]
    second = next(f for f in gas if f.condition is Condition.GAS_SECOND)
    assert second.level is Level.SECOND and second.limit == pytest.approx(2.0 * 24.055 / 70.906)


@pytest.mark.slow
def test_lpg_overfill_predicted_at_least_ten_minutes_before_high_high(example_plant: Plant) -> None:
    fs = run(example_plant, "lpg-overfill", 2 * 3600)
    pred = next(f for f in fs if f.sensor == "LT-201" and f.condition is Condition.PREDICT_HH and f.active)
    hh = first_at(fs, "LT-201", Condition.HH)
    assert hh > 0
    lead_min = (hh - pred.ts_us) / 60e6
    assert lead_min >= 10.0, f"prediction only {lead_min:.1f} min before HH"
    assert pred.expected_at_us is not None
    # the expected crossing is within 25 % of the lead time of the real one (a straight
    # line fitted to a sphere filling at constant flow: the level rises faster near
    # the top, so the real crossing comes a few minutes before the expected one)
    assert abs(pred.expected_at_us - hh) <= 0.25 * (hh - pred.ts_us)
    assert "will reach HH 10.5 m in about" in pred.message_en
    # nothing else on the plant
    assert {f.sensor for f in fs} == {"LT-201"}


@pytest.mark.slow
def test_sphere_heat_predicts_pressure_high_high(example_plant: Plant) -> None:
    fs = run(example_plant, "sphere-heat", 3 * 3600)
    pred = next(f for f in fs if f.sensor == "PT-201" and f.condition is Condition.PREDICT_HH and f.active)
    hh = first_at(fs, "PT-201", Condition.HH)
    assert hh > 0 and (hh - pred.ts_us) / 60e6 >= 10.0


@pytest.mark.slow
def test_sensor_faults_each_fault_once_and_no_process_alarm(example_plant: Plant) -> None:
    # batches of 5 s, as the daemon's ticks would be: the rules' own staleness needs
    # to look between batches to see a 60 s outage
    fs = run(example_plant, "sensor-faults", 3600, step_s=5.0)
    assert [f for f in fs if f.level in PROCESS] == []
    raised = [(f.sensor, f.condition) for f in fs if f.active]
    times = Counter(raised)
    # AT-103 has two separate incidents: its own dropout (10-15 min), then the gds outage
    assert times.pop(("AT-103", Condition.STALE)) == 2
    assert set(times.values()) == {1}, "a fault was raised twice"
    expected = {
        ("LT-102", Condition.STUCK),
        ("PT-202", Condition.SPIKE),
        ("AT-103", Condition.STALE),  # dropout
        ("LT-302", Condition.OUT_OF_RANGE),
        ("GT-205", Condition.BAD_QUALITY),
        ("TT-202", Condition.OUT_OF_RANGE),
    }
    assert expected <= set(raised)
    # the endpoint outages: every sensor of dcs (16 min) and of gds (20 min) goes stale once
    dcs = {s.tag for s in example_plant.sensors() if getattr(s.binding, "node", None)}
    gds = {s.tag for s in example_plant.sensors()} - dcs
    stale = {t for t, c in raised if c is Condition.STALE}
    assert dcs | gds == stale
    # what is not found: TT-301's drift (no redundant sensor to compare with) and
    # PT-101's uncertain quality (an uncertain value is still used)
    assert not {c for t, c in raised if t in ("TT-301", "PT-101") and c is not Condition.STALE}
    # every fault clears by the end of the hour
    assert {(f.sensor, f.condition) for f in fs if not f.active} == set(raised)


@pytest.mark.slow
def test_normal_operation_raises_no_alarm(example_plant: Plant) -> None:
    """A simulated week of `normal` (issue 5): no process alarm, no fault; the rate is printed."""
    days = float(os.environ.get("HAZMON_RULES_NORMAL_DAYS", "7"))
    fs = run(example_plant, "normal", days * 86400, step_s=600.0)
    process = [f for f in fs if f.level in PROCESS]
    print(
        f"normal, {days:g} simulated days: {len(process)} process alarms "
        f"({len(process) / days:g} per day), {len(fs)} findings in all"
    )
    assert process == []
    assert fs == []
