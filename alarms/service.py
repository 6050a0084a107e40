"""The alarm service: findings in, recorded alarm events, escalations, notifications out.

`AlarmService` is the front the daemon and the API talk to; the work is done by:

* `hazmon.alarms.recorder.Recorder` — a finding (or an API action) becomes an `Event`
  (people's actions checked by `lifecycle.validate`), appended to ``alarm_event`` with
  the folded state written to ``alarm`` in the same transaction, together with every
  notification it schedules (outbox ``alarm_notification``, one row per step,
  recipient, notifier and address, unique by a dedup key); sensor health, a lost
  link's consequences, floods, repeats, shelve expiry and tier changes;
* `hazmon.alarms.dispatcher.Dispatcher` — claims due rows (rows due at once are
  inserted already claimed by the recorder's transaction and handed over in memory),
  drops those no longer needed, groups, sends, and settles each (sent, retry with
  backoff, dead letter: the one retry stage);
* `hazmon.alarms.tiering.Tiering` — hazard sources' grades from their assessments; when
  one changes, its active alarms take their new tier at the next `tick`;
* `hazmon.alarms.book.AlarmBook` — the alarms in memory both share;
* SQL in `hazmon.alarms.repository`.

With ``settings.own_thread`` (the default) all of this runs on an event loop of the
service's own, in its own thread: the public coroutines hand their work there (`_run`),
so a caller's loop busy with ingest does not delay alarms.

Nothing is sent before it is recorded, so ``kill -9`` at any point loses no alarm
and no pending escalation. A crash between a send and its ``sent`` mark resends
that one message with the same delivery id (receivers drop duplicates by it).

A bench can install a `hazmon.alarms.trace.Tracer` (`AlarmService.tracer`) to see
where an alarm's time goes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from aiohttp import web

from hazmon.alarms.api import authenticate, build_routes
from hazmon.alarms.auth import ApiToken, TokenBook
from hazmon.alarms.book import AlarmBook, alarm_info, real_now_us
from hazmon.alarms.config import AlarmSettings
from hazmon.alarms.dispatcher import Dispatcher
from hazmon.alarms.escalation import Recipient
from hazmon.alarms.lifecycle import EventKind
from hazmon.alarms.messages import AlarmInfo
from hazmon.alarms.notifier import Notifier
from hazmon.alarms.outbox import Routing, build_notifier
from hazmon.alarms.recorder import EventHook, Recorder
from hazmon.alarms.repository import AlarmRow
from hazmon.alarms.tiering import Tiering
from hazmon.alarms.trace import Tracer
from hazmon.plant.findings import Finding
from hazmon.plant.model import Plant
from hazmon.plant.standards import Grade, Tier

__all__ = ["AlarmService", "Counters", "build_notifier"]

log = structlog.get_logger("hazmon.alarms")

_T = TypeVar("_T")


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
        on_event: told of every alarm event in the transaction that records it
            (`hazmon.alarms.recorder.EventHook`; the daemon's bureau uplink). None: nobody.
    """

    def __init__(
        self,
        plant: Plant,
        settings: AlarmSettings | None,
        dsn: str,
        *,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Callable[[], int] | None = None,
        on_event: EventHook | None = None,
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
        serves: dict[str, tuple[Recipient, ...]] = {c.name: c.recipients for c in settings.notifiers}
        if notifiers is not None:
            for name in notifiers:
                serves.setdefault(name, tuple(Recipient))
        self.counters: dict[str, int] = dict.fromkeys(Counters.__dataclass_fields__, 0)
        self._book = AlarmBook()
        self._tiering = Tiering(plant, dsn)
        self._dispatcher = Dispatcher(
            plant, settings, dsn, book=self._book, notifiers=self.notifiers, counters=self.counters
        )
        self._recorder = Recorder(
            plant,
            settings,
            dsn,
            book=self._book,
            routing=Routing(plant, self.notifiers, serves, self.counters),
            tiering=self._tiering,
            counters=self.counters,
            handoff=self._dispatcher.handoff,
            on_event=on_event,
        )
        self._loop: asyncio.AbstractEventLoop | None = None  # settings.own_thread: the service's loop
        self._thread: threading.Thread | None = None
        self.started = False

    # ----------------------------------------------------------------- hooks

    @property
    def on_first_notice(self) -> Callable[[float], None] | None:
        """The hook told the seconds from an alarm's finding to each first-step notification.

        Called when each is sent (the daemon's hazmon_alarm_to_notification_seconds), on the
        service's own thread with settings.own_thread.
        """
        return self._dispatcher.on_first_notice

    @on_first_notice.setter
    def on_first_notice(self, hook: Callable[[float], None] | None) -> None:
        self._dispatcher.on_first_notice = hook

    @property
    def tracer(self) -> Tracer | None:
        """The latency tracer a bench installs (`hazmon.alarms.trace`); None: no tracing."""
        return self._recorder.tracer

    @tracer.setter
    def tracer(self, tracer: Tracer | None) -> None:
        self._recorder.tracer = self._dispatcher.tracer = tracer

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
        await self._recorder.connect()
        await self._dispatcher.connect()
        alarms, resend = await self._recorder.load()
        await self._tiering.refresh(None, self._book.now_us, real_now_us())
        self._dispatcher.start()
        self.started = True
        log.info(
            "alarm service started",
            alarms=alarms,
            resend_after_restart=resend,
            notifiers=sorted(self.notifiers),
        )

    async def close(self) -> None:
        """Stop the dispatcher, close notifiers and connections (and the service's thread)."""
        try:
            await self._run(self._close())
        finally:
            await self._stop_thread()

    async def _close(self) -> None:
        await self._dispatcher.stop()
        for n in self.notifiers.values():
            await n.close()
        await self._recorder.close()
        await self._dispatcher.close()
        self.started = False

    def now_us(self) -> int:
        if self._clock is not None:
            return self._clock()
        return self._book.now_or_real()

    # ------------------------------------------------------------ assessment

    def grade_of(self, hazard_source: str) -> Grade:
        return self._tiering.grade_of(hazard_source)

    def tier_of(self, f: Finding) -> Tier:
        return self._tiering.tier_of(f)

    # ------------------------------------------------------------- findings

    async def handle(self, findings: Sequence[Finding], now_us: int) -> None:
        """Record findings (a repeat updates its alarm) and queue what they require."""
        if not self.started:
            await self.start()
        await self._run(self._handle(list(findings), now_us))

    async def _handle(self, findings: Sequence[Finding], now_us: int) -> None:
        self._book.advance(now_us)
        if not findings:
            return
        await self._recorder.handle(findings, now_us)
        self._dispatcher.wake()

    async def tick(self, now_us: int) -> None:
        """Time passes: shelve expiry, repeats, assessment checks, then send what is due."""
        if not self.started:
            await self.start()
        await self._run(self._tick(now_us))

    async def _tick(self, now_us: int) -> None:
        self._book.advance(now_us)
        await self._recorder.tick(now_us)
        await self._dispatcher.dispatch()

    # --------------------------------------------------------------- people

    def alarm(self, alarm_id: int) -> AlarmRow | None:
        return self._book.by_id.get(alarm_id)

    def alarms(self) -> list[AlarmRow]:
        return sorted(self._book.by_id.values(), key=lambda a: a.id)

    async def act(
        self,
        alarm_id: int,
        kind: EventKind,
        actor: str,
        comment: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> AlarmRow:
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
    ) -> AlarmRow:
        a = await self._recorder.act(alarm_id, kind, actor, comment, data, now=now)
        self._dispatcher.wake()
        return a

    async def events(self, alarm_id: int) -> list[dict[str, Any]]:
        """The audit trail of one alarm, oldest first."""
        rows = await self._run(self._recorder.events(alarm_id))
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

    def info(self, a: AlarmRow, now_us: int | None = None) -> AlarmInfo:
        return alarm_info(a, now_us if now_us is not None else self.now_us())

    # ------------------------------------------------------------- dispatch

    async def dispatch(self) -> int:
        """Send every notification due at the service's now; returns messages sent."""
        return await self._run(self._dispatcher.dispatch())

    # ------------------------------------------------------------------ api

    def routes(self) -> list[web.RouteDef]:
        """The alarm API, to mount on the daemon's aiohttp app."""
        return build_routes(self)

    def authenticate(self, request: web.Request) -> ApiToken | web.Response:
        """The caller of one of the daemon's APIs by the alarm tokens, or the refusal (counted)."""
        return authenticate(self, TokenBook(self.tokens), request)

    def metrics(self) -> dict[str, int]:
        """Counters: findings, events, queued, sent, retried, dead, cancelled, no_address, refused calls."""
        return dict(self.counters)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")
