"""What the bureau does with one message from the link: check it, then store it once and apply it.

`check` is pure (bytes, topic, limits, region → `Envelope` or `Refused`); `apply` runs in the
caller's transaction: it stores the envelope in ``bureau_message`` once per ``message_id``
(``ON CONFLICT DO NOTHING``) and applies the payload only on that first insert, so a replay
after an outage adds nothing. `Ingestor.handle` ties both to a connection, writes every
refusal to ``bureau_dead_letter`` and counts it by reason code; one enterprise's bad message
is refused alone and never stops the next one.

Reason codes (``hazmon_bureau_refused_total{reason_code}``):

- ``oversized``: more than ``limits.max_message_bytes``;
- ``invalid_schema``: not an envelope of `hazmon.plant.link` (the reason names the field);
- ``unknown_kind``: an up kind this bureau does not know (a newer enterprise daemon's): kept
  **whole**, to be replayed (`hazmon bureau dead-letters replay --reason unknown_kind`) once the
  bureau is upgraded to a version that knows it;
- ``topic_mismatch``: the topic is not ``hazmon/v1/<enterprise>/up/<kind>``, or the envelope's
  enterprise or kind differ from it, or it names another enterprise's alarm or id;
- ``outside_region``: the enterprise's region code is not inside the bureau's;
- ``unknown_enterprise``: anything but a registration from an enterprise never registered;
- ``unknown_alarm``: feedback on an alarm the bureau never received;
- ``unknown_supervision``: a progress report on a supervision (挂牌督办) the bureau does not have
  for that enterprise;
- ``database_refused``: PostgreSQL refused the values (kept for a person to look at);
- ``internal_error``: the bureau's own code failed on it (logged with the traceback): kept and
  acknowledged, so one message the code cannot take never blocks the feed;
- ``unknown_child`` (federation): a forwarded message (``hazmon/v1/fed/<child>/...``) from a
  child bureau not listed in ``children:``;
- ``outside_child_region`` (federation): the enterprise's region code is not inside the region
  of the child bureau that forwarded it.

A message whose ``sent_at`` is more than ``limits.max_skew_s`` ahead of the bureau's clock is
stored and applied, flagged (``bureau_message.skewed``) and counted (``hazmon_bureau_skewed_total``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg
import structlog
from prometheus_client import CollectorRegistry, Counter
from psycopg.types.json import Jsonb

from hazmon.bureau import supervision_ingest as supervision
from hazmon.bureau import weather_measures
from hazmon.plant.link import (
    DOWN_KINDS,
    SCHEMA_VERSION,
    UP_KINDS,
    AggregateItem,
    Aggregates,
    AlarmEvent,
    AssessmentRegister,
    CommitmentReport,
    DutyCheckReport,
    Envelope,
    Feedback,
    Heartbeat,
    HiddenDanger,
    LinkError,
    PlanEvent,
    Registration,
    SupervisionProgress,
    WeatherMeasures,
    direction_of,
    parse_envelope,
    parse_topic,
)
from hazmon.plant.link.federation import is_fed_topic, parse_fed_topic
from hazmon.plant.regions import Scope, covers
from hazmon.store import is_temporary

__all__ = [
    "DEAD_LETTER_MAX_BYTES",
    "KEPT_WHOLE",
    "REASON_CODES",
    "IngestLimits",
    "IngestMetrics",
    "Ingestor",
    "Outcome",
    "Refused",
    "apply",
    "check",
    "check_forwarded",
    "dead_letter",
]

log = structlog.get_logger("hazmon.bureau.ingest")

Conn = psycopg.Connection[tuple[object, ...]]
REASON_CODES = (
    "oversized",
    "invalid_schema",
    "unknown_kind",
    "topic_mismatch",
    "outside_region",
    "unknown_enterprise",
    "unknown_alarm",
    "unknown_supervision",
    "database_refused",
    "internal_error",
    "unknown_child",
    "outside_child_region",
)
DEAD_LETTER_MAX_BYTES = 64 * 1024
KEPT_WHOLE = frozenset({"unknown_kind"})  # dead letters kept whole: replayed once the bureau can take them


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_skew_s: float = 300.0
    max_message_bytes: int = 256 * 1024


@dataclass(frozen=True, slots=True)
class Refused:
    """A message the bureau does not take, and why (one line naming the field)."""

    reason_code: str
    reason: str
    enterprise_id: str | None = None


def _topic_enterprise(topic: str) -> str | None:
    try:
        return parse_topic(topic)[0]
    except LinkError:
        return None


def check(  # noqa: PLR0911, PLR0912 - one return per refusal
    raw: bytes, topic: str, limits: IngestLimits, region: Scope
) -> Envelope | Refused:
    """The envelope in ``raw``, or why the bureau refuses it (pure: no clock, no database)."""
    who = _topic_enterprise(topic)
    if len(raw) > limits.max_message_bytes:
        return Refused("oversized", f"message: {len(raw)} bytes, more than {limits.max_message_bytes}", who)
    try:
        t_enterprise, t_direction, t_kind = parse_topic(topic)
    except LinkError as e:
        return Refused("topic_mismatch", str(e), who)
    if t_direction != "up":
        return Refused("topic_mismatch", f"topic: {topic!r} is not an up topic", who)
    if t_kind not in UP_KINDS and t_kind not in DOWN_KINDS:
        why = (
            f"topic: kind {t_kind!r} is not one this bureau knows (link schema v{SCHEMA_VERSION}); "
            "kept whole: replay it once the bureau is upgraded"
        )
        return Refused("unknown_kind", why, who)
    try:
        env = parse_envelope(raw)
    except LinkError as e:
        return Refused("invalid_schema", str(e), who)
    try:
        direction = direction_of(env.kind)
    except LinkError as e:
        return Refused("invalid_schema", str(e), who)
    if env.enterprise_id != t_enterprise:
        why = f"enterprise_id: {env.enterprise_id!r} differs from the topic's {t_enterprise!r}"
        return Refused("topic_mismatch", why, who)
    if env.kind != t_kind:
        return Refused("topic_mismatch", f"kind: {env.kind!r} differs from the topic's {t_kind!r}", who)
    if direction != "up":
        return Refused("topic_mismatch", f"kind: {env.kind!r} does not travel up", who)
    p = env.payload
    if isinstance(p, Registration):
        if p.enterprise.id != env.enterprise_id:
            why = (
                f"payload.enterprise.id: {p.enterprise.id!r} differs from the envelope's "
                f"{env.enterprise_id!r}"
            )
            return Refused("topic_mismatch", why, who)
        if p.enterprise.region_code != env.region_code:
            why = (
                f"payload.enterprise.region_code: {p.enterprise.region_code!r} differs from "
                f"the envelope's {env.region_code!r}"
            )
            return Refused("invalid_schema", why, who)
    if isinstance(p, AlarmEvent | Feedback) and not p.alarm_id.startswith(f"{env.enterprise_id}:"):
        why = f"payload.alarm_id: {p.alarm_id!r} is not an alarm of {env.enterprise_id!r}"
        return Refused("topic_mismatch", why, who)
    own = f"{env.enterprise_id}:"
    if isinstance(p, HiddenDanger) and (
        not p.danger_id.startswith(own) or (p.alarm_id is not None and not p.alarm_id.startswith(own))
    ):
        why = f"payload.danger_id: {p.danger_id!r} (alarm {p.alarm_id!r}) is not of {env.enterprise_id!r}"
        return Refused("topic_mismatch", why, who)
    if isinstance(p, SupervisionProgress) and p.danger_id is not None and not p.danger_id.startswith(own):
        why = f"payload.danger_id: {p.danger_id!r} is not a hidden danger of {env.enterprise_id!r}"
        return Refused("topic_mismatch", why, who)
    if not covers(region, env.region_code):
        why = f"region_code: {env.region_code} is outside this bureau's {region.level} {region.code}"
        return Refused("outside_region", why, who)
    return env


def check_forwarded(
    raw: bytes, topic: str, limits: IngestLimits, region: Scope, children: Mapping[str, Scope]
) -> Envelope | Refused:
    """A message a child bureau forwarded on ``hazmon/v1/fed/<child>/<enterprise>/up/<kind>`` (pure).

    The envelope is checked against the inner topic exactly as an enterprise's (`check`), then
    its region code against the region of the child that forwarded it.
    """
    try:
        child, inner = parse_fed_topic(topic)
    except LinkError as e:
        return Refused("topic_mismatch", str(e))
    who = _topic_enterprise(inner)
    scope = children.get(child)
    if scope is None:
        why = f"topic: child bureau {child!r} is not in this bureau's children"
        return Refused("unknown_child", why, who)
    checked = check(raw, inner, limits, region)
    if isinstance(checked, Refused):
        return checked
    if not covers(scope, checked.region_code):
        why = (
            f"region_code: {checked.region_code} is outside child bureau {child!r}'s "
            f"{scope.level} {scope.code}"
        )
        return Refused("outside_child_region", why, who)
    return checked


# ---------------------------------------------------------------- storing


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message."""

    status: Literal["stored", "duplicate", "refused"]
    kind: str | None = None
    enterprise_id: str | None = None
    skewed: bool = False
    refused: Refused | None = None


