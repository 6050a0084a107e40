"""Pure pieces: payload encoding, scenario parsing errors, physics numbers."""

from __future__ import annotations

import json
import math

import pytest

from hazmon.plant import MqttBinding, Quality, Reading
from hazmon.plant.standards import CHEMICALS
from hazmon.plant.yamlnode import ConfigError
from hazmon.simulators import load_scenario, parse_duration, parse_scenario_text
from hazmon.simulators.faults import ActiveFault, apply_faults
from hazmon.simulators.opcua_server import unece_unit_id
from hazmon.simulators.payloads import encode, encode_batch, encode_json, encode_number, rfc3339_us
from hazmon.simulators.physics import (
    gauge_pressure,
    height_table,
    plume_g_m3,
    steady_lagged_c,
    to_detector_unit,
)

T = 1_764_324_000_123_456  # 2025-11-28T10:00:00.123456Z


@pytest.mark.parametrize(
    ("reading", "field", "payload"),
    [
        (Reading("A", T, 12.5), "v", b'{"ts":"2025-11-28T10:00:00.123456Z","v":12.5,"q":0}'),
        (Reading("A", T, 0.1, Quality.BAD), "v", b'{"ts":"2025-11-28T10:00:00.123456Z","v":0.1,"q":2}'),
        (
            Reading("A", T - 123_456, 3.0, Quality.UNCERTAIN),
            "data.value",
            b'{"ts":"2025-11-28T10:00:00.000000Z","data":{"value":3.0},"q":1}',
        ),
    ],
)
def test_json_payload_exact(reading: Reading, field: str, payload: bytes) -> None:
    assert encode_json(reading, field) == payload


def test_rfc3339_and_batch_and_number() -> None:
    assert rfc3339_us(0) == "1970-01-01T00:00:00.000000Z"
    assert rfc3339_us(T) == "2025-11-28T10:00:00.123456Z"
    assert json.loads(encode_batch([Reading("GT-201", T, 1.5), Reading("GT-202", T, 0.0, Quality.BAD)])) == {
        "readings": [
            {"tag": "GT-201", "ts": "2025-11-28T10:00:00.123456Z", "v": 1.5, "q": 0},
            {"tag": "GT-202", "ts": "2025-11-28T10:00:00.123456Z", "v": 0.0, "q": 2},
        ]
    }
    assert encode_number(Reading("A", T, 7.25)) == b"7.25"
    assert encode_number(Reading("A", T, 7.25, Quality.BAD)) is None


