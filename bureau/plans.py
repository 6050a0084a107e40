"""A bureau's own emergency plans: which start conditions hold, and the decisions — pure functions.

The decisions are the plant's (`hazmon.weather.plans.decide_held`): a plan starts once, at the
most severe level that holds, never again on a condition that held before its last end; it
rises but never falls; one started by a condition ends by itself after ``end.clear_for_min``
with nothing holding; one started by hand ends by hand. Drills (演练) are started and ended by
hand only, flagged, and never touched by the conditions. What holds is read from the bureau's
tables by the roof (`hazmon.bureau_plans`) and passed in with ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from hazmon.bureau.plan_config import ANY_OFFICER, BureauPlan, StartCondition, colour_number
from hazmon.plant.regions import Scope, covers
from hazmon.plant.weather_standards import Colour
from hazmon.weather.plans import Activation, Decision, End, Held, Refusal, Start, decide_held, start_by_hand

__all__ = ["AlarmNow", "Now", "WarningNow", "WeatherNow", "decide", "holding", "manual_end", "manual_start",
           "may_confirm"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class WarningNow:
    """An open bureau warning (预警)."""

    id: int
    kind: str
    colour: int  # 1 blue … 4 red
    enterprise_id: str
    region_code: str
    since: datetime


@dataclass(frozen=True, slots=True)
class AlarmNow:
    """An open alarm of an enterprise, with its hazard source's grade."""

    alarm_id: str
    tier: int  # 1 blue … 4 red
    grade: str | None
    region_code: str
    since: datetime


@dataclass(frozen=True, slots=True)
class WeatherNow:
    """An official weather warning an enterprise reports in force."""

    identifier: str
    kind: str
    colour: str
    enterprise_id: str
    region_code: str
    since: datetime


@dataclass(frozen=True, slots=True)
class Now:
    warnings: Sequence[WarningNow] = ()
    alarms: Sequence[AlarmNow] = ()
    weather: Sequence[WeatherNow] = ()


def _latest(hits: Sequence[tuple[datetime, str]]) -> tuple[datetime, str] | None:
    return max(hits) if hits else None


def _holds(c: StartCondition, scope: Scope, now: Now) -> tuple[datetime, str] | None:
    if c.bureau_warning is not None:
        w = c.bureau_warning
        return _latest([
            (x.since, f"bureau warning {x.id} ({x.kind}, {LEVEL_COLOUR[x.colour]}) at {x.enterprise_id}")
            for x in now.warnings
            if covers(scope, x.region_code) and x.colour >= colour_number(w.min_colour)
            and (not w.kinds or x.kind in w.kinds)
        ])  # fmt: skip
    if c.alarm is not None:
        a = c.alarm
        return _latest([
            (x.since, f"alarm {x.alarm_id} tier {LEVEL_COLOUR[x.tier]} at a grade {x.grade} hazard source")
            for x in now.alarms
            if covers(scope, x.region_code) and x.tier >= colour_number(a.min_tier) and x.grade in a.grades
        ])  # fmt: skip
    if c.weather is not None:
        ww = c.weather
        need = Colour[ww.min_colour.upper()]
        return _latest([
            (x.since, f"weather {x.colour} {x.kind} warning {x.identifier} at {x.enterprise_id}")
            for x in now.weather
            if covers(scope, x.region_code) and x.kind == ww.kind and Colour[x.colour.upper()] >= need
        ])  # fmt: skip
    return None  # a manual condition never holds by itself


LEVEL_COLOUR = {1: "blue", 2: "yellow", 3: "orange", 4: "red"}


def holding(plan: BureauPlan, bureau: Scope, now: Now) -> Held:
    """The start conditions of ``plan`` that hold: (level 1-4, since, in words)."""
    out = []
    for c in plan.start:
        h = _holds(c, plan.scope(bureau), now)
        if h is not None:
            out.append((c.level_n, h[0], h[1]))
    return out


def decide(  # noqa: PLR0917 - what holds, what is open, and the time
    plans: Sequence[BureauPlan],
    bureau: Scope,
    now_holds: Now,
    open_activations: Sequence[Activation],
    last_end: Mapping[str, datetime],
    now: datetime,
) -> list[Decision]:
    """What to record now (`hazmon.weather.plans.decide_held` on the bureau's conditions)."""
    held = [(p.id, p.end.clear_for_min, holding(p, bureau, now_holds)) for p in plans]
    return decide_held(held, open_activations, last_end, now)


def _may(who: str, allowed: Sequence[str]) -> bool:
    return not allowed or ANY_OFFICER in allowed or who in allowed


def manual_start(  # noqa: PLR0917 - the request and its context
    plan: BureauPlan,
    by: str,
    role: str,
    level: str | None,
    drill: bool,
    open_activations: Sequence[Activation],
) -> Start | Refusal:
    """A start by hand by the officer ``by`` (a token or console user name), or why not."""
    lv0, allowed = plan.manual()
    if lv0 is None:
        return Refusal(f"plan '{plan.id}' has no manual start condition")
    if role != "officer":
        return Refusal(f"a {role} may not start a plan (officers only)")
    if not _may(by, allowed):
        return Refusal(f"'{by}' may not start plan '{plan.id}' (allowed: {', '.join(allowed)})")
    return start_by_hand(plan.id, level or lv0, drill, open_activations, by)


def manual_end(plan: BureauPlan, activation: Activation, by: str, role: str) -> End | Refusal:
    if role != "officer":
        return Refusal(f"a {role} may not end a plan (officers only)")
    if not _may(by, plan.end.manual_by):
        return Refusal(f"'{by}' may not end plan '{plan.id}' (allowed: {', '.join(plan.end.manual_by)})")
    return End(activation.id, plan.id, f"ended by {by}")


def may_confirm(
    plan: BureauPlan, step_id: str, by: str, role: str, confirmed: Sequence[str]
) -> Refusal | None:
    """None when the officer ``by`` may confirm the step now: its owner (``officer``: any officer), once."""
    step = next((s for s in plan.steps if s.id == step_id), None)
    if step is None:
        return Refusal(
            f"plan '{plan.id}' has no step '{step_id}' (steps: {', '.join(s.id for s in plan.steps)})"
        )
    if role != "officer":
        return Refusal(f"a {role} may not confirm a step (officers only)")
    if not _may(by, (step.owner,)):
        return Refusal(f"step '{step_id}' is confirmed by {step.owner}, not {by}")
    if step_id in confirmed:
        return Refusal(f"step '{step_id}' is already confirmed")
    return None
