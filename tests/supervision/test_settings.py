"""The plant file's time zone and `supervision:` section: defaults, overrides, and clear refusals."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from hazmon.plant import ConfigError, loads
from hazmon.plant.supervision_standards import Period

BASE = (Path(__file__).parents[1] / "plant" / "broken" / "_base.yaml.txt").read_text(encoding="utf-8")


def with_enterprise_line(line: str, extra: str = "") -> str:
    text = BASE.replace("  name: 测试化工\n", f"  name: 测试化工\n{line}", 1)
    return text + extra


def test_defaults() -> None:
    p = loads(BASE)
    assert p.enterprise.timezone == "Asia/Shanghai"
    assert p.supervision.commitment_due == time(10, 0)
    assert [p.supervision.period(r) for r in ("principal", "technical", "operational")] == [
        Period.QUARTER,
        Period.QUARTER,
        Period.WEEK,
    ]


def test_overrides() -> None:
    p = loads(
        with_enterprise_line(
            "  timezone: Asia/Urumqi\n",
            'supervision:\n  commitment_due: "09:30"\n  checks: {principal: month, operational: week}\n',
        )
    )
    assert p.enterprise.timezone == "Asia/Urumqi"
    assert p.supervision.commitment_due == time(9, 30)
    assert p.supervision.period("principal") is Period.MONTH
    assert p.supervision.period("technical") is Period.QUARTER


@pytest.mark.parametrize(
    ("line", "extra", "problem"),
    [
        ("  timezone: Mars/Olympus\n", "", "4: enterprise.timezone: 'Mars/Olympus' is not an IANA time zone"),
        ("", "supervision:\n  commitment_due: 10:00\n", 'write the time in quotes, e.g. "10:00"'),
        ("", 'supervision:\n  commitment_due: "25:00"\n', "'25:00' is not a local time \"HH:MM\""),
        (
            "",
            "supervision:\n  checks: {operational: fortnight}\n",
            "'fortnight' is not one of: week, month, quarter",
        ),
        ("", "supervision:\n  checks: {janitor: week}\n", "unknown key 'janitor'"),
    ],
)
def test_refusals_name_place_and_reason(line: str, extra: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads(with_enterprise_line(line, extra), "plant.yaml")
    assert any(problem in str(p) for p in e.value.problems), e.value.problems
