"""A supervised hidden danger's 销号 is the bureau's (Order 16 of 2007): refused at the plant, by its close."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from hazmon.plant import Plant
from hazmon.plant.link import Supervision
from hazmon.store import connect
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as repo
from hazmon.supervision.dangers import Action, RefusedError, Step
from hazmon.supervision.supervised import Notice, open_supervision, supervised_accept_problems
from tests.supervision.test_api import T0, Api, api  # noqa: F401 - `api`: a real server on the register
from tests.supervision.test_cli import PLANT, hz
from tests.supervision.test_dangers import full_plan
from tests.supervision.test_repository import _report

ACCEPT = Step(Action.ACCEPT, "赵工", "plant_manager", T0)


@pytest.mark.parametrize(
    ("notices", "level"),
    [
        ([], None),
        ([Notice(1, "opened", "county")], "county"),
        ([Notice(1, "opened", "county"), Notice(1, "escalated", "city")], "city"),
        ([Notice(1, "opened", "city"), Notice(1, "extended", "city")], "city"),
        ([Notice(1, "opened", "county"), Notice(1, "progress_requested", "county")], "county"),
        ([Notice(1, "opened", "county"), Notice(1, "accepted", "county")], "county"),  # 验收, not yet 销号
        ([Notice(1, "opened", "county"), Notice(1, "closed", "county")], None),
        (
            [Notice(1, "opened", "county"), Notice(1, "closed", "county"), Notice(2, "opened", "province")],
            "province",
        ),
        ([Notice(3, "progress_requested", "county")], None),  # no opening received: nothing to go by
    ],
)
def test_open_supervision_of_the_notices(notices: list[Notice], level: str | None) -> None:
    got = open_supervision(notices)
    assert (None if got is None else got.level) == level
    problems = supervised_accept_problems(ACCEPT, notices)
    assert bool(problems) is (level is not None)


@pytest.mark.parametrize(("level", "zh"), [("county", "县级"), ("city", "市级"), ("province", "省级")])
def test_the_refusal_names_the_supervising_level_and_whose_acceptance_it_is(level: str, zh: str) -> None:
    (why,) = supervised_accept_problems(ACCEPT, [Notice(5, "opened", level, "陈科长")])
    assert f"by the {level} bureau" in why and zh in why and "supervision 5" in why and "陈科长" in why
    assert "Order 16 of 2007" in why and "须由督办部门验收销号" in why


@pytest.mark.parametrize("action", [Action.REJECT, Action.NOTE, Action.APPLY, Action.START])
def test_only_the_acceptance_is_the_bureaus(action: Action) -> None:
    step = Step(action, "赵工", "plant_manager", T0, "why")
    assert supervised_accept_problems(step, [Notice(1, "opened", "city")]) == []


def _notice(
    plant: Plant, sid: int, action: str, at: datetime, danger: int, level: str = "county"
) -> Supervision:
    return Supervision(
        supervision_id=sid, danger_id=f"{plant.enterprise.id}:{danger}", action=action, level=level,  # type: ignore[arg-type]
        deadline=date(2099, 1, 1), bureau_person="陈科长", at=at, actor="市应急局 陈科长", comment="",
    )  # fmt: skip


def _applied(dsn: str, plant: Plant, t: datetime) -> int:
    """A major hidden danger with its plan, rectified and applied for acceptance by 张建国 (from ``t``)."""
    with connect(dsn, autocommit=True) as c:
        d = repo.add_danger(c, plant, Step(Action.REPORT, "王强", "operator", t, "", _report().to_json()))
        plan = full_plan(deadline=(t + timedelta(days=30)).date()).to_json()
        for i, (a, who, role, data) in enumerate(
            [
                (Action.PLAN, "张建国", "plant_manager", plan),
                (Action.START, "王强", "operator", {}),
                (Action.APPLY, "张建国", "plant_manager", {}),
            ]
        ):
            repo.add_step(c, plant, d.id, Step(a, who, role, t + timedelta(seconds=i + 1), "", data))
    return d.id


def _receive(dsn: str, plant: Plant, p: Supervision) -> None:
    with connect(dsn, autocommit=True) as c:
        assert sbureau.record_notice(c, plant, p, str(uuid.uuid4()))


def _steps(dsn: str, plant: Plant, did: int) -> list[tuple[str, str]]:
    with connect(dsn) as c:
        d = repo.get_danger(c, plant.enterprise.id, did)
    assert d is not None
    return [(s.action.value, s.role) for s in d.steps]


def test_refused_at_the_plant_while_supervised_then_closed_by_the_bureau(
    db_dsn: str, example_plant: Plant
) -> None:
    t = datetime.now(UTC) - timedelta(minutes=10)
    did = _applied(db_dsn, example_plant, t)
    _receive(db_dsn, example_plant, _notice(example_plant, 9, "opened", t + timedelta(minutes=1), did))
    _receive(
        db_dsn, example_plant, _notice(example_plant, 9, "escalated", t + timedelta(minutes=2), did, "city")
    )
    before = _steps(db_dsn, example_plant, did)
    with connect(db_dsn, autocommit=True) as c, pytest.raises(RefusedError) as err:
        repo.add_step(
            c, example_plant, did, Step(Action.ACCEPT, "赵工", "plant_manager", t + timedelta(minutes=3))
        )
    assert (
        len(err.value.reasons) == 1
        and "by the city bureau" in err.value.reasons[0]
        and "市级" in str(err.value)
    )
    assert _steps(db_dsn, example_plant, did) == before  # nothing written
    # the CLI goes through the same step: refused, exit status 2, the reason printed
    r = hz(
        "danger", "step", "-c", PLANT, str(did), "accept", "--by", "赵工", "--as", "plant_manager", dsn=db_dsn
    )
    assert r.returncode == 2 and "by the city bureau" in r.stderr and "Traceback" not in r.stderr, r
    assert _steps(db_dsn, example_plant, did) == before
    # the bureau's close over the link is the record's acceptance
    _receive(
        db_dsn, example_plant, _notice(example_plant, 9, "closed", t + timedelta(minutes=4), did, "city")
    )
    assert _steps(db_dsn, example_plant, did)[-1] == ("accept", "bureau")


def test_allowed_at_the_plant_when_not_supervised(db_dsn: str, example_plant: Plant) -> None:
    t = datetime.now(UTC) - timedelta(minutes=10)
    did = _applied(db_dsn, example_plant, t)
    r = hz(
        "danger", "step", "-c", PLANT, str(did), "accept", "--by", "赵工", "--as", "plant_manager", dsn=db_dsn
    )
    assert r.returncode == 0, r
    assert _steps(db_dsn, example_plant, did)[-1] == ("accept", "plant_manager")


def test_allowed_once_the_bureau_closed_its_supervision(db_dsn: str, example_plant: Plant) -> None:
    """A supervision closed (e.g. of an earlier application) leaves the record to the plant again."""
    t = datetime.now(UTC) - timedelta(minutes=10)
    did = _applied(db_dsn, example_plant, t)
    with connect(db_dsn, autocommit=True) as c:
        repo.add_step(
            c, example_plant, did, Step(Action.REJECT, "赵工", "plant_manager", t + timedelta(minutes=1), "x")
        )
    _receive(db_dsn, example_plant, _notice(example_plant, 4, "opened", t + timedelta(minutes=2), did))
    _receive(
        db_dsn, example_plant, _notice(example_plant, 4, "closed", t + timedelta(minutes=3), did)
    )  # a note
    with connect(db_dsn, autocommit=True) as c:
        repo.add_step(
            c, example_plant, did, Step(Action.APPLY, "张建国", "plant_manager", t + timedelta(minutes=4))
        )
        d = repo.add_step(
            c, example_plant, did, Step(Action.ACCEPT, "赵工", "plant_manager", t + timedelta(minutes=5))
        )
    assert d.state.value == "accepted"


async def test_the_api_refuses_the_acceptance_of_a_supervised_record(
    api: Api,  # noqa: F811 - the fixture imported above
    db_dsn: str,
    example_plant: Plant,
) -> None:
    t = T0 - timedelta(hours=1)
    did = _applied(db_dsn, example_plant, t)
    _receive(
        db_dsn, example_plant, _notice(example_plant, 11, "opened", t + timedelta(minutes=1), did, "province")
    )
    for who in ("pm", "county"):  # neither the plant manager nor a bureau token at the plant closes it
        st, body = await api.call("POST", f"/dangers/{did}/steps", who, json={"action": "accept"})
        assert st == 409 and any("by the province bureau" in r for r in body["reasons"]), (who, body)
    st, d = await api.call("GET", f"/dangers/{did}", "pm")
    assert d["state"] == "applied"
