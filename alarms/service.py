"""The alarm service: findings in, recorded alarm events, escalations, notifications out.

Pipeline, in one place (`handle` / `tick` → `_record` → outbox → `_dispatch`):

1. a finding (or an API action) becomes an `Event`, checked by `lifecycle.validate`
   for people's actions;
2. the event is appended to ``alarm_event`` and the folded state written to
   ``alarm`` in the same transaction, together with every notification it
   schedules (outbox ``alarm_notification``, one row per step, recipient,
   notifier and address, unique by a dedup key);
3. `_dispatch` claims due rows (``sending``, committed; rows due at once are
   inserted already claimed by the transaction of step 2 and handed over in
   memory), drops those the alarm no longer needs (acknowledged, shelved, new
   schedule), groups the rest per notifier, address and hazard source (a row sent
   before only with rows sent before, so a resend keeps its delivery id), sends
   them, and marks them ``sent`` (or retries with backoff, or records a dead
   letter) — the one retry stage.

With ``settings.own_thread`` (the default) all of this runs on an event loop of
the service's own, in its own thread: the public coroutines hand their work there
(`_run`), so a caller's loop busy with ingest does not delay alarms.

When a hazard source's grade changes (`_refresh_grades`, then the next `tick`),
its active alarms take their new tier: a ``tier_changed`` event and the new tier's
escalation re-planned from the schedule's start (`escalation.replan`).

Nothing is sent before it is recorded, so ``kill -9`` at any point loses no alarm
and no pending escalation. A crash between a send and its ``sent`` mark resends
that one message with the same delivery id (receivers drop duplicates by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import psycopg
import structlog
from aiohttp import web

from hazmon.alarms import repository as repo
from hazmon.alarms.api import build_routes
from hazmon.alarms.causes import cause_of_link, link_sources
from hazmon.alarms.config import AlarmSettings, NotifierConfig
from hazmon.alarms.escalation import Recipient, Route, Scheduled, contacts, replan, schedule
from hazmon.alarms.flood import FloodDetector, withholds_first_notice
from hazmon.alarms.lifecycle import (
    SYSTEM,
    AlarmStatus,
    Event,
    EventKind,
    apply,
    needs_escalation,
    status,
    suppressible_by_sensor,
    validate,
)
from hazmon.alarms.messages import AlarmInfo, render
from hazmon.alarms.notifier import Message, Notifier, next_attempt
from hazmon.alarms.notify_email import EmailNotifier, EmailSettings
from hazmon.alarms.notify_mqtt import MqttNotifier, MqttSettings
from hazmon.alarms.notify_sms import SmsNotifier, SmsSettings
from hazmon.alarms.notify_webhook import WebhookNotifier, WebhookSettings
from hazmon.alarms.tiers import SourceGrade, latching, source_grades, tier_for
from hazmon.plant.aio import cancel_and_wait
from hazmon.plant.findings import Condition, Finding
from hazmon.plant.model import Plant
from hazmon.plant.standards import ALARM_TARGETS, Grade, Level, Tier
from hazmon.store import connect, connect_async, latest_assessments

__all__ = ["AlarmService", "build_notifier"]

log = structlog.get_logger("hazmon.alarms")

SENSOR_FAULTS: frozenset[Condition] = frozenset(
    {Condition.STUCK, Condition.OUT_OF_RANGE, Condition.BAD_QUALITY, Condition.STALE}
)
"""While one of these is active on a sensor, its process alarms not raised yet are suppressed
(an active one escalates on, saying its detector is no longer reporting)."""
_NOT_BY_SENSOR = SENSOR_FAULTS | {Condition.LINK_LOST}  # never suppressed by a sensor's health

_UPDATE_EVENT_EVERY_US = (
    60_000_000  # a repeating finding is recorded at most once a minute (or on a tier change)
)


_T = TypeVar("_T")

_TRACE_KEEP = 10_000  # latency traces kept in memory (settings.trace)


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


def _real_now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True, slots=True)
class Counters:
    """Loss and delivery counters (exported by `AlarmService.metrics`)."""

    findings: int = 0
    events: int = 0
    queued: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    no_address: int = 0
    refused_api_calls: int = 0


class AlarmService:
    """Alarms of one plant, backed by PostgreSQL.

    Args:
        plant: the plant (hazard sources, responsible persons, bureaus, region).
        settings: the parsed ``alarms:`` section (None: defaults, no notifiers, no tokens).
        dsn: PostgreSQL DSN (migrated, plant registry loaded).
        notifiers: name -> notifier, to replace the ones built from settings (tests).
        clock: now in µs for API actions, read when the action arrives (the daemon gives
            its wall clock); default: the latest ``now_us`` given to `handle`/`tick`
            (simulated time), or the wall clock before the first.
    """

    def __init__(
        self,
        plant: Plant,
        settings: AlarmSettings | None,
        dsn: str,
        *,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.plant = plant
        settings = settings if settings is not None else AlarmSettings()
        self.settings = settings
        self.dsn = dsn
        self.enterprise = plant.enterprise.id
        self.region = plant.enterprise.region.code
        self._clock = clock
        self.notifiers: dict[str, Notifier] = (
            dict(notifiers)
            if notifiers is not None
            else {c.name: build_notifier(c, plant) for c in settings.notifiers}
        )
        self.tokens = tuple(
            replace(t, region=self.region) if t.role == "bureau" and t.region is None else t
            for t in settings.tokens
        )
        self._serves: dict[str, tuple[Recipient, ...]] = {c.name: c.recipients for c in settings.notifiers}
        if notifiers is not None:
            for name in notifiers:
                self._serves.setdefault(name, tuple(Recipient))
        self._alarms: dict[tuple[str, str | None, str], repo.AlarmRow] = {}
        self._by_id: dict[int, repo.AlarmRow] = {}
        # sensor tag -> its alarms: a sensor turning faulty suppresses its process alarms without
        # a scan of every alarm (10,000 sensors going stale at once made that quadratic)
        self._by_sensor: dict[str, list[repo.AlarmRow]] = defaultdict(list)
        self._faulty: dict[str, set[str]] = defaultdict(set)
        self._link_of = link_sources(plant)  # sensor tag -> its source (causes.py: one cause, one alarm)
        self._grades: dict[str, SourceGrade] = {}
        self._regraded: dict[str, str | None] = {}  # hazard source -> why its grade was what it was
        self._grades_checked_us: int | None = None
        self._flood = FloodDetector(settings.flood_count, settings.flood_window_s)
        self._now_us = 0
        self._w: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._d: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._wlock = asyncio.Lock()
        self._dlock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # settings.own_thread: the service's loop
        self._thread: threading.Thread | None = None
        self._repeat_done: dict[tuple[int, int], int] = {}
        self.counters: dict[str, int] = dict.fromkeys(Counters.__dataclass_fields__, 0)
        self.started = False
        self._dirty = False
        # seconds from an alarm's finding to each of its first-step notifications, when sent (the
        # daemon's hazmon_alarm_to_notification_seconds); called by the dispatcher, on the
        # service's own thread with settings.own_thread
        self.on_first_notice: Callable[[float], None] | None = None
        # latency trace (settings.trace): stages of each alarm until its first notification is sent
        self.traces: deque[dict[str, Any]] = deque(maxlen=_TRACE_KEEP)
        self._tracing: dict[int, dict[str, Any]] = {}
        self._raised: list[tuple[repo.AlarmRow, int]] = []
        self._claimed: list[repo.Cursor] = []  # rows queued as claimed in the open transaction
        self._ready: list[repo.Outgoing] = []  # ...committed: the dispatcher sends them without a claim

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        """Connect, load the alarms and the pending outbox, and start the dispatcher.

        With ``settings.own_thread`` this starts the service's thread and event loop
        first; every coroutine of the service then runs there (`_run`).
        """
        if self.started:
            return
        if self.settings.own_thread and self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="hazmon-alarms", daemon=True)
            thread.start()
            self._loop, self._thread = loop, thread
        try:
            await self._run(self._start())
        except BaseException:
            await self._stop_thread()
            raise

    async def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run one of the service's coroutines on its own loop (or here, without own_thread)."""
        loop = self._loop
        if loop is None or loop is asyncio.get_running_loop():
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def _stop_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()

    async def _start(self) -> None:
        # asyncio primitives belong to the loop that first waits on them: new ones per start
        self._wlock, self._dlock, self._wake = asyncio.Lock(), asyncio.Lock(), asyncio.Event()
        self._w = await self._connect_writer()
        self._d = await self._connect_dispatcher()
        rows = await repo.load_alarms(self._w, self.enterprise)
        for a in rows:
            self._alarms[a.key] = a
            self._by_id[a.id] = a
            if a.sensor:
                self._by_sensor[a.sensor].append(a)
        async with self._w.transaction():
            cur = await self._w.execute(
                "UPDATE alarm_notification SET status = 'pending' "
                "WHERE enterprise_id = %s AND status = 'sending'",
                (self.enterprise,),
            )
            resend = cur.rowcount
            cur = await self._w.execute(
                "SELECT coalesce(max(e.at_us), 0) FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
                "WHERE a.enterprise_id = %s",
                (self.enterprise,),
            )
            r = await cur.fetchone()
            last_us = int(str(r[0])) if r else 0
            window = round(self.settings.flood_window_s * 1e6)
            cur = await self._w.execute(
                "SELECT e.at_us FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
                "WHERE a.enterprise_id = %s AND e.kind = 'raised' AND NOT e.data ? 'cause' AND e.at_us > %s "
                "ORDER BY e.at_us",
                (self.enterprise, last_us - window),
            )
            history = [int(str(x[0])) for x in await cur.fetchall()]
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
                await self._w.execute(
                    "INSERT INTO alarm_kpi_target (key, value, source) VALUES (%s, %s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, source = EXCLUDED.source",
                    (key, float(value), "hazmon.plant.standards.ALARM_TARGETS (ISA-18.2 / EEMUA 191)"),
                )
        self._flood = FloodDetector(self.settings.flood_count, self.settings.flood_window_s, history)
        for a in rows:  # sensor faults still active suppress that sensor's alarms
            if a.sensor and a.condition in SENSOR_FAULTS and a.state.active:
                self._faulty[a.sensor].add(a.condition)
        self._now_us = max(self._now_us, last_us)
        await self._refresh_grades(None)
        self._task = asyncio.create_task(self._dispatch_loop(), name="hazmon-alarms-dispatch")
        self.started = True
        log.info(
            "alarm service started",
            alarms=len(rows),
            resend_after_restart=resend,
            notifiers=sorted(self.notifiers),
        )

    async def _connect_writer(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """The connection alarm events are recorded on: durable commits unless configured otherwise."""
        c = await connect_async(self.dsn, autocommit=True)
        if not self.settings.synchronous_commit:
            await c.execute("SET synchronous_commit = off")
        return c

    async def _connect_dispatcher(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        """The outbox bookkeeping connection: asynchronous commit, on purpose.

        Its writes (claimed, sent, retry at) only decide whether a message is sent
        again: if a database crash loses the last of them, the message goes out once
        more with the same delivery id, which receivers drop. It saves two WAL flushes
        per notification on the alarm's critical path. Dead letters and notified
        events written here are audit records of the same kind.
        """
        c = await connect_async(self.dsn, autocommit=True)
        await c.execute("SET synchronous_commit = off")
        return c

    async def close(self) -> None:
        """Stop the dispatcher, close notifiers and connections (and the service's thread)."""
        try:
            await self._run(self._close())
        finally:
            await self._stop_thread()

    async def _close(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        for n in self.notifiers.values():
            await n.close()
        for c in (self._w, self._d):
            if c is not None:
                await c.close()
        self._w = self._d = None
        self.started = False

    def now_us(self) -> int:
        if self._clock is not None:
            return self._clock()
        return self._now_us or _real_now_us()

    def _advance(self, now_us: int) -> None:
        self._now_us = max(self._now_us, now_us)

    # ------------------------------------------------------------ assessment

    async def _refresh_grades(self, now_us: int | None) -> list[Finding]:
        """Re-read the latest assessments; findings for overdue assessment / filing."""
        day = (
            datetime.fromtimestamp(now_us / 1e6, UTC).date()
            if now_us
            else (datetime.fromtimestamp(self._now_us / 1e6, UTC).date() if self._now_us else date.today())
        )

        def read() -> dict[str, Any]:
            with connect(self.dsn) as c:
                return dict(latest_assessments(c, self.enterprise, day))

        records = await asyncio.to_thread(read)
        old = self._grades
        self._grades = source_grades(self.plant, records, day)
        for hs_id, g in self._grades.items():
            was = old.get(hs_id)
            if was is None or (was.grade, was.reason) != (g.grade, g.reason):
                # its active alarms are checked for a new tier by the next tick (under the lock)
                self._regraded.setdefault(hs_id, was.reason if was is not None else None)
        self._grades_checked_us = now_us
        out: list[Finding] = []
        ts = now_us or self._now_us or _real_now_us()
        for hs_id, g in self._grades.items():
            st = g.status
            due = st.next_due.isoformat()
            filing = st.filing_deadline
            out.append(
                Finding(
                    hs_id,
                    None,
                    Condition.ASSESSMENT_OVERDUE,
                    Level.FAULT,
                    not st.valid,
                    ts,
                    message_en=f"Assessment of {hs_id}: {g.reason}; reassessment due {due}",
                    message_zh=f"{hs_id} 重大危险源评估逾期或缺失（{st.due_reason_zh}），应于 {due} 前评估",
                )
            )
            out.append(
                Finding(
                    hs_id,
                    None,
                    Condition.FILING_OVERDUE,
                    Level.FAULT,
                    st.filing_overdue,
                    ts,
                    message_en=f"Assessment of {hs_id} not filed with the county bureau by {filing}",
                    message_zh=f"{hs_id} 评估报告未在 {filing} 前备案",
                )
            )
        return out

    def grade_of(self, hazard_source: str) -> Grade:
        g = self._grades.get(hazard_source)
        if g is not None:
            return g.grade
        if self._grades:  # not a source of this plant (system alarms): the most severe one
            return min(x.grade for x in self._grades.values())
        return Grade.ONE

    def tier_of(self, f: Finding) -> Tier:
        return tier_for(f.level, f.condition, self.grade_of(f.hazard_source), self.plant.tiers)

    # ------------------------------------------------------------- findings

    async def handle(self, findings: Sequence[Finding], now_us: int) -> None:
        """Record findings (a repeat updates its alarm) and queue what they require."""
        if not self.started:
            await self.start()
        await self._run(self._handle(list(findings), now_us))

    async def _handle(self, findings: Sequence[Finding], now_us: int) -> None:
        self._advance(now_us)
        if not findings:
            return
        handed = _real_now_us()
        async with self._wlock, self._tx():
            locked = _real_now_us()
            self._raised.clear()
            for f in findings:
                await self._finding(f, now_us)
            issued = _real_now_us()
        self.counters["findings"] += len(findings)
        self._wake.set()
        if self.settings.trace:
            self._trace_recorded(handed, locked, issued, _real_now_us())

    def _trace_recorded(self, handed_us: int, locked_us: int, issued_us: int, committed_us: int) -> None:
        """Stages of each alarm raised by the batch just committed."""
        for a, _ in self._raised:
            t = self._tracing.get(a.id)
            if t is not None:
                t.update(
                    handed_us=handed_us, locked_us=locked_us, issued_us=issued_us, committed_us=committed_us
                )
        self._raised.clear()
        while len(self._tracing) > _TRACE_KEEP:  # alarms that never notify must not pile up
            del self._tracing[next(iter(self._tracing))]

    def _trace_stage(self, rows: Sequence[repo.Outgoing], stage: str, at_us: int) -> None:
        for o in rows:
            t = self._tracing.get(o.alarm_id) if o.alarm_id is not None else None
            if t is not None and o.purpose == "escalation" and o.message.get("step") == 0:
                t.setdefault(stage, at_us)

    async def _alarm_for(self, f: Finding, tier: Tier) -> repo.AlarmRow:
        key = (f.hazard_source, f.sensor, f.condition.value)
        a = self._alarms.get(key)
        if a is None:
            assert self._w is not None
            a = await repo.insert_alarm(
                self._w,
                self.enterprise,
                region_code=self.region,
                key=key,
                position=self.settings.position_of(f.hazard_source),
                level=f.level.value,
                tier=tier,
                now_us=f.ts_us,
            )
            self._alarms[key] = a
            self._by_id[a.id] = a
            if a.sensor:
                self._by_sensor[a.sensor].append(a)
        return a

    async def _finding(self, f: Finding, now_us: int) -> None:
        await self._finding_alarm(f, now_us)
        if f.condition is Condition.LINK_LOST and f.sensor:
            await self._link_changed(f.sensor, f.active, f.ts_us, now_us)

    def _cause(self, f: Finding) -> str | None:
        """What a stale sensor is the consequence of: its source's link being down (causes.py)."""
        source = self._link_of.get(f.sensor or "") if f.condition is Condition.STALE else None
        link = self._alarms.get((self.enterprise, source, Condition.LINK_LOST.value)) if source else None
        return cause_of_link(source) if source and link is not None and link.state.active else None

    async def _link_changed(self, source: str, lost: bool, at: int, now_us: int) -> None:
        """A lost link takes its sensors' stale alarms as its consequences; restored, clears them."""
        cause = cause_of_link(source)
        for tag in (t for t, src in self._link_of.items() if src == source):
            for a in list(self._by_sensor.get(tag, ())):
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
        tier = self.tier_of(f)
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
                and self._faulty.get(f.sensor)
                and f.condition not in _NOT_BY_SENSOR
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
        faults = self._faulty[tag]
        was = bool(faults)
        if active:
            faults.add(condition)
        else:
            faults.discard(condition)
        now_faulty = bool(faults)
        if was == now_faulty:
            return
        for a in list(self._by_sensor.get(tag, ())):
            if a.condition in _NOT_BY_SENSOR:
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
            self._ready.extend(repo.outgoing(r) for r in await cur.fetchall())

    async def _resync(self) -> None:
        w = self._w
        if w is None or w.closed or w.broken:
            if w is not None:
                with contextlib.suppress(Exception):
                    await w.close()
            self._w = None
            self._w = await self._connect_writer()
        rows = await repo.load_alarms(self._conn, self.enterprise)
        self._alarms = {a.key: a for a in rows}
        self._by_id = {a.id: a for a in rows}
        self._by_sensor = defaultdict(list)
        for a in rows:
            if a.sensor:
                self._by_sensor[a.sensor].append(a)
        self._faulty = defaultdict(set)
        for a in rows:
            if a.sensor and a.condition in SENSOR_FAULTS and a.state.active:
                self._faulty[a.sensor].add(a.condition)
        self._dirty = False
        log.info("alarm state reloaded from the database", alarms=len(rows))

    @property
    def _conn(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        assert self._w is not None, "AlarmService.start() first"
        return self._w

    async def _record(self, a: repo.AlarmRow, e: Event, now_us: int) -> None:
        """Append one event, fold it, save the projection and queue what follows (caller's transaction)."""
        before = a.state
        a.state = apply(before, e)
        await repo.append_event(self._conn, a.id, e)
        self.counters["events"] += 1
        await repo.save_projection(self._conn, a, max(now_us, e.at_us), after_event=True)
        if e.kind is EventKind.RAISED and a.state.activations > before.activations:
            if self.settings.trace:  # before the commit: the dispatcher may claim before we resume
                self._raised.append((a, e.at_us))
                self._tracing[a.id] = {
                    "alarm_id": a.id,
                    "hazard_source": a.hazard_source,
                    "sensor": a.sensor,
                    "condition": a.condition,
                    "finding_us": e.at_us,  # the finding's time (its reading's source time)
                }
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
            await self._conn.execute(
                "INSERT INTO alarm_flood (enterprise_id, started_us, last_us, alarms) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (self.enterprise, at_us, at_us, d.count),
            )
            await self._queue_flood_summary(at_us)
            log.warning("alarm flood", enterprise=self.enterprise, alarms_in_window=d.count)
        elif d.in_flood:
            await self._conn.execute(
                "UPDATE alarm_flood SET last_us = %s, alarms = alarms + 1 "
                "WHERE enterprise_id = %s AND started_us = %s",
                (at_us, self.enterprise, d.flood_start_us),
            )
        if a.state.schedule_from_us is not None:  # red / orange: their first notice goes out in a flood too
            tier = Tier(max(1, min(4, a.state.tier)))
            await self._queue_schedule(a, flooded=withholds_first_notice(d, tier))

    def _routes(self, recipient: Recipient, hazard_source: str | None) -> list[tuple[str, str, str]]:
        """(notifier, address, contact name) for one recipient."""
        out: list[tuple[str, str, str]] = []
        for name, n in self.notifiers.items():
            if recipient not in self._serves.get(name, ()):
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

    async def _queue_schedule(self, a: repo.AlarmRow, flooded: bool) -> None:
        s = a.state
        assert s.schedule_from_us is not None
        tier = Tier(max(1, min(4, s.tier)))
        rows: list[repo.Queued] = []
        for sch in schedule(self.settings.escalation, tier, s.schedule_from_us):
            for route in self._routes(sch.recipient, a.hazard_source):
                status = "flooded" if flooded and sch.step == 0 else "pending"
                rows.append(_escalation(a, tier, sch, route, status=status))
        await self._queue(rows)

    async def _queue(self, rows: list[repo.Queued]) -> None:
        """Put rows in the outbox (caller's transaction); those due now go in already claimed."""
        now = self._now_us
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
            repo.Queued(
                f"flood:{self.enterprise}:{start_us}:{notifier}:{addr}",
                None,
                "flood_summary",
                Recipient.CONTROL_ROOM.value,
                notifier,
                addr,
                None,
                None,
                due,
                {"flood_start_us": start_us, "contact": who},
            )
            for notifier, addr, who in self._routes(Recipient.CONTROL_ROOM, None)
        ]
        await self._queue(rows)

    # ----------------------------------------------------------------- tick

    async def tick(self, now_us: int) -> None:
        """Time passes: shelve expiry, repeats, assessment checks, then send what is due."""
        if not self.started:
            await self.start()
        await self._run(self._tick(now_us))

    async def _tick(self, now_us: int) -> None:
        self._advance(now_us)
        extra: list[Finding] = []
        every = round(self.settings.assessment_check_s * 1e6)
        if self._grades_checked_us is None or now_us - self._grades_checked_us >= every:
            extra = await self._refresh_grades(now_us)
        if extra or self._regraded or any(self._tick_work(a, now_us) for a in self._alarms.values()):
            # only then the write lock and a transaction: a tick with nothing to record must
            # not hold up the findings of a new alarm
            async with self._wlock, self._tx():
                for f in extra:
                    known = self._alarms.get((f.hazard_source, None, f.condition.value))
                    if f.active or (known is not None and known.state.active):
                        await self._finding(f, now_us)
                for a in list(self._alarms.values()):
                    s = a.state
                    if s.shelved_until_us is not None and s.shelved_until_us <= now_us:
                        await self._record(
                            a,
                            Event(EventKind.UNSHELVED, s.shelved_until_us, comment="shelving expired"),
                            now_us,
                        )
                    await self._repeat(a, now_us)
                await self._apply_grades(now_us)
            self._regraded.clear()
        await self._dispatch()

    async def _apply_grades(self, now_us: int) -> None:
        """Active alarms of re-graded hazard sources take their new tier (caller's transaction)."""
        for hs_id in self._regraded:
            g = self._grades.get(hs_id)
            if g is None:
                continue
            for a in list(self._alarms.values()):
                if a.hazard_source != hs_id or not a.state.showing_active:
                    continue
                try:
                    level, condition = Level(a.state.level), Condition(a.condition)
                except ValueError:  # written by another version: leave it alone
                    continue
                tier = tier_for(level, condition, g.grade, self.plant.tiers)
                if int(tier) != a.state.tier:
                    await self._retier(a, tier, now_us, now_us)

    async def _retier(self, a: repo.AlarmRow, tier: Tier, at_us: int, now_us: int) -> None:
        """Record the tier change (audit event) and apply the new tier's escalation.

        The schedule keeps its start (the activation, or the end of shelving/suppression):
        recipients told already are not told again, steps of the new tier already due are
        queued due now, pending steps of the old tier not in the new one are cancelled.
        """
        old = Tier(max(1, min(4, a.state.tier or 1)))
        g = self._grades.get(a.hazard_source)
        why = g.reason if g is not None else f"grade {int(self.grade_of(a.hazard_source))} (plant-wide alarm)"
        was = self._regraded.get(a.hazard_source)
        comment = f"tier {old.colour} ({old.zh}) -> {tier.colour} ({tier.zh}): {a.hazard_source} {why}"
        if was:
            comment += f" (was: {was})"
        data = {
            "tier": int(tier),
            "from_tier": int(old),
            "grade": int(self.grade_of(a.hazard_source)),
            "reason": why,
        }
        await self._record(a, Event(EventKind.TIER_CHANGED, at_us, SYSTEM, comment, data), now_us)
        s = a.state
        if s.schedule_from_us is None or not needs_escalation(s, max(now_us, at_us)):
            return  # acknowledged, shelved, suppressed...: the tier only
        existing = await repo.escalation_rows(self._conn, a.id, s.schedule)
        plan = replan(
            self.settings.escalation,
            tier,
            s.schedule_from_us,
            lambda r: self._routes(r, a.hazard_source),
            existing,
        )
        if plan.cancel:
            await repo.mark_cancelled(self._conn, plan.cancel, f"tier changed to {tier.colour}")
            self.counters["cancelled"] += len(plan.cancel)
        rows = [_escalation(a, tier, sch, route, tier_changed_us=at_us) for sch, route in plan.queue]
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
        assert s.schedule_from_us is not None
        every = round(self.settings.repeat_s * 1e6)
        self._repeat_done[(a.id, s.schedule)] = n
        steps = self.settings.escalation.get(Tier(max(1, min(4, s.tier))), ())
        first = steps[0].recipients if steps else (Recipient.CONTROL_ROOM,)
        rows = [
            repo.Queued(
                f"rep:{a.id}:{s.schedule}:{n}:{r.value}:{notifier}:{addr}",
                a.id,
                "repeat",
                r.value,
                notifier,
                addr,
                a.hazard_source,
                s.tier,
                s.schedule_from_us + n * every,
                {"schedule": s.schedule, "step": 0, "repeat": n, "contact": who},
            )
            for r in first
            for notifier, addr, who in self._routes(r, a.hazard_source)
        ]
        await self._queue(rows)

    # --------------------------------------------------------------- people

    def alarm(self, alarm_id: int) -> repo.AlarmRow | None:
        return self._by_id.get(alarm_id)

    def alarms(self) -> list[repo.AlarmRow]:
        return sorted(self._by_id.values(), key=lambda a: a.id)

    async def act(
        self,
        alarm_id: int,
        kind: EventKind,
        actor: str,
        comment: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> repo.AlarmRow:
        """A person's action (ack, shelve, unshelve, comment, service, bureau step).

        Raises:
            KeyError: no such alarm.
            TransitionError: not allowed in the alarm's state.
        """
        now = self.now_us()  # when it arrived: before any wait for the service's thread or lock
        if not self.started:
            await self.start()
        return await self._run(self._act(alarm_id, kind, actor, comment, data, now=now))

    async def _act(
        self,
        alarm_id: int,
        kind: EventKind,
        actor: str,
        comment: str,
        data: Mapping[str, Any] | None,
        *,
        now: int,
    ) -> repo.AlarmRow:
        async with self._wlock:
            a = self._by_id.get(alarm_id)
            if a is None:
                raise KeyError(alarm_id)
            payload = dict(data or {})
            if kind is EventKind.COMMENT:
                payload["comment"] = comment
            validate(a.state, kind, now, payload)
            payload.pop("comment", None)
            async with self._tx():
                await self._record(a, Event(kind, now, actor, comment, payload or None), now)
        self._wake.set()
        return a

    async def events(self, alarm_id: int) -> list[dict[str, Any]]:
        """The audit trail of one alarm, oldest first."""
        return await self._run(self._events(alarm_id))

    async def _events(self, alarm_id: int) -> list[dict[str, Any]]:
        async with self._wlock:
            cur = await self._conn.execute(
                "SELECT id, at_us, kind, actor, comment, data FROM alarm_event "
                "WHERE alarm_id = %s ORDER BY id",
                (alarm_id,),
            )
            rows = await cur.fetchall()
        return [
            {
                "id": r[0],
                "at_us": r[1],
                "at": _iso(int(r[1])),
                "kind": r[2],
                "actor": r[3],
                "comment": r[4],
                "data": r[5],
            }
            for r in rows
        ]

    def info(self, a: repo.AlarmRow, now_us: int | None = None) -> AlarmInfo:
        s = a.state
        return AlarmInfo(
            a.id,
            a.hazard_source,
            a.sensor,
            a.condition,
            max(1, min(4, s.tier)),
            status(s, now_us if now_us is not None else self.now_us()).value,
            s.activated_at_us,
            s.value,
            s.limit,
            s.message_en,
            s.message_zh,
            s.detector_fault,
        )

    # ------------------------------------------------------------- dispatch

    async def _dispatch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._dispatch()
            except Exception:  # the loop must survive a database hiccup; the rows stay queued
                log.exception("alarm dispatch failed; will retry on the next wake-up")
                await asyncio.sleep(1.0)
                self._wake.set()

    async def dispatch(self) -> int:
        """Send every notification due at the service's now; returns messages sent."""
        return await self._run(self._dispatch())

    async def _dispatch(self) -> int:
        async with self._dlock:
            if self._d is None or self._d.closed or self._d.broken:
                self._d = await self._connect_dispatcher()
            now = self._now_us or _real_now_us()
            sent = 0
            if self._ready:  # claimed by the transaction that queued them
                rows, self._ready = sorted(self._ready, key=lambda o: o.id), []
                if self._tracing:
                    self._trace_stage(rows, "dispatch_us", _real_now_us())
                    self._trace_stage(rows, "claimed_us", _real_now_us())
                sent += await self._send_batch(rows, now)
            while True:
                woke = _real_now_us()
                rows = await repo.claim_due(self._d, self.enterprise, now)
                if not rows:
                    return sent
                if self._tracing:
                    self._trace_stage(rows, "dispatch_us", woke)  # the dispatcher started its claim
                    self._trace_stage(rows, "claimed_us", _real_now_us())
                sent += await self._send_batch(rows, now)

    def _still_wanted(self, o: repo.Outgoing, now_us: int) -> str | None:
        """None when the row should go out, else why it is dropped."""
        if o.alarm_id is None:
            return None
        a = self._by_id.get(o.alarm_id)
        if a is None:
            return "unknown alarm"
        s = a.state
        if o.message.get("schedule") != s.schedule:
            return "superseded by a newer escalation schedule"
        st = status(s, now_us)
        if o.message.get("step", 0) == 0 and o.purpose == "escalation":
            if st in (AlarmStatus.ACTIVE_UNACKED, AlarmStatus.RTN_UNACKED):
                return None
            return f"alarm is {st.value}"
        return None if needs_escalation(s, now_us) else f"alarm is {st.value}"

    async def _send_batch(self, rows: list[repo.Outgoing], now_us: int) -> int:
        assert self._d is not None
        drop: dict[str, list[int]] = defaultdict(list)
        # first attempts and attempts again (retry, resend after a crash) are grouped apart:
        # a message sent again carries the same rows as before, so the same delivery id
        first: dict[tuple[str, str, str | None, str, str], list[repo.Outgoing]] = defaultdict(list)
        again: dict[tuple[str, str, str | None, str, str], list[repo.Outgoing]] = defaultdict(list)
        for o in rows:
            why = self._still_wanted(o, now_us)
            if why is not None:
                drop[why].append(o.id)
            else:
                groups = again if o.attempts > 1 else first
                groups[(o.notifier, o.address, o.hazard_source, o.purpose, o.recipient)].append(o)
        for why, ids in drop.items():
            await repo.mark_cancelled(self._d, ids, why)
            self.counters["cancelled"] += len(ids)
        todo = [(k, g) for groups in (first, again) for k, g in groups.items()]
        outcomes = await asyncio.gather(*(self._deliver(k, g, now_us) for k, g in todo))
        sent = 0
        for (k, g), (msg, retry, err) in zip(todo, outcomes, strict=True):  # one connection: one by one
            sent += await self._settle(k, g, msg, retry=retry, err=err, now_us=now_us)
        return sent

    def _message_for(
        self, key: tuple[str, str, str | None, str, str], group: list[repo.Outgoing], now_us: int
    ) -> Message:
        _, address, _, purpose, recipient = key
        flood_total: int | None = None
        if purpose == "flood_summary":
            start = int(group[0].message["flood_start_us"])
            alarms = [
                a
                for a in self._by_id.values()
                if a.state.activated_at_us is not None
                and a.state.activated_at_us >= start
                and not a.state.cause  # consequences are not annunciated, in a summary neither
            ]
            alarms.sort(key=lambda a: (a.hazard_source, -a.state.tier, a.id))
            flood_total = len(alarms)
            infos = [self.info(a, now_us) for a in alarms[:50]]
        else:
            ids = sorted({o.alarm_id for o in group if o.alarm_id is not None})
            infos = [self.info(self._by_id[i], now_us) for i in ids if i in self._by_id]
        subject, text, short, payload = render(
            self.plant,
            infos,
            recipient,
            purpose,
            locale=self.settings.locale,
            api_url=self.settings.api_url,
            flood_total=flood_total,
        )
        payload["steps"] = [
            {
                "notification_id": o.id,
                "alarm_id": o.alarm_id,
                "step": o.message.get("step"),
                "due_us": o.due_us,
            }
            for o in group
        ]
        delivery = "hzm-" + hashlib.sha256(",".join(str(o.id) for o in group).encode()).hexdigest()[:20]
        return Message(delivery, address, recipient, subject, text, short, payload)

    async def _deliver(
        self, key: tuple[str, str, str | None, str, str], group: list[repo.Outgoing], now_us: int
    ) -> tuple[Message, bool, Exception | None]:
        """Send one grouped message: (message, retry, error)."""
        notifier = self.notifiers.get(key[0])
        msg = self._message_for(key, group, now_us)
        if notifier is None:
            return msg, False, RuntimeError(f"notifier '{key[0]}' is not configured any more")
        try:
            async with asyncio.timeout(self.settings.retry.timeout_s):
                retry, err = await notifier.notify(msg)
        except TimeoutError as e:
            return msg, True, e
        except Exception as e:  # a notifier bug must not stop the others: retried, then dead-lettered
            log.exception("notifier raised", notifier=key[0])
            return msg, True, e
        if err is None and self._tracing:
            self._trace_stage(group, "sent_us", _real_now_us())
        return msg, retry, err

    async def _settle(
        self,
        key: tuple[str, str, str | None, str, str],
        group: list[repo.Outgoing],
        msg: Message,
        *,
        retry: bool,
        err: Exception | None,
        now_us: int,
    ) -> int:
        """The retry stage: mark sent, schedule the next attempt, or dead-letter."""
        assert self._d is not None
        ids = [o.id for o in group]
        if err is None:
            async with self._d.pipeline(), self._d.transaction():  # one round trip, not 3 + events
                await repo.mark_sent(self._d, ids, now_us)
                for o in group:
                    if o.alarm_id is not None:
                        await repo.append_event(
                            self._d,
                            o.alarm_id,
                            Event(
                                EventKind.NOTIFIED,
                                now_us,
                                SYSTEM,
                                "",
                                {
                                    "purpose": o.purpose,
                                    "recipient": o.recipient,
                                    "notifier": o.notifier,
                                    "address": o.address,
                                    "contact": o.message.get("contact"),
                                    "step": o.message.get("step"),
                                    "due_us": o.due_us,
                                    "delivery_id": msg.delivery_id,
                                },
                            ),
                        )
            self.counters["sent"] += 1
            if self.on_first_notice is not None:
                sent_us = _real_now_us()
                for o in group:  # the first step's due time is the finding's (schedule_from_us)
                    if o.purpose == "escalation" and o.message.get("step") == 0:
                        self.on_first_notice(max(0, sent_us - o.due_us) / 1e6)
            if self._tracing:
                for o in group:
                    t = self._tracing.get(o.alarm_id) if o.alarm_id is not None else None
                    if t is not None and "sent_us" in t:
                        self.traces.append(self._tracing.pop(t["alarm_id"]))
            return 1
        attempts = max(o.attempts for o in group)
        nxt = next_attempt(self.settings.retry, attempts, retry, now_us)
        text = f"{type(err).__name__}: {err}"
        if nxt is not None:
            await repo.mark_retry(self._d, ids, nxt, text)
            self.counters["retried"] += 1
            log.warning(
                "notification failed, will retry",
                notifier=key[0],
                address=key[1],
                error=text,
                attempts=attempts,
            )
            return 0
        async with self._d.transaction():
            await repo.mark_dead(self._d, group, text, now_us, dict(msg.payload))
            for o in group:
                if o.alarm_id is not None:
                    await repo.append_event(
                        self._d,
                        o.alarm_id,
                        Event(
                            EventKind.NOTIFY_FAILED,
                            now_us,
                            SYSTEM,
                            text,
                            {"recipient": o.recipient, "notifier": o.notifier, "address": o.address},
                        ),
                    )
        self.counters["dead"] += 1
        log.error(
            "notification dead-lettered", notifier=key[0], address=key[1], error=text, attempts=attempts
        )
        return 0

    # ------------------------------------------------------------------ api

    def routes(self) -> list[web.RouteDef]:
        """The alarm API, to mount on the daemon's aiohttp app."""
        return build_routes(self)

    def metrics(self) -> dict[str, int]:
        """Counters: findings, events, queued, sent, retried, dead, cancelled, no_address, refused calls."""
        return dict(self.counters)


def _escalation(
    a: repo.AlarmRow,
    tier: Tier,
    sch: Scheduled,
    route: Route,
    *,
    status: str = "pending",
    tier_changed_us: int | None = None,
) -> repo.Queued:
    """The outbox row of one escalation step to one address (a tier change keys its own rows)."""
    notifier, addr, who = route
    s = a.state
    again = f"t{tier_changed_us}:" if tier_changed_us is not None else ""
    message: dict[str, Any] = {"schedule": s.schedule, "step": sch.step, "contact": who}
    if tier_changed_us is not None:
        message["tier_changed_us"] = tier_changed_us
    return repo.Queued(
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


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")
