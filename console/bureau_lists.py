"""The bureau's long lists: enterprises, alarms and warnings, paged and filtered on the server.

Each list reads one page through `hazmon.bureau.listing` with the signed-in user's region
(`BureauUser.scope`), so a county user's page — and every fragment the page polls — holds
only that county's rows. The filters are in the query string (`console.list_query`); a bad
one is a 400 page naming it. The alarm list (and the region page's red/orange alarms)
refresh themselves: the console's one script polls a server-rendered fragment of the same
page with the same filters (``/alarms/rows?…``, ``/region/alarms``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from hazmon.bureau import listing
from hazmon.console.list_query import ListArgs, choice, choices, pager, parse_list, pattern, text
from hazmon.console.web import BaseCtx
from hazmon.plant.regions import covers
from hazmon.plant.standards import Tier
from hazmon.plant.web_users import BureauUser

if TYPE_CHECKING:  # the page module imports this one
    from hazmon.console.bureau_pages import BureauConsole

__all__ = ["colour_name", "mount_lists", "severe_alarms"]

BCtx = BaseCtx[BureauUser]
COLOURS = ("red", "orange", "yellow", "blue")
_TIER = {t.colour: int(t.value) for t in Tier}
_COUNTY = pattern(r"[0-9]{6}", "a 6-digit county code")
_ENTERPRISE = pattern(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", "an enterprise id")


def colour_name(tier: int) -> str:
    """A tier or warning colour (1 blue … 4 red; outside that, the nearest) by its name."""
    return Tier(max(1, min(4, int(tier)))).colour


ENTERPRISE_CHECKS = {"county": _COUNTY, "q": text()}
ALARM_CHECKS = {
    "state": choice(listing.ALARM_STATES),
    "colour": choices(COLOURS),
    "county": _COUNTY,
    "enterprise": _ENTERPRISE,
    "q": text(),
}
WARNING_CHECKS = {**ALARM_CHECKS, "state": choice(listing.WARNING_STATES)}


def _args(ctx: BCtx, checks: dict[str, Any]) -> ListArgs:
    args = parse_list(ctx.request.query, checks)
    county = args.value("county")
    if county and not covers(ctx.user.scope, county):
        args.problems.append(f"county: {county} is outside your region ({ctx.user.region.code})")
    return args


def _colours(args: ListArgs) -> tuple[int, ...]:
    raw = args.value("colour")
    return tuple(_TIER[c] for c in raw.split(",")) if raw else ()


def alarm_filter(args: ListArgs) -> listing.AlarmFilter:
    state = args.value("state")
    return listing.AlarmFilter(
        state="open" if state == "open" else "closed" if state == "closed" else None,
        colours=_colours(args),
        county=args.value("county") or None,
        enterprise=args.value("enterprise") or None,
        text=args.value("q") or None,
    )


def warning_filter(args: ListArgs) -> listing.WarningFilter:
    return listing.WarningFilter(
        state=args.value("state") or None,
        colours=_colours(args),
        county=args.value("county") or None,
        enterprise=args.value("enterprise") or None,
        text=args.value("q") or None,
    )


async def severe_alarms(c: BureauConsole, ctx: BCtx, limit: int = 100) -> list[dict[str, Any]]:
    """The open red and orange alarms of the user's region, newest first."""
    f, scope = listing.AlarmFilter(state="open", colours=(4, 3)), ctx.user.scope
    got, _ = await c.api.run(lambda conn: listing.page_alarms(conn, scope, f, limit, 0))
    for a in got:
        a["colour_name"] = a["tier_name"]  # the enterprise names the colour
    return list(got)


def mount_lists(c: BureauConsole) -> None:
    api = c.api

    def bad(ctx: BCtx, args: ListArgs) -> web.Response:
        return c.render(ctx.request, "message.html", 400, title="bad_query", reasons=args.problems, ctx=ctx)

    def past_end(ctx: BCtx, args: ListArgs, total: int) -> web.Response | None:
        pages = max(1, -(-total // args.size))
        if args.page <= pages:
            return None
        args.problems.append(f"page: {args.page} is past the last page ({pages})")
        return bad(ctx, args)

    async def enterprises(ctx: BCtx) -> web.StreamResponse:
        args = _args(ctx, ENTERPRISE_CHECKS)
        if args.problems:
            return bad(ctx, args)
        f = listing.EnterpriseFilter(county=args.value("county") or None, text=args.value("q") or None)
        scope = ctx.user.scope
        got, total = await api.run(
            lambda conn: listing.page_enterprises(conn, scope, f, args.size, args.offset)
        )
        return past_end(ctx, args, total) or c.render(
            ctx.request, "enterprises.html", ctx=ctx, rows=got, args=args, pg=pager(args, total)
        )

    async def alarm_page(ctx: BCtx) -> tuple[ListArgs, list[dict[str, Any]], int]:
        args = _args(ctx, ALARM_CHECKS)
        if args.problems:
            return args, [], 0
        f, scope = alarm_filter(args), ctx.user.scope
        got, total = await api.run(lambda conn: listing.page_alarms(conn, scope, f, args.size, args.offset))
        for a in got:
            a["colour_name"] = colour_name(a["tier"])
        return args, got, total

    async def alarms(ctx: BCtx) -> web.StreamResponse:
        args, got, total = await alarm_page(ctx)
        if args.problems:
            return bad(ctx, args)
        return past_end(ctx, args, total) or c.render(
            ctx.request,
            "alarms.html",
            ctx=ctx,
            rows=got,
            args=args,
            pg=pager(args, total),
            colours=COLOURS,
            states=listing.ALARM_STATES,
            refresh_s=c.settings.refresh_s,
        )

    async def alarm_rows(ctx: BCtx) -> web.StreamResponse:
        args, got, total = await alarm_page(ctx)
        if args.problems:
            return bad(ctx, args)
        return c.render(
            ctx.request, "alarm_list_rows.html", ctx=ctx, rows=got, args=args, pg=pager(args, total)
        )

    async def region_alarms(ctx: BCtx) -> web.StreamResponse:
        """The region page's open red and orange alarms (its live box)."""
        return c.render(ctx.request, "region_alarms.html", ctx=ctx, alarms=await severe_alarms(c, ctx))

    async def warnings(ctx: BCtx) -> web.StreamResponse:
        args = _args(ctx, WARNING_CHECKS)
        if args.problems:
            return bad(ctx, args)
        f, scope = warning_filter(args), ctx.user.scope
        got, total = await api.run(lambda conn: listing.page_warnings(conn, scope, f, args.size, args.offset))
        for w in got:
            w["colour_name"] = colour_name(w["colour"])
        return past_end(ctx, args, total) or c.render(
            ctx.request,
            "warnings.html",
            ctx=ctx,
            rows=got,
            args=args,
            pg=pager(args, total),
            colours=COLOURS,
            states=listing.WARNING_STATES,
        )

    c.add("GET", "/enterprises", c.page(enterprises))
    c.add("GET", "/alarms", c.page(alarms))
    c.add("GET", "/alarms/rows", c.page(alarm_rows))
    c.add("GET", "/warnings", c.page(warnings))
    c.add("GET", "/region/alarms", c.page(region_alarms))
