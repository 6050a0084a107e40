"""The pipeline's parts, built and connected: `wire` reads as the list of them.

Each part is built by a small function named after it; `Wiring` holds them for
`hazmon.daemon.Daemon`, which starts, runs and stops them. The arrows between the
parts (which one feeds which) are drawn at the top of `hazmon.daemon`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from hazmon.alarms import AlarmService
from hazmon.alarms.causes import link_finding
from hazmon.alarms.recorder import EventHook
from hazmon.bureau_link import alarm_event_hook, bureau_link
from hazmon.clock import now_us
from hazmon.collector import (
    BatchWriter,
    DeadLetters,
    Input,
    Metrics,
    MqttInput,
    ReadingQueue,
    SourceState,
    Spool,
    StaleTracker,
    TopicMap,
)
from hazmon.collector.opcua import inputs_for_plant
from hazmon.config import DaemonConfig
from hazmon.console import build_console
from hazmon.http import HttpServer
from hazmon.metrics import daemon_metrics
from hazmon.plant import Condition, Finding, Level, Limits, Plant, StaleChange
from hazmon.plant.reading import measuring_band, storage_step
from hazmon.readiness import SourceStates
from hazmon.rules import RulesRunner
from hazmon.store import connect as db_connect
from hazmon.supervision.api import routes as supervision_routes
from hazmon.system_zh import system_message_zh
from hazmon.uplink import UplinkService

if TYPE_CHECKING:  # the daemon's side of each part: its protocols live with it
    from hazmon.daemon import AlarmsLike, RulesLike

__all__ = ["SystemConditions", "Wiring", "wire"]

log = structlog.get_logger("hazmon.daemon")  # the daemon's lines, as before the wiring had its module


@dataclass
class SystemConditions:
    """The daemon's own loss conditions (spool full, spool I/O error, unclean previous run).

    Called as ``(key, active, message)`` (`hazmon.collector.SystemEvent`) by the writer and
    the running marker. The plant has one system alarm: each call is a system finding,
    active while any condition is, put on ``pending`` (the findings on their way to the
    alarms).
    """

    enterprise: str
    metrics: Metrics
    pending: list[Finding]
    recent: list[Finding] = field(default_factory=list)  # the last 100 raised, for /healthz and tests
    active: set[str] = field(default_factory=set)

    def __call__(self, key: str, active: bool, message: str) -> None:
        self.metrics.set("hazmon_system_condition", float(active), {"key": key})
        (self.active.add if active else self.active.discard)(key)
        self.recent.append(
            Finding(
                self.enterprise,
                None,
                Condition.SYSTEM,
                Level.FAULT,
                bool(self.active),
                now_us(),
                message_en=message,
                message_zh=system_message_zh(key, active, message),
            )
        )
        self.pending.append(self.recent[-1])
        del self.recent[:-100]
        (log.error if active else log.info)("system condition", key=key, active=active, message=message)


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
    system: SystemConditions
    enterprise: str
    pending_stale: list[StaleChange] = field(default_factory=list)
    pending_findings: list[Finding] = field(default_factory=list)
    sources: SourceStates = field(default_factory=SourceStates)  # connected or not, for /readyz
    uplink: UplinkService | None = None  # the bureau link (`uplink: enabled`), hazmon.bureau_link

    @property
    def system_findings(self) -> list[Finding]:
        """The last 100 system findings raised, for /healthz and tests."""
        return self.system.recent

    def source_changed(self, source: str, connected: bool, reason: str) -> None:
        """On the loop: a source came or went; going away marks all its sensors stale at once."""
        tags = next((i.tags for i in self.inputs if i.name == source), [])
        self.sources.set(source, connected, reason)
        t = now_us()
        # one cause, one alarm: the link's finding goes to the alarms before its sensors' stale
        # conditions (its consequences, hazmon.alarms.causes) have passed the rules
        self.pending_findings.append(
            link_finding(
                self.enterprise, source, lost=not connected, reason=reason, sensors=len(tags), now_us=t
            )
        )
        if connected:
            self.pending_stale.extend(self.stale.source_up(source, t, tags))
        else:
            self.pending_stale.extend(self.stale.source_down(source, tags, t, reason))


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
    queue = ReadingQueue(cs.queue_max_readings, loop)  # collectors -> consumer, bounded
    dead = _dead_letters(config, metrics)  # what no part could take, kept and counted
    spool = _spool(config)
    stale = StaleTracker({s.tag: s.period_s for s in plant.sensors()}, cs.stale_factor, now_us())
    pending: list[Finding] = []  # findings on their way to the alarms (rules, system, links, supervision)
    system = SystemConditions(plant.enterprise.id, metrics, pending)
    writer = _writer(
        config, plant=plant, ids=ids, spool=spool, dead=dead, metrics=metrics, queue=queue, system=system
    )
    http = HttpServer(config.http.host, config.http.port, metrics, health)
    w = Wiring(
        metrics=metrics,
        queue=queue,
        dead=dead,
        spool=spool,
        writer=writer,
        stale=stale,
        inputs=[],
        rules=None,
        alarms=None,
        http=http,
        system=system,
        enterprise=plant.enterprise.id,
        pending_findings=pending,
    )
    w.inputs = _inputs(  # collectors -> queue; their source up / down -> `Wiring.source_changed`
        config,
        plant,
        queue=queue,
        dead=dead,
        metrics=metrics,
        on_state=_on_loop(loop, w.source_changed),
        # a node the server refuses: its sensor's stale alarm names the node and the status
        on_item_problem=_explain_on_loop(loop, stale),
    )
    rules = w.rules = RulesRunner(plant, config.rules, overrides)  # readings -> findings
    malformed = [0]  # alarm events the link's schema refused (counted by the bureau link)
    on_event = alarm_event_hook(plant, malformed) if config.uplink.enabled else None  # alarms -> outbox
    alarms = _alarms(config, plant, http, metrics, on_event) if config.alarms_enabled else None
    w.alarms = alarms  # findings -> alarms -> notifications
    if config.uplink.enabled:  # outbox -> bureau; bureau steps -> alarms
        w.uplink = bureau_link(config, plant, w, alarms, overrides=overrides, malformed=malformed, loop=loop)
    _console(config, plant, http, metrics, alarms)  # pages for people; actions through the alarm service
    _pipeline_gauges(w, rules)
    return w


# ---- the parts ------------------------------------------------------------------------------
def _dead_letters(config: DaemonConfig, metrics: Metrics) -> DeadLetters:
    """Payloads and entries no part could take: kept in a table, counted, logged (rate-limited)."""
    cs = config.collector
    return DeadLetters(
        metrics,
        cs.dead_letter_max_pending,
        cs.dead_letter_payload_bytes,
        cs.log_payload_cut,
        cs.log_interval_s,
    )


def _spool(config: DaemonConfig) -> Spool:
    """Readings the database cannot take now wait on disk (replayed in order when it is back)."""
    sp = config.collector.spool
    return Spool(
        sp.dir or Path(config.data_dir) / "spool", int(sp.max_mb * (1 << 20)), int(sp.segment_mb * (1 << 20))
    )


def _writer(
    config: DaemonConfig,
    *,
    plant: Plant,
    ids: dict[str, int],
    spool: Spool,
    dead: DeadLetters,
    metrics: Metrics,
    queue: ReadingQueue,
    system: SystemConditions,
) -> BatchWriter:
    """Queue -> PostgreSQL (binary COPY), or the spool while the database is away."""
    cs = config.collector
    return BatchWriter(
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
        on_system=system,  # spool full / spool I/O error -> a system finding -> alarms
        own_thread=True,  # its COPYs wait for PostgreSQL only, not behind the rules on this loop
        on_settled=queue.settled,  # committed or spooled up to a queue position: MQTT acks go out
        bands={s.tag: measuring_band(s.range) for s in plant.sensors()},  # outside: stored OUT_OF_RANGE
        steps={s.tag: storage_step(s.range, cs.value_resolution_bits) for s in plant.sensors()},
    )


def _explain_on_loop(loop: asyncio.AbstractEventLoop, stale: StaleTracker) -> Callable[[str, str], None]:
    """A collector's why a sensor cannot report, handed to the stale tracker on the loop."""

    def hop(tag: str, why: str) -> None:
        loop.call_soon_threadsafe(stale.explain, tag, why)

    return hop