def apply(  # noqa: PLR0912 - one branch per kind
    conn: Conn,
    env: Envelope,
    received_at: datetime,
    max_skew_s: float = 300.0,
    *,
    via_child: str | None = None,
) -> Outcome:
    """Store ``env`` once and apply its payload, in the caller's transaction.

    Returns:
        ``stored`` (first time), ``duplicate`` (its ``message_id`` was stored before: nothing
        changes), or ``refused`` (unknown enterprise or alarm: nothing was written; the caller
        dead-letters it). ``via_child``: the child bureau that forwarded it (``bureau_message.via_child``).
    """
    eid = env.enterprise_id
    p = env.payload
    if not isinstance(p, Registration):
        row = conn.execute(
            # the row this message updates last (last_seq), locked first: two workers on the
            # same enterprise's messages wait for each other instead of deadlocking
            "SELECT 1 FROM bureau_enterprise WHERE enterprise_id = %s FOR NO KEY UPDATE",
            (eid,),
        ).fetchone()
        if row is None:
            why = f"enterprise_id: {eid!r} has not registered (a registration comes first)"
            return Outcome("refused", env.kind, eid, refused=Refused("unknown_enterprise", why, eid))
    if isinstance(p, Feedback):
        row = conn.execute("SELECT 1 FROM bureau_alarm WHERE alarm_id = %s", (p.alarm_id,)).fetchone()
        if row is None:
            why = f"payload.alarm_id: no alarm {p.alarm_id!r} at this bureau"
            return Outcome("refused", env.kind, eid, refused=Refused("unknown_alarm", why, eid))
    gone = supervision.progress_refusal(conn, eid, p) if isinstance(p, SupervisionProgress) else None
    if gone is not None:
        return Outcome("refused", env.kind, eid, refused=Refused("unknown_supervision", gone, eid))
    skew_s = (env.sent_at - received_at).total_seconds()
    skewed = skew_s > max_skew_s
    inserted = conn.execute(
        "INSERT INTO bureau_message (message_id, enterprise_id, seq, kind, sent_at, received_at,"
        " skew_s, skewed, payload, via_child) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (message_id) DO NOTHING RETURNING message_id",
        (
            env.message_id,
            eid,
            env.seq,
            env.kind,
            env.sent_at,
            received_at,
            skew_s,
            skewed,
            Jsonb(p.model_dump(mode="json")),
            via_child,
        ),
    ).fetchone()
    if inserted is None:
        return Outcome("duplicate", env.kind, eid)
    if isinstance(p, Registration):
        _registration(conn, p, received_at)
    elif isinstance(p, AlarmEvent):
        _alarm_event(conn, env, p)
    elif isinstance(p, Heartbeat):
        _heartbeat(conn, eid, p, received_at)
    elif isinstance(p, AssessmentRegister):
        _assessments(conn, eid, p)
    elif isinstance(p, Aggregates):
        _aggregates(conn, eid, p)
    elif isinstance(p, Feedback):
        _feedback(conn, env, p)
    elif isinstance(p, PlanEvent):
        _plan_event(conn, eid, p)
    elif isinstance(p, HiddenDanger | DutyCheckReport | CommitmentReport | SupervisionProgress):
        supervision.ingest(conn, env, p)
    elif isinstance(p, WeatherMeasures):
        weather_measures.store(conn, eid, env.seq, p)
    conn.execute(
        "UPDATE bureau_enterprise SET last_message_at = GREATEST(last_message_at, %s),"
        " last_seq = GREATEST(last_seq, %s) WHERE enterprise_id = %s",
        (received_at, env.seq, eid),
    )
    return Outcome("stored", env.kind, eid, skewed=skewed)


