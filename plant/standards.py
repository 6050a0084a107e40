"""The one cited table of domain numbers hazmon relies on.

Every number a user relies on (critical quantities, correction factors, grade
bands, gas setpoints, retention, reassessment period, warning tiers, alarm-load
targets, vapour-pressure constants) lives here, next to the standard it comes
from. Nothing else in hazmon writes these numbers as literals.

Sources, each standard with its clause, the values used here and whether each was
verified, are transcribed in ``docs/standards.md`` (in this repository):

* GB 18218-2018 《危险化学品重大危险源辨识》: Table 1 (named chemicals and their
  critical quantity Q), Table 2 (Q by hazard class), Table 3 (β for named toxic
  gases), Table 4 (β by hazard class), Table 5 (α by people within 500 m),
  grade bands of R. Q and β by hazard category (Table 2 / Table 4), for chemicals
  this table does not list, are in ``hazmon.plant.hazard_classes``.
* GB/T 50493-2019 《石油化工可燃气体和有毒气体检测报警设计标准》 §5.5.2: gas alarm
  setpoints.
* GBZ 2.1-2019: occupational exposure limits (MAC, PC-TWA, PC-STEL) in mg/m³.
  **All GBZ values are unverified [R]**: they are defaults, overridable per sensor
  in the plant file.
* NIOSH IDLH values (ppm).
* IEC 60079-20-1 (adopted as GB/T 3836.11): LEL/UEL in %vol. %LEL readings depend
  on the reference; NFPA 497 values differ (methane 4.4 vs 5.0 %vol).
* 《危险化学品重大危险源监督管理暂行规定》 (SAWS Order 40 of 2011, amended 2015):
  30-day record retention, 3-year reassessment, 15-day filing (备案).
* ISA-18.2 / IEC 62682 and EEMUA 191: alarm-load targets.
* DIPPR eq. 101 constants (Perry's 8th ed. Table 2-8) via CalebBell/chemicals
  commit 82faef90: vapour pressure of liquefied gases.

Status marks: a value marked unverified (``[R]`` in docs/standards.md) is kept
configurable: an unverified Q or β sets ``grading_verified=False`` (``hazmon plant``
says "uses unverified Q/β"); the GBZ 2.1 exposure limits, all unverified, are defaults a
sensor's limits in the plant file override.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "ALARM_REPEAT_S",
    "ALARM_TARGETS",
    "ALPHA_BANDS",
    "CHEMICALS",
    "ESCALATION_DEFAULTS",
    "FILING_DAYS",
    "GAS_SETPOINTS_MG_M3",
    "GRADE_BANDS",
    "LEL_REFERENCE",
    "MOLAR_VOLUME_L",
    "NAMUR_NE43_HIGH_FRACTION",
    "NAMUR_NE43_LOW_FRACTION",
    "OXYGEN_HIGH_PCT_VOL",
    "OXYGEN_LOW_PCT_VOL",
    "REASSESSMENT_YEARS",
    "RETENTION_DEFAULT_DAYS",
    "RETENTION_MIN_DAYS",
    "SHELVE_MAX_S",
    "STALE_AFTER_PERIODS",
    "STALE_MIN_S",
    "TIER_TABLE",
    "VAPOUR_PRESSURE",
    "AlarmTargets",
    "Chemical",
    "Grade",
    "Level",
    "Tier",
    "VapourPressure",
    "chemical",
    "mg_m3_to_ppm",
    "ppm_to_mg_m3",
    "toxic_setpoints_mg_m3",
]


# --------------------------------------------------------------------------- #
# Chemicals (GB 18218-2018 Tables 1-4, IEC 60079-20-1, GBZ 2.1-2019, NIOSH)    #
# --------------------------------------------------------------------------- #

LEL_REFERENCE = "IEC 60079-20-1 (GB/T 3836.11)"
"""The reference of every LEL/UEL below; a %LEL detector must be calibrated to it."""

MOLAR_VOLUME_L = 24.055
"""Molar volume of an ideal gas at 20 °C and 101.325 kPa, L/mol (ppm ↔ mg/m³)."""


@dataclass(frozen=True, slots=True)
class Chemical:
    """One hazardous chemical and its cited numbers.

    Attributes:
        id: hazmon's key, used in plant files (``chlorine``, ``lpg``…).
        name_en: English name.
        name_zh: Chinese name as in GB 18218-2018.
        cas: CAS registry number.
        q_t: critical quantity Q in tonnes (GB 18218-2018 Table 1 or 2).
        beta: correction factor β (Table 3 or 4).
        beta_class: where β comes from.
        lel_pct: lower explosive limit, %vol (IEC 60079-20-1); None if not flammable.
        uel_pct: upper explosive limit, %vol.
        molar_mass: g/mol; None for mixtures.
        mac: GBZ 2.1 maximum allowable concentration, mg/m³ [R].
        pc_twa: GBZ 2.1 permissible concentration, time-weighted average, mg/m³ [R].
        pc_stel: GBZ 2.1 short-term exposure limit, mg/m³ [R].
        idlh_ppm: NIOSH IDLH, ppm.
        grading_verified: False when Q or β is unverified ([R] in docs/standards.md).
        category: GB 18218-2018 Table 2 category (``W5.3``) of a chemical the plant file
            grades by its category (`hazmon.plant.hazard_classes`); "" for this table's rows.
    """

    id: str
    name_en: str
    name_zh: str
    cas: str
    q_t: float
    beta: float
    beta_class: str
    lel_pct: float | None
    uel_pct: float | None
    molar_mass: float | None
    mac: float | None
    pc_twa: float | None
    pc_stel: float | None
    idlh_ppm: float | None
    grading_verified: bool
    category: str = ""

    @property
    def oel_mg_m3(self) -> float | None:
        """Occupational exposure limit used for gas setpoints (GB/T 50493 §5.5.2).

        MAC where GBZ 2.1 gives one, otherwise PC-TWA. This reproduces every
        "typical setpoint" of GB/T 50493 listed in docs/standards.md
        (H₂S 10, CO 20, Cl₂ 1, NH₃ 20, SO₂ 5, HCN 1, phosgene 0.5, benzene 6).
        """
        return self.mac if self.mac is not None else self.pc_twa

    @property
    def flammable(self) -> bool:
        return self.lel_pct is not None


# Q and β: GB 18218-2018; LEL/UEL: IEC 60079-20-1; OELs: GBZ 2.1-2019 [R];
# IDLH: NIOSH. One row per chemical of the table in docs/standards.md (30 rows), marks there.
CHEMICALS: tuple[Chemical, ...] = (
    Chemical(
        "chlorine",
        "Liquefied chlorine",
        "液氯(氯)",
        "7782-50-5",
        q_t=5.0,
        beta=4.0,
        beta_class="GB18218 Tab3 named (氯)",
        lel_pct=None,
        uel_pct=None,
        molar_mass=70.906,
        mac=1.0,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=10.0,
        grading_verified=True,
    ),
    Chemical(
        "ammonia",
        "Ammonia (anhydrous)",
        "氨(液氨)",
        "7664-41-7",
        q_t=10.0,
        beta=2.0,
        beta_class="GB18218 Tab3 named (氨)",
        lel_pct=15.0,
        uel_pct=33.6,
        molar_mass=17.03052,
        mac=None,
        pc_twa=20.0,
        pc_stel=30.0,
        idlh_ppm=300.0,
        grading_verified=True,
    ),
    Chemical(
        "hydrogen",
        "Hydrogen",
        "氢(氢气)",
        "1333-74-0",
        q_t=5.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=4.0,
        uel_pct=77.0,
        molar_mass=2.01588,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "methane",
        "Methane / natural gas",
        "甲烷、天然气",
        "74-82-8",
        q_t=50.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=4.4,
        uel_pct=17.0,
        molar_mass=16.04246,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "lpg",
        "LPG (liquefied petroleum gas)",
        "液化石油气",
        "68476-85-7",
        q_t=50.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=None,
        uel_pct=None,
        molar_mass=None,
        mac=None,
        pc_twa=1000.0,
        pc_stel=1500.0,
        idlh_ppm=2000.0,
        grading_verified=True,
    ),
    Chemical(
        "propane",
        "Propane",
        "丙烷",
        "74-98-6",
        q_t=50.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=1.7,
        uel_pct=10.9,
        molar_mass=44.09562,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=2100.0,
        grading_verified=True,
    ),
    Chemical(
        "n-butane",
        "n-Butane",
        "正丁烷",
        "106-97-8",
        q_t=50.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=1.4,
        uel_pct=9.3,
        molar_mass=58.1222,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=1600.0,
        grading_verified=True,
    ),
    Chemical(
        "gasoline",
        "Gasoline",
        "汽油(含乙醇汽油、甲醇汽油)",
        "86290-81-5",
        q_t=200.0,
        beta=1.0,
        beta_class="Tab4 W5.3 if GHS flam.liq. cat 2",
        lel_pct=1.4,
        uel_pct=7.6,
        molar_mass=None,
        mac=None,
        pc_twa=300.0,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=False,
    ),
    Chemical(
        "methanol",
        "Methanol",
        "甲醇",
        "67-56-1",
        q_t=500.0,
        beta=1.0,
        beta_class="Tab4 W5.3 flam.liq cat 2 (FP 9-12C, bp 65C)",
        lel_pct=6.0,
        uel_pct=36.0,
        molar_mass=32.04186,
        mac=None,
        pc_twa=25.0,
        pc_stel=50.0,
        idlh_ppm=6000.0,
        grading_verified=True,
    ),
    Chemical(
        "ethanol",
        "Ethanol",
        "乙醇",
        "64-17-5",
        q_t=500.0,
        beta=1.0,
        beta_class="Tab4 W5.3 flam.liq cat 2 (FP 12-13C)",
        lel_pct=3.1,
        uel_pct=19.0,
        molar_mass=46.06844,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=3300.0,
        grading_verified=True,
    ),
    Chemical(
        "benzene",
        "Benzene",
        "苯",
        "71-43-2",
        q_t=50.0,
        beta=1.0,
        beta_class="Tab4 W5.3 flam.liq cat 2 (FP -11C, bp 80C)",
        lel_pct=1.2,
        uel_pct=8.6,
        molar_mass=78.11184,
        mac=None,
        pc_twa=6.0,
        pc_stel=10.0,
        idlh_ppm=500.0,
        grading_verified=True,
    ),
    Chemical(
        "toluene",
        "Toluene",
        "甲苯",
        "108-88-3",
        q_t=500.0,
        beta=1.0,
        beta_class="Tab4 W5.3 flam.liq cat 2 (FP 4C)",
        lel_pct=1.0,
        uel_pct=7.8,
        molar_mass=92.13842,
        mac=None,
        pc_twa=50.0,
        pc_stel=100.0,
        idlh_ppm=500.0,
        grading_verified=True,
    ),
    Chemical(
        "xylene",
        "Xylene (mixed isomers)",
        "二甲苯",
        "1330-20-7",
        q_t=5000.0,
        beta=1.0,
        beta_class="Tab2/Tab4 W5.4 flam.liq cat 3 (FP 25-30C)",
        lel_pct=1.0,
        uel_pct=7.6,
        molar_mass=106.165,
        mac=None,
        pc_twa=50.0,
        pc_stel=100.0,
        idlh_ppm=900.0,
        grading_verified=True,
    ),
    Chemical(
        "acetylene",
        "Acetylene",
        "乙炔",
        "74-86-2",
        q_t=1.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=2.3,
        uel_pct=100.0,
        molar_mass=26.03728,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "ethylene",
        "Ethylene",
        "乙烯",
        "74-85-1",
        q_t=50.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=2.3,
        uel_pct=36.0,
        molar_mass=28.05316,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "propylene",
        "Propylene",
        "丙烯",
        "115-07-1",
        q_t=10.0,
        beta=1.5,
        beta_class="Tab2/Tab4 W2 flammable gas",
        lel_pct=2.0,
        uel_pct=11.1,
        molar_mass=42.07974,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "phosgene",
        "Phosgene",
        "光气(碳酰氯)",
        "75-44-5",
        q_t=0.3,
        beta=20.0,
        beta_class="GB18218 Tab3 named (碳酰氯)",
        lel_pct=None,
        uel_pct=None,
        molar_mass=98.9161,
        mac=0.5,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=2.0,
        grading_verified=True,
    ),
    Chemical(
        "hydrogen-sulfide",
        "Hydrogen sulfide",
        "硫化氢",
        "7783-06-4",
        q_t=5.0,
        beta=5.0,
        beta_class="GB18218 Tab3 named",
        lel_pct=4.0,
        uel_pct=45.5,
        molar_mass=34.08088,
        mac=10.0,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=100.0,
        grading_verified=True,
    ),
    Chemical(
        "carbon-monoxide",
        "Carbon monoxide",
        "一氧化碳",
        "630-08-0",
        q_t=20.0,
        beta=2.0,
        beta_class="GB18218 Tab3 named (一氧化碳)",
        lel_pct=10.9,
        uel_pct=74.0,
        molar_mass=28.0101,
        mac=None,
        pc_twa=20.0,
        pc_stel=30.0,
        idlh_ppm=1200.0,
        grading_verified=True,
    ),
    Chemical(
        "sulfur-dioxide",
        "Sulfur dioxide",
        "二氧化硫",
        "7446-09-5",
        q_t=20.0,
        beta=2.0,
        beta_class="GB18218 Tab3 named",
        lel_pct=None,
        uel_pct=None,
        molar_mass=64.0638,
        mac=None,
        pc_twa=5.0,
        pc_stel=10.0,
        idlh_ppm=100.0,
        grading_verified=True,
    ),
    Chemical(
        "hydrogen-cyanide",
        "Hydrogen cyanide",
        "氰化氢",
        "74-90-8",
        q_t=1.0,
        beta=10.0,
        beta_class="GB18218 Tab3 named",
        lel_pct=5.4,
        uel_pct=46.0,
        molar_mass=27.02534,
        mac=1.0,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=50.0,
        grading_verified=True,
    ),
    Chemical(
        "hydrogen-fluoride",
        "Hydrogen fluoride",
        "氟化氢",
        "7664-39-3",
        q_t=1.0,
        beta=5.0,
        beta_class="GB18218 Tab3 named",
        lel_pct=None,
        uel_pct=None,
        molar_mass=20.006343,
        mac=2.0,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=30.0,
        grading_verified=True,
    ),
    Chemical(
        "hydrogen-chloride",
        "Hydrogen chloride",
        "氯化氢(无水)",
        "7647-01-0",
        q_t=20.0,
        beta=3.0,
        beta_class="GB18218 Tab3 named",
        lel_pct=None,
        uel_pct=None,
        molar_mass=36.46094,
        mac=7.5,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=50.0,
        grading_verified=True,
    ),
    Chemical(
        "ethylene-oxide",
        "Ethylene oxide",
        "环氧乙烷",
        "75-21-8",
        q_t=10.0,
        beta=2.0,
        beta_class="GB18218 Tab3 named",
        lel_pct=2.6,
        uel_pct=100.0,
        molar_mass=44.05256,
        mac=None,
        pc_twa=2.0,
        pc_stel=None,
        idlh_ppm=800.0,
        grading_verified=True,
    ),
    Chemical(
        "vinyl-chloride",
        "Vinyl chloride",
        "氯乙烯",
        "75-01-4",
        q_t=50.0,
        beta=1.5,
        beta_class="Tab4 W2 flammable gas",
        lel_pct=3.6,
        uel_pct=33.0,
        molar_mass=62.49822,
        mac=None,
        pc_twa=10.0,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "acrylonitrile",
        "Acrylonitrile",
        "丙烯腈(2-丙烯腈)",
        "107-13-1",
        q_t=50.0,
        beta=1.0,
        beta_class="Tab4 W5.3 flam.liq cat 2 (FP -5C, bp 77C)",
        lel_pct=2.8,
        uel_pct=28.0,
        molar_mass=53.06262,
        mac=None,
        pc_twa=1.0,
        pc_stel=2.0,
        idlh_ppm=85.0,
        grading_verified=True,
    ),
    Chemical(
        "oxygen",
        "Oxygen (liquid)",
        "氧(压缩的或液化的)",
        "7782-44-7",
        q_t=200.0,
        beta=1.0,
        beta_class="Tab4 W4 oxidizing gas",
        lel_pct=None,
        uel_pct=None,
        molar_mass=31.9988,
        mac=None,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=None,
        grading_verified=True,
    ),
    Chemical(
        "styrene",
        "Styrene",
        "苯乙烯",
        "100-42-5",
        q_t=500.0,
        beta=1.0,
        beta_class="Tab4 W5.4 flam.liq cat 3 (FP 30-31C)",
        lel_pct=1.0,
        uel_pct=8.0,
        molar_mass=104.14912,
        mac=None,
        pc_twa=50.0,
        pc_stel=100.0,
        idlh_ppm=700.0,
        grading_verified=True,
    ),
    Chemical(
        "acetone",
        "Acetone",
        "丙酮",
        "67-64-1",
        q_t=500.0,
        beta=1.0,
        beta_class="Tab4 W5.3 flam.liq cat 2 (FP -20C)",
        lel_pct=2.5,
        uel_pct=14.3,
        molar_mass=58.07914,
        mac=None,
        pc_twa=300.0,
        pc_stel=450.0,
        idlh_ppm=2500.0,
        grading_verified=True,
    ),
    Chemical(
        "formaldehyde",
        "Formaldehyde",
        "甲醛",
        "50-00-0",
        q_t=5.0,
        beta=2.0,
        beta_class="Tab4 J3 toxic gas cat 2/3 (assumed)",
        lel_pct=7.0,
        uel_pct=73.0,
        molar_mass=30.02598,
        mac=0.5,
        pc_twa=None,
        pc_stel=None,
        idlh_ppm=20.0,
        grading_verified=False,
    ),
)

_BY_KEY: dict[str, Chemical] = {}
for _c in CHEMICALS:
    _BY_KEY[_c.id] = _c
    _BY_KEY[_c.cas] = _c


def chemical(key: str) -> Chemical | None:
    """The chemical with this hazmon id or CAS number, or None."""
    return _BY_KEY.get(key.strip().lower()) or _BY_KEY.get(key.strip())


def ppm_to_mg_m3(ppm: float, molar_mass: float) -> float:
    """mg/m³ = ppm · M / 24.055 (20 °C, 101.325 kPa)."""
    return ppm * molar_mass / MOLAR_VOLUME_L


def mg_m3_to_ppm(mg_m3: float, molar_mass: float) -> float:
    """Ppm = mg/m³ · 24.055 / M (20 °C, 101.325 kPa)."""
    return mg_m3 * MOLAR_VOLUME_L / molar_mass


# --------------------------------------------------------------------------- #
# Grading (GB 18218-2018 §4.2)                                                 #
# --------------------------------------------------------------------------- #


class Grade(IntEnum):
    """Grade of a major hazard source; 1 is the most severe."""

    ONE = 1
    TWO = 2
    THREE = 3
    FOUR = 4

    @property
    def zh(self) -> str:
        return ("一级", "二级", "三级", "四级")[self.value - 1]

    def more_severe(self) -> Grade:
        """One grade more severe (used when the assessment is missing or overdue)."""
        return Grade(max(1, self.value - 1))


# α by people living within 500 m of the plant boundary (Table 5):
# (minimum people, α), checked from the top.
ALPHA_BANDS: tuple[tuple[int, float], ...] = ((100, 2.0), (50, 1.5), (30, 1.2), (1, 1.0), (0, 0.5))

# Grade by R (§4.2.3): (minimum R, grade), checked from the top.
GRADE_BANDS: tuple[tuple[float, Grade], ...] = (
    (100.0, Grade.ONE),
    (50.0, Grade.TWO),
    (10.0, Grade.THREE),
    (-math.inf, Grade.FOUR),
)


# --------------------------------------------------------------------------- #
# Gas detection (GB/T 50493-2019 §5.5.2)                                       #
# --------------------------------------------------------------------------- #

COMBUSTIBLE_FIRST_PCT_LEL = 25.0
COMBUSTIBLE_SECOND_PCT_LEL = 50.0
TOXIC_FIRST_OEL_FACTOR = 1.0
TOXIC_SECOND_OEL_FACTOR = 2.0
TOXIC_FIRST_IDLH_FACTOR = 0.05
TOXIC_SECOND_IDLH_FACTOR = 0.10
OXYGEN_LOW_PCT_VOL = 19.5
OXYGEN_HIGH_PCT_VOL = 23.5

# Typical first/second setpoints quoted from GB/T 50493-2019, mg/m³.
GAS_SETPOINTS_MG_M3: dict[str, tuple[float, float]] = {
    "hydrogen-sulfide": (10.0, 20.0),
    "carbon-monoxide": (20.0, 40.0),
    "chlorine": (1.0, 2.0),
    "ammonia": (20.0, 40.0),
    "sulfur-dioxide": (5.0, 10.0),
    "hydrogen-cyanide": (1.0, 2.0),
    "phosgene": (0.5, 1.0),
    "benzene": (6.0, 12.0),
}


def toxic_setpoints_mg_m3(c: Chemical, detector_max_mg_m3: float | None = None) -> tuple[float, float]:
    """First and second toxic-gas alarm setpoints in mg/m³ (GB/T 50493 §5.5.2).

    100 % and 200 % of the OEL; where the detector range cannot reach that, 5 %
    and 10 % of IDLH.

    Raises:
        ValueError: the chemical has neither an OEL nor an IDLH value.
    """
    oel = c.oel_mg_m3
    idlh = (
        ppm_to_mg_m3(c.idlh_ppm, c.molar_mass)
        if c.idlh_ppm is not None and c.molar_mass is not None
        else None
    )
    if oel is not None:
        second = oel * TOXIC_SECOND_OEL_FACTOR
        if detector_max_mg_m3 is None or second <= detector_max_mg_m3 or idlh is None:
            return (oel * TOXIC_FIRST_OEL_FACTOR, second)
    if idlh is not None:
        return (idlh * TOXIC_FIRST_IDLH_FACTOR, idlh * TOXIC_SECOND_IDLH_FACTOR)
    raise ValueError(f"{c.id}: no OEL and no IDLH to derive toxic setpoints from")


# Signal band of a 4-20 mA transmitter (NAMUR NE 43, 2003): measurement
# information is 3.8 to 20.5 mA; outside it the signal means a failure. As a share
# of the 16 mA span: 0.2/16 below the range low end, 0.5/16 above the high end.
# The rules treat a reading outside [lo - low share, hi + high share] of the
# measuring range as out of range (a sensor fault, no process alarm).
NAMUR_NE43_LOW_FRACTION = 0.2 / 16.0
NAMUR_NE43_HIGH_FRACTION = 0.5 / 16.0


# --------------------------------------------------------------------------- #
# Duties of the operator (SAWS Order 40 of 2011, amended 2015)                 #
# --------------------------------------------------------------------------- #

RETENTION_MIN_DAYS = 30
"""Electronic records are kept at least 30 days; hazmon refuses a shorter retention."""
RETENTION_DEFAULT_DAYS = 400
REASSESSMENT_YEARS = 3
FILING_DAYS = 15
"""The assessment is filed (备案) with the county bureau within 15 days of the report."""


# --------------------------------------------------------------------------- #
# Communication loss shown to the control room (hazmon defaults)               #
# --------------------------------------------------------------------------- #

STALE_AFTER_PERIODS = 3.0
"""A sensor with no reading for this many of its periods is stale (通信中断); hazmon's
default, the same factor as the collector's ``stale_factor`` setting. Grafana's
panels use it through ``hazmon_stale_after_s`` (store migration 0401)."""
STALE_MIN_S = 10.0
"""Grafana shows a sensor stale no sooner than this, whatever its period, so the
batch writer's delay does not flash fast sensors as stale (hazmon default)."""


