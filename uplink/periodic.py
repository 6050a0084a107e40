"""What the uplink enqueues on its own from the database: 1-minute aggregates and the assessment register.

Aggregates: each closed minute (its end plus ``aggregate_delay_s`` passed, so the batch writer
has committed it) becomes one ``aggregates`` message with every plant sensor (count 0 for a
silent one), read from ``readings``. What was sent is the outbox itself: the newest enqueued
``window_start`` is where the next run goes on (a restart neither skips nor doubles a minute;
the dedupe key ``aggregates:<enterprise>:<window>`` makes a double impossible), back at most
``aggregate_catchup_h``. The first run ever starts at the newest closed minute.

Assessment register and registration: enqueued when they differ from the last one enqueued
(a restart with the same content adds nothing; a change, even back to an earlier content,
goes out).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import orjson

from hazmon.plant.assessment import assessment_status
from hazmon.plant.link import Payload
from hazmon.plant.model import Plant
from hazmon.plant.reading import Quality
from hazmon.store import latest_assessments
from hazmon.uplink.build import aggregate, assessments
from hazmon.uplink.outbox import Conn, enqueue

__all__ = [
    "closed_windows",
    "enqueue_aggregates",
    "enqueue_assessments",
    "enqueue_if_changed",
    "last_window",
]

MINUTE = timedelta(minutes=1)


def _floor_minute(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(second=0, microsecond=0)


def closed_windows(
    after: datetime | None, now: datetime, delay_s: float, catchup: timedelta
) -> list[datetime]:
    """Starts of the minutes closed at ``now`` (end + ``delay_s`` passed) after ``after``, oldest first.

    ``after`` None (nothing sent yet): only the newest closed minute. No further back than
    ``catchup`` before ``now``.
    """
    newest = _floor_minute(now - timedelta(seconds=delay_s)) - MINUTE
    if after is None:
        return [newest]
    first = max(_floor_minute(after) + MINUTE, _floor_minute(now - catchup))
    out = []
    t = first
    while t <= newest:
        out.append(t)
        t += MINUTE
    return out


def last_window(conn: Conn, enterprise_id: str) -> datetime | None:
    """The newest aggregates window enqueued (the outbox remembers what was sent)."""
    row = conn.execute(
        "SELECT (payload->>'window_start')::timestamptz FROM uplink_outbox"
        " WHERE kind = 'aggregates' AND enterprise_id = %s ORDER BY seq DESC LIMIT 1",
        (enterprise_id,),
    ).fetchone()
    return None if row is None else row[0]  # type: ignore[return-value]


_ROWS_PER_READ = 500_000  # readings held in memory at once while catching up


def enqueue_aggregates(
    conn: Conn, plant: Plant, windows: Sequence[datetime], chunk: int | None = None
) -> int:
    """Enqueue one ``aggregates`` message per window; how many are new.

    The readings are read ``chunk`` minutes at a time (default: as many as hold about
    `_ROWS_PER_READ` readings at the sensors' periods, 1 to 60).
    """
    e = plant.enterprise
    tags = [s.tag for s in plant.sensors()]
    if chunk is None:
        per_minute = sum(60.0 / max(s.period_s, 0.001) for s in plant.sensors()) or 1.0
        chunk = int(max(1, min(60, _ROWS_PER_READ // per_minute)))
    added = 0
    for i in range(0, len(windows), chunk):
        part = windows[i : i + chunk]
        per: dict[datetime, dict[str, list[tuple[float, Quality]]]] = defaultdict(lambda: defaultdict(list))
        rows = conn.execute(
            "SELECT s.tag, r.time, r.value, r.quality FROM readings r JOIN sensor s ON s.id = r.sensor_id"
            " WHERE s.enterprise_id = %s AND r.time >= %s AND r.time < %s ORDER BY r.time",
            (e.id, part[0], part[-1] + MINUTE),
        ).fetchall()
        for tag, t, v, q in rows:
            per[_floor_minute(t)][str(tag)].append((float(v), Quality(int(q))))  # type: ignore[arg-type, call-overload]
        with conn.transaction():
            for w in part:
                msg = aggregate(w, per.get(w, {}), tags)
                key = f"aggregates:{e.id}:{w.isoformat()}"
                added += enqueue(conn, e.id, e.region.code, msg, dedupe_key=key) is not None
    return added


def enqueue_if_changed(
    conn: Conn, plant: Plant, payload: Payload, same: Callable[[dict[str, object]], object]
) -> int | None:
    """Enqueue ``payload`` unless the last one of its kind enqueued is the same (by ``same(payload dict)``).

    The dedupe key (kind, content hash, the last one's seq) keeps two racing enqueues to one.
    """
    e = plant.enterprise
    with conn.transaction():
        row = conn.execute(
            "SELECT seq, payload FROM uplink_outbox WHERE kind = %s AND enterprise_id = %s"
            " ORDER BY seq DESC LIMIT 1",
            (payload.kind, e.id),
        ).fetchone()
        mine = orjson.loads(payload.model_dump_json())
        if row is not None:
            last = row[1] if isinstance(row[1], dict) else orjson.loads(str(row[1]))
            if same(last) == same(mine):
                return None
        digest = hashlib.sha256(orjson.dumps(same(mine), option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        key = f"{payload.kind}:{digest}:{row[0] if row else 0}"
        return enqueue(conn, e.id, e.region.code, payload, dedupe_key=key)


def enqueue_assessments(conn: Conn, plant: Plant, today: date) -> int | None:
    """The assessment register on ``today``, when it differs from the last one sent (``as_of`` aside)."""
    records = latest_assessments(conn, plant.enterprise.id, today)
    statuses = [(hs.id, assessment_status(records.get(hs.id), hs, today)) for hs in plant.hazard_sources]
    return enqueue_if_changed(conn, plant, assessments(statuses, today), lambda p: p.get("items"))
