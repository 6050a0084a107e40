"""Warnings in force and their findings: pure functions of (alerts received, now).

Folding rules (hazmon's reading of CAP 1.2 3.2.1 msgType) [U]:

- alerts are applied in the order of their ``sent`` time (ties: identifier);
- an Alert is in force from max(sent, effective, onset) until its ``expires`` (none: until
  cancelled); only ``status=Actual`` takes effect (Exercise, Test, System, Draft are
  stored but change nothing at a hazard source, nor end or update an Actual warning);
- an Update replaces every warning it references (they end) and is in force itself;
- a Cancel ends every warning it references; a reference to a warning never received
  changes nothing (the update or cancel is stored and flagged, see `repository`).

At a hazard source, the warnings of one kind make one advisory alarm (sensor
``weather/<kind>``): the most severe colour in force decides its level and duties; an
update that keeps the kind in force continues the same alarm.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hazmon.plant.findings import Condition, Finding
from hazmon.plant.model import Plant
from hazmon.plant.standards import Level
from hazmon.plant.weather_standards import DUTIES_ZH, Colour, Effect, WarningKind
from hazmon.weather.cap import Alert
from hazmon.weather.matching import area_covers, effect_for

__all__ = ["Active", "Transition", "active_at", "finding", "in_force", "transitions"]


@dataclass(frozen=True, slots=True)
class Active:
    """One warning kind in force at one hazard source."""

    hazard_source: str
    kind: WarningKind
    colour: Colour
    identifier: str  # the warning that decides it (most severe colour)
    level: Level
    duties: tuple[str, ...]
    headline_zh: str
    headline_en: str


@dataclass(frozen=True, slots=True)
class Transition:
    """A change at one hazard source: the finding for the alarms, the duties to confirm."""

    finding: Finding
    active: Active | None  # None when the warning kind ended there
    duties: tuple[str, ...]


def _start(a: Alert) -> datetime:
    times = [a.sent, *(t for i in a.infos for t in (i.effective, i.onset) if t is not None)]
    return max(times)


def _order(alerts: Iterable[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (a.sent, a.identifier))


def in_force(alerts: Iterable[Alert], now: datetime) -> list[Alert]:
    """The warnings in force at `now`, of those received (sent at or before `now`)."""
    live: dict[str, Alert] = {}
    for a in _order(alerts):
        if a.sent > now:
            break
        if a.status != "Actual":  # an exercise or test never starts, updates or ends a real warning
            continue
        if a.msg_type in ("Update", "Cancel"):
            for _, ident, _ in a.references:
                live.pop(ident, None)
        if a.msg_type in ("Alert", "Update"):
            live[a.identifier] = a
    return [a for a in live.values() if _start(a) <= now and (a.expires is None or now < a.expires)]


def active_at(
    plant: Plant, alerts: Iterable[Alert], now: datetime, table: Sequence[Effect] | None = None
) -> dict[tuple[str, WarningKind], Active]:
    """Per (hazard source, kind): the warning in force there and its effect.

    `table`: the effects table (default: the plant's, `Plant.weather_effects`).
    """
    out: dict[tuple[str, WarningKind], Active] = {}
    region = plant.enterprise.region
    for a in in_force(alerts, now):
        kind, colour = a.kind, a.colour
        if kind is None or colour is None:
            continue
        zh, en = a.text("zh"), a.text("en")
        for hs in plant.hazard_sources:
            if not any(area_covers(ar, region, hs.location) for ar in a.areas):
                continue
            eff = effect_for(kind, colour, hs, plant.weather_effects if table is None else table)
            if eff is None:
                continue
            key = (hs.id, kind)
            old = out.get(key)
            if old is not None and old.colour >= colour:
                continue
            out[key] = Active(
                hs.id,
                kind,
                colour,
                a.identifier,
                eff[0],
                eff[1],
                (zh.headline or zh.event) if zh else "",
                (en.headline or en.event) if en and en.language.lower().startswith("en") else "",
            )
    return out


def _us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


def finding(act: Active, on: bool, at: datetime) -> Finding:
    """The advisory finding of a warning kind at a hazard source: on (in force) or off (ended)."""
    hs, kind = act.hazard_source, act.kind
    duties_zh = "；".join(DUTIES_ZH.get(d, d) for d in act.duties)
    duties_en = ", ".join(d.replace("_", " ") for d in act.duties)
    if on:
        zh = f"{act.headline_zh or act.colour.zh + kind.zh + '预警'}。须落实：{duties_zh}"
        en = (
            f"{act.headline_en or f'{act.colour.name.lower()} {kind.value} warning'} in force. "
            f"Duties: {duties_en}"
        )
    else:
        zh = f"{act.colour.zh}{kind.zh}预警已解除或到期"
        en = f"{act.colour.name.lower()} {kind.value} warning ended (cancelled or expired)"
    return Finding(
        hs,
        f"weather/{kind.value}",
        Condition.WEATHER_WARNING,
        act.level,
        on,
        _us(at),
        value=float(act.colour),
        message_en=en,
        message_zh=zh,
    )


def transitions(
    plant: Plant,
    alerts: Sequence[Alert],
    now: datetime,
    table: Sequence[Effect] | None = None,
) -> list[Transition]:
    """Every start, change and end of a warning kind at a hazard source up to `now`, in time order.

    Change points are the moments a warning starts, expires, or an update or cancel is
    sent; the state is evaluated at each. A kind whose colour, level or deciding warning
    changes gives a new active finding (same alarm key: the alarm is updated).
    """
    points = sorted({t for a in alerts for t in (a.sent, _start(a), a.expires) if t is not None and t <= now})
    before: dict[tuple[str, WarningKind], Active] = {}
    out: list[Transition] = []
    for t in points:
        after = active_at(plant, alerts, t, table)
        for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1].value)):
            old, new = before.get(key), after.get(key)
            if new is not None and new != old:
                out.append(Transition(finding(new, True, t), new, new.duties))
            elif new is None and old is not None:
                out.append(Transition(finding(old, False, t), None, ()))
        before = after
    return out