# --------------------------------------------------------------------------- #
# Warning tiers (national monitoring and early-warning system, 2019-2021)      #
# --------------------------------------------------------------------------- #


class Tier(IntEnum):
    """Warning tier; a larger value is more severe."""

    BLUE = 1  # 蓝 较低
    YELLOW = 2  # 黄 一般
    ORANGE = 3  # 橙 较大
    RED = 4  # 红 重大

    @property
    def zh(self) -> str:
        return {1: "蓝", 2: "黄", 3: "橙", 4: "红"}[self.value]

    @property
    def colour(self) -> str:
        return {1: "blue", 2: "yellow", 3: "orange", 4: "red"}[self.value]

    def lower(self) -> Tier:
        return Tier(max(1, self.value - 1))


class Level(StrEnum):
    """Level of a finding (input to the tier table)."""

    SECOND = "second"
    FIRST = "first"
    PREDICTIVE = "predictive"
    FAULT = "fault"


# Tier by (finding level, hazard-source grade). hazmon's default, overridable in
# the plant file (alarms.tiers). Predictive findings take one tier below the
# level they predict (see hazmon.alarms); faults and data interruption are a
# warning trigger of their own in the national system.
TIER_TABLE: dict[Level, dict[Grade, Tier]] = {
    Level.SECOND: {
        Grade.ONE: Tier.RED,
        Grade.TWO: Tier.RED,
        Grade.THREE: Tier.ORANGE,
        Grade.FOUR: Tier.YELLOW,
    },
    Level.FIRST: {
        Grade.ONE: Tier.ORANGE,
        Grade.TWO: Tier.YELLOW,
        Grade.THREE: Tier.YELLOW,
        Grade.FOUR: Tier.BLUE,
    },
    Level.FAULT: {
        Grade.ONE: Tier.YELLOW,
        Grade.TWO: Tier.YELLOW,
        Grade.THREE: Tier.BLUE,
        Grade.FOUR: Tier.BLUE,
    },
}


