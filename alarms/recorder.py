"""The recorder: findings and people's actions become alarm events, in one write transaction.

Each event is appended to ``alarm_event``, folded into the alarm's state, the
projection ``alarm`` saved, and every notification it schedules put in the outbox
``alarm_notification`` — all in the transaction of the batch, so nothing is sent
that was not recorded. Rows due at once go in already claimed and are handed to the
dispatcher after the commit (``handoff``), without a claim round trip.

Here too: sensor health (a faulty detector suppresses alarms not yet raised; an
active alarm records ``detector_lost`` and escalates on), a lost link's consequences
(`hazmon.alarms.causes`), floods (the first notice of a red or orange alarm is never
withheld: `hazmon.alarms.flood.withholds_first_notice`), repeats, shelve expiry and
tier changes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any

import psycopg
import structlog

from hazmon.alarms import repository as repo
from hazmon.alarms.book import NOT_BY_SENSOR, SENSOR_FAULTS, AlarmBook, real_now_us
from hazmon.alarms.causes import cause_of_link, link_sources
from hazmon.alarms.config import AlarmSettings
from hazmon.alarms.escalation import Recipient, replan, schedule
from hazmon.alarms.flood import FloodDetector, withholds_first_notice
from hazmon.alarms.lifecycle import (
    SYSTEM,
    Event,
    EventKind,
    apply,
    needs_escalation,
    suppressible_by_sensor,
    validate,
)
from hazmon.alarms.outbox import Routing, escalation_row, flood_summary_row, repeat_row
from hazmon.alarms.tiering import Tiering, tier_of_state
from hazmon.alarms.tiers import latching
from hazmon.alarms.trace import Tracer
from hazmon.plant.findings import Condition, Finding
from hazmon.plant.model import Plant
from hazmon.plant.standards import Tier
from hazmon.store import connect_async

__all__ = ["EventHook", "Recorder"]

log = structlog.get_logger("hazmon.alarms")

EventHook = Callable[
    [psycopg.AsyncConnection[tuple[Any, ...]], dict[str, Any], dict[str, Any]], Awaitable[None]
]
"""Told of each recorded event on the recording connection, inside its transaction:
``(conn, alarm columns, event columns)`` (`repository.alarm_columns`, `repository.event_columns`).
An exception it raises rolls the event back (it is retried with its batch)."""

_UPDATE_EVENT_EVERY_US = (
    60_000_000  # a repeating finding is recorded at most once a minute (or on a tier change)
)


class Recorder:
    """Records the alarms of one plant on its own connection, one transaction at a time.

    Args:
        plant: the plant.
        settings: the ``alarms:`` section.
        dsn: PostgreSQL DSN.
        book: the alarms in memory (shared with the dispatcher).
        routing: who gets what.
        tiering: the hazard sources' grades.
        counters: the service's counters.
        handoff: where committed rows claimed by their own transaction go (the dispatcher's).
        on_event: told of every event recorded, in the transaction that records it
            (``on_event(conn, alarm columns, event columns)``, see `EventHook`); what it
            writes on ``conn`` commits or rolls back with the event. None: nothing told.
    """

    def __init__(
        self,
        plant: Plant,
        settings: AlarmSettings,
        dsn: str,
        *,
        book: AlarmBook,
        routing: Routing,
        tiering: Tiering,
        counters: MutableMapping[str, int],
        handoff: list[repo.Outgoing],
        on_event: EventHook | None = None,
    ) -> None:
        self.plant = plant
        self.settings = settings
        self.dsn = dsn
        self.enterprise = plant.enterprise.id
        self.region = plant.enterprise.region.code
        self.book = book
        self.routing = routing
        self.tiering = tiering
        self.counters = counters
        self.handoff = handoff
        self.on_event = on_event
        self.tracer: Tracer | None = None
        self._link_of = link_sources(plant)  # sensor tag -> its source (causes.py: one cause, one alarm)
        self._flood = FloodDetector(settings.flood_count, settings.flood_window_s)
        self._w: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._lock: asyncio.Lock | None = None
        self._repeat_done: dict[tuple[int, int], int] = {}
        self._dirty = False
        self._claimed: list[repo.Cursor] = []  # rows queued as claimed in the open transaction

    # ------------------------------------------------------------------ life

    async def connect(self) -> None:
        """Open the writer connection (on the loop that will use it; a new lock for that loop)."""
        # asyncio primitives belong to the loop that first waits on them: a new one per start
        self._lock = asyncio.Lock()
        self._w = await self._connect()

    async def _connect(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """The connection alarm events are recorded on: durable commits unless configured otherwise."""
        c = await connect_async(self.dsn, autocommit=True)
        if not self.settings.synchronous_commit:
            await c.execute("SET synchronous_commit = off")
        return c

    async def load(self) -> tuple[int, int]:
        """Load the alarms, resend what a stopped run left claimed, restore the flood window.

        Returns:
            (alarms loaded, notifications to send again).
        """
        rows = await repo.load_alarms(self._conn, self.enterprise)
        self.book.load(rows)
        async with self._conn.transaction():
            resend = await repo.resend_interrupted(self._conn, self.enterprise)
            last_us = await repo.last_event_us(self._conn, self.enterprise)
            window = round(self.settings.flood_window_s * 1e6)
            history = await repo.raised_since(self._conn, self.enterprise, last_us - window)
            await repo.write_kpi_targets(self._conn)
        self._flood = FloodDetector(self.settings.flood_count, self.settings.flood_window_s, history)
        self.book.advance(last_us)
        return len(rows), resend

    async def close(self) -> None:
        if self._w is not None:
            await self._w.close()
        self._w = None

    @property
    def _conn(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        assert self._w is not None, "AlarmService.start() first"
        return self._w

    @property
    def lock(self) -> asyncio.Lock:
        assert self._lock is not None, "AlarmService.start() first"
        return self._lock

    # ----------------------------------------------------------- transaction

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[None]:
        """One write transaction (caller holds the write lock).

        If it fails, the in-memory alarms may be ahead of the database: they are
        reloaded from the database (the truth) before the next write, so a retried
        batch of findings is recorded exactly as if it came the first time.
        """
        if self._dirty:
            await self._resync()
        self._claimed.clear()
        try:
            # pipeline mode: statements go out without waiting for each answer (one round
            # trip per new alarm instead of five per finding); errors surface at commit
            async with self._conn.pipeline(), self._conn.transaction():
                yield
        except BaseException:
            self._claimed.clear()
            self._dirty = True
            with contextlib.suppress(Exception):
                await self._resync()
            raise
        claimed, self._claimed = self._claimed, []
        for cur in claimed:  # committed: hand them to the dispatcher
            self.handoff.extend(repo.outgoing(r) for r in await cur.fetchall())

    async def _resync(self) -> None:
        w = self._w
        if w is None or w.closed or w.broken:
            if w is not None:
                with contextlib.suppress(Exception):
                    await w.close()
            self._w = None
            self._w = await self._connect()
        rows = await repo.load_alarms(self._conn, self.enterprise)
        self.book.load(rows)
        self._dirty = False
        log.info("alarm state reloaded from the database", alarms=len(rows))

    # ------------------------------------------------------------- findings

    async def handle(self, findings: Sequence[Finding], now_us: int) -> None:
        """Record a batch of findings in one transaction (the caller wakes the dispatcher)."""
        handed = real_now_us()
        tracer = self.tracer
        async with self.lock, self._tx():
            locked = real_now_us()
            if tracer is not None:
                tracer.batch_started()
            for f in findings:
                await self._finding(f, now_us)
            issued = real_now_us()
        self.counters["findings"] += len(findings)
        if tracer is not None:
            tracer.batch_recorded(handed, locked, issued, real_now_us())

    async def _alarm_for(self, f: Finding, tier: Tier) -> repo.AlarmRow:
        key = (f.hazard_source, f.sensor, f.condition.value)
        a = self.book.by_key.get(key)
        if a is None:
            a = await repo.insert_alarm(
                self._conn,
                self.enterprise,
                region_code=self.region,
                key=key,
                position=self.settings.position_of(f.hazard_source),
                level=f.level.value,
                tier=tier,
                now_us=f.ts_us,
            )
            self.book.add(a)
        return a

    async def _finding(self, f: Finding, now_us: int) -> None:
        await self._finding_alarm(f, now_us)
        if f.condition is Condition.LINK_LOST and f.sensor:
            await self._link_changed(f.sensor, f.active, f.ts_us, now_us)

    def _cause(self, f: Finding) -> str | None:
        """What a stale sensor is the consequence of: its source's link being down (causes.py)."""
        source = self._link_of.get(f.sensor or "") if f.condition is Condition.STALE else None
        link = self.book.by_key.get((self.enterprise, source, Condition.LINK_LOST.value)) if source else None
        return cause_of_link(source) if source and link is not None and link.state.active else None

    async def _link_changed(self, source: str, lost: bool, at: int, now_us: int) -> None:
        """A lost link takes its sensors' stale alarms as its consequences; restored, clears them."""
        cause = cause_of_link(source)
        for tag in (t for t, src in self._link_of.items() if src == source):
            for a in list(self.book.by_sensor.get(tag, ())):
                if a.condition != Condition.STALE.value:
                    continue
                if lost and a.state.showing_active and a.state.cause != cause:
                    why = f"consequence of the lost link to {source}: not escalated, cleared with it"
                    await self._record(
                        a, Event(EventKind.CONSEQUENCE, at, SYSTEM, why, {"cause": cause}), now_us
                    )
                elif not lost and a.state.cause == cause and a.state.active:
                    why = f"cleared with its cause: link to {source} restored"
                    await self._record(a, Event(EventKind.CLEARED, at, SYSTEM, why), now_us)

    async def _finding_alarm(self, f: Finding, now_us: int) -> None:
        tier = self.tiering.tier_of(f)
        a = await self._alarm_for(f, tier)
        at = f.ts_us
        a.last_seen_us = max(a.last_seen_us, at)
        if f.sensor and f.condition in SENSOR_FAULTS:
            await self._sensor_fault(f.sensor, f.condition.value, f.active, at)
        if f.active:
            data = {
                "level": f.level.value,
                "tier": int(tier),
                "latching": latching(f.condition),
                "value": f.value,
                "limit": f.limit,
                "message_en": f.message_en,
                "message_zh": f.message_zh,
            }
            if a.state.active:
                if int(tier) != a.state.tier:  # its source's grade changed before the tick saw it
                    await self._retier(a, tier, at, now_us)
                if int(tier) == a.state.tier and at - a.last_update_event_us < _UPDATE_EVENT_EVERY_US:
                    await repo.save_projection(self._conn, a, now_us, after_event=False)
                    return
                a.last_update_event_us = at
                await self._record(a, Event(EventKind.UPDATED, at, data=data), now_us)
                return
            if (
                f.sensor
                and self.book.faulty.get(f.sensor)
                and f.condition not in NOT_BY_SENSOR
                and not a.state.suppressed
                and suppressible_by_sensor(a.state)
            ):
                await self._record(a, Event(EventKind.SUPPRESSED, at, comment="sensor faulty"), now_us)
            a.last_update_event_us = at
            cause = self._cause(f)  # one cause, one alarm: shown, not annunciated
            await self._record(
                a, Event(EventKind.RAISED, at, data={**data, "cause": cause} if cause else data), now_us
            )
        elif a.state.active:
            await self._record(a, Event(EventKind.CLEARED, at, data={"value": f.value}), now_us)

    async def _sensor_fault(self, tag: str, condition: str, active: bool, at: int) -> None:
        faults = self.book.faulty[tag]
        was = bool(faults)
        if active:
            faults.add(condition)
        else:
            faults.discard(condition)
        now_faulty = bool(faults)
        if was == now_faulty:
            return
        for a in list(self.book.by_sensor.get(tag, ())):
            if a.condition in NOT_BY_SENSOR:
                continue
            s = a.state
            if now_faulty and suppressible_by_sensor(s) and not s.suppressed:
                await self._record(a, Event(EventKind.SUPPRESSED, at, comment=f"sensor {condition}"), at)
            elif now_faulty and not s.suppressed and not s.detector_fault:
                # already raised: never silenced by its own detector dying; it escalates on
                why = f"detector {tag} no longer reporting ({condition}); the alarm stays active"
                await self._record(
                    a, Event(EventKind.DETECTOR_LOST, at, SYSTEM, why, {"fault": condition}), at
                )
            elif not now_faulty and s.suppressed:
                await self._record(a, Event(EventKind.UNSUPPRESSED, at, comment="sensor healthy again"), at)
            if not now_faulty and a.state.detector_fault:
                await self._record(
                    a, Event(EventKind.DETECTOR_BACK, at, comment=f"detector {tag} reports again"), at
                )

    # --------------------------------------------------------------- record

    async def _record(self, a: repo.AlarmRow, e: Event, now_us: int) -> None:
        """Append one event, fold it, save the projection and queue what follows (caller's transaction)."""
        before = a.state
        a.state = apply(before, e)
        hook = self.on_event
        event_id = await repo.append_event(self._conn, a.id, e, returning=hook is not None)
        self.counters["events"] += 1
        await repo.save_projection(self._conn, a, max(now_us, e.at_us), after_event=True)
        if hook is not None and event_id is not None:  # in this transaction: recorded and told, or neither
            t = max(now_us, e.at_us)
            await hook(self._conn, repo.alarm_columns(a, t), repo.event_columns(event_id, a.id, e))
        if e.kind is EventKind.RAISED and a.state.activations > before.activations:
            if self.tracer is not None:  # before the commit: the dispatcher may claim before we resume
                self.tracer.raised(a, e.at_us)
            await self._activation(a, e.at_us)
        elif a.state.schedule != before.schedule and a.state.schedule_from_us is not None:
            await self._queue_schedule(a, flooded=False)
        if before.schedule_from_us is not None and a.state.schedule_from_us is None:
            n = await repo.cancel_pending(self._conn, a.id, f"{e.kind.value} by {e.actor}")
            self.counters["cancelled"] += n

    async def _activation(self, a: repo.AlarmRow, at_us: int) -> None:
        if a.state.cause:  # a consequence is not annunciated: no flood count, nothing queued
            return
        d = self._flood.activation(at_us)
        if d.started:
            await repo.flood_started(self._conn, self.enterprise, at_us, d.count)
            await self._queue_flood_summary(at_us)
            log.warning("alarm flood", enterprise=self.enterprise, alarms_in_window=d.count)
        elif d.in_flood:
            await repo.flood_grew(self._conn, self.enterprise, d.flood_start_us, at_us)
        if a.state.schedule_from_us is not None:  # red / orange: their first notice goes out in a flood too
            tier = tier_of_state(a.state.tier)
            await self._queue_schedule(a, flooded=withholds_first_notice(d, tier))

    async def _queue_schedule(self, a: repo.AlarmRow, flooded: bool) -> None:
        s = a.state
        assert s.schedule_from_us is not None
        tier = tier_of_state(s.tier)
        rows: list[repo.Queued] = []
        for sch in schedule(self.settings.escalation, tier, s.schedule_from_us):
            for route in self.routing.routes(sch.recipient, a.hazard_source):
                status = "flooded" if flooded and sch.step == 0 else "pending"
                rows.append(escalation_row(a, tier, sch, route, status=status))
        await self._queue(rows)

    async def _queue(self, rows: list[repo.Queued]) -> None:
        """Put rows in the outbox (caller's transaction); those due now go in already claimed."""
        now = self.book.now_us
        due = [q for q in rows if q.status == "pending" and q.due_us <= now]
        later = [q for q in rows if not (q.status == "pending" and q.due_us <= now)]
        if due:
            self._claimed.extend(await repo.queue_claimed(self._conn, self.enterprise, due))
        if later:
            await repo.queue(self._conn, self.enterprise, later)
        self.counters["queued"] += len(rows)

    async def _queue_flood_summary(self, start_us: int) -> None:
        due = start_us + round(self.settings.flood_summary_delay_s * 1e6)
        rows = [
            flood_summary_row(self.enterprise, start_us, due, route)
            for route in self.routing.routes(Recipient.CONTROL_ROOM, None)
        ]
        await self._queue(rows)

    # --------------------------------------------------------------- people

    async def act(
        self,
        alarm_id: int,
        kind: EventKind,
        actor: str,
        comment: str,
        data: Mapping[str, Any] | None,
        *,
        now: int,
    ) -> repo.AlarmRow:
        """A person's action, validated against the alarm's state (caller wakes the dispatcher).

        Raises:
            KeyError: no such alarm.
            TransitionError: not allowed in the alarm's state.
        """
        async with self.lock:
            a = self.book.by_id.get(alarm_id)
            if a is None:
                raise KeyError(alarm_id)
            payload = dict(data or {})
            if kind is EventKind.COMMENT:
                payload["comment"] = comment
            validate(a.state, kind, now, payload)
            payload.pop("comment", None)
            async with self._tx():
                await self._record(a, Event(kind, now, actor, comment, payload or None), now)
        return a

    async def events(self, alarm_id: int) -> list[tuple[Any, ...]]:
        """The audit trail of one alarm (rows of `repository.events`)."""
        async with self.lock:
            return await repo.events(self._conn, alarm_id)

    # ----------------------------------------------------------------- tick

    async def tick(self, now_us: int, real_now: Callable[[], int] = real_now_us) -> None:
        """Time passes: assessment checks and tier changes, shelve expiry, repeats (nothing sent here)."""
        extra: list[Finding] = []
        if self.tiering.due(now_us, self.settings.assessment_check_s):
            extra = await self.tiering.refresh(now_us, self.book.now_us, real_now())
        if (
            extra
            or self.tiering.regraded
            or any(self._tick_work(a, now_us) for a in self.book.by_key.values())
        ):
            # only then the write lock and a transaction: a tick with nothing to record must
            # not hold up the findings of a new alarm
            async with self.lock, self._tx():
                for f in extra:
                    known = self.book.by_key.get((f.hazard_source, None, f.condition.value))
                    if f.active or (known is not None and known.state.active):
                        await self._finding(f, now_us)
                for a in list(self.book.by_key.values()):
                    s = a.state
                    if s.shelved_until_us is not None and s.shelved_until_us <= now_us:
                        await self._record(
                            a,
                            Event(EventKind.UNSHELVED, s.shelved_until_us, comment="shelving expired"),
                            now_us,
                        )
                    await self._repeat(a, now_us)
                for a, tier in self.tiering.retiers(self.book.by_key.values()):
                    await self._retier(a, tier, now_us, now_us)
            self.tiering.regraded.clear()

    async def _retier(self, a: repo.AlarmRow, tier: Tier, at_us: int, now_us: int) -> None:
        """Record the tier change (audit event) and apply the new tier's escalation.

        The schedule keeps its start (the activation, or the end of shelving/suppression):
        recipients told already are not told again, steps of the new tier already due are
        queued due now, pending steps of the old tier not in the new one are cancelled.
        """
        old = tier_of_state(a.state.tier)
        comment, data = self.tiering.change(a, tier)
        await self._record(a, Event(EventKind.TIER_CHANGED, at_us, SYSTEM, comment, data), now_us)
        s = a.state
        if s.schedule_from_us is None or not needs_escalation(s, max(now_us, at_us)):
            return  # acknowledged, shelved, suppressed...: the tier only
        existing = await repo.escalation_rows(self._conn, a.id, s.schedule)
        plan = replan(
            self.settings.escalation,
            tier,
            s.schedule_from_us,
            lambda r: self.routing.routes(r, a.hazard_source),
            existing,
        )
        if plan.cancel:
            await repo.mark_cancelled(self._conn, plan.cancel, f"tier changed to {tier.colour}")
            self.counters["cancelled"] += len(plan.cancel)
        rows = [escalation_row(a, tier, sch, route, tier_changed_us=at_us) for sch, route in plan.queue]
        await self._queue(rows)
        log.info(
            "alarm tier changed",
            alarm_id=a.id,
            tier=tier.colour,
            from_tier=old.colour,
            queued=len(rows),
            cancelled=len(plan.cancel),
            not_again=plan.skipped,
        )

    def _tick_work(self, a: repo.AlarmRow, now_us: int) -> bool:
        """Whether the tick at ``now_us`` records something for ``a`` (shelving expired, a repeat due)."""
        s = a.state
        if s.shelved_until_us is not None and s.shelved_until_us <= now_us:
            return True
        return self._repeat_due(a, now_us) is not None

    def _repeat_due(self, a: repo.AlarmRow, now_us: int) -> int | None:
        """The number of the repeat due now for ``a``, None when none is."""
        s = a.state
        every = round(self.settings.repeat_s * 1e6)
        if every <= 0 or s.schedule_from_us is None or not needs_escalation(s, now_us):
            return None
        n = (now_us - s.schedule_from_us) // every
        if n < 1 or self._repeat_done.get((a.id, s.schedule), 0) >= n:
            return None
        return n

    async def _repeat(self, a: repo.AlarmRow, now_us: int) -> None:
        n = self._repeat_due(a, now_us)
        if n is None:
            return
        s = a.state
        every = round(self.settings.repeat_s * 1e6)
        self._repeat_done[(a.id, s.schedule)] = n
        steps = self.settings.escalation.get(tier_of_state(s.tier), ())
        first = steps[0].recipients if steps else (Recipient.CONTROL_ROOM,)
        rows = [
            repeat_row(a, n, every, r, route)
            for r in first
            for route in self.routing.routes(r, a.hazard_source)
        ]
        await self._queue(rows)
