"""Supervision at the bureau on a real PostgreSQL: ingest once, 挂牌督办 steps, escalation once, scopes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hazmon.bureau import supervision_repository as repo
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.supervision_flow import Refused
from hazmon.plant.link import (
    CommitmentReport,
    DangerPlanInfo,
    DutyCheckReport,
    HiddenDanger,
    SupervisionProgress,
)
from hazmon.plant.regions import Scope
from tests.bureau.helpers import CITY, Enterprise

Conn = psycopg.Connection[Any]
TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DL = date(2027, 3, 10)
COUNTY = Scope("320116", "county")  # the example plant's county
OTHER_COUNTY = Scope("320115", "county")


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        yield c


def one(conn: Conn, sql: str, *args: object) -> Any:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def danger(ent: Enterprise, seq: int, step: str, state: str, at: datetime, **kw: Any) -> HiddenDanger:
    fields: dict[str, Any] = {
        "danger_id": f"{ent.id}:7",
        "seq": seq,
        "step": step,
        "at": at,
        "actor": "王强",
        "role": "plant_manager",
        "title": "V-101 爆破片未投用",
        "hazard_source": "cl2-tankfarm",
        "found_by": "alarm",
        "alarm_id": f"{ent.id}:3",
        "level": "major",
        "criteria": [15],
        "state": state,
        "found_at": T0,
    }
    fields.update(kw)
    return HiddenDanger.model_validate(fields)


def send(ing: Ingestor, conn: Conn, ent: Enterprise, payload: Any) -> str:
    raw, t = ent.wire(ent.envelope(payload))
    return ing.handle(conn, raw, t, T0).status


@pytest.fixture
def reported(conn: Conn, enterprise: Enterprise) -> Ingestor:
    """The example enterprise registered, one major hidden danger reported and planned."""
    ing = Ingestor(CITY, IngestLimits())
    assert send(ing, conn, enterprise, enterprise.registration()) == "stored"
    assert send(ing, conn, enterprise, danger(enterprise, 1, "report", "found", T0)) == "stored"
    plan = DangerPlanInfo(goal="投用爆破片", measures="更换", funds_yuan=85000, deadline=DL, persons=["李明"])
    p2 = danger(enterprise, 2, "plan", "plan", T0 + timedelta(hours=1), plan=plan, deadline=DL)
    assert send(ing, conn, enterprise, p2) == "stored"
    return ing


def open_one(conn: Conn, scope: Scope = COUNTY, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "actor": "陈科长",
        "danger_id": "hx-chem:7",
        "enterprise_id": None,
        "deadline": DL,
        "bureau_person": "陈科长",
        "comment": "挂牌",
        "now": T0 + timedelta(hours=2),
        "tz": TZ,
    }
    args.update(kw)
    return repo.open_supervision(conn, scope, **args)


def test_hidden_danger_steps_duty_checks_and_commitments_are_stored_once(
    conn: Conn, enterprise: Enterprise, reported: Ingestor
) -> None:
    ing = reported
    row = conn.execute(
        "SELECT state, level, criteria, deadline, last_seq, plan->>'goal' FROM bureau_hidden_danger"
    )
    assert row.fetchall() == [("plan", "major", [15], DL, 2, "投用爆破片")]
    # an older step arriving late goes into the history without rolling the record back
    late = danger(enterprise, 1, "report", "found", T0)
    assert send(ing, conn, enterprise, late) == "stored"  # a new message id: stored, the step kept once
    assert one(conn, "SELECT state FROM bureau_hidden_danger") == "plan"
    assert one(conn, "SELECT count(*) FROM bureau_hidden_danger_step") == 2
    # a replay of one message (same id) adds nothing
    env = enterprise.envelope(
        DutyCheckReport(
            check_id=4, hazard_source="cl2-tankfarm", role="technical", person="李明", at=T0, what="安全阀"
        )
    )
    raw, t = enterprise.wire(env)
    assert [ing.handle(conn, raw, t, T0).status for _ in range(2)] == ["stored", "duplicate"]
    c = CommitmentReport(
        commitment_id=9, day=date(2027, 3, 1), sources={"cl2-tankfarm": "running"},
        special_work={"hot_work": 1}, filed_by="张建国", filed_at=T0,
    )  # fmt: skip
    assert send(ing, conn, enterprise, c) == "stored"
    assert one(conn, "SELECT count(*) FROM bureau_duty_check WHERE role = 'technical'") == 1
    assert one(conn, "SELECT sources->>'cl2-tankfarm' FROM bureau_commitment") == "running"


def test_a_danger_id_of_another_enterprise_is_refused(
    conn: Conn, enterprise: Enterprise, reported: Ingestor
) -> None:
    foreign = danger(enterprise, 3, "note", "plan", T0 + timedelta(hours=3), danger_id="other:7")
    assert send(reported, conn, enterprise, foreign) == "refused"
    assert (
        one(conn, "SELECT reason_code FROM bureau_dead_letter ORDER BY id DESC LIMIT 1") == "topic_mismatch"
    )


def test_supervision_opened_progressed_accepted_closed_each_step_sent_down(
    conn: Conn, enterprise: Enterprise, reported: Ingestor
) -> None:
    sv = open_one(conn)
    assert isinstance(sv, dict)
    sid = sv["id"]
    assert (sv["level"], sv["state"], sv["events"][0]["step"]) == ("county", "open", "opened")
    # accept before the enterprise says it is done: refused, nothing written
    t = T0 + timedelta(hours=3)
    early = repo.step(conn, sid, "accept", actor="陈科长", comment="", now=t, scope=COUNTY)
    assert isinstance(early, Refused)
    assert early.field == "step"
    assert one(conn, "SELECT count(*) FROM bureau_supervision_event") == 1
    got = repo.step(conn, sid, "request_progress", actor="陈科长", comment="请报进展", now=t, scope=COUNTY)
    assert isinstance(got, dict)
    assert got["state"] == "progress_requested"
    prog = SupervisionProgress(
        supervision_id=sid, progress_id=1, danger_id="hx-chem:7", at=t + timedelta(hours=1), actor="张建国",
        comment="已更换爆破片", done=True,
    )  # fmt: skip
    assert send(reported, conn, enterprise, prog) == "stored"
    assert one(conn, "SELECT state FROM bureau_supervision") == "open"
    for step, state in (("accept", "accepted"), ("close", "closed")):
        got = repo.step(
            conn, sid, step, actor="陈科长", comment=step, now=t + timedelta(hours=2), scope=COUNTY
        )
        assert isinstance(got, dict)
        assert got["state"] == state
    assert [e["step"] for e in got["events"]] == [
        "opened",
        "progress_requested",
        "progress",
        "accepted",
        "closed",
    ]
    assert got["closed_at"] is not None
    down = conn.execute("SELECT kind, payload->>'action' FROM bureau_downlink ORDER BY seq").fetchall()
    assert down == [("supervision", a) for a in ("opened", "progress_requested", "accepted", "closed")]
    # closed (销号) is final: no step after it
    again = repo.step(
        conn, sid, "close", actor="陈科长", comment="", now=t + timedelta(hours=3), scope=COUNTY
    )
    assert isinstance(again, Refused)


def test_another_region_cannot_see_or_supervise_and_nothing_is_written(
    conn: Conn, enterprise: Enterprise, reported: Ingestor
) -> None:
    got = open_one(conn, OTHER_COUNTY)
    assert isinstance(got, repo.NotFound)
    assert "region" in str(got)
    assert one(conn, "SELECT count(*) FROM bureau_supervision") == 0
    sv = open_one(conn)
    assert repo.get_supervision(conn, sv["id"], OTHER_COUNTY) is None
    assert repo.list_supervisions(conn, OTHER_COUNTY) == []
    assert repo.list_hidden_dangers(conn, OTHER_COUNTY) == []
    stepped = repo.step(conn, sv["id"], "request_progress", actor="x", comment="", now=T0 + timedelta(hours=3),
                        scope=OTHER_COUNTY)  # fmt: skip
    assert isinstance(stepped, repo.NotFound)
    assert one(conn, "SELECT count(*) FROM bureau_supervision_event") == 1


def test_opening_refusals(conn: Conn, enterprise: Enterprise, reported: Ingestor) -> None:
    past = open_one(conn, deadline=date(2027, 2, 1))
    assert isinstance(past, list)
    assert [r.field for r in past] == ["deadline"]
    low = open_one(conn, min_level={"major": "city"})
    assert isinstance(low, list)
    assert [r.field for r in low] == ["level"]
    assert isinstance(open_one(conn), dict)
    twice = open_one(conn)
    assert isinstance(twice, list)
    assert "under supervision already" in twice[0].reason
    assert one(conn, "SELECT count(*) FROM bureau_supervision") == 1


def test_progress_on_a_supervision_the_bureau_does_not_have_is_refused(
    conn: Conn, enterprise: Enterprise, reported: Ingestor
) -> None:
    prog = SupervisionProgress(supervision_id=99, progress_id=1, at=T0, actor="张建国", comment="x")
    assert send(reported, conn, enterprise, prog) == "refused"
    assert (
        one(conn, "SELECT reason_code FROM bureau_dead_letter ORDER BY id DESC LIMIT 1")
        == "unknown_supervision"
    )
    assert one(conn, "SELECT count(*) FROM bureau_message WHERE kind = 'supervision_progress'") == 0


def test_overdue_by_one_day_escalates_exactly_once_with_a_notice(
    conn: Conn, enterprise: Enterprise, reported: Ingestor
) -> None:
    sid = open_one(conn)["id"]
    midnight = datetime(2027, 3, 11, 0, 0, tzinfo=TZ)  # the local midnight after the deadline
    assert repo.escalate_due(conn, TZ, midnight - timedelta(minutes=1)) == []
    day_late = midnight + timedelta(days=1)
    assert repo.escalate_due(conn, TZ, day_late) == [sid]
    for later in (day_late, day_late + timedelta(minutes=1), day_late + timedelta(days=5)):
        assert repo.escalate_due(conn, TZ, later) == []
    assert one(conn, "SELECT count(*) FROM bureau_supervision_event WHERE step = 'escalated'") == 1
    assert one(conn, "SELECT level FROM bureau_supervision") == "city"
    actions = conn.execute("SELECT payload->>'action', payload->>'level' FROM bureau_downlink ORDER BY seq")
    assert actions.fetchall() == [("opened", "county"), ("escalated", "city")]
    # the staff of the region hear of it once; a recipient of another region does not
    assert repo.plan_notices(conn, [("duty", CITY), ("elsewhere", Scope("330100", "city"))], day_late) == 1
    assert repo.plan_notices(conn, [("duty", CITY)], day_late) == 0
    (due,) = repo.claim_notices(conn, day_late, 60)
    assert (due.supervision_id, due.level, due.recipient) == (sid, "city", "duty")
    repo.notice_sent(conn, due, day_late)
    assert repo.claim_notices(conn, day_late + timedelta(hours=1), 60) == []
    # escalated to city: the county may no longer take its steps
    low = repo.step(conn, sid, "request_progress", actor="x", comment="", now=day_late, scope=COUNTY)
    assert isinstance(low, Refused)
    assert low.field == "level"