# --------------------------------------------------------------------------- #
# Alarm management (ISA-18.2 / IEC 62682, EEMUA 191)                           #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class AlarmTargets:
    """Alarm-load targets for one operator position."""

    acceptable_per_hour: float = 6.0
    max_manageable_per_hour: float = 12.0
    flood_count: int = 10  # more than this many new alarms ...
    flood_window_s: float = 600.0  # ... in this window is a flood
    standing_after_s: float = 24 * 3600.0
    chattering_count: int = 3  # this many activations ...
    chattering_window_s: float = 60.0  # ... within this window
    priority_mix: tuple[float, float, float] = (0.80, 0.15, 0.05)  # low / high / critical


ALARM_TARGETS = AlarmTargets()


# Escalation of an unacknowledged alarm, per tier: (seconds after activation,
# recipients told then). Recipients: control_room, operational (操作负责人),
# technical (技术负责人), principal (主要负责人), bureau_county / bureau_city /
# bureau_province (应急管理局). The red row and "blue: control room only" are the
# defaults hazmon's alarms issue (#6) sets, following the national monitoring and
# early-warning practice (《危险化学品安全生产风险监测预警系统运行管理规范》, 2021:
# a warning goes to the enterprise's 包保责任人 and, when not handled, up to the
# county then city bureau). The minutes are hazmon's policy, not a number from a
# standard; orange and yellow are interpolated by hazmon. Configurable per plant
# (daemon config alarms.escalation). Acknowledging the alarm stops escalation.
ESCALATION_DEFAULTS: dict[Tier, tuple[tuple[float, tuple[str, ...]], ...]] = {
    Tier.RED: (
        (0.0, ("control_room", "operational")),
        (300.0, ("technical", "principal")),
        (600.0, ("bureau_county",)),
        (1800.0, ("bureau_city",)),
    ),
    Tier.ORANGE: (
        (0.0, ("control_room", "operational")),
        (600.0, ("technical", "principal")),
        (1800.0, ("bureau_county",)),
    ),
    Tier.YELLOW: (
        (0.0, ("control_room",)),
        (900.0, ("operational",)),
        (3600.0, ("technical",)),
    ),
    Tier.BLUE: ((0.0, ("control_room",)),),
}
ALARM_REPEAT_S = 1800.0
"""Unacknowledged active alarms are notified again to the control room this often (hazmon default)."""
SHELVE_MAX_S = 8 * 3600.0
"""Longest shelving an operator may ask for: one shift (ISA-18.2 §13 timed shelving; hazmon default)."""


