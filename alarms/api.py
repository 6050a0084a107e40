"""The alarm HTTP API (aiohttp routes) and its OpenAPI description.

Every route needs ``Authorization: Bearer <token>``; a call without a valid token
gets 401, a role not allowed or a bureau outside the plant's region gets 403, and
each refusal is logged and counted (``refused_api_calls``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from hazmon.alarms.auth import ApiToken, TokenBook
from hazmon.alarms.lifecycle import BUREAU_STEPS, EventKind, TransitionError, status
from hazmon.plant.standards import Tier

if TYPE_CHECKING:
    from hazmon.alarms.repository import AlarmRow
    from hazmon.alarms.service import AlarmService

__all__ = ["API_PREFIX", "build_routes", "openapi"]

log = structlog.get_logger("hazmon.alarms.api")

API_PREFIX = "/api/v1"

Handler = Callable[[web.Request, ApiToken], Awaitable[web.StreamResponse]]

PLANT = ("operator", "plant_manager")
ALL = ("operator", "plant_manager", "bureau")

# (method, path, roles, summary, body schema properties or None)
_ACTIONS: dict[str, tuple[EventKind, tuple[str, ...], str]] = {
    "ack": (EventKind.ACKED, PLANT, "Acknowledge (stops escalation)"),
    "shelve": (EventKind.SHELVED, PLANT, "Shelve for duration_s with a reason; unshelved automatically"),
    "unshelve": (EventKind.UNSHELVED, PLANT, "Unshelve now"),
    "comment": (EventKind.COMMENT, ALL, "Add a comment to the audit trail"),
    "out-of-service": (EventKind.OUT_OF_SERVICE, ("plant_manager",), "Take out of service"),
    "in-service": (EventKind.IN_SERVICE, ("plant_manager",), "Return to service"),
}
_BUREAU: dict[str, tuple[EventKind, tuple[str, ...], str]] = {
    "received": (EventKind.BUREAU_RECEIVED, ("bureau",), "Bureau: warning received (接收)"),
    "verified": (EventKind.BUREAU_VERIFIED, ("bureau",), "Bureau: verified with the enterprise (核实)"),
    "feedback": (
        EventKind.BUREAU_FEEDBACK,
        ("plant_manager",),
        "Enterprise feedback to the bureau (企业反馈)",
    ),
    "closed": (EventKind.BUREAU_CLOSED, ("bureau",), "Bureau: closed (消警)"),
}
assert tuple(v[0] for v in _BUREAU.values()) == BUREAU_STEPS


def _body_schema(extra: dict[str, Any] | None = None, required: list[str] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"comment": {"type": "string"}}
    props.update(extra or {})
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 description of every route (the tests walk it)."""
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    errors = {
        "401": {"description": "missing or invalid bearer token"},
        "403": {"description": "role not allowed, or a bureau outside the plant's region"},
        "404": {"description": "no such alarm"},
        "409": {"description": "not allowed in the alarm's state"},
    }
    paths: dict[str, Any] = {
        f"{API_PREFIX}/openapi.json": {
            "get": {
                "summary": "This description",
                "x-roles": list(ALL),
                "responses": {"200": {"description": "ok"}},
            }
        },
        f"{API_PREFIX}/alarms": {
            "get": {
                "summary": "List alarms",
                "x-roles": list(ALL),
                "parameters": [
                    {"name": n, "in": "query", "required": False, "schema": {"type": t}}
                    for n, t in (
                        ("state", "string"),
                        ("tier", "string"),
                        ("hazard_source", "string"),
                        ("sensor", "string"),
                        ("condition", "string"),
                        ("active", "boolean"),
                        ("limit", "integer"),
                    )
                ],
                "responses": {"200": {"description": "alarms"}, **errors},
            }
        },
        f"{API_PREFIX}/alarms/{{id}}": {
            "get": {
                "summary": "One alarm with its events (audit trail)",
                "x-roles": list(ALL),
                "parameters": [id_param],
                "responses": {"200": {"description": "the alarm"}, **errors},
            }
        },
    }
    for name, (_, roles, summary) in _ACTIONS.items():
        body = (
            _body_schema(
                {"duration_s": {"type": "number"}, "reason": {"type": "string"}}, ["duration_s", "reason"]
            )
            if name == "shelve"
            else _body_schema(required=["comment"] if name == "comment" else None)
        )
        paths[f"{API_PREFIX}/alarms/{{id}}/{name}"] = {
            "post": {
                "summary": summary,
                "x-roles": list(roles),
                "parameters": [id_param],
                "requestBody": body,
                "responses": {"200": {"description": "the alarm after the action"}, **errors},
            }
        }
    for name, (_, roles, summary) in _BUREAU.items():
        paths[f"{API_PREFIX}/alarms/{{id}}/bureau/{name}"] = {
            "post": {
                "summary": summary,
                "x-roles": list(roles),
                "parameters": [id_param],
                "requestBody": _body_schema(),
                "responses": {"200": {"description": "the alarm after the step"}, **errors},
            }
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "hazmon alarms", "version": "1"},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _alarm_json(svc: AlarmService, a: AlarmRow, now_us: int) -> dict[str, Any]:
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


