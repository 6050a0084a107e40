"""`POST /api/weather/cap` over real HTTP and a real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hazmon.plant import Plant
from hazmon.store import connect
from hazmon.weather.cap import MAX_BYTES
from hazmon.weather.http import routes
from hazmon.weather.ingest import Tally
from tests.weather.test_cap import LAUGHS, XXE, sample
from tests.weather.test_state import ORANGE, YELLOW

NOON = datetime(2026, 8, 4, 12, tzinfo=timezone(timedelta(hours=8)))
TOKEN = "Bearer weather-test"


@pytest.fixture
async def client(example_plant: Plant, db_dsn: str) -> AsyncIterator[tuple[TestClient[Any, Any], Tally]]:
    @contextmanager
    def conn() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        with connect(db_dsn, autocommit=True) as c:
            yield c

    tally = Tally()
    app = web.Application()
    app.add_routes(
        routes(example_plant, conn, lambda: NOON, lambda r: r.headers.get("Authorization") == TOKEN, tally)
    )
    c = TestClient(TestServer(app, host="127.0.0.1"))
    await c.start_server()
    yield c, tally
    await c.close()


async def _post(c: TestClient[Any, Any], body: bytes, token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    r = await c.post("/api/weather/cap", data=body, headers={"Authorization": token})
    return r.status, await r.json()


async def test_post_stores_once_flags_and_refuses(client: tuple[TestClient[Any, Any], Tally]) -> None:
    c, tally = client
    assert await _post(c, sample("lightning_orange_update.xml")) == (
        201, {"stored": True, "identifier": ORANGE, "flag": "unknown_reference"},
    )  # fmt: skip
    assert await _post(c, sample("lightning_yellow.xml")) == (
        201, {"stored": True, "identifier": YELLOW, "flag": ""},
    )  # fmt: skip
    status, body = await _post(c, sample("lightning_yellow.xml"))
    assert (status, body["reason"]) == (409, "duplicate")
    for doc in (XXE, LAUGHS):
        status, body = await _post(c, doc)
        assert (status, body["reason"], body["stored"]) == (422, "dtd", False)
    status, body = await _post(c, b"<alert")
    assert (status, body["reason"]) == (422, "malformed")
    status, body = await _post(c, b" " * (MAX_BYTES + 10))
    assert (status, body["reason"]) == (413, "oversize")
    status, body = await _post(c, sample("lightning_cancel.xml"), token="Bearer wrong")
    assert status == 401
    assert tally.stored == 2
    assert dict(tally.by_reason) == {
        "unknown_reference": 1,
        "duplicate": 1,
        "dtd": 2,
        "malformed": 1,
        "oversize": 1,
    }
