"""Bureau overview (应急管理局) and the assessment register.

For a region: enterprises and hazard sources by grade, warnings escalated to the bureau by tier and
handling step, overdue assessments and filings, and the alarm KPIs against the ISA-18.2 / EEMUA 191
targets. Also the assessment register.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Template, Templating, Time

from hazmon.grafana.common import (
    DATASOURCE,
    HOURS_IN_RANGE,
    SCHEMA_VERSION,
    Grid,
    Sql,
    color_cells,
    grade_case,
    mapping,
    rename,
    stat,
    table,
    tier_mapping,
    timeseries,
    yes_no,
)
from hazmon.grafana.texts import Texts
from hazmon.plant.standards import ALARM_TARGETS, Grade

__all__ = ["REGISTER_UID", "UID", "dashboard", "region_variable", "register_dashboard"]

UID = "hazmon-bureau"
REGISTER_UID = "hazmon-assessment-register"

_REGION = "hazmon_region_match(en.region_code, '$region')"
# Warnings the bureau handles: it has taken a handling step, or the escalation
# schedule reached a bureau recipient (the alarm service records a "notified"
# event with {"recipient": "bureau_county", ...} for each message it sends).
_ESCALATED = (
    "(a.bureau_step IS NOT NULL OR EXISTS (SELECT 1 FROM alarm_event x WHERE x.alarm_id = a.id "
    "AND x.kind IN ('escalated', 'notified') AND x.data ->> 'recipient' LIKE 'bureau%'))"
)


def region_variable(tr: Texts) -> Template:
    """Province, city and county codes of the enterprises on record, plus "all"."""
    return Template(
        name="region",
        label=tr("var.region"),
        dataSource=DATASOURCE,
        query=f"""SELECT '000000' AS __value, '{tr("region.all")}' AS __text, 0 AS o
UNION SELECT left(region_code, 2) || '0000', max(province), 1 FROM enterprise GROUP BY 1
UNION SELECT left(region_code, 4) || '00', max(province || ' ' || city), 2 FROM enterprise GROUP BY 1
UNION SELECT region_code, max(province || ' ' || city || ' ' || county), 3 FROM enterprise GROUP BY 1
ORDER BY 3, 1""",
        refresh=1,
        sort=0,
    )


def _handling(tr: Texts) -> dict[str, object]:
    return mapping(
        {
            "pending": (tr("v.pending"), "red"),
            "received": (tr("v.received"), "orange"),
            "verified": (tr("v.verified"), "yellow"),
            "feedback": (tr("v.feedback"), "blue"),
            "closed": (tr("v.closed"), "green"),
        }
    )


def dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    ename = f"en.{tr.enterprise_name_column}"
    enterprises = stat(
        tr("p.enterprises"),
        [Sql("A", f"SELECT count(*) AS n FROM enterprise en WHERE {_REGION}")],
        g(4, 5),
        color_mode="value",
    )
    by_grade = stat(
        tr("p.by_grade"),
        [
            Sql(
                "A",
                f"""
SELECT {grade_case("g.grade", tr)} AS label, count(hs.id) AS n
FROM (VALUES {", ".join(f"({int(x)})" for x in Grade)}) AS g (grade)
LEFT JOIN (hazard_source hs JOIN enterprise en ON en.id = hs.enterprise_id AND {_REGION})
       ON hs.grade = g.grade
GROUP BY g.grade ORDER BY g.grade""",
            )
        ],
        g(10, 5),
        all_values=True,
        fields="/^n$/",
        display_name="${__data.fields.label}",
        color_mode="value",
        thresholds=((None, "text"),),
    )
    overdue_n = stat(
        tr("p.overdue_count"),
        [
            Sql(
                "A",
                f"""
SELECT count(*) FILTER (WHERE r.reassessment_overdue) AS reassessment,
       count(*) FILTER (WHERE r.filing_overdue) AS filing
FROM hazmon_assessment_register(current_date) r JOIN enterprise en ON en.id = r.enterprise_id
WHERE {_REGION} AND r.plant_grade IS NOT NULL""",
            )
        ],
        g(10, 5),
        all_values=False,
        thresholds=((None, "green"), (1, "red")),
        overrides=[
            rename("reassessment", tr("c.reassessment_overdue")),
            rename("filing", tr("c.filing_overdue")),
        ],
    )
    g.newline()
    by_tier = table(
        tr("p.escalated_by_tier"),
        [
            Sql(
                "A",
                f"""
