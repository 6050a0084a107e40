"""`DEMO_SCENARIO=chlorine-leak make demo`: the leak starts within a minute, and the timeline printed says when."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from hazmon.plant import Plant, effective_limits, to_us
from hazmon.simulators import Simulation, load_scenario
from hazmon.simulators.scenario import Leak, StopLeak

START = to_us(datetime(2026, 7, 1, 6, 0, tzinfo=UTC))


def test_chlorine_leak_begins_within_a_minute_and_alarms_within_minutes(example_plant: Plant) -> None:
    sc = load_scenario("chlorine-leak")
    leaks = [e for e in sc.events if isinstance(e.action, Leak)]
    assert leaks and min(e.at_s for e in leaks) <= 60
    # the detector downwind sees it: AT-101 reaches its first level within 5 minutes of the start
    at101 = next(s for s in example_plant.sensors() if s.tag == "AT-101")
    lim = effective_limits(at101)
    assert lim.h is not None
    first = next(
        (
            r.ts_us
            for r in Simulation(example_plant, sc, 1, START).readings(600)
            if r.tag == "AT-101" and r.value >= lim.h
        ),
        None,
    )
    assert first is not None and first - START <= 5 * 60_000_000, first


def test_printed_timeline_matches_the_scenario() -> None:
    sc = load_scenario("chlorine-leak")
    out = subprocess.run(
        [sys.executable, "-m", "hazmon", "simulate", "--scenario", "chlorine-leak", "--timeline",
         "--start", "2026-07-01T06:00:00Z"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    assert lines[0] == f"scenario chlorine-leak: {sc.description}"
    rows = [ln.split(maxsplit=2) for ln in lines[1:]]
    # one row per event, in order, at the scenario's times (offset and UTC clock), then the end
    expected_at = [0.0, *sorted(e.at_s for e in sc.events), sc.duration_s]
    assert len(rows) == len(expected_at)
    for (offset, clock, _), at_s in zip(rows, expected_at, strict=True):
        h, m, s = (int(x) for x in offset.removeprefix("+").split(":"))
        assert h * 3600 + m * 60 + s == at_s
        t = datetime.fromtimestamp(START / 1e6 + at_s, UTC)
        assert clock == t.strftime("%H:%M:%SZ")
    whats = [w for _, _, w in rows]
    leak = next(e.action for e in sc.events if isinstance(e.action, Leak))
    stop = next(e.action for e in sc.events if isinstance(e.action, StopLeak))
    assert whats[1] == (
        f"leak {leak.id} starts: chlorine at {leak.equipment}, {leak.rate_g_s:g} g/s "
        f"growing to {leak.ramp_to_g_s:g} g/s over {leak.ramp_s / 60:g} min"
    )
    assert whats[2] == f"leak {stop.id} is isolated (stops)"
    assert whats[0].startswith(f"wind from {sc.wind.from_deg:g}° at {sc.wind.speed_m_s:g} m/s")
