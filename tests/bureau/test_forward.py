"""The child's forward queue on a real PostgreSQL (and Mosquitto): queued with the message, once; one forwarder."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from hazmon.bureau.config import ParentSettings
from hazmon.bureau.forward import Forwarder, enqueue, pending
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant.link import Envelope
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import CITY, T0, Enterprise

Conn = psycopg.Connection[tuple[object, ...]]


def _rows(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(
            "SELECT message_id, enterprise_id, kind, body FROM bureau_forward ORDER BY seq"
        ).fetchall()


def test_a_stored_message_is_queued_once_a_duplicate_or_a_refusal_never(
    make_db: Callable[[], str], enterprise: Enterprise
) -> None:
    dsn = make_db()
    ing = Ingestor(CITY, IngestLimits(), on_stored=enqueue)
    reg = enterprise.envelope(enterprise.registration())
    alarm = enterprise.envelope(enterprise.alarm(1, 1))
    stranger = Enterprise(enterprise.plant, "E-HZ", "330106")  # outside the city
    with psycopg.connect(dsn, autocommit=True) as conn:
        for env in (reg, alarm, alarm, reg):  # the second of each is a replay
            raw, topic = enterprise.wire(env)
            ing.handle(conn, raw, topic, T0)
        raw, topic = stranger.wire(stranger.envelope(stranger.registration()))
        assert ing.handle(conn, raw, topic, T0).status == "refused"
        assert pending(conn) == 2
    rows = _rows(dsn)
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (reg.message_id, enterprise.id, "registration"),
        (alarm.message_id, enterprise.id, "alarm_event"),
    ]
    assert rows[1][3] == enterprise.wire(alarm)[0]  # the bytes as received


def test_the_message_and_its_queueing_commit_or_roll_back_together(
    make_db: Callable[[], str], enterprise: Enterprise
) -> None:
    dsn = make_db()

    def failing(conn: Conn, env: Envelope, raw: bytes) -> None:
        enqueue(conn, env, raw)
        raise psycopg.errors.AdminShutdown("the database went away mid-transaction")

    reg = enterprise.envelope(enterprise.registration())
    with psycopg.connect(dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.AdminShutdown):
            Ingestor(CITY, IngestLimits(), on_stored=failing).handle(conn, *enterprise.wire(reg), T0)
        assert conn.execute("SELECT count(*) FROM bureau_message").fetchone() == (0,)
        assert pending(conn) == 0
        # the broker sends it again: now both are there
        Ingestor(CITY, IngestLimits(), on_stored=enqueue).handle(conn, *enterprise.wire(reg), T0)
        assert conn.execute("SELECT count(*) FROM bureau_message").fetchone() == (1,)
        assert pending(conn) == 1


def test_of_two_forwarders_on_one_database_one_sends_the_other_stands_by(
    make_db: Callable[[], str], private_mosquitto: PrivateMosquitto
) -> None:
    dsn = make_db()
    settings = ParentSettings(url=f"mqtt://127.0.0.1:{private_mosquitto.port}", username="js-province")
    a = Forwarder(settings, dsn)
    b = Forwarder(ParentSettings(url=settings.url, username="js-province", client_id="fed-b"), dsn)
    try:
        assert a.send_pending() == 0 and not a.standby and a.connected
        assert b.send_pending() == 0 and b.standby
        assert b.stats.connects == 0  # it never went to the parent's broker
        a.close()  # its session ends: the lock goes with it
        assert b.send_pending() == 0 and not b.standby and b.connected
    finally:
        a.close()
        b.close()


def test_a_parent_without_a_subscriber_keeps_the_queue(
    make_db: Callable[[], str], private_mosquitto: PrivateMosquitto, enterprise: Enterprise
) -> None:
    """PUBACK 0x10 (no matching subscribers): nobody keeps it at the parent, so it stays queued."""
    dsn = make_db()
    env = enterprise.envelope(enterprise.registration(), message_id=uuid.uuid4())
    with psycopg.connect(dsn, autocommit=True) as conn:
        enqueue(conn, env, enterprise.wire(env)[0])
    f = Forwarder(
        ParentSettings(url=f"mqtt://127.0.0.1:{private_mosquitto.port}", username="js", ack_timeout_s=5), dsn
    )
    try:
        with pytest.raises(ConnectionError, match="no subscriber for hazmon/v1/fed/js/hx-chem/up/registration"):
            f.send_pending()
        assert f.stats.no_subscriber == 1 and f.stats.acked == 0
        with psycopg.connect(dsn) as conn:
            assert pending(conn) == 1
    finally:
        f.close()
