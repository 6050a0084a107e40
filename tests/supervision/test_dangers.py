"""The hidden-danger state machine and the rectification plan, as tables (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from hazmon.supervision.dangers import (
    ACTION_ROLES,
    TRANSITIONS,
    Action,
    Danger,
    DangerLevel,
    FoundBy,
    Plan,
    RefusedError,
    Report,
    State,
    Step,
    decide,
    fold,
    overdue_episodes,
    plan_problems,
)

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def full_plan(deadline: date = date(2027, 6, 30), funds: Decimal | None = Decimal("120000")) -> Plan:
    return Plan(
        goal="replace the rupture disc and restore the relief path",
        measures="isolate, replace, leak test",
        funds=funds,
        materials="rupture disc DN80",
        organisation="equipment department",
        persons=("李明",),
        deadline=deadline,
        safety_measures="tank at 20 % level, hot-work permit",
        contingency_plan="chlorine absorption unit on standby",
    )


def report(level: DangerLevel = DangerLevel.MAJOR) -> Report:
    major = level is DangerLevel.MAJOR
    return Report(
        title="rupture disc of V-101 not in service",
        level=level,
        found_by=FoundBy.INSPECTION,
        hazard_source="cl2-tankfarm",
        criteria=(15,) if major else (),
    )


def step(
    action: Action, role: str = "plant_manager", actor: str = "张建国", dt_h: float = 1, **data: object
) -> Step:
    return Step(action, actor, role, T0 + timedelta(hours=dt_h), comment="c", data=data)


def record_in(state: State, level: DangerLevel = DangerLevel.MAJOR) -> Danger:
    """A record driven to ``state`` through allowed steps."""
    steps = [Step(Action.REPORT, "王强", "operator", T0, data=report(level).to_json())]
    path = {
        State.FOUND: [],
        State.PLAN: [Action.PLAN],
        State.RECTIFYING: [Action.PLAN, Action.START],
        State.APPLIED: [Action.PLAN, Action.START, Action.APPLY],
        State.ACCEPTED: [Action.PLAN, Action.START, Action.APPLY, Action.ACCEPT],
    }[state]
    d = fold(1, steps)
    for i, a in enumerate(path, start=1):
        data = full_plan().to_json() if a is Action.PLAN else {}
        actor = "赵验收" if a is Action.ACCEPT else "张建国"
        s = decide(d, Step(a, actor, "plant_manager", T0 + timedelta(hours=i), data=data), TZ)
        d = fold(1, (*d.steps, s))
    assert d.state is state
    return d


ALL_STATES = list(State)
ALL_MOVES = [Action.PLAN, Action.START, Action.APPLY, Action.ACCEPT, Action.REJECT]


def _expected(state: State, action: Action) -> State | None:
    return TRANSITIONS.get((state, action))


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("action", ALL_MOVES)
def test_every_transition_allowed_or_refused(state: State, action: Action) -> None:
    """Every (state, step) pair of a major record with its plan: the table decides."""
    d = record_in(state)
    data = full_plan().to_json() if action is Action.PLAN else {}
    s = Step(action, "赵验收", "plant_manager", T0 + timedelta(days=1), comment="why", data=data)
    want = _expected(state, action)
    if (state, action) == (State.FOUND, Action.START):  # allowed for a general one only
        with pytest.raises(
            RefusedError, match="a major hidden danger cannot leave 'found' without its signed"
        ):
            decide(d, s, TZ)
    elif want is None:
        with pytest.raises(RefusedError, match=f"{action.value}: not allowed in state '{state.value}'"):
            decide(d, s, TZ)
    else:
        after = fold(1, (*d.steps, decide(d, s, TZ)))
        assert after.state is want


TABLE = [
    # (state, action, new state)
    (State.FOUND, Action.PLAN, State.PLAN),
    (State.PLAN, Action.PLAN, State.PLAN),
    (State.PLAN, Action.START, State.RECTIFYING),
    (State.RECTIFYING, Action.PLAN, State.RECTIFYING),
    (State.RECTIFYING, Action.APPLY, State.APPLIED),
    (State.APPLIED, Action.ACCEPT, State.ACCEPTED),
    (State.APPLIED, Action.REJECT, State.RECTIFYING),
]


def test_the_table_is_the_documented_one() -> None:
    assert {(s, a): n for s, a, n in TABLE} | {
        (None, Action.REPORT): State.FOUND,
        (State.FOUND, Action.START): State.RECTIFYING,
    } == TRANSITIONS


@pytest.mark.parametrize("state", ALL_STATES)
@pytest.mark.parametrize("action", [Action.NOTE, Action.ATTACH])
def test_notes_and_attachments_keep_the_state(state: State, action: Action) -> None:
    d = record_in(state)
    s = Step(action, "王强", "operator", T0 + timedelta(days=1), comment="photo after repair")
    assert fold(1, (*d.steps, decide(d, s, TZ))).state is state


ROLE_TABLE = [
    (State.FOUND, Action.PLAN, "operator", False),
    (State.FOUND, Action.PLAN, "plant_manager", True),
    (State.FOUND, Action.PLAN, "bureau", False),
    (State.PLAN, Action.START, "operator", True),
    (State.PLAN, Action.START, "bureau", False),
    (State.RECTIFYING, Action.APPLY, "operator", False),
    (State.RECTIFYING, Action.APPLY, "plant_manager", True),
    (State.APPLIED, Action.ACCEPT, "operator", False),
    (State.APPLIED, Action.ACCEPT, "bureau", True),
    (State.APPLIED, Action.REJECT, "operator", False),
]


@pytest.mark.parametrize(("state", "action", "role", "ok"), ROLE_TABLE)
def test_roles(state: State, action: Action, role: str, ok: bool) -> None:
    d = record_in(state)
    data = full_plan().to_json() if action is Action.PLAN else {}
    s = Step(action, "某人", role, T0 + timedelta(days=1), comment="why", data=data)
    assert (role in ACTION_ROLES[action]) is ok
    if ok:
        decide(d, s, TZ)
    else:
        with pytest.raises(RefusedError, match=f"role: a {role} may not {action.value}"):
            decide(d, s, TZ)


def test_operators_report_but_bureau_users_do_not() -> None:
    ok = Step(Action.REPORT, "王强", "operator", T0, data=report().to_json())
    assert decide(None, ok, TZ) is ok
    with pytest.raises(RefusedError, match="role: a bureau may not report"):
        decide(None, Step(Action.REPORT, "县局", "bureau", T0, data=report().to_json()), TZ)


def test_the_applicant_does_not_accept_their_own_application() -> None:
    d = record_in(State.APPLIED)
    assert d.applied_by == "张建国"
    with pytest.raises(RefusedError, match="张建国 applied for acceptance and may not also decide it"):
        decide(d, Step(Action.ACCEPT, "张建国", "plant_manager", T0 + timedelta(days=1)), TZ)


def test_reject_needs_a_reason_and_a_step_may_not_go_back_in_time() -> None:
    d = record_in(State.APPLIED)
    with pytest.raises(RefusedError, match="reject: say why"):
        decide(d, Step(Action.REJECT, "赵验收", "plant_manager", T0 + timedelta(days=1)), TZ)
    with pytest.raises(RefusedError, match="is before the last step"):
        decide(d, Step(Action.NOTE, "王强", "operator", T0, comment="late"), TZ)


# ----------------------------------------------------------------------- the plan (治理方案)


def test_a_major_one_cannot_start_without_its_plan_and_every_part_is_named() -> None:
    d = record_in(State.FOUND)
    with pytest.raises(RefusedError) as e:
        decide(d, step(Action.START), TZ)
    msg = str(e.value)
    for part in (
        "goal and tasks",
        "methods and measures",
        "funds and materials",
        "organisation and persons",
        "time limit",
        "contingency plan",
        "治理方案",
    ):
        assert part in msg


def test_a_plan_without_funds_is_refused_naming_the_funds() -> None:
    d = record_in(State.FOUND)
    with pytest.raises(RefusedError) as e:
        decide(d, step(Action.PLAN, **full_plan(funds=None).to_json()), TZ)
    assert e.value.reasons == ["funds and materials (经费和物资的落实) is missing: give the amount in yuan"]


def test_a_plan_without_a_deadline_is_refused_naming_the_deadline() -> None:
    d = record_in(State.FOUND)
    data = full_plan().to_json() | {"deadline": None}
    with pytest.raises(RefusedError) as e:
        decide(d, step(Action.PLAN, **data), TZ)
    assert e.value.reasons == ["time limit and requirements (治理的时限和要求): the deadline is missing"]


@pytest.mark.parametrize("funds", ["-5000", "0"])
def test_negative_or_zero_funds_refused(funds: str) -> None:
    d = record_in(State.FOUND)
    with pytest.raises(RefusedError, match=f"the amount must be more than 0 yuan, got {funds}"):
        decide(d, step(Action.PLAN, **full_plan(funds=Decimal(funds)).to_json()), TZ)


def test_a_deadline_in_the_past_at_signing_is_refused_in_local_time() -> None:
    d = record_in(State.FOUND)
    # signed at 2027-03-10 16:30 UTC = 11 March 00:30 in Shanghai: 10 March is already yesterday there
    late = Step(
        Action.PLAN,
        "张建国",
        "plant_manager",
        datetime(2027, 3, 10, 16, 30, tzinfo=UTC),
        data=full_plan(deadline=date(2027, 3, 10)).to_json(),
    )
    with pytest.raises(RefusedError, match=r"the deadline 2027-03-10 is in the past \(today is 2027-03-11\)"):
        decide(d, late, TZ)
    same_day = Step(
        Action.PLAN,
        "张建国",
        "plant_manager",
        datetime(2027, 3, 10, 15, 30, tzinfo=UTC),
        data=full_plan(deadline=date(2027, 3, 10)).to_json(),
    )
    decide(d, same_day, TZ)  # 23:30 local on the 10th: the deadline is today


def test_every_missing_part_is_named_at_once() -> None:
    problems = plan_problems(Plan(measures="x"), DangerLevel.MAJOR, date(2027, 1, 1))
    assert len(problems) == 7  # goal, funds, organisation, persons, deadline, safety measures, contingency
    assert (
        plan_problems(Plan(measures="x", deadline=date(2027, 1, 2)), DangerLevel.GENERAL, date(2027, 1, 1))
        == []
    )


def test_a_general_one_may_start_from_found_with_a_deadline() -> None:
    d = record_in(State.FOUND, DangerLevel.GENERAL)
    with pytest.raises(RefusedError, match="give the rectification deadline"):
        decide(d, step(Action.START, role="operator"), TZ)
    s = decide(d, step(Action.START, role="operator", deadline="2027-03-20"), TZ)
    assert fold(1, (*d.steps, s)).deadline == date(2027, 3, 20)


def test_a_major_judgement_names_criteria_items() -> None:
    bad = Report("x", DangerLevel.MAJOR, FoundBy.EXPERT, criteria=())
    with pytest.raises(RefusedError, match="names the item"):
        decide(None, Step(Action.REPORT, "a", "operator", T0, data=bad.to_json()), TZ)
    bad = Report("x", DangerLevel.MAJOR, FoundBy.EXPERT, criteria=(21,))
    with pytest.raises(RefusedError, match="21 not an item"):
        decide(None, Step(Action.REPORT, "a", "operator", T0, data=bad.to_json()), TZ)


# ----------------------------------------------------------------------- overdue


def test_overdue_from_the_local_midnight_after_the_deadline_until_accepted() -> None:
    d = record_in(State.RECTIFYING)  # deadline 2027-06-30
    before = datetime(2027, 6, 30, 15, 59, tzinfo=UTC)  # 23:59 local on the 30th
    after = datetime(2027, 6, 30, 16, 0, tzinfo=UTC)  # 00:00 local on 1 July
    assert overdue_episodes(d, TZ, before) == []
    assert overdue_episodes(d, TZ, after) == [(date(2027, 6, 30), after, None)]


def test_a_revised_plan_with_a_later_deadline_ends_the_episode() -> None:
    d = record_in(State.RECTIFYING)
    revised_at = datetime(2027, 7, 2, 1, 0, tzinfo=UTC)
    s = decide(
        d,
        Step(
            Action.PLAN,
            "张建国",
            "plant_manager",
            revised_at,
            data=full_plan(deadline=date(2027, 8, 31)).to_json(),
        ),
        TZ,
    )
    d2 = fold(1, (*d.steps, s))
    eps = overdue_episodes(d2, TZ, datetime(2027, 9, 5, tzinfo=UTC))
    assert [(e[0], e[2]) for e in eps] == [(date(2027, 6, 30), revised_at), (date(2027, 8, 31), None)]
