"""Emergency plans: the plant file's `plans:` section and the pure decisions (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hazmon.plant import Plant, loads
from hazmon.plant.config import ConfigError
from hazmon.plant.weather_standards import Colour
from hazmon.weather.plans import (
    Activation,
    AlarmNow,
    Clear,
    End,
    LevelUp,
    Refusal,
    Start,
    Unclear,
    WarningNow,
    decide,
    manual_end,
    manual_start,
    may_confirm,
)
from tests.conftest import EXAMPLE_PLANT

T0 = datetime(2026, 8, 4, 10, tzinfo=UTC)


MIN = timedelta(minutes=1)
PEOPLE = {"principal": {"张建国"}, "technical": {"李明", "赵磊"}, "operational": {"王强"}}


def _alarm(cond: str = "gas_second", tier: int = 4, at: datetime = T0, sensor: str = "AT-101") -> AlarmNow:
    level = "second" if cond in ("gas_second", "vote_confirmed") else "first"
    return AlarmNow("cl2-tankfarm", sensor, cond, level, tier, at)


def _toxic(example_plant: Plant) -> tuple[Plant, list]:  # type: ignore[type-arg]
    return example_plant, [p for p in example_plant.plans if p.id == "toxic-release"]


def test_a_second_level_chlorine_alarm_starts_the_toxic_release_plan_at_level_two(
    example_plant: Plant,
) -> None:
    _, plans = _toxic(example_plant)
    assert decide(plans, [_alarm()], [], [], {}, T0) == [
        Start("toxic-release", 2, "alarm gas_second tier 4 at cl2-tankfarm/AT-101", T0)
    ]
    # a first-level alarm at orange: level III; a yellow one (a grade-two source's first level): nothing
    assert [
        d.level for d in decide(plans, [_alarm("gas_first", 3)], [], [], {}, T0) if isinstance(d, Start)
    ] == [3]
    assert decide(plans, [_alarm("gas_first", 2)], [], [], {}, T0) == []
    # an alarm at another hazard source does not count
    other = AlarmNow("lpg-spheres", "GT-201", "gas_second", "second", 4, T0)
    assert decide(plans, [other], [], [], {}, T0) == []


def test_level_rises_never_falls_and_the_end_waits_for_all_clear(example_plant: Plant) -> None:
    _, plans = _toxic(example_plant)
    open3 = Activation(7, "toxic-release", 3, False, T0, auto=True)
    assert decide(plans, [_alarm()], [], [open3], {}, T0) == [
        LevelUp(7, "toxic-release", 2, "alarm gas_second tier 4 at cl2-tankfarm/AT-101")
    ]
    open2 = Activation(7, "toxic-release", 2, False, T0, auto=True)
    assert decide(plans, [_alarm("gas_first", 3)], [], [open2], {}, T0) == []  # lower: stays at II
    assert decide(plans, [], [], [open2], {}, T0 + MIN) == [Clear(7, T0 + MIN)]
    clearing = Activation(7, "toxic-release", 2, False, T0, auto=True, clear_since=T0 + MIN)
    assert decide(plans, [], [], [clearing], {}, T0 + 30 * MIN) == []  # 29 min clear
    assert decide(plans, [], [], [clearing], {}, T0 + 31 * MIN) == [
        End(7, "toxic-release", "all start conditions cleared for 30 min")
    ]
    assert decide(plans, [_alarm()], [], [clearing], {}, T0 + 20 * MIN) == [Unclear(7)]
    # started by hand: no end by itself
    manual = Activation(8, "toxic-release", 3, False, T0, auto=False)
    assert decide(plans, [], [], [manual], {}, T0 + 99 * MIN) == []


def test_an_alarm_older_than_the_last_end_does_not_start_the_plan_again(example_plant: Plant) -> None:
    _, plans = _toxic(example_plant)
    ended = {"toxic-release": T0 + 10 * MIN}
    assert decide(plans, [_alarm(at=T0)], [], [], ended, T0 + 11 * MIN) == []
    fresh = _alarm(at=T0 + 12 * MIN, sensor="AT-102")
    assert [type(d) for d in decide(plans, [_alarm(at=T0), fresh], [], [], ended, T0 + 13 * MIN)] == [Start]


def test_a_vote_of_two_detectors_and_a_drill_left_alone(example_plant: Plant) -> None:
    _, plans = _toxic(example_plant)
    one = [_alarm("gas_first", 2, T0, "AT-101")]
    assert decide(plans, one, [], [], {}, T0) == []
    two = [*one, _alarm("gas_first", 2, T0 + MIN, "AT-103")]
    assert decide(plans, two, [], [], {}, T0 + MIN) == [
        Start("toxic-release", 2, "vote 2 of 3 (AT-101, AT-103) at first", T0 + MIN)
    ]
    drill = Activation(9, "toxic-release", 3, True, T0, auto=False)
    assert [type(d) for d in decide(plans, two, [], [drill], {}, T0 + MIN)] == [Start]  # real start beside it


def test_a_weather_warning_starts_the_severe_weather_plan(example_plant: Plant) -> None:
    plans = [p for p in example_plant.plans if p.id == "severe-weather"]
    heat_orange = WarningNow("lpg-spheres", "heat", Colour.ORANGE, T0, "w1")
    assert [(type(d), d.level) for d in decide(plans, [], [heat_orange], [], {}, T0)] == [(Start, 3)]  # type: ignore[union-attr]
    heat_yellow = WarningNow("lpg-spheres", "heat", Colour.YELLOW, T0, "w2")
    assert decide(plans, [], [heat_yellow], [], {}, T0) == []
    heat_elsewhere = WarningNow("cl2-tankfarm", "heat", Colour.RED, T0, "w3")
    assert decide(plans, [], [heat_elsewhere], [], {}, T0) == []


def test_manual_start_end_and_steps_are_checked_with_a_reason(example_plant: Plant) -> None:
    _, plans = _toxic(example_plant)
    plan = plans[0]
    got = manual_start(plan, "王强", "control_room", None, False, [], PEOPLE)
    assert got == Refusal(
        "role 'control_room' may not start plan 'toxic-release' (allowed: principal, technical, operational)"
    )
    got = manual_start(plan, "王五", "principal", None, False, [], PEOPLE)
    assert isinstance(got, Refusal) and "'王五' is not a principal" in got.reason
    got = manual_start(plan, "张建国", "principal", None, False, [], PEOPLE)
    assert isinstance(got, Start) and got.level == 3
    assert isinstance(manual_start(plan, "张建国", "principal", "I", True, [], PEOPLE), Start)
    opened = [Activation(3, "toxic-release", 2, False, T0, auto=True)]
    got = manual_start(plan, "张建国", "principal", None, False, opened, PEOPLE)
    assert got == Refusal("plan 'toxic-release' is already started (activation 3, level II)")
    assert isinstance(
        manual_start(plan, "张建国", "principal", None, True, opened, PEOPLE), Start
    )  # a drill beside
    assert isinstance(manual_end(plan, opened[0], "王强", "operational", PEOPLE), Refusal)
    assert manual_end(plan, opened[0], "李明", "technical", PEOPLE) == End(
        3, "toxic-release", "ended by 李明 (technical)"
    )
    assert may_confirm(plan, "isolate", by="王强", role="operational", confirmed=set(), people=PEOPLE) is None
    assert may_confirm(plan, "isolate", by="张建国", role="principal", confirmed=set(), people=PEOPLE) is None
    assert may_confirm(
        plan, "evacuate", by="王强", role="operational", confirmed=set(), people=PEOPLE
    ) == Refusal("step 'evacuate' is confirmed by its owner (principal) or the principal, not operational")
    assert may_confirm(
        plan, "isolate", by="王强", role="operational", confirmed={"isolate"}, people=PEOPLE
    ) == Refusal("step 'isolate' is already confirmed")
    assert isinstance(
        may_confirm(plan, "nope", by="王强", role="operational", confirmed=set(), people=PEOPLE), Refusal
    )


def _with_plans(section: str) -> str:
    text = EXAMPLE_PLANT.read_text(encoding="utf-8")
    return text[: text.index("\nplans:")] + "\n" + section


def test_plan_file_problems_name_file_line_and_field() -> None:
    section = """plans:
  - id: p1
    name: one
    start:
      - {level: V, alarm: {hazard_source: nowhere}}
      - {level: II, alarm: {hazard_source: cl2-tankfarm}, manual: {roles: [principal]}}
      - {level: II, vote: {sensors: [AT-101, XX-1], k: 3}}
    notify: [mayor]
    steps:
      - {id: a, text: x, owner: janitor}
  - id: p2
    name: two
    start:
      - {level: II, alarm: {hazard_source: nowhere}}
      - {level: II, vote: {sensors: [AT-101, XX-1], k: 1}}
