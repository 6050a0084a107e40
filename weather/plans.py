"""Emergency plans (应急预案): when a plan starts, rises in level and ends — pure functions.

`decide` is a function of (the plans, what holds now, the open activations, now): the roof
reads the active alarms and the weather warnings in force, calls it, and records what it
returns (`hazmon.weather.plan_repository`). Decisions (hazmon's [U]):

- a plan starts when one of its start conditions holds (alarm, vote, weather), at the most
  severe level among those that hold (I is the most severe); a condition that already held
  before the plan's last end does not start it again (an end by hand while the alarm is
  still active is not undone on the next round, nor after a restart);
- an open activation rises to a more severe level when a condition of that level holds;
  it never falls (a plan is stood down by its end, not by a lower level);
- an activation started by a condition ends by itself once no start condition has held for
  ``end.clear_for_min`` minutes; one started by hand ends by hand (`manual_end`);
- drills (演练) are only ever started and ended by hand, and the conditions never touch them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hazmon.plant.plans import LEVELS, AlarmStart, Plan, StartCondition, VoteStart, WeatherStart, level_number
from hazmon.plant.weather_standards import Colour

__all__ = [
    "Activation",
    "AlarmNow",
    "Clear",
    "Decision",
    "End",
    "LevelUp",
    "Refusal",
    "Start",
    "Unclear",
    "WarningNow",
    "decide",
    "decide_held",
    "holding",
    "level_name",
    "manual_end",
    "manual_start",
    "may_confirm",
    "start_by_hand",
]

_LEVEL_RANK = {"predictive": 0, "first": 1, "second": 2}


def level_name(n: int) -> str:
    """1 -> I … 4 -> IV."""
    return LEVELS[n - 1]


@dataclass(frozen=True, slots=True)
class AlarmNow:
    """An alarm active now (the alarm table's row)."""

    hazard_source: str
    sensor: str | None
    condition: str
    level: str  # second | first | predictive | fault
    tier: int  # 1 blue … 4 red
    since: datetime


@dataclass(frozen=True, slots=True)
class WarningNow:
    """A weather warning kind in force at a hazard source."""

    hazard_source: str
    kind: str
    colour: Colour
    since: datetime
    identifier: str = ""


@dataclass(frozen=True, slots=True)
class Activation:
    """An open activation of a plan (a row of plan_activation)."""

    id: int
    plan_id: str
    level: int
    drill: bool
    started_at: datetime
    auto: bool  # started by a condition (not by hand)
    clear_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Start:
    plan_id: str
    level: int
    cause: str
    since: datetime


@dataclass(frozen=True, slots=True)
class LevelUp:
    activation_id: int
    plan_id: str
    level: int
    cause: str


@dataclass(frozen=True, slots=True)
class Clear:
    """No start condition holds any more, since ``since`` (the countdown to the end starts)."""

    activation_id: int
    since: datetime


@dataclass(frozen=True, slots=True)
class Unclear:
    """A start condition holds again: the countdown to the end stops."""

    activation_id: int


@dataclass(frozen=True, slots=True)
class End:
    activation_id: int
    plan_id: str
    reason: str


Decision = Start | LevelUp | Clear | Unclear | End


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a start, end or step by hand is refused."""

    reason: str


def _holds(
    c: StartCondition, alarms: Sequence[AlarmNow], warnings: Sequence[WarningNow]
) -> tuple[datetime, str] | None:
    """(since when, in words) when the condition holds now, else None."""
    if c.alarm is not None:
        return _alarm_holds(c.alarm, alarms)
    if c.vote is not None:
        return _vote_holds(c.vote, alarms)
    if c.weather is not None:
        return _weather_holds(c.weather, warnings)
    return None  # a manual condition never holds by itself


def _alarm_holds(a: AlarmStart, alarms: Sequence[AlarmNow]) -> tuple[datetime, str] | None:
    hits = [
        x
        for x in alarms
        if x.hazard_source == a.hazard_source
        and x.tier >= a.tier
        and (not a.conditions or x.condition in a.conditions)
    ]
    if not hits:
        return None
    last = max(hits, key=lambda x: x.since)
    where = f"{last.hazard_source}/{last.sensor}" if last.sensor else last.hazard_source
    return last.since, f"alarm {last.condition} tier {last.tier} at {where}"


def _vote_holds(v: VoteStart, alarms: Sequence[AlarmNow]) -> tuple[datetime, str] | None:
    first: dict[str, datetime] = {}
    for x in alarms:
        if x.sensor in v.sensors and _LEVEL_RANK.get(x.level, -1) >= _LEVEL_RANK[v.min_level]:
            first[x.sensor] = min(first.get(x.sensor, x.since), x.since)
    if len(first) < v.k:
        return None
    since = sorted(first.values())[v.k - 1]  # when the k-th detector joined
    return since, f"vote {len(first)} of {len(v.sensors)} ({', '.join(sorted(first))}) at {v.min_level}"


def _weather_holds(w: WeatherStart, warnings: Sequence[WarningNow]) -> tuple[datetime, str] | None:
    hits2 = [
        x
        for x in warnings
        if x.kind == w.kind
        and x.colour >= w.colour
        and (not w.hazard_source or x.hazard_source == w.hazard_source)
    ]
    if not hits2:
        return None
    last2 = max(hits2, key=lambda x: x.since)
    return last2.since, f"weather {last2.colour.name.lower()} {last2.kind} at {last2.hazard_source}"


def holding(
    plan: Plan, alarms: Sequence[AlarmNow], warnings: Sequence[WarningNow]
) -> list[tuple[int, datetime, str]]:
    """The start conditions of ``plan`` that hold now: (level 1-4, since, in words)."""
    out = []
    for c in plan.start:
        h = _holds(c, alarms, warnings)
        if h is not None:
            out.append((c.level_n, h[0], h[1]))
    return out


def decide(  # noqa: PLR0917 - what holds, what is open, and the time
    plans: Sequence[Plan],
    alarms: Sequence[AlarmNow],
    warnings: Sequence[WarningNow],
    open_activations: Sequence[Activation],
    last_end: Mapping[str, datetime],
    now: datetime,
) -> list[Decision]:
    """What to record now. ``last_end``: per plan, the end of its last real activation."""
    held = [(p.id, p.end.clear_for_min, holding(p, alarms, warnings)) for p in plans]
    return decide_held(held, open_activations, last_end, now)


Held = Sequence[tuple[int, datetime, str]]
"""The start conditions of a plan that hold now: (level 1-4, since, in words)."""


def decide_held(
    plans: Sequence[tuple[str, float, Held]],
    open_activations: Sequence[Activation],
    last_end: Mapping[str, datetime],
    now: datetime,
) -> list[Decision]:
    """`decide` once the conditions are judged: per plan (id, end.clear_for_min, what holds).

    The same decisions for any plan whose conditions are judged elsewhere (a bureau's plans,
    `hazmon.bureau.plans`).
    """
    out: list[Decision] = []
    for plan_id, clear_for_min, held in plans:
        real = next((a for a in open_activations if a.plan_id == plan_id and not a.drill), None)
        if real is None:
            ended = last_end.get(plan_id)
            fresh = [h for h in held if ended is None or h[1] > ended]
            if fresh:
                lv, since, why = min(fresh, key=lambda h: (h[0], h[1]))
                out.append(Start(plan_id, lv, why, since))
            continue
        if held:
            lv, _, why = min(held, key=lambda h: (h[0], h[1]))
            if lv < real.level:
                out.append(LevelUp(real.id, plan_id, lv, why))
            if real.clear_since is not None:
                out.append(Unclear(real.id))
            continue
        if not real.auto:
            continue
        if real.clear_since is None:
            out.append(Clear(real.id, now))
        elif now - real.clear_since >= timedelta(minutes=clear_for_min):
            mins = f"{clear_for_min:g}"
            out.append(End(real.id, plan_id, f"all start conditions cleared for {mins} min"))
    return out


def _person(role: str, by: str, people: Mapping[str, Collection[str]]) -> Refusal | None:
    """A responsible role must be named as that role in the plant file (the control room: anyone)."""
    names = people.get(role)
    if names is not None and by not in names:
        return Refusal(
            f"'{by}' is not a {role} of this plant (the plant file names: {', '.join(sorted(names))})"
        )
    if not by.strip():
        return Refusal("who: a name is needed")
    return None


def manual_start(  # noqa: PLR0917 - the request and its context
    plan: Plan,
    by: str,
    role: str,
    level: str | None,
    drill: bool,
    open_activations: Sequence[Activation],
    people: Mapping[str, Collection[str]],
) -> Start | Refusal:
    """A start by hand, or why not. ``people``: role -> the names the plant file gives it."""
    allowed = plan.manual_roles()
    if not allowed:
        return Refusal(f"plan '{plan.id}' has no manual start condition")
    if role not in allowed:
        return Refusal(f"role '{role}' may not start plan '{plan.id}' (allowed: {', '.join(allowed)})")
    who = _person(role, by, people)
    if who is not None:
        return who
    return start_by_hand(plan.id, level or plan.manual_level(), drill, open_activations, f"{by} ({role})")


def start_by_hand(
    plan_id: str, lv: str | None, drill: bool, open_activations: Sequence[Activation], who: str
) -> Start | Refusal:
    """The last checks of a start by hand, once the person may, and the start ``by who``.

    The level ``lv`` is a level; the plan (or its drill) is not already open. For the plant's plans
    and the bureau's own (`hazmon.bureau.plans`).
    """
    if lv not in LEVELS:
        return Refusal(f"level '{lv}' is not one of: {', '.join(LEVELS)}")
    for a in open_activations:
        if a.plan_id == plan_id and a.drill == drill:
            what = "a drill of plan" if drill else "plan"
            return Refusal(
                f"{what} '{plan_id}' is already started (activation {a.id}, level {level_name(a.level)})"
            )
    kind = "drill 演练" if drill else "manual start"
    return Start(plan_id, level_number(lv), f"{kind} by {who}", datetime.min)


def manual_end(
    plan: Plan, activation: Activation, by: str, role: str, people: Mapping[str, Collection[str]]
) -> End | Refusal:
    """An end by hand, or why not."""
    if role not in plan.end.manual_roles:
        allowed = ", ".join(plan.end.manual_roles)
        return Refusal(f"role '{role}' may not end plan '{plan.id}' (allowed: {allowed})")
    who = _person(role, by, people)
    if who is not None:
        return who
    return End(activation.id, plan.id, f"ended by {by} ({role})")


def may_confirm(
    plan: Plan,
    step_id: str,
    *,
    by: str,
    role: str,
    confirmed: Collection[str],
    people: Mapping[str, Collection[str]],
) -> Refusal | None:
    """None when ``by`` in ``role`` may confirm the step now; its owner or the principal may."""
    step = next((s for s in plan.steps if s.id == step_id), None)
    if step is None:
        return Refusal(
            f"plan '{plan.id}' has no step '{step_id}' (steps: {', '.join(s.id for s in plan.steps)})"
        )
    if role not in (step.owner, "principal"):
        return Refusal(
            f"step '{step_id}' is confirmed by its owner ({step.owner}) or the principal, not {role}"
        )
    if step_id in confirmed:
        return Refusal(f"step '{step_id}' is already confirmed")
    return _person(role, by, people)
