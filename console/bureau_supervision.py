"""The bureau's supervision pages (挂牌督办): the list by deadline, one supervision, and its steps.

Reads and writes go through `hazmon.bureau.supervision_repository` — the same functions the API
uses (``open_supervision``, ``step``, ``get_supervision``) — with the signed-in user's name as the
actor and their region (`BureauUser.scope`) as the scope; the rules (who may take which step at
which level, an accept only after the enterprise reported it done) are `supervision_flow`'s. A
refused step shows its reason and writes nothing. The list pages on the server
(`hazmon.bureau.listing.page_supervisions`); the enterprise page's sections use
`listing.duty_record`, `duty_due.duty_due` (each role's check done, due or overdue, by the periods
the registration carries) and `supervision_repository.list_hidden_dangers|list_supervisions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hazmon.bureau import listing
from hazmon.bureau import supervision_repository as repo
from hazmon.bureau.duty_due import duty_due
from hazmon.bureau.supervision_flow import BUREAU_STEPS, TRANSITIONS, Event, Refused, State, apply, fold
from hazmon.console.list_query import choice, pager, parse_list, pattern, text
from hazmon.console.web import BaseCtx
from hazmon.plant.regions import covers
from hazmon.plant.supervision_standards import SUPERVISION_LEVELS
from hazmon.plant.web_users import BureauUser

if TYPE_CHECKING:  # the page module imports this one
    from hazmon.console.bureau_pages import BureauConsole

__all__ = ["enterprise_sections", "mount_supervision", "next_steps"]

BCtx = BaseCtx[BureauUser]
CHECKS = {
    "due": choice(listing.SUPERVISION_DUE),
    "level": choice(SUPERVISION_LEVELS),
    "county": pattern(r"[0-9]{6}", "a 6-digit county code"),
    "enterprise": pattern(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", "an enterprise id"),
    "q": text(),
}


def next_steps(sv: dict[str, Any], user: BureauUser, now: Any) -> list[str]:
    """The bureau steps this user could take now: those the flow (`apply`) would accept."""
    events = [
        Event(
            e["step"],
            e["at"],
            e["actor"],
            e["level"],
            e["deadline"],
            e["comment"],
            bool((e.get("data") or {}).get("done", False)),
        )
        for e in sv["events"]
    ]
    folded = fold(events)
    state = State(sv["state"])
    candidates = [s for (st, s) in TRANSITIONS if st is state and s in BUREAU_STEPS]
    return [
        s
        for s in candidates
        if not isinstance(
            apply(
                folded,
                s,
                user.name,
                user.scope.level,
                at=now,
                danger_state=(sv.get("hidden_danger") or {}).get("state"),
            ),
            Refused,
        )
    ]


async def enterprise_sections(c: BureauConsole, ctx: BCtx, eid: str) -> dict[str, Any]:
    """The enterprise page's duty record, hidden dangers and supervisions (already in scope)."""
    scope = ctx.user.scope

    def read(conn: Any) -> dict[str, Any]:
        return {
            "duty": listing.duty_record(conn, scope, eid),
            "dangers": repo.list_hidden_dangers(conn, scope, enterprise_id=eid, limit=50),
            "supervisions": repo.list_supervisions(conn, scope, enterprise_id=eid, limit=50),
            "duty_due": duty_due(conn, scope, eid, ctx.now),  # each role: done / due / overdue
        }

    got: dict[str, Any] = await c.api.run(read)
    today = ctx.now.astimezone(c.tz).date()
    got["commitment_today"] = next((m for m in got["duty"]["commitments"] if m["day"] == today), None)
    got["today"] = today
    got["officer"] = ctx.user.role == "officer"
    return got


def _new_deadline(step: str, form: Mapping[str, str]) -> tuple[date | None, list[str]]:
    """An ``extend`` (延期) step's new deadline from the form; the flow judges it (later, not past, level)."""
    if step != "extend":
        return None, []
    raw = form.get("deadline", "")
    try:
        return date.fromisoformat(raw), []
    except ValueError:
        return None, [f"deadline: '{raw[:40]}' is not a date (YYYY-MM-DD)"]


