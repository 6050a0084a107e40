"""The supervision HTTP API on a real aiohttp server and a real PostgreSQL, with the alarm tokens."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from hazmon.alarms.api import authenticate
from hazmon.alarms.auth import ApiToken, TokenBook, digest
from hazmon.plant import Plant
from hazmon.store import connect
from hazmon.supervision.api import PREFIX, routes
from testkit import free_port

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in the plant's time zone (Asia/Shanghai)
TOKENS = {
    "op": ApiToken("王强", "operator", digest("op-token")),
    "pm": ApiToken("张建国", "plant_manager", digest("pm-token")),
    "county": ApiToken("县应急局 刘", "bureau", digest("county-token"), "county", "320116"),
    "other": ApiToken("邻县 陈", "bureau", digest("other-token"), "county", "320117"),
}
PLAN = {
    "goal": "replace the rupture disc",
    "measures": "isolate, replace, leak test",
    "funds": "120000",
    "organisation": "equipment department",
    "persons": ["李明"],
    "deadline": "2026-06-30",
    "safety_measures": "tank at 20 % level",
    "contingency_plan": "chlorine absorption unit on standby",
}


@dataclass
class _Caller:
    """What `authenticate` reads of the alarm service: its counters and the plant's region."""

    region: str
    counters: Counter[str] = field(default_factory=Counter)


@dataclass
class Api:
    url: str
    session: aiohttp.ClientSession
    clock: list[datetime]
    refused: Counter[str]

    async def call(self, method: str, path: str, who: str | None = "op", **kw: Any) -> tuple[int, Any]:
        headers = dict(kw.pop("headers", {}))
        if who:
            headers["Authorization"] = f"Bearer {who}-token"
        async with self.session.request(method, self.url + PREFIX + path, headers=headers, **kw) as r:
            body = await r.read()
            ctype = r.headers.get("Content-Type", "")
            return r.status, (await r.json() if ctype.startswith("application/json") else body)


@pytest.fixture
async def api(db_dsn: str, example_plant: Plant) -> AsyncIterator[Api]:
    clock = [T0]
    svc = _Caller(example_plant.enterprise.region.code)
    book = TokenBook(TOKENS.values())
    app = web.Application()
    app.add_routes(
        routes(example_plant, lambda: connect(db_dsn), lambda: clock[0], lambda r: authenticate(svc, book, r))
    )  # type: ignore[arg-type]
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as s:
        yield Api(f"http://127.0.0.1:{port}", s, clock, svc.counters)
    await runner.cleanup()


def _rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql).fetchall()


async def test_a_major_hidden_danger_from_report_to_acceptance(api: Api, db_dsn: str) -> None:
    st, d = await api.call(
        "POST",
        "/dangers",
        json={"title": "爆破片未投用", "level": "major", "hazard_source": "cl2-tankfarm", "criteria": [15]},
    )
    assert st == 201, d
    i = d["id"]
    assert (d["state"], d["steps"][0]["by"], d["steps"][0]["role"]) == ("found", "王强", "operator")

    # an operator may not sign the plan; the plant manager may (actor = the token's name)
    st, body = await api.call("POST", f"/dangers/{i}/plan", json=PLAN)
    assert st == 409 and any("operator" in r for r in body["reasons"]), body
    api.clock[0] = T0 + timedelta(hours=1)
    st, d = await api.call("POST", f"/dangers/{i}/plan", "pm", json=PLAN)
    assert (st, d["state"], d["deadline"]) == (200, "plan", "2026-06-30"), d
    st, d = await api.call("POST", f"/dangers/{i}/steps", json={"action": "start"})
    assert (st, d["state"]) == (200, "rectifying")

    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    st, att = await api.call(
        "POST", f"/dangers/{i}/attachments?filename=disc.png", data=png, headers={"Content-Type": "image/png"}
    )
    assert st == 201 and att["size"] == len(png), att
    st, got = await api.call("GET", f"/attachments/{att['id']}")
    assert (st, got) == (200, png)

    st, d = await api.call("POST", f"/dangers/{i}/steps", "pm", json={"action": "apply", "comment": "done"})
    assert d["state"] == "applied"
    # the county bureau of the plant accepts (销号); the one who applied may not
    st, body = await api.call("POST", f"/dangers/{i}/steps", "pm", json={"action": "accept"})
    assert st == 409, body
    st, d = await api.call("POST", f"/dangers/{i}/steps", "county", json={"action": "accept"})
    assert (st, d["state"]) == (200, "accepted"), d
    assert [(s["action"], s["by"]) for s in d["steps"]] == [
        ("report", "王强"),
        ("plan", "张建国"),
        ("start", "王强"),
        ("attach", "王强"),
        ("apply", "张建国"),
        ("accept", "县应急局 刘"),
    ]
    # persisted: a fresh read shows the same history and the attachment
    st, shown = await api.call("GET", f"/dangers/{i}", "county")
    assert shown["steps"] == d["steps"] and [a["filename"] for a in shown["attachments"]] == ["disc.png"]
    assert _rows(db_dsn, f"SELECT count(*) FROM hidden_danger_step WHERE danger_id = {i}") == [(6,)]


