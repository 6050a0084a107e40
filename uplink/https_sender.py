"""The link over HTTPS (``uplink: transport: https``): the outbox POSTed in order, the down messages polled.

For enterprises whose firewall allows only HTTPS. The bureau's endpoint (`hazmon.bureau.http_link`)
takes the same envelopes as its MQTT broker; the credential is HTTP Basic (username: the
enterprise id unless ``username`` says otherwise; password: the environment variable
``password_env``), TLS checked against ``ca_file`` (the system's CAs when not given).

`HttpsSender` (a thread, like the MQTT `hazmon.uplink.sender.Sender`) claims the unsent rows
in ``seq`` order and POSTs them one at a time on one keep-alive connection to
``<url>/api/v1/link/<enterprise>/up/<kind>``:

- **2xx** (``stored`` or ``duplicate``): the row is marked sent, the next one goes;
- **429** (the bureau's flood limit), **408**, **5xx**, a network error or a timeout: the row
  stays unsent, nothing after it goes; sent again after ``Retry-After`` when the bureau gave one
  (429 is counted ``throttled``), else after a back-off doubling up to ``retry_max_s``;
- **401**, or **403** for a path not this credential's: the credential is wrong — counted
  ``refused``, the row stays unsent, retried with back-off (nothing is lost while it is fixed);
- **any other 4xx**: the bureau refused this message for good and keeps it as a dead letter
  with the reason (logged here with the bureau's ``error``): counted ``refused``, marked sent,
  the messages after it go on.

`HttpsDownlink` polls ``GET <url>/api/v1/link/<enterprise>/down?after=<seq>`` every
``down_poll_s`` and hands each message to the same checks and handler as the MQTT downlink
(`hazmon.uplink.downlink.Downlink.handle`: recorded, a redelivery, or refused and dead-lettered).
Its next poll's ``after`` is the last message handled: that tells the bureau they were delivered.
A message not handled now (the database away) stops the batch; it and those after it come again.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import orjson
import psycopg
import structlog
from pydantic import ValidationError

from hazmon.plant.link.messages import TOPIC_ROOT
from hazmon.plant.schema import describe
from hazmon.store.db import connect
from hazmon.store.outbox import next_backoff
from hazmon.uplink.config import UplinkSettings
from hazmon.uplink.downlink import Downlink, DownlinkStats, RefusedSink, StepHandler
from hazmon.uplink.outbox import Conn, claim, mark_sent
from hazmon.uplink.sender import SenderStats

__all__ = ["LINK_PATH", "HttpsDownlink", "HttpsSender", "Retry"]

log = structlog.get_logger("hazmon.uplink")

LINK_PATH = "/api/v1/link"
_MAX_WAIT_S = 3600.0  # a Retry-After longer than this is not believed


class Retry(ConnectionError):  # noqa: N818 - a verdict: wait and send again
    """The bureau is away or asks to wait: send the same message again after ``after_s`` (or a back-off)."""

    def __init__(self, msg: str, after_s: float | None = None) -> None:
        super().__init__(msg)
        self.after_s = after_s


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return min(float(value.strip()), _MAX_WAIT_S)
    try:
        at = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return min(max(0.0, (at - datetime.now(UTC)).total_seconds()), _MAX_WAIT_S)


def _error_of(data: bytes) -> tuple[str, str]:
    """(reason_code, error) of the bureau's JSON refusal, whatever it holds."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return "", data[:200].decode(errors="replace")
    if not isinstance(doc, dict):
        return "", str(doc)[:200]
    return str(doc.get("reason_code", "")), str(doc.get("error", ""))[:1000]


