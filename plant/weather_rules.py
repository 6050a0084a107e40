"""Rules tightened while a weather warning is in force: the plant file's ``weather.tighten`` list.

::

    weather:
      tighten:
        # a lower pre-alarm (H) on the LPG spheres' pressure during an orange or red heat warning
        - {kind: heat, min_colour: orange, sensors: [PT-201, PT-202], limits: {h: 1.35}}

While a warning of ``kind`` at ``min_colour`` or above is in force at a sensor's hazard source
(and has an effect there in the effects table), the sensor's limits are its usual ones (an
assessment's, else the plant file's, else the standard's gas setpoints) with these values put
over them; when the warning ends they are restored. Which plant needs which tightening is the
plant's decision [U: hazmon gives no default].
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated

import yaml
from pydantic import BeforeValidator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.plant.yamlmodel import SECTION, NonNegative, Number, YText, check, choice, validate
from hazmon.plant.yamlnode import Node

__all__ = ["LimitChange", "Tighten", "parse_tightening"]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class LimitChange:
    """The limit values put over a sensor's usual ones (unset: kept)."""

    hh: Number | None = None
    h: Number | None = None
    l: Number | None = None  # noqa: E741 - the standard's name for the low limit
    ll: Number | None = None
    on_delay_s: NonNegative | None = None
    rate_rise_per_min: NonNegative | None = None

    def changes(self) -> dict[str, float]:
        return {k: v for k in self.__dataclass_fields__ if (v := getattr(self, k)) is not None}


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class Tighten:
    kind: Annotated[YText, BeforeValidator(choice(*(k.value for k in WarningKind)))]
    sensors: tuple[YText, ...]
    limits: LimitChange
    min_colour: Annotated[YText, BeforeValidator(choice(*(c.name.lower() for c in Colour)))] = "orange"

    @model_validator(mode="after")
    def _something(self) -> Tighten:
        if not self.limits.changes():
            check((("limits",), "give at least one of: hh, h, l, ll, on_delay_s, rate_rise_per_min"))
        return self

    @property
    def colour(self) -> Colour:
        return Colour[self.min_colour.upper()]


def _sensor_node(item: Node, j: int) -> Node:
    n = item.node
    if isinstance(n, yaml.MappingNode):
        for k, v in n.value:
            if (
                getattr(k, "value", None) == "sensors"
                and isinstance(v, yaml.SequenceNode)
                and j < len(v.value)
            ):
                return Node(item.ctx, v.value[j], f"{item.path}.sensors[{j}]")
    return item


def parse_tightening(n: Node, tags: Collection[str]) -> tuple[Tighten, ...]:
    """``weather.tighten`` (``n``: the list); sensors are checked against ``tags``."""
    out: list[Tighten] = []
    for item in n.sequence():
        t = validate(item, Tighten)
        if t is None:
            continue
        bad = [j for j, s in enumerate(t.sensors) if s not in tags]
        for j in bad:
            _sensor_node(item, j).problem(f"unknown sensor '{t.sensors[j]}'")
        if not bad:
            out.append(t)
    return tuple(out)