def _on_loop(loop: asyncio.AbstractEventLoop, fn: SourceState) -> SourceState:
    """``fn`` called from any thread (a collector's), run on the loop."""

    def hop(source: str, connected: bool, reason: str) -> None:
        loop.call_soon_threadsafe(fn, source, connected, reason)

    return hop


def _inputs(
    config: DaemonConfig,
    plant: Plant,
    *,
    queue: ReadingQueue,
    dead: DeadLetters,
    metrics: Metrics,
    on_state: SourceState,
    on_item_problem: Callable[[str, str], None],
) -> list[Input]:
    """The collectors -> queue: one MQTT input per broker with topics, one per OPC UA endpoint."""
    cs = config.collector
    suffix = f"-{config.instance}" if config.instance else ""
    out: list[Input] = []
    for broker in plant.mqtt:
        topics = TopicMap.from_plant(plant, broker.name)
        if topics.routes:
            out.append(
                MqttInput(
                    broker,
                    topics=topics,
                    queue=queue,
                    dead=dead,
                    metrics=metrics,
                    settings=cs.mqtt,
                    on_state=on_state,
                    client_id_suffix=suffix,
                )
            )
    out.extend(
        inputs_for_plant(
            plant,
            queue=queue,
            dead=dead,
            metrics=metrics,
            settings=cs.opcua,
            on_state=on_state,
            on_item_problem=on_item_problem,
        )
    )
    return out


