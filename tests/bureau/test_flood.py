"""The per-enterprise flood limit: a flooding enterprise is limited (MQTT: replayable dead letters; HTTPS:
429 with Retry-After) while another enterprise's messages are all stored; a replay stores each once."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from hazmon.bureau.flood import FloodGuardedIngestor, FloodLimiter, FloodMetrics, TokenBucket, replay
from hazmon.bureau.ingest import IngestLimits, IngestMetrics, Ingestor
from hazmon.plant import Plant
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.bureau.test_http_link import OTHER, _messages, _stopped_clock


def test_token_bucket_gives_its_burst_then_its_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, at=100.0)
    assert [b.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(100.0) == pytest.approx(0.5)  # one token in half a second
    assert b.take(100.5) == 0.0 and b.take(100.5) == pytest.approx(0.5)
    assert [b.take(1000.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]  # refilled to the burst, not beyond
    assert b.take(999.0) > 0  # a clock going back gives nothing


def _count(conn: psycopg.Connection[tuple[object, ...]], sql: str, *args: object) -> int:
    row = conn.execute(sql, args).fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else -1  # type: ignore[call-overload]


def test_one_enterprise_flooding_is_limited_the_other_stored_and_the_flood_replays_once(
    make_db: Callable[[], str], example_plant: Plant
) -> None:
    a, b = Enterprise(example_plant), Enterprise(example_plant, eid=OTHER)
    reg = CollectorRegistry()
    limiter = FloodLimiter(1.0, 5, _stopped_clock)
    guarded = FloodGuardedIngestor(CITY, IngestLimits(), limiter, IngestMetrics(reg), FloodMetrics(reg))
    flood, others = _messages(a, 11), _messages(b, 4)  # 12 of a's, 5 of b's: b within its burst
    with psycopg.connect(make_db(), autocommit=True) as conn:
        outcomes = [guarded.handle(conn, raw, t, T0) for raw, t in flood[:6]]
        outcomes += [guarded.handle(conn, raw, t, T0) for raw, t in others]  # amid a's flood
        outcomes += [guarded.handle(conn, raw, t, T0) for raw, t in flood[6:]]
        assert [o.status for o in outcomes[:6]] == ["stored"] * 5 + ["refused"]
        assert [o.status for o in outcomes[6:11]] == ["stored"] * 5  # b: every one
        assert {o.refused.reason_code for o in outcomes if o.refused} == {"flood"}
        assert _count(conn, "SELECT count(*) FROM bureau_message WHERE enterprise_id = %s", OTHER) == 5
        assert _count(conn, "SELECT count(*) FROM bureau_message WHERE enterprise_id = %s", a.id) == 5
        dead = conn.execute(
            "SELECT enterprise_id, reason_code, reason, payload FROM bureau_dead_letter ORDER BY id"
        ).fetchall()
        assert len(dead) == 7 and {(str(r[0]), str(r[1])) for r in dead} == {(a.id, "flood")}
        assert [bytes(r[3]) for r in dead] == [raw for raw, _ in flood[5:]]  # kept whole, in order
        assert "flood_burst" in str(dead[0][2])
        assert reg.get_sample_value("hazmon_bureau_refused_total", {"reason_code": "flood"}) == 7
        flooded = {"enterprise_id": a.id, "transport": "mqtt"}
        assert reg.get_sample_value("hazmon_bureau_flood_total", flooded) == 7

        # one flood message also arrived again (the broker's redelivery) and was stored meanwhile
        plain = Ingestor(CITY, IngestLimits())
        assert plain.handle(conn, flood[5][0], flood[5][1], T0).status == "stored"
        r = replay(conn, plain)
        assert (r.replayed, r.stored, r.duplicate, r.refused) == (7, 6, 1, 0)
        assert _count(conn, "SELECT count(*) FROM bureau_message WHERE enterprise_id = %s", a.id) == 12
        assert replay(conn, plain).replayed == 0  # each dead letter once
        outcomes_db = conn.execute("SELECT replay_outcome FROM bureau_dead_letter ORDER BY id").fetchall()
        assert [str(o[0]) for o in outcomes_db] == ["duplicate"] + ["stored"] * 6