def mount_supervision(c: BureauConsole) -> None:
    api = c.api

    async def listing_page(ctx: BCtx) -> web.StreamResponse:
        args = parse_list(ctx.request.query, CHECKS)
        county = args.value("county")
        if county and not covers(ctx.user.scope, county):
            args.problems.append(f"county: {county} is outside your region ({ctx.user.region.code})")
        if args.problems:
            return c.render(
                ctx.request, "message.html", 400, title="bad_query", reasons=args.problems, ctx=ctx
            )
        f = listing.SupervisionFilter(
            due=args.value("due") or None,
            level=args.value("level") or None,
            county=county or None,
            enterprise=args.value("enterprise") or None,
            text=args.value("q") or None,
        )
        scope, today = ctx.user.scope, ctx.now.astimezone(c.tz).date()
        got, total = await api.run(
            lambda conn: listing.page_supervisions(conn, scope, f, today, limit=args.size, offset=args.offset)
        )
        pg = pager(args, total)
        if args.page > int(str(pg["pages"])):
            why = [f"page: {args.page} is past the last page ({pg['pages']})"]
            return c.render(ctx.request, "message.html", 400, title="bad_query", reasons=why, ctx=ctx)
        return c.render(
            ctx.request,
            "supervisions.html",
            ctx=ctx,
            rows=got,
            args=args,
            pg=pg,
            dues=listing.SUPERVISION_DUE,
            levels=SUPERVISION_LEVELS,
            today=today,
        )

    def _sid(ctx: BCtx) -> int | None:
        raw = ctx.request.match_info["id"]
        return int(raw) if raw.isdigit() and 0 < len(raw) < 19 and int(raw) > 0 else None

    async def show(ctx: BCtx) -> web.StreamResponse:
        sid, scope = _sid(ctx), ctx.user.scope
        sv = None if sid is None else await api.run(lambda conn: repo.get_supervision(conn, sid, scope))
        if sv is None:
            return c.not_found(ctx)
        today = ctx.now.astimezone(c.tz).date()
        return c.render(
            ctx.request,
            "supervision.html",
            ctx=ctx,
            s=sv,
            state_zh=State(sv["state"]).zh,
            overdue=sv["deadline"] < today and sv["state"] not in ("accepted", "closed"),
            steps=next_steps(sv, ctx.user, ctx.now) if ctx.user.role == "officer" else [],
            # 延期: only the level supervising now, while the supervision runs (the flow judges the rest)
            may_extend=ctx.user.role == "officer"
            and ctx.user.scope.level == sv["level"]
            and (State(sv["state"]), "extend") in TRANSITIONS,
            today=today,
        )

    async def take_step(ctx: BCtx) -> web.StreamResponse:
        sid = _sid(ctx)
        if sid is None:
            return c.not_found(ctx)
        name, comment = ctx.form.get("step", ""), ctx.form.get("comment", "").strip()[:2000]
        if name not in BUREAU_STEPS:
            return c.refused(ctx, [f"step: one of {', '.join(BUREAU_STEPS)}"], 400)
        deadline, why = _new_deadline(name, ctx.form)
        if why:
            return c.refused(ctx, why, 400)
        got = await api.run(
            lambda conn: repo.step(
                conn, sid, name, actor=ctx.user.name, comment=comment, now=ctx.now, scope=ctx.user.scope,
                deadline=deadline, tz=c.tz,
            )
        )  # fmt: skip
        if isinstance(got, repo.NotFound):
            return c.not_found(ctx)
        if isinstance(got, Refused):
            return c.refused(ctx, [(got.reason_zh or got.reason) if ctx.lang == "zh" else got.reason])
        api.on_step()  # the step went to the downlink outbox with it: send it now
        detail = comment if deadline is None else f"deadline {deadline}: {comment}"
        await c.audit(ctx, f"supervision_{name}", f"supervision/{sid}", detail)
        return c.back(ctx, f"/supervisions/{sid}")

    async def open_one(ctx: BCtx) -> web.StreamResponse:
        f = ctx.form
        danger_id = f.get("danger_id", "").strip() or None
        enterprise_id = f.get("enterprise_id", "").strip() or None
        try:
            deadline = date.fromisoformat(f.get("deadline", ""))
        except ValueError:
            return c.refused(
                ctx, [f"deadline: '{f.get('deadline', '')[:40]}' is not a date (YYYY-MM-DD)"], 400
            )
        got = await api.run(
            lambda conn: repo.open_supervision(
                conn, ctx.user.scope, actor=ctx.user.name, danger_id=danger_id, enterprise_id=enterprise_id,
                deadline=deadline, bureau_person=f.get("bureau_person", "").strip()[:200],
                comment=f.get("comment", "").strip()[:2000], now=ctx.now, tz=c.tz,
                min_level=api.supervision.min_level.as_map(),
            )
        )  # fmt: skip
        if isinstance(got, repo.NotFound):
            return c.not_found(ctx)
        if isinstance(got, list):
            return c.refused(ctx, [(r.reason_zh or str(r)) if ctx.lang == "zh" else str(r) for r in got], 400)
        api.on_step()
        await c.audit(ctx, "supervision_open", f"supervision/{got['id']}", danger_id or enterprise_id or "")
        return c.back(ctx, f"/supervisions/{got['id']}")

    c.add("GET", "/supervisions", c.page(listing_page))
    c.add("POST", "/supervisions", c.form(open_one, ("officer",)))
    c.add("GET", "/supervisions/{id}", c.page(show))
    c.add("POST", "/supervisions/{id}/step", c.form(take_step, ("officer",)))
