"""The per-enterprise flood limit: one enterprise's flood never stops the other enterprises' data.

Each enterprise has a token bucket (``limits.flood_rate_per_s`` refilled, ``limits.flood_burst``
deep) in each worker process. A message costs one token; an enterprise without a token is
*flooding*:

- over MQTT (`FloodGuardedIngestor`), the message is dead-lettered with reason ``flood``, kept
  **whole** (not cut at 64 KiB like other dead letters) so that it can be replayed, counted
  (``hazmon_bureau_refused_total{reason_code="flood"}`` and
  ``hazmon_bureau_flood_total{enterprise_id,transport}``), and acknowledged: the worker goes on
  with the next message at the cost of one insert, instead of parsing and applying the flood;
- over HTTPS (`hazmon.bureau.http_link`), the answer is 429 with ``Retry-After``: the enterprise's
  sender keeps the message and sends it again later; nothing is dead-lettered.

`replay` puts dead letters of one reason (``flood`` by default) through the ingest again, each
once (``replayed_at``), oldest first: a message already stored is a duplicate by its
``message_id``, so a replay stores nothing twice (``hazmon bureau dead-letters replay``).

Why the defaults (5 messages/s, burst 20,000): an enterprise sends about 2 messages a minute
(aggregates and a heartbeat) plus its alarm events; a 72-hour outage leaves about
72 × 60 × 2 = 8,640 messages, replayed at once when the link returns. The burst holds more than
twice that, so a legitimate backlog passes whole; 5/s sustained is 150 times the normal rate.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import structlog
from prometheus_client import CollectorRegistry, Counter

from hazmon.bureau.ingest import Conn, IngestLimits, IngestMetrics, Ingestor, Outcome, Refused
from hazmon.plant.link import Envelope, LinkError, parse_topic
from hazmon.plant.regions import Scope

__all__ = [
    "FloodGuardedIngestor",
    "FloodLimiter",
    "FloodMetrics",
    "ReplayResult",
    "TokenBucket",
    "dead_letter_whole",
    "flood_refusal",
    "replay",
    "retry_after_s",
]

log = structlog.get_logger("hazmon.bureau.flood")


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens at most, ``rate`` more each second; `take` is pure in the time it is given."""

    rate: float
    burst: float
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """Take one token at ``now``; 0 when taken, else the seconds until one is there."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FloodLimiter:
    """One bucket per enterprise (thread-safe: the MQTT subscriber and the HTTPS handlers share it)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, enterprise_id: str) -> float:
        """0 when the enterprise may send this message now, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            b = self._buckets.get(enterprise_id)
            if b is None:
                b = self._buckets[enterprise_id] = TokenBucket(self.rate, self.burst, self.burst, now)
            return b.take(now)


class FloodMetrics:
    """``hazmon_bureau_flood_total{enterprise_id, transport}``: messages over an enterprise's limit."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.flooded = Counter(
            "hazmon_bureau_flood_total",
            "Messages over an enterprise's flood limit, counted by this worker process against its own"
            " bucket (a bucket per enterprise per worker: with N workers an enterprise gets about N times"
            " the limit; sum over workers): mqtt dead-lettered (replayable), https answered 429",
            ["enterprise_id", "transport"],
            registry=registry if registry is not None else CollectorRegistry(),
        )


def flood_refusal(enterprise_id: str, rate: float, burst: float) -> Refused:
    why = (
        f"enterprise {enterprise_id!r}: more than {burst:g} messages at once or {rate:g}/s sustained"
        " (limits.flood_rate_per_s, limits.flood_burst); kept whole for `hazmon bureau dead-letters replay`"
    )
    return Refused("flood", why, enterprise_id)


def dead_letter_whole(conn: Conn, topic: str, raw: bytes, r: Refused) -> None:
    """A dead letter with the whole message (the replay needs every byte)."""
    conn.execute(
        "INSERT INTO bureau_dead_letter (topic, enterprise_id, reason_code, reason, payload)"
        " VALUES (%s, %s, %s, %s, %s)",
        (topic[:1024], r.enterprise_id, r.reason_code, r.reason[:4000], raw),
    )


