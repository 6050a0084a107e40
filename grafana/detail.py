"""Hazard source detail dashboard.

Level, temperature, pressure and gas with their limits drawn as dashed lines, alarms as annotations,
predicted limit crossings.
"""

from __future__ import annotations

from typing import Any

from grafanalib.core import Annotations, Dashboard, Template, Templating, Time

from hazmon.grafana.common import (
    DATASOURCE,
    SCHEMA_VERSION,
    Grid,
    Sql,
    enterprise_variable,
    grade_case,
    rename,
    stat,
    table,
    timeseries,
)
from hazmon.grafana.overview import active_alarms_sql, alarm_table_overrides
from hazmon.grafana.texts import Texts

__all__ = ["UID", "dashboard", "series_sql"]

UID = "hazmon-hazard-source"

_SOURCE = "hs.enterprise_id = '$enterprise' AND hs.code = '$hazard_source'"
_PREDICTION_WINDOW = "30 minutes"  # trend fitted over this much recent data
_PREDICTION_HORIZON = "24 hours"  # a crossing further away than this is noise, not shown


def series_sql(kinds: tuple[str, ...], labels: dict[str, str]) -> str:
    """Sensors of these kinds on the selected hazard source, plus their limits.

    Series are named "<tag> [<unit>]" (units differ between plants, so the panel
    sets none); the limits come back as series named "<tag> <label>", two points
    each (the ends of the range), so a 30-day and a 1-hour panel both draw them.
    """
    kind_list = ", ".join(f"'{k}'" for k in kinds)
    label_case = "CASE l.name " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in labels.items()) + " END"
    return f"""
SELECT s.time AS "time", se.tag || ' [' || se.unit || ']' AS metric, s.avg AS value
FROM hazmon_series(
       ARRAY(SELECT se.id FROM sensor se JOIN hazard_source hs ON hs.id = se.hazard_source_id
             WHERE {_SOURCE} AND se.kind IN ({kind_list}) AND NOT se.retired),
       $__timeFrom(), $__timeTo(), $__interval_ms) s
JOIN sensor se ON se.id = s.sensor_id
UNION ALL
SELECT t.time, l.tag || ' ' || {label_case}, l.value
FROM hazmon_sensor_limits l
JOIN hazard_source hs ON hs.id = l.hazard_source_id
CROSS JOIN (VALUES ($__timeFrom()::timestamptz), ($__timeTo()::timestamptz)) AS t (time)
WHERE {_SOURCE} AND l.kind IN ({kind_list})
ORDER BY 1"""


def _limit_overrides(second: tuple[str, ...], first: tuple[str, ...]) -> list[dict[str, Any]]:
    def one(labels: tuple[str, ...], colour: str) -> dict[str, Any]:
        alt = "|".join(labels)
        return {
            "matcher": {"id": "byRegexp", "options": f"/ ({alt})$/"},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": colour}},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "custom.lineWidth", "value": 2},
                {"id": "custom.fillOpacity", "value": 0},
            ],
        }

    return [one(second, "red"), one(first, "orange")]


def dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    src_id = f"(SELECT hs.id FROM hazard_source hs WHERE {_SOURCE})"
    grade = stat(
        tr("p.grade"),
        [Sql("A", f"SELECT {grade_case('hs.grade', tr)} AS grade FROM hazard_source hs WHERE {_SOURCE}")],
        g(4, 4),
        color_mode="value",
    )
    r_value = stat(
        tr("p.r_value"),
        [Sql("A", f"SELECT hs.r_value AS r FROM hazard_source hs WHERE {_SOURCE}")],
        g(4, 4),
        color_mode="value",
        decimals=1,
    )
    n_alarms = stat(
        tr("p.source_alarms"),
        [
            Sql(
                "A",
                "SELECT count(*) AS n FROM alarm a WHERE a.enterprise_id = '$enterprise' "
                "AND a.hazard_source = '$hazard_source' AND a.active",
            )
        ],
        g(4, 4),
        thresholds=((None, "green"), (1, "red")),
    )
    alarms = table(
        tr("p.source_alarm_list"),
        [
            Sql(
                "A",
                active_alarms_sql(
                    tr, "a.enterprise_id = '$enterprise' AND a.hazard_source = '$hazard_source'"
                ),
            )
        ],
        g(12, 4),
        overrides=alarm_table_overrides(tr),
    )
    g.newline()
    hl = {"hh": "HH", "h": "H", "l": "L", "ll": "LL"}
    gas = {"hh": tr("limit.second"), "h": tr("limit.first")}
    process = _limit_overrides(("HH", "LL"), ("H", "L"))
    gas_over = _limit_overrides((tr("limit.second"),), (tr("limit.first"),))
    panels_ts = [
        timeseries(
            tr("p.level"), [Sql("A", series_sql(("level",), hl), "time_series")], g(12, 8), overrides=process
        ),
        timeseries(
            tr("p.pressure"),
            [Sql("A", series_sql(("pressure",), hl), "time_series")],
            g(12, 8),
            overrides=process,
        ),
        timeseries(
            tr("p.temperature"),
            [Sql("A", series_sql(("temperature",), hl), "time_series")],
            g(12, 8),
            overrides=process,
        ),
        timeseries(
            tr("p.gas_toxic"),
            [Sql("A", series_sql(("gas_toxic",), gas), "time_series")],
            g(12, 8),
            overrides=gas_over,
        ),
        timeseries(
            tr("p.gas_combustible"),
            [Sql("A", series_sql(("gas_combustible",), gas), "time_series")],
            g(12, 8),
            overrides=gas_over,
        ),
    ]
    predictions = table(
        tr("p.predictions"),
        [
            Sql(
                "A",
                f"""
SELECT p.tag, p.last, p.unit, p.per_min, upper(p.limit_name) AS limit_name, p.limit_value,
       CASE WHEN p.crossing <= $__timeTo()::timestamptz + interval '{_PREDICTION_HORIZON}' THEN p.crossing END
           AS crossing
FROM hazmon_predictions({src_id}, $__timeTo(), interval '{_PREDICTION_WINDOW}') p
ORDER BY 7 NULLS LAST, p.tag""",
            )
        ],
        g(12, 8),
        overrides=[
            rename("tag", tr("c.sensor")),
            rename("last", tr("c.value")),
            rename("unit", tr("c.unit")),
            rename("per_min", tr("c.trend")),
            rename("limit_name", tr("c.limit_name")),
            rename("limit_value", tr("c.limit")),
            rename("crossing", tr("c.crossing")),
        ],
    )
    annotation: dict[str, Any] = {
        "datasource": DATASOURCE,
        "enable": True,
        "iconColor": "red",
        "name": tr("anno.alarms"),
        "target": Sql(
            "Anno",
            """
SELECT e.at AS "time", a.tier_name AS tags,
       coalesce(a.sensor || ' ', '') || a.condition || ' ' || e.kind AS text
FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
WHERE a.enterprise_id = '$enterprise' AND a.hazard_source = '$hazard_source'
  AND e.kind IN ('raised', 'cleared', 'acked') AND $__timeFilter(e.at)
ORDER BY 1""",
        ).to_json_data(),
    }
    hazard_source = Template(
        name="hazard_source",
        label=tr("var.hazard_source"),
        dataSource=DATASOURCE,
        query="SELECT code AS __value, code || ' ' || name AS __text FROM hazard_source "
        "WHERE enterprise_id = '$enterprise' ORDER BY code",
        refresh=1,
        sort=0,
    )
    return Dashboard(
        title=tr("dash.detail"),
        uid=UID,
        tags=["hazmon", "control-room"],
        timezone="browser",
        refresh="10s",
        time=Time("now-6h", "now"),
        schemaVersion=SCHEMA_VERSION,
        annotations=Annotations(list=[annotation]),
        templating=Templating(list=[enterprise_variable(tr), hazard_source]),
        panels=[grade, r_value, n_alarms, alarms, *panels_ts, predictions],
    ).auto_panel_ids()
