"""GB 18218-2018 identification and grading: S = Σq/Q, R = α·Σβ·q/Q, grade.

Pure functions over the cited table in `hazmon.plant.standards`.

The grade rests on comparisons at exact boundaries (S ≥ 1, R ≥ 100 / 50 / 10), so the
sums are computed exactly: every quantity is taken as the decimal it is written as
(the shortest repr of the float the plant file gave, so ``0.3`` is 3/10, not
0.299999…), and S and R are `fractions.Fraction`. A plain float sum would put
chlorine 3 t + ammonia 3 t + hydrogen 0.5 t at S = 0.9999999999999999 (not a major
hazard source) and ammonia 350 t + phosgene 0.2 t with 40 people at R = 99.99999999999999
(grade 2) where GB 18218-2018 gives S = 1 and R = 100 (grade 1). The floats in
`Grading` are for display only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from hazmon.plant.model import HazardSource, Inventory
from hazmon.plant.standards import ALPHA_BANDS, GRADE_BANDS, Grade

__all__ = ["Grading", "alpha", "exact", "grade", "grade_of_r", "grade_source"]


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


def exact(x: float) -> Fraction:
    """The decimal ``x`` was written as, exactly: 0.3 gives Fraction(3, 10).

    Raises:
        ValueError: for infinity or NaN (the plant file refuses them at load).
    """
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x}")
    return Fraction(repr(float(x)))


def grade_of_r(r: float | Fraction) -> Grade:
    for minimum, g in GRADE_BANDS:
        if r >= minimum:
            return g
    raise AssertionError("GRADE_BANDS ends with -inf")


def grade(inventory: tuple[Inventory, ...] | list[Inventory], people_within_500m: int) -> Grading:
    """Identify and grade one unit from its inventory and surroundings (exact arithmetic)."""
    s = sum((exact(i.max_t) / exact(i.chemical.q_t) for i in inventory), Fraction(0))
    a = alpha(people_within_500m)
    r = exact(a) * sum(
        (exact(i.chemical.beta) * exact(i.max_t) / exact(i.chemical.q_t) for i in inventory), Fraction(0)
    )
    verified = all(i.chemical.grading_verified for i in inventory)
    return Grading(float(s), a, float(r), grade_of_r(r) if s >= 1 else None, verified)


def grade_source(hs: HazardSource) -> Grading:
    return grade(hs.inventory, hs.people_within_500m)