def _plan_event(conn: Conn, eid: str, p: PlanEvent) -> None:
    """A plan started, raised in level or ended; an older message never rolls a newer one back."""
    conn.execute(
        """INSERT INTO bureau_plan AS b (enterprise_id, activation, plan_id, plan_name, level, drill,
               started_at, started_by, cause, updated_at, ended_at)
           VALUES (%(e)s, %(a)s, %(id)s, %(name)s, %(level)s, %(drill)s, %(at)s, %(actor)s, %(cause)s, %(at)s,
                   CASE WHEN %(event)s = 'ended' THEN %(at)s END)
           ON CONFLICT (enterprise_id, activation) DO UPDATE SET
               level = CASE WHEN %(event)s = 'level' AND %(at)s >= b.updated_at THEN %(level)s
                            ELSE b.level END,
               ended_at = CASE WHEN %(event)s = 'ended' THEN coalesce(b.ended_at, %(at)s) ELSE b.ended_at END,
               started_at = CASE WHEN %(event)s = 'started' THEN %(at)s ELSE b.started_at END,
               started_by = CASE WHEN %(event)s = 'started' THEN %(actor)s ELSE b.started_by END,
               updated_at = GREATEST(b.updated_at, %(at)s)""",
        {
            "e": eid,
            "a": p.activation,
            "id": p.plan_id,
            "name": p.plan_name,
            "level": p.level,
            "drill": p.drill,
            "at": p.at,
            "actor": p.actor,
            "cause": p.cause,
            "event": p.event,
        },
    )


