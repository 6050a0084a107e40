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
