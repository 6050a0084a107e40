"""The handling of a bureau warning: 推送 → 核查 → 反馈 → 消警, a pure state machine of events.

::

    pushed --verify (bureau staff)--> verified --feedback (the enterprise)--> fed_back --close--> closed

A warning is created ``pushed`` (sent to the region's bureau staff and down to the enterprise).
Each step names its actor and time. A step out of order is refused with a reason naming the
state; so is closing (消警) while the cause still holds — the next evaluation would only raise
the same warning again. The cause going away by itself does not close a warning: national
practice records every step of the chain, so staff still verify and close it (see
``bureau/WARNINGS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = ["NEXT", "Refused", "State", "Step", "Transition", "apply", "fold"]


class State(StrEnum):
    PUSHED = "pushed"  # 推送
    VERIFIED = "verified"  # 核查
    FED_BACK = "fed_back"  # 反馈
    CLOSED = "closed"  # 消警

    @property
    def zh(self) -> str:
        return {"pushed": "已推送", "verified": "已核查", "fed_back": "已反馈", "closed": "已消警"}[
            self.value
        ]


class Step(StrEnum):
    VERIFY = "verify"
    FEEDBACK = "feedback"
    CLOSE = "close"

    @property
    def zh(self) -> str:
        return {"verify": "核查", "feedback": "反馈", "close": "消警"}[self.value]


NEXT: dict[Step, tuple[State, State]] = {
    Step.VERIFY: (State.PUSHED, State.VERIFIED),
    Step.FEEDBACK: (State.VERIFIED, State.FED_BACK),
    Step.CLOSE: (State.FED_BACK, State.CLOSED),
}
"""Step -> (the state it needs, the state it leads to)."""


@dataclass(frozen=True, slots=True)
class Transition:
    step: Step
    before: State
    after: State
    actor: str
    at: datetime
    comment: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A step that cannot be taken; ``reason`` names the state (en), ``reason_zh`` the same in Chinese."""

    reason: str
    reason_zh: str


def apply(
    state: State,
    step: str,
    actor: str,
    at: datetime,
    comment: str = "",
    *,
    last_at: datetime | None = None,
    cause_cleared: bool = True,
) -> Transition | Refused:
    """The transition ``step`` makes from ``state``, or why it is refused.

    Args:
        state: the warning's state now.
        step: verify | feedback | close.
        actor: who takes it (a bureau officer's or the enterprise's name or id).
        at: when (the caller's clock, passed in).
        comment: what they found or answered.
        last_at: the time of the warning's last event; a step may not come before it.
        cause_cleared: whether the cause went away; closing needs it.
    """
    try:
        s = Step(step)
    except ValueError:
        return Refused(
            f"unknown step {step!r} (allowed: {', '.join(x.value for x in Step)})",
            f"未知步骤“{step}”（可用：{'、'.join(x.zh for x in Step)}）",
        )
    refused = _refusal(state, s, actor=actor, at=at, last_at=last_at, cause_cleared=cause_cleared)
    if refused is not None:
        return refused
    return Transition(s, state, NEXT[s][1], actor.strip(), at, comment)


def _refusal(
    state: State, s: Step, *, actor: str, at: datetime, last_at: datetime | None, cause_cleared: bool
) -> Refused | None:
    if not actor.strip():
        return Refused("a step needs an actor (who took it)", "步骤须注明操作人")
    if last_at is not None and at < last_at:
        return Refused(
            f"{s.value} at {at.isoformat()} is before the warning's last step at {last_at.isoformat()}",
            f"{s.zh}的时间早于上一步骤（{last_at.isoformat()}）",
        )
    need = NEXT[s][0]
    if state is State.CLOSED:
        return Refused(f"warning is closed (消警): no {s.value} after that", f"预警已消警，不能再{s.zh}")
    if state is not need:
        return Refused(
            f"cannot {s.value}: warning is {state.value}, {s.value} needs {need.value}",
            f"不能{s.zh}：预警当前{state.zh}，须为{need.zh}",
        )
    if s is Step.CLOSE and not cause_cleared:
        return Refused(
            f"cannot close: warning is {state.value} but its cause still holds",
            f"不能消警：预警{state.zh}，但预警原因仍然存在",
        )
    return None


def fold(steps: list[tuple[str, str, datetime]]) -> State | Refused:
    """The state after replaying ``(step, actor, at)`` from ``pushed`` (the history's check)."""
    state, last = State.PUSHED, None
    for step, actor, at in steps:
        t = apply(state, step, actor, at, last_at=last)
        if isinstance(t, Refused):
            return t
        state, last = t.after, at
    return state
