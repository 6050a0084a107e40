"""SQL of the alarm service: the event log, the projection, the outbox, floods and KPI targets.

Every function takes an open async connection; the caller owns the transaction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hazmon.alarms.escalation import Planned
from hazmon.alarms.lifecycle import AlarmState, Event, state_from_json, status
from hazmon.plant.standards import ALARM_TARGETS, Tier

__all__ = [
    "AlarmRow",
    "Outgoing",
    "Queued",
    "alarm_columns",
    "append_event",
    "cancel_pending",
    "claim_due",
    "escalation_rows",
    "event_columns",
    "events",
    "flood_grew",
    "flood_started",
    "insert_alarm",
    "last_event_us",
    "load_alarms",
    "mark_dead",
    "mark_retry",
    "mark_sent",
    "outgoing",
    "queue",
    "queue_claimed",
    "raised_since",
    "resend_interrupted",
    "save_projection",
    "write_kpi_targets",
]

Conn = psycopg.AsyncConnection[tuple[Any, ...]]
Cursor = psycopg.AsyncCursor[tuple[Any, ...]]


@dataclass(slots=True)
class AlarmRow:
    """One alarm in memory: identity, where it belongs, and its folded state."""

    id: int
    hazard_source: str
    sensor: str | None
    condition: str
    position: str
    state: AlarmState
    last_seen_us: int
    last_update_event_us: int = 0

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.hazard_source, self.sensor, self.condition)


async def load_alarms(conn: Conn, enterprise_id: str) -> list[AlarmRow]:
    cur = await conn.execute(
        "SELECT id, hazard_source, sensor, condition, position, folded, last_seen_us "
        "FROM alarm WHERE enterprise_id = %s ORDER BY id",
        (enterprise_id,),
    )
    return [
        AlarmRow(int(r[0]), str(r[1]), r[2], str(r[3]), str(r[4]), state_from_json(r[5]), int(r[6]))
        for r in await cur.fetchall()
    ]


async def insert_alarm(
    conn: Conn,
    enterprise_id: str,
    *,
    region_code: str,
    key: tuple[str, str | None, str],
    position: str,
    level: str,
    tier: Tier,
    now_us: int,
) -> AlarmRow:
    """The alarm row for ``key``: created in the normal state, or the existing one."""
    st = AlarmState(level=level, tier=int(tier))
    cur = await conn.execute(
        """INSERT INTO alarm (enterprise_id, hazard_source, sensor, condition, position, region_code, level,
               tier, tier_name, state, active, acked, last_seen_us, folded)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'normal', false, true, %s, %s)
           ON CONFLICT (enterprise_id, hazard_source, sensor, condition)
               DO UPDATE SET last_seen_us = greatest(alarm.last_seen_us, EXCLUDED.last_seen_us)
           RETURNING id, folded""",
        (
            enterprise_id,
            key[0],
            key[1],
            key[2],
            position,
            region_code,
            level,
            int(tier),
            tier.colour,
            now_us,
            Jsonb(st.to_json()),
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    # the row may exist already (written by an earlier run whose state this one has not loaded)
    return AlarmRow(int(row[0]), key[0], key[1], key[2], position, state_from_json(row[1]), now_us)


async def append_event(conn: Conn, alarm_id: int, e: Event, *, returning: bool = False) -> int | None:
    """Append one event (no round trip wait in pipeline mode; its id is currval of the sequence).

    ``returning``: wait for the new row's id and return it (one round trip; an event hook needs it).
    """
    cur = await conn.execute(
        "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, comment, data) "
        "VALUES (%s, %s, %s, %s, %s, %s)" + (" RETURNING id" if returning else ""),
        (alarm_id, e.at_us, e.kind.value, e.actor, e.comment, Jsonb(dict(e.data or {}))),
    )
    if not returning:
        return None
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def event_columns(event_id: int, alarm_id: int, e: Event) -> dict[str, Any]:
    """An ``alarm_event`` row as column -> value (``at`` as an aware datetime)."""
    return {
        "id": event_id,
        "alarm_id": alarm_id,
        "at_us": e.at_us,
        "at": datetime.fromtimestamp(e.at_us / 1e6, UTC),
        "kind": e.kind.value,
        "actor": e.actor,
        "comment": e.comment,
        "data": dict(e.data or {}),
    }


def alarm_columns(a: AlarmRow, now_us: int) -> dict[str, Any]:
    """The ``alarm`` row `save_projection` writes, as column -> value (what an event hook is told)."""
    s = a.state
    tier = Tier(max(1, min(4, s.tier or 1)))
    return {
        "id": a.id,
        "hazard_source": a.hazard_source,
        "sensor": a.sensor,
        "condition": a.condition,
        "position": a.position,
        "level": s.level,
        "tier": int(tier),
        "tier_name": tier.colour,
        "state": status(s, now_us).value,
        "active": s.showing_active,
        "acked": s.acked,
        "bureau_step": s.bureau_step,
        "value": s.value,
        "limit_value": s.limit,
        "message_en": s.message_en,
        "message_zh": s.message_zh,
    }


async def save_projection(conn: Conn, a: AlarmRow, now_us: int, after_event: bool) -> None:
    """Write the folded state; ``after_event``: the event just appended in this session is the last."""
    s = a.state
    tier = Tier(max(1, min(4, s.tier or 1)))
    await conn.execute(
        """UPDATE alarm SET level = %s, tier = %s, tier_name = %s, state = %s, active = %s, acked = %s,
               latching = %s, shelved_until_us = %s, shelve_reason = %s, suppressed = %s,
               out_of_service = %s, bureau_step = %s, activations = %s, repeats = %s,
               activated_at_us = %s, cleared_at_us = %s, acked_at_us = %s, acked_by = %s,
               last_seen_us = %s, value = %s, limit_value = %s, message_en = %s, message_zh = %s,
               folded = %s,
               last_event_id = CASE WHEN %s THEN currval(pg_get_serial_sequence('alarm_event', 'id'))
                                    ELSE last_event_id END,
               updated_at = now()
           WHERE id = %s""",
        (
            s.level,
            int(tier),
            tier.colour,
            status(s, now_us).value,
            s.showing_active,
            s.acked,
            s.latching,
            s.shelved_until_us,
            s.shelve_reason or None,
            s.suppressed,
            s.out_of_service,
            s.bureau_step,
            s.activations,
            s.repeats,
            s.activated_at_us,
            s.cleared_at_us,
            s.acked_at_us,
            s.acked_by,
            a.last_seen_us,
            s.value,
            s.limit,
            s.message_en,
            s.message_zh,
            Jsonb(s.to_json()),
            after_event,
            a.id,
        ),
    )


@dataclass(frozen=True, slots=True)
class Queued:
    """A notification to put in the outbox."""

    dedup_key: str
    alarm_id: int | None
    purpose: str
    recipient: str
    notifier: str
    address: str
    hazard_source: str | None
    tier: int | None
    due_us: int
    message: dict[str, Any]
    status: str = "pending"


async def queue(conn: Conn, enterprise_id: str, rows: list[Queued]) -> int:
    """Insert outbox rows; a dedup key already there is left alone. Returns rows offered."""
    for q in rows:
        await conn.execute(
            """INSERT INTO alarm_notification (enterprise_id, alarm_id, dedup_key, purpose, recipient,
                   notifier, address, hazard_source, tier, due_us, next_try_us, status, message)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (dedup_key) DO NOTHING""",
            (*_outbox_row(enterprise_id, q), q.status, Jsonb(q.message)),
        )
    return len(rows)


def _outbox_row(enterprise_id: str, q: Queued) -> tuple[object, ...]:
    """The outbox columns both inserts share, enterprise_id .. next_try_us (first try when due)."""
    return (
        enterprise_id,
        q.alarm_id,
        q.dedup_key,
        q.purpose,
        q.recipient,
        q.notifier,
        q.address,
        q.hazard_source,
        q.tier,
        q.due_us,
        q.due_us,
    )


_RETURNING = "id, alarm_id, purpose, recipient, notifier, address, hazard_source, due_us, attempts, message"


async def queue_claimed(conn: Conn, enterprise_id: str, rows: list[Queued]) -> list[Cursor]:
    """Insert outbox rows due now as already claimed (``sending``, attempt 1).

    The recording transaction claims them itself, so the dispatcher sends them right
    after the commit without a claim round trip; a crash before they are marked sent
    leaves them ``sending``, which the next start turns back to ``pending`` (like any
    claimed row). Returns the cursors whose rows (`outgoing`) the caller fetches after
    its commit; a dedup key already there is left alone and returns no row.
    """
    out: list[Cursor] = []
    for q in rows:
        out.append(
            await conn.execute(
                f"""INSERT INTO alarm_notification (enterprise_id, alarm_id, dedup_key, purpose, recipient,
                       notifier, address, hazard_source, tier, due_us, next_try_us, status, attempts, message)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'sending', 1, %s)
                   ON CONFLICT (dedup_key) DO NOTHING
                   RETURNING {_RETURNING}""",
                (*_outbox_row(enterprise_id, q), Jsonb(q.message)),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A claimed outbox row."""

    id: int
    alarm_id: int | None
    purpose: str
    recipient: str
    notifier: str
    address: str
    hazard_source: str | None
    due_us: int
    attempts: int
    message: dict[str, Any]


