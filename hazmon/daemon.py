"""The daemon: the one place that knows every component and wires them together.

Data flows one way; `Daemon` starts, connects and stops the parts, and this is every arrow::

    MQTT / OPC UA inputs ─► ReadingQueue (bounded) ─► consumer ─┬─► BatchWriter ─► PostgreSQL
                                                                │        └─► Spool (disk) ─┘
                                                                └─► RulesRunner ─► findings ─► AlarmService
    StaleTracker (no reading for N x period, source down) ──► StaleChange ──► RulesRunner
    source down / up ──► link_lost Finding ──► AlarmService (its sensors' stale: its consequences)
    BatchWriter (spool full) ──► system Finding ──► AlarmService
    AlarmService events ──(same transaction)──► uplink outbox ──► bureau; bureau steps ──► AlarmService

The parts are built by `hazmon.wiring.wire` (a list of them, one small function each);
the slow loops beside the flow (rollups and retention, TimescaleDB job health, supervision
findings, assessment overrides) are in `hazmon.upkeep`, and the marker that tells an
unclean previous run in `hazmon.marker`. The alarms are optional (``alarms: false``):
without them the daemon runs collectors, store and rules only. Start it in-process with
``async with Daemon(config, plant) as d:`` or from the command line with
``hazmon run -c hazmon.yaml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog

from hazmon.alarms.tiers import load_limit_overrides
from hazmon.clock import now_us
from hazmon.collector import Input
from hazmon.config import DaemonConfig
from hazmon.failures import Failures
from hazmon.marker import RunningMarker
from hazmon.plans_wiring import PlanRunner, plan_runner
from hazmon.plant import (
    Finding,
    Limits,
    OpcUaBinding,
    Plant,
    Reading,
    ReadingBatch,
    StaleChange,
)
from hazmon.plant.aio import cancel_and_wait
from hazmon.readiness import DatabaseProbe, add_daemon_checks
from hazmon.store import (
    connect,
    migrate,
    newest_reading_us,
    sensor_ids,
    storage_mode,
    sync_registry,
)
from hazmon.upkeep import AssessmentReload, SupervisionFindings, Upkeep, job_metrics
from hazmon.weather_wiring import WeatherRunner, weather_runner
from hazmon.wiring import Wiring, wire

__all__ = ["AlarmsLike", "Daemon", "RulesLike", "Wiring", "now_us", "wire"]

log = structlog.get_logger("hazmon.daemon")

# a reading waits at most this long before the rules see it. Gathering bounds the consumer's
# per-iteration cost (a wake-up, the writer and rules calls: ~0.3 ms) to ~3 % of a core when
# single-reading messages arrive faster than it; 50 ms was most of the alarm latency's p50
_GATHER_S = 0.01


class RulesLike(Protocol):
    """What the daemon calls on `hazmon.rules.RulesRunner`."""

    def process(
        self, readings: Sequence[Reading] | ReadingBatch, stale: Sequence[StaleChange], now_us: int
    ) -> list[Finding]: ...
    def tick(self, now_us: int) -> list[Finding]: ...
    def set_overrides(self, overrides: dict[str, Limits]) -> None: ...


class AlarmsLike(Protocol):
    """What the daemon calls on `hazmon.alarms.AlarmService`."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def handle(self, findings: Sequence[Finding], now_us: int) -> None: ...
    async def tick(self, now_us: int) -> None: ...
    def routes(self) -> Any: ...
    def metrics(self) -> dict[str, int]: ...


