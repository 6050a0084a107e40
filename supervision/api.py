"""The supervision HTTP API: hidden dangers (隐患), duty checks, the daily commitment.

Routes under ``/api/v1/supervision/``, mounted by the roof on the daemon's HTTP server beside
the alarm API, with the same tokens and the same conventions: the roof's ``authorize`` answers
who is calling (or the 401/403 refusal), the request is validated against its model before
anything is read or written (400 naming the field), a step the record's state does not allow is
a 409 listing every reason (`hazmon.supervision.dangers.decide`), an attachment too big or of a
type not allowed a 413 / 415. The actor of every step is the token's name, its role the token's
role; time is the arrival of the request (``now``).

    GET  /api/v1/supervision/dangers?state=&level=&hazard_source=&limit=&offset=
    POST /api/v1/supervision/dangers                     report one (operator, plant_manager)
    GET  /api/v1/supervision/dangers/{id}                the record, its plan, steps and attachments
    POST /api/v1/supervision/dangers/{id}/steps          start | apply | accept | reject | note
    POST /api/v1/supervision/dangers/{id}/plan           the rectification plan (五落实)
    POST /api/v1/supervision/dangers/{id}/attachments?filename=   the file as the body
    GET  /api/v1/supervision/attachments/{id}            the file
    GET  /api/v1/supervision/duty?hazard_source=         every duty's status now, and recent checks
    POST /api/v1/supervision/duty                        a responsible person's check
    GET  /api/v1/supervision/commitments?days=           today's status and recent commitments
    POST /api/v1/supervision/commitments                 the daily commitment (plant_manager)
    GET  /api/v1/supervision/supervisions                the bureau's 挂牌督办 received, with our reports
    POST /api/v1/supervision/supervisions/{id}/progress  {"comment", "done"}: progress, sent up to the bureau
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hazmon.plant.http_request import RequestError, parse_body, parse_model, parse_query
from hazmon.plant.model import Plant
from hazmon.plant.schema import Text
from hazmon.plant.supervision_standards import DUTY_ROLES
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as repo
from hazmon.supervision.attachments import ATTACHMENT_MAX_BYTES, AttachmentError
from hazmon.supervision.dangers import Action, DangerLevel, FoundBy, Plan, RefusedError, Report, Step
from hazmon.supervision.duty import SOURCE_STATES, Commitment, DutyCheck, commitment_status
from hazmon.supervision.views import attachment_json, check_json, commitment_json, danger_json

__all__ = ["PREFIX", "Caller", "routes"]

log = structlog.get_logger("hazmon.supervision.api")

PREFIX = "/api/v1/supervision"
Conn = psycopg.Connection[tuple[Any, ...]]
Connect = Callable[[], AbstractContextManager[Conn]]


class Caller(Protocol):
    """Who calls (an API token of `hazmon.alarms.auth`): its name is the actor, its role the role."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...


Authorize = Callable[[web.Request], "Caller | web.Response"]


