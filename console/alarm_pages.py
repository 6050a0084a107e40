"""The alarm pages: active alarms (with a fragment the page polls), one alarm with its history, actions.

Actions go through the alarm service's own path (`AlarmApi.act`, the one the HTTP API uses):
the alarm's lifecycle, escalation and audit trail (``alarm_event``, actor = the signed-in
user's name) stay one. Which role may do what is the API's table (`OPERATIONS`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hazmon.alarms.api import AlarmApi
from hazmon.alarms.api_schema import OPERATIONS
from hazmon.alarms.lifecycle import AlarmStatus, EventKind, TransitionError, status
from hazmon.alarms.repository import AlarmRow
from hazmon.alarms.zh import condition_zh, state_zh
from hazmon.console.web import Console, Ctx
from hazmon.plant.standards import Tier
from hazmon.supervision import repository as supervision
from hazmon.supervision.dangers import ACTION_ROLES, Action

__all__ = ["mount_alarm_pages"]

ACTIONS: dict[str, EventKind] = {
    "ack": EventKind.ACKED,
    "shelve": EventKind.SHELVED,
    "unshelve": EventKind.UNSHELVED,
    "comment": EventKind.COMMENT,
}
ROLES: dict[str, tuple[str, ...]] = {op.name: op.roles for op in OPERATIONS if op.name in ACTIONS}


def _row(a: AlarmRow, now_us: int) -> dict[str, Any]:
    s = a.state
    tier = Tier(max(1, min(4, s.tier)))
    return {
        "id": a.id,
        "hazard_source": a.hazard_source,
        "sensor": a.sensor or "",
        "condition": a.condition,
        "state": status(s, now_us).value,
        "state_zh": state_zh(status(s, now_us).value),
        "condition_zh": condition_zh(a.condition),
        "tier": tier.colour,
        "acked": s.acked,
        "acked_by": s.acked_by,
        "shelved_until_us": s.shelved_until_us,
        "activated_at_us": s.activated_at_us,
        "value": s.value,
        "message_zh": s.message_zh,
        "message_en": s.message_en,
        "tier_rank": tier.value,
    }


def active_rows(alarms: AlarmApi, now_us: int) -> list[dict[str, Any]]:
    """Alarms not back to normal, the most severe tier first, then the newest."""
    rows = [_row(a, now_us) for a in alarms.alarms() if a.state.activations > 0]
    rows = [r for r in rows if r["state"] != AlarmStatus.NORMAL.value]
    rows.sort(key=lambda r: (-r["tier_rank"], -(r["activated_at_us"] or 0)))
    return rows


def mount_alarm_pages(console: Console, alarms: AlarmApi) -> None:
    """Add the alarm pages to ``console`` (the roof passes the daemon's alarm service)."""

    def allowed(ctx: Ctx) -> set[str]:
        return {name for name, roles in ROLES.items() if ctx.user.role in roles}

    async def listing(ctx: Ctx) -> web.StreamResponse:
        rows = active_rows(alarms, alarms.now_us())
        return console.render(
            ctx.request,
            "alarms.html",
            rows=rows,
            ctx=ctx,
            allowed=allowed(ctx),
            refresh_s=console.settings.refresh_s,
        )

    async def fragment(ctx: Ctx) -> web.StreamResponse:
        rows = active_rows(alarms, alarms.now_us())
        return console.render(ctx.request, "alarm_rows.html", rows=rows, ctx=ctx, allowed=allowed(ctx))

    async def show(ctx: Ctx) -> web.StreamResponse:
        a = _alarm(ctx)
        if a is None:
            return console.render(ctx.request, "message.html", 404, title="not_found", reasons=[], ctx=ctx)
        events = [e for e in await alarms.events(a.id) if e["kind"] != "notified"]
        row = _row(a, alarms.now_us())
        eid = console.plant.enterprise.id
        dangers = await console.db(lambda conn: supervision.list_dangers(conn, eid, alarm_id=a.id))
        return console.render(
            ctx.request,
            "alarm.html",
            dangers=dangers,
            may_report=ctx.user.role in ACTION_ROLES[Action.REPORT],
            a=row,
            events=events,
            ctx=ctx,
            allowed=allowed(ctx),
            shelve_max_min=int(alarms.settings.shelve_max_s // 60),
        )

    def _alarm(ctx: Ctx) -> AlarmRow | None:
        raw = ctx.request.match_info["id"]
        return alarms.alarm(int(raw)) if raw.isdigit() and len(raw) < 19 else None

    def action(name: str) -> Any:
        async def run(ctx: Ctx) -> web.StreamResponse:
            a = _alarm(ctx)
            if a is None:
                return console.render(
                    ctx.request, "message.html", 404, title="not_found", reasons=[], ctx=ctx
                )
            comment = ctx.form.get("comment", "").strip()[:2000]
            data: dict[str, Any] = {}
            if name == "shelve":
                reason = ctx.form.get("reason", "").strip()
                try:
                    minutes = float(ctx.form.get("minutes", ""))
                except ValueError:
                    minutes = 0.0
                limit = alarms.settings.shelve_max_s
                if not reason or not 0 < minutes * 60 <= limit:
                    why = f"shelve: give a reason and 1 to {int(limit // 60)} minutes"
                    return console.refused(ctx, [why], 400)
                data = {"until_us": alarms.now_us() + round(minutes * 60e6), "reason": reason}
            if name == "comment" and not comment:
                return console.refused(ctx, ["comment: write something"], 400)
            try:
                await alarms.act(a.id, ACTIONS[name], ctx.user.name, comment, data)
            except TransitionError as e:
                return console.refused(ctx, [str(e)])
            await console.audit(ctx, f"alarm_{name}", f"alarm/{a.id}", comment)
            return console.back(ctx, f"/alarms/{a.id}")

        return run

    console.add("GET", "/alarms", console.page(listing))
    console.add("GET", "/alarms/rows", console.page(fragment))
    console.add("GET", "/alarms/{id}", console.page(show))
    for name, roles in ROLES.items():
        console.add("POST", f"/alarms/{{id}}/{name}", console.form(action(name), roles))
