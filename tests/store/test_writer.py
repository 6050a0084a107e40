from __future__ import annotations

import hashlib

import numpy as np
import pytest

from hazmon.plant import Plant, Quality, Reading, from_us
from hazmon.store import (
    ReadingColumns,
    UnknownTagError,
    connect,
    connect_async,
    encode_copy_binary,
    sensor_ids,
    write_readings,
    write_readings_async,
)

T0 = 1_764_320_400_123_456  # 2025-11-28T09:00:00.123456Z


def _batch(ids: dict[str, int], n: int, t0: int = T0) -> list[Reading]:
    tags = sorted(ids)
    return [
        Reading(tags[i % len(tags)], t0 + (i // len(tags)) * 1_000_000 + 7, i * 0.125 - 3.5, Quality(i % 3))
        for i in range(n)
    ]


def _checksum(conn: object) -> tuple[int, str]:
    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT sensor_id, time, value, quality FROM readings ORDER BY sensor_id, time"
    ).fetchall()
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def test_round_trip_is_exact(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        readings = _batch(ids, 5000)
        assert write_readings(c, ReadingColumns.from_readings(readings, ids)) == 5000
        back = c.execute(
            "SELECT s.tag, r.time, r.value, r.quality FROM readings r JOIN sensor s ON s.id = r.sensor_id"
        ).fetchall()
    expected = {(r.tag, from_us(r.ts_us), r.value, int(r.quality)) for r in readings}
    assert set(back) == expected


# autocommit: the COPY is its own transaction (the daemon's writer); without: inside the caller's
AUTOCOMMIT = pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "in-transaction"])


@AUTOCOMMIT
def test_writing_the_same_batch_twice_stores_it_once(
    db_dsn: str, example_plant: Plant, autocommit: bool
) -> None:
    with connect(db_dsn, autocommit=autocommit) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        cols = ReadingColumns.from_readings(_batch(ids, 2000), ids)
        assert write_readings(c, cols) == 2000
        first = _checksum(c)
        assert write_readings(c, cols) == 0
        assert _checksum(c) == first


@AUTOCOMMIT
def test_a_partly_overlapping_batch_stores_only_the_new_rows(
    db_dsn: str, example_plant: Plant, autocommit: bool
) -> None:
    with connect(db_dsn, autocommit=autocommit) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        a = _batch(ids, 1000)
        b = _batch(ids, 1000, T0 + 10_000_000)  # 10 s later: half overlaps a
        write_readings(c, ReadingColumns.from_readings(a, ids))
        new = len({(r.tag, r.ts_us) for r in b} - {(r.tag, r.ts_us) for r in a})
        assert 0 < new < 1000
        assert write_readings(c, ReadingColumns.from_readings(b, ids)) == new
        assert c.execute("SELECT count(*) FROM readings").fetchone() == (
            len({(r.tag, r.ts_us) for r in a + b}),
        )


@AUTOCOMMIT
async def test_async_writer_matches_sync(db_dsn: str, example_plant: Plant, autocommit: bool) -> None:
    with connect(db_dsn) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
    cols = ReadingColumns.from_readings(_batch(ids, 3000), ids)
    day = 86_400_000_000  # clear of cols
    a = ReadingColumns.from_readings(_batch(ids, 1000, T0 + day), ids)
    b = ReadingColumns.from_readings(_batch(ids, 1000, T0 + day + 10_000_000), ids)  # half overlaps a
    sent: list[str] = []
    conn = await connect_async(db_dsn, autocommit=autocommit)
    async with conn:
        assert await write_readings_async(conn, cols, on_sent=lambda: sent.append("first")) == 3000
        assert sent == ["first"], "on_sent is called once, when the rows are with the server"
        # pre-encoded data is what is written; on a conflict on_sent is called at most once
        got = await write_readings_async(
            conn, cols, data=encode_copy_binary(cols), on_sent=lambda: sent.append("again")
        )
        assert got == 0
        assert sent in (["first"], ["first", "again"])
        await write_readings_async(conn, a)
        new = len(set(zip(b.sensor_id, b.ts_us, strict=True)) - set(zip(a.sensor_id, a.ts_us, strict=True)))
        assert 0 < new < 1000
        assert await write_readings_async(conn, b) == new
        if not autocommit:
            await conn.commit()
    with connect(db_dsn) as c:
        assert c.execute("SELECT count(*) FROM readings").fetchone() == (3000 + len(a) + new,)


def test_nan_values_and_empty_batches(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        assert write_readings(c, ReadingColumns.from_readings([], ids)) == 0
        r = Reading("PT-201", T0, float("nan"), Quality.BAD)
        assert write_readings(c, ReadingColumns.from_readings([r], ids)) == 1
        v = c.execute("SELECT value, quality FROM readings").fetchone()
        assert v is not None and np.isnan(v[0]) and v[1] == 2


def test_unknown_tag_is_named() -> None:
    with pytest.raises(UnknownTagError) as e:
        ReadingColumns.from_readings([Reading("XX-9", T0, 1.0)], {"LT-101": 1})
    assert e.value.args[0] == "XX-9"


def test_rollups_refresh_min_max_avg_last(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        t0 = 1_764_320_400_000_000  # whole minute
        rs = [
            Reading("LT-101", t0 + i * 10_000_000, float(v)) for i, v in enumerate([3, 1, 4, 1, 5, 9, 2, 6])
        ]
        write_readings(c, ReadingColumns.from_readings(rs, ids))
        c.execute("SELECT hazmon_refresh_rollups(%s, %s)", (from_us(t0), from_us(t0 + 3_600_000_000)))
        m = c.execute("SELECT min, max, avg, last, n FROM readings_1m ORDER BY bucket").fetchall()
        assert len(m) == 2
        assert m[0] == (1.0, 9.0, pytest.approx(23 / 6), 9.0, 6)
        assert m[1] == (2.0, 6.0, 4.0, 6.0, 2)
        h = c.execute("SELECT min, max, avg, last, n FROM readings_1h").fetchall()
        assert h == [(1.0, 9.0, pytest.approx(31 / 8), 6.0, 8)]