async def claim_due(conn: Conn, enterprise_id: str, now_us: int, limit: int = 200) -> list[Outgoing]:
    """Mark due rows 'sending' (committed before anything is sent) and return them."""
    cur = await conn.execute(
        """UPDATE alarm_notification SET status = 'sending', attempts = attempts + 1
           WHERE id IN (SELECT id FROM alarm_notification
                        WHERE enterprise_id = %s AND status = 'pending' AND next_try_us <= %s
                        ORDER BY next_try_us, id LIMIT %s FOR UPDATE SKIP LOCKED)
           RETURNING id, alarm_id, purpose, recipient, notifier, address, hazard_source, due_us, attempts,
                     message""",
        (enterprise_id, now_us, limit),
    )
    return sorted((outgoing(r) for r in await cur.fetchall()), key=lambda o: o.id)


def outgoing(r: tuple[Any, ...]) -> Outgoing:
    """An outbox row as returned by `claim_due` / `queue_claimed`."""
    return Outgoing(
        int(r[0]),
        None if r[1] is None else int(r[1]),
        str(r[2]),
        str(r[3]),
        str(r[4]),
        str(r[5]),
        r[6],
        int(r[7]),
        int(r[8]),
        r[9] if isinstance(r[9], dict) else json.loads(r[9]),
    )