class _Http:
    """One keep-alive connection to the bureau's link endpoint, with the Basic credential."""

    def __init__(self, s: UplinkSettings, enterprise_id: str) -> None:
        u = urlsplit(s.url)
        self.tls = u.scheme == "https"
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or (443 if self.tls else 80)
        self.base = u.path.rstrip("/") + f"{LINK_PATH}/{enterprise_id}"
        self.timeout = s.ack_timeout_s
        self.url = s.url
        user = s.username or enterprise_id
        token = base64.b64encode(f"{user}:{s.password() or ''}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "User-Agent": "hazmon-uplink"}
        self.ctx: ssl.SSLContext | None = None
        if self.tls:
            self.ctx = ssl.create_default_context(cafile=s.ca_file)
            if s.cert_file and s.key_file:
                self.ctx.load_cert_chain(s.cert_file, s.key_file)
        self._c: http.client.HTTPConnection | None = None
        self.connects = 0

    def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """(status, headers, body); `Retry` on a network error or a timeout (the connection is dropped)."""
        if self._c is None:
            self.connects += 1
            if self.ctx is not None:
                self._c = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout, context=self.ctx
                )
            else:
                self._c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = dict(self.headers)
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            self._c.request(method, self.base + path, body=body, headers=headers)
            r = self._c.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise Retry(f"bureau link {self.url}: {type(e).__name__}: {e}") from e
        if r.will_close:
            self.close()
        return r.status, r.headers, data

    def close(self) -> None:
        c, self._c = self._c, None
        if c is not None:
            c.close()


