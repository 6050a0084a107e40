"""Official weather warnings in the bureau's region and the enterprises' measures.

Table ``bureau_weather_measures`` (migration 0830).

An enterprise daemon reports each CAP warning that concerns it (``weather_measures``): the
hazard sources, the duties asked and who confirmed each and when. `store` keeps the newest per
(enterprise, warning) — by the envelope's ``seq``, so a late older message never rolls a row
back. `warnings` and `warning` answer "for a warning of my region, which enterprises does it
concern and has each confirmed its measures", always within a region (`hazmon.plant.regions`):
an enterprise outside it is never counted or shown.

An enterprise has **confirmed its measures** when it reported at least one duty and every duty
it reported is confirmed; ``no_duties`` when the warning asks nothing of its hazard sources.

The bureau may also take in the CAP documents itself (`store_cap`, table ``bureau_cap_warning``,
parsed by `hazmon.weather.cap`): a warning of the feed is then listed while in force
(`hazmon.weather.state.in_force`) even before any enterprise reports it, and every enterprise of
the token's region whose county, city or province code the warning names but which has not
reported it is listed as ``not_reported`` (by region code only: the bureau has no locations
to match a polygon against).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hazmon.plant.link import WeatherMeasures
from hazmon.plant.regions import Scope, prefix
from hazmon.weather.cap import Alert, parse
from hazmon.weather.state import in_force

__all__ = ["cap_alerts", "store", "store_cap", "warning", "warnings"]

Conn = psycopg.Connection[Any]


def store(conn: Conn, enterprise_id: str, seq: int, m: WeatherMeasures) -> None:
    """Keep the message's state for (enterprise, identifier) unless a newer one is already kept."""
    duties = [d.model_dump(mode="json") for d in m.duties]
    conn.execute(
        """INSERT INTO bureau_weather_measures AS b (enterprise_id, identifier, seq, sender, sent,
               warning_kind, colour, headline_zh, headline_en, region_codes, hazard_sources, state,
               end_reason, duties, duties_total, duties_confirmed, at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (enterprise_id, identifier) DO UPDATE SET seq = EXCLUDED.seq,
               sender = EXCLUDED.sender, sent = EXCLUDED.sent, warning_kind = EXCLUDED.warning_kind,
               colour = EXCLUDED.colour, headline_zh = EXCLUDED.headline_zh,
               headline_en = EXCLUDED.headline_en, region_codes = EXCLUDED.region_codes,
               hazard_sources = EXCLUDED.hazard_sources, state = EXCLUDED.state,
               end_reason = EXCLUDED.end_reason, duties = EXCLUDED.duties,
               duties_total = EXCLUDED.duties_total, duties_confirmed = EXCLUDED.duties_confirmed,
               at = EXCLUDED.at
           WHERE b.seq < EXCLUDED.seq""",
        (
            enterprise_id, m.identifier, seq, m.sender, m.sent, m.warning_kind, m.colour, m.headline_zh,
            m.headline_en, m.region_codes, m.hazard_sources, m.state, m.end_reason, Jsonb(duties),
            len(m.duties), sum(d.confirmed_at is not None for d in m.duties), m.at,
        ),
    )  # fmt: skip


_ROWS = """SELECT w.identifier, w.enterprise_id, e.name AS enterprise_name, e.region_code, w.sender, w.sent,
                  w.warning_kind, w.colour, w.headline_zh, w.headline_en, w.region_codes, w.hazard_sources,
                  w.state, w.end_reason, w.duties, w.duties_total, w.duties_confirmed, w.at
           FROM bureau_weather_measures w JOIN bureau_enterprise e USING (enterprise_id)
           WHERE e.region_code LIKE %s"""


def _confirmed(r: dict[str, Any]) -> str:
    if r["duties_total"] == 0:
        return "no_duties"
    return "confirmed" if r["duties_confirmed"] == r["duties_total"] else "not_confirmed"


def _enterprise(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "enterprise_id": r["enterprise_id"],
        "enterprise_name": r["enterprise_name"],
        "region_code": str(r["region_code"]).strip(),
        "hazard_sources": r["hazard_sources"],
        "state": r["state"],
        "end_reason": r["end_reason"],
        "measures": _confirmed(r),
        "duties_total": r["duties_total"],
        "duties_confirmed": r["duties_confirmed"],
        "duties": r["duties"],
        "reported_at": r["at"],
    }


