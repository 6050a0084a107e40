"""The whole alarm state machine as tables, with a fake clock (µs integers)."""

from __future__ import annotations

import pytest

from hazmon.alarms.lifecycle import (
    AlarmState,
    AlarmStatus,
    Event,
    EventKind,
    TransitionError,
    apply,
    fold,
    needs_escalation,
    state_from_json,
    status,
    suppressible_by_sensor,
    validate,
)

S = 1_000_000  # one second in µs
K = EventKind
A = AlarmStatus


def raised(t: int, latching: bool = False, tier: int = 4) -> Event:
    return Event(K.RAISED, t * S, data={"level": "second", "tier": tier, "latching": latching, "value": 3.0})


def ev(kind: EventKind, t: int, **data: object) -> Event:
    return Event(kind, t * S, "op1", "", data or None)


# (name, events, now_s, expected status, expected escalation continues)
CASES = [
    ("never active", [], 0, A.NORMAL, False),
    ("raised", [raised(0)], 1, A.ACTIVE_UNACKED, True),
    ("raised then acked", [raised(0), ev(K.ACKED, 5)], 6, A.ACTIVE_ACKED, False),
    ("acked then cleared", [raised(0), ev(K.ACKED, 5), ev(K.CLEARED, 9)], 10, A.NORMAL, False),
    ("cleared unacked", [raised(0), ev(K.CLEARED, 9)], 10, A.RTN_UNACKED, False),
    ("cleared then acked", [raised(0), ev(K.CLEARED, 9), ev(K.ACKED, 12)], 13, A.NORMAL, False),
    ("latching cleared stays active", [raised(0, True), ev(K.CLEARED, 9)], 10, A.ACTIVE_UNACKED, True),
    (
        "latching acked after clear -> normal",
        [raised(0, True), ev(K.CLEARED, 9), ev(K.ACKED, 12)],
        13,
        A.NORMAL,
        False,
    ),
    (
        "latching acked while active, then clear",
        [raised(0, True), ev(K.ACKED, 3), ev(K.CLEARED, 9)],
        10,
        A.NORMAL,
        False,
    ),
    ("shelved", [raised(0), ev(K.SHELVED, 1, until_us=100 * S, reason="maint")], 50, A.SHELVED, False),
    (
        "shelve expired by time",
        [raised(0), ev(K.SHELVED, 1, until_us=100 * S, reason="m")],
        100,
        A.ACTIVE_UNACKED,
        True,
    ),
    (
        "unshelved",
        [raised(0), ev(K.SHELVED, 1, until_us=100 * S, reason="m"), ev(K.UNSHELVED, 20)],
        21,
        A.ACTIVE_UNACKED,
        True,
    ),
    ("suppressed", [raised(0), ev(K.SUPPRESSED, 1)], 2, A.SUPPRESSED, False),
    ("unsuppressed", [raised(0), ev(K.SUPPRESSED, 1), ev(K.UNSUPPRESSED, 5)], 6, A.ACTIVE_UNACKED, True),
    ("out of service", [raised(0), ev(K.OUT_OF_SERVICE, 1)], 2, A.OUT_OF_SERVICE, False),
    (
        "oos over shelved",
        [raised(0), ev(K.SHELVED, 1, until_us=99 * S, reason="m"), ev(K.OUT_OF_SERVICE, 2)],
        3,
        A.OUT_OF_SERVICE,
        False,
    ),
    ("back in service", [raised(0), ev(K.OUT_OF_SERVICE, 1), ev(K.IN_SERVICE, 4)], 5, A.ACTIVE_UNACKED, True),
    ("re-raised after rtn", [raised(0), ev(K.CLEARED, 3), raised(7)], 8, A.ACTIVE_UNACKED, True),
    ("repeat finding while active", [raised(0), raised(2), raised(4)], 5, A.ACTIVE_UNACKED, True),
    ("comment changes nothing", [raised(0), ev(K.COMMENT, 1)], 2, A.ACTIVE_UNACKED, True),
    ("bureau steps change no alarm state", [raised(0), ev(K.BUREAU_RECEIVED, 1)], 2, A.ACTIVE_UNACKED, True),
]


