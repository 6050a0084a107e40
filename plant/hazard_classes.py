"""GB 18218-2018 Table 2 (Q by hazard category) and Table 4 (β by category), cited.

A chemical that Table 1 does not name is identified by its hazard category: Table 2
gives its critical quantity Q, Table 4 its correction factor β (β of Table 3 applies
only to the named toxic gases). The plant file names the category of such a chemical
and states its Q and β (``{chemical: 某中间体, category: W5.3, q_t: 1000, beta: 1,
max_t: 200}``); the loader checks them against this table, so a typo cannot change
a grade unnoticed.

GB 18218-2018 §4.1.2 (clause number and wording from memory, unverified): a chemical not in
Table 1 takes its Q from Table 2 by its hazard; a chemical with several hazards takes the
lowest Q among them — so the plant file names the one category with the lowest Q.

Status of each number (the same marks as `hazmon.plant.standards`):

* β of every category: GB 18218-2018 Table 4 as summarised in the project's standards
  notes (J1 4, J2 1, J3 2, J4 2, J5 1; explosives 2; W2 1.5; W5.1 1.5, W5.2–W5.4 1;
  self-reactive substances and organic peroxides type A/B 1.5; everything else 1) —
  verified.
* Q of J3 (50 t), W2 (10 t), W5.1 (10 t), W5.2 (50 t) and W5.4 (5000 t): read in a cited
  copy of Table 2 (the chemicals table's notes on carbon monoxide, propylene and
  xylene) — verified.
* Every other Q: transcribed from GB 18218-2018 Table 2 from memory, **unverified**:
  the loader accepts the Q the plant file gives for these categories and `hazmon
  plant` reports the grading as using unverified Q/β.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HAZARD_CATEGORIES", "HazardCategory", "hazard_category"]


@dataclass(frozen=True, slots=True)
class HazardCategory:
    """One row of GB 18218-2018 Table 2 with its β from Table 4.

    Attributes:
        code: the category code of Table 2 (J1 … J5, W1.1 … W11).
        name_zh: the category as Table 2 words it.
        name_en: an English gloss.
        q_t: critical quantity Q, tonnes (Table 2).
        beta: correction factor β (Table 4).
        q_verified: False when Q was not read in a cited copy (see the module docstring).
        beta_verified: False when β was not read in a cited copy.
    """

    code: str
    name_zh: str
    name_en: str
    q_t: float
    beta: float
    q_verified: bool
    beta_verified: bool = True


# GB 18218-2018 Table 2 (Q) and Table 4 (β); q_verified per the module docstring.
HAZARD_CATEGORIES: tuple[HazardCategory, ...] = (
    # health hazards: acute toxicity (急性毒性)
    HazardCategory(
        "J1", "类别1，所有暴露途径，气体", "acute toxicity cat 1, any route, gas", 5.0, 4.0, False
    ),
    HazardCategory(
        "J2",
        "类别1，所有暴露途径，固体、液体",
        "acute toxicity cat 1, any route, solid/liquid",
        50.0,
        1.0,
        False,
    ),
    HazardCategory(
        "J3", "类别2、类别3，所有暴露途径，气体", "acute toxicity cat 2/3, any route, gas", 50.0, 2.0, True
    ),
    HazardCategory(
        "J4",
        "类别2、类别3，吸入途径，液体（沸点≤35℃）",
        "acute toxicity cat 2/3, inhalation, liquid with bp <= 35 °C",
        50.0,
        2.0,
        False,
    ),
    HazardCategory(
        "J5",
        "类别2，所有暴露途径，液体（除J4外）、固体",
        "acute toxicity cat 2, any route, other liquid/solid",
        500.0,
        1.0,
        False,
    ),
    # physical hazards
    HazardCategory("W1.1", "不稳定爆炸物，1.1项爆炸物", "unstable explosives, division 1.1", 1.0, 2.0, False),
    HazardCategory(
        "W1.2", "1.2、1.3、1.5、1.6项爆炸物", "explosives, divisions 1.2/1.3/1.5/1.6", 10.0, 2.0, False
    ),
    HazardCategory("W1.3", "1.4项爆炸物", "explosives, division 1.4", 50.0, 2.0, False),
    HazardCategory("W2", "易燃气体，类别1和类别2", "flammable gas cat 1/2", 10.0, 1.5, True),
    HazardCategory("W3", "气溶胶，类别1和类别2", "aerosols cat 1/2 (net mass)", 150.0, 1.0, False),
    HazardCategory("W4", "氧化性气体，类别1", "oxidizing gas cat 1", 50.0, 1.0, False),
    HazardCategory(
        "W5.1",
        "易燃液体，类别1；类别2和3，工作温度高于沸点",
        "flammable liquid cat 1; cat 2/3 above its boiling point",
        10.0,
        1.5,
        True,
    ),
    HazardCategory(
        "W5.2",
        "易燃液体，类别2和3，具有引发重大事故的特殊工艺条件",
        "flammable liquid cat 2/3 under special process conditions",
        50.0,
        1.0,
        True,
    ),
    HazardCategory(
        "W5.3", "易燃液体，不属于W5.1或W5.2的类别2", "flammable liquid cat 2, other", 1000.0, 1.0, False
    ),
    HazardCategory(
        "W5.4", "易燃液体，不属于W5.1或W5.2的类别3", "flammable liquid cat 3, other", 5000.0, 1.0, True
    ),
    HazardCategory(
        "W6.1", "自反应物质和混合物，A型和B型", "self-reactive substances type A/B", 10.0, 1.5, False
    ),
    HazardCategory(
        "W6.2", "自反应物质和混合物，C型、D型、E型", "self-reactive substances type C/D/E", 50.0, 1.0, False
    ),
    HazardCategory("W7.1", "有机过氧化物，A型和B型", "organic peroxides type A/B", 10.0, 1.5, False),
    HazardCategory(
        "W7.2", "有机过氧化物，C型、D型、E型、F型", "organic peroxides type C-F", 50.0, 1.0, False
    ),
    HazardCategory(
        "W8", "自燃液体和自燃固体，类别1", "pyrophoric liquids and solids cat 1", 50.0, 1.0, False
    ),
    HazardCategory("W9.1", "氧化性固体和液体，类别1", "oxidizing solids and liquids cat 1", 50.0, 1.0, False),
    HazardCategory(
        "W9.2", "氧化性固体和液体，类别2、类别3", "oxidizing solids and liquids cat 2/3", 200.0, 1.0, False
    ),
    HazardCategory("W10", "易燃固体，类别1", "flammable solids cat 1", 200.0, 1.0, False),
    HazardCategory(
        "W11",
        "遇水放出易燃气体的物质和混合物，类别1和类别2",
        "substances emitting flammable gas with water cat 1/2",
        200.0,
        1.0,
        False,
    ),
)

_BY_CODE = {c.code: c for c in HAZARD_CATEGORIES}


def hazard_category(code: str) -> HazardCategory | None:
    """The Table 2 category with this code (``W5.3``, ``j3``), or None."""
    return _BY_CODE.get(code.strip().upper())
