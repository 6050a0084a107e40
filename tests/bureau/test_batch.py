"""Batches of messages in one transaction on a real PostgreSQL: stored once, a bad one alone refused, an early one parked."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from hazmon.bureau.batch import BatchIngestor, BatchResult, Item
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant.link import AggregateItem, Aggregates, Heartbeat
from hazmon.plant.link.messages import EndpointHeartbeat
from tests.bureau.helpers import CITY, T0, Enterprise

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(db_dsn: str) -> Conn:
    return psycopg.connect(db_dsn, autocommit=True)


def _one(conn: Conn, sql: str, *args: object) -> object:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def _aggregates(minute: int, sensors: int = 5, poison: bool = False) -> Aggregates:
    items = [
        AggregateItem(
            sensor="POISON" if poison and i == 0 else f"S-{i:03d}",
            count=3,
            min=float(i),
            mean=float(i) + 0.5,
            max=float(i) + 1,
            last=float(i) + 1,
            worst_quality="good",
        )
        for i in range(sensors)
    ]
    return Aggregates(window_start=T0 + timedelta(minutes=minute), items=items)


def _item(
    ent: Enterprise, payload: object, at: datetime = T0, message_id: uuid.UUID | None = None
) -> Item[int]:
    raw, t = ent.wire(ent.envelope(payload, T0, message_id))  # type: ignore[arg-type]
    return Item(raw, t, at, 0)


def _statuses(r: BatchResult[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for _, o in r.done:
        out[o.status] = out.get(o.status, 0) + 1
    return out


def test_a_batch_with_the_registration_and_aggregates_is_stored_once(
    conn: Conn, enterprise: Enterprise
) -> None:
    b = BatchIngestor(Ingestor(CITY, IngestLimits()))
    batch = [_item(enterprise, enterprise.registration())]
    batch += [_item(enterprise, _aggregates(m)) for m in range(10)]
    r = b.handle(conn, batch, T0)
    assert _statuses(r) == {"stored": 11} and r.parked == []
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 50
    assert _one(conn, "SELECT count(*) FROM bureau_message WHERE kind = 'aggregates'") == 10
    assert _one(conn, "SELECT mean FROM bureau_aggregate WHERE sensor = 'S-002' AND bucket = %s", T0) == 2.5
    assert _one(conn, "SELECT last_seq FROM bureau_enterprise") == enterprise.seq
    assert b.ingestor.metrics.messages.labels(kind="aggregates")._value.get() == 10
    # the same batch again (a replay after an outage): nothing added, all duplicates
    again = b.handle(conn, batch, T0)
    assert _statuses(again) == {"duplicate": 11}
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 50
    assert _one(conn, "SELECT count(*) FROM bureau_message") == 11


def test_a_duplicate_inside_a_batch_and_across_batches_is_stored_once(
    conn: Conn, enterprise: Enterprise
) -> None:
    b = BatchIngestor(Ingestor(CITY, IngestLimits()))
    assert _statuses(b.handle(conn, [_item(enterprise, enterprise.registration())], T0)) == {"stored": 1}
    mid = uuid.uuid4()
    first = _item(enterprise, _aggregates(0), message_id=mid)
    hb = Heartbeat(at=T0, endpoints=[EndpointHeartbeat(endpoint="dcs", protocol="opcua", connected=True,
                                                        last_reading_at=T0)])  # fmt: skip
    hb_item = _item(enterprise, hb)
    r = b.handle(conn, [first, hb_item, first, hb_item, _item(enterprise, _aggregates(1))], T0)
    assert _statuses(r) == {"stored": 3, "duplicate": 2}
    # across batches: the same message id (a resend) with other content changes nothing
    resend = _item(enterprise, _aggregates(0, sensors=9), message_id=mid)
    assert _statuses(b.handle(conn, [resend, _item(enterprise, _aggregates(2))], T0)) == {
        "duplicate": 1,
        "stored": 1,
    }
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 15
    assert _one(conn, "SELECT count(*) FROM bureau_message") == 5  # registration, heartbeat, 3 minutes
    assert b.ingestor.metrics.duplicates._value.get() == 3


def test_one_invalid_message_in_a_batch_of_100_is_dead_lettered_the_99_stored(
    conn: Conn, enterprise: Enterprise
) -> None:
    b = BatchIngestor(Ingestor(CITY, IngestLimits()))
    b.handle(conn, [_item(enterprise, enterprise.registration())], T0)
    batch = [_item(enterprise, _aggregates(m)) for m in range(100)]
    batch[37] = Item(b'{"schema_version": 1, "kind": "aggregates"}', batch[37].topic, T0, 0)
    r = b.handle(conn, batch, T0)
    assert _statuses(r) == {"stored": 99, "refused": 1}
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 99 * 5
    assert _one(conn, "SELECT reason_code FROM bureau_dead_letter") == "invalid_schema"
    assert b.ingestor.metrics.refused.labels(reason_code="invalid_schema")._value.get() == 1
    assert b.metrics.fallbacks._value.get() == 0  # refused by the check: the batch went on


def test_a_message_the_database_refuses_rolls_the_batch_back_and_only_it_is_dead_lettered(
    conn: Conn, enterprise: Enterprise
) -> None:
    b = BatchIngestor(Ingestor(CITY, IngestLimits()))
    b.handle(conn, [_item(enterprise, enterprise.registration())], T0)
    # a rule of the database's that one message breaks (as a value PostgreSQL does not take)
    conn.execute("ALTER TABLE bureau_aggregate ADD CONSTRAINT no_poison CHECK (sensor <> 'POISON')")
    batch = [_item(enterprise, _aggregates(m, poison=m == 61)) for m in range(100)]
    r = b.handle(conn, batch, T0)
    assert _statuses(r) == {"stored": 99, "refused": 1}
    assert b.metrics.fallbacks._value.get() == 1
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 99 * 5
    assert _one(conn, "SELECT count(*) FROM bureau_message WHERE kind = 'aggregates'") == 99
    row = conn.execute("SELECT reason_code, reason, payload FROM bureau_dead_letter").fetchall()
    assert len(row) == 1 and row[0][0] == "database_refused" and "no_poison" in str(row[0][1])
    assert bytes(row[0][2]) == batch[61].raw  # type: ignore[arg-type]
    assert b.ingestor.metrics.refused.labels(reason_code="database_refused")._value.get() == 1


def test_a_message_before_its_registration_is_parked_then_stored_or_after_the_wait_dead_lettered(
    conn: Conn, enterprise: Enterprise
) -> None:
    b = BatchIngestor(Ingestor(CITY, IngestLimits()), park_s=60)
    early = [_item(enterprise, _aggregates(0))]
    hb = Heartbeat(at=T0, endpoints=[])
    early.append(_item(enterprise, hb))
    r = b.handle(conn, early, T0 + timedelta(seconds=5))
    assert r.done == [] and {i.raw for i in r.parked} == {i.raw for i in early}  # nothing written, nor acked
    assert _one(conn, "SELECT count(*) FROM bureau_message") == 0
    assert _one(conn, "SELECT count(*) FROM bureau_dead_letter") == 0
    assert b.metrics.parked_total._value.get() == 2
    # another worker stores the registration; the parked ones are tried again and stored
    BatchIngestor(Ingestor(CITY, IngestLimits())).handle(
        conn, [_item(enterprise, enterprise.registration())], T0
    )
    r = b.handle(conn, r.parked, T0 + timedelta(seconds=6))
    assert _statuses(r) == {"stored": 2} and r.parked == []
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 5
    # an enterprise that never registers: dead-lettered once its message has waited park_s
    other = Enterprise(enterprise.plant, "never-registered")
    late = [_item(other, _aggregates(0))]
    assert b.handle(conn, late, T0 + timedelta(seconds=59)).parked == late
    r = b.handle(conn, late, T0 + timedelta(seconds=60))
    assert _statuses(r) == {"refused": 1} and r.parked == []
    reason = _one(conn, "SELECT reason FROM bureau_dead_letter WHERE reason_code = 'unknown_enterprise'")
    assert "waited 60 s" in str(reason)
    assert b.ingestor.metrics.refused.labels(reason_code="unknown_enterprise")._value.get() == 1


def test_a_minute_sent_again_under_a_new_message_id_keeps_the_first_rows(
    conn: Conn, enterprise: Enterprise
) -> None:
    b = BatchIngestor(Ingestor(CITY, IngestLimits()))
    b.handle(conn, [_item(enterprise, enterprise.registration())], T0)
    assert _statuses(b.handle(conn, [_item(enterprise, _aggregates(0))], T0)) == {"stored": 1}
    assert b.metrics.staged._value.get() == 0  # straight into the table
    # the enterprise sends minute 0 again (restarted, new message id), with 4 more sensors
    again = _aggregates(0, sensors=9).model_copy()
    again.items[2] = again.items[2].model_copy(update={"mean": 2.75})
    r = b.handle(conn, [_item(enterprise, again), _item(enterprise, _aggregates(1))], T0)
    assert _statuses(r) == {"stored": 2}
    assert b.metrics.staged._value.get() == 1
    assert _one(conn, "SELECT count(*) FROM bureau_aggregate") == 9 + 5
    assert _one(conn, "SELECT mean FROM bureau_aggregate WHERE sensor = 'S-002' AND bucket = %s", T0) == 2.5


def _beat(at: datetime, *eps: tuple[str, bool]) -> Heartbeat:
    return Heartbeat(at=at, endpoints=[
        EndpointHeartbeat(endpoint=n, protocol="opcua", connected=c, last_reading_at=at) for n, c in eps
    ])  # fmt: skip


def _heartbeat_state(conn: Conn) -> tuple[list[tuple[object, ...]], ...]:
    return (
        conn.execute("SELECT enterprise_id, endpoint, protocol, connected, last_reading_at, at, received_at"
                     " FROM bureau_heartbeat ORDER BY 1, 2").fetchall(),
        conn.execute("SELECT message_id, enterprise_id, seq, kind, sent_at, received_at, skew_s, skewed, payload"
                     " FROM bureau_message WHERE kind = 'heartbeat' ORDER BY seq, enterprise_id").fetchall(),
        conn.execute("SELECT enterprise_id, last_message_at, last_seq FROM bureau_enterprise ORDER BY 1").fetchall(),
    )  # fmt: skip


def test_heartbeats_in_one_batch_leave_what_applying_them_one_by_one_leaves(
    conn: Conn, enterprise: Enterprise
) -> None:
    """The batch stores heartbeats in two statements; the outcome is the one-by-one path's, row for row:
    per endpoint the latest ``at`` (of equal ones the later message), an older one changing nothing,
    a message stored once, an unregistered enterprise's heartbeat parked, last_seq the newest."""
    other = Enterprise(enterprise.plant, "second-enterprise")
    stranger = Enterprise(enterprise.plant, "never-registered")
    ing = Ingestor(CITY, IngestLimits())
    for e in (enterprise, other):
        reg = _item(e, e.registration())
        assert ing.handle(conn, reg.raw, reg.topic, T0).status == "stored"
    m = timedelta(minutes=1)
    beats = [
        _item(enterprise, _beat(T0 + 2 * m, ("dcs", True), ("sis", True)), at=T0 + 2 * m),
        _item(other, _beat(T0 + m, ("dcs", False)), at=T0 + m),
        _item(enterprise, _beat(T0 + m, ("dcs", False)), at=T0 + 3 * m),  # older: changes no endpoint
        _item(other, _beat(T0 + m, ("dcs", True)), at=T0 + m),  # equal at: the later message wins
        _item(enterprise, _beat(T0 + 3 * m, ("sis", False)), at=T0 + 3 * m),
    ]
    beats.append(beats[0])  # the same message twice
    now = T0 + 4 * m
    one_by_one = [ing.handle(conn, it.raw, it.topic, it.received_at).status for it in beats]
    assert one_by_one == ["stored"] * 5 + ["duplicate"]
    expected = _heartbeat_state(conn)
    assert len(expected[0]) == 3 and [r[3] for r in expected[0]] == [True, False, True]  # dcs, sis; other dcs
    conn.execute("DELETE FROM bureau_heartbeat")
    conn.execute("DELETE FROM bureau_message WHERE kind = 'heartbeat'")
    conn.execute("UPDATE bureau_enterprise SET last_message_at = %s, last_seq = 1", (T0,))

    b = BatchIngestor(Ingestor(CITY, IngestLimits()), park_s=60)
    early = _item(stranger, _beat(T0 + m, ("dcs", True)), at=now)
    r = b.handle(conn, [*beats, early], now)
    assert [o.status for _, o in r.done] == ["stored"] * 5 + ["duplicate"] and r.parked == [early]
    assert b.metrics.fallbacks._value.get() == 0  # in the batch, not one by one after a refusal
    assert _heartbeat_state(conn) == expected
    assert _statuses(b.handle(conn, beats[:2], now)) == {"duplicate": 2}  # across batches
    assert _heartbeat_state(conn) == expected
