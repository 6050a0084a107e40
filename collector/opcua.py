"""OPC UA inputs over asyncua's async API, behind an adapter that hands out `Reading`s only.

One `OpcUaConnection` per endpoint of the plant file owns the asyncua client:
security (None, Basic256Sha256 Sign / SignAndEncrypt with certificate and key
files), username and password, a watchdog, and reconnection with capped
backoff. After every (re)connect it attaches its input to the fresh session:

- `SubscribeInput` creates one subscription and its monitored items in batches
  of ``items_per_request`` (10,000 items take a handful of requests), reads the
  revised publishing interval, sampling intervals and queue sizes back and logs
  where the server gave less than asked. Its own publish loop sends one Publish
  request after another and awaits putting each response's readings on the
  bounded queue: a full queue delays the next Publish request (the server
  queues) instead of dropping (asyncua's iterator queue silently drops the
  oldest at 1,000; its handler style costs a task per value). Responses are
  read from their bytes into `ReadingBatch` columns (see "the fast path"
  below), with asyncua's decoder for anything unusual.
- `PollInput` reads every node each ``min(period)`` with one Read request per
  batch, for servers without subscriptions; a value whose source timestamp did
  not change is not a new reading.

Both are inputs over the same connection code; the endpoint's ``mode`` picks
one. A node id that does not exist is reported once, by tag and node id, and
the rest keep working. StatusCode severity gives the quality; the source
timestamp is kept (the server timestamp when the source sends none).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import structlog
from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.common.utils import Buffer
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.ua_binary import struct_from_binary as _struct_from_binary
from asyncua.ua.uaerrors import BadNoSubscription, BadTimeout, UaError
from asyncua.ua.uatypes import MAX_OPC_FILETIME
from cryptography import x509
from numpy.typing import NDArray

from hazmon.collector.deadletter import DeadLetters
from hazmon.collector.metrics import Metrics
from hazmon.collector.queue import ReadingQueue
from hazmon.collector.settings import OpcUaSettings
from hazmon.plant.aio import cancel_and_wait
from hazmon.plant.model import OpcUaBinding, OpcUaEndpoint, Plant, Sensor
from hazmon.plant.reading import Quality, Reading, ReadingBatch, to_us

__all__ = [
    "DataChanges",
    "OpcUaConnection",
    "PollInput",
    "PublishFrame",
    "SubscribeInput",
    "decode_data_changes",
    "decode_publish_frame",
    "inputs_for_plant",
    "quality_of",
]

log = structlog.get_logger("hazmon.collector.opcua")

ua: Any = _ua  # asyncua's generated types do not type-check under --strict; used at the edge only
struct_from_binary: Callable[[Any, Buffer], Any] = _struct_from_binary

SourceState = Callable[[str, bool, str], None]
_SERVER_STATE = "i=2259"  # Server_ServerStatus_State
_OVERFLOW = 0x0480  # StatusCode info bits: DataValue info type + Overflow
_WAITING_FOR_INITIAL_DATA = 0x80320000
# HistoryRead (backfill): values per request, shared out over its nodes (the server hands a
# continuation point for more: 1,000 nodes get 100 values each per round), and a bound on the
# rounds so a server that never finishes cannot hold the connection
_HISTORY_VALUES_PER_REQUEST = 100_000
_ACCESS_HISTORY_READ = 0x04  # AccessLevel bit: the server keeps history of the node (Part 3 §8.57)
_HISTORY_MAX_ROUNDS = 1000
# a gap is read back from a little before the newest value received: a value sampled just before
# the connection went may still have been in the server's queue
_BACKFILL_OVERLAP_US = 10_000_000
# ServiceFaults of a server that does not do HistoryRead at all (the gap is then given up)
_NO_HISTORY_SERVICE = frozenset(
    {"BadServiceUnsupported", "BadHistoryOperationUnsupported", "BadNotSupported", "BadNotImplemented"}
)


def quality_of(status: int) -> Quality:
    """OPC UA StatusCode severity (top two bits) -> our quality."""
    sev = (status >> 30) & 0x3
    return Quality.GOOD if sev == 0 else (Quality.UNCERTAIN if sev == 1 else Quality.BAD)


# --- the fast path: PublishResponses read straight from their bytes -------------------------------
#
# asyncua decodes each PublishResponse generically: a dataclass, a Variant and two datetimes per
# value, the largest cost of the daemon under 10,000 items at 1 Hz after the alarms. The values
# servers send for monitored items are a few fixed-size shapes, so the envelope and the
# DataChangeNotifications are read with struct (and numpy, when every item of a notification has
# the same shape). Anything else goes to asyncua's decoder: the whole response (status changes,
# events, diagnostics, unusual node ids) or the one DataValue (booleans, strings, arrays, dates out
# of range, extension objects). tests/collector/test_opcua_decode.py checks the result against
# asyncua's own encoder and decoder.

_PUBLISH_RESPONSE = 829  # PublishResponse_Encoding_DefaultBinary
_DATA_CHANGE = 811  # DataChangeNotification_Encoding_DefaultBinary
_EPOCH_1601_US = 11_644_473_600_000_000  # µs from 1601-01-01 (OPC UA DateTime zero) to 1970-01-01
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
# Variant built-in type -> (struct, numpy dtype): the numbers we take as readings. Boolean (1) is
# not one of them (asyncua decodes it; `_reading` dead-letters it), nor is anything with the
# array (0x80) or dimensions (0x40) bit.
_NUMERIC: dict[int, tuple[struct.Struct, str]] = {
    2: (struct.Struct("<b"), "i1"),
    3: (struct.Struct("<B"), "u1"),
    4: (struct.Struct("<h"), "<i2"),
    5: (struct.Struct("<H"), "<u2"),
    6: (struct.Struct("<i"), "<i4"),
    7: (struct.Struct("<I"), "<u4"),
    8: (struct.Struct("<q"), "<i8"),
    9: (struct.Struct("<Q"), "<u8"),
    10: (struct.Struct("<f"), "<f4"),
    11: (struct.Struct("<d"), "<f8"),
}
# DataValue encoding mask: Value 0x01, StatusCode 0x02, SourceTimestamp 0x04, ServerTimestamp 0x08,
# SourcePicoseconds 0x10, ServerPicoseconds 0x20. The spec puts SourcePicoseconds before
# ServerTimestamp, asyncua (2.1) after it: a DataValue with both is left to asyncua's decoder, so we
# read what asyncua reads whichever server sent it.
_DV_KNOWN = 0x3F
_DV_AMBIGUOUS = 0x18


class PublishFrame(NamedTuple):
    """The envelope of a PublishResponse holding only DataChangeNotifications.

    Attributes:
        subscription_id: the subscription it is for.
        sequence_number: what the next Publish acknowledges (when ``notifications`` > 0).
        notifications: how many NotificationData entries it holds (0: a keep-alive).
        data_changes: (start, end) byte offsets of each DataChangeNotification body.
    """

    subscription_id: int
    sequence_number: int
    notifications: int
    data_changes: list[tuple[int, int]]


class DataChanges(NamedTuple):
    """The MonitoredItems of one DataChangeNotification as columns, in arrival order.

    Attributes:
        handle: the ClientHandle of each item.
        value: the value as float64 (NaN where ``has_value`` is False).
        has_value: False when the DataValue holds no value or a null Variant.
        status: the StatusCode (0 when absent: Good).
        ts_us: the source timestamp, else the server timestamp, µs since the Unix epoch.
        has_ts: False when the DataValue holds neither timestamp.
        odd: row -> ``ua.DataValue`` for the rows asyncua decoded (values that are not numbers).
    """

    handle: NDArray[np.uint32]
    value: NDArray[np.float64]
    has_value: NDArray[np.bool_]
    status: NDArray[np.uint32]
    ts_us: NDArray[np.int64]
    has_ts: NDArray[np.bool_]
    odd: dict[int, Any]


def _ns0_id(raw: bytes, p: int) -> tuple[int, int]:
    """(numeric id, end) of the NodeId at ``p``.

    The id is -1 for another namespace; a string, guid or opaque id raises ValueError (the
    callers hand those to asyncua).
    """
    enc = raw[p]
    if enc == 0:
        return raw[p + 1], p + 2
    if enc == 1:
        return (_U16.unpack_from(raw, p + 2)[0] if raw[p + 1] == 0 else -1), p + 4
    if enc == 2:
        ns = _U16.unpack_from(raw, p + 1)[0]
        return (_U32.unpack_from(raw, p + 3)[0] if ns == 0 else -1), p + 7
    raise ValueError(f"node id encoding {enc:#x}")


def decode_publish_frame(raw: bytes) -> PublishFrame | None:  # noqa: PLR0911 - one way in, many ways out to asyncua
    """The envelope of the PublishResponse in ``raw``, or None when asyncua must decode it.

    None for anything but DataChangeNotifications in the binary encoding (status changes,
    events), diagnostics, a string table, an additional header, or bytes that do not parse.
    """
    try:
        tid, p = _ns0_id(raw, 0)
        if tid != _PUBLISH_RESPONSE:
            return None
        p += 16  # ResponseHeader: Timestamp, RequestHandle, ServiceResult
        if raw[p]:  # ServiceDiagnostics
            return None
        if _I32.unpack_from(raw, p + 1)[0] > 0:  # StringTable
            return None
        _, p = _ns0_id(raw, p + 5)  # AdditionalHeader: an ExtensionObject, empty here
        if raw[p]:
            return None
        p += 1
        sub = _U32.unpack_from(raw, p)[0]
        avail = _I32.unpack_from(raw, p + 4)[0]
        p += 8 + 4 * max(avail, 0) + 1  # AvailableSequenceNumbers, MoreNotifications
        seq = _U32.unpack_from(raw, p)[0]
        count = _I32.unpack_from(raw, p + 12)[0]  # after PublishTime
        p += 16
        changes: list[tuple[int, int]] = []
        for _ in range(max(count, 0)):
            tid, p = _ns0_id(raw, p)
            if tid != _DATA_CHANGE or raw[p] != 1:
                return None
            length = _I32.unpack_from(raw, p + 1)[0]
            start = p + 5
            p = start + length
            if length < 4 or p > len(raw):
                return None
            changes.append((start, p))
        return PublishFrame(sub, seq, max(count, 0), changes)
    except (IndexError, ValueError, struct.error):
        return None


def _filetime_us(t: int) -> int | None:
    """µs since the Unix epoch of an OPC UA DateTime, as ``to_us`` of asyncua's datetime gives it.

    None outside the range asyncua converts without clamping.
    """
    return t // 10 - _EPOCH_1601_US if 0 <= t < MAX_OPC_FILETIME else None


def _scalar_dv(raw: bytes, p: int) -> tuple[float | None, int, int | None, int] | None:
    """(value, status, ts_us, end) of the DataValue at ``p``, or None when asyncua must decode it."""
    mask = raw[p]
    p += 1
    if mask & ~_DV_KNOWN or mask & _DV_AMBIGUOUS == _DV_AMBIGUOUS:
        return None
    v: float | None = None
    if mask & 0x01:
        vt = raw[p]
        p += 1
        if vt:
            num = _NUMERIC.get(vt)
            if num is None:
                return None
            v = float(num[0].unpack_from(raw, p)[0])
            p += num[0].size
    status = 0
    if mask & 0x02:
        status = _U32.unpack_from(raw, p)[0]
        p += 4
    ts: int | None = None
    if mask & 0x04:
        ts = _filetime_us(_I64.unpack_from(raw, p)[0])
        if ts is None:
            return None
        p += 8
    if mask & 0x10:
        p += 2
    if mask & 0x08:
        srv = _filetime_us(_I64.unpack_from(raw, p)[0])
        if srv is None:
            return None
        if ts is None:
            ts = srv
        p += 8
    if mask & 0x20:
        p += 2
    return v, status, ts, p


def _uniform(raw: bytes, p: int, n: int, end: int) -> DataChanges | None:
    """All ``n`` items at ``p`` as one numpy view, when every one has the first one's shape.

    Each item's length follows from its mask and variant type, so checking those two bytes at
    every stride proves every item is where the view reads it.
    """
    mask, vt = raw[p + 4], raw[p + 5]
    num = _NUMERIC.get(vt)
    if not mask & 0x01 or mask & ~_DV_KNOWN or mask & _DV_AMBIGUOUS == _DV_AMBIGUOUS or num is None:
        return None
    fields: list[tuple[str, str]] = [("h", "<u4"), ("m", "u1"), ("t", "u1"), ("v", num[1])]
    for bit, name, fmt in (
        (0x02, "s", "<u4"),
        (0x04, "src", "<i8"),
        (0x10, "srcp", "<u2"),
        (0x08, "srv", "<i8"),
        (0x20, "srvp", "<u2"),
    ):
        if mask & bit:
            fields.append((name, fmt))
    dt = np.dtype(fields)
    if p + n * dt.itemsize > end:
        return None
    a = np.frombuffer(raw, dt, n, p)
    if not (np.all(a["m"] == mask) and np.all(a["t"] == vt)):
        return None
    ts_field = "src" if mask & 0x04 else ("srv" if mask & 0x08 else "")
    if ts_field:
        t = a[ts_field].astype(np.int64)
        if np.any((t < 0) | (t >= MAX_OPC_FILETIME)):
            return None
        ts = t // 10 - _EPOCH_1601_US
    else:
        ts = np.zeros(n, np.int64)
    value = a["v"].astype(np.float64)
    return DataChanges(
        a["h"].astype(np.uint32),
        value,
        np.ones(n, np.bool_),
        a["s"].astype(np.uint32) if mask & 0x02 else np.zeros(n, np.uint32),
        ts,
        np.full(n, bool(ts_field)),
        {},
    )


def decode_data_changes(raw: bytes, start: int, end: int) -> DataChanges:
    """The MonitoredItems of the DataChangeNotification body ``raw[start:end]``.

    Raises ValueError, IndexError or struct.error on bytes that do not parse.
    """
    n = _I32.unpack_from(raw, start)[0]
    p = start + 4
    if n > 0:
        fast = _uniform(raw, p, n, end)
        if fast is not None:
            return fast
    n = max(n, 0)
    handle = np.zeros(n, np.uint32)
    value = np.full(n, math.nan)
    has_value = np.zeros(n, np.bool_)
    status = np.zeros(n, np.uint32)
    ts_us = np.zeros(n, np.int64)
    has_ts = np.zeros(n, np.bool_)
    odd: dict[int, Any] = {}
    for i in range(n):
        handle[i] = _U32.unpack_from(raw, p)[0]
        r = _scalar_dv(raw, p + 4)
        if r is None:
            buf = Buffer(raw, p + 4)
            odd[i] = struct_from_binary(ua.DataValue, buf)
            p = buf.cur_pos
            continue
        v, st, ts, p = r
        if v is not None:
            value[i], has_value[i] = v, True
        status[i] = st
        if ts is not None:
            ts_us[i], has_ts[i] = ts, True
    if p > end:
        raise ValueError(f"DataChangeNotification items overrun its body ({p} > {end})")
    return DataChanges(handle, value, has_value, status, ts_us, has_ts, odd)


@dataclass(frozen=True, slots=True)
class Item:
    tag: str
    node: str
    period_s: float


class Attached(Protocol):
    """An input attached to one session: what the connection drives after each (re)connect."""

    async def attach(self, client: Client) -> None: ...
    async def run(self, client: Client) -> None: ...


class _Base:
    def __init__(
        self,
        name: str,
        items: Sequence[Item],
        *,
        queue: ReadingQueue,
        dead: DeadLetters,
        metrics: Metrics,
        settings: OpcUaSettings,
    ) -> None:
        self.name = name
        self.items = list(items)
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
        HistoryRead (raw), following continuation points. Items whose node keeps no history are
        counted and named; their gap shows as stale as before. Values already stored come again
        and are dropped as duplicates (store, rules). Returns the number of readings queued.
        """
        nodes = [(it, nid) for it in self.items if it.tag not in self.unknown and (nid := _node_id(it.node))]
        total = 0
        no_history: dict[str, str] = {}
        unfinished = 0
        n = self.settings.items_per_request
        for i in range(0, len(nodes), n):
            todo = await self._historized(client, nodes[i : i + n], no_history)
            for _round in range(_HISTORY_MAX_ROUNDS):
                if not todo:
                    break
                todo, queued = await self._history_round(client, todo, (since_us, until_us), no_history)
                total += queued
            unfinished += len(todo)
        if unfinished:
            log.warning(
                "opcua history of the gap not read in full: the server kept handing continuation points",
                source=self.name,
                items=unfinished,
                rounds=_HISTORY_MAX_ROUNDS,
            )
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
            readings=total,
            since=_dt(since_us).isoformat(),
            until=_dt(until_us).isoformat(),
        )
        return total

    async def _historized(
        self, client: Client, chunk: list[tuple[Item, Any]], no_history: dict[str, str]
    ) -> list[tuple[Item, Any, bytes | None]]:
        """The nodes of ``chunk`` whose AccessLevel has HistoryRead (the others go to ``no_history``)."""
        access = await client.uaclient.read(
            ua.ReadParameters(
                NodesToRead=[
                    ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.AccessLevel) for _, nid in chunk
                ]
            )
        )
        out: list[tuple[Item, Any, bytes | None]] = []
        for (it, nid), dv in zip(chunk, access, strict=True):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            level = dv.Value.Value if dv.Value is not None and good else 0
            if isinstance(level, int) and level & _ACCESS_HISTORY_READ:
                out.append((it, nid, None))
            else:  # servers answer HistoryRead of such a node with nothing, or an error
                no_history[it.tag] = "AccessLevel without HistoryRead"
        return out

    async def _history_round(
        self,
        client: Client,
        todo: list[tuple[Item, Any, bytes | None]],
        window: tuple[int, int],
        no_history: dict[str, str],
    ) -> tuple[list[tuple[Item, Any, bytes | None]], int]:
        """One HistoryRead of ``todo``: its readings onto the queue; (nodes with more, readings queued)."""
        details = ua.ReadRawModifiedDetails(
            IsReadModified=False,
            StartTime=_dt(window[0]),
            EndTime=_dt(window[1]),
            NumValuesPerNode=max(10, _HISTORY_VALUES_PER_REQUEST // len(todo)),
            ReturnBounds=False,
        )
        params = ua.HistoryReadParameters(
            HistoryReadDetails=details,
            TimestampsToReturn=ua.TimestampsToReturn.Both,
            ReleaseContinuationPoints=False,
            NodesToRead=[ua.HistoryReadValueId(NodeId=nid, ContinuationPoint=cp) for _, nid, cp in todo],
        )
        results = await client.uaclient.history_read(params)
        now = time.time_ns() // 1000
        rows: list[Reading] = []
        more: list[tuple[Item, Any, bytes | None]] = []
        for (it, nid, cp), res in zip(todo, results, strict=True):
            if not res.StatusCode.is_good():
                no_history[it.tag] = res.StatusCode.name
                continue
            for dv in getattr(res.HistoryData, "DataValues", None) or []:
                r = self._reading(it, dv, now)
                if r is not None and window[0] <= r.ts_us <= window[1]:
                    rows.append(r)
            if res.ContinuationPoint and res.ContinuationPoint != cp:  # the same one again: no progress
                more.append((it, nid, res.ContinuationPoint))
        rows.sort(key=lambda r: r.ts_us)
        if rows:
            self.metrics.inc("hazmon_readings_received_total", len(rows), self.labels)
            self.metrics.inc("hazmon_opcua_backfilled_total", len(rows), self.labels)
            await self._put(rows)
        return more, len(rows)

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
        if status & _OVERFLOW == _OVERFLOW:
            self.metrics.inc("hazmon_opcua_overflow_total", 1, self.labels)
        q = quality_of(status)
        if v is None and q == Quality.BAD and status != _WAITING_FOR_INITIAL_DATA:
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


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, UTC)


