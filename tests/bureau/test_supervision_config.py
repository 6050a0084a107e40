"""bureau.yaml ``supervision:``: who may open 挂牌督办 per level of danger, escalation grace; errors file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.bureau.config import BureauConfig, load_config
from hazmon.bureau.supervision_flow import open_problems
from hazmon.plant import ConfigError
from hazmon.plant.supervision_standards import SUPERVISION_MIN_LEVEL
from tests.bureau.test_supervision_flow import DL, T0, TZ
from tests.conftest import ROOT

HEAD = """id: nj-city
name: 南京市应急管理局
region: {code: "320100", level: city}
"""


def _load(tmp_path: Path, text: str) -> BureauConfig:
    f = tmp_path / "bureau.yaml"
    f.write_text(HEAD + text)
    return load_config(f)


def _problems(tmp_path: Path, text: str) -> list[str]:
    f = tmp_path / "bureau.yaml"
    f.write_text(HEAD + text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    return [str(p).replace(str(f), "bureau.yaml") for p in e.value.problems]


def test_default_is_the_standards_table(tmp_path: Path) -> None:
    cfg = load_config(ROOT / "examples" / "bureau.yaml")
    assert cfg.supervision.min_level.as_map() == SUPERVISION_MIN_LEVEL
    assert cfg.supervision.escalate_after_days == 0
    assert "Order 16" in cfg.supervision.source or "第16号" in cfg.supervision.source
    bare = _load(tmp_path, "")
    assert bare.supervision.min_level.as_map() == SUPERVISION_MIN_LEVEL


def test_a_province_requiring_city_level_for_major_ones(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "supervision:\n  min_level: {major: city}\n  escalate_after_days: 3\n")
    sup = cfg.supervision
    assert sup.min_level.as_map() == {"general": "county", "major": "city"}  # the other keeps its default
    assert sup.escalate_after_days == 3
    why = open_problems("county", "major", "rectifying", DL, T0, TZ, min_level=sup.min_level.as_map())
    assert [r.field for r in why] == ["level"]
    assert "supervised at city level or above" in why[0].reason
    assert open_problems("county", "general", "found", DL, T0, TZ, min_level=sup.min_level.as_map()) == []


def test_problems_name_line_field_and_reason(tmp_path: Path) -> None:
    got = _problems(
        tmp_path,
        """supervision:
  min_level:
    major: town
    minor: county
  escalate_after_days: -1
""",
    )
    assert got == [
        "bureau.yaml:6: supervision.min_level.major: 'town' is not one of: county, city, province",
        "bureau.yaml:7: supervision.min_level.minor: unknown key 'minor' (allowed: general, major)",
        "bureau.yaml:8: supervision.escalate_after_days: must be >= 0, got -1",
    ]
    got = _problems(tmp_path, "supervision: {min_level: {general: city, major: county}, escalate_after: 2}\n")
    assert got == [
        "bureau.yaml:4: supervision.escalate_after: unknown key 'escalate_after' (allowed: escalate_after_days, min_level)",
        "bureau.yaml:4: supervision.min_level.major: a major hidden danger is not supervised below a general one (general: city)",
    ]
