"""The bureau platform's supervision figures (隐患排查治理统计) for a region and a report period.

Reads the bureau daemon's database through ``bureau_supervision_figures`` (migration 0890;
the counts are explained in bureau/README.md, "Supervision figures"): enterprises screened,
hidden dangers found (general / major), rectified, rectification rate, under supervision
(挂牌督办), overdue; per county; per enterprise with the responsible persons' duty check
completion and the daily commitment rates. The variable *period* offers the last 12 months,
8 quarters and 3 years (``2026-03``, ``2026-Q3``, ``2026``) in the bureau's time zone (the
default of ``warnings.timezone``, Asia/Shanghai); the same figures as the API's
``/api/v1/figures/supervision`` and ``hazmon bureau figures``.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Template, Templating, Time

from hazmon.grafana.bureau_platform import (
    bureau_sql,
    enterprise_name,
    percent,
    region_variable,
)
from hazmon.grafana.common import BUREAU_DATASOURCE, SCHEMA_VERSION, Grid, rename, stat, table
from hazmon.grafana.texts import Texts
from hazmon.plant.bureau_standards import WarningSettings

__all__ = ["SUPERVISION_UID", "TIMEZONE", "period_variable", "supervision_dashboard"]

SUPERVISION_UID = "hazmon-bp-supervision"
TIMEZONE = WarningSettings().timezone
"""The bureau's local time zone the periods are cut in (the default; rebuild if yours differs)."""

_FIGURES = f"""WITH b AS (SELECT * FROM bureau_period_bounds('$period', '{TIMEZONE}')),
f AS (SELECT f.* FROM b, bureau_supervision_figures(bureau_region_prefix('$region'), b.period_start,
                                                    b.period_end, now(), '{TIMEZONE}') f)"""


def _rate(num: str, den: str) -> str:
    return f"CASE WHEN sum({den}) > 0 THEN sum({num})::float8 / sum({den}) END"


_RECTIFIED = _rate("f.rectified_general + f.rectified_major", "f.found_general + f.found_major")
_SUMS = f"""sum(f.found_general + f.found_major) AS found, sum(f.found_general) AS found_general,
       sum(f.found_major) AS found_major, sum(f.rectified_general + f.rectified_major) AS rectified,
       {_RECTIFIED} AS rectification_rate,
       sum(f.supervisions_opened) AS supervisions_opened, sum(f.supervisions_open) AS supervisions_open,
       sum(f.overdue) AS overdue"""


def period_variable(tr: Texts) -> Template:
    """The current and past months (12), quarters (8) and years (3), newest first."""
    local = f"(now() AT TIME ZONE '{TIMEZONE}')"
    return Template(
        name="period",
        label=tr("var.period"),
        dataSource=BUREAU_DATASOURCE,
        query=f"""SELECT p AS __value, p AS __text FROM (
  SELECT to_char(d, 'YYYY-MM') AS p, 1 AS o, d
  FROM generate_series(date_trunc('month', {local}) - interval '11 months', {local}, interval '1 month') d
  UNION ALL
  SELECT to_char(d, 'YYYY-"Q"Q'), 2, d
  FROM generate_series(date_trunc('quarter', {local}) - interval '21 months', {local}, interval '3 months') d
  UNION ALL
  SELECT to_char(d, 'YYYY'), 3, d
  FROM generate_series(date_trunc('year', {local}) - interval '2 years', {local}, interval '1 year') d
) x ORDER BY o, d DESC""",
        refresh=1,
        sort=0,
    )


def _common(tr: Texts) -> list[dict[str, object]]:
    return [
        rename("found", tr("c.found")),
        rename("found_general", tr("c.found_general")),
        rename("found_major", tr("c.found_major")),
        rename("rectified", tr("c.rectified")),
        percent("rectification_rate", tr("c.rectification_rate")),
        rename("supervisions_opened", tr("c.supervisions_opened")),
        rename("supervisions_open", tr("c.supervisions_open")),
        rename("overdue", tr("c.overdue_dangers")),
    ]


def supervision_dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    ds = BUREAU_DATASOURCE
    totals = stat(
        tr("p.bs_totals"),
        [
            bureau_sql(
                "A",
                f"""{_FIGURES}
SELECT count(*) AS enterprises, count(*) FILTER (WHERE f.screened) AS screened,
       {_SUMS}
FROM f""",
            )
        ],
        g(24, 5),
        color_mode="value",
        thresholds=((None, "text"),),
        overrides=[
            rename("enterprises", tr("c.enterprises")),
            rename("screened", tr("c.screened")),
            *_common(tr),
        ],
        datasource=ds,
    )
    g.newline()
    county = "(e.registration #>> '{enterprise,county}')"
    counties = table(
        tr("p.bs_counties"),
        [
            bureau_sql(
                "A",
                f"""{_FIGURES}
SELECT f.region_code, max({county}) AS county, count(*) AS enterprises,
       count(*) FILTER (WHERE f.screened) AS screened,
       {_SUMS},
       {_rate("f.duty_checks_done", "f.duty_checks_due")} AS duty_completion,
       {_rate("f.commitments_filed", "f.commitment_days_due")} AS commitment_rate
FROM f JOIN bureau_enterprise e USING (enterprise_id)
GROUP BY f.region_code ORDER BY f.region_code""",
            )
        ],
        g(24, 8),
        overrides=[
            rename("region_code", tr("c.region_code")),
            rename("county", tr("c.county")),
            rename("enterprises", tr("c.enterprises")),
            rename("screened", tr("c.screened")),
            *_common(tr),
            percent("duty_completion", tr("c.duty_completion")),
            percent("commitment_rate", tr("c.commitment_rate")),
        ],
        datasource=ds,
    )
    g.newline()
    enterprises = table(
        tr("p.bs_enterprises"),
        [
            bureau_sql(
                "A",
                f"""{_FIGURES}
SELECT {enterprise_name(tr)} AS enterprise, f.region_code,
       {_SUMS},
       sum(f.duty_checks_due) AS duty_due, sum(f.duty_checks_done) AS duty_done,
       {_rate("f.duty_checks_done", "f.duty_checks_due")} AS duty_completion,
       sum(f.commitment_days_due) AS commitment_due,
       {_rate("f.commitments_filed", "f.commitment_days_due")} AS commitment_rate,
       {_rate("f.commitments_on_time", "f.commitment_days_due")} AS commitment_on_time
FROM f JOIN bureau_enterprise e USING (enterprise_id)
GROUP BY f.enterprise_id, e.name, e.registration, f.region_code
ORDER BY f.region_code, f.enterprise_id""",
            )
        ],
        g(24, 12),
        overrides=[
            rename("enterprise", tr("c.enterprise")),
            rename("region_code", tr("c.region_code")),
            *_common(tr),
            rename("duty_due", tr("c.duty_due")),
            rename("duty_done", tr("c.duty_done")),
            percent("duty_completion", tr("c.duty_completion")),
            rename("commitment_due", tr("c.commitment_due")),
            percent("commitment_rate", tr("c.commitment_rate")),
            percent("commitment_on_time", tr("c.commitment_on_time")),
        ],
        datasource=ds,
    )
    return Dashboard(
        title=tr("dash.bp_supervision"),
        uid=SUPERVISION_UID,
        tags=["hazmon", "bureau-platform"],
        timezone="browser",
        refresh="",
        time=Time("now-24h", "now"),
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(list=[region_variable(tr), period_variable(tr)]),
        panels=[totals, counties, enterprises],
    ).auto_panel_ids()
