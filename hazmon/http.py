"""The daemon's HTTP app (aiohttp): /metrics (Prometheus text), /healthz, and mounted component routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from hazmon.collector import Metrics

__all__ = ["HttpServer"]

Health = Callable[[], tuple[bool, dict[str, object]]]


class HttpServer:
    def __init__(self, host: str, port: int, metrics: Metrics, health: Health) -> None:
        self.host, self.port = host, port
        self.metrics = metrics
        self.health = health
        self.app = web.Application()
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/healthz", self._healthz)
        self._runner: web.AppRunner | None = None

    def mount(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Add a component's routes (the alarms API). Call before `start`."""
        self.app.router.add_routes(list(routes))

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
