"""Who gets a notification, and the outbox rows that ask for it (pure, apart from counting).

`Routing` maps a recipient (control room, 操作负责人, bureau...) to (notifier, address,
contact) through the notifiers configured for it and the plant's contacts; the row
builders give each row its dedup key, so a step queued twice is one row.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import replace
from typing import Any

import structlog

from hazmon.alarms.config import NotifierConfig
from hazmon.alarms.escalation import Recipient, Route, Scheduled, contacts
from hazmon.alarms.notifier import Notifier
from hazmon.alarms.notify_email import EmailNotifier, EmailSettings
from hazmon.alarms.notify_mqtt import MqttNotifier, MqttSettings
from hazmon.alarms.notify_sms import SmsNotifier, SmsSettings
from hazmon.alarms.notify_webhook import WebhookNotifier, WebhookSettings
from hazmon.alarms.repository import AlarmRow, Queued
from hazmon.plant.model import Plant
from hazmon.plant.standards import Tier

__all__ = ["Routing", "build_notifier", "escalation_row", "flood_summary_row", "repeat_row"]

log = structlog.get_logger("hazmon.alarms")


def build_notifier(cfg: NotifierConfig, plant: Plant) -> Notifier:
    s = cfg.settings
    if isinstance(s, WebhookSettings):
        return WebhookNotifier(cfg.name, s)
    if isinstance(s, EmailSettings):
        return EmailNotifier(cfg.name, s)
    if isinstance(s, MqttSettings):
        if not s.enterprise:
            s = replace(s, enterprise=plant.enterprise.id)
        return MqttNotifier(cfg.name, s)
    if isinstance(s, SmsSettings):
        return SmsNotifier(cfg.name, s)
    raise TypeError(f"unknown notifier settings {type(s).__name__}")


class Routing:
    """The notifiers and which recipients each serves.

    Args:
        plant: its contacts (responsible persons, bureaus).
        notifiers: name -> notifier.
        serves: notifier name -> the recipients it serves.
        counters: the service's counters (``no_address`` counts a contact without an address).
    """

    def __init__(
        self,
        plant: Plant,
        notifiers: Mapping[str, Notifier],
        serves: Mapping[str, tuple[Recipient, ...]],
        counters: MutableMapping[str, int],
    ) -> None:
        self.plant = plant
        self.notifiers = notifiers
        self.serves = serves
        self.counters = counters

    def routes(self, recipient: Recipient, hazard_source: str | None) -> list[tuple[str, str, str]]:
        """(notifier, address, contact name) for one recipient."""
        out: list[tuple[str, str, str]] = []
        for name, n in self.notifiers.items():
            if recipient not in self.serves.get(name, ()):
                continue
            for c in contacts(self.plant, hazard_source, recipient):
                addr = n.address(c)
                if addr:
                    out.append((name, addr, c.name))
                else:
                    self.counters["no_address"] += 1
                    log.warning(
                        "no address for recipient", notifier=name, recipient=recipient.value, contact=c.name
                    )
        return out


def escalation_row(
    a: AlarmRow,
    tier: Tier,
    sch: Scheduled,
    route: Route,
    *,
    status: str = "pending",
    tier_changed_us: int | None = None,
) -> Queued:
    """The outbox row of one escalation step to one address (a tier change keys its own rows)."""
    notifier, addr, who = route
    s = a.state
    again = f"t{tier_changed_us}:" if tier_changed_us is not None else ""
    message: dict[str, Any] = {"schedule": s.schedule, "step": sch.step, "contact": who}
    if tier_changed_us is not None:
        message["tier_changed_us"] = tier_changed_us
    return Queued(
        f"esc:{a.id}:{s.schedule}:{again}{sch.step}:{sch.recipient.value}:{notifier}:{addr}",
        a.id,
        "escalation",
        sch.recipient.value,
        notifier,
        addr,
        a.hazard_source,
        int(tier),
        sch.due_us,
        message,
        status,
    )


def repeat_row(a: AlarmRow, n: int, every_us: int, recipient: Recipient, route: Route) -> Queued:
    """The outbox row of the ``n``-th repeat of an unacknowledged alarm to one address."""
    notifier, addr, who = route
    s = a.state
    assert s.schedule_from_us is not None
    return Queued(
        f"rep:{a.id}:{s.schedule}:{n}:{recipient.value}:{notifier}:{addr}",
        a.id,
        "repeat",
        recipient.value,
        notifier,
        addr,
        a.hazard_source,
        s.tier,
        s.schedule_from_us + n * every_us,
        {"schedule": s.schedule, "step": 0, "repeat": n, "contact": who},
    )


def flood_summary_row(enterprise: str, start_us: int, due_us: int, route: Route) -> Queued:
    """The outbox row of the control room's summary of the flood that started at ``start_us``."""
    notifier, addr, who = route
    return Queued(
        f"flood:{enterprise}:{start_us}:{notifier}:{addr}",
        None,
        "flood_summary",
        Recipient.CONTROL_ROOM.value,
        notifier,
        addr,
        None,
        None,
        due_us,
        {"flood_start_us": start_us, "contact": who},
    )
