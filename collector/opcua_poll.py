"""The polling OPC UA input, for servers without subscriptions.

`PollInput` reads every node each ``min(period)`` with one Read request per batch of
``items_per_request``; a value whose source timestamp did not change is not a new reading.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from asyncua import ua as _ua
from asyncua.client.client import Client

from hazmon.collector.opcua_input import Item, OpcUaInput, node_id
from hazmon.plant import asyncua_internals as internals
from hazmon.plant.reading import Reading

__all__ = ["PollInput"]

log = structlog.get_logger("hazmon.collector.opcua")

ua: Any = _ua  # asyncua's generated types do not type-check under --strict; used at the edge only


class PollInput(OpcUaInput):
    """Reads every node each ``min(period)``; an unchanged source timestamp is not a new reading."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._last_ts: dict[str, int] = {}
        self._nodes: list[tuple[Item, Any]] = []

    async def attach(self, client: Client) -> None:
        self._nodes = []
        for it in self.items:
            nid = node_id(it.node)
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
            values = await internals.read(client, params)
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
