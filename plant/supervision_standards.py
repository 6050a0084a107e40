"""Cited facts for hidden-danger screening and responsible persons' duties, and their settings.

The supervision component (``hazmon.supervision``) takes every domain fact it
relies on from here; a fact not checked against a stored copy of its source is
marked ``verified=False`` and can be overridden in the plant file's
``supervision:`` section where it is a number or a period.

Sources:

* 《安全生产事故隐患排查治理暂行规定》 (国家安全生产监督管理总局令第16号, 2007), "Order 16"
  [verified]: general (一般) and major (重大) hidden dangers; the six parts of the
  rectification plan (治理方案) of a major one; assessment / acceptance then 销号.
  The article numbers given below (Art. 3 definitions, Art. 15 plan contents) are
  recalled, not checked.
* 安监总管三〔2017〕121号 《化工和危险化学品生产经营单位重大生产安全事故隐患判定标准（试行）》:
  the 20 items that make a hidden danger of a chemical enterprise "major".
  Items 1-15 verified; items 16-20 recalled (unverified).
* 《危险化学品企业重大危险源安全包保责任制办法（试行）》 (2021-02-04, trial for three
  years), "包保责任制办法": the three responsible persons of each major hazard source
  and how often they check. Technical: at least once a quarter [verified];
  operational: at least once a week [unverified]; principal: periodic, hazmon
  default once a quarter [unverified].
* Daily safety commitment (安全承诺) by 10:00: the practice of one province's
  notice [verified as local practice, not a national rule].
* GB 30871-2022 《危险化学品企业特殊作业安全规范》: the eight kinds of special work
  [unverified: recalled].
* Supervised rectification (挂牌督办) of major hidden dangers by the supervising
  authorities: Order 16 (Art. 21 [R], the authority supervises the rectification of a
  major hidden danger and accepts it before production resumes) [unverified]; which
  level supervises which danger is set by each province (分级挂牌督办); hazmon's table
  `SUPERVISION_MIN_LEVEL` is a default, not a national rule [unverified].
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.yamlmodel import SECTION, YText, choice, validate
from hazmon.plant.yamlnode import Node

__all__ = [
    "COMMITMENT_DUE_DEFAULT",
    "COMMITMENT_SOURCE",
    "DEFAULT_TIMEZONE",
    "DUTY_ROLES",
    "LEVELS",
    "MAJOR_CRITERIA",
    "MAJOR_CRITERIA_SOURCE",
    "ORDER_16",
    "PLAN_PARTS",
    "SPECIAL_WORK",
    "SUPERVISION_LEVELS",
    "SUPERVISION_MIN_LEVEL",
    "SUPERVISION_SOURCE",
    "DutyRole",
    "MajorCriterion",
    "Period",
    "PlanPart",
    "SupervisionSettings",
    "parse_supervision",
    "valid_timezone",
]

ORDER_16 = "《安全生产事故隐患排查治理暂行规定》(国家安全生产监督管理总局令第16号, 2007)"
MAJOR_CRITERIA_SOURCE = (
    "安监总管三〔2017〕121号《化工和危险化学品生产经营单位重大生产安全事故隐患判定标准（试行）》"
)
BAOBAO_2021 = "《危险化学品企业重大危险源安全包保责任制办法（试行）》(2021-02-04)"
COMMITMENT_SOURCE = "provincial notice on daily safety commitments (local practice, one province)"

SUPERVISION_SOURCE = (
    f"{ORDER_16} Art. 21 [R] (挂牌督办 of major hidden dangers); the levels by provincial practice "
    "(分级挂牌督办) [unverified]"
)

SUPERVISION_LEVELS: tuple[str, ...] = ("county", "city", "province")
"""Who supervises (挂牌督办), lowest first: 县级, 市级, 省级 emergency-management bureaus.

An overdue supervision is escalated to the next level up (提级督办), once."""

SUPERVISION_MIN_LEVEL: dict[str, str] = {"general": "county", "major": "county"}
"""Hidden-danger level -> the lowest bureau level that may open a supervision on it.

[unverified] Provinces differ: some require a major hidden danger be supervised at city
level (市级挂牌督办) or above — set ``{"major": "city"}`` then. hazmon's default lets the
county bureau, the one nearest the enterprise, supervise both. Source: `SUPERVISION_SOURCE`."""

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""The plant's local time zone unless the plant file sets ``enterprise.timezone``."""


