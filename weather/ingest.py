"""Ingestion edges: one document, files, a watched directory. Every refusal is counted by reason.

Decisions (hazmon's):

- refused, nothing stored: anything `cap.parse` refuses (oversize, malformed, DTD/entities,
  not CAP, missing or invalid fields); an alert whose latest ``expires`` is at or before
  the time of ingestion (``expired``); an identifier already stored (``duplicate``: each
  warning is stored once, a resend changes nothing).
- stored and flagged ``unknown_reference``: an Update or Cancel naming a warning hazmon
  never received. Refusing it would lose a cancellation that arrived before its warning
  (or whose warning came before hazmon started); stored, it is applied by sent time when
  the warning arrives later, and it is counted so the loss of the original is visible.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psycopg

from hazmon.plant.model import Plant
from hazmon.plant.weather_standards import Effect as TableRow
from hazmon.weather import repository as repo
from hazmon.weather.cap import Alert, Reason, Refused, parse
from hazmon.weather.matching import area_covers, effect_for

__all__ = ["Outcome", "Tally", "effects_of", "ingest", "scan_directory"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one document: stored (reason None, or a flag) or refused (reason)."""

    name: str
    stored: bool
    identifier: str | None
    reason: Reason | None
    detail: str = ""


@dataclass
class Tally:
    """Counters: stored documents, and refusals and flags by reason (the daemon exports them)."""

    stored: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, o: Outcome) -> None:
        self.stored += o.stored
        if o.reason is not None:
            self.by_reason[o.reason.value] += 1


def effects_of(plant: Plant, alert: Alert, table: Sequence[TableRow] | None = None) -> list[repo.Effect]:
    """The hazard sources of `plant` an alert concerns, with the level and duties it has there.

    `table`: the effects table (default: the plant's, `Plant.weather_effects`).
    """
    kind, colour = alert.kind, alert.colour
    table = plant.weather_effects if table is None else table
    if kind is None or colour is None:
        return []
    out = []
    for hs in plant.hazard_sources:
        if any(area_covers(a, plant.enterprise.region, hs.location) for a in alert.areas):
            eff = effect_for(kind, colour, hs, table)
            if eff is not None:
                out.append(repo.Effect(hs.id, eff[0], eff[1]))
    return out


def ingest(  # noqa: PLR0917 - the document and its context
    conn: psycopg.Connection[tuple[object, ...]],
    plant: Plant,
    data: bytes,
    name: str,
    now: datetime,
    table: Sequence[TableRow] | None = None,
) -> Outcome:
    """Parse, check and store one document; never raises on bad input."""
    a = parse(data, name)
    if isinstance(a, Refused):
        return Outcome(name, False, None, a.reason, a.detail)
    if a.expires is not None and a.expires <= now:
        detail = f"{name}: expired at {a.expires.isoformat()}"
        return Outcome(name, False, a.identifier, Reason.EXPIRED, detail)
    flag = ""
    refs = [r[1] for r in a.references]
    if a.msg_type in ("Update", "Cancel") and set(refs) - repo.known(conn, refs):
        flag = Reason.UNKNOWN_REFERENCE.value
    if not repo.store(conn, a, plant.enterprise.id, effects_of(plant, a, table), now, flag):
        detail = f"{name}: {a.identifier} is already stored"
        return Outcome(name, False, a.identifier, Reason.DUPLICATE, detail)
    if flag:
        missing = ", ".join(sorted(set(refs) - repo.known(conn, refs)))
        detail = f"{name}: stored; references unknown {missing}"
        return Outcome(name, True, a.identifier, Reason.UNKNOWN_REFERENCE, detail)
    return Outcome(name, True, a.identifier, None)


def scan_directory(  # noqa: PLR0917 - the inbox and its context
    conn: psycopg.Connection[tuple[object, ...]],
    plant: Plant,
    inbox: Path,
    now: datetime,
    tally: Tally | None = None,
    table: Sequence[TableRow] | None = None,
) -> list[Outcome]:
    """Ingest every ``*.xml`` in `inbox` once, then move it out of the inbox.

    Stored files go to ``inbox/done/``; refused ones to ``inbox/refused/`` beside a
    ``<name>.reason.txt`` naming the reason. A file that cannot be read stays (retried next
    scan) and is reported. Files are taken in name order.
    """
    out = []
    done, refused = inbox / "done", inbox / "refused"
    for f in sorted(p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() == ".xml"):
        try:
            data = f.read_bytes()
        except OSError as e:
            out.append(Outcome(f.name, False, None, None, f"{f.name}: cannot read: {e}"))
            continue
        o = ingest(conn, plant, data, f.name, now, table)
        target = done if o.stored else refused
        target.mkdir(exist_ok=True)
        shutil.move(str(f), target / f.name)
        if not o.stored:
            (refused / f"{f.name}.reason.txt").write_text(
                f"{o.reason.value if o.reason else 'unreadable'}\n{o.detail}\n", encoding="utf-8"
            )
        if tally is not None:
            tally.add(o)
        out.append(o)
    return out