def _alarms(
    config: DaemonConfig, plant: Plant, http: HttpServer, metrics: Metrics, on_event: EventHook | None
) -> AlarmService:
    """Findings -> alarms -> notifications; its HTTP API mounted on the daemon's server.

    The supervision API (hidden dangers, duty checks, commitments) is mounted beside it, with
    the same tokens: the alarm service authenticates its callers.
    """
    # clock: an operator's action is recorded at the time it arrived, not at the last tick
    dsn = config.database.resolved_dsn()
    alarms = AlarmService(plant, config.alarms, dsn, clock=now_us, on_event=on_event)
    http.mount(alarms.routes())
    http.mount(
        supervision_routes(plant, lambda: db_connect(dsn), lambda: datetime.now(UTC), alarms.authenticate)
    )
    alarms.on_first_notice = lambda s: metrics.observe("hazmon_alarm_to_notification_seconds", s)
    return alarms


def _console(
    config: DaemonConfig, plant: Plant, http: HttpServer, metrics: Metrics, alarms: AlarmService | None
) -> None:
    """The web console on the daemon's HTTP server (when it has users); alarm actions go to ``alarms``."""
    cs = config.console
    if not cs.enabled or not cs.users:
        return
    console = build_console(plant, cs, config.database.resolved_dsn(), alarms)
    http.mount(console.routes())
    metrics.gauge_fn(
        "hazmon_console_counters", "Web console counters, by counter", _by_counter(lambda: console.counters),
        ("counter",),
    )


# ---- gauges read when scraped -----------------------------------------------------------------
def _value(read: Callable[[], float]) -> Callable[[], dict[tuple[str, ...], float]]:
    return lambda: {(): float(read())}


def _by_counter(read: Callable[[], Mapping[str, int]]) -> Callable[[], dict[tuple[str, ...], float]]:
    return lambda: {(k,): float(v) for k, v in read().items()}


def _pipeline_gauges(w: Wiring, rules: RulesRunner) -> None:
    """The parts' own state as gauges: each reads its part when /metrics is scraped."""
    m, queue = w.metrics, w.queue
    m.gauge_fn(
        "hazmon_rules_counters",
        "Rules engine counters, by counter",
        _by_counter(lambda: rules.counters),
        ("counter",),
    )
    if w.alarms is not None:
        m.gauge_fn(
            "hazmon_alarms_counters",
            "Alarm service counters, by counter",
            _by_counter(w.alarms.metrics),
            ("counter",),
        )
    for name, help_text, read in (
        ("hazmon_queue_readings", "Readings in the collector queue", lambda: queue.depth),
        (
            "hazmon_mqtt_unacked_messages",
            "QoS 1 messages taken in but not yet acknowledged"
            " (their readings are not committed or spooled yet)",
            lambda: queue.pending_acks,
        ),
        ("hazmon_queue_full_waits", "Times a collector waited on a full queue", lambda: queue.waits),
        (
            "hazmon_queue_malformed_readings",
            "Readings a collector built wrong (not a number, bad quality), dropped and logged",
            lambda: queue.malformed,
        ),
        ("hazmon_stale_sensors", "Sensors currently stale", lambda: w.stale.stale_count),
        ("hazmon_dead_letters_pending", "Dead letters not yet stored", lambda: w.dead.pending),
    ):
        m.gauge_fn(name, help_text, _value(read))
