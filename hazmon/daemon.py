"""The daemon: the one place that knows every component and wires them together.

Data flows one way, and `wire` is the one function that shows every arrow::

    MQTT / OPC UA inputs ─► ReadingQueue (bounded) ─► consumer ─┬─► BatchWriter ─► PostgreSQL
                                                                │        └─► Spool (disk) ─┘
                                                                └─► RulesRunner ─► findings ─► AlarmService
    StaleTracker (no reading for N x period, source down) ──► StaleChange ──► RulesRunner
    source down / up ──► link_lost Finding ──► AlarmService (its sensors' stale: its consequences)
    BatchWriter (spool full) ──► system Finding ──► AlarmService

Rules and alarms are optional (HOOK POINTS in `wire`): with neither installed the
daemon runs collectors + store only. Start it in-process with
``async with Daemon(config, plant) as d:`` or from the command line with
``hazmon run -c hazmon.yaml``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import psycopg
import structlog

from hazmon.alarms import AlarmService
from hazmon.alarms.causes import link_finding
from hazmon.alarms.tiers import load_limit_overrides
from hazmon.collector import (
    BatchWriter,
    DeadLetters,
    Input,
    Metrics,
    MqttInput,
    ReadingQueue,
    Spool,
    StaleTracker,
    SystemEvent,
    TopicMap,
)
from hazmon.collector.opcua import inputs_for_plant
from hazmon.config import DaemonConfig
from hazmon.failures import Failures
from hazmon.http import HttpServer
from hazmon.metrics import daemon_metrics
from hazmon.plant import (
    Condition,
    Finding,
    Level,
    Limits,
    OpcUaBinding,
    Plant,
    Reading,
    ReadingBatch,
    StaleChange,
    from_us,
)
from hazmon.plant.aio import cancel_and_wait
from hazmon.plant.reading import measuring_band
from hazmon.readiness import DatabaseProbe, SourceStates, add_daemon_checks
from hazmon.rules import RulesRunner
from hazmon.store import (
    JobHealth,
    JobState,
    connect,
    migrate,
    newest_reading_us,
    refresh_overdue,
    refresh_rollups,
    sensor_ids,
    storage_mode,
    sync_registry,
)
from hazmon.store import job_health as read_job_health
from hazmon.supervision.repository import mark_told, sweep_once
from hazmon.system_zh import system_message_zh

__all__ = ["AlarmsLike", "Daemon", "RulesLike", "Wiring", "now_us", "wire"]

log = structlog.get_logger("hazmon.daemon")

# a reading waits at most this long before the rules see it. Gathering bounds the consumer's
# per-iteration cost (a wake-up, the writer and rules calls: ~0.3 ms) to ~3 % of a core when
# single-reading messages arrive faster than it; 50 ms was most of the alarm latency's p50
_GATHER_S = 0.01


def now_us() -> int:
    return time.time_ns() // 1000


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


@dataclass
class Wiring:
    """Every part of the running pipeline (built by `wire`)."""

    metrics: Metrics
    queue: ReadingQueue
    dead: DeadLetters
    spool: Spool
    writer: BatchWriter
    stale: StaleTracker
    inputs: list[Input]
    rules: RulesLike | None
    alarms: AlarmsLike | None
    http: HttpServer
    pending_stale: list[StaleChange] = field(default_factory=list)
    pending_findings: list[Finding] = field(default_factory=list)
    system_findings: list[Finding] = field(
        default_factory=list
    )  # the last 100 raised, for /healthz and tests
    system_event: SystemEvent | None = None  # raise / clear a condition of the daemon itself
    sources: SourceStates = field(default_factory=SourceStates)  # connected or not, for /readyz


def wire(
    *,
    config: DaemonConfig,
    plant: Plant,
    ids: dict[str, int],
    overrides: dict[str, Limits],
    loop: asyncio.AbstractEventLoop,
    health: Any,
) -> Wiring:
    """Build every part and connect the arrows (the only place that does)."""
    cs = config.collector
    metrics = daemon_metrics()
    queue = ReadingQueue(cs.queue_max_readings, loop)
    dead = DeadLetters(
        metrics,
        cs.dead_letter_max_pending,
        cs.dead_letter_payload_bytes,
        cs.log_payload_cut,
        cs.log_interval_s,
    )
    spool = Spool(
        cs.spool.dir or Path(config.data_dir) / "spool",
        int(cs.spool.max_mb * (1 << 20)),
        int(cs.spool.segment_mb * (1 << 20)),
    )
    stale = StaleTracker({s.tag: s.period_s for s in plant.sensors()}, cs.stale_factor, now_us())
    pending_findings: list[Finding] = []
    system_findings: list[Finding] = []
    active_keys: set[str] = set()

    def system_event(key: str, active: bool, message: str) -> None:
        # writer (spool full / spool I/O error), an unclean previous run -> a system finding -> alarms.
        # The plant has one system alarm: it stays active while any condition is.
        metrics.set("hazmon_system_condition", float(active), {"key": key})
        (active_keys.add if active else active_keys.discard)(key)
        system_findings.append(
            Finding(
                plant.enterprise.id,
                None,
                Condition.SYSTEM,
                Level.FAULT,
                bool(active_keys),
                now_us(),
                message_en=message,
                message_zh=system_message_zh(key, active, message),
            )
        )
        pending_findings.append(system_findings[-1])
        del system_findings[:-100]
        (log.error if active else log.info)("system condition", key=key, active=active, message=message)

    writer = BatchWriter(
        config.database.resolved_dsn(),
        ids,
        spool,
        dead,
        metrics,
        batch_max_readings=cs.batch_max_readings,
        flush_interval_s=cs.flush_interval_s,
        write_timeout_s=cs.write_timeout_s,
        retry_max_s=cs.retry_max_s,
        dead_letter_retention_days=cs.dead_letter_retention_days,
        on_system=system_event,
        own_thread=True,  # its COPYs wait for PostgreSQL only, not behind the rules on this loop
        on_settled=queue.settled,  # committed or spooled up to a queue position: MQTT acks go out
        bands={s.tag: measuring_band(s.range) for s in plant.sensors()},  # outside: stored OUT_OF_RANGE
    )
    w = Wiring(
        metrics,
        queue,
        dead,
        spool,
        writer,
        stale,
        [],
        None,
        None,
        HttpServer(config.http.host, config.http.port, metrics, health),
        pending_findings=pending_findings,
        system_findings=system_findings,
        system_event=system_event,
    )

    def source_state(source: str, connected: bool, reason: str) -> None:
        # any thread -> the loop: a source going away marks all its sensors stale at once
        loop.call_soon_threadsafe(_source_state, w, plant.enterprise.id, source, connected, reason)

    # collectors -> queue
    suffix = f"-{config.instance}" if config.instance else ""
    for broker in plant.mqtt:
        topics = TopicMap.from_plant(plant, broker.name)
        if topics.routes:
            w.inputs.append(
                MqttInput(
                    broker,
                    topics=topics,
                    queue=queue,
                    dead=dead,
                    metrics=metrics,
                    settings=cs.mqtt,
                    on_state=source_state,
                    client_id_suffix=suffix,
                )
            )
    w.inputs.extend(
        inputs_for_plant(
            plant, queue=queue, dead=dead, metrics=metrics, settings=cs.opcua, on_state=source_state
        )
    )

    # ---- rules (readings -> findings) and alarms (findings -> notifications) ----------------
    rules = w.rules = RulesRunner(plant, config.rules, overrides)
    metrics.gauge_fn(
        "hazmon_rules_counters",
        "Rules engine counters, by counter",
        lambda: {(k,): float(v) for k, v in rules.counters.items()},
        ("counter",),
    )
    if config.alarms_enabled:
        # clock: an operator's action is recorded at the time it arrived, not at the last tick
        alarms = w.alarms = AlarmService(plant, config.alarms, config.database.resolved_dsn(), clock=now_us)
        w.http.mount(alarms.routes())
        metrics.gauge_fn(
            "hazmon_alarms_counters",
            "Alarm service counters, by counter",
            lambda: {(k,): float(v) for k, v in alarms.metrics().items()},
            ("counter",),
        )
        alarms.on_first_notice = lambda s: metrics.observe("hazmon_alarm_to_notification_seconds", s)
    m = metrics
    m.gauge_fn("hazmon_queue_readings", "Readings in the collector queue", lambda: {(): float(queue.depth)})
    m.gauge_fn(
        "hazmon_mqtt_unacked_messages",
        "QoS 1 messages taken in but not yet acknowledged (their readings are not committed or spooled yet)",
        lambda: {(): float(queue.pending_acks)},
    )
    m.gauge_fn(
        "hazmon_queue_full_waits",
        "Times a collector waited on a full queue",
        lambda: {(): float(queue.waits)},
    )
    m.gauge_fn(
        "hazmon_queue_malformed_readings",
        "Readings a collector built wrong (not a number, bad quality), dropped and logged",
        lambda: {(): float(queue.malformed)},
    )
    m.gauge_fn("hazmon_stale_sensors", "Sensors currently stale", lambda: {(): float(stale.stale_count)})
    m.gauge_fn(
        "hazmon_dead_letters_pending", "Dead letters not yet stored", lambda: {(): float(dead.pending)}
    )
    return w


def _source_state(w: Wiring, enterprise: str, source: str, connected: bool, reason: str) -> None:
    tags = next((i.tags for i in w.inputs if i.name == source), [])
    w.sources.set(source, connected, reason)
    t = now_us()
    # one cause, one alarm: the link's finding goes to the alarms before its sensors' stale
    # conditions (its consequences, hazmon.alarms.causes) have passed the rules
    w.pending_findings.append(
        link_finding(enterprise, source, lost=not connected, reason=reason, sensors=len(tags), now_us=t)
    )
    if connected:
        w.pending_stale.extend(w.stale.source_up(source, t, tags))
    else:
        w.pending_stale.extend(w.stale.source_down(source, tags, t, reason))


class Daemon:
    """The running daemon; ``async with Daemon(config, plant) as d:`` in tests, `run` from the CLI."""

    supervision_every_s = 60.0  # hidden dangers and duties are checked for overdue ones this often

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
        self._storage_mode = ""
        self.rollup_refreshes = 0
        self.job_health: JobHealth | None = None  # TimescaleDB jobs as last read by the upkeep
        self.overrides_reloads = 0  # times changed assessment overrides were given to the rules
        self._overrides: dict[str, Limits] = {}
        self._newest_stored: dict[str, int] = {}  # OPC UA endpoint -> newest stored reading (µs)
        self._consumer_done = False
        self._alarms_started = asyncio.Event()  # the alarm service is connected (it may wait for the DB)

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
        await asyncio.to_thread(self._previous_run, w)
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
        w.http.add_check("db_jobs", self._jobs_ready)
        self.http_port = await w.http.start()
        self._tasks = [
            asyncio.create_task(w.writer.run(), name="writer"),
            asyncio.create_task(self._consume(), name="consumer"),
            asyncio.create_task(self._tick(), name="tick"),
            asyncio.create_task(self._assessments(), name="assessments"),
            asyncio.create_task(self._mark_running(), name="running-marker"),
        ]
        if w.alarms is not None:
            self._tasks.append(asyncio.create_task(self._alarms(), name="alarms"))
            self._tasks.append(asyncio.create_task(self._supervision(), name="supervision"))
        if self._storage_mode in ("plain", "timescaledb", ""):  # "": DB down at start, mode read later
            _job_metrics(w.metrics, lambda: self.job_health)
            self._tasks.append(asyncio.create_task(self._plain_upkeep(), name="upkeep"))
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
        with contextlib.suppress(OSError):
            self._marker.unlink(missing_ok=True)  # a clean stop: nothing was left in memory
        log.info("hazmon daemon stopped")

    # -- unclean stops ------------------------------------------------------------------------
    @property
    def _marker(self) -> Path:
        return Path(self.config.data_dir) / "running.json"

    def _previous_run(self, w: Wiring) -> None:
        """A marker left by the previous run means it ended without `stop` (crash, kill -9, power cut).

        MQTT QoS 1 messages acknowledged on commit (``ack: durable``) come again from
        the broker. Readings no broker keeps for us (OPC UA, QoS 0, ``ack: received``)
        that were in memory (queue, writer buffer) were lost; the marker's last
        snapshot says how many readings were in memory at most. That loss cannot be
        undone here, but it is not silent: an error log line, the
        ``hazmon_previous_run_unclean`` gauge, and a system alarm.
        """
        m = self._marker
        if not m.exists():
            w.metrics.set("hazmon_previous_run_unclean", 0)
            return
        try:
            snap = json.loads(m.read_text())
            held, at = int(snap["in_memory"]), str(snap["at"])
        except (OSError, ValueError, KeyError, TypeError):
            held, at = -1, "unknown"
        what = f"up to {held} readings held in memory" if held >= 0 else "an unknown number of readings"
        if self.config.collector.mqtt.ack == "durable":
            fate = (
                "then may not be in the database: MQTT QoS 1 messages among them were not acknowledged "
                "and the broker delivers them again; OPC UA and QoS 0 readings among them are lost"
            )
        else:
            fate = "then were acknowledged to the broker (ack: received) but may not be in the database"
        msg = f"the previous daemon run ended without a clean stop (last seen {at}); {what} {fate}"
        log.error("previous run ended uncleanly", marker=str(m), in_memory=held, last_seen=at)
        w.metrics.set("hazmon_previous_run_unclean", 1)
        if w.system_event is not None:
            w.system_event("unclean_shutdown", True, msg)
            w.system_event("unclean_shutdown", False, "recorded: " + msg)  # an event, not a standing state

    def _write_marker(self) -> None:
        w = self.w
        if w is None:
            return
        tmp = self._marker.with_suffix(".tmp")
        held = w.queue.depth + w.writer.buffered
        tmp.write_text(
            json.dumps({"pid": os.getpid(), "at": from_us(now_us()).isoformat(), "in_memory": held})
        )
        tmp.replace(self._marker)

    async def _mark_running(self) -> None:
        """Keep the running marker's snapshot (readings in memory) current, every second."""
        while True:
            try:
                await asyncio.to_thread(self._write_marker)
            except OSError as e:
                log.warning("running marker not written", error=str(e))
            await asyncio.sleep(1.0)

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
                w.pending_findings.extend(found)
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
                        w.pending_findings.extend(found)
                        self._findings_ready.set()
                if w.alarms is not None and await self._start_alarms():
                    await w.alarms.tick(t)
                self._failures["tick"].ok()
            except Exception as e:  # one line when it starts failing, a counter, one when it ends
                self._failures["tick"].failed(e)

    async def _assessments(self) -> None:
        """Re-read assessment limit overrides; changed ones go to the rules without a restart.

        The alarm service re-reads grades on its own; this is the rules' half (the
        limits agreed in an assessment take precedence over the plant file).
        """
        w = self.w
        assert w is not None
        dsn = self.config.database.resolved_dsn()

        def read() -> dict[str, Limits]:
            with connect(dsn) as conn:
                return load_limit_overrides(conn, self.plant)

        while True:
            await asyncio.sleep(self.config.database.assessments_refresh_s)
            try:
                got = await asyncio.to_thread(read)
            except Exception as e:  # the database may be down: keep the limits we have
                log.warning("assessment overrides not re-read; keeping the current ones", error=str(e))
                continue
            if got != self._overrides and w.rules is not None:
                changed = sorted(
                    t for t in got.keys() | self._overrides.keys() if got.get(t) != self._overrides.get(t)
                )
                self._overrides = got
                w.rules.set_overrides(got)
                self.overrides_reloads += 1
                log.info("assessment limit overrides changed; rules use them now", tags=changed)

    async def _supervision(self) -> None:
        """Hidden dangers and duties -> alarms: overdue rectifications, missed checks, missing commitments.

        `hazmon.supervision` computes only the changes since what the alarms were last told
        (one finding per record and deadline); they join the rules' findings, then the told
        state is stored so a restart repeats nothing.
        """
        w = self.w
        assert w is not None
        dsn = self.config.database.resolved_dsn()
        while True:
            await asyncio.sleep(self.supervision_every_s)
            try:
                sweep = await asyncio.to_thread(sweep_once, dsn, self.plant, from_us(now_us()))
                if sweep.findings:
                    w.pending_findings.extend(sweep.findings)
                    self._findings_ready.set()
                await asyncio.to_thread(mark_told, dsn, self.plant, sweep)
            except Exception as e:  # the database may be down: the next round sees the same changes
                w.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": "supervision"})
                log.warning("supervision findings not computed; retried in a minute", error=str(e))

    async def _plain_upkeep(self) -> None:
        """Keep the rollups fresh in both storage modes, and do plain mode's retention.

        Every minute the rollups (readings_1m / readings_1h) are refreshed over exactly the
        source-time ranges committed since the last round (live data, spool replays, OPC UA
        backfills: `hazmon.store.refresh_rollups`). On TimescaleDB the jobs' health is read
        (metrics, readiness) and a refresh policy that has not run on time is done here. Once
        a day, in plain mode, rows past their retention are deleted.
        """
        w = self.w
        assert w is not None
        last_retention = 0.0
        while True:
            await asyncio.sleep(60.0)
            try:
                await self.upkeep_once(retention=time.monotonic() - last_retention > 86_400)
                last_retention = (
                    time.monotonic() if time.monotonic() - last_retention > 86_400 else last_retention
                )
            except Exception as e:  # the database may be down: the ranges are kept for the next round
                w.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": "upkeep"})
                log.warning("rollup refresh / retention failed; retried in a minute", error=str(e))

    async def upkeep_once(self, retention: bool = False) -> None:
        """Refresh the rollups over the committed ranges, check the jobs (and apply retention when asked)."""
        w = self.w
        assert w is not None
        ranges = w.writer.take_dirty()
        mode = self._storage_mode
        if not ranges and not retention and mode != "timescaledb":
            return
        db = self.config.database
        keep = db.storage()

        def run() -> None:
            nonlocal mode
            with connect(db.resolved_dsn(), autocommit=True) as c:
                if not mode:  # the database was down when the daemon started
                    mode = self._storage_mode = storage_mode(c) or ""
                if ranges:
                    refresh_rollups(c, ranges, mode=mode, keep_days=keep.retention_days)
                    self.rollup_refreshes += 1
                if mode == "timescaledb":
                    health = self.job_health = read_job_health(c)
                    for view in refresh_overdue(c, health):
                        log.warning("refresh policy not on time; the daemon refreshed the rollup", view=view)
                elif retention:
                    row = c.execute(
                        "SELECT hazmon_apply_retention(%s, %s, %s)",
                        (keep.retention_days, keep.rollup_1m_days, keep.rollup_1h_days),
                    ).fetchone()
                    log.info("retention applied", deleted=row[0] if row else 0)

        try:
            await asyncio.to_thread(run)
        except BaseException:
            for lo, hi in ranges:  # keep the ranges for the next round
                w.writer.mark_dirty(lo, hi)
            raise

    def _jobs_ready(self) -> tuple[bool, dict[str, object]]:
        """Readiness of the TimescaleDB jobs.

        A late or failing refresh policy is shown but is no reason for "not ready" (the daemon
        refreshes the rollups itself, `upkeep_once`); a failing retention or compression is.
        """
        h = self.job_health
        if h is None:
            return True, {"detail": "not read yet (plain PostgreSQL, or before the first upkeep round)"}
        blocking = [j.problem for j in h.jobs if j.problem is not None and not j.name.startswith("refresh:")]
        return not blocking, {"detail": h.summary()}

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


def _job_metrics(m: Metrics, health: Callable[[], JobHealth | None]) -> None:
    """Per TimescaleDB job (label job="refresh:readings_1m", ...): last success, failures, late."""

    def per(fn: Callable[[JobState], float]) -> Callable[[], dict[tuple[str, ...], float]]:
        def read() -> dict[tuple[str, ...], float]:
            h = health()
            return {} if h is None else {(j.name,): fn(j) for j in h.jobs}

        return read

    m.gauge_fn(
        "hazmon_db_job_last_success_timestamp_seconds",
        "Unix time of the job's last successful run (0: never), by TimescaleDB job",
        per(lambda j: j.last_success.timestamp() if j.last_success else 0.0),
        ("job",),
    )
    m.gauge_fn(
        "hazmon_db_job_failures",
        "Failed runs of the job (TimescaleDB job_stats)",
        per(lambda j: float(j.total_failures)),
        ("job",),
    )
    m.gauge_fn(
        "hazmon_db_job_problem",
        "1 when the job is failing, late or paused",
        per(lambda j: float(j.problem is not None)),
        ("job",),
    )
