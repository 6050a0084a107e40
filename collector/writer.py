"""The batch writer: readings into PostgreSQL by COPY, through the spool when it cannot.

`add` only buffers (the consumers never wait for the database). `run` flushes
when `batch_max_readings` are buffered or after `flush_interval_s`:

1. While the spool holds batches, new batches are appended behind them, so
   readings reach the database in arrival order.
2. Otherwise the batch is written with `write_readings_async` under
   `write_timeout_s`. A temporary failure (`hazmon.store.is_temporary`) or a
   timeout spools the batch (fsynced) and the connection is retried with capped
   backoff; a permanent failure dead-letters the batch's readings.
3. When the database is back, the spool is replayed oldest first; writes are
   idempotent by (sensor, time), so a batch replayed twice is stored once.
4. When the spool is full the batch is dropped: counted in
   ``hazmon_readings_dropped_total`` and reported once through ``on_system``
   (the daemon turns it into a system alarm).

With ``own_thread`` (what the daemon uses) `run` does all of this on an event
loop of the writer's own thread. The COPY then waits only for PostgreSQL, not for
the daemon's loop: sharing the loop with the rules and the consumer, each of the
COPY's round trips and socket writes waited behind their batches, PostgreSQL sat
idle 40 % of the time and the daemon wrote at half the raw COPY rate. `add`,
`room`, `stop`, `buffered` and `db_up` are safe to use from the
daemon's loop; ``on_system`` is called back on the loop that awaits `run`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
import structlog

from hazmon.collector.deadletter import DeadLetters
from hazmon.collector.metrics import DROP_REASONS, Metrics
from hazmon.collector.spool import Spool, SpoolFullError
from hazmon.plant.reading import Quality, Reading, ReadingBatch, from_us, quantize
from hazmon.store import (
    ReadingColumns,
    UnknownTagError,
    connect_async,
    encode_copy_binary,
    is_temporary,
    write_readings_async,
)

__all__ = ["BatchWriter", "SystemEvent"]

log = structlog.get_logger("hazmon.collector.writer")

SystemEvent = Callable[[str, bool, str], None]
"""(key, active, message): a loss condition of the daemon itself raised or cleared."""

_DL_COPY = (
    "COPY collector_dead_letter (received_at, source, topic, reason, detail, tag, payload, payload_len) "
    "FROM STDIN"
)


def _now_us() -> int:
    return time.time_ns() // 1000


def _bands_by_id(
    ids: Mapping[str, int], bands: Mapping[str, tuple[float, float]]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(lowest, highest) measurement indexed by sensor id (unbounded for a tag without a band)."""
    size = max(ids.values(), default=-1) + 1
    lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
    for tag, (b_lo, b_hi) in bands.items():
        if tag in ids:
            lo[ids[tag]], hi[ids[tag]] = b_lo, b_hi
    return lo, hi


def _steps_by_id(ids: Mapping[str, int], steps: Mapping[str, float]) -> npt.NDArray[np.float64]:
    """The storage step indexed by sensor id (0.0, full precision, for a tag without one)."""
    out = np.zeros(max(ids.values(), default=-1) + 1)
    for tag, step in steps.items():
        if tag in ids:
            out[ids[tag]] = step
    return out


