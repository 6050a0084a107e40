"""Supervised rectification (挂牌督办) at the bureau: a pure state machine of (events, now).

::

    open ──request_progress──► progress_requested
      │  ◄──────progress (the enterprise)──┘
      ├──accept (on site; after the enterprise reported it done)──► accepted ──close──► closed (销号)
      └──(deadline passed, automatic, once)── escalated: the next level up supervises, state kept

A bureau opens a supervision on a major hidden danger (or on an enterprise as a whole) at its
own level — county, city or province — with a deadline and its person in charge (督办责任人).
The enterprise reports progress (``progress``, from the link); a report marked ``done`` asks
for acceptance on site. Staff accept on site, then close (销号). A supervision still open the
local midnight after its deadline is escalated to the next level up exactly once
(`escalation`); from then on only a bureau of that level or above takes its steps.

Every function here is pure: the clock is ``now``/``at`` passed in, the history is the events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from hazmon.plant.supervision_standards import SUPERVISION_LEVELS, SUPERVISION_MIN_LEVEL

__all__ = [
    "BUREAU_STEPS",
    "TRANSITIONS",
    "Escalation",
    "Event",
    "Refused",
    "State",
    "Supervision",
    "Transition",
    "apply",
    "deadline_instant",
    "escalation",
    "fold",
    "next_level",
    "open_problems",
]


class State(StrEnum):
    OPEN = "open"  # 督办中
    PROGRESS_REQUESTED = "progress_requested"  # 已催报进展
    ACCEPTED = "accepted"  # 已现场验收
    CLOSED = "closed"  # 已销号

    @property
    def zh(self) -> str:
        return {
            "open": "督办中",
            "progress_requested": "已催报进展",
            "accepted": "已验收",
            "closed": "已销号",
        }[self.value]


BUREAU_STEPS: dict[str, str] = {
    "request_progress": "progress_requested",
    "accept": "accepted",
    "close": "closed",
}
"""A bureau officer's step (API ``step``) -> the event it records (and the link's ``action``)."""

TRANSITIONS: dict[tuple[State, str], State] = {
    (State.OPEN, "request_progress"): State.PROGRESS_REQUESTED,
    (State.OPEN, "accept"): State.ACCEPTED,
    (State.PROGRESS_REQUESTED, "accept"): State.ACCEPTED,
    (State.ACCEPTED, "close"): State.CLOSED,
    # the enterprise's progress report: a request is answered; otherwise the state stays
    (State.OPEN, "progress"): State.OPEN,
    (State.PROGRESS_REQUESTED, "progress"): State.OPEN,
    (State.ACCEPTED, "progress"): State.ACCEPTED,
    # automatic, once: the level goes up, the state stays
    (State.OPEN, "escalated"): State.OPEN,
    (State.PROGRESS_REQUESTED, "escalated"): State.PROGRESS_REQUESTED,
}
"""(state, step or event) -> state after; anything else is refused."""


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a supervision's history (``bureau_supervision_event``).

    Attributes:
        step: opened | progress | progress_requested | accepted | closed | escalated.
        level: the level supervising after it; ``deadline`` the deadline in force.
        done: for ``progress``: the enterprise says the rectification is done.
    """

    step: str
    at: datetime
    actor: str
    level: str
    deadline: date
    comment: str = ""
    done: bool = False


