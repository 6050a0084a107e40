"""A console on a real aiohttp server (the daemon's `HttpServer`), a real AlarmService and a real DB,
run on its own thread and loop so the tests can drive Playwright's sync API on theirs."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from hazmon.alarms import AlarmService, AlarmSettings
from hazmon.collector import Metrics
from hazmon.console import Console, ConsoleSettings, ConsoleUser, build_console, hash_password
from hazmon.http import HttpServer
from hazmon.plant import Plant
from tests.alarms.helpers import T0, assess_all, gas

T = TypeVar("T")

PASSWORDS = {
    "王强": "operator-pass-1",
    "张建国": "manager-pass-1",
    "浦口区应急局": "bureau-pass-1",
    "六合区应急局": "bureau-pass-2",
}


def users() -> tuple[ConsoleUser, ...]:
    # log2 n = 10: the cheapest scrypt the config takes, so the tests do not wait on hashing
    return (
        ConsoleUser("王强", "operator", hash_password(PASSWORDS["王强"], log_n=10)),
        ConsoleUser("张建国", "plant_manager", hash_password(PASSWORDS["张建国"], log_n=10)),
        ConsoleUser(
            "浦口区应急局", "bureau", hash_password(PASSWORDS["浦口区应急局"], log_n=10), "county", "320111"
        ),
        # the plant's own county (320116): without a region a bureau user covers the plant's
        ConsoleUser("六合区应急局", "bureau", hash_password(PASSWORDS["六合区应急局"], log_n=10), "county"),
    )


class ConsoleServer:
    """Start with `start()`; ``url`` is the console's base; ``advance`` moves the console's clock."""

    def __init__(self, plant: Plant, dsn: str, settings: ConsoleSettings | None = None) -> None:
        self.plant, self.dsn = plant, dsn
        self.settings = settings or ConsoleSettings(
            # refresh_s 300: no page polls behind a test's back (test_browser_live polls every second)
            session_idle_s=600,
            session_max_s=3600,
            refresh_s=300,
            users=users(),
        )
        self.offset = timedelta(0)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.console: Console | None = None
        self.alarms: AlarmService | None = None
        self.http: HttpServer | None = None
        self.url = ""

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def start(self) -> ConsoleServer:
        assess_all(self.plant, self.dsn)
        self.thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        self.alarms = AlarmService(self.plant, AlarmSettings(), self.dsn, clock=lambda: T0 + 60_000_000)
        await self.alarms.start()
        await self.alarms.handle([gas(T0)], T0)  # one red alarm, active and unacknowledged
        self.console = build_console(self.plant, self.settings, self.dsn, self.alarms, clock=self.now)
        self.http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
        self.http.mount(self.alarms.routes())
        self.http.mount(self.console.routes())
        port = await self.http.start()
        self.url = f"http://127.0.0.1:{port}/console"

    def stop(self) -> None:
        async def stop() -> None:
            if self.http is not None:
                await self.http.stop()
            if self.alarms is not None:
                await self.alarms.close()

        self.run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
