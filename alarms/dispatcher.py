"""The dispatcher: claim due outbox rows, send them, settle each (sent, retry, dead letter).

It takes the rows the recorder's transaction claimed (``handoff``), then claims due
rows (``sending``, committed), drops those the alarm no longer needs (acknowledged,
shelved, a newer schedule), groups the rest per notifier, address and hazard source
(a row sent before only with rows sent before, so a resend keeps its delivery id),
sends them, and marks them ``sent`` — or retries with backoff, or records a dead
letter: the one retry stage.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

import psycopg
import structlog

from hazmon.alarms import repository as repo
from hazmon.alarms.book import AlarmBook, alarm_info, real_now_us
from hazmon.alarms.config import AlarmSettings
from hazmon.alarms.lifecycle import SYSTEM, AlarmStatus, Event, EventKind, needs_escalation, status
from hazmon.alarms.messages import render
from hazmon.alarms.notifier import Message, Notifier, next_attempt
from hazmon.alarms.trace import Tracer
from hazmon.plant.aio import cancel_and_wait
from hazmon.plant.model import Plant
from hazmon.store import connect_async

__all__ = ["Dispatcher"]

log = structlog.get_logger("hazmon.alarms")

_Key = tuple[str, str, str | None, str, str]  # notifier, address, hazard source, purpose, recipient


class Dispatcher:
    """Sends the outbox of one plant on its own connection.

    Args:
        plant: the plant (messages name its hazard sources).
        settings: the ``alarms:`` section (retry policy, locale, API address).
        dsn: PostgreSQL DSN.
        book: the alarms in memory (shared with the recorder).
        notifiers: name -> notifier.
        counters: the service's counters.
    """

    def __init__(
        self,
        plant: Plant,
        settings: AlarmSettings,
        dsn: str,
        *,
        book: AlarmBook,
        notifiers: Mapping[str, Notifier],
        counters: MutableMapping[str, int],
    ) -> None:
        self.plant = plant
        self.settings = settings
        self.dsn = dsn
        self.enterprise = plant.enterprise.id
        self.book = book
        self.notifiers = notifiers
        self.counters = counters
        self.handoff: list[repo.Outgoing] = []  # claimed by the recorder's committed transaction
        # seconds from an alarm's finding to each of its first-step notifications, when sent
        self.on_first_notice: Callable[[float], None] | None = None
        self.tracer: Tracer | None = None
        self._d: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ life

    async def connect(self) -> None:
        """Open the dispatcher's connection (on the loop that will use it)."""
        # asyncio primitives belong to the loop that first waits on them: new ones per start
        self._lock, self._wake = asyncio.Lock(), asyncio.Event()
        self._d = await self._connect()

    async def _connect(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
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

    def start(self) -> None:
        """Start the loop that dispatches on every wake-up."""
        self._task = asyncio.create_task(self._loop(), name="hazmon-alarms-dispatch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def close(self) -> None:
        if self._d is not None:
            await self._d.close()
        self._d = None

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.dispatch()
            except Exception:  # the loop must survive a database hiccup; the rows stay queued
                log.exception("alarm dispatch failed; will retry on the next wake-up")
                await asyncio.sleep(1.0)
                self._wake.set()

    # ------------------------------------------------------------- dispatch

    async def dispatch(self) -> int:
        """Send every notification due at the service's now; returns messages sent."""
        async with self._lock:
            if self._d is None or self._d.closed or self._d.broken:
                self._d = await self._connect()
            now = self.book.now_or_real()
            sent = 0
            tracer = self.tracer
            if self.handoff:  # claimed by the transaction that queued them
                rows = sorted(self.handoff, key=lambda o: o.id)
                self.handoff.clear()
                if tracer is not None:
                    tracer.stage(rows, "dispatch_us", real_now_us())
                    tracer.stage(rows, "claimed_us", real_now_us())
                sent += await self._send_batch(rows, now)
            while True:
                woke = real_now_us()
                rows = await repo.claim_due(self._d, self.enterprise, now)
                if not rows:
                    return sent
                if tracer is not None:
                    tracer.stage(rows, "dispatch_us", woke)  # the dispatcher started its claim
                    tracer.stage(rows, "claimed_us", real_now_us())
                sent += await self._send_batch(rows, now)

    def _still_wanted(self, o: repo.Outgoing, now_us: int) -> str | None:
        """None when the row should go out, else why it is dropped."""
        if o.alarm_id is None:
            return None
        a = self.book.by_id.get(o.alarm_id)
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
        first: dict[_Key, list[repo.Outgoing]] = defaultdict(list)
        again: dict[_Key, list[repo.Outgoing]] = defaultdict(list)
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

    def _message_for(self, key: _Key, group: list[repo.Outgoing], now_us: int) -> Message:
        _, address, _, purpose, recipient = key
        flood_total: int | None = None
        if purpose == "flood_summary":
            start = int(group[0].message["flood_start_us"])
            alarms = [
                a
                for a in self.book.by_id.values()
                if a.state.activated_at_us is not None
                and a.state.activated_at_us >= start
                and not a.state.cause  # consequences are not annunciated, in a summary neither
            ]
            alarms.sort(key=lambda a: (a.hazard_source, -a.state.tier, a.id))
            flood_total = len(alarms)
            infos = [alarm_info(a, now_us) for a in alarms[:50]]
        else:
            ids = sorted({o.alarm_id for o in group if o.alarm_id is not None})
            infos = [alarm_info(self.book.by_id[i], now_us) for i in ids if i in self.book.by_id]
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
        self, key: _Key, group: list[repo.Outgoing], now_us: int
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
        if err is None and self.tracer is not None:
            self.tracer.stage(group, "sent_us", real_now_us())
        return msg, retry, err

    async def _settle(
        self,
        key: _Key,
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
                sent_us = real_now_us()
                for o in group:  # the first step's due time is the finding's (schedule_from_us)
                    if o.purpose == "escalation" and o.message.get("step") == 0:
                        self.on_first_notice(max(0, sent_us - o.due_us) / 1e6)
            if self.tracer is not None:
                self.tracer.settled(group)
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
