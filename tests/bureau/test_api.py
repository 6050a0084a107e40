"""The bureau API on a real PostgreSQL: region scopes, filters and paging, errors that name the field."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.api import ApiUser, BureauApi, build_routes
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant import Plant
from hazmon.plant.regions import Scope
from tests.bureau.helpers import CITY, T0, Enterprise

USERS = {
    "tok-city": ApiUser("city", "officer", "", Scope("320100", "city")),
    "tok-liuhe": ApiUser("liuhe", "viewer", "", Scope("320116", "county")),
    "tok-jiangning": ApiUser("jiangning", "officer", "", Scope("320115", "county")),
    "tok-province": ApiUser("province", "viewer", "", Scope("320000", "province")),
}


def _users() -> list[ApiUser]:
    return [
        ApiUser(u.name, u.role, hashlib.sha256(t.encode()).hexdigest(), u.scope) for t, u in USERS.items()
    ]


@pytest.fixture
async def api(db_dsn: str, example_plant: Plant) -> AsyncIterator[str]:
    ing = Ingestor(CITY, IngestLimits())
    liuhe = Enterprise(example_plant, "liuhe-chem", "320116")
    jiangning = Enterprise(example_plant, "jn-chem", "320115")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for ent in (liuhe, jiangning):
            ing.handle(conn, *ent.wire(ent.envelope(ent.registration())), T0)
        for i in range(1, 8):  # liuhe: 7 alarms, the odd ones orange; jiangning: 1 red
            tier = {"tier": 3, "tier_name": "orange"} if i % 2 else {}
            ing.handle(conn, *liuhe.wire(liuhe.envelope(liuhe.alarm(i, i, **tier))), T0)
        ing.handle(
            conn,
            *liuhe.wire(
                liuhe.envelope(liuhe.alarm(1, 20, "cleared", state="normal", tier=3, tier_name="orange"))
            ),
            T0,
        )
        ing.handle(conn, *jiangning.wire(jiangning.envelope(jiangning.alarm(1, 1))), T0)
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(build_routes(BureauApi(db_dsn, _users())))
    port = await http.start()
    yield f"http://127.0.0.1:{port}/api/v1"
    await http.stop()


async def _get(base: str, path: str, token: str = "tok-city") -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(base + path, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json()


async def test_each_token_sees_its_region_only(api: str) -> None:
    ids = {t: [e["id"] for e in (await _get(api, "/enterprises", t))[1]["enterprises"]] for t in USERS}
    assert ids == {
        "tok-city": ["jn-chem", "liuhe-chem"],
        "tok-liuhe": ["liuhe-chem"],
        "tok-jiangning": ["jn-chem"],
        "tok-province": ["jn-chem", "liuhe-chem"],
    }
    assert (await _get(api, "/alarms", "tok-jiangning"))[1]["count"] == 1
    assert (await _get(api, "/alarms/liuhe-chem:1", "tok-jiangning"))[0] == 404
    assert (await _get(api, "/alarms/liuhe-chem:1", "tok-liuhe"))[0] == 200
    assert (await _get(api, "/alarms?enterprise=liuhe-chem", "tok-jiangning"))[1]["alarms"] == []
    status, e = await _get(api, "/enterprises/liuhe-chem", "tok-liuhe")
    assert status == 200 and e["open_alarms"] == 7 and e["region_code"] == "320116"
    grades = {s["id"]: s["grade"] for s in e["hazard_sources"]}
    assert grades["cl2-tankfarm"] in ("I", "II", "III", "IV")
    assert all(s["sensors"] for s in e["hazard_sources"])


async def test_filters_and_paging(api: str) -> None:
    status, body = await _get(api, "/alarms?enterprise=liuhe-chem&tier=orange")
    assert status == 200 and body["count"] == 4
    assert {a["tier_name"] for a in body["alarms"]} == {"orange"}
    assert (await _get(api, "/alarms?enterprise=liuhe-chem&tier=4,3"))[1]["count"] == 7
    # the enterprise numbers tiers as hazmon.plant.standards.Tier (red = 4): red means red
    status, body = await _get(api, "/alarms?tier=red")
    assert {(a["tier"], a["tier_name"]) for a in body["alarms"]} == {(4, "red")}, body
    # cleared by the enterprise, not closed by the bureau: still open
    assert (await _get(api, "/alarms?open=true&enterprise=liuhe-chem"))[1]["count"] == 7
    pages = [(await _get(api, f"/alarms?limit=3&offset={o}"))[1] for o in (0, 3, 6)]
    seen = [a["id"] for p in pages for a in p["alarms"]]
    assert len(seen) == 8 == len(set(seen)) and all(p["count"] == 8 for p in pages)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/alarms?limit=0", "query.limit:"),
        ("/alarms?limit=ten", "query.limit:"),
        ("/alarms?tier=pink", "query.tier:"),
        ("/alarms?tier=5", "query.tier:"),
        ("/alarms?open=maybe", "query.open:"),
        ("/alarms?colour=red", "query.colour:"),
        ("/alarms?limit=1&limit=2", "query.limit: given twice"),
        ("/alarms/no-colon", "path.id:"),
        ("/enterprises?x=1", "query.x: unknown parameter"),
    ],
)
async def test_bad_requests_name_the_field(api: str, path: str, error: str) -> None:
    status, body = await _get(api, path)
    assert status == 400 and body["error"].startswith(error), body


async def test_tokens_and_roles(api: str) -> None:
    assert (await _get(api, "/enterprises", "nope"))[0] == 401
    async with aiohttp.ClientSession() as s:
        async with s.get(api + "/enterprises") as r:
            assert r.status == 401
        url = api + "/alarms/liuhe-chem:1/steps"  # cleared by the enterprise
        async with s.post(
            url, headers={"Authorization": "Bearer tok-province"}, json={"step": "received"}
        ) as r:
            assert r.status == 403
        async with s.post(url, headers={"Authorization": "Bearer tok-city"}, data=b"{not json") as r:
            assert r.status == 400 and (await r.json())["error"].startswith("body")
        async with s.post(
            url, headers={"Authorization": "Bearer tok-city"}, json={"step": "closed", "x": 1}
        ) as r:
            assert r.status == 400 and "body.x" in (await r.json())["error"]
        async with s.post(url, headers={"Authorization": "Bearer tok-city"}, json={"step": "closed"}) as r:
            assert r.status == 200
            body = await r.json()
    assert body["bureau_step"] == "closed" and body["open"] is False  # cleared and closed: no longer open
    assert [(e["origin"], e["event"], e["actor"]) for e in body["events"]][-1] == (
        "bureau",
        "bureau_closed",
        "city",
    )
