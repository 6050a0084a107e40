"""Weather warnings in the running daemon: POST, a watched directory and a polled URL (a real aiohttp
server serving CAP files), the advisory alarms and duties while in force, and their end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from hazmon.alarms import AlarmSettings
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.weather.settings import WeatherSettings
from tests.alarms.helpers import api_tokens, bearer, rows
from tests.conftest import EXAMPLE_PLANT, free_port
from tests.daemon.helpers import daemon_config, mqtt_only, wait_for
from tests.weather.test_cap import XXE, sample

CST = timezone(timedelta(hours=8))
NOON = datetime(2026, 8, 4, 12, tzinfo=CST)


@dataclass
class CapServer:
    """Serves one CAP document at /cap.xml with an ETag; 304 when the client has it; 404 when none."""

    body: bytes = b""
    etag: str = ""
    gets: int = 0
    not_modified: int = 0
    seen_headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.gets += 1
        self.seen_headers.append(dict(request.headers))
        if not self.body:
            return web.Response(status=404)
        if request.headers.get("If-None-Match") == self.etag:
            self.not_modified += 1
            return web.Response(status=304)
        return web.Response(body=self.body, content_type="application/xml", headers={"ETag": self.etag})


@pytest.fixture
async def cap_server() -> AsyncIterator[CapServer]:
    s = CapServer()
    app = web.Application()
    app.router.add_get("/cap.xml", s.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    s.port = free_port()
    await web.TCPSite(runner, "127.0.0.1", s.port).start()
    yield s
    await runner.cleanup()


def _alarms(dsn: str) -> list[tuple[Any, ...]]:
    return rows(
        dsn,
        """SELECT hazard_source, sensor, level, value, active FROM alarm
           WHERE condition = 'weather_warning' ORDER BY hazard_source""",
    )


async def test_post_inbox_and_url_warnings_raise_advisories_and_duties_until_cancelled(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path, cap_server: CapServer
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    inbox = tmp_path / "inbox"
    settings = WeatherSettings(
        inbox=str(inbox), scan_every_s=0.1, url=f"http://127.0.0.1:{cap_server.port}/cap.xml",
        poll_every_s=0.1, every_s=0.1,
    )  # fmt: skip
    cfg = replace(
        daemon_config(tmp_path, db_dsn, plant), alarms=AlarmSettings(tokens=api_tokens()), weather=settings
    )
    now = [NOON]
    d = Daemon(cfg, plant)
    async with d:
        assert d.weather is not None
        d.weather.clock = lambda: now[0]
        url = f"http://127.0.0.1:{d.http_port}/api/weather/cap"
        # nothing served yet: each poll fails, counted, and the daemon goes on
        await wait_for(lambda: d.weather is not None and d.weather.poll.failures >= 2, "failed polls counted")
        async with aiohttp.ClientSession() as http:
            for token, status in ((None, 401), ("luhe", 401), ("op1", 201), ("op1", 409)):
                headers = {"Authorization": f"Bearer {bearer(token)}"} if token else {}
                async with http.post(url, data=sample("lightning_yellow.xml"), headers=headers) as r:
                    assert r.status == status, token
            async with http.post(url, data=XXE, headers={"Authorization": f"Bearer {bearer('op1')}"}) as r:
                assert (r.status, (await r.json())["reason"]) == (422, "dtd")
            async with http.get(f"http://127.0.0.1:{d.http_port}/healthz") as r:
                assert r.status == 200
        await wait_for(lambda: len(_alarms(db_dsn)) == 3, "a yellow lightning advisory at each hazard source")
        assert {(a[1], a[2], a[3], a[4]) for a in _alarms(db_dsn)} == {
            ("weather/lightning", "predictive", 2.0, True)
        }
        await wait_for(
            lambda: rows(db_dsn, "SELECT count(*) FROM weather_duty WHERE ended_at IS NULL") == [(9,)],
            "the linked order's three duties at each hazard source, to confirm",
        )
        # the upgrade to orange, served at the URL
        now[0] = NOON + timedelta(hours=3)
        cap_server.body, cap_server.etag = sample("lightning_orange_update.xml"), '"orange-1"'
        await wait_for(
            lambda: ("lpg-spheres", "weather/lightning", "first", 3.0, True) in _alarms(db_dsn), "orange"
        )
        await wait_for(
            lambda: cap_server.not_modified >= 2, "the URL asked with If-None-Match and not fetched again"
        )
        assert d.weather.tally.by_reason["duplicate"] == 1  # the second POST
        # the cancellation, dropped into the watched directory
        now[0] = NOON + timedelta(hours=7)
        (inbox / "cancel.xml").write_bytes(sample("lightning_cancel.xml"))
        await wait_for(lambda: all(not a[4] for a in _alarms(db_dsn)), "every advisory cleared")
        await wait_for(
            lambda: rows(db_dsn, "SELECT count(*) FROM weather_duty WHERE ended_at IS NULL") == [(0,)],
            "the duties ended",
        )
    assert (inbox / "done" / "cancel.xml").exists()
    assert rows(db_dsn, "SELECT DISTINCT end_reason FROM weather_duty") == [("cancelled",)]
    assert rows(db_dsn, "SELECT count(*) FROM weather_duty WHERE duty = 'lightning_protection_check'") == [
        (2,)
    ]
    assert rows(db_dsn, "SELECT count(*) FROM weather_warning") == [(3,)]
    raised = "SELECT count(*) FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id WHERE a.condition = 'weather_warning'"
    assert rows(db_dsn, raised + " AND e.kind = 'raised'") == [(3,)]


def test_the_weather_section_is_checked_with_its_lines(tmp_path: Path) -> None:
    from hazmon.config import load_config
    from hazmon.plant.config import ConfigError

    f = tmp_path / "hazmon.yaml"
    f.write_text(
        f"plant: {EXAMPLE_PLANT}\nweather:\n  inbox: cap-in\n  url: ftp://x/cap.xml\n  every_s: 0\n  colour: red\n"
    )
    with pytest.raises(ConfigError) as e:
        load_config(f, create_files=False)
    assert [str(p).removeprefix(f"{f}:") for p in e.value.problems] == [
        "4: weather.url: 'ftp://x/cap.xml' is not an http:// or https:// URL",
        "5: weather.every_s: must be > 0, got 0",
        "6: weather.colour: unknown key 'colour' (allowed: every_s, inbox, poll_every_s, scan_every_s, timeout_s, url)",
    ]
    f.write_text(f"plant: {EXAMPLE_PLANT}\nweather: {{inbox: cap-in}}\n")
    cfg, _ = load_config(f, create_files=False)
    assert cfg.weather.inbox == str(tmp_path / "cap-in")  # relative to the config file
