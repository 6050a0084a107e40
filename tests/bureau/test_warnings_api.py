"""The bureau's warnings and figures through its API: scoped, handled step by step, refusals named."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.api import BureauApi, build_routes
from hazmon.bureau.warning_repository import tick
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant import Plant
from hazmon.plant.bureau_standards import WarningSettings
from tests.bureau.helpers import T0
from tests.bureau.test_api import _users
from tests.bureau.test_api import api as seeded  # noqa: F401 - the same seeded region (a fixture)

NOW = T0 + timedelta(hours=2)  # both enterprises silent since T0, liuhe's sensor alarming repeatedly


@pytest.fixture
async def bureau(db_dsn: str, seeded: str) -> AsyncIterator[tuple[str, list[datetime]]]:  # noqa: F811
    with psycopg.connect(db_dsn) as c:
        changes = tick(c, WarningSettings(), NOW)
    assert {ch.action for ch in changes} == {"raise"} and len(changes) >= 3, changes
    clock = [NOW + timedelta(minutes=5)]
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(build_routes(BureauApi(db_dsn, _users(), clock=lambda: clock[0])))
    port = await http.start()
    yield f"http://127.0.0.1:{port}/api/v1", clock
    await http.stop()


async def _call(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, base + path, json=body, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json()


async def test_each_region_sees_its_own_warnings(bureau: tuple[str, list[datetime]]) -> None:
    base, _ = bureau
    st, city = await _call(base, "GET", "/warnings", "tok-city")
    assert st == 200
    by_ent = {w["enterprise_id"] for w in city["warnings"]}
    assert by_ent == {"liuhe-chem", "jn-chem"}
    kinds = {(w["enterprise_id"], w["kind"]) for w in city["warnings"]}
    assert {("jn-chem", "silent"), ("liuhe-chem", "silent"), ("liuhe-chem", "repeated")} <= kinds, kinds
    st, liuhe = await _call(base, "GET", "/warnings", "tok-liuhe")
    assert {w["enterprise_id"] for w in liuhe["warnings"]} == {"liuhe-chem"}
    theirs = next(w["id"] for w in city["warnings"] if w["enterprise_id"] == "jn-chem")
    st, body = await _call(base, "GET", f"/warnings/{theirs}", "tok-liuhe")
    assert st == 404, body  # another county's warning does not exist for this county
    st, body = await _call(base, "POST", f"/warnings/{theirs}/steps", "tok-jiangning", {"step": "verify"})
    assert st == 200 and body["state"] == "verified", body


async def test_a_warning_is_handled_step_by_step_with_who_and_when(
    bureau: tuple[str, list[datetime]],
) -> None:
    base, clock = bureau
    st, city = await _call(base, "GET", "/warnings?enterprise=liuhe-chem", "tok-city")
    wid = next(w["id"] for w in city["warnings"] if w["kind"] == "silent")
    st, body = await _call(base, "POST", f"/warnings/{wid}/steps", "tok-liuhe", {"step": "verify"})
    assert st == 403 and "viewer" in body["error"], body  # a viewer reads, an officer acts
    st, body = await _call(base, "POST", f"/warnings/{wid}/steps", "tok-city", {"step": "close"})
    assert st == 409 and "pushed" in body["error"], body  # 消警 comes after verify and feedback
    st, body = await _call(
        base, "POST", f"/warnings/{wid}/steps", "tok-city", {"step": "verify", "comment": "电话核实"}
    )
    assert (st, body["state"]) == (200, "verified"), body
    clock[0] += timedelta(minutes=10)
    st, body = await _call(
        base, "POST", f"/warnings/{wid}/steps", "tok-city", {"step": "feedback", "comment": "停电"}
    )
    assert (st, body["state"]) == (200, "fed_back"), body
    # the enterprise is still silent: closing now would only raise the same warning again
    st, body = await _call(base, "POST", f"/warnings/{wid}/steps", "tok-city", {"step": "close"})
    assert st == 409, body
    st, w = await _call(base, "GET", f"/warnings/{wid}", "tok-province")
    assert [(e["event"], e["actor"]) for e in w["events"]] == [
        ("raised", "bureau"),
        ("verify", "city"),
        ("feedback", "city"),
    ], w["events"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("GET", "/warnings?open=maybe", None, 400, "query.open"),
        ("GET", "/warnings/abc", None, 400, "path.id"),
        ("GET", "/warnings/999999", None, 404, "no warning 999999"),
        ("POST", "/warnings/1/steps", {"step": "approve"}, 400, "body.step"),
        ("GET", "/figures?day=yesterday", None, 400, "query.day"),
        ("GET", "/figures", None, 400, "query.day"),
    ],
)
async def test_bad_requests_name_the_field(
    bureau: tuple[str, list[datetime]], method: str, path: str, body: Any, status: int, words: str
) -> None:
    st, got = await _call(bureau[0], method, path, "tok-city", body)
    assert st == status and words in got["error"], got


async def test_daily_figures_rank_the_region(
    bureau: tuple[str, list[datetime]], example_plant: Plant
) -> None:
    base, _ = bureau
    day = T0.date().isoformat()
    st, figs = await _call(base, "GET", f"/figures?day={day}", "tok-city")
    assert st == 200, figs
    assert {e["enterprise_id"] for e in figs["enterprises"]} == {"liuhe-chem", "jn-chem"}
    risks = [e["risk"] for e in figs["enterprises"]]
    assert risks == sorted(risks, reverse=True)
    st, figs = await _call(base, "GET", f"/figures?day={day}", "tok-liuhe")
    assert {e["enterprise_id"] for e in figs["enterprises"]} == {"liuhe-chem"}