async def mark_sent(conn: Conn, ids: list[int], now_us: int) -> None:
    await conn.execute(
        "UPDATE alarm_notification SET status = 'sent', sent_at_us = %s, last_error = NULL "
        "WHERE id = ANY(%s)",
        (now_us, ids),
    )


async def mark_cancelled(conn: Conn, ids: list[int], why: str) -> None:
    await conn.execute(
        "UPDATE alarm_notification SET status = 'cancelled', last_error = %s WHERE id = ANY(%s)",
        (why, ids),
    )


async def mark_retry(conn: Conn, ids: list[int], next_try_us: int, error: str) -> None:
    await conn.execute(
        "UPDATE alarm_notification SET status = 'pending', next_try_us = %s, last_error = %s "
        "WHERE id = ANY(%s)",
        (next_try_us, error[:2000], ids),
    )


async def mark_dead(
    conn: Conn, rows: list[Outgoing], error: str, now_us: int, message: dict[str, Any]
) -> None:
    ids = [r.id for r in rows]
    await conn.execute(
        "UPDATE alarm_notification SET status = 'dead', last_error = %s WHERE id = ANY(%s)",
        (error[:2000], ids),
    )
    for r in rows:
        await conn.execute(
            """INSERT INTO alarm_dead_letter (notification_id, notifier, address, attempts, error, message,
                   at_us)
               VALUES (%s, %s, %s, %s, %s, %s, %s)""",
            (r.id, r.notifier, r.address, r.attempts, error[:2000], Jsonb(message), now_us),
        )


async def escalation_rows(conn: Conn, alarm_id: int, schedule: int) -> list[Planned]:
    """The escalation rows of one alarm's schedule, except cancelled ones."""
    cur = await conn.execute(
        """SELECT id, recipient, notifier, address, due_us, status FROM alarm_notification
           WHERE alarm_id = %s AND purpose = 'escalation' AND status <> 'cancelled'
             AND (message->>'schedule')::int = %s
           ORDER BY id""",
        (alarm_id, schedule),
    )
    return [
        Planned(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]))
        for r in await cur.fetchall()
    ]


