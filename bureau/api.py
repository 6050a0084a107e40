"""The bureau's HTTP API (aiohttp): enterprises, alarms and the bureau's steps, scoped by region.

Every route needs ``Authorization: Bearer <token>`` (tokens of ``bureau.yaml``; only their
SHA-256 is compared). A call without a valid token gets 401, a viewer posting a step 403;
each refusal is logged and counted. Requests are validated with pydantic before the database
is read: anything else is a 400 whose JSON ``error`` names the field and the reason.

A token sees only the enterprises whose region code lies inside its own region: lists are
filtered, and an enterprise or alarm outside it is a 404 (the same answer as one that does not
exist, so a county learns nothing of another county's).

Routes (``/api/v1``):

- ``GET /enterprises``: id, name, region, registered/last seen, open alarm count;
- ``GET /enterprises/{id}``: hazard sources (grade, R, S) with their sensors, heartbeats, assessments;
- ``GET /alarms?tier=red,orange&open=true&enterprise=&limit=&offset=``: newest first, paged
  (``tier`` colours or 1-4);
- ``GET /alarms/{id}``: the alarm and its whole history (the enterprise's events and the bureau's steps);
- ``POST /alarms/{id}/steps`` ``{"step": "received|verified|closed", "comment": ""}`` (officer):
  recorded as a ``bureau`` event with the token's name as actor, and sent down to the enterprise
  (``hazmon/v1/<enterprise>/down/bureau_step``) through the downlink outbox.

Supervision (挂牌督办) and the region's hidden dangers: see `hazmon.bureau.supervision_api`.
Supervision figures per period (``/figures/supervision``): see `hazmon.bureau.figures_api`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import psycopg
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter
from psycopg.rows import dict_row
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from hazmon.bureau import figures
from hazmon.bureau import warning_repository as warnings
from hazmon.bureau.figures_api import figure_routes
from hazmon.bureau.supervision_api import supervision_routes
from hazmon.bureau.supervision_config import SupervisionSection
from hazmon.bureau.warning_flow import Refused
from hazmon.bureau.weather_api import weather_warning_routes
from hazmon.plant.bureau_standards import WarningSettings
from hazmon.plant.http_request import (
    RequestError,
    jsonable,
    parse_body,
    parse_model,
    parse_query,
    query_flag,
    query_whole,
)
from hazmon.plant.link import BureauStep
from hazmon.plant.regions import Scope, prefix
from hazmon.plant.schema import Text

__all__ = ["API_PREFIX", "STEPS", "ApiUser", "BureauApi", "build_routes"]

log = structlog.get_logger("hazmon.bureau.api")

API_PREFIX = "/api/v1"
STEPS = ("received", "verified", "closed")
# the enterprise's numbers (hazmon.plant.standards.Tier: a larger value is more severe, red = 4)
_TIERS = {"red": 4, "orange": 3, "yellow": 2, "blue": 1, "1": 1, "2": 2, "3": 3, "4": 4}
_TIER = "(red|orange|yellow|blue|[1-4])"
_OPEN = "(a.cleared_at IS NULL OR a.bureau_step IS DISTINCT FROM 'closed')"
AConn = psycopg.AsyncConnection[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ApiUser:
    """One API user: ``name`` is the actor of every step they record."""

    name: str
    role: Literal["viewer", "officer"]
    sha256: str
    scope: Scope


_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]


class AlarmQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # tier colours or numbers, comma-separated: red,orange or 4,3 (red = 4, as the enterprise numbers them)
    tier: Annotated[str | None, Field(pattern=rf"^{_TIER}(,{_TIER})*$")] = None
    open: Annotated[bool | None, BeforeValidator(query_flag)] = None
    enterprise: _Id | None = None
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(query_whole)] = 100
    offset: Annotated[int, Field(ge=0, le=10_000_000), BeforeValidator(query_whole)] = 0


class EnterprisePath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: _Id


class AlarmPath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:[0-9]+$")]


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    step: Literal["received", "verified", "closed"]
    comment: Text = ""


class WarningQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    open: Annotated[bool, BeforeValidator(query_flag)] = True
    enterprise: Text | None = None
    limit: Annotated[int, Field(ge=1, le=1000), BeforeValidator(query_whole)] = 500


class WarningPath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(query_whole)]


class WarningStepBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    step: Literal["verify", "feedback", "close"]
    comment: Text = ""


class PlanQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    open: Annotated[bool, BeforeValidator(query_flag)] = True
    drill: Annotated[bool | None, BeforeValidator(query_flag)] = None


class FiguresQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    day: date


def _parse_query(request: web.Request, model: type[BaseModel] | None) -> BaseModel | None:
    return parse_query(request, model)


def _parse_path(request: web.Request, model: type[BaseModel]) -> str:
    return str(parse_model(model, {"id": request.match_info["id"]}, "path").id)  # type: ignore[attr-defined]


async def _parse_body(request: web.Request) -> StepBody:
    return await parse_body(request, StepBody)


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


def _in(user: ApiUser) -> str:
    """The LIKE pattern of the region codes ``user`` sees."""
    return prefix(user.scope) + "%"


class BureauApi:
    """The routes' state: the database, the users, the counters and what to call after a step."""

    def __init__(
        self,
        dsn: str,
        users: Iterable[ApiUser],
        registry: CollectorRegistry | None = None,
        on_step: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
        *,
        warning_settings: WarningSettings | None = None,
        supervision: SupervisionSection | None = None,
    ) -> None:
        self.warning_settings = warning_settings or WarningSettings()
        self.supervision = supervision or SupervisionSection()  # bureau.yaml supervision: (挂牌督办)
        self.dsn = dsn
        self.users = tuple(users)
        self.on_step = on_step or (lambda: None)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.refused = Counter(
            "hazmon_bureau_api_refused_total",
            "API calls refused, by HTTP status",
            ["status"],
            registry=registry if registry is not None else CollectorRegistry(),
        )
        for s in ("400", "401", "403", "404", "409", "503"):
            self.refused.labels(status=s)

    def find(self, bearer: str) -> ApiUser | None:
        d = hashlib.sha256(bearer.encode()).hexdigest()
        found = None
        for u in self.users:
            if hmac.compare_digest(u.sha256.lower(), d):
                found = u
        return found

    async def db(self) -> AConn:
        return await psycopg.AsyncConnection.connect(
            self.dsn, row_factory=dict_row, connect_timeout=5, application_name="hazmon-bureau-api"
        )

    async def run(self, fn: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """``fn`` on a connection of its own in a thread (the warning and figure functions are sync)."""

        def go() -> Any:
            with psycopg.connect(self.dsn, connect_timeout=5, application_name="hazmon-bureau-api") as c:
                return fn(c)

        return await asyncio.to_thread(go)

    # ------------------------------------------------------------ reading

    async def enterprises(self, user: ApiUser) -> list[dict[str, Any]]:
        async with await self.db() as c:
            cur = await c.execute(
                "SELECT e.enterprise_id AS id, e.name, e.region_code, e.registered_at, e.updated_at,"
                " e.last_message_at AS last_seen, e.last_seq,"
                f" (SELECT count(*) FROM bureau_alarm a WHERE a.enterprise_id = e.enterprise_id AND {_OPEN})"
                " AS open_alarms FROM bureau_enterprise e WHERE e.region_code LIKE %s"
                " ORDER BY e.enterprise_id",
                (_in(user),),
            )
            return await cur.fetchall()

    async def enterprise(self, user: ApiUser, eid: str) -> dict[str, Any] | None:
        async with await self.db() as c:
            await c.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)  # one snapshot
            cur = await c.execute(
                "SELECT enterprise_id AS id, name, region_code, registered_at, updated_at,"
                " last_message_at AS last_seen, last_seq, registration->'enterprise' AS enterprise"
                " FROM bureau_enterprise WHERE enterprise_id = %s AND region_code LIKE %s",
                (eid, _in(user)),
            )
            e = await cur.fetchone()
            if e is None:
                return None
            cur = await c.execute(
                "SELECT source_id AS id, name, kind, grade, r_value, s_value, info FROM bureau_hazard_source"
                " WHERE enterprise_id = %s ORDER BY source_id",
                (eid,),
            )
            sources = await cur.fetchall()
            cur = await c.execute(
                "SELECT tag, source_id, kind, unit, period_s, info FROM bureau_sensor"
                " WHERE enterprise_id = %s ORDER BY tag",
                (eid,),
            )
            sensors = await cur.fetchall()
            for s in sources:
                s["sensors"] = [x for x in sensors if x["source_id"] == s["id"]]
            cur = await c.execute(
                "SELECT endpoint, protocol, connected, last_reading_at, at, received_at FROM bureau_heartbeat"
                " WHERE enterprise_id = %s ORDER BY endpoint",
                (eid,),
            )
            e["heartbeats"] = await cur.fetchall()
            cur = await c.execute(
                "SELECT source_id, as_of, next_due, reassessment_overdue, filing_overdue"
                " FROM bureau_assessment WHERE enterprise_id = %s ORDER BY source_id",
                (eid,),
            )
            e["assessments"] = await cur.fetchall()
            cur = await c.execute(
                f"SELECT count(*) AS n FROM bureau_alarm a WHERE a.enterprise_id = %s AND {_OPEN}", (eid,)
            )
            row = await cur.fetchone()
            e["open_alarms"] = row["n"] if row else 0
            e["hazard_sources"] = sources
            return e

    _ALARM = (
        "SELECT a.alarm_id AS id, a.enterprise_id AS enterprise, e.name AS enterprise_name, e.region_code,"
        " a.source_id AS hazard_source, a.sensor, a.condition, a.level, a.tier, a.tier_name, a.state,"
        " a.raised_at, a.updated_at, a.acked_at, a.cleared_at, a.bureau_step, a.bureau_step_at,"
        f" a.message_zh, a.message_en, a.value, a.limit_value, {_OPEN} AS open"
        " FROM bureau_alarm a JOIN bureau_enterprise e USING (enterprise_id)"
    )

    async def alarms(self, user: ApiUser, q: AlarmQuery) -> tuple[list[dict[str, Any]], int]:
        where = ["e.region_code LIKE %s"]
        args: list[object] = [_in(user)]
        if q.tier is not None:
            where.append("a.tier = ANY(%s)")
            args.append([_TIERS[t] for t in q.tier.split(",")])
        if q.open is not None:
            where.append(_OPEN if q.open else f"NOT {_OPEN}")
        if q.enterprise is not None:
            where.append("a.enterprise_id = %s")
            args.append(q.enterprise)
        cond = " WHERE " + " AND ".join(where)
        async with await self.db() as c:
            cur = await c.execute(
                "SELECT count(*) AS n FROM bureau_alarm a"
                f" JOIN bureau_enterprise e USING (enterprise_id){cond}",
                args,
            )
            row = await cur.fetchone()
            cur = await c.execute(
                f"{self._ALARM}{cond} ORDER BY a.raised_at DESC, a.alarm_id LIMIT %s OFFSET %s",
                [*args, q.limit, q.offset],
            )
            return await cur.fetchall(), int(row["n"]) if row else 0

    async def _alarm(self, c: AConn, user: ApiUser, aid: str, lock: bool = False) -> dict[str, Any] | None:
        sql = f"{self._ALARM} WHERE a.alarm_id = %s AND e.region_code LIKE %s"
        cur = await c.execute(sql + (" FOR UPDATE OF a" if lock else ""), (aid, _in(user)))
        return await cur.fetchone()

    async def _events(self, c: AConn, aid: str) -> list[dict[str, Any]]:
        cur = await c.execute(
            "SELECT origin, event_id, event, at, actor, comment, data FROM bureau_alarm_event"
            " WHERE alarm_id = %s ORDER BY at, origin DESC, event_id",
            (aid,),
        )
        return await cur.fetchall()

    async def alarm(self, user: ApiUser, aid: str) -> dict[str, Any] | None:
        async with await self.db() as c:
            # the row and its history from one snapshot: an event committed between the two reads
            # would otherwise show in the history while the state still predates it
            await c.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            a = await self._alarm(c, user, aid)
            if a is not None:
                a["events"] = await self._events(c, aid)
            return a

    async def step(self, user: ApiUser, aid: str, body: StepBody) -> dict[str, Any] | str | None:
        """Record the step and enqueue it for the enterprise; the alarm, None (not seen) or why not (409)."""
        now = self.clock()
        async with await self.db() as c, c.transaction():
            a = await self._alarm(c, user, aid, lock=True)
            if a is None:
                return None
            done = a["bureau_step"]
            if done is not None and STEPS.index(body.step) <= STEPS.index(done):
                return f"alarm {aid} is already {done}: the next step is after it ({' → '.join(STEPS)})"
            cur = await c.execute(
                "SELECT COALESCE(max(event_id), 0) + 1 AS n FROM bureau_alarm_event"
                " WHERE alarm_id = %s AND origin = 'bureau'",
                (aid,),
            )
            row = await cur.fetchone()
            event_id = int(row["n"]) if row else 1
            await c.execute(
                "INSERT INTO bureau_alarm_event (alarm_id, origin, event_id, event, at, actor, comment)"
                " VALUES (%s, 'bureau', %s, %s, %s, %s, %s)",
                (aid, event_id, f"bureau_{body.step}", now, user.name, body.comment),
            )
            await c.execute(
                "UPDATE bureau_alarm SET bureau_step = %s, bureau_step_at = %s WHERE alarm_id = %s",
                (body.step, now, aid),
            )
            msg = BureauStep(alarm_id=aid, step=body.step, at=now, actor=user.name, comment=body.comment)
            await c.execute(
                "INSERT INTO bureau_downlink (message_id, enterprise_id, region_code, kind, payload)"
                " VALUES (gen_random_uuid(), %s, %s, %s, %s::jsonb)",
                (a["enterprise"], a["region_code"], msg.kind, msg.model_dump_json()),
            )
            a = await self._alarm(c, user, aid)
            assert a is not None
            a["events"] = await self._events(c, aid)
        self.on_step()
        log.info("bureau step", alarm=aid, step=body.step, user=user.name)
        return a