def _registration(conn: Conn, p: Registration, at: datetime) -> None:
    e = p.enterprise
    conn.execute(
        "INSERT INTO bureau_enterprise (enterprise_id, region_code, name, registration, registered_at,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (enterprise_id) DO UPDATE SET"
        " region_code = EXCLUDED.region_code, name = EXCLUDED.name,"
        " registration = EXCLUDED.registration, updated_at = EXCLUDED.updated_at",
        (e.id, e.region_code, e.name, Jsonb(p.model_dump(mode="json")), at, at),
    )
    sources = [h.id for h in p.hazard_sources]
    tags = [s.tag for h in p.hazard_sources for s in h.sensors]
    for h in p.hazard_sources:
        info = h.model_dump(mode="json", exclude={"sensors"})
        conn.execute(
            "INSERT INTO bureau_hazard_source (enterprise_id, source_id, name, kind, grade, r_value,"
            " s_value, info) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (enterprise_id, source_id) DO UPDATE SET name = EXCLUDED.name,"
            " kind = EXCLUDED.kind, grade = EXCLUDED.grade, r_value = EXCLUDED.r_value,"
            " s_value = EXCLUDED.s_value, info = EXCLUDED.info",
            (e.id, h.id, h.name, h.kind, h.grade, h.r, h.s, Jsonb(info)),
        )
    # sensors gone from the plant file go; a sensor moved to another source follows it
    conn.execute("DELETE FROM bureau_sensor WHERE enterprise_id = %s AND NOT tag = ANY(%s)", (e.id, tags))
    with conn.cursor() as cur:  # executemany: one round trip (pipeline), not one per sensor
        cur.executemany(
            "INSERT INTO bureau_sensor (enterprise_id, tag, source_id, kind, unit, period_s, info)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (enterprise_id, tag) DO UPDATE SET"
            " source_id = EXCLUDED.source_id, kind = EXCLUDED.kind, unit = EXCLUDED.unit,"
            " period_s = EXCLUDED.period_s, info = EXCLUDED.info",
            [
                (e.id, s.tag, h.id, s.kind, s.unit, s.period_s, Jsonb(s.model_dump(mode="json")))
                for h in p.hazard_sources
                for s in h.sensors
            ],
        )
    conn.execute(
        "DELETE FROM bureau_hazard_source WHERE enterprise_id = %s AND NOT source_id = ANY(%s)",
        (e.id, sources),
    )


