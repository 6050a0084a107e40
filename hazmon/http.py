"""The daemon's HTTP app (aiohttp): /metrics, /healthz and /livez, /readyz, and mounted component routes.

- ``/healthz`` (also ``/livez``): liveness. 200 while the process and every pipeline
  task run, 503 when a task has stopped (restart it). The database being down or a
  source disconnected is not a reason to restart: the daemon spools and reconnects.
- ``/readyz``: readiness, the list of named checks (`HttpServer.add_check`). Each
  answers ``(ok, detail)``; the answer is 200 when every check is ok and 503
  otherwise, with ``degraded`` naming the checks that are not::

      {"status": "degraded", "degraded": ["database", "source:gds"],
       "checks": {"database": {"ok": false, ...}, "source:gds": {"ok": false, ...}, ...}}

  A part of the daemon adds its own check with one line:
  ``http.add_check("timescaledb_jobs", lambda: (ok, {...}))`` (a coroutine function works too).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from hazmon.collector import Metrics

__all__ = ["Check", "CheckResult", "HttpServer"]

log = structlog.get_logger("hazmon.http")

Health = Callable[[], tuple[bool, dict[str, object]]]
CheckResult = tuple[bool, dict[str, object]]
Check = Callable[[], CheckResult | Awaitable[CheckResult]]


class HttpServer:
    def __init__(self, host: str, port: int, metrics: Metrics, health: Health) -> None:
        self.host, self.port = host, port
        self.metrics = metrics
        self.health = health
        self.app = web.Application()
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/livez", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.checks: dict[str, Check] = {}
        self._runner: web.AppRunner | None = None

    def mount(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Add a component's routes (the alarms API). Call before `start`."""
        self.app.router.add_routes(list(routes))

    def add_check(self, name: str, check: Check) -> None:
        """Add a readiness check: ``check()`` gives ``(ok, detail)`` (or a coroutine giving it)."""
        self.checks[name] = check

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Every check's answer; a check that raises is not ok and says why."""
        results: dict[str, object] = {}
        degraded: list[str] = []
        for name, check in self.checks.items():
            try:
                got = check()
                ok, detail = await got if inspect.isawaitable(got) else got
            except Exception as e:
                log.warning("readiness check failed", check=name, error=f"{type(e).__name__}: {e}")
                ok, detail = False, {"error": f"check failed: {type(e).__name__}: {e}"}
            results[name] = {"ok": bool(ok), **detail}
            if not ok:
                degraded.append(name)
        body: dict[str, object] = {"status": "degraded" if degraded else "ready", "degraded": degraded}
        return not degraded, {**body, "checks": results}

    async def start(self) -> int:
        """Start serving; returns the bound port (useful with port 0)."""
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        for addr in self._runner.addresses:  # the bound (host, port): port 0 picks a free one
            self.port = int(addr[1])
            break
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": CONTENT_TYPE_LATEST, "X-Content-Type-Options": "nosniff"},
        )

    async def _healthz(self, request: web.Request) -> web.Response:
        ok, detail = self.health()
        return web.Response(
            text=json.dumps({"status": "ok" if ok else "failing", **detail}, ensure_ascii=False),
            status=200 if ok else 503,
            content_type="application/json",
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        ok, body = await self.readiness()
        return web.Response(
            text=json.dumps(body, ensure_ascii=False, default=str),
            status=200 if ok else 503,
            content_type="application/json",
        )
