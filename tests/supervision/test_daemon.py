"""The daemon hands supervision findings to its alarm service (real database and broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.store import connect
from hazmon.supervision import repository as repo
from hazmon.supervision.dangers import Action, DangerLevel, FoundBy, Report, Step
from tests.alarms.helpers import rows
from tests.daemon.helpers import daemon_config, mqtt_only, wait_for


async def test_an_overdue_rectification_reaches_the_alarms_once(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    now = datetime.now(UTC)
    with connect(db_dsn) as c:
        r = Report("LT-101 reads 5 cm high", DangerLevel.GENERAL, FoundBy.INSPECTION, "cl2-tankfarm")
        d = repo.add_danger(
            c, plant, Step(Action.REPORT, "王强", "operator", now - timedelta(days=5), "", r.to_json())
        )
        late = (now - timedelta(days=3)).astimezone(ZoneInfo("Asia/Shanghai")).date()
        repo.add_step(
            c,
            plant,
            d.id,
            Step(
                Action.START, "王强", "operator", now - timedelta(days=5), "", {"deadline": late.isoformat()}
            ),
        )
        c.commit()
    daemon = Daemon(daemon_config(tmp_path, db_dsn, plant), plant)
    daemon.supervision_every_s = 0.2
    sql = "SELECT condition, sensor, level, active FROM alarm WHERE condition = 'rectification_overdue'"
    async with daemon:
        await wait_for(lambda: bool(rows(db_dsn, sql)), "the overdue rectification became an alarm")
        await wait_for(
            lambda: bool(rows(db_dsn, "SELECT 1 FROM supervision_told WHERE active")), "the told state stored"
        )
        told_at = rows(db_dsn, "SELECT updated_at FROM supervision_told")
        await wait_for(
            lambda: rows(db_dsn, "SELECT updated_at FROM supervision_told") != told_at, "a few more sweeps"
        )
    assert rows(db_dsn, sql) == [("rectification_overdue", f"hidden-danger/{d.id}", "fault", True)]
    assert rows(db_dsn, "SELECT count(*) FROM alarm_event WHERE kind = 'raised'") == [(1,)]


async def test_nothing_is_marked_told_before_the_alarms_recorded_it(
    example_plant: Plant, db_dsn: str
) -> None:
    """A crash between handing supervision findings over and their recording must not lose them: the
    told state (what the alarms already know) is stored only after the alarm service recorded them."""
    import asyncio

    from hazmon.collector import Metrics
    from hazmon.upkeep import SupervisionFindings
    from tests.daemon.helpers import wait_for

    now = datetime.now(UTC)
    with connect(db_dsn) as c:
        r = Report("LT-101 reads 5 cm high", DangerLevel.GENERAL, FoundBy.INSPECTION, "cl2-tankfarm")
        d = repo.add_danger(
            c,
            example_plant,
            Step(Action.REPORT, "王强", "operator", now - timedelta(days=5), "", r.to_json()),
        )
        late = (now - timedelta(days=3)).astimezone(ZoneInfo("Asia/Shanghai")).date()
        repo.add_step(
            c,
            example_plant,
            d.id,
            Step(
                Action.START, "王强", "operator", now - timedelta(days=5), "", {"deadline": late.isoformat()}
            ),
        )
        c.commit()
    handed: list[int] = []

    async def never_recorded(findings: object) -> None:  # the alarm service is down, or the process dies
        handed.append(1)
        await asyncio.Event().wait()

    sweeps = asyncio.create_task(
        SupervisionFindings(db_dsn, example_plant, Metrics(), never_recorded, 0.05).run()
    )
    try:
        await wait_for(lambda: bool(handed), "the overdue rectification handed to the alarms")
        await asyncio.sleep(0.3)
        assert rows(db_dsn, "SELECT count(*) FROM supervision_told") == [(0,)]
    finally:
        sweeps.cancel()

    async def recorded(findings: object) -> None:
        handed.append(2)

    sweeps = asyncio.create_task(SupervisionFindings(db_dsn, example_plant, Metrics(), recorded, 0.05).run())
    try:  # the same changes again (nothing was told), and once recorded they are stored as told
        await wait_for(
            lambda: bool(rows(db_dsn, "SELECT 1 FROM supervision_told WHERE active")), "told stored"
        )
    finally:
        sweeps.cancel()
    assert 2 in handed
