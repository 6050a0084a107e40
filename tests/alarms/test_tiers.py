"""Tier table, prediction one tier below, grade from assessment records, flood window, escalation."""

from __future__ import annotations

from datetime import date

import pytest

from hazmon.alarms.escalation import Recipient, contacts, default_policy, schedule
from hazmon.alarms.flood import FloodDetector
from hazmon.alarms.notifier import RetryPolicy, next_attempt
from hazmon.alarms.tiers import effective_grade, latching, load_limit_overrides, tier_for
from hazmon.plant import Plant
from hazmon.plant.assessment import AssessmentRecord
from hazmon.plant.findings import Condition
from hazmon.plant.model import Limits
from hazmon.plant.standards import Grade, Level, Tier
from hazmon.store import add_assessment, connect

C = Condition
R, OR, Y, B = Tier.RED, Tier.ORANGE, Tier.YELLOW, Tier.BLUE

# level, condition, grade -> tier (every cell of the default table, and predictions)
TIERS = [
    (Level.SECOND, C.GAS_SECOND, Grade.ONE, R),
    (Level.SECOND, C.HH, Grade.TWO, R),
    (Level.SECOND, C.LL, Grade.THREE, OR),
    (Level.SECOND, C.HH, Grade.FOUR, Y),
    (Level.FIRST, C.H, Grade.ONE, OR),
    (Level.FIRST, C.GAS_FIRST, Grade.TWO, Y),
    (Level.FIRST, C.L, Grade.THREE, Y),
    (Level.FIRST, C.H, Grade.FOUR, B),
    (Level.FAULT, C.STALE, Grade.ONE, Y),
    (Level.FAULT, C.STUCK, Grade.TWO, Y),
    (Level.FAULT, C.BAD_QUALITY, Grade.THREE, B),
    (Level.FAULT, C.OUT_OF_RANGE, Grade.FOUR, B),
    # a prediction of HH/LL (second level) is one tier below second level
    (Level.PREDICTIVE, C.PREDICT_HH, Grade.ONE, OR),
    (Level.PREDICTIVE, C.PREDICT_LL, Grade.THREE, Y),
    (Level.PREDICTIVE, C.PREDICT_HH, Grade.FOUR, B),
    # blue is the floor
    (Level.PREDICTIVE, C.PREDICT_LL, Grade.FOUR, B),
]


@pytest.mark.parametrize(("level", "cond", "grade", "tier"), TIERS)
def test_tier_table(level: Level, cond: Condition, grade: Grade, tier: Tier) -> None:
    assert tier_for(level, cond, grade) is tier


def test_plant_tier_override_is_used(example_plant: Plant) -> None:
    table = {k: dict(v) for k, v in example_plant.tiers.items()}
    table[Level.FIRST][Grade.FOUR] = Tier.YELLOW
    assert tier_for(Level.FIRST, C.H, Grade.FOUR, table) is Tier.YELLOW


def test_latching_conditions() -> None:
    assert [c for c in Condition if latching(c)] == [C.GAS_SECOND, C.VOTE_CONFIRMED]


def _rec(report: date, grade: Grade, filed: date | None) -> AssessmentRecord:
    return AssessmentRecord("cl2-tankfarm", report, "Assessor Co.", 120.0, grade, filed)


# record, today -> (grade used, assessed grade, reassessment overdue, filing overdue)
GRADES = [
    (
        "valid and filed",
        _rec(date(2025, 1, 10), Grade.TWO, date(2025, 1, 20)),
        date(2026, 6, 1),
        (2, 2, False, False),
    ),
    (
        "overdue (3 years)",
        _rec(date(2023, 1, 10), Grade.TWO, date(2023, 1, 20)),
        date(2026, 6, 1),
        (1, None, True, False),
    ),
    (
        "filed late",
        _rec(date(2025, 1, 10), Grade.THREE, date(2025, 2, 20)),
        date(2026, 6, 1),
        (3, 3, False, True),
    ),
    (
        "not filed, past 15 days",
        _rec(date(2026, 5, 1), Grade.THREE, None),
        date(2026, 6, 1),
        (3, 3, False, True),
    ),
    (
        "not filed, within 15 days",
        _rec(date(2026, 5, 25), Grade.THREE, None),
        date(2026, 6, 1),
        (3, 3, False, False),
    ),
    (
        "grade one stays one",
        _rec(date(2023, 1, 10), Grade.ONE, date(2023, 1, 11)),
        date(2026, 6, 1),
        (1, None, True, False),
    ),
]


@pytest.mark.parametrize(("name", "rec", "today", "want"), GRADES, ids=[g[0] for g in GRADES])
def test_effective_grade(
    example_plant: Plant,
    name: str,
    rec: AssessmentRecord,
    today: date,
    want: tuple[int, int | None, bool, bool],
) -> None:
    hs = next(h for h in example_plant.hazard_sources if h.id == "cl2-tankfarm")
    rec = AssessmentRecord(
        rec.hazard_source, rec.report_date, rec.assessor, rec.r_value, rec.grade, rec.filed_on
    )
    g = effective_grade(hs, rec, today)
    got = (int(g.grade), None if g.assessed is None else int(g.assessed), g.status.reassessment_overdue)
    assert (*got, g.status.filing_overdue) == want


