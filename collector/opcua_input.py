"""What both OPC UA inputs share: their items, the reading of a value, and the history backfill.

`SubscribeInput` (`hazmon.collector.opcua_subscribe`) and `PollInput`
(`hazmon.collector.opcua_poll`) build on `OpcUaInput`; `OpcUaConnection`
(`hazmon.collector.opcua_connection`) attaches one of them to each session. StatusCode
severity gives the quality; the source timestamp is kept (the server timestamp when the
source sends none).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from asyncua import ua as _ua
from asyncua.client.client import Client

from hazmon.collector.deadletter import DeadLetters
from hazmon.collector.metrics import Metrics
from hazmon.collector.opcua_history import HISTORY_MAX_ROUNDS, read_history, utc
from hazmon.collector.queue import ReadingQueue
from hazmon.collector.settings import OpcUaSettings
from hazmon.plant.reading import Quality, Reading, ReadingBatch, to_us

__all__ = ["OVERFLOW", "WAITING_FOR_INITIAL_DATA", "Attached", "Item", "OpcUaInput", "node_id", "quality_of"]

log = structlog.get_logger("hazmon.collector.opcua")

ua: Any = _ua  # asyncua's generated types do not type-check under --strict; used at the edge only

OVERFLOW = 0x0480  # StatusCode info bits: DataValue info type + Overflow
WAITING_FOR_INITIAL_DATA = 0x80320000


def quality_of(status: int) -> Quality:
    """OPC UA StatusCode severity (top two bits) -> our quality."""
    sev = (status >> 30) & 0x3
    return Quality.GOOD if sev == 0 else (Quality.UNCERTAIN if sev == 1 else Quality.BAD)


@dataclass(frozen=True, slots=True)
class Item:
    """One monitored node: the sensor's tag, its node id and its sampling period."""

    tag: str
    node: str
    period_s: float


class Attached(Protocol):
    """An input attached to one session: what the connection drives after each (re)connect."""

    async def attach(self, client: Client) -> None: ...
    async def run(self, client: Client) -> None: ...


ItemProblem = Callable[[str, str], None]
"""(tag, why): an item of the input cannot be collected (its node refused by the server)."""


