"""The batch writer on its own thread, pipelined, on a real PostgreSQL.

The daemon runs the writer's loop on a thread of its own (``own_thread``) so a
COPY waits only for PostgreSQL, and prepares the next batch while the server
stores the current one. These tests hold it to what the daemon relies on:
every reading added from the daemon's loop is stored once, the consumer is
pushed back while the writer is behind, loss conditions are reported on the
daemon's loop (not the writer's thread), and a write interrupted in the middle
of a COPY keeps both the batch in flight and the one prepared behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from pathlib import Path

import numpy as np
import psycopg

from hazmon.collector import BatchWriter, DeadLetters, Metrics, Spool
from hazmon.plant import ReadingBatch
from hazmon.store import sensor_ids
from tests.conftest import free_port

T0 = 1_795_860_000_000_000  # 2026-11-28T08:00:00Z


def _ids(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as c:
        return sensor_ids(c, "hx-chem")


def _batch(ids: dict[str, int], n: int, first: int) -> ReadingBatch:
    """``n`` readings numbered from ``first``: tag k % sensors, one second apart per round."""
    tags = sorted(ids)
    k = np.arange(first, first + n)
    return ReadingBatch(
        [tags[i % len(tags)] for i in k],
        T0 + (k // len(tags)) * 1_000_000,
        k * 0.25,
        np.zeros(n, dtype=np.int8),
    )


def _stored(dsn: str) -> tuple[int, str]:
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT sensor_id, time, value FROM readings ORDER BY sensor_id, time").fetchall()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def _expected(dsn: str, ids: dict[str, int], n: int) -> tuple[int, str]:
    """What `_stored` reads after readings 0..n-1 were written once (built by the same SQL)."""
    b = _batch(ids, n, 0)
    with psycopg.connect(dsn) as c:
        rows = c.execute(
            "SELECT s, to_timestamp(t / 1e6::float8)::timestamptz, v FROM unnest(%s::int[], %s::int8[], "
            "%s::float8[]) AS x(s, t, v) ORDER BY s, t",
            ([ids[t] for t in b.tags], b.ts_us.tolist(), b.value.tolist()),
        ).fetchall()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def test_own_thread_stores_every_reading_once_and_pushes_back(db_dsn: str, tmp_path: Path) -> None:
    ids = _ids(db_dsn)
    total, per = 120_000, 3_000
    metrics = Metrics()
    writer = BatchWriter(
        db_dsn,
        ids,
        Spool(tmp_path / "spool", 64 << 20),
        DeadLetters(metrics),
        metrics,
        batch_max_readings=10_000,
        own_thread=True,
    )
    seen_threads: set[str] = set()
    most = 0

    async def main() -> None:
        nonlocal most
        task = asyncio.create_task(writer.run())
        for first in range(0, total, per):
            writer.add(_batch(ids, per, first))
            most = max(most, writer.buffered)
            seen_threads.update(t.name for t in threading.enumerate())
            await writer.room(20_000)  # what the daemon's consumer does
            assert writer.buffered <= 20_000, "room() returns only when the writer has caught up"
        writer.stop()
        await task

    asyncio.run(main())
    assert "hazmon-writer" in seen_threads, "the writer ran on its own thread"
    assert "hazmon-writer" not in {t.name for t in threading.enumerate()}, "and that thread ended"
    assert most > 20_000, "the producer outran the writer at least once, so room() was exercised"
    assert writer.buffered == 0
    assert metrics.get("hazmon_readings_written_total") == total
    assert len(writer.spool) == 0
    assert _stored(db_dsn) == _expected(db_dsn, ids, total)


def test_loss_conditions_are_reported_on_the_daemons_loop(db_dsn: str, tmp_path: Path) -> None:
    ids = _ids(db_dsn)
    dead_port = free_port()  # nothing listens: every write fails and goes to the spool
    metrics = Metrics()
    writer = BatchWriter(
        f"postgresql://postgres@127.0.0.1:{dead_port}/x",
        ids,
        Spool(tmp_path / "spool", 200_000, 100_000),  # room for a few batches only
        DeadLetters(metrics),
        metrics,
        batch_max_readings=2_000,
        write_timeout_s=1.0,
        own_thread=True,
        on_system=lambda key, active, msg: reported(key, active),
    )
    calls: list[tuple[str, bool, str]] = []
    first_report: list[asyncio.Event] = []

    def reported(key: str, active: bool) -> None:
        calls.append((key, active, threading.current_thread().name))
        first_report[0].set()  # an asyncio.Event: only safe on its own loop's thread

    async def main() -> None:
        first_report.append(asyncio.Event())
        task = asyncio.create_task(writer.run())
        for first in range(0, 40_000, 2_000):
            writer.add(_batch(ids, 2_000, first))
            await asyncio.sleep(0.02)
        async with asyncio.timeout(20):
            await first_report[0].wait()
        writer.stop()
        await task

    asyncio.run(main())
    assert calls, "a full spool is reported"
    assert calls[0][:2] == ("spool_full", True)
    assert {c[2] for c in calls} == {threading.current_thread().name}, "on the loop that ran `run`"
    dropped = metrics.get("hazmon_readings_dropped_total", {"reason": "spool_full"})
    kept = writer.spool.rows
    assert dropped > 0
    assert dropped + kept == 40_000, "every reading is either on disk or counted as dropped"


def test_a_write_interrupted_mid_copy_keeps_its_batches_on_disk(db_dsn: str, tmp_path: Path) -> None:
    """Cancelled while PostgreSQL holds the COPY: the batch in flight and the prepared one are spooled."""
    ids = _ids(db_dsn)
    first = _batch(ids, 1, 0)
    metrics = Metrics()
    spool_dir = tmp_path / "spool"
    writer = BatchWriter(
        db_dsn,
        ids,
        Spool(spool_dir, 64 << 20),
        DeadLetters(metrics),
        metrics,
        batch_max_readings=1_000,
        write_timeout_s=60.0,
    )
    blocker = psycopg.connect(db_dsn)  # holds reading 0 uncommitted: the COPY waits for it
    blocker.execute(
        "INSERT INTO readings (time, sensor_id, value, quality) VALUES (to_timestamp(%s / 1e6::float8), %s, 0, 0)",
        (int(first.ts_us[0]), ids[first.tags[0]]),
    )

    async def interrupted() -> None:
        writer.add(_batch(ids, 3_000, 0))
        task = asyncio.create_task(writer.flush())
        with psycopg.connect(db_dsn, autocommit=True) as watch:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hazmon' "
                    "AND wait_event_type = 'Lock' AND query LIKE 'COPY readings%%'"
                ).fetchone()
                if row and row[0]:
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the writer's COPY never waited for the blocking transaction")
        await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(interrupted())
    finally:
        blocker.rollback()
        blocker.close()
    assert writer.buffered == 1_000, "the third batch was never taken"
    assert writer.spool.rows == 2_000, "the batch in flight and the one prepared behind it are on disk"

    # a new writer on the same spool (as after a restart) stores everything once
    again = BatchWriter(db_dsn, ids, Spool(spool_dir, 64 << 20), DeadLetters(metrics), Metrics())
    again.add(_batch(ids, 1_000, 2_000))

    async def drain() -> None:
        await again.flush(final=True)
        await again._close_conn()

    asyncio.run(drain())
    assert len(again.spool) == 0
    assert _stored(db_dsn) == _expected(db_dsn, ids, 3_000)


def test_positions_are_settled_only_after_their_readings_are_committed_or_spooled(
    db_dsn: str, tmp_path: Path
) -> None:
    """What the MQTT acks wait for: `on_settled(pos)` comes after the rows up to pos are durable."""
    ids = _ids(db_dsn)
    dead_dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/x"  # nothing listens: all spooled
    for dsn, durable_by in ((db_dsn, "committed"), (dead_dsn, "spooled")):
        metrics = Metrics()
        spool = Spool(tmp_path / durable_by, 64 << 20)
        settled: list[tuple[int, int]] = []  # (position, readings committed or spooled by then)

        def record(
            pos: int, m: Metrics = metrics, sp: Spool = spool, out: list[tuple[int, int]] = settled
        ) -> None:
            out.append((pos, int(m.get("hazmon_readings_written_total")) + sp.rows))

        writer = BatchWriter(
            dsn,
            ids,
            spool,
            DeadLetters(metrics),
            metrics,
            batch_max_readings=1_000,
            write_timeout_s=2.0,
            on_settled=record,
        )
        pos = 0
        for first in range(0, 4_900, 700):
            writer.add(_batch(ids, 700, first), pos + 700)
            pos += 700
        writer.add(ReadingBatch.empty(), pos)  # a message without readings: after everything before

        async def drain(w: BatchWriter = writer) -> None:
            await w.flush()
            await w._close_conn()

        asyncio.run(drain())
        assert settled, durable_by
        assert [p for p, _ in settled] == sorted(p for p, _ in settled), "in order"
        assert settled[-1][0] == pos == 4_900
        for p, durable in settled:
            assert durable >= p, f"position {p} settled with only {durable} readings {durable_by}"
