"""Control room overview dashboard.

Every hazard source in its worst warning colour, the active alarms, the key sensors against their
limits, and the alarm load.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Templating, Time

from hazmon.grafana.common import (
    HOURS_IN_RANGE,
    SCHEMA_VERSION,
    Grid,
    Sql,
    color_cells,
    enterprise_variable,
    grade_case,
    mapping,
    rename,
    stat,
    table,
    tier_mapping,
    timeseries,
)
from hazmon.grafana.texts import Texts
from hazmon.plant.standards import ALARM_TARGETS

__all__ = ["UID", "active_alarms_sql", "dashboard", "limit_state_mapping"]

UID = "hazmon-overview"

# Alarms the control room must see: active, or returned but not yet acknowledged;
# shelved, suppressed and out-of-service alarms are listed elsewhere (ISA-18.2).
_SHOWN = "a.state IN ('active_unacked', 'active_acked', 'rtn_unacked')"


def limit_state_mapping(tr: Texts) -> dict[str, object]:
    return mapping(
        {
            "hh": ("HH", "red"),
            "h": ("H", "orange"),
            "normal": (tr("v.normal"), "green"),
            "l": ("L", "orange"),
            "ll": ("LL", "red"),
            "no_data": (tr("v.no_data"), "purple"),
        }
    )


def active_alarms_sql(tr: Texts, where: str) -> str:
    return f"""
SELECT a.tier, a.hazard_source, a.sensor, a.condition, a.state, a.acked,
       a.activated_at, extract(epoch FROM now() - a.activated_at)::float8 AS age_s,
       a.value, a.limit_value, a.{tr.message_column} AS message
FROM alarm a
WHERE {where} AND {_SHOWN}
ORDER BY a.tier DESC, a.acked, a.activated_at"""


def alarm_table_overrides(tr: Texts) -> list[dict[str, object]]:
    return [
        color_cells("tier", tier_mapping(tr), display=tr("c.tier")),
        rename("hazard_source", tr("c.hazard_source")),
        rename("sensor", tr("c.sensor")),
        rename("condition", tr("c.condition")),
        color_cells(
            "state",
            mapping(
                {
                    "active_unacked": (tr("s.active_unacked"), "red"),
                    "active_acked": (tr("s.active_acked"), "orange"),
                    "rtn_unacked": (tr("s.rtn_unacked"), "yellow"),
                }
            ),
            display=tr("c.state"),
        ),
        color_cells(
            "acked",
            mapping({"true": (tr("v.yes"), "green"), "false": (tr("v.no"), "red")}),
            display=tr("c.acked"),
        ),
        rename("activated_at", tr("c.activated")),
        {
            "matcher": {"id": "byName", "options": "age_s"},
            "properties": [{"id": "unit", "value": "s"}, {"id": "displayName", "value": tr("c.age")}],
        },
        rename("value", tr("c.value")),
        rename("limit_value", tr("c.limit")),
        rename("message", tr("c.message")),
    ]


def dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    ent = "'$enterprise'"
    tiles = stat(
        tr("p.tiles"),
        [
            Sql(
                "A",
                f"""
SELECT hs.code, hs.name || ' · ' || {grade_case("hs.grade", tr)} AS label,
       coalesce(max(a.tier) FILTER (WHERE {_SHOWN} AND a.active), 0) AS tier
FROM hazard_source hs
LEFT JOIN alarm a ON a.enterprise_id = hs.enterprise_id AND a.hazard_source = hs.code
WHERE hs.enterprise_id = {ent}
GROUP BY hs.code, hs.name, hs.grade
ORDER BY hs.code""",
            )
        ],
        g(24, 5),
        mappings=[tier_mapping(tr)],
        all_values=True,
        fields="/^tier$/",
        display_name="${__data.fields.label}",
        links=[
            {
                "title": tr("dash.detail"),
                "url": "/d/hazmon-hazard-source?var-enterprise=$enterprise"
                "&var-hazard_source=${__data.fields.code}&${__url_time_range}",
            }
        ],
    )
    g.newline()
    unacked = stat(
        tr("p.unacked"),
        [
            Sql(
                "A",
                f"SELECT count(*) AS n FROM alarm a WHERE a.enterprise_id = {ent} AND a.state IN "
                "('active_unacked', 'rtn_unacked')",
            )
        ],
        g(6, 4),
        thresholds=((None, "green"), (1, "red")),
    )
    stale = stat(
        tr("p.stale_count"),
        [
            Sql(
                "A",
                f"""
