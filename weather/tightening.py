"""Limits tightened while a weather warning is in force (pure): the plant's ``weather.tighten``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from hazmon.plant.limits import effective_limits
from hazmon.plant.model import Limits, Plant
from hazmon.plant.weather_standards import WarningKind
from hazmon.weather.state import Active

__all__ = ["tightened"]


def tightened(
    plant: Plant, active: Mapping[tuple[str, WarningKind], Active], base: Mapping[str, Limits]
) -> dict[str, Limits]:
    """The limit overrides for the rules: ``base`` (the assessments') with the weather's changes over them.

    A rule applies to a sensor while a warning of its kind, at its colour or above, is in force
    at the sensor's hazard source (`hazmon.weather.active_at`); several rules apply in file order.
    Without a warning in force the answer is ``base``: the usual limits come back.
    """
    out = dict(base)
    by_tag = {s.tag: s for s in plant.sensors()}
    for t in plant.weather_tighten:
        for tag in t.sensors:
            s = by_tag.get(tag)
            if s is None:  # a plant cut down to some sensors (tests, a scale-out instance)
                continue
            a = active.get((s.hazard_source, WarningKind(t.kind)))
            if a is None or a.colour < t.colour:
                continue
            cur = out[tag] if tag in out else effective_limits(s)
            out[tag] = replace(cur, **t.limits.changes())
    return out
