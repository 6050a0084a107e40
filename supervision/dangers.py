"""The hidden-danger register: records, their rectification plan, and the state machine (pure).

A hidden danger (隐患) is the fold of its steps, an append-only log: ``report``
creates it; ``plan``, ``start``, ``apply``, ``accept``, ``reject`` move it;
``note`` and ``attach`` add to its history without moving it. Every step carries
who, with which role, when and a comment. `decide` checks one new step against
the record folded so far and returns it, or raises `RefusedError` naming every reason;
nothing here does I/O.

States and the steps that move them (``*`` = any role of the plant)::

    found ──plan──► plan ──start──► rectifying ──apply──► applied ──accept──► accepted (销号)
      │                                ▲   │                  │
      └──start (general only)──────────┘   └─plan (revision)  └──reject──► rectifying

Roles (the plant roles of hazmon's API tokens): ``operator`` reports, starts
rectification, notes and attaches; ``plant_manager`` also signs plans and applies
for acceptance; acceptance or rejection is by the ``plant_manager`` or a
``bureau`` user who is not the person who applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from hazmon.plant.supervision_standards import MAJOR_CRITERIA, PLAN_PARTS

__all__ = [
    "ACTION_ROLES",
    "ROLES",
    "TRANSITIONS",
    "Action",
    "Danger",
    "DangerLevel",
    "FoundBy",
    "Plan",
    "RefusedError",
    "Report",
    "State",
    "Step",
    "decide",
    "fold",
    "local_day",
    "overdue_episodes",
    "plan_problems",
]


class DangerLevel(StrEnum):
    GENERAL = "general"  # 一般事故隐患
    MAJOR = "major"  # 重大事故隐患


class State(StrEnum):
    FOUND = "found"
    PLAN = "plan"
    RECTIFYING = "rectifying"
    APPLIED = "applied"  # applied for acceptance
    ACCEPTED = "accepted"  # 销号


class Action(StrEnum):
    REPORT = "report"
    PLAN = "plan"
    START = "start"
    APPLY = "apply"
    ACCEPT = "accept"
    REJECT = "reject"
    NOTE = "note"
    ATTACH = "attach"


class FoundBy(StrEnum):
    """How the hidden danger was found."""

    INSPECTION = "inspection"  # routine screening (隐患排查)
    DUTY_CHECK = "duty_check"  # a responsible person's check (包保责任人)
    EXPERT = "expert"
    BUREAU = "bureau"  # a bureau inspection
    ALARM = "alarm"  # raised from a standing, repeating or chattering alarm


ROLES = ("operator", "plant_manager", "bureau")
"""The roles of hazmon's API tokens (hazmon.alarms.auth.ROLES: the same strings)."""

TRANSITIONS: dict[tuple[State | None, Action], State] = {
    (None, Action.REPORT): State.FOUND,
    (State.FOUND, Action.PLAN): State.PLAN,
    (State.FOUND, Action.START): State.RECTIFYING,  # general only: a major one needs its plan
    (State.PLAN, Action.PLAN): State.PLAN,  # a revised plan, signed again
    (State.PLAN, Action.START): State.RECTIFYING,
    (State.RECTIFYING, Action.PLAN): State.RECTIFYING,  # revision during rectification (new deadline)
    (State.RECTIFYING, Action.APPLY): State.APPLIED,
    (State.APPLIED, Action.ACCEPT): State.ACCEPTED,
    (State.APPLIED, Action.REJECT): State.RECTIFYING,
}
"""(state before, action) -> state after; ``note`` and ``attach`` keep any state. Anything else is refused."""

ACTION_ROLES: dict[Action, frozenset[str]] = {
    Action.REPORT: frozenset({"operator", "plant_manager"}),
    Action.PLAN: frozenset({"plant_manager"}),
    Action.START: frozenset({"operator", "plant_manager"}),
    Action.APPLY: frozenset({"plant_manager"}),
    Action.ACCEPT: frozenset({"plant_manager", "bureau"}),
    Action.REJECT: frozenset({"plant_manager", "bureau"}),
    Action.NOTE: frozenset(ROLES),
    Action.ATTACH: frozenset({"operator", "plant_manager", "bureau"}),
}


