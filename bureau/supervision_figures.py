"""Supervision figures of a region and report period: hidden dangers, 挂牌督办, duties, commitments.

The counts are the SQL function ``bureau_supervision_figures`` (migration 0890), one row per
enterprise; here they are pooled per county, city, province and the whole scope (sums, then
the rates: a rate of a region is its sums divided, never an average of rates), and laid out
as rows for the CSV / Excel export. What each count means is in bureau/README.md
("Supervision figures"):

- **rectification rate (整改率)** = hidden dangers found in the period and accepted (销号)
  before its end / hidden dangers found in the period; general, major and all;
- **duty check completion (包保履职率)** = check intervals done / due;
- **daily commitment rate (承诺率)** = days with a commitment / days due; **on time** = filed
  by the due time (10:00 local) / days due.

No denominator, no rate (None), never 100 %.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import psycopg

from hazmon.bureau.export import Cell, Column
from hazmon.bureau.periods import ReportPeriod
from hazmon.plant.regions import LEVELS, Level, Scope, parent_codes, prefix

__all__ = [
    "COLUMNS",
    "DERIVED",
    "Counts",
    "EnterpriseCounts",
    "RegionCounts",
    "SupervisionFigures",
    "export_rows",
    "pool",
    "supervision_figures",
]

Conn = psycopg.Connection[Any]


def _rate(num: int, den: int) -> float | None:
    return None if den <= 0 else num / den


DERIVED = (
    "found",
    "rectified",
    "rectification_rate",
    "rectification_rate_general",
    "rectification_rate_major",
    "duty_completion",
    "commitment_rate",
    "commitment_on_time_rate",
)
"""The properties of `Counts` worked out of its counts, as its rows and the API's answers name them."""


@dataclass(frozen=True, slots=True)
class Counts:
    """The counts of one enterprise, or summed over a region."""

    screened: int  # enterprises (an enterprise: 1 or 0)
    found_general: int
    found_major: int
    rectified_general: int
    rectified_major: int
    overdue: int
    overdue_major: int
    supervisions_opened: int
    supervisions_open: int
    supervisions_overdue: int
    duty_checks_due: int
    duty_checks_done: int
    commitment_days_due: int
    commitments_filed: int
    commitments_on_time: int

    @property
    def found(self) -> int:
        return self.found_general + self.found_major

    @property
    def rectified(self) -> int:
        return self.rectified_general + self.rectified_major

    @property
    def rectification_rate(self) -> float | None:
        return _rate(self.rectified, self.found)

    @property
    def rectification_rate_general(self) -> float | None:
        return _rate(self.rectified_general, self.found_general)

    @property
    def rectification_rate_major(self) -> float | None:
        return _rate(self.rectified_major, self.found_major)

    @property
    def duty_completion(self) -> float | None:
        return _rate(self.duty_checks_done, self.duty_checks_due)

    @property
    def commitment_rate(self) -> float | None:
        return _rate(self.commitments_filed, self.commitment_days_due)

    @property
    def commitment_on_time_rate(self) -> float | None:
        return _rate(self.commitments_on_time, self.commitment_days_due)

    def as_row(self) -> dict[str, Cell]:
        row: dict[str, Cell] = {f.name: getattr(self, f.name) for f in fields(Counts)}
        return row | self.derived()

    def derived(self) -> dict[str, Cell]:
        """The figures worked out of the counts (totals and rates), by name."""
        return {name: getattr(self, name) for name in DERIVED}


_COUNT_NAMES = tuple(f.name for f in fields(Counts))


@dataclass(frozen=True, slots=True)
class EnterpriseCounts(Counts):
    enterprise_id: str = ""
    name: str = ""
    region_code: str = ""


@dataclass(frozen=True, slots=True)
class RegionCounts(Counts):
    region_code: str = ""
    level: Level = "county"
    enterprises: int = 0


@dataclass(frozen=True, slots=True)
class SupervisionFigures:
    period: ReportPeriod
    timezone: str
    start: datetime
    end: datetime  # the period's end, or ``now`` while it runs
    scope: Scope
    total: RegionCounts
    regions: dict[Level, tuple[RegionCounts, ...]]
    enterprises: tuple[EnterpriseCounts, ...]


def pool(code: str, level: Level, es: list[EnterpriseCounts]) -> RegionCounts:
    """The enterprises' counts summed (``screened`` counts the enterprises screened)."""
    sums = {n: sum(int(getattr(e, n)) for e in es) for n in _COUNT_NAMES}
    return RegionCounts(**sums, region_code=code, level=level, enterprises=len(es))