def _alarm_event(conn: Conn, env: Envelope, a: AlarmEvent) -> None:
    # the alarm's row shows the newest event by the enterprise's event id (a late, older event
    # is recorded in the history but does not roll the state back)
    conn.execute(
        "INSERT INTO bureau_alarm AS b (alarm_id, enterprise_id, source_id, sensor, condition, level,"
        " tier, tier_name, state, raised_at, updated_at, acked_at, cleared_at, message_zh, message_en,"
        " value, limit_value) VALUES (%(id)s, %(e)s, %(hs)s, %(sensor)s, %(cond)s, %(level)s, %(tier)s,"
        " %(tname)s, %(state)s, %(at)s, %(at)s, %(acked)s, %(cleared)s, %(zh)s, %(en)s, %(value)s,"
        " %(limit)s)"
        " ON CONFLICT (alarm_id) DO UPDATE SET source_id = EXCLUDED.source_id, sensor = EXCLUDED.sensor,"
        " condition = EXCLUDED.condition, level = EXCLUDED.level, tier = EXCLUDED.tier,"
        " tier_name = EXCLUDED.tier_name, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at,"
        " raised_at = CASE WHEN %(event)s = 'raised' AND b.cleared_at IS NOT NULL THEN EXCLUDED.raised_at"
        "   ELSE b.raised_at END,"
        " acked_at = COALESCE(EXCLUDED.acked_at,"
        "   CASE WHEN %(event)s = 'raised' THEN NULL ELSE b.acked_at END),"
        " cleared_at = CASE WHEN %(event)s = 'raised' THEN NULL"
        "   ELSE COALESCE(EXCLUDED.cleared_at, b.cleared_at) END,"
        " message_zh = EXCLUDED.message_zh, message_en = EXCLUDED.message_en, value = EXCLUDED.value,"
        " limit_value = EXCLUDED.limit_value"
        " WHERE NOT EXISTS (SELECT 1 FROM bureau_alarm_event x WHERE x.alarm_id = b.alarm_id"
        "   AND x.origin = 'enterprise' AND x.event_id > %(eid)s)",
        {
            "id": a.alarm_id,
            "e": env.enterprise_id,
            "hs": a.hazard_source,
            "sensor": a.sensor,
            "cond": a.condition,
            "level": a.level,
            "tier": a.tier,
            "tname": a.tier_name,
            "state": a.state,
            "at": a.at,
            "acked": a.at if a.event == "acked" else None,
            "cleared": a.at if a.event == "cleared" else None,
            "zh": a.message_zh,
            "en": a.message_en,
            "value": a.value,
            "limit": a.limit_value,
            "event": a.event,
            "eid": a.event_id,
        },
    )
    conn.execute(
        "INSERT INTO bureau_alarm_event (alarm_id, origin, event_id, event, at, actor, comment, data,"
        " message_id) VALUES (%s, 'enterprise', %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (alarm_id, origin, event_id) DO NOTHING",
        (a.alarm_id, a.event_id, a.event, a.at, a.actor, a.comment, Jsonb(a.data), env.message_id),
    )


def _feedback(conn: Conn, env: Envelope, f: Feedback) -> None:
    # feedback carries no event id of the enterprise's: it is numbered below zero by the
    # envelope's seq, apart from the enterprise's own (positive) alarm event ids
    conn.execute(
        "INSERT INTO bureau_alarm_event (alarm_id, origin, event_id, event, at, actor, comment, data,"
        " message_id) VALUES (%s, 'enterprise', %s, 'bureau_feedback', %s, %s, %s, %s, %s)"
        " ON CONFLICT (alarm_id, origin, event_id) DO NOTHING",
        (f.alarm_id, -env.seq, f.at, f.actor, f.comment, Jsonb({"seq": env.seq}), env.message_id),
    )


