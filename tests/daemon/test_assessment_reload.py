"""An assessment added while the daemon runs changes the limits its rules judge by, without a restart."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import aiohttp

from hazmon.daemon import Daemon
from hazmon.plant import AssessmentRecord, Condition, Grade, Limits, Plant, Reading
from hazmon.store import add_assessment, connect
from tests.daemon.helpers import daemon_config, mqtt_only, wait_for

LIMITS = {Condition.H, Condition.HH, Condition.GAS_FIRST, Condition.GAS_SECOND}


async def test_limit_overrides_added_while_running_reach_the_rules(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    cfg = daemon_config(tmp_path, db_dsn, plant)
    cfg = replace(cfg, database=replace(cfg.database, assessments_refresh_s=1.0))
    src = next(hs for hs in plant.hazard_sources if any(s.tag == "AT-103" for s in hs.sensors))
    async with Daemon(cfg, plant) as d:
        assert d.w is not None and d.w.rules is not None
        rules = d.w.rules

        clock = [time.time_ns() // 1000]

        def limit_alarms(tag: str, value: float) -> list[str]:
            t = clock[0]
            clock[0] += 20_000_000  # source time only moves forward
            found = rules.process([Reading(tag, t, value)], [], t)
            found += rules.process([Reading(tag, t + 10_000_000, value)], [], t + 10_000_000)  # past on-delay
            return sorted({f.sensor or "" for f in found if f.condition in LIMITS and f.active})

        # 3 ppm of chlorine is over the plant file's (GB/T 50493) setpoints
        assert limit_alarms("AT-102", 3.0) == ["AT-102"]
        with connect(db_dsn) as c:
            add_assessment(
                c,
                plant.enterprise.id,
                AssessmentRecord(
                    src.id,
                    date.today(),
                    "test assessor",
                    120.0,
                    Grade.ONE,
                    date.today(),
                    overrides={"AT-103": Limits(hh=8.0, h=5.0, on_delay_s=3.0, off_delay_s=30.0)},
                ),
            )
            c.commit()
        await wait_for(lambda: d.overrides_reloads >= 1, "the daemon re-read the assessment")
        assert limit_alarms("AT-103", 3.0) == [], "the assessment's limits (h 5 ppm) now apply to AT-103"
        assert limit_alarms("AT-103", 6.0) == ["AT-103"]
        assert limit_alarms("AT-104", 3.0) == ["AT-104"], "sensors without an override keep the plant file's"
        await asyncio.sleep(1.5)
        assert d.overrides_reloads == 1, "unchanged records are not reloaded again"
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{d.http_port}/healthz") as resp,
        ):
            assert resp.status == 200
