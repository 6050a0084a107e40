"""The spool: order, durability across reopen, torn tail, size limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hazmon.collector import Spool, SpoolFullError
from hazmon.store import ReadingColumns


def cols(start: int, n: int) -> ReadingColumns:
    return ReadingColumns(
        np.arange(start, start + n, dtype=np.int32),
        np.arange(start, start + n, dtype=np.int64) * 1000,
        np.arange(start, start + n, dtype=np.float64) / 3,
        np.zeros(n, dtype=np.int16),
    )


def _same(a: ReadingColumns, b: ReadingColumns) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in ("sensor_id", "ts_us", "value", "quality")
    )


def test_batches_come_back_in_order_across_segments_and_reopen(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=500)
    sent = [cols(i * 10, 10) for i in range(7)]
    for c in sent:
        s.append(c)
    assert len(s) == 7 and s.rows == 70
    s2 = Spool(tmp_path, max_bytes=1 << 20, segment_bytes=500)  # a restarted daemon
    assert len(s2) == 7 and s2.bytes == s.bytes
    got: list[ReadingColumns] = []
    while (o := s2.oldest()) is not None:
        got.extend(o[1])
        s2.done(*o)
    assert len(got) == 7 and all(_same(a, b) for a, b in zip(got, sent, strict=True))
    assert s2.bytes == 0 and len(s2) == 0 and list(tmp_path.glob("*.spool")) == []


def test_torn_tail_is_skipped_and_counted(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=1 << 20)
    s.append(cols(0, 5))
    s.append(cols(5, 5))
    seg = next(tmp_path.glob("*.spool"))
    seg.write_bytes(seg.read_bytes()[:-7])  # a crash in the middle of the second append
    s2 = Spool(tmp_path, max_bytes=1 << 20)
    o = s2.oldest()
    assert o is not None and len(o[1]) == 1 and _same(o[1][0], cols(0, 5))
    assert s2.torn_records >= 1


def test_full_spool_refuses_without_writing(tmp_path: Path) -> None:
    s = Spool(tmp_path, max_bytes=400)
    s.append(cols(0, 10))  # 12 + 220 bytes
    with pytest.raises(SpoolFullError):
        s.append(cols(10, 10))
    assert len(s) == 1 and s.bytes == 232
