"""History backfill: what an OPC UA server historized during a gap, read back with HistoryRead.

Per ``items_per_request`` nodes: one Read of their AccessLevel (does the server keep history?),
then HistoryRead (raw), following continuation points. The input (`hazmon.collector.opcua_input`)
turns each DataValue into a reading and puts them on the queue; the connection
(`hazmon.collector.opcua_connection`) decides which gaps to read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from asyncua import ua as _ua
from asyncua.client.client import Client

from hazmon.plant import asyncua_internals as internals
from hazmon.plant.reading import Reading

__all__ = ["History", "read_history", "utc"]

ua: Any = _ua  # asyncua's generated types do not type-check under --strict

# HistoryRead (backfill): values per request, shared out over its nodes (the server hands a
# continuation point for more: 1,000 nodes get 100 values each per round), and a bound on the
# rounds so a server that never finishes cannot hold the connection
_HISTORY_VALUES_PER_REQUEST = 100_000
_ACCESS_HISTORY_READ = 0x04  # AccessLevel bit: the server keeps history of the node (Part 3 §8.57)
HISTORY_MAX_ROUNDS = 1000


class _Tagged(Protocol):
    @property
    def tag(self) -> str: ...


T = TypeVar("T", bound=_Tagged)


class History(NamedTuple):
    """What one backfill read.

    Attributes:
        readings: readings queued.
        no_history: tag -> why its node has no history (AccessLevel, or the status of its result).
        unfinished: nodes still handing continuation points after `HISTORY_MAX_ROUNDS` rounds.
    """

    readings: int
    no_history: dict[str, str]
    unfinished: int


def utc(us: int) -> datetime:
    """µs since the Unix epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(us / 1e6, UTC)


async def read_history(
    client: Client,
    nodes: Sequence[tuple[T, Any]],
    window: tuple[int, int],
    per_request: int,
    *,
    reading: Callable[[T, Any, int], Reading | None],
    put: Callable[[list[Reading]], Awaitable[None]],
) -> History:
    """What the server historized of ``nodes`` (item, NodeId) within ``window`` (µs, inclusive).

    ``reading`` makes a reading of an item's DataValue (None: none); ``put`` takes each
    round's readings, in time order.
    """
    total = 0
    no_history: dict[str, str] = {}
    unfinished = 0
    for i in range(0, len(nodes), per_request):
        todo = await _historized(client, nodes[i : i + per_request], no_history)
        for _round in range(HISTORY_MAX_ROUNDS):
            if not todo:
                break
            todo, queued = await _history_round(client, todo, window, no_history, reading=reading, put=put)
            total += queued
        unfinished += len(todo)
    return History(total, no_history, unfinished)


async def _historized(
    client: Client, chunk: Sequence[tuple[T, Any]], no_history: dict[str, str]
) -> list[tuple[T, Any, bytes | None]]:
    """The nodes of ``chunk`` whose AccessLevel has HistoryRead (the others go to ``no_history``)."""
    access = await internals.read(
        client,
        ua.ReadParameters(
            NodesToRead=[
                ua.ReadValueId(NodeId=nid, AttributeId=ua.AttributeIds.AccessLevel) for _, nid in chunk
            ]
        ),
    )
    out: list[tuple[T, Any, bytes | None]] = []
    for (it, nid), dv in zip(chunk, access, strict=True):
        good = dv.StatusCode is None or dv.StatusCode.is_good()
        level = dv.Value.Value if dv.Value is not None and good else 0
        if isinstance(level, int) and level & _ACCESS_HISTORY_READ:
            out.append((it, nid, None))
        else:  # servers answer HistoryRead of such a node with nothing, or an error
            no_history[it.tag] = "AccessLevel without HistoryRead"
    return out


async def _history_round(
    client: Client,
    todo: list[tuple[T, Any, bytes | None]],
    window: tuple[int, int],
    no_history: dict[str, str],
    *,
    reading: Callable[[T, Any, int], Reading | None],
    put: Callable[[list[Reading]], Awaitable[None]],
) -> tuple[list[tuple[T, Any, bytes | None]], int]:
    """One HistoryRead of ``todo``: its readings to ``put``; (nodes with more, readings queued)."""
    details = ua.ReadRawModifiedDetails(
        IsReadModified=False,
        StartTime=utc(window[0]),
        EndTime=utc(window[1]),
        NumValuesPerNode=max(10, _HISTORY_VALUES_PER_REQUEST // len(todo)),
        ReturnBounds=False,
    )
    params = ua.HistoryReadParameters(
        HistoryReadDetails=details,
        TimestampsToReturn=ua.TimestampsToReturn.Both,
        ReleaseContinuationPoints=False,
        NodesToRead=[ua.HistoryReadValueId(NodeId=nid, ContinuationPoint=cp) for _, nid, cp in todo],
    )
    results = await internals.history_read(client, params)
    now = time.time_ns() // 1000
    rows: list[Reading] = []
    more: list[tuple[T, Any, bytes | None]] = []
    for (it, nid, cp), res in zip(todo, results, strict=True):
        if not res.StatusCode.is_good():
            no_history[it.tag] = res.StatusCode.name
            continue
        for dv in getattr(res.HistoryData, "DataValues", None) or []:
            r = reading(it, dv, now)
            if r is not None and window[0] <= r.ts_us <= window[1]:
                rows.append(r)
        if res.ContinuationPoint and res.ContinuationPoint != cp:  # the same one again: no progress
            more.append((it, nid, res.ContinuationPoint))
    rows.sort(key=lambda r: r.ts_us)
    if rows:
        await put(rows)
    return more, len(rows)
