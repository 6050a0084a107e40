"""The bureau's warning rules (预警) and daily figures: their defaults, with where each comes from.

The bureau component (``hazmon.bureau``) computes warnings from what every enterprise of its
region reports. The national monitoring and early-warning system (危险化学品安全生产风险监测预警
系统, 2019-2021 practice) gives the colours and the handling chain; it publishes **no** national
reporting periods or handling deadlines, so every limit below is a hazmon default
(``verified=False``), overridable in the bureau config's ``warnings:`` section
(`hazmon.bureau.warning_config`). ``docs/standards.md`` ("Bureau warnings") lists the same rows.

Sources:

* National monitoring and early-warning system practice [verified]: warnings in four colours
  红 重大 / 橙 较大 / 黄 一般 / 蓝 较低; province, city, county and park bureaus handle them
  push → verify → feedback → close (推送 → 核查 → 反馈 → 消警), each step recorded; triggers
  include limit exceedance and data interruption.
* Local notices [verified as local practice]: bureaus score online rate (在线率), alarm
  handling rate (报警信息处置率) and commitment rate daily. The exact formulas are not
  published nationally: hazmon's are defined in ``bureau/WARNINGS.md``.
* SAWS Order 40 (2011, amended 2015) [verified]: reassessment when the last assessment is
  three years old (`REASSESSMENT_YEARS`), filing within 15 days (`FILING_DAYS`).
* ISA-18.2 / EEMUA 191 [verified]: a repeating (chattering) alarm is a defect to report; its
  plant-level count (3 in 1 min) is far shorter than the bureau's daily view used here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hazmon.plant.standards import FILING_DAYS, REASSESSMENT_YEARS, Grade, Tier

__all__ = [
    "COLOUR_WEIGHT",
    "GRADE_WEIGHT",
    "NATIONAL_SYSTEM",
    "RULES",
    "WarningKind",
    "WarningRule",
    "WarningSettings",
    "colour_text",
]

NATIONAL_SYSTEM = (
    "危险化学品安全生产风险监测预警系统 (national monitoring and early-warning system, 2019-2021 practice)"
)


class WarningKind(StrEnum):
    """What caused a bureau warning; the first part of its cause key."""

    SILENT = "silent"  # an enterprise: link down (no heartbeat) or plant silent (no readings)
    SOURCE_SILENT = "source_silent"  # one hazard source without data while its enterprise reports
    RED_UNACKED = "red_unacked"  # a red alarm not acknowledged in time
    REPEATED = "repeated"  # the same sensor alarming again and again
    ASSESSMENT_OVERDUE = "assessment_overdue"  # reassessment or filing (备案) overdue


def colour_text(tier: Tier) -> tuple[str, str]:
    """(zh, en) of a warning colour: 红 重大 / red (major) ..."""
    zh = {
        Tier.RED: "红色（重大）",
        Tier.ORANGE: "橙色（较大）",
        Tier.YELLOW: "黄色（一般）",
        Tier.BLUE: "蓝色（较低）",
    }
    en = {
        Tier.RED: "red (major)",
        Tier.ORANGE: "orange (high)",
        Tier.YELLOW: "yellow (general)",
        Tier.BLUE: "blue (low)",
    }
    return zh[tier], en[tier]


@dataclass(frozen=True, slots=True)
class WarningRule:
    """One warning rule as documented: its default colour and limit, and their standing."""

    kind: WarningKind
    zh: str
    en: str
    colour: Tier
    limit: str
    source: str
    verified: bool


RULES: dict[WarningKind, WarningRule] = {
    WarningKind.SILENT: WarningRule(
        WarningKind.SILENT,
        "企业数据中断（通信中断或装置无数据）",
        "enterprise silent (link down, or plant silent)",
        Tier.ORANGE,
        "30 min without any message or heartbeat (link down), "
        "or with heartbeats but no reading (plant silent)",
        f"{NATIONAL_SYSTEM}: data interruption is a warning trigger [verified]; "
        "limit and colour hazmon default",
        False,
    ),
    WarningKind.SOURCE_SILENT: WarningRule(
        WarningKind.SOURCE_SILENT,
        "重大危险源数据中断",
        "hazard source silent",
        Tier.YELLOW,
        "30 min without a minute of data from any of its sensors, while its enterprise reports",
        f"{NATIONAL_SYSTEM}: data interruption [verified]; limit and colour hazmon default",
        False,
    ),
    WarningKind.RED_UNACKED: WarningRule(
        WarningKind.RED_UNACKED,
        "红色报警超时未确认",
        "red alarm not acknowledged",
        Tier.RED,
        "10 min after it was raised (the county bureau step of ESCALATION_DEFAULTS)",
        f"{NATIONAL_SYSTEM}: limit exceedance is a trigger [verified]; 10 min hazmon default",
        False,
    ),
    WarningKind.REPEATED: WarningRule(
        WarningKind.REPEATED,
        "同一监测点频繁报警",
        "the same sensor alarming repeatedly",
        Tier.YELLOW,
        "3 alarms of one sensor within 24 h",
        "ISA-18.2 / EEMUA 191: repeating alarms are reported [verified]; 3 in 24 h hazmon default",
        False,
    ),
    WarningKind.ASSESSMENT_OVERDUE: WarningRule(
        WarningKind.ASSESSMENT_OVERDUE,
        "重大危险源评估或备案逾期",
        "assessment or filing overdue",
        Tier.BLUE,
        f"reassessment after {REASSESSMENT_YEARS} years, filing within {FILING_DAYS} days (Order 40); "
        "grace 0 days",
        f"SAWS Order 40 (2011, amended 2015): {REASSESSMENT_YEARS} years, {FILING_DAYS} days [verified]; "
        "colour hazmon default",
        False,
    ),
}
"""Warning kind -> its documented rule. ``verified`` is False for every rule: the trigger is
national practice, the numbers are hazmon's (no public national deadline)."""

