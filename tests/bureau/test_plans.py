"""Emergency plans reported by the enterprises: one row per activation, drills kept apart, by region."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.api import BureauApi, build_routes
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant import Plant
from hazmon.plant.link import PlanEvent
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.bureau.test_api import _users


def _plan(event: str, activation: int, level: str, minutes: int, *, drill: bool = False) -> PlanEvent:
    return PlanEvent(
        plan_id="toxic-release",
        plan_name="液氯泄漏专项预案",
        activation=activation,
        event=event,  # type: ignore[arg-type]
        level=level,  # type: ignore[arg-type]
        drill=drill,
        at=T0 + timedelta(minutes=minutes),
        actor="alarm:hx-chem:7" if not drill else "张建国",
    )


@pytest.fixture
async def api(db_dsn: str, example_plant: Plant) -> AsyncIterator[str]:
    ing = Ingestor(CITY, IngestLimits())
    liuhe = Enterprise(example_plant, "liuhe-chem", "320116")
    jiangning = Enterprise(example_plant, "jn-chem", "320115")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for ent in (liuhe, jiangning):
            ing.handle(conn, *ent.wire(ent.envelope(ent.registration())), T0)
        for p in (
            _plan("started", 1, "III", 1),
            _plan("level", 1, "II", 3),
            _plan("started", 2, "IV", 5, drill=True),
        ):
            ing.handle(conn, *liuhe.wire(liuhe.envelope(p)), T0)
        replay = liuhe.envelope(_plan("ended", 2, "IV", 20, drill=True))
        for _ in range(2):  # the same message twice: stored once
            ing.handle(conn, *liuhe.wire(replay), T0)
        ing.handle(conn, *jiangning.wire(jiangning.envelope(_plan("started", 1, "I", 2))), T0)
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(build_routes(BureauApi(db_dsn, _users())))
    port = await http.start()
    yield f"http://127.0.0.1:{port}/api/v1"
    await http.stop()


async def _get(base: str, path: str, token: str) -> Any:
    async with (
        aiohttp.ClientSession() as s,
        s.get(base + path, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        assert r.status == 200, await r.text()
        return await r.json()


async def test_plans_by_activation_level_and_drill(api: str) -> None:
    got = await _get(api, "/plans?open=false", "tok-city")
    rows = {(p["enterprise_id"], p["activation"]): p for p in got["plans"]}
    assert set(rows) == {("liuhe-chem", 1), ("liuhe-chem", 2), ("jn-chem", 1)}
    real = rows[("liuhe-chem", 1)]
    assert (real["level"], real["drill"], real["ended_at"], real["started_by"]) == (
        "II",
        False,
        None,
        "alarm:hx-chem:7",
    )
    drill = rows[("liuhe-chem", 2)]
    assert drill["drill"] is True and drill["ended_at"] is not None
    open_real = await _get(api, "/plans?drill=false", "tok-city")
    assert {(p["enterprise_id"], p["activation"]) for p in open_real["plans"]} == {
        ("liuhe-chem", 1),
        ("jn-chem", 1),
    }
    # a county sees its own enterprises' plans only
    county = await _get(api, "/plans?open=false", "tok-jiangning")
    assert {p["enterprise_id"] for p in county["plans"]} == {"jn-chem"}