def test_no_assessment_counts_one_grade_more_severe(example_plant: Plant) -> None:
    for hs in example_plant.hazard_sources:
        g = effective_grade(hs, None, date(2026, 6, 1))
        assert g.assessed is None
        assert "no assessment on record" in g.reason
        assert g.grade == Grade(max(1, int(g.reason.split("grade ")[1].split(" ")[0]) - 1))


def test_limit_overrides_from_latest_assessment(example_plant: Plant, db_dsn: str) -> None:
    with connect(db_dsn) as c:
        add_assessment(
            c,
            example_plant.enterprise.id,
            AssessmentRecord(
                "cl2-tankfarm",
                date(2024, 1, 1),
                "old",
                120.0,
                Grade.ONE,
                date(2024, 1, 2),
                overrides={"LT-101": Limits(hh=1.5)},
            ),
        )
        add_assessment(
            c,
            example_plant.enterprise.id,
            AssessmentRecord(
                "cl2-tankfarm",
                date(2025, 1, 1),
                "new",
                120.0,
                Grade.ONE,
                date(2025, 1, 2),
                overrides={"LT-101": Limits(hh=1.9, h=1.8), "NOT-A-TAG": Limits(hh=1.0)},
            ),
        )
        c.commit()
        got = load_limit_overrides(c, example_plant)
    assert got == {"LT-101": Limits(hh=1.9, h=1.8)}


def test_default_escalation_is_the_issue_policy() -> None:
    p = default_policy()
    got = [(s.step, s.due_us // 1_000_000, s.recipient.value) for s in schedule(p, Tier.RED, 0)]
    assert got == [
        (0, 0, "control_room"),
        (0, 0, "operational"),
        (1, 300, "technical"),
        (1, 300, "principal"),
        (2, 600, "bureau_county"),
        (3, 1800, "bureau_city"),
    ]
    assert [(s.due_us, s.recipient) for s in schedule(p, Tier.BLUE, 5)] == [(5, Recipient.CONTROL_ROOM)]


def test_contacts_resolve_from_the_plant(example_plant: Plant) -> None:
    op = contacts(example_plant, "cl2-tankfarm", Recipient.OPERATIONAL)
    assert [(c.name, c.email, c.phone) for c in op] == [("王强", "wang.q@hx-chem.example.com", "13800000003")]
    city = contacts(example_plant, "cl2-tankfarm", Recipient.BUREAU_CITY)
    assert [(c.name, c.region_code) for c in city] == [("南京市应急管理局指挥中心", "320100")]
    prov = contacts(example_plant, None, Recipient.BUREAU_PROVINCE)
    assert [c.region_code for c in prov] == ["320000"]


# activation times (s) -> decisions (in_flood, started) with count 3 in 10 s
FLOOD = [
    ([0, 1, 2], [(False, False)] * 3),
    ([0, 1, 2, 3], [(False, False)] * 3 + [(True, True)]),
    ([0, 1, 2, 3, 4, 30], [(False, False)] * 3 + [(True, True), (True, False), (False, False)]),
    ([0, 1, 2, 11, 12, 13], [(False, False)] * 6),
]


@pytest.mark.parametrize(("times", "want"), FLOOD)
def test_flood_window(times: list[int], want: list[tuple[bool, bool]]) -> None:
    f = FloodDetector(3, 10.0)
    got = [(d.in_flood, d.started) for d in (f.activation(t * 1_000_000) for t in times)]
    assert got == want


def test_flood_rebuilt_from_history() -> None:
    f = FloodDetector(3, 10.0, [0, 1_000_000, 2_000_000, 3_000_000])
    assert f.in_flood(4_000_000)
    assert not f.in_flood(20_000_000)


BACKOFF: list[tuple[int, bool, int | None]] = [
    (1, True, 2_000_000),
    (2, True, 4_000_000),
    (5, True, 32_000_000),
    (6, True, None),  # attempts used up: dead letter
    (1, False, None),  # not retryable: dead letter at once
]


@pytest.mark.parametrize(("done", "retry", "want"), BACKOFF)
def test_backoff(done: int, retry: bool, want: int | None) -> None:
    assert next_attempt(RetryPolicy(attempts=6, backoff_s=2.0, max_backoff_s=300.0), done, retry, 0) == want


def test_backoff_is_capped() -> None:
    assert (
        next_attempt(RetryPolicy(attempts=20, backoff_s=2.0, max_backoff_s=60.0), 10, True, 0) == 60_000_000
    )


def test_a_bureau_warning_keeps_the_bureau_colour_whatever_the_grade(example_plant: Plant) -> None:
    """The plant's copy of a bureau warning (预警) takes the bureau's colour as its tier, not the grade's."""
    from hazmon.alarms.tiering import Tiering
    from hazmon.plant.findings import Finding

    t = Tiering(example_plant, "")
    hs = example_plant.hazard_sources[0].id
    for colour in Tier:
        f = Finding(hs, "bureau/7", Condition.BUREAU_WARNING, Level.FIRST, True, 0, value=float(colour))
        assert t.tier_of(f) is colour
    other = Finding(hs, "LT-101", Condition.H, Level.FIRST, True, 0, value=2.0)
    assert t.tier_of(other) is tier_for(Level.FIRST, Condition.H, t.grade_of(hs))