# --------------------------------------------------------------------------- #
# Vapour pressure of liquefied gases (DIPPR eq. 101, Perry's 8th ed. Tab 2-8)  #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class VapourPressure:
    """DIPPR-101: ln(P/Pa) = C1 + C2/T + C3·ln T + C4·T^C5, T in K.

    Valid up to the critical point, so it holds over storage temperatures from
    -40 to +60 °C, unlike the narrow-range Antoine fits (docs/standards.md).
    """

    c1: float
    c2: float
    c3: float
    c4: float
    c5: float
    t_min_k: float
    t_max_k: float

    def pa(self, t_k: float) -> float:
        """Absolute vapour pressure in Pa at ``t_k`` kelvin (clamped to the valid range)."""
        t = min(max(t_k, self.t_min_k), self.t_max_k)
        return math.exp(self.c1 + self.c2 / t + self.c3 * math.log(t) + self.c4 * t**self.c5)

    def bar(self, t_c: float) -> float:
        """Absolute vapour pressure in bar at ``t_c`` °C."""
        return self.pa(t_c + 273.15) / 1e5


VAPOUR_PRESSURE: dict[str, VapourPressure] = {
    "propane": VapourPressure(59.078, -3492.6, -6.0669, 1.0919e-05, 2.0, 85.47, 369.83),
    "n-butane": VapourPressure(66.343, -4363.2, -7.046, 9.4509e-06, 2.0, 134.86, 425.12),
    "ammonia": VapourPressure(90.483, -4669.7, -11.607, 0.017194, 1.0, 195.41, 405.65),
    "chlorine": VapourPressure(71.334, -3855.0, -8.5171, 0.012378, 1.0, 172.12, 417.15),
}
