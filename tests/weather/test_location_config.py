"""The plant file's optional `location: {lat, lon}` per hazard source (weather polygons and circles)."""

from __future__ import annotations

import pytest

from hazmon.plant import ConfigError, loads
from hazmon.plant.model import Location
from tests.plant.test_config import BASE

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
        ("{lat: north, lon: 118}", "p.yaml:14: hazard_sources[0].location.lat: expected a number, got text 'north'"),
    ],
)
def test_a_bad_location_names_the_place(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads(with_location(text), "p.yaml")
    assert [str(x) for x in e.value.problems] == [problem]
