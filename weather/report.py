"""What the bureau is told of the official warnings in force here, and of their measures (pure).

One `WeatherMeasures` message (`hazmon.plant.link`) per CAP warning that concerns the
enterprise: its identifier, kind, colour, areas' region codes, the hazard sources it decides
(`hazmon.weather.state.Active.identifier`), and every duty open there with who confirmed it
and when. The roof (`hazmon.weather_report`) enqueues the messages of each round into the
bureau link's outbox under a key made of their content (`dedupe_key`): the same state is
enqueued once, each change (a duty confirmed, a source added, the end) once more, and a
restart repeats nothing. A warning no longer in force is reported once more as ``ended``, with
its duties as they ended and the reason (`why_ended`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

from hazmon.plant.link import WeatherDuty, WeatherMeasures
from hazmon.plant.weather_standards import WarningKind
from hazmon.weather.cap import Alert
from hazmon.weather.repository import Duty
from hazmon.weather.state import Active

__all__ = ["dedupe_key", "ended", "in_force", "why_ended"]

Key = tuple[str, WarningKind]


def _duty(d: Duty) -> WeatherDuty:
    return WeatherDuty(
        id=d.id, hazard_source=d.hazard_source, duty=d.duty, started_at=d.started_at,
        confirmed_by=d.confirmed_by, confirmed_at=d.confirmed_at, ended_at=d.ended_at,
        end_reason=d.end_reason or "",
    )  # fmt: skip


def in_force(
    active: Mapping[Key, Active], alerts: Sequence[Alert], duties: Sequence[Duty], at: datetime
) -> list[WeatherMeasures]:
    """One message per warning deciding a kind somewhere here; ``duties``: the open tasks."""
    by_id = {a.identifier: a for a in alerts}
    out = []
    for ident in sorted({a.identifier for a in active.values()}):
        alert = by_id.get(ident)
        mine = {k: a for k, a in active.items() if a.identifier == ident}
        if alert is None or not mine:
            continue
        keys = {(hs, kind.value) for hs, kind in mine}
        first = next(iter(mine.values()))
        codes = sorted({c for ar in alert.areas for c in ar.region_codes()})
        m = WeatherMeasures(
            identifier=ident, sender=alert.sender, sent=alert.sent, warning_kind=first.kind.value,
            colour=first.colour.name.lower(),  # type: ignore[arg-type]
            headline_zh=first.headline_zh, headline_en=first.headline_en, region_codes=codes,
            hazard_sources=sorted({hs for hs, _ in mine}), state="in_force",
            duties=[_duty(d) for d in duties if (d.hazard_source, d.kind) in keys and d.ended_at is None],
            at=at,
        )  # fmt: skip
        out.append(m)
    return out


def ended(last: WeatherMeasures, duties: Sequence[Duty], reason: str, at: datetime) -> WeatherMeasures:
    """The last message reported in force, now ended; ``duties``: its tasks as they stand now."""
    now = {d.id: d for d in duties}
    kept = [_duty(now[d.id]) if d.id in now else d for d in last.duties]
    return last.model_copy(update={"state": "ended", "end_reason": reason, "duties": kept, "at": at})


def why_ended(identifier: str, alerts: Sequence[Alert], now: datetime) -> str:
    """cancelled, replaced by <identifier>, expired — or ended, when none of them is known."""
    for a in alerts:
        if a.status == "Actual" and any(r[1] == identifier for r in a.references):
            if a.msg_type == "Cancel":
                return "cancelled"
            if a.msg_type == "Update":
                return f"replaced by {a.identifier}"
    if any(a.identifier == identifier and a.expires is not None and a.expires <= now for a in alerts):
        return "expired"
    return "ended (cancelled, expired or replaced)"


def dedupe_key(enterprise: str, m: WeatherMeasures) -> str:
    """The outbox key of a message: the warning and a digest of its state (its ``at`` left out)."""
    body = m.model_dump_json(exclude={"at"})
    return f"weather_measures:{enterprise}:{m.identifier}:{hashlib.sha256(body.encode()).hexdigest()[:24]}"
