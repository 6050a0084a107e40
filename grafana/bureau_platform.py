"""The bureau platform's dashboards: what the bureau daemon (``hazmon bureau run``) has received.

These read the **bureau's** database (data source ``hazmon-bureau``), not an enterprise's:
every enterprise of the region as registered over the link, its 1-minute aggregates, and the
bureau's own warnings (预警, bureau/WARNINGS.md). The variable *region* (a GB/T 2260 code:
province ``320000``, city ``320100`` or county ``320116``; ``000000`` all) narrows every panel
to the enterprises whose code lies under it, so a county, a city and a province each see
their own.

Region overview: enterprises, silent enterprises, online rate and open warnings of the region;
per county; enterprises ranked by risk (``bureau_risk_24h_view``: G × (1 + W) × (2 − O)); the
silent enterprises; the open warnings by colour and age and one by one.
"""

from __future__ import annotations

from grafanalib.core import Dashboard, Template, Templating, Time

from hazmon.grafana.common import (
    BUREAU_DATASOURCE,
    BUREAU_DATASOURCE_UID,
    SCHEMA_VERSION,
    Grid,
    Sql,
    color_cells,
    grade_case,
    mapping,
    rename,
    stat,
    table,
    yes_no,
)
from hazmon.grafana.texts import Texts
from hazmon.plant.bureau_standards import RULES, WarningSettings, colour_text
from hazmon.plant.standards import Tier

__all__ = [
    "REGION_UID",
    "SILENT_AFTER_S",
    "bureau_sql",
    "enterprise_name",
    "percent",
    "region_dashboard",
    "region_variable",
]

REGION_UID = "hazmon-bp-region"

_DEFAULTS = WarningSettings()
SILENT_AFTER_S = int(_DEFAULTS.silent_after_s)
"""An enterprise without any message this long is listed as silent even before the daemon's
rules raised its warning (the default of ``warnings.silent_after_s``)."""

_REGION = "hazmon_region_match(e.region_code, '$region')"
_AGES: tuple[tuple[str, str], ...] = (
    ("age_1h", "w.age_s < 3600"),
    ("age_1d", "w.age_s >= 3600 AND w.age_s < 86400"),
    ("age_7d", "w.age_s >= 86400 AND w.age_s < 604800"),
    ("age_older", "w.age_s >= 604800"),
)
"""Open warnings by age: under an hour, a day, a week, older (as the bureau console groups them)."""


def bureau_sql(ref: str, sql: str, fmt: str = "table") -> Sql:
    return Sql(ref, sql, fmt, BUREAU_DATASOURCE_UID)


def enterprise_name(tr: Texts, alias: str = "e") -> str:
    """The enterprise's name in this language (the English name from its registration)."""
    if tr.locale == "zh":
        return f"{alias}.name"
    return f"coalesce(nullif({alias}.registration #>> '{{enterprise,name_en}}', ''), {alias}.name)"


def region_variable(tr: Texts) -> Template:
    """Province, city and county codes of the enterprises registered with the bureau, plus "all"."""
    reg = "(e.registration #>> '{enterprise,%s}')"
    prov, city, county = (reg % k for k in ("province", "city", "county"))
    return Template(
        name="region",
        label=tr("var.region"),
        dataSource=BUREAU_DATASOURCE,
        query=f"""SELECT '000000' AS __value, '{tr("region.all")}' AS __text, 0 AS o
UNION SELECT left(e.region_code, 2) || '0000', max(coalesce({prov}, left(e.region_code, 2) || '0000')), 1
  FROM bureau_enterprise e GROUP BY 1
UNION SELECT left(e.region_code, 4) || '00',
       max(coalesce({prov} || ' ' || {city}, left(e.region_code, 4) || '00')), 2
  FROM bureau_enterprise e GROUP BY 1
UNION SELECT e.region_code::text, max(coalesce({prov} || ' ' || {city} || ' ' || {county}, e.region_code)), 3
  FROM bureau_enterprise e GROUP BY 1
ORDER BY 3, 1""",
        refresh=1,
        sort=0,
    )


