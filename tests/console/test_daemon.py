"""The daemon mounts the console when its config lists users: sign-in and pages on its own HTTP server."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import aiohttp

from hazmon.console import ConsoleSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from tests.console.server import PASSWORDS, users
from tests.daemon.helpers import daemon_config, mqtt_only


async def test_the_daemon_serves_the_console(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    cfg = replace(daemon_config(tmp_path, db_dsn, plant), console=ConsoleSettings(users=users()))
    # unsafe=True: aiohttp's jar keeps no cookies of an IP address (127.0.0.1) otherwise
    async with (
        Daemon(cfg, plant) as d,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
    ):
        base = f"http://127.0.0.1:{d.http_port}/console"
        async with http.get(base + "/alarms", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/console/signin")
        async with http.get(base + "/signin") as r:
            token = re.search(r'name="csrf" value="([^"]+)"', await r.text())
            assert r.status == 200 and token is not None
        form = {"csrf": token.group(1), "username": "张建国", "password": PASSWORDS["张建国"]}
        async with http.post(base + "/signin", data=form, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/console/alarms"
        for page in ("alarms", "dangers", "duty", "assessments"):
            async with http.get(f"{base}/{page}") as r:
                assert r.status == 200, (page, await r.text())
                assert "张建国" in await r.text()
        async with http.get(f"http://127.0.0.1:{d.http_port}/metrics") as r:
            assert 'hazmon_console_counters{counter="signins"} 1.0' in await r.text()


async def test_no_users_no_console(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    async with (
        Daemon(daemon_config(tmp_path, db_dsn, plant), plant) as d,
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{d.http_port}/console/signin") as r,
    ):
        assert r.status == 404