def _node_id(node: str) -> Any | None:
    try:
        return ua.NodeId.from_string(node)
    except Exception:  # asyncua raises several kinds for a malformed id
        return None


async def _request(client: Client, request: Any, wait_s: float | None = None) -> Buffer:
    """One request on the client's secure channel; the raw response (a ServiceFault raises).

    ``wait_s``: the client's timeout when None; 0 waits as long as the server takes.
    """
    proto = client.uaclient.protocol
    if proto is None:
        raise ConnectionError("connection is closed")
    data: Buffer = await proto.send_request(request, wait_s)
    return data


class SubscribeInput(_Base):
    """Monitored items in one subscription; notifications go straight to the queue.

    Our own publish loop (`run`) sends the Publish requests, so the responses arrive as bytes
    for the fast decoder, and the next Publish waits while the queue is full.
    """

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.revised: dict[str, float] = {}
        self.create_requests = 0
        self.slow_publishes = 0  # responses decoded by asyncua (status changes, unusual encodings)
        self.subscription_id = 0
        self._handles: dict[int, Item] = {}
        self._item_at: list[Item | None] = [None]  # by ClientHandle
        self._tag_at: NDArray[np.object_] = np.array([None], dtype=object)
        self._known: NDArray[np.bool_] = np.zeros(1, np.bool_)

    async def attach(self, client: Client) -> None:
        s = self.settings
        periods = [it.period_s for it in self.items] or [1.0]
        pub_ms = s.publishing_interval_ms or min(periods) * 1000
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=pub_ms,
            RequestedLifetimeCount=10_000,
            RequestedMaxKeepAliveCount=max(3, int(10_000 / max(pub_ms, 1))),
            MaxNotificationsPerPublish=0,
            PublishingEnabled=True,
            Priority=0,
        )
        req = ua.CreateSubscriptionRequest()
        req.Parameters = params
        created = struct_from_binary(ua.CreateSubscriptionResponse, await _request(client, req))
        created.ResponseHeader.ServiceResult.check()
        res = created.Parameters
        sub_id = self.subscription_id = int(res.SubscriptionId)
        self.revised = {
            "publishing_interval_ms": float(res.RevisedPublishingInterval),
            "lifetime_count": float(res.RevisedLifetimeCount),
            "max_keepalive_count": float(res.RevisedMaxKeepAliveCount),
        }
        self._handles = {}
        requests = []
        for h, it in enumerate(self.items, start=1):
            nid = _node_id(it.node)
            if nid is None:
                self._node_problem(it, "malformed node id")
                continue
            mp = ua.MonitoringParameters(
                ClientHandle=h,
                SamplingInterval=it.period_s * 1000,
                QueueSize=s.queue_size,
                DiscardOldest=True,
            )
            # a new source timestamp is a new sample even when value and status repeat
            # (a Bad status carries no value: without this, a sensor stuck Bad would go silent)
            mp.Filter = ua.DataChangeFilter(
                Trigger=ua.DataChangeTrigger.StatusValueTimestamp,
                DeadbandType=1 if s.deadband_abs > 0 else 0,
                DeadbandValue=s.deadband_abs,
            )
            requests.append(
                (
                    it,
                    h,
                    ua.MonitoredItemCreateRequest(
                        ItemToMonitor=ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value),
                        MonitoringMode=ua.MonitoringMode.Reporting,
                        RequestedParameters=mp,
                    ),
                )
            )
            self._handles[h] = it
        ok = 0
        self.create_requests = 0
        queue_sizes: list[int] = []
        sampling: list[float] = []
        for i in range(0, len(requests), s.items_per_request):
            chunk = requests[i : i + s.items_per_request]
            self.create_requests += 1
            results = await client.uaclient.create_monitored_items(
                ua.CreateMonitoredItemsParameters(
                    SubscriptionId=sub_id,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                    ItemsToCreate=[r for _, _, r in chunk],
                )
            )
            for (it, h, _), r in zip(chunk, results, strict=True):
                if not r.StatusCode.is_good():
                    self._handles.pop(h, None)
                    self._node_problem(it, r.StatusCode.name)
                    continue
                ok += 1
                queue_sizes.append(int(r.RevisedQueueSize))
                sampling.append(float(r.RevisedSamplingInterval))
        self.set_handles(self._handles)
        if queue_sizes:
            self.revised.update(
                queue_size_min=float(min(queue_sizes)),
                queue_size_max=float(max(queue_sizes)),
                sampling_ms_min=min(sampling),
                sampling_ms_max=max(sampling),
            )
        for k, v in self.revised.items():
            self.metrics.set("hazmon_opcua_revised", v, {**self.labels, "parameter": k})
        less = sum(1 for q in queue_sizes if q < s.queue_size)
        log.info(
            "opcua subscription created",
            source=self.name,
            items=ok,
            refused=len(self.items) - ok,
            requests=math.ceil(len(requests) / s.items_per_request),
            **self.revised,
        )
        if less:
            log.warning(
                "opcua server revised queue sizes down",
                source=self.name,
                items=less,
                requested=s.queue_size,
                revised_min=min(queue_sizes),
            )

    def set_handles(self, handles: dict[int, Item]) -> None:
        """The items by ClientHandle (the ones the server accepted), and the lookup columns."""
        self._handles = dict(handles)
        self._item_at = [None] * (max(handles, default=0) + 1)
        for h, it in handles.items():
            self._item_at[h] = it
        self._tag_at = np.array([it.tag if it else None for it in self._item_at], dtype=object)
        self._known = np.array([it is not None for it in self._item_at], dtype=np.bool_)

    async def run(self, client: Client) -> None:
        """Publish requests one after the other, each acknowledging the previous notification.

        Returns never: raises ConnectionError when the server reports the subscription gone
        (the connection then reconnects and subscribes afresh).
        """
        acks: list[Any] = []
        while True:
            req = ua.PublishRequest()
            req.Parameters.SubscriptionAcknowledgements = acks
            try:
                data = await _request(client, req, wait_s=0)  # the server holds it until it has news
            except BadTimeout:
                acks = []
                continue
            except BadNoSubscription as e:
                raise ConnectionError("subscription lost: BadNoSubscription") from e
            sub, seq, notified = await self.on_publish(bytes(data))
            ack = ua.SubscriptionAcknowledgement(SubscriptionId=sub, SequenceNumber=seq)
            acks = [ack] if notified else []

    async def on_publish(self, raw: bytes, now_us: int | None = None) -> tuple[int, int, bool]:
        """Readings of one PublishResponse onto the queue.

        Awaited by `run`: a full queue delays the next Publish (the server queues). Returns
        (subscription id, sequence number, had notifications). ``now_us`` (tests) is the time
        given to values without timestamps.
        """
        now = time.time_ns() // 1000 if now_us is None else now_us
        frame = decode_publish_frame(raw)
        changes: list[DataChanges] = []
        if frame is not None:
            try:
                changes = [decode_data_changes(raw, a, b) for a, b in frame.data_changes]
            except (IndexError, ValueError, struct.error, UaError):
                frame = None
        lost = ""
        if frame is not None:
            sub, seq, notified = frame.subscription_id, frame.sequence_number, frame.notifications > 0
            out: list[ReadingBatch | list[Reading]] = [self._columns(dc, now) for dc in changes]
        else:
            self.slow_publishes += 1
            try:
                res = struct_from_binary(ua.PublishResponse, Buffer(raw)).Parameters
            except Exception:  # asyncua's publish loop logs these and goes on: so do we
                log.exception("opcua publish response not understood; skipped", source=self.name)
                return 0, 0, False
            sub, seq = int(res.SubscriptionId), int(res.NotificationMessage.SequenceNumber)
            data = res.NotificationMessage.NotificationData or []
            notified = bool(data)
            rows, lost = self._notifications(data, now)
            out = [rows]
        n = sum(len(b) for b in out)
        if n:
            self.metrics.inc("hazmon_readings_received_total", n, self.labels)
            for b in out:
                if len(b):
                    await self._put(b)
        if lost:
            raise ConnectionError(f"subscription lost: {lost}")
        return sub, seq, notified

    def _notifications(self, data: list[Any], now_us: int) -> tuple[list[Reading], str]:
        """Readings of asyncua-decoded notifications, and the status of a StatusChange ("" if none)."""
        rows: list[Reading] = []
        lost = ""
        for notif in data:
            if isinstance(notif, ua.DataChangeNotification):
                for m in notif.MonitoredItems:
                    it = self._handles.get(m.ClientHandle)
                    if it is None:
                        continue
                    r = self._reading(it, m.Value, now_us)
                    if r is not None:
                        rows.append(r)
            elif isinstance(notif, ua.StatusChangeNotification):
                log.warning("opcua subscription status changed", source=self.name, status=str(notif.Status))
                lost = str(notif.Status)
        return rows, lost

    def _columns(self, dc: DataChanges, now_us: int) -> ReadingBatch | list[Reading]:
        """`_reading_of` over the columns of one notification.

        Row by row when asyncua decoded some of its values, with numpy otherwise.
        """
        h = dc.handle.astype(np.intp)
        inside = h < len(self._item_at)
        known = inside & self._known[np.where(inside, h, 0)]
        if dc.odd:
            out: list[Reading] = []
            values, has_value = dc.value.tolist(), dc.has_value.tolist()
            status, ts, has_ts = dc.status.tolist(), dc.ts_us.tolist(), dc.has_ts.tolist()
            for i in np.flatnonzero(known).tolist():
                it = self._item_at[int(h[i])]
                assert it is not None
                dv = dc.odd.get(i)
                if dv is not None:
                    r = self._reading(it, dv, now_us)
                else:
                    v = values[i] if has_value[i] else None
                    r = self._reading_of(it, v, status[i], ts[i] if has_ts[i] else now_us, now_us)
                if r is not None:
                    out.append(r)
            return out
        idx = np.flatnonzero(known)
        st, val, hv = dc.status[idx], dc.value[idx], dc.has_value[idx]
        impossible = hv & ~np.isfinite(val)
        for i in np.flatnonzero(impossible).tolist():  # dead-lettered (and counted) one by one
            it = self._item_at[int(h[idx[i]])]
            assert it is not None
            self._reading_of(it, float(val[i]), int(st[i]), now_us, now_us)
        over = int(np.count_nonzero((st & _OVERFLOW == _OVERFLOW) & ~impossible))
        if over:
            self.metrics.inc("hazmon_opcua_overflow_total", over, self.labels)
        q = np.minimum((st >> 30) & 0x3, 2).astype(np.int8)
        null_bad = ~hv & (q == Quality.BAD) & (st != _WAITING_FOR_INITIAL_DATA)
        no_value = int(np.count_nonzero(~hv & ~null_bad))
        if no_value:
            self.metrics.inc("hazmon_opcua_no_value_total", no_value, self.labels)
        keep = (hv & ~impossible) | null_bad
        rows = idx[keep]
        return ReadingBatch(
            self._tag_at[h[rows]].tolist(),
            np.where(dc.has_ts[rows], dc.ts_us[rows], now_us).astype(np.int64),
            val[keep],
            q[keep],
        )


