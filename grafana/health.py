"""Sensor health dashboard (engineering).

Stale, bad-quality, out-of-range sensors and data completeness per hazard source over the
dashboard's time range.
"""

from __future__ import annotations

from grafanalib.core import BarGauge, Dashboard, GridPos, Stat, Templating, Time

from hazmon.grafana.common import (
    DATASOURCE,
    SCHEMA_VERSION,
    Grid,
    Sql,
    color_cells,
    enterprise_variable,
    mapping,
    rename,
    stat,
    table,
)
from hazmon.grafana.texts import Texts

__all__ = ["UID", "dashboard", "status_mapping"]

UID = "hazmon-sensor-health"

_HEALTH = "hazmon_sensor_health($__timeFrom(), $__timeTo())"


def status_mapping(tr: Texts) -> dict[str, object]:
    return mapping(
        {
            "ok": (tr("v.ok"), "green"),
            "uncertain": (tr("v.uncertain"), "yellow"),
            "out_of_range": (tr("v.out_of_range"), "orange"),
            "bad": (tr("v.bad"), "red"),
            "stale": (tr("v.stale"), "red"),
            "no_data": (tr("v.no_data"), "purple"),
        }
    )


def _count(tr: Texts, key: str, status: str, pos: GridPos, colour: str) -> Stat:
    return stat(
        tr(key),
        [
            Sql(
                "A",
                "SELECT count(*) AS n FROM hazmon_sensor_latest l "
                f"WHERE l.enterprise_id = '$enterprise' AND l.status = '{status}'",
            )
        ],
        pos,
        thresholds=((None, "green"), (1, colour)),
    )


def dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    total = stat(
        tr("p.sensors_total"),
        [Sql("A", "SELECT count(*) AS n FROM sensor WHERE enterprise_id = '$enterprise' AND NOT retired")],
        g(4, 4),
        color_mode="value",
    )
    counts = [
        _count(tr, "p.stale_count", "stale", g(5, 4), "red"),
        _count(tr, "p.bad_count", "bad", g(5, 4), "red"),
        _count(tr, "p.out_of_range_count", "out_of_range", g(5, 4), "orange"),
        _count(tr, "p.no_data_count", "no_data", g(5, 4), "purple"),
    ]
    g.newline()
    completeness = BarGauge(
        title=tr("p.completeness"),
        dataSource=DATASOURCE,
        targets=[
            Sql(
                "A",
                f"""
SELECT hs.code || ' ' || hs.name AS source,
       least(1.0, sum(h.received) / nullif(sum(h.expected), 0)) AS completeness
FROM {_HEALTH} h
JOIN hazard_source hs ON hs.id = h.hazard_source_id
WHERE h.enterprise_id = '$enterprise'
GROUP BY hs.code, hs.name
ORDER BY hs.code""",
            )
        ],
        gridPos=g(24, 6),
        orientation="horizontal",
        displayMode="lcd",
        # grafanalib 0.7 writes the pre-7.0 "fieldOptions"; the current shape goes here.
        extraJson={
            "fieldConfig": {
                "defaults": {
                    "displayName": "${__data.fields.source}",
                    "unit": "percentunit",
                    "min": 0,
                    "max": 1,
                    "decimals": 1,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [
                            {"color": "red", "value": None},
                            {"color": "orange", "value": 0.9},
                            {"color": "green", "value": 0.99},
                        ],
                    },
                }
            },
            "options": {
                "reduceOptions": {
                    "calcs": ["lastNotNull"],
                    "fields": "/^completeness$/",
                    "values": True,
                    "limit": 200,
                },
            },
        },
    )
    g.newline()
    faults = table(
        tr("p.fault_alarms"),
        [
            Sql(
                "A",
                f"""
SELECT a.sensor, a.hazard_source, a.condition, a.state, a.activated_at,
       extract(epoch FROM now() - a.activated_at)::float8 AS age_s, a.{tr.message_column} AS message
FROM alarm a
WHERE a.enterprise_id = '$enterprise' AND a.level = 'fault'
  AND (a.state IN ('active_unacked', 'active_acked', 'rtn_unacked')
       OR a.activated_at BETWEEN $__timeFrom() AND $__timeTo())
ORDER BY a.active DESC, a.activated_at DESC""",
            )
        ],
        g(24, 6),
        overrides=[
            rename("sensor", tr("c.sensor")),
            rename("hazard_source", tr("c.hazard_source")),
            rename("condition", tr("c.condition")),
            rename("state", tr("c.state")),
            rename("activated_at", tr("c.activated")),
            {
                "matcher": {"id": "byName", "options": "age_s"},
                "properties": [{"id": "unit", "value": "s"}, {"id": "displayName", "value": tr("c.age")}],
            },
            rename("message", tr("c.message")),
        ],
    )
    g.newline()
    sensors = table(
        tr("p.sensor_table"),
        [
            Sql(
                "A",
                f"""
SELECT h.tag, hs.code AS hazard_source, h.kind, h.status, h.last_time, h.age_s,
       h.last_quality, h.not_good, h.completeness
FROM {_HEALTH} h
JOIN hazard_source hs ON hs.id = h.hazard_source_id
WHERE h.enterprise_id = '$enterprise'
ORDER BY CASE h.status WHEN 'ok' THEN 1 ELSE 0 END, h.completeness NULLS FIRST, h.tag""",
            )
        ],
        g(24, 14),
        overrides=[
            rename("tag", tr("c.sensor")),
            rename("hazard_source", tr("c.hazard_source")),
            rename("kind", tr("c.kind")),
            color_cells("status", status_mapping(tr), display=tr("c.state")),
            rename("last_time", tr("c.last_time")),
            {
                "matcher": {"id": "byName", "options": "age_s"},
                "properties": [{"id": "unit", "value": "s"}, {"id": "displayName", "value": tr("c.age")}],
            },
            rename("not_good", tr("c.not_good")),
            {
                "matcher": {"id": "byName", "options": "completeness"},
                "properties": [
                    {"id": "unit", "value": "percentunit"},
                    {"id": "displayName", "value": tr("c.completeness")},
                    {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}},
                    {"id": "min", "value": 0},
                    {"id": "max", "value": 1},
                    {
                        "id": "thresholds",
                        "value": {
                            "mode": "absolute",
                            "steps": [
                                {"color": "red", "value": None},
                                {"color": "orange", "value": 0.9},
                                {"color": "green", "value": 0.99},
                            ],
                        },
                    },
                ],
            },
        ],
    )
    return Dashboard(
        title=tr("dash.health"),
        uid=UID,
        tags=["hazmon", "engineering"],
        timezone="browser",
        refresh="1m",
        time=Time("now-24h", "now"),
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(list=[enterprise_variable(tr)]),
        panels=[total, *counts, completeness, faults, sensors],
    ).auto_panel_ids()
