from __future__ import annotations

from pathlib import Path

import pytest

from hazmon.collector import CollectorSettings, parse_settings
from hazmon.plant.yamlnode import ConfigError, Node, parse_document, parse_file

SAMPLE = Path(__file__).resolve().parents[2] / "collector" / "sample.conf"


def _section(n: Node) -> CollectorSettings | None:
    m = n.mapping({"collector"})
    return None if m is None else parse_settings(m["collector"])


def test_sample_conf_loads_and_equals_the_defaults() -> None:
    assert parse_file(SAMPLE, _section) == CollectorSettings()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "collector: {flush_interval_s: 2}\n",
            "x.yaml:1: collector.flush_interval_s: must be <= 1 s (readings reach the database within a second), got 2",
        ),
        (
            "collector: {queue_max_readings: 0}\n",
            "x.yaml:1: collector.queue_max_readings: must be >= 1, got 0",
        ),
        ("collector: {stale_factor: 0.5}\n", "x.yaml:1: collector.stale_factor: must be >= 1, got 0.5"),
        (
            "collector: {value_resolution_bits: 8}\n",
            "x.yaml:1: collector.value_resolution_bits: must be 0 (full precision) or 12 to 40 (a step of"
            " span / 2^bits), got 8: below 12 the step would be coarser than a transmitter's accuracy",
        ),
        (
            "collector:\n  mqtt: {reconnect_min_s: 5, reconnect_max_s: 1}\n",
            "x.yaml:2: collector.mqtt.reconnect_max_s: must be >= reconnect_min_s (5), got 1",
        ),
        ("collector:\n  spool: {max_mb: -1}\n", "x.yaml:2: collector.spool.max_mb: must be > 0, got -1"),
        (
            "collector:\n  mqtt: {ack: commit}\n",
            "x.yaml:2: collector.mqtt.ack: 'commit' is not one of: durable, received",
        ),
        (
            "collector: {bogus: 1}\n",
            "x.yaml:1: collector.bogus: unknown key 'bogus' (allowed: batch_max_readings, dead_letter_max_pending, "
            "dead_letter_payload_bytes, dead_letter_retention_days, flush_interval_s, log_interval_s, log_payload_cut, mqtt, opcua, "
            "queue_max_readings, retry_max_s, spool, stale_factor, value_resolution_bits, write_timeout_s)",
        ),
    ],
)
def test_bad_values_fail_at_load_naming_place_and_reason(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_document(text, "x.yaml", _section)
    assert [str(p) for p in e.value.problems] == [problem]


def test_reconnect_min_above_the_default_max_is_a_problem_not_a_traceback() -> None:
    # reconnect_max_s left at its default (10 s) below a given reconnect_min_s used to raise KeyError
    with pytest.raises(ConfigError) as e:
        parse_document("collector:\n  opcua: {reconnect_min_s: 20}\n", "x.yaml", _section)
    assert [str(p) for p in e.value.problems] == [
        "x.yaml:2: collector.opcua: must be >= reconnect_min_s (20), got 10"
    ]
