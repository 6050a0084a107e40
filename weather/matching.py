"""Which hazard sources a warning concerns, and what it does there (pure).

A warning concerns a hazard source when one of its region codes is the plant's county
code, or the city (XXXX00) or province (XX0000) code containing it; or when the hazard
source's location lies inside one of its polygons (the boundary counts as inside) or
circles (great-circle distance on a sphere of radius 6371.0088 km, the IUGG mean).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from hazmon.plant.model import HazardSource, Location, Region
from hazmon.plant.standards import Level
from hazmon.plant.weather_standards import Colour, Effect, SourceKind, WarningKind
from hazmon.weather.cap import Area

__all__ = [
    "EARTH_RADIUS_KM",
    "area_covers",
    "distance_km",
    "effect_for",
    "in_circle",
    "in_polygon",
    "region_covers",
    "source_kinds",
]

EARTH_RADIUS_KM = 6371.0088
_EPS = 1e-9  # degrees: a point this close to an edge is on it
_EPS_KM = 1e-6

_LEVEL_ORDER = {Level.FAULT: 0, Level.PREDICTIVE: 1, Level.FIRST: 2, Level.SECOND: 3}


def region_covers(code: str, region: Region) -> bool:
    """True when the 6-digit `code` is the plant's county, or its city or province."""
    return code in (region.code, region.city_code, region.province_code)


def _on_segment(p: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> bool:
    (py, px), (ay, ax), (by, bx) = p, a, b
    cross = (bx - ax) * (py - ay) - (by - ay) * (px - ax)
    if abs(cross) > _EPS * max(1.0, math.hypot(bx - ax, by - ay)):
        return False
    return min(ax, bx) - _EPS <= px <= max(ax, bx) + _EPS and min(ay, by) - _EPS <= py <= max(ay, by) + _EPS


def in_polygon(point: tuple[float, float], ring: Sequence[tuple[float, float]]) -> bool:
    """Point (lat, lon) in a closed ring of (lat, lon); on an edge or vertex counts as inside.

    Planar ray casting in degrees: fine for warning areas (tens of km), not across the
    antimeridian.
    """
    n = len(ring)
    for i in range(n - 1):
        if _on_segment(point, ring[i], ring[i + 1]):
            return True
    y, x = point
    inside = False
    for i in range(n - 1):
        (y1, x1), (y2, x2) = ring[i], ring[i + 1]
        if (y1 > y) != (y2 > y):
            xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < xc:
                inside = not inside
    return inside


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine) between two (lat, lon) points."""
    la1, lo1, la2, lo2 = (math.radians(v) for v in (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_circle(point: tuple[float, float], circle: tuple[float, float, float]) -> bool:
    """Point within `radius` km of the centre; on the circle counts as inside."""
    lat, lon, r = circle
    return distance_km(point, (lat, lon)) <= r + _EPS_KM


def area_covers(area: Area, region: Region, location: Location | None) -> bool:
    """True when the area names the plant's region, or contains the location."""
    if any(region_covers(c, region) for c in area.region_codes()):
        return True
    if location is None:
        return False
    p = (location.lat, location.lon)
    return any(in_polygon(p, ring) for ring in area.polygons) or any(in_circle(p, c) for c in area.circles)


def source_kinds(hs: HazardSource) -> frozenset[SourceKind]:
    """Which rows of the effects table apply: any, flammable and/or toxic from the chemicals.

    Flammable: a lower explosive limit or a GB 18218 flammable class; toxic otherwise, when
    the chemical has a MAC or an IDLH or a toxic class (chlorine) [U: hazmon's grouping].
    """
    kinds = {SourceKind.ANY}
    for inv in hs.inventory:
        c = inv.chemical
        cls = c.beta_class.lower()
        if c.lel_pct is not None or "flam" in cls:  # LPG is a mixture: no LEL, but W2 flammable gas
            kinds.add(SourceKind.FLAMMABLE)
        elif "toxic" in cls or c.mac is not None or c.idlh_ppm is not None:
            kinds.add(SourceKind.TOXIC)
    return frozenset(kinds)


def effect_for(
    kind: WarningKind, colour: Colour, hs: HazardSource, table: Iterable[Effect]
) -> tuple[Level, tuple[str, ...]] | None:
    """The advisory level and duties of a warning at a hazard source, or None (no effect).

    Of the rows that apply (kind, source kind, colour at or above the row's minimum) the
    highest level wins; the duties are the union, in table order.
    """
    kinds = source_kinds(hs)
    rows = [e for e in table if e.kind is kind and e.source in kinds and colour >= e.min_colour]
    if not rows:
        return None
    level = max((e.level for e in rows), key=lambda lv: _LEVEL_ORDER[lv])
    duties: list[str] = []
    for e in rows:
        duties += [d for d in e.duties if d not in duties]
    return level, tuple(duties)
