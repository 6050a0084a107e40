"""The bureau daemon's wiring: the subscriber, the downlink sender, the API, /metrics, /livez, /readyz.

With ``parent:`` also the forwarder to the parent bureau (federation, `hazmon.bureau_federation`).

The roof connects what the bureau's parts do not know of each other: a step recorded through the
API wakes the downlink sender (a callback), and both threads report into one metrics registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import psycopg
import structlog

from hazmon.bureau.api import API_PREFIX, ApiUser, BureauApi, build_routes
from hazmon.bureau.batch import BatchMetrics
from hazmon.bureau.children_api import children_routes
from hazmon.bureau.config import BureauConfig
from hazmon.bureau.downlink import DownlinkSender
from hazmon.bureau.flood import FloodGuardedIngestor, FloodLimiter, FloodMetrics
from hazmon.bureau.http_link import LinkServer
from hazmon.bureau.ingest import IngestLimits, IngestMetrics, Ingestor
from hazmon.bureau.plan_api import bureau_plan_routes
from hazmon.bureau.subscriber import Subscriber
from hazmon.bureau.supervision_repository import escalate_due
from hazmon.bureau.warning_repository import tick
from hazmon.bureau.warnings import Change
from hazmon.bureau_federation import children_of, forwarder_of, on_stored_of, watch_forwarder
from hazmon.bureau_notify import WarningNotices
from hazmon.bureau_plans import BureauPlanRunner
from hazmon.collector import Metrics
from hazmon.console.bureau_pages import build_bureau_console
from hazmon.http import CheckResult, HttpServer
from hazmon.readiness import DatabaseProbe
from hazmon.store import StorageSettings, connect, migrate
from hazmon.store.bootstrap import ensure_database

__all__ = ["BureauDaemon", "api_users", "migrate_bureau", "mount_console"]

log = structlog.get_logger("hazmon.bureau")


def api_users(cfg: BureauConfig) -> list[ApiUser]:
    return [ApiUser(t.name, t.role, t.digest(), t.region.scope) for t in cfg.tokens]  # type: ignore[arg-type]


def migrate_bureau(cfg: BureauConfig) -> None:
    """Apply the migrations to the bureau's database (the common set: the bureau uses its tables).

    A database missing on a reachable server is created first, as the enterprise daemon does.
    """
    ensure_database(cfg.database.resolved_dsn())
    with connect(cfg.database.resolved_dsn()) as c:
        migrate(c, StorageSettings(mode=cfg.database.storage_mode))


def mount_console(d: BureauDaemon) -> None:
    """The bureau's web console on the daemon's HTTP server, when ``console.users`` are listed."""
    cs = d.cfg.console
    if not (cs.enabled and cs.users):
        return
    console = build_bureau_console(
        cs, d.api, d.cfg.name, d.clock, plans=d.cfg.plans, bureau_scope=d.cfg.scope, wake_plans=d.plans.wake
    )
    d.http.mount(console.routes())
    d.metrics.gauge_fn(
        "hazmon_console_counters",
        "Web console counters, by counter",
        lambda: {(k,): float(v) for k, v in console.counters.items()},
        ("counter",),
    )


class BureauDaemon:
    """One bureau worker process: its share of the feed, the downlink, the API."""

    def __init__(self, cfg: BureauConfig, clock: Callable[[], datetime] | None = None) -> None:
        self.cfg = cfg
        dsn = cfg.database.resolved_dsn()
        self.metrics = Metrics()  # the bureau's own families only (not the enterprise daemon's)
        self.ingest_metrics = IngestMetrics(self.metrics.registry)
        lim = cfg.limits
        ingest_limits = IngestLimits(lim.max_skew_s, lim.max_message_bytes)
        # one flood limit per enterprise for both transports (hazmon.bureau.flood)
        limiter = FloodLimiter(lim.flood_rate_per_s, lim.flood_burst)
        flood_metrics = FloodMetrics(self.metrics.registry)
        on_stored = on_stored_of(cfg)  # federation: queued for the parent as it is stored
        self.ingestor: Ingestor = FloodGuardedIngestor(
            cfg.scope,
            ingest_limits,
            limiter,
            self.ingest_metrics,
            flood_metrics,
            children=children_of(cfg),  # federation: what child bureaus may forward
            on_stored=on_stored,
        )
        self.link = (  # the link over HTTPS (https_link:), its own TLS listener
            LinkServer(
                cfg.https_link,
                dsn,
                Ingestor(cfg.scope, ingest_limits, self.ingest_metrics, on_stored=on_stored),
                limiter,
                registry=self.metrics.registry,
                flood_metrics=flood_metrics,
                clock=clock,
            )
            if cfg.https_link.enabled
            else None
        )
        self.subscriber = Subscriber(
            cfg.broker,
            dsn,
            self.ingestor,
            clock,
            batch=cfg.ingest,  # ingest: in bureau.yaml
            batch_metrics=BatchMetrics(self.metrics.registry),
            federation=bool(cfg.children),
        )
        self.forwarder = forwarder_of(cfg)  # to the parent bureau (`parent:`), else None
        self.downlink = DownlinkSender(cfg.broker, dsn)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.api = BureauApi(
            dsn,
            api_users(cfg),
            self.metrics.registry,
            self.downlink.wake,
            clock,
            warning_settings=cfg.warning_settings,
            supervision=cfg.supervision,
        )
        self.warning_changes: Counter[str] = Counter()  # by action: raise, cause_cleared, recurred
        self.supervisions_escalated = 0
        self.notices = WarningNotices(cfg.notify, dsn, clock)  # new warnings -> the staff (notify:)
        self.http = HttpServer(cfg.http.host, cfg.http.port, self.metrics, self.health)
        # the bureau's own emergency plans (bureau.yaml plans:), told through the notify: channels
        self.plans = BureauPlanRunner(cfg, self.notices.notifiers, clock)
        plan_routes = (
            lambda guard, refuse: bureau_plan_routes(
                self.api, cfg.plans, cfg.scope, guard, refuse, API_PREFIX, self.plans.wake
            ),
            lambda guard, refuse: children_routes(self.api, cfg.children, guard, API_PREFIX),  # federation
        )
        self.http.mount(build_routes(self.api, plan_routes))
        mount_console(self)
        self._probe = DatabaseProbe(dsn)
        self._stop = threading.Event()
        self._halt = asyncio.Event()  # the same for the loop's own tasks (made again at each start)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._add_checks()
        if self.forwarder is not None:
            watch_forwarder(self.forwarder, self.metrics, self.http)

    @property
    def http_port(self) -> int:
        return self.http.port

    def _add_checks(self) -> None:
        async def database() -> CheckResult:
            ok, why = await self._probe()
            return ok, {"detail": why}

        def broker() -> CheckResult:
            ok = self.subscriber.connected.is_set()
            return ok, {"subscribed": ok, "received": self.subscriber.stats.received}

        self.metrics.gauge_fn(
            "hazmon_bureau_warning_changes",
            "Bureau warnings written by the rules since start, by action (raise, cause_cleared, recurred)",
            lambda: {(k,): float(v) for k, v in self.warning_changes.items()},
            ("action",),
        )
        self.metrics.gauge_fn(
            "hazmon_bureau_warning_notices",
            "Notices of new warnings to the bureau's staff since start: sent, failed (attempts), gave_up",
            lambda: {(k,): float(self.notices.stats[k]) for k in ("sent", "failed", "gave_up")},
            ("what",),
        )
        self.metrics.gauge_fn(
            "hazmon_bureau_supervisions_escalated",
            "Supervisions (挂牌督办) escalated to the next level since start, their deadline passed",
            lambda: {(): float(self.supervisions_escalated)},
        )
        self.http.add_check("database", database)
        self.http.add_check("broker", broker)
        if self.link is not None:
            self.http.add_check("https_link", self._https_link_check(self.link))
        sub, down = self.subscriber.stats, self.downlink
        self.metrics.gauge_fn(
            "hazmon_bureau_link_state",
            "The bureau's link threads, by what: messages received and acknowledged, broker (re)connects,"
            " database failures, lane_copies (fast kinds the bulk lane's catch-all also received:"
            " acknowledged unstored); downlink messages sent, send failures, malformed rows skipped",
            lambda: {
                ("received",): sub.received,
                ("acknowledged",): sub.acked,
                ("connects",): sub.connects,
                ("database_failures",): sub.db_failures,
                ("lane_copies",): sub.lane_copies,
                ("downlink_sent",): down.sent,
                ("downlink_failures",): down.failures,
                ("downlink_malformed",): down.malformed,
            },
            ("what",),
        )

    @staticmethod
    def _https_link_check(link: LinkServer) -> Callable[[], CheckResult]:
        """Ready: the HTTPS link's listener is bound and open (enterprises can send); not: stopped."""

        def check() -> CheckResult:
            ok = link.listening
            return ok, {
                "listening": ok,
                "port": link.port,
                "tls": not link.cfg.insecure,
                "means": "the HTTPS listener for the enterprises' envelopes is bound and accepting",
            }

        return check

    def health(self) -> tuple[bool, dict[str, object]]:
        stopped = [n for n, t in self._tasks.items() if t.done()]
        return not stopped, {"stopped_tasks": stopped}

    async def start(self) -> None:
        if self.cfg.database.migrate:
            await asyncio.to_thread(migrate_bureau, self.cfg)
        port = await self.http.start()
        if self.link is not None:
            await self.link.start()
        self._stop.clear()
        self._halt = asyncio.Event()
        # what start-up made (modules, schemas, config) lives as long as the process: out of the
        # cyclic collector's reach, so its full passes walk only what the feed makes and frees
        # (measured: a worker's storing about 1.5x faster in bench/bureau.py's in-process check)
        gc.collect()
        gc.freeze()
        self._tasks["subscriber"] = asyncio.create_task(asyncio.to_thread(self.subscriber.run, self._stop))
        self._tasks["downlink"] = asyncio.create_task(asyncio.to_thread(self.downlink.run, self._stop))
        if self.forwarder is not None:
            self._tasks["forwarder"] = asyncio.create_task(asyncio.to_thread(self.forwarder.run, self._stop))
        self._tasks["warnings"] = asyncio.create_task(self._warnings())
        self._tasks["notices"] = asyncio.create_task(self.notices.run(self._stop))
        if self.cfg.plans:
            self._tasks["plans"] = asyncio.create_task(self.plans.run(self._stop))
        log.info(
            "bureau daemon started",
            bureau=self.cfg.id,
            region=self.cfg.region.code,
            level=self.cfg.region.level,
            http_port=port,
        )

    def tick_warnings(self) -> list[Change]:
        """One evaluation of the warning rules now (idempotent: one open warning per cause).

        The same tick escalates every supervision (挂牌督办) overdue and never escalated, once.
        """
        with connect(self.cfg.database.resolved_dsn()) as c:
            now = self.clock()
            changes = tick(c, self.cfg.warning_settings, now)
            escalated = escalate_due(
                c, ZoneInfo(self.cfg.warning_settings.timezone), now,
                after_days=self.cfg.supervision.escalate_after_days,
            )  # fmt: skip
        if escalated:
            self.supervisions_escalated += len(escalated)
            self.downlink.wake()  # each escalation went to the downlink outbox in its transaction
            self.notices.wake()  # and is to be told to the region's staff
        if changes:
            self.downlink.wake()  # each change went to the downlink outbox in tick's transaction
            self.notices.wake()  # and a raise is to be told to the region's staff
        for ch in changes:
            self.warning_changes[ch.action] += 1
            log.info(
                "bureau warning",
                action=ch.action,
                cause=ch.cause_key,
                warning=ch.warning_id,
                colour=None if ch.cause is None else ch.cause.colour.colour,
            )
        return changes

    async def _warnings(self) -> None:
        """The rules every ``warnings.tick_interval_s``; a failing pass is logged and tried again."""
        every = self.cfg.warnings.tick_interval_s
        while not self._stop.is_set():
            try:
                await asyncio.to_thread(self.tick_warnings)
            except (psycopg.Error, OSError) as e:
                log.warning("bureau warnings: evaluation failed, retrying", error=str(e).strip())
            # on the loop, not a worker thread parked in a wait (the API's calls need those); `stop` ends it
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(every):
                    await self._halt.wait()

    async def stop(self) -> None:
        self._stop.set()
        self._halt.set()
        self.downlink.wake()
        self.notices.wake()
        self.plans.wake()
        for t in self._tasks.values():
            await t
        self._tasks.clear()
        await self.http.stop()
        if self.link is not None:
            await self.link.stop()
        log.info("bureau daemon stopped", bureau=self.cfg.id)

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
