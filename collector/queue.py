"""The bounded queue between the collectors and the daemon's consumers.

Bounded by readings, not by messages, so memory is bounded whatever the batch
sizes. Producers wait while it is full (the MQTT network thread with
`put_threadsafe`, OPC UA handlers with `await put`): a full queue pushes back
to the broker or server session instead of dropping readings here.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Sequence

from hazmon.plant.reading import Reading

__all__ = ["ReadingQueue"]


class ReadingQueue:
    """A thread-safe, bounded FIFO of readings with an asyncio consumer side."""

    def __init__(self, max_readings: int, loop: asyncio.AbstractEventLoop) -> None:
        if max_readings < 1:
            raise ValueError("max_readings must be >= 1")
        self.max_readings = max_readings
        self._loop = loop
        self._chunks: deque[list[Reading]] = deque()
        self._count = 0
        self._lock = threading.Lock()
        self._not_full = threading.Condition(self._lock)
        self._not_empty = asyncio.Event()
        self._not_full_async = asyncio.Event()
        self._not_full_async.set()
        self._closed = False
        self.waits = 0  # times a producer found the queue full (exported as a metric)

    @property
    def depth(self) -> int:
        return self._count

    def close(self) -> None:
        """Wake blocked producers; later puts are refused (returns False)."""
        with self._lock:
            self._closed = True
            self._not_full.notify_all()

    def _append_locked(self, readings: list[Reading]) -> None:
        was_empty = self._count == 0
        self._chunks.append(readings)
        self._count += len(readings)
        if self._count >= self.max_readings:
            self._loop.call_soon_threadsafe(self._not_full_async.clear)
        if was_empty:
            self._loop.call_soon_threadsafe(self._not_empty.set)

    def put_threadsafe(self, readings: Sequence[Reading]) -> bool:
        """Append from a thread, waiting while full. False once closed."""
        if not readings:
            return True
        with self._lock:
            if self._count >= self.max_readings:
                self.waits += 1
            while self._count >= self.max_readings and not self._closed:
                self._not_full.wait(0.5)
            if self._closed:
                return False
            self._append_locked(list(readings))
            return True

    async def put(self, readings: Sequence[Reading]) -> bool:
        """Append from the event loop, awaiting while full. False once closed."""
        if not readings:
            return True
        while True:
            with self._lock:
                if self._closed:
                    return False
                if self._count < self.max_readings:
                    was_empty = self._count == 0
                    self._chunks.append(list(readings))
                    self._count += len(readings)
                    if self._count >= self.max_readings:
                        self._not_full_async.clear()
                    if was_empty:
                        self._not_empty.set()
                    return True
                self.waits += 1
            # the flag is also cleared from other threads: re-check at least every 0.2 s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._not_full_async.wait(), 0.2)

    async def get(self, max_n: int, wait_s: float) -> list[Reading]:
        """Up to ``max_n`` readings in arrival order; [] after ``wait_s`` s with none."""
        if self._count == 0:
            try:
                await asyncio.wait_for(self._not_empty.wait(), wait_s)
            except TimeoutError:
                return []
        out: list[Reading] = []
        with self._lock:
            while self._chunks and len(out) < max_n:
                chunk = self._chunks[0]
                room = max_n - len(out)
                if len(chunk) <= room:
                    out.extend(self._chunks.popleft())
                else:
                    out.extend(chunk[:room])
                    self._chunks[0] = chunk[room:]
            self._count -= len(out)
            if self._count == 0:
                self._not_empty.clear()
            if self._count < self.max_readings:
                self._not_full_async.set()
                self._not_full.notify_all()
        return out
