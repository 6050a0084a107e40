"""The repository on a real PostgreSQL: round trips, one transaction per step, nothing half-written."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.store import connect
from hazmon.supervision import repository as repo
from hazmon.supervision.attachments import AttachmentError
from hazmon.supervision.dangers import Action, DangerLevel, FoundBy, Plan, RefusedError, Report, State, Step
from hazmon.supervision.duty import Commitment, DutyCheck
from hazmon.supervision.findings import supervision_findings
from tests.supervision.test_dangers import full_plan


def _now() -> datetime:
    return datetime.now(UTC)


def _counts(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, ...]:
    row = conn.execute(
        """SELECT (SELECT count(*) FROM hidden_danger), (SELECT count(*) FROM hidden_danger_step),
                  (SELECT count(*) FROM hidden_danger_plan), (SELECT count(*) FROM hidden_danger_attachment)"""
    ).fetchone()
    assert row is not None
    return tuple(int(str(x)) for x in row)


def _report(level: DangerLevel = DangerLevel.MAJOR) -> Report:
    return Report(
        "rupture disc of V-101 not in service",
        level,
        FoundBy.INSPECTION,
        hazard_source="cl2-tankfarm",
        sensor="PT-101",
        criteria=(15,) if level is DangerLevel.MAJOR else (),
    )


def test_round_trip_of_a_major_hidden_danger(db_dsn: str, example_plant: Plant) -> None:
    t = _now()
    deadline = (t + timedelta(days=60)).date()
    with connect(db_dsn) as c:
        d = repo.add_danger(
            c,
            example_plant,
            Step(Action.REPORT, "王强", "operator", t, "seen on the round", _report().to_json()),
        )
        plan = full_plan(deadline=deadline)
        d = repo.add_step(
            c,
            example_plant,
            d.id,
            Step(Action.PLAN, "张建国", "plant_manager", t + timedelta(seconds=1), "signed", plan.to_json()),
        )
        d = repo.add_step(
            c, example_plant, d.id, Step(Action.START, "王强", "operator", t + timedelta(seconds=2))
        )
        d, att_id, meta = repo.attach(
            c,
            example_plant,
            d.id,
            Step(Action.ATTACH, "王强", "operator", t + timedelta(seconds=3), "before"),
            filename="before.jpg",
            content=b"\xff\xd8\xff" + b"1" * 50,
        )
    with connect(db_dsn) as c:
        got = repo.get_danger(c, example_plant.enterprise.id, d.id)
        assert got is not None
        assert got == d
        assert got.state is State.RECTIFYING and got.deadline == deadline
        assert got.plan == plan and got.plan.funds == Decimal("120000")
        assert [(s.seq, s.action, s.actor, s.role) for s in got.steps] == [
            (1, Action.REPORT, "王强", "operator"),
            (2, Action.PLAN, "张建国", "plant_manager"),
            (3, Action.START, "王强", "operator"),
            (4, Action.ATTACH, "王强", "operator"),
        ]
        assert got.steps[0].at == t.replace(microsecond=t.microsecond)
        assert repo.attachments(c, d.id) == [(att_id, meta)]
        content = repo.attachment_content(c, example_plant.enterprise.id, att_id)
        assert content is not None and content[1] == b"\xff\xd8\xff" + b"1" * 50
        row = c.execute(
            "SELECT state, deadline, last_seq, criteria FROM hidden_danger WHERE id = %s", (d.id,)
        ).fetchone()
        assert row == ("rectifying", deadline, 4, [15])
        assert [x.id for x in repo.list_dangers(c, example_plant.enterprise.id, states=["rectifying"])] == [
            d.id
        ]
        assert repo.list_dangers(c, example_plant.enterprise.id, states=["accepted"]) == []
        # the step log is append-only
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            c.execute("UPDATE hidden_danger_step SET comment = 'edited' WHERE danger_id = %s", (d.id,))
        c.rollback()


def test_refused_steps_write_nothing(db_dsn: str, example_plant: Plant) -> None:
    t = _now()
    with connect(db_dsn) as c:
        d = repo.add_danger(
            c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", _report().to_json())
        )
        before = _counts(c)
        bad_plans = [
            full_plan(deadline=(t + timedelta(days=30)).date(), funds=Decimal(-1)),
            full_plan(deadline=(t - timedelta(days=3)).date()),
            Plan(measures="x"),
        ]
        for p in bad_plans:
            with pytest.raises(RefusedError):
                repo.add_step(
                    c,
                    example_plant,
                    d.id,
                    Step(Action.PLAN, "张建国", "plant_manager", t + timedelta(seconds=1), "", p.to_json()),
                )
        with pytest.raises(RefusedError, match="cannot leave 'found'"):
            repo.add_step(
                c, example_plant, d.id, Step(Action.START, "王强", "operator", t + timedelta(seconds=1))
            )
        with pytest.raises(RefusedError, match="apply: not allowed in state 'found'"):
            repo.add_step(
                c,
                example_plant,
                d.id,
                Step(Action.APPLY, "张建国", "plant_manager", t + timedelta(seconds=1)),
            )
        for name, content in (("big.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024)), ("a.gif", b"GIF89a")):
            with pytest.raises(AttachmentError):
                repo.attach(
                    c,
                    example_plant,
                    d.id,
                    Step(Action.ATTACH, "王强", "operator", t + timedelta(seconds=1)),
                    filename=name,
                    content=content,
                )
        with pytest.raises(RefusedError, match="is in the future"):
            repo.add_step(
                c, example_plant, d.id, Step(Action.NOTE, "王强", "operator", t + timedelta(days=1), "x")
            )
        with pytest.raises(RefusedError, match="no such record"):
            repo.add_step(c, example_plant, 999_999, Step(Action.NOTE, "王强", "operator", t, "x"))
        assert _counts(c) == before


def test_a_failure_inside_the_transaction_leaves_no_step(db_dsn: str, example_plant: Plant) -> None:
    """The plan row fails (a funds value the column cannot hold) after the step was inserted: both go."""
    t = _now()
    with connect(db_dsn) as c:
        d = repo.add_danger(
            c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", _report().to_json())
        )
        before = _counts(c)
        huge = full_plan(deadline=(t + timedelta(days=30)).date(), funds=Decimal("1e20"))
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            repo.add_step(
                c,
                example_plant,
                d.id,
                Step(Action.PLAN, "张建国", "plant_manager", t + timedelta(seconds=1), "", huge.to_json()),
            )
        c.rollback()
        assert _counts(c) == before
        got = repo.get_danger(c, example_plant.enterprise.id, d.id)
        assert got is not None and got.state is State.FOUND and len(got.steps) == 1


def test_unknown_places_and_alarms_refused(db_dsn: str, example_plant: Plant) -> None:
    t = _now()
    with connect(db_dsn) as c:
        r = Report(
            "x", DangerLevel.GENERAL, FoundBy.ALARM, hazard_source="nowhere", sensor="LT-101", alarm_id=42
        )
        with pytest.raises(RefusedError) as e:
            repo.add_danger(c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", r.to_json()))
        assert "hazard source: 'nowhere' is not in the plant file" in str(e.value)
        r = Report("x", DangerLevel.GENERAL, FoundBy.ALARM, hazard_source="cl2-tankfarm", alarm_id=42)
        with pytest.raises(RefusedError, match="no alarm 42"):
            repo.add_danger(c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", r.to_json()))
        assert _counts(c) == (0, 0, 0, 0)


def test_checks_commitments_and_the_told_state(db_dsn: str, example_plant: Plant) -> None:
    t = _now()
    eid = example_plant.enterprise.id
    with connect(db_dsn) as c:
        cid = repo.add_check(
            c,
            example_plant,
            DutyCheck(
                "cl2-tankfarm",
                "technical",
                "李明",
                t - timedelta(hours=1),
                "relief valves",
                recorded_by="王强",
            ),
            t,
        )
        with pytest.raises(RefusedError, match=r"the technical responsible person .* is 李明, not '王强'"):
            repo.add_check(c, example_plant, DutyCheck("cl2-tankfarm", "technical", "王强", t, "x"), t)
        assert [x.id for x in repo.list_checks(c, eid)] == [cid]
        today = t.astimezone(ZoneInfo("Asia/Shanghai")).date()
        srcs = {hs.id: "running" for hs in example_plant.hazard_sources}
        com = Commitment(today, "张建国", t, srcs, {"hot_work": 1})
        repo.file_commitment(c, example_plant, com, "plant_manager")
        with pytest.raises(RefusedError, match="already filed"):
            repo.file_commitment(c, example_plant, com, "plant_manager")
        with pytest.raises(RefusedError, match="no state given for lpg-spheres"):
            repo.file_commitment(
                c, example_plant, Commitment(today, "张建国", t, {"cl2-tankfarm": "running"}), "plant_manager"
            )
        got = repo.list_commitments(c, eid)
        assert [(x.day, x.special_work) for x in got] == [(today, {"hot_work": 1})]
        st = repo.load_state(c, example_plant)
        assert st.started <= t + timedelta(seconds=5) and st.checks[0].id == cid
        # pretend the alarms were told something: it survives a reload
        sweep = supervision_findings(st, t + timedelta(days=400))
        assert sweep.findings  # a year later every duty is overdue
        repo.save_told(c, eid, sweep.told)
        again = repo.load_state(c, example_plant)
        assert dict(again.told) == sweep.told
        assert supervision_findings(again, t + timedelta(days=400)).findings == []


def test_deadline_is_a_local_date(db_dsn: str, example_plant: Plant) -> None:
    """The deadline column holds the plant's local date the plan names (no UTC shift)."""
    t = _now()
    with connect(db_dsn) as c:
        r = _report(DangerLevel.GENERAL)
        d = repo.add_danger(c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", r.to_json()))
        dl = (t + timedelta(days=2)).date()
        d = repo.add_step(
            c,
            example_plant,
            d.id,
            Step(Action.START, "王强", "operator", t, "", {"deadline": dl.isoformat()}),
        )
        assert c.execute("SELECT deadline FROM hidden_danger WHERE id = %s", (d.id,)).fetchone() == (dl,)
        assert isinstance(dl, date)
