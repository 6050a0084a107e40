"""A bureau's own emergency plans (应急预案): the ``plans:`` section of ``bureau.yaml``.

::

    plans:
      - id: city-hazchem
        name: 南京市危险化学品事故应急预案
        region: {code: "320116", level: county}   # optional: a part of the bureau's region
        start:                                    # any one starts the plan, at its level
          - {level: II, bureau_warning: {min_colour: red, kinds: [red_unacked]}}
          - {level: II, alarm: {min_tier: red, grades: [I]}}
          - {level: III, weather: {kind: typhoon, min_colour: orange}}
          - {level: III, manual: {by: [duty-officer]}}
        notify: [liuhe-duty, city-hook]           # names of notify.recipients
        steps:
          - {id: dispatch, text: 派出工作组赶赴现场, owner: duty-officer}
          - {id: report, text: 向市政府报告, owner: officer}
        end: {clear_for_min: 30, manual_by: [duty-officer]}

Levels I–IV as the plant's plans (`hazmon.plant.plans.LEVELS`, I the most severe). Start
conditions, each judged within the plan's region (default: the bureau's):

- ``bureau_warning``: an open bureau warning (预警, not yet 消警) of ``min_colour`` or above, of
  one of ``kinds`` when given (silent, source_silent, red_unacked, repeated, assessment_overdue);
- ``alarm``: an open alarm of ``min_tier`` or above at a hazard source of one of ``grades``
  (GB 18218 grade I–IV as the enterprise registered it);
- ``weather``: an official weather warning of ``kind`` at ``min_colour`` or above reported in
  force by an enterprise of the region (``weather_measures``);
- ``manual``: by hand, by an officer named in ``by`` (token or console user names; empty: any officer).

``owner`` of a step and ``end.manual_by`` name officers the same way; ``officer`` means any.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.plans import LEVELS, exactly_one, level_number, no_start, step_used_twice
from hazmon.plant.regions import Scope
from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.plant.web_users import UserRegion
from hazmon.plant.yamlmodel import SECTION, NonNegative, YText, check, choice, pattern
from hazmon.plant.yamlnode import ID_PATTERN, ID_WHAT

__all__ = [
    "ANY_OFFICER",
    "AlarmStart",
    "BureauPlan",
    "BureauWarningStart",
    "EndConditions",
    "ManualStart",
    "PlanStep",
    "StartCondition",
    "WeatherStart",
]

ANY_OFFICER = "officer"
COLOURS = ("blue", "yellow", "orange", "red")  # 1 … 4, as the bureau numbers warnings and tiers
WARNING_KINDS = ("silent", "source_silent", "red_unacked", "repeated", "assessment_overdue")

Id = Annotated[YText, AfterValidator(pattern(ID_PATTERN, ID_WHAT))]
Name = Annotated[YText, AfterValidator(pattern(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", "a name"))]
Level = Annotated[YText, BeforeValidator(choice(*LEVELS))]
ColourName = Annotated[YText, BeforeValidator(choice(*COLOURS))]


def colour_number(c: str) -> int:
    return COLOURS.index(c) + 1


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BureauWarningStart:
    min_colour: ColourName = "red"
    kinds: tuple[Annotated[YText, BeforeValidator(choice(*WARNING_KINDS))], ...] = ()


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class AlarmStart:
    min_tier: ColourName = "red"
    grades: tuple[Annotated[YText, BeforeValidator(choice(*LEVELS))], ...] = ("I",)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class WeatherStart:
    kind: Annotated[YText, BeforeValidator(choice(*(k.value for k in WarningKind)))]
    min_colour: Annotated[YText, BeforeValidator(choice(*(c.name.lower() for c in Colour)))] = "orange"


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ManualStart:
    by: tuple[Name, ...] = ()  # empty: any officer


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class StartCondition:
    level: Level
    bureau_warning: BureauWarningStart | None = None
    alarm: AlarmStart | None = None
    weather: WeatherStart | None = None
    manual: ManualStart | None = None

    @model_validator(mode="after")
    def _one(self) -> StartCondition:
        check(exactly_one(self, ("bureau_warning", "alarm", "weather", "manual")))
        return self

    @property
    def level_n(self) -> int:
        return level_number(self.level)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class PlanStep:
    id: Id
    text: YText
    owner: Name = ANY_OFFICER


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class EndConditions:
    clear_for_min: NonNegative = 30.0
    manual_by: tuple[Name, ...] = ()  # empty: any officer


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BureauPlan:
    id: Id
    name: YText
    start: tuple[StartCondition, ...]
    region: UserRegion | None = None  # None: the bureau's whole region
    notify: tuple[Name, ...] = ()
    steps: tuple[PlanStep, ...] = ()
    end: EndConditions = EndConditions()

    @model_validator(mode="after")
    def _fits(self) -> BureauPlan:
        check(step_used_twice([s.id for s in self.steps]), no_start(self.start))
        return self

    def scope(self, bureau: Scope) -> Scope:
        return self.region.scope if self.region is not None else bureau

    def manual(self) -> tuple[str | None, tuple[str, ...]]:
        """(the level of a start by hand — its most severe manual condition's —, who may); None: none."""
        cs = [c for c in self.start if c.manual is not None]
        if not cs:
            return None, ()
        by: list[str] = []
        for c in cs:
            assert c.manual is not None
            by += [b for b in c.manual.by if b not in by] if c.manual.by else [ANY_OFFICER]
        return min((c.level for c in cs), key=level_number), tuple(by)