async def cancel_pending(conn: Conn, alarm_id: int, why: str) -> int:
    """Cancel queued escalations and repeats of one alarm (acknowledged, shelved...)."""
    cur = await conn.execute(
        """UPDATE alarm_notification SET status = 'cancelled', last_error = %s
           WHERE alarm_id = %s AND status = 'pending' AND purpose IN ('escalation', 'repeat')
           RETURNING id""",
        (why, alarm_id),
    )
    return len(await cur.fetchall())


async def events(conn: Conn, alarm_id: int) -> list[tuple[Any, ...]]:
    """The audit trail of one alarm, oldest first: (id, at_us, kind, actor, comment, data)."""
    cur = await conn.execute(
        "SELECT id, at_us, kind, actor, comment, data FROM alarm_event WHERE alarm_id = %s ORDER BY id",
        (alarm_id,),
    )
    return await cur.fetchall()


async def resend_interrupted(conn: Conn, enterprise_id: str) -> int:
    """Rows claimed by a run that stopped before settling them go out again (same delivery id)."""
    cur = await conn.execute(
        "UPDATE alarm_notification SET status = 'pending' WHERE enterprise_id = %s AND status = 'sending'",
        (enterprise_id,),
    )
    return cur.rowcount


async def last_event_us(conn: Conn, enterprise_id: str) -> int:
    """The time of the plant's latest alarm event (0: none)."""
    cur = await conn.execute(
        "SELECT coalesce(max(e.at_us), 0) FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
        "WHERE a.enterprise_id = %s",
        (enterprise_id,),
    )
    r = await cur.fetchone()
    return int(str(r[0])) if r else 0


async def raised_since(conn: Conn, enterprise_id: str, after_us: int) -> list[int]:
    """Times of the annunciated activations after ``after_us`` (a lost link's consequences left out)."""
    cur = await conn.execute(
        "SELECT e.at_us FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
        "WHERE a.enterprise_id = %s AND e.kind = 'raised' AND NOT e.data ? 'cause' AND e.at_us > %s "
        "ORDER BY e.at_us",
        (enterprise_id, after_us),
    )
    return [int(str(x[0])) for x in await cur.fetchall()]


async def write_kpi_targets(conn: Conn) -> None:
    """The ISA-18.2 / EEMUA 191 targets the KPI views compare against (``alarm_kpi_target``)."""
    for key, value in (
        ("acceptable_per_hour", ALARM_TARGETS.acceptable_per_hour),
        ("max_manageable_per_hour", ALARM_TARGETS.max_manageable_per_hour),
        ("flood_count", ALARM_TARGETS.flood_count),
        ("flood_window_s", ALARM_TARGETS.flood_window_s),
        ("standing_after_s", ALARM_TARGETS.standing_after_s),
        ("chattering_count", ALARM_TARGETS.chattering_count),
        ("chattering_window_s", ALARM_TARGETS.chattering_window_s),
        ("priority_mix_low", ALARM_TARGETS.priority_mix[0]),
        ("priority_mix_high", ALARM_TARGETS.priority_mix[1]),
        ("priority_mix_critical", ALARM_TARGETS.priority_mix[2]),
    ):
        await conn.execute(
            "INSERT INTO alarm_kpi_target (key, value, source) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, source = EXCLUDED.source",
            (key, float(value), "hazmon.plant.standards.ALARM_TARGETS (ISA-18.2 / EEMUA 191)"),
        )


async def flood_started(conn: Conn, enterprise_id: str, at_us: int, alarms: int) -> None:
    await conn.execute(
        "INSERT INTO alarm_flood (enterprise_id, started_us, last_us, alarms) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (enterprise_id, at_us, at_us, alarms),
    )


async def flood_grew(conn: Conn, enterprise_id: str, started_us: int | None, at_us: int) -> None:
    await conn.execute(
        "UPDATE alarm_flood SET last_us = %s, alarms = alarms + 1 "
        "WHERE enterprise_id = %s AND started_us = %s",
        (at_us, enterprise_id, started_us),
    )