def supervision_figures(
    conn: Conn, period: ReportPeriod, scope: Scope, timezone: str, now: datetime
) -> SupervisionFigures:
    """The figures of ``period`` for the enterprises in ``scope`` (bounds in ``timezone``)."""
    start, end = period.bounds(timezone)
    rows = conn.execute(
        "SELECT * FROM bureau_supervision_figures(%s, %s, %s, %s, %s)",
        (prefix(scope), start, end, now, timezone),
    ).fetchall()
    ents: list[EnterpriseCounts] = []
    for r in rows:
        counts = {
            n: int(bool(v)) if n == "screened" else int(v) for n, v in zip(_COUNT_NAMES, r[3:], strict=True)
        }
        ents.append(
            EnterpriseCounts(**counts, enterprise_id=str(r[0]), name=str(r[1]), region_code=str(r[2]))
        )
    below = LEVELS[: LEVELS.index(scope.level)]  # the levels under the scope's own
    regions: dict[Level, tuple[RegionCounts, ...]] = {}
    for lv in below:
        groups: dict[str, list[EnterpriseCounts]] = defaultdict(list)
        for e in ents:
            groups[parent_codes(e.region_code)[lv]].append(e)
        regions[lv] = tuple(pool(code, lv, es) for code, es in sorted(groups.items()))
    return SupervisionFigures(
        period,
        timezone,
        start,
        max(start, min(end, now)),
        scope,
        pool(scope.code, scope.level, ents),
        regions,
        tuple(ents),
    )


_LEVEL_ZH = {"nation": "全国", "province": "省", "city": "市", "county": "县区", "enterprise": "企业"}

COLUMNS: tuple[Column, ...] = (
    Column("period", "统计期", "period"),
    Column("level", "层级", "level"),
    Column("region_code", "行政区划代码", "region code"),
    Column("enterprise_id", "企业编号", "enterprise id"),
    Column("name", "企业名称", "enterprise"),
    Column("enterprises", "企业数", "enterprises", "int"),
    Column("screened", "开展排查企业数", "enterprises screened", "int"),
    Column("found", "排查隐患数", "hidden dangers found", "int"),
    Column("found_general", "一般隐患数", "general", "int"),
    Column("found_major", "重大隐患数", "major", "int"),
    Column("rectified", "已整改数", "rectified", "int"),
    Column("rectified_general", "一般隐患已整改", "general rectified", "int"),
    Column("rectified_major", "重大隐患已整改", "major rectified", "int"),
    Column("rectification_rate", "整改率", "rectification rate", "rate"),
    Column("rectification_rate_general", "一般隐患整改率", "general rectification rate", "rate"),
    Column("rectification_rate_major", "重大隐患整改率", "major rectification rate", "rate"),
    Column("supervisions_opened", "本期挂牌督办数", "supervisions opened", "int"),
    Column("supervisions_open", "挂牌督办中", "under supervision", "int"),
    Column("supervisions_overdue", "督办逾期", "supervisions overdue", "int"),
    Column("overdue", "逾期未整改隐患", "hidden dangers overdue", "int"),
    Column("overdue_major", "逾期未整改重大隐患", "major overdue", "int"),
    Column("duty_checks_due", "包保履职应检次数", "duty checks due", "int"),
    Column("duty_checks_done", "包保履职已检次数", "duty checks done", "int"),
    Column("duty_completion", "包保履职率", "duty check completion", "rate"),
    Column("commitment_days_due", "应承诺天数", "commitment days due", "int"),
    Column("commitments_filed", "已承诺天数", "commitments filed", "int"),
    Column("commitment_rate", "承诺率", "commitment rate", "rate"),
    Column("commitments_on_time", "按时承诺天数", "commitments on time", "int"),
    Column("commitment_on_time_rate", "按时承诺率", "commitment on-time rate", "rate"),
)
"""The export's columns, in order (Chinese headers, English in brackets)."""


def export_rows(f: SupervisionFigures, lang: str = "zh") -> list[Mapping[str, Cell]]:
    """The scope's total, each region below it (province, city, county) and each enterprise."""
    out: list[Mapping[str, Cell]] = []

    def add(level: str, counts: Counts, extra: dict[str, Cell]) -> None:
        shown = _LEVEL_ZH[level] if lang == "zh" else level
        out.append({"period": f.period.text, "level": shown, **counts.as_row(), **extra})

    out_levels = [lv for lv in reversed(LEVELS) if lv in f.regions]
    add(f.scope.level, f.total, {"region_code": f.scope.code, "enterprises": f.total.enterprises})
    for lv in out_levels:
        for r in f.regions[lv]:
            add(lv, r, {"region_code": r.region_code, "enterprises": r.enterprises})
    for e in f.enterprises:
        add(
            "enterprise",
            e,
            {
                "region_code": e.region_code,
                "enterprise_id": e.enterprise_id,
                "name": e.name,
                "enterprises": 1,
            },
        )
    return out
