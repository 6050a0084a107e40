"""The bureau API's supervision routes (挂牌督办) and the region's hidden dangers, scoped by the token.

Mounted by `hazmon.bureau.api.build_routes` with its token check (``guarded``) and refusal
counter (``refuse``). Routes (``/api/v1``):

- ``GET /hidden-dangers?level=major&open=true&enterprise=``: the hidden dangers the enterprises
  of the token's region reported, each with its open supervision's id;
- ``GET /supervisions?open=true&enterprise=``: supervisions of the region, newest first;
- ``POST /supervisions`` (officer) ``{"danger_id": "E1:7", "deadline": "2027-03-31",
  "bureau_person": "陈科长", "comment": ""}`` (or ``"enterprise_id"`` instead of ``danger_id``):
  opened at the token's level (county, city, province), sent down to the enterprise;
- ``GET /supervisions/{id}``: the supervision, its history and its hidden danger's history;
- ``POST /supervisions/{id}/steps`` (officer) ``{"step": "request_progress|accept|close|extend",
  "comment": "", "deadline": "2027-05-31"}`` (``deadline``: the new one, for ``extend`` only).

Who may open follows bureau.yaml ``supervision.min_level`` (default: the standards table).

Answers: 400 a body or query that does not fit (the field named), or a deadline in the past, or
no person in charge; 403 a bureau below the level the danger or the (escalated) supervision
needs; 404 a supervision, hidden danger or enterprise outside the token's region (the same as
one that does not exist); 409 a step the state does not allow, or a danger already supervised.
Nothing is written on any of them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hazmon.bureau import supervision_repository as repo
from hazmon.bureau.supervision_flow import Refused
from hazmon.plant.http_request import jsonable, parse_body, parse_model, parse_query, query_flag, query_whole
from hazmon.plant.schema import Text

if TYPE_CHECKING:
    from hazmon.bureau.api import ApiUser, BureauApi

__all__ = ["supervision_routes"]

log = structlog.get_logger("hazmon.bureau.api")

_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
_DangerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:[0-9]+$")]
Handler = Callable[[web.Request, "ApiUser"], Awaitable[web.StreamResponse]]
Guard = Callable[..., Callable[[web.Request], Awaitable[web.StreamResponse]]]
Refuse = Callable[..., web.Response]


class DangerQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["general", "major"] | None = None
    open: Annotated[bool, BeforeValidator(query_flag)] = False
    enterprise: _Id | None = None
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(query_whole)] = 500


class SupervisionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    open: Annotated[bool, BeforeValidator(query_flag)] = False
    enterprise: _Id | None = None
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(query_whole)] = 500


class SupervisionPath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(query_whole)]


class OpenBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    danger_id: _DangerId | None = None
    enterprise_id: _Id | None = None
    deadline: date
    bureau_person: Annotated[Text, Field(min_length=1, max_length=200)]
    comment: Text = ""


class SupervisionStepBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: Literal["request_progress", "accept", "close", "extend"]
    comment: Text = ""
    deadline: date | None = None  # extend (延期): the new deadline


def _status(r: Refused) -> int:
    if r.field == "level":
        return 403
    if r.field in ("deadline", "bureau_person", "enterprise_id", "actor", "at") or (
        r.field == "danger_id" and r.reason.startswith("name the")
    ):
        return 400
    return 409


def supervision_routes(api: BureauApi, guarded: Guard, refuse: Refuse) -> list[web.RouteDef]:
    """The routes, guarded by the API's token check; ``refuse`` counts and logs a refusal."""

    def tz() -> ZoneInfo:
        return ZoneInfo(api.warning_settings.timezone)

    async def list_dangers(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = parse_query(request, DangerQuery)
        assert isinstance(q, DangerQuery)
        rows = await api.run(
            lambda c: repo.list_hidden_dangers(
                c, user.scope, level=q.level, open_only=q.open, enterprise_id=q.enterprise, limit=q.limit
            )
        )
        return web.json_response({"hidden_dangers": jsonable(rows), "count": len(rows)})

    async def list_supervisions(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = parse_query(request, SupervisionQuery)
        assert isinstance(q, SupervisionQuery)
        rows = await api.run(
            lambda c: repo.list_supervisions(
                c, user.scope, open_only=q.open, enterprise_id=q.enterprise, limit=q.limit
            )
        )
        return web.json_response({"supervisions": jsonable(rows), "count": len(rows)})

    def _sid(request: web.Request) -> int:
        p = parse_model(SupervisionPath, {"id": request.match_info["id"]}, "path")
        assert isinstance(p, SupervisionPath)
        return p.id

    async def show(request: web.Request, user: ApiUser) -> web.StreamResponse:
        sid = _sid(request)
        parse_query(request, None)
        got = await api.run(lambda c: repo.get_supervision(c, sid, user.scope))
        if got is None:
            return refuse(request, 404, f"id: no supervision {sid} in this bureau's region", user.name)
        return web.json_response(jsonable(got))

    async def open_one(request: web.Request, user: ApiUser) -> web.StreamResponse:
        parse_query(request, None)
        b = await parse_body(request, OpenBody)
        now = api.clock()
        got = await api.run(
            lambda c: repo.open_supervision(
                c, user.scope, actor=user.name, danger_id=b.danger_id, enterprise_id=b.enterprise_id,
                deadline=b.deadline, bureau_person=b.bureau_person, comment=b.comment, now=now, tz=tz(),
                min_level=api.supervision.min_level.as_map(),
            )
        )  # fmt: skip
        if isinstance(got, repo.NotFound):
            return refuse(request, 404, str(got), user.name)
        if isinstance(got, list):
            return refuse(request, max(_status(r) for r in got), "; ".join(map(str, got)), user.name)
        log.info("supervision opened", supervision=got["id"], danger=b.danger_id, user=user.name)
        api.on_step()  # the opening went to the downlink outbox with it: send it now
        return web.json_response(jsonable(got), status=201)

    async def step(request: web.Request, user: ApiUser) -> web.StreamResponse:
        sid = _sid(request)
        parse_query(request, None)
        b = await parse_body(request, SupervisionStepBody)
        now = api.clock()
        if b.deadline is not None and b.step != "extend":
            return refuse(request, 400, f"body.deadline: only an extend step takes a deadline, not {b.step}",
                          user.name)  # fmt: skip
        got: Any = await api.run(
            lambda c: repo.step(
                c, sid, b.step, actor=user.name, comment=b.comment, now=now, scope=user.scope,
                deadline=b.deadline, tz=tz(),
            )
        )  # fmt: skip
        if isinstance(got, repo.NotFound):
            return refuse(request, 404, f"id: {got}", user.name)
        if isinstance(got, Refused):
            return refuse(request, _status(got), str(got), user.name)
        log.info("supervision step", supervision=sid, step=b.step, user=user.name)
        api.on_step()
        return web.json_response(jsonable(got))

    p = "/api/v1"
    return [
        web.get(f"{p}/hidden-dangers", guarded(list_dangers)),
        web.get(f"{p}/supervisions", guarded(list_supervisions)),
        web.post(f"{p}/supervisions", guarded(open_one, officer=True)),
        web.get(f"{p}/supervisions/{{id}}", guarded(show)),
        web.post(f"{p}/supervisions/{{id}}/steps", guarded(step, officer=True)),
    ]