@pytest.mark.parametrize(("name", "events", "now_s", "want", "escalates"), CASES, ids=[c[0] for c in CASES])
def test_state_table(name: str, events: list[Event], now_s: int, want: AlarmStatus, escalates: bool) -> None:
    s = fold(events)
    assert status(s, now_s * S) is want
    assert needs_escalation(s, now_s * S) is escalates


def test_activations_repeats_and_schedules() -> None:
    s = fold([raised(0), raised(2), raised(4), ev(K.CLEARED, 5), raised(9)])
    assert (s.activations, s.repeats, s.schedule, s.schedule_from_us) == (2, 0, 2, 9 * S)
    s = fold(
        [raised(0), Event(K.UPDATED, 3 * S, data={"value": 4.5}), Event(K.UPDATED, 4 * S, data={"tier": 3})]
    )
    assert (s.activations, s.repeats, s.value, s.tier, s.schedule) == (1, 2, 4.5, 3, 1)


def test_schedule_restarts_after_unshelve_only_when_unacked() -> None:
    s = fold([raised(0), ev(K.SHELVED, 1, until_us=60 * S, reason="m"), ev(K.UNSHELVED, 30)])
    assert (s.schedule, s.schedule_from_us) == (2, 30 * S)
    s = fold([raised(0), ev(K.ACKED, 1), ev(K.SHELVED, 2, until_us=60 * S, reason="m"), ev(K.UNSHELVED, 30)])
    assert (s.schedule, s.schedule_from_us) == (1, None)


def test_raised_while_suppressed_does_not_escalate_until_unsuppressed() -> None:
    s = fold([ev(K.SUPPRESSED, 0), raised(1)])
    assert status(s, 2 * S) is A.SUPPRESSED
    assert s.schedule_from_us is None
    s = apply(s, ev(K.UNSUPPRESSED, 10))
    assert (status(s, 11 * S), s.schedule_from_us) == (A.ACTIVE_UNACKED, 10 * S)


def test_acked_by_and_bureau_step_reset_on_new_activation() -> None:
    s = fold([raised(0), ev(K.ACKED, 2), ev(K.BUREAU_RECEIVED, 3), ev(K.CLEARED, 4)])
    assert (s.acked_by, s.acked_at_us, s.bureau_step) == ("op1", 2 * S, "received")
    s = apply(s, raised(10))
    assert (s.acked, s.acked_by, s.bureau_step) == (False, None, None)


def test_json_round_trip() -> None:
    s = fold([raised(0, True), ev(K.SHELVED, 1, until_us=9 * S, reason="m")])
    assert state_from_json(s.to_json()) == s