def _heartbeat(conn: Conn, eid: str, h: Heartbeat, received_at: datetime) -> None:
    for ep in h.endpoints:
        conn.execute(
            "INSERT INTO bureau_heartbeat AS b (enterprise_id, endpoint, protocol, connected,"
            " last_reading_at, at, received_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (enterprise_id, endpoint) DO UPDATE SET protocol = EXCLUDED.protocol,"
            " connected = EXCLUDED.connected, last_reading_at = EXCLUDED.last_reading_at,"
            " at = EXCLUDED.at, received_at = EXCLUDED.received_at WHERE b.at <= EXCLUDED.at",
            (eid, ep.endpoint, ep.protocol, ep.connected, ep.last_reading_at, h.at, received_at),
        )


def _assessments(conn: Conn, eid: str, r: AssessmentRegister) -> None:
    for it in r.items:
        conn.execute(
            "INSERT INTO bureau_assessment AS b (enterprise_id, source_id, as_of, next_due,"
            " reassessment_overdue, filing_overdue, item) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (enterprise_id, source_id) DO UPDATE SET as_of = EXCLUDED.as_of,"
            " next_due = EXCLUDED.next_due, reassessment_overdue = EXCLUDED.reassessment_overdue,"
            " filing_overdue = EXCLUDED.filing_overdue, item = EXCLUDED.item"
            " WHERE b.as_of <= EXCLUDED.as_of",
            (
                eid,
                it.hazard_source,
                r.as_of,
                it.next_due,
                it.reassessment_overdue,
                it.filing_overdue,
                Jsonb(it.model_dump(mode="json")),
            ),
        )


def _aggregate_row(eid: str, at: datetime, it: AggregateItem) -> tuple[object, ...]:
    return (eid, it.sensor, at, it.count, it.min, it.mean, it.max, it.last, it.worst_quality)


def _aggregates(conn: Conn, eid: str, a: Aggregates) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO bureau_aggregate (enterprise_id, sensor, bucket, count, min, mean, max, last,"
            " worst_quality) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (enterprise_id, sensor, bucket) DO NOTHING",
            [_aggregate_row(eid, a.window_start, it) for it in a.items],
        )


def dead_letter(conn: Conn, topic: str, raw: bytes, r: Refused) -> None:
    """Keep a refused message with its reason, in the caller's transaction.

    The raw bytes are cut at 64 KiB, but for `KEPT_WHOLE` reasons (already within
    ``max_message_bytes``): those are replayed later.
    """
    kept = raw if r.reason_code in KEPT_WHOLE else raw[:DEAD_LETTER_MAX_BYTES]
    conn.execute(
        "INSERT INTO bureau_dead_letter (topic, enterprise_id, reason_code, reason, payload)"
        " VALUES (%s, %s, %s, %s, %s)",
        (topic[:1024], r.enterprise_id, r.reason_code, r.reason[:4000], kept),
    )


# ---------------------------------------------------------------- counting


