"""`hazmon simulate --cap FILE --cap-at SECONDS`: a CAP file played to a real HTTP route and database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from aiohttp import web

from hazmon.plant import Plant
from hazmon.simulators.cap_player import play, retime
from hazmon.store import connect
from hazmon.weather.cap import Alert, parse
from hazmon.weather.http import routes
from tests.alarms.helpers import rows
from tests.conftest import EXAMPLE_PLANT, free_port

SAMPLE = Path(__file__).resolve().parent.parent / "weather" / "data" / "lightning_yellow.xml"
TOKEN = "sim-cap-test-token"


def test_retime_moves_every_time_and_renames_the_warning() -> None:
    now = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    a = parse(retime(SAMPLE.read_bytes(), now), "played")
    assert isinstance(a, Alert)
    assert a.sent == now
    assert a.expires == now + timedelta(hours=12)  # 10:15 -> 22:15 in the sample
    assert a.identifier == f"32011641600000_20260804101500-sim{int(now.timestamp())}"
    assert retime(b"<alert/>", now) == b"<alert/>"  # nothing to move: the daemon judges it


@pytest.fixture
async def route(example_plant: Plant, db_dsn: str) -> AsyncIterator[str]:
    @contextmanager
    def conn() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        with connect(db_dsn, autocommit=True) as c:
            yield c

    app = web.Application()
    app.add_routes(
        routes(
            example_plant,
            conn,
            lambda: datetime.now(UTC),
            lambda r: r.headers.get("Authorization") == f"Bearer {TOKEN}",
        )
    )
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/api/weather/cap"
    await runner.cleanup()


async def test_play_posts_the_warning_as_if_issued_now(route: str, db_dsn: str) -> None:
    status, body = await play(SAMPLE.read_bytes(), 0.0, route, lambda: TOKEN, lambda: datetime.now(UTC))
    assert status == 201, body
    got = rows(db_dsn, "SELECT kind, colour, expires > now() FROM weather_warning")
    assert got == [("lightning", 2, True)]
    status, _ = await play(SAMPLE.read_bytes(), 0.0, route, lambda: "wrong", lambda: datetime.now(UTC))
    assert status == 401


async def test_the_simulate_command_plays_it_beside_a_scenario(route: str, db_dsn: str) -> None:
    argv = [
        "simulate", "-c", str(EXAMPLE_PLANT), "--scenario", "normal", "--no-opcua", "--no-mqtt",
        "--duration", "4s", "--cap", str(SAMPLE), "--cap-at", "1", "--cap-url", route, "--cap-token", TOKEN,
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hazmon", *argv, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(120):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "weather warning played" in err.decode()
    assert rows(db_dsn, "SELECT count(*) FROM weather_warning WHERE position('-sim' in identifier) > 0") == [
        (1,)
    ]
