"""Bureau warnings on real PostgreSQL: inputs from the 0800 tables, tick, steps, scopes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from hazmon.bureau.warning_flow import Refused, State, Transition
from hazmon.bureau.warning_repository import NotFound, get_warning, list_warnings, load_inputs, step, tick
from hazmon.plant.bureau_standards import WarningSettings
from hazmon.plant.regions import Scope
from tests.bureau.warnings_rows import (
    Conn,
    add_alarm,
    add_enterprise,
    add_heartbeat,
    add_minutes,
    add_source,
    connect,
)

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
S = WarningSettings()


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    yield from connect(db_dsn)


def plant(c: Conn, eid: str = "E1", region: str = "330106") -> None:
    """An enterprise with two sources (two sensors each) reporting every minute for the first hour."""
    add_enterprise(c, eid, region, T0 - timedelta(days=1))
    add_source(c, eid, "T1", "two", (("LT-1", 60.0), ("PT-1", 60.0)))
    add_source(c, eid, "T2", "four", (("LT-2", 60.0), ("GT-2", 60.0)))
    for tag in ("LT-1", "PT-1", "LT-2", "GT-2"):
        add_minutes(c, eid, tag, T0, 60)
    add_heartbeat(c, eid, "dcs", T0 + timedelta(minutes=59), last_reading=T0 + timedelta(minutes=59))


def keys(c: Conn) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1])) for r in c.execute("SELECT cause_key, state FROM bureau_warning ORDER BY id")
    ]


def test_inputs_from_tables(conn: Conn) -> None:
    plant(conn)
    inp = load_inputs(conn, S, T0 + timedelta(hours=1))
    (e,) = inp.enterprises
    assert (e.sensors, e.endpoints, e.connected) == (4, 1, 1)
    assert e.last_data_at == T0 + timedelta(hours=1)  # end of the last minute with data
    assert {s.source_id: s.sensors for s in inp.sources} == {"T1": 2, "T2": 2}


def test_silent_enterprise_one_warning_across_restarts(conn: Conn, db_dsn: str) -> None:
    plant(conn)
    now = T0 + timedelta(hours=2)  # nothing for an hour: link down (no heartbeat either)
    first = tick(conn, S, now)
    assert [(c.action, c.cause_key) for c in first] == [("raise", "silent:E1")]
    assert first[0].warning_id is not None
    # a restarted daemon (a new connection), or a second worker, evaluates the same state: nothing more
    with psycopg.connect(db_dsn, autocommit=True) as restarted:
        assert tick(restarted, S, now) == []
    assert tick(conn, S, now + timedelta(minutes=1)) == []
    assert keys(conn) == [("silent:E1", "pushed")]
    w = get_warning(conn, first[0].warning_id, None)
    assert w is not None and w["detail"]["mode"] == "link_down" and w["colour"] == 3
    assert [e["event"] for e in w["events"]] == ["raised"]


def test_plant_silent_then_back_then_closed(conn: Conn) -> None:
    plant(conn)
    now = T0 + timedelta(hours=2)
    add_heartbeat(
        conn,
        "E1",
        "dcs",
        now - timedelta(minutes=1),
        connected=False,
        last_reading=T0 + timedelta(minutes=59),
    )
    (raised,) = tick(conn, S, now)
    wid = raised.warning_id
    assert wid is not None
    w = get_warning(conn, wid, None)
    assert w is not None and w["detail"]["mode"] == "plant_silent" and "全部断开" in w["text_zh"]
    # close refused while the cause holds, and out of order
    r = step(conn, wid, "close", actor="县局", comment="", now=now, scope=None)
    assert isinstance(r, Refused) and "pushed" in r.reason
    assert isinstance(
        step(conn, wid, "verify", actor="县局张三", comment="电话核查", now=now, scope=None), Transition
    )
    assert isinstance(
        step(conn, wid, "feedback", actor="E1 李四", comment="交换机故障", now=now, scope=None), Transition
    )
    r = step(conn, wid, "close", actor="县局张三", comment="", now=now, scope=None)
    assert isinstance(r, Refused) and "cause still holds" in r.reason
    # data flows again: the cause clears, the warning stays open until staff close it
    for tag in ("LT-1", "PT-1", "LT-2", "GT-2"):
        add_minutes(conn, "E1", tag, now, 3)
    add_heartbeat(conn, "E1", "dcs", now + timedelta(minutes=3), last_reading=now + timedelta(minutes=3))
    later = now + timedelta(minutes=3)
    assert [c.action for c in tick(conn, S, later)] == ["cause_cleared"]
    assert keys(conn) == [("silent:E1", "fed_back")]
    done = step(conn, wid, "close", actor="县局张三", comment="已恢复", now=later, scope=None)
    assert isinstance(done, Transition) and done.after is State.CLOSED
    w = get_warning(conn, wid, None)
    assert w is not None and w["closed_at"] == later and w["cleared_at"] == later
    assert [(e["event"], e["actor"]) for e in w["events"]] == [
        ("raised", "bureau"),
        ("verify", "县局张三"),
        ("feedback", "E1 李四"),
        ("cause_cleared", "bureau"),
        ("close", "县局张三"),
    ]
    # every event went down to the enterprise, in order, in the transaction that wrote it; a
    # refused step (above) sent nothing
    down = conn.execute(
        "SELECT enterprise_id, region_code, kind, payload FROM bureau_downlink ORDER BY seq"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in down] == [("E1", "330106", "bureau_warning")] * 5
    assert [(r[3]["warning_id"], r[3]["action"], r[3]["actor"]) for r in down] == [
        (wid, "raised", "bureau"),
        (wid, "verified", "县局张三"),
        (wid, "fed_back", "E1 李四"),
        (wid, "cause_cleared", "bureau"),
        (wid, "closed", "县局张三"),
    ]
    first = down[0][3]
    assert (first["warning_kind"], first["colour"], first["hazard_source"]) == ("silent", "orange", None)
    assert first["text_zh"] == w["text_zh"] and first["text_en"] == w["text_en"]
    # after 消警 the same cause may raise a new warning
    assert [c.action for c in tick(conn, S, later + timedelta(hours=1))] == ["raise"]
    assert keys(conn) == [("silent:E1", "closed"), ("silent:E1", "pushed")]


def test_one_source_silent_red_unacked_repeated_assessment(conn: Conn) -> None:
    plant(conn)
    now = T0 + timedelta(minutes=59)
    conn.execute(
        "DELETE FROM bureau_aggregate WHERE sensor IN ('LT-2', 'GT-2') AND bucket >= %s",
        (T0 + timedelta(minutes=20),),
    )
    add_alarm(conn, "E1-1", "E1", "T1", now - timedelta(minutes=11))
    add_alarm(conn, "E1-2", "E1", "T1", now - timedelta(minutes=5))
    add_alarm(conn, "E1-3", "E1", "T1", now - timedelta(minutes=30), acked=now - timedelta(minutes=29))
    conn.execute(
        "INSERT INTO bureau_assessment VALUES ('E1', 'T1', '2022-01-01', %s, false, false, '{}')",
        (date(2026, 3, 1),),
    )
    got = sorted(c.cause_key for c in tick(conn, S, now))
    assert got == [
        "assessment_overdue:E1:T1",
        "red_unacked:E1-1",
        "repeated:E1:LT-1",
        "source_silent:E1:T2",
    ]
    # the red alarm acknowledged: its cause clears
    conn.execute("UPDATE bureau_alarm SET acked_at = %s WHERE alarm_id = 'E1-1'", (now,))
    assert [(c.action, c.cause_key) for c in tick(conn, S, now + timedelta(seconds=1))] == [
        ("cause_cleared", "red_unacked:E1-1")
    ]


def test_partial_unique_index_refuses_a_second_open_warning(conn: Conn) -> None:
    plant(conn)
    tick(conn, S, T0 + timedelta(hours=2))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO bureau_warning (cause_key, kind, colour, enterprise_id, region_code, since, raised_at,"
            " updated_at, text_zh, text_en) SELECT cause_key, kind, colour, enterprise_id, region_code, since,"
            " raised_at, updated_at, text_zh, text_en FROM bureau_warning"
        )


def test_scopes(conn: Conn) -> None:
    plant(conn, "E1", "330106")
    plant(conn, "E2", "330108")
    plant(conn, "E3", "320102")
    tick(conn, S, T0 + timedelta(hours=2))
    county = Scope("330106", "county")
    city = Scope("330100", "city")
    nation = Scope("000000", "nation")
    assert [w["enterprise_id"] for w in list_warnings(conn, county)] == ["E1"]
    assert sorted(w["enterprise_id"] for w in list_warnings(conn, city)) == ["E1", "E2"]
    assert len(list_warnings(conn, nation)) == 3
    other = next(w["id"] for w in list_warnings(conn, None) if w["enterprise_id"] == "E2")
    assert get_warning(conn, other, county) is None
    assert step(
        conn, other, "verify", actor="县局", comment="", now=T0 + timedelta(hours=2), scope=county
    ) == NotFound(other)
    assert get_warning(conn, other, city) is not None


def test_two_workers_evaluating_at_once_raise_one_warning(conn: Conn, db_dsn: str) -> None:
    import threading
    import time

    plant(conn)
    now = T0 + timedelta(hours=2)
    results: list[list[object]] = []
    with psycopg.connect(db_dsn) as a, psycopg.connect(db_dsn, autocommit=True) as b:
        with a.transaction():
            assert len(tick(a, S, now)) == 1  # worker A holds the evaluation lock until it commits
            t = threading.Thread(target=lambda: results.append(list(tick(b, S, now))))
            t.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # wait until B is blocked on the lock
                waiting = conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                ).fetchone()
                if waiting is not None and waiting[0] == 1:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("worker B never waited for the lock")
        t.join(10)
    assert results == [[]]
    assert keys(conn) == [("silent:E1", "pushed")]