def build_routes(svc: AlarmService) -> list[web.RouteDef]:  # noqa: PLR0915 - one closure per route
    """Routes bound to one service (mounted by the daemon on its HTTP app)."""
    book = TokenBook(svc.tokens)

    def refuse(request: web.Request, code: int, reason: str, who: str | None = None) -> web.Response:
        svc.counters["refused_api_calls"] += 1
        log.warning(
            "alarm API call refused",
            method=request.method,
            path=request.path,
            remote=request.remote,
            status=code,
            reason=reason,
            user=who,
        )
        return _error(code, reason)

    def guarded(
        roles: tuple[str, ...], fn: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            auth = request.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or not auth[7:].strip():
                return refuse(request, 401, "missing bearer token")
            user = book.find(auth[7:].strip())
            if user is None:
                return refuse(request, 401, "invalid token")
            if not user.sees(svc.region):
                return refuse(request, 403, f"region {svc.region} is outside this bureau's region", user.name)
            if user.role not in roles:
                return refuse(request, 403, f"role {user.role} may not do this", user.name)
            return await fn(request, user)

        return handler

    async def get_openapi(request: web.Request, user: ApiToken) -> web.StreamResponse:
        return web.json_response(openapi())

    async def list_alarms(request: web.Request, user: ApiToken) -> web.StreamResponse:
        q = request.query
        now = svc.now_us()
        out = []
        try:
            limit = int(q.get("limit", "500"))
        except ValueError:
            return _error(400, "limit: not a whole number")
        for a in svc.alarms():
            j = _alarm_json(svc, a, now)
            if a.state.activations == 0:
                continue
            if "state" in q and j["state"] not in q["state"].split(","):
                continue
            if "tier" in q and j["tier"] not in q["tier"].split(","):
                continue
            if "hazard_source" in q and a.hazard_source != q["hazard_source"]:
                continue
            if "sensor" in q and a.sensor != q["sensor"]:
                continue
            if "condition" in q and a.condition != q["condition"]:
                continue
            if "active" in q and j["active"] != (q["active"].lower() in ("1", "true", "yes")):
                continue
            out.append(j)
        out.sort(key=lambda j: (-Tier[j["tier"].upper()].value, -(j["activated_at_us"] or 0)))
        return web.json_response({"alarms": out[:limit], "count": len(out)})

    def _id(request: web.Request) -> int | None:
        try:
            return int(request.match_info["id"])
        except ValueError:
            return None

    async def show(request: web.Request, user: ApiToken) -> web.StreamResponse:
        i = _id(request)
        a = svc.alarm(i) if i is not None else None
        if a is None:
            return _error(404, f"no alarm {request.match_info['id']}")
        j = _alarm_json(svc, a, svc.now_us())
        j["events"] = await svc.events(a.id)
        return web.json_response(j)

    def action(kind: EventKind, name: str) -> Handler:
        async def run(request: web.Request, user: ApiToken) -> web.StreamResponse:  # noqa: PLR0911
            i = _id(request)
            if i is None or svc.alarm(i) is None:
                return _error(404, f"no alarm {request.match_info['id']}")
            body: dict[str, Any] = {}
            if request.can_read_body:
                try:
                    raw = await request.json()
                except (json.JSONDecodeError, UnicodeDecodeError):
                    return _error(400, "body: not JSON")
                if not isinstance(raw, dict):
                    return _error(400, "body: expected a JSON object")
                body = raw
            comment = str(body.get("comment", ""))
            data: dict[str, Any] = {}
            if kind is EventKind.SHELVED:
                try:
                    duration = float(body["duration_s"])
                except (KeyError, TypeError, ValueError):
                    return _error(400, "duration_s: a number of seconds is required")
                if not 0 < duration <= svc.settings.shelve_max_s:
                    return _error(400, f"duration_s: must be > 0 and <= {svc.settings.shelve_max_s:g}")
                reason = str(body.get("reason", "")).strip()
                if not reason:
                    return _error(400, "reason: shelving needs a reason")
                data = {"until_us": svc.now_us() + round(duration * 1e6), "reason": reason}
            try:
                a = await svc.act(i, kind, user.name, comment, data)
            except TransitionError as e:
                return _error(409, str(e))
            log.info("alarm action", alarm=i, action=name, user=user.name, role=user.role)
            return web.json_response(_alarm_json(svc, a, svc.now_us()))

        return run

    p = API_PREFIX
    routes = [
        web.get(f"{p}/openapi.json", guarded(ALL, get_openapi)),
        web.get(f"{p}/alarms", guarded(ALL, list_alarms)),
        web.get(f"{p}/alarms/{{id}}", guarded(ALL, show)),
    ]
    for name, (kind, roles, _) in _ACTIONS.items():
        routes.append(web.post(f"{p}/alarms/{{id}}/{name}", guarded(roles, action(kind, name))))
    for name, (kind, roles, _) in _BUREAU.items():
        routes.append(
            web.post(f"{p}/alarms/{{id}}/bureau/{name}", guarded(roles, action(kind, "bureau_" + name)))
        )
    return routes
