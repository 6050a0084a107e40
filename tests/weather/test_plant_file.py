"""The plant file: `location: {lat, lon}` per hazard source, and the `weather:` effects table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hazmon.plant import ConfigError, loads
from hazmon.plant.model import Location
from hazmon.plant.standards import Level
from hazmon.plant.weather_standards import EFFECTS, Colour, SourceKind, WarningKind
from hazmon.weather.matching import effect_for
from hazmon.weather.state import active_at
from tests.plant.test_config import BASE
from tests.weather.test_cap import alert

ANCHOR = "    people_within_500m: 120\n"


def with_location(text: str) -> str:
    assert ANCHOR in BASE
    return BASE.replace(ANCHOR, ANCHOR + f"    location: {text}\n", 1)


def test_location_is_optional_and_parsed() -> None:
    assert loads(BASE, "p.yaml").hazard_sources[0].location is None
    p = loads(with_location("{lat: 32.3, lon: 118.85}"), "p.yaml")
    assert p.hazard_sources[0].location == Location(32.3, 118.85)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{lat: 91, lon: 118}", "p.yaml:14: hazard_sources[0].location.lat: must be <= 90, got 91"),
        ("{lat: 32, lon: -181}", "p.yaml:14: hazard_sources[0].location.lon: must be >= -180, got -181"),
        ("{lat: 32}", "p.yaml:14: hazard_sources[0].location.lon: missing required key 'lon'"),
        (
            "{lat: north, lon: 118}",
            "p.yaml:14: hazard_sources[0].location.lat: expected a number, got text 'north'",
        ),
    ],
)
def test_a_bad_location_names_the_place(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads(with_location(text), "p.yaml")
    assert [str(x) for x in e.value.problems] == [problem]


def test_the_weather_section_replaces_the_effects_table() -> None:
    assert loads(BASE, "p.yaml").weather_effects == EFFECTS
    p = loads(
        BASE + "weather:\n  effects:\n    - {kind: heat, source: toxic, min_colour: yellow, level: second,"
        " duties: [24h_duty, cooling_check]}\n",
        "p.yaml",
    )
    [row] = p.weather_effects
    assert (row.kind, row.source, row.min_colour, row.level) == (
        WarningKind.HEAT, SourceKind.TOXIC, Colour.YELLOW, Level.SECOND,
    )  # fmt: skip
    chlorine = p.hazard_sources[0]
    assert effect_for(WarningKind.HEAT, Colour.YELLOW, chlorine, p.weather_effects) == (
        Level.SECOND, ("24h_duty", "cooling_check"),
    )  # fmt: skip
    assert effect_for(WarningKind.LIGHTNING, Colour.RED, chlorine, p.weather_effects) is None  # replaced
    with pytest.raises(ConfigError) as e:
        loads(BASE + "weather:\n  effects:\n    - {kind: snow, source: any, min_colour: pink, level: first,"
              " duties: [dance]}\n", "p.yaml")  # fmt: skip
    assert sorted(str(x).split(": ", 1)[1] for x in e.value.problems) == [
        "weather.effects[0].duties[0]: unknown duty 'dance' (one of: 24h_monitoring, stop_outdoor_work, "
        "24h_duty, responsible_check, cooling_check, lightning_protection_check, drainage_check)",
        "weather.effects[0].kind: 'snow' is not one of: lightning, rainstorm, gale, drought, typhoon, heat, "
        "road_icing, fog, cold_wave, hail, frost, haze, sandstorm, blizzard",
        "weather.effects[0].min_colour: 'pink' is not one of: blue, yellow, orange, red",
    ]


def test_the_state_uses_the_plants_table() -> None:
    plain = loads(BASE, "p.yaml")
    none = loads(BASE + "weather:\n  effects: []\n", "p.yaml")
    assert plain.enterprise.region.code == "320116"  # the sample warning's county
    noon = datetime(2026, 8, 4, 12, tzinfo=timezone(timedelta(hours=8)))
    a = alert("lightning_yellow.xml")
    assert len(active_at(plain, [a], noon)) == 1
    assert active_at(none, [a], noon) == {}
