"""Emergency plans (应急预案) in the plant file: the ``plans:`` section, parsed once.

::

    plans:
      - id: toxic-release
        name: 液氯泄漏专项应急预案
        start:                           # any one of these starts the plan (at its level)
          - {level: II, alarm: {hazard_source: cl2-tankfarm, min_tier: red, conditions: [gas_second]}}
          - {level: III, alarm: {hazard_source: cl2-tankfarm, min_tier: orange}}
          - {level: II, vote: {sensors: [AT-101, AT-102, AT-103], k: 2, min_level: first}}
          - {level: IV, weather: {kind: typhoon, min_colour: orange}}
          - {level: III, manual: {roles: [principal, technical]}}
        notify: [control_room, operational, principal, bureau_county]
        steps:
          - {id: isolate, text: 关闭紧急切断阀, owner: operational}
          - {id: evacuate, text: 疏散下风向人员, owner: principal}
        end: {clear_for_min: 30, manual_roles: [principal]}

Levels I–IV follow the national practice of four response levels, I the most severe
(特别重大 I, 重大 II, 较大 III, 一般 IV) [U: hazmon's use of them for an enterprise's plan;
the plan itself says what each level means]. Recipients and roles are the alarm
escalation's names (``control_room``, ``operational`` 操作负责人, ``technical`` 技术负责人,
``principal`` 主要负责人, ``bureau_county|city|province``). Every problem is reported as
``file:line: field.path: reason`` (`hazmon.plant.yamlmodel`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.plant.yamlmodel import SECTION, NonNegative, Where, Whole, YText, check, choice, pattern, validate
from hazmon.plant.yamlnode import ID_PATTERN, ID_WHAT, Node

__all__ = [
    "LEVELS",
    "RECIPIENTS",
    "ROLES",
    "AlarmStart",
    "EndConditions",
    "ManualStart",
    "Plan",
    "PlanStep",
    "StartCondition",
    "VoteStart",
    "WeatherStart",
    "exactly_one",
    "level_number",
    "no_start",
    "parse_plans",
    "step_used_twice",
]

LEVELS = ("I", "II", "III", "IV")
"""Response levels, most severe first [U]."""

ROLES = ("control_room", "operational", "technical", "principal")
"""Who may start, end or own a step of a plan (the alarm escalation's names inside the plant)."""

RECIPIENTS = (*ROLES, "bureau_county", "bureau_city", "bureau_province")
"""Who a plan's start is told to (the alarm escalation's recipients)."""

_TIERS = ("blue", "yellow", "orange", "red")
_CONDITIONS = (
    "hh", "h", "l", "ll", "rate", "predict_hh", "predict_ll", "gas_first", "gas_second",
    "vote_confirmed", "vote_unconfirmed", "stale", "link_lost", "weather_warning",
)  # fmt: skip
"""Alarm conditions a plan may start on (`hazmon.plant.findings.Condition` values)."""


def exactly_one(condition: object, kinds: tuple[str, ...]) -> tuple[Where, str] | None:
    """The failed check of a start condition that gives not exactly one of ``kinds``.

    For the plant's plans and the bureau's own (`hazmon.bureau.plan_config`).
    """
    given = [k for k in kinds if getattr(condition, k) is not None]
    if len(given) == 1:
        return None
    return (), f"give exactly one of {', '.join(kinds)} (got {', '.join(given) or 'none'})"


def step_used_twice(step_ids: Collection[str]) -> tuple[Where, str] | None:
    """The failed check of a plan whose steps share an id."""
    ids = list(step_ids)
    dup = sorted({i for i in ids if ids.count(i) > 1})
    return (("steps",), f"step id '{dup[0]}' is used twice") if dup else None


def no_start(start: Collection[object]) -> tuple[Where, str] | None:
    """The failed check of a plan without a start condition."""
    return (("start",), "a plan needs at least one start condition") if not start else None


def level_number(level: str) -> int:
    """I -> 1 … IV -> 4 (smaller is more severe)."""
    return LEVELS.index(level) + 1


Id = Annotated[YText, AfterValidator(pattern(ID_PATTERN, ID_WHAT))]
Level = Annotated[YText, BeforeValidator(choice(*LEVELS))]
Role = Annotated[YText, BeforeValidator(choice(*ROLES))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class AlarmStart:
    """An alarm at a hazard source of at least ``min_tier`` (and one of ``conditions``, when given)."""

    hazard_source: YText
    min_tier: Annotated[YText, BeforeValidator(choice(*_TIERS))] = "orange"
    conditions: tuple[Annotated[YText, BeforeValidator(choice(*_CONDITIONS))], ...] = ()

    @property
    def tier(self) -> int:
        return _TIERS.index(self.min_tier) + 1


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class VoteStart:
    """At least ``k`` of these detectors in alarm at ``min_level`` or above."""

    sensors: tuple[YText, ...]
    k: Annotated[Whole, Field(ge=1)]
    min_level: Annotated[YText, BeforeValidator(choice("first", "second"))] = "first"

    @model_validator(mode="after")
    def _k(self) -> VoteStart:
        if self.k > len(self.sensors):
            check((("k",), f"k ({self.k}) is larger than the number of sensors ({len(self.sensors)})"))
        return self


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class WeatherStart:
    """An official weather warning of ``kind`` at ``min_colour`` or above (at ``hazard_source``, or any)."""

    kind: Annotated[YText, BeforeValidator(choice(*(k.value for k in WarningKind)))]
    min_colour: Annotated[YText, BeforeValidator(choice(*(c.name.lower() for c in Colour)))] = "orange"
    hazard_source: YText = ""

    @property
    def colour(self) -> Colour:
        return Colour[self.min_colour.upper()]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ManualStart:
    """A start by hand, by a person in one of ``roles``."""

    roles: tuple[Role, ...]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class StartCondition:
    """One start condition: exactly one of alarm, vote, weather, manual; the level it starts at."""

    level: Level
    alarm: AlarmStart | None = None
    vote: VoteStart | None = None
    weather: WeatherStart | None = None
    manual: ManualStart | None = None

    @model_validator(mode="after")
    def _one(self) -> StartCondition:
        check(exactly_one(self, ("alarm", "vote", "weather", "manual")))
        return self

    @property
    def level_n(self) -> int:
        return level_number(self.level)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class PlanStep:
    """One checklist step and the role that owns it."""

    id: Id
    text: YText
    owner: Role


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class EndConditions:
    """When a plan started by a condition ends by itself; who may end any plan by hand."""

    clear_for_min: NonNegative = 30.0  # every start condition cleared this long
    manual_roles: tuple[Role, ...] = ("principal",)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class Plan:
    id: Id
    name: YText
    start: tuple[StartCondition, ...]
    notify: tuple[Annotated[YText, BeforeValidator(choice(*RECIPIENTS))], ...] = ()
    steps: tuple[PlanStep, ...] = ()
    end: EndConditions = EndConditions()

    @model_validator(mode="after")
    def _unique_steps(self) -> Plan:
        check(step_used_twice([s.id for s in self.steps]))
        check(no_start(self.start))
        return self

    def manual_roles(self) -> tuple[str, ...]:
        """Roles that may start the plan by hand."""
        out: list[str] = []
        for c in self.start:
            if c.manual is not None:
                out += [r for r in c.manual.roles if r not in out]
        return tuple(out)

    def manual_level(self) -> str | None:
        """The level of a start by hand (the most severe manual condition's), or None: no manual start."""
        levels = [c.level for c in self.start if c.manual is not None]
        return min(levels, key=level_number) if levels else None


def _child(n: Node, *path: str | int) -> Node:
    """The node at ``path`` under ``n`` (as deep as it exists), for a problem's line."""
    cur = n
    for p in path:
        node = cur.node
        nxt: yaml.Node | None = None
        if isinstance(p, int) and isinstance(node, yaml.SequenceNode) and p < len(node.value):
            nxt, sub = node.value[p], f"{cur.path}[{p}]"
        elif isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == p), None)
            sub = f"{cur.path}.{p}"
        if nxt is None:
            return cur
        cur = Node(cur.ctx, nxt, sub)
    return cur


def parse_plans(n: Node, sources: Mapping[str, Collection[str]]) -> tuple[Plan, ...] | None:
    """The ``plans:`` list; ``sources``: hazard source id -> its sensor tags (checked against)."""
    out: list[Plan] = []
    seen: dict[str, int] = {}
    tags = {t for ts in sources.values() for t in ts}
    for item in n.sequence():
        p = validate(item, Plan)
        if p is None:
            continue
        ok = True
        if p.id in seen:
            _child(item, "id").problem(f"plan id '{p.id}' is used twice (first at line {seen[p.id]})")
            ok = False
        seen.setdefault(p.id, item.line)
        for i, c in enumerate(p.start):
            hs = c.alarm.hazard_source if c.alarm else c.weather.hazard_source if c.weather else ""
            kind = "alarm" if c.alarm else "weather"
            if hs and hs not in sources:
                _child(item, "start", i, kind, "hazard_source").problem(f"unknown hazard source '{hs}'")
                ok = False
            for j, t in enumerate(c.vote.sensors if c.vote else ()):
                if t not in tags:
                    _child(item, "start", i, "vote", "sensors", j).problem(f"unknown sensor '{t}'")
                    ok = False
        if ok:
            out.append(p)
    return tuple(out)
