"""The subscribing OPC UA input: one subscription, our own publish loop, the fast decoder.

`SubscribeInput` creates one subscription and its monitored items in batches of
``items_per_request`` (10,000 items take a handful of requests), reads the revised publishing
interval, sampling intervals and queue sizes back and logs where the server gave less than
asked. Its own publish loop sends one Publish request after another and awaits putting each
response's readings on the bounded queue: a full queue delays the next Publish request (the
server queues) instead of dropping (asyncua's iterator queue silently drops the oldest at 1,000;
its handler style costs a task per value). Responses are read from their bytes into
`ReadingBatch` columns (`hazmon.collector.opcua_decode`), with asyncua's decoder for anything
unusual. The requests go through `hazmon.plant.asyncua_internals`.
"""

from __future__ import annotations

import math
import struct
import time
from typing import Any

import numpy as np
import structlog
from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.ua.uaerrors import BadNoSubscription, BadTimeout, UaError
from numpy.typing import NDArray

from hazmon.collector.opcua_decode import DataChanges, decode_data_changes, decode_publish_frame
from hazmon.collector.opcua_input import OVERFLOW, WAITING_FOR_INITIAL_DATA, Item, OpcUaInput, node_id
from hazmon.plant import asyncua_internals as internals
from hazmon.plant.reading import Quality, Reading, ReadingBatch

__all__ = ["SubscribeInput"]

log = structlog.get_logger("hazmon.collector.opcua")

ua: Any = _ua  # asyncua's generated types do not type-check under --strict; used at the edge only


class SubscribeInput(OpcUaInput):
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
        created = internals.decode(ua.CreateSubscriptionResponse, await internals.send_request(client, req))
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
            nid = node_id(it.node)
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
            results = await internals.create_monitored_items(
                client,
                ua.CreateMonitoredItemsParameters(
                    SubscriptionId=sub_id,
                    TimestampsToReturn=ua.TimestampsToReturn.Both,
                    ItemsToCreate=[r for _, _, r in chunk],
                ),
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
                data = await internals.send_request(
                    client, req, wait_s=0
                )  # the server holds it until it has news
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
                res = internals.decode(ua.PublishResponse, raw).Parameters
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
        over = int(np.count_nonzero((st & OVERFLOW == OVERFLOW) & ~impossible))
        if over:
            self.metrics.inc("hazmon_opcua_overflow_total", over, self.labels)
        q = np.minimum((st >> 30) & 0x3, 2).astype(np.int8)
        null_bad = ~hv & (q == Quality.BAD) & (st != WAITING_FOR_INITIAL_DATA)
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
