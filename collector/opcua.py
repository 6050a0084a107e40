"""OPC UA inputs over asyncua's async API, behind an adapter that hands out `Reading`s only.

One `OpcUaConnection` per endpoint of the plant file owns the asyncua client:
security (None, Basic256Sha256 Sign / SignAndEncrypt with certificate and key
files), username and password, a watchdog, and reconnection with capped
backoff. After every (re)connect it attaches its input to the fresh session:

- `SubscribeInput` creates one subscription and its monitored items in batches
  of ``items_per_request`` (10,000 items take a handful of requests), reads the
  revised publishing interval, sampling intervals and queue sizes back and logs
  where the server gave less than asked. Notifications arrive through our own
  publish callback, which puts them on the bounded queue and is awaited by
  asyncua's publish loop: a full queue delays the next Publish request (the
  server queues) instead of dropping (asyncua's iterator queue silently drops
  the oldest at 1,000; its handler style costs a task per value).
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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509

from hazmon.collector.deadletter import DeadLetters
from hazmon.collector.metrics import Metrics
from hazmon.collector.queue import ReadingQueue
from hazmon.collector.settings import OpcUaSettings
from hazmon.plant.model import OpcUaBinding, OpcUaEndpoint, Plant, Sensor
from hazmon.plant.reading import Quality, Reading, to_us

__all__ = ["OpcUaConnection", "PollInput", "SubscribeInput", "inputs_for_plant", "quality_of"]

log = structlog.get_logger("hazmon.collector.opcua")

ua: Any = _ua  # asyncua's generated types do not type-check under --strict; used at the edge only

SourceState = Callable[[str, bool, str], None]
_SERVER_STATE = "i=2259"  # Server_ServerStatus_State
_OVERFLOW = 0x0480  # StatusCode info bits: DataValue info type + Overflow
_WAITING_FOR_INITIAL_DATA = 0x80320000


def quality_of(status: int) -> Quality:
    """OPC UA StatusCode severity (top two bits) -> our quality."""
    sev = (status >> 30) & 0x3
    return Quality.GOOD if sev == 0 else (Quality.UNCERTAIN if sev == 1 else Quality.BAD)


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
        metrics.declare("hazmon_readings_received_total", "counter", "Readings decoded, by source")
        metrics.declare("hazmon_opcua_item_errors_total", "counter", "Nodes refused by the server, by status")

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
        status = int(dv.StatusCode.value) if dv.StatusCode is not None else 0
        if status & _OVERFLOW == _OVERFLOW:
            self.metrics.inc("hazmon_opcua_overflow_total", 1, self.labels)
        v = dv.Value.Value if dv.Value is not None else None
        q = quality_of(status)
        ts = dv.SourceTimestamp or dv.ServerTimestamp
        if v is None and q == Quality.BAD and status != _WAITING_FOR_INITIAL_DATA:
            # servers send no value with a Bad status: the reading is the bad status itself
            # (rules: bad_quality); NaN says "no value" in the store, never a made-up number
            return Reading(it.tag, to_us(ts) if ts is not None else now_us, math.nan, q)
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
        return Reading(it.tag, to_us(ts) if ts is not None else now_us, fv, q)


def _node_id(node: str) -> Any | None:
    try:
        return ua.NodeId.from_string(node)
    except Exception:  # asyncua raises several kinds for a malformed id
        return None


class SubscribeInput(_Base):
    """Monitored items in one subscription; notifications go straight to the queue."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.revised: dict[str, float] = {}
        self.create_requests = 0
        self._handles: dict[int, Item] = {}
        self._lost: asyncio.Event = asyncio.Event()

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
        self._lost = asyncio.Event()
        res = await client.uaclient.create_subscription(params, self._publish)
        sub_id = res.SubscriptionId
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

    async def _publish(self, result: Any) -> None:
        """Asyncua's publish loop awaits this: a full queue delays the next Publish (server queues)."""
        data = result.NotificationMessage.NotificationData or []
        now = time.time_ns() // 1000
        out: list[Reading] = []
        for notif in data:
            if isinstance(notif, ua.DataChangeNotification):
                for m in notif.MonitoredItems:
                    it = self._handles.get(m.ClientHandle)
                    if it is None:
                        continue
                    r = self._reading(it, m.Value, now)
                    if r is not None:
                        out.append(r)
            elif isinstance(notif, ua.StatusChangeNotification):
                log.warning("opcua subscription status changed", source=self.name, status=str(notif.Status))
                self._lost.set()
        if out:
            self.metrics.inc("hazmon_readings_received_total", len(out), self.labels)
            await self.queue.put(out)

    async def run(self, client: Client) -> None:
        await self._lost.wait()
        raise ConnectionError("subscription lost")


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
            await self.queue.put(out)
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
        self._labels = {"source": self.name}
        metrics.declare("hazmon_source_connected", "gauge", "1 while the source is connected")
        metrics.declare(
            "hazmon_source_reconnects_total", "counter", "Connections made after the first, by source"
        )
        metrics.set("hazmon_source_connected", 0, self._labels)

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

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"opcua:{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watchdog(self, client: Client) -> None:
        node = client.get_node(_SERVER_STATE)
        while True:
            await asyncio.sleep(self.settings.watchdog_s)
            await asyncio.wait_for(node.read_value(), self.settings.timeout_s)

    async def _run(self) -> None:
        s = self.settings
        backoff = s.reconnect_min_s
        down_reported = False
        while True:
            client: Client | None = None
            reason = ""
            try:
                client = await self._client()
                await asyncio.wait_for(client.connect(), s.timeout_s)
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
                    asyncio.create_task(self.input.run(client)),
                    asyncio.create_task(self._watchdog(client)),
                ]
                try:
                    done, _ = await asyncio.wait(runs, return_when=asyncio.FIRST_EXCEPTION)
                    for t in done:
                        t.result()
                finally:
                    for t in runs:
                        t.cancel()
                    for t in runs:
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await t
            except asyncio.CancelledError:
                if client is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(client.disconnect(), 2.0)
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
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(), 2.0)
            await asyncio.sleep(backoff)
            backoff = min(s.reconnect_max_s, backoff * 2)


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
