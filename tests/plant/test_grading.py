"""GB 18218-2018 grading against hand-worked cases."""

from __future__ import annotations

import pytest

from hazmon.plant.grading import alpha, grade, grade_of_r
from hazmon.plant.model import Inventory
from hazmon.plant.standards import CHEMICALS, Grade, chemical


def inv(*items: tuple[str, float]) -> list[Inventory]:
    out = []
    for key, q in items:
        c = chemical(key)
        assert c is not None, key
        out.append(Inventory(c, q))
    return out


# (inventory, people within 500 m, S, R, grade) — each worked by hand:
CASES = [
    # docs/standards.md worked check (GB 18218-2018): S = 30/5 = 6; R = 2.0 · 4 · 6 = 48 -> 三级
    (inv(("chlorine", 30)), 120, 6.0, 48.0, Grade.THREE),
    # toxic + flammable: S = 10/5 + 100/50 = 4; R = 1.5 · (4·2 + 1.5·2) = 16.5 -> 三级
    (inv(("chlorine", 10), ("lpg", 100)), 60, 4.0, 16.5, Grade.THREE),
    # three classes, nobody nearby: S = 5 + 2 + 0.4 = 7.4; R = 0.5 · (2·5 + 1·2 + 5·0.4) = 7 -> 四级
    (inv(("ammonia", 50), ("methanol", 1000), ("hydrogen-sulfide", 2)), 0, 7.4, 7.0, Grade.FOUR),
    # phosgene β 20: S = 0.6/0.3 = 2; R = 2.0 · 20 · 2 = 80 -> 二级
    (inv(("phosgene", 0.6)), 200, 2.0, 80.0, Grade.TWO),
    # S exactly 1 is a major hazard source: R = 1.0 · 1 · 1 -> 四级
    (inv(("methanol", 500)), 10, 1.0, 1.0, Grade.FOUR),
    # S < 1: not a major hazard source, not graded (R still computed)
    (inv(("methanol", 400)), 10, 0.8, 0.8, None),
    # two sub-threshold chemicals that add up: 3/5 + 30/50 = 1.2; R = 1.2 · (4·0.6 + 1.5·0.6) = 3.96
    (inv(("chlorine", 3), ("propane", 30)), 40, 1.2, 3.96, Grade.FOUR),
    # grade 1: 125 t chlorine, α 1.0: R = 4 · 25 = 100 -> 一级 (boundary, inclusive)
    (inv(("chlorine", 125)), 10, 25.0, 100.0, Grade.ONE),
    # boundaries 50 and 10 are inclusive
    (inv(("chlorine", 62.5)), 10, 12.5, 50.0, Grade.TWO),
    (inv(("chlorine", 12.5)), 10, 2.5, 10.0, Grade.THREE),
    # example plant's LPG sphere area: S = 800/50 = 16; R = 1.5 · 1.5 · 16 = 36 -> 三级
    (inv(("lpg", 800)), 60, 16.0, 36.0, Grade.THREE),
]


@pytest.mark.parametrize(("inventory", "people", "s", "r", "expected"), CASES)
def test_grading_hand_worked(
    inventory: list[Inventory], people: int, s: float, r: float, expected: Grade | None
) -> None:
    g = grade(inventory, people)
    assert g.s == pytest.approx(s)
    assert g.r == pytest.approx(r)
    assert g.grade == expected
    assert g.is_major == (expected is not None)


@pytest.mark.parametrize(
    ("people", "a"),
    [(0, 0.5), (1, 1.0), (29, 1.0), (30, 1.2), (49, 1.2), (50, 1.5), (99, 1.5), (100, 2.0), (5000, 2.0)],
)
def test_alpha_every_band_and_edge(people: int, a: float) -> None:
    assert alpha(people) == a


def test_alpha_refuses_negative_people() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        alpha(-1)


@pytest.mark.parametrize(
    ("r", "g"),
    [
        (150.0, Grade.ONE),
        (100.0, Grade.ONE),
        (99.999, Grade.TWO),
        (50.0, Grade.TWO),
        (49.999, Grade.THREE),
        (10.0, Grade.THREE),
        (9.999, Grade.FOUR),
        (0.0, Grade.FOUR),
    ],
)
def test_grade_boundaries(r: float, g: Grade) -> None:
    assert grade_of_r(r) == g


def test_unverified_q_or_beta_is_flagged() -> None:
    assert grade(inv(("gasoline", 400)), 10).verified is False  # β of gasoline is [R]
    assert grade(inv(("chlorine", 30)), 10).verified is True


def test_table_covers_at_least_25_chemicals_with_cas() -> None:
    assert len(CHEMICALS) >= 25
    assert len({c.cas for c in CHEMICALS}) == len(CHEMICALS)
    for c in CHEMICALS:
        assert c.q_t > 0 and c.beta >= 1, c.id
        assert chemical(c.cas) is c and chemical(c.id) is c


@pytest.mark.parametrize(
    ("key", "q", "beta"),
    # docs/standards.md: named toxic gases (Table 3) and Q values quoted there
    [
        ("chlorine", 5, 4),
        ("ammonia", 10, 2),
        ("hydrogen", 5, 1.5),
        ("lpg", 50, 1.5),
        ("methane", 50, 1.5),
        ("gasoline", 200, 1),
        ("methanol", 500, 1),
        ("benzene", 50, 1),
        ("toluene", 500, 1),
        ("acetylene", 1, 1.5),
        ("phosgene", 0.3, 20),
        ("oxygen", 200, 1),
        ("hydrogen-sulfide", 5, 5),
        ("carbon-monoxide", 20, 2),
        ("sulfur-dioxide", 20, 2),
        ("hydrogen-chloride", 20, 3),
        ("hydrogen-fluoride", 1, 5),
        ("hydrogen-cyanide", 1, 10),
        ("ethylene-oxide", 10, 2),
    ],
)
def test_table_matches_the_standard(key: str, q: float, beta: float) -> None:
    c = chemical(key)
    assert c is not None and (c.q_t, c.beta) == (q, beta)


# Exact boundaries that a plain float sum gets wrong (0.6 + 0.3 + 0.1 < 1 in binary floating point).
def test_s_exactly_one_from_three_chemicals_is_a_major_hazard_source() -> None:
    # S = 3/5 + 3/10 + 0.5/5 = 0.6 + 0.3 + 0.1 = 1; R = 1.0 · (4·0.6 + 2·0.3 + 1.5·0.1) = 3.15 -> 四级
    g = grade(inv(("chlorine", 3), ("ammonia", 3), ("hydrogen", 0.5)), 10)
    assert g.is_major
    assert g.grade == Grade.FOUR
    assert g.s == 1.0


def test_r_exactly_100_is_grade_one() -> None:
    # S = 350/10 + 0.2/0.3 = 35.67; R = 1.2 · (2·35 + 20·(2/3)) = 1.2 · 83.33… = 100 -> 一级
    g = grade(inv(("ammonia", 350), ("phosgene", 0.2)), 40)
    assert g.grade == Grade.ONE
    assert g.r == 100.0


def test_exact_takes_the_written_decimal() -> None:
    from fractions import Fraction

    from hazmon.plant.grading import exact

    assert exact(0.3) == Fraction(3, 10)
    assert exact(350) == 350
    with pytest.raises(ValueError, match="not a finite number"):
        exact(float("inf"))
