"""An overdue rectification becomes one alarm of the existing alarm service (real database, time simulated)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hazmon.alarms import AlarmService
from hazmon.plant import Plant
from hazmon.store import connect
from hazmon.supervision import repository as repo
from hazmon.supervision.dangers import Action, DangerLevel, FoundBy, Report, Step
from hazmon.supervision.findings import to_us
from tests.alarms.helpers import SECRET, T0, assess_all, gas, rows, webhook_settings
from tests.alarms.receivers import HttpReceiver
from tests.supervision.test_cli import hz
from tests.supervision.test_dangers import full_plan

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def service(example_plant: Plant, db_dsn: str) -> AsyncIterator[AlarmService]:
    hook = HttpReceiver(secret=SECRET)
    await hook.start()
    assess_all(example_plant, db_dsn)
    svc = AlarmService(example_plant, webhook_settings(f"http://127.0.0.1:{hook.port}/hook"), db_dsn)
    await svc.start()
    yield svc
    await svc.close()
    await hook.stop()


async def test_overdue_by_one_day_raises_one_alarm_and_acceptance_clears_it(
    service: AlarmService, example_plant: Plant, db_dsn: str
) -> None:
    t = datetime(2026, 6, 1, 9, 0, tzinfo=SH)
    with connect(db_dsn) as c:
        # supervision began after these simulated days: no duty or commitment alarms in this test
        c.execute(
            "INSERT INTO supervision_start VALUES (%s, %s)",
            (example_plant.enterprise.id, t + timedelta(days=400)),
        )
        r = Report(
            "V-101 rupture disc isolated",
            DangerLevel.MAJOR,
            FoundBy.INSPECTION,
            "cl2-tankfarm",
            criteria=(15,),
        )
        d = repo.add_danger(c, example_plant, Step(Action.REPORT, "王强", "operator", t, "", r.to_json()))
        plan = full_plan(deadline=datetime(2026, 6, 30).date())
        repo.add_step(
            c,
            example_plant,
            d.id,
            Step(Action.PLAN, "张建国", "plant_manager", t + timedelta(hours=1), "", plan.to_json()),
        )
        repo.add_step(c, example_plant, d.id, Step(Action.START, "王强", "operator", t + timedelta(hours=2)))
        c.commit()

    async def sweep(now: datetime) -> list[str]:
        s = repo.sweep_once(db_dsn, example_plant, now)
        await service.handle(s.findings, to_us(now))
        repo.mark_told(db_dsn, example_plant, s)
        return [f"{f.sensor}:{f.condition.value}:{f.active}" for f in s.findings]

    one_day_late = datetime(2026, 7, 2, 0, 0, tzinfo=SH)
    assert await sweep(datetime(2026, 6, 30, 23, 59, tzinfo=SH)) == []
    assert await sweep(one_day_late) == [f"hidden-danger/{d.id}:rectification_overdue:True"]
    for minutes in (1, 2, 60):
        assert await sweep(one_day_late + timedelta(minutes=minutes)) == []
    alarms = rows(
        db_dsn, "SELECT hazard_source, sensor, condition, level, tier_name, state, activations FROM alarm"
    )
    # a major hidden danger is a first-level finding: grade 2 (assessed) -> yellow in the tier table
    assert alarms == [
        (
            "cl2-tankfarm",
            f"hidden-danger/{d.id}",
            "rectification_overdue",
            "first",
            "yellow",
            "active_unacked",
            1,
        )
    ]
    raised = rows(db_dsn, "SELECT count(*) FROM alarm_event WHERE kind = 'raised'")
    assert raised == [(1,)]
    with connect(db_dsn) as c:
        repo.add_step(
            c,
            example_plant,
            d.id,
            Step(Action.APPLY, "张建国", "plant_manager", one_day_late + timedelta(hours=3)),
        )
        repo.add_step(
            c,
            example_plant,
            d.id,
            Step(Action.ACCEPT, "赵工", "plant_manager", one_day_late + timedelta(hours=4)),
        )
        c.commit()
    assert await sweep(one_day_late + timedelta(hours=5)) == [
        f"hidden-danger/{d.id}:rectification_overdue:False"
    ]
    assert await sweep(one_day_late + timedelta(hours=6)) == []
    assert rows(db_dsn, "SELECT active, activations FROM alarm") == [(False, 1)]


async def test_an_alarm_becomes_a_hidden_danger_in_one_step_linked_both_ways(
    service: AlarmService, example_plant: Plant, db_dsn: str
) -> None:
    await service.handle([gas(T0, tag="AT-101")], T0)
    ((alarm_id,),) = rows(db_dsn, "SELECT id FROM alarm WHERE sensor = 'AT-101'")
    r = hz(
        "danger",
        "add",
        "-c",
        "examples/plant.yaml",
        "--by",
        "王强",
        "--alarm",
        str(alarm_id),
        "--level",
        "general",
        dsn=db_dsn,
    )
    assert r.returncode == 0, r.stderr
    got = rows(db_dsn, "SELECT hazard_source, found_by, alarm_id, title FROM hidden_danger")
    assert got[0][:3] == ("cl2-tankfarm", "alarm", alarm_id) and got[0][3]
    shown = hz("danger", "list", "-c", "examples/plant.yaml", "--alarm", str(alarm_id), "--json", dsn=db_dsn)
    listed = json.loads(shown.stdout)
    assert [(d["sensor"], d["alarm_id"]) for d in listed] == [("AT-101", alarm_id)]
    r = hz(
        "danger",
        "add",
        "-c",
        "examples/plant.yaml",
        "--by",
        "王强",
        "--alarm",
        "999999",
        "--level",
        "general",
        dsn=db_dsn,
    )
    assert r.returncode == 2 and "--alarm: no alarm 999999" in r.stderr