# (name, events, requested kind, now_s, data, expected error or None)
VALIDATE = [
    ("ack active", [raised(0)], K.ACKED, 1, None, None),
    (
        "ack twice",
        [raised(0), ev(K.ACKED, 1)],
        K.ACKED,
        2,
        None,
        "the alarm is not waiting for acknowledgement (state active_acked)",
    ),
    ("ack normal", [], K.ACKED, 2, None, "the alarm is not waiting for acknowledgement (state normal)"),
    ("ack rtn", [raised(0), ev(K.CLEARED, 1)], K.ACKED, 2, None, None),
    ("shelve ok", [raised(0)], K.SHELVED, 1, {"until_us": 9 * S, "reason": "maintenance"}, None),
    (
        "shelve past",
        [raised(0)],
        K.SHELVED,
        10,
        {"until_us": 9 * S, "reason": "m"},
        "shelving needs an end time in the future",
    ),
    (
        "shelve no reason",
        [raised(0)],
        K.SHELVED,
        1,
        {"until_us": 9 * S, "reason": " "},
        "shelving needs a reason",
    ),
    (
        "shelve oos",
        [ev(K.OUT_OF_SERVICE, 0)],
        K.SHELVED,
        1,
        {"until_us": 9 * S, "reason": "m"},
        "an alarm out of service cannot be shelved",
    ),
    (
        "unshelve not shelved",
        [raised(0)],
        K.UNSHELVED,
        1,
        None,
        "the alarm is not shelved (state active_unacked)",
    ),
    (
        "unshelve expired",
        [raised(0), ev(K.SHELVED, 1, until_us=5 * S, reason="m")],
        K.UNSHELVED,
        6,
        None,
        "the alarm is not shelved (state active_unacked)",
    ),
    (
        "oos twice",
        [ev(K.OUT_OF_SERVICE, 0)],
        K.OUT_OF_SERVICE,
        1,
        None,
        "the alarm is already out of service",
    ),
    ("in service not oos", [], K.IN_SERVICE, 1, None, "the alarm is not out of service"),
    ("bureau first step", [raised(0)], K.BUREAU_RECEIVED, 1, None, None),
    (
        "bureau skips",
        [raised(0)],
        K.BUREAU_VERIFIED,
        1,
        None,
        "bureau step bureau_verified out of order: next is bureau_received",
    ),
    ("bureau never active", [], K.BUREAU_RECEIVED, 1, None, "the alarm has never been active"),
    (
        "bureau after closed",
        [
            raised(0),
            ev(K.BUREAU_RECEIVED, 1),
            ev(K.BUREAU_VERIFIED, 2),
            ev(K.BUREAU_FEEDBACK, 3),
            ev(K.BUREAU_CLOSED, 4),
        ],
        K.BUREAU_CLOSED,
        5,
        None,
        "bureau step bureau_closed out of order: next is nothing (closed)",
    ),
    ("comment empty", [raised(0)], K.COMMENT, 1, {"comment": ""}, "a comment needs text"),
    ("comment ok", [raised(0)], K.COMMENT, 1, {"comment": "checked on site"}, None),
    ("raise is not requested", [], K.RAISED, 1, None, "raised is recorded by hazmon itself, not requested"),
]


@pytest.mark.parametrize(
    ("name", "events", "kind", "now_s", "data", "error"), VALIDATE, ids=[c[0] for c in VALIDATE]
)
def test_validate_table(
    name: str,
    events: list[Event],
    kind: EventKind,
    now_s: int,
    data: dict[str, object] | None,
    error: str | None,
) -> None:
    s = fold(events)
    if error is None:
        validate(s, kind, now_s * S, data)
    else:
        with pytest.raises(TransitionError) as e:
            validate(s, kind, now_s * S, data)
        assert str(e.value) == error


def test_apply_is_total_over_any_order() -> None:
    """Replaying a log never fails, whatever order the kinds come in."""
    s = AlarmState()
    for i, k in enumerate(list(EventKind) * 2):
        s = apply(s, Event(k, i * S, data={"until_us": (i + 5) * S}))
    assert isinstance(status(s, 100 * S), AlarmStatus)


def test_detector_lost_keeps_an_active_alarm_escalating() -> None:
    s = fold([raised(0, True), ev(K.CLEARED, 5), ev(K.DETECTOR_LOST, 9, fault="stale")])
    assert (status(s, 10 * S), needs_escalation(s, 10 * S), s.schedule_from_us) == (A.ACTIVE_UNACKED, True, 0)
    assert s.detector_fault == "stale"
    assert apply(s, ev(K.DETECTOR_BACK, 20)).detector_fault == ""


@pytest.mark.parametrize(
    ("events", "suppressible"),
    [
        ([], True),
        ([raised(0)], False),
        ([raised(0, True), ev(K.CLEARED, 5)], False),  # latched
        ([raised(0), ev(K.CLEARED, 5)], False),  # waiting for acknowledgement
        ([raised(0), ev(K.ACKED, 5), ev(K.CLEARED, 6)], True),
    ],
)
def test_only_an_alarm_not_raised_is_suppressible_by_its_sensor(
    events: list[Event], suppressible: bool
) -> None:
    assert suppressible_by_sensor(fold(events)) is suppressible