SELECT count(*) AS n FROM hazmon_sensor_latest l
WHERE l.enterprise_id = {ent} AND l.status IN ('stale', 'no_data')""",
            )
        ],
        g(6, 4),
        thresholds=((None, "green"), (1, "orange")),
    )
    # at_us, not the generated `at`: alarm_event_kind_at (kind, at_us) serves the last hour (1.5 ms);
    # `at` has no index and read every activation kept (400 days: 30-100 ms on the bench)
    last_hour = stat(
        tr("p.alarms_last_hour"),
        [
            Sql(
                "A",
                f"""
SELECT count(*) AS n FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id
WHERE a.enterprise_id = {ent} AND e.kind = 'raised'
  AND e.at_us > (extract(epoch FROM now() - interval '1 hour') * 1e6)::bigint""",
            )
        ],
        g(6, 4),
        thresholds=(
            (None, "green"),
            (ALARM_TARGETS.acceptable_per_hour, "yellow"),
            (ALARM_TARGETS.max_manageable_per_hour, "red"),
        ),
    )
    rate = timeseries(
        tr("p.alarm_rate"),
        [
            Sql(
                "A",
                f"""
SELECT k.hour AS "time", sum(k.alarms) AS alarms
FROM alarm_kpi_hourly_in($__timeFrom()::timestamptz, $__timeTo()::timestamptz) k
WHERE k.enterprise_id = {ent} AND {HOURS_IN_RANGE}
GROUP BY 1 ORDER BY 1""",
                "time_series",
            )
        ],
        g(6, 4),
        thresholds=(
            (None, "green"),
            (ALARM_TARGETS.acceptable_per_hour, "yellow"),
            (ALARM_TARGETS.max_manageable_per_hour, "red"),
        ),
        threshold_style="line",
    )
    g.newline()
    alarms = table(
        tr("p.active_alarms"),
        [Sql("A", active_alarms_sql(tr, f"a.enterprise_id = {ent}"))],
        g(24, 9),
        overrides=alarm_table_overrides(tr),
    )
    g.newline()
    key = table(
        tr("p.key_sensors"),
        [
            Sql(
                "A",
                f"""
SELECT l.tag, l.description, l.value, l.unit, l.ll, l.l, l.h, l.hh,
       coalesce(l.limit_state, 'no_data') AS state, l.age_s
FROM hazmon_sensor_latest l
WHERE l.enterprise_id = {ent} AND l.is_key
ORDER BY l.tag""",
            )
        ],
        g(24, 10),
        overrides=[
            rename("tag", tr("c.sensor")),
            rename("description", tr("c.description")),
            rename("value", tr("c.value")),
            rename("unit", tr("c.unit")),
            rename("ll", "LL"),
            rename("l", "L"),
            rename("h", "H"),
            rename("hh", "HH"),
            color_cells("state", limit_state_mapping(tr), display=tr("c.state")),
            {
                "matcher": {"id": "byName", "options": "age_s"},
                "properties": [{"id": "unit", "value": "s"}, {"id": "displayName", "value": tr("c.age")}],
            },
        ],
    )
    return Dashboard(
        title=tr("dash.overview"),
        uid=UID,
        tags=["hazmon", "control-room"],
        timezone="browser",
        refresh="10s",
        time=Time("now-6h", "now"),
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(list=[enterprise_variable(tr)]),
        panels=[tiles, unacked, stale, last_hour, rate, alarms, key],
    ).auto_panel_ids()
