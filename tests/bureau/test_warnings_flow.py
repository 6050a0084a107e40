"""The handling chain 推送 → 核查 → 反馈 → 消警 as a pure state machine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from hazmon.bureau.warning_flow import Refused, State, Transition, apply, fold

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_the_chain_in_order() -> None:
    t = apply(State.PUSHED, "verify", "县局张三", T, "现场核查")
    assert isinstance(t, Transition) and t.after is State.VERIFIED and t.actor == "县局张三"
    t = apply(t.after, "feedback", "E1 李四", T + timedelta(hours=1), "已恢复")
    assert isinstance(t, Transition) and t.after is State.FED_BACK
    t = apply(t.after, "close", "县局张三", T + timedelta(hours=2))
    assert isinstance(t, Transition) and t.after is State.CLOSED


@pytest.mark.parametrize(
    ("state", "step", "needle"),
    [
        (State.PUSHED, "feedback", "warning is pushed, feedback needs verified"),
        (State.PUSHED, "close", "warning is pushed, close needs fed_back"),
        (State.VERIFIED, "verify", "warning is verified, verify needs pushed"),
        (State.VERIFIED, "close", "warning is verified, close needs fed_back"),
        (State.CLOSED, "verify", "warning is closed"),
    ],
)
def test_out_of_order_refused_naming_the_state(state: State, step: str, needle: str) -> None:
    r = apply(state, step, "someone", T)
    assert isinstance(r, Refused)
    assert needle in r.reason
    assert r.reason_zh


def test_close_refused_while_cause_holds() -> None:
    r = apply(State.FED_BACK, "close", "张三", T, cause_cleared=False)
    assert isinstance(r, Refused) and "cause still holds" in r.reason and "仍然存在" in r.reason_zh


def test_actor_time_and_step_checked() -> None:
    assert isinstance(apply(State.PUSHED, "verify", "  ", T), Refused)
    r = apply(State.PUSHED, "verify", "张三", T, last_at=T + timedelta(seconds=1))
    assert isinstance(r, Refused) and "before the warning's last step" in r.reason
    r = apply(State.PUSHED, "approve", "张三", T)
    assert isinstance(r, Refused) and "unknown step 'approve'" in r.reason


def test_fold_replays_history() -> None:
    steps = [
        ("verify", "a", T),
        ("feedback", "b", T + timedelta(minutes=1)),
        ("close", "a", T + timedelta(minutes=2)),
    ]
    assert fold(steps) is State.CLOSED
    assert fold(steps[:2]) is State.FED_BACK
    bad = fold([("feedback", "b", T)])
    assert isinstance(bad, Refused) and "pushed" in bad.reason


def test_chinese_reasons_have_no_english_words() -> None:
    cases = [
        apply(State.PUSHED, "close", "a", T),
        apply(State.CLOSED, "verify", "a", T),
        apply(State.FED_BACK, "close", "a", T, cause_cleared=False),
        apply(State.PUSHED, "verify", "", T),
        apply(State.PUSHED, "verify", "a", T, last_at=T + timedelta(seconds=1)),
    ]
    for r in cases:
        assert isinstance(r, Refused)
        assert not re.search(r"[A-Za-z]", re.sub(r"\d{4}-\d\d-\d\dT[\d:+]+", "", r.reason_zh)), r.reason_zh
