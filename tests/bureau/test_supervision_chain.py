"""Escalation up the chain: county overdue → city; city (new deadline) overdue → province; province
overdue → stays province, flagged (no level above) — each exactly once, each told to the staff once.

Once per deadline: only an extension (延期) by the level supervising sets a new deadline from which
escalation counts again. Pure (`escalation` with ``now`` passed in), then on a real PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hazmon.bureau import supervision_repository as repo
from hazmon.bureau.config import Channel, NotifyRecipient, RegionSettings
from hazmon.bureau.supervision_flow import Event, Transition, apply, escalation, fold
from hazmon.bureau_notify import _supervision_message
from hazmon.plant.regions import Scope
from tests.bureau.warnings_rows import add_enterprise

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)
DL1, DL2, DL3 = date(2027, 3, 10), date(2027, 4, 10), date(2027, 5, 10)


def after(deadline: date, days: int = 1) -> datetime:
    """``days`` after the local midnight following ``deadline``."""
    return datetime.combine(deadline + timedelta(days=1 + days), datetime.min.time(), TZ)


def test_the_chain_pure_each_escalation_once() -> None:
    events = [Event("opened", T0, "陈科长", "county", DL1)]
    seen: list[tuple[str, str, bool]] = []

    def tick(now: datetime) -> None:
        sv = fold(events)
        esc = escalation(sv, now, TZ)
        if esc is not None:
            seen.append((esc.level_before, esc.level_after, esc.no_level_above))
            events.append(Event("escalated", now, "bureau", esc.level_after, sv.deadline, esc.comment))

    def extend(level: str, new: date, now: datetime) -> None:
        t = apply(fold(events), "extend", f"{level}-officer", level, at=now, deadline=new, tz=TZ)
        assert isinstance(t, Transition), t
        events.append(Event(t.event, now, t.actor, level, new))

    for now in (after(DL1, 0) - timedelta(seconds=1), after(DL1), after(DL1), after(DL1, 5)):
        tick(now)
    assert seen == [("county", "city", False)]
    assert fold(events).escalated_at == after(DL1)
    extend("city", DL2, after(DL1, 6))  # the city takes it over with a new deadline
    for now in (after(DL2, 0) - timedelta(seconds=1), after(DL2), after(DL2, 3)):
        tick(now)
    assert seen == [("county", "city", False), ("city", "province", False)]
    extend("province", DL3, after(DL2, 4))
    assert not fold(events).no_level_above
    for now in (after(DL3), after(DL3, 2), after(DL3, 30)):
        tick(now)
    assert seen == [("county", "city", False), ("city", "province", False), ("province", "province", True)]
    sv = fold(events)
    assert (sv.level, sv.escalations, sv.no_level_above, sv.escalated_at) == ("province", 3, True, after(DL1))
    assert "no level above" in sv.events[-1].comment
    # a further extension clears the flag until that deadline passes too
    extend("province", date(2027, 6, 30), after(DL3, 31))
    assert not fold(events).no_level_above


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        yield c


def test_the_chain_on_the_database_each_once_with_a_notice(conn: psycopg.Connection[Any]) -> None:
    add_enterprise(conn, "E1", "320116", T0 - timedelta(days=30), last_message=T0)
    sv = repo.open_supervision(
        conn, Scope("320116", "county"), actor="陈科长", danger_id=None, enterprise_id="E1",
        deadline=DL1, bureau_person="陈科长", comment="", now=T0, tz=TZ,
    )  # fmt: skip
    assert isinstance(sv, dict)
    sid = sv["id"]
    staff = [("province-duty", Scope("320000", "province"))]
    told: list[tuple[str, date, bool]] = []
    notices: list[repo.NoticeDue] = []

    def tick(now: datetime) -> list[int]:
        done = repo.escalate_due(conn, TZ, now)
        repo.plan_notices(conn, staff, now)
        for d in repo.claim_notices(conn, now, 60):
            told.append((d.level, d.deadline, d.no_level_above))
            notices.append(d)
            repo.notice_sent(conn, d, now)
        return done

    def extend(scope: Scope, new: date, now: datetime) -> None:
        got = repo.step(conn, sid, "extend", actor=f"{scope.level}-officer", comment="延期", now=now, scope=scope,
                        deadline=new, tz=TZ)  # fmt: skip
        assert isinstance(got, dict), got

    def row() -> tuple[Any, ...]:
        r = conn.execute(
            "SELECT level, deadline, escalated_at, no_level_above_at IS NOT NULL FROM bureau_supervision"
        ).fetchone()
        assert r is not None
        return tuple(r)

    assert tick(after(DL1, 0) - timedelta(seconds=1)) == []
    assert [tick(after(DL1)), tick(after(DL1)), tick(after(DL1, 5))] == [[sid], [], []]
    assert row() == ("city", DL1, after(DL1), False)
    extend(Scope("320100", "city"), DL2, after(DL1, 6))
    assert [tick(after(DL2, 0) - timedelta(seconds=1)), tick(after(DL2)), tick(after(DL2, 2))] == [
        [],
        [sid],
        [],
    ]
    assert row() == ("province", DL2, after(DL1), False)
    extend(Scope("320000", "province"), DL3, after(DL2, 3))
    assert [tick(after(DL3)), tick(after(DL3)), tick(after(DL3, 30))] == [[sid], [], []]
    assert row() == ("province", DL3, after(DL1), True)
    assert told == [("city", DL1, False), ("province", DL2, False), ("province", DL3, True)]
    # what the staff read: the flagged one says there is no level above
    ch = Channel(name="duty", kind="mqtt", url="mqtt://127.0.0.1:1883", topic="bureau/{region}")
    who = NotifyRecipient(name="province-duty", channel="duty", region=RegionSettings("320000", "province"))
    flags = [(d, _supervision_message(d, who, ch)) for d in notices]
    assert [("no level above" in m.subject, m.payload["no_level_above"], m.payload["level"]) for _, m in flags] == [
        (False, False, "city"), (False, False, "province"), (True, True, "province"),
    ]  # fmt: skip
    events = conn.execute(
        "SELECT step, level, deadline FROM bureau_supervision_event WHERE supervision_id = %s ORDER BY id",
        (sid,),
    ).fetchall()
    assert events == [
        ("opened", "county", DL1), ("escalated", "city", DL1), ("extended", "city", DL2),
        ("escalated", "province", DL2), ("extended", "province", DL3), ("escalated", "province", DL3),
    ]  # fmt: skip
    down = conn.execute(
        "SELECT payload->>'action', payload->>'level' FROM bureau_downlink WHERE kind = 'supervision' ORDER BY seq"
    ).fetchall()
    assert down == [
        ("opened", "county"), ("escalated", "city"), ("extended", "city"),
        ("escalated", "province"), ("extended", "province"), ("escalated", "province"),
    ]  # fmt: skip
    # the database holds the rule too: a second escalation for the same deadline is refused
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO bureau_supervision_event (supervision_id, step, at, actor, origin, level, deadline)"
            " VALUES (%s, 'escalated', %s, 'bureau', 'bureau', 'province', %s)",
            (sid, after(DL3, 31), DL3),
        )
