"""The on-disk spool: batches the database could not take, kept in order until it can.

Append-only segment files ``NNNNNNNNNNNN.spool`` under the spool directory. Each
record is one batch of `ReadingColumns` (sensor ids, not tags: ids are stable in
the registry)::

    magic b"HZSP" | n: uint32 | crc32 of body: uint32 | body
    body = sensor_id int32[n] | ts_us int64[n] | value float64[n] | quality int16[n]

Every append is flushed and fsynced before `append` returns, so a batch the
writer has let go of survives a crash or power loss. A torn record at the end of
a segment (crash mid-write) fails its CRC and is skipped with a count. Replay
reads the oldest segment first; a segment is deleted only after all its batches
were committed. Writes are idempotent by (sensor, time), so a batch replayed
twice after a crash is stored once.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import structlog

from hazmon.store import ReadingColumns

__all__ = ["Spool", "SpoolFullError"]

log = structlog.get_logger("hazmon.collector.spool")

_MAGIC = b"HZSP"
_HEAD = struct.Struct("<4sII")
_BYTES_PER_ROW = 4 + 8 + 8 + 2


class SpoolFullError(Exception):
    """The spool is at its size limit: the batch was not kept."""


@dataclass(frozen=True, slots=True)
class _Segment:
    seq: int
    path: Path


def _encode(cols: ReadingColumns) -> bytes:
    body = b"".join(
        (
            cols.sensor_id.astype("<i4").tobytes(),
            cols.ts_us.astype("<i8").tobytes(),
            cols.value.astype("<f8").tobytes(),
            cols.quality.astype("<i2").tobytes(),
        )
    )
    return _HEAD.pack(_MAGIC, len(cols), zlib.crc32(body)) + body


def _decode(body: bytes, n: int) -> ReadingColumns:
    o1, o2, o3 = 4 * n, 12 * n, 20 * n
    return ReadingColumns(
        np.frombuffer(body, "<i4", n, 0).astype(np.int32),
        np.frombuffer(body, "<i8", n, o1).astype(np.int64),
        np.frombuffer(body, "<f8", n, o2).astype(np.float64),
        np.frombuffer(body, "<i2", n, o3).astype(np.int16),
    )


class Spool:
    """Append-only, fsynced, size-limited batches on disk, replayed oldest first.

    Not thread-safe: the batch writer is its only user, on the event loop (the
    fsync runs in a worker thread through the writer).
    """

    def __init__(self, directory: str | Path, max_bytes: int, segment_bytes: int = 16 << 20) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.torn_records = 0
        self._active: _Segment | None = None
        self._fh: object = None
        self._bytes = sum(p.stat().st_size for p in self.dir.glob("*.spool"))
        self._batches = 0
        self._rows = 0
        for seg in self._segments():
            for cols in self._read(seg):
                self._batches += 1
                self._rows += len(cols)

    # -- state ------------------------------------------------------------------------
    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def rows(self) -> int:
        """Readings waiting in the spool."""
        return self._rows

    def __len__(self) -> int:
        """Batches waiting in the spool."""
        return self._batches

    def _segments(self) -> list[_Segment]:
        segs = []
        for p in self.dir.glob("*.spool"):
            try:
                segs.append(_Segment(int(p.stem), p))
            except ValueError:
                continue
        return sorted(segs, key=lambda s: s.seq)

    # -- append -------------------------------------------------------------------------
    def append(self, cols: ReadingColumns) -> None:
        """Append one batch durably (fsync) before returning.

        Raises:
            SpoolFullError: appending would pass ``max_bytes``; nothing was written.
            OSError: the disk failed; nothing is assumed written.
        """
        rec = _encode(cols)
        if self._bytes + len(rec) > self.max_bytes:
            raise SpoolFullError(f"spool {self.dir} holds {self._bytes} bytes, limit {self.max_bytes}")
        if self._active is None or self._active.path.stat().st_size >= self.segment_bytes:
            segs = self._segments()
            seq = (segs[-1].seq + 1) if segs else 1
            self._active = _Segment(seq, self.dir / f"{seq:012d}.spool")
        new_file = not self._active.path.exists()
        fd = os.open(self._active.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            view = memoryview(rec)
            while view:
                k = os.write(fd, view)
                view = view[k:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if new_file:  # a new directory entry: make the file's existence durable too
            dfd = os.open(self.dir, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        self._bytes += len(rec)
        self._batches += 1
        self._rows += len(cols)

    # -- replay -------------------------------------------------------------------------
    def _read(self, seg: _Segment) -> list[ReadingColumns]:
        data = seg.path.read_bytes()
        out: list[ReadingColumns] = []
        off = 0
        while off + _HEAD.size <= len(data):
            magic, n, crc = _HEAD.unpack_from(data, off)
            body = data[off + _HEAD.size : off + _HEAD.size + n * _BYTES_PER_ROW]
            if magic != _MAGIC or len(body) != n * _BYTES_PER_ROW or zlib.crc32(body) != crc:
                self.torn_records += 1
                log.error(
                    "spool record torn or corrupt; the rest of the segment is skipped",
                    segment=str(seg.path),
                    offset=off,
                )
                break
            out.append(_decode(body, n))
            off += _HEAD.size + n * _BYTES_PER_ROW
        return out

    def oldest(self) -> tuple[Path, list[ReadingColumns]] | None:
        """The oldest segment and its batches, in order; None when the spool is empty.

        The active segment is closed first so that new appends go to a new one.
        """
        segs = self._segments()
        if not segs:
            return None
        seg = segs[0]
        if self._active is not None and self._active.seq == seg.seq:
            self._active = None
        return seg.path, self._read(seg)

    def done(self, path: Path, batches: list[ReadingColumns]) -> None:
        """Every batch of ``path`` is committed: delete the segment."""
        size = path.stat().st_size
        path.unlink()
        self._bytes -= size
        self._batches -= len(batches)
        self._rows -= sum(len(b) for b in batches)
