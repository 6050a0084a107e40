"""Assessment records in the database."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import date
from typing import Any

import psycopg

from hazmon.plant.assessment import AssessmentRecord
from hazmon.plant.model import Limits
from hazmon.plant.standards import Grade

__all__ = ["add_assessment", "latest_assessments", "list_assessments"]

_LIMIT_KEYS = {f.name for f in fields(Limits)}


def _limits_from_json(d: dict[str, Any]) -> Limits:
    return Limits(**{k: v for k, v in d.items() if k in _LIMIT_KEYS})


def add_assessment(
    conn: psycopg.Connection[tuple[object, ...]],
    enterprise_id: str,
    rec: AssessmentRecord,
    created_by: str = "cli",
) -> int:
    """Store a record; returns its id.

    Raises:
        KeyError: the hazard source is not in the registry (run ``hazmon db load`` first).
    """
    with conn.transaction():
        row = conn.execute(
            "SELECT id FROM hazard_source WHERE enterprise_id = %s AND code = %s",
            (enterprise_id, rec.hazard_source),
        ).fetchone()
        if row is None:
            raise KeyError(f"hazard source '{rec.hazard_source}' is not in the registry of '{enterprise_id}'")
        r = conn.execute(
            """INSERT INTO assessment (hazard_source_id, report_date, assessor, r_value, grade, filed_on,
                   inventory, overrides, created_by)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (
                row[0],
                rec.report_date,
                rec.assessor,
                rec.r_value,
                int(rec.grade),
                rec.filed_on,
                json.dumps(rec.inventory),
                json.dumps(
                    {
                        t: {k: v for k, v in asdict(lim).items() if v is not None}
                        for t, lim in rec.overrides.items()
                    }
                ),
                created_by,
            ),
        ).fetchone()
        assert r is not None
        return int(str(r[0]))


_SELECT = """SELECT a.id, hs.code, a.report_date, a.assessor, a.r_value, a.grade, a.filed_on,
                    a.inventory, a.overrides
             FROM assessment a JOIN hazard_source hs ON hs.id = a.hazard_source_id
             WHERE hs.enterprise_id = %s"""


def _record(row: tuple[Any, ...]) -> AssessmentRecord:
    aid, code, report, assessor, r, grade, filed, inv, ov = row
    return AssessmentRecord(
        hazard_source=str(code),
        report_date=report,
        assessor=str(assessor),
        r_value=float(r),
        grade=Grade(int(grade)),
        filed_on=filed,
        inventory={str(k): float(v) for k, v in (inv or {}).items()},
        overrides={str(t): _limits_from_json(d) for t, d in (ov or {}).items()},
        id=int(aid),
    )


def list_assessments(
    conn: psycopg.Connection[tuple[object, ...]], enterprise_id: str, hazard_source: str | None = None
) -> list[AssessmentRecord]:
    sql, params = _SELECT, [enterprise_id]
    if hazard_source:
        sql += " AND hs.code = %s"
        params.append(hazard_source)
    rows = conn.execute(sql + " ORDER BY hs.code, a.report_date DESC, a.id DESC", params).fetchall()
    return [_record(r) for r in rows]


def latest_assessments(
    conn: psycopg.Connection[tuple[object, ...]], enterprise_id: str, on: date | None = None
) -> dict[str, AssessmentRecord]:
    """Hazard source code -> its latest record (by report date, up to ``on``)."""
    out: dict[str, AssessmentRecord] = {}
    for rec in list_assessments(conn, enterprise_id):
        if on is not None and rec.report_date > on:
            continue
        out.setdefault(rec.hazard_source, rec)
    return out