class FloodGuardedIngestor(Ingestor):
    """The ingest behind each enterprise's token bucket (the MQTT subscriber's)."""

    def __init__(
        self,
        region: Scope,
        limits: IngestLimits,
        limiter: FloodLimiter,
        metrics: IngestMetrics | None = None,
        flood_metrics: FloodMetrics | None = None,
        *,
        children: Mapping[str, Scope] | None = None,
        on_stored: Callable[[Conn, Envelope, bytes], None] | None = None,
    ) -> None:
        super().__init__(region, limits, metrics, children=children, on_stored=on_stored)
        self.limiter = limiter
        self.flood_metrics = flood_metrics or FloodMetrics()
        self.metrics.refused.labels(reason_code="flood")

    def over_limit(self, conn: Conn, raw: bytes, topic: str) -> Outcome | None:
        """A ``flood`` dead letter (the whole message, replayable) if the enterprise is over its limit."""
        try:
            who = parse_topic(topic)[0]
        except LinkError:
            who = None  # refused by the ingest as topic_mismatch (or a child bureau's topic)
        if who is None or len(raw) > self.limits.max_message_bytes or self.limiter.admit(who) == 0.0:
            return None
        r = flood_refusal(who, self.limiter.rate, self.limiter.burst)
        with conn.transaction():
            dead_letter_whole(conn, topic, raw, r)
        self.flood_metrics.flooded.labels(enterprise_id=who, transport="mqtt").inc()
        log.warning("bureau flood: message dead-lettered", topic=topic, enterprise=who)
        return Outcome("refused", None, who, refused=r)

    def handle(self, conn: Conn, raw: bytes, topic: str, received_at: datetime) -> Outcome:
        """`Ingestor.handle`, or a ``flood`` dead letter when the topic's enterprise is over its limit."""
        o = self.over_limit(conn, raw, topic)
        if o is None:
            return super().handle(conn, raw, topic, received_at)
        self.metrics.count(o)
        return o


# ---------------------------------------------------------------- replay


@dataclass(slots=True)
class ReplayResult:
    replayed: int = 0
    stored: int = 0
    duplicate: int = 0
    refused: int = 0


def replay(
    conn: Conn,
    ingestor: Ingestor,
    reason_code: str = "flood",
    *,
    enterprise_id: str | None = None,
    limit: int | None = None,
    batch: int = 100,
) -> ReplayResult:
    """Put the dead letters of ``reason_code`` not replayed yet through ``ingestor`` again, oldest first.

    Each is marked ``replayed_at`` / ``replay_outcome`` after the ingest committed it: a crash in
    between replays it again, a duplicate by its ``message_id`` (nothing stored twice). A refusal
    now is a new dead letter with its own reason. ``ingestor`` is a plain `Ingestor` (no flood limit).
    """
    out = ReplayResult()
    while limit is None or out.replayed < limit:
        n = batch if limit is None else min(batch, limit - out.replayed)
        rows = conn.execute(
            "SELECT id, topic, payload, received_at FROM bureau_dead_letter"
            " WHERE reason_code = %s AND replayed_at IS NULL AND (%s::text IS NULL OR enterprise_id = %s)"
            " ORDER BY id LIMIT %s",
            (reason_code, enterprise_id, enterprise_id, n),
        ).fetchall()
        if not rows:
            break
        for dl_id, topic, payload, received_at in rows:
            raw = bytes(payload) if isinstance(payload, bytes | memoryview) else b""
            o = ingestor.handle(conn, raw, str(topic), received_at)  # type: ignore[arg-type]
            what = o.status if o.refused is None else f"refused:{o.refused.reason_code}"
            conn.execute(
                "UPDATE bureau_dead_letter SET replayed_at = now(), replay_outcome = %s WHERE id = %s",
                (what, dl_id),
            )
            out.replayed += 1
            if o.status == "stored":
                out.stored += 1
            elif o.status == "duplicate":
                out.duplicate += 1
            else:
                out.refused += 1
    return out


def retry_after_s(wait_s: float) -> int:
    """The ``Retry-After`` header's whole seconds for a wait (at least 1)."""
    return max(1, math.ceil(wait_s))