class NotFoundError(Exception):
    """No such record in this enterprise."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdPath(_Body):
    id: Annotated[int, Field(ge=1, le=2**63 - 1)]


class DangerQuery(_Body):
    state: Text = ""
    level: Literal["general", "major"] | None = None
    hazard_source: Text | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    offset: Annotated[int, Field(ge=0)] = 0


class ReportBody(_Body):
    title: Annotated[Text, Field(min_length=1, max_length=500)]
    level: DangerLevel
    found_by: FoundBy = FoundBy.INSPECTION
    hazard_source: Text | None = None
    unit: Text = ""
    sensor: Text | None = None
    equipment: Text | None = None
    criteria: Annotated[list[Annotated[int, Field(ge=1, le=20)]], Field(max_length=20)] = []
    alarm_id: Annotated[int, Field(ge=1)] | None = None
    duty_check_id: Annotated[int, Field(ge=1)] | None = None
    description: Annotated[Text, Field(max_length=10_000)] = ""
    comment: Annotated[Text, Field(max_length=10_000)] = ""


class StepBody(_Body):
    action: Literal["start", "apply", "accept", "reject", "note"]
    comment: Annotated[Text, Field(max_length=10_000)] = ""
    deadline: date | None = None
    """With ``start``: the deadline of a general hidden danger rectified without a plan."""


class PlanBody(_Body):
    goal: Text
    measures: Text
    funds: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)] | None = None
    materials: Text = ""
    organisation: Text
    persons: Annotated[list[Annotated[Text, Field(min_length=1)]], Field(min_length=1, max_length=20)]
    deadline: date
    safety_measures: Text
    contingency_plan: Text
    comment: Annotated[Text, Field(max_length=10_000)] = ""


class AttachQuery(_Body):
    filename: Annotated[Text, Field(min_length=1, max_length=255)]


class DutyQuery(_Body):
    hazard_source: Text | None = None


class CheckBody(_Body):
    hazard_source: Text
    duty_role: Literal["principal", "technical", "operational"]
    person: Text
    at: datetime | None = None
    """When the check was done (with a time zone); default: when the request arrived."""
    what: Annotated[Text, Field(min_length=1, max_length=2000)]
    findings: Annotated[Text, Field(max_length=10_000)] = ""


class ProgressBody(_Body):
    comment: Annotated[Text, Field(min_length=1)]
    done: bool = False


class CommitmentQuery(_Body):
    days: Annotated[int, Field(ge=1, le=366)] = 7


class CommitmentBody(_Body):
    by: Annotated[Text, Field(min_length=1)]
    sources: dict[str, Literal["running", "stopped", "maintenance"]]
    special_work: dict[str, Annotated[int, Field(ge=0, le=10_000)]] = {}
    note: Annotated[Text, Field(max_length=10_000)] = ""


assert set(SOURCE_STATES) == {"running", "stopped", "maintenance"}
assert set(DUTY_ROLES) == {"principal", "technical", "operational"}

Handler = Callable[[web.Request, Caller], Awaitable[web.StreamResponse]]


def routes(  # noqa: PLR0915 - one closure per route, as in the alarm API
    plant: Plant, connect: Connect, now: Callable[[], datetime], authorize: Authorize
) -> list[web.RouteDef]:
    """The routes, bound to the plant; ``connect()`` gives a connection whose block commits."""
    tz = ZoneInfo(plant.enterprise.timezone)
    eid = plant.enterprise.id

    async def db(fn: Callable[[Conn], Any]) -> Any:
        def run() -> Any:
            with connect() as conn:
                return fn(conn)

        return await asyncio.to_thread(run)

    def guarded(
        roles: tuple[str, ...], fn: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:  # noqa: PLR0911 - one per refusal
            who = authorize(request)
            if isinstance(who, web.Response):
                return who
            if who.role not in roles:
                return _refuse(request, 403, f"role {who.role} may not do this", who.name)
            try:
                return await fn(request, who)
            except RequestError as e:
                return _refuse(request, 400, str(e), who.name)
            except AttachmentError as e:  # (a RefusedError: first)
                return web.json_response({"error": str(e)}, status=_attachment_status(str(e)))
            except RefusedError as e:
                return web.json_response({"error": "; ".join(e.reasons), "reasons": e.reasons}, status=409)
            except NotFoundError as e:  # an unknown record, or one of another enterprise
                return web.json_response({"error": str(e)}, status=404)
            except psycopg.OperationalError as e:  # the database is down: try again, nothing was written
                log.warning("supervision API: database unavailable", path=request.path, error=str(e).strip())
                return web.json_response({"error": "database unavailable; nothing was recorded"}, status=503)

        return handler

    def step(who: Caller, action: Action, comment: str = "", data: dict[str, Any] | None = None) -> Step:
        return Step(action, who.name, who.role, now(), comment, data or {})

    def danger_id(request: web.Request) -> int:
        return parse_model(IdPath, {"id": request.match_info["id"]}, "path").id

    async def list_dangers(request: web.Request, who: Caller) -> web.StreamResponse:
        q = parse_query(request, DangerQuery)
        assert q is not None
        states = [s for s in q.state.replace(" ", "").split(",") if s]
        ds = await db(
            lambda c: repo.list_dangers(c, eid, states, hazard_source=q.hazard_source, level=q.level)
        )
        t = now()
        page = [danger_json(d, tz, t) for d in ds[q.offset : q.offset + q.limit]]
        return web.json_response({"dangers": page, "count": len(ds), "offset": q.offset, "limit": q.limit})

    async def report(request: web.Request, who: Caller) -> web.StreamResponse:
        parse_query(request, None)
        b = await parse_body(request, ReportBody)
        r = Report(
            title=b.title,
            level=b.level,
            found_by=b.found_by,
            hazard_source=b.hazard_source,
            unit=b.unit,
            sensor=b.sensor,
            equipment=b.equipment,
            criteria=tuple(b.criteria),
            alarm_id=b.alarm_id,
            duty_check_id=b.duty_check_id,
            description=b.description,
        )
        d = await db(lambda c: repo.add_danger(c, plant, step(who, Action.REPORT, b.comment, r.to_json())))
        log.info("hidden danger reported", danger=d.id, level=d.level.value, user=who.name)
        return web.json_response(danger_json(d, tz, now()), status=201)

    async def show(request: web.Request, who: Caller) -> web.StreamResponse:
        i = danger_id(request)
        parse_query(request, None)

        def read(c: Conn) -> dict[str, Any]:
            d = repo.get_danger(c, eid, i)
            if d is None:
                raise NotFoundError(f"no hidden danger {i}")
            out = danger_json(d, tz, now())
            out["attachments"] = [attachment_json(k, a) for k, a in repo.attachments(c, d.id)]
            return out

        return web.json_response(await db(read))

    def _known(c: Conn, i: int) -> None:
        if repo.get_danger(c, eid, i) is None:
            raise NotFoundError(f"no hidden danger {i}")

    async def add_step(request: web.Request, who: Caller) -> web.StreamResponse:
        i = danger_id(request)
        parse_query(request, None)
        b = await parse_body(request, StepBody)
        if b.deadline is not None and b.action != "start":
            raise RequestError("body.deadline: goes with 'start' (or a plan)")
        data = {"deadline": b.deadline.isoformat()} if b.deadline else {}

        def write(c: Conn) -> Any:
            _known(c, i)
            return repo.add_step(c, plant, i, step(who, Action(b.action), b.comment, data))

        d = await db(write)
        log.info("hidden danger step", danger=i, action=b.action, user=who.name, state=d.state.value)
        return web.json_response(danger_json(d, tz, now()))

    async def add_plan(request: web.Request, who: Caller) -> web.StreamResponse:
        i = danger_id(request)
        parse_query(request, None)
        b = await parse_body(request, PlanBody)
        plan = Plan(
            goal=b.goal,
            measures=b.measures,
            funds=b.funds,
            materials=b.materials,
            organisation=b.organisation,
            persons=tuple(b.persons),
            deadline=b.deadline,
            safety_measures=b.safety_measures,
            contingency_plan=b.contingency_plan,
        )

        def write(c: Conn) -> Any:
            _known(c, i)
            return repo.add_step(c, plant, i, step(who, Action.PLAN, b.comment, plan.to_json()))

        d = await db(write)
        return web.json_response(danger_json(d, tz, now()))

    async def attach(request: web.Request, who: Caller) -> web.StreamResponse:
        i = danger_id(request)
        q = parse_query(request, AttachQuery)
        assert q is not None
        if request.content_length is not None and request.content_length > ATTACHMENT_MAX_BYTES:
            raise AttachmentError(_too_big(q.filename, request.content_length))
        content = bytearray()
        while len(content) <= ATTACHMENT_MAX_BYTES:  # never more than the limit + 1 byte in memory
            chunk = await request.content.read(ATTACHMENT_MAX_BYTES + 1 - len(content))
            if not chunk:
                break
            content += chunk
        if len(content) > ATTACHMENT_MAX_BYTES:
            raise AttachmentError(_too_big(q.filename, len(content)))
        ctype = request.headers.get("Content-Type") or None

        def write(c: Conn) -> Any:
            _known(c, i)
            return repo.attach(
                c,
                plant,
                i,
                step(who, Action.ATTACH),
                filename=q.filename,
                content=bytes(content),
                content_type=ctype,
            )

        d, att, meta = await db(write)
        log.info("hidden danger attachment", danger=d.id, attachment=att, size=meta.size, user=who.name)
        return web.json_response(attachment_json(att, meta), status=201)

    async def download(request: web.Request, who: Caller) -> web.StreamResponse:
        i = danger_id(request)
        parse_query(request, None)
        got = await db(lambda c: repo.attachment_content(c, eid, i))
        if got is None:
            return web.json_response({"error": f"no attachment {i}"}, status=404)
        meta, content = got
        return web.Response(
            body=content,
            content_type=meta.content_type,
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{_quote(meta.filename)}"},
        )

    async def duty(request: web.Request, who: Caller) -> web.StreamResponse:
        q = parse_query(request, DutyQuery)
        assert q is not None
        t = now()

        def read(c: Conn) -> dict[str, Any]:
            state = repo.load_state(c, plant, now=t)
            rows = [
                {
                    "hazard_source": hs,
                    "role": role,
                    "person": person,
                    "period": st.period.value,
                    "status": st.status,
                    "period_end": st.period_end.isoformat(),
                    "last_check": None if st.last_check is None else st.last_check.isoformat(),
                }
                for hs, role, person, st in state.duties(t, q.hazard_source)
            ]
            checks = [check_json(x) for x in repo.list_checks(c, eid, q.hazard_source)]
            return {"duties": rows, "checks": checks}

        return web.json_response(await db(read))

    async def check(request: web.Request, who: Caller) -> web.StreamResponse:
        parse_query(request, None)
        b = await parse_body(request, CheckBody)
        if b.at is not None and b.at.tzinfo is None:
            raise RequestError("body.at: must carry a time zone (e.g. 2026-03-01T08:00:00+08:00)")
        t = now()
        c = DutyCheck(
            hazard_source=b.hazard_source,
            role=b.duty_role,
            person=b.person,
            at=b.at or t,
            what=b.what,
            findings=b.findings,
            recorded_by=who.name,
            recorded_role=who.role,
        )
        cid = await db(lambda conn: repo.add_check(conn, plant, c, t))
        log.info("duty check recorded", check=cid, hazard_source=c.hazard_source, role=c.role, user=who.name)
        return web.json_response({"id": cid}, status=201)

    async def commitments(request: web.Request, who: Caller) -> web.StreamResponse:
        q = parse_query(request, CommitmentQuery)
        assert q is not None
        t = now()

        def read(c: Conn) -> dict[str, Any]:
            recent = repo.list_commitments(c, eid, q.days)
            started = repo.ensure_started(c, eid, t)
            st = commitment_status(recent, plant.supervision.commitment_due, started, t, tz)
            return {
                "today": st.today.isoformat(),
                "due_at": st.due_at.isoformat(),
                "filed_today": st.filed_today is not None,
                "missing_day": None if st.missing_day is None else st.missing_day.isoformat(),
                "commitments": [commitment_json(x) for x in recent],
            }

        return web.json_response(await db(read))

    async def commit(request: web.Request, who: Caller) -> web.StreamResponse:
        parse_query(request, None)
        b = await parse_body(request, CommitmentBody)
        t = now()
        c = Commitment(t.astimezone(tz).date(), b.by, t, dict(b.sources), dict(b.special_work), b.note)
        cid = await db(lambda conn: repo.file_commitment(conn, plant, c, who.role))
        log.info("daily commitment filed", commitment=cid, day=str(c.day), user=who.name)
        return web.json_response({"id": cid, **commitment_json(c)}, status=201)

    async def supervised(request: web.Request, who: Caller) -> web.StreamResponse:
        parse_query(request, None)
        rows = await db(lambda conn: sbureau.supervisions(conn, eid))
        return web.json_response({"supervisions": rows, "count": len(rows)})

    async def progress(request: web.Request, who: Caller) -> web.StreamResponse:
        sid = danger_id(request)  # the same positive-integer path id
        parse_query(request, None)
        b = await parse_body(request, ProgressBody)
        t = now()
        pid = await db(
            lambda conn: sbureau.file_progress(
                conn, plant, sid, actor=who.name, role=who.role, at=t, comment=b.comment, done=b.done
            )
        )
        log.info("supervision progress filed", supervision=sid, progress=pid, user=who.name)
        return web.json_response({"id": pid, "supervision_id": sid, "done": b.done}, status=201)

    plant_roles = ("operator", "plant_manager")
    readers = (*plant_roles, "bureau")
    table: list[tuple[str, str, tuple[str, ...], Handler]] = [
        ("GET", "/dangers", readers, list_dangers),
        ("POST", "/dangers", plant_roles, report),
        ("GET", "/dangers/{id}", readers, show),
        ("POST", "/dangers/{id}/steps", readers, add_step),  # a bureau may accept or reject (decide)
        ("POST", "/dangers/{id}/plan", plant_roles, add_plan),
        ("POST", "/dangers/{id}/attachments", plant_roles, attach),
        ("GET", "/attachments/{id}", readers, download),
        ("GET", "/duty", readers, duty),
        ("POST", "/duty", plant_roles, check),
        ("GET", "/commitments", readers, commitments),
        ("POST", "/commitments", plant_roles, commit),
        ("GET", "/supervisions", readers, supervised),
        ("POST", "/supervisions/{id}/progress", plant_roles, progress),
    ]
    return [web.route(m, PREFIX + p, guarded(roles, fn)) for m, p, roles, fn in table]


def _refuse(request: web.Request, code: int, reason: str, who: str | None) -> web.Response:
    log.warning(
        "supervision API call refused",
        method=request.method,
        path=request.path,
        status=code,
        reason=reason,
        user=who,
    )
    return web.json_response({"error": reason}, status=code)


def _too_big(filename: str, size: int) -> str:
    return (
        f"{filename}: {size} bytes is over the limit of {ATTACHMENT_MAX_BYTES} bytes "
        f"({ATTACHMENT_MAX_BYTES // (1024 * 1024)} MiB)"
    )


def _attachment_status(reason: str) -> int:
    if "over the limit" in reason:
        return 413
    if "is not accepted" in reason:
        return 415
    return 422


def _quote(name: str) -> str:
    return quote(name, safe="")
