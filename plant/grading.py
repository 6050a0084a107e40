"""GB 18218-2018 identification and grading: S = Σq/Q, R = α·Σβ·q/Q, grade.

Pure functions over the cited table in `hazmon.plant.standards`.
"""

from __future__ import annotations

from dataclasses import dataclass

from hazmon.plant.model import HazardSource, Inventory
from hazmon.plant.standards import ALPHA_BANDS, GRADE_BANDS, Grade

__all__ = ["Grading", "alpha", "grade", "grade_of_r", "grade_source"]


@dataclass(frozen=True, slots=True)
class Grading:
    """Result of identification and grading of one unit.

    Attributes:
        s: Σ qᵢ/Qᵢ; the unit is a major hazard source when s >= 1.
        alpha: α from the people within 500 m.
        r: α · Σ βᵢ·qᵢ/Qᵢ (unrounded; round for display only).
        grade: the grade, or None when the unit is not a major hazard source.
        verified: False when a Q or β used is marked unverified in the table.
    """

    s: float
    alpha: float
    r: float
    grade: Grade | None
    verified: bool

    @property
    def is_major(self) -> bool:
        return self.grade is not None


def alpha(people_within_500m: int) -> float:
    """α of GB 18218-2018 Table 5."""
    for minimum, a in ALPHA_BANDS:
        if people_within_500m >= minimum:
            return a
    raise ValueError(f"people within 500 m cannot be negative: {people_within_500m}")


def grade_of_r(r: float) -> Grade:
    for minimum, g in GRADE_BANDS:
        if r >= minimum:
            return g
    raise AssertionError("GRADE_BANDS ends with -inf")


def grade(inventory: tuple[Inventory, ...] | list[Inventory], people_within_500m: int) -> Grading:
    """Identify and grade one unit from its inventory and surroundings."""
    s = sum(i.max_t / i.chemical.q_t for i in inventory)
    a = alpha(people_within_500m)
    r = a * sum(i.chemical.beta * i.max_t / i.chemical.q_t for i in inventory)
    verified = all(i.chemical.grading_verified for i in inventory)
    return Grading(s, a, r, grade_of_r(r) if s >= 1.0 else None, verified)


def grade_source(hs: HazardSource) -> Grading:
    return grade(hs.inventory, hs.people_within_500m)