"""
    text = _with_plans(section)
    base = text.count("\n", 0, text.index("plans:")) + 1
    with pytest.raises(ConfigError) as e:
        loads(text, "plant.yaml")
    got = sorted(str(p).removeprefix("plant.yaml:") for p in e.value.problems)
    assert got == sorted(
        [
            f"{base + 4}: plans[0].start[0].level: 'V' is not one of: I, II, III, IV",
            f"{base + 5}: plans[0].start[1]: give exactly one of alarm, vote, weather, manual (got alarm, manual)",
            f"{base + 6}: plans[0].start[2].vote.k: k (3) is larger than the number of sensors (2)",
            f"{base + 7}: plans[0].notify[0]: 'mayor' is not one of: control_room, operational, technical, "
            "principal, bureau_county, bureau_city, bureau_province",
            f"{base + 9}: plans[0].steps[0].owner: 'janitor' is not one of: control_room, operational, technical, principal",
            f"{base + 13}: plans[1].start[0].alarm.hazard_source: unknown hazard source 'nowhere'",
            f"{base + 14}: plans[1].start[1].vote.sensors[1]: unknown sensor 'XX-1'",
        ]
    )


def test_plan_list_reads_the_plant_file_only() -> None:
    from tests.supervision.test_cli import hz

    r = hz("plan", "list", "toxic-release", "-c", str(EXAMPLE_PLANT), dsn="postgresql://nobody@127.0.0.1:1/x")
    assert r.returncode == 0
    out = r.stdout
    assert "start at level II: an alarm at cl2-tankfarm, red or above (gas_second, vote_confirmed)" in out
    assert "start at level II: 2 of AT-101, AT-102, AT-103 in alarm at first level or above" in out
    assert "severe-weather" not in out
