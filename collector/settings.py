"""The ``collector:`` section of the daemon config (hazmon.yaml), parsed once into frozen settings.

Every key is optional; `CollectorSettings()` holds the defaults (the models are the schema), and
``collector/sample.conf`` shows (and a test loads) every key with its default.
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass

from hazmon.plant.reading import STORE_RESOLUTION_BITS
from hazmon.plant.yamlmodel import (
    SECTION,
    NonNegative,
    Number,
    Positive,
    Whole,
    YText,
    check,
    choice,
    validate,
)
from hazmon.plant.yamlnode import Node

__all__ = [
    "ACK_MODES",
    "CollectorSettings",
    "MqttSettings",
    "OpcUaSettings",
    "SpoolSettings",
    "parse_settings",
]


ACK_MODES = ("durable", "received")

Whole1 = Annotated[Whole, Field(ge=1)]
Whole0 = Annotated[Whole, Field(ge=0)]


def _reconnect_order(lo: float, hi: float) -> None:
    check((("reconnect_max_s",), f"must be >= reconnect_min_s ({lo:g}), got {hi:g}") if hi < lo else None)


@dataclass(frozen=True, slots=True, config=SECTION)
class SpoolSettings:
    """Where batches go while the database is down or slow.

    Attributes:
        dir: spool directory; "" means ``<data_dir>/spool``.
        max_mb: size limit; at the limit batches are dropped, counted, and a system alarm raised.
        segment_mb: size of one append-only segment file.
    """

    dir: YText = ""
    max_mb: Positive = 1024.0
    segment_mb: Positive = 16.0


@dataclass(frozen=True, slots=True, config=SECTION)
class MqttSettings:
    """MQTT inputs.

    Attributes:
        ack: when a QoS 1 message is acknowledged to the broker. ``durable`` (the
            default): once its readings are committed or fsynced in the spool, so a
            crash or kill -9 loses nothing (the broker delivers the rest again, and
            writes are idempotent). ``received``: as soon as it is in hazmon's queue
            (what paho does by itself); a crash then loses what was in memory.
    """

    ack: Annotated[str, BeforeValidator(choice(*ACK_MODES))] = "durable"
    keepalive_s: Annotated[Whole, Field(ge=5)] = 30
    reconnect_min_s: Positive = 0.5
    reconnect_max_s: Positive = 30.0
    max_future_s: Positive = 86_400.0  # a source timestamp later than arrival + this is impossible
    # QoS 1 messages the broker may have unacknowledged with us (MQTT 5 receive maximum)
    max_inflight: Whole1 = 1000

    @model_validator(mode="after")
    def _order(self) -> MqttSettings:
        _reconnect_order(self.reconnect_min_s, self.reconnect_max_s)
        return self


@dataclass(frozen=True, slots=True, config=SECTION)
class OpcUaSettings:
    queue_size: Whole1 = 10  # server-side queue per monitored item (revised value is read back and logged)
    items_per_request: Whole1 = 1000  # monitored items per CreateMonitoredItems call
    publishing_interval_ms: NonNegative = 0.0  # 0: the shortest sensor period of the endpoint
    deadband_abs: NonNegative = 0.0  # absolute deadband on every item (0 = report every change)
    timeout_s: Positive = 10.0
    reconnect_min_s: Positive = 0.5
    reconnect_max_s: Positive = 10.0
    watchdog_s: Positive = 5.0  # how often the connection is checked
    # after a lost connection (and at start, from the last stored reading), values the server
    # historized during the gap are read back with HistoryRead, up to this far back (0: off)
    backfill_max_s: NonNegative = 3600.0

    @model_validator(mode="after")
    def _order(self) -> OpcUaSettings:
        _reconnect_order(self.reconnect_min_s, self.reconnect_max_s)
        return self


def _flush(v: float) -> float:
    if v > 1.0:
        raise ValueError(f"must be <= 1 s (readings reach the database within a second), got {v:g}")
    return v


def _resolution(v: int) -> int:
    if v != 0 and not 12 <= v <= 40:
        raise ValueError(
            f"must be 0 (full precision) or 12 to 40 (a step of span / 2^bits), got {v}:"
            " below 12 the step would be coarser than a transmitter's accuracy"
        )
    return v


@dataclass(frozen=True, slots=True, config=SECTION)
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
        value_resolution_bits: values are stored at the largest power-of-two step <= the
            sensor's measuring span / 2^bits (`hazmon.plant.reading.storage_step`); 0 stores
            full precision. The rules see every value as it came.
    """

    queue_max_readings: Whole1 = 200_000
    batch_max_readings: Whole1 = 20_000
    flush_interval_s: Annotated[Positive, AfterValidator(_flush)] = 1.0
    write_timeout_s: Positive = 5.0
    retry_max_s: Positive = 10.0
    stale_factor: Annotated[Number, Field(ge=1)] = 3.0
    dead_letter_max_pending: Whole1 = 100_000
    dead_letter_payload_bytes: Whole0 = 65_536
    dead_letter_retention_days: Whole1 = 30
    log_interval_s: NonNegative = 10.0
    log_payload_cut: Whole0 = 200
    value_resolution_bits: Annotated[Whole0, AfterValidator(_resolution)] = STORE_RESOLUTION_BITS
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    opcua: OpcUaSettings = field(default_factory=OpcUaSettings)


def parse_settings(n: Node) -> CollectorSettings | None:
    """`CollectorSettings` from the ``collector:`` mapping; problems are recorded on ``n``."""
    return validate(n, CollectorSettings)