def test_encode_groups_batches_per_topic_and_counts_what_it_cannot_send() -> None:
    b = {
        "A": MqttBinding("gds", "t/a", "v", "json"),
        "B": MqttBinding("gds", "t/batch", "v", "batch"),
        "C": MqttBinding("gds", "t/batch", "v", "batch"),
        "N": MqttBinding("gds", "t/n", "", "number"),
    }
    rs = [
        Reading("A", T, 1.0),
        Reading("B", T, 2.0),
        Reading("C", T, 3.0),
        Reading("N", T, 4.0, Quality.BAD),
        Reading("X", T, 5.0),
    ]
    pubs, skipped = encode(rs, b)
    assert [t for t, _ in pubs] == ["t/a", "t/batch"]
    assert [r["tag"] for r in json.loads(pubs[1][1])["readings"]] == ["B", "C"]
    assert skipped == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("1d", 86400.0), ("2.5", 2.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "-3"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_scenario_problems_are_all_reported_with_file_line_and_path() -> None:
    text = """name: bad
wind: {from_deg: 90, speed_m_s: 0}
events:
  - {at: 5m, leak: {id: l1, chemical: unobtainium, rate_g_s: 1, equipment: V-101}}
  - {at: soon, stop_leak: l1}
  - {at: 1m, fault: {sensor: LT-101, kind: melted}}
  - {at: 1m, pump: {equipment: T-301}, heat: {equipment: T-301, c_per_h: 1}}
  - {at: 2m, leak: {id: l2, chemical: chlorine, rate_g_s: 1}}
"""
    with pytest.raises(ConfigError) as e:
        parse_scenario_text(text, "bad.yaml")
    assert [str(p) for p in e.value.problems] == [
        "bad.yaml:2: wind.speed_m_s: must be >= 0.1, got 0",
        "bad.yaml:4: events[0].leak.chemical: unknown chemical 'unobtainium' (known: "
        + ", ".join(c.id for c in CHEMICALS)
        + ")",
        "bad.yaml:5: events[1].at: 'soon' is not a duration (seconds, or like 90s, 5m, 1h30m, 1d)",
        "bad.yaml:6: events[2].fault.kind: 'melted' is not one of: stuck, drift, spikes, dropout, out_of_range,"
        " bad_quality",
        "bad.yaml:7: events[3]: an event has exactly one of: leak, stop_leak, pump, heat, fault, outage, wind,"
        " ambient (got 2)",
        "bad.yaml:8: events[4].leak: a leak needs 'at: [east, north]' or 'equipment'",
    ]


def test_unknown_scenario_names_the_built_in_ones() -> None:
    with pytest.raises(ConfigError, match="built-in: alarm-flood, chlorine-leak, lpg-overfill, normal"):
        load_scenario("no-such-scenario")


def test_propane_vapour_pressure_gauge() -> None:
    # DIPPR-101 (Perry's 8th ed.): propane 8.36 bar abs at 20 °C, 17.1 bar at 50 °C (NIST: 8.36 / 17.13)
    p20 = gauge_pressure("propane", 20.0)
    p50 = gauge_pressure("propane", 50.0)
    assert p20 is not None and p50 is not None
    assert (p20 + 101_325) / 1e5 == pytest.approx(8.36, abs=0.05)
    assert (p50 + 101_325) / 1e5 == pytest.approx(17.1, abs=0.1)
    assert gauge_pressure("methanol", 20.0) is None


def test_plume_zero_upwind_symmetric_crosswind_and_decreasing_downwind() -> None:
    src = (0.0, 0.0)
    assert plume_g_m3(1.0, src, (-20.0, 0.0), 270.0, 2.0) == 0.0  # wind from the west: west is upwind
    east = plume_g_m3(1.0, src, (20.0, 0.0), 270.0, 2.0)
    assert east > plume_g_m3(1.0, src, (40.0, 0.0), 270.0, 2.0) > 0.0
    assert plume_g_m3(1.0, src, (20.0, 2.0), 270.0, 2.0) == pytest.approx(
        plume_g_m3(1.0, src, (20.0, -2.0), 270.0, 2.0)
    )
    assert plume_g_m3(1.0, src, (20.0, 0.0), 270.0, 4.0) == pytest.approx(
        east / 2
    )  # inversely with wind speed


def test_unit_conversions() -> None:
    cl2 = next(c for c in CHEMICALS if c.id == "chlorine")
    propane = next(c for c in CHEMICALS if c.id == "propane")
    # 1 mg/m3 of chlorine is 24.055/70.906 ppm
    assert to_detector_unit(0.001, cl2, "ppm") == pytest.approx(24.055 / 70.906)
    assert to_detector_unit(0.001, cl2, "mg/m3") == pytest.approx(1.0)
    # propane at its LEL (1.7 %vol = 17000 ppm) reads 100 %LEL
    g_m3 = 17_000 * 44.09562 / 24.055 / 1000
    assert to_detector_unit(g_m3, propane, "%LEL") == pytest.approx(100.0)


def test_sphere_table_and_thermal_lag() -> None:
    v = height_table("sphere", 1000.0, 12.3, n=3)
    assert v.tolist() == pytest.approx([0.0, 500.0, 1000.0])
    # the lagged temperature swings less than the air
    amp = max(
        steady_lagged_c(h * 3600, 8 * 3600, mean_c=0, swing_c=6, peak_hour=15, utc_offset_h=8)
        for h in range(24)
    )
    assert 0 < amp < 6 * 1 / math.sqrt(1 + (2 * math.pi / 86400 * 8 * 3600) ** 2) + 0.01


def test_faults_table() -> None:
    def run(kind: str, amount: float = 0.0, uniform: float = 0.9) -> tuple[float, Quality] | None:
        f = [ActiveFault(kind, 0, None, amount, 10.0)]
        return apply_faults(
            f,
            5.0,
            Quality.GOOD,
            ts_us=3_600_000_000,
            lo=0.0,
            hi=10.0,
            period_s=1.0,
            uniform=uniform,
            sign=-1.0,
        )

    assert run("dropout") is None
    assert run("stuck") == (5.0, Quality.GOOD)
    assert run("drift", 2.0) == (7.0, Quality.GOOD)
    assert run("spikes", 0.3, uniform=0.05) == (2.0, Quality.GOOD)
    assert run("spikes", 0.3, uniform=0.5) == (5.0, Quality.GOOD)
    assert run("out_of_range", 1.0) == (10.625, Quality.GOOD)
    assert run("out_of_range", -1.0) == (-0.25, Quality.GOOD)
    assert run("bad_quality", 1.0) == (5.0, Quality.UNCERTAIN)


def test_unece_unit_ids() -> None:
    assert unece_unit_id("MTR") == 5067858
    assert unece_unit_id("CEL") == 4408652
