"""Escalation policy per tier, and who a recipient is for a given plant (pure).

A policy is a list of steps ``(after_s, recipients)`` per tier. When an alarm
becomes active and unacknowledged, every step is queued at ``start + after_s``;
acknowledging (or shelving, suppression, out of service) stops the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from hazmon.plant.model import Plant
from hazmon.plant.standards import ESCALATION_DEFAULTS, Tier

__all__ = [
    "TOLD",
    "Contact",
    "EscalationStep",
    "Planned",
    "Policy",
    "Recipient",
    "Replan",
    "Route",
    "Scheduled",
    "contacts",
    "default_policy",
    "replan",
    "schedule",
]


class Recipient(StrEnum):
    CONTROL_ROOM = "control_room"
    OPERATIONAL = "operational"  # 操作负责人
    TECHNICAL = "technical"  # 技术负责人
    PRINCIPAL = "principal"  # 主要负责人
    BUREAU_COUNTY = "bureau_county"
    BUREAU_CITY = "bureau_city"
    BUREAU_PROVINCE = "bureau_province"

    @property
    def zh(self) -> str:
        return _ZH[self]

    @property
    def is_bureau(self) -> bool:
        return self.value.startswith("bureau_")


_ZH = {
    Recipient.CONTROL_ROOM: "中控室",
    Recipient.OPERATIONAL: "操作负责人",
    Recipient.TECHNICAL: "技术负责人",
    Recipient.PRINCIPAL: "主要负责人",
    Recipient.BUREAU_COUNTY: "县级应急管理部门",
    Recipient.BUREAU_CITY: "市级应急管理部门",
    Recipient.BUREAU_PROVINCE: "省级应急管理部门",
}


@dataclass(frozen=True, slots=True)
class EscalationStep:
    after_s: float
    recipients: tuple[Recipient, ...]


Policy = Mapping[Tier, tuple[EscalationStep, ...]]


def default_policy() -> dict[Tier, tuple[EscalationStep, ...]]:
    """`hazmon.plant.standards.ESCALATION_DEFAULTS` as typed steps."""
    return {
        tier: tuple(EscalationStep(after, tuple(Recipient(r) for r in who)) for after, who in steps)
        for tier, steps in ESCALATION_DEFAULTS.items()
    }


@dataclass(frozen=True, slots=True)
class Scheduled:
    step: int
    due_us: int
    recipient: Recipient


def schedule(policy: Policy, tier: Tier, start_us: int) -> list[Scheduled]:
    """Every notification of one escalation schedule starting at ``start_us``."""
    out: list[Scheduled] = []
    for i, st in enumerate(policy.get(tier, ())):
        due = start_us + round(st.after_s * 1e6)
        out.extend(Scheduled(i, due, r) for r in st.recipients)
    return out


Route = tuple[str, str, str]
"""(notifier name, address, contact name) a recipient is reached by."""

TOLD: frozenset[str] = frozenset({"sent", "sending", "dead", "flooded"})
"""Outbox states in which a recipient counts as told (or given up on): never queued again."""


@dataclass(frozen=True, slots=True)
class Planned:
    """An escalation row already in the outbox for the alarm's current schedule."""

    id: int
    recipient: str
    notifier: str
    address: str
    due_us: int
    status: str


@dataclass(frozen=True, slots=True)
class Replan:
    """What a tier change does to the outbox.

    Attributes:
        cancel: ids of pending rows the new tier does not have (or has at another time).
        queue: the new tier's steps not yet in the outbox: (step, route); due ``step.due_us``
            (in the past for steps already due: they go out at once).
        kept: pending rows the new tier has at the same time, for the same address.
        skipped: steps of the new tier whose recipient was already told (not sent again).
    """

    cancel: list[int]
    queue: list[tuple[Scheduled, Route]]
    kept: int
    skipped: int


def replan(
    policy: Policy,
    tier: Tier,
    start_us: int,
    routes: Callable[[Recipient], Sequence[Route]],
    existing: Sequence[Planned],
) -> Replan:
    """The escalation of ``tier`` applied to an alarm whose schedule started at ``start_us``.

    A recipient already told in this schedule (same notifier and address) is not told
    again; the new tier's steps that are due already are queued at their (past) due time,
    so they go out at once; pending steps of the old tier that the new one does not have
    at the same time are cancelled.
    """
    told = {(p.recipient, p.notifier, p.address) for p in existing if p.status in TOLD}
    pending = {
        (p.recipient, p.notifier, p.address, p.due_us): p.id for p in existing if p.status == "pending"
    }
    keep: set[int] = set()
    queue: list[tuple[Scheduled, Route]] = []
    skipped = 0
    for sch in schedule(policy, tier, start_us):
        for route in routes(sch.recipient):
            notifier, address, _ = route
            if (sch.recipient.value, notifier, address) in told:
                skipped += 1
                continue
            same = pending.get((sch.recipient.value, notifier, address, sch.due_us))
            if same is not None:
                keep.add(same)
            else:
                queue.append((sch, route))
    cancel = sorted(i for i in pending.values() if i not in keep)
    return Replan(cancel, queue, len(keep), skipped)


@dataclass(frozen=True, slots=True)
class Contact:
    """One person or duty office a recipient stands for.

    Attributes:
        name: shown in messages.
        email: e-mail address ('' when unknown).
        phone: phone number for SMS ('' when unknown).
        region_code: GB/T 2260 code the message is about (bureaus: their level's prefix code).
    """

    name: str
    email: str
    phone: str
    region_code: str


def contacts(plant: Plant, hazard_source: str | None, recipient: Recipient) -> list[Contact]:
    """The contacts a recipient resolves to for one hazard source of ``plant``."""
    region = plant.enterprise.region
    if recipient is Recipient.CONTROL_ROOM:
        return [Contact("中控室 control room", "", "", region.code)]
    if recipient.is_bureau:
        level = recipient.value.removeprefix("bureau_")
        code = {"county": region.code, "city": region.city_code, "province": region.province_code}[level]
        return [Contact(b.name, b.email, b.phone, code) for b in plant.bureaus if b.level == level]
    hs = next((h for h in plant.hazard_sources if h.id == hazard_source), None)
    if hs is None:  # a plant-wide alarm: the responsible persons of every source, once each
        people = {
            getattr(h.responsible, recipient.value).name: getattr(h.responsible, recipient.value)
            for h in plant.hazard_sources
        }
        return [Contact(p.name, p.email, p.phone, region.code) for p in people.values()]
    p = getattr(hs.responsible, recipient.value)
    return [Contact(p.name, p.email, p.phone, region.code)]