GRADE_WEIGHT: dict[Grade | None, float] = {
    Grade.ONE: 4.0,
    Grade.TWO: 3.0,
    Grade.THREE: 2.0,
    Grade.FOUR: 1.0,
    None: 1.0,
}
"""Risk ranking: weight of an enterprise's most severe hazard-source grade (hazmon default)."""

COLOUR_WEIGHT: dict[Tier, float] = {Tier.RED: 4.0, Tier.ORANGE: 3.0, Tier.YELLOW: 2.0, Tier.BLUE: 1.0}
"""Risk ranking: weight of one open warning by its colour (hazmon default)."""


def _colours() -> tuple[tuple[WarningKind, Tier], ...]:
    return tuple((k, r.colour) for k, r in RULES.items())


@dataclass(frozen=True, slots=True)
class WarningSettings:
    """The bureau's warning limits; every default is hazmon's (see `RULES`), all configurable.

    Attributes:
        silent_after_s: an enterprise is silent after this long without a message (link
            down) or without a minute of data (plant silent).
        source_silent_after_s: a hazard source is silent after this long without data.
        red_unacked_after_s: a red alarm still unacknowledged this long after it was raised.
        repeated_count: this many alarms of one sensor ...
        repeated_window_s: ... within this window make a "repeated" warning.
        assessment_grace_days: days after ``next_due`` before an assessment is overdue.
        lookback_s: how far back "last data" is searched (older counts as "none").
        alarm_handled_within_s: the alarm handling rate counts an alarm handled when it was
            acknowledged within this long.
        close_within_h: colour -> hours within which a warning should be closed (消警); an
            open warning older is "overdue" in the daily figures.
        colours: warning kind -> its colour.
        timezone: the bureau's local time (days of the figures, dates of assessments).
    """

    silent_after_s: float = 1800.0
    source_silent_after_s: float = 1800.0
    red_unacked_after_s: float = 600.0
    repeated_count: int = 3
    repeated_window_s: float = 86400.0
    assessment_grace_days: int = 0
    lookback_s: float = 7 * 86400.0
    alarm_handled_within_s: float = 1800.0
    close_within_h: tuple[tuple[Tier, float], ...] = (
        (Tier.RED, 24.0),
        (Tier.ORANGE, 72.0),
        (Tier.YELLOW, 168.0),
        (Tier.BLUE, 336.0),
    )
    colours: tuple[tuple[WarningKind, Tier], ...] = field(default_factory=_colours)
    timezone: str = "Asia/Shanghai"

    def colour(self, kind: WarningKind) -> Tier:
        return dict(self.colours)[kind]

    def close_within_s(self, colour: Tier) -> float:
        return dict(self.close_within_h)[colour] * 3600.0
