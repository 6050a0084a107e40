"""Readings into PostgreSQL with binary COPY, idempotent by (sensor, time).

The batch is encoded into PostgreSQL's binary COPY format with numpy in one pass
(no Python object per row), then copied straight into ``readings``. Writing the
same batch twice stores it once: when the fast path meets an existing
(sensor, time), the transaction falls back to COPY into a temporary table and
``INSERT ... ON CONFLICT DO NOTHING``.

Each batch's transaction also records the source-time ranges it wrote in
``readings_dirty`` (store/migrations/0406_readings_dirty.sql), which the rollup refresh
consumes (`hazmon.store.refresh_dirty`): what is committed reaches the rollups even when
the process stops right after the commit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import errors as pge

from hazmon.plant.reading import Reading, ReadingBatch, from_us
from hazmon.store.rollups import DirtyRanges

__all__ = [
    "ReadingColumns",
    "UnknownTagError",
    "dirty_ranges_sql",
    "encode_copy_binary",
    "write_readings",
    "write_readings_async",
]

_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01T00:00:00Z in Unix microseconds
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_TRAILER = b"\xff\xff"
_ROW = np.dtype(
    [
        ("nfields", ">i2"),
        ("len_t", ">i4"),
        ("t", ">i8"),
        ("len_s", ">i4"),
        ("s", ">i4"),
        ("len_v", ">i4"),
        ("v", ">f8"),
        ("len_q", ">i4"),
        ("q", ">i2"),
    ]
)
_COPY_SQL = "COPY {table} (time, sensor_id, value, quality) FROM STDIN (FORMAT BINARY)"


class UnknownTagError(KeyError):
    """A reading names a tag that is not in the registry."""


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """A batch of readings as columns (what the writer and the rules consume)."""

    sensor_id: npt.NDArray[np.int32]
    ts_us: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    quality: npt.NDArray[np.int16]

    def __len__(self) -> int:
        return int(self.sensor_id.shape[0])

    @classmethod
    def from_readings(cls, readings: Iterable[Reading], ids: Mapping[str, int]) -> ReadingColumns:
        """Columns for ``readings`` using the registry's tag -> sensor id map.

        Raises:
            UnknownTagError: a reading's tag has no id (callers dead-letter it first).
        """
        rs = list(readings)
        try:
            sid = np.fromiter((ids[r.tag] for r in rs), dtype=np.int32, count=len(rs))
        except KeyError as e:
            raise UnknownTagError(e.args[0]) from None
        return cls(
            sid,
            np.fromiter((r.ts_us for r in rs), dtype=np.int64, count=len(rs)),
            np.fromiter((r.value for r in rs), dtype=np.float64, count=len(rs)),
            np.fromiter((int(r.quality) for r in rs), dtype=np.int16, count=len(rs)),
        )

    @classmethod
    def from_batch(cls, batch: ReadingBatch, ids: Mapping[str, int]) -> ReadingColumns:
        """Columns for a `ReadingBatch` (tags mapped through the registry, the rest by numpy).

        Raises:
            UnknownTagError: a tag has no id (callers dead-letter it first).
        """
        try:
            sid = np.array(list(map(ids.__getitem__, batch.tags)), dtype=np.int32)
        except KeyError as e:
            raise UnknownTagError(e.args[0]) from None
        return cls(
            sid.reshape(-1),
            batch.ts_us.astype(np.int64, copy=False),
            batch.value.astype(np.float64, copy=False),
            batch.quality.astype(np.int16),
        )

    @classmethod
    def concat(cls, parts: list[ReadingColumns]) -> ReadingColumns:
        return cls(
            np.concatenate([p.sensor_id for p in parts]),
            np.concatenate([p.ts_us for p in parts]),
            np.concatenate([p.value for p in parts]),
            np.concatenate([p.quality for p in parts]),
        )


def encode_copy_binary(cols: ReadingColumns) -> bytes:
    """PostgreSQL binary COPY data for (time, sensor_id, value, quality)."""
    n = len(cols)
    rows = np.empty(n, dtype=_ROW)
    rows["nfields"] = 4
    rows["len_t"] = 8
    rows["t"] = cols.ts_us - _PG_EPOCH_US
    rows["len_s"] = 4
    rows["s"] = cols.sensor_id
    rows["len_v"] = 8
    rows["v"] = cols.value
    rows["len_q"] = 2
    rows["q"] = cols.quality
    return b"".join((_HEADER, rows.tobytes(), _TRAILER))


_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS readings_stage (LIKE readings INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
_MERGE = (
    "INSERT INTO readings (time, sensor_id, value, quality) "
    "SELECT time, sensor_id, value, quality FROM readings_stage "
    "ON CONFLICT (sensor_id, time) DO NOTHING"
)


def dirty_ranges_sql(ts_us: npt.NDArray[np.int64]) -> bytes:
    """The statement recording a batch's source-time ranges in ``readings_dirty``.

    A batch holding live readings and a backfill of hours ago records two ranges, not the gap
    (`DirtyRanges.add_times`). Literal values (timestamps we format), no parameters: it can
    share a simple query with ``BEGIN``.
    """
    d = DirtyRanges()
    d.add_times(ts_us)
    values = ", ".join(
        f"('{from_us(lo).isoformat()}'::timestamptz, '{from_us(hi).isoformat()}'::timestamptz)"
        for lo, hi in d.take()
    )
    return f"INSERT INTO readings_dirty (lo, hi) VALUES {values}".encode()


def write_readings(conn: psycopg.Connection[tuple[object, ...]], cols: ReadingColumns) -> int:
    """Write one batch in its own transaction, with its dirty ranges; returns the rows newly stored.

    On an autocommit connection: ``BEGIN`` and the dirty ranges in one round trip, the COPY
    (two), ``COMMIT`` (one). Only a batch meeting stored rows takes the staged merge, in a
    transaction of its own. On a connection in a transaction, inside it (a savepoint around
    the COPY).

    Raises whatever psycopg raises (the transaction rolled back); `hazmon.store.db.is_temporary`
    tells the caller whether to keep the batch and retry.
    """
    if len(cols) == 0:
        return 0
    data = encode_copy_binary(cols)
    mark = dirty_ranges_sql(cols.ts_us)
    if conn.autocommit:
        try:
            try:
                with conn.cursor() as cur:
                    cur.execute(b"BEGIN; " + mark)
                    with cur.copy(_COPY_SQL.format(table="readings")) as cp:
                        cp.write(data)
                    cur.execute(b"COMMIT")
                return len(cols)
            except pge.UniqueViolation:
                conn.rollback()
            with conn.transaction():
                conn.execute(mark)
                return _merge(conn, data)
        except Exception:
            if not conn.closed:  # leave the connection usable (ROLLBACK only when in a transaction)
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
            raise
    with conn.transaction():
        conn.execute(mark)
        try:
            with conn.transaction(), conn.cursor() as cur, cur.copy(_COPY_SQL.format(table="readings")) as cp:
                cp.write(data)
            return len(cols)
        except pge.UniqueViolation:
            pass
        return _merge(conn, data)


def _merge(conn: psycopg.Connection[tuple[object, ...]], data: bytes) -> int:
    """COPY into the staging table, then insert what is not stored yet (inside the caller's transaction)."""
    with conn.cursor() as cur:
        cur.execute(_STAGE)
        with cur.copy(_COPY_SQL.format(table="readings_stage")) as cp:
            cp.write(data)
        cur.execute(_MERGE)
        return cur.rowcount


async def write_readings_async(
    conn: psycopg.AsyncConnection[tuple[object, ...]],
    cols: ReadingColumns,
    *,
    data: bytes | None = None,
    on_sent: Callable[[], None] | None = None,
) -> int:
    """`write_readings` for an async connection.

    Args:
        conn: the connection (autocommit: BEGIN and the dirty ranges, the COPY, COMMIT).
        cols: the batch.
        data: ``encode_copy_binary(cols)`` when the caller encoded it already.
        on_sent: called once, when the rows are handed to the connection and the
            server is storing them; a pipelining caller prepares its next batch
            there, so the server does not wait for it between batches.
    """
    if len(cols) == 0:
        return 0
    if data is None:
        data = encode_copy_binary(cols)
    mark = dirty_ranges_sql(cols.ts_us)
    if conn.autocommit:
        try:
            try:
                async with conn.cursor() as cur:
                    await cur.execute(b"BEGIN; " + mark)
                await _copy_in_async(conn, data, on_sent)
                await conn.execute(b"COMMIT")
                return len(cols)
            except pge.UniqueViolation:
                await conn.rollback()
            async with conn.transaction():
                await conn.execute(mark)
                return await _merge_async(conn, data)
        except Exception:
            if not conn.closed:  # leave the connection usable (ROLLBACK only when in a transaction)
                with contextlib.suppress(psycopg.Error):
                    await conn.rollback()
            raise
    async with conn.transaction():
        await conn.execute(mark)
        try:
            async with conn.transaction():
                await _copy_in_async(conn, data, on_sent)
            return len(cols)
        except pge.UniqueViolation:
            pass
        return await _merge_async(conn, data)


async def _copy_in_async(
    conn: psycopg.AsyncConnection[tuple[object, ...]], data: bytes, on_sent: Callable[[], None] | None
) -> None:
    """COPY ``data`` into ``readings``; ``on_sent`` once the rows are with the server, before its verdict."""
    async with conn.cursor() as cur, cur.copy(_COPY_SQL.format(table="readings")) as cp:
        await cp.write(data)
        if on_sent is not None:
            on_sent()


async def _merge_async(conn: psycopg.AsyncConnection[tuple[object, ...]], data: bytes) -> int:
    """`_merge` for an async connection."""
    async with conn.cursor() as cur:
        await cur.execute(_STAGE)
        async with cur.copy(_COPY_SQL.format(table="readings_stage")) as cp:
            await cp.write(data)
        await cur.execute(_MERGE)
        return cur.rowcount