class PollInput(_Base):
    """Reads every node each ``min(period)``; an unchanged source timestamp is not a new reading."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._last_ts: dict[str, int] = {}
        self._nodes: list[tuple[Item, Any]] = []

    async def attach(self, client: Client) -> None:
        self._nodes = []
        for it in self.items:
            nid = _node_id(it.node)
            if nid is None:
                self._node_problem(it, "malformed node id")
            else:
                self._nodes.append((it, nid))
        log.info("opcua polling", source=self.name, items=len(self._nodes))

    async def poll_once(self, client: Client) -> int:
        now = time.time_ns() // 1000
        out: list[Reading] = []
        n = self.settings.items_per_request
        for i in range(0, len(self._nodes), n):
            chunk = self._nodes[i : i + n]
            params = ua.ReadParameters(
                NodesToRead=[
                    ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.Value) for _, nid in chunk
                ],
                TimestampsToReturn=ua.TimestampsToReturn.Both,
            )
            values = await client.uaclient.read(params)
            for (it, _), dv in zip(chunk, values, strict=True):
                sc = dv.StatusCode
                if sc is not None and sc.name in (
                    "BadNodeIdUnknown",
                    "BadNodeIdInvalid",
                    "BadAttributeIdInvalid",
                ):
                    self._node_problem(it, sc.name)
                    continue
                r = self._reading(it, dv, now)
                if r is None or self._last_ts.get(it.tag) == r.ts_us:
                    continue
                self._last_ts[it.tag] = r.ts_us
                out.append(r)
        if out:
            self.metrics.inc("hazmon_readings_received_total", len(out), self.labels)
            await self._put(out)
        return len(out)

    async def run(self, client: Client) -> None:
        period = min((it.period_s for it in self.items), default=1.0)
        while True:
            t0 = time.monotonic()
            await self.poll_once(client)
            await asyncio.sleep(max(0.0, period - (time.monotonic() - t0)))


def _cert_uri(path: str) -> str | None:
    """The application URI in a certificate's subjectAltName (servers check it against ours)."""
    data = Path(path).read_bytes()
    cert = x509.load_pem_x509_certificate(data) if b"BEGIN" in data else x509.load_der_x509_certificate(data)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


