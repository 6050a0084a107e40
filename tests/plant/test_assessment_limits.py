from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from hazmon.plant import (
    AssessmentRecord,
    Grade,
    Limits,
    Plant,
    assessment_status,
    default_gas_limits,
    effective_limits,
)
from hazmon.plant.assessment import add_years
from hazmon.plant.standards import (
    GAS_SETPOINTS_MG_M3,
    VAPOUR_PRESSURE,
    chemical,
    mg_m3_to_ppm,
    toxic_setpoints_mg_m3,
)

REPORT = date(2023, 4, 1)


def rec(**kw: object) -> AssessmentRecord:
    base: dict[str, object] = dict(
        hazard_source="cl2-tankfarm",
        report_date=REPORT,
        assessor="A",
        r_value=96.0,
        grade=Grade.TWO,
        filed_on=date(2023, 4, 10),
        inventory={"chlorine": 60.0},
    )
    base.update(kw)
    return AssessmentRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("record_kw", "today", "next_due", "overdue", "filing_overdue", "reason"),
    [
        ({}, date(2026, 3, 31), date(2026, 4, 1), False, False, "3 years after the report"),
        ({}, date(2026, 4, 1), date(2026, 4, 1), True, False, "3 years after the report"),
        ({"filed_on": None}, date(2023, 4, 16), date(2026, 4, 1), False, False, "3 years after the report"),
        ({"filed_on": None}, date(2023, 4, 17), date(2026, 4, 1), False, True, "3 years after the report"),
        (
            {"filed_on": date(2023, 4, 20)},
            date(2023, 5, 1),
            date(2026, 4, 1),
            False,
            True,
            "3 years after the report",
        ),
        (
            {"inventory": {"chlorine": 30.0}},
            date(2024, 1, 5),
            date(2024, 1, 5),
            True,
            False,
            "inventory changed since the assessment",
        ),
    ],
)
def test_assessment_status(
    example_plant: Plant,
    record_kw: dict[str, object],
    today: date,
    next_due: date,
    overdue: bool,
    filing_overdue: bool,
    reason: str,
) -> None:
    st = assessment_status(rec(**record_kw), example_plant.hazard_source("cl2-tankfarm"), today)
    assert (st.next_due, st.reassessment_overdue, st.filing_overdue, st.due_reason) == (
        next_due,
        overdue,
        filing_overdue,
        reason,
    )
    assert st.filing_deadline == date(2023, 4, 16)
    assert st.valid == (not overdue)


def test_no_assessment_is_due_now(example_plant: Plant) -> None:
    st = assessment_status(None, example_plant.hazard_source("lpg-spheres"), date(2026, 1, 2))
    assert (st.next_due, st.reassessment_overdue, st.valid, st.due_reason) == (
        date(2026, 1, 2),
        True,
        False,
        "no assessment on record",
    )


def test_add_years_on_29_february() -> None:
    assert add_years(date(2024, 2, 29), 3) == date(2027, 2, 28)


def test_gas_defaults_follow_gb_t_50493(example_plant: Plant) -> None:
    assert default_gas_limits(example_plant.sensor("GT-201")) == Limits(hh=50.0, h=25.0)
    cl2 = example_plant.sensor("AT-101")  # ppm detector: 1 / 2 mg/m3 converted with M = 70.906
    lim = effective_limits(cl2)
    assert lim.h == pytest.approx(1.0 * 24.055 / 70.906)
    assert lim.hh == pytest.approx(2.0 * 24.055 / 70.906)
    assert (lim.deadband, lim.on_delay_s, lim.off_delay_s) == (0.05, 3.0, 30.0)  # kept from the plant file
    meoh = effective_limits(example_plant.sensor("AT-301"))  # mg/m3 detector, PC-TWA 25
    assert (meoh.h, meoh.hh) == (25.0, 50.0)
    assert default_gas_limits(example_plant.sensor("LT-101")) is None


def test_oxygen_defaults() -> None:
    from hazmon.plant.model import OpcUaBinding, Sensor, SensorKind

    o2 = Sensor("OX-1", SensorKind.OXYGEN, "%VOL", (0, 30), 1, OpcUaBinding("dcs", "ns=2;s=OX-1"), "x")
    assert effective_limits(o2) == Limits(h=23.5, l=19.5)


def test_override_beats_plant_file(example_plant: Plant) -> None:
    s = example_plant.sensor("LT-101")
    ov = Limits(hh=2.0, h=1.8)
    assert effective_limits(s, ov) is ov
    assert effective_limits(s) == s.limits


@pytest.mark.parametrize("key", sorted(GAS_SETPOINTS_MG_M3))
def test_typical_setpoints_equal_oel_rule(key: str) -> None:
    c = chemical(key)
    assert c is not None
    assert toxic_setpoints_mg_m3(c) == GAS_SETPOINTS_MG_M3[key]


def test_idlh_fallback_when_range_too_small() -> None:
    c = chemical("hydrogen-sulfide")
    assert c is not None and c.molar_mass is not None
    idlh_mg = 100 * c.molar_mass / 24.055
    first, second = toxic_setpoints_mg_m3(c, detector_max_mg_m3=15.0)  # cannot reach 200 % OEL = 20
    assert (first, second) == (pytest.approx(0.05 * idlh_mg), pytest.approx(0.10 * idlh_mg))
    assert mg_m3_to_ppm(idlh_mg, c.molar_mass) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("sub", "t_c", "bar"),
    # docs/standards.md vapour-pressure checks, DIPPR-101 column
    [
        ("propane", -20, 2.445),
        ("propane", 20, 8.375),
        ("propane", 40, 13.710),
        ("n-butane", 20, 2.080),
        ("n-butane", 40, 3.790),
        ("ammonia", 20, 8.545),
        ("ammonia", 40, 15.496),
        ("chlorine", 20, 6.797),
        ("chlorine", 40, 11.494),
    ],
)
def test_vapour_pressure_matches_cross_checks(sub: str, t_c: float, bar: float) -> None:
    assert VAPOUR_PRESSURE[sub].bar(t_c) == pytest.approx(bar, abs=0.0015)


def test_retarget_moves_endpoints_and_topics(example_plant: Plant) -> None:
    p = example_plant.retarget({"dcs": "opc.tcp://127.0.0.1:4999/x"}, {"gds": "mqtt://127.0.0.1:1999"}, "t/1")
    assert p.opcua[0].url == "opc.tcp://127.0.0.1:4999/x"
    assert p.mqtt[0].url == "mqtt://127.0.0.1:1999"
    assert p.sensor("AT-101").binding == replace(
        example_plant.sensor("AT-101").binding, topic="t/1/plant/cl2-tankfarm/AT-101"
    )
    assert p.sensor("LT-101").binding == example_plant.sensor("LT-101").binding
