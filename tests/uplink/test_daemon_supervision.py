"""挂牌督办 end to end: an alarm becomes a major hidden danger at the plant, the county supervises it.

Both daemons real, on PostgreSQL (one database each) and a private Mosquitto as the bureau's
broker. At the plant an alarm is turned into a major hidden danger (its plan signed, its
rectification started) through the supervision API; the record goes up step by step. The county's
officer opens a supervision (挂牌督办) through the bureau's API; it comes down into the record's
history. The plant files its progress (done); it goes up. The officer accepts on site and closes
(销号). In the end both sides show the same history of the record and of the supervision.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import psycopg

from hazmon.bureau.config import RegionSettings, TokenSettings
from hazmon.bureau.warning_config import Warnings
from hazmon.bureau_daemon import BureauDaemon
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.uplink import UplinkSettings
from testkit.mosquitto import PrivateMosquitto
from tests.alarms.helpers import bearer, gas, webhook_settings
from tests.bureau.test_daemon import bureau_config
from tests.daemon.helpers import daemon_config, mqtt_only, wait_for

COUNTY_TOKEN = "tok-liuhe-officer"


def _q(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql, args).fetchall()


async def test_alarm_to_major_danger_supervised_by_the_county_to_closure_same_history_on_both_sides(
    example_plant: Plant,
    db_dsn: str,
    make_db: Any,
    topic_prefix: str,
    private_mosquitto: PrivateMosquitto,
    tmp_path: Path,
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    e = plant.enterprise.id
    cfg = replace(
        daemon_config(tmp_path, db_dsn, plant),
        alarms=webhook_settings("http://127.0.0.1:9/unused", repeat_s=0),
        uplink=UplinkSettings(
            enabled=True,
            url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
            heartbeat_interval_s=1.0,
            poll_interval_s=0.05,
        ),
    )
    bureau_dsn = make_db()
    bcfg = bureau_config(bureau_dsn, private_mosquitto.port)
    county = TokenSettings(
        name="liuhe-officer", role="officer", region=RegionSettings("320116", "county"),
        sha256=hashlib.sha256(COUNTY_TOKEN.encode()).hexdigest(),
    )  # fmt: skip
    bcfg = replace(bcfg, tokens=(*bcfg.tokens, county), warnings=Warnings(tick_interval_s=3600))
    bureau = BureauDaemon(bcfg)
    bureau.downlink.poll_interval_s = 0.05
    await bureau.start()
    try:
        async with Daemon(cfg, plant) as d:
            assert d.w is not None and d.w.uplink is not None and d.w.uplink.downlink is not None
            assert d.w.alarms is not None
            await wait_for(d.w.uplink.downlink.subscribed.is_set, "the plant's downlink subscription")
            await wait_for(
                lambda: bool(_q(bureau_dsn, "SELECT 1 FROM bureau_enterprise WHERE enterprise_id = %s", e)),
                "the plant's registration at the bureau",
            )
            now_us = int(datetime.now(UTC).timestamp() * 1e6)
            await d.w.alarms.handle([gas(now_us, tag="AT-101")], now_us)  # type: ignore[attr-defined]
            ((alarm_id,),) = _q(db_dsn, "SELECT id FROM alarm WHERE sensor = 'AT-101'")

            plant_api = f"http://127.0.0.1:{d.http_port}/api/v1/supervision"
            bureau_api = f"http://127.0.0.1:{bureau.http_port}/api/v1"
            boss = {"Authorization": f"Bearer {bearer('boss')}"}
            op = {"Authorization": f"Bearer {bearer('op1')}"}
            officer = {"Authorization": f"Bearer {COUNTY_TOKEN}"}
            other_county = {"Authorization": "Bearer tok-jiangning"}
            today = datetime.now(ZoneInfo(plant.enterprise.timezone)).date()
            async with aiohttp.ClientSession() as http:

                async def call(
                    method: str, url: str, who: dict[str, str], body: Any = None
                ) -> tuple[int, Any]:
                    async with http.request(method, url, json=body, headers=who) as r:
                        return r.status, await r.json()

                # the alarm becomes a major hidden danger; plan (五落实) signed; rectification started
                st, dg = await call("POST", f"{plant_api}/dangers", op, {
                    "title": "液氯泄漏报警：V-101 爆破片未投用", "level": "major", "criteria": [15],
                    "found_by": "alarm", "alarm_id": alarm_id, "hazard_source": "cl2-tankfarm", "sensor": "AT-101",
                })  # fmt: skip
                assert st == 201, dg
                local = dg["id"]
                danger_id = f"{e}:{local}"
                st, body = await call("POST", f"{plant_api}/dangers/{local}/plan", boss, {
                    "goal": "投用爆破片", "measures": "隔离、更换、试漏", "funds": "85000", "organisation": "设备部",
                    "persons": ["李明"], "deadline": str(today + timedelta(days=60)),
                    "safety_measures": "降液位至20%", "contingency_plan": "吸收装置备用",
                })  # fmt: skip
                assert st in (200, 201), body
                st, body = await call("POST", f"{plant_api}/dangers/{local}/steps", op, {"action": "start"})
                assert st in (200, 201), body

                async def at_bureau(state: str) -> bool:
                    st, body = await call("GET", f"{bureau_api}/hidden-dangers?level=major", officer)
                    got = [x for x in body.get("hidden_dangers", []) if x["danger_id"] == danger_id]
                    return st == 200 and bool(got) and got[0]["state"] == state

                await _until(lambda: at_bureau("rectifying"), "the hidden danger, rectifying, at the bureau")

                # another county may not supervise it; nothing is written
                deadline = str(today + timedelta(days=30))
                opening = {
                    "danger_id": danger_id,
                    "deadline": deadline,
                    "bureau_person": "陈科长",
                    "comment": "挂牌",
                }
                st, body = await call("POST", f"{bureau_api}/supervisions", other_county, opening)
                assert st == 404, body
                assert _q(bureau_dsn, "SELECT count(*) FROM bureau_supervision") == [(0,)]

                # the county opens 挂牌督办
                st, sv = await call("POST", f"{bureau_api}/supervisions", officer, opening)
                assert st == 201, sv
                sid = sv["id"]
                assert (sv["level"], sv["state"]) == ("county", "open")

                async def at_plant(action: str) -> dict[str, Any] | None:
                    st, body = await call("GET", f"{plant_api}/supervisions", boss)
                    got = [s for s in body.get("supervisions", []) if s["supervision_id"] == sid]
                    return got[0] if st == 200 and got and got[0]["action"] == action else None

                await _until(lambda: at_plant("opened"), "the supervision at the plant")

                # the plant reports: done, asks for acceptance on site
                st, body = await call("POST", f"{plant_api}/supervisions/{sid}/progress", boss,
                                      {"comment": "爆破片已更换并试漏合格", "done": True})  # fmt: skip
                assert st == 201, body

                async def progress_at_bureau() -> bool:
                    st, body = await call("GET", f"{bureau_api}/supervisions/{sid}", officer)
                    return st == 200 and any(ev["step"] == "progress" for ev in body["events"])

                await _until(progress_at_bureau, "the plant's progress at the bureau")
                for step in ("accept", "close"):
                    st, body = await call("POST", f"{bureau_api}/supervisions/{sid}/steps", officer,
                                          {"step": step, "comment": f"{step} 现场核查"})  # fmt: skip
                    assert st == 200, body
                assert body["state"] == "closed"
                closed = await _until(lambda: at_plant("closed"), "销号 at the plant")
                assert closed is not None

                # the supervision's history, the same on both sides
                bureau_steps = [(ev["step"], ev["actor"]) for ev in body["events"]]
                assert bureau_steps == [
                    ("opened", "liuhe-officer"), ("progress", "boss"),
                    ("accepted", "liuhe-officer"), ("closed", "liuhe-officer"),
                ]  # fmt: skip
                plant_steps = [(s["action"], s["actor"]) for s in closed["steps"]]
                assert plant_steps == [(s, a) for s, a in bureau_steps if s != "progress"]
                (prog,) = closed["progress"]
                bureau_prog = next(ev for ev in body["events"] if ev["step"] == "progress")
                assert (prog["actor"], prog["comment"]) == (bureau_prog["actor"], bureau_prog["comment"])

                # the hidden danger's history, the same on both sides (the bureau's notes included)
                st, rec = await call("GET", f"{plant_api}/dangers/{local}", boss)
                assert st == 200, rec
                plant_hist = [(s["seq"], s["action"], s["by"]) for s in rec["steps"]]
                assert [a for _, a, _ in plant_hist] == [
                    "report",
                    "plan",
                    "start",
                    "note",
                    "note",
                    "note",
                    "note",
                ]

                async def same_history() -> bool:
                    st, got = await call("GET", f"{bureau_api}/supervisions/{sid}", officer)
                    hist = [(s["seq"], s["step"], s["actor"]) for s in got["hidden_danger"]["steps"]]
                    return st == 200 and hist == plant_hist

                await _until(same_history, "the record's whole history at the bureau")
    finally:
        await bureau.stop()


async def _until(cond: Any, what: str, limit_s: float = 60.0) -> Any:
    """Await an async condition until truthy (a deadline against hanging, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while True:
        got = await cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