# --------------------------------------------------------------------------- #
# Order 16: levels and the rectification plan of a major hidden danger        #
# --------------------------------------------------------------------------- #

LEVELS: dict[str, tuple[str, str]] = {
    "general": (
        "一般事故隐患",
        "low harm and difficulty; can be removed at once after discovery (Order 16, Art. 3 [R])",
    ),
    "major": (
        "重大事故隐患",
        "high harm and difficulty: needs full or partial stop of production and some time to "
        "remove, or cannot be removed by the enterprise itself because of external factors "
        "(Order 16, Art. 3 [R])",
    ),
}
"""Level key -> (Chinese term, definition). Definitions verified; article number recalled."""


@dataclass(frozen=True, slots=True)
class PlanPart:
    """One of the six required parts of a major hidden danger's rectification plan."""

    key: str  # the field of hazmon.supervision's Plan that carries it
    zh: str
    en: str


PLAN_PARTS: tuple[PlanPart, ...] = (
    PlanPart("goal", "治理的目标和任务", "goal and tasks"),
    PlanPart("measures", "采取的方法和措施", "methods and measures"),
    PlanPart("funds", "经费和物资的落实", "funds and materials"),
    PlanPart("organisation", "负责治理的机构和人员", "organisation and persons"),
    PlanPart("deadline", "治理的时限和要求", "time limit and requirements"),
    PlanPart("safety", "安全措施和应急预案", "safety measures and contingency plan during rectification"),
)
"""Order 16 (Art. 15 [R]) [verified content]: a major hidden danger's 治理方案 contains these six
parts. The 五落实 (measures, funds, deadline, responsible person, contingency plan) is the same
requirement in five words."""


# --------------------------------------------------------------------------- #
# 安监总管三〔2017〕121号: the 20 items that make a hidden danger major          #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class MajorCriterion:
    item: int
    text: str
    verified: bool


_CRITERIA_TEXT = (
    "principal or safety managers of a hazardous-chemical producer or trader not certified",
    "special-operation workers without certificates",
    'external safety distances of "two key points, one major" installations below standard',
    "key-supervised hazardous processes without automatic control or emergency shutdown, "
    "or those systems not in use",
    "grade 1 or 2 tank farms without emergency shut-off; grade 1 or 2 tank farms of toxic gases, "
    "liquefied gases or highly toxic liquids without an independent safety instrumented system",
    "fully pressurised liquefied-hydrocarbon tanks without water injection",
    "loading of liquefied hydrocarbons, ammonia, chlorine and similar without universal (万向) loading arms",
    "phosgene, chlorine or H2S pipelines crossing public areas outside the plant or park",
    "overhead power lines crossing the production area against the standard",
    "chemical units in service without a formal design and without a safety design review",
    "processes or equipment on the list of obsolete ones still in use",
    "places with combustible or toxic gas leaks without detectors to standard; explosive areas "
    "without explosion-proof electrics",
    "control rooms or cabinet rooms facing process units not blast- and fire-proof",
    "key equipment without dual power supply; instrument systems without UPS",
    "safety valves or rupture discs not in service",
    "no safety-responsibility system for all posts, or no hidden-danger screening system",
    "no operating procedures or process control limits",
    "no rules for special work (hot work, confined space...) per the national standard, "
    "or rules not followed",
    "new processes industrialised without pilot stages; first domestic use without a provincial "
    "safety review; new units started without a trial-run plan; fine-chemical plants without "
    "reaction-hazard assessment",
    "hazardous chemicals not stored by zone and class, over quantity or kinds, or incompatible "
    "substances stored together",
)

MAJOR_CRITERIA: dict[int, MajorCriterion] = {
    i: MajorCriterion(i, text, verified=i <= 15) for i, text in enumerate(_CRITERIA_TEXT, start=1)
}
"""Item number -> criterion (安监总管三〔2017〕121号). Items 1-15 verified, 16-20 recalled
(shown as unverified wherever hazmon prints them)."""


# --------------------------------------------------------------------------- #
# 包保责任制办法 (2021): responsible persons and how often they check           #
# --------------------------------------------------------------------------- #


