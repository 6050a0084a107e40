"""Official weather warnings and their measures to the bureau, over the link's outbox (the roof).

Each round of the weather runner (`hazmon.weather_wiring.WeatherRunner.effects_once`) calls
`report`: every warning deciding a kind at a hazard source here is enqueued as a
``weather_measures`` message (`hazmon.weather.report.in_force`) under a key of its content, so
a state is enqueued once and each change (a duty confirmed by ``hazmon weather confirm``, a
hazard source added, a colour raised) once more. A warning last reported in force and no longer
deciding anywhere is reported once as ended, with its duties as they stand and the reason. What
was last reported is read back from the outbox itself: a restart neither repeats nor loses a
message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import psycopg
import structlog
from pydantic import ValidationError

from hazmon.plant import Plant
from hazmon.plant.link import WeatherMeasures
from hazmon.plant.weather_standards import WarningKind
from hazmon.uplink.outbox import enqueue
from hazmon.weather import repository as repo
from hazmon.weather.cap import Alert
from hazmon.weather.report import dedupe_key, ended, in_force, why_ended
from hazmon.weather.state import Active

__all__ = ["Report", "last_reported", "measures_reporter"]

log = structlog.get_logger("hazmon.daemon")

Conn = psycopg.Connection[tuple[object, ...]]
Key = tuple[str, WarningKind]
Report = Callable[[Conn, Mapping[Key, Active], Sequence[Alert], datetime], int]


def last_reported(conn: Conn, enterprise: str) -> dict[str, WeatherMeasures]:
    """Per warning identifier, the last ``weather_measures`` message enqueued (of the last 30 days)."""
    rows = conn.execute(
        """SELECT DISTINCT ON (payload->>'identifier') payload FROM uplink_outbox
           WHERE enterprise_id = %s AND kind = 'weather_measures' AND created_at > now() - interval '30 days'
           ORDER BY payload->>'identifier', seq DESC""",
        (enterprise,),
    ).fetchall()
    out: dict[str, WeatherMeasures] = {}
    for (payload,) in rows:
        try:
            m = WeatherMeasures.model_validate(payload, strict=False)
        except ValidationError:  # a row edited by hand: its sender refuses it too
            continue
        out[m.identifier] = m
    return out


def measures_reporter(plant: Plant) -> Report:
    """The weather runner's report to the bureau (given when ``uplink.enabled``)."""
    ent = plant.enterprise

    def report(conn: Conn, active: Mapping[Key, Active], alerts: Sequence[Alert], now: datetime) -> int:
        msgs = in_force(active, alerts, repo.open_duties(conn, ent.id), now)
        current = {m.identifier for m in msgs}
        for ident, last in last_reported(conn, ent.id).items():
            if last.state == "in_force" and ident not in current:
                duties = repo.duties_by_id(conn, ent.id, [d.id for d in last.duties])
                msgs.append(ended(last, duties, why_ended(ident, alerts, now), now))
        n = 0
        for m in msgs:
            if enqueue(conn, ent.id, ent.region.code, m, dedupe_key=dedupe_key(ent.id, m)) is not None:
                n += 1
                done = sum(d.confirmed_at is not None for d in m.duties)
                log.info(
                    "weather measures to the bureau", identifier=m.identifier, state=m.state,
                    confirmed=done, duties=len(m.duties),
                )  # fmt: skip
        return n

    return report
