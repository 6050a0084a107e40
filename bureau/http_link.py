"""The link over HTTPS: the same envelopes as over MQTT, for enterprises whose firewall allows only HTTPS.

Served by the bureau daemon on its own listener (``https_link:`` in bureau.yaml, TLS with the
bureau's certificate; plain http only with ``insecure: true``). Each call authenticates with
HTTP Basic: the username is the enterprise id, the password's SHA-256 is in ``https_link.enterprises``.

- ``POST /api/v1/link/{enterprise}/up/{kind}`` — body: one envelope (the MQTT payload, the same
  bytes). Checked as if it arrived on ``hazmon/v1/{enterprise}/up/{kind}``
  (`hazmon.bureau.ingest.Ingestor`: stored once by ``message_id``):

  ====== ===========================================================================
  200    ``{"status": "stored"}`` or ``{"status": "duplicate"}`` (stored before: nothing changed)
  400    refused: ``invalid_schema``, ``topic_mismatch`` (dead letter, counted) — ``error`` names it
  401    no or wrong credential (counted, not dead-lettered)
  403    the path's enterprise is not the signed-in one (dead letter ``topic_mismatch``), or
         ``outside_region``
  409    ``unknown_enterprise`` (register first), ``unknown_alarm``
  413    the body is larger than ``limits.max_message_bytes`` (dead letter ``oversized``)
  422    ``database_refused``, ``internal_error`` (dead letter: a person looks at it)
  429    over the enterprise's flood limit (`hazmon.bureau.flood`): ``Retry-After`` says when to
         send it again; nothing is dead-lettered
  503    the bureau's database is away, or its code failed (logged): send it again later
         (``Retry-After``)
  ====== ===========================================================================

  Every refusal's body is ``{"error": "<field>: <reason>", "reason_code": "..."}``; never a 500.

- ``GET /api/v1/link/{enterprise}/down?after=<seq>&limit=<n>`` — the enterprise's down messages
  (``bureau_step``, ``bureau_warning``) from the outbox ``bureau_downlink``, in ``seq`` order,
  those after ``after``: ``{"messages": [<envelope>, ...], "delivered_seq": <n>}``. Asking with
  ``after=N`` says every message up to ``N`` was handled at the plant: **that is what marks a down
  message delivered over HTTPS** (``bureau_link_https_cursor``). Without ``after`` the answer
  starts after the last delivered one, so an enterprise need not keep the cursor across restarts
  (a message handled but not yet confirmed comes again: the plant drops it as a redelivery).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import queue
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import psycopg
import structlog
from aiohttp import BasicAuth, web
from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from hazmon.bureau.downlink import DownlinkSender
from hazmon.bureau.flood import FloodLimiter, FloodMetrics, flood_refusal, retry_after_s
from hazmon.bureau.https_link_config import HttpsLink
from hazmon.bureau.ingest import Conn, Ingestor, Outcome, Refused, dead_letter
from hazmon.plant.http_request import RequestError, parse_query, query_whole
from hazmon.plant.link.messages import TOPIC_ROOT
from hazmon.plant.schema import describe

__all__ = ["LINK_PREFIX", "LinkServer", "link_ssl_context"]

log = structlog.get_logger("hazmon.bureau.http_link")

LINK_PREFIX = "/api/v1/link"
REALM = 'Basic realm="hazmon-link", charset="UTF-8"'
_STATUS = {
    "oversized": 413,
    "outside_region": 403,
    "unknown_enterprise": 409,
    "unknown_alarm": 409,
    "database_refused": 422,
    "internal_error": 422,
}
_STATUSES = ("400", "401", "403", "409", "413", "422", "429", "503")
_DB_RETRY_S = 5


class DownQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after: Annotated[int | None, Field(ge=0), BeforeValidator(query_whole)] = None
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(query_whole)] = 100


def link_ssl_context(cfg: HttpsLink) -> ssl.SSLContext | None:
    """The server's TLS context (cert and key of ``https_link``), None when ``insecure``."""
    if cfg.insecure:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cfg.cert_file), str(cfg.key_file))
    return ctx


class _Pool:
    """A few autocommit connections reused by the handlers' threads (one per call at a time)."""

    def __init__(self, dsn: str, size: int = 4) -> None:
        self.dsn = dsn
        self._free: queue.LifoQueue[Conn] = queue.LifoQueue(size)

    @contextmanager
    def conn(self) -> Iterator[Conn]:
        try:
            c = self._free.get_nowait()
        except queue.Empty:
            c = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name="hazmon-link")
        try:
            yield c
        finally:
            if c.closed or c.broken:
                c.close()
            else:
                try:
                    self._free.put_nowait(c)
                except queue.Full:
                    c.close()

    def close(self) -> None:
        while True:
            try:
                self._free.get_nowait().close()
            except queue.Empty:
                return