SELECT a.tier, coalesce(a.bureau_step, 'pending') AS handling, count(*) AS n
FROM alarm a JOIN enterprise en ON en.id = a.enterprise_id
WHERE {_REGION} AND {_ESCALATED}
  AND (a.active OR a.activated_at BETWEEN $__timeFrom() AND $__timeTo())
GROUP BY 1, 2 ORDER BY 1 DESC, 2""",
            )
        ],
        g(8, 8),
        overrides=[
            color_cells("tier", tier_mapping(tr), display=tr("c.tier")),
            color_cells("handling", _handling(tr), display=tr("c.handling")),
            rename("n", tr("c.count")),
        ],
    )
    escalated = table(
        tr("p.escalated_list"),
        [
            Sql(
                "A",
                f"""
SELECT a.tier, {ename} AS enterprise, a.hazard_source, a.sensor, a.condition, a.activated_at,
       coalesce(a.bureau_step, 'pending') AS handling, a.{tr.message_column} AS message
FROM alarm a JOIN enterprise en ON en.id = a.enterprise_id
WHERE {_REGION} AND {_ESCALATED}
  AND (a.active OR a.activated_at BETWEEN $__timeFrom() AND $__timeTo())
ORDER BY CASE WHEN a.bureau_step = 'closed' THEN 1 ELSE 0 END, a.tier DESC, a.activated_at DESC
LIMIT 200""",
            )
        ],
        g(16, 8),
        overrides=[
            color_cells("tier", tier_mapping(tr), display=tr("c.tier")),
            rename("enterprise", tr("c.enterprise")),
            rename("hazard_source", tr("c.hazard_source")),
            rename("sensor", tr("c.sensor")),
            rename("condition", tr("c.condition")),
            rename("activated_at", tr("c.activated")),
            color_cells("handling", _handling(tr), display=tr("c.handling")),
            rename("message", tr("c.message")),
        ],
    )
    g.newline()
    overdue = table(
        tr("p.overdue"),
        [
            Sql(
                "A",
                f"""
SELECT {ename} AS enterprise, r.code, r.name, {grade_case("r.plant_grade", tr)} AS grade,
       r.report_date, r.next_due, r.filing_deadline, r.filed_on,
       r.reassessment_overdue, r.filing_overdue
FROM hazmon_assessment_register(current_date) r JOIN enterprise en ON en.id = r.enterprise_id
WHERE {_REGION} AND r.plant_grade IS NOT NULL AND (r.reassessment_overdue OR r.filing_overdue)
ORDER BY r.next_due, enterprise, r.code""",
            )
        ],
        g(24, 7),
        overrides=[
            rename("enterprise", tr("c.enterprise")),
            rename("code", tr("c.code")),
            rename("name", tr("c.name")),
            rename("grade", tr("c.grade")),
            rename("report_date", tr("c.report_date")),
            rename("next_due", tr("c.next_due")),
            rename("filing_deadline", tr("c.filing_deadline")),
            rename("filed_on", tr("c.filed_on")),
            yes_no(tr, "reassessment_overdue", "c.reassessment_overdue"),
            yes_no(tr, "filing_overdue", "c.filing_overdue"),
        ],
    )
    g.newline()
    t = ALARM_TARGETS
    rate = timeseries(
        tr("p.kpi_rate").format(a=f"{t.acceptable_per_hour:g}", m=f"{t.max_manageable_per_hour:g}"),
        [
            Sql(
                "A",
                f"""
SELECT k.hour AS "time", {ename} AS metric, sum(k.alarms) AS value
FROM alarm_kpi_hourly_in($__timeFrom()::timestamptz, $__timeTo()::timestamptz) k
JOIN enterprise en ON en.id = k.enterprise_id
WHERE {_REGION} AND {HOURS_IN_RANGE}
GROUP BY 1, 2 ORDER BY 1""",
                "time_series",
            )
        ],
        g(12, 8),
        thresholds=((None, "green"), (t.acceptable_per_hour, "yellow"), (t.max_manageable_per_hour, "red")),
        threshold_style="line",
    )
    kpis = table(
        tr("p.kpi_table"),
        [
            Sql(
                "A",
                f"""
