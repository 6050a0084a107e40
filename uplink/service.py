"""The uplink as one asyncio task for the daemon: registration at start, heartbeats, and the sender.

`UplinkService.run` enqueues the registration (once per distinct content: restarting with the
same plant file adds no message), then a heartbeat every ``heartbeat_interval_s`` from the
``endpoints`` callback, while the `Sender` publishes the outbox in a thread. Cancelling the
task stops the sender and waits for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import structlog

from hazmon.plant.model import Limits, Plant
from hazmon.store.db import connect
from hazmon.uplink.build import heartbeat, registration
from hazmon.uplink.config import UplinkSettings
from hazmon.uplink.outbox import enqueue
from hazmon.uplink.sender import Sender

__all__ = ["EndpointState", "UplinkService"]

log = structlog.get_logger("hazmon.uplink")

EndpointState = tuple[str, str, bool, datetime | None]
"""(endpoint name, protocol ``opcua`` | ``mqtt``, connected, last reading time or None)."""


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
    ) -> None:
        self.settings = settings
        self.dsn = dsn
        self.plant = plant
        self.endpoints = endpoints
        self.overrides = overrides
        self.now = now
        self.sender = Sender(settings, dsn, plant.enterprise.id)

    def _enqueue_registration(self) -> int | None:
        reg = registration(self.plant, self.overrides)
        key = "registration:" + hashlib.sha256(reg.model_dump_json().encode()).hexdigest()[:32]
        e = self.plant.enterprise
        with connect(self.dsn, autocommit=True) as conn:
            return enqueue(conn, e.id, e.region.code, reg, dedupe_key=key)

    def _enqueue_heartbeat(self) -> None:
        e = self.plant.enterprise
        with connect(self.dsn, autocommit=True) as conn:
            enqueue(conn, e.id, e.region.code, heartbeat(self.now(), list(self.endpoints())))

    async def run(self) -> None:
        """Until cancelled; database errors are logged and retried at the next heartbeat."""
        stop = threading.Event()
        sender = asyncio.create_task(asyncio.to_thread(self.sender.run, stop), name="uplink-sender")
        registered = False
        try:
            while True:
                try:
                    if not registered:
                        await asyncio.to_thread(self._enqueue_registration)
                        registered = True
                    await asyncio.to_thread(self._enqueue_heartbeat)
                except Exception as e:
                    log.warning("uplink enqueue failed, retrying", error=str(e))
                await asyncio.sleep(self.settings.heartbeat_interval_s)
        finally:
            stop.set()
            await asyncio.shield(sender)
