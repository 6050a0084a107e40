"""Assessment records (评估报告) and what follows from them.

A record is stored in the database (`hazmon assessment add`); the status of a
hazard source's assessment is a pure function of (record, the plant's current
inventory, today).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from hazmon.plant.model import HazardSource, Limits
from hazmon.plant.standards import FILING_DAYS, REASSESSMENT_YEARS, Grade

__all__ = ["AssessmentRecord", "AssessmentStatus", "add_years", "assessment_status"]


@dataclass(frozen=True, slots=True)
class AssessmentRecord:
    """One assessment of one hazard source.

    Attributes:
        hazard_source: id of the hazard source.
        report_date: date of the assessment report.
        assessor: who assessed (organisation or person).
        r_value: R found by the assessment.
        grade: grade found.
        filed_on: date it was filed (备案) with the county bureau, if filed.
        inventory: chemical id -> design maximum quantity (t) the assessment covered.
        overrides: sensor tag -> limits agreed in the assessment (take precedence).
        id: database id, when stored.
    """

    hazard_source: str
    report_date: date
    assessor: str
    r_value: float
    grade: Grade
    filed_on: date | None = None
    inventory: dict[str, float] = field(default_factory=dict)
    overrides: dict[str, Limits] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class AssessmentStatus:
    """Derived status of a hazard source's assessment on one day.

    Attributes:
        record: the latest record, or None when there is none.
        next_due: date the reassessment is due (today when the inventory changed).
        due_reason: why it is due then ("3 years after the report", "inventory changed",
            "no assessment on record").
        filing_deadline: 15 days after the report.
        reassessment_overdue: the reassessment is due on or before today.
        filing_overdue: not filed and the deadline has passed (or filed late).
        inventory_changed: the plant file's inventory differs from the assessed one.
    """

    record: AssessmentRecord | None
    next_due: date
    due_reason: str
    filing_deadline: date | None
    reassessment_overdue: bool
    filing_overdue: bool
    inventory_changed: bool

    @property
    def due_reason_zh(self) -> str:
        """`due_reason` in Chinese."""
        if self.record is None:
            return "无评估记录"
        if self.inventory_changed:
            return "评估后危险化学品品种或数量已变化"
        return f"评估报告出具满 {REASSESSMENT_YEARS} 年"

    @property
    def valid(self) -> bool:
        """A record exists and is not overdue for reassessment."""
        return self.record is not None and not self.reassessment_overdue


def add_years(d: date, years: int) -> date:
    """Same day ``years`` later; 29 February becomes 28 February."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


def _inventory_of(hs: HazardSource) -> dict[str, float]:
    return {i.chemical.id: i.max_t for i in hs.inventory}


def assessment_status(record: AssessmentRecord | None, hs: HazardSource, today: date) -> AssessmentStatus:
    """Status of ``hs``'s assessment on ``today`` given its latest ``record``."""
    if record is None:
        return AssessmentStatus(None, today, "no assessment on record", None, True, False, False)
    changed = bool(record.inventory) and _inventory_of(hs) != record.inventory
    if changed:
        next_due, reason = today, "inventory changed since the assessment"
    else:
        next_due, reason = (
            add_years(record.report_date, REASSESSMENT_YEARS),
            f"{REASSESSMENT_YEARS} years after the report",
        )
    deadline = record.report_date + timedelta(days=FILING_DAYS)
    filing_overdue = (record.filed_on is None and today > deadline) or (
        record.filed_on is not None and record.filed_on > deadline
    )
    return AssessmentStatus(record, next_due, reason, deadline, next_due <= today, filing_overdue, changed)