async def test_refusals_name_place_and_reason_and_change_nothing(api: Api, db_dsn: str) -> None:
    before = _rows(db_dsn, "SELECT count(*) FROM hidden_danger")
    cases: list[tuple[str, str, str | None, dict[str, Any], int, str]] = [
        ("POST", "/dangers", None, {"json": {}}, 401, "missing bearer token"),
        ("POST", "/dangers", "op", {"json": {"level": "major"}}, 400, "body.title"),
        ("POST", "/dangers", "op", {"json": {"title": "x", "level": "huge"}}, 400, "body.level"),
        (
            "POST",
            "/dangers",
            "op",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "body",
        ),
        ("POST", "/dangers", "county", {"json": {"title": "x", "level": "general"}}, 403, "role bureau"),
        ("GET", "/dangers", "other", {}, 403, "outside this bureau's region"),
        ("GET", "/dangers?limit=0", "op", {}, 400, "query.limit"),
        ("GET", "/dangers?limit=1&limit=2", "op", {}, 400, "given twice"),
        ("GET", "/dangers/abc", "op", {}, 400, "path.id"),
        ("GET", "/dangers/999999", "op", {}, 404, "no hidden danger 999999"),
        ("POST", "/dangers/999999/steps", "op", {"json": {"action": "start"}}, 404, "no hidden danger"),
        (
            "POST",
            "/dangers",
            "op",
            {"json": {"title": "x", "level": "general", "hazard_source": "nope"}},
            409,
            "nope",
        ),
    ]
    for method, path, who, kw, status, words in cases:
        st, body = await api.call(method, path, who, **kw)
        assert st == status and words in str(body), (method, path, who, st, body)
    assert _rows(db_dsn, "SELECT count(*) FROM hidden_danger") == before
    assert api.refused["refused_api_calls"] >= 2  # 401 and 403 are counted where the alarm API counts them


async def test_attachments_refused_before_they_are_stored(api: Api, db_dsn: str) -> None:
    st, d = await api.call("POST", "/dangers", json={"title": "valve leaks", "level": "general"})
    i = d["id"]
    big = b"%PDF-" + b"\0" * (10 * 1024 * 1024)
    st, body = await api.call(
        "POST",
        f"/dangers/{i}/attachments?filename=big.pdf",
        data=big,
        headers={"Content-Type": "application/pdf"},
    )
    assert st == 413 and "over the limit" in body["error"], body
    st, body = await api.call(
        "POST",
        f"/dangers/{i}/attachments?filename=a.exe",
        data=b"MZ\0\0",
        headers={"Content-Type": "application/x-msdownload"},
    )
    assert st == 415 and "not accepted" in body["error"], body
    st, body = await api.call(
        "POST",
        f"/dangers/{i}/attachments?filename=a.png",
        data=b"GIF89a",
        headers={"Content-Type": "image/png"},
    )
    assert st == 422 and "first bytes" in body["error"], body
    assert _rows(db_dsn, "SELECT count(*) FROM hidden_danger_attachment") == [(0,)]


async def test_list_pages_and_filters(api: Api) -> None:
    for n in range(7):
        level = "major" if n % 3 == 0 else "general"
        body: dict[str, Any] = {"title": f"finding {n}", "level": level, "hazard_source": "lpg-spheres"}
        if level == "major":
            body["criteria"] = [1]
        st, _ = await api.call("POST", "/dangers", json=body)
        assert st == 201
    st, page = await api.call("GET", "/dangers?level=general&limit=2&offset=2")
    assert (page["count"], len(page["dangers"])) == (4, 2)
    assert all(d["level"] == "general" for d in page["dangers"])
    st, page = await api.call("GET", "/dangers?state=plan,rectifying", "county")
    assert (st, page["count"]) == (200, 0)


async def test_duty_checks_and_the_daily_commitment(api: Api, example_plant: Plant) -> None:
    st, body = await api.call(
        "POST",
        "/duty",
        json={"hazard_source": "cl2-tankfarm", "duty_role": "operational", "person": "王强", "what": "巡检"},
    )
    assert st == 201, body
    st, duty = await api.call("GET", "/duty?hazard_source=cl2-tankfarm", "county")
    assert st == 200
    mine = [d for d in duty["duties"] if d["role"] == "operational"]
    assert mine[0]["status"] == "done" and mine[0]["last_check"] is not None, mine
    assert duty["checks"][0]["recorded_by"] == "王强"

    sources = {hs.id: "running" for hs in example_plant.hazard_sources}
    st, body = await api.call("POST", "/commitments", "op", json={"by": "张建国", "sources": sources})
    assert st == 409 and "plant_manager" in body["error"], body
    st, body = await api.call("POST", "/commitments", "pm", json={"by": "张建国", "sources": sources})
    assert st == 201, body
    st, c = await api.call("GET", "/commitments", "county")
    assert (c["today"], c["filed_today"]) == ("2026-03-02", True)
