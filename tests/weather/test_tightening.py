"""Rules tightened while a heat warning is in force, and restored after (the plant's weather.tighten)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from hazmon.plant import Limits, Plant, loads
from hazmon.plant.config import ConfigError
from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.store import connect
from hazmon.weather.ingest import ingest
from hazmon.weather.settings import WeatherSettings
from hazmon.weather.state import Active
from hazmon.weather.tightening import tightened
from hazmon.weather_wiring import WeatherRunner
from tests.conftest import EXAMPLE_PLANT
from tests.weather.test_cap import sample

CST = timezone(timedelta(hours=8))
NOON = datetime(2026, 8, 4, 12, tzinfo=CST)


def _heat(name: str) -> bytes:
    """A sample lightning document turned into the same heat warning (高温)."""
    return (
        sample(name)
        .replace("雷电".encode(), "高温".encode())
        .replace(b"Lightning", b"Heat")
        .replace(b"lightning", b"heat")
    )


def _active(colour: Colour, hs: str = "lpg-spheres") -> dict[tuple[str, WarningKind], Active]:
    return {(hs, WarningKind.HEAT): Active(hs, WarningKind.HEAT, colour, "x", "first", (), "", "")}  # type: ignore[arg-type]


def test_tightened_puts_the_heat_limits_over_the_usual_ones(example_plant: Plant) -> None:
    pt = example_plant.sensor("PT-201").limits
    assert tightened(example_plant, {}, {}) == {}
    got = tightened(example_plant, _active(Colour.ORANGE), {})
    assert got == {
        "PT-201": replace(pt, h=1.35),
        "PT-202": replace(example_plant.sensor("PT-202").limits, h=1.35),
    }
    assert tightened(example_plant, _active(Colour.YELLOW), {}) == {}  # below the rule's colour
    assert tightened(example_plant, _active(Colour.RED, "cl2-tankfarm"), {}) == {}  # another hazard source
    agreed = Limits(hh=1.55, h=1.4, l=0.1)  # an assessment's limits stay the base
    assert tightened(example_plant, _active(Colour.RED), {"PT-201": agreed})["PT-201"] == replace(
        agreed, h=1.35
    )


def test_a_tighten_rule_naming_an_unknown_sensor_is_a_problem_with_its_line() -> None:
    text = EXAMPLE_PLANT.read_text(encoding="utf-8").replace(
        "sensors: [PT-201, PT-202], limits: {h: 1.35}", "sensors: [PT-201, PT-999], limits: {}"
    )
    with pytest.raises(ConfigError) as e:
        loads(text, "plant.yaml")
    line = text[: text.index("PT-999")].count("\n") + 1
    assert sorted(str(p) for p in e.value.problems) == [
        f"plant.yaml:{line}: weather.tighten[0].limits: give at least one of: hh, h, l, ll, on_delay_s, rate_rise_per_min",
    ]


async def test_the_runner_tightens_while_in_force_and_restores_after(
    example_plant: Plant, db_dsn: str
) -> None:
    given: list[dict[str, Limits]] = []
    now = [NOON]
    r = WeatherRunner(db_dsn, example_plant, WeatherSettings(), None, clock=lambda: now[0])
    r.apply_limits, r.limits = given.append, {}
    agreed = {"LT-101": Limits(hh=2.0, h=1.9)}
    r.set_assessments(agreed)  # an assessment's overrides reach the rules through the runner
    assert given == [agreed]
    with connect(db_dsn, autocommit=True) as c:
        for doc, at in (
            ("lightning_yellow.xml", NOON),
            ("lightning_orange_update.xml", NOON + timedelta(hours=3)),
        ):
            assert ingest(c, example_plant, _heat(doc), doc, at).stored
    await r.effects_once()  # yellow heat: nothing tightened
    assert len(given) == 1
    now[0] = NOON + timedelta(hours=3)
    await r.effects_once()  # orange heat: PT-201 and PT-202 pre-alarm lowered, LT-101 kept
    assert (
        given[-1]["PT-201"].h == 1.35
        and given[-1]["PT-202"].h == 1.35
        and given[-1]["LT-101"] == agreed["LT-101"]
    )
    await r.effects_once()
    assert len(given) == 2  # unchanged: not given again
    now[0] = NOON + timedelta(hours=11)  # expired at 22:15
    await r.effects_once()
    assert given[-1] == agreed  # restored
