"""The ``collector:`` section of the daemon config (hazmon.yaml), parsed once into frozen settings.

Every key is optional; `CollectorSettings()` holds the defaults, and
``collector/sample.conf`` shows (and a test loads) every key with its default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hazmon.plant.yamlnode import Node, opt

__all__ = [
    "ACK_MODES",
    "CollectorSettings",
    "MqttSettings",
    "OpcUaSettings",
    "SpoolSettings",
    "parse_settings",
]


ACK_MODES = ("durable", "received")


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    """Where batches go while the database is down or slow.

    Attributes:
        dir: spool directory; "" means ``<data_dir>/spool``.
        max_mb: size limit; at the limit batches are dropped, counted, and a system alarm raised.
        segment_mb: size of one append-only segment file.
    """

    dir: str = ""
    max_mb: float = 1024.0
    segment_mb: float = 16.0


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """MQTT inputs.

    Attributes:
        ack: when a QoS 1 message is acknowledged to the broker. ``durable`` (the
            default): once its readings are committed or fsynced in the spool, so a
            crash or kill -9 loses nothing (the broker delivers the rest again, and
            writes are idempotent). ``received``: as soon as it is in hazmon's queue
            (what paho does by itself); a crash then loses what was in memory.
    """

    ack: str = "durable"
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_future_s: float = 86_400.0  # a source timestamp later than arrival + this is impossible
    max_inflight: int = (
        1000  # QoS 1 messages the broker may have unacknowledged with us (MQTT 5 receive maximum)
    )


@dataclass(frozen=True, slots=True)
class OpcUaSettings:
    queue_size: int = 10  # server-side queue per monitored item (revised value is read back and logged)
    items_per_request: int = 1000  # monitored items per CreateMonitoredItems call
    publishing_interval_ms: float = 0.0  # 0: the shortest sensor period of the endpoint
    deadband_abs: float = 0.0  # absolute deadband on every item (0 = report every change)
    timeout_s: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 10.0
    watchdog_s: float = 5.0  # how often the connection is checked
    # after a lost connection (and at start, from the last stored reading), values the server
    # historized during the gap are read back with HistoryRead, up to this far back (0: off)
    backfill_max_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class CollectorSettings:
    """Everything the collectors, the queue and the batch writer need.

    Attributes:
        queue_max_readings: bound of the queue between collectors and consumers.
        batch_max_readings: the writer flushes when it holds this many readings…
        flush_interval_s: …or after at most this long.
        write_timeout_s: a write slower than this counts as a failure (spooled, retried).
        retry_max_s: cap of the backoff between database reconnect attempts.
        stale_factor: a sensor with no reading for this many periods is stale.
        dead_letter_max_pending: dead letters kept in memory while the database is down.
        dead_letter_payload_bytes: payload bytes kept per dead letter.
        dead_letter_retention_days: stored dead letters older than this are deleted (daily).
        log_interval_s: at most one log line per refusal reason per interval.
        log_payload_cut: payload characters shown in a log line.
    """

    queue_max_readings: int = 200_000
    batch_max_readings: int = 20_000
    flush_interval_s: float = 1.0
    write_timeout_s: float = 5.0
    retry_max_s: float = 10.0
    stale_factor: float = 3.0
    dead_letter_max_pending: int = 100_000
    dead_letter_payload_bytes: int = 65_536
    dead_letter_retention_days: int = 30
    log_interval_s: float = 10.0
    log_payload_cut: int = 200
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    opcua: OpcUaSettings = field(default_factory=OpcUaSettings)


def _pos(n: Node) -> float | None:
    return n.num(0, exclusive=True)


def _whole1(n: Node) -> int | None:
    return n.whole(1)


def _spool(n: Node) -> SpoolSettings | None:
    m = n.mapping({"dir", "max_mb", "segment_mb"})
    if m is None:
        return None
    d = SpoolSettings()
    return SpoolSettings(
        opt(m, "dir", Node.text, d.dir),
        opt(m, "max_mb", _pos, d.max_mb),
        opt(m, "segment_mb", _pos, d.segment_mb),
    )


def _mqtt(n: Node) -> MqttSettings | None:
    m = n.mapping(
        {"ack", "keepalive_s", "reconnect_min_s", "reconnect_max_s", "max_future_s", "max_inflight"}
    )
    if m is None:
        return None
    d = MqttSettings()
    lo = opt(m, "reconnect_min_s", _pos, d.reconnect_min_s)
    hi = opt(m, "reconnect_max_s", _pos, d.reconnect_max_s)
    if hi < lo:
        m["reconnect_max_s"].problem(f"must be >= reconnect_min_s ({lo:g}), got {hi:g}")
    return MqttSettings(
        opt(m, "ack", lambda x: x.choice(ACK_MODES), d.ack),
        opt(m, "keepalive_s", lambda x: x.whole(5), d.keepalive_s),
        lo,
        hi,
        opt(m, "max_future_s", _pos, d.max_future_s),
        opt(m, "max_inflight", lambda x: x.whole(1), d.max_inflight),
    )


def _opcua(n: Node) -> OpcUaSettings | None:
    keys = {f for f in OpcUaSettings.__dataclass_fields__}
    m = n.mapping(keys)
    if m is None:
        return None
    d = OpcUaSettings()
    lo = opt(m, "reconnect_min_s", _pos, d.reconnect_min_s)
    hi = opt(m, "reconnect_max_s", _pos, d.reconnect_max_s)
    if hi < lo:
        m["reconnect_max_s"].problem(f"must be >= reconnect_min_s ({lo:g}), got {hi:g}")
    return OpcUaSettings(
        opt(m, "queue_size", _whole1, d.queue_size),
        opt(m, "items_per_request", _whole1, d.items_per_request),
        opt(m, "publishing_interval_ms", lambda x: x.num(0), d.publishing_interval_ms),
        opt(m, "deadband_abs", lambda x: x.num(0), d.deadband_abs),
        opt(m, "timeout_s", _pos, d.timeout_s),
        lo,
        hi,
        opt(m, "watchdog_s", _pos, d.watchdog_s),
        opt(m, "backfill_max_s", lambda x: x.num(0), d.backfill_max_s),
    )


def parse_settings(n: Node) -> CollectorSettings | None:
    """`CollectorSettings` from the ``collector:`` mapping; problems are recorded on ``n``."""
    m = n.mapping(
        {
            "queue_max_readings",
            "batch_max_readings",
            "flush_interval_s",
            "write_timeout_s",
            "retry_max_s",
            "stale_factor",
            "dead_letter_max_pending",
            "dead_letter_payload_bytes",
            "dead_letter_retention_days",
            "log_interval_s",
            "log_payload_cut",
            "spool",
            "mqtt",
            "opcua",
        }
    )
    if m is None:
        return None
    d = CollectorSettings()
    flush = opt(m, "flush_interval_s", _pos, d.flush_interval_s)
    if flush > 1.0:
        m["flush_interval_s"].problem(
            f"must be <= 1 s (readings reach the database within a second), got {flush:g}"
        )
    stale = opt(m, "stale_factor", lambda x: x.num(1), d.stale_factor)
    return CollectorSettings(
        opt(m, "queue_max_readings", _whole1, d.queue_max_readings),
        opt(m, "batch_max_readings", _whole1, d.batch_max_readings),
        flush,
        opt(m, "write_timeout_s", _pos, d.write_timeout_s),
        opt(m, "retry_max_s", _pos, d.retry_max_s),
        stale,
        opt(m, "dead_letter_max_pending", _whole1, d.dead_letter_max_pending),
        opt(m, "dead_letter_payload_bytes", lambda x: x.whole(0), d.dead_letter_payload_bytes),
        opt(m, "dead_letter_retention_days", _whole1, d.dead_letter_retention_days),
        opt(m, "log_interval_s", lambda x: x.num(0), d.log_interval_s),
        opt(m, "log_payload_cut", lambda x: x.whole(0), d.log_payload_cut),
        opt(m, "spool", _spool, d.spool),
        opt(m, "mqtt", _mqtt, d.mqtt),
        opt(m, "opcua", _opcua, d.opcua),
    )