def _colour_mapping(tr: Texts) -> dict[str, object]:
    opts: dict[str, tuple[str, str | None]] = {}
    for t in Tier:
        zh, en = colour_text(t)
        opts[str(int(t))] = (zh if tr.locale == "zh" else en, t.colour)
    return mapping(opts)


def _kind_mapping(tr: Texts) -> dict[str, object]:
    return mapping({k.value: (r.zh if tr.locale == "zh" else r.en, None) for k, r in RULES.items()})


def _state_mapping(tr: Texts) -> dict[str, object]:
    return mapping(
        {
            "pushed": (tr("v.ws_pushed"), "red"),
            "verified": (tr("v.ws_verified"), "orange"),
            "fed_back": (tr("v.ws_fed_back"), "blue"),
        }
    )


def percent(col: str, display: str) -> dict[str, object]:
    """A 0..1 rate shown as a percentage, red below 90 %, yellow below 98 %."""
    return {
        "matcher": {"id": "byName", "options": col},
        "properties": [
            {"id": "displayName", "value": display},
            {"id": "unit", "value": "percentunit"},
            {"id": "decimals", "value": 1},
            {
                "id": "thresholds",
                "value": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "red", "value": None},
                        {"color": "yellow", "value": 0.9},
                        {"color": "green", "value": 0.98},
                    ],
                },
            },
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ],
    }


def _seconds(col: str, display: str) -> dict[str, object]:
    return {
        "matcher": {"id": "byName", "options": col},
        "properties": [{"id": "displayName", "value": display}, {"id": "unit", "value": "s"}],
    }


def _overdue_case() -> str:
    """SQL: is open warning ``w`` older than the time to close (消警) of its colour (defaults)?"""
    whens = " ".join(
        f"WHEN {int(t)} THEN {int(_DEFAULTS.close_within_s(t))}" for t in sorted(Tier, reverse=True)
    )
    return f"w.age_s > CASE w.colour {whens} END"


def _silent_sql(select: str, order: str = "") -> str:
    """Enterprises silent now (``select`` of them, in ``order``).

    Silent: an open ``silent`` warning whose cause holds (the daemon's rule with the bureau's own
    limit), or no message at all for ``SILENT_AFTER_S``.
    """
    after = f"now() - interval '{SILENT_AFTER_S} seconds'"
    return f"""
SELECT {select}
FROM bureau_enterprise e
LEFT JOIN bureau_warning w ON w.enterprise_id = e.enterprise_id AND w.kind = 'silent' AND w.state <> 'closed'
WHERE {_REGION}
  AND ((w.id IS NOT NULL AND w.cleared_at IS NULL)
       OR e.last_message_at IS NULL OR e.last_message_at < {after}){order}"""


