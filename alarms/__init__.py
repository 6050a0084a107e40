"""hazmon.alarms: tiered alarms tied to assessment records, escalation, notifications, API.

The daemon builds one `AlarmService` per plant from ``parse_settings`` (the
``alarms:`` section of its config), calls ``handle(findings, now_us)`` with the
rules' findings, ``tick(now_us)`` about once a second, and mounts ``routes()`` on
its HTTP app. ``load_limit_overrides`` gives the rules the assessment limits.
"""

from hazmon.alarms.auth import ApiToken, digest, new_token
from hazmon.alarms.config import AlarmSettings, NotifierConfig, parse_settings
from hazmon.alarms.escalation import EscalationStep, Recipient, default_policy
from hazmon.alarms.lifecycle import AlarmState, AlarmStatus, Event, EventKind, TransitionError, fold, status
from hazmon.alarms.notifier import Message, Notifier, RetryPolicy
from hazmon.alarms.service import AlarmService, build_notifier
from hazmon.alarms.tiers import effective_grade, load_limit_overrides, tier_for

__all__ = [
    "AlarmService",
    "AlarmSettings",
    "AlarmState",
    "AlarmStatus",
    "ApiToken",
    "EscalationStep",
    "Event",
    "EventKind",
    "Message",
    "Notifier",
    "NotifierConfig",
    "Recipient",
    "RetryPolicy",
    "TransitionError",
    "build_notifier",
    "default_policy",
    "digest",
    "effective_grade",
    "fold",
    "load_limit_overrides",
    "new_token",
    "parse_settings",
    "status",
    "tier_for",
]