Handler = Callable[[web.Request, ApiUser], Awaitable[web.StreamResponse]]


Extra = Callable[[Callable[..., Any], Callable[..., web.Response]], list[web.RouteDef]]
"""More routes behind the same token check: called with (guard, refuse) (`hazmon.bureau.plan_api`)."""


def build_routes(api: BureauApi, extra: Iterable[Extra] = ()) -> list[web.RouteDef]:  # noqa: PLR0915 - one closure per route
    """The API's routes, to mount on the daemon's HTTP app (and ``extra``'s, guarded the same)."""

    def refuse(request: web.Request, code: int, reason: str, who: str | None = None) -> web.Response:
        api.refused.labels(status=str(code)).inc()
        log.warning(
            "bureau API call refused",
            method=request.method,
            path=request.path,
            status=code,
            reason=reason,
            user=who,
        )
        return _error(code, reason)

    def guarded(fn: Handler, officer: bool = False) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:  # noqa: PLR0911 - one per refusal
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.startswith("Bearer ") else ""
            if not token:
                return refuse(request, 401, "missing bearer token")
            if not token.isascii() or not token.isprintable():
                return refuse(
                    request, 400, "Authorization: a bearer token is printable ASCII (RFC 6750 §2.1)"
                )
            user = api.find(token)
            if user is None:
                return refuse(request, 401, "invalid token")
            if officer and user.role != "officer":
                return refuse(request, 403, f"role {user.role} may not do this", user.name)
            try:
                return await fn(request, user)
            except RequestError as e:
                return refuse(request, 400, str(e), user.name)
            except (psycopg.OperationalError, OSError) as e:
                log.warning("bureau API: database away", error=str(e).strip())
                return refuse(request, 503, "database unavailable, try again", user.name)

        return handler

    async def list_enterprises(request: web.Request, user: ApiUser) -> web.StreamResponse:
        _parse_query(request, None)
        rows = await api.enterprises(user)
        return web.json_response({"enterprises": jsonable(rows), "count": len(rows)})

    async def show_enterprise(request: web.Request, user: ApiUser) -> web.StreamResponse:
        eid = _parse_path(request, EnterprisePath)
        _parse_query(request, None)
        e = await api.enterprise(user, eid)
        if e is None:
            return refuse(request, 404, f"no enterprise {eid}", user.name)
        return web.json_response(jsonable(e))

    async def list_alarms(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = _parse_query(request, AlarmQuery)
        assert isinstance(q, AlarmQuery)
        rows, total = await api.alarms(user, q)
        return web.json_response(
            {"alarms": jsonable(rows), "count": total, "limit": q.limit, "offset": q.offset}
        )

    async def show_alarm(request: web.Request, user: ApiUser) -> web.StreamResponse:
        aid = _parse_path(request, AlarmPath)
        _parse_query(request, None)
        a = await api.alarm(user, aid)
        if a is None:
            return refuse(request, 404, f"no alarm {aid}", user.name)
        return web.json_response(jsonable(a))

    async def post_step(request: web.Request, user: ApiUser) -> web.StreamResponse:
        aid = _parse_path(request, AlarmPath)
        _parse_query(request, None)
        body = await _parse_body(request)
        got = await api.step(user, aid, body)
        if got is None:
            return refuse(request, 404, f"no alarm {aid}", user.name)
        if isinstance(got, str):
            return refuse(request, 409, got, user.name)
        return web.json_response(jsonable(got))

    async def list_warnings(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = _parse_query(request, WarningQuery)
        assert isinstance(q, WarningQuery)
        rows = await api.run(
            lambda c: warnings.list_warnings(
                c, user.scope, open_only=q.open, enterprise_id=q.enterprise, limit=q.limit
            )
        )
        return web.json_response({"warnings": jsonable(rows), "count": len(rows)})

    async def show_warning(request: web.Request, user: ApiUser) -> web.StreamResponse:
        wid = int(_parse_path(request, WarningPath))
        _parse_query(request, None)
        w = await api.run(lambda c: warnings.get_warning(c, wid, user.scope))
        if w is None:
            return refuse(request, 404, f"no warning {wid}", user.name)
        return web.json_response(jsonable(w))

    async def step_warning(request: web.Request, user: ApiUser) -> web.StreamResponse:
        wid = int(_parse_path(request, WarningPath))
        _parse_query(request, None)
        body = await parse_body(request, WarningStepBody)
        now = api.clock()
        got = await api.run(
            lambda c: warnings.step(
                c, wid, body.step, actor=user.name, comment=body.comment, now=now, scope=user.scope
            )
        )
        if isinstance(got, Refused):
            return refuse(request, 409, f"{got.reason} ({got.reason_zh})", user.name)
        if isinstance(got, warnings.NotFound):
            return refuse(request, 404, f"no warning {wid}", user.name)
        log.info("warning step", warning=wid, step=body.step, user=user.name)
        api.on_step()  # the step went to the downlink outbox with it: send it now
        w = await api.run(lambda c: warnings.get_warning(c, wid, user.scope))
        return web.json_response(jsonable(w))

    async def list_plans(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = _parse_query(request, PlanQuery)
        assert isinstance(q, PlanQuery)
        where = "e.region_code LIKE %s"
        args: list[Any] = [_in(user)]
        if q.open:
            where += " AND p.ended_at IS NULL"
        if q.drill is not None:
            where += " AND p.drill = %s"
            args.append(q.drill)
        async with await api.db() as c:
            cur = await c.execute(
                "SELECT p.*, e.name AS enterprise_name, e.region_code FROM bureau_plan p"
                f" JOIN bureau_enterprise e USING (enterprise_id) WHERE {where}"
                " ORDER BY p.started_at DESC LIMIT 500",
                args,
            )
            rows = await cur.fetchall()
        return web.json_response({"plans": jsonable(rows), "count": len(rows)})

    async def daily_figures(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = _parse_query(request, FiguresQuery)
        assert isinstance(q, FiguresQuery)
        now = api.clock()
        got = await api.run(lambda c: figures.daily(c, q.day, api.warning_settings, now, user.scope))
        out = dataclasses.asdict(got)
        for e, fig in zip(out["enterprises"], got.enterprises, strict=True):
            e.update(online_rate=fig.online_rate, handling_rate=fig.handling_rate, risk=fig.risk)
        return web.json_response(jsonable(out))

    p = API_PREFIX
    return [
        web.get(f"{p}/warnings", guarded(list_warnings)),
        web.get(f"{p}/warnings/{{id}}", guarded(show_warning)),
        web.post(f"{p}/warnings/{{id}}/steps", guarded(step_warning, officer=True)),
        web.get(f"{p}/figures", guarded(daily_figures)),
        *figure_routes(api, guarded, refuse),  # /figures/supervision (figures_api.py)
        web.get(f"{p}/plans", guarded(list_plans)),
        web.get(f"{p}/enterprises", guarded(list_enterprises)),
        web.get(f"{p}/enterprises/{{id}}", guarded(show_enterprise)),
        web.get(f"{p}/alarms", guarded(list_alarms)),
        web.get(f"{p}/alarms/{{id}}", guarded(show_alarm)),
        web.post(f"{p}/alarms/{{id}}/steps", guarded(post_step, officer=True)),
        *supervision_routes(api, guarded, refuse),  # 挂牌督办 and hidden dangers (supervision_api.py)
        *weather_warning_routes(api, guarded, refuse, p),  # official weather warnings (weather_api)
        *(r for more in extra for r in more(guarded, refuse)),
    ]