def region_dashboard(tr: Texts) -> Dashboard:
    g = Grid()
    ds = BUREAU_DATASOURCE
    ename = enterprise_name(tr)
    enterprises = stat(
        tr("p.bp_enterprises"),
        [bureau_sql("A", f"SELECT count(*) AS n FROM bureau_enterprise e WHERE {_REGION}")],
        g(4, 5),
        color_mode="value",
        datasource=ds,
    )
    silent_n = stat(
        tr("p.bp_silent_count"),
        [bureau_sql("A", _silent_sql("count(DISTINCT e.enterprise_id) AS n"))],
        g(4, 5),
        thresholds=((None, "green"), (1, "orange")),
        datasource=ds,
    )
    online = stat(
        tr("p.bp_online"),
        [
            bureau_sql(
                "A",
                f"""
SELECT CASE WHEN sum(o.minutes_expected) > 0
            THEN sum(o.minutes_with_data) / sum(o.minutes_expected) END AS online_rate
FROM bureau_online_24h_view o JOIN bureau_enterprise e USING (enterprise_id)
WHERE {_REGION}""",
            )
        ],
        g(4, 5),
        unit="percentunit",
        decimals=1,
        thresholds=((None, "red"), (0.9, "yellow"), (0.98, "green")),
        datasource=ds,
        description=tr("p.bp_online"),
    )
    colours = sorted(Tier, reverse=True)
    by_colour = stat(
        tr("p.bp_open_by_colour"),
        [
            bureau_sql(
                "A",
                "SELECT "
                + ", ".join(f"count(*) FILTER (WHERE w.colour = {int(t)}) AS {t.colour}" for t in colours)
                + f"""
FROM bureau_warning w JOIN bureau_enterprise e USING (enterprise_id)
WHERE w.state <> 'closed' AND {_REGION}""",
            )
        ],
        g(12, 5),
        color_mode="value",
        overrides=[
            {
                "matcher": {"id": "byName", "options": t.colour},
                "properties": [
                    {"id": "displayName", "value": tr(f"c.{t.colour}")},
                    {"id": "color", "value": {"mode": "fixed", "fixedColor": t.colour}},
                ],
            }
            for t in colours
        ],
        datasource=ds,
    )
    g.newline()
    colour_cols = ",\n           ".join(
        f"count(*) FILTER (WHERE w.colour = {int(t)}) AS {t.colour}" for t in colours
    )
    county = "(e.registration #>> '{enterprise,county}')"
    per_county = table(
        tr("p.bp_regions"),
        [
            bureau_sql(
                "A",
                f"""
WITH silent AS ({_silent_sql("DISTINCT e.enterprise_id")}
), opn AS (
    SELECT w.enterprise_id,
           {colour_cols}
    FROM bureau_warning w WHERE w.state <> 'closed' GROUP BY w.enterprise_id
)
SELECT e.region_code::text AS region_code, max({county}) AS county,
       count(*) AS enterprises, count(s.enterprise_id) AS silent,
       {", ".join(f"coalesce(sum(w.{t.colour}), 0) AS {t.colour}" for t in colours)},
       CASE WHEN sum(o.minutes_expected) > 0
            THEN sum(o.minutes_with_data) / sum(o.minutes_expected) END AS online
FROM bureau_enterprise e
JOIN bureau_online_24h_view o USING (enterprise_id)
LEFT JOIN silent s USING (enterprise_id)
LEFT JOIN opn w USING (enterprise_id)
WHERE {_REGION}
GROUP BY e.region_code ORDER BY e.region_code""",
            )
        ],
        g(12, 8),
        overrides=[
            rename("region_code", tr("c.region_code")),
            rename("county", tr("c.county")),
            rename("enterprises", tr("c.enterprises")),
            rename("silent", tr("c.silent")),
            *(rename(t.colour, tr(f"c.{t.colour}")) for t in colours),
            percent("online", tr("c.online")),
        ],
        datasource=ds,
    )
    ranking = table(
        tr("p.bp_ranking"),
        [
            bureau_sql(
                "A",
                f"""
SELECT row_number() OVER (ORDER BY r.risk DESC, r.enterprise_id) AS rank,
       {ename} AS enterprise, e.region_code::text AS region_code,
       {
                    grade_case(
                        "(SELECT min(bureau_grade_number(hs.grade)) FROM bureau_hazard_source hs"
                        " WHERE hs.enterprise_id = e.enterprise_id)",
                        tr,
                    )
                } AS grade,
       r.warnings_open, r.open_weight, r.online_rate, r.risk
FROM bureau_risk_24h_view r JOIN bureau_enterprise e USING (enterprise_id)
WHERE {_REGION}
ORDER BY r.risk DESC, r.enterprise_id
LIMIT 100""",
            )
        ],
        g(12, 8),
        overrides=[
            rename("rank", tr("c.rank")),
            rename("enterprise", tr("c.enterprise")),
            rename("region_code", tr("c.region_code")),
            rename("grade", tr("c.grade")),
            rename("warnings_open", tr("c.warnings_open")),
            rename("open_weight", tr("c.open_weight")),
            percent("online_rate", tr("c.online")),
            {
                "matcher": {"id": "byName", "options": "risk"},
                "properties": [
                    {"id": "displayName", "value": tr("c.risk")},
                    {"id": "decimals", "value": 1},
                    {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic"}},
                ],
            },
        ],
        datasource=ds,
    )
    g.newline()
    silent = table(
        tr("p.bp_silent"),
        [
            bureau_sql(
                "A",
                _silent_sql(
                    f"""{ename} AS enterprise, e.region_code::text AS region_code,
       e.last_message_at AS last_seen,
       extract(epoch FROM now() - coalesce(e.last_message_at, e.registered_at)) AS silent_for,
       coalesce(w.detail ->> 'mode', 'no_message') AS why, w.colour, w.state""",
                    "\nORDER BY e.last_message_at NULLS FIRST, e.enterprise_id",
                ),
            )
        ],
        g(12, 8),
        overrides=[
            rename("enterprise", tr("c.enterprise")),
            rename("region_code", tr("c.region_code")),
            rename("last_seen", tr("c.last_seen")),
            _seconds("silent_for", tr("c.silent_for")),
            color_cells(
                "why",
                mapping(
                    {
                        "link_down": (tr("v.link_down"), "red"),
                        "plant_silent": (tr("v.plant_silent"), "orange"),
                        "no_message": (tr("v.no_message"), "orange"),
                    }
                ),
                display=tr("c.why"),
            ),
            color_cells("colour", _colour_mapping(tr), display=tr("c.colour")),
            color_cells("state", _state_mapping(tr), display=tr("c.warning_state")),
        ],
        datasource=ds,
    )
    ages = table(
        tr("p.bp_ages"),
        [
            bureau_sql(
                "A",
                f"""
SELECT c.colour, {", ".join(f"count(w.id) FILTER (WHERE {cond}) AS {key}" for key, cond in _AGES)},
       count(w.id) AS total
FROM (VALUES {", ".join(f"({int(t)})" for t in colours)}) AS c (colour)
LEFT JOIN (bureau_warning_open_view w JOIN bureau_enterprise e USING (enterprise_id))
       ON w.colour = c.colour AND {_REGION}
GROUP BY c.colour ORDER BY c.colour DESC""",
            )
        ],
        g(12, 8),
        overrides=[
            color_cells("colour", _colour_mapping(tr), display=tr("c.colour")),
            *(rename(key, tr(f"c.{key}")) for key, _ in _AGES),
            rename("total", tr("c.count")),
        ],
        datasource=ds,
    )
    g.newline()
    text = "w.text_zh" if tr.locale == "zh" else "w.text_en"
    open_list = table(
        tr("p.bp_open"),
        [
            bureau_sql(
                "A",
                f"""
SELECT w.colour, w.kind, {ename} AS enterprise, w.source_id, w.raised_at, w.age_s,
       {_overdue_case()} AS overdue, w.state, w.cleared_at, {text} AS text
FROM bureau_warning_open_view w JOIN bureau_enterprise e USING (enterprise_id)
WHERE {_REGION}
ORDER BY w.colour DESC, w.raised_at, w.id
LIMIT 500""",
            )
        ],
        g(24, 10),
        overrides=[
            color_cells("colour", _colour_mapping(tr), display=tr("c.colour")),
            color_cells("kind", _kind_mapping(tr), display=tr("c.warning_kind")),
            rename("enterprise", tr("c.enterprise")),
            rename("source_id", tr("c.hazard_source")),
            rename("raised_at", tr("c.raised")),
            _seconds("age_s", tr("c.age")),
            yes_no(tr, "overdue", "c.overdue"),
            color_cells("state", _state_mapping(tr), display=tr("c.warning_state")),
            rename("cleared_at", tr("c.cleared")),
            rename("text", tr("c.text")),
        ],
        datasource=ds,
    )
    return Dashboard(
        title=tr("dash.bp_region"),
        uid=REGION_UID,
        tags=["hazmon", "bureau-platform"],
        timezone="browser",
        refresh="1m",
        time=Time("now-24h", "now"),
        schemaVersion=SCHEMA_VERSION,
        templating=Templating(list=[region_variable(tr)]),
        panels=[enterprises, silent_n, online, by_colour, per_county, ranking, silent, ages, open_list],
    ).auto_panel_ids()
