"""The bureau API's official weather warnings (``/api/v1/weather-warnings``), scoped by the token's region.

- ``GET /weather-warnings?open=true&limit=200``: the CAP warnings reported by enterprises of the
  token's region (``open=false``: ended ones too), newest first, each with how many enterprises
  it concerns and how many confirmed their measures (``confirmed``, ``not_confirmed``,
  ``no_duties``);
- ``GET /weather-warnings/{identifier}``: the same warning with ``concerned``: each enterprise,
  its hazard sources, its duties with who confirmed each and when, ``measures``
  (confirmed | not_confirmed | no_duties), in force or ended and why. 404 when no enterprise of
  the token's region reported it (the same answer as an unknown identifier);
- ``POST /weather-warnings/cap`` (officer; the body: one CAP XML document): the bureau takes in a
  warning itself — 201 stored, 409 duplicate, 422 refused with the reason (malformed, dtd,
  not_cap, missing_field, invalid_field, expired), 413 over 256 kB. While such a warning is in
  force it is listed even before any enterprise reports it, with ``not_reported``: the
  enterprises of the token's region its region codes name that have not reported it.

Mounted by `hazmon.bureau.api.build_routes` with its token check (``guard``) and refusals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from aiohttp import web
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hazmon.bureau import weather_measures
from hazmon.plant.http_request import jsonable, parse_model, parse_query, query_flag, query_whole
from hazmon.weather.cap import MAX_BYTES, Refused, parse

if TYPE_CHECKING:
    from hazmon.bureau.api import ApiUser, BureauApi

__all__ = ["weather_warning_routes"]

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request, "ApiUser"], Awaitable[web.StreamResponse]]
Refuse = Callable[..., web.Response]


class WeatherQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    open: Annotated[bool, BeforeValidator(query_flag)] = True
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(query_whole)] = 200


class IdentifierPath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    identifier: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s/\\]+$")]


def weather_warning_routes(
    api: BureauApi, guard: Callable[..., Route], refuse: Refuse, prefix: str
) -> list[web.RouteDef]:
    """The GET routes (any token: viewers and officers) and the CAP intake (officers)."""

    async def list_them(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = parse_query(request, WeatherQuery)
        assert q is not None
        rows: list[dict[str, Any]] = await api.run(
            lambda c: weather_measures.warnings(
                c, user.scope, open_only=q.open, limit=q.limit, now=api.clock()
            )
        )
        return web.json_response({"weather_warnings": jsonable(rows), "count": len(rows)})

    async def show(request: web.Request, user: ApiUser) -> web.StreamResponse:
        ident = parse_model(IdentifierPath, dict(request.match_info), "path").identifier
        parse_query(request, None)
        w = await api.run(lambda c: weather_measures.warning(c, ident, user.scope, now=api.clock()))
        if w is None:
            return refuse(request, 404, f"no weather warning {ident}", user.name)
        return web.json_response(jsonable(w))

    async def post_cap(request: web.Request, user: ApiUser) -> web.StreamResponse:
        parse_query(request, None)
        data = await request.content.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return refuse(request, 413, f"body: more than {MAX_BYTES} bytes", user.name)
        a = parse(data, "body")
        now = api.clock()
        if isinstance(a, Refused):
            return refuse(request, 422, f"{a.reason.value}: {a.detail}", user.name)
        if a.expires is not None and a.expires <= now:
            return refuse(request, 422, f"expired: body: expired at {a.expires.isoformat()}", user.name)
        if not await api.run(lambda c: weather_measures.store_cap(c, a, user.name, now)):
            return refuse(request, 409, f"duplicate: {a.identifier} is already stored", user.name)
        return web.json_response({"stored": True, "identifier": a.identifier}, status=201)

    return [
        web.post(f"{prefix}/weather-warnings/cap", guard(post_cap, officer=True)),
        web.get(f"{prefix}/weather-warnings", guard(list_them)),
        web.get(f"{prefix}/weather-warnings/{{identifier}}", guard(show)),
    ]