WITH hourly AS (
    SELECT k.enterprise_id, sum(k.alarms) AS total, max(k.alarms) AS peak
    FROM (SELECT enterprise_id, hour, sum(alarms) AS alarms
          FROM alarm_kpi_hourly_in($__timeFrom()::timestamptz, $__timeTo()::timestamptz) GROUP BY 1, 2) k
    GROUP BY 1
), floods AS (
    SELECT enterprise_id, sum(floods) AS n FROM alarm_kpi_floods WHERE $__timeFilter(hour) GROUP BY 1
), standing AS (
    SELECT enterprise_id, count(*) AS n FROM alarm_kpi_standing GROUP BY 1
), chattering AS (
    SELECT enterprise_id, sum(chattering_alarms) AS n
    FROM alarm_kpi_chattering_in($__timeFrom()::timestamptz, $__timeTo()::timestamptz) GROUP BY 1
)
SELECT {ename} AS enterprise,
       coalesce(h.total, 0) / greatest(extract(epoch FROM $__timeTo()::timestamptz
                                                - $__timeFrom()::timestamptz)::float8 / 3600, 1)
           AS avg_per_hour,
       coalesce(h.peak, 0) AS peak_per_hour, coalesce(f.n, 0) AS floods,
       coalesce(s.n, 0) AS standing, coalesce(c.n, 0) AS chattering
FROM enterprise en
LEFT JOIN hourly h ON h.enterprise_id = en.id
LEFT JOIN floods f ON f.enterprise_id = en.id
LEFT JOIN standing s ON s.enterprise_id = en.id
LEFT JOIN chattering c ON c.enterprise_id = en.id
WHERE {_REGION}
ORDER BY avg_per_hour DESC, enterprise""",
            )
        ],
        g(12, 8),
        overrides=[
            rename("enterprise", tr("c.enterprise")),
            _kpi("avg_per_hour", tr("c.avg_per_hour"), t.acceptable_per_hour, t.max_manageable_per_hour, 2),
            _kpi("peak_per_hour", tr("c.peak_per_hour"), t.acceptable_per_hour, t.max_manageable_per_hour, 0),
            _kpi("floods", tr("c.floods"), 1, 1, 0),
            _kpi("standing", tr("c.standing"), 1, 1, 0),
            _kpi("chattering", tr("c.chattering"), 1, 1, 0),
        ],
    )
    return Dashboard(
        title=tr("dash.bureau"),
        uid=UID,
        tags=["hazmon", "bureau"],
        timezone="browser",
        refresh="1m",
        time=Time("now-24h", "now"),
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(list=[region_variable(tr)]),
        panels=[enterprises, by_grade, overdue_n, by_tier, escalated, overdue, rate, kpis],
    ).auto_panel_ids()


def _kpi(col: str, display: str, warn: float, bad: float, decimals: int) -> dict[str, object]:
    steps = [{"color": "green", "value": None}, {"color": "yellow", "value": warn}]
    if bad > warn:
        steps.append({"color": "red", "value": bad})
    return {
        "matcher": {"id": "byName", "options": col},
        "properties": [
            {"id": "displayName", "value": display},
            {"id": "decimals", "value": decimals},
            {"id": "thresholds", "value": {"mode": "absolute", "steps": steps}},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ],
    }


def register_dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    ename = f"en.{tr.enterprise_name_column}"
    register = table(
        tr("p.register"),
        [
            Sql(
                "A",
                f"""
SELECT {ename} AS enterprise, r.code, r.name, {grade_case("r.plant_grade", tr)} AS grade, r.plant_r,
       r.report_date, r.assessor, r.r_value AS assessed_r,
       CASE WHEN r.assessment_id IS NULL THEN '{tr("v.no_assessment")}'
            ELSE {grade_case("r.grade", tr)} END AS assessed_grade,
       r.filed_on, r.next_due, r.filing_deadline, r.reassessment_overdue, r.filing_overdue
FROM hazmon_assessment_register(current_date) r JOIN enterprise en ON en.id = r.enterprise_id
WHERE {_REGION}
ORDER BY enterprise, r.code""",
            )
        ],
        g(24, 18),
        overrides=[
            rename("enterprise", tr("c.enterprise")),
            rename("code", tr("c.code")),
            rename("name", tr("c.name")),
            rename("grade", tr("c.grade")),
            rename("plant_r", tr("c.r")),
            rename("report_date", tr("c.report_date")),
            rename("assessor", tr("c.assessor")),
            rename("assessed_r", tr("c.assessed_r")),
            rename("assessed_grade", tr("c.assessed_grade")),
            rename("filed_on", tr("c.filed_on")),
            rename("next_due", tr("c.next_due")),
            rename("filing_deadline", tr("c.filing_deadline")),
            yes_no(tr, "reassessment_overdue", "c.reassessment_overdue"),
            yes_no(tr, "filing_overdue", "c.filing_overdue"),
        ],
    )
    return Dashboard(
        title=tr("dash.register"),
        uid=REGISTER_UID,
        tags=["hazmon", "bureau"],
        timezone="browser",
        refresh="",
        time=Time("now-24h", "now"),
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(list=[region_variable(tr)]),
        panels=[register],
    ).auto_panel_ids()
