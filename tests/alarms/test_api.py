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


# ----------------------------------------------------------------------------- bad requests
# Each went through to a 500 (or was taken as something else) before the requests were validated
# against their schema; each must be a 400 (or 404) with a reason, and change nothing.


async def _raw(client: TestClient[Any, Any], method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Send exactly these bytes (aiohttp's client would re-encode a str body)."""
    r = await client.request(method, path, headers={"Content-Type": "application/json", **headers}, data=body)
    return r.status, await r.json(content_type=None)


async def test_a_token_with_non_utf8_bytes_is_a_400(api: tuple[TestClient[Any, Any], AlarmService]) -> None:
    import asyncio

    client, svc = api
    refused = svc.metrics()["refused_api_calls"]
    # raw bytes on the wire: aiohttp's client refuses to send a non-ASCII header itself
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"GET /api/v1/alarms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3(token\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), response[:300]
    assert b"Authorization: a bearer token is printable ASCII" in body
    assert svc.metrics()["refused_api_calls"] == refused + 1


BAD_BODIES = [
    # (action, body bytes, status, the reason's beginning)
    ("comment", b'{"comment": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "body: not valid JSON: recursion limit exceeded"),
    ("comment", b'{"comment": "valve\\u0000closed"}', 400, "body.comment: contains a NUL character (U+0000) at position 5"),
    ("comment", b'{"comment": "valve \\ud800 closed"}', 400, "body: not valid JSON: "),
    ("comment", b'{"comment": "\xff\xfe"}', 400, "body: not valid JSON: "),
    ("comment", b'{"comment": 5}', 400, "body.comment: Input should be a valid string"),
    ("comment", b'{"comment": "x", "colour": "red"}', 400, "body.colour: unknown field"),
    ("comment", b"[1, 2]", 400, "body: Input should be an object"),
    ("ack", b'{"comment": "a\\u0000"}', 400, "body.comment: contains a NUL character"),
    ("shelve", b'{"duration_s": true, "reason": "calibration"}', 400, "body.duration_s: Input should be a valid number"),
    ("shelve", b'{"duration_s": "600", "reason": "calibration"}', 400, "body.duration_s: Input should be a valid number"),
    ("shelve", b'{"duration_s": 600, "reason": 7}', 400, "body.reason: Input should be a valid string"),
    ("shelve", b'{"duration_s": -5, "reason": "calibration"}', 400, "body.duration_s: Input should be greater than 0"),
    ("shelve", b'{"duration_s": 600, "reason": "   "}', 400, "body.reason: shelving needs a reason"),
    ("shelve", b'{"duration_s": 1e999, "reason": "x"}', 400, "body.duration_s: Input should be a finite number"),
    ("bureau/received", b'{"comment": null}', 400, "body.comment: Input should be a valid string"),
]


@pytest.mark.parametrize(("action", "body", "want", "reason"), BAD_BODIES)
async def test_a_bad_body_is_a_400_with_its_reason_and_records_nothing(
    api: tuple[TestClient[Any, Any], AlarmService], action: str, body: bytes, want: int, reason: str
) -> None:
    client, svc = api
    alarm_id = svc.alarms()[0].id
    user = "luhe" if action.startswith("bureau/") else "op1"
    status, answer = await _raw(client, "POST", f"/api/v1/alarms/{alarm_id}/{action}", {"Authorization": f"Bearer {bearer(user)}"}, body)
    assert status == want, answer
    assert answer["error"].startswith(reason), answer
    assert len(answer["error"]) < 300  # the input is not echoed back
    events = await svc.events(alarm_id)
    assert [e["kind"] for e in events if e["kind"] != "notified"] == ["raised"]
    assert svc.alarms()[0].state.shelved_until_us is None


BAD_PATHS_AND_QUERIES = [
    ("GET", "/api/v1/alarms/{id}%0a", 400, "path.id: not a whole number"),
    ("POST", "/api/v1/alarms/{id}%0a/ack", 400, "path.id: not a whole number"),
    ("GET", "/api/v1/alarms/%20{id}", 400, "path.id: not a whole number"),
    ("GET", "/api/v1/alarms/0", 400, "path.id: Input should be greater than or equal to 1"),
    ("GET", "/api/v1/alarms/99999999999999999999", 400, "path.id: "),
    ("GET", "/api/v1/alarms/abc", 400, "path.id: not a whole number"),
    ("GET", "/api/v1/alarms?limit=-1", 400, "query.limit: Input should be greater than or equal to 1"),
    ("GET", "/api/v1/alarms?limit=1%0a", 400, "query.limit: not a whole number"),
    ("GET", "/api/v1/alarms?limit=ten", 400, "query.limit: not a whole number"),
    ("GET", "/api/v1/alarms?active=maybe", 400, "query.active: Input should be a valid boolean"),
    ("GET", "/api/v1/alarms?tier=purple", 400, "query.tier: String should match pattern"),
    ("GET", "/api/v1/alarms?state=active_unacked,lost", 400, "query.state: String should match pattern"),
    ("GET", "/api/v1/alarms?colour=red", 400, "query.colour: unknown field"),
    ("GET", "/api/v1/alarms?limit=1&limit=2", 400, "query.limit: given twice"),
    ("GET", "/api/v1/alarms?sensor=AT%00", 400, "query.sensor: contains a NUL character"),
    ("GET", "/api/v1/alarms/999999", 404, "no alarm 999999"),
]


@pytest.mark.parametrize(("method", "path", "want", "reason"), BAD_PATHS_AND_QUERIES)
async def test_a_bad_path_or_query_is_refused_with_its_reason(
    api: tuple[TestClient[Any, Any], AlarmService], method: str, path: str, want: int, reason: str
) -> None:
    from yarl import URL

    client, svc = api
    alarm_id = svc.alarms()[0].id
    url = URL(path.replace("{id}", str(alarm_id)), encoded=True)
    r = await client.request(method, url, headers={"Authorization": f"Bearer {bearer('op1')}"}, json={})
    answer = await r.json()
    assert r.status == want, answer
    assert answer["error"].startswith(reason), answer
    events = await svc.events(alarm_id)
    assert [e["kind"] for e in events if e["kind"] != "notified"] == ["raised"]


async def test_good_queries_still_filter(api: tuple[TestClient[Any, Any], AlarmService]) -> None:
    client, _ = api
    h = {"Authorization": f"Bearer {bearer('op1')}"}
    for query, count in (
        ("active=true", 1),
        ("active=false", 0),
        ("active=1", 1),
        ("tier=red,orange&state=active_unacked", 1),
        ("tier=blue", 0),
        ("limit=1", 1),
        ("hazard_source=cl2-tankfarm&sensor=AT-101", 1),
    ):
        r = await client.get(f"/api/v1/alarms?{query}", headers=h)
        assert r.status == 200, (query, await r.text())
        assert (await r.json())["count"] == count, query


# ----------------------------------------------------------------------------- OpenAPI from the models


async def test_every_route_is_in_the_generated_openapi_with_request_and_response_schemas(
    api: tuple[TestClient[Any, Any], AlarmService],
) -> None:
    _, svc = api
    app = web.Application()
    app.add_routes(svc.routes())
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    doc = openapi()
    described = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == described
    assert len(served) == 13
    schemas = doc["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema["$ref"]
        assert ref.startswith("#/components/schemas/")
        return schemas[ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]

    for method, path in served:
        op = doc["paths"][path][method.lower()]
        ok = resolve(op["responses"]["200"]["content"]["application/json"]["schema"])
        assert ok["type"] == "object" and ok["properties"], (method, path)
        for code in ("400", "401", "403"):
            assert resolve(op["responses"][code]["content"]["application/json"]["schema"])["required"] == ["error"]
        params = {p["name"]: p for p in op["parameters"]}
        if "{id}" in path:
            assert params["id"]["in"] == "path"
            assert params["id"]["schema"]["type"] == "integer" and params["id"]["schema"]["minimum"] == 1
        if method == "POST":
            body = resolve(op["requestBody"]["content"]["application/json"]["schema"])
            assert body["additionalProperties"] is False
            assert "comment" in body["properties"]
    shelve = resolve(doc["paths"]["/api/v1/alarms/{id}/shelve"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert set(shelve["required"]) == {"duration_s", "reason"}
    assert shelve["properties"]["duration_s"]["type"] == "number"
    listing = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/alarms"]["get"]["parameters"]}
    assert set(listing) == {"state", "tier", "hazard_source", "sensor", "condition", "active", "limit"}
    assert listing["limit"]["minimum"] == 1


async def test_responses_match_their_generated_schemas(api: tuple[TestClient[Any, Any], AlarmService]) -> None:
    from hazmon.alarms.api_schema import Alarm, AlarmDetail, AlarmList, ApiError, OpenApiDocument

    client, svc = api
    alarm_id = svc.alarms()[0].id
    h = {"Authorization": f"Bearer {bearer('op1')}"}
    r = await client.get("/api/v1/alarms", headers=h)
    AlarmList.model_validate(await r.json(), strict=True)
    r = await client.get(f"/api/v1/alarms/{alarm_id}", headers=h)
    detail = AlarmDetail.model_validate(await r.json(), strict=True)
    assert detail.events and detail.events[0].kind == "raised"
    r = await client.post(f"/api/v1/alarms/{alarm_id}/ack", headers=h, json={"comment": "on site"})
    assert Alarm.model_validate(await r.json(), strict=True).acked
    r = await client.get("/api/v1/openapi.json", headers=h)
    assert OpenApiDocument.model_validate(await r.json()).paths == openapi()["paths"]
    r = await client.get("/api/v1/alarms?limit=0", headers=h)
    assert r.status == 400
    ApiError.model_validate(await r.json(), strict=True)


def test_the_generated_description_is_valid_openapi_3_1() -> None:
    from openapi_spec_validator import validate

    doc = openapi()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises with the first place that is not OpenAPI
