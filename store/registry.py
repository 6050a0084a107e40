"""The plant file's registry in the database: upsert, and the tag -> sensor id map."""

from __future__ import annotations

import json
from dataclasses import asdict

import psycopg

from hazmon.plant.grading import grade_source
from hazmon.plant.limits import effective_limits
from hazmon.plant.model import Plant

__all__ = ["sensor_ids", "sync_registry"]


def sync_registry(conn: psycopg.Connection[tuple[object, ...]], plant: Plant) -> dict[str, int]:
    """Upsert enterprise, hazard sources and sensors; returns tag -> sensor id.

    Sensor ids are stable by (enterprise, tag), so history survives edits to the
    plant file. Sensors no longer in the file are marked retired, never deleted.
    """
    e = plant.enterprise
    with conn.transaction():
        conn.execute(
            """INSERT INTO enterprise (id, name, name_en, province, city, county, region_code, locale)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, name_en = EXCLUDED.name_en,
                 province = EXCLUDED.province, city = EXCLUDED.city, county = EXCLUDED.county,
                 region_code = EXCLUDED.region_code, locale = EXCLUDED.locale, updated_at = now()""",
            (
                e.id,
                e.name,
                e.name_en,
                e.region.province,
                e.region.city,
                e.region.county,
                e.region.code,
                e.locale,
            ),
        )
        ids: dict[str, int] = {}
        for hs in plant.hazard_sources:
            g = grade_source(hs)
            row = conn.execute(
                """INSERT INTO hazard_source (enterprise_id, code, name, kind, people_500m, s_value,
                       r_value, grade, inventory, responsible)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (enterprise_id, code) DO UPDATE SET name = EXCLUDED.name,
                     kind = EXCLUDED.kind, people_500m = EXCLUDED.people_500m,
                     s_value = EXCLUDED.s_value, r_value = EXCLUDED.r_value, grade = EXCLUDED.grade,
                     inventory = EXCLUDED.inventory, responsible = EXCLUDED.responsible,
                     updated_at = now()
                   RETURNING id""",
                (
                    e.id,
                    hs.id,
                    hs.name,
                    hs.kind,
                    hs.people_within_500m,
                    g.s,
                    g.r,
                    int(g.grade) if g.grade else None,
                    json.dumps({i.chemical.id: i.max_t for i in hs.inventory}),
                    json.dumps(asdict(hs.responsible), ensure_ascii=False),
                ),
            ).fetchone()
            assert row is not None
            hs_db = int(str(row[0]))
            for s in hs.sensors:
                lim = effective_limits(s)
                r = conn.execute(
                    """INSERT INTO sensor (enterprise_id, hazard_source_id, tag, kind, unit, range_lo,
                           range_hi, period_s, chemical, description, is_key, hh, h, l, ll, retired)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false)
                       ON CONFLICT (enterprise_id, tag) DO UPDATE SET
                         hazard_source_id = EXCLUDED.hazard_source_id, kind = EXCLUDED.kind,
                         unit = EXCLUDED.unit, range_lo = EXCLUDED.range_lo,
                         range_hi = EXCLUDED.range_hi, period_s = EXCLUDED.period_s,
                         chemical = EXCLUDED.chemical, description = EXCLUDED.description,
                         is_key = EXCLUDED.is_key, hh = EXCLUDED.hh, h = EXCLUDED.h, l = EXCLUDED.l,
                         ll = EXCLUDED.ll, retired = false, updated_at = now()
                       RETURNING id""",
                    (
                        e.id,
                        hs_db,
                        s.tag,
                        s.kind.value,
                        s.unit,
                        s.range[0],
                        s.range[1],
                        s.period_s,
                        s.chemical.id if s.chemical else None,
                        s.description,
                        s.key,
                        lim.hh,
                        lim.h,
                        lim.l,
                        lim.ll,
                    ),
                ).fetchone()
                assert r is not None
                ids[s.tag] = int(str(r[0]))
        conn.execute(
            "UPDATE sensor SET retired = true, updated_at = now() "
            "WHERE enterprise_id = %s AND NOT (tag = ANY(%s)) AND NOT retired",
            (e.id, list(ids)),
        )
    return ids


def sensor_ids(conn: psycopg.Connection[tuple[object, ...]], enterprise_id: str) -> dict[str, int]:
    """Tag -> sensor id for an enterprise already in the registry."""
    rows = conn.execute("SELECT tag, id FROM sensor WHERE enterprise_id = %s", (enterprise_id,)).fetchall()
    return {str(t): int(str(i)) for t, i in rows}