class _Refusal(Exception):  # noqa: N818 - an answer, not a failure
    def __init__(self, status: int, reason_code: str, error: str, headers: dict[str, str] | None = None):
        super().__init__(error)
        self.status, self.reason_code, self.error, self.headers = status, reason_code, error, headers or {}


class LinkServer:
    """The HTTPS link's aiohttp app and listener."""

    def __init__(
        self,
        cfg: HttpsLink,
        dsn: str,
        ingestor: Ingestor,
        limiter: FloodLimiter,
        *,
        registry: CollectorRegistry | None = None,
        flood_metrics: FloodMetrics | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.cfg = cfg
        self.ingestor = ingestor
        self.limiter = limiter
        self.flood_metrics = flood_metrics or FloodMetrics(registry)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.digests = cfg.digests()
        self.pool = _Pool(dsn)
        self.port = cfg.port
        reg = registry if registry is not None else CollectorRegistry()
        self.refused = Counter(
            "hazmon_bureau_link_https_refused_total",
            "Calls of the HTTPS link refused, by HTTP status (401: credential, 429: flood, 503: database)",
            ["status"],
            registry=reg,
        )
        for s in _STATUSES:
            self.refused.labels(status=s)
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------ serving

    async def start(self) -> int:
        """Listen (TLS unless ``insecure``); the bound port (``port: 0`` picks a free one)."""
        app = web.Application(client_max_size=self.ingestor.limits.max_message_bytes + 1)
        app.router.add_post(LINK_PREFIX + "/{enterprise}/up/{kind}", self._guard(self.up))
        app.router.add_get(LINK_PREFIX + "/{enterprise}/down", self._guard(self.down))
        self._runner = web.AppRunner(app, access_log=None)  # a new app each start: stop, start again
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.cfg.host, self.cfg.port, ssl_context=link_ssl_context(self.cfg))
        await site.start()
        for addr in self._runner.addresses:
            self.port = int(addr[1])
            break
        log.info("bureau HTTPS link listening", port=self.port, tls=not self.cfg.insecure)
        return self.port

    @property
    def listening(self) -> bool:
        """Started and its socket bound and open (the ``https_link`` line of /readyz)."""
        return self._runner is not None and bool(self._runner.addresses)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.pool.close()

    # ------------------------------------------------------------ the calls

    def _signed_in(self, request: web.Request) -> str:
        """The enterprise of the Basic credential; `_Refusal` 401 otherwise."""
        header = request.headers.get("Authorization", "")
        try:
            auth = BasicAuth.decode(header) if header else None
        except ValueError:
            auth = None
        if auth is None:
            raise _Refusal(401, "unauthorized", "Authorization: HTTP Basic credential missing or malformed",
                           {"WWW-Authenticate": REALM})  # fmt: skip
        want = self.digests.get(auth.login, "0" * 64)
        got = hashlib.sha256(auth.password.encode()).hexdigest()
        if not hmac.compare_digest(want, got) or auth.login not in self.digests:
            raise _Refusal(401, "unauthorized", "Authorization: wrong enterprise id or password",
                           {"WWW-Authenticate": REALM})  # fmt: skip
        return str(auth.login)

    def _own(self, request: web.Request, who: str) -> str:
        eid = request.match_info["enterprise"]
        if eid != who:
            raise _Refusal(403, "topic_mismatch", f"path: enterprise {eid!r} is not the signed-in {who!r}")
        return eid

    def _guard(
        self, fn: Callable[[web.Request, str], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            who: str | None = None
            try:
                who = self._signed_in(request)
                return await fn(request, who)
            except _Refusal as r:
                return self._refuse(request, r, who)
            except RequestError as e:
                return self._refuse(request, _Refusal(400, "invalid_request", str(e)), who)
            except (psycopg.Error, OSError) as e:  # the database away: the sender tries again
                log.warning("bureau HTTPS link: database away", error=str(e).strip())
                why = _Refusal(503, "database_unavailable", "database unavailable, try again",
                               {"Retry-After": str(_DB_RETRY_S)})  # fmt: skip
                return self._refuse(request, why, who)
            except Exception:  # a defect of ours: logged with its traceback; the sender tries again later
                log.exception("bureau HTTPS link call failed", path=request.path, enterprise=who)
                why = _Refusal(503, "internal_error", "the bureau could not handle it now, try again",
                               {"Retry-After": str(_DB_RETRY_S)})  # fmt: skip
                return self._refuse(request, why, who)

        return handler

    def _refuse(self, request: web.Request, r: _Refusal, who: str | None) -> web.Response:
        self.refused.labels(status=str(r.status)).inc()
        log.warning("bureau HTTPS link call refused", path=request.path, status=r.status,
                    reason_code=r.reason_code, reason=r.error, enterprise=who)  # fmt: skip
        return web.json_response(
            {"error": r.error, "reason_code": r.reason_code}, status=r.status, headers=r.headers
        )

    async def up(self, request: web.Request, who: str) -> web.StreamResponse:
        parse_query(request, None)
        wait = self.limiter.admit(who)
        if wait > 0.0:
            self.flood_metrics.flooded.labels(enterprise_id=who, transport="https").inc()
            r = flood_refusal(who, self.limiter.rate, self.limiter.burst)
            raise _Refusal(429, "flood", r.reason, {"Retry-After": str(retry_after_s(wait))})
        kind = request.match_info["kind"]
        topic = f"{TOPIC_ROOT}/{request.match_info['enterprise']}/up/{kind}"
        try:
            eid = self._own(request, who)
        except _Refusal as r:
            await asyncio.to_thread(self._dead_letter, topic, b"", Refused(r.reason_code, r.error, who))
            raise
        raw = await self._body(request)
        if raw is None:
            limit = self.ingestor.limits.max_message_bytes
            why = f"message: more than {limit} bytes (limits.max_message_bytes)"
            await asyncio.to_thread(self._dead_letter, topic, b"", Refused("oversized", why, eid))
            raise _Refusal(413, "oversized", why)
        o = await asyncio.to_thread(self._ingest, raw, topic)
        if o.refused is not None:
            rc = o.refused.reason_code
            raise _Refusal(_STATUS.get(rc, 400), rc, o.refused.reason)
        return web.json_response({"status": o.status})

    async def _body(self, request: web.Request) -> bytes | None:
        """The body, or None when it is longer than ``max_message_bytes`` (not read past that)."""
        limit = self.ingestor.limits.max_message_bytes
        if request.content_length is not None and request.content_length > limit:
            return None
        buf = bytearray()
        while chunk := await request.content.read(65536):
            buf += chunk
            if len(buf) > limit:
                return None
        return bytes(buf)

    def _ingest(self, raw: bytes, topic: str) -> Outcome:
        with self.pool.conn() as c:
            return self.ingestor.handle(c, raw, topic, self.clock())

    def _dead_letter(self, topic: str, raw: bytes, r: Refused) -> None:
        with self.pool.conn() as c, c.transaction():
            dead_letter(c, topic, raw, r)
        self.ingestor.metrics.refused.labels(reason_code=r.reason_code).inc()

    async def down(self, request: web.Request, who: str) -> web.StreamResponse:
        eid = self._own(request, who)
        q = parse_query(request, DownQuery)
        assert q is not None
        limit = min(q.limit, self.cfg.down_batch)
        delivered, rows = await asyncio.to_thread(self._down, eid, q.after, limit)
        body = b'{"delivered_seq":%d,"messages":[%s]}' % (delivered, b",".join(rows))
        return web.Response(body=body, content_type="application/json")

    def _down(self, eid: str, after: int | None, limit: int) -> tuple[int, list[bytes]]:
        with self.pool.conn() as c, c.transaction():
            row = c.execute(
                "INSERT INTO bureau_link_https_cursor AS k (enterprise_id, delivered_seq, delivered_at)"
                " VALUES (%(e)s, coalesce(%(a)s, 0), CASE WHEN %(a)s IS NOT NULL THEN now() END)"
                " ON CONFLICT (enterprise_id) DO UPDATE SET polled_at = now(),"
                " delivered_seq = GREATEST(k.delivered_seq, coalesce(%(a)s, 0)),"
                " delivered_at = CASE WHEN %(a)s > k.delivered_seq THEN now() ELSE k.delivered_at END"
                " RETURNING delivered_seq",
                {"e": eid, "a": after},
            ).fetchone()
            delivered = int(str(row[0])) if row else 0
            start = delivered if after is None else after
            rows: list[Any] = c.execute(
                "SELECT seq, message_id, enterprise_id, region_code, kind, payload FROM bureau_downlink"
                " WHERE enterprise_id = %s AND seq > %s ORDER BY seq LIMIT %s",
                (eid, start, limit),
            ).fetchall()
        out: list[bytes] = []
        for r in rows:
            try:
                out.append(DownlinkSender._envelope(tuple(r)).model_dump_json().encode())
            except ValidationError as e:  # a row edited by hand: skipped, as the MQTT sender does
                log.error("bureau downlink row malformed, skipped", seq=r[0], reason=describe(e))
        return delivered, out
