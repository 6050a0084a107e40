"""The bureau API's own emergency plans (``/api/v1/bureau-plans``), scoped by the token's region.

A token sees the plans whose region (default: the bureau's) lies inside its own; another plan
is a 404, as one that does not exist.

- ``GET /bureau-plans``: each plan with its start conditions, recipients, checklist, and its
  activations (newest first; open ones with their confirmed steps; ``drill`` flagged);
- ``POST /bureau-plans/{id}/start`` ``{"level": "II", "drill": false}`` (officer; level default: the
  plan's manual level): recorded with the token's name, told within a round;
- ``POST /bureau-plans/{id}/steps`` ``{"step": "dispatch", "drill": false, "note": ""}`` (officer,
  the step's owner or any officer when the owner is ``officer``): once, with who and when;
- ``POST /bureau-plans/{id}/end`` ``{"drill": false}`` (officer, one of ``end.manual_by``).

A refusal (no manual start, already started, not the owner, already confirmed, not open) is a
409 naming the reason.

The work of each route is a function of its own (`visible_plans`, `plan_activations`,
`start_plan`, `confirm_plan_step`, `end_plan`): the bureau's console (`hazmon.console.bureau_plans`)
calls the same ones.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hazmon.bureau import plan_repository as brepo
from hazmon.bureau.plan_config import BureauPlan
from hazmon.bureau.plans import manual_end, manual_start, may_confirm
from hazmon.plant.http_request import jsonable, parse_body, parse_model, parse_query
from hazmon.plant.regions import Scope, prefix
from hazmon.plant.schema import Text
from hazmon.weather.plans import Refusal, level_name

if TYPE_CHECKING:
    from hazmon.bureau.api import ApiUser, BureauApi

__all__ = ["bureau_plan_routes", "confirm_plan_step", "end_plan", "plan_activations", "start_plan",
           "visible_plans"]  # fmt: skip

Route = Callable[[web.Request], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request, "ApiUser"], Awaitable[web.StreamResponse]]
_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]


class PlanPath(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: _Id


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    level: Literal["I", "II", "III", "IV"] | None = None
    drill: bool = False


class StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    step: _Id
    drill: bool = False
    note: Text = ""


class EndBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    drill: bool = False


def _describe(plan: BureauPlan, bureau: Scope) -> dict[str, Any]:
    s = plan.scope(bureau)
    return {
        "id": plan.id,
        "name": plan.name,
        "region": {"code": s.code, "level": s.level},
        "start": [dataclasses.asdict(c) for c in plan.start],
        "notify": list(plan.notify),
        "steps": [{"id": x.id, "text": x.text, "owner": x.owner} for x in plan.steps],
        "end": dataclasses.asdict(plan.end),
    }


def visible_plans(plans: Sequence[BureauPlan], bureau: Scope, scope: Scope) -> list[BureauPlan]:
    """The plans whose region lies inside ``scope`` (the caller's region)."""
    return [p for p in plans if prefix(p.scope(bureau)).startswith(prefix(scope))]


def plan_activations(c: Any, ids: set[str], limit: int = 200) -> list[dict[str, Any]]:
    """The newest activations of the plans ``ids``, each with ``open`` and its confirmed steps."""
    out = []
    for r in brepo.activations(c, limit=limit):
        if r.plan_id not in ids:
            continue
        row = dataclasses.asdict(r) | {"level": level_name(r.level), "open": r.ended_at is None}
        row.pop("clear_since")
        row["steps"] = [dataclasses.asdict(s) for s in brepo.steps(c, r.id)]
        out.append(row)
    return out


def _open(c: Any, plan: BureauPlan, drill: bool) -> brepo.ActivationRow | Refusal:
    row = next((r for r in brepo.open_activations(c) if r.plan_id == plan.id and r.drill == drill), None)
    return row or Refusal(f"{'no drill of' if drill else 'no open'} plan '{plan.id}'")


def start_plan(  # noqa: PLR0917 - the request and its context
    c: Any, plan: BureauPlan, by: str, role: str, level: str | None, drill: bool, now: datetime
) -> dict[str, Any] | Refusal:
    """A start by hand (`manual_start`) recorded and committed, or why not (the API's and the console's)."""
    opened = [r.activation() for r in brepo.open_activations(c)]
    s = manual_start(plan, by, role, level, drill, opened)
    if isinstance(s, Refusal):
        return s
    aid = brepo.start(c, s, by=by, drill=drill, now=now)
    if aid is None:
        return Refusal(f"plan '{plan.id}' was started meanwhile")
    c.commit()
    return {"activation": aid, "plan": plan.id, "level": level_name(s.level), "drill": drill}


def confirm_plan_step(  # noqa: PLR0917 - the request and its context
    c: Any, plan: BureauPlan, step_id: str, by: str, role: str, drill: bool, note: str, now: datetime
) -> dict[str, Any] | Refusal:
    """A step of the open activation (or drill) confirmed once (`may_confirm`), or why not."""
    row = _open(c, plan, drill)
    if isinstance(row, Refusal):
        return row
    done = [x.step_id for x in brepo.steps(c, row.id)]
    why = may_confirm(plan, step_id, by, role, done)
    if why is None and not brepo.confirm_step(c, row.id, step_id, by=by, now=now, note=note):
        why = Refusal(f"step '{step_id}' is already confirmed")
    if why is not None:
        return why
    c.commit()
    return {"activation": row.id, "step": step_id, "confirmed_by": by, "confirmed_at": now}


def end_plan(  # noqa: PLR0917 - the request and its context
    c: Any, plan: BureauPlan, by: str, role: str, drill: bool, now: datetime
) -> dict[str, Any] | Refusal:
    """The open activation (or drill) ended by hand (`manual_end`), or why not."""
    row = _open(c, plan, drill)
    if isinstance(row, Refusal):
        return row
    e = manual_end(plan, row.activation(), by, role)
    if isinstance(e, Refusal):
        return e
    if not brepo.end(c, e, by, now):
        return Refusal(f"plan '{plan.id}' had already ended")
    c.commit()
    return {"activation": row.id, "ended_by": by, "reason": e.reason}


def bureau_plan_routes(  # noqa: PLR0917 - the parts it joins; one closure per route
    api: BureauApi,
    plans: Sequence[BureauPlan],
    bureau: Scope,
    guard: Callable[..., Route],
    refuse: Callable[..., web.Response],
    at: str,
    wake: Callable[[], None] = lambda: None,
) -> list[web.RouteDef]:
    """The four routes; ``wake``: the plan runner, to tell a start by hand at once."""

    def visible(user: ApiUser) -> list[BureauPlan]:
        return visible_plans(plans, bureau, user.scope)

    def find(request: web.Request, user: ApiUser) -> BureauPlan | None:
        pid = parse_model(PlanPath, {"id": request.match_info["id"]}, "path").id
        return next((p for p in visible(user) if p.id == pid), None)

    async def list_plans(request: web.Request, user: ApiUser) -> web.StreamResponse:
        parse_query(request, None)
        mine = visible(user)
        acts = await api.run(lambda c: plan_activations(c, {p.id for p in mine}))
        out = [
            _describe(p, bureau) | {"activations": [a for a in acts if a["plan_id"] == p.id]} for p in mine
        ]
        return web.json_response({"plans": jsonable(out), "count": len(out)})

    async def act(
        request: web.Request, user: ApiUser, fn: Callable[[Any, BureauPlan], object]
    ) -> web.StreamResponse:
        plan = find(request, user)
        parse_query(request, None)
        if plan is None:
            return refuse(request, 404, f"no plan {request.match_info['id']}", user.name)
        got = await api.run(lambda c: fn(c, plan))
        if isinstance(got, Refusal):
            return refuse(request, 409, got.reason, user.name)
        wake()
        return web.json_response(jsonable(got))

    async def start(request: web.Request, user: ApiUser) -> web.StreamResponse:
        body = await parse_body(request, StartBody)
        return await act(
            request,
            user,
            lambda c, plan: start_plan(c, plan, user.name, user.role, body.level, body.drill, api.clock()),
        )

    async def step(request: web.Request, user: ApiUser) -> web.StreamResponse:
        body = await parse_body(request, StepBody)
        return await act(
            request,
            user,
            lambda c, plan: confirm_plan_step(
                c, plan, body.step, user.name, user.role, body.drill, body.note, api.clock()
            ),
        )

    async def end(request: web.Request, user: ApiUser) -> web.StreamResponse:
        body = await parse_body(request, EndBody)
        return await act(
            request, user, lambda c, plan: end_plan(c, plan, user.name, user.role, body.drill, api.clock())
        )

    return [
        web.get(f"{at}/bureau-plans", guard(list_plans)),
        web.post(f"{at}/bureau-plans/{{id}}/start", guard(start, officer=True)),
        web.post(f"{at}/bureau-plans/{{id}}/steps", guard(step, officer=True)),
        web.post(f"{at}/bureau-plans/{{id}}/end", guard(end, officer=True)),
    ]