class OpcUaConnection:
    """One endpoint: the shared client code (security, session, watchdog, reconnect) driving one input."""

    kind = "opcua"

    def __init__(
        self,
        endpoint: OpcUaEndpoint,
        input_: SubscribeInput | PollInput,
        settings: OpcUaSettings,
        metrics: Metrics,
        on_state: SourceState,
    ) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.input = input_
        self.tags = [it.tag for it in input_.items]
        self.settings = settings
        self.metrics = metrics
        self.on_state = on_state
        self.connected = asyncio.Event()
        self.sessions = 0
        self._task: asyncio.Task[None] | None = None
        self._backfill_from_us: int | None = None
        self._gaps: list[tuple[int, int]] = []  # (since, until) µs: to be read back from history
        self._labels = {"source": self.name}
        src, mine = ("source",), [self._labels]  # this source's children exist from the first scrape
        metrics.gauge("hazmon_opcua_gaps_pending", "Gaps still to be read back from history", src, mine)
        metrics.gauge("hazmon_source_connected", "1 while the source is connected", src, mine)
        metrics.counter(
            "hazmon_source_reconnects_total", "Connections made after the first, by source", src, mine
        )

    async def _client(self) -> Client:
        ep = self.endpoint
        # asyncua's own supervisor probes the server every ``watchdog_intervall`` with that as the
        # timeout (default 1 s): a server or loop busy for a second under 10,000 items looked like a
        # lost connection, and every "loss" re-created the whole subscription. Same patience as any
        # request; our `_watchdog` checks as often as configured.
        c = Client(ep.url, timeout=self.settings.timeout_s, watchdog_intervall=self.settings.timeout_s)
        c.application_uri = "urn:hazmon:collector"
        c.name = c.description = "hazmon collector"
        if ep.username:
            c.set_user(ep.username)
            pw = os.environ.get(ep.password_env or "") if ep.password_env else None
            if ep.password_env and pw is None:
                raise RuntimeError(f"opcua endpoint {ep.name}: ${ep.password_env} (password_env) is not set")
            if pw is not None:
                c.set_password(pw)
        if ep.security != "none":
            if not (ep.certificate and ep.private_key):
                raise RuntimeError(
                    f"opcua endpoint {ep.name}: security {ep.security} needs certificate and private_key"
                )
            uri = _cert_uri(ep.certificate)
            if uri:
                c.application_uri = uri
            mode = (
                ua.MessageSecurityMode.Sign
                if ep.security == "sign"
                else ua.MessageSecurityMode.SignAndEncrypt
            )
            await c.set_security(
                SecurityPolicyBasic256Sha256,
                certificate=ep.certificate,
                private_key=ep.private_key,
                server_certificate=ep.server_certificate,
                mode=mode,
            )
        return c

    def start(self, backfill_from_us: int | None = None) -> None:
        """Connect and collect until `stop`.

        Args:
            backfill_from_us: the newest reading already stored for this endpoint (µs); the
                first connection reads back what the server historized since (a daemon restart
                or a kill -9 then leaves no gap where the server keeps history).
        """
        self._backfill_from_us = backfill_from_us
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"opcua:{self.name}")

    def _note_gap(self) -> None:
        """At a (re)connect: the time since the newest value received (or stored, at start) is a gap."""
        max_s = self.settings.backfill_max_s
        seen = self.input.seen_upto_us if self.input.seen_upto_us is not None else self._backfill_from_us
        self._backfill_from_us = None
        if max_s <= 0 or seen is None:
            return
        now = time.time_ns() // 1000
        since = seen - _BACKFILL_OVERLAP_US
        oldest = now - round(max_s * 1e6)
        if since < oldest:
            log.warning(
                "opcua gap longer than backfill_max_s: history before it is not read",
                source=self.name,
                gap_from=_dt(seen).isoformat(),
                read_from=_dt(oldest).isoformat(),
                backfill_max_s=max_s,
            )
            since = oldest
        if self._gaps and since <= self._gaps[-1][1]:  # a connect that failed before: one gap still
            self._gaps[-1] = (min(self._gaps[-1][0], since), now)
        else:
            self._gaps.append((since, now))
        self.metrics.set("hazmon_opcua_gaps_pending", len(self._gaps), self._labels)

    async def _fill_gaps(self, client: Client) -> None:
        """Read the pending gaps back from the server's history, oldest first.

        A gap stays pending until read in full: a connection lost meanwhile reads it again on the
        next one (the values read twice are dropped as duplicates).
        """
        while self._gaps:
            since, until = self._gaps[0]
            try:
                await self.input.backfill(client, since, until)
            except Exception as e:  # a slow or failing history must not take the live values down
                if type(e).__name__ not in _NO_HISTORY_SERVICE:
                    log.error(
                        "opcua history read failed; the gap stays pending for the next connection",
                        source=self.name,
                        error=f"{type(e).__name__}: {e}",
                        since=_dt(since).isoformat(),
                        until=_dt(until).isoformat(),
                    )
                    return
                self.metrics.set(
                    "hazmon_opcua_history_unavailable_items", len(self.input.items), self._labels
                )
                log.warning(
                    "opcua server refused HistoryRead: a gap in the connection is not filled (stale instead)",
                    source=self.name,
                    status=type(e).__name__,
                )
                self._gaps.clear()
            else:
                self._gaps.pop(0)
            self.metrics.set("hazmon_opcua_gaps_pending", len(self._gaps), self._labels)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)  # not a bare cancel(): asyncua's requests can lose one

    async def _watchdog(self, client: Client) -> None:
        node = client.get_node(_SERVER_STATE)
        while True:
            await asyncio.sleep(self.settings.watchdog_s)
            async with asyncio.timeout(self.settings.timeout_s):
                await node.read_value()

    async def _run(self) -> None:
        s = self.settings
        backoff = s.reconnect_min_s
        down_reported = False
        while True:
            client: Client | None = None
            reason = ""
            try:
                client = await self._client()
                async with asyncio.timeout(s.timeout_s):
                    await client.connect()
                self._note_gap()
                await self.input.attach(client)
                self.sessions += 1
                if self.sessions > 1:
                    self.metrics.inc("hazmon_source_reconnects_total", 1, self._labels)
                self.connected.set()
                self.metrics.set("hazmon_source_connected", 1, self._labels)
                self.on_state(self.name, True, "connected")
                log.info("opcua connected", source=self.name, url=self.endpoint.url, session=self.sessions)
                down_reported = False
                backoff = s.reconnect_min_s
                runs = [
                    asyncio.create_task(self.input.run(client), name=f"opcua:{self.name}:input"),
                    asyncio.create_task(self._watchdog(client), name=f"opcua:{self.name}:watchdog"),
                ]
                if self._gaps:  # live values first; the gap's come beside them (stored, too late to judge)
                    runs.append(
                        asyncio.create_task(self._fill_gaps(client), name=f"opcua:{self.name}:backfill")
                    )
                try:
                    done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
                    for t in done:
                        t.result()
                finally:
                    # the first failure was raised above; the others end with it
                    await cancel_and_wait(*runs, raise_errors=False)
            except asyncio.CancelledError:
                if client is not None:
                    await _disconnect(client)
                raise
            except RuntimeError as e:  # configuration problems (password, certificate): keep retrying, loudly
                reason = str(e)
            except Exception as e:  # connection refused, timeouts, BadSessionIdInvalid... reconnect
                reason = f"{type(e).__name__}: {e}"
            was_up = self.connected.is_set()
            self.connected.clear()
            self.metrics.set("hazmon_source_connected", 0, self._labels)
            if was_up or not down_reported:
                log.error(
                    "opcua endpoint unavailable; reconnecting",
                    source=self.name,
                    reason=reason,
                    retry_in_s=backoff,
                )
                self.on_state(self.name, False, f"endpoint {self.name} unavailable: {reason}")
                down_reported = True
            if client is not None:
                await _disconnect(client)
            await asyncio.sleep(backoff)
            backoff = min(s.reconnect_max_s, backoff * 2)


async def _disconnect(client: Client) -> None:
    """Close the session and the socket, best effort (the server may be gone), within 2 s."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await client.disconnect()


def inputs_for_plant(
    plant: Plant,
    *,
    queue: ReadingQueue,
    dead: DeadLetters,
    metrics: Metrics,
    settings: OpcUaSettings,
    on_state: SourceState,
) -> list[OpcUaConnection]:
    """One connection per OPC UA endpoint with sensors; its ``mode`` picks the input."""
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
        inp = cls(ep.name, items, queue=queue, dead=dead, metrics=metrics, settings=settings)
        out.append(OpcUaConnection(ep, inp, settings, metrics, on_state))
    return out
