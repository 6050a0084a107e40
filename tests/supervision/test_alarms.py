"""An overdue rectification becomes one alarm of the existing alarm service (real database, time simulated)."""

from __future__ import annotations

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
from tests.alarms.helpers import SECRET, assess_all, rows, webhook_settings
from tests.alarms.receivers import HttpReceiver
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
    t = datetime(2026, 6, 1, 9, 0, tzinfo=SH)  # supervision itself starts "now" (later): no duty alarms
    with connect(db_dsn) as c:
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