class Period(StrEnum):
    """A check period: a calendar period in the plant's local time (see hazmon.supervision)."""

    WEEK = "week"  # Monday 00:00 to the next Monday 00:00 (ISO 8601 / GB/T 7408 week)
    MONTH = "month"
    QUARTER = "quarter"  # 1 Jan, 1 Apr, 1 Jul, 1 Oct


@dataclass(frozen=True, slots=True)
class DutyRole:
    """One of the three responsible persons of a major hazard source.

    Attributes:
        key: principal | technical | operational (the plant file's ``responsible`` keys).
        zh: the role's Chinese name.
        period: how often they must check, at least (default).
        verified: whether the period was checked against the source text.
        source: where the period comes from.
    """

    key: str
    zh: str
    period: Period
    verified: bool
    source: str


DUTY_ROLES: dict[str, DutyRole] = {
    "principal": DutyRole(
        "principal",
        "主要负责人",
        Period.QUARTER,
        False,
        f"{BAOBAO_2021}: periodic check; once a quarter is hazmon's default [unverified, configurable]",
    ),
    "technical": DutyRole(
        "technical",
        "技术负责人",
        Period.QUARTER,
        True,
        f"{BAOBAO_2021}: a screening check at least once a quarter, and before holidays and major "
        "events [verified]",
    ),
    "operational": DutyRole(
        "operational",
        "操作负责人",
        Period.WEEK,
        False,
        f"{BAOBAO_2021}: a check at least once a week [unverified, configurable]",
    ),
}

COMMITMENT_DUE_DEFAULT = time(10, 0)
"""The daily safety commitment (安全承诺) is filed by 10:00 local time: one province's practice
[verified as local practice]; configurable (``supervision.commitment_due``)."""

SPECIAL_WORK: dict[str, str] = {
    "hot_work": "动火作业",
    "confined_space": "受限空间作业",
    "blinding": "盲板抽堵作业",
    "work_at_height": "高处作业",
    "lifting": "吊装作业",
    "temporary_power": "临时用电作业",
    "excavation": "动土作业",
    "road_closure": "断路作业",
}
"""The eight kinds of special work (特殊作业), GB 30871-2022 [unverified: recalled]; the daily
commitment names those under way."""


# --------------------------------------------------------------------------- #
# Settings (the plant file's optional `supervision:` section)                  #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class SupervisionSettings:
    """How this enterprise's duties are checked.

    Attributes:
        periods: duty role -> check period (defaults from `DUTY_ROLES`).
        commitment_due: local time by which the daily commitment must be filed.
    """

    periods: tuple[tuple[str, Period], ...] = tuple((k, r.period) for k, r in DUTY_ROLES.items())
    commitment_due: time = COMMITMENT_DUE_DEFAULT

    def period(self, role: str) -> Period:
        return dict(self.periods)[role]


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


def _hhmm(v: object) -> object:
    if isinstance(v, int) and not isinstance(v, bool):  # YAML 1.1 reads an unquoted 10:00 as 600
        raise ValueError(
            f'write the time in quotes, e.g. "10:00" (YAML read {v // 60}:{v % 60:02d} as a number)'
        )
    if isinstance(v, str):
        if not _HHMM.fullmatch(v):
            raise ValueError(f"'{v}' is not a local time \"HH:MM\"")
        h, m = v.split(":")
        return time(int(h), int(m))
    return v


_PeriodName = Annotated[YText, BeforeValidator(choice(*(p.value for p in Period)))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _Checks:
    """The ``checks:`` mapping: one period per duty role of `DUTY_ROLES`."""

    principal: _PeriodName = DUTY_ROLES["principal"].period.value
    technical: _PeriodName = DUTY_ROLES["technical"].period.value
    operational: _PeriodName = DUTY_ROLES["operational"].period.value


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _Supervision:
    commitment_due: Annotated[time, BeforeValidator(_hhmm)] = COMMITMENT_DUE_DEFAULT
    checks: _Checks = field(default_factory=_Checks)


def parse_supervision(n: Node) -> SupervisionSettings | None:
    """The plant file's ``supervision:`` section.

    ::

        supervision:
          commitment_due: "10:00"     # local time; the daily safety commitment is due by then
          checks: {principal: quarter, technical: quarter, operational: week}   # week|month|quarter
    """
    s = validate(n, _Supervision)
    if s is None:
        return None
    periods = tuple((role, Period(getattr(s.checks, role))) for role in DUTY_ROLES)
    return SupervisionSettings(periods, s.commitment_due)
