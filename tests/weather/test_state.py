"""Warnings in force and their findings: tables of (alerts, now) -> state, time passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from hazmon.plant import Plant
from hazmon.plant.findings import Condition
from hazmon.plant.model import Location
from hazmon.plant.standards import Level
from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.weather.cap import Alert, parse
from hazmon.weather.state import active_at, in_force, transitions
from tests.weather.test_cap import alert, sample

CST = timezone(timedelta(hours=8))
YELLOW, ORANGE, CANCEL = (
    "32011641600000_20260804101500",
    "32011641600000_20260804140000",
    "32011641600000_20260804180000",
)


def at(h: int, m: int = 0) -> datetime:
    return datetime(2026, 8, 4, h, m, tzinfo=CST)


def _all() -> list[Alert]:
    return [
        alert("lightning_yellow.xml"),
        alert("lightning_orange_update.xml"),
        alert("lightning_cancel.xml"),
    ]


@pytest.mark.parametrize(
    ("now", "names", "expected"),
    [
        (at(10, 14), ["lightning_yellow.xml"], []),
        (at(10, 15), ["lightning_yellow.xml"], [YELLOW]),
        (at(22, 14), ["lightning_yellow.xml"], [YELLOW]),
        (at(22, 15), ["lightning_yellow.xml"], []),  # ends at expiry
        (at(13, 59), ["lightning_yellow.xml", "lightning_orange_update.xml"], [YELLOW]),
        (at(14, 0), ["lightning_yellow.xml", "lightning_orange_update.xml"], [ORANGE]),  # replaced
        (
            at(17, 59),
            ["lightning_yellow.xml", "lightning_orange_update.xml", "lightning_cancel.xml"],
            [ORANGE],
        ),
        (at(18, 0), ["lightning_yellow.xml", "lightning_orange_update.xml", "lightning_cancel.xml"], []),
        # received out of order: applied by sent time
        (at(19, 0), ["lightning_cancel.xml", "lightning_orange_update.xml", "lightning_yellow.xml"], []),
        # a cancel of a warning never received changes nothing
        (at(19, 0), ["lightning_yellow.xml", "lightning_cancel.xml"], [YELLOW]),
    ],
)
def test_in_force(now: datetime, names: list[str], expected: list[str]) -> None:
    assert [a.identifier for a in in_force([alert(n) for n in names], now)] == expected


def test_exercise_and_test_warnings_take_no_effect() -> None:
    for status in ("Exercise", "Test", "Draft"):
        doc = sample("lightning_yellow.xml").replace(
            b"<status>Actual</status>", f"<status>{status}</status>".encode()
        )
        a = parse(doc)
        assert isinstance(a, Alert)
        assert in_force([a], at(12)) == []


def test_the_lightning_day_at_each_hazard_source(example_plant: Plant) -> None:
    out = transitions(example_plant, _all(), at(23))
    lpg = [(t.finding.ts_us, t.finding.active, t.finding.level, t.finding.value) for t in out
           if t.finding.hazard_source == "lpg-spheres"]  # fmt: skip
    us = lambda t: int(t.timestamp() * 1e6)  # noqa: E731
    assert lpg == [
        (us(at(10, 15)), True, Level.PREDICTIVE, float(Colour.YELLOW)),
        (us(at(14)), True, Level.FIRST, float(Colour.ORANGE)),  # the same alarm, tightened
        (us(at(18)), False, Level.FIRST, float(Colour.ORANGE)),  # cancelled
    ]
    starts = [t for t in out if t.finding.active and t.finding.ts_us == us(at(10, 15))]
    assert {t.finding.hazard_source for t in starts} == {"cl2-tankfarm", "lpg-spheres", "meoh-tankfarm"}
    f = starts[0].finding
    assert f.condition is Condition.WEATHER_WARNING and f.sensor == "weather/lightning"
    assert "六合区气象台发布雷电黄色预警信号" in f.message_zh and "24小时值班" in f.message_zh
    assert "Luhe District: yellow lightning warning" in f.message_en
    assert starts[0].duties == ("24h_monitoring", "stop_outdoor_work", "24h_duty")
    ends = [t for t in out if not t.finding.active]
    assert len(ends) == 3 and all(t.duties == () and t.active is None for t in ends)
    assert all(t.finding.ts_us == us(at(18)) for t in ends)


def test_transitions_depend_only_on_now(example_plant: Plant) -> None:
    full = transitions(example_plant, _all(), at(23))
    early = transitions(example_plant, _all(), at(12))
    assert early == [t for t in full if t.finding.ts_us <= int(at(12).timestamp() * 1e6)]
    assert transitions(example_plant, _all(), at(23)) == full


def test_without_cancel_the_warning_ends_at_expiry(example_plant: Plant) -> None:
    out = transitions(example_plant, [alert("lightning_yellow.xml")], at(23))
    ends = [t.finding for t in out if not t.finding.active]
    assert {f.ts_us for f in ends} == {int(at(22, 15).timestamp() * 1e6)}


def _polygon_only(example_plant: Plant, code: str) -> Alert:
    doc = sample("lightning_yellow.xml").decode().replace("<value>320116</value>", f"<value>{code}</value>")
    a = parse(doc.encode())
    assert isinstance(a, Alert)
    return a


def test_a_region_nobody_watches_concerns_no_hazard_source(example_plant: Plant) -> None:
    assert active_at(example_plant, [_polygon_only(example_plant, "110105")], at(12)) == {}


def test_the_polygon_reaches_a_hazard_source_by_its_location(example_plant: Plant) -> None:
    a = _polygon_only(example_plant, "110105")  # a Beijing code; polygon 32.2-32.5 N, 118.7-119.0 E
    spheres = example_plant.hazard_source("lpg-spheres")
    on_edge = replace(spheres, location=Location(32.20, 118.85))  # on the polygon's south edge
    outside = replace(example_plant.hazard_source("cl2-tankfarm"), location=Location(32.19, 118.85))
    others = tuple(h for h in example_plant.hazard_sources if h.id not in ("lpg-spheres", "cl2-tankfarm"))
    plant = replace(example_plant, hazard_sources=(on_edge, outside, *others))
    act = active_at(plant, [a], at(12))
    assert set(act) == {("lpg-spheres", WarningKind.LIGHTNING)}
    assert act["lpg-spheres", WarningKind.LIGHTNING].identifier == YELLOW


def test_the_most_severe_colour_of_a_kind_decides(example_plant: Plant) -> None:
    red = sample("lightning_yellow.xml").decode().replace(YELLOW, "32011641600000_20260804110000")
    red = red.replace("黄色", "红色").replace("<sent>2026-08-04T10:15", "<sent>2026-08-04T11:00")
    r = parse(red.encode())
    assert isinstance(r, Alert) and r.colour is Colour.RED
    act = active_at(example_plant, [alert("lightning_yellow.xml"), r], at(12))
    assert act["lpg-spheres", WarningKind.LIGHTNING].colour is Colour.RED
    assert act["lpg-spheres", WarningKind.LIGHTNING].level is Level.FIRST


def test_an_exercise_cancel_does_not_end_an_actual_warning() -> None:
    doc = sample("lightning_cancel.xml").replace(b"<status>Actual</status>", b"<status>Exercise</status>")
    drill = parse(doc.replace(ORANGE.encode(), YELLOW.encode()))
    assert isinstance(drill, Alert) and drill.references[0][1] == YELLOW
    assert [a.identifier for a in in_force([alert("lightning_yellow.xml"), drill], at(19))] == [YELLOW]
