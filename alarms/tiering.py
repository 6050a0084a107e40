"""The grade of each hazard source, and the tier it gives its alarms.

`Tiering` re-reads the latest assessments (`refresh`), gives the findings about
overdue assessments and filings, remembers which sources were re-graded (their
active alarms take the new tier at the next tick: `retiers`) and words the
``tier_changed`` event (`change`). Recording it is the recorder's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from hazmon.alarms.repository import AlarmRow
from hazmon.alarms.tiers import SourceGrade, source_grades, tier_for
from hazmon.plant.findings import Condition, Finding
from hazmon.plant.model import Plant
from hazmon.plant.standards import Grade, Level, Tier
from hazmon.store import connect, latest_assessments

__all__ = ["Tiering", "tier_of_state"]


def tier_of_state(tier: int | None) -> Tier:
    """The tier an alarm's folded state holds (clamped: a row of another version stays usable)."""
    return Tier(max(1, min(4, tier or 1)))


class Tiering:
    """Grades of a plant's hazard sources from their assessments (read with ``dsn``)."""

    def __init__(self, plant: Plant, dsn: str) -> None:
        self.plant = plant
        self.dsn = dsn
        self.enterprise = plant.enterprise.id
        self.grades: dict[str, SourceGrade] = {}
        self.regraded: dict[str, str | None] = {}  # hazard source -> why its grade was what it was
        self.checked_us: int | None = None

    async def refresh(self, now_us: int | None, known_now_us: int, real_now_us: int) -> list[Finding]:
        """Re-read the latest assessments; findings for overdue assessment / filing.

        Args:
            now_us: the tick's time (None at start).
            known_now_us: the service's latest now (0: none yet).
            real_now_us: the wall clock, when neither is known.
        """
        day = (
            datetime.fromtimestamp(now_us / 1e6, UTC).date()
            if now_us
            else (datetime.fromtimestamp(known_now_us / 1e6, UTC).date() if known_now_us else date.today())
        )

        def read() -> dict[str, Any]:
            with connect(self.dsn) as c:
                return dict(latest_assessments(c, self.enterprise, day))

        records = await asyncio.to_thread(read)
        old = self.grades
        self.grades = source_grades(self.plant, records, day)
        for hs_id, g in self.grades.items():
            was = old.get(hs_id)
            if was is None or (was.grade, was.reason) != (g.grade, g.reason):
                # its active alarms are checked for a new tier by the next tick (under the lock)
                self.regraded.setdefault(hs_id, was.reason if was is not None else None)
        self.checked_us = now_us
        out: list[Finding] = []
        ts = now_us or known_now_us or real_now_us
        for hs_id, g in self.grades.items():
            st = g.status
            due = st.next_due.isoformat()
            filing = st.filing_deadline
            out.append(
                Finding(
                    hs_id,
                    None,
                    Condition.ASSESSMENT_OVERDUE,
                    Level.FAULT,
                    not st.valid,
                    ts,
                    message_en=f"Assessment of {hs_id}: {g.reason}; reassessment due {due}",
                    message_zh=f"{hs_id} 重大危险源评估逾期或缺失（{st.due_reason_zh}），应于 {due} 前评估",
                )
            )
            out.append(
                Finding(
                    hs_id,
                    None,
                    Condition.FILING_OVERDUE,
                    Level.FAULT,
                    st.filing_overdue,
                    ts,
                    message_en=f"Assessment of {hs_id} not filed with the county bureau by {filing}",
                    message_zh=f"{hs_id} 评估报告未在 {filing} 前备案",
                )
            )
        return out

    def due(self, now_us: int, every_s: float) -> bool:
        """Whether the assessments are to be read again at ``now_us``."""
        return self.checked_us is None or now_us - self.checked_us >= round(every_s * 1e6)

    def grade_of(self, hazard_source: str) -> Grade:
        g = self.grades.get(hazard_source)
        if g is not None:
            return g.grade
        if self.grades:  # not a source of this plant (system alarms): the most severe one
            return min(x.grade for x in self.grades.values())
        return Grade.ONE

    def tier_of(self, f: Finding) -> Tier:
        if f.condition is Condition.BUREAU_WARNING and f.value in (1.0, 2.0, 3.0, 4.0):
            return Tier(int(f.value or 1))  # the bureau gave its warning's colour: kept as it is
        return tier_for(f.level, f.condition, self.grade_of(f.hazard_source), self.plant.tiers)

    def retiers(self, alarms: Iterable[AlarmRow]) -> list[tuple[AlarmRow, Tier]]:
        """Active alarms of re-graded hazard sources whose tier differs from their source's new one."""
        alarms = list(alarms)
        out: list[tuple[AlarmRow, Tier]] = []
        for hs_id in self.regraded:
            g = self.grades.get(hs_id)
            if g is None:
                continue
            for a in alarms:
                if a.hazard_source != hs_id or not a.state.showing_active:
                    continue
                if a.condition == Condition.BUREAU_WARNING.value:  # the bureau's colour, not the grade's
                    continue
                try:
                    level, condition = Level(a.state.level), Condition(a.condition)
                except ValueError:  # written by another version: leave it alone
                    continue
                tier = tier_for(level, condition, g.grade, self.plant.tiers)
                if int(tier) != a.state.tier:
                    out.append((a, tier))
        return out

    def change(self, a: AlarmRow, tier: Tier) -> tuple[str, dict[str, Any]]:
        """The comment and data of the ``tier_changed`` event taking ``a`` to ``tier``."""
        old = tier_of_state(a.state.tier)
        g = self.grades.get(a.hazard_source)
        why = g.reason if g is not None else f"grade {int(self.grade_of(a.hazard_source))} (plant-wide alarm)"
        was = self.regraded.get(a.hazard_source)
        comment = f"tier {old.colour} ({old.zh}) -> {tier.colour} ({tier.zh}): {a.hazard_source} {why}"
        if was:
            comment += f" (was: {was})"
        data = {
            "tier": int(tier),
            "from_tier": int(old),
            "grade": int(self.grade_of(a.hazard_source)),
            "reason": why,
        }
        return comment, data
