"""挂牌督办 as a pure state machine: transitions allowed and refused, opening rules, escalation once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hazmon.bureau.supervision_flow import (
    Event,
    Refused,
    State,
    Transition,
    apply,
    escalation,
    fold,
    next_level,
    open_problems,
)

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DL = date(2027, 3, 31)


def opened(level: str = "county", *more: Event) -> list[Event]:
    return [Event("opened", T0, "county-officer", level, DL), *more]


def ev(step: str, hours: int, level: str = "county", done: bool = False) -> Event:
    return Event(step, T0 + timedelta(hours=hours), "x", level, DL, done=done)


# the events that bring a supervision into each state (its last event 1 h after T0 or later)
IN_STATE: dict[State, list[Event]] = {
    State.OPEN: opened("county", ev("progress", 1, done=True)),
    State.PROGRESS_REQUESTED: opened("county", ev("progress", 1, done=True), ev("progress_requested", 2)),
    State.ACCEPTED: opened("county", ev("progress", 1, done=True), ev("accepted", 2)),
    State.CLOSED: opened("county", ev("progress", 1, done=True), ev("accepted", 2), ev("closed", 3)),
}

ALLOWED = {
    (State.OPEN, "request_progress"): State.PROGRESS_REQUESTED,
    (State.OPEN, "accept"): State.ACCEPTED,
    (State.PROGRESS_REQUESTED, "accept"): State.ACCEPTED,
    (State.ACCEPTED, "close"): State.CLOSED,
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("step", ["request_progress", "accept", "close"])
def test_every_state_and_step_is_allowed_or_refused_as_the_table_says(state: State, step: str) -> None:
    sv = fold(IN_STATE[state])
    assert sv.state is state
    got = apply(sv, step, "officer", "county", at=T0 + timedelta(hours=5))
    if (state, step) in ALLOWED:
        assert isinstance(got, Transition), got
        assert got.after is ALLOWED[(state, step)]
    else:
        assert isinstance(got, Refused)
        assert got.field == "step"
        assert (state.value in got.reason) or ("closed" in got.reason)


def test_unknown_step_and_time_before_the_last_are_refused_naming_the_field() -> None:
    sv = fold(IN_STATE[State.OPEN])
    bad = apply(sv, "approve", "officer", "county", at=T0 + timedelta(hours=5))
    assert isinstance(bad, Refused)
    assert (bad.field, "approve" in bad.reason) == ("step", True)
    early = apply(sv, "request_progress", "officer", "county", at=T0)
    assert isinstance(early, Refused)
    assert early.field == "at"
    nobody = apply(sv, "request_progress", " ", "county", at=T0 + timedelta(hours=5))
    assert isinstance(nobody, Refused)
    assert nobody.field == "actor"


def test_accepting_needs_the_enterprise_to_report_the_rectification_done() -> None:
    not_done = fold(opened("county", ev("progress", 1, done=False)))
    got = apply(not_done, "accept", "officer", "county", at=T0 + timedelta(hours=2))
    assert isinstance(got, Refused)
    assert "not reported the rectification done" in got.reason
    done = fold(opened("county", ev("progress", 1, done=False), ev("progress", 2, done=True)))
    assert isinstance(apply(done, "accept", "officer", "county", at=T0 + timedelta(hours=3)), Transition)


def test_progress_answers_a_request() -> None:
    sv = fold(opened("county", ev("progress_requested", 1), ev("progress", 2)))
    assert sv.state is State.OPEN


@pytest.mark.parametrize(
    ("bureau", "danger", "min_major", "ok"),
    [
        ("county", "major", "county", True),
        ("county", "major", "city", False),
        ("city", "major", "city", True),
        ("province", "major", "city", True),
        ("county", "general", "city", True),
        ("nation", "major", "county", False),
    ],
)
def test_who_may_open_follows_the_minimum_level_table(
    bureau: str, danger: str, min_major: str, ok: bool
) -> None:
    why = open_problems(bureau, danger, "rectifying", DL, T0, TZ, min_level={"major": min_major})
    assert (why == []) is ok, why
    if not ok:
        assert {r.field for r in why} == {"level"}


def test_opening_refusals_name_their_field() -> None:
    why = open_problems(
        "county", "major", "accepted", date(2027, 2, 28), T0, TZ, bureau_person="", already_open=True
    )
    fields = [r.field for r in why]
    assert fields == ["danger_id", "danger_id", "deadline", "bureau_person"]
    assert "2027-02-28 is in the past (today is 2027-03-01)" in why[2].reason
    # today (the bureau's local day) is still allowed
    assert open_problems("county", "major", "found", date(2027, 3, 1), T0, TZ) == []
    assert [r.field for r in open_problems("county", None, None, None, T0, TZ)] == ["deadline"]


def test_overdue_by_one_day_escalates_exactly_once() -> None:
    sv = fold(opened("county"))
    midnight = datetime(2027, 4, 1, 0, 0, tzinfo=TZ)  # the local midnight after the deadline
    assert escalation(sv, midnight - timedelta(seconds=1), TZ) is None
    esc = escalation(sv, midnight + timedelta(days=1), TZ)
    assert esc is not None
    assert (esc.level_before, esc.level_after, esc.overdue_since) == ("county", "city", midnight)
    after = fold([*opened("county"), Event("escalated", midnight + timedelta(days=1), "bureau", "city", DL)])
    assert after.level == "city"
    assert after.escalated_at == midnight + timedelta(days=1)
    for days in (1, 2, 30):  # every later tick: nothing more
        assert escalation(after, midnight + timedelta(days=days), TZ) is None


def test_no_escalation_once_accepted_or_closed_and_province_has_no_level_above() -> None:
    late = datetime(2027, 4, 5, tzinfo=TZ)
    assert escalation(fold(IN_STATE[State.ACCEPTED]), late, TZ) is None
    assert escalation(fold(IN_STATE[State.CLOSED]), late, TZ) is None
    assert escalation(fold(IN_STATE[State.PROGRESS_REQUESTED]), late, TZ) is not None
    top = escalation(fold(opened("province")), late, TZ)
    assert top is not None
    assert top.level_after == "province"
    assert "no level above" in top.comment
    assert [next_level(x) for x in ("county", "city", "province")] == ["city", "province", "province"]


def test_after_escalation_only_the_higher_level_acts() -> None:
    sv = fold([*IN_STATE[State.OPEN], Event("escalated", T0 + timedelta(hours=3), "bureau", "city", DL)])
    low = apply(sv, "accept", "county-officer", "county", at=T0 + timedelta(hours=4))
    assert isinstance(low, Refused)
    assert low.field == "level"
    assert isinstance(apply(sv, "accept", "city-officer", "city", at=T0 + timedelta(hours=4)), Transition)
