"""The example daemon config's alarms section loads, and the demo's tokens come from it."""

from __future__ import annotations

from pathlib import Path

from hazmon.alarms import AlarmSettings
from hazmon.config import load_config
from tests.conftest import ROOT


def test_example_config_has_alarms_with_tokens_per_role(tmp_path: Path) -> None:
    text = (ROOT / "examples" / "hazmon.yaml").read_text(encoding="utf-8")
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text(
        text.replace("plant: plant.yaml", f"plant: {ROOT / 'examples' / 'plant.yaml'}").replace(
            "../var/demo/alarm-tokens.yaml", "alarm-tokens.yaml"
        )
    )
    config, _ = load_config(cfg)
    s = config.alarms
    assert isinstance(s, AlarmSettings)
    assert [(t.name, t.role, t.level) for t in s.tokens] == [
        ("operator", "operator", None),
        ("plant-manager", "plant_manager", None),
        ("county-bureau", "bureau", "county"),
        ("city-bureau", "bureau", "city"),
        ("province-bureau", "bureau", "province"),
    ]
    assert [(n.name, n.kind) for n in s.notifiers] == [("platform", "mqtt")]
    assert (tmp_path / "alarm-tokens.yaml").exists()
