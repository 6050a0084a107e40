"""The bureau's console: the region at a glance, an enterprise, a warning, an alarm, with their steps.

Served by the bureau daemon (`hazmon.bureau_daemon` mounts it), signed in with the plant
console's machinery (`WebConsole`: sessions, CSRF, language, audit). Every query goes through
the bureau's own functions with the signed-in user's region (`BureauUser.scope`): the API's
reads (`BureauApi.enterprises|enterprise|alarms|alarm`), `warning_repository.list_warnings|
get_warning` and `figures.daily`. An enterprise, warning or alarm outside the user's region is
a 404, as in the API. Steps are the API's own: `warning_repository.step` (verify, feedback,
close) and `BureauApi.step` (received, verified, closed — recorded and sent down to the
enterprise through the downlink outbox), with the user's name as actor; officers only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from hazmon.bureau import figures, listing
from hazmon.bureau import warning_repository as warnings
from hazmon.bureau.api import STEPS, AlarmQuery, ApiUser, BureauApi, StepBody
from hazmon.bureau.plan_config import BureauPlan
from hazmon.bureau.warning_flow import NEXT, Refused, State
from hazmon.console.bureau_lists import colour_name, mount_lists, severe_alarms
from hazmon.console.bureau_plans import mount_plans
from hazmon.console.bureau_supervision import enterprise_sections, mount_supervision
from hazmon.console.bureau_weather import mount_weather, weather_summary
from hazmon.console.web import BaseCtx, WebConsole
from hazmon.plant.regions import Scope
from hazmon.plant.standards import Tier
from hazmon.plant.web_users import BureauConsoleSettings, BureauUser

__all__ = ["BureauConsole", "age_bucket", "build_bureau_console", "next_alarm_steps", "sparkline"]

BCtx = BaseCtx[BureauUser]
_ALARM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:[0-9]{1,18}")
_ENTERPRISE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
TREND_HOURS = 6
LIST_TOP = 50  # the region page shows the first 50 of a list; the list pages page through the rest
AGES = ((3600, "age_1h"), (86_400, "age_1d"), (7 * 86_400, "age_7d"))


def age_bucket(since: datetime, now: datetime) -> str:
    """The age column of an open warning: under an hour, a day, a week, or older."""
    age = (now - since).total_seconds()
    return next((key for limit, key in AGES if age < limit), "age_older")


def next_alarm_steps(done: str | None) -> list[str]:
    """The bureau steps still ahead of an alarm (the API refuses a step at or before ``done``)."""
    return list(STEPS) if done is None else list(STEPS[STEPS.index(done) + 1 :])


def next_warning_step(state: str) -> str | None:
    return next((s.value for s, (need, _) in NEXT.items() if need.value == state), None)


def sparkline(points: Sequence[tuple[datetime, float]], width: int = 320, height: int = 60) -> str:
    """The ``points`` attribute of an SVG polyline: time across, the value up, scaled to the box."""
    if len(points) < 2:
        return ""
    t0, t1 = points[0][0], points[-1][0]
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span_t = (t1 - t0).total_seconds() or 1.0
    span_v = (hi - lo) or 1.0
    pad = 4
    out = []
    for t, v in points:
        x = pad + (width - 2 * pad) * (t - t0).total_seconds() / span_t
        y = height - pad - (height - 2 * pad) * (v - lo) / span_v
        out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


class BureauConsole(WebConsole[BureauUser]):
    """The console of one bureau, on the bureau daemon's HTTP app (`routes`)."""

    settings: BureauConsoleSettings

    def __init__(
        self,
        settings: BureauConsoleSettings,
        api: BureauApi,
        bureau_name: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        tz = ZoneInfo(api.warning_settings.timezone)
        super().__init__(settings, api.dsn, tz, clock, "/region", templates=("bureau",))
        self.settings, self.api = settings, api
        self.env.globals.update(bureau_name=bureau_name, timezone=api.warning_settings.timezone)

    def find_user(self, name: str) -> BureauUser | None:
        return self.settings.user(name)

    @staticmethod
    def as_api_user(u: BureauUser) -> ApiUser:
        """The API's user for the same person: the same name (the actor), role and region."""
        return ApiUser(u.name, "officer" if u.role == "officer" else "viewer", "", u.scope)

    def not_found(self, ctx: BCtx) -> web.Response:
        return self.render(ctx.request, "message.html", 404, title="not_found", reasons=[], ctx=ctx)


def build_bureau_console(
    settings: BureauConsoleSettings,
    api: BureauApi,
    bureau_name: str,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    plans: Sequence[BureauPlan] = (),
    bureau_scope: Scope | None = None,
    wake_plans: Callable[[], None] = lambda: None,
) -> BureauConsole:
    """The bureau's console with its pages; the roof mounts ``.routes()`` on the daemon's HTTP app.

    ``plans``, ``bureau_scope``, ``wake_plans``: bureau.yaml's own emergency plans, the bureau's
    region and the plan runner's wake-up (`hazmon.console.bureau_plans`); none: no plan listed.
    """
    c = BureauConsole(settings, api, bureau_name, clock)
    mount_lists(c)  # first: /alarms/rows before /alarms/{id}
    mount_supervision(c)
    mount_weather(c)
    mount_plans(c, plans, bureau_scope, wake_plans)
    _mount(c)
    return c


def _mount(c: BureauConsole) -> None:  # noqa: PLR0915 - one closure per page
    api = c.api

    async def region(ctx: BCtx) -> web.StreamResponse:
        user, scope = c.as_api_user(ctx.user), ctx.user.scope
        day = ctx.now.astimezone(c.tz).date()
        figs = await api.run(lambda conn: figures.daily(conn, day, api.warning_settings, ctx.now, scope))
        open_warnings = await api.run(lambda conn: warnings.list_warnings(conn, scope, limit=LIST_TOP))
        for w in open_warnings:
            w["colour_name"] = colour_name(w["colour"])
        by_age = await api.run(lambda conn: listing.open_warning_counts(conn, scope, ctx.now))
        counts: dict[str, dict[str, int]] = {}
        for (colour, age), n in by_age.items():
            counts.setdefault(colour_name(colour), {})[age] = n
        silent_after = timedelta(seconds=api.warning_settings.silent_after_s)
        ents = await api.enterprises(user)
        silent = [e for e in ents if e["last_seen"] is None or ctx.now - e["last_seen"] > silent_after]
        severe = await severe_alarms(c, ctx)
        weather = await weather_summary(c, ctx)
        return c.render(
            ctx.request,
            "region.html",
            ctx=ctx,
            ranking=figs.enterprises[:LIST_TOP],
            ranked=len(figs.enterprises),
            colours=[t.colour for t in sorted(Tier, reverse=True)],
            ages=[k for _, k in AGES] + ["age_older"],
            counts=counts,
            open_warnings=open_warnings,
            silent=silent[:LIST_TOP],
            silent_total=len(silent),
            alarms=severe,
            refresh_s=c.settings.refresh_s,
            weather=weather,
        )

    async def enterprise(ctx: BCtx) -> web.StreamResponse:
        eid = ctx.request.match_info["id"]
        user = c.as_api_user(ctx.user)
        e = await api.enterprise(user, eid) if _ENTERPRISE_ID.fullmatch(eid) else None
        if e is None:
            return c.not_found(ctx)
        assessed = {a["source_id"]: a for a in e["assessments"]}
        alarms, _ = await api.alarms(user, AlarmQuery(open=True, enterprise=eid, limit=200))
        for a in alarms:
            a["colour_name"] = a["tier_name"]
        scope = ctx.user.scope
        recent = await api.run(
            lambda conn: warnings.list_warnings(conn, scope, open_only=False, enterprise_id=eid, limit=20)
        )
        for w in recent:
            w["colour_name"] = colour_name(w["colour"])
        firsts = [(s["id"], s["sensors"][0]) for s in e["hazard_sources"] if s["sensors"]]
        keys = [(sid, x["tag"], x["unit"]) for sid, x in firsts]
        since = ctx.now - timedelta(hours=TREND_HOURS)

        def trend(conn: Any) -> list[dict[str, Any]]:
            out = []
            for sid, tag, unit in keys[:6]:
                pts = conn.execute(
                    "SELECT bucket, mean FROM bureau_aggregate WHERE enterprise_id = %s AND sensor = %s"
                    " AND bucket >= %s AND bucket <= %s AND mean IS NOT NULL ORDER BY bucket",
                    (eid, tag, since, ctx.now),
                ).fetchall()
                vals = [(t, float(v)) for t, v in pts]
                out.append(
                    {
                        "source": sid,
                        "sensor": tag,
                        "unit": unit,
                        "points": sparkline(vals),
                        "last": vals[-1][1] if vals else None,
                        "lo": min((v for _, v in vals), default=None),
                        "hi": max((v for _, v in vals), default=None),
                    }
                )
            return out

        trends = await api.run(trend)
        sections = await enterprise_sections(c, ctx, eid)
        return c.render(
            ctx.request,
            "enterprise.html",
            ctx=ctx,
            e=e,
            assessed=assessed,
            alarms=alarms,
            warnings=recent,
            trends=trends,
            trend_hours=TREND_HOURS,
            **sections,
        )

    def _wid(ctx: BCtx) -> int | None:
        raw = ctx.request.match_info["id"]
        return int(raw) if raw.isdigit() and len(raw) < 19 else None

    async def warning(ctx: BCtx) -> web.StreamResponse:
        wid = _wid(ctx)
        scope = ctx.user.scope
        w = None if wid is None else await api.run(lambda conn: warnings.get_warning(conn, wid, scope))
        if w is None:
            return c.not_found(ctx)
        w["colour_name"] = colour_name(w["colour"])
        return c.render(
            ctx.request,
            "warning.html",
            ctx=ctx,
            w=w,
            state_zh=State(w["state"]).zh,
            next_step=next_warning_step(w["state"]),
            officer=ctx.user.role == "officer",
        )

    async def warning_step(ctx: BCtx) -> web.StreamResponse:
        wid = _wid(ctx)
        if wid is None:
            return c.not_found(ctx)
        name, comment = ctx.form.get("step", ""), ctx.form.get("comment", "").strip()[:2000]
        got = await api.run(
            lambda conn: warnings.step(
                conn, wid, name, actor=ctx.user.name, comment=comment, now=ctx.now, scope=ctx.user.scope
            )
        )
        if isinstance(got, warnings.NotFound):
            return c.not_found(ctx)
        if isinstance(got, Refused):
            return c.refused(ctx, [got.reason_zh if ctx.lang == "zh" else got.reason])
        await c.audit(ctx, f"warning_{name}", f"warning/{wid}", comment)
        return c.back(ctx, f"/warnings/{wid}")

    def _aid(ctx: BCtx) -> str | None:
        raw = ctx.request.match_info["id"]
        return raw if _ALARM_ID.fullmatch(raw) else None

    async def alarm(ctx: BCtx) -> web.StreamResponse:
        aid = _aid(ctx)
        a = None if aid is None else await api.alarm(c.as_api_user(ctx.user), aid)
        if a is None:
            return c.not_found(ctx)
        a["colour_name"] = a["tier_name"]
        return c.render(
            ctx.request,
            "alarm.html",
            ctx=ctx,
            a=a,
            next_steps=next_alarm_steps(a["bureau_step"]),
            officer=ctx.user.role == "officer",
        )

    async def alarm_step(ctx: BCtx) -> web.StreamResponse:
        aid = _aid(ctx)
        name, comment = ctx.form.get("step", ""), ctx.form.get("comment", "").strip()[:2000]
        if aid is None:
            return c.not_found(ctx)
        if name not in STEPS:
            return c.refused(ctx, [f"step: one of {', '.join(STEPS)}"], 400)
        got = await api.step(c.as_api_user(ctx.user), aid, StepBody(step=name, comment=comment))  # type: ignore[arg-type]
        if got is None:
            return c.not_found(ctx)
        if isinstance(got, str):
            return c.refused(ctx, [got])
        await c.audit(ctx, f"alarm_{name}", f"alarm/{aid}", comment)
        return c.back(ctx, f"/alarms/{aid}")

    c.add("GET", "/region", c.page(region))
    c.add("GET", "/enterprises/{id}", c.page(enterprise))
    c.add("GET", "/warnings/{id}", c.page(warning))
    c.add("POST", "/warnings/{id}/step", c.form(warning_step, ("officer",)))
    c.add("GET", "/alarms/{id}", c.page(alarm))
    c.add("POST", "/alarms/{id}/step", c.form(alarm_step, ("officer",)))
