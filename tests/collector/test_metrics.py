"""The metrics registry: fixed label names, known children from the start, one registry per daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hazmon.collector import BatchWriter, DeadLetters, Metrics, ReadingQueue, Spool
from hazmon.plant import ReadingBatch
from hazmon.store import sensor_ids
from testkit import free_port

T0 = 1_795_860_000_000_000  # 2026-11-28T08:00:00Z


def _samples(m: Metrics) -> dict[str, list[dict[str, str]]]:
    return {
        f.name: [s.labels for s in f.samples] for f in text_string_to_metric_families(m.render().decode())
    }


def test_a_family_keeps_its_label_names() -> None:
    m = Metrics()
    m.counter("hazmon_x_total", "x", ("source",), [{"source": "gds"}])
    with pytest.raises(ValueError):
        m.inc("hazmon_x_total")  # a bare sample beside labelled ones: refused
    with pytest.raises(ValueError):
        m.inc("hazmon_x_total", 1, {"source": "gds", "what": "ack"})
    with pytest.raises(ValueError):
        m.counter("hazmon_x_total", "x", ("source", "what"))  # declared again with other labels
    m.counter("hazmon_x_total", "x", ("source",), [{"source": "dcs"}])  # same labels: more children
    with pytest.raises(KeyError):
        m.inc("hazmon_never_declared_total")
    assert _samples(m)["hazmon_x"] == [{"source": "gds"}, {"source": "dcs"}]


def test_children_known_at_start_are_exported_at_zero_before_anything_happens() -> None:
    m = Metrics()
    m.gauge("hazmon_source_connected", "up", ("source",), [{"source": "dcs"}])
    m.gauge_fn("hazmon_rules_counters", "c", lambda: {("raised",): 2.0}, ("counter",))
    m.histogram("hazmon_h_seconds", "h")
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(m.render().decode())
        for s in f.samples
    }
    assert got[("hazmon_source_connected", (("source", "dcs"),))] == 0
    assert got[("hazmon_rules_counters", (("counter", "raised"),))] == 2
    assert got[("hazmon_h_seconds_count", ())] == 0


def test_get_total_and_histograms_read_back() -> None:
    m = Metrics()
    m.counter("hazmon_d_total", "d", ("reason",), [{"reason": "a"}, {"reason": "b"}])
    m.inc("hazmon_d_total", 2, {"reason": "a"})
    m.inc("hazmon_d_total", 3, {"reason": "b"})
    m.histogram("hazmon_h_seconds", "h")
    m.observe("hazmon_h_seconds", 0.02)
    m.observe("hazmon_h_seconds", 7.0)
    assert m.get("hazmon_d_total", {"reason": "a"}) == 2
    assert m.get("hazmon_d_total", {"reason": "zzz"}) == 0
    assert m.total("hazmon_d_total") == 5
    assert m.get("hazmon_h_seconds_count") == 2
    assert m.get("hazmon_h_seconds_sum") == pytest.approx(7.02)


def test_each_metrics_is_its_own_registry() -> None:
    """Several daemons in one process (the tests) do not share or clash on families."""
    a, b = Metrics(), Metrics()
    for m in (a, b):
        m.counter("hazmon_readings_written_total", "w")
    a.inc("hazmon_readings_written_total", 5)
    assert (a.get("hazmon_readings_written_total"), b.get("hazmon_readings_written_total")) == (5, 0)


def test_a_callback_gauge_declared_again_takes_the_new_function() -> None:
    m = Metrics()
    m.gauge_fn("hazmon_spool_readings", "s", lambda: {(): 1.0})
    m.gauge_fn("hazmon_spool_readings", "s", lambda: {(): 2.0})
    assert m.get("hazmon_spool_readings") == 2
    with pytest.raises(ValueError):
        m.gauge_fn("hazmon_spool_readings", "s", lambda: {("x",): 2.0}, ("kind",))


async def test_ingest_to_commit_counts_what_was_committed_and_not_what_was_spooled(
    db_dsn: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_dsn) as c:
        ids = sensor_ids(c, "hx-chem")
    tags = sorted(ids)[:3]

    def batch(t0: int) -> ReadingBatch:
        return ReadingBatch(tags, [t0, t0, t0], [1.0, 2.0, 3.0], np.zeros(3, dtype=np.int8))

    async def write(dsn: str, spool: Path) -> Metrics:
        m = Metrics()
        w = BatchWriter(dsn, ids, Spool(spool, 1 << 20), DeadLetters(m), m, write_timeout_s=2.0)
        q = ReadingQueue(100, asyncio.get_running_loop())
        for k in range(2):  # two messages: two arrivals
            await q.put(batch(T0 + k))
        got = await q.get_batch(100, 1.0)
        assert [n for n, _ in q.last_arrivals] == [3, 3]
        w.add(got, q.taken, q.last_arrivals)
        await w.flush(final=True)
        return m

    ok = await write(db_dsn, tmp_path / "a")
    assert ok.get("hazmon_readings_written_total") == 6
    assert ok.get("hazmon_ingest_to_commit_seconds_count") == 2
    down = await write(f"postgresql://postgres@127.0.0.1:{free_port()}/nobody", tmp_path / "b")
    assert down.get("hazmon_readings_spooled_total") == 6
    assert down.get("hazmon_ingest_to_commit_seconds_count") == 0
