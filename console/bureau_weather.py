"""The bureau's official weather warnings (气象预警) pages: the warnings of the region, and one warning.

Reads go through `hazmon.bureau.weather_measures.warnings|warning` — the functions the API's
``/weather-warnings`` uses — with the signed-in user's region (`BureauUser.scope`) and the
console's clock as ``now``, so the bureau's own CAP feed (in force by `hazmon.weather.state`) and
the enterprises of the region it names that have not reported it are included. A warning no
enterprise of the user's region reported (and the feed does not name the region) is a 404,
as in the API. The list shows the warnings in force and those ended within `RECENT_DAYS`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from hazmon.bureau import weather_measures
from hazmon.console.web import BaseCtx
from hazmon.plant.weather_standards import DUTIES_ZH
from hazmon.plant.web_users import BureauUser

if TYPE_CHECKING:  # the page module imports this one
    from hazmon.console.bureau_pages import BureauConsole

__all__ = ["RECENT_DAYS", "duty_text", "mount_weather", "recent", "weather_summary"]

BCtx = BaseCtx[BureauUser]
RECENT_DAYS = 7  # an ended warning stays on the list this long after it was sent
LIMIT = 200
_MAX_ID = 200  # the API's IdentifierPath


def duty_text(duty: str, lang: str) -> str:
    """A weather duty's words: the plant's Chinese text (`DUTIES_ZH`), or its key in words."""
    return DUTIES_ZH.get(duty, duty) if lang == "zh" else duty.replace("_", " ")


def recent(rows: list[dict[str, Any]], now: datetime, days: int = RECENT_DAYS) -> list[dict[str, Any]]:
    """The warnings in force, and the ended ones sent within ``days`` of ``now``."""
    since = now - timedelta(days=days)
    return [w for w in rows if w["in_force"] or w["sent"] >= since]


def _at(v: object) -> datetime | None:
    """A time of a duty as kept (JSON: ISO text) as a datetime for the ``local`` filter."""
    if isinstance(v, datetime):
        return v
    return datetime.fromisoformat(v) if isinstance(v, str) and v else None


async def weather_summary(c: BureauConsole, ctx: BCtx) -> dict[str, int]:
    """For the region page: warnings in force, and enterprises concerned that have not confirmed."""
    scope, now = ctx.user.scope, ctx.now
    rows = await c.api.run(lambda conn: weather_measures.warnings(conn, scope, limit=LIMIT, now=now))
    return {
        "in_force": len(rows),
        "not_confirmed": sum(w["not_confirmed"] for w in rows),
        "not_reported": sum(w.get("not_reported", 0) for w in rows),
    }


def mount_weather(c: BureauConsole) -> None:
    api = c.api

    async def listing_page(ctx: BCtx) -> web.StreamResponse:
        scope, now = ctx.user.scope, ctx.now
        rows = await api.run(
            lambda conn: weather_measures.warnings(conn, scope, open_only=False, limit=LIMIT, now=now)
        )
        return c.render(
            ctx.request, "weather_warnings.html", ctx=ctx, rows=recent(rows, now), recent_days=RECENT_DAYS
        )

    async def show(ctx: BCtx) -> web.StreamResponse:
        ident = ctx.request.match_info["identifier"]
        scope, now = ctx.user.scope, ctx.now
        ok = 0 < len(ident) <= _MAX_ID and not any(ch.isspace() or ch in "/\\" for ch in ident)
        w = await api.run(lambda conn: weather_measures.warning(conn, ident, scope, now=now)) if ok else None
        if w is None:
            return c.not_found(ctx)
        for e in w["concerned"]:
            e["duties"] = [
                d | {"confirmed_at": _at(d.get("confirmed_at")), "ended_at": _at(d.get("ended_at")),
                     "text": duty_text(str(d["duty"]), ctx.lang)}
                for d in e["duties"]
            ]  # fmt: skip
        return c.render(ctx.request, "weather_warning.html", ctx=ctx, w=w)

    c.add("GET", "/weather-warnings", c.page(listing_page))
    c.add("GET", "/weather-warnings/{identifier}", c.page(show))
