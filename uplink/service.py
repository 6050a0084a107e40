"""The uplink as one asyncio task for the daemon: what it enqueues on its own, the sender, the downlink.

`UplinkService.run` enqueues the registration and the assessment register when they differ
from the last ones enqueued (a restart with the same plant file adds nothing), a heartbeat
every ``heartbeat_interval_s`` from the ``endpoints`` callback and each closed minute's
aggregates (`hazmon.uplink.periodic`), while the `Sender` publishes the outbox and, when the
daemon gives ``on_step``, the `Downlink` receives the bureau's messages, each in a thread.
Alarm events are not enqueued here: the alarm service's recorder does it in the transaction
that records them (the daemon passes the hook). Cancelling the task stops both threads and
waits for them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import structlog

from hazmon.plant.model import Limits, Plant
from hazmon.store.db import connect
from hazmon.uplink.build import heartbeat, registration
from hazmon.uplink.config import UplinkSettings
from hazmon.uplink.downlink import Downlink, RefusedSink, StepHandler
from hazmon.uplink.outbox import Conn, enqueue, pending
from hazmon.uplink.periodic import (
    closed_windows,
    enqueue_aggregates,
    enqueue_assessments,
    enqueue_if_changed,
    last_window,
)
from hazmon.uplink.sender import Sender

__all__ = ["EndpointState", "UplinkService"]

log = structlog.get_logger("hazmon.uplink")

EndpointState = tuple[str, str, bool, datetime | None]
"""(endpoint name, protocol ``opcua`` | ``mqtt``, connected, last reading time or None)."""

_ASSESSMENTS_EVERY_S = 60.0


class UplinkService:
    def __init__(
        self,
        settings: UplinkSettings,
        dsn: str,
        plant: Plant,
        endpoints: Callable[[], Iterable[EndpointState]],
        *,
        overrides: dict[str, Limits] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_step: StepHandler | None = None,
        on_refused: RefusedSink | None = None,
        on_round: Callable[[Conn], object] | None = None,
    ) -> None:
        self.settings = settings
        self.on_round = on_round  # more to enqueue each round, in the round's connection (the roof's)
        self.dsn = dsn
        self.plant = plant
        self.endpoints = endpoints
        self.overrides = overrides
        self.now = now
        self.sender = Sender(settings, dsn, plant.enterprise.id)
        self.downlink = (
            None
            if on_step is None
            else Downlink(settings, plant.enterprise.id, on_step, on_refused or (lambda *_: None))
        )
        self.outbox_pending: int | None = None  # unsent rows at the last round (None: not read yet)
        self.last_error = ""  # the last enqueue round's error ("" when it went well)
        self.aggregates_enqueued = 0
        self.restarts = 0  # sender / downlink threads started again after a bug stopped them
        self._registered = False
        self._after: datetime | None = None  # the newest aggregates window enqueued
        self._after_known = False
        self._assessed_at = -1e18

    # ------------------------------------------------------------ one round (in a thread)

    def _registration(self, conn: Conn) -> None:
        if not self._registered:
            reg = registration(self.plant, self.overrides)
            enqueue_if_changed(conn, self.plant, reg, lambda p: p)
            self._registered = True

    def _assessments(self, conn: Conn, now: datetime) -> None:
        if time.monotonic() - self._assessed_at >= _ASSESSMENTS_EVERY_S:
            today = now.astimezone(ZoneInfo(self.plant.enterprise.timezone)).date()
            enqueue_assessments(conn, self.plant, today)
            self._assessed_at = time.monotonic()

    def _aggregates(self, conn: Conn, now: datetime) -> None:
        e = self.plant.enterprise
        if not self._after_known:
            self._after, self._after_known = last_window(conn, e.id), True
        s = self.settings
        windows = closed_windows(
            self._after, now, s.aggregate_delay_s, timedelta(hours=s.aggregate_catchup_h)
        )
        if self._after is not None and windows and windows[0] > self._after + timedelta(minutes=1):
            log.warning(
                "aggregates older than aggregate_catchup_h are not sent",
                from_=self._after.isoformat(),
                to=windows[0].isoformat(),
            )
        if windows:
            self.aggregates_enqueued += enqueue_aggregates(conn, self.plant, windows)
            self._after = windows[-1]

    def round(self, endpoints: list[EndpointState], beat: bool) -> None:
        """Registration (first), assessment register, aggregates, a heartbeat when ``beat``; pending read."""
        now = self.now()
        with connect(self.dsn, autocommit=True) as conn:
            self._registration(conn)
            self._assessments(conn, now)
            try:
                self._aggregates(conn, now)
            except Exception:
                self._after_known = False  # read again from the outbox next round
                raise
            if beat:
                e = self.plant.enterprise
                enqueue(conn, e.id, e.region.code, heartbeat(now, endpoints))
            if self.on_round is not None:
                self.on_round(conn)
            self.outbox_pending = pending(conn)

    # ------------------------------------------------------------ the task

    async def run(self) -> None:
        """Until cancelled; database errors are logged and retried at the next round."""
        stop = threading.Event()
        runs: dict[str, Callable[[threading.Event], None]] = {"uplink-sender": self.sender.run}
        if self.downlink is not None:
            runs["uplink-downlink"] = self.downlink.run
        threads = {n: asyncio.create_task(asyncio.to_thread(fn, stop), name=n) for n, fn in runs.items()}
        every = self.settings.heartbeat_interval_s
        tick = min(every, 5.0)
        next_beat = 0.0
        try:
            while True:
                for name, th in list(threads.items()):  # a thread ended by a bug is started again
                    if th.done():
                        self.restarts += 1
                        log.error(
                            "uplink thread stopped; started again", thread=name, error=repr(th.exception())
                        )
                        threads[name] = asyncio.create_task(asyncio.to_thread(runs[name], stop), name=name)
                beat = time.monotonic() >= next_beat
                try:
                    # the endpoints' state is read here, on the loop that changes it
                    await asyncio.to_thread(self.round, list(self.endpoints()), beat)
                    self.last_error = ""
                    if beat:
                        next_beat = time.monotonic() + every
                except Exception as e:
                    self.last_error = f"{type(e).__name__}: {e}"
                    log.warning("uplink enqueue failed, retrying", error=self.last_error)
                await asyncio.sleep(tick)
        finally:
            stop.set()
            await asyncio.shield(asyncio.gather(*threads.values(), return_exceptions=True))

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, object]:
        """The link as the readiness check and /healthz show it."""
        d: dict[str, object] = {
            "connected": self.sender.connected,
            "broker": self.settings.url,
            "outbox_pending": self.outbox_pending,
            "acked": self.sender.stats.acked,
            "last_error": self.last_error or self.sender.last_error,
        }
        if self.downlink is not None:
            d["downlink_subscribed"] = self.downlink.subscribed.is_set()
        return d