@dataclass(frozen=True, slots=True)
class Supervision:
    state: State
    level: str
    opened_level: str
    deadline: date
    escalated_at: datetime | None
    reported_done: bool  # a progress report asked for acceptance since the last acceptance
    last_at: datetime
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a step or an opening is refused: ``field`` names what is wrong, ``reason`` says why."""

    field: str
    reason: str
    reason_zh: str = ""

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" + (f" ({self.reason_zh})" if self.reason_zh else "")


@dataclass(frozen=True, slots=True)
class Transition:
    step: str
    event: str  # what is recorded (and sent down as the link's action)
    before: State
    after: State
    actor: str
    at: datetime
    comment: str


@dataclass(frozen=True, slots=True)
class Escalation:
    """The automatic escalation due now: from ``level_before`` to ``level_after``."""

    level_before: str
    level_after: str
    overdue_since: datetime
    comment: str


_EVENT_STATE = {"progress_requested": "request_progress", "accepted": "accept", "closed": "close"}


def _rank(level: str) -> int:
    return SUPERVISION_LEVELS.index(level) if level in SUPERVISION_LEVELS else -1


def next_level(level: str) -> str:
    """The level above ``level`` (province stays province: no level above it supervises here)."""
    i = _rank(level)
    return SUPERVISION_LEVELS[min(i + 1, len(SUPERVISION_LEVELS) - 1)]


def deadline_instant(deadline: date, tz: ZoneInfo) -> datetime:
    """When a supervision with this deadline becomes overdue: the local midnight after it."""
    return datetime.combine(deadline + timedelta(days=1), datetime.min.time(), tz)


def open_problems(  # noqa: PLR0917 - every fact an opening is judged on
    bureau_level: str,
    danger_level: str | None,
    danger_state: str | None,
    deadline: date | None,
    now: datetime,
    tz: ZoneInfo,
    *,
    bureau_person: str = "x",
    already_open: bool = False,
    min_level: Mapping[str, str] = SUPERVISION_MIN_LEVEL,
) -> list[Refused]:
    """Every reason a bureau of ``bureau_level`` may not open this supervision now (empty: it may).

    Args:
        danger_level: the hidden danger's level (None: the enterprise as a whole).
        danger_state: the hidden danger's state at the enterprise (None: the enterprise).
        bureau_level: the opening bureau's level (county, city, province).
        deadline: the rectification deadline the bureau sets (the bureau's local date).
        now: the bureau's clock (the deadline may not be before its local day).
        tz: the bureau's time zone.
        bureau_person: the bureau's person in charge (督办责任人).
        already_open: a supervision of this danger is open (not closed) already.
        min_level: danger level -> the lowest bureau level that may supervise it.
    """
    out: list[Refused] = []
    if bureau_level not in SUPERVISION_LEVELS:
        out.append(
            Refused(
                "level",
                f"a {bureau_level} bureau does not supervise (county, city or province)",
                "该级别不能挂牌督办",
            )
        )
    if danger_level is not None:
        need = min_level.get(danger_level, SUPERVISION_LEVELS[0])
        if _rank(bureau_level) < _rank(need):
            out.append(
                Refused(
                    "level",
                    f"a {danger_level} hidden danger is supervised at {need} level or above, "
                    f"this bureau is {bureau_level}",
                    f"该隐患须由{need}级及以上督办",
                )
            )
        if danger_state == "accepted":
            out.append(Refused("danger_id", "the hidden danger is accepted (销号) already", "隐患已销号"))
    if already_open:
        out.append(
            Refused("danger_id", "this hidden danger is under supervision already", "该隐患已在督办中")
        )
    if deadline is None:
        out.append(Refused("deadline", "the rectification deadline is missing", "缺少整改期限"))
    elif deadline < now.astimezone(tz).date():
        today = now.astimezone(tz).date()
        out.append(Refused("deadline", f"{deadline} is in the past (today is {today})", "整改期限早于今天"))
    if not bureau_person.strip():
        out.append(
            Refused(
                "bureau_person", "the bureau's person in charge (督办责任人) is missing", "缺少督办责任人"
            )
        )
    return out


def fold(events: Iterable[Event]) -> Supervision:
    """The supervision after its events (the first is ``opened``); events are not checked again."""
    sv: Supervision | None = None
    for e in events:
        if sv is None:
            sv = Supervision(State.OPEN, e.level, e.level, e.deadline, None, False, e.at, (e,))
            continue
        key = _EVENT_STATE.get(e.step, e.step)
        state = TRANSITIONS.get((sv.state, key), sv.state)
        done = sv.reported_done
        if e.step == "progress" and e.done:
            done = True
        elif e.step == "accepted":
            done = False
        sv = replace(
            sv,
            state=state,
            level=e.level,
            deadline=e.deadline,
            escalated_at=e.at if e.step == "escalated" and sv.escalated_at is None else sv.escalated_at,
            reported_done=done,
            last_at=max(sv.last_at, e.at),
            events=(*sv.events, e),
        )
    if sv is None:
        raise ValueError("a supervision starts with 'opened'")
    return sv


def apply(  # noqa: PLR0911 - one return per refusal
    sv: Supervision, step: str, actor: str, actor_level: str, *, at: datetime, comment: str = ""
) -> Transition | Refused:
    """A bureau officer's ``step`` on ``sv`` at ``at``, or why it is refused.

    Args:
        sv: the supervision folded from its events.
        step: request_progress | accept | close.
        actor: who takes it.
        at: when (the caller's clock).
        comment: what they found or decided.
        actor_level: the officer's bureau level: the supervision's level or above acts on it.
    """
    if step not in BUREAU_STEPS:
        return Refused("step", f"unknown step {step!r} (allowed: {', '.join(BUREAU_STEPS)})", "未知步骤")
    if not actor.strip():
        return Refused("actor", "a step needs who took it", "须注明操作人")
    if at < sv.last_at:
        return Refused(
            "at", f"{at.isoformat()} is before the last step ({sv.last_at.isoformat()})", "时间早于上一步骤"
        )
    if _rank(actor_level) < _rank(sv.level):
        return Refused(
            "level",
            f"the supervision is at {sv.level} level now; a {actor_level} bureau may not {step} it",
            f"该督办已由{sv.level}级督办",
        )
    if sv.state is State.CLOSED:
        return Refused("step", f"the supervision is closed (销号): no {step} after that", "督办已销号")
    after = TRANSITIONS.get((sv.state, step))
    if after is None:
        allowed = sorted(s for (st, s) in TRANSITIONS if st is sv.state and s in BUREAU_STEPS)
        return Refused(
            "step",
            f"cannot {step} in state {sv.state.value} (allowed: {', '.join(allowed) or 'none'})",
            f"当前状态{sv.state.zh}，不能执行该步骤",
        )
    if step == "accept" and not sv.reported_done:
        return Refused(
            "step",
            "cannot accept: the enterprise has not reported the rectification done (progress with done)",
            "企业尚未报告整改完成，不能验收",
        )
    return Transition(step, BUREAU_STEPS[step], sv.state, after, actor.strip(), at, comment)


def escalation(sv: Supervision, now: datetime, tz: ZoneInfo) -> Escalation | None:
    """The escalation due at ``now``, or None: overdue, not accepted or closed, never escalated before."""
    if sv.escalated_at is not None or sv.state in (State.ACCEPTED, State.CLOSED):
        return None
    since = deadline_instant(sv.deadline, tz)
    if now < since:
        return None
    up = next_level(sv.level)
    what = f"to {up} level" if up != sv.level else f"at {up} level (no level above)"
    return Escalation(
        sv.level,
        up,
        since,
        f"deadline {sv.deadline} passed (overdue since {since.isoformat()}): escalated {what} / 逾期提级督办",
    )
