"""The bureau's warnings to its own staff: the ``notify:`` section through the alarm notifiers.

`hazmon.bureau` keeps the queue (`hazmon.bureau.warning_notices`: who is to hear of which
warning, sent once, in the database); `hazmon.alarms` has the channels (e-mail, webhook, MQTT)
and the one retry rule (`next_attempt`). The two are features and know nothing of each other:
here, in the roof, they meet.

    tick ──► bureau_warning ──► plan (a row per recipient of its region and colour)
                                  └─► claim (red, orange first) ──► notifier.notify ──► sent / failed
    tick ──► supervision escalated ──► plan_notices (a row per recipient of its region, any colour)
                                  └─► claim_notices ──► notifier.notify ──► sent / failed
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import structlog

from hazmon.alarms.notifier import Message, Notifier, RetryPolicy, next_attempt
from hazmon.alarms.notify_email import EmailNotifier, EmailSettings
from hazmon.alarms.notify_mqtt import MqttNotifier, MqttSettings
from hazmon.alarms.notify_webhook import WebhookNotifier, WebhookSettings
from hazmon.bureau import supervision_repository as sup
from hazmon.bureau.config import Channel, Notify, NotifyRecipient
from hazmon.bureau.warning_notices import Due, Target, claim, failed, plan, sent
from hazmon.plant.standards import Tier
from hazmon.store import connect

__all__ = ["WarningNotices", "notifier"]

log = structlog.get_logger("hazmon.bureau")

_LEASE_S = 120.0  # a claimed notice not answered by then (a crashed worker) is tried again


def notifier(c: Channel) -> Notifier:
    """The alarm notifier a ``notify.channels`` entry stands for."""
    if c.kind == "email":
        return EmailNotifier(
            c.name,
            EmailSettings(
                c.host or "", c.port, c.sender, c.starttls, c.tls, c.username,
                c.secret("password_env"), c.ca_file, c.timeout_s,
            ),
        )  # fmt: skip
    if c.kind == "webhook":
        return WebhookNotifier(
            c.name, WebhookSettings(c.url or "", (c.secret("secret_env") or "").encode(), c.timeout_s)
        )
    return MqttNotifier(
        c.name,
        MqttSettings(
            c.url or "", c.topic, 1, False, c.username, c.secret("password_env"), timeout_s=c.timeout_s
        ),
    )


def _message(d: Due, r: NotifyRecipient, ch: Channel) -> Message:
    t = Tier(d.colour)
    where = d.enterprise_name + (f" / {d.source_id}" if d.source_id else "")
    address = r.address or (ch.url if ch.kind == "webhook" else ch.topic) or ""
    return Message(
        delivery_id=f"bureau-warning-{d.warning_id}-{r.name}",  # the same on every retry
        address=address.replace("{region}", d.region_code),
        recipient=r.name,
        subject=f"【{t.zh}色预警】{where} — {t.colour} bureau warning {d.warning_id}",
        text=f"{d.text_zh}\n\n{d.text_en}\n\n预警编号 warning id: {d.warning_id}\n"
        f"企业 enterprise: {d.enterprise_name} ({d.enterprise_id}), 区划 region: {d.region_code}\n"
        f"推送 raised: {d.raised_at.isoformat()}",
        short=d.text_zh[:120],
        payload={
            "kind": "bureau_warning",
            "warning_id": d.warning_id,
            "warning_kind": d.kind,
            "colour": t.colour,
            "enterprise_id": d.enterprise_id,
            "enterprise_name": d.enterprise_name,
            "hazard_source": d.source_id,
            "region_code": d.region_code,
            "raised_at": d.raised_at.isoformat(),
            "text_zh": d.text_zh,
            "text_en": d.text_en,
        },
    )


def _supervision_message(d: sup.NoticeDue, r: NotifyRecipient, ch: Channel) -> Message:
    what = d.danger_id or d.enterprise_id
    address = r.address or (ch.url if ch.kind == "webhook" else ch.topic) or ""
    subject = (
        f"【挂牌督办逾期 提级至{d.level}级】{d.enterprise_name} {what}"
        f" — supervision {d.supervision_id} overdue"
    )
    return Message(
        delivery_id=f"bureau-supervision-{d.event_id}-{r.name}",  # the same on every retry
        address=address.replace("{region}", d.region_code),
        recipient=r.name,
        subject=subject,
        text=f"{subject}\n\n{d.title}\n督办编号 supervision: {d.supervision_id}\n"
        f"企业 enterprise: {d.enterprise_name} ({d.enterprise_id}), 区划 region: {d.region_code}\n"
        f"整改期限 deadline: {d.deadline}, 督办责任人 person in charge: {d.bureau_person}\n{d.comment}",
        short=subject[:120],
        payload={
            "kind": "bureau_supervision_escalated",
            "supervision_id": d.supervision_id,
            "danger_id": d.danger_id,
            "enterprise_id": d.enterprise_id,
            "region_code": d.region_code,
            "level": d.level,
            "deadline": d.deadline.isoformat(),
            "bureau_person": d.bureau_person,
            "at": d.at.isoformat(),
        },
    )


class WarningNotices:
    """Sends the queued notices of one bureau; ``stats``: sent, failed (attempts), gave_up."""

    def __init__(self, cfg: Notify, dsn: str, clock: Callable[[], datetime] | None = None) -> None:
        self.cfg = cfg
        self.dsn = dsn
        self.clock = clock or (lambda: datetime.now(UTC))
        self.channels = {c.name: c for c in cfg.channels}
        self.notifiers = {c.name: notifier(c) for c in cfg.channels}
        self.recipients = {r.name: r for r in cfg.recipients}
        self.targets = tuple(Target(r.name, r.scope, r.colours) for r in cfg.recipients)
        rt = cfg.retry
        self.policy = RetryPolicy(rt.attempts, rt.backoff_s, rt.max_backoff_s)
        self.stats: Counter[str] = Counter()
        self._wake = asyncio.Event()  # waited on the loop: no worker thread held while idle
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Look now (from any thread: the tick runs in one)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def _claim(self) -> list[Due]:
        now = self.clock()
        with connect(self.dsn, autocommit=True) as c:
            plan(c, self.targets, now)
            return claim(c, now, _LEASE_S)

    def _record(self, d: Due, error: Exception | None, retry: bool) -> None:
        now = self.clock()
        with connect(self.dsn, autocommit=True) as c:
            if error is None:
                sent(c, d, now)
                return
            at_us = next_attempt(self.policy, d.attempts, retry, int(now.timestamp() * 1e6))
            again = None if at_us is None else datetime.fromtimestamp(at_us / 1e6, UTC)
            failed(c, d, f"{type(error).__name__}: {error}", again, now)

    def _claim_supervision(self) -> list[sup.NoticeDue]:
        now = self.clock()
        with connect(self.dsn, autocommit=True) as c:
            sup.plan_notices(c, [(t.name, t.scope) for t in self.targets], now)
            return sup.claim_notices(c, now, _LEASE_S)

    def _record_supervision(self, d: sup.NoticeDue, error: Exception | None, retry: bool) -> None:
        now = self.clock()
        with connect(self.dsn, autocommit=True) as c:
            if error is None:
                sup.notice_sent(c, d, now)
                return
            at_us = next_attempt(self.policy, d.attempts, retry, int(now.timestamp() * 1e6))
            again = None if at_us is None else datetime.fromtimestamp(at_us / 1e6, UTC)
            sup.notice_failed(c, d, f"{type(error).__name__}: {error}", again, now)

    async def supervision_once(self) -> int:
        """Tell the staff of each escalated supervision (挂牌督办 overdue); how many went out."""
        done = 0
        for d in await asyncio.to_thread(self._claim_supervision):
            r = self.recipients.get(d.recipient)
            if r is None:
                continue
            retry, err = await self.notifiers[r.channel].notify(
                _supervision_message(d, r, self.channels[r.channel])
            )
            await asyncio.to_thread(self._record_supervision, d, err, retry)
            if err is None:
                done += 1
                self.stats["sent"] += 1
                log.info("supervision escalation notified", supervision=d.supervision_id, recipient=r.name)
            else:
                self.stats["failed"] += 1
                self.stats["gave_up"] += not retry or d.attempts >= self.policy.attempts
                log.warning(
                    "supervision escalation notice failed", supervision=d.supervision_id, recipient=r.name,
                    attempts=d.attempts, error=f"{type(err).__name__}: {err}",
                )  # fmt: skip
        return done

    async def once(self) -> int:
        """Queue what is new and send what is due (red and orange first); how many went out."""
        if not self.targets:
            return 0
        done = await self.supervision_once()
        for d in await asyncio.to_thread(self._claim):
            r = self.recipients.get(d.recipient)
            if r is None:  # a recipient taken out of the config: its old rows stay as they are
                continue
            retry, err = await self.notifiers[r.channel].notify(_message(d, r, self.channels[r.channel]))
            await asyncio.to_thread(self._record, d, err, retry)
            if err is None:
                done += 1
                self.stats["sent"] += 1
                log.info("bureau warning notified", warning=d.warning_id, recipient=r.name, colour=d.colour)
            else:
                self.stats["failed"] += 1
                gave_up = not retry or d.attempts >= self.policy.attempts
                self.stats["gave_up"] += gave_up
                log.warning(
                    "bureau warning notice failed", warning=d.warning_id, recipient=r.name,
                    attempts=d.attempts, gave_up=gave_up, error=f"{type(err).__name__}: {err}",
                )  # fmt: skip
        return done

    async def run(self, stop: threading.Event) -> None:
        """Until ``stop``: every ``every_s`` or when woken (a tick wrote changes)."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await self.once()
            except (psycopg.Error, OSError) as e:
                log.warning("bureau warning notices: database away, retrying", error=str(e).strip())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.every_s):
                    await self._wake.wait()
            self._wake.clear()
        for n in self.notifiers.values():
            await n.close()