class RefusedError(ValueError):
    """A step that may not be taken; ``reasons`` names every problem."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


def local_day(at: datetime, tz: ZoneInfo) -> date:
    """The plant's local date of an aware instant."""
    return at.astimezone(tz).date()


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True, slots=True)
class Plan:
    """A rectification plan (治理方案): the six parts of Order 16.

    Attributes:
        goal: 治理的目标和任务.
        measures: 采取的方法和措施.
        funds: 经费 in yuan (a Decimal; must be > 0) and ``materials`` (物资).
        organisation: 负责治理的机构; ``persons``: the persons in charge (at least one).
        deadline: 治理的时限: the plant's local date by which it is accepted.
        safety_measures / contingency_plan: 安全措施和应急预案 during rectification.
    """

    goal: str = ""
    measures: str = ""
    funds: Decimal | None = None
    materials: str = ""
    organisation: str = ""
    persons: tuple[str, ...] = ()
    deadline: date | None = None
    safety_measures: str = ""
    contingency_plan: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "measures": self.measures,
            "funds": None if self.funds is None else str(self.funds),
            "materials": self.materials,
            "organisation": self.organisation,
            "persons": list(self.persons),
            "deadline": None if self.deadline is None else self.deadline.isoformat(),
            "safety_measures": self.safety_measures,
            "contingency_plan": self.contingency_plan,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Plan:
        funds = d.get("funds")
        dl = d.get("deadline")
        return Plan(
            goal=str(d.get("goal") or ""),
            measures=str(d.get("measures") or ""),
            funds=None if funds is None else Decimal(str(funds)),
            materials=str(d.get("materials") or ""),
            organisation=str(d.get("organisation") or ""),
            persons=tuple(str(p) for p in d.get("persons") or ()),
            deadline=None if dl is None else date.fromisoformat(str(dl)),
            safety_measures=str(d.get("safety_measures") or ""),
            contingency_plan=str(d.get("contingency_plan") or ""),
        )


def _part(key: str) -> str:
    p = next(p for p in PLAN_PARTS if p.key == key)
    return f"{p.en} ({p.zh})"


def plan_problems(plan: Plan | None, level: DangerLevel, today: date | None) -> list[str]:
    """Every missing or bad part of a plan; empty when it may be signed.

    A major hidden danger's plan needs all six parts of Order 16; a general one
    needs measures and a deadline. Funds, when given, must be more than 0; the
    deadline may not be before ``today`` (the local day of signing; None: not checked).
    """
    out: list[str] = []
    p = plan or Plan()
    major = level is DangerLevel.MAJOR
    if major and not p.goal.strip():
        out.append(f"{_part('goal')} is missing")
    if not p.measures.strip():
        out.append(f"{_part('measures')} is missing")
    if p.funds is None:
        if major:
            out.append(f"{_part('funds')} is missing: give the amount in yuan")
    elif not p.funds.is_finite() or p.funds <= 0:
        out.append(f"{_part('funds')}: the amount must be more than 0 yuan, got {p.funds}")
    if major and not p.organisation.strip():
        out.append(f"{_part('organisation')}: the organisation is missing")
    if major and not [x for x in p.persons if x.strip()]:
        out.append(f"{_part('organisation')}: no person in charge is named")
    if p.deadline is None:
        out.append(f"{_part('deadline')}: the deadline is missing")
    elif today is not None and p.deadline < today:
        out.append(f"{_part('deadline')}: the deadline {p.deadline} is in the past (today is {today})")
    if major and not p.safety_measures.strip():
        out.append(f"{_part('safety')}: the safety measures are missing")
    if major and not p.contingency_plan.strip():
        out.append(f"{_part('safety')}: the contingency plan is missing")
    return out


def parse_funds(text: str) -> Decimal:
    """Yuan from text ("120000", "1.5e5"); ValueError with a reason otherwise."""
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"funds: '{text}' is not an amount in yuan") from None
    if not d.is_finite():
        raise ValueError(f"funds: '{text}' is not an amount in yuan")
    return d


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Report:
    """What was found, where, how (the ``report`` step's data).

    Attributes:
        title: a short description of what was found.
        level: general or major.
        found_by: how it was found.
        hazard_source: id of the hazard source, None when it concerns the whole enterprise.
        unit: the unit or place (装置 / 部位), free text.
        sensor: a sensor tag, when it concerns one.
        equipment: an equipment id, when it concerns one.
        criteria: for a major one, the items of 安监总管三〔2017〕121号 that make it major.
        alarm_id: the alarm it was raised from (found_by alarm).
        duty_check_id: the duty check it was found in (found_by duty_check).
        description: details.
    """

    title: str
    level: DangerLevel
    found_by: FoundBy
    hazard_source: str | None = None
    unit: str = ""
    sensor: str | None = None
    equipment: str | None = None
    criteria: tuple[int, ...] = ()
    alarm_id: int | None = None
    duty_check_id: int | None = None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "level": self.level.value,
            "found_by": self.found_by.value,
            "hazard_source": self.hazard_source,
            "unit": self.unit,
            "sensor": self.sensor,
            "equipment": self.equipment,
            "criteria": list(self.criteria),
            "alarm_id": self.alarm_id,
            "duty_check_id": self.duty_check_id,
            "description": self.description,
        }

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Report:
        return Report(
            title=str(d["title"]),
            level=DangerLevel(d["level"]),
            found_by=FoundBy(d["found_by"]),
            hazard_source=d.get("hazard_source"),
            unit=str(d.get("unit") or ""),
            sensor=d.get("sensor"),
            equipment=d.get("equipment"),
            criteria=tuple(int(x) for x in d.get("criteria") or ()),
            alarm_id=None if d.get("alarm_id") is None else int(d["alarm_id"]),
            duty_check_id=None if d.get("duty_check_id") is None else int(d["duty_check_id"]),
            description=str(d.get("description") or ""),
        )


