"""The writer's permanent-failure path on a real PostgreSQL: refused readings are dead letters.

A database that refuses a batch for good (here: the daemon's role may not insert
into ``readings``) must not lose the readings silently or retry forever: each one
is kept in ``collector_dead_letter`` with reason ``db_rejected``, the database's
words and the reading itself, and counted.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import psycopg

from hazmon.collector import BatchWriter, DeadLetters, Metrics, Spool
from hazmon.plant import Quality, Reading, ReadingBatch
from hazmon.plant.reading import storage_step
from hazmon.store import sensor_ids
from tests.conftest import ADMIN_DSN


def test_a_batch_the_database_refuses_for_good_is_dead_lettered_reading_by_reading(
    db_dsn: str, tmp_path: Path
) -> None:
    role = f"hazmon_noinsert_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(db_dsn, autocommit=True) as c:
        c.execute(f'CREATE ROLE "{role}" LOGIN')
        c.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        c.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
        c.execute(f'GRANT INSERT ON collector_dead_letter TO "{role}"')
        c.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        ids = sensor_ids(c, "hx-chem")
    user_dsn = db_dsn.replace("postgres@", f"{role}@", 1)
    assert user_dsn != db_dsn, "the test DSN names the postgres user"
    try:
        metrics = Metrics()
        dead = DeadLetters(metrics)
        writer = BatchWriter(user_dsn, ids, Spool(tmp_path / "spool", 1 << 20), dead, metrics)
        tags = sorted(ids)[:3]
        rows = [Reading(t, 1_795_860_000_000_000 + k, 1.5 + k, Quality.GOOD) for k, t in enumerate(tags)]
        writer.add(ReadingBatch.from_readings(rows))
        asyncio.run(writer.flush(final=True))
        asyncio.run(writer._close_conn())

        assert metrics.get("hazmon_write_errors_total", {"kind": "permanent"}) == 1
        assert metrics.get("hazmon_readings_written_total") == 0
        assert len(writer.spool) == 0, "a permanent refusal is not retried from the spool"
        with psycopg.connect(db_dsn) as c:
            assert c.execute("SELECT count(*) FROM readings").fetchone() == (0,)
            got = c.execute(
                "SELECT source, reason, tag, detail, convert_from(payload, 'UTF8') FROM collector_dead_letter "
                "ORDER BY tag"
            ).fetchall()
        assert [(g[0], g[1], g[2]) for g in got] == [("writer", "db_rejected", t) for t in tags]
        assert all("permission denied" in g[3] for g in got), got[0][3]
        assert [g[4] for g in got] == [
            f"{t},{r.ts_us},{r.value!r},0" for t, r in zip(tags, rows, strict=True)
        ]
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as c:
            c.execute(f'DROP OWNED BY "{role}"')
        with psycopg.connect(ADMIN_DSN, autocommit=True) as c:
            c.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_dead_letters_past_their_retention_are_deleted(db_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        for age_days in (45, 31, 29, 1):
            c.execute(
                "INSERT INTO collector_dead_letter (received_at, source, topic, reason, detail, tag, payload, "
                "payload_len) VALUES (now() - make_interval(days => %s), 'gds', 't', 'not_json', 'x', NULL, "
                "'{', 1)",
                (age_days,),
            )
        ids = sensor_ids(c, "hx-chem")
    metrics = Metrics()
    writer = BatchWriter(
        db_dsn,
        ids,
        Spool(tmp_path / "spool", 1 << 20),
        DeadLetters(metrics),
        metrics,
        dead_letter_retention_days=30,
    )
    asyncio.run(writer.flush())  # the first flush with the database up runs the daily retention
    asyncio.run(writer._close_conn())
    assert metrics.get("hazmon_dead_letters_pruned_total") == 2
    with psycopg.connect(db_dsn) as c:
        left = c.execute(
            "SELECT round(extract(epoch FROM now() - received_at) / 86400) FROM collector_dead_letter ORDER BY 1"
        ).fetchall()
    assert [int(r[0]) for r in left] == [1, 29]


def test_values_are_stored_at_their_sensors_step_and_the_band_judges_the_value_as_it_came(
    db_dsn: str, tmp_path: Path
) -> None:
    """`storage_step` per tag: a multiple of the step within half of it; a tag without one: as sent;
    a value just outside the band is stored OUT_OF_RANGE even if rounding would bring it inside."""
    with psycopg.connect(db_dsn) as c:
        ids = sensor_ids(c, "hx-chem")
    a, b = sorted(ids)[:2]
    step = storage_step((0.0, 20.0))
    metrics = Metrics()
    writer = BatchWriter(
        db_dsn, ids, Spool(tmp_path / "spool", 1 << 20), DeadLetters(metrics), metrics,
        bands={a: (0.0, 20.0)}, steps={a: step},
    )  # fmt: skip
    t = 1_795_860_000_000_000
    sent = [0.123456789, 12.3456789, 19.99999999, 20.0 + step / 4, 1e308]
    writer.add([Reading(a, t + i, v, Quality.GOOD) for i, v in enumerate(sent)])
    writer.add([Reading(b, t, 0.123456789, Quality.GOOD)])
    asyncio.run(writer.flush())
    asyncio.run(writer._close_conn())
    with psycopg.connect(db_dsn) as c:
        rows = c.execute(
            "SELECT value, quality FROM readings WHERE sensor_id = %s ORDER BY time", (ids[a],)
        ).fetchall()
        other = c.execute("SELECT value FROM readings WHERE sensor_id = %s", (ids[b],)).fetchone()
    got = [float(str(r[0])) for r in rows]
    assert len(got) == len(sent)
    for v, g in zip(sent[:3], got, strict=False):
        assert abs(g - v) <= step / 2 and g / step == round(g / step)
    assert got[0] != sent[0]  # rounded, not kept whole
    assert got[3:] == sent[3:]  # out of range: kept as the transmitter said it
    assert [int(str(r[1])) for r in rows] == [0, 0, 0, int(Quality.OUT_OF_RANGE), int(Quality.OUT_OF_RANGE)]
    assert other is not None and other[0] == 0.123456789  # no step for this tag: full precision
