"""The uplink outbox on PostgreSQL: enqueue and claim in order, dedupe, mark sent, stable ids."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from hazmon.plant import Plant
from hazmon.plant.link import Feedback, parse_envelope, topic
from hazmon.uplink import claim, enqueue, mark_sent, pending
from hazmon.uplink.build import heartbeat, registration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _feedback(i: int) -> Feedback:
    return Feedback(alarm_id=f"E:{i}", at=T0, actor="op", comment=f"n{i}")


def test_enqueue_claim_in_order_and_mark_sent(db_dsn: str, example_plant: Plant) -> None:
    e = example_plant.enterprise
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        seqs = [enqueue(conn, e.id, e.region.code, registration(example_plant))]
        seqs += [enqueue(conn, e.id, e.region.code, _feedback(i)) for i in range(5)]
        assert all(s is not None for s in seqs) and seqs == sorted(seqs)
        assert pending(conn) == 6

        first = claim(conn, 4)
        assert [r.seq for r in first] == seqs[:4]
        assert [r.kind for r in first] == ["registration", "feedback", "feedback", "feedback"]
        assert all(r.attempts == 1 for r in first)
        env = first[0].envelope(T0)
        # what goes on the wire parses back at the bureau, with its topic
        back = parse_envelope(env.model_dump_json(), topic(e.id, env.kind))
        assert back.payload == registration(example_plant)
        assert back.seq == seqs[0] and back.message_id == first[0].message_id

        assert mark_sent(conn, [first[0].seq, first[1].seq]) == 2
        assert mark_sent(conn, [first[0].seq]) == 0  # already sent: not counted twice
        again = claim(conn, 10)  # the unacknowledged are claimed again, same ids, first in line
        assert [r.seq for r in again] == seqs[2:]
        assert [r.message_id for r in again[:2]] == [r.message_id for r in first[2:]]
        assert [r.attempts for r in again] == [2, 2, 1, 1]
        mark_sent(conn, [r.seq for r in again])
        assert pending(conn) == 0 and claim(conn, 10) == []


def test_dedupe_key_enqueues_once(db_dsn: str, example_plant: Plant) -> None:
    e = example_plant.enterprise
    hb = heartbeat(T0, [("dcs", "opcua", True, T0)])
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert enqueue(conn, e.id, e.region.code, hb, dedupe_key="alarm_event:1") is not None
        assert enqueue(conn, e.id, e.region.code, hb, dedupe_key="alarm_event:1") is None
        assert enqueue(conn, e.id, e.region.code, hb) is not None  # no key: always a new message
        assert pending(conn) == 2


def test_enqueue_rolls_back_with_its_transaction(db_dsn: str, example_plant: Plant) -> None:
    e = example_plant.enterprise
    with psycopg.connect(db_dsn) as conn:
        enqueue(conn, e.id, e.region.code, _feedback(1))
        conn.rollback()
        assert pending(conn) == 0
