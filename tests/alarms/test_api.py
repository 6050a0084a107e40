"""The alarm HTTP API over real HTTP: every route from the OpenAPI description refuses
missing, wrong and out-of-region tokens; roles; actions; audit trail via the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hazmon.alarms import AlarmService
from hazmon.alarms.api import openapi
from hazmon.plant import Plant
from tests.alarms.helpers import T0, S, assess_all, bearer, gas, webhook_settings
from tests.alarms.receivers import HttpReceiver


@pytest.fixture
async def api(example_plant: Plant, db_dsn: str) -> AsyncIterator[tuple[TestClient[Any, Any], AlarmService]]:
    hook = HttpReceiver()
    await hook.start()
    assess_all(example_plant, db_dsn)
    now = [T0]
    svc = AlarmService(
        example_plant,
        webhook_settings(f"http://127.0.0.1:{hook.port}/h", repeat_s=0),
        db_dsn,
        clock=lambda: now[0],
    )
    await svc.start()
    await svc.handle([gas(T0)], T0)
    app = web.Application()
    app.add_routes(svc.routes())
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client, svc
    await client.close()
    await svc.close()
    await hook.stop()


def _routes() -> list[tuple[str, str]]:
    return [(m.upper(), p) for p, ops in openapi()["paths"].items() for m in ops]


def _url(path: str, alarm_id: int) -> str:
    return path.replace("{id}", str(alarm_id))


def test_openapi_lists_every_action() -> None:
    paths = {p for _, p in _routes()}
    for action in ("ack", "shelve", "unshelve", "comment", "out-of-service", "in-service"):
        assert f"/api/v1/alarms/{{id}}/{action}" in paths
    for step in ("received", "verified", "feedback", "closed"):
        assert f"/api/v1/alarms/{{id}}/bureau/{step}" in paths
    assert len(_routes()) == 13


async def test_every_route_refuses_missing_wrong_and_out_of_region_tokens(
    api: tuple[TestClient[Any, Any], AlarmService],
) -> None:
    client, svc = api
    alarm_id = svc.alarms()[0].id
    refused_before = svc.metrics()["refused_api_calls"]
    checked = 0
    for method, path in _routes():
        url = _url(path, alarm_id)
        for headers, want in (
            ({}, 401),
            ({"Authorization": "Bearer "}, 401),
            ({"Authorization": "Basic b3AxOnB3"}, 401),
            ({"Authorization": "Bearer not-a-token"}, 401),
            ({"Authorization": f"Bearer {bearer('pukou')}"}, 403),  # a county of the same city
            ({"Authorization": f"Bearer {bearer('zhejiang')}"}, 403),  # another province
        ):
            r = await client.request(method, url, headers=headers, json={"comment": "x"})
            assert r.status == want, (method, url, headers, await r.text())
            checked += 1
    assert checked == 13 * 6
    assert svc.metrics()["refused_api_calls"] - refused_before == checked
    # nothing was recorded by any refused call
    events = await svc.events(alarm_id)
    assert [e["kind"] for e in events if e["kind"] != "notified"] == ["raised"]


async def test_every_get_route_answers_each_role_in_region(
    api: tuple[TestClient[Any, Any], AlarmService],
) -> None:
    client, svc = api
    alarm_id = svc.alarms()[0].id
    for name in ("op1", "boss", "luhe", "nanjing", "jiangsu"):
        for method, path in _routes():
            if method != "GET":
                continue
            r = await client.get(_url(path, alarm_id), headers={"Authorization": f"Bearer {bearer(name)}"})
            assert r.status == 200, (name, path)


# (user, action path, body, expected status)
ROLE_TABLE = [
    ("luhe", "ack", {}, 403),  # a bureau does not acknowledge for the plant
    ("op1", "out-of-service", {}, 403),
    ("op1", "bureau/received", {}, 403),
    ("boss", "bureau/received", {}, 403),
    ("luhe", "bureau/feedback", {}, 403),
    ("op1", "shelve", {"duration_s": 600}, 400),
    ("op1", "shelve", {"duration_s": 10 * 24 * 3600, "reason": "too long"}, 400),
    ("op1", "comment", {"comment": ""}, 409),
    ("op1", "unshelve", {}, 409),
    ("luhe", "bureau/verified", {}, 409),  # received comes first
]


@pytest.mark.parametrize(("user", "action", "body", "want"), ROLE_TABLE)
async def test_roles_and_bad_requests(
    api: tuple[TestClient[Any, Any], AlarmService], user: str, action: str, body: dict[str, Any], want: int
) -> None:
    client, svc = api
    alarm_id = svc.alarms()[0].id
    r = await client.post(
        f"/api/v1/alarms/{alarm_id}/{action}", headers={"Authorization": f"Bearer {bearer(user)}"}, json=body
    )
    assert r.status == want, await r.text()


async def test_full_handling_through_the_api(api: tuple[TestClient[Any, Any], AlarmService]) -> None:
    client, _ = api
    h = {name: {"Authorization": f"Bearer {bearer(name)}"} for name in ("op1", "boss", "luhe", "nanjing")}
    r = await client.get("/api/v1/alarms?state=active_unacked&tier=red", headers=h["op1"])
    body = await r.json()
    assert [(a["sensor"], a["condition"], a["tier"]) for a in body["alarms"]] == [
        ("AT-101", "gas_second", "red")
    ]
    aid = body["alarms"][0]["id"]
    steps = [
        ("luhe", "bureau/received", {}),
        ("op1", "shelve", {"duration_s": 600, "reason": "gas detector calibration"}),
        ("op1", "unshelve", {"comment": "calibration done"}),
        ("op1", "ack", {"comment": "on site"}),
        ("nanjing", "comment", {"comment": "city duty officer informed"}),
        ("luhe", "bureau/verified", {}),
        ("boss", "bureau/feedback", {"comment": "flange repaired"}),
        ("luhe", "bureau/closed", {"comment": "消警"}),
        ("boss", "out-of-service", {"comment": "detector replaced"}),
        ("boss", "in-service", {}),
    ]
    for user, action, payload in steps:
        r = await client.post(f"/api/v1/alarms/{aid}/{action}", headers=h[user], json=payload)
        assert r.status == 200, (action, await r.text())
    r = await client.get(f"/api/v1/alarms/{aid}", headers=h["luhe"])
    one = await r.json()
    assert (one["state"], one["bureau_step"], one["acked_by"]) == ("active_acked", "closed", "op1")
    trail = [(e["kind"], e["actor"], e["comment"]) for e in one["events"] if e["kind"] != "notified"]
    assert trail == [
        ("raised", "system", ""),
        ("bureau_received", "luhe", ""),
        ("shelved", "op1", ""),
        ("unshelved", "op1", "calibration done"),
        ("acked", "op1", "on site"),
        ("comment", "nanjing", "city duty officer informed"),
        ("bureau_verified", "luhe", ""),
        ("bureau_feedback", "boss", "flange repaired"),
        ("bureau_closed", "luhe", "消警"),
        ("out_of_service", "boss", "detector replaced"),
        ("in_service", "boss", ""),
    ]
    shelved = next(e for e in one["events"] if e["kind"] == "shelved")
    assert shelved["data"] == {"until_us": T0 + 600 * S, "reason": "gas detector calibration"}
    r = await client.get("/api/v1/alarms/999999", headers=h["op1"])
    assert r.status == 404