class Daemon:
    """The running daemon; ``async with Daemon(config, plant) as d:`` in tests, `run` from the CLI."""

    supervision_every_s = 60.0  # hidden dangers and duties are checked for overdue ones this often
    plans_every_s = 2.0  # emergency plans: start, level and end conditions are judged this often

    def __init__(self, config: DaemonConfig, plant: Plant) -> None:
        self.config = config
        self.plant = plant
        self.w: Wiring | None = None
        self.http_port = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._findings_ready = asyncio.Event()
        self._alarms_idle = asyncio.Event()  # clear while findings are being handed to the alarm service
        self._alarms_idle.set()
        self._alarms_handled = asyncio.Condition()  # notified after each hand-over to the alarm service
        self._storage_mode = ""
        self._overrides: dict[str, Limits] = {}
        self._newest_stored: dict[str, int] = {}  # OPC UA endpoint -> newest stored reading (µs)
        self._consumer_done = False
        self._alarms_started = asyncio.Event()  # the alarm service is connected (it may wait for the DB)
        # the parts beside the flow (hazmon.upkeep, hazmon.marker), built at start
        self.upkeep: Upkeep | None = None
        self.assessments: AssessmentReload | None = None
        self.marker: RunningMarker | None = None
        self.plans: PlanRunner | None = None
        self.weather: WeatherRunner | None = None

    @property
    def overrides_reloads(self) -> int:
        """Times changed assessment overrides were given to the rules."""
        return 0 if self.assessments is None else self.assessments.reloads

    async def upkeep_once(self, retention: bool = False) -> None:
        """One round of the upkeep task (`hazmon.upkeep.Upkeep.once`)."""
        assert self.upkeep is not None
        await self.upkeep.once(retention)

    # -- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await asyncio.to_thread(Path(self.config.data_dir).mkdir, parents=True, exist_ok=True)
        ids, overrides = await asyncio.to_thread(self._registry)
        loop = asyncio.get_running_loop()
        self.w = w = wire(
            config=self.config, plant=self.plant, ids=ids, overrides=overrides, loop=loop, health=self.health
        )
        self.marker = RunningMarker(Path(self.config.data_dir), lambda: w.queue.depth + w.writer.buffered)
        await asyncio.to_thread(
            self.marker.previous_run, w.metrics, w.system, self.config.collector.mqtt.ack == "durable"
        )
        self._failures = Failures.named(
            w.metrics,
            alarms_start="alarm service start (waiting for the database)",
            alarms="alarm service recording findings (kept and retried)",
            tick="rules/alarms tick",
        )
        await self._start_alarms()
        add_daemon_checks(
            w.http,
            writer=w.writer,
            spool=w.spool,
            probe=DatabaseProbe(self.config.database.resolved_dsn()),
            sources=w.sources,
            source_names=[i.name for i in w.inputs],
            alarms_started=None if w.alarms is None else self._alarms_started.is_set,
            alarms_start=self._failures["alarms_start"],
            stopped_tasks=lambda: [t.get_name() for t in self._tasks if t.done()],
        )
        dsn = self.config.database.resolved_dsn()
        upkeep = self.upkeep = Upkeep(self.config.database, w.metrics, self._storage_mode)
        w.http.add_check("db_jobs", upkeep.jobs_ready)
        found = None if w.alarms is None else self._found_and_recorded
        self.weather = weather_runner(  # mounts its route; the rules' limits: assessments + weather
            self.config, self.plant, w.http, w.metrics, found,
            None if w.rules is None else w.rules.set_overrides, self._overrides,
        )  # fmt: skip
        self.assessments = AssessmentReload(
            dsn,
            self.plant,
            self.config.database.assessments_refresh_s,
            self._overrides,
            None if w.rules is None else self.weather.set_assessments,
        )
        self.http_port = await w.http.start()
        self._tasks = [
            asyncio.create_task(w.writer.run(), name="writer"),
            asyncio.create_task(self._consume(), name="consumer"),
            asyncio.create_task(self._tick(), name="tick"),
            asyncio.create_task(self.assessments.run(), name="assessments"),
            asyncio.create_task(self.marker.run(), name="running-marker"),
        ]
        if w.alarms is not None:
            supervision = SupervisionFindings(
                dsn, self.plant, w.metrics, self._found_and_recorded, self.supervision_every_s
            )
            self._tasks.append(asyncio.create_task(self._alarms(), name="alarms"))
            self._tasks.append(asyncio.create_task(supervision.run(), name="supervision"))
        if w.uplink is not None:  # the bureau link: outbox -> bureau, bureau steps -> alarms
            self._tasks.append(asyncio.create_task(w.uplink.run(), name="uplink"))
        if w.alarms is not None:  # one instance per plant (scale-out: the one with the alarms)
            self._tasks += self.weather.tasks()  # warnings in: inbox, URL; their effects while in force
        if self.plant.plans and w.alarms is not None:  # emergency plans (hazmon.plans_wiring)
            self.plans = plan_runner(self.config, self.plant, w.metrics, self.plans_every_s)
            self._tasks.append(asyncio.create_task(self.plans.run(), name="plans"))
        if self._storage_mode in ("plain", "timescaledb", ""):  # "": DB down at start, mode read later
            job_metrics(w.metrics, lambda: upkeep.job_health)
            self._tasks.append(asyncio.create_task(upkeep.run(), name="upkeep"))
        # everything built so far (plant model, registry, rules windows, alarm state) lives as long
        # as the daemon: out of the collector's sight, a full collection no longer walks it
        # (those walks were 50 ms pauses of every thread, seen in the alarm latency's tail)
        gc.collect()
        gc.freeze()
        for i in w.inputs:
            i.start(backfill_from_us=self._newest_stored.get(i.name))
        log.info(
            "hazmon daemon running",
            plant=self.plant.path,
            inputs=[i.name for i in w.inputs],
            http_port=self.http_port,
            rules=w.rules is not None,
            alarms=w.alarms is not None,
            spool_readings=w.spool.rows,
        )

    async def stop(self) -> None:
        """Inputs first (the broker keeps what we did not take), then drain queue and writer.

        An MQTT input acknowledging on commit is only paused here (connected, taking
        nothing new) and stopped after the writer, so the acks of what it queued go out.
        """
        w = self.w
        if w is None:
            return
        later: list[Input] = []
        for i in w.inputs:
            if i.prepare_stop():
                later.append(i)
            else:
                await i.stop()
        self._stopping.set()
        consumer = next(t for t in self._tasks if t.get_name() == "consumer")
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        w.writer.stop()
        writer = next(t for t in self._tasks if t.get_name() == "writer")
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        for i in later:
            await i.stop()
        # findings being recorded are not cut off halfway (cancelled, they were neither recorded nor
        # kept: an alarm or its return to normal could be lost at a stop); what is left after is
        # handled below
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await self._alarms_idle.wait()
        await cancel_and_wait(*self._tasks)
        if self.plans is not None:
            await self.plans.close()
        w.queue.close()
        if w.alarms is not None:
            if w.pending_findings and not await self._start_alarms():  # a last try
                log.error(
                    "findings not recorded: the alarm service never reached the database",
                    n=len(w.pending_findings),
                )
            elif w.pending_findings:
                try:
                    await w.alarms.handle(list(w.pending_findings), now_us())
                except Exception:
                    log.exception("alarm service failed on the last findings", n=len(w.pending_findings))
            await w.alarms.close()
        await w.http.stop()
        self.w = None
        if self.marker is not None:
            self.marker.remove()  # a clean stop: nothing was left in memory
        log.info("hazmon daemon stopped")

    async def run_until(self, stop: asyncio.Event) -> None:
        async with self:
            await stop.wait()

    # -- the registry -----------------------------------------------------------------------
    def _registry(self) -> tuple[dict[str, int], dict[str, Limits]]:
        """Migrate, load the plant registry, read assessment overrides; cached for DB-less starts."""
        cache = Path(self.config.data_dir) / "registry.json"
        db = self.config.database
        try:
            with connect(db.resolved_dsn()) as conn:
                if db.migrate:
                    migrate(conn, db.storage())
                    conn.autocommit = False
                    ids = sync_registry(conn, self.plant)
                    conn.commit()
                else:
                    ids = sensor_ids(conn, self.plant.enterprise.id)
                self._storage_mode = storage_mode(conn) or ""
                overrides = load_limit_overrides(conn, self.plant)
                self._newest_stored = self._newest_per_endpoint(conn, ids)
            self._overrides = overrides
            cache.write_text(json.dumps(ids))
            return ids, overrides
        except Exception as e:
            if not cache.exists():
                raise RuntimeError(f"database unreachable and no registry cache at {cache}: {e}") from e
            log.error(
                "database unreachable at start; using the cached registry (readings are spooled)",
                error=str(e),
                cache=str(cache),
            )
            return {str(k): int(v) for k, v in json.loads(cache.read_text()).items()}, {}

    def _newest_per_endpoint(
        self, conn: psycopg.Connection[tuple[object, ...]], ids: dict[str, int]
    ) -> dict[str, int]:
        """OPC UA endpoint -> its newest stored reading (µs).

        Each endpoint's first connection reads back from there what the server historized while
        the daemon was away (a stop, or a kill -9 that lost the readings in memory).
        """
        max_s = self.config.collector.opcua.backfill_max_s
        if max_s <= 0:
            return {}
        not_before = datetime.now(UTC) - timedelta(seconds=max_s)
        out: dict[str, int] = {}
        for ep in self.plant.opcua:
            tags = [
                s.tag
                for s in self.plant.sensors()
                if isinstance(s.binding, OpcUaBinding) and s.binding.endpoint == ep.name and s.tag in ids
            ]
            try:
                newest = newest_reading_us(conn, [ids[t] for t in tags], not_before)
            except psycopg.Error as e:  # the start goes on; only this backfill is lost, and said so
                conn.rollback()
                log.error("newest stored reading unknown: no backfill at start", source=ep.name, error=str(e))
                continue
            if newest is not None:
                out[ep.name] = newest
        return out

    # -- the flow ------------------------------------------------------------------------------
    async def _consume(self) -> None:
        """Queue -> writer (buffer only, never waits for the database) and -> rules -> alarms."""
        w = self.w
        assert w is not None
        batch_max = self.config.collector.batch_max_readings
        ack_flush_at = max(1, self.config.collector.mqtt.max_inflight // 2)
        while True:
            batch = await w.queue.get_batch(batch_max, 0.2)
            arrivals = w.queue.last_arrivals
            if not len(batch) and self._stopping.is_set() and w.queue.depth == 0:
                break
            if len(batch) and len(batch) < batch_max // 2:
                # gather a little: rules and writer cost per call, and single-reading messages
                # would otherwise wake this loop once per message (measured: 336 µs per message)
                await asyncio.sleep(_GATHER_S)
                more = await w.queue.get_batch(batch_max - len(batch), 0)
                batch = ReadingBatch.concat([batch, more])
                arrivals = arrivals + w.queue.last_arrivals
            t = now_us()
            changes = w.stale.seen(batch.tags, t) if len(batch) else []
            if w.pending_stale:
                changes = w.pending_stale + changes
                w.pending_stale.clear()
            w.writer.add(batch, w.queue.taken, arrivals)  # settled up to there: the queue runs the acks
            if w.queue.pending_acks and (w.queue.depth == 0 or w.queue.pending_acks >= ack_flush_at):
                # messages wait for their acks and the broker sends no more than its in-flight
                # window: write now rather than at the next size or interval flush
                w.writer.poke()
            await self._rules_and_alarms(batch, changes, t)
            await w.writer.room(4 * batch_max)  # the writer is behind: push back on the queue
        self._consumer_done = True

    async def _rules_and_alarms(self, batch: ReadingBatch, changes: Sequence[StaleChange], t: int) -> None:
        w = self.w
        assert w is not None
        for c in changes:
            (log.warning if c.stale else log.info)(
                "sensor stale" if c.stale else "sensor fresh", tag=c.tag, reason=c.reason
            )
        if w.rules is not None and (len(batch) or changes):
            try:
                found = w.rules.process(batch, changes, t)
            except Exception:  # a rules bug must not stop the collectors and the writer
                w.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": "rules"})
                log.exception("rules engine failed on a batch", n=len(batch))
                return
            if found and w.alarms is not None:
                self._found(found)

    async def _found_and_recorded(self, findings: Sequence[Finding]) -> None:
        """Queue ``findings`` for the alarms and return once the alarm service has recorded them."""
        w = self.w
        assert w is not None
        mine = {id(f) for f in findings}
        self._found(findings)
        # the alarms task takes the queue and clears "idle" in one step; a failed handle puts them back
        async with self._alarms_handled:
            await self._alarms_handled.wait_for(
                lambda: self._alarms_idle.is_set() and not any(id(f) in mine for f in w.pending_findings)
            )

    def _found(self, findings: Sequence[Finding]) -> None:
        """Findings for the alarms (rules, supervision): queued, and the alarms task woken."""
        w = self.w
        assert w is not None
        w.pending_findings.extend(findings)
        self._findings_ready.set()

    async def _start_alarms(self) -> bool:
        """Start the alarm service; with the database away it waits (each tick retries; /readyz says so)."""
        w = self.w
        assert w is not None
        if w.alarms is None or self._alarms_started.is_set():
            return True
        fails = self._failures["alarms_start"]
        try:
            await w.alarms.start()
        except Exception as e:
            fails.failed(e)
            return False
        fails.ok()
        self._alarms_started.set()
        self._findings_ready.set()  # what waited meanwhile
        return True

    async def _alarms(self) -> None:
        """Findings -> alarms, in a task of its own: the consumer never waits for the alarm database.

        A failed `handle` keeps the findings (in order) and retries them a second later.
        Until the alarm service has started (`_start_alarms`) the findings wait.
        """
        w = self.w
        assert w is not None and w.alarms is not None
        fails = self._failures["alarms"]
        while True:
            await self._alarms_started.wait()
            await self._findings_ready.wait()
            self._findings_ready.clear()
            if not w.pending_findings:
                continue
            findings = list(w.pending_findings)
            w.pending_findings.clear()
            self._alarms_idle.clear()
            failed = False
            try:
                await w.alarms.handle(findings, now_us())
                fails.ok()
            except Exception as e:
                failed = True
                fails.failed(e)
                w.pending_findings[:0] = findings
            except asyncio.CancelledError:  # a stop that could not wait: its final pass takes them
                w.pending_findings[:0] = findings
                raise
            finally:
                self._alarms_idle.set()
            async with self._alarms_handled:
                self._alarms_handled.notify_all()
            if failed:
                await asyncio.sleep(1.0)
                self._findings_ready.set()

    async def _tick(self) -> None:
        w = self.w
        assert w is not None
        while True:
            await asyncio.sleep(1.0)
            t = now_us()
            w.pending_stale.extend(w.stale.check(t))
            if w.alarms is None:
                w.pending_findings.clear()  # no alarm service: the findings were logged where raised
            elif w.pending_findings:  # system findings raised by the writer
                self._findings_ready.set()
            try:
                if w.rules is not None:
                    found = w.rules.tick(t)
                    if w.alarms is not None and found:
                        self._found(found)
                if w.alarms is not None and await self._start_alarms():
                    await w.alarms.tick(t)
                self._failures["tick"].ok()
            except Exception as e:  # one line when it starts failing, a counter, one when it ends
                self._failures["tick"].failed(e)

    def health(self) -> tuple[bool, dict[str, object]]:
        w = self.w
        if w is None:
            return False, {"reason": "not running"}
        dead_tasks = [t.get_name() for t in self._tasks if t.done()]
        ok = not dead_tasks
        return ok, {
            "database_up": w.writer.db_up,
            "sources": {
                i.name: bool(w.metrics.get("hazmon_source_connected", {"source": i.name})) for i in w.inputs
            },
            "queue_readings": w.queue.depth,
            "spool_readings": w.spool.rows,
            "stale_sensors": w.stale.stale_count,
            "stopped_tasks": dead_tasks,
        }
