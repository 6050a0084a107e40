"""The alarm state machine (ISA-18.2 / IEC 62682, OPC UA Part 9): a pure fold of events.

An alarm's state is ``fold(events)``; what an operator sees is ``status(state, now)``
(shelving expires with time, nothing else does). `validate` says whether a
requested transition is allowed before its event is recorded; `apply` itself is
total, so replaying a recorded log never fails.

States (``AlarmStatus``): normal, active_unacked, active_acked, rtn_unacked
(returned to normal, unacknowledged), shelved, suppressed, out_of_service.
A latching alarm (second-level gas, confirmed vote) stays active after its
condition clears until it is acknowledged.

Sensor health: a sensor known faulty or stale *before* its alarm would be raised
suppresses that alarm (`suppressible_by_sensor`); an alarm already active is never
suppressed by its own detector dying -- it records ``detector_lost`` and escalates
on, its messages saying the detector is no longer reporting.

One cause, one alarm: an alarm raised as the *consequence* of another (the stale
sensors of a lost link; ``raised`` with ``data.cause``, or ``consequence`` for one
already active) is recorded and shown (status ``suppressed``, ``cause`` set) but
not annunciated: no escalation, no acknowledgement of its own (its cause's alarm
carries both), and it returns to normal when it clears -- with its cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "BUREAU_STEPS",
    "SYSTEM",
    "AlarmState",
    "AlarmStatus",
    "Event",
    "EventKind",
    "TransitionError",
    "apply",
    "fold",
    "needs_escalation",
    "state_from_json",
    "status",
    "suppressible_by_sensor",
    "validate",
]

SYSTEM = "system"
"""Actor of transitions hazmon makes itself."""


class EventKind(StrEnum):
    RAISED = "raised"  # the condition became active (a new activation / episode)
    UPDATED = "updated"  # the same condition found again while active (value, tier)
    TIER_CHANGED = "tier_changed"  # its hazard source's grade or assessment status changed
    CLEARED = "cleared"  # the condition is gone
    ACKED = "acked"
    SHELVED = "shelved"
    UNSHELVED = "unshelved"
    SUPPRESSED = "suppressed"  # its sensor is faulty (known before the alarm was raised)
    UNSUPPRESSED = "unsuppressed"
    DETECTOR_LOST = "detector_lost"  # the sensor of an active alarm went stale / faulty: it escalates on
    DETECTOR_BACK = "detector_back"  # ...and reports again
    CONSEQUENCE = "consequence"  # an active alarm turned out to be the consequence of another (data.cause)
    OUT_OF_SERVICE = "out_of_service"
    IN_SERVICE = "in_service"
    COMMENT = "comment"
    ESCALATED = "escalated"
    NOTIFIED = "notified"
    NOTIFY_FAILED = "notify_failed"
    BUREAU_RECEIVED = "bureau_received"
    BUREAU_VERIFIED = "bureau_verified"
    BUREAU_FEEDBACK = "bureau_feedback"
    BUREAU_CLOSED = "bureau_closed"


BUREAU_STEPS: tuple[EventKind, ...] = (
    EventKind.BUREAU_RECEIVED,
    EventKind.BUREAU_VERIFIED,
    EventKind.BUREAU_FEEDBACK,
    EventKind.BUREAU_CLOSED,
)
"""The national handling steps, in order: received → verified → enterprise feedback → closed (消警)."""


class AlarmStatus(StrEnum):
    NORMAL = "normal"
    ACTIVE_UNACKED = "active_unacked"
    ACTIVE_ACKED = "active_acked"
    RTN_UNACKED = "rtn_unacked"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


class TransitionError(ValueError):
    """The requested transition is not allowed in the alarm's current state."""


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded transition: what, when, who, why.

    Attributes:
        kind: what happened.
        at_us: when (hazmon's clock, µs since the epoch).
        actor: ``system`` or the name of the API token that acted.
        comment: free text from the person.
        data: kind-specific details (JSON-safe): raised/updated: level, tier,
            latching, value, limit, message_en, message_zh; shelved: until_us, reason;
            tier_changed: tier, from_tier, grade, reason; detector_lost: fault (the
            sensor's condition: stale, bad_quality, out_of_range, stuck).
    """

    kind: EventKind
    at_us: int
    actor: str = SYSTEM
    comment: str = ""
    data: Mapping[str, Any] | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return default if self.data is None else self.data.get(key, default)


@dataclass(frozen=True, slots=True)
class AlarmState:
    """Folded state of one alarm.

    ``schedule`` counts escalation schedules: it changes whenever escalation
    (re)starts (new activation, unshelve, end of suppression, back in service);
    notifications queued for an older schedule are not sent.
    """

    active: bool = False
    latched: bool = False
    acked: bool = True
    latching: bool = False
    level: str = ""
    tier: int = 0
    shelved_until_us: int | None = None
    shelve_reason: str = ""
    suppressed: bool = False
    out_of_service: bool = False
    activated_at_us: int | None = None
    cleared_at_us: int | None = None
    acked_at_us: int | None = None
    acked_by: str | None = None
    activations: int = 0
    repeats: int = 0
    bureau_step: str | None = None
    schedule: int = 0
    schedule_from_us: int | None = None
    value: float | None = None
    limit: float | None = None
    message_en: str = ""
    message_zh: str = ""
    detector_fault: str = ""  # its detector stopped reporting while the alarm was active (why)
    cause: str = ""  # active as the consequence of another alarm (e.g. "link_lost:dcs"): not annunciated

    @property
    def showing_active(self) -> bool:
        """Active, or latched after the condition cleared and not yet reset."""
        return self.active or self.latched

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def state_from_json(d: Mapping[str, Any]) -> AlarmState:
    known = AlarmState.__dataclass_fields__
    return AlarmState(**{k: v for k, v in d.items() if k in known})


def _hidden(s: AlarmState, now_us: int) -> bool:
    return (
        s.out_of_service
        or s.suppressed
        or bool(s.cause)
        or (s.shelved_until_us is not None and s.shelved_until_us > now_us)
    )


def status(s: AlarmState, now_us: int) -> AlarmStatus:
    """What the operator sees at ``now_us``."""
    if s.out_of_service:
        return AlarmStatus.OUT_OF_SERVICE
    if s.shelved_until_us is not None and s.shelved_until_us > now_us:
        return AlarmStatus.SHELVED
    if s.suppressed or (s.cause and s.showing_active):  # by its sensor, or by design (a consequence)
        return AlarmStatus.SUPPRESSED
    if s.showing_active:
        return AlarmStatus.ACTIVE_ACKED if s.acked else AlarmStatus.ACTIVE_UNACKED
    return AlarmStatus.NORMAL if s.acked else AlarmStatus.RTN_UNACKED


def suppressible_by_sensor(s: AlarmState) -> bool:
    """Whether its sensor turning faulty may suppress the alarm: only one not raised yet.

    An alarm showing active, or waiting for acknowledgement, stays as it is: a detector
    that dies during a leak makes things worse, not better (the alarm records
    ``detector_lost`` instead and its escalation goes on).
    """
    return not s.showing_active and s.acked


def needs_escalation(s: AlarmState, now_us: int) -> bool:
    """Escalation continues only while the alarm shows active and unacknowledged."""
    return status(s, now_us) is AlarmStatus.ACTIVE_UNACKED


def _restart_schedule(s: AlarmState, at_us: int) -> AlarmState:
    """After unshelve / unsuppress / in service: escalate again if still unacknowledged."""
    if not _hidden(s, at_us) and s.showing_active and not s.acked:
        return replace(s, schedule=s.schedule + 1, schedule_from_us=at_us)
    return s


def _finding_fields(s: AlarmState, e: Event) -> AlarmState:
    return replace(
        s,
        level=str(e.get("level", s.level)),
        tier=int(e.get("tier", s.tier)),
        latching=bool(e.get("latching", s.latching)),
        value=e.get("value", s.value),
        limit=e.get("limit", s.limit),
        message_en=str(e.get("message_en", s.message_en)),
        message_zh=str(e.get("message_zh", s.message_zh)),
    )


def apply(s: AlarmState, e: Event) -> AlarmState:  # noqa: PLR0911, PLR0912 - one branch per event kind
    """The state after event ``e``. Total: any recorded event can be replayed."""
    k = e.kind
    if k is EventKind.RAISED:
        if s.active:
            return replace(_finding_fields(s, e), repeats=s.repeats + 1)
        s = _finding_fields(s, e)
        s = replace(
            s,
            active=True,
            latched=False,
            acked=False,
            acked_at_us=None,
            acked_by=None,
            activated_at_us=e.at_us,
            cleared_at_us=None,
            activations=s.activations + 1,
            repeats=0,
            bureau_step=None,
            cause=str(e.get("cause") or ""),
        )
        if s.cause:  # a consequence: shown, never annunciated, nothing of its own to acknowledge
            return replace(s, acked=True, schedule_from_us=None)
        if _hidden(s, e.at_us):
            return replace(s, schedule_from_us=None)
        return replace(s, schedule=s.schedule + 1, schedule_from_us=e.at_us)
    if k is EventKind.UPDATED:
        return replace(_finding_fields(s, e), repeats=s.repeats + 1)
    if k is EventKind.TIER_CHANGED:  # the escalation schedule keeps its start; its steps are re-planned
        return replace(s, tier=int(e.get("tier", s.tier)))
    if k is EventKind.CLEARED:
        if not s.active:
            return s
        if s.cause:  # cleared with (or before) its cause: back to normal
            return replace(s, active=False, latched=False, acked=True, cleared_at_us=e.at_us, cause="")
        latched = s.latching and not s.acked
        return replace(s, active=False, latched=latched, cleared_at_us=e.at_us)
    if k is EventKind.ACKED:
        return replace(
            s, acked=True, latched=False, acked_at_us=e.at_us, acked_by=e.actor, schedule_from_us=None
        )
    if k is EventKind.SHELVED:
        until = e.get("until_us")
        return replace(
            s,
            shelved_until_us=int(until) if until is not None else None,
            shelve_reason=str(e.get("reason", e.comment)),
            schedule_from_us=None,
        )
    if k is EventKind.UNSHELVED:
        return _restart_schedule(replace(s, shelved_until_us=None, shelve_reason=""), e.at_us)
    if k is EventKind.SUPPRESSED:
        return replace(s, suppressed=True, schedule_from_us=None)
    if k is EventKind.UNSUPPRESSED:
        return _restart_schedule(replace(s, suppressed=False), e.at_us)
    if k is EventKind.CONSEQUENCE:  # its cause's alarm carries the escalation and the acknowledgement
        if not s.showing_active:
            return s
        return replace(
            s, cause=str(e.get("cause", "cause")), acked=True, latched=False, schedule_from_us=None
        )
    if k is EventKind.DETECTOR_LOST:  # audit and message text only: the escalation goes on
        return replace(s, detector_fault=str(e.get("fault", "fault")))
    if k is EventKind.DETECTOR_BACK:
        return replace(s, detector_fault="")
    if k is EventKind.OUT_OF_SERVICE:
        return replace(s, out_of_service=True, schedule_from_us=None)
    if k is EventKind.IN_SERVICE:
        return _restart_schedule(replace(s, out_of_service=False), e.at_us)
    if k in BUREAU_STEPS:
        return replace(s, bureau_step=k.value.removeprefix("bureau_"))
    return s  # comment, escalated, notified, notify_failed: audit only


def fold(events: Iterable[Event], s: AlarmState | None = None) -> AlarmState:
    """The state after every event, in order."""
    s = s or AlarmState()
    for e in events:
        s = apply(s, e)
    return s


def validate(  # noqa: PLR0911, PLR0912 - one branch per requested kind
    s: AlarmState, kind: EventKind, now_us: int, data: Mapping[str, Any] | None = None
) -> None:
    """Check that a person may record ``kind`` now.

    Raises:
        TransitionError: with a sentence saying why not.
    """
    st = status(s, now_us)
    if kind is EventKind.ACKED:
        if s.acked:
            raise TransitionError(f"the alarm is not waiting for acknowledgement (state {st.value})")
        return
    if kind is EventKind.SHELVED:
        if s.out_of_service:
            raise TransitionError("an alarm out of service cannot be shelved")
        until = (data or {}).get("until_us")
        if until is None or int(until) <= now_us:
            raise TransitionError("shelving needs an end time in the future")
        if not str((data or {}).get("reason", "")).strip():
            raise TransitionError("shelving needs a reason")
        return
    if kind is EventKind.UNSHELVED:
        if st is not AlarmStatus.SHELVED:
            raise TransitionError(f"the alarm is not shelved (state {st.value})")
        return
    if kind is EventKind.OUT_OF_SERVICE:
        if s.out_of_service:
            raise TransitionError("the alarm is already out of service")
        return
    if kind is EventKind.IN_SERVICE:
        if not s.out_of_service:
            raise TransitionError("the alarm is not out of service")
        return
    if kind in BUREAU_STEPS:
        i = BUREAU_STEPS.index(kind)
        current = -1 if s.bureau_step is None else BUREAU_STEPS.index(EventKind("bureau_" + s.bureau_step))
        if s.activations == 0:
            raise TransitionError("the alarm has never been active")
        if i != current + 1:
            want = BUREAU_STEPS[current + 1].value if current + 1 < len(BUREAU_STEPS) else "nothing (closed)"
            raise TransitionError(f"bureau step {kind.value} out of order: next is {want}")
        return
    if kind is EventKind.COMMENT:
        if not str((data or {}).get("comment", "")).strip():
            raise TransitionError("a comment needs text")
        return
    raise TransitionError(f"{kind.value} is recorded by hazmon itself, not requested")
