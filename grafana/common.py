"""Building blocks every dashboard uses: the data source, SQL targets, layout, panels.

Panels are grafanalib objects; the few options grafanalib 0.7 does not model
(table cell colouring, value mappings in the v8+ shape, threshold lines) go
through ``extraJson`` / overrides, written once here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grafanalib.core import (
    GridPos,
    Stat,
    Table,
    Template,
    TimeSeries,
)

from hazmon.grafana.texts import Texts
from hazmon.plant.standards import Grade, Tier

__all__ = [
    "BUREAU_DATASOURCE",
    "BUREAU_DATASOURCE_NAME",
    "BUREAU_DATASOURCE_UID",
    "DATASOURCE",
    "DATASOURCE_NAME",
    "DATASOURCE_TYPE",
    "DATASOURCE_UID",
    "HOURS_IN_RANGE",
    "SCHEMA_VERSION",
    "Grid",
    "Sql",
    "color_cells",
    "enterprise_variable",
    "grade_case",
    "mapping",
    "rename",
    "stat",
    "table",
    "tier_mapping",
    "timeseries",
    "yes_no",
]

DATASOURCE_NAME = "hazmon"
DATASOURCE_UID = "hazmon-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"
DATASOURCE: dict[str, str] = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
"""The provisioned PostgreSQL data source (grafana/provisioning/datasources/hazmon.yaml)."""

BUREAU_DATASOURCE_NAME = "hazmon-bureau"
BUREAU_DATASOURCE_UID = "hazmon-bureau-pg"
BUREAU_DATASOURCE: dict[str, str] = {"type": DATASOURCE_TYPE, "uid": BUREAU_DATASOURCE_UID}
"""The bureau daemon's database (grafana/provisioning/bureau-platform/datasources/hazmon-bureau.yaml)."""

SCHEMA_VERSION = 39
"""Dashboard JSON schema version written (Grafana 10.4 / 11); Grafana migrates older ones."""

HOURS_IN_RANGE = (
    "k.hour > $__timeFrom()::timestamptz - interval '1 hour' AND k.hour <= $__timeTo()::timestamptz"
)
"""Hourly buckets (``k.hour``, the hour's start) that overlap the dashboard's range.

``$__timeFilter(k.hour)`` keeps only buckets that start inside the range: at 02:02 with
"last 1 hour" that is the 02:00 bucket alone, and the alarms of 01:02-02:00 vanish.
"""


@dataclass(frozen=True, slots=True)
class Sql:
    """One raw-SQL query of a panel."""

    ref_id: str
    raw_sql: str
    format: str = "table"  # "table" | "time_series"
    datasource_uid: str = DATASOURCE_UID  # or BUREAU_DATASOURCE_UID (both PostgreSQL)

    def to_json_data(self) -> dict[str, Any]:
        return {
            "datasource": {"type": DATASOURCE_TYPE, "uid": self.datasource_uid},
            "editorMode": "code",
            "format": self.format,
            "rawQuery": True,
            "rawSql": self.raw_sql.strip(),
            "refId": self.ref_id,
        }