class OpcUaInput:
    """What the subscribing and the polling input share: the items, readings from values, backfill."""

    def __init__(
        self,
        name: str,
        items: Sequence[Item],
        *,
        queue: ReadingQueue,
        dead: DeadLetters,
        metrics: Metrics,
        settings: OpcUaSettings,
        on_item_problem: ItemProblem | None = None,
    ) -> None:
        self.name = name
        self.items = list(items)
        # a node the server refuses: its sensor's own stale alarm says why (not "no reading for 6 s")
        self.on_item_problem = on_item_problem
        self.queue = queue
        self.dead = dead
        self.metrics = metrics
        self.settings = settings
        self.labels = {"source": name}
        self.unknown: set[str] = set()  # tags whose node is missing, reported once
        # the newest source timestamp handed on (µs): where a gap after a lost connection begins
        self.seen_upto_us: int | None = None
        self.no_history: set[str] = set()  # tags whose node the server keeps no history of
        src, mine = ("source",), [self.labels]  # this source's children exist from the first scrape
        metrics.counter("hazmon_readings_received_total", "Readings decoded, by source", src, mine)
        metrics.counter(
            "hazmon_opcua_item_errors_total", "Nodes refused by the server, by status", ("source", "status")
        )
        metrics.counter(
            "hazmon_opcua_backfilled_total", "Readings of a gap read back from server history", src, mine
        )
        metrics.gauge(
            "hazmon_opcua_history_unavailable_items",
            "Items whose server keeps no history: a gap in their connection is not filled",
            src,
            mine,
        )
        metrics.counter(
            "hazmon_opcua_overflow_total",
            "Values the server dropped from a full monitored-item queue (overflow bit), by source",
            src,
            mine,
        )
        metrics.counter(
            "hazmon_opcua_no_value_total",
            "Values not there yet (waiting for initial data), by source",
            src,
            mine,
        )
        metrics.gauge(
            "hazmon_opcua_revised",
            "Subscription parameters as revised by the server, by source and parameter",
            ("source", "parameter"),
        )

    async def _put(self, batch: ReadingBatch | list[Reading]) -> None:
        """Readings onto the queue; the newest source timestamp is remembered for a backfill."""
        if isinstance(batch, ReadingBatch):
            newest = int(batch.ts_us.max()) if len(batch) else None
        else:
            newest = max((r.ts_us for r in batch), default=None)
        if newest is not None and (self.seen_upto_us is None or newest > self.seen_upto_us):
            self.seen_upto_us = min(newest, time.time_ns() // 1000)  # a device clock ahead is not trusted
        await self.queue.put(batch)

    async def backfill(self, client: Client, since_us: int, until_us: int) -> int:
        """What the server historized between ``since_us`` and ``until_us``, onto the queue.

        Per ``items_per_request`` nodes: one Read of their AccessLevel (is there history?), then
        HistoryRead (raw), following continuation points (`hazmon.collector.opcua_history`).
        Items whose node keeps no history are counted and named; their gap shows as stale as
        before. Values already stored come again and are dropped as duplicates (store, rules).
        Returns the number of readings queued.
        """
        nodes = [(it, nid) for it in self.items if it.tag not in self.unknown and (nid := node_id(it.node))]
        got = await read_history(
            client,
            nodes,
            (since_us, until_us),
            self.settings.items_per_request,
            reading=self._reading,
            put=self._put_history,
        )
        if got.unfinished:
            log.warning(
                "opcua history of the gap not read in full: the server kept handing continuation points",
                source=self.name,
                items=got.unfinished,
                rounds=HISTORY_MAX_ROUNDS,
            )
        no_history = got.no_history
        self.no_history = set(no_history)
        self.metrics.set("hazmon_opcua_history_unavailable_items", len(no_history), self.labels)
        if no_history:
            log.warning(
                "opcua server keeps no history of some items: their gap is not filled (stale instead)",
                source=self.name,
                items=len(no_history),
                first=sorted(no_history)[:5],
                status=sorted(set(no_history.values())),
            )
        log.info(
            "opcua gap read back from history",
            source=self.name,
            readings=got.readings,
            since=utc(since_us).isoformat(),
            until=utc(until_us).isoformat(),
        )
        return got.readings

    async def _put_history(self, rows: list[Reading]) -> None:
        self.metrics.inc("hazmon_readings_received_total", len(rows), self.labels)
        self.metrics.inc("hazmon_opcua_backfilled_total", len(rows), self.labels)
        await self._put(rows)

    def _node_problem(self, it: Item, status: str) -> None:
        if it.tag in self.unknown:
            return
        self.unknown.add(it.tag)
        self.metrics.inc("hazmon_opcua_item_errors_total", 1, {**self.labels, "status": status})
        log.error(
            "opcua node refused; this sensor is not collected, the others are",
            source=self.name,
            tag=it.tag,
            node=it.node,
            status=status,
        )
        if self.on_item_problem is not None:
            self.on_item_problem(it.tag, f"node {it.node} of {self.name} refused by the server: {status}")

    def _reading(self, it: Item, dv: Any, now_us: int) -> Reading | None:
        """The reading of an asyncua DataValue (None: no value yet, or dead-lettered)."""
        ts = dv.SourceTimestamp or dv.ServerTimestamp
        return self._reading_of(
            it,
            dv.Value.Value if dv.Value is not None else None,
            int(dv.StatusCode.value) if dv.StatusCode is not None else 0,
            to_us(ts) if ts is not None else now_us,
            now_us,
        )

    def _reading_of(self, it: Item, v: object, status: int, ts_us: int, now_us: int) -> Reading | None:
        """The reading of a value, its StatusCode and its timestamp (source, else server, else now).

        `SubscribeInput._columns` is the same rule over columns.
        """
        if status & OVERFLOW == OVERFLOW:
            self.metrics.inc("hazmon_opcua_overflow_total", 1, self.labels)
        q = quality_of(status)
        if v is None and q == Quality.BAD and status != WAITING_FOR_INITIAL_DATA:
            # servers send no value with a Bad status: the reading is the bad status itself
            # (rules: bad_quality); NaN says "no value" in the store, never a made-up number
            return Reading(it.tag, ts_us, math.nan, q)
        if isinstance(v, bool) or not isinstance(v, int | float):
            if v is None:  # nothing yet (BadWaitingForInitialData): staleness covers a silent sensor
                self.metrics.inc("hazmon_opcua_no_value_total", 1, self.labels)
                return None
            self.dead.add(
                self.name,
                it.node,
                reason="bad_value",
                detail=f"value of type {type(v).__name__}",
                tag=it.tag,
                payload=repr(v)[:200].encode(),
                now_us=now_us,
            )
            return None
        fv = float(v)
        if not math.isfinite(fv):
            self.dead.add(
                self.name,
                it.node,
                reason="impossible_value",
                detail=f"value {fv}",
                tag=it.tag,
                payload=repr(v).encode(),
                now_us=now_us,
            )
            return None
        return Reading(it.tag, ts_us, fv, q)


def node_id(node: str) -> Any | None:
    """The asyncua NodeId of ``node`` ("ns=2;s=LT-101"), None when malformed."""
    try:
        return ua.NodeId.from_string(node)
    except Exception:  # asyncua raises several kinds for a malformed id
        return None
