"""Warning tiers from finding level and hazard-source grade, tied to assessment records.

Pure functions: `effective_grade` (latest assessment, or one grade more severe when
it is missing or overdue), `tier_for` (the tier table, prediction one tier below
what it predicts), `latching` (which conditions latch). `load_limit_overrides`
reads the assessment overrides the rules engine must use (``RulesRunner.set_overrides``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import psycopg

from hazmon.plant.assessment import AssessmentRecord, AssessmentStatus, assessment_status
from hazmon.plant.findings import Condition
from hazmon.plant.grading import grade_source
from hazmon.plant.model import HazardSource, Limits, Plant
from hazmon.plant.standards import TIER_TABLE, Grade, Level, Tier
from hazmon.store import latest_assessments

__all__ = [
    "LATCHING",
    "SourceGrade",
    "TierTable",
    "effective_grade",
    "latching",
    "load_limit_overrides",
    "source_grades",
    "tier_for",
]

TierTable = Mapping[Level, Mapping[Grade, Tier]]

LATCHING: frozenset[Condition] = frozenset({Condition.GAS_SECOND, Condition.VOTE_CONFIRMED})
"""Conditions whose alarm stays active until acknowledged, even when the gas is gone."""

_PREDICTS: dict[Condition, Level] = {
    Condition.PREDICT_HH: Level.SECOND,
    Condition.PREDICT_LL: Level.SECOND,
}


@dataclass(frozen=True, slots=True)
class SourceGrade:
    """The grade an alarm tier uses for one hazard source, and why.

    Attributes:
        grade: grade used for tiers.
        assessed: the grade of the latest valid assessment, None when there is none.
        status: the assessment status on that day.
        reason: a sentence for the audit trail.
    """

    grade: Grade
    assessed: Grade | None
    status: AssessmentStatus
    reason: str


def effective_grade(hs: HazardSource, record: AssessmentRecord | None, today: date) -> SourceGrade:
    """The grade for tiers: the valid assessment's, else one more severe.

    Without any record the plant file's own grading (GB 18218) is the base; a
    source that grades as not major counts as grade 4 before the step up.
    """
    st = assessment_status(record, hs, today)
    if st.valid and record is not None:
        return SourceGrade(record.grade, record.grade, st, f"assessed grade {int(record.grade)}")
    if record is not None:
        base = record.grade
        why = f"assessment overdue ({st.due_reason}, due {st.next_due.isoformat()})"
    else:
        base = grade_source(hs).grade or Grade.FOUR
        why = "no assessment on record"
    g = base.more_severe()
    return SourceGrade(g, None, st, f"{why}: grade {int(base)} counted as {int(g)}")


def source_grades(
    plant: Plant, records: Mapping[str, AssessmentRecord], today: date
) -> dict[str, SourceGrade]:
    return {hs.id: effective_grade(hs, records.get(hs.id), today) for hs in plant.hazard_sources}


def tier_for(level: Level, condition: Condition, grade: Grade, table: TierTable = TIER_TABLE) -> Tier:
    """Tier of a finding.

    A predictive finding takes one tier below the level it predicts (HH/LL
    predictions predict a second-level alarm; other predictions a first-level one).
    """
    if level is Level.PREDICTIVE:
        predicted = _PREDICTS.get(condition, Level.FIRST)
        return table[predicted][grade].lower()
    return table[level][grade]


def latching(condition: Condition) -> bool:
    return condition in LATCHING


def load_limit_overrides(
    conn: psycopg.Connection[tuple[object, ...]], plant: Plant, today: date | None = None
) -> dict[str, Limits]:
    """Sensor tag -> limits agreed in the latest assessment of its hazard source.

    The daemon passes this to ``RulesRunner.set_overrides`` at start and after an
    assessment is added: assessment limits take precedence over the plant file.
    Overrides for tags not in the plant file are ignored.
    """
    tags = {s.tag for s in plant.sensors()}
    out: dict[str, Limits] = {}
    for rec in latest_assessments(conn, plant.enterprise.id, today).values():
        for tag, lim in rec.overrides.items():
            if tag in tags:
                out[tag] = lim
    return out
