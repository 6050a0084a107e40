"""挂牌督办 through the bureau API on a real HTTP server and PostgreSQL: scoped, refusals naming the field."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.api import ApiUser, BureauApi, build_routes
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant import Plant
from hazmon.plant.link import SupervisionProgress
from hazmon.plant.regions import Scope
from tests.bureau.helpers import CITY, Enterprise
from tests.bureau.test_supervision_repository import danger

NOW = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
USERS = {
    "tok-liuhe": ("liuhe-officer", "officer", Scope("320116", "county")),
    "tok-liuhe-viewer": ("liuhe-viewer", "viewer", Scope("320116", "county")),
    "tok-jiangning": ("jiangning-officer", "officer", Scope("320115", "county")),
    "tok-city": ("city-officer", "officer", Scope("320100", "city")),
}


@pytest.fixture
async def bureau(db_dsn: str, example_plant: Plant) -> AsyncIterator[tuple[str, str, Enterprise, Ingestor]]:
    ing = Ingestor(CITY, IngestLimits())
    liuhe = Enterprise(example_plant, "liuhe-chem", "320116")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        ing.handle(conn, *liuhe.wire(liuhe.envelope(liuhe.registration())), NOW)
        d = danger(liuhe, 1, "report", "found", NOW - timedelta(days=1), alarm_id="liuhe-chem:3")
        ing.handle(conn, *liuhe.wire(liuhe.envelope(d)), NOW)
    users = [ApiUser(n, r, hashlib.sha256(t.encode()).hexdigest(), s) for t, (n, r, s) in USERS.items()]  # type: ignore[arg-type]
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(build_routes(BureauApi(db_dsn, users, clock=lambda: NOW)))
    port = await http.start()
    yield f"http://127.0.0.1:{port}/api/v1", db_dsn, liuhe, ing
    await http.stop()


async def call(base: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, base + path, json=body, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json()


def count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


OPEN = {
    "danger_id": "liuhe-chem:7",
    "deadline": "2027-03-31",
    "bureau_person": "陈科长",
    "comment": "挂牌督办",
}


async def test_another_region_or_a_viewer_cannot_supervise_and_nothing_is_written(
    bureau: tuple[str, str, Enterprise, Ingestor],
) -> None:
    base, dsn, _, _ = bureau
    st, body = await call(base, "POST", "/supervisions", "tok-jiangning", OPEN)
    assert st == 404, body
    assert "danger_id" in body["error"]
    assert "region" in body["error"]
    st, body = await call(base, "POST", "/supervisions", "tok-liuhe-viewer", OPEN)
    assert st == 403, body
    st, body = await call(base, "GET", "/hidden-dangers", "tok-jiangning")
    assert (st, body["count"]) == (200, 0)
    assert (count(dsn, "bureau_supervision"), count(dsn, "bureau_downlink")) == (0, 0)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**OPEN, "deadline": "2027-02-28"}, 400, "deadline"),
        ({k: v for k, v in OPEN.items() if k != "deadline"}, 400, "body.deadline"),
        ({**OPEN, "deadline": "soon"}, 400, "body.deadline"),
        ({**OPEN, "bureau_person": ""}, 400, "body.bureau_person"),
        ({**OPEN, "danger_id": "liuhe-chem"}, 400, "body.danger_id"),
        ({**OPEN, "colour": "red"}, 400, "body.colour"),
    ],
)
async def test_bad_openings_are_4xx_naming_the_field(
    bureau: tuple[str, str, Enterprise, Ingestor], body: dict[str, Any], status: int, field: str
) -> None:
    base, dsn, _, _ = bureau
    st, got = await call(base, "POST", "/supervisions", "tok-liuhe", body)
    assert st == status, got
    assert got["error"].startswith(field) or f"{field}:" in got["error"], got
    assert count(dsn, "bureau_supervision") == 0


async def test_opened_progressed_accepted_closed_through_the_api(
    bureau: tuple[str, str, Enterprise, Ingestor],
) -> None:
    base, dsn, liuhe, ing = bureau
    st, sv = await call(base, "POST", "/supervisions", "tok-liuhe", OPEN)
    assert st == 201, sv
    sid = sv["id"]
    assert (sv["level"], sv["state"], sv["bureau_person"], sv["deadline"]) == (
        "county",
        "open",
        "陈科长",
        "2027-03-31",
    )
    st, again = await call(base, "POST", "/supervisions", "tok-city", OPEN)
    assert st == 409, again  # one open supervision per hidden danger
    st, body = await call(base, "POST", f"/supervisions/{sid}/steps", "tok-liuhe", {"step": "approve"})
    assert st == 400, body
    assert body["error"].startswith("body.step"), body
    st, body = await call(base, "POST", f"/supervisions/{sid}/steps", "tok-liuhe", {"step": "close"})
    assert st == 409, body  # out of order: 销号 comes after acceptance
    assert body["error"].startswith("step:"), body
    st, body = await call(
        base, "POST", f"/supervisions/{sid}/steps", "tok-jiangning", {"step": "request_progress"}
    )
    assert st == 404, body
    st, body = await call(
        base, "POST", f"/supervisions/{sid}/steps", "tok-liuhe", {"step": "request_progress"}
    )
    assert (st, body["state"]) == (200, "progress_requested"), body
    prog = SupervisionProgress(
        supervision_id=sid,
        progress_id=1,
        danger_id="liuhe-chem:7",
        at=NOW,
        actor="张建国",
        comment="已完成",
        done=True,
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert ing.handle(conn, *liuhe.wire(liuhe.envelope(prog)), NOW).status == "stored"
    for step, state in (("accept", "accepted"), ("close", "closed")):
        st, body = await call(
            base, "POST", f"/supervisions/{sid}/steps", "tok-liuhe", {"step": step, "comment": step}
        )
        assert (st, body["state"]) == (200, state), body
    st, got = await call(base, "GET", f"/supervisions/{sid}", "tok-city")
    assert st == 200
    assert [(e["step"], e["actor"]) for e in got["events"]] == [
        ("opened", "liuhe-officer"),
        ("progress_requested", "liuhe-officer"),
        ("progress", "张建国"),
        ("accepted", "liuhe-officer"),
        ("closed", "liuhe-officer"),
    ]
    assert got["hidden_danger"]["steps"][0]["step"] == "report"
    st, listed = await call(base, "GET", "/supervisions?open=true", "tok-liuhe")
    assert (st, listed["count"]) == (200, 0)
    st, listed = await call(base, "GET", "/supervisions", "tok-jiangning")
    assert (st, listed["count"]) == (200, 0)
    st, got = await call(base, "GET", f"/supervisions/{sid}", "tok-jiangning")
    assert st == 404
    assert count(dsn, "bureau_downlink") == 4
    st, hd = await call(base, "GET", "/hidden-dangers?level=major", "tok-liuhe")
    assert (st, hd["hidden_dangers"][0]["danger_id"]) == (200, "liuhe-chem:7")


async def test_an_enterprise_may_be_supervised_as_a_whole(
    bureau: tuple[str, str, Enterprise, Ingestor],
) -> None:
    base, _, _, _ = bureau
    body = {"enterprise_id": "liuhe-chem", "deadline": str(date(2027, 4, 30)), "bureau_person": "陈科长"}
    st, sv = await call(base, "POST", "/supervisions", "tok-city", body)
    assert st == 201, sv
    assert (sv["level"], sv["danger_id"], sv["enterprise_id"]) == ("city", None, "liuhe-chem")
    st, none = await call(
        base, "POST", "/supervisions", "tok-city", {k: v for k, v in body.items() if k != "enterprise_id"}
    )
    assert st == 400, none
    assert none["error"].startswith("danger_id"), none