class Grid:
    """Places panels left to right on Grafana's 24-column grid, wrapping rows."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0

    def __call__(self, w: int, h: int) -> GridPos:
        if self.x + w > 24:
            self.newline()
        pos = GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def newline(self) -> None:
        self.x = 0
        self.y += self.row_h
        self.row_h = 0


def mapping(options: dict[str, tuple[str, str | None]]) -> dict[str, Any]:
    """A v8+ value mapping: raw value -> (display text, colour or None)."""
    opts: dict[str, Any] = {}
    for i, (raw, (text, colour)) in enumerate(options.items()):
        o: dict[str, Any] = {"index": i, "text": text}
        if colour:
            o["color"] = colour
        opts[raw] = o
    return {"type": "value", "options": opts}


def tier_mapping(tr: Texts) -> dict[str, Any]:
    """Tier number -> its name in its colour; 0 -> normal (green)."""
    opts: dict[str, tuple[str, str | None]] = {"0": (tr("v.normal"), "green")}
    for t in Tier:
        opts[str(int(t))] = (tr.tier(t), t.colour)
    return mapping(opts)


def grade_case(column: str, tr: Texts) -> str:
    """SQL turning a grade column into its label in this locale."""
    whens = " ".join(f"WHEN {int(g)} THEN '{tr.grade(g)}'" for g in Grade)
    return f"CASE {column} {whens} ELSE '{tr('v.not_major')}' END"


def rename(column: str, display: str) -> dict[str, Any]:
    return {
        "matcher": {"id": "byName", "options": column},
        "properties": [{"id": "displayName", "value": display}],
    }


def color_cells(column: str, maps: dict[str, Any], *, display: str | None = None) -> dict[str, Any]:
    """Override: a table column shown through value mappings with a coloured background."""
    props: list[dict[str, Any]] = [
        {"id": "mappings", "value": [maps]},
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ]
    if display:
        props.append({"id": "displayName", "value": display})
    return {"matcher": {"id": "byName", "options": column}, "properties": props}


def yes_no(tr: Texts, col: str, key: str) -> dict[str, Any]:
    """Override: a true/false table column shown as yes (red) or no (green), named by text ``key``."""
    return color_cells(
        col, mapping({"true": (tr("v.yes"), "red"), "false": (tr("v.no"), "green")}), display=tr(key)
    )


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> list[dict[str, Any]]:
    return [{"color": c, "value": v} for v, c in steps]


def timeseries(
    title: str,
    targets: list[Sql],
    pos: GridPos,
    *,
    unit: str = "",
    overrides: list[dict[str, Any]] | None = None,
    max_data_points: int = 500,
    thresholds: Sequence[tuple[float | None, str]] = (),
    threshold_style: str = "off",
    description: str = "",
    datasource: Mapping[str, str] = DATASOURCE,
) -> TimeSeries:
    if not thresholds:
        thresholds = ((None, "green"),)  # Grafana wants a base step
    extra: dict[str, Any] = {}
    if thresholds:
        extra = {
            "fieldConfig": {
                "defaults": {
                    "thresholds": {"mode": "absolute", "steps": _thresholds(thresholds)},
                    "custom": {"thresholdsStyle": {"mode": threshold_style}},
                }
            }
        }
    return TimeSeries(
        title=title,
        description=description,
        dataSource=dict(datasource),
        targets=list(targets),
        gridPos=pos,
        unit=unit,
        overrides=overrides or [],
        maxDataPoints=max_data_points,
        legendDisplayMode="table",
        legendPlacement="right",
        legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi",
        spanNulls=False,
        extraJson=extra or None,
    )


def table(
    title: str,
    targets: list[Sql],
    pos: GridPos,
    *,
    overrides: list[dict[str, Any]] | None = None,
    description: str = "",
    datasource: Mapping[str, str] = DATASOURCE,
) -> Table:
    return Table(
        title=title,
        description=description,
        dataSource=dict(datasource),
        targets=list(targets),
        gridPos=pos,
        overrides=overrides or [],
        filterable=True,
    )


def stat(
    title: str,
    targets: list[Sql],
    pos: GridPos,
    *,
    mappings: list[dict[str, Any]] | None = None,
    thresholds: Sequence[tuple[float | None, str]] = ((None, "green"),),
    all_values: bool = False,
    fields: str = "",
    display_name: str | None = None,
    links: list[dict[str, Any]] | None = None,
    color_mode: str = "background",
    unit: str = "none",
    decimals: int | None = None,
    overrides: list[dict[str, Any]] | None = None,
    datasource: Mapping[str, str] = DATASOURCE,
    description: str | None = None,
) -> Stat:
    defaults: dict[str, Any] = {"thresholds": {"mode": "absolute", "steps": _thresholds(thresholds)}}
    if display_name:
        defaults["displayName"] = display_name
    if links:
        defaults["links"] = links
    return Stat(
        title=title,
        description=description,
        dataSource=dict(datasource),
        targets=list(targets),
        gridPos=pos,
        mappings=mappings or [],
        colorMode=color_mode,
        graphMode="none",
        reduceCalc="lastNotNull",
        fields=fields,
        format=unit,
        decimals=decimals,
        noValue="0",
        textMode="value_and_name" if all_values else "auto",
        overrides=overrides or [],
        extraJson={
            "fieldConfig": {"defaults": defaults},
            "options": {"reduceOptions": {"values": all_values, "limit": 200}},
        },
    )


def enterprise_variable(tr: Texts) -> Template:
    """The enterprise picker every plant-level dashboard starts with."""
    return Template(
        name="enterprise",
        label=tr("var.enterprise"),
        dataSource=DATASOURCE,
        query=f"SELECT id AS __value, {tr.enterprise_name_column} AS __text FROM enterprise ORDER BY id",
        refresh=1,
        sort=0,
    )
