"""The rules: section of the daemon config."""

from __future__ import annotations

import pytest

from hazmon.plant import SensorKind
from hazmon.plant.yamlnode import ConfigError, parse_document
from hazmon.rules import RulesSettings, parse_settings

FULL = """\
locale: en
window: {bucket_s: 5, trend_s: 900, spike_samples: 32}
predict: {horizon_s: 1200, min_fill: 0.5, consistency: 0.9, fit_ratio: 4, on_delay_s: 20, off_delay_s: 40,
          kinds: [level, pressure]}
rate: {window_s: 120, clear_fraction: 0.7}
stuck: {after_s: 600, tolerance: 0.001, kinds: [temperature]}
spike: {z: 6, min_step: 0.05, hold_s: 120}
faults: {off_delay_s: 30}
stale: {factor: 3}
votes: {enabled: false}
chattering: {count: 4, window_s: 120}
"""


def test_every_key() -> None:
    s = parse_document(FULL, "hazmon.yaml", parse_settings)
    assert s == RulesSettings(
        locale="en",
        bucket_s=5.0,
        trend_s=900.0,
        spike_samples=32,
        horizon_s=1200.0,
        min_fill=0.5,
        consistency=0.9,
        fit_ratio=4.0,
        predict_on_delay_s=20.0,
        predict_off_delay_s=40.0,
        predict_kinds=frozenset({SensorKind.LEVEL, SensorKind.PRESSURE}),
        rate_window_s=120.0,
        rate_clear_fraction=0.7,
        stuck_after_s=600.0,
        stuck_tolerance=0.001,
        stuck_kinds=frozenset({SensorKind.TEMPERATURE}),
        spike_z=6.0,
        spike_min_step=0.05,
        spike_hold_s=120.0,
        fault_off_delay_s=30.0,
        stale_factor=3.0,
        votes=False,
        chattering_count=4,
        chattering_window_s=120.0,
    )
    assert s.trend_buckets == 180


def test_defaults_and_null_stale_factor() -> None:
    assert parse_document("stale: {factor: null}\n", "h.yaml", parse_settings) == RulesSettings()
    assert parse_document("{}\n", "h.yaml", parse_settings) == RulesSettings()


BAD = [
    ("predict: {horizon_s: -5}\n", "h.yaml:1: predict.horizon_s: must be > 0, got -5"),
    ("predict: {kinds: [level, tank]}\n", "h.yaml:1: predict.kinds[1]: 'tank' is not one of"),
    ("spike: {z: high}\n", "h.yaml:1: spike.z: expected a number, got text 'high'"),
    ("rate: {clear_fraction: 2}\n", "h.yaml:1: rate.clear_fraction: must be between 0 and 1, got 2"),
    ("windows: {}\n", "h.yaml:1: windows: unknown key 'windows'"),
    ("window: {bucket_s: 300}\n", "h.yaml:1: window.bucket_s: bucket_s (300) must be at most a quarter"),
    ("stale: {factor: 0.5}\n", "h.yaml:1: stale.factor: must be > 1, got 0.5"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[b[1].split(": ")[1] for b in BAD])
def test_bad_values_name_file_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_document(text, "h.yaml", parse_settings)
    assert message in str(e.value)


def test_all_problems_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        parse_document("spike: {z: x}\nrate: {window_s: -1}\n", "h.yaml", parse_settings)
    assert len(e.value.problems) == 2
