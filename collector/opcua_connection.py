"""One OPC UA endpoint: the asyncua client, its session, watchdog, reconnection and gaps.

`OpcUaConnection` owns the asyncua client of one endpoint of the plant file: security (None,
Basic256Sha256 Sign / SignAndEncrypt with certificate and key files), username and password,
a watchdog, and reconnection with capped backoff. After every (re)connect it attaches its input
(`SubscribeInput` or `PollInput`, the endpoint's ``mode`` picks one) to the fresh session, and
reads the time it was away back from the server's history (`hazmon.collector.opcua_history`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509

from hazmon.collector.metrics import Metrics
from hazmon.collector.opcua_history import utc
from hazmon.collector.opcua_poll import PollInput
from hazmon.collector.opcua_subscribe import SubscribeInput
from hazmon.collector.settings import OpcUaSettings
from hazmon.plant.aio import cancel_and_wait
from hazmon.plant.model import OpcUaEndpoint

__all__ = ["OpcUaConnection", "SourceState"]

log = structlog.get_logger("hazmon.collector.opcua")

ua: Any = _ua  # asyncua's generated types do not type-check under --strict; used at the edge only

SourceState = Callable[[str, bool, str], None]
_SERVER_STATE = "i=2259"  # Server_ServerStatus_State
# a gap is read back from a little before the newest value received: a value sampled just before
# the connection went may still have been in the server's queue
_BACKFILL_OVERLAP_US = 10_000_000
# ServiceFaults of a server that does not do HistoryRead at all (the gap is then given up)
_NO_HISTORY_SERVICE = frozenset(
    {"BadServiceUnsupported", "BadHistoryOperationUnsupported", "BadNotSupported", "BadNotImplemented"}
)


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
                gap_from=utc(seen).isoformat(),
                read_from=utc(oldest).isoformat(),
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
                        since=utc(since).isoformat(),
                        until=utc(until).isoformat(),
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

    def prepare_stop(self) -> bool:
        """False: stop it at once (it acknowledges nothing; the server keeps what is new)."""
        return False

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