class BatchWriter:
    def __init__(
        self,
        dsn: str,
        ids: Mapping[str, int],
        spool: Spool,
        dead: DeadLetters,
        metrics: Metrics,
        *,
        batch_max_readings: int = 20_000,
        flush_interval_s: float = 1.0,
        write_timeout_s: float = 5.0,
        retry_max_s: float = 10.0,
        dead_letter_retention_days: int = 30,
        on_system: SystemEvent | None = None,
        own_thread: bool = False,
        on_settled: Callable[[int], None] | None = None,
        bands: Mapping[str, tuple[float, float]] | None = None,
        steps: Mapping[str, float] | None = None,
    ) -> None:
        self.dsn = dsn
        self.ids = dict(ids)
        # tag -> (lowest, highest) measurement (`hazmon.plant.reading.measuring_band`): a value
        # outside is stored with quality OUT_OF_RANGE, so no trend or rollup draws it
        self._lo, self._hi = _bands_by_id(self.ids, bands or {})
        # tag -> the step its values are stored at (`hazmon.plant.reading.storage_step`; 0 or
        # absent: full precision); the out-of-range check above sees the value as it came
        self._step = _steps_by_id(self.ids, steps or {})
        self.spool = spool
        self.dead = dead
        self.metrics = metrics
        self.batch_max = batch_max_readings
        self.flush_interval_s = flush_interval_s
        self.write_timeout_s = write_timeout_s
        self.retry_max_s = retry_max_s
        self.dead_letter_retention_days = dead_letter_retention_days
        self._pruned_at = float("-inf")  # monotonic time of the last dead-letter retention run
        self._on_system = on_system or (lambda key, active, msg: None)
        self.own_thread = own_thread
        self._loop: asyncio.AbstractEventLoop | None = None  # the writer's loop while `run` runs
        self._home: asyncio.AbstractEventLoop | None = None  # the loop awaiting `run` (on_system's)
        self._lock = threading.Lock()  # _buf, _buffered: touched from both loops
        self._room_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._buf: list[ReadingBatch] = []
        self._buffered = 0
        # settling: `add(batch, upto)` files the caller's position `upto` at the count of readings
        # added so far; once that many are committed, spooled or dropped (counted), `on_settled`
        # gets the position (the queue then runs the MQTT acks up to there)
        self._on_settled = on_settled
        self._added_n = 0
        self._settled_n = 0
        self._marks: deque[tuple[int, int]] = deque()
        self._arrivals: deque[tuple[int, float]] = deque()  # (added-order position, monotonic arrival)
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._retry_at = 0.0
        self._backoff = 0.0
        self._spool_full_raised = False
        self._replayed: dict[Path, int] = {}  # segment -> batches of it already committed
        self.db_up = False
        m = metrics
        m.counter("hazmon_readings_written_total", "Readings committed to PostgreSQL (new rows)")
        m.counter("hazmon_readings_spooled_total", "Readings appended to the on-disk spool")
        m.counter("hazmon_readings_replayed_total", "Readings written from the spool")
        m.counter("hazmon_readings_dropped_total", "Readings lost, by reason", ("reason",), DROP_REASONS)
        m.counter(
            "hazmon_write_errors_total",
            "Failed database writes, by kind",
            ("kind",),
            [{"kind": k} for k in ("connect", "timeout", "temporary", "permanent", "dead_letter_retention")],
        )
        m.counter("hazmon_dead_letters_pruned_total", "Stored dead letters deleted by their retention")
        m.histogram("hazmon_write_duration_seconds", "Batch writes: their duration")
        m.gauge("hazmon_write_duration_seconds_last", "Duration of the last batch write")
        self._m_ingest = m.histogram(
            "hazmon_ingest_to_commit_seconds",
            "From a reading's arrival in the collector queue to its commit by the writer "
            "(per queued message or publish; readings spooled first are not in it)",
        )
        m.gauge_fn(
            "hazmon_writer_buffer_readings",
            "Readings buffered in the writer",
            lambda: {(): float(self._buffered)},
        )
        m.gauge_fn(
            "hazmon_spool_readings", "Readings waiting in the spool", lambda: {(): float(self.spool.rows)}
        )
        m.gauge_fn("hazmon_spool_bytes", "Bytes in the spool", lambda: {(): float(self.spool.bytes)})
        m.gauge_fn(
            "hazmon_database_up",
            "1 when the last database operation succeeded",
            lambda: {(): float(self.db_up)},
        )

    def on_system(self, key: str, active: bool, message: str) -> None:
        """Report a loss condition on the loop that awaits `run` (the daemon's)."""
        home = self._home
        if home is None or home is self._loop or home.is_closed():
            self._on_system(key, active, message)
        else:
            home.call_soon_threadsafe(self._on_system, key, active, message)

    def poke(self) -> None:
        """Wake `run` to flush now, from any thread (the consumer: acks wait and the queue ran dry)."""
        loop = self._loop
        if loop is None:
            self._wake.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    def _roomy(self) -> None:
        """Wake every `room` waiter (they re-check the level themselves)."""
        with self._lock:
            waiters, self._room_waiters = self._room_waiters, []
        for loop, ev in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(ev.set)

    @property
    def buffered(self) -> int:
        return self._buffered

    async def room(self, limit: int) -> None:
        """Wait until at most ``limit`` readings are buffered (backpressure on the consumer)."""
        while self._buffered > limit:
            ev = asyncio.Event()
            with self._lock:
                self._room_waiters.append((asyncio.get_running_loop(), ev))
            self.poke()
            # the level may have dropped between the check and the registration: look again soon
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await ev.wait()

    def add(
        self,
        readings: ReadingBatch | Sequence[Reading],
        upto: int | None = None,
        arrivals: Sequence[tuple[int, float]] = (),
    ) -> None:
        """Buffer readings for the next flush (never waits for the database; any thread).

        ``upto``: the producer's position after these readings; `on_settled` gets it
        once they (and everything added before) are committed or spooled.
        ``arrivals``: (readings, `time.monotonic()` they arrived) of each part, in order
        (`ReadingQueue.last_arrivals`); their commit is timed in
        ``hazmon_ingest_to_commit_seconds``.
        """
        b = readings if isinstance(readings, ReadingBatch) else ReadingBatch.from_readings(readings)
        due: int | None = None
        with self._lock:
            end = self._added_n + len(b)
            pos = self._added_n
            for n, t in arrivals:
                pos = min(pos + n, end)
                self._arrivals.append((pos, t))
            if len(b):
                self._buf.append(b)
                self._buffered += len(b)
                self._added_n += len(b)
            if upto is not None:
                self._marks.append((self._added_n, upto))
                due = self._due()
            full = self._buffered >= self.batch_max
        self._report_settled(due)
        if full:
            self.poke()

    def _due(self) -> int | None:
        """The last filed position whose readings are all settled (caller holds the lock)."""
        pos = None
        while self._marks and self._marks[0][0] <= self._settled_n:
            pos = self._marks.popleft()[1]
        return pos

    def _report_settled(self, pos: int | None) -> None:
        if pos is not None and self._on_settled is not None:
            self._on_settled(pos)

    def _settle(self, n: int, committed: bool = False) -> None:
        """``n`` more readings (in add order) are committed, spooled or counted as dropped."""
        arrived: list[float] = []
        with self._lock:
            self._settled_n += n
            due = self._due()
            while self._arrivals and self._arrivals[0][0] <= self._settled_n:
                arrived.append(self._arrivals.popleft()[1])
        if committed and arrived:
            now = time.monotonic()
            for t in arrived:  # one per queued message: the family, not a lookup by name
                self._m_ingest.observe(now - t)
        self._report_settled(due)

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        """Flush on size or interval until `stop`; then a final flush that spools what it cannot write.

        With ``own_thread`` the loop runs on the writer's thread; this coroutine waits for it.
        """
        self._home = asyncio.get_running_loop()
        if not self.own_thread:
            self._loop = self._home
            await self._run()
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="hazmon-writer", daemon=True)
        thread.start()
        self._loop = loop
        fut = asyncio.run_coroutine_threadsafe(self._run(), loop)
        try:
            await asyncio.wrap_future(fut)
        finally:
            if not fut.done():  # cancelled here: the final flush (spooling what it cannot write) first
                self.stop()
                await asyncio.to_thread(concurrent.futures.wait, [fut], 2 * self.write_timeout_s + 1)
                fut.cancel()
            loop.call_soon_threadsafe(loop.stop)
            await asyncio.to_thread(thread.join)
            loop.close()
            self._loop = None

    async def _run(self) -> None:
        # asyncio primitives belong to the loop that first waits on them: this one
        self._wake = asyncio.Event()
        if self._buffered >= self.batch_max or self._stopping:
            self._wake.set()
        try:
            while not self._stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval_s):
                        await self._wake.wait()
                self._wake.clear()
                await self.flush()
            await self.flush(final=True)
        finally:
            await self._close_conn()

    def stop(self) -> None:
        """Ask `run` to make its final flush and return (await the task running `run`)."""
        self._stopping = True
        self.poke()

    async def flush(self, final: bool = False) -> None:
        # pipelined: while the server stores one batch, the next is taken, mapped and encoded,
        # so it does not wait for us between batches (it idled 18 % of the time before)
        ahead: list[tuple[ReadingColumns, bytes, int]] = []

        def prepare() -> None:
            if self._buf and not ahead:
                ahead.append(self._next())

        writing: list[ReadingColumns] = []
        try:
            while self._buf or ahead:
                cols, data, taken = ahead.pop() if ahead else self._next()
                committed = False
                if len(cols):
                    writing.append(cols)
                    committed = await self._write_or_spool(cols, data, prepare)
                    writing.pop()
                self._settle(taken, committed)  # committed, spooled, dead-lettered or counted as dropped
        except BaseException:
            # interrupted (cancelled) mid-write: the batch in flight may or may not be committed
            # and the next one is out of the buffer; both are kept on disk (writes are idempotent).
            # Not settled: their MQTT messages stay unacknowledged and the broker delivers them again.
            for cols in writing + [c for c, _, _ in ahead]:
                self._to_spool(cols)
            await self._close_conn()
            raise
        if len(self.spool) and await self._ensure_conn():
            await self._replay(time_budget_s=0.5 if not final else self.write_timeout_s)
        if self.dead.pending and await self._ensure_conn():
            await self._store_dead_letters()
        if not final and time.monotonic() - self._pruned_at > 86_400:
            await self.prune_dead_letters()

    async def prune_dead_letters(self) -> int:
        """Delete stored dead letters older than the retention (the writer does it once a day)."""
        if not await self._ensure_conn():
            return 0
        assert self._conn is not None
        self._pruned_at = time.monotonic()
        try:
            async with asyncio.timeout(self.write_timeout_s):
                cur = await self._conn.execute(
                    "DELETE FROM collector_dead_letter WHERE received_at < now() - make_interval(days => %s)",
                    (self.dead_letter_retention_days,),
                )
        except Exception as e:  # retried tomorrow; the table only grows meanwhile
            self.metrics.inc("hazmon_write_errors_total", 1, {"kind": "dead_letter_retention"})
            log.warning("dead-letter retention failed", error=str(e) or type(e).__name__)
            if is_temporary(e) or isinstance(e, TimeoutError):
                await self._close_conn()
            return 0
        n = max(cur.rowcount, 0)
        self.metrics.inc("hazmon_dead_letters_pruned_total", n)
        if n:
            log.info("dead letters past their retention deleted", n=n, days=self.dead_letter_retention_days)
        return n

    # -- pieces --------------------------------------------------------------------------
    def _next(self) -> tuple[ReadingColumns, bytes, int]:
        """The next batch to write: columns, COPY data, and how many buffered readings it took."""
        chunk = self._take(self.batch_max)
        self._roomy()
        cols = self._columns(chunk)
        return cols, encode_copy_binary(cols) if len(cols) else b"", len(chunk)

    def _take(self, n: int) -> ReadingBatch:
        """The oldest (up to) ``n`` buffered readings."""
        parts: list[ReadingBatch] = []
        got = 0
        with self._lock:
            while self._buf and got < n:
                b = self._buf[0]
                if len(b) <= n - got:
                    parts.append(self._buf.pop(0))
                    got += len(b)
                else:
                    parts.append(b.slice(0, n - got))
                    self._buf[0] = b.slice(n - got, len(b))
                    got = n
            self._buffered -= got
        return ReadingBatch.concat(parts)

    def _columns(self, batch: ReadingBatch) -> ReadingColumns:
        cols = self._known_columns(batch)
        sid = cols.sensor_id
        outside = (cols.value < self._lo[sid]) | (cols.value > self._hi[sid])
        cols.quality[outside] = Quality.OUT_OF_RANGE  # (a copy of the batch's column)
        # an out-of-range value is kept as the transmitter said it; a measurement at its step
        steps = np.where(outside, 0.0, self._step[sid])
        return ReadingColumns(sid, cols.ts_us, quantize(cols.value, steps), cols.quality)

    def _known_columns(self, batch: ReadingBatch) -> ReadingColumns:
        try:
            return ReadingColumns.from_batch(batch, self.ids)
        except UnknownTagError:
            known = np.fromiter((t in self.ids for t in batch.tags), dtype=bool, count=len(batch))
            for r in batch.take(~known).readings():
                self.dead.add(
                    "writer",
                    r.tag,
                    reason="unknown_tag",
                    detail="tag not in the registry",
                    tag=r.tag,
                    payload=repr(tuple(r)).encode(),
                    now_us=_now_us(),
                )
            return ReadingColumns.from_batch(batch.take(known), self.ids)

    async def _ensure_conn(self) -> bool:
        if self._conn is not None and not self._conn.closed:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        try:
            async with asyncio.timeout(self.write_timeout_s):
                self._conn = await connect_async(self.dsn, autocommit=True)
            self._backoff = 0.0
            self.db_up = True
            log.info("database connected")
            return True
        except (TimeoutError, psycopg.Error, OSError) as e:
            self._failed("connect", e)
            return False

    def _failed(self, kind: str, e: BaseException) -> None:
        if self.db_up or self._backoff == 0.0:
            log.error(
                "database unavailable; batches go to the spool", kind=kind, error=str(e) or type(e).__name__
            )
        self.db_up = False
        self.metrics.inc("hazmon_write_errors_total", 1, {"kind": kind})
        self._backoff = min(self.retry_max_s, max(0.25, self._backoff * 2))
        self._retry_at = time.monotonic() + self._backoff

    async def _close_conn(self) -> None:
        c, self._conn = self._conn, None
        if c is not None:
            with contextlib.suppress(TimeoutError, psycopg.Error, OSError):
                async with asyncio.timeout(1.0):
                    await c.close()

    async def _write(
        self, cols: ReadingColumns, data: bytes | None = None, on_sent: Callable[[], None] | None = None
    ) -> int | None:
        """Rows newly stored, or None when the batch must be kept (temporary failure).

        ``data`` is the batch's COPY data when already encoded; ``on_sent`` is called
        (at most once) while the server stores the rows (`write_readings_async`).
        """
        if not await self._ensure_conn():
            return None
        assert self._conn is not None
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(self.write_timeout_s):
                n = await write_readings_async(self._conn, cols, data=data, on_sent=on_sent)
        except TimeoutError as e:
            self._failed("timeout", e)
            await self._close_conn()
            return None
        except Exception as e:
            if is_temporary(e):
                self._failed("temporary", e)
                await self._close_conn()
                return None
            self.metrics.inc("hazmon_write_errors_total", 1, {"kind": "permanent"})
            log.error(
                "database refused a batch permanently; readings dead-lettered", error=str(e), n=len(cols)
            )
            self._dead_letter_cols(cols, str(e))
            return 0
        dt = time.perf_counter() - t0
        self.db_up = True
        self.metrics.observe("hazmon_write_duration_seconds", dt)
        self.metrics.set("hazmon_write_duration_seconds_last", dt)
        self.metrics.inc("hazmon_readings_written_total", n)
        return n

    def _dead_letter_cols(self, cols: ReadingColumns, why: str) -> None:
        tags = {v: k for k, v in self.ids.items()}
        now = _now_us()
        for i in range(len(cols)):
            tag = tags.get(int(cols.sensor_id[i]), "?")
            body = f"{tag},{int(cols.ts_us[i])},{float(cols.value[i])!r},{int(cols.quality[i])}".encode()
            self.dead.add(
                "writer", tag, reason="db_rejected", detail=why[:200], tag=tag, payload=body, now_us=now
            )

    async def _write_or_spool(
        self, cols: ReadingColumns, data: bytes | None = None, on_sent: Callable[[], None] | None = None
    ) -> bool:
        """True when the batch went to the database, False when to the spool (or dropped, counted)."""
        if not len(self.spool):
            n = await self._write(cols, data, on_sent)
            if n is not None:
                return True
        self._to_spool(cols)
        return False

    def _to_spool(self, cols: ReadingColumns) -> None:
        try:
            self.spool.append(cols)
            self.metrics.inc("hazmon_readings_spooled_total", len(cols))
        except SpoolFullError as e:
            self.metrics.inc("hazmon_readings_dropped_total", len(cols), {"reason": "spool_full"})
            log.error("spool full: readings DROPPED", n=len(cols), error=str(e))
            if not self._spool_full_raised:
                self._spool_full_raised = True
                self.on_system(
                    "spool_full", True, f"spool full ({self.spool.bytes} bytes): readings are being dropped"
                )
        except OSError as e:
            self.metrics.inc("hazmon_readings_dropped_total", len(cols), {"reason": "spool_io_error"})
            log.error("spool write failed: readings DROPPED", n=len(cols), error=str(e))
            self.on_system("spool_io_error", True, f"spool write failed: {e}")

    async def _replay(self, time_budget_s: float) -> None:
        t_end = time.monotonic() + time_budget_s
        while len(self.spool) and time.monotonic() < t_end:
            got = self.spool.oldest()
            if got is None:
                return
            path, batches = got
            start = self._replayed.get(path, 0)
            for i in range(start, len(batches)):
                n = await self._write(batches[i])
                if n is None:
                    return
                self.metrics.inc("hazmon_readings_replayed_total", len(batches[i]))
                self._replayed[path] = i + 1
                if time.monotonic() >= t_end and i + 1 < len(batches):
                    return
            self.spool.done(path, batches)
            self._replayed.pop(path, None)
            log.info("spool segment replayed", segment=path.name, batches=len(batches), left=len(self.spool))
        if self._spool_full_raised and self.spool.bytes < self.spool.max_bytes * 0.9:
            self._spool_full_raised = False
            self.on_system("spool_full", False, "spool has room again")

    async def _store_dead_letters(self) -> None:
        assert self._conn is not None
        letters = self.dead.take(10_000)
        if not letters:
            return
        try:
            async with self._conn.transaction(), self._conn.cursor() as cur, cur.copy(_DL_COPY) as cp:
                for d in letters:
                    await cp.write_row(
                        (
                            from_us(d.received_us),
                            d.source,
                            d.topic,
                            d.reason,
                            d.detail,
                            d.tag,
                            d.payload,
                            d.payload_len,
                        )
                    )
        except Exception as e:
            self.dead.requeue(letters)
            if is_temporary(e):
                self._failed("temporary", e)
                await self._close_conn()
            else:
                self.dead.take(len(letters))
                self.metrics.inc("hazmon_dead_letters_unstored_total", len(letters))
                log.error("dead letters refused by the database; counted, not kept", error=str(e))
