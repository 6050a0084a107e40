"""The alarm HTTP API (aiohttp routes); requests, responses and OpenAPI in `hazmon.alarms.api_schema`.

Every route needs ``Authorization: Bearer <token>``; a call without a valid token
gets 401, a role not allowed or a bureau outside the plant's region gets 403, and
each refusal is logged and counted (``refused_api_calls``). Then the request is
validated against its models (path, query, body): anything else is a 400 naming
the field and the reason, before anything is read from or written to the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog
from aiohttp import web
from pydantic import BaseModel

from hazmon.alarms.api_schema import (
    ALL,
    API_PREFIX,
    OPERATIONS,
    PLANT,
    AlarmPath,
    AlarmQuery,
    Operation,
    ShelveBody,
    openapi,
)
from hazmon.alarms.auth import ApiToken, TokenBook
from hazmon.alarms.config import AlarmSettings
from hazmon.alarms.lifecycle import BUREAU_STEPS, EventKind, TransitionError, status
from hazmon.alarms.repository import AlarmRow
from hazmon.plant.http_request import RequestError, bearer, parse_body, parse_model, parse_query
from hazmon.plant.standards import Tier

__all__ = ["ALL", "API_PREFIX", "PLANT", "AlarmApi", "authenticate", "build_routes", "openapi"]

log = structlog.get_logger("hazmon.alarms.api")

Handler = Callable[[web.Request, ApiToken], Awaitable[web.StreamResponse]]

# the event each action records (the route table, roles and bodies are in api_schema.OPERATIONS)
_KINDS: dict[str, EventKind] = {
    "ack": EventKind.ACKED,
    "shelve": EventKind.SHELVED,
    "unshelve": EventKind.UNSHELVED,
    "comment": EventKind.COMMENT,
    "out-of-service": EventKind.OUT_OF_SERVICE,
    "in-service": EventKind.IN_SERVICE,
    "bureau/received": EventKind.BUREAU_RECEIVED,
    "bureau/verified": EventKind.BUREAU_VERIFIED,
    "bureau/feedback": EventKind.BUREAU_FEEDBACK,
    "bureau/closed": EventKind.BUREAU_CLOSED,
}
assert tuple(v for k, v in _KINDS.items() if k.startswith("bureau/")) == BUREAU_STEPS


class AlarmApi(Protocol):
    """What the routes need of the service (`hazmon.alarms.service.AlarmService` is one).

    The API depends on this, not on the service module: the service builds the routes.
    """

    region: str
    tokens: tuple[ApiToken, ...]
    counters: dict[str, int]
    settings: AlarmSettings

    def now_us(self) -> int: ...
    def alarm(self, alarm_id: int) -> AlarmRow | None: ...
    def alarms(self) -> list[AlarmRow]: ...
    async def events(self, alarm_id: int) -> list[dict[str, Any]]: ...
    async def act(
        self,
        alarm_id: int,
        kind: EventKind,
        actor: str,
        comment: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> AlarmRow: ...


def _alarm_json(svc: AlarmApi, a: AlarmRow, now_us: int) -> dict[str, Any]:
    s = a.state
    t = Tier(max(1, min(4, s.tier)))
    return {
        "id": a.id,
        "hazard_source": a.hazard_source,
        "sensor": a.sensor,
        "condition": a.condition,
        "position": a.position,
        "region_code": svc.region,
        "state": status(s, now_us).value,
        "tier": t.colour,
        "tier_zh": t.zh,
        "level": s.level,
        "active": s.showing_active,
        "acked": s.acked,
        "latching": s.latching,
        "shelved_until_us": s.shelved_until_us,
        "shelve_reason": s.shelve_reason or None,
        "suppressed": s.suppressed,
        "cause": s.cause or None,
        "detector_fault": s.detector_fault or None,
        "out_of_service": s.out_of_service,
        "bureau_step": s.bureau_step,
        "activations": s.activations,
        "activated_at_us": s.activated_at_us,
        "acked_at_us": s.acked_at_us,
        "acked_by": s.acked_by,
        "value": s.value,
        "limit": s.limit,
        "message_en": s.message_en,
        "message_zh": s.message_zh,
    }


def _error(status_code: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status_code)


def _parse_path(request: web.Request) -> int:
    return parse_model(AlarmPath, {"id": request.match_info["id"]}, "path").id


def _parse_query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    return parse_query(request, model)


async def _parse_body(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    return None if model is None else await parse_body(request, model)


def _refuse(
    svc: AlarmApi, request: web.Request, code: int, reason: str, who: str | None = None
) -> web.Response:
    svc.counters["refused_api_calls"] += 1
    log.warning(
        "API call refused",
        method=request.method,
        path=request.path,
        remote=request.remote,
        status=code,
        reason=reason,
        user=who,
    )
    return _error(code, reason)


def authenticate(svc: AlarmApi, book: TokenBook, request: web.Request) -> ApiToken | web.Response:
    """The caller's token, or the refusal, logged and counted.

    400 a malformed header, 401 none or unknown, 403 a bureau outside the plant's region; the
    daemon's other APIs (supervision, weather) authenticate through it too.
    """
    try:
        token = bearer(request)
    except RequestError as e:
        return _refuse(svc, request, 400, str(e))
    if token is None:
        return _refuse(svc, request, 401, "missing bearer token")
    user = book.find(token)
    if user is None:
        return _refuse(svc, request, 401, "invalid token")
    if not user.sees(svc.region):
        return _refuse(svc, request, 403, f"region {svc.region} is outside this bureau's region", user.name)
    return user


def build_routes(svc: AlarmApi) -> list[web.RouteDef]:  # noqa: PLR0915 - one closure per route
    """Routes bound to one service (mounted by the daemon on its HTTP app), one per `OPERATIONS` entry."""
    book = TokenBook(svc.tokens)

    def refuse(request: web.Request, code: int, reason: str, who: str | None = None) -> web.Response:
        return _refuse(svc, request, code, reason, who)

    def guarded(op: Operation, fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            user = authenticate(svc, book, request)
            if isinstance(user, web.Response):
                return user
            if user.role not in op.roles:
                return refuse(request, 403, f"role {user.role} may not do this", user.name)
            try:
                return await fn(request, user)
            except RequestError as e:
                return refuse(request, 400, str(e), user.name)

        return handler

    async def get_openapi(request: web.Request, user: ApiToken) -> web.StreamResponse:
        _parse_query(request, None)
        return web.json_response(openapi())

    async def list_alarms(request: web.Request, user: ApiToken) -> web.StreamResponse:
        q = _parse_query(request, AlarmQuery)
        assert isinstance(q, AlarmQuery)
        states = set(q.state.split(",")) if q.state else None
        tiers = set(q.tier.split(",")) if q.tier else None
        now = svc.now_us()
        out = []
        for a in svc.alarms():
            if a.state.activations == 0:
                continue
            j = _alarm_json(svc, a, now)
            if states is not None and j["state"] not in states:
                continue
            if tiers is not None and j["tier"] not in tiers:
                continue
            if q.hazard_source is not None and a.hazard_source != q.hazard_source:
                continue
            if q.sensor is not None and a.sensor != q.sensor:
                continue
            if q.condition is not None and a.condition != q.condition:
                continue
            if q.active is not None and j["active"] != q.active:
                continue
            out.append(j)
        out.sort(key=lambda j: (-Tier[j["tier"].upper()].value, -(j["activated_at_us"] or 0)))
        return web.json_response({"alarms": out[: q.limit], "count": len(out)})

    async def show(request: web.Request, user: ApiToken) -> web.StreamResponse:
        i = _parse_path(request)
        _parse_query(request, None)
        a = svc.alarm(i)
        if a is None:
            return _error(404, f"no alarm {i}")
        j = _alarm_json(svc, a, svc.now_us())
        j["events"] = await svc.events(a.id)
        return web.json_response(j)

    def action(op: Operation) -> Handler:
        kind = _KINDS[op.name]

        async def run(request: web.Request, user: ApiToken) -> web.StreamResponse:
            i = _parse_path(request)
            _parse_query(request, None)
            if svc.alarm(i) is None:
                return _error(404, f"no alarm {i}")
            body = await _parse_body(request, op.body)
            comment = str(getattr(body, "comment", ""))
            data: dict[str, Any] = {}
            if isinstance(body, ShelveBody):
                if body.duration_s > svc.settings.shelve_max_s:
                    raise RequestError(f"body.duration_s: must be <= {svc.settings.shelve_max_s:g}")
                data = {"until_us": svc.now_us() + round(body.duration_s * 1e6), "reason": body.reason}
            try:
                a = await svc.act(i, kind, user.name, comment, data)
            except TransitionError as e:
                return _error(409, str(e))
            name = op.name.replace("/", "_")
            log.info("alarm action", alarm=i, action=name, user=user.name, role=user.role)
            return web.json_response(_alarm_json(svc, a, svc.now_us()))

        return run

    handlers: dict[str, Handler] = {"openapi": get_openapi, "list": list_alarms, "show": show}
    routes = []
    for op in OPERATIONS:
        fn = handlers[op.name] if op.name in handlers else action(op)
        routes.append(web.route(op.method, op.full_path, guarded(op, fn)))
    return routes