def _group(rows: Sequence[dict[str, Any]], detail: bool) -> list[dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        w = out.get(r["identifier"])
        if w is None:
            w = out[r["identifier"]] = {
                "identifier": r["identifier"], "sender": r["sender"], "sent": r["sent"],
                "warning_kind": r["warning_kind"], "colour": r["colour"], "headline_zh": r["headline_zh"],
                "headline_en": r["headline_en"], "region_codes": sorted(set(r["region_codes"])),
                "in_force": False, "enterprises": 0, "confirmed": 0, "not_confirmed": 0, "no_duties": 0,
            }  # fmt: skip
            if detail:
                w["concerned"] = []
        w["in_force"] = w["in_force"] or r["state"] == "in_force"
        w["enterprises"] += 1
        w[_confirmed(r)] += 1
        if detail:
            w["concerned"].append(_enterprise(r))
    return list(out.values())


def store_cap(conn: Conn, alert: Alert, by: str, now: datetime) -> bool:
    """Keep a CAP document the bureau took in; False when its identifier is already kept."""
    codes = sorted({c for ar in alert.areas for c in ar.region_codes()})
    row = conn.execute(
        """INSERT INTO bureau_cap_warning (identifier, sender, sent, status, msg_type, kind, colour,
               region_codes, expires, xml, received_by, received_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (identifier) DO NOTHING RETURNING identifier""",
        (
            alert.identifier, alert.sender, alert.sent, alert.status, alert.msg_type,
            alert.kind.value if alert.kind else None, int(alert.colour) if alert.colour else None, codes,
            alert.expires, alert.xml, by, now,
        ),
    ).fetchone()  # fmt: skip
    return row is not None


def cap_alerts(conn: Conn) -> list[Alert]:
    """Every CAP document the bureau took in, re-parsed from its XML (in sent order)."""
    rows = conn.execute("SELECT identifier, xml FROM bureau_cap_warning ORDER BY sent, identifier").fetchall()
    out = []
    for ident, xml in rows:
        a = parse(bytes(xml), f"bureau_cap_warning {ident}")
        if isinstance(a, Alert):  # kept only after a successful parse
            out.append(a)
    return out


def _covered(codes: Sequence[str], county: str) -> bool:
    return any(c in (county, county[:4] + "00", county[:2] + "0000") for c in codes)


def _cap_entry(a: Alert, live: bool) -> dict[str, Any]:
    zh, en = a.text("zh"), a.text("en")
    return {
        "identifier": a.identifier, "sender": a.sender, "sent": a.sent,
        "warning_kind": a.kind.value if a.kind else "", "colour": a.colour.name.lower() if a.colour else "",
        "headline_zh": (zh.headline or zh.event) if zh else "",
        "headline_en": (en.headline or en.event) if en and en.language.lower().startswith("en") else "",
        "region_codes": sorted({c for ar in a.areas for c in ar.region_codes()}),
        "in_force": live, "enterprises": 0, "confirmed": 0, "not_confirmed": 0, "no_duties": 0,
    }  # fmt: skip


def _with_feed(conn: Conn, scope: Scope, groups: list[dict[str, Any]], now: datetime, detail: bool) -> None:
    """Add the warnings of the bureau's own CAP feed and, to each, who in ``scope`` has not reported."""
    alerts = [a for a in cap_alerts(conn) if a.status == "Actual" and a.msg_type in ("Alert", "Update")]
    if not alerts:
        return
    live = {a.identifier for a in in_force(alerts, now)}
    ents = conn.execute(
        "SELECT enterprise_id, name, region_code FROM bureau_enterprise WHERE region_code LIKE %s ORDER BY 1",
        (prefix(scope) + "%",),
    ).fetchall()
    rows = conn.execute("SELECT identifier, enterprise_id FROM bureau_weather_measures").fetchall()
    reported = {(str(i), str(e)) for i, e in rows}
    by_id = {g["identifier"]: g for g in groups}
    for a in alerts:
        codes = sorted({c for ar in a.areas for c in ar.region_codes()})
        missing = [
            {"enterprise_id": e, "enterprise_name": n, "region_code": str(r).strip()}
            for e, n, r in ents
            if _covered(codes, str(r).strip()) and (a.identifier, str(e)) not in reported
        ]
        g = by_id.get(a.identifier)
        if g is None and not missing:
            continue  # nothing of it in this region
        if g is None:
            g = by_id[a.identifier] = _cap_entry(a, a.identifier in live)
            groups.append(g)
            if detail:
                g["concerned"] = []
        g["in_force"] = g["in_force"] or a.identifier in live
        g["from_feed"] = True
        g["not_reported"] = len(missing)
        if detail:
            g["not_reported_enterprises"] = missing


def warnings(
    conn: Conn, scope: Scope, open_only: bool = True, limit: int = 200, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The warnings reported by enterprises in ``scope`` (and of the feed, given ``now``), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _ROWS + " ORDER BY w.sent DESC, w.identifier, w.enterprise_id", (prefix(scope) + "%",)
        ).fetchall()
    out = _group(rows, detail=False)
    if now is not None:
        _with_feed(conn, scope, out, now, detail=False)
        out.sort(key=lambda w: (w["sent"], w["identifier"]), reverse=True)
    if open_only:
        out = [w for w in out if w["in_force"]]
    return out[:limit]


def warning(conn: Conn, identifier: str, scope: Scope, now: datetime | None = None) -> dict[str, Any] | None:
    """One warning: every enterprise in ``scope`` it concerns, their sources, duties and confirmations."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _ROWS + " AND w.identifier = %s ORDER BY w.enterprise_id", (prefix(scope) + "%", identifier)
        ).fetchall()
    got = _group(rows, detail=True)
    if now is not None:
        _with_feed(conn, scope, got, now, detail=True)
        got = [g for g in got if g["identifier"] == identifier]
    return got[0] if got else None
