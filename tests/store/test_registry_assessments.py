from __future__ import annotations

from dataclasses import replace
from datetime import date

from hazmon.plant import AssessmentRecord, Grade, Limits, Plant
from hazmon.store import (
    add_assessment,
    connect,
    latest_assessments,
    list_assessments,
    sensor_ids,
    sync_registry,
)


def test_registry_ids_are_stable_and_removed_sensors_retired(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn) as c:
        before = sensor_ids(c, "hx-chem")
        assert len(before) == 43
        hs = example_plant.hazard_sources[0]
        smaller = replace(
            example_plant,
            hazard_sources=(replace(hs, sensors=hs.sensors[1:]), *example_plant.hazard_sources[1:]),
        )
        after = sync_registry(c, smaller)
        assert after == {t: i for t, i in before.items() if t != hs.sensors[0].tag}
        assert c.execute("SELECT retired FROM sensor WHERE tag = %s", (hs.sensors[0].tag,)).fetchone() == (
            True,
        )
        again = sync_registry(c, example_plant)
        assert again == before
        assert c.execute("SELECT count(*) FROM sensor WHERE retired").fetchone() == (0,)


def test_registry_stores_grade_and_effective_limits(db_dsn: str) -> None:
    with connect(db_dsn) as c:
        rows = c.execute(
            "SELECT code, grade, round(r_value::numeric, 2) FROM hazard_source ORDER BY code"
        ).fetchall()
        assert [(r[0], r[1], float(r[2])) for r in rows] == [
            ("cl2-tankfarm", 2, 96.0),
            ("lpg-spheres", 3, 36.0),
            ("meoh-tankfarm", 3, 12.0),
        ]
        gt = c.execute("SELECT h, hh FROM sensor WHERE tag = 'GT-201'").fetchone()
        assert gt == (25.0, 50.0)  # GB/T 50493 defaults: the plant file gives only a deadband


def test_assessment_add_list_latest(db_dsn: str) -> None:
    with connect(db_dsn) as c:
        old = AssessmentRecord(
            "cl2-tankfarm",
            date(2020, 3, 1),
            "Old Assessor",
            90.0,
            Grade.TWO,
            filed_on=date(2020, 3, 10),
            inventory={"chlorine": 60.0},
        )
        new = AssessmentRecord(
            "cl2-tankfarm",
            date(2023, 4, 1),
            "安评公司",
            96.0,
            Grade.TWO,
            inventory={"chlorine": 60.0},
            overrides={"LT-101": Limits(hh=2.0, h=1.9, deadband=0.02)},
        )
        a1 = add_assessment(c, "hx-chem", old)
        a2 = add_assessment(c, "hx-chem", new)
        assert a2 > a1
        listed = list_assessments(c, "hx-chem", "cl2-tankfarm")
        assert [r.id for r in listed] == [a2, a1]
        latest = latest_assessments(c, "hx-chem")
        assert set(latest) == {"cl2-tankfarm"}
        got = latest["cl2-tankfarm"]
        assert got.assessor == "安评公司" and got.filed_on is None
        assert got.overrides == {"LT-101": Limits(hh=2.0, h=1.9, deadband=0.02)}
        assert latest_assessments(c, "hx-chem", on=date(2021, 1, 1))["cl2-tankfarm"].id == a1