class IngestMetrics:
    """The ingest's counters, on the daemon's registry (declared with every label value up front)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.messages = Counter(
            "hazmon_bureau_messages_total",
            "Messages stored (first time by message_id), by kind",
            ["kind"],
            registry=reg,
        )
        self.duplicates = Counter(
            "hazmon_bureau_duplicates_total",
            "Messages received again (same message_id): nothing changed",
            registry=reg,
        )
        self.refused = Counter(
            "hazmon_bureau_refused_total",
            "Messages refused and dead-lettered, by reason code",
            ["reason_code"],
            registry=reg,
        )
        self.skewed = Counter(
            "hazmon_bureau_skewed_total",
            "Messages stored whose sent_at is further ahead of the bureau clock than max_skew_s",
            registry=reg,
        )
        for k in UP_KINDS:
            self.messages.labels(kind=k)
        for r in REASON_CODES:
            self.refused.labels(reason_code=r)

    def count(self, o: Outcome) -> None:
        if o.status == "stored":
            self.messages.labels(kind=o.kind or "").inc()
            if o.skewed:
                self.skewed.inc()
        elif o.status == "duplicate":
            self.duplicates.inc()
        elif o.refused is not None:
            self.refused.labels(reason_code=o.refused.reason_code).inc()


def via_child_of(topic: str) -> str | None:
    """Federation: the child bureau that forwarded a message on ``topic`` (None: the enterprise itself)."""
    return parse_fed_topic(topic)[0] if is_fed_topic(topic) else None


class Ingestor:
    """Checks, stores and counts messages on one connection (one per subscriber thread)."""

    def __init__(
        self,
        region: Scope,
        limits: IngestLimits,
        metrics: IngestMetrics | None = None,
        *,
        children: Mapping[str, Scope] | None = None,
        on_stored: Callable[[Conn, Envelope, bytes], None] | None = None,
    ) -> None:
        self.region = region
        self.limits = limits
        self.metrics = metrics or IngestMetrics()
        self.children = dict(children or {})  # federation: child bureau -> the region it speaks for
        self.on_stored = on_stored  # in the storing transaction, for a message stored the first time

    def over_limit(self, conn: Conn, raw: bytes, topic: str) -> Outcome | None:
        """A refusal already dead-lettered when the topic's enterprise is over its flood limit; None: go on.

        Always None here; `hazmon.bureau.flood.FloodGuardedIngestor` limits. The batch path
        (`hazmon.bureau.batch`) asks it for each message as `handle` does.
        """
        return None

    def check_one(self, raw: bytes, topic: str) -> Envelope | Refused:
        """`check` — or, on a child bureau's topic, `check_forwarded` (federation)."""
        return self._check(raw, topic)

    def _check(self, raw: bytes, topic: str) -> Envelope | Refused:
        if is_fed_topic(topic):
            return check_forwarded(raw, topic, self.limits, self.region, self.children)
        return check(raw, topic, self.limits, self.region)

    def handle(self, conn: Conn, raw: bytes, topic: str, received_at: datetime) -> Outcome:
        """Check, store and apply one message, committed when this returns.

        A refusal is dead-lettered and counted. Raises only for a database that is away
        (`hazmon.store.is_temporary`): the caller keeps the message unacknowledged and retries.
        """
        try:
            o = self._checked_and_applied(conn, raw, topic, received_at)
        except psycopg.Error as e:
            if is_temporary(e) or conn.closed or conn.broken:
                raise
            first = (str(e).strip().splitlines() or [""])[0]
            who = _topic_enterprise(topic)
            refused = Refused("database_refused", f"database refused it: {type(e).__name__}: {first}", who)
            o = Outcome("refused", None, who, refused=refused)
        except Exception as e:  # a defect of ours: kept and counted, the feed goes on
            log.exception("bureau ingest failed on a message", topic=topic)
            who = _topic_enterprise(topic)
            o = Outcome(
                "refused", None, who, refused=Refused("internal_error", f"{type(e).__name__}: {e}", who)
            )
        if o.refused is not None:
            with conn.transaction():
                dead_letter(conn, topic, raw, o.refused)
            log.warning(
                "bureau message refused",
                topic=topic,
                enterprise=o.refused.enterprise_id,
                reason_code=o.refused.reason_code,
                reason=o.refused.reason,
            )
        elif o.skewed:
            log.warning("bureau message clock ahead", topic=topic, enterprise=o.enterprise_id)
        self.metrics.count(o)
        return o

    def _checked_and_applied(self, conn: Conn, raw: bytes, topic: str, received_at: datetime) -> Outcome:
        checked = self._check(raw, topic)
        if isinstance(checked, Refused):
            return Outcome("refused", None, checked.enterprise_id, refused=checked)
        via = via_child_of(topic)
        with conn.transaction():
            o = apply(conn, checked, received_at, self.limits.max_skew_s, via_child=via)
            if o.status == "stored" and self.on_stored is not None:
                self.on_stored(conn, checked, raw)  # e.g. the forward outbox: stored and queued together
            return o