class HttpsSender:
    """Sends one enterprise database's outbox to the bureau's HTTPS link endpoint."""

    def __init__(self, settings: UplinkSettings, dsn: str, enterprise_id: str) -> None:
        self.settings = settings
        self.dsn = dsn
        self.enterprise_id = enterprise_id
        self.stats = SenderStats()
        self.last_error = ""
        self._http = _Http(settings, enterprise_id)
        self._conn: Conn | None = None
        self._reached = False

    @property
    def connected(self) -> bool:
        """The bureau answered the last request (any answer but a 5xx)."""
        return self._reached

    def _db(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.dsn, autocommit=True)
        return self._conn

    def close(self) -> None:
        self._http.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send_pending(self) -> int:
        """POST every unsent row, in order; how many the bureau took (2xx).

        Raises:
            Retry: the bureau is away, answered 408/429/5xx, or refused the credential; the row
                and those after it stay unsent and the next call sends them again.
        """
        total = 0
        while True:
            rows = claim(self._db(), self.settings.batch)
            if not rows:
                return total
            now = datetime.now(UTC)
            for r in rows:
                try:
                    body = r.envelope(now).model_dump_json().encode()
                except ValidationError as e:
                    self.stats.malformed += 1
                    log.error("uplink row malformed, skipped", seq=r.seq, reason=describe(e))
                    mark_sent(self._db(), [r.seq])
                    continue
                self.stats.published += 1
                if r.attempts > 1:
                    self.stats.replayed += 1
                self.stats.connects = self._http.connects
                try:
                    status, headers, data = self._http.request("POST", f"/up/{r.kind}", body)
                except Retry:
                    self._reached = False
                    self.stats.connect_failures += 1
                    self.stats.connects = self._http.connects
                    raise
                self.stats.connects = self._http.connects
                if self._answered(r.seq, status, headers, data):
                    total += 1

    def _answered(self, seq: int, status: int, headers: http.client.HTTPMessage, data: bytes) -> bool:
        """What the bureau's answer to row ``seq`` means: True when taken; raises `Retry` to wait."""
        self._reached = status < 500
        if 200 <= status < 300:
            mark_sent(self._db(), [seq])
            self.stats.acked += 1
            return True
        code, error = _error_of(data)
        after = _retry_after(headers.get("Retry-After"))
        if status == 429:
            self.stats.throttled += 1
            raise Retry(f"bureau link: 429 {code} {error}".strip(), after)
        if status == 408 or status >= 500:
            raise Retry(f"bureau link: {status} {error}".strip(), after)
        self.stats.refused += 1
        if status == 401 or (status == 403 and code in ("topic_mismatch", "unauthorized")):
            log.error("uplink credential refused by the bureau", status=status, reason=error)
            raise Retry(f"bureau link: {status} credential refused: {error}")
        # refused for good: the bureau keeps it as a dead letter with the reason
        log.error(
            "uplink message refused by the bureau", seq=seq, status=status, reason_code=code, reason=error
        )
        mark_sent(self._db(), [seq])
        return False

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set; wait as the bureau asks, or back off while it is away."""
        backoff = 0.0
        while not stop.is_set():
            try:
                self.send_pending()
                self.last_error = ""
                backoff = 0.0
                stop.wait(self.settings.poll_interval_s)
            except (ConnectionError, OSError, psycopg.OperationalError) as e:
                backoff = next_backoff(backoff, self.settings.retry_max_s)
                wait = e.after_s if isinstance(e, Retry) and e.after_s is not None else backoff
                self.last_error = str(e)
                log.warning("uplink (https) waiting", error=str(e), retry_in_s=wait)
                if self._conn is not None and self._conn.broken:
                    self._conn = None
                stop.wait(wait)
        self.close()


class _Stalled(Retry):
    """A down message could not be handled now (counted by the handler as ``failed``)."""


class HttpsDownlink:
    """Polls the bureau's down messages over HTTPS; the MQTT downlink's checks and handler take them."""

    def __init__(
        self, settings: UplinkSettings, enterprise_id: str, on_step: StepHandler, on_refused: RefusedSink
    ) -> None:
        self.settings = settings
        self.enterprise_id = enterprise_id
        self._handler = Downlink(settings, enterprise_id, on_step, on_refused)  # its `handle` only
        self.stats: DownlinkStats = self._handler.stats
        self.subscribed = threading.Event()  # the last poll was answered
        self.after: int | None = None  # the last message handled (None: where the bureau says)
        self._http = _Http(settings, enterprise_id)

    def poll(self) -> tuple[int, bool]:
        """One poll: (messages handled, whether the answer was full and more may wait).

        Raises:
            Retry: the bureau did not answer 200, or a message could not be handled now.
        """
        limit = self.settings.batch
        path = f"/down?limit={limit}" + ("" if self.after is None else f"&after={self.after}")
        status, headers, data = self._http.request("GET", path)
        self.stats.connects = self._http.connects
        if status != 200:
            self.subscribed.clear()
            code, error = _error_of(data)
            raise Retry(
                f"bureau link down: {status} {code} {error}".strip(), _retry_after(headers.get("Retry-After"))
            )
        try:
            doc = orjson.loads(data)
            messages = doc["messages"]
            delivered = int(doc["delivered_seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise Retry(f"bureau link down: not a down answer ({type(e).__name__})") from e
        self.subscribed.set()
        if self.after is None:
            self.after = delivered
        handled = 0
        for m in messages:
            kind = m.get("kind") if isinstance(m, dict) else None
            seq = m.get("seq") if isinstance(m, dict) else None
            topic = f"{TOPIC_ROOT}/{self.enterprise_id}/down/{kind if isinstance(kind, str) else 'unknown'}"
            if not self._handler.handle(topic, orjson.dumps(m)):
                raise _Stalled("bureau message not recorded now; it is polled again")
            handled += 1
            if isinstance(seq, int) and seq > (self.after or 0):
                self.after = seq
        return handled, len(messages) >= limit

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set: at once again while answers come full; back off when away."""
        backoff = 0.0
        while not stop.is_set():
            try:
                _, more = self.poll()
                backoff = 0.0
                if not more:
                    stop.wait(self.settings.down_poll_s)
            except (ConnectionError, OSError) as e:
                if not isinstance(e, _Stalled):
                    self.stats.failed += 1
                backoff = next_backoff(backoff, self.settings.retry_max_s)
                wait = e.after_s if isinstance(e, Retry) and e.after_s is not None else backoff
                log.warning("bureau downlink (https) waiting", error=str(e), retry_in_s=wait)
                stop.wait(wait)
        self._http.close()
