"""The bureau's own emergency plans (应急预案) pages: the plans and their activations, one activation.

The plans are bureau.yaml's ``plans:`` (`hazmon.bureau.plan_config.BureauPlan`), seen by a user
when the plan's region lies inside the user's (`plan_api.visible_plans`); another plan, or an
activation of one, is a 404. Every read and step goes through the functions the plan API uses
(`hazmon.bureau.plan_api.plan_activations|start_plan|confirm_plan_step|end_plan`), with the
signed-in user's name and role — so who may start, confirm a step or end is `hazmon.bureau.plans`'
rule, and a refusal shows its reason and writes nothing. A start by hand wakes the plan runner
(``wake``), which tells the plan's recipients, as the API's start does. Officers only; every
form carries the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hazmon.bureau.plan_api import confirm_plan_step, end_plan, plan_activations, start_plan, visible_plans
from hazmon.bureau.plan_config import ANY_OFFICER, BureauPlan
from hazmon.console.web import BaseCtx
from hazmon.plant.plans import LEVELS
from hazmon.plant.regions import Scope
from hazmon.plant.web_users import BureauUser
from hazmon.weather.plans import Refusal

if TYPE_CHECKING:  # the page module imports this one
    from hazmon.console.bureau_pages import BureauConsole

__all__ = ["activation_state", "mount_plans"]

BCtx = BaseCtx[BureauUser]


def activation_state(a: dict[str, Any]) -> str:
    """``active`` (a real activation still open), ``drill`` (a drill still open) or ``ended``."""
    if not a["open"]:
        return "ended"
    return "drill" if a["drill"] else "active"


def mount_plans(  # noqa: PLR0915 - one closure per page
    c: BureauConsole,
    plans: Sequence[BureauPlan],
    bureau: Scope | None,
    wake: Callable[[], None] = lambda: None,
) -> None:
    api = c.api

    def mine(ctx: BCtx) -> list[BureauPlan]:
        return [] if bureau is None else visible_plans(plans, bureau, ctx.user.scope)

    def describe(p: BureauPlan) -> dict[str, Any]:
        lv, allowed = p.manual()
        assert bureau is not None
        return {
            "id": p.id,
            "name": p.name,
            "region": p.scope(bureau).code,
            "manual_level": lv,
            "manual_by": [x for x in allowed if x != ANY_OFFICER],
            "steps": p.steps,
        }

    async def list_page(ctx: BCtx) -> web.StreamResponse:
        ps = mine(ctx)
        acts = await api.run(lambda conn: plan_activations(conn, {p.id for p in ps}))
        for a in acts:
            a["state"] = activation_state(a)
        return c.render(
            ctx.request,
            "plans.html",
            ctx=ctx,
            plans=[describe(p) | {"activations": [a for a in acts if a["plan_id"] == p.id]} for p in ps],
            levels=LEVELS,
            officer=ctx.user.role == "officer",
        )

    async def find(ctx: BCtx) -> tuple[BureauPlan, dict[str, Any]] | None:
        raw = ctx.request.match_info["aid"]
        if not (raw.isdigit() and len(raw) < 19):
            return None
        ps = {p.id: p for p in mine(ctx)}
        acts = await api.run(lambda conn: plan_activations(conn, set(ps), limit=1000))
        a = next((x for x in acts if x["id"] == int(raw)), None)
        return None if a is None else (ps[a["plan_id"]], a)

    async def activation(ctx: BCtx) -> web.StreamResponse:
        got = await find(ctx)
        if got is None:
            return c.not_found(ctx)
        p, a = got
        a["state"] = activation_state(a)
        done = {s["step_id"]: s for s in a["steps"]}
        return c.render(
            ctx.request,
            "plan_activation.html",
            ctx=ctx,
            p=describe(p),
            a=a,
            checklist=[
                {"id": s.id, "text": s.text, "owner": s.owner, "done": done.get(s.id)} for s in p.steps
            ],
            officer=ctx.user.role == "officer",
        )

    def refused(ctx: BCtx, r: Refusal) -> web.Response:
        return c.refused(ctx, [r.reason])

    async def start(ctx: BCtx) -> web.StreamResponse:
        p = next((x for x in mine(ctx) if x.id == ctx.request.match_info["id"]), None)
        if p is None:
            return c.not_found(ctx)
        level = ctx.form.get("level", "").strip() or None
        drill = ctx.form.get("drill", "") == "1"
        u = ctx.user
        got = await api.run(lambda conn: start_plan(conn, p, u.name, u.role, level, drill, ctx.now))
        if isinstance(got, Refusal):
            return refused(ctx, got)
        wake()
        await c.audit(ctx, "plan_drill" if drill else "plan_start", f"plan/{p.id}", str(got["activation"]))
        return c.back(ctx, f"/plans/activations/{got['activation']}")

    async def step(ctx: BCtx) -> web.StreamResponse:
        found = await find(ctx)
        if found is None:
            return c.not_found(ctx)
        p, a = found
        if not a["open"]:
            return refused(ctx, Refusal(f"activation {a['id']} of plan '{p.id}' has ended"))
        sid, note = ctx.form.get("step", ""), ctx.form.get("note", "").strip()[:2000]
        u = ctx.user
        got = await api.run(
            lambda conn: confirm_plan_step(conn, p, sid, u.name, u.role, a["drill"], note, ctx.now)
        )
        if isinstance(got, Refusal):
            return refused(ctx, got)
        await c.audit(ctx, "plan_step", f"plan_activation/{a['id']}", sid)
        return c.back(ctx, f"/plans/activations/{a['id']}")

    async def end(ctx: BCtx) -> web.StreamResponse:
        found = await find(ctx)
        if found is None:
            return c.not_found(ctx)
        p, a = found
        if not a["open"]:
            return refused(ctx, Refusal(f"activation {a['id']} of plan '{p.id}' has already ended"))
        u = ctx.user
        got = await api.run(lambda conn: end_plan(conn, p, u.name, u.role, a["drill"], ctx.now))
        if isinstance(got, Refusal):
            return refused(ctx, got)
        await c.audit(ctx, "plan_end", f"plan_activation/{a['id']}", got["reason"])
        return c.back(ctx, f"/plans/activations/{a['id']}")

    c.add("GET", "/plans", c.page(list_page))
    c.add("GET", "/plans/activations/{aid}", c.page(activation))
    c.add("POST", "/plans/activations/{aid}/steps", c.form(step, ("officer",)))
    c.add("POST", "/plans/activations/{aid}/end", c.form(end, ("officer",)))
    c.add("POST", "/plans/{id}/start", c.form(start, ("officer",)))
