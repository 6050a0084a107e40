"""Collectors: OPC UA and MQTT into a bounded queue, then the batch writer and its spool.

No asyncua or paho type leaves this package: inputs produce `hazmon.plant.Reading`
and `hazmon.plant.StaleChange`. The daemon (`hazmon.daemon`) wires the parts.
"""

from hazmon.collector.deadletter import DeadLetter, DeadLetters
from hazmon.collector.input import Input
from hazmon.collector.metrics import Metrics
from hazmon.collector.mqtt import MqttInput, SourceState
from hazmon.collector.payload import REASONS, Decoded, Reject, Route, TopicMap, decode, subscription_filters
from hazmon.collector.queue import ReadingQueue
from hazmon.collector.settings import (
    CollectorSettings,
    MqttSettings,
    OpcUaSettings,
    SpoolSettings,
    parse_settings,
)
from hazmon.collector.spool import Spool, SpoolFullError
from hazmon.collector.stale import StaleTracker
from hazmon.collector.writer import BatchWriter, SystemEvent

__all__ = [
    "REASONS",
    "BatchWriter",
    "CollectorSettings",
    "DeadLetter",
    "DeadLetters",
    "Decoded",
    "Input",
    "Metrics",
    "MqttInput",
    "MqttSettings",
    "OpcUaSettings",
    "ReadingQueue",
    "Reject",
    "Route",
    "SourceState",
    "Spool",
    "SpoolFullError",
    "SpoolSettings",
    "StaleTracker",
    "SystemEvent",
    "TopicMap",
    "decode",
    "parse_settings",
    "subscription_filters",
]
