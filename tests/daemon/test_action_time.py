"""The audit time of an operator action is the time the request arrived (issue 12).

Before the fix the daemon's alarm service stamped an acknowledgement with its last
cycle's time (the latest tick or batch of findings), up to a second before the
request. Times here are compared only with the clock read just before and just
after each request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import psycopg

from hazmon.alarms import AlarmSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from tests.alarms.helpers import api_tokens, bearer, gas
from tests.daemon.helpers import daemon_config, mqtt_only


def _now_us() -> int:
    return time.time_ns() // 1000


async def test_ack_and_comment_are_recorded_at_the_time_the_request_arrived(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    config = replace(daemon_config(tmp_path, db_dsn, plant), alarms=AlarmSettings(tokens=api_tokens()))
    async with Daemon(config, plant) as d:
        assert d.w is not None and d.w.alarms is not None
        await d.w.alarms.handle([gas(_now_us())], _now_us())
        api = f"http://127.0.0.1:{d.http_port}/api/v1/alarms"
        headers = {"Authorization": f"Bearer {bearer('op1')}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            async with http.get(api) as r:
                alarm_id = (await r.json())["alarms"][0]["id"]
            for action, body in (("comment", {"comment": "on my way"}), ("ack", {"comment": "valve closed"})):
                await asyncio.sleep(0.3)  # the service's last cycle is now before the request
                before = _now_us()
                async with http.post(f"{api}/{alarm_id}/{action}", json=body) as r:
                    assert r.status == 200, await r.text()
                    answer = await r.json()
                after = _now_us()
                with psycopg.connect(db_dsn) as c:
                    row = c.execute(
                        "SELECT at_us FROM alarm_event WHERE alarm_id = %s AND kind = %s ORDER BY id DESC",
                        (alarm_id, "acked" if action == "ack" else "comment"),
                    ).fetchone()
                assert row is not None
                assert before <= int(row[0]) <= after, (action, before, row[0], after)
        assert before <= answer["acked_at_us"] <= after
