"""Dead letters: what could not become a reading is counted, logged and kept.

`DeadLetters.add` is called from the MQTT network thread and from the event
loop; it counts by (source, reason) at once, logs at most one line per reason per
interval (with topic and a cut of the payload, and how many were not logged),
and keeps the letter for the batch writer to store in ``collector_dead_letter``.
If more letters wait than ``max_pending`` (the database is down for long), the
oldest payloads are let go but still counted in
``hazmon_dead_letters_unstored_total``: nothing disappears uncounted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import structlog

from hazmon.collector.metrics import Metrics

__all__ = ["DeadLetter", "DeadLetters"]

log = structlog.get_logger("hazmon.collector")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_us: int
    source: str
    topic: str
    reason: str
    detail: str
    tag: str | None
    payload: bytes
    payload_len: int


class DeadLetters:
    def __init__(
        self,
        metrics: Metrics,
        max_pending: int = 100_000,
        payload_keep: int = 65_536,
        log_cut: int = 200,
        log_interval_s: float = 10.0,
    ) -> None:
        self.metrics = metrics
        self.max_pending = max_pending
        self.payload_keep = payload_keep
        self.log_cut = log_cut
        self.log_interval_s = log_interval_s
        self._pending: deque[DeadLetter] = deque()
        self._lock = threading.Lock()
        self._last_log: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        metrics.counter(
            "hazmon_dead_letters_total",
            "Payloads or entries refused, by source and reason",
            ("source", "reason"),
        )
        metrics.counter(
            "hazmon_dead_letters_unstored_total",
            "Dead letters counted but not kept in the table (pending limit reached)",
        )

    def add(
        self,
        source: str,
        topic: str,
        *,
        reason: str,
        detail: str,
        tag: str | None,
        payload: bytes,
        now_us: int,
    ) -> None:
        self.metrics.inc("hazmon_dead_letters_total", 1, {"source": source, "reason": reason})
        letter = DeadLetter(
            now_us, source, topic, reason, detail, tag, payload[: self.payload_keep], len(payload)
        )
        with self._lock:
            self._pending.append(letter)
            if len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.metrics.inc("hazmon_dead_letters_unstored_total")
            t = time.monotonic()
            last = self._last_log.get(reason)
            if last is not None and t - last < self.log_interval_s:
                self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
                return
            self._last_log[reason] = t
            suppressed = self._suppressed.pop(reason, 0)
        log.warning(
            "payload refused",
            source=source,
            topic=topic,
            reason=reason,
            detail=detail,
            tag=tag,
            payload=payload[: self.log_cut].decode("utf-8", "replace"),
            payload_len=len(payload),
            not_logged_since_last=suppressed,
        )

    def take(self, n: int) -> list[DeadLetter]:
        """Up to ``n`` pending letters, oldest first (put them back with `requeue`)."""
        with self._lock:
            return [self._pending.popleft() for _ in range(min(n, len(self._pending)))]

    def requeue(self, letters: list[DeadLetter]) -> None:
        with self._lock:
            self._pending.extendleft(reversed(letters))
            while len(self._pending) > self.max_pending:
                self._pending.popleft()
                self.metrics.inc("hazmon_dead_letters_unstored_total")

    @property
    def pending(self) -> int:
        return len(self._pending)
