"""OPC UA inputs over asyncua's async API, behind an adapter that hands out `Reading`s only.

One `OpcUaConnection` per endpoint of the plant file drives one input; `inputs_for_plant`
builds them. The parts, each in its own module:

- `opcua_connection` — `OpcUaConnection`: the client (security, username and password), the
  session, a watchdog, reconnection with capped backoff, and the gaps to read back;
- `opcua_subscribe` — `SubscribeInput`: one subscription and our own publish loop, so a full
  queue delays the next Publish instead of dropping;
- `opcua_poll` — `PollInput`: a Read of every node each ``min(period)``, for servers without
  subscriptions;
- `opcua_input` — what both inputs share (`Item`, the reading of a value, `quality_of`);
- `opcua_decode` — the fast path: PublishResponses read from their bytes into columns;
- `opcua_history` — the backfill: HistoryRead of a gap, following continuation points.

A node id that does not exist is reported once, by tag and node id, and the rest keep
working. Every use of asyncua below its public API goes through `hazmon.plant.asyncua_internals`.
"""

from __future__ import annotations

from hazmon.collector.deadletter import DeadLetters
from hazmon.collector.metrics import Metrics
from hazmon.collector.opcua_connection import OpcUaConnection, SourceState
from hazmon.collector.opcua_decode import (
    DataChanges,
    PublishFrame,
    _uniform,  # noqa: F401 - tests check the numpy path on its own
    decode_data_changes,
    decode_publish_frame,
)
from hazmon.collector.opcua_input import Item, ItemProblem, quality_of
from hazmon.collector.opcua_poll import PollInput
from hazmon.collector.opcua_subscribe import SubscribeInput
from hazmon.collector.queue import ReadingQueue
from hazmon.collector.settings import OpcUaSettings
from hazmon.plant.model import OpcUaBinding, Plant, Sensor

__all__ = [
    "DataChanges",
    "Item",
    "OpcUaConnection",
    "PollInput",
    "PublishFrame",
    "SubscribeInput",
    "decode_data_changes",
    "decode_publish_frame",
    "inputs_for_plant",
    "quality_of",
]


def inputs_for_plant(
    plant: Plant,
    *,
    queue: ReadingQueue,
    dead: DeadLetters,
    metrics: Metrics,
    settings: OpcUaSettings,
    on_state: SourceState,
    on_item_problem: ItemProblem | None = None,
) -> list[OpcUaConnection]:
    """One connection per OPC UA endpoint with sensors; its ``mode`` picks the input.

    ``on_item_problem(tag, why)``: a node the server refuses (its sensor is not collected).
    """
    out: list[OpcUaConnection] = []
    for ep in plant.opcua:
        sensors: list[Sensor] = [
            s
            for s in plant.sensors()
            if isinstance(s.binding, OpcUaBinding) and s.binding.endpoint == ep.name
        ]
        if not sensors:
            continue
        items = [
            Item(s.tag, s.binding.node, s.period_s) for s in sensors if isinstance(s.binding, OpcUaBinding)
        ]
        cls = PollInput if ep.mode == "poll" else SubscribeInput
        inp = cls(
            ep.name,
            items,
            queue=queue,
            dead=dead,
            metrics=metrics,
            settings=settings,
            on_item_problem=on_item_problem,
        )
        out.append(OpcUaConnection(ep, inp, settings, metrics, on_state))
    return out
