"""A tier change re-plans an active alarm's escalation (pure, times as arguments).

`replan` gets the new tier's policy, the schedule's start, how each recipient is
reached, and the outbox rows already there; the service (test_service.py) records
the event and applies the plan on the real database.
"""

from __future__ import annotations

import pytest

from hazmon.alarms.escalation import (
    EscalationStep,
    Planned,
    Recipient,
    Route,
    Scheduled,
    default_policy,
    replan,
)
from hazmon.alarms.lifecycle import Event, EventKind, apply, fold, needs_escalation
from hazmon.plant.standards import Tier

S = 1_000_000
T0 = 1_790_000_000 * S  # activation; every due time below is T0 + seconds
CR, OP, TE, PR, CO, CI = (
    Recipient.CONTROL_ROOM,
    Recipient.OPERATIONAL,
    Recipient.TECHNICAL,
    Recipient.PRINCIPAL,
    Recipient.BUREAU_COUNTY,
    Recipient.BUREAU_CITY,
)


def hook(r: Recipient) -> list[Route]:
    """Every recipient on one webhook, its address named after it."""
    return [("hook", f"addr-{r.value}", r.value)]


def row(i: int, r: Recipient, due_s: int, status: str) -> Planned:
    return Planned(i, r.value, "hook", f"addr-{r.value}", T0 + due_s * S, status)


def planned(p: list[tuple[Scheduled, Route]]) -> list[tuple[str, int]]:
    return sorted((route[2], (sch.due_us - T0) // S) for sch, route in p)


def test_yellow_to_orange_at_700_s() -> None:
    """Yellow: control room at 0 (sent), operational at 15 min, technical at 60 min (pending)."""
    existing = [row(1, CR, 0, "sent"), row(2, OP, 900, "pending"), row(3, TE, 3600, "pending")]
    plan = replan(default_policy(), Tier.ORANGE, T0, hook, existing)
    # the control room is not told again; orange's operational (at once) and technical +
    # principal (10 min) are due already: queued at their past due, they go out now
    assert planned(plan.queue) == [
        ("bureau_county", 1800),
        ("operational", 0),
        ("principal", 600),
        ("technical", 600),
    ]
    assert plan.cancel == [2, 3]  # yellow's later steps are gone
    assert (plan.kept, plan.skipped) == (0, 1)


def test_red_to_yellow_downgrade() -> None:
    existing = [
        row(1, CR, 0, "sent"),
        row(2, OP, 0, "sent"),
        row(3, TE, 300, "pending"),
        row(4, PR, 300, "pending"),
        row(5, CO, 600, "pending"),
        row(6, CI, 1800, "pending"),
    ]
    plan = replan(default_policy(), Tier.YELLOW, T0, hook, existing)
    assert planned(plan.queue) == [("technical", 3600)]  # operational (15 min) was told at once already
    assert plan.cancel == [3, 4, 5, 6]
    assert plan.skipped == 2


@pytest.mark.parametrize("status", ["sent", "sending", "dead", "flooded"])
def test_told_or_given_up_is_never_queued_again(status: str) -> None:
    plan = replan(default_policy(), Tier.BLUE, T0, hook, [row(1, CR, 0, status)])
    assert (plan.queue, plan.cancel, plan.skipped) == ([], [], 1)


def test_pending_step_at_the_same_time_is_kept() -> None:
    policy = {
        Tier.YELLOW: (EscalationStep(0, (CR,)), EscalationStep(600, (TE,))),
        Tier.ORANGE: (EscalationStep(0, (CR, OP)), EscalationStep(600, (TE,))),
    }
    existing = [row(1, CR, 0, "sent"), row(2, TE, 600, "pending")]
    plan = replan(policy, Tier.ORANGE, T0, hook, existing)
    assert planned(plan.queue) == [("operational", 0)]
    assert (plan.cancel, plan.kept, plan.skipped) == ([], 1, 1)


def test_a_cancelled_row_does_not_count_as_told() -> None:
    plan = replan(default_policy(), Tier.BLUE, T0, hook, [row(1, CR, 0, "cancelled")])
    assert planned(plan.queue) == [("control_room", 0)]


def test_schedule_starts_where_the_alarm_escalation_started() -> None:
    """After an unshelve the schedule starts there, not at the first activation."""
    restart = T0 + 3000 * S
    plan = replan(default_policy(), Tier.RED, restart, hook, [])
    assert min(sch.due_us for sch, _ in plan.queue) == restart


def test_tier_changed_event_changes_only_the_tier() -> None:
    raised = Event(EventKind.RAISED, T0, data={"level": "first", "tier": 2, "value": 1.1})
    before = fold([raised])
    after = apply(before, Event(EventKind.TIER_CHANGED, T0 + 700 * S, data={"tier": 3, "from_tier": 2}))
    assert after.tier == 3
    assert (after.schedule, after.schedule_from_us, after.activated_at_us) == (
        before.schedule,
        before.schedule_from_us,
        before.activated_at_us,
    )
    assert needs_escalation(after, T0 + 700 * S)
    acked = apply(before, Event(EventKind.ACKED, T0 + 10 * S, "op1"))
    assert apply(acked, Event(EventKind.TIER_CHANGED, T0 + 700 * S, data={"tier": 3})).acked