def report_problems(r: Report) -> list[str]:
    out: list[str] = []
    if not r.title.strip():
        out.append("title: say what was found")
    bad = [i for i in r.criteria if i not in MAJOR_CRITERIA]
    if bad:
        out.append(
            f"criteria: {', '.join(map(str, bad))} not an item of the 20 major-hidden-danger criteria (1-20)"
        )
    if r.level is DangerLevel.MAJOR and not r.criteria:
        out.append(
            "criteria: a major hidden danger names the item(s) of the 20 criteria "
            "(安监总管三〔2017〕121号) that make it major"
        )
    if r.level is DangerLevel.GENERAL and r.criteria:
        out.append("criteria: only a major hidden danger is judged against the 20 criteria")
    if r.found_by is FoundBy.ALARM and r.alarm_id is None:
        out.append("alarm: a hidden danger raised from an alarm names the alarm id")
    return out


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a hidden danger's history (the append-only log).

    Attributes:
        action: what was done.
        actor: who (a person's name or a token's name).
        role: operator | plant_manager | bureau.
        at: when (aware datetime).
        comment: free text; required for ``reject``.
        data: report / plan / deadline / attachment data, by action.
        seq: its number in the record's log (1 = the report), 0 before it is stored.
    """

    action: Action
    actor: str
    role: str
    at: datetime
    comment: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Danger:
    """A hidden danger as folded from its steps."""

    id: int
    report: Report
    state: State
    plan: Plan | None
    deadline: date | None  # the rectification deadline in force (plan or start step)
    steps: tuple[Step, ...]
    applied_by: str | None = None

    @property
    def level(self) -> DangerLevel:
        return self.report.level

    @property
    def found_at(self) -> datetime:
        return self.steps[0].at


def fold(danger_id: int, steps: Iterable[Step]) -> Danger:
    """The record after these steps (already accepted by `decide`; not checked again)."""
    d: Danger | None = None
    for s in steps:
        d = _apply(d, danger_id, s)
    if d is None:
        raise ValueError(f"hidden danger {danger_id} has no steps")
    return d


def _apply(d: Danger | None, danger_id: int, s: Step) -> Danger:
    if d is None:
        return Danger(danger_id, Report.from_json(s.data), State.FOUND, None, None, (s,))
    state = TRANSITIONS.get((d.state, s.action), d.state)
    plan, deadline, applied_by = d.plan, d.deadline, d.applied_by
    if s.action is Action.PLAN:
        plan = Plan.from_json(s.data)
        deadline = plan.deadline
    elif s.action is Action.START and s.data.get("deadline"):
        deadline = date.fromisoformat(str(s.data["deadline"]))
    elif s.action is Action.APPLY:
        applied_by = s.actor
    return replace(d, state=state, plan=plan, deadline=deadline, steps=(*d.steps, s), applied_by=applied_by)


def decide(d: Danger | None, step: Step, tz: ZoneInfo) -> Step:  # noqa: PLR0912 - a branch per rule
    """Check ``step`` against the record folded so far; returns it, or raises `RefusedError`.

    Args:
        d: the record (None for a ``report``).
        step: the proposed step (``at`` must be aware).
        tz: the plant's time zone (the signing day of a plan's deadline).
    """
    why: list[str] = []
    if step.at.tzinfo is None:
        raise RefusedError(["time: must carry a time zone"])
    if not step.actor.strip():
        why.append("who: the person taking the step is missing")
    if step.role not in ROLES:
        raise RefusedError([f"role: '{step.role}' is not one of {', '.join(ROLES)}"])
    allowed = ACTION_ROLES[step.action]
    if step.role not in allowed:
        why.append(f"role: a {step.role} may not {step.action.value} (allowed: {', '.join(sorted(allowed))})")
    state = None if d is None else d.state
    if step.action is Action.REPORT:
        if d is not None:
            raise RefusedError(["report: this hidden danger is already reported"])
        try:
            why += report_problems(Report.from_json(step.data))
        except (KeyError, ValueError) as e:
            why.append(f"report: {e}")
        if why:
            raise RefusedError(why)
        return step
    if d is None:
        raise RefusedError([f"{step.action.value}: no such hidden danger"])
    if step.at < d.steps[-1].at:
        why.append(f"time: {step.at.isoformat()} is before the last step ({d.steps[-1].at.isoformat()})")
    if step.action in (Action.NOTE, Action.ATTACH):
        if step.action is Action.NOTE and not step.comment.strip():
            why.append("note: the comment is empty")
        if why:
            raise RefusedError(why)
        return step
    if (state, step.action) not in TRANSITIONS:
        nxt = sorted(a.value for (s, a) in TRANSITIONS if s is state)
        why.insert(
            0,
            f"{step.action.value}: not allowed in state '{state}' "
            f"(allowed: {', '.join([*nxt, 'note', 'attach']) if state else 'report'})",
        )
        raise RefusedError(why)
    today = local_day(step.at, tz)
    if step.action is Action.PLAN:
        try:
            plan = Plan.from_json(step.data)
        except (ValueError, InvalidOperation) as e:
            raise RefusedError([*why, f"plan: {e}"]) from None
        why += plan_problems(plan, d.level, today)
    elif step.action is Action.START:
        why += _start_problems(d, step, today)
    elif step.action in (Action.ACCEPT, Action.REJECT):
        if d.applied_by is not None and d.applied_by == step.actor:
            why.append(f"{step.action.value}: {step.actor} applied for acceptance and may not also decide it")
        if step.action is Action.REJECT and not step.comment.strip():
            why.append("reject: say why in the comment")
    if why:
        raise RefusedError(why)
    return step


def _start_problems(d: Danger, step: Step, today: date) -> list[str]:
    if d.level is DangerLevel.MAJOR:
        if d.plan is None:
            missing = ", ".join(f"{p.en} ({p.zh})" for p in PLAN_PARTS)
            return [
                "start: a major hidden danger cannot leave 'found' without its signed rectification "
                f"plan (治理方案): {missing}"
            ]
        # complete at signing; the deadline may have passed since (that is an overdue, not a refusal)
        return [f"start: {p}" for p in plan_problems(d.plan, d.level, None)]
    if d.plan is None and not step.data.get("deadline"):
        return ["start: give the rectification deadline (a general hidden danger without a plan)"]
    if step.data.get("deadline"):
        try:
            dl = date.fromisoformat(str(step.data["deadline"]))
        except ValueError:
            return [f"start: deadline '{step.data['deadline']}' is not a date (YYYY-MM-DD)"]
        if dl < today:
            return [f"start: the deadline {dl} is in the past (today is {today})"]
    return []


# --------------------------------------------------------------------------- overdue


def deadline_instant(deadline: date, tz: ZoneInfo) -> datetime:
    """When a rectification with this deadline becomes overdue: the local midnight after it."""
    return datetime.combine(deadline + timedelta(days=1), datetime.min.time(), tz)


def overdue_episodes(d: Danger, tz: ZoneInfo, now: datetime) -> list[tuple[date, datetime, datetime | None]]:
    """Each time the record was overdue up to ``now``: (deadline, from, until or None while it lasts).

    A record is overdue from the local midnight after its deadline until it is
    accepted or a revised plan sets another deadline (a revision to the same date
    changes nothing).
    """
    out: list[tuple[date, datetime, datetime | None]] = []
    current: date | None = None
    since: datetime | None = None

    def close(until: datetime | None) -> None:
        if current is None or since is None:
            return
        start = deadline_instant(current, tz)
        end = until if until is not None and until <= now else None
        if start <= now and (end is None or start < end):
            out.append((current, start, end))

    for s in d.steps:
        if s.at > now:
            break
        nd = current
        if s.action is Action.PLAN:
            nd = Plan.from_json(s.data).deadline
        elif s.action is Action.START and s.data.get("deadline"):
            nd = date.fromisoformat(str(s.data["deadline"]))
        if s.action is Action.ACCEPT:
            close(s.at)
            return out
        if nd != current:
            close(s.at)
            current, since = nd, s.at
    close(None)
    return out
