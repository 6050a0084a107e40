"""The bounded queue between the collectors and the daemon's consumers.

Bounded by readings, not by messages, so memory is bounded whatever the batch
sizes. Producers wait while it is full (the MQTT network thread with
`put_threadsafe`, OPC UA handlers with `await put`): a full queue pushes back
to the broker or server session instead of dropping readings here.

It carries `ReadingBatch` columns; a producer may also hand it a list of
`Reading` (converted once, at the door). The daemon's consumer takes columns
with `get_batch`; `get` gives `Reading`s for tests and one-at-a-time code.

Acknowledgements ride on positions: every reading put gets the next position,
and a producer may attach an ``ack`` to what it puts (the MQTT input's PUBACK).
The consumer hands `taken` (the position up to which it took readings) to the
writer with each batch; once the writer has committed or spooled everything up
to a position it calls `settled`, and the acks up to there run, in put order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import structlog

from hazmon.plant.reading import Quality, Reading, ReadingBatch

__all__ = ["ReadingQueue"]


Chunk = ReadingBatch | list[Reading]

log = structlog.get_logger("hazmon.collector.queue")


def _chunk(readings: Sequence[Reading] | ReadingBatch) -> Chunk:
    # lists stay lists until `get_batch`: one conversion per gathered batch, not one per
    # single-reading message
    return readings if isinstance(readings, ReadingBatch) else list(readings)


def _slice(c: Chunk, lo: int, hi: int) -> Chunk:
    return c.slice(lo, hi) if isinstance(c, ReadingBatch) else c[lo:hi]


class ReadingQueue:
    """A thread-safe, bounded FIFO of readings with an asyncio consumer side."""

    def __init__(self, max_readings: int, loop: asyncio.AbstractEventLoop) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be >= 1")
        self.max_readings = max_readings
        self._loop = loop
        self._chunks: deque[Chunk] = deque()
        self._arrived: deque[float] = deque()  # time.monotonic() each chunk was put, beside _chunks
        # (readings, arrival time) of each chunk the last `get_batch` took, in order: the writer
        # measures arrival -> commit from them (hazmon_ingest_to_commit_seconds)
        self.last_arrivals: list[tuple[int, float]] = []
        self._count = 0
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = asyncio.Event()
        self._not_full_async = asyncio.Event()
        self._not_full_async.set()
        self._closed = False
        self.waits = 0  # times a producer found the queue full (exported as a metric)
        self.malformed = 0  # readings a producer built wrong, dropped and logged (exported)
        self._put_pos = 0  # readings ever put
        self._taken_pos = 0  # readings ever taken by the consumer
        self._settled_pos = 0  # readings the writer has committed or spooled (`settled`)
        self._acks: deque[tuple[int, Callable[[], None]]] = deque()  # (position, ack), put order

    @property
    def depth(self) -> int:
        return self._count

    @property
    def taken(self) -> int:
        """The position up to which the consumer has taken readings (hand it to the writer)."""
        return self._taken_pos

    @property
    def pending_acks(self) -> int:
        """Acks waiting for their readings to be settled (committed or spooled)."""
        return len(self._acks)

    def settled(self, pos: int) -> None:
        """Everything put up to position ``pos`` is committed or spooled: run the acks up to there.

        Called by the writer (from its thread); the acks run here, in put order.
        """
        due: list[Callable[[], None]] = []
        with self._lock:
            self._settled_pos = max(self._settled_pos, pos)
            while self._acks and self._acks[0][0] <= self._settled_pos:
                due.append(self._acks.popleft()[1])
        for ack in due:
            try:
                ack()
            except Exception:  # one failed ack must not stop the others or the writer
                log.exception("acknowledgement failed")

    def _register(self, n: int, ack: Callable[[], None] | None) -> bool:
        """Advance the put position by ``n`` and file ``ack`` there (caller holds the lock).

        True when the ack is due at once: nothing before it is still unsettled.
        """
        self._put_pos += n
        if ack is None:
            return False
        if n == 0 and not self._acks and self._put_pos <= self._settled_pos:
            return True
        self._acks.append((self._put_pos, ack))
        return False

    def close(self) -> None:
        """Wake blocked producers; later puts are refused (returns False)."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()

    def put_threadsafe(
        self, readings: Sequence[Reading] | ReadingBatch, ack: Callable[[], None] | None = None
    ) -> bool:
        """Append from a thread, waiting while full. False once closed.

        ``ack`` runs once everything put up to and including these readings is
        settled (committed or spooled); with no readings, once everything before is.
        """
        if not len(readings):
            if ack is not None:
                with self._lock:
                    due = self._register(0, ack)
                if due:
                    ack()
                else:  # wake the consumer: it hands the position to the writer, which settles it
                    self._loop.call_soon_threadsafe(self._not_empty.set)
            return True
        batch = _chunk(readings)
        with self._lock:
            if self._count >= self.max_readings:
                self.waits += 1
            while self._count >= self.max_readings and not self._closed:
                self._not_full.wait(0.5)
            if self._closed:
                return False
            was_empty = self._count == 0
            self._chunks.append(batch)
            self._arrived.append(time.monotonic())
            self._count += len(batch)
            self._register(len(batch), ack)
            if self._count >= self.max_readings:
                self._loop.call_soon_threadsafe(self._not_full_async.clear)
            if was_empty:
                # one wake-up per empty -> non-empty edge, not one per message
                self._loop.call_soon_threadsafe(self._not_empty.set)
            return True

    async def put(self, readings: Sequence[Reading] | ReadingBatch) -> bool:
        """Append from the event loop, awaiting while full. False once closed."""
        if not len(readings):
            return True
        batch = _chunk(readings)
        while True:
            with self._lock:
                if self._closed:
                    return False
                if self._count < self.max_readings:
                    was_empty = self._count == 0
                    self._chunks.append(batch)
                    self._arrived.append(time.monotonic())
                    self._count += len(batch)
                    self._register(len(batch), None)
                    if self._count >= self.max_readings:
                        self._not_full_async.clear()
                    if was_empty:
                        self._not_empty.set()
                    return True
                self.waits += 1
            # the flag is also cleared from other threads: re-check at least every 0.2 s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):
                    await self._not_full_async.wait()

    async def get_batch(self, max_n: int, wait_s: float) -> ReadingBatch:
        """Up to ``max_n`` readings in arrival order, as columns; empty after ``wait_s`` s with none."""
        if self._count == 0:
            try:
                async with asyncio.timeout(wait_s):
                    await self._not_empty.wait()
            except TimeoutError:
                self.last_arrivals = []
                return ReadingBatch.empty()
        parts: list[Chunk] = []
        arrivals: list[tuple[int, float]] = []
        n = 0
        with self._lock:
            while self._chunks and n < max_n:
                chunk = self._chunks[0]
                room = max_n - n
                if len(chunk) <= room:
                    parts.append(self._chunks.popleft())
                    arrivals.append((len(chunk), self._arrived.popleft()))
                    n += len(chunk)
                else:
                    parts.append(_slice(chunk, 0, room))
                    arrivals.append((room, self._arrived[0]))
                    self._chunks[0] = _slice(chunk, room, len(chunk))
                    n += room
            self._count -= n
            self._taken_pos += n
            if self._count == 0:
                self._not_empty.clear()
            if self._count < self.max_readings:
                self._not_full_async.set()
                self._not_full.notify_all()
        self.last_arrivals = arrivals
        return ReadingBatch.concat(self._columns(parts))

    def _columns(self, parts: list[Chunk]) -> list[ReadingBatch]:
        out: list[ReadingBatch] = []
        rows: list[Reading] = []
        for p in parts:
            if isinstance(p, ReadingBatch):
                if rows:
                    out.append(self._from_rows(rows))
                    rows = []
                out.append(p)
            else:
                rows.extend(p)
        if rows:
            out.append(self._from_rows(rows))
        return out

    def _from_rows(self, rows: list[Reading]) -> ReadingBatch:
        try:
            return ReadingBatch.from_readings(rows)
        except (TypeError, ValueError, OverflowError):
            good = []
            for r in rows:
                try:
                    good.append(Reading(str(r.tag), int(r.ts_us), float(r.value), Quality(r.quality)))
                except (TypeError, ValueError, OverflowError) as e:
                    self.malformed += 1
                    log.error(
                        "malformed reading from a collector dropped", reading=repr(r)[:120], error=str(e)
                    )
            return ReadingBatch.from_readings(good)

    async def get(self, max_n: int, wait_s: float) -> list[Reading]:
        """Up to ``max_n`` readings in arrival order; [] after ``wait_s`` s with none."""
        return (await self.get_batch(max_n, wait_s)).readings()
