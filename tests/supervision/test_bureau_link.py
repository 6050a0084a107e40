"""挂牌督办 at the plant on a real PostgreSQL: the bureau's steps into the record's history, progress, the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.plant.link import Envelope, Supervision
from hazmon.store import connect
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as repo
from hazmon.supervision.dangers import Action, RefusedError, Step
from hazmon.supervision.duty import Commitment, DutyCheck
from hazmon.supervision_link import enqueue_supervision, record_supervision
from hazmon.uplink.downlink import Refused
from hazmon.uplink.outbox import claim
from tests.supervision.test_cli import hz
from tests.supervision.test_dangers import full_plan
from tests.supervision.test_repository import _report

Conn = psycopg.Connection[tuple[Any, ...]]


def _down(plant: Plant, sid: int, action: str, at: datetime, danger: str | None, **kw: Any) -> Envelope:
    p = Supervision(
        supervision_id=sid, danger_id=danger, action=action, level=kw.pop("level", "county"),  # type: ignore[arg-type]
        deadline=kw.pop("deadline", date(2099, 1, 1)), bureau_person="陈科长", at=at, actor="县应急局 陈科长",
        comment=kw.pop("comment", ""),
    )  # fmt: skip
    return Envelope(
        schema_version=1, message_id=uuid.uuid4(), seq=1, enterprise_id=plant.enterprise.id,
        region_code=plant.enterprise.region.code, kind="supervision", sent_at=at, payload=p,
    )  # fmt: skip


@pytest.fixture
def major(db_dsn: str, example_plant: Plant) -> int:
    t = datetime.now(UTC) - timedelta(minutes=10)
    with connect(db_dsn) as c:
        d = repo.add_danger(
            c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", _report().to_json())
        )
        plan = full_plan(deadline=(t + timedelta(days=30)).date())
        repo.add_step(
            c,
            example_plant,
            d.id,
            Step(Action.PLAN, "张建国", "plant_manager", t + timedelta(seconds=1), "", plan.to_json()),
        )
    return d.id


def test_the_bureaus_steps_land_in_the_records_history_once(
    db_dsn: str, example_plant: Plant, major: int
) -> None:
    eid = example_plant.enterprise.id
    at = datetime.now(UTC) - timedelta(minutes=5)
    env = _down(example_plant, 4, "opened", at, f"{eid}:{major}", comment="限期整改")
    with connect(db_dsn, autocommit=True) as c:
        assert record_supervision(c, example_plant, env) is True
        assert record_supervision(c, example_plant, env) is False  # redelivered (QoS 1): recorded once
        d = repo.get_danger(c, eid, major)
        assert d is not None
        note = d.steps[-1]
        assert (note.action, note.role, note.actor) == (Action.NOTE, "bureau", "县应急局 陈科长")
        assert "挂牌督办" in note.comment
        assert "限期整改" in note.comment
        assert len(d.steps) == 3
        foreign = _down(example_plant, 5, "opened", at, "other:1")
        with pytest.raises(Refused, match="danger_id"):
            record_supervision(c, example_plant, foreign)
        unknown = _down(example_plant, 6, "opened", at, f"{eid}:999")
        with pytest.raises(Refused, match="999"):
            record_supervision(c, example_plant, unknown)
        assert c.execute("SELECT count(*) FROM supervision_notice").fetchone() == (1,)


def test_progress_needs_a_supervision_received_and_not_closed(
    db_dsn: str, example_plant: Plant, major: int
) -> None:
    eid = example_plant.enterprise.id
    at = datetime.now(UTC) - timedelta(minutes=5)
    with connect(db_dsn, autocommit=True) as c:
        with pytest.raises(RefusedError, match="no supervision 4 received"):
            sbureau.file_progress(
                c, example_plant, 4, actor="张建国", role="plant_manager", at=at, comment="x"
            )
        record_supervision(c, example_plant, _down(example_plant, 4, "opened", at, f"{eid}:{major}"))
        with pytest.raises(RefusedError) as e:
            sbureau.file_progress(c, example_plant, 4, actor="张建国", role="bureau", at=at, comment=" ")
        assert [r.split(":")[0] for r in e.value.reasons] == ["comment", "role"]
        pid = sbureau.file_progress(
            c, example_plant, 4, actor="张建国", role="plant_manager", at=at + timedelta(minutes=1),
            comment="已更换爆破片", done=True,
        )  # fmt: skip
        d = repo.get_danger(c, eid, major)
        assert d is not None
        assert "申请验收" in d.steps[-1].comment
        (s,) = sbureau.supervisions(c, eid)
        assert (s["supervision_id"], s["action"], s["progress"][0]["id"]) == (4, "opened", pid)
        record_supervision(
            c, example_plant, _down(example_plant, 4, "closed", at + timedelta(minutes=2), f"{eid}:{major}")
        )
        with pytest.raises(RefusedError, match="closed"):
            sbureau.file_progress(
                c, example_plant, 4, actor="张建国", role="plant_manager", at=at, comment="y"
            )


def test_every_supervision_row_is_enqueued_once_in_its_records_order(
    db_dsn: str, example_plant: Plant, major: int
) -> None:
    eid = example_plant.enterprise.id
    now = datetime.now(UTC) - timedelta(minutes=1)
    with connect(db_dsn, autocommit=True) as c:
        repo.add_check(
            c, example_plant,
            DutyCheck("cl2-tankfarm", "technical", example_plant.hazard_sources[0].responsible.technical.name,
                      now, "安全阀", "", "王强", "operator"),
            now,
        )  # fmt: skip
        repo.file_commitment(
            c, example_plant,
            Commitment(now.astimezone(ZoneInfo(example_plant.enterprise.timezone)).date(), "张建国", now,
                       {hs.id: "running" for hs in example_plant.hazard_sources}, {}, ""),
            "plant_manager",
        )  # fmt: skip
        record_supervision(c, example_plant, _down(example_plant, 4, "opened", now, f"{eid}:{major}"))
        sbureau.file_progress(
            c, example_plant, 4, actor="张建国", role="plant_manager", at=now, comment="进展"
        )
        assert (
            enqueue_supervision(c, example_plant) == 7
        )  # report, plan, 2 notes, check, commitment, progress
        assert enqueue_supervision(c, example_plant) == 0
        rows = claim(c, 100)
    envs = [r.envelope(now) for r in rows]  # each validates against the link's schema again
    kinds = [e.kind for e in envs]
    assert kinds.count("hidden_danger") == 4
    assert kinds.count("duty_check") == 1
    assert kinds.count("commitment") == 1
    assert kinds.count("supervision_progress") == 1
    steps = [(e.payload.seq, e.payload.step, e.payload.state) for e in envs if e.kind == "hidden_danger"]  # type: ignore[union-attr]
    assert steps == [(1, "report", "found"), (2, "plan", "plan"), (3, "note", "plan"), (4, "note", "plan")]
    first = envs[0].payload
    assert first.danger_id == f"{eid}:{major}"  # type: ignore[union-attr]


def test_progress_from_the_command_line(db_dsn: str, example_plant: Plant, major: int) -> None:
    eid = example_plant.enterprise.id
    r = hz(
        "supervision", "progress", "-c", "examples/plant.yaml", "4", "--by", "张建国", "-m", "x", dsn=db_dsn
    )
    assert r.returncode == 2, r.stderr
    assert "no supervision 4 received" in r.stderr
    with connect(db_dsn, autocommit=True) as c:
        record_supervision(
            c,
            example_plant,
            _down(example_plant, 4, "opened", datetime.now(UTC) - timedelta(minutes=1), f"{eid}:{major}"),
        )
    r = hz(
        "supervision", "progress", "-c", "examples/plant.yaml", "4", "--by", "张建国", "-m", "已更换", "--done",
        dsn=db_dsn,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    listed = hz("supervision", "list", "-c", "examples/plant.yaml", "--json", dsn=db_dsn)
    assert listed.returncode == 0, listed.stderr
    (s,) = json.loads(listed.stdout)
    assert (s["supervision_id"], s["level"], [p["done"] for p in s["progress"]]) == (4, "county", [True])
