"""``GET /api/v1/figures/supervision?period=2026-Q3&region=320116&format=json|csv|xlsx``.

The supervision figures (`hazmon.bureau.supervision_figures`) of a report period for a region
inside the token's own (default: the token's region). A region outside the token's is a 404,
as every other thing of another county is; a period or region that does not parse is a 400
naming the field. ``format=csv`` answers a UTF-8 CSV with a byte-order mark (Excel opens it
with its Chinese intact), ``format=xlsx`` an Excel workbook; both as an attachment named
``supervision-figures-<region>-<period>.<ext>``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hazmon.bureau.config import inside
from hazmon.bureau.export import to_csv, to_xlsx
from hazmon.bureau.periods import PERIOD_PATTERN, PeriodError, parse_period
from hazmon.bureau.supervision_figures import (
    COLUMNS,
    Counts,
    SupervisionFigures,
    export_rows,
    supervision_figures,
)
from hazmon.plant.http_request import RequestError, parse_query
from hazmon.plant.regions import Level, Scope

if TYPE_CHECKING:
    from hazmon.bureau.api import ApiUser, BureauApi

__all__ = ["FiguresQuery", "figure_routes", "figures_json", "scope_of_code"]


class FiguresQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: Annotated[str, Field(pattern=PERIOD_PATTERN)]
    region: Annotated[str | None, Field(pattern=r"^[0-9]{6}$")] = None
    format: Literal["json", "csv", "xlsx"] = "json"
    lang: Literal["zh", "en", "both"] = "both"


def scope_of_code(code: str) -> Scope:
    """A GB/T 2260 code as the region it names.

    000000 the nation, xx0000 a province, xxxx00 a city, anything else a county.
    """
    level: Level
    if code == "000000":
        level = "nation"
    elif code.endswith("0000"):
        level = "province"
    elif code.endswith("00"):
        level = "city"
    else:
        level = "county"
    return Scope(code, level)


def figures_json(f: SupervisionFigures) -> dict[str, Any]:
    """The figures with their rates, as the API answers them."""

    def counts(c: Counts) -> dict[str, Any]:
        return asdict(c) | c.derived()

    return {
        "period": f.period.text,
        "period_zh": f.period.label_zh,
        "timezone": f.timezone,
        "start": f.start.isoformat(),
        "end": f.end.isoformat(),
        "region": {"code": f.scope.code, "level": f.scope.level},
        "total": counts(f.total),
        "regions": {lv: [counts(r) for r in rs] for lv, rs in f.regions.items()},
        "enterprises": [counts(e) for e in f.enterprises],
    }


Handler = Callable[[web.Request, "ApiUser"], Awaitable[web.StreamResponse]]
Guard = Callable[..., Callable[[web.Request], Awaitable[web.StreamResponse]]]
Refuse = Callable[..., web.Response]


def figure_routes(api: BureauApi, guarded: Guard, refuse: Refuse) -> list[web.RouteDef]:
    """The route, guarded (token, 400 on bad input, 503 without a database) as the API's others."""

    async def supervision(request: web.Request, user: ApiUser) -> web.StreamResponse:
        q = parse_query(request, FiguresQuery)
        assert q is not None
        try:
            period = parse_period(q.period)
        except PeriodError as e:
            raise RequestError(f"query.period: {e}") from e
        scope = user.scope if q.region is None else scope_of_code(q.region)
        if not inside(user.scope, scope):
            return refuse(request, 404, f"no region {scope.code}", user.name)
        tz = api.warning_settings.timezone
        now = api.clock()
        f = await api.run(lambda c: supervision_figures(c, period, scope, tz, now))
        if q.format == "json":
            return web.json_response(figures_json(f))
        rows = export_rows(f, "en" if q.lang == "en" else "zh")
        name = f"supervision-figures-{scope.code}-{period.text}.{q.format}"
        if q.format == "csv":
            body, ctype = to_csv(COLUMNS, rows, q.lang), "text/csv; charset=utf-8"
        else:
            body = to_xlsx(COLUMNS, rows, title=f"{scope.code} {period.text}", lang=q.lang)
            ctype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        return web.Response(
            body=body,
            headers={"Content-Type": ctype, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    return [web.get("/api/v1/figures/supervision", guarded(supervision))]
