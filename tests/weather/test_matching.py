"""Matching warnings to hazard sources: region codes, polygons and circles at their boundaries."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hazmon.plant import Plant
from hazmon.plant.model import Location, Region
from hazmon.plant.standards import Level
from hazmon.plant.weather_standards import EFFECTS, Colour, SourceKind, WarningKind
from hazmon.weather.cap import Area
from hazmon.weather.matching import (
    area_covers,
    distance_km,
    effect_for,
    in_circle,
    in_polygon,
    region_covers,
    source_kinds,
)

LUHE = Region("江苏省", "南京市", "六合区", "320116")
SQUARE = ((32.0, 118.0), (32.0, 119.0), (33.0, 119.0), (33.0, 118.0), (32.0, 118.0))


@pytest.mark.parametrize(
    ("code", "covers"),
    [
        ("320116", True),  # the county
        ("320100", True),  # its city (Nanjing)
        ("320000", True),  # its province (Jiangsu)
        ("320115", False),  # a neighbouring county
        ("320200", False),  # another city of the province
        ("310000", False),  # another province
        ("320110", False),
    ],
)
def test_region_codes_county_exact_city_and_province_contain(code: str, covers: bool) -> None:
    assert region_covers(code, LUHE) is covers


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((32.5, 118.5), True),
        ((32.0, 118.5), True),  # on the south edge
        ((33.0, 118.5), True),  # on the north edge
        ((32.5, 118.0), True),  # on the west edge
        ((32.5, 119.0), True),  # on the east edge
        ((32.0, 118.0), True),  # a vertex
        ((33.0, 119.0), True),  # the opposite vertex
        ((31.999999, 118.5), False),  # just south
        ((32.5, 119.000001), False),  # just east
        ((34.0, 118.5), False),
    ],
)
def test_point_in_polygon_boundary_is_inside(point: tuple[float, float], inside: bool) -> None:
    assert in_polygon(point, SQUARE) is inside


def test_point_in_a_concave_polygon() -> None:
    # a U shape: the notch (32.5..33, 118.4..118.6) is outside
    u = (
        (32.0, 118.0), (32.0, 119.0), (33.0, 119.0), (33.0, 118.6), (32.5, 118.6),
        (32.5, 118.4), (33.0, 118.4), (33.0, 118.0), (32.0, 118.0),
    )  # fmt: skip
    assert in_polygon((32.8, 118.5), u) is False
    assert in_polygon((32.5, 118.5), u) is True  # the notch's bottom edge
    assert in_polygon((32.8, 118.2), u) is True
    assert in_polygon((32.8, 118.8), u) is True


def test_circle_by_great_circle_distance_at_the_boundary() -> None:
    centre = (32.3, 118.8)
    east = (32.3, 118.9)
    d = distance_km(centre, east)
    assert 9.3 < d < 9.5  # 0.1° of longitude at 32.3° N ≈ 9.4 km
    assert in_circle(east, (*centre, d)) is True  # on the circle
    assert in_circle(east, (*centre, d - 0.001)) is False  # a metre short
    assert distance_km((0.0, 0.0), (1.0, 0.0)) == pytest.approx(111.195, abs=0.01)


def test_an_area_covers_by_code_or_by_location() -> None:
    by_code = Area("六合区", geocodes=(("行政区划代码", "320116"),))
    by_shape = Area("x", polygons=(SQUARE,))
    by_circle = Area("y", circles=((32.3, 118.8, 5.0),))
    inside, outside = Location(32.3, 118.8), Location(40.0, 118.8)
    assert area_covers(by_code, LUHE, None)
    assert area_covers(by_shape, LUHE, inside) and not area_covers(by_shape, LUHE, outside)
    assert area_covers(by_circle, LUHE, inside) and not area_covers(by_circle, LUHE, outside)
    assert not area_covers(by_shape, LUHE, None)  # no location: only codes can match
    other = replace(LUHE, code="110105")
    assert not area_covers(by_code, other, inside)


def test_source_kinds_from_the_chemicals(example_plant: Plant) -> None:
    kinds = {hs.id: source_kinds(hs) for hs in example_plant.hazard_sources}
    assert kinds["cl2-tankfarm"] == {SourceKind.ANY, SourceKind.TOXIC}
    assert kinds["lpg-spheres"] == {SourceKind.ANY, SourceKind.FLAMMABLE}


@pytest.mark.parametrize(
    ("kind", "colour", "source", "level"),
    [
        (WarningKind.LIGHTNING, Colour.BLUE, "lpg-spheres", None),
        (WarningKind.LIGHTNING, Colour.YELLOW, "lpg-spheres", Level.PREDICTIVE),
        (WarningKind.LIGHTNING, Colour.ORANGE, "lpg-spheres", Level.FIRST),
        (WarningKind.LIGHTNING, Colour.RED, "lpg-spheres", Level.FIRST),
        (WarningKind.LIGHTNING, Colour.ORANGE, "cl2-tankfarm", Level.PREDICTIVE),
        (WarningKind.HEAT, Colour.ORANGE, "cl2-tankfarm", Level.FIRST),
        (WarningKind.HEAT, Colour.ORANGE, "lpg-spheres", Level.FIRST),
        (WarningKind.FROST, Colour.RED, "lpg-spheres", None),
    ],
)
def test_effects_table_minimum_colour_per_kind_of_source(
    example_plant: Plant, kind: WarningKind, colour: Colour, source: str, level: Level | None
) -> None:
    eff = effect_for(kind, colour, example_plant.hazard_source(source), EFFECTS)
    assert (eff[0] if eff else None) == level


def test_yellow_lightning_gives_the_linked_order_duties(example_plant: Plant) -> None:
    eff = effect_for(
        WarningKind.LIGHTNING, Colour.YELLOW, example_plant.hazard_source("cl2-tankfarm"), EFFECTS
    )
    assert eff == (Level.PREDICTIVE, ("24h_monitoring", "stop_outdoor_work", "24h_duty"))
    orange = effect_for(
        WarningKind.LIGHTNING, Colour.ORANGE, example_plant.hazard_source("lpg-spheres"), EFFECTS
    )
    assert orange is not None
    assert orange[1][:3] == ("24h_monitoring", "stop_outdoor_work", "24h_duty")  # no duty twice
    assert "responsible_check" in orange[1] and len(set(orange[1])) == len(orange[1])
